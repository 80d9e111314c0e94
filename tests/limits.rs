//! Limits and timeouts: --max-clients, --max-per-ip, --idle-timeout, --data-timeout,
//! --pasv-ports, --pasv-address.

#[macro_use]
mod common;

use common::*;
use std::io::Read;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[test]
fn max_clients_2_refuses_the_third_with_421() {
    let s = Server::start(&["-a", "--max-clients", "2"]);
    let mut a = s.anonymous();
    let mut b = s.connect();
    let mut third = Client::connect_raw(s.addr());
    refused_with_421(&mut third);
    // From another IP too.
    let mut other =
        Client::from_stream(tcp_connect_from(Ipv4Addr::new(127, 0, 0, 2), s.addr()).unwrap());
    refused_with_421(&mut other);
    a.expect("NOOP", 200);
    b.expect("NOOP", 200);
    // A slot frees when a session ends.
    a.expect("QUIT", 221);
    let _ = a.wait_closed(IO_TIMEOUT);
    let ok = eventually(IO_TIMEOUT, || {
        let mut c = Client::connect_raw(s.addr());
        c.try_reply().map(|r| r.code == 220).unwrap_or(false)
    });
    assert!(ok, "a new session is accepted after one left");
}

#[test]
fn max_per_ip_1_refuses_a_second_session_from_the_same_ip() {
    let s = Server::start(&["-a", "--max-per-ip", "1"]);
    let mut a = s.anonymous();
    let mut second = Client::connect_raw(s.addr());
    refused_with_421(&mut second);
    // Another IP is still welcome.
    let mut other =
        Client::from_stream(tcp_connect_from(Ipv4Addr::new(127, 0, 0, 2), s.addr()).unwrap());
    other.reply().expect(220);
    other.login_anonymous();
    a.expect("NOOP", 200);
}

#[test]
fn idle_timeout_closes_an_idle_session_with_421() {
    let s = Server::start(&["-a", "--idle-timeout", "1"]);
    let mut c = s.anonymous();
    let t = Instant::now();
    let r = c.try_reply().expect("421 before the close");
    assert_eq!(r.code, 421, "{:?}", r.lines);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "idle close after {took:?}"
    );
    assert!(c.wait_closed(IO_TIMEOUT).is_ok());
    // Before login too.
    let mut d = s.connect();
    let r = d.try_reply().expect("421 before the close");
    assert_eq!(r.code, 421);
}

#[test]
fn idle_timeout_is_reset_by_commands() {
    let s = Server::start(&["-a", "--idle-timeout", "2"]);
    let mut c = s.anonymous();
    // Every command line counts, NOOP included (keep-alives).
    for cmd in ["PWD", "NOOP", "TYPE I", "NOOP", "CWD /", "NOOP"] {
        std::thread::sleep(Duration::from_millis(700));
        let r = c.cmd(cmd);
        assert_ne!(r.code, 421, "{cmd} after 0.7 s: {:?}", r.lines);
    }
}

#[test]
fn idle_timeout_does_not_cut_a_running_transfer() {
    let s = Server::start(&["-a", "--idle-timeout", "1"]);
    let data = pattern(2 * 1024 * 1024, 1);
    s.put("f.bin", &data);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    c.expect("RETR f.bin", 150);
    // Read slowly for ~3 s: the control connection is idle but a transfer runs.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        let n = d.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(100));
    }
    got.extend(read_all(&mut d));
    assert_bytes_eq(&got, &data, "slow download");
    c.reply().expect(226);
}

#[test]
fn data_timeout_gives_up_on_a_pasv_nobody_connects_to() {
    let s = Server::start(&["-a", "--data-timeout", "1"]);
    s.put("f", b"x");
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    c.pasv_addr();
    let t = Instant::now();
    c.send("RETR f");
    let mut r = c.reply();
    if r.code == 150 {
        r = c.reply();
    }
    assert_eq!(r.code, 425, "{:?}", r.lines);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    c.expect("NOOP", 200);
}

