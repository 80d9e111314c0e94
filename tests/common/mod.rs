//! Test harness shared by every integration test: start the real `leanftpd` binary on
//! 127.0.0.1:0 with its own temporary root, read the port from its `listening on` log line, and
//! drive it with a small raw FTP client built on std sockets. Everything is bounded by timeouts
//! and every process started here is killed and reaped on Drop.
//!
//! Each test binary compiles this module on its own and uses a subset of it.
#![allow(dead_code)]

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Socket read/write timeout of the raw client, and the bound of every wait in the harness.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub const BIN: &str = env!("CARGO_BIN_EXE_leanftpd");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A process-unique number: distinguishes temporary directories and port ranges of tests that
/// run in parallel in one test binary.
pub fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A range of `len` ports for `--pasv-ports`, different for each call in this process and
/// (through the pid) likely different from other test binaries; kept below the Linux ephemeral
/// range (32768+) so outgoing connections do not take them.
pub fn port_range(len: u16) -> (u16, u16) {
    let slots = 20_000 / len as usize;
    let slot = (std::process::id() as usize * 7 + unique()) % slots;
    let min = 10_000 + (slot * len as usize) as u16;
    (min, min + len - 1)
}

/// A directory under the system temp dir, removed (recursively) on Drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "leanftpd-test-{}-{}-{}",
            tag,
            std::process::id(),
            unique()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Read-only dirs made by tests would stop the removal.
        let _ = make_writable(&self.path);
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn make_writable(p: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(p)?;
    if meta.is_dir() {
        let mut perm = meta.permissions();
        perm.set_mode(0o755);
        let _ = fs::set_permissions(p, perm);
        for e in fs::read_dir(p)? {
            let _ = make_writable(&e?.path());
        }
    }
    Ok(())
}

