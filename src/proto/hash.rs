//! The checksum commands' protocol: the algorithms by their IANA "Hash Function Textual Names"
//! (what `HASH`, `OPTS HASH` and FEAT say), and the argument grammar of the older X-verbs
//! (`XCRC`, `XMD5`, `XSHA1`, `XSHA256`, `XSHA512`). Computing a hash is transfer/checksum.rs.
//!
//! Must not touch: files, session state, I/O. Read draft-bryan-ftpext-hash-02 sections 3 (HASH,
//! FEAT, OPTS HASH) and appendix B (the X-verbs: `XCRC <name> [SP EP]`, GlobalSCAPE's and
//! ProFTPD mod_digest's form, which clients such as WinSCP and SmartFTP send).

use super::command::{decimal, ParseError};

/// A checksum algorithm the server computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
    Sha1,
    Md5,
    Crc32,
}

impl Algorithm {
    /// Every algorithm, in the order FEAT lists them.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Sha256,
        Algorithm::Sha512,
        Algorithm::Sha1,
        Algorithm::Md5,
        Algorithm::Crc32,
    ];

    /// The IANA name, as HASH replies and FEAT announce it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512 => "SHA-512",
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Md5 => "MD5",
            Algorithm::Crc32 => "CRC32",
        }
    }

    /// The algorithm for an IANA name in any case (the draft: comparisons are case-insensitive).
    pub fn from_name(name: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// The FEAT line (draft section 3.1): every algorithm, the session's `selected` one with `*`.
pub fn feat_line(selected: Algorithm) -> String {
    let mut line = String::from(" HASH ");
    for (i, algorithm) in Algorithm::ALL.into_iter().enumerate() {
        if i > 0 {
            line.push(';');
        }
        line.push_str(algorithm.name());
        if algorithm == selected {
            line.push('*');
        }
    }
    line
}

/// A byte range `start..end` (end exclusive).
pub type Range = (u64, u64);

/// The argument of an X-verb: the path, and the byte range `start..end` when one was given.
///
/// - `"name"` / `"name" END` / `"name" START END`: quoted, any name (spaces, digits) is safe;
///   END alone means `0..END` (GlobalSCAPE's form).
/// - `name` / `name START END`: unquoted, the last two words are a range when both are numbers
///   (as ProFTPD reads it); a name that itself ends in two numbers must be quoted.
///
/// END is exclusive (ProFTPD: the range is `START..END`, `END - START` bytes), and must be past
/// START: anything else is 501.
pub fn x_argument(arg: &[u8]) -> Result<(&[u8], Option<Range>), ParseError> {
    if let Some(quoted) = arg.strip_prefix(b"\"") {
        let close = quoted
            .iter()
            .position(|&b| b == b'"')
            .ok_or(ParseError::Syntax)?;
        let (path, rest) = (&quoted[..close], &quoted[close + 1..]);
        let numbers: Vec<&[u8]> = rest
            .split(|&b| b == b' ')
            .filter(|word| !word.is_empty())
            .collect();
        let range = match numbers.as_slice() {
            [] => None,
            [end] => Some((0, number(end)?)),
            [start, end] => Some((number(start)?, number(end)?)),
            _ => return Err(ParseError::Syntax),
        };
        return Ok((required_path(path)?, checked(range)?));
    }
    let mut words = arg.rsplitn(3, |&b| b == b' ');
    if let (Some(end), Some(start), Some(path)) = (words.next(), words.next(), words.next()) {
        if let (Some(start), Some(end)) = (decimal(start), decimal(end)) {
            return Ok((required_path(path)?, checked(Some((start, end)))?));
        }
    }
    Ok((required_path(arg)?, None))
}

fn number(word: &[u8]) -> Result<u64, ParseError> {
    decimal(word).ok_or(ParseError::Syntax)
}

fn checked(range: Option<Range>) -> Result<Option<Range>, ParseError> {
    match range {
        Some((start, end)) if start >= end => Err(ParseError::Syntax),
        range => Ok(range),
    }
}

/// RFC 959 pathnames: never empty, no NUL (a Unix path cannot hold one) and no CR.
fn required_path(path: &[u8]) -> Result<&[u8], ParseError> {
    if path.is_empty() || path.contains(&0) || path.contains(&b'\r') {
        Err(ParseError::Syntax)
    } else {
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_any_case() {
        for algorithm in Algorithm::ALL {
            assert_eq!(
                Algorithm::from_name(algorithm.name().as_bytes()),
                Some(algorithm)
            );
        }
        assert_eq!(Algorithm::from_name(b"sha-512"), Some(Algorithm::Sha512));
        assert_eq!(Algorithm::from_name(b"Md5"), Some(Algorithm::Md5));
        // The draft's own example of an unknown name, and names without the IANA dash.
        assert_eq!(Algorithm::from_name(b"CRC-37"), None);
        assert_eq!(Algorithm::from_name(b"SHA256"), None);
        assert_eq!(Algorithm::from_name(b""), None);
    }

    #[test]
    fn feat_line_marks_the_selected_algorithm() {
        assert_eq!(
            feat_line(Algorithm::Sha256),
            " HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32"
        );
        assert_eq!(
            feat_line(Algorithm::Crc32),
            " HASH SHA-256;SHA-512;SHA-1;MD5;CRC32*"
        );
    }

    #[test]
    fn x_argument_forms() {
        use ParseError::Syntax;
        type Parsed<'a> = Result<(&'a [u8], Option<Range>), ParseError>;
        let cases: &[(&[u8], Parsed)] = &[
            (b"file", Ok((b"file", None))),
            // Unquoted names keep their spaces; two trailing numbers are a range.
            (b"a b.txt", Ok((b"a b.txt", None))),
            (b"a b 0 100", Ok((b"a b", Some((0, 100))))),
            (b"f 10 20", Ok((b"f", Some((10, 20))))),
            // One trailing number is part of an unquoted name ("track 01").
            (b"track 01", Ok((b"track 01", None))),
            (b"f x 20", Ok((b"f x 20", None))),
            // Quoted: GlobalSCAPE's `XCRC "/dir/file.exe" 0 42575`, and END alone.
            (
                b"\"/a b/c.exe\" 0 42575",
                Ok((b"/a b/c.exe", Some((0, 42575)))),
            ),
            (b"\"x 1 2\"", Ok((b"x 1 2", None))),
            (b"\"f\" 500", Ok((b"f", Some((0, 500))))),
            (b"\"f\"  5  9 ", Ok((b"f", Some((5, 9))))),
            // Bad ranges: empty or backwards, words that are not numbers, too many.
            (b"f 20 20", Err(Syntax)),
            (b"f 30 20", Err(Syntax)),
            (b"\"f\" 0", Err(Syntax)),
            (b"\"f\" x", Err(Syntax)),
            (b"\"f\" -1 5", Err(Syntax)),
            (b"\"f\" 1 2 3", Err(Syntax)),
            (b"\"f\" 0 18446744073709551616", Err(Syntax)),
            (b"\"unclosed 0 5", Err(Syntax)),
            (b"\"\"", Err(Syntax)),
            (b"", Err(Syntax)),
            (b"a\0b", Err(Syntax)),
        ];
        for (arg, expected) in cases {
            assert_eq!(
                x_argument(arg),
                *expected,
                "{:?}",
                String::from_utf8_lossy(arg)
            );
        }
    }
}
