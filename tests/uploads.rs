//! Site rules for uploads (issue 13): --umask, --max-upload-size and --atomic-uploads, each
//! end to end against the real binary with the raw client and curl/lftp (--upload-fifo:
//! tests/fifo.rs).

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
    // A mask that takes away less than the usual 022 is honoured too (the process umask is
    // 0: the modes are given to each create call).
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

// ---- --atomic-uploads -------------------------------------------------------------------

const TEMP_PREFIX: &str = ".leanftpd-upload.";

/// The temporary upload files in `dir` (each must be the prefix and 16 hex digits).
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(TEMP_PREFIX))
        .collect();
    for name in &names {
        let hex = &name[TEMP_PREFIX.len()..];
        assert!(
            hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}"
        );
    }
    names
}

/// Starts `command` (STOR...) in `mode` and returns its data connection after the 150.
#[track_caller]
fn begin_upload(c: &mut Client, mode: Mode, command: &str) -> std::net::TcpStream {
    c.expect("TYPE I", 200);
    let d = c.data(mode);
    c.expect(command, 150);
    d.stream()
}

/// Half-closes an upload's data connection and waits for the server's close.
fn end_upload(mut data: std::net::TcpStream) {
    use std::io::Read;
    data.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = data.read_to_end(&mut Vec::new());
}

in_every_mode!(atomic_upload_shows_the_old_file_until_226, |mode| {
    use std::io::Write;
    let s = Server::start(&["-a", "-w", "--atomic-uploads"]);
    s.put("fw.bin", b"old firmware");
    let new = pattern(2 << 20, 7);
    let mut up = s.anonymous();
    let mut data = begin_upload(&mut up, mode, "STOR fw.bin");
    data.write_all(&new[..1 << 20]).unwrap();
    data.flush().unwrap();
    // While the upload runs, a reader sees the whole old file, and no listing shows the
    // temporary file, which exists beside the target.
    let mut reader = s.anonymous();
    reader.expect("TYPE I", 200);
    assert_eq!(reader.try_retr(b"fw.bin").unwrap(), b"old firmware");
    let temps = temp_files(s.root());
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert_eq!(reader.nlst(Mode::Pasv, "NLST"), vec!["fw.bin".to_string()]);
    let list = reader.lines(Mode::Pasv, "LIST -a");
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(list[0].ends_with(" fw.bin"), "{list:?}");
    let mlsd = reader.lines(Mode::Pasv, "MLSD");
    assert_eq!(mlsd.iter().filter(|l| l.contains(TEMP_PREFIX)).count(), 0);
    assert_eq!(
        mlsd.iter().filter(|l| l.ends_with("; fw.bin")).count(),
        1,
        "{mlsd:?}"
    );
    let stat = reader.cmd("STAT .");
    assert!(!stat.text().contains(TEMP_PREFIX), "{stat:?}");
    // The temporary name is reserved: not there for any command.
    let temp = &temps[0];
    for command in [
        format!("RETR {temp}"),
        format!("DELE {temp}"),
        format!("RNFR {temp}"),
        format!("SIZE {temp}"),
        format!("MLST {temp}"),
        format!("STOR {temp}"),
    ] {
        if command.starts_with("RETR") || command.starts_with("STOR") {
            let d = reader.data(Mode::Pasv);
            assert_eq!(reader.cmd(&command).code, 550, "{command}");
            drop(d);
        } else {
            assert_eq!(reader.cmd(&command).code, 550, "{command}");
        }
    }
    data.write_all(&new[1 << 20..]).unwrap();
    end_upload(data);
    up.reply().expect(226);
    assert_bytes_eq(&reader.try_retr(b"fw.bin").unwrap(), &new, "after 226");
    assert_eq!(temp_files(s.root()), Vec::<String>::new());
});

