//! A raw FTP client on std sockets: replies read strictly (CRLF, code, multi-line), commands
//! as text or raw bytes, and data connections in every mode.
//!
//! Transfers come in two forms: the asserting ones (`get`, `put`, `retr`, `stor`, `nlst`,
//! `lines`: 150 then 226 or the test fails) and the fallible ones (`try_*`: a refusal is an
//! `Err(reply)` for the test to check).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::{accept_timeout, read_all, read_until_closed, tcp_connect, IO_TIMEOUT};

/// One FTP reply: its code, and its lines without CRLF (one for a single-line reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The whole reply text, lines joined by '\n'.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The first line after the code and its separator.
    pub fn msg(&self) -> &str {
        self.lines[0].get(4..).unwrap_or("")
    }

    /// True when the code is one of `codes`.
    pub fn is(&self, codes: &[u16]) -> bool {
        codes.contains(&self.code)
    }

    #[track_caller]
    pub fn expect(&self, code: u16) -> &Reply {
        assert_eq!(
            self.code, code,
            "expected {code}, got reply {:?}",
            self.lines
        );
        self
    }
}

/// How a data connection is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

pub const MODES: [Mode; 4] = [Mode::Pasv, Mode::Epsv, Mode::Port, Mode::Eprt];

/// A data connection being set up: already connected (passive) or to be accepted (active).
pub enum Data {
    Connected(TcpStream),
    Listening(TcpListener),
}

