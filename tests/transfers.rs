//! Data transfers in every data connection mode (PASV, EPSV, PORT, EPRT): RETR, STOR, APPE,
//! STOU, REST (past 4 GiB too), TYPE A conversion across buffer boundaries, ABOR (plain and
//! behind Telnet IP/Synch), commands answered during a transfer, interrupted uploads.

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

const GIB: u64 = 1 << 30;

/// A sparse file of `len` bytes (zeros) with `marks` written at their offsets.
fn sparse(path: &std::path::Path, len: u64, marks: &[(u64, &[u8])]) {
    use std::os::unix::fs::FileExt;
    let f = fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    for (off, b) in marks {
        f.write_all_at(b, *off).unwrap();
    }
}

in_every_mode!(retr_binary_returns_exact_bytes, |mode| {
    let s = Server::start(&["-a"]);
    let big = pattern(3 * 1024 * 1024 + 17, 7);
    s.put("big.bin", &big);
    s.put("empty", b"");
    s.put("sub/dir/one byte", b"\xff");
    let mut c = s.anonymous();
    assert_bytes_eq(&c.retr(mode, "big.bin"), &big, "big.bin");
    assert_eq!(c.retr(mode, "empty"), b"");
    assert_eq!(c.retr(mode, "/sub/dir/one byte"), b"\xff");
    c.expect("CWD sub", 250);
    assert_eq!(c.retr(mode, "dir/one byte"), b"\xff");
    // The session goes on after three transfers.
    c.expect("NOOP", 200);
});

in_every_mode!(stor_binary_writes_exact_bytes_and_overwrites, |mode| {
    let s = Server::start(&["-a", "-w"]);
    s.put("existing.bin", &pattern(500_000, 3));
    let data = pattern(2 * 1024 * 1024 + 5, 9);
    let mut c = s.anonymous();
    c.stor(mode, "up.bin", &data);
    assert_bytes_eq(&fs::read(s.path("up.bin")).unwrap(), &data, "stored");
    assert_bytes_eq(&c.retr(mode, "up.bin"), &data, "read back");
    // STOR over a longer file truncates it.
    c.stor(mode, "existing.bin", b"short");
    assert_eq!(fs::read(s.path("existing.bin")).unwrap(), b"short");
    // Empty upload makes an empty file.
    c.stor(mode, "zero", b"");
    assert_eq!(fs::read(s.path("zero")).unwrap(), b"");
    fs::create_dir(s.path("dir")).unwrap();
    c.stor(mode, "dir/in-sub.bin", b"sub");
    assert_eq!(fs::read(s.path("dir/in-sub.bin")).unwrap(), b"sub");
});

in_every_mode!(appe_appends_and_creates, |mode| {
    let s = Server::start(&["-a", "-w"]);
    s.put("log.txt", b"first\n");
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    c.put(mode, "APPE log.txt", b"second\n");
    assert_eq!(fs::read(s.path("log.txt")).unwrap(), b"first\nsecond\n");
    c.put(mode, "APPE new.txt", b"created\n");
    assert_eq!(fs::read(s.path("new.txt")).unwrap(), b"created\n");
});

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

in_every_mode!(stou_stores_under_a_unique_name_it_announces, |mode| {
    let s = Server::start(&["-a", "-w"]);
    s.put("keep.txt", b"do not overwrite");
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let mut seen = vec!["keep.txt".to_string()];
    for (i, cmd) in ["STOU", "STOU", "STOU keep.txt"].iter().enumerate() {
        let data = format!("upload {i}");
        let first = c.put(mode, cmd, data.as_bytes());
        assert_eq!(first.code, 150, "{:?}", first.lines);
        let now = names(s.root());
        let new: Vec<&String> = now.iter().filter(|n| !seen.contains(n)).collect();
        assert_eq!(new.len(), 1, "{cmd} made one new file: {now:?}");
        let name = new[0].clone();
        assert!(
            first.lines[0].contains(&name),
            "150 must name the file {name:?}: {:?}",
            first.lines
        );
        assert_eq!(fs::read(s.path(&name)).unwrap(), data.as_bytes());
        seen.push(name);
    }
    assert_eq!(fs::read(s.path("keep.txt")).unwrap(), b"do not overwrite");
});

