//! Reply codes named by meaning (RFC 959 section 4.2) and their rendering. Replies are
//! appended to a session's output buffer: `code text\r\n`, or a multi-line reply whose first
//! line is `code-text` and whose last is `code text` (RFC 959 4.2).

use std::io;

pub const RESTART_MARKER: u16 = 110;
pub const OPENING_DATA: u16 = 150;
pub const OK: u16 = 200;
pub const NOT_NEEDED: u16 = 202;
pub const SYSTEM_STATUS: u16 = 211;
pub const DIRECTORY_STATUS: u16 = 212;
pub const FILE_STATUS: u16 = 213;
pub const HELP: u16 = 214;
pub const SYSTEM_TYPE: u16 = 215;
pub const READY: u16 = 220;
pub const GOODBYE: u16 = 221;
pub const ABORT_OK: u16 = 225;
pub const TRANSFER_COMPLETE: u16 = 226;
pub const PASSIVE: u16 = 227;
pub const EXTENDED_PASSIVE: u16 = 229;
pub const LOGGED_IN: u16 = 230;
pub const FILE_ACTION_OK: u16 = 250;
pub const PATH_CREATED: u16 = 257;
pub const NEED_PASSWORD: u16 = 331;
pub const PENDING_FURTHER_INFO: u16 = 350;
pub const SERVICE_NOT_AVAILABLE: u16 = 421;
pub const CANT_OPEN_DATA: u16 = 425;
pub const TRANSFER_ABORTED: u16 = 426;
pub const LOCAL_ERROR: u16 = 451;
pub const INSUFFICIENT_STORAGE: u16 = 452;
pub const SYNTAX_ERROR: u16 = 500;
pub const BAD_ARGUMENT: u16 = 501;
pub const NOT_IMPLEMENTED: u16 = 502;
pub const BAD_SEQUENCE: u16 = 503;
pub const PARAMETER_NOT_IMPLEMENTED: u16 = 504;
pub const BAD_NETWORK_PROTOCOL: u16 = 522;
pub const NOT_LOGGED_IN: u16 = 530;
pub const FILE_UNAVAILABLE: u16 = 550;
pub const EXCEEDED_STORAGE: u16 = 552;
pub const BAD_FILE_NAME: u16 = 553;

/// Appends `code text\r\n`.
pub fn push(out: &mut Vec<u8>, code: u16, text: &str) {
    push_code(out, code, b' ');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a multi-line reply: `code-first`, then each body line as given (callers indent them
/// with a space, as RFC 2389 asks of FEAT), then `code last`.
pub fn push_multi(out: &mut Vec<u8>, code: u16, first: &str, body: &[&str], last: &str) {
    push_code(out, code, b'-');
    out.extend_from_slice(first.as_bytes());
    out.extend_from_slice(b"\r\n");
    for line in body {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    push(out, code, last);
}

/// Appends `code` and the separator: `-` opens a multi-line reply, ` ` ends a reply.
pub fn push_code(out: &mut Vec<u8>, code: u16, separator: u8) {
    let digits = [
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ];
    out.extend_from_slice(&digits);
    out.push(separator);
}

/// Appends a path in double quotes for 257 replies, doubling embedded quotes (RFC 959 appendix II).
pub fn push_quoted_path(out: &mut Vec<u8>, path: &[u8]) {
    out.push(b'"');
    for &b in path {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The one mapping of file system errors to replies: missing or forbidden is 550 (every command,
/// as rclone and others expect), a full disk or quota is 452/552, anything else a local error.
pub fn for_io_error(err: &io::Error) -> (u16, &'static str) {
    match err.raw_os_error() {
        Some(libc::ENOSPC) => (INSUFFICIENT_STORAGE, "Insufficient storage space."),
        Some(libc::EDQUOT) => (EXCEEDED_STORAGE, "Disk quota exceeded."),
        Some(libc::EFBIG) => (EXCEEDED_STORAGE, "File too large."),
        Some(libc::ENAMETOOLONG) => (BAD_FILE_NAME, "File name too long."),
        Some(libc::EEXIST) => (FILE_UNAVAILABLE, "File exists."),
        Some(libc::ENOTEMPTY) => (FILE_UNAVAILABLE, "Directory not empty."),
        Some(libc::EISDIR) => (FILE_UNAVAILABLE, "Is a directory."),
        Some(libc::ENOTDIR) => (FILE_UNAVAILABLE, "Not a directory."),
        Some(libc::ENOENT) => (FILE_UNAVAILABLE, "No such file or directory."),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
            (FILE_UNAVAILABLE, "Permission denied.")
        }
        // SECURITY: a path that would leave the root reads as if it did not exist.
        Some(libc::EXDEV) | Some(libc::ELOOP) => (FILE_UNAVAILABLE, "No such file or directory."),
        _ => match err.kind() {
            io::ErrorKind::NotFound => (FILE_UNAVAILABLE, "No such file or directory."),
            io::ErrorKind::PermissionDenied => (FILE_UNAVAILABLE, "Permission denied."),
            io::ErrorKind::InvalidInput => (FILE_UNAVAILABLE, "Invalid file name."),
            _ => (LOCAL_ERROR, "Local error in processing."),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        let mut out = Vec::new();
        push(&mut out, READY, "leanftpd ready.");
        assert_eq!(out, b"220 leanftpd ready.\r\n");
    }

    #[test]
    fn multi_line_marks_first_with_dash_and_last_with_space() {
        let mut out = Vec::new();
        push_multi(
            &mut out,
            SYSTEM_STATUS,
            "Features:",
            &[" MDTM", " SIZE"],
            "End",
        );
        assert_eq!(out, b"211-Features:\r\n MDTM\r\n SIZE\r\n211 End\r\n");
    }

    #[test]
    fn quoted_path_doubles_quotes() {
        let mut out = Vec::new();
        push_quoted_path(&mut out, b"/a \"b\"");
        assert_eq!(out, b"\"/a \"\"b\"\"\"");
    }

    #[test]
    fn io_errors_map_to_codes() {
        let code = |e: i32| for_io_error(&io::Error::from_raw_os_error(e)).0;
        assert_eq!(code(libc::ENOENT), 550);
        assert_eq!(code(libc::EACCES), 550);
        assert_eq!(code(libc::EXDEV), 550);
        assert_eq!(code(libc::ENOSPC), 452);
        assert_eq!(code(libc::EDQUOT), 552);
        assert_eq!(code(libc::EIO), 451);
    }
}
