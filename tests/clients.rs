//! Real FTP clients against the real server: curl, lftp, Python's ftplib, BusyBox
//! ftpget/ftpput and wget, each run under `timeout 60`. A missing client fails the test with a
//! pointer to .ci/run, which installs them.

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

fn url(s: &Server, path: &str) -> String {
    format!("ftp://127.0.0.1:{}/{}", s.port(), path)
}

// ---------------------------------------------------------------- curl

#[test]
fn curl_downloads_in_epsv_pasv_eprt_and_port_modes() {
    let s = Server::start(&["-a"]);
    let data = pattern(1_500_000, 21);
    s.put("dir/f.bin", &data);
    let tmp = TempDir::new("curl");
    for (i, extra) in [
        vec!["--ftp-pasv"],
        vec!["--ftp-pasv", "--disable-epsv"],
        vec!["-P", "127.0.0.1"],
        vec!["-P", "127.0.0.1", "--disable-eprt"],
    ]
    .iter()
    .enumerate()
    {
        let out = format!("out{i}");
        let u = url(&s, "dir/f.bin");
        let mut args = vec!["-sS", "--fail", "-o", &out, &u];
        args.extend(extra.iter().copied());
        run_ok(tmp.path(), "curl", &args);
        assert_bytes_eq(
            &fs::read(tmp.join(&out)).unwrap(),
            &data,
            &format!("{extra:?}"),
        );
    }
}

#[test]
fn curl_uploads_with_t() {
    let s = Server::start(&["-a", "-w"]);
    let tmp = TempDir::new("curl");
    let data = pattern(777_777, 22);
    fs::write(tmp.join("up.bin"), &data).unwrap();
    run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "-T", "up.bin", &url(&s, "up.bin")],
    );
    assert_bytes_eq(&fs::read(s.path("up.bin")).unwrap(), &data, "curl -T");
    // Into a new directory, active mode.
    run_ok(
        tmp.path(),
        "curl",
        &[
            "-sS",
            "--fail",
            "--ftp-create-dirs",
            "-P",
            "127.0.0.1",
            "-T",
            "up.bin",
            &url(&s, "new/dir/up.bin"),
        ],
    );
    assert_bytes_eq(
        &fs::read(s.path("new/dir/up.bin")).unwrap(),
        &data,
        "curl -T -P",
    );
}

#[test]
fn curl_lists_directories() {
    let s = Server::start(&["-a"]);
    s.put("d/a.txt", b"a");
    s.put("d/b.txt", b"bb");
    fs::create_dir(s.path("d/sub")).unwrap();
    let tmp = TempDir::new("curl");
    let list = run_ok(tmp.path(), "curl", &["-sS", "--fail", &url(&s, "d/")]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("-") && l.ends_with(" b.txt")),
        "{list}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("d") && l.ends_with(" sub")),
        "{list}"
    );
    let names = run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "--list-only", &url(&s, "d/")],
    );
    let mut n: Vec<&str> = names.lines().map(|l| l.trim_end_matches('\r')).collect();
    n.sort();
    assert_eq!(n, ["a.txt", "b.txt", "sub"]);
}

#[test]
fn curl_resumes_download_and_upload_with_c_dash() {
    let s = Server::start(&["-a", "-w"]);
    let data = pattern(2_000_000, 23);
    s.put("big.bin", &data);
    let tmp = TempDir::new("curl");
    fs::write(tmp.join("big.bin"), &data[..654_321]).unwrap();
    run_ok(
        tmp.path(),
        "curl",
        &[
            "-sS",
            "--fail",
            "-C",
            "-",
            "-o",
            "big.bin",
            &url(&s, "big.bin"),
        ],
    );
    assert_bytes_eq(
        &fs::read(tmp.join("big.bin")).unwrap(),
        &data,
        "resumed download",
    );
    // Upload resume: the server has a prefix.
    s.put("up.bin", &data[..1_000_000]);
    run_ok(
        tmp.path(),
        "curl",
        &[
            "-sS",
            "--fail",
            "-C",
            "-",
            "-T",
            "big.bin",
            &url(&s, "up.bin"),
        ],
    );
    assert_bytes_eq(
        &fs::read(s.path("up.bin")).unwrap(),
        &data,
        "resumed upload",
    );
}

#[test]
fn curl_logs_in_as_a_users_file_user() {
    let h = hash_password("pw");
    let u = Users::new(&[("carol", &h, "carol", "rw")]);
    fs::write(u.home("carol").join("c.txt"), b"carol's").unwrap();
    let s = Server::start(&["-U", &u.file_arg()]);
    let tmp = TempDir::new("curl");
    let got = run_ok(
        tmp.path(),
        "curl",
        &["-sS", "--fail", "-u", "carol:pw", &url(&s, "c.txt")],
    );
    assert_eq!(got, "carol's");
    // A wrong password fails (curl exit 67: login denied).
    require("curl");
    let out = run_cmd_in(
        "timeout",
        &["60", "curl", "-sS", "-u", "carol:nope", &url(&s, "c.txt")],
        b"",
        Duration::from_secs(70),
        Some(tmp.path()),
    );
    assert_eq!(out.status.code(), Some(67), "{}", out.stderr);
}

