//! Site rules for uploads (issue 13): --umask, --max-upload-size, --atomic-uploads and
//! --upload-fifo, each end to end against the real binary with the raw client and curl/lftp.

#[macro_use]
mod common;

use common::*;
use std::fs;

fn url(s: &Server, path: &str) -> String {
    format!("ftp://127.0.0.1:{}/{}", s.port(), path)
}

// ---- --umask ----------------------------------------------------------------------------

/// Files made by STOR (curl), STOU, APPE and directories made by MKD get 0o666/0o777 less the
/// mask; SITE CHMOD still sets any mode; the default mask is 022.
#[test]
fn umask_sets_the_mode_of_created_files_and_directories() {
    let s = Server::start(&["-a", "-w", "--umask", "027"]);
    let tmp = TempDir::new("umask");
    tmp.write("up.bin", b"curl");
    run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "-T", "up.bin", &url(&s, "up.bin")],
    );
    assert_eq!(fs::read(s.path("up.bin")).unwrap(), b"curl");
    assert_eq!(mode_of(&s.path("up.bin")) & 0o7777, 0o640);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    c.try_upload("APPE", b"appended", b"a").unwrap();
    assert_eq!(mode_of(&s.path("appended")) & 0o7777, 0o640);
    c.try_upload("STOU", b"unique", b"u").unwrap();
    assert_eq!(mode_of(&s.path("unique")) & 0o7777, 0o640);
    c.expect("MKD dir", 257);
    assert_eq!(mode_of(&s.path("dir")) & 0o7777, 0o750);
    c.expect("SITE CHMOD 666 up.bin", 200);
    assert_eq!(mode_of(&s.path("up.bin")) & 0o7777, 0o666);
    // A mask that takes away less than the usual 022 is honoured too (the process umask
    // follows --umask).
    let s = Server::start(&["-a", "-w", "--umask", "0"]);
    let mut c = s.anonymous();
    c.stor(Mode::Epsv, "open.bin", b"o");
    assert_eq!(mode_of(&s.path("open.bin")) & 0o7777, 0o666);
    c.expect("MKD d", 257);
    assert_eq!(mode_of(&s.path("d")) & 0o7777, 0o777);
    // The default is 022.
    let s = Server::start(&["-a", "-w"]);
    let mut c = s.anonymous();
    c.stor(Mode::Port, "default.bin", b"d");
    assert_eq!(mode_of(&s.path("default.bin")) & 0o7777, 0o644);
    c.expect("MKD d", 257);
    assert_eq!(mode_of(&s.path("d")) & 0o7777, 0o755);
}

#[test]
fn umask_must_be_octal() {
    refuses(&["-a", "--umask", "8"], &["--umask 8", "octal"]);
    refuses(&["-a", "--umask", "1000"], &["--umask 1000", "octal"]);
}

// ---- --max-upload-size ------------------------------------------------------------------

/// Sends `data` on an upload's data connection, ignoring the reset a server that stops
/// reading causes; returns the final reply.
#[track_caller]
fn upload_reply(c: &mut Client, mode: Mode, command: &str, data: &[u8]) -> Reply {
    match c.transfer(mode, command.as_bytes(), |mut s| {
        use std::io::{Read, Write};
        let _ = s.write_all(data);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read_to_end(&mut Vec::new());
    }) {
        Ok(_) => Reply {
            code: 226,
            lines: vec![],
        },
        Err(reply) => reply,
    }
}