in_every_mode!(rest_then_retr_sends_the_tail_once, |mode| {
    let s = Server::start(&["-a"]);
    let data = pattern(1_000_000, 5);
    s.put("f.bin", &data);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    c.expect("REST 123456", 350);
    assert_bytes_eq(&c.get(mode, "RETR f.bin"), &data[123_456..], "tail");
    // The offset applies to one transfer only.
    assert_bytes_eq(&c.get(mode, "RETR f.bin"), &data, "whole");
    c.expect("REST 1000000", 350);
    assert_eq!(c.get(mode, "RETR f.bin"), b"");
});

in_every_mode!(rest_then_stor_resumes_an_upload, |mode| {
    let s = Server::start(&["-a", "-w"]);
    let data = pattern(700_001, 11);
    s.put("part.bin", &data[..300_000]);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    c.expect("REST 300000", 350);
    c.put(mode, "STOR part.bin", &data[300_000..]);
    assert_bytes_eq(&fs::read(s.path("part.bin")).unwrap(), &data, "resumed");
});

#[test]
fn rest_retr_past_4_gib_reads_from_the_64_bit_offset() {
    let s = Server::start(&["-a"]);
    let len = 5 * GIB;
    let off = 4_294_967_300u64; // 2^32 + 4: a 32-bit offset would read from 4
    sparse(
        &s.path("huge.bin"),
        len,
        &[
            (4, b"WRONG-32BIT"),
            (off, b"MARK-4G+4"),
            (len - 8, b"THE-END!"),
        ],
    );
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    assert_eq!(c.expect("SIZE huge.bin", 213).lines, ["213 5368709120"]);
    // The tail: exact bytes to the end.
    c.expect(&format!("REST {}", len - 16), 350);
    let tail = c.get(Mode::Pasv, "RETR huge.bin");
    assert_eq!(tail, b"\0\0\0\0\0\0\0\0THE-END!");
    // From 2^32+4: the first bytes are the mark; then abort.
    c.expect(&format!("REST {off}"), 350);
    let mut d = c.pasv_connect();
    c.expect("RETR huge.bin", 150);
    let mut head = [0u8; 9];
    d.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"MARK-4G+4");
    c.send("ABOR");
    let r = c.reply();
    assert!(r.code == 426 || r.code == 226, "{:?}", r.lines);
    if r.code == 426 {
        c.reply().expect(226);
    }
    drop(d);
    c.expect("NOOP", 200);
}

#[test]
fn rest_stor_past_4_gib_writes_at_the_64_bit_offset() {
    let s = Server::start(&["-a", "-w"]);
    let off = 4_294_967_300u64;
    sparse(&s.path("huge.bin"), off, &[]);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    c.expect(&format!("REST {off}"), 350);
    c.put(Mode::Pasv, "STOR huge.bin", b"appended");
    let p = s.path("huge.bin");
    assert_eq!(fs::metadata(&p).unwrap().len(), off + 8);
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(&p).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, off).unwrap();
    assert_eq!(&b, b"appended");
    let mut z = [1u8; 8];
    f.read_exact_at(&mut z, 0).unwrap();
    assert_eq!(
        z, [0u8; 8],
        "nothing written at the 32-bit-truncated offset"
    );
}

/// Text with line ends at and around the 64/128/256 KiB buffer boundaries, plus lines of every
/// length up to 300.
fn text_file() -> Vec<u8> {
    let mut v = Vec::new();
    let mut i = 0usize;
    while v.len() < 600 * 1024 {
        for _ in 0..(i % 301) {
            v.push(b'a' + (i % 26) as u8);
        }
        v.push(b'\n');
        i += 1;
    }
    for k in [1usize, 2, 4, 8] {
        for d in [0usize, 1, 2] {
            let at = k * 64 * 1024 - d;
            v[at] = b'\n';
            if at > 0 {
                v[at - 1] = b'\n';
            }
        }
    }
    v
}

in_every_mode!(type_a_download_converts_lf_to_crlf_across_chunks, |mode| {
    let s = Server::start(&["-a"]);
    let text = text_file();
    s.put("t.txt", &text);
    let mut c = s.anonymous();
    c.expect("TYPE A", 200);
    let got = c.get(mode, "RETR t.txt");
    assert_bytes_eq(&got, &to_crlf(&text), "TYPE A download");
    c.expect("TYPE A N", 200);
    let got = c.get(mode, "RETR t.txt");
    assert_bytes_eq(&got, &to_crlf(&text), "TYPE A N download");
    // Back to binary: bytes as they are.
    c.expect("TYPE L 8", 200);
    assert_bytes_eq(&c.get(mode, "RETR t.txt"), &text, "TYPE L 8");
});

