//! `--port-20` (issue 13): PORT/EPRT data connections come from port 20 of the control
//! connection's local address, seen by the client's own listener: with the raw client in PORT
//! and EPRT, over IPv6, with Python's ftplib in active mode, two transfers at once; across
//! `--run-as nobody` with CAP_NET_BIND_SERVICE the one capability left; a process that cannot
//! bind port 20 says so once at start and serves active mode from any port; a port 20 taken at
//! run time falls back for that transfer alone; without the flag the port is never 20.
//!
//! The suite runs as root in CI: a test that needs root fails (it does not skip) without it.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;

use common::{
    accept_timeout, pattern, read_all, require, require_root, run_ok, Client, Server, TempDir, BIN,
    IO_TIMEOUT,
};

const FLAG: &str = "--port-20";
const WARNING: &str = "--port-20: port 20 cannot be used";

/// A server with `hello.txt` in its root, started with `args` by `cmd` (BIN, or BIN under
/// setpriv).
fn start(cmd: Command, args: &[&str]) -> (TempDir, Server) {
    let root = TempDir::new("port20");
    root.write("hello.txt", b"hello from port 20\n");
    let server = Server::start_command(cmd, root.path(), args);
    (root, server)
}

/// PORT (or EPRT with `extended`) to a listener of the test's own, RETR hello.txt: the
/// server's source address of the data connection, after checking the bytes and the 226.
#[track_caller]
fn retr_source(c: &mut Client, extended: bool) -> SocketAddr {
    let listener = if extended { c.eprt() } else { c.port() };
    c.expect("TYPE I", 200);
    let first = c.cmd("RETR hello.txt");
    assert!(first.is(&[125, 150]), "{first:?}");
    let mut data = accept_timeout(&listener, IO_TIMEOUT).expect("the server connected back");
    let source = data.peer_addr().unwrap();
    assert_eq!(read_all(&mut data), b"hello from port 20\n");
    assert_eq!(c.reply().code, 226);
    source
}

/// The server's data connections come from port 20 of the address the client reached, for
/// PORT and EPRT alike, on one session after the other.
#[test]
fn port_and_eprt_data_connections_come_from_port_20() {
    require_root(FLAG);
    let (_root, server) = start(Command::new(BIN), &["--anonymous", FLAG]);
    let mut c = server.anonymous();
    for extended in [false, true, false] {
        let source = retr_source(&mut c, extended);
        assert_eq!(source, "127.0.0.1:20".parse().unwrap(), "EPRT: {extended}");
    }
    assert_eq!(server.log_count(WARNING), 0, "{}", server.log_text());
}

/// EPRT over IPv6: from port 20 of the control connection's IPv6 address, [::1]:20.
#[test]
fn eprt_over_ipv6_comes_from_port_20_of_the_ipv6_address() {
    require_root(FLAG);
    let (_root, server) = start(
        Command::new(BIN),
        &["--anonymous", FLAG, "--listen", "[::1]:0"],
    );
    let mut c = server.anonymous();
    let source = retr_source(&mut c, true);
    assert_eq!(source, SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 20));
}

/// Without the flag the kernel picks the port: never 20.
#[test]
fn without_the_flag_the_source_port_is_not_20() {
    let (_root, server) = start(Command::new(BIN), &["--anonymous"]);
    let mut c = server.anonymous();
    for extended in [false, true] {
        let source = retr_source(&mut c, extended);
        assert_eq!(source.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(source.port(), 20, "EPRT: {extended}");
    }
}

/// Two uploads from two clients at once, both data connections open together and both from
/// port 20 (SO_REUSEADDR: each goes to another client port); both files arrive whole.
#[test]
fn two_active_transfers_at_once_both_come_from_port_20() {
    require_root(FLAG);
    let (_root, server) = start(Command::new(BIN), &["--anonymous", "--writable", FLAG]);
    let contents = [pattern(300_000, 1), pattern(300_000, 2)];
    let mut clients = [server.anonymous(), server.anonymous()];
    let mut streams: Vec<TcpStream> = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let listener = c.port();
        c.expect("TYPE I", 200);
        let first = c.cmd(&format!("STOR up{i}.bin"));
        assert!(first.is(&[125, 150]), "{first:?}");
        let mut data = accept_timeout(&listener, IO_TIMEOUT).expect("the server connected back");
        // Half of the file now: the connection stays open while the other one starts.
        data.write_all(&contents[i][..150_000]).unwrap();
        streams.push(data);
    }
    let sources: Vec<SocketAddr> = streams.iter().map(|s| s.peer_addr().unwrap()).collect();
    assert_eq!(sources[0].port(), 20, "{sources:?}");
    assert_eq!(sources[1].port(), 20, "{sources:?}");
    assert_ne!(
        streams[0].local_addr().unwrap(),
        streams[1].local_addr().unwrap()
    );
    for (i, (c, mut data)) in clients.iter_mut().zip(streams).enumerate() {
        data.write_all(&contents[i][150_000..]).unwrap();
        data.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = data.read_to_end(&mut rest);
        assert_eq!(c.reply().code, 226);
    }
    for (i, content) in contents.iter().enumerate() {
        let got = fs::read(server.path(&format!("up{i}.bin"))).unwrap();
        assert!(got == *content, "up{i}.bin differs");
    }
}

const FTPLIB_SCRIPT: &str = r#"
import ftplib, io, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=10)
ftp.login()
ftp.set_pasv(False)
ftp.storbinary("STOR up.bin", io.BytesIO(b"uploaded\n" * 1000))
conn = ftp.transfercmd("RETR up.bin")
source = conn.getpeername()
data = b""
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    data += chunk
conn.close()
assert ftp.voidresp().startswith("226")
assert data == b"uploaded\n" * 1000, len(data)
ftp.quit()
print(source[0], source[1])
"#;

