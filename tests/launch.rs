//! Started by the system (issue 12): `--inetd`, systemd socket activation and sd_notify, through
//! the real launchers, with real clients.
//!
//! - `--inetd` on a socket this test makes: the test listens, accepts each connection itself
//!   and starts `leanftpd --inetd` with the accepted stream as its stdin, as inetd does.
//! - `--inetd` under `tcpsvd` (BusyBox's applet when the busybox installed has it; Debian's
//!   busybox does not, so else the ipsvd `tcpsvd` BusyBox's is a port of, same command line).
//! - `systemd-socket-activate` (Debian's systemd package): the listener passed on fd 3
//!   (`-l 127.0.0.1:PORT`), and one connection per process (`--accept`) through `--inetd`, both
//!   on fd 3 (LISTEN_FDS) and on fd 0 (`--accept --inetd`).
//!
//! In each mode curl and lftp list, download and upload, in passive and in active mode, and
//! the bytes are compared. Also: sd_notify READY=1 and STOPPING=1 read from a datagram socket
//! the test binds (a path and an abstract name), refusals (fd 0 not a connected TCP socket,
//! `--inetd` with `--listen`, an Accept=yes connection without `--inetd`), and LISTEN_PID of
//! another process being ignored. Every wait is bounded; everything started is killed on drop.

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long a launcher may take to accept connections.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- clients

/// The file every client downloads, and what they upload.
const DOWNLOAD_LEN: usize = 300_000;
const UPLOAD_LEN: usize = 200_000;

/// A root with `d/a.bin` for the clients to list and download.
fn make_root() -> TempDir {
    let root = TempDir::new("launch-root");
    root.write("d/a.bin", &pattern(DOWNLOAD_LEN, 1));
    root
}

/// curl and lftp against 127.0.0.1:`port`: a listing, a download and an upload each, passive
/// or active, checked byte for byte against `root`.
fn exercise(port: u16, root: &Path, active: bool) {
    let tmp = TempDir::new("launch-client");
    let src = tmp.write("src.bin", &pattern(UPLOAD_LEN, 2));
    let base = format!("ftp://127.0.0.1:{port}");
    let tag = if active { "active" } else { "passive" };
    let mode: &[&str] = if active { &["-P", "-"] } else { &[] };

    let curl = |extra: &[&str]| {
        let mut args = vec!["-sS", "--fail", "--max-time", "30"];
        args.extend_from_slice(mode);
        args.extend_from_slice(extra);
        run_ok(tmp.path(), "curl", &args)
    };
    let listing = curl(&[&format!("{base}/d/")]);
    assert!(listing.contains("a.bin"), "curl {tag} listing: {listing:?}");
    curl(&["-o", "got-curl.bin", &format!("{base}/d/a.bin")]);
    assert_bytes_eq(
        &fs::read(tmp.join("got-curl.bin")).unwrap(),
        &pattern(DOWNLOAD_LEN, 1),
        &format!("curl {tag} download"),
    );
    let up = format!("up-curl-{tag}.bin");
    curl(&["-T", &src.display().to_string(), &format!("{base}/{up}")]);
    assert_bytes_eq(
        &fs::read(root.join(&up)).unwrap(),
        &pattern(UPLOAD_LEN, 2),
        &format!("curl {tag} upload"),
    );

    let up = format!("up-lftp-{tag}.bin");
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; \
         set cmd:fail-exit yes; set ftp:passive-mode {}; \
         open -u anonymous,lftp@ {base}; cls -1 d/; get d/a.bin -o got-lftp.bin; \
         put src.bin -o /{up}",
        if active { "off" } else { "on" }
    );
    let listing = run_ok(tmp.path(), "lftp", &["-c", &script]);
    assert_eq!(listing.trim(), "d/a.bin", "lftp {tag} listing");
    assert_bytes_eq(
        &fs::read(tmp.join("got-lftp.bin")).unwrap(),
        &pattern(DOWNLOAD_LEN, 1),
        &format!("lftp {tag} download"),
    );
    assert_bytes_eq(
        &fs::read(root.join(&up)).unwrap(),
        &pattern(UPLOAD_LEN, 2),
        &format!("lftp {tag} upload"),
    );
}