in_every_mode!(type_a_upload_converts_crlf_to_lf_across_writes, |mode| {
    let s = Server::start(&["-a", "-w"]);
    let text = text_file();
    let wire = to_crlf(&text);
    let mut c = s.anonymous();
    c.expect("TYPE A", 200);
    let d = c.data(mode);
    c.expect("STOR t.txt", 150);
    let mut d = d.stream();
    d.set_nodelay(true).unwrap();
    // Splits between CR and LF, in separate segments, then the rest in big writes.
    let first_cr = wire.iter().position(|&b| b == b'\r').unwrap();
    let mut at = 0;
    for cut in [first_cr + 1, first_cr + 2 + 1000] {
        d.write_all(&wire[at..cut]).unwrap();
        d.flush().unwrap();
        std::thread::sleep(Duration::from_millis(60));
        at = cut;
    }
    // Make the next piece also end on a CR.
    let next_cr = at + wire[at..].iter().position(|&b| b == b'\r').unwrap();
    d.write_all(&wire[at..=next_cr]).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    d.write_all(&wire[next_cr + 1..]).unwrap();
    d.shutdown(Shutdown::Write).unwrap();
    let _ = read_all(&mut d);
    c.reply().expect(226);
    assert_bytes_eq(&fs::read(s.path("t.txt")).unwrap(), &text, "TYPE A upload");
    // TYPE I keeps CRs.
    c.stor(mode, "bin.txt", &wire);
    assert_bytes_eq(
        &fs::read(s.path("bin.txt")).unwrap(),
        &wire,
        "TYPE I upload",
    );
});

/// Starts RETR of a 1 GiB sparse file in passive mode, reads 64 KiB and stops reading.
fn stalled_retr(s: &Server, c: &mut Client) -> std::net::TcpStream {
    sparse(&s.path("big.bin"), GIB, &[]);
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    c.expect("RETR big.bin", 150);
    let mut buf = vec![0u8; 64 * 1024];
    d.read_exact(&mut buf).unwrap();
    d
}

/// After ABOR: 426 then 226, and the session still transfers.
#[track_caller]
fn aborted_then_usable(s: &Server, c: &mut Client, d: std::net::TcpStream) {
    let r = c.reply();
    assert_eq!(
        r.code, 426,
        "first reply to ABOR during a transfer: {:?}",
        r.lines
    );
    let r = c.reply();
    assert_eq!(r.code, 226, "second reply to ABOR: {:?}", r.lines);
    // The data connection was closed by the server: reading drains to EOF (bounded).
    let mut d = d;
    let mut sink = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match d.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                assert!(total < GIB - 64 * 1024, "the whole file came after ABOR");
            }
            Err(_) => break,
        }
    }
    c.expect("NOOP", 200);
    s.put("small.txt", b"still works");
    assert_eq!(c.retr(Mode::Pasv, "small.txt"), b"still works");
}

#[test]
fn abor_during_retr_replies_426_then_226_and_session_goes_on() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let d = stalled_retr(&s, &mut c);
    c.send("ABOR");
    aborted_then_usable(&s, &mut c, d);
}

#[test]
fn abor_behind_inline_telnet_ip_and_synch_bytes() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let d = stalled_retr(&s, &mut c);
    // IAC IP IAC DM, then ABOR, all inline.
    c.send_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    aborted_then_usable(&s, &mut c, d);
}

#[test]
fn abor_behind_telnet_synch_with_urgent_dm_as_bsd_ftp_sends_it() {
    use std::os::fd::AsRawFd;
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let d = stalled_retr(&s, &mut c);
    // BSD/inetutils ftp: IAC IP IAC inline, then DM as TCP urgent data, then ABOR.
    c.send_raw(b"\xff\xf4\xff");
    let dm = [0xf2u8];
    let n = unsafe {
        libc::send(
            c.stream().as_raw_fd(),
            dm.as_ptr() as *const libc::c_void,
            1,
            libc::MSG_OOB,
        )
    };
    assert_eq!(n, 1);
    c.send_raw(b"ABOR\r\n");
    aborted_then_usable(&s, &mut c, d);
}

