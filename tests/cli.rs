//! The command-line contract: help, version, --hash-password, start-up errors (one line on
//! stderr, exit 2), listeners, verbosity and signals.

#[macro_use]
mod common;

use common::*;
use std::net::{SocketAddr, TcpListener};

/// True when `msg` names line `n` ("line 3", "users:3:" and the like).
fn names_line(msg: &str, n: usize) -> bool {
    let lower = msg.to_lowercase();
    lower.contains(&format!("line {n}"))
        || lower.contains(&format!(":{n}:"))
        || lower.contains(&format!(":{n} "))
}

fn with_root(extra: &[&str], f: impl FnOnce(&[&str])) {
    let root = TempDir::new("cli");
    let r = root.path().display().to_string();
    let mut args = vec!["--root", r.as_str(), "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    f(&args);
}

const FLAGS: [&str; 20] = [
    "--root",
    "--listen",
    "--anonymous",
    "--writable",
    "--users",
    "--pasv-ports",
    "--pasv-address",
    "--max-clients",
    "--max-per-ip",
    "--idle-timeout",
    "--data-timeout",
    "--hash-password",
    "--syslog",
    "--syslog-facility",
    "--xferlog",
    "--verbose",
    "--quiet",
    "--help",
    "--version",
    "-U",
];

#[test]
fn help_short_and_long_print_every_flag_and_exit_0() {
    for flag in ["-h", "--help"] {
        let out = run_bin(&[flag], b"");
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", out.stderr);
        for f in FLAGS {
            assert!(
                out.stdout.contains(f),
                "{flag} output lacks {f}:\n{}",
                out.stdout
            );
        }
    }
}

#[test]
fn version_short_and_long_print_the_crate_version_and_exit_0() {
    for flag in ["-V", "--version"] {
        let out = run_bin(&[flag], b"");
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", out.stderr);
        assert!(
            out.stdout.contains(env!("CARGO_PKG_VERSION")),
            "{flag}: {:?}",
            out.stdout
        );
        assert!(out.stdout.contains("leanftpd"), "{flag}: {:?}", out.stdout);
    }
}

#[test]
fn hash_password_prints_one_sha512_crypt_line_and_exits_0() {
    let out = run_bin(&["--hash-password"], b"s3cret\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}", out.stdout);
    let h = lines[0];
    assert!(h.starts_with("$6$"), "{h:?}");
    // $6$salt$hash: the SHA-512-crypt hash part is 86 characters of the crypt alphabet.
    let parts: Vec<&str> = h.split('$').collect();
    let hash = parts.last().unwrap();
    assert_eq!(hash.len(), 86, "{h:?}");
    assert!(!h.contains(':'), "must fit a users file line: {h:?}");
    // Random salt: two runs differ.
    let again = run_bin(&["--hash-password"], b"s3cret\n");
    assert_ne!(again.stdout, out.stdout, "salt must be random");
}

#[test]
fn refuses_unknown_flag() {
    with_root(&["-a", "--bogus-flag"], |a| refuses(a, &["bogus-flag"]));
}

#[test]
fn refuses_flag_missing_its_value() {
    let root = TempDir::new("cli");
    let r = root.path().display().to_string();
    refuses(&["-a", "--root", &r, "--listen"], &["listen"]);
}

#[test]
fn refuses_missing_root() {
    refuses(
        &[
            "-a",
            "--root",
            "/nonexistent/leanftpd-root",
            "-l",
            "127.0.0.1:0",
        ],
        &["/nonexistent/leanftpd-root"],
    );
}

#[test]
fn refuses_root_that_is_a_file() {
    let d = TempDir::new("cli");
    let f = d.join("file");
    std::fs::write(&f, b"x").unwrap();
    let f = f.display().to_string();
    refuses(&["-a", "--root", &f, "-l", "127.0.0.1:0"], &[&f]);
}

#[test]
fn refuses_to_start_without_anonymous_or_users_and_says_how() {
    with_root(&[], |a| {
        let out = run_bin(a, b"");
        assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{:?}", out.stderr);
        assert!(
            out.stderr.contains("--anonymous") || out.stderr.contains("--users"),
            "should say how to enable a login: {:?}",
            out.stderr
        );
    });
}

#[test]
fn refuses_missing_users_file() {
    with_root(&["-U", "/nonexistent/leanftpd-users"], |a| {
        refuses(a, &["/nonexistent/leanftpd-users"])
    });
}

const HASH: &str = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";

/// Starts the server with a users file made from `lines` (`{home}` is an existing directory)
/// and checks that it refuses to start and names line `bad_line`.
fn assert_users_file_refused_at(lines: &str, bad_line: usize) {
    let d = TempDir::new("cli");
    let home = d.join("home");
    std::fs::create_dir(&home).unwrap();
    let uf = d.join("users");
    std::fs::write(&uf, lines.replace("{home}", &home.display().to_string())).unwrap();
    let u = uf.display().to_string();
    with_root(&["-U", &u], |a| {
        refuses(a, &[]);
        let out = run_bin(a, b"");
        assert!(
            names_line(&out.stderr, bad_line),
            "should name line {bad_line}: {:?}",
            out.stderr
        );
    });
}

#[test]
fn refuses_users_file_with_malformed_line_naming_the_line() {
    assert_users_file_refused_at(
        &format!("# users\nalice:{HASH}:{{home}}:rw\nthis line is not a user\n"),
        3,
    );
}

#[test]
fn refuses_users_file_with_unknown_permission() {
    assert_users_file_refused_at(&format!("# comment\n\nbob:{HASH}:{{home}}:readwrite\n"), 3);
}

#[test]
fn refuses_unparsable_listen_address() {
    let root = TempDir::new("cli");
    let r = root.path().display().to_string();
    refuses(
        &["-a", "--root", &r, "--listen", "not-an-address"],
        &["not-an-address"],
    );
}

#[test]
fn refuses_listen_address_already_in_use() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let root = TempDir::new("cli");
    let r = root.path().display().to_string();
    refuses(&["-a", "--root", &r, "--listen", &addr], &[&addr]);
}

