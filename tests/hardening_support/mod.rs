//! A small harness shared by the hardening tests (jail.rs, hostile.rs, exhaustion.rs,
//! privileges.rs): start the real binary on 127.0.0.1:0 with a temporary root, read its log,
//! drive it with a raw FTP client that never blocks forever, and look at the process through
//! /proc. Everything here is bounded by a timeout, and every process is killed and waited for
//! when its handle drops.

#![allow(dead_code)]

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_leanftpd");
/// How long a reply or a data read may take before the test fails instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to print `listening on`.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

// ---- temporary directories --------------------------------------------------------------

/// A fresh directory under the system's temp dir (mode 0755, so that a server running as
/// `nobody` can enter it), removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "leanftpd-hardening-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Makes `rel` (and its parents) as a directory and returns its path.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.path.join(rel);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod dir");
        path
    }

    pub fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        let path = self.path.join(rel);
        fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    pub fn symlink(&self, target: impl AsRef<Path>, rel: &str) -> PathBuf {
        let path = self.path.join(rel);
        std::os::unix::fs::symlink(target.as_ref(), &path)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Names and contents of every file under `dir` (recursively, symlinks as their targets), sorted:
/// compare two snapshots to prove nothing changed there.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let content = if meta.file_type().is_symlink() {
                let mut t = b"-> ".to_vec();
                t.extend_from_slice(
                    fs::read_link(&path)
                        .expect("readlink")
                        .as_os_str()
                        .as_encoded_bytes(),
                );
                t
            } else if meta.is_dir() {
                stack.push(path.clone());
                b"<dir>".to_vec()
            } else {
                fs::read(&path).expect("read")
            };
            out.push((path, content));
        }
    }
    out.sort();
    out
}

// ---- the server process -----------------------------------------------------------------

#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

/// The running binary; killed (SIGKILL) and waited for on drop unless it already exited.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Log>,
    exited: Option<ExitStatus>,
}

impl Server {
    /// `leanftpd --listen 127.0.0.1:0 ARGS`.
    pub fn start(args: &[&str]) -> Server {
        Server::start_command(Command::new(BIN), args)
    }

    /// `cmd --listen 127.0.0.1:0 ARGS` (cmd may be a wrapper that execs the binary, or carry a
    /// pre_exec hook).
    pub fn start_command(cmd: Command, args: &[&str]) -> Server {
        match Server::try_start_command(cmd, args) {
            Ok(server) => server,
            Err(message) => panic!("{message}"),
        }
    }

