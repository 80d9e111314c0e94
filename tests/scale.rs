//! Room for 10,000 sessions on one core (issue 11): the server raises its own descriptor limit
//! to what --max-clients needs, holds 10,000 logged-in sessions from ten source addresses (so
//! --max-per-ip is met honestly), serves each one listing, keeps answering a bystander, and
//! gives every descriptor back when they go. Memory per session is a benchmark figure
//! (`scripts/bench`), not asserted here.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{eventually, parse_229, read_all, tcp_connect_from, Server, TempDir, BIN};

const SOURCES: u32 = 10;
const PER_SOURCE: usize = 1000;

/// One command and its reply on a bare socket (one descriptor per session: the harness's
/// Client holds two, and the test process must hold 10,000 of them). Returns the reply's text.
fn exchange(stream: &mut TcpStream, command: &str, code: u16) -> String {
    if !command.is_empty() {
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
    }
    read_reply(stream, code)
}

/// Reads until a reply line `code ...` has come whole (earlier lines, e.g. 331 or 150, are
/// skipped; the caller sends nothing else meanwhile, so nothing after it is lost).
fn read_reply(stream: &mut TcpStream, code: u16) -> String {
    let end = format!("{code} ");
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let text = String::from_utf8_lossy(&got);
        if let Some(line) = text.split("\r\n").find(|line| line.starts_with(&end)) {
            if text.ends_with("\r\n") {
                return line.to_string();
            }
        }
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {code} after {text:?}: {e}"));
        assert!(n > 0, "closed while waiting for {code}: {text:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// The loopback address of source `i`: 127.0.0.2 and up.
fn source(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + i as u8)
}

#[test]
fn ten_thousand_logged_in_sessions_each_list_and_a_bystander_is_answered() {
    let root = TempDir::new("scale");
    root.write("hello.txt", b"hello\n");
    let mut cmd = Command::new(BIN);
    // The server starts with the common default soft limit of 1,024 descriptors: too few for
    // 10,000 sessions unless it raises its own.
    // SAFETY: the hook only calls getrlimit(2) and setrlimit(2), which are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = 1024;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server::start_command(
        cmd,
        root.path(),
        &["-a", "--max-clients", "10010", "--max-per-ip", "1001"],
    );
    let addr = server.addr();
    let baseline = server.fd_count();

    // A bystander sends NOOP every 50 ms from its own address the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let bystander = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut s = tcp_connect_from(Ipv4Addr::new(127, 0, 1, 1), addr).unwrap();
            read_reply(&mut s, 220);
            exchange(&mut s, "USER anonymous\r\nPASS x", 230);
            let mut worst = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                exchange(&mut s, "NOOP", 200);
                worst = worst.max(t.elapsed());
                thread::sleep(Duration::from_millis(50));
            }
            worst
        })
    };

    let started = Instant::now();
    let sources: Vec<_> = (0..SOURCES)
        .map(|i| {
            thread::spawn(move || {
                let from = source(i);
                let mut sessions = Vec::with_capacity(PER_SOURCE);
                for _ in 0..PER_SOURCE {
                    let mut s = tcp_connect_from(from, addr).unwrap();
                    read_reply(&mut s, 220);
                    exchange(&mut s, "USER anonymous\r\nPASS x", 230);
                    sessions.push(s);
                }
                sessions
            })
        })
        .collect();
    let mut sessions: Vec<Vec<TcpStream>> =
        sources.into_iter().map(|t| t.join().unwrap()).collect();
    let logged_in = started.elapsed();
    // Every session is still there: the server holds them all at once.
    let held = server.fd_count();
    assert!(
        held >= baseline + SOURCES as usize * PER_SOURCE,
        "{held} descriptors for 10,000 sessions (baseline {baseline})"
    );

    // Each session lists the root, ten sources at a time, all 10,000 staying connected.
    let listers: Vec<_> = sessions
        .drain(..)
        .enumerate()
        .map(|(i, mut group)| {
            thread::spawn(move || {
                // The data connection comes from the session's own address (RFC 2577 check).
                let from = source(i as u32);
                for s in &mut group {
                    let reply = exchange(s, "EPSV", 229);
                    let port = parse_229(&reply);
                    let mut data = tcp_connect_from(from, SocketAddr::new(addr.ip(), port))
                        .expect("data connection");
                    s.write_all(b"NLST\r\n").unwrap();
                    assert_eq!(read_all(&mut data), b"hello.txt\r\n");
                    // The 150 and the 226 may come in one read: wait for the 226.
                    read_reply(s, 226);
                }
                group
            })
        })
        .collect();
    let sessions: Vec<Vec<TcpStream>> = listers.into_iter().map(|t| t.join().unwrap()).collect();
    let listed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let worst_noop = bystander.join().unwrap();
    eprintln!(
        "10,000 sessions: logged in after {logged_in:?}, listed after {listed:?}, \
         bystander's slowest NOOP {worst_noop:?}, {held} descriptors held"
    );
    // A generous bound for a debug build on a loaded 2-core machine: the loop never stalls
    // for long, whatever the 10,000 others do.
    assert!(
        worst_noop < Duration::from_secs(1),
        "a bystander's NOOP took {worst_noop:?}"
    );

    drop(sessions);
    assert!(
        eventually(Duration::from_secs(30), || server.fd_count() <= baseline),
        "descriptors not given back: {} (baseline {baseline})",
        server.fd_count()
    );
}
