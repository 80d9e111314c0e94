//! The binary under test: a running server with its log, programs run to completion, and the
//! users files they read.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{
    cpu_seconds, fd_count, require, status_field, write_file, Client, TempDir, BIN, IO_TIMEOUT,
    START_TIMEOUT,
};

/// The server's stderr, line by line (line ends removed), as the drain thread reads it.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

/// A running `leanftpd`. Killed (SIGKILL) and reaped on Drop unless it already exited.
pub struct Server {
    child: Child,
    exited: Option<ExitStatus>,
    addrs: Vec<SocketAddr>,
    /// The fresh root made by `start`, removed after the process is gone.
    own_root: Option<TempDir>,
    root: PathBuf,
    log: Arc<Log>,
}

impl Server {
    /// Starts the server with `--root <fresh temp dir>`, `args`, and `--listen 127.0.0.1:0`
    /// unless `args` has a `-l`/`--listen`. Panics unless it logs `listening on` in time.
    pub fn start(args: &[&str]) -> Server {
        let root = TempDir::new("root");
        let mut s = Server::start_in(root.path(), args);
        s.own_root = Some(root);
        s
    }

    /// Like `start`, with a root the caller owns.
    pub fn start_in(root: &Path, args: &[&str]) -> Server {
        Server::start_command(Command::new(BIN), root, args)
    }

    /// Like `start_in`, with a command of the caller's: one that carries a pre_exec hook (a
    /// setrlimit, say) and runs `BIN`.
    pub fn start_command(cmd: Command, root: &Path, args: &[&str]) -> Server {
        Server::start_listening(cmd, root, args, 1)
    }

    /// Like `start`, waiting for `listeners` `listening on` lines (`--listen` and
    /// `--tls-listen` addresses together).
    pub fn start_with_listeners(args: &[&str], listeners: usize) -> Server {
        let root = TempDir::new("root");
        let mut s = Server::start_listening(Command::new(BIN), root.path(), args, listeners);
        s.own_root = Some(root);
        s
    }

    fn start_listening(cmd: Command, root: &Path, args: &[&str], listeners: usize) -> Server {
        let mut all: Vec<String> = vec!["--root".into(), root.display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        if !args.iter().any(|a| *a == "-l" || *a == "--listen") {
            all.push("--listen".into());
            all.push("127.0.0.1:0".into());
        }
        let mut s = Server::launch(cmd, &all, listeners);
        s.root = root.to_path_buf();
        s
    }

    /// Starts the server with exactly `args` and waits for `listeners` `listening on` lines.
    pub fn start_raw<S: AsRef<str>>(args: &[S], listeners: usize) -> Server {
        Server::launch(Command::new(BIN), args, listeners)
    }

    /// Runs `cmd args`, drains its stderr into the log for the whole life of the process (so
    /// the server never blocks on it), and waits for `listeners` `listening on` lines. Panics,
    /// with the log, when the process exits first or START_TIMEOUT passes.
    fn launch<S: AsRef<str>>(mut cmd: Command, args: &[S], listeners: usize) -> Server {
        let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Log::default());
        let sink = Arc::clone(&log);
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
            exited: None,
            addrs: Vec::new(),
            own_root: None,
            root: PathBuf::new(),
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let addrs: Vec<SocketAddr> = server
                .log_lines()
                .iter()
                .filter_map(|line| parse_listening(line))
                .take(listeners)
                .collect();
            if addrs.len() == listeners {
                server.addrs = addrs;
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                server.exited = Some(status);
                // Let the drain thread pick up the last lines.
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "leanftpd exited ({status}) before logging {listeners} `listening on` \
                     line(s); args {args:?}; stderr:\n{}",
                    server.log_text()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "leanftpd did not log {listeners} `listening on` line(s) within \
                     {START_TIMEOUT:?}; args {args:?}; stderr:\n{}",
                    server.log_text()
                );
            }
            let lines = server.log.lines.lock().unwrap();
            let _ = server
                .log
                .changed
                .wait_timeout(lines, Duration::from_millis(50));
        }
    }

    /// The first listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every listening address, in the order they were logged.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The directory served as "/" to anonymous users (empty for `start_raw`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes a file under the root (creating parent directories).
    pub fn put(&self, rel: &str, data: &[u8]) -> PathBuf {
        write_file(&self.path(rel), data)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    // ---- the log ----

    /// Every line the server wrote to stderr so far (line ends removed).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines.lock().unwrap().clone()
    }

    /// Everything the server wrote to stderr so far, lines joined by '\n'.
    pub fn log_text(&self) -> String {
        self.log_lines().join("\n")
    }

    /// Log lines containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log_count_where(|line| line.contains(needle))
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

    /// Waits until at least `n` log lines contain `needle`; true when they did in time.
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

    /// Waits (IO_TIMEOUT) for a log line containing `needle` and returns the first one.
    #[track_caller]
    pub fn wait_for_line(&self, needle: &str) -> String {
        assert!(
            self.wait_for_log(needle, 1, IO_TIMEOUT),
            "no log line with {needle:?}:\n{}",
            self.log_text()
        );
        let lines = self.log.lines.lock().unwrap();
        lines
            .iter()
            .find(|line| line.contains(needle))
            .unwrap()
            .clone()
    }

    // ---- the process ----

    /// Sends a signal to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Waits (bounded) for the process to exit; None if it did not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = wait_child(&mut self.child, timeout);
        }
        self.exited
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.exited.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

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

    // ---- clients ----

    /// A control connection, greeting (220) read.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// A control connection logged in as `user`.
    #[track_caller]
    pub fn login(&self, user: &str, password: &str) -> Client {
        let mut c = self.connect();
        c.login(user, password);
        c
    }

    /// A control connection logged in as anonymous.
    #[track_caller]
    pub fn anonymous(&self) -> Client {
        let mut c = self.connect();
        c.login_anonymous();
        c
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

fn parse_listening(line: &str) -> Option<SocketAddr> {
    let i = line.find("listening on ")?;
    let rest = &line[i + "listening on ".len()..];
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ',' && *c != ')')
        .collect();
    word.parse().ok()
}

/// Waits for a child with a bound; None when it is still running after `timeout`.
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

/// The result of running a program to completion.
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

/// Runs the binary with `args`, expecting a start-up refusal: exit 2, exactly one stderr line
/// that contains every string of `mentions`.
#[track_caller]
pub fn refuses(args: &[&str], mentions: &[&str]) {
    let out = run_bin(args, b"");
    assert_eq!(
        out.status.code(),
        Some(2),
        "leanftpd {args:?} should exit 2; stderr: {:?}",
        out.stderr
    );
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "leanftpd {args:?} should print one line on stderr, got {:?}",
        out.stderr
    );
    for m in mentions {
        assert!(
            lines[0].contains(m),
            "leanftpd {args:?}: stderr line {:?} should mention {m:?}",
            lines[0]
        );
    }
    assert!(
        !out.stderr.contains("listening on"),
        "must refuse before serving: {:?}",
        out.stderr
    );
}

/// Runs `prog args` under `timeout 60` in `dir`; asserts exit 0 and returns stdout.
#[track_caller]
pub fn run_ok(dir: &Path, prog: &str, args: &[&str]) -> String {
    require(prog);
    let mut full = vec!["60", prog];
    full.extend_from_slice(args);
    let out = run_cmd_in("timeout", &full, b"", Duration::from_secs(70), Some(dir));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{prog} {args:?} failed\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    out.stdout
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
            let h = dir.mkdir(home);
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