/// ABOR, a reset data connection, a reset data connection after the control connection
/// went away, a data timeout, and a server shutdown: the old file stands, no temporary is left.
#[test]
fn atomic_upload_that_does_not_complete_leaves_the_old_file_and_no_temporary() {
    use std::io::Write;
    let s = Server::start(&["-a", "-w", "--atomic-uploads", "--data-timeout", "1"]);
    s.put("f", b"old");
    let chunk = pattern(100_000, 8);
    let gone = |s: &Server| eventually(IO_TIMEOUT, || temp_files(s.root()).is_empty());

    // ABOR.
    let mut c = s.anonymous();
    let mut data = begin_upload(&mut c, Mode::Pasv, "STOR f");
    data.write_all(&chunk).unwrap();
    assert_eq!(temp_files(s.root()).len(), 1);
    c.send("ABOR");
    c.reply().expect(426);
    c.reply().expect(226);
    drop(data);
    assert!(gone(&s));
    assert_eq!(fs::read(s.path("f")).unwrap(), b"old");

    // A reset data connection: 426 (passive: an active connection reset this early may
    // still read as a failed connect, 425).
    let mut c = s.anonymous();
    let mut data = begin_upload(&mut c, Mode::Pasv, "STOR f");
    data.write_all(&chunk).unwrap();
    set_linger_zero(&data);
    drop(data);
    assert_eq!(c.reply().code, 426);
    assert!(gone(&s));
    assert_eq!(fs::read(s.path("f")).unwrap(), b"old");

    // The control connection goes, then the data connection is reset.
    let mut c = s.anonymous();
    let mut data = begin_upload(&mut c, Mode::Epsv, "STOR f");
    data.write_all(&chunk).unwrap();
    drop(c);
    set_linger_zero(&data);
    drop(data);
    assert!(gone(&s));
    assert_eq!(fs::read(s.path("f")).unwrap(), b"old");

    // A stalled upload: the data timeout (1 s) cuts it.
    let mut c = s.anonymous();
    let mut data = begin_upload(&mut c, Mode::Eprt, "STOR f");
    data.write_all(&chunk).unwrap();
    assert_eq!(c.reply().code, 426);
    assert!(gone(&s));
    assert_eq!(fs::read(s.path("f")).unwrap(), b"old");
    drop(data);

    // Shutdown: a stalled upload is cut after the grace; the process exits.
    let mut s = s;
    let mut c = s.anonymous();
    let mut data = begin_upload(&mut c, Mode::Pasv, "STOR f");
    data.write_all(&chunk).unwrap();
    s.signal(libc::SIGTERM);
    assert!(s.wait_exit(IO_TIMEOUT).is_some());
    assert_eq!(temp_files(s.root()), Vec::<String>::new());
    assert_eq!(fs::read(s.path("f")).unwrap(), b"old");
    drop(data);
}

/// Two uploads of one name at once: each has its own temporary file, the last 226 wins, and
/// both temporary files are gone. A target deleted or replaced by another session during the
/// upload: the rename still lands.
#[test]
fn atomic_uploads_of_one_name_at_once_and_a_target_replaced_meanwhile() {
    use std::io::Write;
    let s = Server::start(&["-a", "-w", "--atomic-uploads"]);
    s.put("f", b"old");
    let (a, b) = (pattern(300_000, 1), pattern(200_000, 2));
    let mut ca = s.anonymous();
    let mut cb = s.anonymous();
    let mut da = begin_upload(&mut ca, Mode::Pasv, "STOR f");
    let mut db = begin_upload(&mut cb, Mode::Epsv, "STOR f");
    da.write_all(&a).unwrap();
    db.write_all(&b).unwrap();
    assert_eq!(temp_files(s.root()).len(), 2);
    end_upload(db);
    cb.reply().expect(226);
    assert_eq!(fs::read(s.path("f")).unwrap(), b);
    end_upload(da);
    ca.reply().expect(226);
    assert_bytes_eq(&fs::read(s.path("f")).unwrap(), &a, "last 226 wins");
    assert_eq!(temp_files(s.root()), Vec::<String>::new());

    // Deleted meanwhile.
    let mut da = begin_upload(&mut ca, Mode::Port, "STOR f");
    da.write_all(&b).unwrap();
    cb.expect("DELE f", 250);
    end_upload(da);
    ca.reply().expect(226);
    assert_bytes_eq(&fs::read(s.path("f")).unwrap(), &b, "after DELE");
    // Replaced meanwhile by a plain rename of another file over it.
    s.put("other", b"other");
    let mut da = begin_upload(&mut ca, Mode::Eprt, "STOR f");
    da.write_all(&a).unwrap();
    cb.expect("RNFR other", 350);
    cb.expect("RNTO f", 250);
    assert_eq!(fs::read(s.path("f")).unwrap(), b"other");
    end_upload(da);
    ca.reply().expect(226);
    assert_bytes_eq(&fs::read(s.path("f")).unwrap(), &a, "after RNTO");
    assert_eq!(temp_files(s.root()), Vec::<String>::new());
}

