//! Parsing one command line into a `Command`: the argument grammar of every verb we run and the
//! `ParseError` (one reply code each) for what we do not. The lines come from `framer`, which
//! already removed line ends and Telnet sequences.
//!
//! Must not touch: framing (`framer`), the RFC 3659 time format (`time` parses it for MFMT),
//! replies, session state, I/O. Read RFC 959 sections 4.1 and 5.3, RFC 1123 4.1.2, RFC 2428
//! (EPRT/EPSV), RFC 3659 (SIZE, MDTM, REST, MLST), RFC 2389 (FEAT, OPTS).
//!
//! Arguments borrow from the line: parsing allocates nothing. Paths are raw bytes (RFC 2640
//! UTF-8 in practice, but any byte but NUL, CR and LF is a valid Unix file name).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use super::hash::Algorithm;
use super::time;
use super::verb::{self, Verb};

// The framer was part of this file; callers still find it here.
pub use super::framer::{LineFramer, LineTooLong};

/// One parsed command line. Path arguments are the raw bytes after the verb and its single
/// separating space (file names may contain or end with spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    User(&'a [u8]),
    Pass(&'a [u8]),
    Acct,
    Quit,
    Noop,
    Syst,
    Feat,
    /// RFC 2389 OPTS: the whole argument, e.g. `UTF8 ON`, `MLST type;size;`.
    Opts(&'a [u8]),
    /// HELP with an optional topic (may be empty).
    Help(&'a [u8]),
    /// CLNT client-name (lftp, NcFTP, FileZilla-era clients announce themselves).
    Clnt(&'a [u8]),
    Type(TransferType),
    /// MODE S only; others are `ParseError::Unsupported`.
    Mode,
    /// STRU F only; others are `ParseError::Unsupported`.
    Stru,
    Pwd,
    Cwd(&'a [u8]),
    Cdup,
    Pasv,
    Epsv(EpsvArg),
    Port(SocketAddrV4),
    Eprt(SocketAddr),
    Retr(&'a [u8]),
    Stor(&'a [u8]),
    /// STOU with an optional name hint (may be empty).
    Stou(&'a [u8]),
    Appe(&'a [u8]),
    Rest(u64),
    Rnfr(&'a [u8]),
    Rnto(&'a [u8]),
    Abor,
    Dele(&'a [u8]),
    Rmd(&'a [u8]),
    Mkd(&'a [u8]),
    /// LIST with its raw argument (ls options such as `-la` still in it; may be empty).
    List(&'a [u8]),
    Nlst(&'a [u8]),
    Mlsd(&'a [u8]),
    Mlst(&'a [u8]),
    /// STAT with an optional path (empty: server status).
    Stat(&'a [u8]),
    Size(&'a [u8]),
    Mdtm(&'a [u8]),
    /// MFMT YYYYMMDDHHMMSS path: set the modification time (UTC seconds since the epoch).
    Mfmt {
        mtime: i64,
        path: &'a [u8],
    },
    SiteHelp,
    /// SITE CHMOD octal-mode path.
    SiteChmod {
        mode: u32,
        path: &'a [u8],
    },
    /// SITE PROBE what path: the sandbox's test probe (cargo feature `sandbox-probe` only).
    #[cfg(feature = "sandbox-probe")]
    SiteProbe {
        what: &'a [u8],
        path: &'a [u8],
    },
    Allo,
    /// RFC 4217 AUTH: the security mechanism, e.g. `TLS` (any case, not yet checked).
    Auth(&'a [u8]),
    /// RFC 4217 PBSZ: the protection buffer size (0 for TLS).
    Pbsz,
    /// RFC 4217 PROT: the data channel protection level, one letter in upper case.
    Prot(u8),
    /// RFC 4217 CCC: clear the control channel (refused).
    Ccc,
    /// draft-bryan-ftpext-hash HASH path: the session's selected algorithm, the whole file.
    Hash(&'a [u8]),
    /// XCRC, XMD5, XSHA1, XSHA256, XSHA512: one algorithm each, optionally a byte range
    /// `start..end` (`hash::x_argument`).
    XHash {
        algorithm: Algorithm,
        path: &'a [u8],
        range: Option<(u64, u64)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// TYPE A or TYPE A N: LF <-> CRLF on the wire.
    Ascii,
    /// TYPE I or TYPE L 8: bytes as they are.
    Image,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// EPSV with no argument.
    Any,
    /// EPSV 1 or EPSV 2: the network protocol the client asks for.
    Protocol(u8),
    /// EPSV ALL: from now on refuse PORT, EPRT and PASV.
    All,
}

/// Why a line is not a command we run; each maps to one reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// 500: no such verb (or an empty line).
    Unknown,
    /// 502: a verb we know of but do not implement (e.g. SMNT, REIN, SITE EXEC).
    NotImplemented,
    /// 501: the verb is right, the argument is missing or malformed.
    Syntax,
    /// 504: a parameter we do not support (MODE B, STRU R, TYPE E).
    Unsupported,
    /// 522: EPRT/EPSV with a network protocol other than 1 (IPv4) or 2 (IPv6).
    UnsupportedProtocol,
}

impl ParseError {
    pub fn code(self) -> u16 {
        match self {
            ParseError::Unknown => 500,
            ParseError::NotImplemented => 502,
            ParseError::Syntax => 501,
            ParseError::Unsupported => 504,
            ParseError::UnsupportedProtocol => 522,
        }
    }
}

/// Parses one line (without its line ending, Telnet commands already removed by the framer).
/// Verbs are case-insensitive (old clients send lowercase) and looked up in `verb::VERBS`; a
/// trailing space after an argument-less verb is tolerated.
pub fn parse(line: &[u8]) -> Result<Command<'_>, ParseError> {
    // RFC 959 5.3: the verb ends at the first space, one space separates it from the argument.
    let (name, arg) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &line[line.len()..]),
    };
    match verb::find(verb::VERBS, name) {
        Some(verb) => (verb.parse)(arg),
        None if verb::is_not_implemented(name) => Err(ParseError::NotImplemented),
        None => Err(ParseError::Unknown),
    }
}

impl Command<'_> {
    /// The table row this command was parsed from: the login and permission gates read its
    /// flags. The X-verbs (XPWD, ...) answer with their RFC 959 verb's row (a test checks the
    /// flags agree). Each name is looked up at compile time: a missing row does not build.
    pub fn verb(&self) -> &'static Verb {
        macro_rules! row {
            ($table:ident, $name:literal) => {
                const { verb::named(verb::$table, $name) }
            };
        }
        match self {
            Command::User(_) => row!(VERBS, "USER"),
            Command::Pass(_) => row!(VERBS, "PASS"),
            Command::Acct => row!(VERBS, "ACCT"),
            Command::Quit => row!(VERBS, "QUIT"),
            Command::Noop => row!(VERBS, "NOOP"),
            Command::Syst => row!(VERBS, "SYST"),
            Command::Feat => row!(VERBS, "FEAT"),
            Command::Opts(_) => row!(VERBS, "OPTS"),
            Command::Help(_) => row!(VERBS, "HELP"),
            Command::Clnt(_) => row!(VERBS, "CLNT"),
            Command::Type(_) => row!(VERBS, "TYPE"),
            Command::Mode => row!(VERBS, "MODE"),
            Command::Stru => row!(VERBS, "STRU"),
            Command::Pwd => row!(VERBS, "PWD"),
            Command::Cwd(_) => row!(VERBS, "CWD"),
            Command::Cdup => row!(VERBS, "CDUP"),
            Command::Pasv => row!(VERBS, "PASV"),
            Command::Epsv(_) => row!(VERBS, "EPSV"),
            Command::Port(_) => row!(VERBS, "PORT"),
            Command::Eprt(_) => row!(VERBS, "EPRT"),
            Command::Retr(_) => row!(VERBS, "RETR"),
            Command::Stor(_) => row!(VERBS, "STOR"),
            Command::Stou(_) => row!(VERBS, "STOU"),
            Command::Appe(_) => row!(VERBS, "APPE"),
            Command::Rest(_) => row!(VERBS, "REST"),
            Command::Rnfr(_) => row!(VERBS, "RNFR"),
            Command::Rnto(_) => row!(VERBS, "RNTO"),
            Command::Abor => row!(VERBS, "ABOR"),
            Command::Dele(_) => row!(VERBS, "DELE"),
            Command::Rmd(_) => row!(VERBS, "RMD"),
            Command::Mkd(_) => row!(VERBS, "MKD"),
            Command::List(_) => row!(VERBS, "LIST"),
            Command::Nlst(_) => row!(VERBS, "NLST"),
            Command::Mlsd(_) => row!(VERBS, "MLSD"),
            Command::Mlst(_) => row!(VERBS, "MLST"),
            Command::Stat(_) => row!(VERBS, "STAT"),
            Command::Size(_) => row!(VERBS, "SIZE"),
            Command::Mdtm(_) => row!(VERBS, "MDTM"),
            Command::Mfmt { .. } => row!(VERBS, "MFMT"),
            Command::SiteHelp => row!(SITE_VERBS, "HELP"),
            Command::SiteChmod { .. } => row!(SITE_VERBS, "CHMOD"),
            #[cfg(feature = "sandbox-probe")]
            Command::SiteProbe { .. } => row!(SITE_VERBS, "PROBE"),
            Command::Allo => row!(VERBS, "ALLO"),
            Command::Auth(_) => row!(VERBS, "AUTH"),
            Command::Pbsz => row!(VERBS, "PBSZ"),
            Command::Prot(_) => row!(VERBS, "PROT"),
            Command::Ccc => row!(VERBS, "CCC"),
            Command::Hash(_) => row!(VERBS, "HASH"),
            Command::XHash { algorithm, .. } => match algorithm {
                Algorithm::Crc32 => row!(VERBS, "XCRC"),
                Algorithm::Md5 => row!(VERBS, "XMD5"),
                Algorithm::Sha1 => row!(VERBS, "XSHA1"),
                Algorithm::Sha256 => row!(VERBS, "XSHA256"),
                Algorithm::Sha512 => row!(VERBS, "XSHA512"),
            },
        }
    }
}

/// Removes surrounding spaces (and tabs) from a keyword or number argument.
pub(super) fn trim(arg: &[u8]) -> &[u8] {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = arg.iter().position(|b| !is_blank(b)).unwrap_or(arg.len());
    let end = arg
        .iter()
        .rposition(|b| !is_blank(b))
        .map_or(start, |last| last + 1);
    arg.get(start..end).unwrap_or_default()
}

pub(super) fn required(arg: &[u8]) -> Result<&[u8], ParseError> {
    if arg.is_empty() {
        Err(ParseError::Syntax)
    } else {
        Ok(arg)
    }
}

/// A path may be empty here (meaning "none"), but a NUL can never be part of a Unix path, and
/// RFC 959 pathnames exclude CR and LF (a name with CR could not be shown in a reply).
pub(super) fn optional_path(arg: &[u8]) -> Result<&[u8], ParseError> {
    if arg.contains(&0) || arg.contains(&b'\r') {
        Err(ParseError::Syntax)
    } else {
        Ok(arg)
    }
}

/// A path argument, verbatim: names may begin or end with spaces.
pub(super) fn path(arg: &[u8]) -> Result<&[u8], ParseError> {
    required(optional_path(arg)?)
}

/// A non-empty run of ASCII digits as a number; `None` on anything else or on overflow.
pub(super) fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// MODE and STRU: one letter we support, letters RFC 959 defines that we do not.
pub(super) fn one_letter(
    arg: &[u8],
    supported: u8,
    unsupported: &[u8],
    command: Command<'static>,
) -> Result<Command<'static>, ParseError> {
    match arg {
        [letter] if letter.to_ascii_uppercase() == supported => Ok(command),
        [letter] if unsupported.contains(&letter.to_ascii_uppercase()) => {
            Err(ParseError::Unsupported)
        }
        _ => Err(ParseError::Syntax),
    }
}

/// RFC 959 TYPE: `A [N]`, `I`, `L 8`. Other forms RFC 959 defines are 504, garbage is 501.
pub(super) fn transfer_type(arg: &[u8]) -> Result<TransferType, ParseError> {
    let mut words = arg.split(|&b| b == b' ').filter(|word| !word.is_empty());
    let (code, param) = (words.next(), words.next());
    if words.next().is_some() {
        return Err(ParseError::Syntax);
    }
    let upper = |word: &[u8]| match word {
        [letter] => Some(letter.to_ascii_uppercase()),
        _ => None,
    };
    let Some(code) = code.and_then(upper) else {
        return Err(ParseError::Syntax);
    };
    match (code, param) {
        (b'A', None) => Ok(TransferType::Ascii),
        (b'I', None) => Ok(TransferType::Image),
        (b'A' | b'E', Some(format)) => match upper(format) {
            Some(b'N') if code == b'A' => Ok(TransferType::Ascii),
            // Telnet and ASA carriage control formats, or EBCDIC in any format.
            Some(b'N' | b'T' | b'C') => Err(ParseError::Unsupported),
            _ => Err(ParseError::Syntax),
        },
        (b'E', None) => Err(ParseError::Unsupported),
        // Local byte size: only 8-bit bytes are plain binary.
        (b'L', Some(size)) => match decimal(size) {
            Some(8) => Ok(TransferType::Image),
            Some(_) => Err(ParseError::Unsupported),
            None => Err(ParseError::Syntax),
        },
        _ => Err(ParseError::Syntax),
    }
}

/// RFC 959 PORT h1,h2,h3,h4,p1,p2: six decimal bytes.
pub(super) fn port(arg: &[u8]) -> Result<SocketAddrV4, ParseError> {
    let mut bytes = [0u8; 6];
    let mut fields = arg.split(|&b| b == b',');
    for byte in bytes.iter_mut() {
        let field = fields.next().ok_or(ParseError::Syntax)?;
        let value = decimal(field).ok_or(ParseError::Syntax)?;
        *byte = u8::try_from(value).map_err(|_| ParseError::Syntax)?;
    }
    if fields.next().is_some() {
        return Err(ParseError::Syntax);
    }
    let [h1, h2, h3, h4, p1, p2] = bytes;
    // Port 0 cannot be connected to: reject it here like EPRT does.
    match u16::from_be_bytes([p1, p2]) {
        0 => Err(ParseError::Syntax),
        port => Ok(SocketAddrV4::new(Ipv4Addr::new(h1, h2, h3, h4), port)),
    }
}

/// RFC 2428 EPRT <d>proto<d>address<d>port<d>, where the first byte is the delimiter.
pub(super) fn eprt(arg: &[u8]) -> Result<SocketAddr, ParseError> {
    let (&delimiter, rest) = arg.split_first().ok_or(ParseError::Syntax)?;
    // RFC 2428 2: the delimiter is printable ASCII (33-126); a digit would make fields ambiguous.
    if !delimiter.is_ascii_graphic() || delimiter.is_ascii_digit() {
        return Err(ParseError::Syntax);
    }
    let fields: Vec<&[u8]> = rest.split(|&b| b == delimiter).collect();
    let [protocol, address, port, b""] = fields.as_slice() else {
        return Err(ParseError::Syntax);
    };
    let protocol = decimal(protocol).ok_or(ParseError::Syntax)?;
    let port = decimal(port)
        .and_then(|port| u16::try_from(port).ok())
        .filter(|&port| port != 0)
        .ok_or(ParseError::Syntax)?;
    let address = std::str::from_utf8(address).map_err(|_| ParseError::Syntax)?;
    let ip = match protocol {
        1 => IpAddr::V4(address.parse().map_err(|_| ParseError::Syntax)?),
        2 => IpAddr::V6(address.parse().map_err(|_| ParseError::Syntax)?),
        _ => return Err(ParseError::UnsupportedProtocol),
    };
    Ok(SocketAddr::new(ip, port))
}

/// RFC 2428 EPSV [1 | 2 | ALL].
pub(super) fn epsv(arg: &[u8]) -> Result<EpsvArg, ParseError> {
    if arg.is_empty() {
        Ok(EpsvArg::Any)
    } else if arg.eq_ignore_ascii_case(b"ALL") {
        Ok(EpsvArg::All)
    } else if arg.iter().all(u8::is_ascii_digit) {
        match decimal(arg) {
            Some(1) => Ok(EpsvArg::Protocol(1)),
            Some(2) => Ok(EpsvArg::Protocol(2)),
            // RFC 2428 3: an unknown network protocol gets 522, not 501.
            _ => Err(ParseError::UnsupportedProtocol),
        }
    } else {
        Err(ParseError::Syntax)
    }
}

/// Splits `<word> <rest>` for keyword arguments (`OPTS UTF8 ON`): the word, and the rest with
/// its surrounding spaces and tabs removed.
pub fn split_word(arg: &[u8]) -> (&[u8], &[u8]) {
    let (word, rest) = word_and_rest(arg);
    (word, trim(rest))
}

/// Splits `<word> <rest>`: leading spaces before the word are skipped, exactly one space after
/// it is removed and the rest (a path) is left verbatim.
fn word_and_rest(arg: &[u8]) -> (&[u8], &[u8]) {
    let arg = arg
        .get(arg.iter().take_while(|&&b| b == b' ').count()..)
        .unwrap_or_default();
    match arg.iter().position(|&b| b == b' ') {
        Some(space) => (&arg[..space], &arg[space + 1..]),
        None => (arg, &arg[arg.len()..]),
    }
}

/// SITE: the subcommand is looked up in `verb::SITE_VERBS` (case-insensitive); others are 502.
pub(super) fn site(arg: &[u8]) -> Result<Command<'_>, ParseError> {
    let (subcommand, rest) = word_and_rest(arg);
    if subcommand.is_empty() {
        return Err(ParseError::Syntax);
    }
    match verb::find(verb::SITE_VERBS, subcommand) {
        Some(verb) => (verb.parse)(rest),
        None => Err(ParseError::NotImplemented),
    }
}

/// SITE CHMOD octal-mode path.
pub(super) fn site_chmod(arg: &[u8]) -> Result<Command<'_>, ParseError> {
    let (mode, path_arg) = word_and_rest(arg);
    let mode = octal_mode(mode).ok_or(ParseError::Syntax)?;
    Ok(Command::SiteChmod {
        mode,
        path: path(path_arg)?,
    })
}

/// SITE PROBE what [path] (cargo feature `sandbox-probe` only).
#[cfg(feature = "sandbox-probe")]
pub(super) fn site_probe(arg: &[u8]) -> Result<Command<'_>, ParseError> {
    let (what, path) = word_and_rest(arg);
    Ok(Command::SiteProbe { what, path })
}

/// An octal permission mode, at most 0o7777 (setuid, setgid, sticky and rwx bits).
fn octal_mode(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    let mode = digits.iter().try_fold(0u32, |n, &b| {
        let digit = char::from(b).to_digit(8)?;
        n.checked_mul(8)?.checked_add(digit)
    })?;
    (mode <= 0o7777).then_some(mode)
}

/// An X-verb's argument (`hash::x_argument`) for `algorithm`.
pub(super) fn x_hash(arg: &[u8], algorithm: Algorithm) -> Result<Command<'_>, ParseError> {
    let (path, range) = super::hash::x_argument(arg)?;
    Ok(Command::XHash {
        algorithm,
        path,
        range,
    })
}

/// MFMT time-val path (draft-somers-ftp-mfxx), time in UTC.
pub(super) fn mfmt(arg: &[u8]) -> Result<Command<'_>, ParseError> {
    let (time, path_arg) = word_and_rest(arg);
    Ok(Command::Mfmt {
        mtime: time::parse_timeval(time).ok_or(ParseError::Syntax)?,
        path: path(path_arg)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, SocketAddrV6};

    use ParseError::{NotImplemented, Syntax, Unknown, Unsupported, UnsupportedProtocol};

    fn v4(a: [u8; 4], port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(a), port)
    }

    #[test]
    fn parser_quirks() {
        let cases: &[(&[u8], Result<Command, ParseError>)] = &[
            // Old clients (and people typing into telnet) send lowercase verbs.
            (b"user anonymous", Ok(Command::User(b"anonymous"))),
            (b"Retr file", Ok(Command::Retr(b"file"))),
            // Some clients send "PWD " or "SYST " with a trailing space.
            (b"PWD ", Ok(Command::Pwd)),
            (b"SYST ", Ok(Command::Syst)),
            (b"QUIT", Ok(Command::Quit)),
            // RFC 775 X-verbs are still sent by old Windows ftp.exe.
            (b"XPWD", Ok(Command::Pwd)),
            (b"XCWD /pub", Ok(Command::Cwd(b"/pub"))),
            (b"XCUP", Ok(Command::Cdup)),
            (b"XMKD d", Ok(Command::Mkd(b"d"))),
            (b"XRMD d", Ok(Command::Rmd(b"d"))),
            // ACCT, ALLO and CLNT carry an argument we have no use for.
            (b"ALLO 123456", Ok(Command::Allo)),
            (b"ACCT billing", Ok(Command::Acct)),
            (b"CLNT FileZilla", Ok(Command::Clnt(b"FileZilla"))),
            // Anonymous logins often send an empty password; passwords keep their spaces.
            (b"PASS", Ok(Command::Pass(b""))),
            (b"PASS  secret ", Ok(Command::Pass(b" secret "))),
            (b"USER", Err(Syntax)),
            // File names may begin or end with spaces: only the separator is removed.
            (b"RETR  a b ", Ok(Command::Retr(b" a b "))),
            (b"CWD", Err(Syntax)),
            (b"DELE ", Err(Syntax)),
            // A NUL cannot be part of a Unix path (CR NUL already became CR in the framer).
            (b"RETR a\0b", Err(Syntax)),
            // LIST keeps ls options: many clients send "LIST -la" or "LIST -a".
            (b"LIST -la", Ok(Command::List(b"-la"))),
            (b"LIST", Ok(Command::List(b""))),
            (b"NLST ", Ok(Command::Nlst(b""))),
            (b"MLSD", Ok(Command::Mlsd(b""))),
            (b"STAT", Ok(Command::Stat(b""))),
            (b"STOU", Ok(Command::Stou(b""))),
            (b"HELP ", Ok(Command::Help(b""))),
            (b"OPTS UTF8 ON", Ok(Command::Opts(b"UTF8 ON"))),
            // ABOR arrives bare once the framer removed BSD ftp's IAC IP / IAC DM prefix.
            (b"ABOR", Ok(Command::Abor)),
            // TYPE: the forms that mean ASCII or binary, case-insensitive, spaces tolerated.
            (b"TYPE I", Ok(Command::Type(TransferType::Image))),
            (b"type i ", Ok(Command::Type(TransferType::Image))),
            (b"TYPE A", Ok(Command::Type(TransferType::Ascii))),
            (b"TYPE a n", Ok(Command::Type(TransferType::Ascii))),
            (b"TYPE L 8", Ok(Command::Type(TransferType::Image))),
            // Defined by RFC 959 but not supported: 504, so clients can fall back.
            (b"TYPE A T", Err(Unsupported)),
            (b"TYPE A C", Err(Unsupported)),
            (b"TYPE E", Err(Unsupported)),
            (b"TYPE L 7", Err(Unsupported)),
            (b"TYPE L 16", Err(Unsupported)),
            // Nonsense is a syntax error.
            (b"TYPE", Err(Syntax)),
            (b"TYPE X", Err(Syntax)),
            (b"TYPE I N", Err(Syntax)),
            (b"TYPE L", Err(Syntax)),
            (b"TYPE A N X", Err(Syntax)),
            (b"MODE S", Ok(Command::Mode)),
            (b"mode s ", Ok(Command::Mode)),
            (b"MODE B", Err(Unsupported)),
            (b"MODE Z", Err(Syntax)),
            (b"STRU F", Ok(Command::Stru)),
            (b"STRU R", Err(Unsupported)),
            (b"STRU", Err(Syntax)),
            (
                b"PORT 127,0,0,1,4,1",
                Ok(Command::Port(v4([127, 0, 0, 1], 1025))),
            ),
            (
                b"PORT  10,0,0,2,0,21 ",
                Ok(Command::Port(v4([10, 0, 0, 2], 21))),
            ),
            // A field over 255 is not a byte: 501, never a wrapped address.
            (b"PORT 300,0,0,1,4,1", Err(Syntax)),
            (b"PORT 127,0,0,1,4", Err(Syntax)),
            (b"PORT 127,0,0,1,4,1,1", Err(Syntax)),
            (b"PORT 127,0,0,1,4,", Err(Syntax)),
            (b"PORT 127,0,0,1,+4,1", Err(Syntax)),
            (b"PORT 127,0,0,1,0,0", Err(Syntax)),
            // EPRT with IPv4 and IPv6, and a delimiter other than "|" (RFC 2428 allows any).
            (
                b"EPRT |1|132.235.1.2|6275|",
                Ok(Command::Eprt(SocketAddr::V4(v4([132, 235, 1, 2], 6275)))),
            ),
            (
                b"EPRT |2|::1|5282|",
                Ok(Command::Eprt(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::LOCALHOST,
                    5282,
                    0,
                    0,
                )))),
            ),
            (
                b"EPRT !1!10.0.0.1!21!",
                Ok(Command::Eprt(SocketAddr::V4(v4([10, 0, 0, 1], 21)))),
            ),
            (b"EPRT |3|1.2.3.4|21|", Err(UnsupportedProtocol)),
            (b"EPRT |1|::1|21|", Err(Syntax)),
            (b"EPRT |2|1.2.3.4|21|", Err(Syntax)),
            (b"EPRT |1|1.2.3.4|0|", Err(Syntax)),
            (b"EPRT |1|1.2.3.4|65536|", Err(Syntax)),
            (b"EPRT |1|1.2.3.4|21", Err(Syntax)),
            (b"EPRT |1|1.2.3.4|21||", Err(Syntax)),
            (b"EPRT 111.2.3.4121", Err(Syntax)),
            (b"EPRT", Err(Syntax)),
            (b"EPSV", Ok(Command::Epsv(EpsvArg::Any))),
            (b"EPSV 2", Ok(Command::Epsv(EpsvArg::Protocol(2)))),
            (b"epsv all", Ok(Command::Epsv(EpsvArg::All))),
            (b"EPSV 3", Err(UnsupportedProtocol)),
            (b"EPSV 99999999999999999999999", Err(UnsupportedProtocol)),
            (b"EPSV x", Err(Syntax)),
            // Files over 4 GiB resume past u32.
            (b"REST 5000000000", Ok(Command::Rest(5_000_000_000))),
            (b"REST 0", Ok(Command::Rest(0))),
            (b"REST -1", Err(Syntax)),
            (b"REST 18446744073709551616", Err(Syntax)),
            (b"REST", Err(Syntax)),
            (b"SITE HELP", Ok(Command::SiteHelp)),
            (
                b"site chmod 755 a b",
                Ok(Command::SiteChmod {
                    mode: 0o755,
                    path: b"a b",
                }),
            ),
            (
                b"SITE CHMOD 4755  lead",
                Ok(Command::SiteChmod {
                    mode: 0o4755,
                    path: b" lead",
                }),
            ),
            (b"SITE CHMOD 755", Err(Syntax)),
            (b"SITE CHMOD 789 f", Err(Syntax)),
            (b"SITE CHMOD 17777 f", Err(Syntax)),
            (b"SITE", Err(Syntax)),
            (b"SITE EXEC ls", Err(NotImplemented)),
            (
                b"MFMT 20240101120000 f",
                Ok(Command::Mfmt {
                    mtime: 1_704_110_400,
                    path: b"f",
                }),
            ),
            // The optional fraction of a second is accepted and ignored.
            (
                b"MFMT 19700101000000.123 f",
                Ok(Command::Mfmt {
                    mtime: 0,
                    path: b"f",
                }),
            ),
            (b"MFMT 20230229000000 f", Err(Syntax)),
            (b"MFMT 2024010112000 f", Err(Syntax)),
            (b"MFMT 20240101120000", Err(Syntax)),
            (b"MFMT 20240101120000. f", Err(Syntax)),
            // Known verbs we do not run: 502 rather than 500.
            (b"SMNT /", Err(NotImplemented)),
            (b"REIN", Err(NotImplemented)),
            (b"LPRT 4,4,1,2,3,4,2,1,1", Err(NotImplemented)),
            // RFC 4217: the mechanism and level are checked by the session; the grammar here.
            (b"auth tls", Ok(Command::Auth(b"tls"))),
            (b"AUTH", Err(Syntax)),
            (b"PBSZ 0", Ok(Command::Pbsz)),
            (b"PBSZ", Err(Syntax)),
            (b"PBSZ x", Err(Syntax)),
            (b"PROT p", Ok(Command::Prot(b'P'))),
            (b"PROT", Err(Syntax)),
            (b"PROT PP", Err(Unsupported)),
            (b"CCC", Ok(Command::Ccc)),
            // Checksums: HASH takes a path verbatim; the X-verbs take an optional range.
            (b"HASH  a b", Ok(Command::Hash(b" a b"))),
            (b"HASH", Err(Syntax)),
            (
                b"xsha256 \"f g\" 0 10",
                Ok(Command::XHash {
                    algorithm: Algorithm::Sha256,
                    path: b"f g",
                    range: Some((0, 10)),
                }),
            ),
            (
                b"XCRC f",
                Ok(Command::XHash {
                    algorithm: Algorithm::Crc32,
                    path: b"f",
                    range: None,
                }),
            ),
            (b"XMD5 f 10 5", Err(Syntax)),
            (b"XSHA1", Err(Syntax)),
            // XSHA (SHA-1 under another name) is not one we announce: unknown.
            (b"XSHA f", Err(Unknown)),
            (b"", Err(Unknown)),
            (b" NOOP", Err(Unknown)),
            (b"FOOBAR", Err(Unknown)),
            (b"NOOP\t", Err(Unknown)),
            (b"\xff\xfe", Err(Unknown)),
        ];
        for (line, expected) in cases {
            assert_eq!(
                parse(line),
                *expected,
                "line {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn error_codes() {
        assert_eq!(Unknown.code(), 500);
        assert_eq!(NotImplemented.code(), 502);
        assert_eq!(Syntax.code(), 501);
        assert_eq!(Unsupported.code(), 504);
        assert_eq!(UnsupportedProtocol.code(), 522);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small xorshift generator: deterministic, no extra dependency. Biased towards the
        // bytes with meaning (CR, LF, NUL, IAC, Telnet commands, space, digits, '|', ',').
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b"\r\n\0\xff\xf2\xf4\xfb\xf0 |,.0125789AILNSTaEeFfPp";
        let verbs: &[&[u8]] = &[
            b"PORT ",
            b"EPRT ",
            b"EPSV ",
            b"TYPE ",
            b"SITE CHMOD ",
            b"MFMT ",
            b"REST ",
            b"RETR ",
            b"SITE ",
            b"MODE ",
            b"LIST ",
        ];
        let mut framer = LineFramer::default();
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut input = Vec::new();
            let pick = (state % verbs.len() as u64) as usize;
            if state % 3 == 0 {
                input.extend_from_slice(verbs[pick]);
            }
            for shift in 0..(state >> 60) {
                let byte = ((state >> (shift * 3)) % alphabet.len() as u64) as usize;
                input.push(alphabet[byte]);
            }
            let _ = parse(&input);
            framer.push(&input);
            match framer.peek_line() {
                Ok(Some(line)) => {
                    let _ = parse(line);
                    framer.consume_line();
                }
                Ok(None) => {}
                Err(LineTooLong) => framer = LineFramer::default(),
            }
        }
    }
}
