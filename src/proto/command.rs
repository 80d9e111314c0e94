//! Command lines: framing bytes from the control connection into lines, and parsing a line into
//! a `Command`. No I/O, no session state. Read RFC 959 sections 4.1 and 5.3, RFC 1123 4.1.2,
//! RFC 2428 (EPRT/EPSV), RFC 3659 (SIZE, MDTM, REST, MLST), RFC 2389 (FEAT, OPTS), RFC 854 (Telnet).
//!
//! Arguments borrow from the line: parsing allocates nothing. Paths are raw bytes (RFC 2640
//! UTF-8 in practice, but any byte but NUL, CR and LF is a valid Unix file name).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::config::MAX_LINE_BYTES;

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
    /// CLNT client-name (FileZilla-era clients announce themselves).
    Clnt,
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
    Allo,
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
/// Verbs are case-insensitive; a trailing space after an argument-less verb is tolerated.
pub fn parse(line: &[u8]) -> Result<Command<'_>, ParseError> {
    // RFC 959 5.3: the verb ends at the first space, one space separates it from the argument.
    let (verb, arg) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &line[line.len()..]),
    };
    // Every verb is 3 or 4 letters; upper-case it on the stack (old clients send lowercase).
    let mut upper = [0u8; 4];
    for (dst, src) in upper.iter_mut().zip(verb) {
        *dst = src.to_ascii_uppercase();
    }
    let verb = upper.get(..verb.len()).ok_or(ParseError::Unknown)?;

    let command = match verb {
        b"USER" => Command::User(required(trim(arg))?),
        // An empty password is a valid password (anonymous clients often send none).
        b"PASS" => Command::Pass(arg),
        // Argument-less verbs ignore whatever follows: some clients send "PWD " or "ALLO 1234".
        b"ACCT" => Command::Acct,
        b"QUIT" => Command::Quit,
        b"NOOP" => Command::Noop,
        b"SYST" => Command::Syst,
        b"FEAT" => Command::Feat,
        b"CLNT" => Command::Clnt,
        b"ALLO" => Command::Allo,
        b"PWD" | b"XPWD" => Command::Pwd,
        b"CDUP" | b"XCUP" => Command::Cdup,
        b"PASV" => Command::Pasv,
        b"ABOR" => Command::Abor,
        b"OPTS" => Command::Opts(required(trim(arg))?),
        b"HELP" => Command::Help(trim(arg)),
        b"TYPE" => Command::Type(transfer_type(trim(arg))?),
        b"MODE" => one_letter(trim(arg), b'S', b"BC", Command::Mode)?,
        b"STRU" => one_letter(trim(arg), b'F', b"RP", Command::Stru)?,
        b"PORT" => Command::Port(port(trim(arg))?),
        b"EPRT" => Command::Eprt(eprt(trim(arg))?),
        b"EPSV" => Command::Epsv(epsv(trim(arg))?),
        b"REST" => Command::Rest(decimal(trim(arg)).ok_or(ParseError::Syntax)?),
        b"CWD" | b"XCWD" => Command::Cwd(path(arg)?),
        b"RETR" => Command::Retr(path(arg)?),
        b"STOR" => Command::Stor(path(arg)?),
        b"APPE" => Command::Appe(path(arg)?),
        b"RNFR" => Command::Rnfr(path(arg)?),
        b"RNTO" => Command::Rnto(path(arg)?),
        b"DELE" => Command::Dele(path(arg)?),
        b"RMD" | b"XRMD" => Command::Rmd(path(arg)?),
        b"MKD" | b"XMKD" => Command::Mkd(path(arg)?),
        b"SIZE" => Command::Size(path(arg)?),
        b"MDTM" => Command::Mdtm(path(arg)?),
        // These take an optional argument: empty means "none" (current directory, server status).
        b"STOU" => Command::Stou(optional_path(arg)?),
        b"LIST" => Command::List(optional_path(arg)?),
        b"NLST" => Command::Nlst(optional_path(arg)?),
        b"MLSD" => Command::Mlsd(optional_path(arg)?),
        b"MLST" => Command::Mlst(optional_path(arg)?),
        b"STAT" => Command::Stat(optional_path(arg)?),
        b"MFMT" => mfmt(arg)?,
        b"SITE" => site(arg)?,
        // Verbs from RFC 959 and its extensions that this server knows of but does not run.
        b"SMNT" | b"REIN" | b"LPRT" | b"LPSV" | b"AUTH" | b"ADAT" | b"PBSZ" | b"PROT" | b"CCC"
        | b"CONF" | b"ENC" | b"MIC" | b"LANG" | b"HOST" | b"MLFL" | b"MAIL" | b"MSND" | b"MSOM"
        | b"MSAM" | b"MRSQ" | b"MRCP" | b"XSEN" | b"XSEM" | b"XRSQ" | b"XRCP" => {
            return Err(ParseError::NotImplemented)
        }
        _ => return Err(ParseError::Unknown),
    };
    Ok(command)
}

