//! Security rules: the jail (`..`, absolute paths, symlinks out of the root), the PORT/EPRT
//! bounce guard (RFC 2577) and the passive data connection's peer check.

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

#[test]
fn cwd_dotdot_at_root_stays_at_root() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    for cmd in [
        "CWD ..",
        "CWD ../..",
        "CDUP",
        "CWD /..",
        "CWD ../../../../..",
    ] {
        c.expect(cmd, 250);
        assert_eq!(
            c.pwd(),
            "257 \"/\" is the current directory.",
            "after {cmd}"
        );
    }
    // Listing ".." at the root lists the root.
    s.put("inside.txt", b"in");
    assert_eq!(c.nlst(Mode::Pasv, "NLST .."), ["inside.txt"]);
}

#[test]
fn dotdot_and_absolute_paths_do_not_escape() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    for path in [
        "../../etc/passwd",
        "/../../etc/passwd",
        "/etc/passwd",
        "..//..//etc/passwd",
        "sub/../../../etc/passwd",
    ] {
        c.expect(&format!("SIZE {path}"), 550);
        c.expect(&format!("MDTM {path}"), 550);
        let _d = c.pasv_connect();
        c.expect(&format!("RETR {path}"), 550);
    }
    c.expect("CWD /etc", 550);
    c.expect("CWD ../etc", 550);
}

#[test]
fn writes_cannot_escape_the_root() {
    let outside = TempDir::new("outside");
    let s = Server::start(&["-a", "-w"]);
    let rel = format!(
        "../../../../../../..{}/escaped.txt",
        outside.path().display()
    );
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let d = c.data(Mode::Pasv);
    let r = c.cmd(&format!("STOR {rel}"));
    if r.code == 150 {
        // Stored, but inside the root.
        let mut st = d.stream();
        use std::io::Write;
        st.write_all(b"x").unwrap();
        drop(st);
        c.reply().expect(226);
    } else {
        assert_eq!(r.code, 550, "{:?}", r.lines);
    }
    assert!(
        !outside.join("escaped.txt").exists(),
        "STOR escaped the root"
    );
    c.expect(
        &format!("MKD ../../../..{}/newdir", outside.path().display()),
        550,
    );
    assert!(!outside.join("newdir").exists(), "MKD escaped the root");
}

#[test]
fn symlink_to_directory_outside_root_is_refused() {
    let s = Server::start(&["-a"]);
    std::os::unix::fs::symlink("/etc", s.path("etc_link")).unwrap();
    let mut c = s.anonymous();
    c.expect("CWD etc_link", 550);
    assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
    c.expect("SIZE etc_link/passwd", 550);
    c.expect("MLST etc_link/passwd", 550);
    let _d = c.pasv_connect();
    c.expect("RETR etc_link/passwd", 550);
    for cmd in ["LIST etc_link", "NLST etc_link", "MLSD etc_link"] {
        let d = c.data(Mode::Pasv);
        let r = c.cmd(cmd);
        if r.code == 150 {
            let mut st = d.stream();
            let got = read_all(&mut st);
            c.reply().expect(226);
            assert!(
                !String::from_utf8_lossy(&got).contains("passwd"),
                "{cmd} listed /etc: {}",
                String::from_utf8_lossy(&got)
            );
        } else {
            assert_eq!(r.code, 550, "{cmd}: {:?}", r.lines);
        }
    }
    let r = c.cmd("STAT etc_link");
    assert!(
        !r.text().contains("passwd"),
        "STAT listed /etc: {:?}",
        r.lines
    );
}

#[test]
fn symlink_to_file_outside_root_is_refused() {
    let s = Server::start(&["-a", "-w"]);
    let outside = TempDir::new("outside");
    fs::write(outside.join("secret"), b"outside secret").unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), s.path("pw")).unwrap();
    let mut c = s.anonymous();
    c.expect("SIZE pw", 550);
    c.expect("MDTM pw", 550);
    let _d = c.pasv_connect();
    c.expect("RETR pw", 550);
    // Writing through it must not modify the outside file either.
    let d = c.data(Mode::Pasv);
    let r = c.cmd("APPE pw");
    if r.code == 150 {
        use std::io::Write;
        let mut st = d.stream();
        st.write_all(b"+more").unwrap();
        drop(st);
        c.reply();
    }
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"outside secret");
    c.expect("SITE CHMOD 777 pw", 550);
    assert_ne!(mode_of(&outside.join("secret")) & 0o777, 0o777);
}