/// STOU lands only at 226; APPE and REST > 0 write in place; --max-upload-size keeps nothing;
/// STOR onto a directory is refused at once; curl and lftp upload through it.
#[test]
fn atomic_stou_appe_rest_size_limit_and_real_clients() {
    use std::io::Write;
    let s = Server::start(&["-a", "-w", "--atomic-uploads", "--max-upload-size", "100K"]);
    let mut c = s.anonymous();
    let mut data = begin_upload(&mut c, Mode::Pasv, "STOU new");
    data.write_all(b"unique").unwrap();
    assert!(!s.path("new").exists());
    end_upload(data);
    c.reply().expect(226);
    assert_eq!(fs::read(s.path("new")).unwrap(), b"unique");
    // APPE writes in place: what arrived shows at once.
    let mut data = begin_upload(&mut c, Mode::Pasv, "APPE new");
    data.write_all(b"+more").unwrap();
    assert!(eventually(IO_TIMEOUT, || fs::read(s.path("new")).unwrap()
        == b"unique+more"));
    assert_eq!(temp_files(s.root()), Vec::<String>::new());
    end_upload(data);
    c.reply().expect(226);
    c.expect("REST 6", 350);
    c.try_stor(b"new", b"!").unwrap();
    assert_eq!(fs::read(s.path("new")).unwrap(), b"unique!");
    // Past the size limit: 552, the old file stands, nothing is kept.
    s.put("keep", b"keep");
    let r = upload_reply(&mut c, Mode::Pasv, "STOR keep", &pattern(300_000, 3));
    assert_eq!(r.code, 552, "{:?}", r.lines);
    assert_eq!(fs::read(s.path("keep")).unwrap(), b"keep");
    let r = upload_reply(&mut c, Mode::Pasv, "STOR fresh", &pattern(300_000, 3));
    assert_eq!(r.code, 552, "{:?}", r.lines);
    assert!(!s.path("fresh").exists());
    assert_eq!(temp_files(s.root()), Vec::<String>::new());
    // A directory as the target: refused before any byte.
    fs::create_dir(s.path("dir")).unwrap();
    let d = c.data(Mode::Pasv);
    assert_eq!(c.cmd("STOR dir").code, 550);
    drop(d);
    // curl and lftp.
    let tmp = TempDir::new("atomic");
    let data = pattern(90_000, 4);
    tmp.write("up.bin", &data);
    s.put("up.bin", b"old");
    run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "-T", "up.bin", &url(&s, "up.bin")],
    );
    assert_eq!(fs::read(s.path("up.bin")).unwrap(), data);
    let script = format!(
        "set cmd:fail-exit yes; set net:max-retries 1; open -u anonymous,x ftp://127.0.0.1:{}; \
         put up.bin -o lftp.bin; bye",
        s.port()
    );
    run_ok(tmp.path(), "lftp", &["-c", &script]);
    assert_eq!(fs::read(s.path("lftp.bin")).unwrap(), data);
    assert_eq!(temp_files(s.root()), Vec::<String>::new());
}

/// A full disk during an atomic upload: 452, the old file intact, no temporary left.
#[test]
fn atomic_upload_on_a_full_disk_keeps_the_old_file() {
    let base = TempDir::new("atomic-disk");
    let mnt = base.mkdir("mnt");
    let mount = Mount::tmpfs(mnt.clone(), "1m");
    std::fs::set_permissions(&mnt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let old = pattern(300_000, 9);
    fs::write(mnt.join("f"), &old).unwrap();
    let server = Server::start_in(&mnt, &["-a", "-w", "--atomic-uploads"]);
    let mut c = server.anonymous();
    c.expect("TYPE I", 200);
    let r = upload_reply(&mut c, Mode::Pasv, "STOR f", &pattern(2 << 20, 10));
    assert_eq!(r.code, 452, "{:?}", r.lines);
    assert_bytes_eq(&fs::read(mnt.join("f")).unwrap(), &old, "old file");
    assert_eq!(temp_files(&mnt), Vec::<String>::new());
    // Space is back: the next upload lands.
    c.try_stor(b"f", b"new").unwrap();
    assert_eq!(fs::read(mnt.join("f")).unwrap(), b"new");
    drop(server);
    drop(mount);
}
