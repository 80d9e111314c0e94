//! The xferlog: one line per finished or failed file transfer in the wu-ftpd format of
//! xferlog(5), the one vsftpd (`xferlog_std_format`) and ProFTPD (`TransferLog`) write, so log
//! analysers (webalizer, xferstats...) read it:
//!
//! `current-time transfer-time remote-host file-size filename transfer-type special-action-flag
//! direction access-mode username service-name authentication-method authenticated-user-id
//! completion-status`, e.g.
//! `Wed Dec  2 16:59:07 2026 1 127.0.0.1 1048576 /pub/a\040b.bin b _ o a anonymous ftp 0 * c`.
//!
//! - current-time: local time when the transfer ended; transfer-time: whole seconds, at least 1
//!   (as vsftpd); file-size: the bytes moved; filename: the virtual path the client used.
//! - Listings (LIST, NLST, MLSD) are not file transfers and write no line, as in vsftpd.
//! - Names are escaped so that a line is always 14 space-separated fields: space, backslash, control
//!   characters and bytes that are not UTF-8 are written `\ooo` (octal, as `ls -b` and syslog do).
//!   ProFTPD writes `_` for those instead, which cannot be undone.
//! - The username of an anonymous login is `anonymous` (wu-ftpd wrote the password given; PASS
//!   arguments are never logged here); access-mode a for it, r for users-file users.
//! - authentication-method 0 and authenticated-user-id `*`: no RFC 931 lookups.
//! - completion-status c for a 226, i for anything else (aborted, failed, timed out).
//!
//! The file is opened append-only (created 0640) at start, before privileges drop; SIGHUP
//! reopens it by name (logrotate's postrotate). Each line is one write(2) to an O_APPEND file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::MONTHS;
use crate::sys::CivilTime;
use crate::transfer::{Direction, TransferRecord};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// The xferlog line for `record` (with its newline), ended at local time `now`; None for
/// listings.
pub fn format_line(record: &TransferRecord, now: &CivilTime) -> Option<Vec<u8>> {
    let direction = match record.direction {
        Direction::Download => 'o',
        Direction::Upload => 'i',
        Direction::Listing => return None,
    };
    let seconds = (record.elapsed.as_secs_f64().round() as u64).max(1);
    let mut line = format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {} {seconds} {} {} ",
        DAYS[usize::from(now.weekday % 7)],
        MONTHS[usize::from(now.month.clamp(1, 12)) - 1],
        now.day,
        now.hour,
        now.minute,
        now.second,
        now.year,
        record.peer.to_canonical(),
        record.bytes,
    )
    .into_bytes();
    escape_into(&mut line, &record.path);
    let fields = format!(
        " {} _ {direction} {} ",
        if record.ascii { 'a' } else { 'b' },
        if record.anonymous { 'a' } else { 'r' },
    );
    line.extend_from_slice(fields.as_bytes());
    escape_into(&mut line, record.user.as_bytes());
    let status = if record.is_complete() { 'c' } else { 'i' };
    line.extend_from_slice(format!(" ftp 0 * {status}\n").as_bytes());
    Some(line)
}

/// Appends `name` with space, backslash, control characters and non-UTF-8 bytes as `\ooo`.
pub fn escape_into(out: &mut Vec<u8>, name: &[u8]) {
    let octal = |out: &mut Vec<u8>, byte: u8| {
        out.extend_from_slice(format!("\\{byte:03o}").as_bytes());
    };
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == ' ' || c == '\\' || c.is_control() {
                let mut buf = [0; 4];
                for &byte in c.encode_utf8(&mut buf).as_bytes() {
                    octal(out, byte);
                }
            } else {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        for &byte in chunk.invalid() {
            octal(out, byte);
        }
    }
}

/// The open xferlog file.
pub struct Xferlog {
    path: PathBuf,
    file: File,
}

impl Xferlog {
    /// Opens (creating, 0640) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Xferlog> {
        Ok(Xferlog {
            path: path.to_path_buf(),
            file: open_append(path)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SIGHUP: opens the file by its name again (logrotate moved the old one away). When that
    /// fails (after --run-as, the directory may be root's), the old file stays in use.
    pub fn reopen(&mut self) -> io::Result<()> {
        self.file = open_append(&self.path)?;
        Ok(())
    }

    /// Appends the line of `record` (listings write none). A regular file: a plain write.
    pub fn write(&mut self, record: &TransferRecord, now: &CivilTime) -> io::Result<()> {
        match format_line(record, now) {
            Some(line) => self.file.write_all(&line),
            None => Ok(()),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::log::tests::DEC_2;

    fn record(direction: Direction, path: &[u8], code: u16) -> TransferRecord {
        TransferRecord {
            session: 1,
            user: "anonymous".into(),
            anonymous: true,
            peer: "::ffff:127.0.0.1".parse().unwrap(),
            verb: "RETR",
            path: path.into(),
            disk_path: None,
            direction,
            ascii: false,
            bytes: 1_048_576,
            started_unix: 0,
            elapsed: Duration::from_millis(2600),
            code,
        }
    }

    fn line(record: &TransferRecord) -> String {
        String::from_utf8(format_line(record, &DEC_2).unwrap()).unwrap()
    }

    #[test]
    fn a_download_line_has_the_fourteen_fields() {
        assert_eq!(
            line(&record(Direction::Download, b"/pub/a b.bin", 226)),
            "Wed Dec  2 16:59:07 2026 3 127.0.0.1 1048576 /pub/a\\040b.bin b _ o a anonymous \
             ftp 0 * c\n"
        );
    }

    #[test]
    fn uploads_ascii_users_and_failures() {
        let mut r = record(Direction::Upload, b"/in.txt", 426);
        r.ascii = true;
        r.anonymous = false;
        r.user = "alice".into();
        r.elapsed = Duration::ZERO;
        r.bytes = 7;
        assert_eq!(
            line(&r),
            "Wed Dec  2 16:59:07 2026 1 127.0.0.1 7 /in.txt a _ i r alice ftp 0 * i\n"
        );
    }

    #[test]
    fn listings_write_no_line() {
        assert_eq!(
            format_line(&record(Direction::Listing, b"/", 226), &DEC_2),
            None
        );
    }

    #[test]
    fn names_are_escaped_so_fields_stay_fields() {
        let escaped = |name: &[u8]| {
            let mut out = Vec::new();
            escape_into(&mut out, name);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(escaped(b"/a b"), "/a\\040b");
        // A newline cannot start a forged line; the escape character escapes itself.
        assert_eq!(escaped(b"/x\ny\\z\t"), "/x\\012y\\134z\\011");
        // UTF-8 stays readable; bytes that are not UTF-8 are escaped.
        assert_eq!(escaped("/é".as_bytes()), "/é");
        assert_eq!(escaped(b"/\xff\xfe"), "/\\377\\376");
        assert_eq!(escaped("/\u{85}".as_bytes()), "/\\302\\205");
    }
}