#[test]
fn symlink_inside_root_works() {
    let s = Server::start(&["-a"]);
    s.put("real/data.txt", b"real data");
    std::os::unix::fs::symlink("real/data.txt", s.path("alias.txt")).unwrap();
    std::os::unix::fs::symlink("real", s.path("alias_dir")).unwrap();
    let mut c = s.anonymous();
    assert_eq!(c.retr(Mode::Pasv, "alias.txt"), b"real data");
    c.expect("CWD alias_dir", 250);
    assert_eq!(c.retr(Mode::Pasv, "data.txt"), b"real data");
}

#[test]
fn port_to_another_ip_is_refused_and_never_connected() {
    let s = Server::start(&["-a"]);
    s.put("f", b"secret");
    let bounce = TcpListener::bind("127.0.0.2:0").unwrap();
    let p = bounce.local_addr().unwrap().port();
    let mut c = s.anonymous();
    let r = c.cmd(&format!("PORT 127,0,0,2,{},{}", p >> 8, p & 0xff));
    assert_eq!(
        r.code, 504,
        "PORT to 127.0.0.2 from 127.0.0.1: {:?}",
        r.lines
    );
    let r = c.cmd(&format!("EPRT |1|127.0.0.2|{p}|"));
    assert_eq!(
        r.code, 504,
        "EPRT to 127.0.0.2 from 127.0.0.1: {:?}",
        r.lines
    );
    // Nothing was prepared: the transfer has no data connection.
    let r = c.cmd("RETR f");
    assert_eq!(r.code, 425, "{:?}", r.lines);
    assert!(
        accept_timeout(&bounce, Duration::from_millis(500)).is_none(),
        "the server connected to a third party"
    );
}

#[test]
fn port_below_1024_is_refused() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    for cmd in [
        "PORT 127,0,0,1,0,21",
        "PORT 127,0,0,1,3,255",
        "EPRT |1|127.0.0.1|25|",
    ] {
        let r = c.cmd(cmd);
        assert_eq!(r.code, 504, "{cmd}: {:?}", r.lines);
    }
    c.expect("NOOP", 200);
}

#[test]
fn passive_connection_from_another_ip_is_closed_and_the_right_one_served() {
    let s = Server::start(&["-a"]);
    let data = pattern(100_000, 6);
    s.put("f.bin", &data);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let addr: SocketAddr = c.pasv_addr();
    // The intruder comes first, from 127.0.0.2.
    let mut intruder =
        tcp_connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).expect("connect from 127.0.0.2");
    // The server has accepted and dropped the intruder once its connection is closed.
    let mut got = Vec::new();
    assert!(
        read_until_closed(&mut intruder, IO_TIMEOUT, &mut got).is_ok(),
        "the intruder's connection was never closed"
    );
    let mut good = tcp_connect(addr);
    c.expect("RETR f.bin", 150);
    assert_bytes_eq(&read_all(&mut good), &data, "the real client gets the file");
    c.reply().expect(226);
    // The intruder got nothing but a close.
    let _ = intruder.read_to_end(&mut got);
    assert!(got.is_empty(), "intruder received {} bytes", got.len());
}

#[test]
fn passive_connection_from_another_ip_alone_gets_no_data() {
    let s = Server::start(&["-a"]);
    s.put("f.bin", b"private");
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let addr = c.pasv_addr();
    let mut intruder =
        tcp_connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).expect("connect from 127.0.0.2");
    intruder
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    c.send("RETR f.bin");
    let mut got = Vec::new();
    let _ = intruder.read_to_end(&mut got);
    assert!(got.is_empty(), "intruder received {:?}", got);
    // The session is still alive; abort the waiting transfer. RETR was accepted (it waits for
    // its connection, its 150 already out), so RFC 959's pair follows: 426 for the transfer,
    // 226 for the ABOR.
    c.send("ABOR");
    let codes: Vec<u16> = (0..3)
        .map_while(|_| c.try_reply().map(|r| r.code))
        .collect();
    assert_eq!(
        codes,
        [150, 426, 226],
        "ABOR of a transfer waiting for its connection"
    );
    c.expect("NOOP", 200);
}
