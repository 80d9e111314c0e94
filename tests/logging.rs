//! Logging where appliances look (issue 12): syslog lines read back from a unix datagram socket
//! the test binds (PRI, timestamp and ident checked), a missing and a stalled syslog reader, the
//! xferlog parsed field by field, SIGHUP reopening it, and SIGUSR1's status line. Real binary,
//! real sockets, real clients (curl, lftp).

mod common;

use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

// ---------------------------------------------------------------- a syslog reader

/// A unix datagram socket standing in for /dev/log.
struct Syslogd {
    _dir: TempDir,
    path: PathBuf,
    socket: UnixDatagram,
    /// Every line received, in order.
    lines: Vec<String>,
}

impl Syslogd {
    fn bind() -> Syslogd {
        let dir = TempDir::new("syslog");
        let path = dir.join("log");
        let socket = UnixDatagram::bind(&path).unwrap();
        Syslogd {
            _dir: dir,
            path,
            socket,
            lines: Vec::new(),
        }
    }

    fn arg(&self) -> String {
        format!("--syslog={}", self.path.display())
    }

    /// The next line, or None after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        self.lines.push(line.clone());
        Some(line)
    }

    /// Reads until a line's message contains `needle`; returns that line.
    #[track_caller]
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(line) = self.recv(Duration::from_millis(200)) {
                if line.contains(needle) {
                    return line;
                }
            }
        }
        panic!(
            "no syslog line with {needle:?}; got:\n{}",
            self.lines.join("\n")
        );
    }

    /// The daemon restarts: the old socket goes, a new one is bound at the same path.
    fn restart(&mut self) {
        fs::remove_file(&self.path).unwrap();
        self.socket = UnixDatagram::bind(&self.path).unwrap();
    }

    /// Reads what is waiting now, without waiting for more.
    fn drain(&mut self) -> usize {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while let Ok(len) = self.socket.recv(&mut buf) {
            self.lines
                .push(String::from_utf8_lossy(&buf[..len]).into_owned());
            n += 1;
        }
        self.socket.set_nonblocking(false).unwrap();
        n
    }
}

/// `<PRI>Mmm dd hh:mm:ss leanftpd[PID]: message` -> (PRI, PID, message), checking the form.
#[track_caller]
fn parse(line: &str) -> (u32, u32, &str) {
    let rest = line.strip_prefix('<').unwrap_or_else(|| panic!("{line:?}"));
    let (pri, rest) = rest.split_once('>').unwrap();
    let (stamp, rest) = rest.split_at(16);
    let b = stamp.as_bytes();
    let months = "JanFebMarAprMayJunJulAugSepOctNovDec";
    assert!(months.contains(&stamp[..3]), "month of {line:?}");
    assert!(b[3] == b' ' && (b[4] == b' ' || b[4].is_ascii_digit()) && b[5].is_ascii_digit());
    assert!(
        b[6] == b' ' && b[9] == b':' && b[12] == b':' && b[15] == b' ',
        "{line:?}"
    );
    let rest = rest
        .strip_prefix("leanftpd[")
        .unwrap_or_else(|| panic!("ident of {line:?}"));
    let (pid, message) = rest.split_once("]: ").unwrap();
    (pri.parse().unwrap(), pid.parse().unwrap(), message)
}

// ---------------------------------------------------------------- a server logging to syslog