#[test]
fn refuses_bad_pasv_ports() {
    for bad in ["5000", "6000-5000", "a-b", "0-70000"] {
        with_root(&["-a", "--pasv-ports", bad], |a| refuses(a, &[]));
    }
}

#[test]
fn refuses_bad_pasv_address() {
    for bad in ["nope", "::1", "10.0.0"] {
        with_root(&["-a", "--pasv-address", bad], |a| refuses(a, &[]));
    }
}

#[test]
fn refuses_non_numeric_limits_and_timeouts() {
    for flag in [
        "--max-clients",
        "--max-per-ip",
        "--idle-timeout",
        "--data-timeout",
    ] {
        with_root(&["-a", flag, "many"], |a| refuses(a, &[]));
    }
}

#[test]
fn refuses_a_login_timeout_of_zero_or_not_a_number() {
    for value in ["0", "x"] {
        with_root(&["-a", "--login-timeout", value], |a| {
            refuses(a, &["--login-timeout"])
        });
    }
}

#[test]
fn listens_on_every_listen_flag_and_logs_each_real_port() {
    let root = TempDir::new("cli");
    let r = root.path().display().to_string();
    let s = Server::start_raw(
        &[
            "-a",
            "--root",
            &r,
            "-l",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.2:0",
        ],
        2,
    );
    let mut ips: Vec<String> = s.addrs().iter().map(|a| a.ip().to_string()).collect();
    ips.sort();
    assert_eq!(ips, ["127.0.0.1", "127.0.0.2"]);
    for a in s.addrs() {
        assert_ne!(a.port(), 0, "real port logged");
        let mut c = Client::connect(*a);
        c.login_anonymous();
        c.expect("QUIT", 221);
    }
}

#[test]
fn listens_on_ipv6_loopback() {
    let root = TempDir::new("cli");
    let r = root.path().display().to_string();
    let s = Server::start_raw(&["-a", "--root", &r, "-l", "[::1]:0"], 1);
    let a: SocketAddr = s.addr();
    assert!(a.is_ipv6(), "{a}");
    let mut c = Client::connect(a);
    c.login_anonymous();
    c.expect("QUIT", 221);
}