    /// Like `start_command`, but a server that exits before listening is an Err with its log.
    pub fn try_start_command(mut cmd: Command, args: &[&str]) -> Result<Server, String> {
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {BIN}: {e}"))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Log::default());
        let sink = log.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line).trim_end().to_string();
                        sink.lines.lock().unwrap().push(text);
                        sink.changed.notify_all();
                    }
                }
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            exited: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(addr) = server
                .log_lines()
                .iter()
                .find_map(|line| line.split("listening on ").nth(1))
                .and_then(|rest| rest.trim().parse::<SocketAddr>().ok())
            {
                server.addr = addr;
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                server.exited = Some(status);
                // Let the drain thread pick up the last lines.
                thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "the server exited ({status}) before listening; its log:\n{}",
                    server.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no `listening on` within {START_TIMEOUT:?}; log:\n{}",
                    server.log_text()
                ));
            }
            let lines = server.log.lines.lock().unwrap();
            let _ = server
                .log
                .changed
                .wait_timeout(lines, Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        self.log_lines().join("\n")
    }

    /// Log lines containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Log lines for which `pred` holds (counted under the lock, without copying the log).
    pub fn log_count_where(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.log
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| pred(line))
            .count()
    }

    /// Waits until at least `n` log lines contain `needle`.
    pub fn wait_for_log(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if lines.iter().filter(|line| line.contains(needle)).count() >= n {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            lines = self
                .log
                .changed
                .wait_timeout(lines, (deadline - now).min(Duration::from_millis(100)))
                .unwrap()
                .0;
        }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return self.exited;
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.exited.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// A control connection, greeting (220) read.
    pub fn connect(&self) -> Client {
        let mut client = Client::connect(self.addr);
        let greeting = client.reply();
        assert_eq!(greeting.code, 220, "greeting: {greeting:?}");
        client
    }

    pub fn login(&self, user: &str, password: &str) -> Client {
        let mut client = self.connect();
        client.expect(&format!("USER {user}"), 331);
        client.expect(&format!("PASS {password}"), 230);
        client
    }

    pub fn anonymous(&self) -> Client {
        self.login("anonymous", "test@example.com")
    }

    // ---- /proc ----

    /// Open descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        fd_count(self.pid())
    }

    /// utime + stime of the server process, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid())
    }

    /// A `Name:` line of /proc/PID/status, without the name.
    pub fn status_field(&self, name: &str) -> String {
        status_field(self.pid(), name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
}

pub fn cpu_seconds(pid: i32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

pub fn status_field(pid: i32, name: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .map(|value| value.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
}

/// `leanftpd --hash-password` for `password`.
pub fn hash_password(password: &str) -> String {
    let mut child = Command::new(BIN)
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run --hash-password");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("--hash-password");
    assert!(output.status.success(), "--hash-password failed");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

// ---- the raw FTP client -----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Every line of the reply, CRLF removed, joined with '\n' (lossy UTF-8).
    pub text: String,
}

impl Reply {
    pub fn is(&self, codes: &[u16]) -> bool {
        codes.contains(&self.code)
    }
}

/// A control connection with read and write timeouts: a test fails, it never hangs.
pub struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Client::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let _ = stream.set_nodelay(true);
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        Client { stream, reader }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// One reply (multi-line replies joined), or the error that ended the read (EOF is
    /// `UnexpectedEof`).
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let first = self.read_line()?;
        let code = first
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad reply {first:?}"))
            })?;
        let mut text = first.clone();
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let line = self.read_line()?;
                text.push('\n');
                text.push_str(&line);
                if line.starts_with(&end) {
                    break;
                }
            }
        }
        Ok(Reply { code, text })
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed (partial line {:?})",
                    String::from_utf8_lossy(&line)
                ),
            ));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// One reply; panics on EOF or timeout.
    pub fn reply(&mut self) -> Reply {
        self.read_reply()
            .unwrap_or_else(|e| panic!("reading a reply: {e}"))
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("sending {:?}: {e}", String::from_utf8_lossy(bytes)));
    }

    /// Sends `line` + CRLF.
    pub fn send(&mut self, line: &str) {
        self.send_line(line.as_bytes());
    }

    pub fn send_line(&mut self, line: &[u8]) {
        let mut bytes = line.to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.send_raw(&bytes);
    }

    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.reply()
    }

    /// A command line of raw bytes (CRLF added).
    pub fn cmd_bytes(&mut self, line: &[u8]) -> Reply {
        self.send_line(line);
        self.reply()
    }

    /// Sends `line`, asserts the reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line);
        assert_eq!(reply.code, code, "{line:?} -> {reply:?}");
        reply
    }

    /// PASV, then the data connection opened at once (before the transfer command).
    pub fn pasv_connect(&mut self) -> TcpStream {
        let addr = self.pasv();
        let data = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("data connect {addr}: {e}"));
        data.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        data.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        data
    }

    pub fn pasv(&mut self) -> SocketAddr {
        let reply = self.cmd("PASV");
        assert_eq!(reply.code, 227, "PASV -> {reply:?}");
        parse_pasv(&reply.text).unwrap_or_else(|| panic!("bad 227: {reply:?}"))
    }

    /// A transfer command that sends data to us (RETR, LIST, NLST, MLSD): Ok(bytes) after 226,
    /// Err(reply) when the command is refused or the transfer does not end with 226.
    pub fn download(&mut self, line: &[u8]) -> Result<Vec<u8>, Reply> {
        let mut data = self.pasv_connect();
        let first = self.cmd_bytes(line);
        if !first.is(&[125, 150]) {
            return Err(first);
        }
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("reading data of {:?}: {e}", String::from_utf8_lossy(line)));
        let done = self.reply();
        if done.code == 226 {
            Ok(bytes)
        } else {
            Err(done)
        }
    }

    pub fn retr(&mut self, path: &[u8]) -> Result<Vec<u8>, Reply> {
        self.download(&[b"RETR ", path].concat())
    }

    /// LIST/NLST/MLSD line -> the listing text.
    pub fn listing(&mut self, line: &str) -> Result<String, Reply> {
        self.download(line.as_bytes())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// STOR (or APPE, STOU: `verb`) of `content`: Ok after 226, Err(reply) otherwise.
    pub fn upload(&mut self, verb: &str, path: &[u8], content: &[u8]) -> Result<(), Reply> {
        let mut data = self.pasv_connect();
        let first = self.cmd_bytes(&[verb.as_bytes(), b" ", path].concat());
        if !first.is(&[125, 150]) {
            return Err(first);
        }
        data.write_all(content).expect("writing upload data");
        drop(data);
        let done = self.reply();
        if done.code == 226 {
            Ok(())
        } else {
            Err(done)
        }
    }

    pub fn stor(&mut self, path: &[u8], content: &[u8]) -> Result<(), Reply> {
        self.upload("STOR", path, content)
    }

    /// Reads until the server closes the connection (EOF or reset) and returns what came
    /// before; panics if it is still open after `timeout`.
    pub fn expect_closed(&mut self, timeout: Duration) -> Vec<u8> {
        match self.wait_closed(timeout) {
            Ok(bytes) => bytes,
            Err(bytes) => panic!(
                "the server did not close the connection within {timeout:?}; it sent {:?}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }

    /// Ok(bytes read) once the peer closed; Err(bytes read) if still open after `timeout`.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let mut bytes = self.reader.buffer().to_vec();
        self.reader.consume(bytes.len());
        read_until_closed(&mut self.stream, timeout, &mut bytes)
            .map(|()| bytes.clone())
            .map_err(|()| bytes)
    }
}

/// Reads `stream` until EOF or a reset, appending to `out`; Err(()) on timeout.
pub fn read_until_closed(
    stream: &mut TcpStream,
    timeout: Duration,
    out: &mut Vec<u8>,
) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(());
        }
        stream
            .set_read_timeout(Some(left.min(Duration::from_millis(200))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            // ECONNRESET, EPIPE...: closed too.
            Err(_) => return Ok(()),
        }
    }
}

/// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).` -> the address.
pub fn parse_pasv(text: &str) -> Option<SocketAddr> {
    let inner = text.split('(').nth(1)?.split(')').next()?;
    let n: Vec<u16> = inner
        .split(',')
        .map(|part| part.trim().parse::<u16>().ok())
        .collect::<Option<Vec<_>>>()?;
    if n.len() != 6 || n.iter().any(|&x| x > 255) {
        return None;
    }
    let ip = Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
    Some(SocketAddr::V4(SocketAddrV4::new(ip, n[4] * 256 + n[5])))
}

/// A TCP connection to `to` from the local address `from` (port chosen by the kernel): how a
/// test plays a second host, e.g. 127.0.0.2, on the loopback interface.
pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else {
        return Err(io::Error::other("IPv4 only"));
    };
    fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
        // SAFETY: sockaddr_in is plain data; all-zero is valid.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = addr.port().to_be();
        sin.sin_addr = libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        };
        sin
    }
    // SAFETY: plain socket(2); the descriptor is owned by the TcpStream right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nothing else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let local = sockaddr(SocketAddrV4::new(from, 0));
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `local` is a valid sockaddr_in of `len` bytes.
    if unsafe { libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let remote = sockaddr(to);
    // SAFETY: `remote` is a valid sockaddr_in of `len` bytes; a blocking connect on loopback.
    if unsafe { libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Sets SO_LINGER {on, 0}: dropping the socket then sends a RST instead of a FIN.
pub fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` outlives the call and its size is passed.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Sets SO_SNDBUF (which also stops the kernel from growing it): bounds how much a client can
/// have in flight when its peer stops reading.
pub fn set_send_buffer(stream: &TcpStream, bytes: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: `bytes` outlives the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &bytes as *const _ as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_SNDBUF");
}

/// A deterministic pseudo-random byte pattern (xorshift), different for each `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// True when this process runs as root (the CI runs the suite as root).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