/// A running `leanftpd`. Killed and reaped on Drop.
pub struct Server {
    child: Option<Child>,
    addrs: Vec<SocketAddr>,
    root: Option<TempDir>,
    root_path: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with `args` plus `--root <fresh temp dir>` and
    /// `--listen 127.0.0.1:0`. Panics unless it logs `listening on` within 10 s.
    pub fn start(args: &[&str]) -> Server {
        let root = TempDir::new("root");
        let root_path = root.path().to_path_buf();
        let mut all: Vec<String> = vec!["--root".into(), root_path.display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        if !args.iter().any(|a| *a == "-l" || *a == "--listen") {
            all.push("--listen".into());
            all.push("127.0.0.1:0".into());
        }
        let mut s = Server::start_raw(&all, 1);
        s.root = Some(root);
        s.root_path = root_path;
        s
    }

    /// Starts the server with exactly `args` and waits for `listeners` `listening on` lines.
    pub fn start_raw<S: AsRef<str>>(args: &[S], listeners: usize) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(args.iter().map(|a| a.as_ref()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn leanftpd");
        let stderr = child.stderr.take().expect("stderr pipe");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let log2 = Arc::clone(&log);
        // Drains stderr for the whole life of the process so the server never blocks on it.
        thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        log2.lock().unwrap().push_str(&line);
                        let _ = tx.send(line);
                    }
                }
            }
        });
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut addrs = Vec::new();
        while addrs.len() < listeners {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = parse_listening(&line) {
                        addrs.push(addr);
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "leanftpd did not log {} `listening on` line(s) within {:?}; args {:?}; stderr:\n{}",
                        listeners,
                        IO_TIMEOUT,
                        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
                        log.lock().unwrap()
                    );
                }
            }
        }
        Server {
            child: Some(child),
            addrs,
            root: None,
            root_path: PathBuf::new(),
            log,
        }
    }

    /// Starts with a root the caller owns (`--root` given here).
    pub fn start_in(root: &Path, args: &[&str]) -> Server {
        let mut all: Vec<String> = vec!["--root".into(), root.display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        if !args.iter().any(|a| *a == "-l" || *a == "--listen") {
            all.push("--listen".into());
            all.push("127.0.0.1:0".into());
        }
        let mut s = Server::start_raw(&all, 1);
        s.root_path = root.to_path_buf();
        s
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The directory served as "/" to anonymous users.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root_path.join(rel)
    }

    /// Writes a file under the root (creating parent directories).
    pub fn put(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, data).unwrap();
        p
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` (bounded); true when it did.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends a signal to the server.
    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    /// Waits (bounded) for the process to exit; None if it did not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().unwrap();
        wait_child(child, timeout)
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(None))
    }

    pub fn connect(&self) -> Ftp {
        Ftp::connect(self.addr())
    }

    /// Connects and logs in as anonymous.
    pub fn anon(&self) -> Ftp {
        let mut c = self.connect();
        c.login_anonymous();
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn parse_listening(line: &str) -> Option<SocketAddr> {
    let i = line.find("listening on ")?;
    let rest = &line[i + "listening on ".len()..];
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ',' && *c != ')')
        .collect();
    word.parse().ok()
}

/// Waits for a child with a bound; kills it when the bound passes and returns None.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The result of running the binary to completion.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `leanftpd args` with `stdin` and returns its exit status and output; panics if it
/// runs longer than 10 s (it is then killed).
pub fn run_bin(args: &[&str], stdin: &[u8]) -> Output {
    run_cmd(BIN, args, stdin, IO_TIMEOUT)
}

/// Runs any program with a time bound (killed and the test fails when it passes).
pub fn run_cmd(prog: &str, args: &[&str], stdin: &[u8], timeout: Duration) -> Output {
    run_cmd_in(prog, args, stdin, timeout, None)
}

pub fn run_cmd_in(
    prog: &str,
    args: &[&str],
    stdin: &[u8],
    timeout: Duration,
    dir: Option<&Path>,
) -> Output {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    let mut sin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let wt = thread::spawn(move || {
        let _ = sin.write_all(&input);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let ot = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let et = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = match wait_child(&mut child, timeout) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{prog} {args:?} did not finish within {timeout:?}");
        }
    };
    let _ = wt.join();
    let stdout = String::from_utf8_lossy(&ot.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&et.join().unwrap()).into_owned();
    Output {
        status,
        stdout,
        stderr,
    }
}

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

/// Accepts one connection within `timeout`, or returns None.
pub fn accept_timeout(l: &TcpListener, timeout: Duration) -> Option<TcpStream> {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                return Some(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return None;
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Connects to `to` from the local address `from` (port 0): std cannot bind before connect.
pub fn tcp_connect_from(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to4) = to else {
        panic!("IPv4 only")
    };
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = 0;
        sa.sin_addr.s_addr = u32::from_ne_bytes(from.octets());
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut da: libc::sockaddr_in = std::mem::zeroed();
        da.sin_family = libc::AF_INET as libc::sa_family_t;
        da.sin_port = to4.port().to_be();
        da.sin_addr.s_addr = u32::from_ne_bytes(to4.ip().octets());
        if libc::connect(fd, &da as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(io::Error::last_os_error());
        }
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(stream)
    }
}

/// Reads a stream to its end (bounded by the socket's read timeout).
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).expect("read data connection to EOF");
    v
}

/// A raw FTP control connection.
pub struct Ftp {
    pub w: TcpStream,
    r: BufReader<TcpStream>,
    pub peer: SocketAddr,
}

impl Ftp {
    /// Connects and reads the greeting, which must be 220.
    pub fn connect(addr: SocketAddr) -> Ftp {
        let mut c = Ftp::connect_raw(addr);
        let g = c.reply();
        assert_eq!(g.code, 220, "greeting: {:?}", g.lines);
        c
    }

    /// Connects without reading anything.
    pub fn connect_raw(addr: SocketAddr) -> Ftp {
        Ftp::from_stream(tcp_connect(addr))
    }

    pub fn from_stream(s: TcpStream) -> Ftp {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let peer = s.peer_addr().unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        Ftp { w: s, r, peer }
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.w.set_read_timeout(Some(t)).unwrap();
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write control");
    }

    /// Sends `line` + CRLF.
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// Reads one raw line (with its line ending); None at EOF or on error.
    pub fn read_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.r.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
            Err(_) => None,
        }
    }

    /// Reads one complete reply; panics on EOF/timeout or a malformed reply.
    #[track_caller]
    pub fn reply(&mut self) -> Reply {
        self.try_reply().expect("a reply before EOF/timeout")
    }

    /// Reads one complete reply, or None at EOF/timeout. Every line must end in CRLF.
    #[track_caller]
    pub fn try_reply(&mut self) -> Option<Reply> {
        let first = self.read_line()?;
        assert!(
            first.ends_with("\r\n"),
            "reply line not CRLF-ended: {first:?}"
        );
        let first = first.trim_end_matches("\r\n").to_string();
        assert!(
            first.len() >= 4
                && first.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                && (first.as_bytes()[3] == b' ' || first.as_bytes()[3] == b'-'),
            "malformed reply line {first:?}"
        );
        let code: u16 = first[..3].parse().unwrap();
        let mut lines = vec![first.clone()];
        if first.as_bytes()[3] == b'-' {
            let end = format!("{code} ");
            loop {
                let l = self.read_line()?;
                assert!(l.ends_with("\r\n"), "reply line not CRLF-ended: {l:?}");
                let l = l.trim_end_matches("\r\n").to_string();
                let done = l.starts_with(&end);
                lines.push(l);
                if done {
                    break;
                }
            }
        }
        Some(Reply { code, lines })
    }

    /// Sends a command and reads its reply.
    #[track_caller]
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.reply()
    }

    /// Sends a command and asserts the reply code.
    #[track_caller]
    pub fn ok(&mut self, line: &str, code: u16) -> Reply {
        let r = self.cmd(line);
        assert_eq!(r.code, code, "{line} -> {:?}", r.lines);
        r
    }

    #[track_caller]
    pub fn login(&mut self, user: &str, pass: &str) {
        self.ok(&format!("USER {user}"), 331);
        self.ok(&format!("PASS {pass}"), 230);
    }

    #[track_caller]
    pub fn login_anonymous(&mut self) {
        self.login("anonymous", "test@example.com");
    }

    /// Reads until the server closes the control connection: Some(bytes read before the close)
    /// on EOF or reset, None when the read timeout passes first.
    pub fn read_to_close(&mut self) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        let mut b = [0u8; 4096];
        loop {
            match self.r.read(&mut b) {
                Ok(0) => return Some(v),
                Ok(n) => v.extend_from_slice(&b[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Some(v),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// PASV: asserts the exact 227 shape, connects to the announced port on 127.0.0.1.
    #[track_caller]
    pub fn pasv_addr(&mut self) -> SocketAddr {
        let r = self.ok("PASV", 227);
        let (ip, port) = parse_227(&r.lines[0]);
        assert_eq!(ip, Ipv4Addr::LOCALHOST, "PASV address: {:?}", r.lines);
        SocketAddr::new(IpAddr::V4(ip), port)
    }

    #[track_caller]
    pub fn pasv(&mut self) -> TcpStream {
        let a = self.pasv_addr();
        tcp_connect(a)
    }

    #[track_caller]
    pub fn epsv_port(&mut self) -> u16 {
        let r = self.ok("EPSV", 229);
        parse_229(&r.lines[0])
    }

    #[track_caller]
    pub fn epsv(&mut self) -> TcpStream {
        let port = self.epsv_port();
        tcp_connect(SocketAddr::new(self.peer.ip(), port))
    }

    /// PORT to a fresh listener on 127.0.0.1; 200 expected.
    #[track_caller]
    pub fn port(&mut self) -> TcpListener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        self.ok(&format!("PORT 127,0,0,1,{},{}", p >> 8, p & 0xff), 200);
        l
    }

    /// EPRT to a fresh listener on the control connection's address family; 200 expected.
    #[track_caller]
    pub fn eprt(&mut self) -> TcpListener {
        let local = self.w.local_addr().unwrap().ip();
        let l = TcpListener::bind(SocketAddr::new(local, 0)).unwrap();
        let p = l.local_addr().unwrap().port();
        let (af, ip) = match local {
            IpAddr::V4(a) => (1, a.to_string()),
            IpAddr::V6(a) => (2, a.to_string()),
        };
        self.ok(&format!("EPRT |{af}|{ip}|{p}|"), 200);
        l
    }

    /// Prepares a data connection in `mode` (before the transfer command).
    #[track_caller]
    pub fn data(&mut self, mode: Mode) -> Data {
        match mode {
            Mode::Pasv => Data::Connected(self.pasv()),
            Mode::Epsv => Data::Connected(self.epsv()),
            Mode::Port => Data::Listening(self.port()),
            Mode::Eprt => Data::Listening(self.eprt()),
        }
    }

    /// Runs a transfer command that sends data to us (RETR, LIST, NLST, MLSD): returns the
    /// bytes; asserts 150 (or 125) then 226.
    #[track_caller]
    pub fn get(&mut self, mode: Mode, command: &str) -> Vec<u8> {
        let d = self.data(mode);
        let r = self.cmd(command);
        assert!(
            r.code == 150 || r.code == 125,
            "{command} -> {:?} (expected 150)",
            r.lines
        );
        let mut s = d.stream();
        let v = read_all(&mut s);
        drop(s);
        let r = self.reply();
        assert_eq!(r.code, 226, "{command} end -> {:?}", r.lines);
        v
    }

    /// RETR in binary mode.
    #[track_caller]
    pub fn retr(&mut self, mode: Mode, path: &str) -> Vec<u8> {
        self.ok("TYPE I", 200);
        self.get(mode, &format!("RETR {path}"))
    }

    /// Runs a transfer command that sends data to the server (STOR, APPE, STOU): returns the
    /// preliminary reply; asserts 226 at the end.
    #[track_caller]
    pub fn put(&mut self, mode: Mode, command: &str, data: &[u8]) -> Reply {
        let d = self.data(mode);
        let first = self.cmd(command);
        assert!(
            first.code == 150 || first.code == 125,
            "{command} -> {:?} (expected 150)",
            first.lines
        );
        let mut s = d.stream();
        s.write_all(data).expect("write data");
        s.shutdown(Shutdown::Write).unwrap();
        // Wait for the server to close its side too.
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
        drop(s);
        let r = self.reply();
        assert_eq!(r.code, 226, "{command} end -> {:?}", r.lines);
        first
    }

    /// STOR in binary mode.
    #[track_caller]
    pub fn stor(&mut self, mode: Mode, path: &str, data: &[u8]) {
        self.ok("TYPE I", 200);
        self.put(mode, &format!("STOR {path}"), data);
    }

    /// The names NLST gives (CRLF-separated lines).
    #[track_caller]
    pub fn nlst(&mut self, mode: Mode, command: &str) -> Vec<String> {
        let v = self.get(mode, command);
        let s = String::from_utf8(v).expect("NLST is UTF-8");
        assert!(
            s.is_empty() || s.ends_with("\r\n"),
            "listing lines end in CRLF: {s:?}"
        );
        let mut names: Vec<String> = s.split_terminator("\r\n").map(String::from).collect();
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

/// Deterministic pseudo-random bytes (xorshift), so binary content covers every byte value.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for b in x.to_le_bytes() {
            if v.len() < len {
                v.push(b);
            }
        }
    }
    v
}

/// Asserts two byte vectors are equal without dumping megabytes on failure.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got
            .iter()
            .zip(want.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: content differs: got {} bytes, want {} bytes, first difference at offset {}",
            got.len(),
            want.len(),
            first
        );
    }
}

/// Converts LF to CRLF (what TYPE A sends for a Unix text file).
pub fn to_crlf(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + v.len() / 16);
    for &b in v {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Polls `f` every 20 ms until it is true or `timeout` passes; returns the last value.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts a program is installed; clients tests fail (not skip) without it.
#[track_caller]
pub fn require(prog: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{prog}` is not installed: run .ci/run, which installs every client the tests use"
    );
}