impl Data {
    /// The data stream: for active mode, accepts the server's connection (bounded).
    pub fn stream(self) -> TcpStream {
        match self {
            Data::Connected(s) => s,
            Data::Listening(l) => accept_timeout(&l, IO_TIMEOUT).expect("server connected back"),
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A raw FTP control connection with read and write timeouts: a test fails, it never hangs.
pub struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects and reads the greeting, which must be 220.
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Client {
        let mut c = Client::connect_raw(addr);
        let g = c.reply();
        assert_eq!(g.code, 220, "greeting: {:?}", g.lines);
        c
    }

    /// Connects without reading anything.
    pub fn connect_raw(addr: SocketAddr) -> Client {
        Client::from_stream(tcp_connect(addr))
    }

    /// A client on a connected stream (read and write timeouts set to IO_TIMEOUT).
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let _ = stream.set_nodelay(true);
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        Client { stream, reader }
    }

    /// The control connection's socket (for socket options, shutdown, raw writes).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    // ---- sending ----

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("sending {:?}: {e}", String::from_utf8_lossy(bytes)));
    }

    /// Sends `line` + CRLF.
    pub fn send(&mut self, line: &str) {
        self.send_line(line.as_bytes());
    }

    /// Sends raw bytes + CRLF.
    pub fn send_line(&mut self, line: &[u8]) {
        self.send_raw(&[line, b"\r\n"].concat());
    }

    // ---- replies ----

    /// One reply line without its CRLF. UnexpectedEof at EOF (nothing read); InvalidData for a
    /// line cut short by the close or not ended by CRLF; the socket's error on a timeout.
    fn read_line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let line = String::from_utf8_lossy(&buf).into_owned();
        match line.strip_suffix("\r\n") {
            Some(l) => Ok(l.to_string()),
            None => Err(invalid(format!("reply line not CRLF-ended: {line:?}"))),
        }
    }

    /// Reads one complete reply, every line CRLF-ended and the first `DDD ` or `DDD-`; the
    /// error that ended the read otherwise (InvalidData for a malformed reply; EOF is
    /// UnexpectedEof; a timeout is WouldBlock or TimedOut).
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let first = self.read_line()?;
        let b = first.as_bytes();
        if !(b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && matches!(b[3], b' ' | b'-')) {
            return Err(invalid(format!("malformed reply line {first:?}")));
        }
        let code: u16 = first[..3].parse().unwrap();
        let multi = b[3] == b'-';
        let mut lines = vec![first];
        if multi {
            let end = format!("{code} ");
            loop {
                let l = self.read_line()?;
                let done = l.starts_with(&end);
                lines.push(l);
                if done {
                    break;
                }
            }
        }
        Ok(Reply { code, lines })
    }

    /// Reads one complete reply; panics on EOF, timeout or a malformed reply.
    #[track_caller]
    pub fn reply(&mut self) -> Reply {
        self.read_reply()
            .unwrap_or_else(|e| panic!("reading a reply: {e}"))
    }

    /// Reads one complete reply, or None at EOF, reset or timeout; panics on a malformed reply.
    #[track_caller]
    pub fn try_reply(&mut self) -> Option<Reply> {
        match self.read_reply() {
            Ok(r) => Some(r),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => panic!("{e}"),
            Err(_) => None,
        }
    }

    /// Sends a command and reads its reply.
    #[track_caller]
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.cmd_bytes(line.as_bytes())
    }

    /// Sends a command line of raw bytes (CRLF added) and reads its reply.
    #[track_caller]
    pub fn cmd_bytes(&mut self, line: &[u8]) -> Reply {
        self.send_line(line);
        self.reply()
    }

    /// Sends a command and asserts the reply code.
    #[track_caller]
    pub fn expect(&mut self, line: &str, code: u16) -> Reply {
        let r = self.cmd(line);
        assert_eq!(r.code, code, "{line} -> {:?}", r.lines);
        r
    }

    /// PWD's whole reply, its code asserted: `257 "/a" is the current directory.`
    #[track_caller]
    pub fn pwd(&mut self) -> String {
        self.expect("PWD", 257).text()
    }

    #[track_caller]
    pub fn login(&mut self, user: &str, pass: &str) {
        self.expect(&format!("USER {user}"), 331);
        self.expect(&format!("PASS {pass}"), 230);
    }

    #[track_caller]
    pub fn login_anonymous(&mut self) {
        self.login("anonymous", "test@example.com");
    }

    /// Ok(bytes read) once the server closed the connection (EOF or reset); Err(bytes read)
    /// if it is still open after `timeout`.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let mut bytes = self.reader.buffer().to_vec();
        self.reader.consume(bytes.len());
        let closed = read_until_closed(&mut self.stream, timeout, &mut bytes);
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match closed {
            Ok(()) => Ok(bytes),
            Err(()) => Err(bytes),
        }
    }

    /// Reads until the server closes the connection and returns what came before; panics if
    /// it is still open after `timeout`.
    #[track_caller]
    pub fn expect_closed(&mut self, timeout: Duration) -> Vec<u8> {
        match self.wait_closed(timeout) {
            Ok(bytes) => bytes,
            Err(bytes) => panic!(
                "the server did not close the connection within {timeout:?}; it sent {:?}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }

    // ---- data connections ----

    /// PASV: asserts the exact 227 shape and the address 127.0.0.1; the announced address.
    #[track_caller]
    pub fn pasv_addr(&mut self) -> SocketAddr {
        let r = self.expect("PASV", 227);
        let (ip, port) = parse_227(&r.lines[0]);
        assert_eq!(ip, Ipv4Addr::LOCALHOST, "PASV address: {:?}", r.lines);
        SocketAddr::new(IpAddr::V4(ip), port)
    }

    /// PASV, then the data connection opened at once (before the transfer command).
    #[track_caller]
    pub fn pasv_connect(&mut self) -> TcpStream {
        let a = self.pasv_addr();
        tcp_connect(a)
    }

    /// EPSV: asserts the exact 229 shape; the announced port.
    #[track_caller]
    pub fn epsv_port(&mut self) -> u16 {
        let r = self.expect("EPSV", 229);
        parse_229(&r.lines[0])
    }

    /// EPSV, then the data connection opened at once, to the control connection's address.
    #[track_caller]
    pub fn epsv_connect(&mut self) -> TcpStream {
        let port = self.epsv_port();
        let peer = self.stream.peer_addr().expect("control connection's peer");
        tcp_connect(SocketAddr::new(peer.ip(), port))
    }

    /// PORT to a fresh listener on 127.0.0.1; 200 expected.
    #[track_caller]
    pub fn port(&mut self) -> TcpListener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        self.expect(&format!("PORT 127,0,0,1,{},{}", p >> 8, p & 0xff), 200);
        l
    }

    /// EPRT to a fresh listener on the control connection's address family; 200 expected.
    #[track_caller]
    pub fn eprt(&mut self) -> TcpListener {
        let local = self.stream.local_addr().unwrap().ip();
        let l = TcpListener::bind(SocketAddr::new(local, 0)).unwrap();
        let p = l.local_addr().unwrap().port();
        let (af, ip) = match local {
            IpAddr::V4(a) => (1, a.to_string()),
            IpAddr::V6(a) => (2, a.to_string()),
        };
        self.expect(&format!("EPRT |{af}|{ip}|{p}|"), 200);
        l
    }

    /// Prepares a data connection in `mode` (before the transfer command).
    #[track_caller]
    pub fn data(&mut self, mode: Mode) -> Data {
        match mode {
            Mode::Pasv => Data::Connected(self.pasv_connect()),
            Mode::Epsv => Data::Connected(self.epsv_connect()),
            Mode::Port => Data::Listening(self.port()),
            Mode::Eprt => Data::Listening(self.eprt()),
        }
    }

    // ---- transfers ----

    /// Runs a transfer `command` over a data connection prepared in `mode`: after 150 (or
    /// 125), `io` has the data stream; Ok(the preliminary reply, what `io` returned) after
    /// 226, Err(reply) when the command is refused or the transfer does not end with 226.
    #[track_caller]
    pub fn transfer<T>(
        &mut self,
        mode: Mode,
        command: &[u8],
        io: impl FnOnce(TcpStream) -> T,
    ) -> Result<(Reply, T), Reply> {
        let d = self.data(mode);
        let first = self.cmd_bytes(command);
        if !first.is(&[125, 150]) {
            return Err(first);
        }
        let out = io(d.stream());
        let done = self.reply();
        if done.code == 226 {
            Ok((first, out))
        } else {
            Err(done)
        }
    }

    /// A transfer command that sends data to us (RETR, LIST, NLST, MLSD): Ok(the bytes).
    #[track_caller]
    pub fn try_get(&mut self, mode: Mode, command: &[u8]) -> Result<Vec<u8>, Reply> {
        self.transfer(mode, command, |mut s| read_all(&mut s))
            .map(|(_, bytes)| bytes)
    }

    /// A transfer command that sends `data` to the server (STOR, APPE, STOU), then half-closes
    /// the data connection and waits for the server's close: Ok(the preliminary reply).
    #[track_caller]
    pub fn try_put(&mut self, mode: Mode, command: &[u8], data: &[u8]) -> Result<Reply, Reply> {
        self.transfer(mode, command, |mut s| {
            s.write_all(data).expect("write data");
            s.shutdown(Shutdown::Write).unwrap();
            // Wait for the server to close its side too.
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        })
        .map(|(first, ())| first)
    }

    /// `try_get` that must succeed: the bytes.
    #[track_caller]
    pub fn get(&mut self, mode: Mode, command: &str) -> Vec<u8> {
        self.try_get(mode, command.as_bytes())
            .unwrap_or_else(|r| panic!("{command} -> {:?} (expected 150, then 226)", r.lines))
    }

    /// `try_put` that must succeed: the preliminary reply.
    #[track_caller]
    pub fn put(&mut self, mode: Mode, command: &str, data: &[u8]) -> Reply {
        self.try_put(mode, command.as_bytes(), data)
            .unwrap_or_else(|r| panic!("{command} -> {:?} (expected 150, then 226)", r.lines))
    }

    /// TYPE I, then RETR.
    #[track_caller]
    pub fn retr(&mut self, mode: Mode, path: &str) -> Vec<u8> {
        self.expect("TYPE I", 200);
        self.get(mode, &format!("RETR {path}"))
    }

    /// TYPE I, then STOR.
    #[track_caller]
    pub fn stor(&mut self, mode: Mode, path: &str, data: &[u8]) {
        self.expect("TYPE I", 200);
        self.put(mode, &format!("STOR {path}"), data);
    }

    /// RETR over PASV in the current TYPE, nothing sent before it (so a REST stands).
    #[track_caller]
    pub fn try_retr(&mut self, path: &[u8]) -> Result<Vec<u8>, Reply> {
        self.try_get(Mode::Pasv, &[b"RETR ", path].concat())
    }

    /// `verb` (STOR, APPE, STOU) of `path` over PASV in the current TYPE, nothing sent before
    /// it (so a REST stands).
    #[track_caller]
    pub fn try_upload(&mut self, verb: &str, path: &[u8], content: &[u8]) -> Result<(), Reply> {
        self.try_put(Mode::Pasv, &[verb.as_bytes(), b" ", path].concat(), content)
            .map(|_| ())
    }

    /// `try_upload` with STOR.
    #[track_caller]
    pub fn try_stor(&mut self, path: &[u8], content: &[u8]) -> Result<(), Reply> {
        self.try_upload("STOR", path, content)
    }

    /// A listing command (LIST, NLST, MLSD) over PASV: its text (lossy UTF-8).
    #[track_caller]
    pub fn try_listing(&mut self, line: &str) -> Result<String, Reply> {
        self.try_get(Mode::Pasv, line.as_bytes())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The names NLST gives (CRLF-separated lines), sorted.
    #[track_caller]
    pub fn nlst(&mut self, mode: Mode, command: &str) -> Vec<String> {
        let mut names = self.lines(mode, command);
        names.sort();
        names
    }

    /// Lines of a listing (LIST or MLSD), each must end in CRLF.
    #[track_caller]
    pub fn lines(&mut self, mode: Mode, command: &str) -> Vec<String> {
        let v = self.get(mode, command);
        let s = String::from_utf8(v).expect("listing is UTF-8");
        assert!(
            s.is_empty() || s.ends_with("\r\n"),
            "listing lines end in CRLF: {s:?}"
        );
        s.split_terminator("\r\n").map(String::from).collect()
    }
}

/// Parses `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).`, asserting that exact shape.
#[track_caller]
pub fn parse_227(line: &str) -> (Ipv4Addr, u16) {
    let prefix = "227 Entering Passive Mode (";
    assert!(line.starts_with(prefix), "227 shape: {line:?}");
    let rest = &line[prefix.len()..];
    let end = rest.find(')').expect("closing paren");
    assert_eq!(&rest[end..], ").", "227 ends with ').': {line:?}");
    let nums: Vec<u16> = rest[..end]
        .split(',')
        .map(|n| n.parse().expect("number"))
        .collect();
    assert_eq!(nums.len(), 6, "{line:?}");
    assert!(nums.iter().all(|&n| n <= 255), "{line:?}");
    let ip = Ipv4Addr::new(nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8);
    (ip, nums[4] * 256 + nums[5])
}

/// Parses `229 Entering Extended Passive Mode (|||port|)`, asserting that exact shape.
#[track_caller]
pub fn parse_229(line: &str) -> u16 {
    let prefix = "229 Entering Extended Passive Mode (|||";
    assert!(line.starts_with(prefix), "229 shape: {line:?}");
    let rest = &line[prefix.len()..];
    let end = rest.find("|)").expect("|)");
    let port: u16 = rest[..end].parse().expect("port");
    assert!(port > 0);
    port
}

/// A connection refused at once: "421" and a close instead of a greeting.
#[track_caller]
pub fn refused_with_421(c: &mut Client) {
    let r = c.try_reply().expect("a reply before the close");
    assert_eq!(r.code, 421, "{:?}", r.lines);
    assert!(c.wait_closed(IO_TIMEOUT).is_ok(), "closed after 421");
}
