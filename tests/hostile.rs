//! Hostile sessions, through the real server: password guessing, connections that never log in,
//! clients that never read, NOOP keep-alives, HTTP and TLS sent to the FTP port, recursive
//! listings, over-long lines, PORT bounces and data connections stolen from another address.
//! Every test takes a few seconds at most (the login timeout test runs with
//! `--login-timeout 2`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{
    assert_hello_gets_only_the_greeting, pattern, read_until_closed, set_linger_zero,
    set_send_buffer, tcp_connect_from, Client, Reply, Server, TempDir, IO_TIMEOUT,
};

fn serve(root: &TempDir, extra: &[&str]) -> Server {
    let mut args = vec!["--anonymous"];
    args.extend_from_slice(extra);
    Server::start_in(root.path(), &args)
}

/// A NOOP round trip on `client`, timed.
fn noop_rtt(client: &mut Client) -> Duration {
    let start = Instant::now();
    client.expect("NOOP", 200);
    start.elapsed()
}

/// Password guessing: each failed login's 530 comes after a delay that grows (0.5 s, 1 s, 2 s),
/// the server serves others meanwhile (a timer, not a sleep), and the third failure closes the
/// session.
#[test]
fn failed_logins_get_a_growing_delay_and_three_close_the_session() {
    let root = TempDir::new("hostile-login");
    let server = serve(&root, &[]);
    let mut guesser = server.connect();
    let mut bystander = server.anonymous();
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        guesser.expect("USER root", 331);
        let start = Instant::now();
        guesser.send("PASS guess");
        if attempt == 3 {
            // While the guesser waits for its 530, another session is answered at once.
            for _ in 0..3 {
                let rtt = noop_rtt(&mut bystander);
                // (A sleep instead of a timer would hold it for the whole 2 s delay.)
                assert!(
                    rtt < Duration::from_secs(1),
                    "NOOP took {rtt:?} during a login delay"
                );
            }
        }
        let reply = guesser.reply();
        delays.push(start.elapsed());
        assert_eq!(reply.code, 530, "attempt {attempt}: {reply:?}");
    }
    assert!(delays[0] >= Duration::from_millis(450), "{delays:?}");
    assert!(delays[1] >= Duration::from_millis(950), "{delays:?}");
    assert!(delays[2] >= Duration::from_millis(1900), "{delays:?}");
    assert!(delays[2] < Duration::from_secs(6), "{delays:?}");
    // After the third failure: EOF, with nothing else said.
    let rest = guesser.expect_closed(Duration::from_secs(2));
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    // A wrong password for "anonymous" cannot fail, but an unknown user right after the delays
    // starts again at 0.5 s on a new connection (the penalty is per session).
    let mut fresh = server.connect();
    fresh.expect("USER nobody", 331);
    let start = Instant::now();
    fresh.expect("PASS x", 530);
    assert!(start.elapsed() >= Duration::from_millis(450));
    assert!(start.elapsed() < Duration::from_millis(1500));
    noop_rtt(&mut bystander);
}

