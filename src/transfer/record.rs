//! The transfer record: one per finished or failed transfer, made by the session when the
//! transfer ends and handed to the loop with its actions. The log line is written from it;
//! the xferlog, syslog and upload notifications read the same record.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::reply;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// RETR: from the server to the client.
    Download,
    /// STOR, APPE, STOU: from the client to the server.
    Upload,
    /// LIST, NLST, MLSD.
    Listing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    /// The session's id (its `[#id]` in the log).
    pub session: usize,
    /// The logged-in user ("anonymous" for anonymous logins).
    pub user: Box<str>,
    /// An anonymous login (the xferlog's access-mode `a`), not a users-file user.
    pub anonymous: bool,
    pub peer: IpAddr,
    /// The command: RETR, STOR, APPE, STOU, LIST, NLST, MLSD.
    pub verb: &'static str,
    /// The virtual path, as the client sees it (raw bytes: names need not be UTF-8).
    pub path: Box<[u8]>,
    /// Uploads: where the file is on disk, the user's root joined with `path` (absolute: homes
    /// are, and main makes --root so). With --atomic-uploads, the target the temporary file
    /// was renamed to. None for downloads and listings.
    pub disk_path: Option<PathBuf>,
    pub direction: Direction,
    /// TYPE A (true) or TYPE I.
    pub ascii: bool,
    /// Bytes moved over the data connection.
    pub bytes: u64,
    /// Wall-clock seconds since 1970 when the transfer command was accepted.
    pub started_unix: i64,
    /// From the transfer command to its end.
    pub elapsed: Duration,
    /// The reply code that ended it: 226 complete; 425, 426, 451, 452, 552... failed.
    pub code: u16,
}

impl TransferRecord {
    pub fn is_complete(&self) -> bool {
        self.code == reply::TRANSFER_COMPLETE
    }

    /// An upload that failed part way: what arrived is kept on disk, and the log says so.
    pub fn is_incomplete_upload(&self) -> bool {
        self.direction == Direction::Upload && !self.is_complete() && self.bytes > 0
    }
}

/// The stderr log line: `[#3] STOR /up.bin 1048576 bytes: 226`.
impl fmt::Display for TransferRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[#{}] {} {} {} bytes: {}",
            self.session,
            self.verb,
            String::from_utf8_lossy(&self.path),
            self.bytes,
            self.code
        )?;
        if self.is_incomplete_upload() {
            write!(f, " (incomplete upload kept)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(direction: Direction, code: u16, bytes: u64) -> TransferRecord {
        TransferRecord {
            session: 3,
            user: "anonymous".into(),
            anonymous: true,
            peer: "127.0.0.1".parse().unwrap(),
            verb: "STOR",
            path: b"/up\xffbin".to_vec().into(),
            disk_path: None,
            direction,
            ascii: false,
            bytes,
            started_unix: 0,
            elapsed: Duration::ZERO,
            code,
        }
    }

    #[test]
    fn the_log_line_names_the_transfer_and_flags_kept_partial_uploads() {
        assert_eq!(
            record(Direction::Upload, 226, 7).to_string(),
            "[#3] STOR /up\u{fffd}bin 7 bytes: 226"
        );
        assert_eq!(
            record(Direction::Upload, 426, 7).to_string(),
            "[#3] STOR /up\u{fffd}bin 7 bytes: 426 (incomplete upload kept)"
        );
        // Nothing arrived, or nothing of the user's was at stake: no flag.
        assert!(!record(Direction::Upload, 426, 0).is_incomplete_upload());
        assert!(!record(Direction::Download, 426, 7).is_incomplete_upload());
    }
}