in_every_mode!(
    max_upload_size_keeps_the_limit_and_refuses_one_byte_more,
    |mode| {
        let s = Server::start(&["-a", "-w", "--max-upload-size", "1K"]);
        let data = pattern(3000, 4);
        let mut c = s.anonymous();
        c.expect("TYPE I", 200);
        // Exactly the limit: 226.
        assert_eq!(
            upload_reply(&mut c, mode, "STOR exact", &data[..1024]).code,
            226
        );
        assert_eq!(fs::read(s.path("exact")).unwrap(), &data[..1024]);
        // One byte more: 552, and nothing past the limit is kept.
        let r = upload_reply(&mut c, mode, "STOR over", &data[..1025]);
        assert_eq!(r.code, 552, "{:?}", r.lines);
        assert_eq!(fs::read(s.path("over")).unwrap(), &data[..1024]);
        // Much more (the server stops reading: the client may see a reset).
        let r = upload_reply(&mut c, mode, "STOR big", &pattern(4 << 20, 5));
        assert_eq!(r.code, 552, "{:?}", r.lines);
        assert_eq!(fs::metadata(s.path("big")).unwrap().len(), 1024);
        // APPE counts what the file holds: 1000 + 24 fits, 1000 + 25 does not.
        s.put("log", &data[..1000]);
        assert_eq!(
            upload_reply(&mut c, mode, "APPE log", &data[1000..1024]).code,
            226
        );
        assert_eq!(fs::read(s.path("log")).unwrap(), &data[..1024]);
        s.put("log2", &data[..1000]);
        let r = upload_reply(&mut c, mode, "APPE log2", &data[1000..1025]);
        assert_eq!(r.code, 552, "{:?}", r.lines);
        assert_eq!(fs::read(s.path("log2")).unwrap(), &data[..1024]);
        // REST 1000 + STOR counts the offset likewise.
        c.expect("REST 1000", 350);
        let r = upload_reply(&mut c, mode, "STOR log2", &data[1000..1100]);
        assert_eq!(r.code, 552, "{:?}", r.lines);
        assert_eq!(fs::read(s.path("log2")).unwrap(), &data[..1024]);
        // STOU too; and the session goes on.
        let r = upload_reply(&mut c, mode, "STOU", &data[..2000]);
        assert_eq!(r.code, 552, "{:?}", r.lines);
        c.expect("NOOP", 200);
    }
);

#[test]
fn max_upload_size_with_curl() {
    let s = Server::start(&["-a", "-w", "--max-upload-size", "1M"]);
    let tmp = TempDir::new("maxsize");
    let data = pattern(3 << 20, 6);
    tmp.write("ok.bin", &data[..1 << 20]);
    tmp.write("over.bin", &data[..(1 << 20) + 100]);
    tmp.write("big.bin", &data);
    run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "-T", "ok.bin", &url(&s, "ok.bin")],
    );
    assert_eq!(fs::read(s.path("ok.bin")).unwrap(), &data[..1 << 20]);
    let curl = |file: &str| {
        run_cmd_in(
            "curl",
            &["-sS", "-T", file, &url(&s, file)],
            b"",
            std::time::Duration::from_secs(60),
            Some(tmp.path()),
        )
    };
    // 100 bytes over: curl has sent them all when the server stops, and reads the 552 (its
    // exit status 70: "disk full or allocation exceeded").
    let out = curl("over.bin");
    assert_eq!(out.status.code(), Some(70), "{:?}", out.stderr);
    assert_eq!(out.stderr, "curl: (70) Exceeded storage allocation\n");
    assert_eq!(fs::read(s.path("over.bin")).unwrap(), &data[..1 << 20]);
    // 2 MiB over: curl is cut off while sending (a reset); the file keeps the first 1 MiB.
    let out = curl("big.bin");
    assert_ne!(out.status.code(), Some(0), "{:?}", out.stderr);
    assert_eq!(fs::read(s.path("big.bin")).unwrap(), &data[..1 << 20]);
    assert!(s.wait_for_log("upload stopped at --max-upload-size", 2, IO_TIMEOUT));
}

#[test]
fn max_upload_size_flag_is_checked() {
    refuses(&["-a", "--max-upload-size", "0"], &["--max-upload-size 0"]);
    refuses(
        &["-a", "--max-upload-size", "10X"],
        &["--max-upload-size 10X"],
    );
    refuses(&["-a", "--max-upload-size", "K"], &["--max-upload-size K"]);
    refuses(
        &["-a", "--max-upload-size", "99999999999G"],
        &["99999999999G"],
    );
}