/// Python's ftplib in active mode: its listener sees the data connection from port 20.
#[test]
fn python_ftplib_active_mode_sees_port_20() {
    require_root(FLAG);
    require("python3");
    let (_root, server) = start(Command::new(BIN), &["--anonymous", "--writable", FLAG]);
    let tmp = TempDir::new("port20-py");
    fs::write(tmp.join("t.py"), FTPLIB_SCRIPT).unwrap();
    let out = run_ok(tmp.path(), "python3", &["t.py", &server.port().to_string()]);
    assert_eq!(out, "127.0.0.1 20\n");
}

/// `--run-as nobody --port-20`: CAP_NET_BIND_SERVICE (bit 10) is the one capability left,
/// effective and permitted, none inheritable or ambient; root is gone and the data
/// connections still come from port 20.
#[test]
fn run_as_nobody_keeps_cap_net_bind_service_alone_and_port_20_works() {
    require_root("--run-as nobody");
    let (_root, server) = start(
        Command::new(BIN),
        &["--anonymous", FLAG, "--run-as", "nobody"],
    );
    for (field, want) in [
        ("CapEff", "0000000000000400"),
        ("CapPrm", "0000000000000400"),
        ("CapInh", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
    ] {
        assert_eq!(server.status_field(field), want, "{field}");
    }
    let uids = server.status_field("Uid");
    assert!(
        uids.split_whitespace().all(|uid| uid == "65534"),
        "Uid: {uids}"
    );
    assert_eq!(server.log_count(WARNING), 0, "{}", server.log_text());
    let mut c = server.anonymous();
    for extended in [false, true] {
        assert_eq!(retr_source(&mut c, extended).port(), 20, "EPRT: {extended}");
    }
}

/// True when the kernel lets any user bind port 20 (net.ipv4.ip_unprivileged_port_start of
/// 20 or less, as some container runtimes set it): then an unprivileged server may use it.
fn port_20_unprivileged() -> bool {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    text.trim().parse::<u16>().unwrap() <= 20
}

/// Runs `expect_warning`'s check and then a PORT and an EPRT transfer: from port 20 when the
/// server could keep it, from any other port (and still complete) when it could not.
#[track_caller]
fn check_fallback(server: &Server, expect_warning: bool, why: &str) {
    let warnings = server.log_count(WARNING);
    if !expect_warning {
        assert_eq!(warnings, 0, "{}", server.log_text());
    } else {
        assert_eq!(warnings, 1, "{}", server.log_text());
        assert_eq!(server.log_count(why), 1, "{}", server.log_text());
        let listening = server
            .log_lines()
            .iter()
            .position(|line| line.contains("listening on"))
            .unwrap();
        let warned = server
            .log_lines()
            .iter()
            .position(|line| line.contains(WARNING))
            .unwrap();
        assert!(warned < listening, "the warning comes at start");
    }
    let mut c = server.anonymous();
    for extended in [false, true] {
        let port = retr_source(&mut c, extended).port();
        assert_eq!(port == 20, !expect_warning, "EPRT: {extended}, port {port}");
    }
}

/// Started as nobody (setpriv, not --run-as): no CAP_NET_BIND_SERVICE, so one warning line at
/// start, and active mode works from any port.
#[test]
fn without_root_it_warns_once_and_active_mode_still_works() {
    require_root("setpriv --reuid");
    require("setpriv");
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        BIN,
    ]);
    let (_root, server) = start(cmd, &["--anonymous", FLAG]);
    assert_eq!(server.status_field("CapEff"), "0000000000000000");
    check_fallback(
        &server,
        !port_20_unprivileged(),
        "the process lacks CAP_NET_BIND_SERVICE, which root has",
    );
}

/// Root without CAP_NET_BIND_SERVICE in its bounding set: --run-as cannot keep it, so the
/// process keeps no capability at all, warns once, and serves active mode from any port.
#[test]
fn run_as_without_the_capability_to_keep_warns_and_keeps_none() {
    require_root("--run-as nobody");
    require("setpriv");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set=-net_bind_service", "--", BIN]);
    let (_root, server) = start(cmd, &["--anonymous", FLAG, "--run-as", "nobody"]);
    assert_eq!(server.status_field("CapEff"), "0000000000000000");
    assert_eq!(server.status_field("CapPrm"), "0000000000000000");
    check_fallback(
        &server,
        !port_20_unprivileged(),
        "CAP_NET_BIND_SERVICE could not be kept across --run-as",
    );
}

/// Port 20 held by a listener of the test's on the server's address: that transfer comes from
/// another port (and says why at debug level); once the port is free again, the next one comes
/// from port 20. 127.0.20.1 is this test's own loopback address, so the other tests' servers
/// keep their port 20.
#[test]
fn a_port_20_taken_at_run_time_falls_back_for_that_transfer() {
    require_root(FLAG);
    let (_root, server) = start(
        Command::new(BIN),
        &["--anonymous", FLAG, "-v", "--listen", "127.0.20.1:0"],
    );
    let mut c = server.anonymous();
    let squatter = TcpListener::bind("127.0.20.1:20").expect("bind 127.0.20.1:20");
    let port = retr_source(&mut c, false).port();
    assert_ne!(port, 20);
    assert!(
        server.wait_for_log("cannot connect from 127.0.20.1:20", 1, IO_TIMEOUT),
        "{}",
        server.log_text()
    );
    drop(squatter);
    assert_eq!(retr_source(&mut c, false).port(), 20);
    assert_eq!(server.log_count("cannot connect from"), 1);
}