/// Password guessers that reset the connection (SO_LINGER 0) while their 530 is delayed: each
/// session must still end and free its slot, or a few guesses would lock the address out
/// (--max-per-ip, 16 by default) and, from enough addresses, everyone (--max-clients).
#[test]
fn resets_during_a_login_delay_free_their_session_slots() {
    let root = TempDir::new("hostile-resetdelay");
    let server = serve(&root, &[]);
    let baseline = server.fd_count();
    // Four waves of 10 (under the default limit of 16 at a time, 40 in all): each wave's 530s
    // are due 0.5 s after their PASS, when each session finds the reset and must close.
    for wave in 0..4 {
        for i in 0..10 {
            let mut guesser = Client::connect_raw(server.addr());
            let greeting = guesser.reply();
            assert_eq!(
                greeting.code, 220,
                "guesser {i} of wave {wave} was refused: {greeting:?}"
            );
            guesser.expect("USER root", 331);
            guesser.send("PASS guess");
            set_linger_zero(guesser.stream());
            drop(guesser);
        }
        std::thread::sleep(Duration::from_millis(800));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.fd_count() != baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed = server.log_count_where(|l| l.ends_with("] closed"));
    let opened = server.log_count_where(|l| l.contains("] connection from "));
    assert_eq!(
        (server.fd_count(), closed),
        (baseline, opened),
        "descriptors (now, at start) and sessions (closed, opened) after 40 guessers reset \
         during their login delay"
    );
    server.anonymous().expect("NOOP", 200);
}

/// Commands sent during a login delay wait for it: a client cannot skip the delay by
/// pipelining the next USER/PASS.
#[test]
fn pipelined_guesses_wait_out_each_delay() {
    let root = TempDir::new("hostile-pipeline");
    let server = serve(&root, &[]);
    let mut guesser = server.connect();
    let start = Instant::now();
    guesser.send_raw(
        b"USER a\r\nPASS 1\r\nUSER b\r\nPASS 2\r\nUSER c\r\nPASS 3\r\nUSER d\r\nPASS 4\r\n",
    );
    let mut codes = Vec::new();
    while let Ok(reply) = guesser.read_reply() {
        codes.push(reply.code);
    }
    let elapsed = start.elapsed();
    assert_eq!(codes, [331, 530, 331, 530, 331, 530], "{codes:?}");
    assert!(elapsed >= Duration::from_millis(3400), "{elapsed:?}");
}

/// A connection that never logs in is closed with 421 after the login timeout (2 s here), even
/// if it keeps sending commands that count as activity (so it is not the idle timeout at work).
#[test]
fn a_connection_that_never_logs_in_is_closed_after_the_login_timeout() {
    let root = TempDir::new("hostile-logintimeout");
    let server = serve(&root, &["--login-timeout", "2"]);
    let start = Instant::now();
    let mut client = server.connect();
    client.expect("USER anonymous", 331);
    let mut closing_reply = None;
    while start.elapsed() < Duration::from_secs(8) {
        match poll_reply(&mut client, Duration::from_millis(500)) {
            Some(reply) => {
                closing_reply = Some(reply);
                break;
            }
            // SYST is activity (unlike NOOP); it must not extend the login deadline.
            None => match client.cmd("SYST") {
                reply if reply.code == 215 => {}
                reply => {
                    closing_reply = Some(reply);
                    break;
                }
            },
        }
    }
    let elapsed = start.elapsed();
    let reply = closing_reply.expect("still logged out and connected after 8 s");
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}"
    );
    client.expect_closed(Duration::from_secs(5));
    assert!(server.wait_for_log("] closed", 1, Duration::from_secs(5)));
}

/// A client that sends thousands of commands and never reads a reply: the server stops reading
/// it once its replies back up (memory stays bounded), stays responsive to another session, and
/// closes the flooder at the idle timeout.
#[test]
fn a_client_that_never_reads_its_replies_stops_being_read_and_others_stay_served() {
    let root = TempDir::new("hostile-flood");
    let server = serve(&root, &["--idle-timeout", "2"]);
    let rss_before: u64 = rss_kib(&server);
    let mut other = server.anonymous();
    let flooder = server.connect();
    // A small, fixed send buffer: what the client can have in flight is then bounded by the
    // buffers (some 100-300 KiB), and everything past that must wait for the server to read.
    set_send_buffer(flooder.stream(), 32 * 1024);
    let start = Instant::now();
    // Up to 4 MiB of HELP lines (700,000 commands, some 230 MiB of replies if all were
    // answered), written without ever reading.
    const FLOOD_BYTES: usize = 4 << 20;
    let chunk = b"HELP\r\n".repeat(10_000);
    let mut written = 0usize;
    let mut next_rss_check = 0;
    {
        let mut stream = flooder.stream();
        stream.set_nonblocking(true).unwrap();
        let mut blocked_since: Option<Instant> = None;
        while written < FLOOD_BYTES && start.elapsed() < Duration::from_secs(5) {
            match stream.write(&chunk) {
                Ok(n) => {
                    written += n;
                    blocked_since = None;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let since = *blocked_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(500) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("flood write failed early: {e} after {written} bytes"),
            }
            if written >= next_rss_check {
                // Stop early (and fail) rather than let a server that buffers every reply
                // eat the test machine's memory.
                let rss = rss_kib(&server);
                assert!(
                    rss < rss_before + 32 * 1024,
                    "the server's memory grew from {rss_before} KiB to {rss} KiB after \
                     {written} bytes of commands: it keeps reading a client that does not read"
                );
                next_rss_check = written + (256 << 10);
            }
        }
        stream.set_nonblocking(false).unwrap();
    }
    eprintln!("flood: {written} bytes of commands taken before the client blocked");
    assert!(
        written < 1 << 20,
        "{written} bytes of commands were taken in: the server kept reading the flooder"
    );
    // Meanwhile the other session is answered promptly (PWD first: it is activity, so the
    // 2 s idle timeout cannot close this session during the checks).
    other.expect("PWD", 257);
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(noop_rtt(&mut other));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        worst < Duration::from_secs(1),
        "NOOP took {worst:?} during the flood"
    );
    let rss_during = rss_kib(&server);
    assert!(
        rss_during < rss_before + 16 * 1024,
        "the server's memory grew from {rss_before} KiB to {rss_during} KiB: it kept reading"
    );
    // The flooder is closed at the idle timeout (2 s): its socket ends after what was sent.
    let mut got = Vec::new();
    let closed = read_until_closed(
        &mut flooder.stream().try_clone().unwrap(),
        Duration::from_secs(8),
        &mut got,
    );
    assert!(closed.is_ok(), "the flooder is still connected after 8 s");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // It got the replies of the commands run before the server stopped reading: a bounded
    // amount (the backlog limit plus socket buffers), not one per command sent.
    let replies = got.windows(8).filter(|w| w == b"214 Help").count();
    let sent = written / 6;
    assert!(replies < sent, "{replies} replies for {sent} commands");
    // The server still answers a new connection.
    let mut fresh = server.anonymous();
    fresh.expect("PWD", 257);
}

