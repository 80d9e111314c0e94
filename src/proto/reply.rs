//! Replies: the codes named by meaning, the one renderer of reply lines, and the one mapping of
//! file system errors to codes. A reply is `code text\r\n`, or a multi-line reply whose first
//! line is `code-text` and whose last is `code text`. Every reply the server sends is rendered
//! here (the session's, and the 421 the loop writes to a connection it refuses or closes), so
//! the rule that keeps a reply one reply holds everywhere: texts are bytes (file names are
//! bytes), and a CR or LF in them becomes a space, so a name cannot forge a reply line.
//!
//! Must not touch: what to reply (the session decides), sockets, the file system (errors are
//! handed in). Read RFC 959 section 4.2 (reply format and codes) and 5.4 (which codes each
//! command may answer), RFC 2389 3.2 (the FEAT reply), RFC 3659 (213, 550 for SIZE/MDTM).

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
/// RFC 4217: AUTH accepted; the handshake follows.
pub const AUTH_OK: u16 = 234;
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
/// RFC 4217: the data connection must be protected first (PROT P).
pub const DATA_PROTECTION_REQUIRED: u16 = 521;
/// RFC 2428 EPSV/EPRT protocol refused; RFC 4217 (as vsftpd uses it): the data connection's
/// TLS session is not acceptable.
pub const BAD_NETWORK_PROTOCOL: u16 = 522;
pub const NOT_LOGGED_IN: u16 = 530;
/// RFC 2228: the request is denied for policy reasons (PROT C under --tls-required all, CCC).
pub const POLICY_DENIED: u16 = 534;
/// RFC 2228: the protection level is not supported (PROT S, PROT E).
pub const PROTECTION_NOT_SUPPORTED: u16 = 536;
pub const FILE_UNAVAILABLE: u16 = 550;
pub const EXCEEDED_STORAGE: u16 = 552;
pub const BAD_FILE_NAME: u16 = 553;

/// Appends `code text\r\n`.
pub fn push(out: &mut Vec<u8>, code: u16, text: impl AsRef<[u8]>) {
    push_code(out, code, b' ');
    push_text(out, text.as_ref());
    out.extend_from_slice(b"\r\n");
}

/// Appends a multi-line reply: `code-first`, then each body line as given (callers indent them
/// with a space, as RFC 2389 asks of FEAT), then `code last`.
pub fn push_multi<B: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    code: u16,
    first: impl AsRef<[u8]>,
    body: &[B],
    last: impl AsRef<[u8]>,
) {
    push_first(out, code, first);
    for line in body {
        push_line(out, line);
    }
    push(out, code, last);
}

/// Appends `code-text\r\n`, the first line of a multi-line reply whose body is made piece by
/// piece (a STAT listing as the connection drains): then `push_line` for each body line and
/// `push` for the last line.
pub fn push_first(out: &mut Vec<u8>, code: u16, text: impl AsRef<[u8]>) {
    push_code(out, code, b'-');
    push_text(out, text.as_ref());
    out.extend_from_slice(b"\r\n");
}

/// Appends one body line of a multi-line reply. A line that would begin with a digit gets a
/// space in front (RFC 959 4.2: `226 ...` inside a body could be read as the reply's end).
pub fn push_line(out: &mut Vec<u8>, line: impl AsRef<[u8]>) {
    let line = line.as_ref();
    if line.first().is_some_and(u8::is_ascii_digit) {
        out.push(b' ');
    }
    push_text(out, line);
    out.extend_from_slice(b"\r\n");
}

/// A whole single-line reply, for a caller that writes it straight to a socket (the loop's 421
/// to a connection over the limits, or to a session it closes on an internal error).
pub fn render(code: u16, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 6);
    push(&mut out, code, text);
    out
}

/// Appends `code` and the separator: `-` opens a multi-line reply, ` ` ends a reply.
fn push_code(out: &mut Vec<u8>, code: u16, separator: u8) {
    let digits = [
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ];
    out.extend_from_slice(&digits);
    out.push(separator);
}

/// Appends reply text; CR and LF become spaces, so no text can end the reply line early, and
/// a 0xFF byte (Telnet IAC, in a file name) goes out doubled, as RFC 959 and RFC 854 ask and as
/// the framer undoubles it on the way in.
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        match b {
            b'\r' | b'\n' => out.push(b' '),
            IAC => out.extend_from_slice(&[IAC, IAC]),
            _ => out.push(b),
        }
    }
}

/// Telnet's "interpret as command" byte.
const IAC: u8 = 0xff;

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

    /// Moved from session.rs with the function it tested (`push_reply_text`, now `push_text`).
    #[test]
    fn reply_text_cannot_carry_a_line_break() {
        let mut out = Vec::new();
        push_text(&mut out, b"a\r\n226 fake");
        assert_eq!(out, b"a  226 fake");
    }

    #[test]
    fn texts_are_bytes_and_cannot_carry_a_line_break() {
        let mut out = Vec::new();
        push(&mut out, FILE_STATUS, b"a\r\n550 forged\xff");
        assert_eq!(out, b"213 a  550 forged\xff\xff\r\n");
        let mut out = Vec::new();
        let body: &[&[u8]] = &[b" x\ny", b"226 looks like an end"];
        push_multi(&mut out, FILE_STATUS, b"Status of /a\rb:", body, b"End\n");
        assert_eq!(
            out,
            b"213-Status of /a b:\r\n x y\r\n 226 looks like an end\r\n213 End \r\n"
        );
        // An empty body is a two-line reply; an empty text leaves the code and its space.
        let mut out = Vec::new();
        push_multi::<&str>(&mut out, HELP, "a", &[], "b");
        push(&mut out, OK, "");
        assert_eq!(out, b"214-a\r\n214 b\r\n200 \r\n");
    }

    #[test]
    fn a_body_made_piece_by_piece_is_the_same_reply() {
        let mut whole = Vec::new();
        push_multi(
            &mut whole,
            FILE_STATUS,
            "Status of /:",
            &[" a", "1 b"],
            "End.",
        );
        let mut pieces = Vec::new();
        push_first(&mut pieces, FILE_STATUS, "Status of /:");
        push_line(&mut pieces, " a");
        push_line(&mut pieces, b"1 b");
        push(&mut pieces, FILE_STATUS, "End.");
        assert_eq!(whole, pieces);
        assert_eq!(whole, b"213-Status of /:\r\n a\r\n 1 b\r\n213 End.\r\n");
    }

    #[test]
    fn render_is_one_whole_reply() {
        assert_eq!(
            render(SERVICE_NOT_AVAILABLE, "Too many users, try again later."),
            b"421 Too many users, try again later.\r\n"
        );
        assert_eq!(render(SERVICE_NOT_AVAILABLE, "x\r\ny"), b"421 x  y\r\n");
    }

    #[test]
    fn iac_is_doubled_in_every_kind_of_line() {
        let mut out = Vec::new();
        push(&mut out, PATH_CREATED, b"\"/a\xffb\" created.");
        push_first(&mut out, FILE_STATUS, b"\xff");
        push_line(&mut out, b" x\xff");
        assert_eq!(
            out,
            b"257 \"/a\xff\xffb\" created.\r\n213-\xff\xff\r\n x\xff\xff\r\n"
        );
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