/// The binary started with `--syslog`; its stderr is kept (it should stay empty).
struct Daemon {
    child: Child,
    addr: SocketAddr,
    root: TempDir,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Daemon {
    /// Starts the server with `args` and reads its `listening on` line from `syslogd`.
    fn start(syslogd: &mut Syslogd, args: &[&str]) -> Daemon {
        let root = TempDir::new("root");
        let mut child = Command::new(BIN)
            .args(["--root", &root.path().display().to_string()])
            .args(["--listen", "127.0.0.1:0", &syslogd.arg()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut daemon = Daemon {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            root,
            stderr,
        };
        let line = syslogd.wait_for("listening on ");
        let (_, pid, message) = parse(&line);
        assert_eq!(pid, daemon.child.id());
        daemon.addr = message["listening on ".len()..].parse().unwrap();
        daemon
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, path: &str) -> String {
        format!("ftp://127.0.0.1:{}/{path}", self.addr.port())
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The messages of `lines` whose PRI is `pri` and PID `pid`, with the session prefix removed
/// (`[#3] RETR ...` -> `RETR ...`).
fn messages(lines: &[String], pri: u32, pid: u32) -> Vec<String> {
    lines
        .iter()
        .map(|line| parse(line))
        .filter(|&(p, id, _)| p == pri && id == pid)
        .map(|(_, _, m)| match m.strip_prefix("[#") {
            Some(rest) => rest.split_once("] ").map_or(m, |(_, m)| m).to_string(),
            None => m.to_string(),
        })
        .collect()
}

// ---------------------------------------------------------------- syslog

#[test]
fn real_sessions_log_to_syslog_as_daemon_info_with_the_ident() {
    require("curl");
    require("lftp");
    let mut syslogd = Syslogd::bind();
    let s = Daemon::start(&mut syslogd, &["-a", "-w"]);
    let data = pattern(100_000, 1);
    fs::write(s.root.join("f.bin"), &data).unwrap();
    let tmp = TempDir::new("curl");
    fs::write(tmp.join("up.bin"), &data[..4321]).unwrap();
    // A listing, a download in passive and in active mode, an upload.
    run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "-o", "list", &s.url("")],
    );
    run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "-o", "p", &s.url("f.bin")],
    );
    let active = [
        "-sS",
        "--fail",
        "-P",
        "127.0.0.1",
        "-o",
        "a",
        &s.url("f.bin"),
    ];
    run_ok(tmp.path(), "curl", &active);
    run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "-T", "up.bin", &s.url("up.bin")],
    );
    // lftp, active mode, both ways.
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set cmd:fail-exit yes; \
         set ftp:passive-mode off; open -u anonymous,lftp@ ftp://127.0.0.1:{}; \
         get f.bin -o l.bin; put up.bin -o lftp.bin",
        s.addr.port()
    );
    run_ok(tmp.path(), "lftp", &["-c", &script]);
    syslogd.wait_for("STOR /lftp.bin 4321 bytes: 226");
    assert_eq!(fs::read(tmp.join("a")).unwrap(), data);
    assert_eq!(fs::read(s.root.join("lftp.bin")).unwrap(), &data[..4321]);
    // daemon.info is <30>; every line carries leanftpd[PID].
    let info = messages(&syslogd.lines, 30, s.pid());
    let transfers: Vec<&String> = info
        .iter()
        .filter(|m| m.ends_with(": 226") && !m.starts_with("LIST"))
        .collect();
    assert_eq!(
        transfers,
        [
            "RETR /f.bin 100000 bytes: 226",
            "RETR /f.bin 100000 bytes: 226",
            "STOR /up.bin 4321 bytes: 226",
            "RETR /f.bin 100000 bytes: 226",
            "STOR /lftp.bin 4321 bytes: 226",
        ]
    );
    assert_eq!(info.iter().filter(|m| m.starts_with("LIST /")).count(), 1);
    assert_eq!(
        info.iter()
            .filter(|m| m.starts_with("anonymous logged in from 127.0.0.1"))
            .count(),
        5
    );
    // Nothing but syslog: stderr stays empty (it may be the client's socket under inetd).
    assert_eq!(s.stderr(), "");
}

#[test]
fn the_facility_flag_sets_the_pri() {
    let mut syslogd = Syslogd::bind();
    let s = Daemon::start(&mut syslogd, &["-a", "--syslog-facility", "local0", "-v"]);
    let mut c = Client::connect(s.addr);
    c.login_anonymous();
    c.expect("QUIT", 221);
    syslogd.wait_for("] closed");
    // local0.info is <134>, local0.debug <135>.
    let info = messages(&syslogd.lines, 134, s.pid());
    assert!(info
        .iter()
        .any(|m| m.starts_with("listening on 127.0.0.1:")));
    assert!(info.iter().any(|m| m == "closed"), "{info:?}");
    assert!(!messages(&syslogd.lines, 135, s.pid()).is_empty());
    refuses(
        &["-a", "--syslog-facility", "local8"],
        &["--syslog-facility local8"],
    );
}