/// A flood of commands from a client that does read its replies is served in bounded turns:
/// another session's NOOP is still answered promptly while the flood runs.
#[test]
fn a_flood_of_commands_does_not_starve_other_sessions() {
    let root = TempDir::new("hostile-fair");
    let server = serve(&root, &[]);
    let mut other = server.anonymous();
    let flooder = server.anonymous();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut reader = flooder.stream().try_clone().unwrap();
    let mut writer = flooder.stream().try_clone().unwrap();
    let drained = std::thread::spawn(move || {
        let mut total = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        reader
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let chunk = b"SYST\r\n".repeat(5000);
            let start = Instant::now();
            let mut sent = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && start.elapsed() < Duration::from_secs(10)
            {
                match writer.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        worst = worst.max(noop_rtt(&mut other));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flood.join().unwrap();
    flooder.stream().shutdown(std::net::Shutdown::Both).unwrap();
    let received = drained.join().unwrap();
    assert!(
        worst < Duration::from_millis(500),
        "NOOP took {worst:?} while another client flooded ({sent} bytes sent, {received} \
         bytes of replies)"
    );
    assert!(
        received > 100_000,
        "the flood was not served: {received} bytes"
    );
}

/// A client that opens a download and never reads the data: once the socket stops draining,
/// the data timeout ends the transfer with 426 and the session goes on.
#[test]
fn a_client_that_never_reads_its_data_is_cut_at_the_data_timeout() {
    let root = TempDir::new("hostile-stuckdata");
    std::fs::write(root.join("big.bin"), pattern(32 << 20, 7)).unwrap();
    let server = serve(&root, &["--data-timeout", "2"]);
    let mut client = server.anonymous();
    client.expect("TYPE I", 200);
    for connect_first in [false, true] {
        let (data, start) = if connect_first {
            // The usual passive order: connect, then RETR (once the server has surely
            // accepted the connection).
            let data = client.pasv_connect();
            std::thread::sleep(Duration::from_millis(200));
            let start = Instant::now();
            client.expect("RETR big.bin", 150);
            (data, start)
        } else {
            let addr = client.pasv_addr();
            let start = Instant::now();
            client.expect("RETR big.bin", 150);
            (TcpStream::connect(addr).unwrap(), start)
        };
        let reply = client.reply();
        assert_eq!(
            reply.code,
            426,
            "data connection opened {} the RETR, then never read: {reply:?}",
            if connect_first { "before" } else { "after" }
        );
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(6),
            "{elapsed:?}"
        );
        client.expect("NOOP", 200);
        drop(data);
    }
    assert_eq!(client.try_retr(b"missing").unwrap_err().code, 550);
}

/// Keep-alives keep a session (issue 11): a client sending NOOP every 0.5 s outlives
/// --idle-timeout 2 several times over, as with vsftpd, ProFTPD and pyftpdlib; once it stops,
/// the idle timeout closes it. Slots stay bounded by --max-clients and --max-per-ip.
#[test]
fn noop_keep_alives_keep_a_session_and_silence_ends_it() {
    let root = TempDir::new("hostile-noop");
    let server = serve(&root, &["--idle-timeout", "2"]);
    let mut client = server.anonymous();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        assert_eq!(poll_reply(&mut client, Duration::from_millis(500)), None);
        client.expect("NOOP", 200);
    }
    client.expect("PWD", 257);
    let quiet = Instant::now();
    let closing = poll_reply(&mut client, Duration::from_secs(5)).expect("421 after silence");
    assert_eq!(closing.code, 421, "{closing:?}");
    let elapsed = quiet.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed <= Duration::from_millis(3500),
        "closed {elapsed:?} after the last command"
    );
    client.expect_closed(Duration::from_secs(3));
}