#[test]
fn data_timeout_expires_an_unused_pasv_listener() {
    let s = Server::start(&["-a", "--data-timeout", "1"]);
    s.put("f", b"x");
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let before = s.fd_count();
    c.pasv_addr();
    // The listener's expiry, seen as its descriptor going away (bounded).
    assert!(
        eventually(IO_TIMEOUT, || s.fd_count() <= before),
        "the unused passive listener was never closed"
    );
    let mut r = c.cmd("RETR f");
    if r.code == 150 {
        r = c.reply();
    }
    assert_eq!(r.code, 425, "{:?}", r.lines);
    c.expect("NOOP", 200);
}

#[test]
fn data_timeout_gives_up_on_a_stalled_download() {
    let s = Server::start(&["-a", "--data-timeout", "1"]);
    let f = std::fs::File::create(s.path("big.bin")).unwrap();
    f.set_len(1 << 30).unwrap();
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    c.expect("RETR big.bin", 150);
    // The transfer runs (first bytes arrive), then we stop reading: the buffers fill and it
    // stalls. 425 would be wrong here: the connection was opened.
    let mut head = vec![0u8; 64 * 1024];
    d.read_exact(&mut head).unwrap();
    let t = Instant::now();
    let r = c.reply();
    assert!(
        r.code == 426 || r.code == 421 || r.code == 451,
        "stalled transfer: {:?}",
        r.lines
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

#[test]
fn pasv_ports_are_taken_from_the_range() {
    let (min, max) = port_range(11);
    let range = format!("{min}-{max}");
    let s = Server::start(&["-a", "--pasv-ports", &range]);
    s.put("f", b"ranged");
    let mut c = s.anonymous();
    for _ in 0..6 {
        let a = c.pasv_addr();
        assert!(
            (min..=max).contains(&a.port()),
            "{} not in {range}",
            a.port()
        );
        let p = c.epsv_port();
        assert!((min..=max).contains(&p), "{p} not in {range}");
    }
    for mode in [Mode::Pasv, Mode::Epsv, Mode::Pasv] {
        assert_eq!(c.retr(mode, "f"), b"ranged");
    }
}

#[test]
fn pasv_port_range_of_one_port_is_reused() {
    let (p, _) = port_range(1);
    let range = format!("{p}-{p}");
    let s = Server::start(&["-a", "--pasv-ports", &range]);
    s.put("f", b"single");
    let mut c = s.anonymous();
    for _ in 0..3 {
        let a = c.pasv_addr();
        assert_eq!(a.port(), p);
        let mut d = tcp_connect(a);
        c.expect("RETR f", 150);
        assert_eq!(read_all(&mut d), b"single");
        c.reply().expect(226);
    }
}

#[test]
fn pasv_address_is_announced_in_227() {
    let s = Server::start(&["-a", "--pasv-address", "10.1.2.3"]);
    s.put("f", b"nat");
    let mut c = s.anonymous();
    let r = c.expect("PASV", 227);
    let (ip, port) = parse_227(&r.lines[0]);
    assert_eq!(ip, Ipv4Addr::new(10, 1, 2, 3));
    // The listener is local: connect to it on 127.0.0.1 (never to 10.1.2.3).
    let mut d = tcp_connect((Ipv4Addr::LOCALHOST, port).into());
    c.expect("RETR f", 150);
    assert_eq!(read_all(&mut d), b"nat");
    c.reply().expect(226);
    // EPSV carries no address.
    c.epsv_port();
}

#[test]
fn data_timeout_gives_up_on_a_stalled_upload() {
    let s = Server::start(&["-a", "-w", "--data-timeout", "1"]);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    c.expect("STOR idle.bin", 150);
    // Sends a little (the server writes it), then neither sends nor closes.
    use std::io::Write;
    d.write_all(b"started").unwrap();
    assert!(eventually(IO_TIMEOUT, || std::fs::metadata(
        s.path("idle.bin")
    )
    .map(|m| m.len() == 7)
    .unwrap_or(false)));
    let t = Instant::now();
    let r = c.reply();
    assert!(
        r.code == 426 || r.code == 421 || r.code == 451,
        "stalled upload: {:?}",
        r.lines
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

#[test]
fn default_max_per_ip_is_16() {
    let s = Server::start(&["-a"]);
    let mut held: Vec<Client> = (0..16).map(|_| s.connect()).collect();
    let mut extra = Client::connect_raw(s.addr());
    refused_with_421(&mut extra);
    held[0].expect("NOOP", 200);
}
