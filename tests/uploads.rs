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