/// HTTP requests (a browser, a proxy probe, a cross-protocol attack) sent to the FTP port get
/// no reply at all: the session is closed at once, before or after login.
#[test]
fn http_requests_on_the_ftp_port_close_the_session_at_once() {
    let root = TempDir::new("hostile-http");
    let server = serve(&root, &[]);
    let requests: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: ftp.example\r\n\r\n",
        b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
        b"POST /upload HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        b"HEAD / HTTP/1.1\r\n\r\n",
    ];
    for request in requests {
        for logged_in in [false, true] {
            let mut client = if logged_in {
                server.anonymous()
            } else {
                server.connect()
            };
            let start = Instant::now();
            client.send_raw(request);
            let rest = client.expect_closed(Duration::from_secs(3));
            assert!(
                rest.is_empty(),
                "{:?} got a reply: {:?}",
                String::from_utf8_lossy(request),
                String::from_utf8_lossy(&rest)
            );
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{:?}",
                start.elapsed()
            );
        }
    }
    // The server is fine.
    server.anonymous().expect("NOOP", 200);
}

/// A TLS ClientHello (implicit FTPS, scanners) is not FTP: the session is closed at once,
/// whether it comes before or after the client read the 220.
#[test]
fn a_tls_client_hello_closes_the_session_at_once() {
    let root = TempDir::new("hostile-tls");
    let server = serve(&root, &[]);
    // The start of a ClientHello record: handshake (0x16), TLS 1.0 record version, length,
    // ClientHello (0x01), and some of its body.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ];
    hello.extend(pattern(160, 3));
    // After the greeting.
    let mut client = server.connect();
    let start = Instant::now();
    client.send_raw(&hello);
    let rest = client.expect_closed(Duration::from_secs(3));
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert!(start.elapsed() < Duration::from_secs(1));
    // Before reading anything, as a TLS client does: the 220, then nothing but EOF.
    assert_hello_gets_only_the_greeting(server.addr(), &hello);
    server.anonymous().expect("NOOP", 200);
}

/// LIST is never recursive: `-R` is ignored like any ls option and only the one directory is
/// listed, so one command cannot walk a whole tree.
#[test]
fn list_dash_r_lists_only_the_one_directory() {
    let root = TempDir::new("hostile-listr");
    root.mkdir("a/b/c");
    root.write("top.txt", b"t");
    root.write("a/in_a.txt", b"a");
    root.write("a/b/in_b.txt", b"b");
    root.write("a/b/c/deep.txt", b"c");
    let server = serve(&root, &[]);
    let mut c = server.anonymous();
    for line in ["LIST -R", "LIST -laR", "LIST -R /", "LIST -a -R", "NLST -R"] {
        let listing = c
            .try_listing(line)
            .unwrap_or_else(|r| panic!("{line}: {r:?}"));
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 2, "{line}: {listing:?}");
        assert!(
            listing.contains("top.txt") && listing.contains('a'),
            "{listing}"
        );
        for deeper in ["in_a", "in_b", "deep", "a:", "b:", "/a"] {
            assert!(!listing.contains(deeper), "{line} went deeper: {listing}");
        }
    }
    let listing = c.try_listing("LIST -R a").unwrap();
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(
        listing.contains("in_a.txt") && !listing.contains("in_b"),
        "{listing}"
    );
    // STAT -R over the control connection: the same one directory.
    let stat = c.cmd("STAT -R a");
    assert_eq!(stat.code, 213, "{stat:?}");
    assert!(
        stat.text().contains("in_a.txt") && !stat.text().contains("in_b"),
        "{stat:?}"
    );
}

/// A command line over 4 KiB gets 500 and the connection is closed, with or without its LF.
#[test]
fn an_over_long_command_line_gets_500_and_eof() {
    let root = TempDir::new("hostile-longline");
    let server = serve(&root, &[]);
    // With its CRLF, before login.
    let mut c = server.connect();
    c.send(&format!("USER {}", "u".repeat(5000)));
    assert_eq!(c.reply().code, 500);
    c.expect_closed(Duration::from_secs(3));
    // Logged in, a path argument.
    let mut c = server.anonymous();
    c.send(&format!("CWD {}", "d/".repeat(3000)));
    assert_eq!(c.reply().code, 500);
    c.expect_closed(Duration::from_secs(3));
    // No line end at all: 8 KiB of bytes without LF.
    let mut c = server.connect();
    c.send_raw("x".repeat(8192).as_bytes());
    assert_eq!(c.reply().code, 500);
    c.expect_closed(Duration::from_secs(3));
    // Exactly at the limit (4,096 bytes with CRLF) is still a line.
    let mut c = server.connect();
    let reply = c.cmd(&format!("NOOP {}", "n".repeat(4096 - 7)));
    assert_eq!(reply.code, 200, "{reply:?}");
}