/// A port that was free a moment ago, for launchers that bind it themselves.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects to 127.0.0.1:`port` until it answers (bounded), and closes at once.
fn wait_accepting(port: u16) {
    let ok = eventually(LAUNCH_TIMEOUT, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(ok, "nothing accepts on 127.0.0.1:{port}");
}

// ---------------------------------------------------------------- launchers

/// A launcher (tcpsvd, systemd-socket-activate --accept) running in the background, its
/// stderr collected; killed and reaped on drop.
struct Launcher {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Launcher {
    fn start(prog: &str, args: &[&str]) -> Launcher {
        require(prog);
        let mut child = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {prog}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        // ipsvd's tcpsvd logs on stdout, BusyBox's and systemd-socket-activate on stderr.
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for output in [stdout, stderr] {
            let sink = Arc::clone(&log);
            thread::spawn(move || {
                for line in BufReader::new(output).lines() {
                    let Ok(line) = line else { break };
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Launcher { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, and a bounded wait for the exit (ipsvd's tcpsvd writes its log at exit only
    /// when it goes to a pipe).
    fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_child(&mut self.child, IO_TIMEOUT);
        assert!(
            status.is_some(),
            "{:?} did not exit after SIGTERM",
            self.child
        );
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tcpsvd command: BusyBox's applet when this busybox has it, else ipsvd's tcpsvd.
fn tcpsvd() -> Vec<&'static str> {
    let applet = Command::new("busybox")
        .arg("--list")
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l == "tcpsvd")
        })
        .unwrap_or(false);
    if applet {
        vec!["busybox", "tcpsvd"]
    } else {
        vec!["tcpsvd"]
    }
}

/// inetd played by the test: accepts on its own listener and starts `leanftpd --inetd ARGS`
/// with each accepted connection as stdin (and, with `all_fds`, as stdout and stderr too, as
/// inetd does); collects how each one exited and what it wrote to stderr.
/// How one `--inetd` process ended (None: still running after IO_TIMEOUT, then killed), and its
/// stderr.
type Ended = (Option<ExitStatus>, String);

struct OwnInetd {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Vec<Ended>>>,
}

impl OwnInetd {
    fn start(args: &[&str], all_fds: bool) -> OwnInetd {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let thread = thread::spawn(move || {
            let mut children: Vec<(Child, Option<thread::JoinHandle<String>>)> = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let fd = OwnedFd::from(stream);
                        let mut cmd = Command::new(BIN);
                        cmd.arg("--inetd").args(&args);
                        cmd.stdin(Stdio::from(fd.try_clone().unwrap()));
                        if all_fds {
                            cmd.stdout(Stdio::from(fd.try_clone().unwrap()))
                                .stderr(Stdio::from(fd.try_clone().unwrap()));
                        } else {
                            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
                        }
                        let mut child = cmd.spawn().expect("start leanftpd --inetd");
                        // Our copy goes: the child holds the connection alone.
                        drop(fd);
                        let drain = child.stderr.take().map(|mut err| {
                            thread::spawn(move || {
                                let mut text = String::new();
                                let _ = err.read_to_string(&mut text);
                                text
                            })
                        });
                        children.push((child, drain));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
            children
                .into_iter()
                .map(|(mut child, drain)| {
                    let status = wait_child(&mut child, IO_TIMEOUT);
                    if status.is_none() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    let text = drain.map(|d| d.join().unwrap()).unwrap_or_default();
                    (status, text)
                })
                .collect()
        });
        OwnInetd {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops accepting; how each session's process ended.
    fn finish(&mut self) -> Vec<Ended> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for OwnInetd {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish();
        }
    }
}

// ---------------------------------------------------------------- --inetd, own socket

fn own_inetd(active: bool) {
    let root = make_root();
    let rootarg = root.path().display().to_string();
    let mut inetd = OwnInetd::start(&["-a", "-w", "--root", &rootarg], false);
    exercise(inetd.port, root.path(), active);
    let ended = inetd.finish();
    // curl: listing, download, upload; lftp: one session.
    assert_eq!(ended.len(), 4, "sessions: {ended:?}");
    for (status, stderr) in ended {
        assert_eq!(status.and_then(|s| s.code()), Some(0), "stderr: {stderr}");
        // stderr is a pipe here: warnings only (no INFO lines) unless -v.
        assert!(
            stderr
                .lines()
                .all(|l| l.starts_with("WARN") || l.starts_with("ERROR")),
            "--inetd logs warnings only by default: {stderr:?}"
        );
    }
}

#[test]
fn inetd_on_a_socket_of_the_test_passive() {
    own_inetd(false);
}

#[test]
fn inetd_on_a_socket_of_the_test_active() {
    own_inetd(true);
}

/// inetd proper: fd 0, 1 and 2 all the connection. Even with -v, not one log byte reaches the
/// client: it reads FTP replies only, and the process exits 0 after QUIT.
#[test]
fn inetd_with_stderr_on_the_socket_writes_no_log_to_the_client() {
    let root = make_root();
    let rootarg = root.path().display().to_string();
    let mut inetd = OwnInetd::start(&["-a", "-vv", "--root", &rootarg], true);
    let mut stream = tcp_connect(SocketAddr::from(([127, 0, 0, 1], inetd.port)));
    stream
        .write_all(b"USER anonymous\r\nPASS x@\r\nSYST\r\nQUIT\r\n")
        .unwrap();
    let text = String::from_utf8(read_all(&mut stream)).unwrap();
    let codes: Vec<&str> = text.lines().map(|l| &l[..l.len().min(4)]).collect();
    assert_eq!(codes, ["220 ", "331 ", "230 ", "215 ", "221 "], "{text:?}");
    let ended = inetd.finish();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].0.and_then(|s| s.code()), Some(0));
}

// ---------------------------------------------------------------- --inetd refusals

/// Runs leanftpd with `stdin`; expects exit 2 and exactly one stderr line holding `mentions`.
fn refuses_with_stdin(args: &[&str], stdin: Stdio, mentions: &[&str]) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = wait_child(&mut child, IO_TIMEOUT).expect("leanftpd should exit");
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr:?}");
    for m in mentions {
        assert!(stderr.contains(m), "{stderr:?} should mention {m:?}");
    }
}

#[test]
fn inetd_refuses_a_stdin_that_is_not_a_connected_tcp_socket() {
    let null = fs::File::open("/dev/null").unwrap();
    refuses_with_stdin(
        &["--inetd", "-a"],
        Stdio::from(null),
        &["--inetd: fd 0 is not a connected TCP socket (it is not a socket)"],
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    refuses_with_stdin(
        &["--inetd", "-a"],
        Stdio::from(OwnedFd::from(listener)),
        &["--inetd: fd 0 is not a connected TCP socket (it is a listening socket)"],
    );
    let (unix, _other) = std::os::unix::net::UnixStream::pair().unwrap();
    refuses_with_stdin(
        &["--inetd", "-a"],
        Stdio::from(OwnedFd::from(unix)),
        &["--inetd: fd 0 is not a connected TCP socket (it is another kind of socket)"],
    );
}

#[test]
fn inetd_refuses_listen_flags() {
    refuses(
        &["--inetd", "-a", "-l", "127.0.0.1:0"],
        &["--inetd serves the connection on stdin: --listen does not apply"],
    );
    refuses(
        &["--inetd", "-a", "--tls-listen", "127.0.0.1:0"],
        &["--inetd serves the connection on stdin: --tls-listen does not apply"],
    );
}

/// A start-up failure under --inetd (a users file that cannot be read): the waiting client
/// hears 421, not a bare close and not the reason (that goes to the log); exit status 2.
/// With stderr a pipe of its own (tcpsvd, systemd), it gets the one line too; with stderr the
/// connection itself (inetd proper), the client reads the 421 and nothing else.
#[test]
fn inetd_start_up_failure_tells_the_client_421_and_keeps_the_reason_off_its_connection() {
    let root = make_root();
    let rootarg = root.path().display().to_string();
    let args = ["-U", "/nonexistent/users", "--root", &rootarg];
    for all_fds in [false, true] {
        let mut inetd = OwnInetd::start(&args, all_fds);
        let mut stream = tcp_connect(SocketAddr::from(([127, 0, 0, 1], inetd.port)));
        let text = String::from_utf8(read_all(&mut stream)).unwrap();
        assert_eq!(text, "421 Service not available.\r\n", "all_fds {all_fds}");
        let ended = inetd.finish();
        assert_eq!(ended.len(), 1);
        let (status, stderr) = &ended[0];
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr:?}");
        if !all_fds {
            assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
            assert!(stderr.contains("/nonexistent/users"), "{stderr:?}");
        }
    }
}

// ---------------------------------------------------------------- tcpsvd

fn under_tcpsvd(active: bool) {
    let root = make_root();
    let rootarg = root.path().display().to_string();
    let port = free_port().to_string();
    let mut args = tcpsvd();
    let prog = args.remove(0);
    args.extend_from_slice(&["-vE", "127.0.0.1", &port, BIN, "--inetd", "-a", "-w"]);
    args.extend_from_slice(&["--root", &rootarg]);
    let mut launcher = Launcher::start(prog, &args);
    wait_accepting(port.parse().unwrap());
    exercise(port.parse().unwrap(), root.path(), active);
    launcher.terminate();
    // Every session's process ended with status 0 (tcpsvd -v logs "end PID exit N"): the
    // probe of wait_accepting and the four sessions of the clients.
    let ok = eventually(IO_TIMEOUT, || {
        let log = launcher.log();
        log.matches(" exit 0").count() >= 5 && !log.contains("leanftpd:")
    });
    let log = launcher.log();
    assert!(ok, "tcpsvd log: {log}");
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" exit ") && !l.ends_with(" exit 0"))
        .collect();
    assert!(failed.is_empty(), "sessions ended badly: {failed:?}\n{log}");
}

#[test]
fn inetd_under_tcpsvd_passive() {
    under_tcpsvd(false);
}

#[test]
fn inetd_under_tcpsvd_active() {
    under_tcpsvd(true);
}

// ---------------------------------------------------------------- systemd-socket-activate

/// `systemd-socket-activate -l 127.0.0.1:PORT leanftpd ... --listen 127.0.0.1:0`: the passed
/// listener is served, --listen is not bound. systemd-socket-activate execs leanftpd at the
/// first connection attempt, so a thread pokes the port meanwhile.
fn socket_activated(extra: &[&str], args: &[&str]) -> (Server, TempDir, u16) {
    require("systemd-socket-activate");
    let root = make_root();
    let port = free_port();
    let poke = thread::spawn(move || wait_accepting(port));
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.args(["-l", &format!("127.0.0.1:{port}")]);
    cmd.args(extra);
    cmd.arg(BIN);
    let s = Server::start_command(cmd, root.path(), args);
    poke.join().unwrap();
    (s, root, port)
}

/// The one `listening on` line of the log.
#[track_caller]
fn listening_line(s: &Server) -> String {
    let listening: Vec<String> = s
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("listening on"))
        .collect();
    assert_eq!(listening.len(), 1, "{listening:?}");
    listening[0].clone()
}