#[test]
fn abor_during_stor_keeps_what_arrived() {
    let s = Server::start(&["-a", "-w"]);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    c.expect("STOR up.bin", 150);
    let data = pattern(100_000, 2);
    d.write_all(&data).unwrap();
    // Let the server write it before the abort.
    assert!(eventually(IO_TIMEOUT, || fs::metadata(s.path("up.bin"))
        .map(|m| m.len() == 100_000)
        .unwrap_or(false)));
    c.send("ABOR");
    let r = c.reply();
    assert!(r.code == 426 || r.code == 226, "{:?}", r.lines);
    if r.code == 426 {
        c.reply().expect(226);
    }
    assert_bytes_eq(&fs::read(s.path("up.bin")).unwrap(), &data, "kept");
    c.expect("NOOP", 200);
}

#[test]
fn stat_and_noop_are_answered_during_a_transfer() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let d = stalled_retr(&s, &mut c);
    let r = c.cmd("STAT");
    assert!(
        r.code == 211 || r.code == 213,
        "STAT during transfer: {:?}",
        r.lines
    );
    c.expect("NOOP", 200);
    c.send("ABOR");
    aborted_then_usable(&s, &mut c, d);
}

#[test]
fn quit_during_a_transfer_replies_221_and_closes() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let _d = stalled_retr(&s, &mut c);
    c.send("QUIT");
    let mut r = c.reply();
    if r.code == 426 {
        r = c.reply();
    }
    assert_eq!(r.code, 221, "{:?}", r.lines);
    assert!(c.wait_closed(IO_TIMEOUT).is_ok(), "closed after QUIT");
    // The server is fine.
    s.anonymous().expect("NOOP", 200);
}

#[test]
fn other_sessions_are_served_while_a_big_download_runs() {
    let s = Server::start(&["-a"]);
    sparse(&s.path("huge.bin"), 16 * GIB, &[]);
    s.put("small.txt", b"small");
    let mut a = s.anonymous();
    a.expect("TYPE I", 200);
    let mut d = a.pasv_connect();
    a.expect("RETR huge.bin", 150);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done2 = done.clone();
    let flowing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flowing2 = flowing.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        while let Ok(n) = d.read(&mut buf) {
            if n == 0 || done2.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            total += n as u64;
            flowing2.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        total
    });
    assert!(
        eventually(IO_TIMEOUT, || flowing
            .load(std::sync::atomic::Ordering::SeqCst)),
        "the big download never started"
    );
    let mut b = s.anonymous();
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        b.expect("NOOP", 200);
        worst = worst.max(t.elapsed());
    }
    let t = Instant::now();
    assert_eq!(b.retr(Mode::Pasv, "small.txt"), b"small");
    worst = worst.max(t.elapsed());
    assert!(
        !reader.is_finished(),
        "the big download should still be running"
    );
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    a.send("ABOR");
    let total = reader.join().unwrap();
    assert!(total > 0);
    assert!(
        worst < Duration::from_millis(500),
        "a reply took {worst:?} while another session downloads"
    );
}

#[test]
fn upload_reset_midway_keeps_the_part_received() {
    let s = Server::start(&["-a", "-w"]);
    let data = pattern(300_000, 4);
    let baseline = s.fd_count();
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    c.expect("STOR cut.bin", 150);
    d.write_all(&data).unwrap();
    assert!(
        eventually(IO_TIMEOUT, || fs::metadata(s.path("cut.bin"))
            .map(|m| m.len() == 300_000)
            .unwrap_or(false)),
        "the server writes what arrives"
    );
    // The client vanishes: both connections reset.
    set_linger_zero(&d);
    set_linger_zero(c.stream());
    drop(d);
    drop(c);
    // The server has handled both resets once the session's descriptors are gone.
    assert!(
        eventually(IO_TIMEOUT, || s.fd_count() == baseline),
        "the reset session was never freed"
    );
    assert_bytes_eq(&fs::read(s.path("cut.bin")).unwrap(), &data, "kept");
    s.anonymous().expect("NOOP", 200);
}

#[test]
fn upload_keeps_everything_sent_when_control_connection_drops_first() {
    let s = Server::start(&["-a", "-w"]);
    let data = pattern(300_000, 4);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    c.expect("STOR cut.bin", 150);
    d.write_all(&data[..100_000]).unwrap();
    assert!(eventually(IO_TIMEOUT, || fs::metadata(s.path("cut.bin"))
        .map(|m| m.len() == 100_000)
        .unwrap_or(false)));
    // The control connection goes away mid-upload; the data connection still delivers the
    // rest and then closes. What the client sent is what the file must hold.
    let _ = c.stream().shutdown(Shutdown::Both);
    drop(c);
    std::thread::sleep(Duration::from_millis(100));
    let sent_all = d.write_all(&data[100_000..]).is_ok();
    let _ = d.shutdown(Shutdown::Write);
    let _ = read_all_lossy(&mut d);
    drop(d);
    let ok = eventually(Duration::from_secs(3), || {
        fs::read(s.path("cut.bin"))
            .map(|v| v == data)
            .unwrap_or(false)
    });
    assert!(
        ok,
        "client sent 300000 bytes (all writes succeeded: {sent_all}); file has {:?}",
        fs::metadata(s.path("cut.bin")).map(|m| m.len())
    );
    s.anonymous().expect("NOOP", 200);
}