/// Generates one test per data connection mode: `$name::pasv`, `::epsv`, `::port`, `::eprt`.
/// Use with `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! in_every_mode {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn pasv() {
                ($body)(crate::common::Mode::Pasv)
            }
            #[test]
            fn epsv() {
                ($body)(crate::common::Mode::Epsv)
            }
            #[test]
            fn port() {
                ($body)(crate::common::Mode::Port)
            }
            #[test]
            fn eprt() {
                ($body)(crate::common::Mode::Eprt)
            }
        }
    };
}

/// A SHA-512-crypt hash of `password`, made by `leanftpd --hash-password`.
pub fn hash_password(password: &str) -> String {
    let out = run_bin(&["--hash-password"], format!("{password}\n").as_bytes());
    assert_eq!(
        out.status.code(),
        Some(0),
        "--hash-password: {}",
        out.stderr
    );
    let h = out.stdout.trim().to_string();
    assert!(h.starts_with("$6$"), "{h:?}");
    h
}

/// A users file and the homes it names, under one temporary directory.
pub struct Users {
    pub dir: TempDir,
    pub file: PathBuf,
}

impl Users {
    /// `users` is (name, hash, home dir name under the temp dir, perms); homes are created.
    pub fn new(users: &[(&str, &str, &str, &str)]) -> Users {
        let dir = TempDir::new("users");
        let mut text = String::from("# leanftpd users: name:hash:home:perms\n\n");
        for (name, hash, home, perms) in users {
            let h = dir.join(home);
            fs::create_dir_all(&h).unwrap();
            text.push_str(&format!("{name}:{hash}:{}:{perms}\n", h.display()));
        }
        let file = dir.join("users.txt");
        fs::write(&file, text).unwrap();
        Users { dir, file }
    }

    pub fn home(&self, home: &str) -> PathBuf {
        self.dir.join(home)
    }

    pub fn file_arg(&self) -> String {
        self.file.display().to_string()
    }
}

/// Sets a file's (or directory's) modification time to `secs` after the epoch (UTC).
pub fn set_mtime(p: &Path, secs: u64) {
    let f = fs::File::open(p).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// A file's modification time in seconds since the epoch.
pub fn mtime(p: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).unwrap().mtime()
}

pub fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// (year, month 1-12, day) of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the epoch now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