#[test]
fn systemd_socket_activation_serves_the_passed_listener() {
    let (s, root, port) = socket_activated(&[], &["-a", "-w"]);
    let line = listening_line(&s);
    assert!(
        line.ends_with(&format!("listening on 127.0.0.1:{port} (from systemd)")),
        "{line:?}"
    );
    exercise(port, root.path(), false);
    exercise(port, root.path(), true);
}

/// `FileDescriptorName=ftps`: an implicit TLS listener (curl ftps://).
#[cfg(feature = "tls")]
#[test]
fn systemd_socket_named_ftps_is_implicit_tls() {
    let cert = Cert::ec();
    let mut args = vec!["-a".to_string()];
    args.extend(cert.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_s, _root, port) = socket_activated(&["--fdname=ftps"], &args);
    let tmp = TempDir::new("launch-client");
    let url = format!("ftps://127.0.0.1:{port}/d/a.bin");
    run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "-k", "-o", "got", &url],
    );
    assert_bytes_eq(
        &fs::read(tmp.join("got")).unwrap(),
        &pattern(DOWNLOAD_LEN, 1),
        "curl ftps:// download",
    );
}

fn accept_mode(inetd_protocol: bool, active: bool) {
    let root = make_root();
    let rootarg = root.path().display().to_string();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["-l", &listen, "--accept"];
    if inetd_protocol {
        args.push("--inetd");
    }
    args.extend_from_slice(&[BIN, "--inetd", "-a", "-w", "--root", &rootarg]);
    let launcher = Launcher::start("systemd-socket-activate", &args);
    wait_accepting(port);
    exercise(port, root.path(), active);
    let ok = eventually(IO_TIMEOUT, || {
        launcher.log().matches("died with code 0").count() >= 5
    });
    let log = launcher.log();
    assert!(ok, "systemd-socket-activate log: {log}");
    assert!(!log.contains("leanftpd:"), "{log}");
}