// ---------------------------------------------------------------- lftp

/// A nested tree of text, binary, empty and larger files.
fn make_tree(dir: &Path) {
    let w = |rel: &str, data: &[u8]| {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    };
    w("readme.txt", b"hello\nworld\n");
    w("bin/blob.bin", &pattern(300_000, 31));
    w(
        "bin/all-bytes.bin",
        &(0..=255u8).cycle().take(4096).collect::<Vec<_>>(),
    );
    w("a/b/c/deep.txt", b"deep\r\nwith crlf\r\n");
    w("a/b/empty.txt", b"");
    w("a/with space.txt", b"spaced name");
    w("big/large.bin", &pattern(3_000_000, 32));
    fs::create_dir_all(dir.join("emptydir")).unwrap();
}

/// (relative path, Some(contents) for files / None for dirs), sorted.
fn tree(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if p.is_dir() {
                out.push((rel, None));
                walk(base, &p, out);
            } else {
                out.push((rel, Some(fs::read(&p).unwrap())));
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

#[track_caller]
fn assert_same_tree(got: &Path, want: &Path) {
    let g = tree(got);
    let w = tree(want);
    let gn: Vec<&String> = g.iter().map(|(n, _)| n).collect();
    let wn: Vec<&String> = w.iter().map(|(n, _)| n).collect();
    assert_eq!(gn, wn, "same entries");
    for ((n, a), (_, b)) in g.iter().zip(w.iter()) {
        match (a, b) {
            (Some(a), Some(b)) => assert_bytes_eq(a, b, n),
            (None, None) => {}
            _ => panic!("{n}: file versus directory"),
        }
    }
}

fn lftp(s: &Server, dir: &Path, script: &str) -> String {
    let full = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; \
         set cmd:fail-exit yes; open -u anonymous,lftp@ ftp://127.0.0.1:{}; {script}",
        s.port()
    );
    run_ok(dir, "lftp", &["-c", &full])
}

#[test]
fn lftp_mirror_downloads_a_nested_tree_byte_for_byte() {
    let s = Server::start(&["-a"]);
    make_tree(s.root());
    let tmp = TempDir::new("lftp");
    lftp(&s, tmp.path(), "mirror / got");
    assert_same_tree(&tmp.join("got"), s.root());
}

#[test]
fn lftp_mirror_r_uploads_a_nested_tree_byte_for_byte() {
    let s = Server::start(&["-a", "-w"]);
    let tmp = TempDir::new("lftp");
    make_tree(&tmp.join("src"));
    lftp(&s, tmp.path(), "mirror -R src /up");
    assert_same_tree(&s.path("up"), &tmp.join("src"));
}

#[test]
fn lftp_mirror_both_ways_in_active_mode() {
    let s = Server::start(&["-a", "-w"]);
    let tmp = TempDir::new("lftp");
    make_tree(&tmp.join("src"));
    lftp(
        &s,
        tmp.path(),
        "set ftp:passive-mode off; mirror -R src /up; mirror /up back",
    );
    assert_same_tree(&s.path("up"), &tmp.join("src"));
    assert_same_tree(&tmp.join("back"), &tmp.join("src"));
}

#[test]
fn lftp_ls_cls_rm_mv_and_mkdir() {
    let s = Server::start(&["-a", "-w"]);
    s.put("one.txt", b"1");
    let tmp = TempDir::new("lftp");
    let out = lftp(
        &s,
        tmp.path(),
        "mkdir newdir; mv one.txt newdir/two.txt; cls -1 newdir; rm newdir/two.txt; rmdir newdir; cls -1",
    );
    assert_eq!(out, "newdir/two.txt\n", "{out:?}");
    assert_eq!(tree(s.root()), []);
}

// ---------------------------------------------------------------- Python ftplib

const FTPLIB_SCRIPT: &str = r#"
import ftplib, io, sys
port = int(sys.argv[1])
active = sys.argv[2] == "active"
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", port, timeout=10)
assert ftp.getwelcome().startswith("220"), ftp.getwelcome()
ftp.login()  # anonymous
ftp.set_pasv(not active)
data = bytes(range(256)) * 4000
ftp.storbinary("STOR up.bin", io.BytesIO(data))
buf = io.BytesIO()
ftp.retrbinary("RETR up.bin", buf.write)
assert buf.getvalue() == data, "retrbinary"
ftp.storlines("STOR lines.txt", io.BytesIO(b"a\nb\r\nc\n"))
lines = []
ftp.retrlines("RETR lines.txt", lines.append)
assert lines == ["a", "b", "c"], lines
assert ftp.size("up.bin") == len(data)
ftp.mkd("sub")
ftp.cwd("sub")
assert ftp.pwd() == "/sub", ftp.pwd()
ftp.cwd("..")
ftp.rename("up.bin", "sub/moved.bin")
assert sorted(ftp.nlst()) == ["big.bin", "lines.txt", "sub"], ftp.nlst()
facts = dict(ftp.mlsd("sub", facts=["type", "size"]))
assert facts["moved.bin"]["type"] == "file", facts
assert facts["moved.bin"]["size"] == str(len(data)), facts
ftp.delete("sub/moved.bin")
ftp.rmd("sub")
assert sorted(ftp.nlst()) == ["big.bin", "lines.txt"], ftp.nlst()
# abort a big download half-way, then keep using the session
conn = ftp.transfercmd("RETR big.bin")
conn.recv(65536)
resp = ftp.abort()
conn.close()
# RFC 959: 426 for the aborted transfer, then 226 for the ABOR itself
assert resp[:3] == "426", resp
assert ftp.voidresp()[:3] == "226"
assert ftp.voidcmd("NOOP").startswith("200")
ftp.quit()
print("OK")
"#;

fn ftplib(active: bool) {
    require("python3");
    let s = Server::start(&["-a", "-w"]);
    let f = fs::File::create(s.path("big.bin")).unwrap();
    f.set_len(1 << 30).unwrap();
    let tmp = TempDir::new("py");
    fs::write(tmp.join("t.py"), FTPLIB_SCRIPT).unwrap();
    let port = s.port().to_string();
    let out = run_ok(
        tmp.path(),
        "python3",
        &["t.py", &port, if active { "active" } else { "passive" }],
    );
    assert_eq!(out, "OK\n");
    assert_eq!(fs::read(s.path("lines.txt")).unwrap(), b"a\nb\nc\n");
}

#[test]
fn python_ftplib_passive_session() {
    ftplib(false);
}

#[test]
fn python_ftplib_active_session() {
    ftplib(true);
}

// ---------------------------------------------------------------- BusyBox

#[test]
fn busybox_ftpget_and_ftpput() {
    let s = Server::start(&["-a", "-w"]);
    let data = pattern(500_000, 41);
    s.put("get.bin", &data);
    let tmp = TempDir::new("bb");
    let port = s.port().to_string();
    run_ok(
        tmp.path(),
        "busybox",
        &[
            "ftpget",
            "-u",
            "anonymous",
            "-p",
            "bb@",
            "-P",
            &port,
            "127.0.0.1",
            "local.bin",
            "get.bin",
        ],
    );
    assert_bytes_eq(&fs::read(tmp.join("local.bin")).unwrap(), &data, "ftpget");
    run_ok(
        tmp.path(),
        "busybox",
        &[
            "ftpput",
            "-u",
            "anonymous",
            "-p",
            "bb@",
            "-P",
            &port,
            "127.0.0.1",
            "put.bin",
            "local.bin",
        ],
    );
    assert_bytes_eq(&fs::read(s.path("put.bin")).unwrap(), &data, "ftpput");
}

// ---------------------------------------------------------------- wget

#[test]
fn wget_downloads_passive_and_active() {
    let s = Server::start(&["-a"]);
    let data = pattern(800_000, 51);
    s.put("w/f.bin", &data);
    let tmp = TempDir::new("wget");
    let u = url(&s, "w/f.bin");
    run_ok(tmp.path(), "wget", &["-q", "-O", "p.bin", &u]);
    assert_bytes_eq(&fs::read(tmp.join("p.bin")).unwrap(), &data, "wget passive");
    run_ok(
        tmp.path(),
        "wget",
        &["-q", "--no-passive-ftp", "-O", "a.bin", &u],
    );
    assert_bytes_eq(&fs::read(tmp.join("a.bin")).unwrap(), &data, "wget active");
}

#[test]
fn wget_recursive_download() {
    let s = Server::start(&["-a"]);
    make_tree(&s.path("tree"));
    let tmp = TempDir::new("wget");
    let u = url(&s, "tree/");
    run_ok(
        tmp.path(),
        "wget",
        &[
            "-q",
            "-r",
            "-nH",
            "--cut-dirs=1",
            "-P",
            "got",
            "--no-remove-listing",
            &u,
        ],
    );
    // wget leaves .listing files; compare the files only.
    let got: Vec<(String, Option<Vec<u8>>)> = tree(&tmp.join("got"))
        .into_iter()
        .filter(|(n, c)| c.is_some() && !n.ends_with(".listing"))
        .collect();
    let want: Vec<(String, Option<Vec<u8>>)> = tree(&s.path("tree"))
        .into_iter()
        .filter(|(_, c)| c.is_some())
        .collect();
    let gn: Vec<&String> = got.iter().map(|(n, _)| n).collect();
    let wn: Vec<&String> = want.iter().map(|(n, _)| n).collect();
    assert_eq!(gn, wn);
    for ((n, a), (_, b)) in got.iter().zip(want.iter()) {
        assert_bytes_eq(a.as_ref().unwrap(), b.as_ref().unwrap(), n);
    }
}