/// Removes surrounding spaces (and tabs) from a keyword or number argument.
fn trim(arg: &[u8]) -> &[u8] {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = arg.iter().position(|b| !is_blank(b)).unwrap_or(arg.len());
    let end = arg
        .iter()
        .rposition(|b| !is_blank(b))
        .map_or(start, |last| last + 1);
    arg.get(start..end).unwrap_or_default()
}

fn required(arg: &[u8]) -> Result<&[u8], ParseError> {
    if arg.is_empty() {
        Err(ParseError::Syntax)
    } else {
        Ok(arg)
    }
}

/// A path may be empty here (meaning "none"), but a NUL can never be part of a Unix path, and
/// RFC 959 pathnames exclude CR and LF (a name with CR could not be shown in a reply).
fn optional_path(arg: &[u8]) -> Result<&[u8], ParseError> {
    if arg.contains(&0) || arg.contains(&b'\r') {
        Err(ParseError::Syntax)
    } else {
        Ok(arg)
    }
}

/// A path argument, verbatim: names may begin or end with spaces.
fn path(arg: &[u8]) -> Result<&[u8], ParseError> {
    required(optional_path(arg)?)
}

/// A non-empty run of ASCII digits as a number; `None` on anything else or on overflow.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// MODE and STRU: one letter we support, letters RFC 959 defines that we do not.
fn one_letter(
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
fn transfer_type(arg: &[u8]) -> Result<TransferType, ParseError> {
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
fn port(arg: &[u8]) -> Result<SocketAddrV4, ParseError> {
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
fn eprt(arg: &[u8]) -> Result<SocketAddr, ParseError> {
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
fn epsv(arg: &[u8]) -> Result<EpsvArg, ParseError> {
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

/// SITE HELP and SITE CHMOD are the SITE subcommands we run; others are 502.
fn site(arg: &[u8]) -> Result<Command<'_>, ParseError> {
    let (subcommand, rest) = word_and_rest(arg);
    if subcommand.is_empty() {
        Err(ParseError::Syntax)
    } else if subcommand.eq_ignore_ascii_case(b"HELP") {
        Ok(Command::SiteHelp)
    } else if subcommand.eq_ignore_ascii_case(b"CHMOD") {
        let (mode, path_arg) = word_and_rest(rest);
        let mode = octal_mode(mode).ok_or(ParseError::Syntax)?;
        Ok(Command::SiteChmod {
            mode,
            path: path(path_arg)?,
        })
    } else {
        Err(ParseError::NotImplemented)
    }
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

/// MFMT time-val path (draft-somers-ftp-mfxx), time in UTC.
fn mfmt(arg: &[u8]) -> Result<Command<'_>, ParseError> {
    let (time, path_arg) = word_and_rest(arg);
    Ok(Command::Mfmt {
        mtime: time_val(time).ok_or(ParseError::Syntax)?,
        path: path(path_arg)?,
    })
}

/// RFC 3659 2.3 time-val: YYYYMMDDHHMMSS[.sss] in UTC, as seconds since the Unix epoch.
/// Ranges as the RFC gives them: year 1000-9999, second 00-60 (60 only at a leap second, which
/// Unix time cannot name: it reads as the next minute's 00). The fraction is ignored.
fn time_val(text: &[u8]) -> Option<i64> {
    let (digits, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b"0"[..]),
    };
    if digits.len() != 14 || decimal(fraction).is_none() {
        return None;
    }
    let field = |range: std::ops::Range<usize>| digits.get(range).and_then(decimal);
    let year = field(0..4)?;
    let month = field(4..6)?;
    let day = field(6..8)?;
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    let valid = (1000..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return None;
    }
    // All fields are bounded above, so these conversions and products cannot overflow.
    let days = days_from_civil(i64::try_from(year).ok()?, month, day);
    let seconds = hour * 3600 + minute * 60 + second;
    Some(days * 86_400 + i64::try_from(seconds).ok()?)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
/// Expects a validated date with year >= 1000, month 1-12.
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    // Count years from March, so the leap day is the last day of the "year".
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month as i64 + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A command line longer than `config::MAX_LINE_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

// RFC 854 Telnet command bytes that FTP clients send on the control connection.
const IAC: u8 = 0xFF;
const DM: u8 = 0xF2;
const WILL: u8 = 0xFB;
const DONT: u8 = 0xFE;
/// Lowest Telnet command byte (SE); IAC followed by anything lower is not a Telnet command.
const FIRST_COMMAND: u8 = 0xF0;

/// Where the framer is inside a Telnet sequence; kept across pushes since a sequence may be split.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    #[default]
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the next byte is the option code.
    Option,
}

/// Frames the control connection's byte stream into lines. Holds bytes only while a partial
/// line (or lines the session has not taken yet) waits; an idle session holds no buffer.
///
/// The current line is always at the front of `buf`. It is cleaned in place as bytes arrive:
/// `buf[..cleaned]` is the cleaned text so far, `buf[scanned..]` is raw input not yet looked at
/// (cleaning only ever drops bytes, so the write position never overtakes the read position).
/// Each byte is looked at once, however the input is split across pushes.
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Raw bytes of the current line already cleaned.
    scanned: usize,
    /// Length of the cleaned text at the front of `buf`.
    cleaned: usize,
    telnet: Telnet,
    /// Set once the LF arrived: (cleaned length, raw length including the LF).
    line: Option<(usize, usize)>,
}

impl LineFramer {
    /// Appends bytes read from the socket.
    pub fn push(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// The next complete line, cleaned in place: ends at LF, a CR before it removed, Telnet
    /// sequences removed (IAC IAC is a literal 0xFF; IAC IP, IAC DM and other IAC x pairs vanish,
    /// IAC WILL/WONT/DO/DONT x triples too; IAC before a non-command byte is kept as it is), a DM
    /// byte before the verb dropped (left behind when urgent data took its IAC), CR NUL read as
    /// CR. `Ok(None)` while no LF has arrived; `Err(LineTooLong)` when a line, or buffered bytes
    /// without LF, exceed `MAX_LINE_BYTES`. Does not consume: call `consume_line` once the line
    /// was handled. Calling it again before that returns the same line.
    pub fn peek_line(&mut self) -> Result<Option<&[u8]>, LineTooLong> {
        if self.line.is_none() {
            self.scan()?;
        }
        Ok(self
            .line
            .map(|(cleaned, _)| self.buf.get(..cleaned).unwrap_or_default()))
    }

    /// Drops the line last returned by `peek_line`; frees the buffer once it is empty.
    pub fn consume_line(&mut self) {
        let Some((_, raw)) = self.line.take() else {
            return;
        };
        self.buf.drain(..raw.min(self.buf.len()));
        if self.buf.is_empty() {
            // Give the memory back: an idle session should hold no heap.
            self.buf = Vec::new();
        }
        self.scanned = 0;
        self.cleaned = 0;
        self.telnet = Telnet::Data;
    }

    /// True when bytes are buffered (a partial line or lines not yet taken).
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// True when `peek_line` returned a line that was not consumed yet (the session holds a
    /// command until a transfer ends).
    pub fn has_line(&self) -> bool {
        self.line.is_some()
    }

    /// Cleans raw bytes until a line is complete or the input runs out.
    fn scan(&mut self) -> Result<(), LineTooLong> {
        while let Some(&byte) = self.buf.get(self.scanned) {
            // MAX_LINE_BYTES counts the raw line with its CRLF.
            if self.scanned >= MAX_LINE_BYTES {
                return Err(LineTooLong);
            }
            self.scanned += 1;
            match self.telnet {
                Telnet::Data => self.data(byte),
                Telnet::Iac => {
                    self.telnet = Telnet::Data;
                    match byte {
                        IAC => self.write(IAC),
                        WILL..=DONT => self.telnet = Telnet::Option,
                        // IP, AO, AYT, DM, NOP...: nothing to do for a server that runs
                        // commands in order (ABOR follows on the same line stream).
                        FIRST_COMMAND.. => {}
                        // Not Telnet: a client sending a raw 0xFF in a name. Keep both bytes.
                        _ => {
                            self.write(IAC);
                            self.data(byte);
                        }
                    }
                }
                Telnet::Option => self.telnet = Telnet::Data,
            }
            if self.line.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// One byte outside any Telnet sequence.
    fn data(&mut self, byte: u8) {
        let after_cr = self.cleaned > 0 && self.buf.get(self.cleaned - 1) == Some(&b'\r');
        match byte {
            b'\n' => {
                // CRLF or bare LF (netcat, some scripts): one CR before the LF is not content.
                let end = if after_cr {
                    self.cleaned - 1
                } else {
                    self.cleaned
                };
                self.line = Some((end, self.scanned));
            }
            IAC => self.telnet = Telnet::Iac,
            // RFC 854: CR NUL is a bare CR.
            0 if after_cr => {}
            // BSD ftp sends IAC IP IAC(urgent) DM "ABOR": without SO_OOBINLINE the kernel takes
            // the urgent IAC away and the DM lands before the verb. Inside a line it may be part
            // of a name, so only drop it there.
            DM if self.cleaned == 0 => {}
            _ => self.write(byte),
        }
    }

    fn write(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.cleaned) {
            *slot = byte;
            self.cleaned += 1;
        }
    }
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
            (b"CLNT FileZilla", Ok(Command::Clnt)),
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
            // Known verbs we do not run: 502 rather than 500 (AUTH: no TLS yet).
            (b"SMNT /", Err(NotImplemented)),
            (b"REIN", Err(NotImplemented)),
            (b"LPRT 4,4,1,2,3,4,2,1,1", Err(NotImplemented)),
            (b"AUTH TLS", Err(NotImplemented)),
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
    fn time_values() {
        let mtime = |text: &[u8]| time_val(text);
        assert_eq!(mtime(b"19700101000000"), Some(0));
        assert_eq!(mtime(b"20000229000000"), Some(951_782_400));
        assert_eq!(mtime(b"19691231235959"), Some(-1));
        assert_eq!(mtime(b"99991231235959"), Some(253_402_300_799));
        // RFC 3659 allows second 60 for a leap second; Unix time reads it as the next minute.
        assert_eq!(mtime(b"19700101000060"), Some(60));
        // 1900 and 2100 are not leap years, 2000 is.
        assert_eq!(mtime(b"19000229000000"), None);
        assert_eq!(mtime(b"21000229000000"), None);
        assert_eq!(mtime(b"09991231000000"), None);
        assert_eq!(mtime(b"20241301000000"), None);
        assert_eq!(mtime(b"20240431000000"), None);
        assert_eq!(mtime(b"20240101240000"), None);
        assert_eq!(mtime(b"2024010112000a"), None);
    }

    type Lines = Result<Vec<Vec<u8>>, LineTooLong>;

    /// Pushes `input` in pieces of `step` bytes, taking every line as soon as it is complete.
    fn frame(input: &[u8], step: usize) -> Lines {
        let mut framer = LineFramer::default();
        let mut lines = Vec::new();
        for chunk in input.chunks(step) {
            framer.push(chunk);
            while let Some(line) = framer.peek_line()? {
                lines.push(line.to_vec());
                framer.consume_line();
            }
        }
        Ok(lines)
    }

    fn lines(list: &[&[u8]]) -> Lines {
        Ok(list.iter().map(|line| line.to_vec()).collect())
    }

    #[test]
    fn framing_table() {
        let cases: &[(&[u8], Lines)] = &[
            // CRLF per RFC 959, bare LF from netcat and scripts.
            (b"USER a\r\nPASS b\n", lines(&[b"USER a", b"PASS b"])),
            // No LF yet: nothing to run.
            (b"NOOP\r", lines(&[])),
            // Only one CR before LF is line ending; a second one is content.
            (b"RETR a\r\r\n", lines(&[b"RETR a\r"])),
            // Telnet CR NUL is a bare CR; CR NUL LF still ends the line.
            (b"RETR a\r\0b\r\0\n", lines(&[b"RETR a\rb"])),
            // A NUL that does not follow CR stays (and the parser rejects it in a path).
            (b"RETR a\0b\n", lines(&[b"RETR a\0b"])),
            // IAC IAC is one literal 0xFF (a Latin-1 'y with diaeresis' in a name).
            (b"RETR \xff\xffa\r\n", lines(&[b"RETR \xffa"])),
            // RFC 959 4.1.3 abort as BSD ftp and lftp send it: IAC IP, IAC DM, then ABOR.
            (b"\xff\xf4\xff\xf2ABOR\r\n", lines(&[b"ABOR"])),
            // BSD ftp without SO_OOBINLINE: the urgent IAC was taken, a bare DM is left.
            (b"\xff\xf4\xf2ABOR\r\n", lines(&[b"ABOR"])),
            // A DM byte inside a line may be part of a name: kept.
            (b"RETR a\xf2b\r\n", lines(&[b"RETR a\xf2b"])),
            // IAC DO <option> is three bytes, even when the option byte is 0x0A.
            (b"\xff\xfd\nNOOP\r\n", lines(&[b"NOOP"])),
            (b"\xff\xfb\x01NOOP\r\n", lines(&[b"NOOP"])),
            // IAC before a non-command byte is not Telnet: both bytes kept.
            (b"RETR \xffa\r\n", lines(&[b"RETR \xffa"])),
            (b"RETR \xff\n", lines(&[b"RETR \xff"])),
            (b"\n\r\n", lines(&[b"", b""])),
        ];
        for (input, expected) in cases {
            for step in [1, 2, 3, input.len()] {
                assert_eq!(
                    frame(input, step),
                    *expected,
                    "input {:?} step {step}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn peek_twice_returns_the_same_line() {
        let mut framer = LineFramer::default();
        framer.push(b"CWD \xff\xffx\r\0\r\nPWD");
        assert_eq!(framer.peek_line(), Ok(Some(&b"CWD \xffx\r"[..])));
        assert_eq!(framer.peek_line(), Ok(Some(&b"CWD \xffx\r"[..])));
        // More input after a complete line does not change it.
        framer.push(b"\r\n");
        assert_eq!(framer.peek_line(), Ok(Some(&b"CWD \xffx\r"[..])));
        framer.consume_line();
        assert_eq!(framer.peek_line(), Ok(Some(&b"PWD"[..])));
        framer.consume_line();
        assert_eq!(framer.peek_line(), Ok(None));
    }

    #[test]
    fn consume_without_a_line_keeps_the_partial_line() {
        let mut framer = LineFramer::default();
        framer.push(b"NO");
        assert_eq!(framer.peek_line(), Ok(None));
        framer.consume_line();
        framer.push(b"OP\n");
        assert_eq!(framer.peek_line(), Ok(Some(&b"NOOP"[..])));
    }

    #[test]
    fn buffer_is_freed_when_empty() {
        let mut framer = LineFramer::default();
        assert!(!framer.has_pending());
        framer.push(b"NOOP\r\nNO");
        assert!(framer.has_pending());
        assert_eq!(framer.peek_line(), Ok(Some(&b"NOOP"[..])));
        framer.consume_line();
        // A partial line is still waiting.
        assert!(framer.has_pending());
        framer.push(b"OP\r\n");
        assert_eq!(framer.peek_line(), Ok(Some(&b"NOOP"[..])));
        framer.consume_line();
        assert!(!framer.has_pending());
        assert_eq!(framer.buf.capacity(), 0);
    }

    #[test]
    fn line_length_limit() {
        // A line of exactly MAX_LINE_BYTES, CRLF included, is accepted.
        let mut line = vec![b'a'; MAX_LINE_BYTES - 2];
        line.extend_from_slice(b"\r\n");
        assert_eq!(frame(&line, 1000).map(|l| l.len()), Ok(1));
        // One byte more is refused, whether the LF came or not.
        let mut long = vec![b'a'; MAX_LINE_BYTES - 1];
        long.extend_from_slice(b"\r\n");
        assert_eq!(frame(&long, 1000), Err(LineTooLong));
        assert_eq!(frame(&long, long.len()), Err(LineTooLong));
        let mut framer = LineFramer::default();
        framer.push(&vec![b'a'; MAX_LINE_BYTES]);
        assert_eq!(framer.peek_line(), Ok(None));
        framer.push(b"a");
        assert_eq!(framer.peek_line(), Err(LineTooLong));
        // And it stays refused: the session closes, it must not see a line from the tail.
        framer.push(b"\r\n");
        assert_eq!(framer.peek_line(), Err(LineTooLong));
        // A short line followed by an over-long one: the short one still runs first.
        let mut framer = LineFramer::default();
        framer.push(b"NOOP\r\n");
        framer.push(&vec![b'a'; MAX_LINE_BYTES + 1]);
        assert_eq!(framer.peek_line(), Ok(Some(&b"NOOP"[..])));
        framer.consume_line();
        assert_eq!(framer.peek_line(), Err(LineTooLong));
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