#[test]
fn systemd_accept_yes_through_inetd_on_fd_3() {
    accept_mode(false, false);
    accept_mode(false, true);
}

#[test]
fn systemd_accept_yes_through_inetd_on_fd_0() {
    accept_mode(true, false);
    accept_mode(true, true);
}

#[test]
fn systemd_accept_yes_without_inetd_is_refused() {
    require("systemd-socket-activate");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let launcher = Launcher::start(
        "systemd-socket-activate",
        &["-l", &listen, "--accept", BIN, "-a"],
    );
    wait_accepting(port);
    let want = "leanftpd: socket activation: fd 3 is not a listening TCP socket \
                (it is a connection: Accept=yes units need --inetd)";
    let ok = eventually(IO_TIMEOUT, || launcher.log().contains("died with code 2"));
    let log = launcher.log();
    assert!(ok, "{log}");
    assert!(log.lines().any(|l| l == want), "{log}");
}

#[test]
fn listen_pid_of_another_process_is_ignored() {
    let mut cmd = Command::new(BIN);
    cmd.env("LISTEN_PID", "1").env("LISTEN_FDS", "1");
    let root = TempDir::new("root");
    let s = Server::start_command(cmd, root.path(), &["-a"]);
    let line = listening_line(&s);
    assert!(
        line.ends_with(&format!("listening on {}", s.addr())),
        "{line:?}"
    );
    assert!(s.addr().port() != 0);
    let mut c = s.anonymous();
    c.expect("NOOP", 200);
}