/// PORT/EPRT may only point back at the client and at an unprivileged port (RFC 2577): a
/// bounce to 127.0.0.2 or to port 21 is refused with 504 and no connection is made there.
#[test]
fn port_bounce_to_another_host_or_a_privileged_port_is_refused() {
    let root = TempDir::new("hostile-bounce");
    root.write("f.txt", b"bounce payload\n");
    let server = serve(&root, &[]);
    let mut c = server.anonymous();
    // A would-be victim on 127.0.0.2.
    let victim = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    victim.set_nonblocking(true).unwrap();
    let vport = victim.local_addr().unwrap().port();
    for line in [
        format!("PORT 127,0,0,2,{},{}", vport >> 8, vport & 0xff),
        format!("EPRT |1|127.0.0.2|{vport}|"),
        "PORT 127,0,0,1,0,21".to_string(),
        "EPRT |1|127.0.0.1|21|".to_string(),
        "PORT 127,0,0,1,3,255".to_string(),
        "PORT 10,0,0,1,200,10".to_string(),
    ] {
        let reply = c.cmd(&line);
        assert_eq!(reply.code, 504, "{line} -> {reply:?}");
        // Nothing was prepared: a transfer now has no data connection.
        assert_eq!(c.cmd("RETR f.txt").code, 425, "after {line}");
    }
    std::thread::sleep(Duration::from_millis(300));
    match victim.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the server connected to the victim: {other:?}"),
    }
    // The same PORT back to the client itself works (the refusals were the guard, not a
    // broken PORT).
    let mine = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mine.local_addr().unwrap().port();
    c.expect(
        &format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff),
        200,
    );
    c.expect("RETR f.txt", 150);
    let (mut data, _) = mine.accept().unwrap();
    data.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bounce payload\n");
    assert_eq!(c.reply().code, 226);
}

/// A data connection to the PASV port from another address (127.0.0.2, while the client is
/// 127.0.0.1) is closed by the server and gets nothing; the real client still connects and
/// transfers, whether the intruder came before the RETR or after it.
#[test]
fn a_data_connection_from_another_address_is_dropped_and_the_client_still_transfers() {
    let root = TempDir::new("hostile-steal");
    let content = pattern(256 * 1024, 11);
    std::fs::write(root.join("f.bin"), &content).unwrap();
    let server = serve(&root, &[]);
    let mut c = server.anonymous();
    c.expect("TYPE I", 200);
    for intruder_first in [true, false] {
        let addr: SocketAddr = c.pasv_addr();
        let mut intruder = None;
        if intruder_first {
            intruder = Some(tcp_connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).expect("connect"));
        }
        c.expect("RETR f.bin", 150);
        if !intruder_first {
            intruder = Some(tcp_connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).expect("connect"));
        }
        let mut intruder = intruder.unwrap();
        let mut stolen = Vec::new();
        assert!(
            read_until_closed(&mut intruder, Duration::from_secs(3), &mut stolen).is_ok(),
            "the intruder's data connection was not closed"
        );
        assert!(stolen.is_empty(), "the intruder got {} bytes", stolen.len());
        let mut data = TcpStream::connect(addr).expect("the real client connects");
        data.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        data.read_to_end(&mut got).unwrap();
        assert!(got == content, "the client got {} bytes", got.len());
        assert_eq!(c.reply().code, 226);
    }
    // The log is read by a thread of the harness: wait for the lines rather than count now.
    assert!(
        server.wait_for_log("refused", 2, IO_TIMEOUT),
        "{}",
        server.log_text()
    );
}

/// A reply that arrives within `wait` without being asked for (None if nothing came).
fn poll_reply(client: &mut Client, wait: Duration) -> Option<Reply> {
    client.set_read_timeout(wait);
    let result = client.read_reply();
    client.set_read_timeout(IO_TIMEOUT);
    match result {
        Ok(reply) => Some(reply),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("the connection ended without a reply: {e}"),
    }
}

fn rss_kib(server: &Server) -> u64 {
    server
        .status_field("VmRSS")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmRSS")
}