fn read_all_lossy(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    v
}

#[test]
fn missing_files_and_directories_get_550_for_transfers() {
    let s = Server::start(&["-a", "-w"]);
    fs::create_dir(s.path("dir")).unwrap();
    let mut c = s.anonymous();
    for cmd in [
        "RETR missing",
        "RETR dir",
        "STOR nodir/x",
        "APPE nodir/x",
        "LIST missing",
        "NLST missing",
        "MLSD missing",
    ] {
        let _d = c.pasv_connect();
        c.expect(cmd, 550);
    }
    c.expect("NOOP", 200);
}

#[test]
fn ipv6_epsv_and_eprt_transfer() {
    let root = TempDir::new("v6");
    fs::write(root.join("f.bin"), pattern(200_000, 8)).unwrap();
    let r = root.path().display().to_string();
    let s = Server::start_raw(&["-a", "-w", "--root", &r, "-l", "[::1]:0"], 1);
    let mut c = Client::connect(s.addr());
    c.login_anonymous();
    let want = pattern(200_000, 8);
    assert_bytes_eq(&c.retr(Mode::Epsv, "f.bin"), &want, "EPSV over IPv6");
    assert_bytes_eq(&c.retr(Mode::Eprt, "f.bin"), &want, "EPRT |2| over IPv6");
    c.stor(Mode::Eprt, "up6.bin", b"via eprt 2");
    assert_eq!(fs::read(root.join("up6.bin")).unwrap(), b"via eprt 2");
    c.expect("EPSV 2", 229);
    // PASV and an IPv4 PORT/EPRT cannot work on an IPv6 session: a permanent 522 naming the
    // family to use (RFC 2428), never 425 (try again) nor the bounce guard's 504.
    for refused in ["PASV", "PORT 127,0,0,1,200,10", "EPRT |1|127.0.0.1|51210|"] {
        let r = c.expect(refused, 522);
        assert!(r.msg().contains("(2)"), "{refused}: {:?}", r.lines);
    }
}

#[test]
fn an_ipv6_eprt_on_an_ipv4_session_is_522() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let r = c.expect("EPRT |2|::1|51210|", 522);
    assert!(r.msg().contains("(1)"), "{:?}", r.lines);
}

#[test]
fn last_data_setup_wins_and_each_is_used_once() {
    let s = Server::start(&["-a"]);
    s.put("f", b"once");
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    // PASV then PORT: the transfer goes through PORT.
    let _unused = c.pasv_addr();
    let l = c.port();
    c.expect("RETR f", 150);
    let mut d = accept_timeout(&l, IO_TIMEOUT).expect("server connected to PORT");
    assert_eq!(read_all(&mut d), b"once");
    c.reply().expect(226);
    // The PORT was used up: another RETR needs a new setup.
    let r = c.cmd("RETR f");
    assert!(r.code == 425 || r.code == 503, "{:?}", r.lines);
}

#[test]
fn thirty_concurrent_sessions_each_get_their_own_bytes() {
    let s = Server::start(&["-a", "-w", "--max-per-ip", "64"]);
    let n = 30;
    for i in 0..n {
        s.put(&format!("f{i}.bin"), &pattern(200_000 + i, i as u64));
    }
    let addr = s.addr();
    let threads: Vec<_> = (0..n)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.login_anonymous();
                let mode = MODES[i % 4];
                let got = c.retr(mode, &format!("f{i}.bin"));
                assert_bytes_eq(&got, &pattern(200_000 + i, i as u64), &format!("f{i}"));
                c.stor(mode, &format!("u{i}.bin"), &got);
                c.expect("QUIT", 221);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("session thread");
    }
    for i in 0..n {
        assert_bytes_eq(
            &fs::read(s.path(&format!("u{i}.bin"))).unwrap(),
            &pattern(200_000 + i, i as u64),
            &format!("u{i}"),
        );
    }
}