// ---------------------------------------------------------------- sd_notify

/// Reads one datagram, bounded; None when nothing came in `timeout`.
fn recv(socket: &UnixDatagram, timeout: Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 256];
    match socket.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

fn notifies(socket: UnixDatagram, value: &str) {
    let mut cmd = Command::new(BIN);
    cmd.env("NOTIFY_SOCKET", value);
    let root = TempDir::new("root");
    let mut s = Server::start_command(cmd, root.path(), &["-a"]);
    assert_eq!(recv(&socket, IO_TIMEOUT).as_deref(), Some("READY=1"));
    // Once: nothing more while it serves.
    let mut c = s.anonymous();
    c.expect("NOOP", 200);
    c.expect("QUIT", 221);
    assert_eq!(recv(&socket, Duration::from_millis(300)), None);
    s.signal(libc::SIGTERM);
    assert_eq!(recv(&socket, IO_TIMEOUT).as_deref(), Some("STOPPING=1"));
    let status = s.wait_exit(IO_TIMEOUT).expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert_eq!(recv(&socket, Duration::from_millis(200)), None);
}

#[test]
fn sd_notify_ready_and_stopping_on_a_path() {
    let dir = TempDir::new("notify");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    notifies(socket, &path.display().to_string());
}

#[test]
fn sd_notify_ready_and_stopping_on_an_abstract_name() {
    let name = format!("leanftpd-test-notify-{}-{}", std::process::id(), unique());
    let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    notifies(socket, &format!("@{name}"));
}