#[test]
fn an_xferlog_that_cannot_be_opened_is_a_start_up_error() {
    let dir = TempDir::new("xferlog");
    let path = dir.join("missing-dir").join("xferlog");
    let path = path.display().to_string();
    refuses(&["-a", "--xferlog", &path], &["--xferlog", &path]);
}

#[test]
fn a_restarted_syslog_daemon_is_connected_again_and_no_line_is_lost() {
    let mut syslogd = Syslogd::bind();
    let s = Daemon::start(&mut syslogd, &["-a"]);
    syslogd.restart();
    // The first line finds the old socket gone (ECONNREFUSED); it waits in the queue until the
    // new socket is connected (at most a second later).
    let mut c = Client::connect(s.addr);
    c.login_anonymous();
    c.expect("QUIT", 221);
    syslogd.wait_for("] closed");
    let info = messages(&syslogd.lines, 30, s.pid());
    let session: Vec<&str> = info
        .iter()
        .skip_while(|m| !m.starts_with("connection from"))
        .map(|m| m.split(" from ").next().unwrap())
        .collect();
    assert_eq!(session, ["connection", "anonymous logged in", "closed"]);
    assert_eq!(s.stderr(), "");
}

#[test]
fn a_stream_syslog_socket_gets_nul_ended_lines() {
    use std::os::unix::net::UnixListener;
    let dir = TempDir::new("syslog-stream");
    let path = dir.join("log");
    let listener = UnixListener::bind(&path).unwrap();
    let root = TempDir::new("root");
    let child = KillOnDrop(
        Command::new(BIN)
            .args(["--root", &root.path().display().to_string(), "-a"])
            .args(["--listen", "127.0.0.1:0"])
            .arg(format!("--syslog={}", path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    listener.set_nonblocking(true).unwrap();
    let mut accepted = None;
    assert!(eventually(IO_TIMEOUT, || {
        accepted = listener.accept().ok().map(|(stream, _)| stream);
        accepted.is_some()
    }));
    let mut stream = accepted.unwrap();
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut received = Vec::new();
    let mut frames = |received: &mut Vec<u8>, until: &str| -> Vec<String> {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(received).contains(until) {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed the syslog stream");
            received.extend_from_slice(&buf[..n]);
        }
        received
            .split(|&b| b == 0)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect()
    };
    let lines = frames(&mut received, "listening on ");
    let listening = lines.iter().find(|l| l.contains("listening on ")).unwrap();
    let (pri, pid, message) = parse(listening);
    assert_eq!((pri, pid), (30, child.0.id()));
    let addr: SocketAddr = message["listening on ".len()..].parse().unwrap();
    let mut c = Client::connect(addr);
    c.login_anonymous();
    c.expect("QUIT", 221);
    let lines = frames(&mut received, "] closed");
    assert!(lines.iter().all(|l| !l.contains('\n')));
    let closed = lines.iter().find(|l| l.ends_with("] closed")).unwrap();
    assert_eq!(parse(closed).0, 30);
}

/// A child process killed and reaped when the test ends, passing or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_missing_syslog_socket_is_one_stderr_line_and_the_server_runs_on_stderr() {
    let dir = TempDir::new("nosyslog");
    let missing = dir.join("log");
    let arg = format!("--syslog={}", missing.display());
    let s = Server::start(&["-a", &arg]);
    let lines = s.log_lines();
    assert_eq!(
        lines[0],
        format!(
            "leanftpd: --syslog {}: No such file or directory (os error 2); logging to stderr \
             instead",
            missing.display()
        )
    );
    assert_eq!(s.log_count("--syslog"), 1);
    let mut c = s.anonymous();
    c.expect("QUIT", 221);
    assert!(s.wait_for_log("] closed", 1, IO_TIMEOUT));
}

#[test]
fn a_stalled_syslog_reader_never_delays_a_session_and_drops_are_counted() {
    let mut syslogd = Syslogd::bind();
    let s = Daemon::start(&mut syslogd, &["-a", "--max-per-ip", "64"]);
    // One session with the reader reading: how many lines a session logs.
    let session = |addr| {
        let started = Instant::now();
        let mut c = Client::connect(addr);
        c.login_anonymous();
        c.expect("QUIT", 221);
        c.expect_closed(IO_TIMEOUT);
        started.elapsed()
    };
    session(s.addr);
    syslogd.wait_for("] closed");
    let per_session = syslogd
        .lines
        .iter()
        .skip_while(|l| !l.contains("] connection from"))
        .count();
    let before = syslogd.lines.len();
    // The reader stops reading: its buffer fills, then leanftpd's queue, then lines drop.
    const SESSIONS: usize = 2000;
    let mut slowest = Duration::ZERO;
    for _ in 0..SESSIONS {
        slowest = slowest.max(session(s.addr));
    }
    assert!(
        slowest < Duration::from_secs(2),
        "slowest session {slowest:?}"
    );
    // The reader drains; the next line written brings the count first.
    syslogd.drain();
    session(s.addr);
    let count_line = syslogd.wait_for("lines dropped");
    syslogd.wait_for("] closed");
    let (pri, _, message) = parse(&count_line);
    assert_eq!(pri, 28, "daemon.warning");
    let dropped: usize = message
        .strip_prefix("syslog: ")
        .and_then(|m| m.strip_suffix(" lines dropped"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(dropped > 0);
    // Every line logged is either received or counted, none twice.
    let received = syslogd.lines.len() - before - 1;
    assert_eq!(received + dropped, (SESSIONS + 1) * per_session);
    assert_eq!(s.stderr(), "");
}

// ---------------------------------------------------------------- xferlog

/// One xferlog line split into its 14 fields (the time is fields 0-4 of the split).
fn fields(line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
    assert_eq!(words.len(), 18, "{line:?}");
    let mut out = vec![words[..5].join(" ")];
    out.extend(words[5..].iter().map(|w| w.to_string()));
    out
}

fn xferlog_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn xferlog_lines_match_what_was_transferred_field_by_field() {
    let logs = TempDir::new("xferlog");
    let xferlog = logs.join("xferlog");
    let users = Users::new(&[("alice", &hash_password("pw"), "alice", "rw")]);
    let s = Server::start(&[
        "-a",
        "-w",
        "--users",
        &users.file_arg(),
        "--xferlog",
        &xferlog.display().to_string(),
    ]);
    let mut c = s.anonymous();
    let data = pattern(5000, 3);
    c.stor(Mode::Pasv, "a b.bin", &data);
    assert_eq!(c.retr(Mode::Port, "a b.bin"), data);
    c.expect("TYPE A", 200);
    c.put(Mode::Epsv, "STOR t\\x.txt", b"one\r\ntwo\r\n");
    c.expect("TYPE I", 200);
    // A listing writes no line.
    c.lines(Mode::Pasv, "LIST");
    // An aborted download: complete-status i.
    fs::write(s.path("big.bin"), vec![7u8; 32 << 20]).unwrap();
    let mut d = c.pasv_connect();
    c.expect("RETR big.bin", 150);
    let mut buf = vec![0u8; 64 * 1024];
    d.read_exact(&mut buf).unwrap();
    c.send("ABOR");
    assert_eq!(c.reply().code, 426);
    assert_eq!(c.reply().code, 226);
    drop(d);
    // A users-file user: access-mode r.
    let mut alice = s.login("alice", "pw");
    alice.stor(Mode::Pasv, "mine.txt", b"hello");
    assert!(s.wait_for_log("STOR /mine.txt", 1, IO_TIMEOUT));
    let lines = xferlog_lines(&xferlog);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let f: Vec<Vec<String>> = lines.iter().map(|l| fields(l)).collect();
    for row in &f {
        // current-time: `Wed Dec  2 16:59:07 2026`.
        let t: Vec<&str> = row[0].split(' ').collect();
        assert!(
            "SunMonTueWedThuFriSat".contains(t[0]) && t[0].len() == 3,
            "{row:?}"
        );
        assert_eq!(t[3].len(), 8);
        assert_eq!(t[4].len(), 4);
        assert!(row[1].parse::<u64>().unwrap() >= 1, "transfer-time");
        assert_eq!(row[2], "127.0.0.1");
        assert_eq!(&row[6..7], ["_"]);
        assert_eq!(&row[10..13], ["ftp", "0", "*"]);
    }
    // file-size, filename, type, direction, access-mode, username, completion.
    let summary = |row: &Vec<String>| [3, 4, 5, 7, 8, 9, 13].map(|i| row[i].clone()).join(" ");
    assert_eq!(summary(&f[0]), "5000 /a\\040b.bin b i a anonymous c");
    assert_eq!(summary(&f[1]), "5000 /a\\040b.bin b o a anonymous c");
    assert_eq!(summary(&f[2]), "10 /t\\134x.txt a i a anonymous c");
    let size: u64 = f[3][3].parse().unwrap();
    assert!((64 * 1024..32 << 20).contains(&size), "{size}");
    assert_eq!(
        &f[3][4..],
        [
            "/big.bin",
            "b",
            "_",
            "o",
            "a",
            "anonymous",
            "ftp",
            "0",
            "*",
            "i"
        ]
    );
    assert_eq!(summary(&f[4]), "5 /mine.txt b i r alice c");
}

#[test]
fn sighup_reopens_the_xferlog_after_a_rename() {
    let logs = TempDir::new("xferlog");
    let xferlog = logs.join("xferlog");
    let s = Server::start(&["-a", "--xferlog", &xferlog.display().to_string()]);
    s.put("f.txt", b"abc");
    let mut c = s.anonymous();
    assert_eq!(c.retr(Mode::Pasv, "f.txt"), b"abc");
    assert!(s.wait_for_log("RETR /f.txt", 1, IO_TIMEOUT));
    // logrotate: move the file away, then SIGHUP (postrotate).
    let rotated = logs.join("xferlog.1");
    fs::rename(&xferlog, &rotated).unwrap();
    s.signal(libc::SIGHUP);
    assert!(s.wait_for_log("SIGHUP: reopened the xferlog", 1, IO_TIMEOUT));
    assert_eq!(c.retr(Mode::Pasv, "f.txt"), b"abc");
    assert!(s.wait_for_log("RETR /f.txt", 2, IO_TIMEOUT));
    let old = xferlog_lines(&rotated);
    let new = xferlog_lines(&xferlog);
    assert_eq!((old.len(), new.len()), (1, 1), "{old:?} {new:?}");
    assert_eq!(fields(&new[0])[3..5], ["3", "/f.txt"]);
}

// ---------------------------------------------------------------- SIGUSR1

#[test]
fn sigusr1_logs_sessions_by_state_transfers_and_bytes() {
    use std::io::Write;
    let s = Server::start(&["-a", "-w"]);
    let mut first = s.anonymous();
    first.stor(Mode::Pasv, "up.bin", &pattern(1000, 4));
    assert_eq!(first.retr(Mode::Pasv, "up.bin").len(), 1000);
    first.expect("QUIT", 221);
    assert!(s.wait_for_log("] closed", 1, IO_TIMEOUT));
    // One session logging in, one idle, one uploading (300 bytes sent so far).
    let mut logging_in = s.connect();
    logging_in.expect("USER anonymous", 331);
    let _idle = s.anonymous();
    let mut uploading = s.anonymous();
    let mut d = uploading.pasv_connect();
    uploading.expect("STOR running.bin", 150);
    d.write_all(&pattern(300, 5)).unwrap();
    let want = "status: 3 sessions (1 logging in, 1 idle, 1 transferring), 1 transfers running, \
                1300 bytes in, 1000 bytes out, up ";
    // The upload's bytes count once the server has read them: ask until it has.
    let mut asked = 0;
    let seen = eventually(IO_TIMEOUT, || {
        asked += 1;
        s.signal(libc::SIGUSR1);
        s.wait_for_log("status: ", asked, IO_TIMEOUT);
        s.log_count(want) > 0
    });
    assert!(seen, "{}", s.log_text());
    let line = s
        .log_lines()
        .into_iter()
        .find(|l| l.contains(want))
        .unwrap();
    assert!(line.ends_with(" s"), "{line}");
    drop(d);
}

/// The xferlog is opened before `--run-as` drops root, so it may live where only root writes
/// (/var/log); a SIGHUP reopen the run-as user cannot do keeps the file open before, and says so.
#[test]
fn the_xferlog_is_opened_before_privileges_drop() {
    use std::os::unix::fs::PermissionsExt;
    assert!(
        is_root(),
        "--run-as needs root (the CI runs the suite as root)"
    );
    let logs = TempDir::new("xferlog-root");
    fs::set_permissions(logs.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let xferlog = logs.join("xferlog");
    let root = TempDir::new("root");
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    root.write("f.txt", b"abc");
    let s = Server::start_in(
        root.path(),
        &[
            "-a",
            "--run-as",
            "nobody",
            "--xferlog",
            &xferlog.display().to_string(),
        ],
    );
    let mut c = s.anonymous();
    assert_eq!(c.retr(Mode::Pasv, "f.txt"), b"abc");
    assert!(s.wait_for_log("RETR /f.txt", 1, IO_TIMEOUT));
    assert_eq!(xferlog_lines(&xferlog).len(), 1);
    let rotated = logs.join("xferlog.1");
    fs::rename(&xferlog, &rotated).unwrap();
    s.signal(libc::SIGHUP);
    assert!(s.wait_for_log("SIGHUP: cannot reopen the xferlog", 1, IO_TIMEOUT));
    assert_eq!(c.retr(Mode::Pasv, "f.txt"), b"abc");
    assert!(s.wait_for_log("RETR /f.txt", 2, IO_TIMEOUT));
    assert_eq!(xferlog_lines(&rotated).len(), 2);
    assert!(!xferlog.exists());
}

// ---------------------------------------------------------------- --inetd

/// Runs `leanftpd --inetd` on a connection the test accepts itself; logs in, QUITs, and returns
/// the replies' codes and what the process wrote to stderr.
fn inetd_session(args: &[&str]) -> (Vec<String>, String) {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (conn, _) = listener.accept().unwrap();
    let root = TempDir::new("root");
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args([
                "--inetd",
                "-a",
                "--root",
                &root.path().display().to_string(),
            ])
            .args(args)
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(conn)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    client
        .write_all(b"USER anonymous\r\nPASS x@\r\nQUIT\r\n")
        .unwrap();
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let text = String::from_utf8(read_all(&mut client)).unwrap();
    let codes = text.lines().map(|l| l[..3].to_string()).collect();
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = wait_child(&mut child.0, IO_TIMEOUT).expect("--inetd exits after QUIT");
    assert_eq!(status.code(), Some(0), "{stderr}");
    (codes, stderr)
}

#[test]
fn inetd_logs_to_syslog_never_to_stderr() {
    let mut syslogd = Syslogd::bind();
    let (codes, stderr) = inetd_session(&[&syslogd.arg()]);
    assert_eq!(codes, ["220", "331", "230", "221"]);
    syslogd.wait_for("] closed");
    let lines = syslogd.lines.clone();
    let logged_in = lines
        .iter()
        .find(|l| l.contains("anonymous logged in from 127.0.0.1"))
        .unwrap();
    assert_eq!(parse(logged_in).0, 30);
    assert_eq!(stderr, "");
}

#[test]
fn inetd_with_the_syslog_socket_missing_still_writes_nothing_to_stderr() {
    let dir = TempDir::new("nosyslog");
    let arg = format!("--syslog={}", dir.join("log").display());
    let (codes, stderr) = inetd_session(&["-v", &arg]);
    assert_eq!(codes, ["220", "331", "230", "221"]);
    assert_eq!(stderr, "");
}
