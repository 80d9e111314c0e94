//! Command lines: framing bytes from the control connection into lines, and parsing a line into
//! a `Command`. No I/O, no session state. Read RFC 959 sections 4.1 and 5.3, RFC 1123 4.1.2,
//! RFC 2428 (EPRT/EPSV), RFC 3659 (SIZE, MDTM, REST, MLST), RFC 2389 (FEAT, OPTS), RFC 854 (Telnet).
//!
//! Arguments borrow from the line: parsing allocates nothing. Paths are raw bytes (RFC 2640
//! UTF-8 in practice, but any byte but NUL, CR and LF is a valid Unix file name).

use std::net::{SocketAddr, SocketAddrV4};

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
    Mfmt { mtime: i64, path: &'a [u8] },
    SiteHelp,
    /// SITE CHMOD octal-mode path.
    SiteChmod { mode: u32, path: &'a [u8] },
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
    let _ = line;
    todo!("command::parse")
}

/// A command line longer than `config::MAX_LINE_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Frames the control connection's byte stream into lines. Holds bytes only while a partial
/// line (or lines the session has not taken yet) waits; an idle session holds no buffer.
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: Vec<u8>,
}

impl LineFramer {
    /// Appends bytes read from the socket.
    pub fn push(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// The next complete line, cleaned in place: ends at LF, a CR before it removed, Telnet
    /// sequences removed (IAC IAC is a literal 0xFF; IAC IP, IAC DM and other IAC x pairs vanish;
    /// a bare DM byte from urgent data is dropped), CR NUL read as CR. `Ok(None)` while no LF has
    /// arrived; `Err(LineTooLong)` when a line, or buffered bytes without LF, exceed
    /// `MAX_LINE_BYTES`. Does not consume: call `consume_line` once the line was handled.
    pub fn peek_line(&mut self) -> Result<Option<&[u8]>, LineTooLong> {
        todo!("LineFramer::peek_line")
    }

    /// Drops the line last returned by `peek_line`; frees the buffer once it is empty.
    pub fn consume_line(&mut self) {
        todo!("LineFramer::consume_line")
    }

    /// True when bytes are buffered (a partial line or lines not yet taken).
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }
}