#[test]
fn short_flags_are_the_long_ones() {
    let root = TempDir::new("cli");
    std::fs::write(root.join("f.txt"), b"short flags\n").unwrap();
    let r = root.path().display().to_string();
    let s = Server::start_raw(&["-a", "-w", "-r", &r, "-l", "127.0.0.1:0"], 1);
    let mut c = s.connect();
    c.login_anonymous();
    assert_eq!(c.retr(Mode::Pasv, "f.txt"), b"short flags\n");
    // -w: anonymous may write.
    c.stor(Mode::Pasv, "up.bin", b"written");
    assert_eq!(std::fs::read(root.join("up.bin")).unwrap(), b"written");
}

/// Runs the same session against a server started with `flag` and returns the log length in
/// lines after the session.
fn log_lines_with(flag: Option<&str>) -> usize {
    let args: Vec<&str> = vec!["-a"];
    let mut args = args;
    if let Some(f) = flag {
        args.push(f);
    }
    // -q may silence the `listening on` line: pick a free port ourselves.
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let root = TempDir::new("verb");
    std::fs::write(root.join("f"), b"data").unwrap();
    let r = root.path().display().to_string();
    let a = addr.to_string();
    let mut full = vec!["--root", r.as_str(), "-l", a.as_str()];
    full.extend(args);
    let mut cmd = std::process::Command::new(BIN);
    let log = TempDir::new("verblog");
    let logf = std::fs::File::create(log.join("stderr")).unwrap();
    cmd.args(&full)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(logf);
    let mut child = cmd.spawn().unwrap();
    let up = eventually(IO_TIMEOUT, || std::net::TcpStream::connect(addr).is_ok());
    if !up {
        let _ = child.kill();
        let _ = child.wait();
        panic!("server with {flag:?} never accepted");
    }
    {
        let mut c = Client::connect(addr);
        c.login_anonymous();
        c.retr(Mode::Pasv, "f");
        c.expect("QUIT", 221);
        let _ = c.wait_closed(IO_TIMEOUT);
    }
    // SIGTERM and its exit, rather than a pause and SIGKILL: once the process has exited, every
    // line it logged for the session is in the file.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    if wait_child(&mut child, IO_TIMEOUT).is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("server with {flag:?} did not exit after SIGTERM");
    }
    std::fs::read_to_string(log.join("stderr"))
        .unwrap()
        .lines()
        .count()
}

#[test]
fn verbose_logs_more_and_quiet_logs_less_than_default() {
    let quiet = log_lines_with(Some("-q"));
    let normal = log_lines_with(None);
    let verbose = log_lines_with(Some("-v"));
    let verbose_long = log_lines_with(Some("--verbose"));
    let quiet_long = log_lines_with(Some("--quiet"));
    assert!(verbose > normal, "-v {verbose} lines, default {normal}");
    assert!(
        verbose_long > normal,
        "--verbose {verbose_long} lines, default {normal}"
    );
    assert!(quiet < normal, "-q {quiet} lines, default {normal}");
    assert!(
        quiet_long < normal,
        "--quiet {quiet_long} lines, default {normal}"
    );
}

fn exits_0_on(sig: i32) {
    let mut s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    c.expect("NOOP", 200);
    s.signal(sig);
    let st = s
        .wait_exit(IO_TIMEOUT)
        .expect("server exits after the signal");
    assert_eq!(st.code(), Some(0), "exit status after signal {sig}: {st:?}");
    // The session was closed (possibly after a 421).
    let rest = c
        .wait_closed(IO_TIMEOUT)
        .expect("control connection closed");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.is_empty() || rest.starts_with("421"), "{rest:?}");
    // And nothing listens any more.
    assert!(std::net::TcpStream::connect(s.addr()).is_err());
}

#[test]
fn sigterm_closes_sessions_and_exits_0() {
    exits_0_on(libc::SIGTERM);
}

#[test]
fn sigint_closes_sessions_and_exits_0() {
    exits_0_on(libc::SIGINT);
}

#[test]
fn sigterm_when_idle_without_sessions_exits_0() {
    let mut s = Server::start(&["-a"]);
    s.signal(libc::SIGTERM);
    let st = s.wait_exit(IO_TIMEOUT).expect("server exits");
    assert_eq!(st.code(), Some(0));
}
