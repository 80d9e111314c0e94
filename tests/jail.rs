//! The jail, through the real server: no path a client sends leaves the session's root, whether
//! it climbs with `..`, names an absolute path, follows a symlink that points out (absolute or
//! relative, or swapped in while the server works), loops, or carries bytes a file name should
//! not hold. Symlinks that stay inside keep working.
//!
//! Each test starts its own server (anonymous, writable) on a layout made by `Layout::new`:
//!
//! ```text
//! base/
//!   top.txt                       "TOP outside the root"
//!   outside/secret.txt            SECRET
//!   root/                         <- served as "/"
//!     inside.txt                  INSIDE
//!     dir/file.txt, dir/sub/      DIR_FILE
//!     dir/sub/back -> ../../inside.txt     (inside, relative, with ..)
//!     dir/up -> ..                         (inside: the root itself)
//!     in_file -> inside.txt, in_dir -> dir (inside)
//!     etc_link -> /etc, up_link -> ../../.., out_rel -> ../outside, out_abs -> base/outside
//!     secret_link -> ../outside/secret.txt, secret_abs -> base/outside/secret.txt
//!     dangling_rel -> ../outside/created_rel.txt, dangling_abs -> base/outside/created_abs.txt
//!     loop_a -> loop_b, loop_b -> loop_a, self_loop -> self_loop
//! ```

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use common::{pattern, snapshot, Client, Server, TempDir};

const SECRET: &[u8] = b"SECRET: outside the root\n";
const INSIDE: &[u8] = b"INSIDE the root\n";
const DIR_FILE: &[u8] = b"a file in dir\n";
const TOP: &[u8] = b"TOP outside the root\n";

struct Layout {
    base: TempDir,
    root: PathBuf,
    outside: PathBuf,
}

impl Layout {
    fn new(tag: &str) -> Layout {
        let base = TempDir::new(tag);
        let root = base.mkdir("root");
        let outside = base.mkdir("outside");
        base.write("top.txt", TOP);
        base.write("outside/secret.txt", SECRET);
        base.write("root/inside.txt", INSIDE);
        base.mkdir("root/dir/sub");
        base.write("root/dir/file.txt", DIR_FILE);
        base.symlink("../../inside.txt", "root/dir/sub/back");
        base.symlink("..", "root/dir/up");
        base.symlink("inside.txt", "root/in_file");
        base.symlink("dir", "root/in_dir");
        base.symlink("/etc", "root/etc_link");
        base.symlink("../../..", "root/up_link");
        base.symlink("../outside", "root/out_rel");
        base.symlink(&outside, "root/out_abs");
        base.symlink("../outside/secret.txt", "root/secret_link");
        base.symlink(outside.join("secret.txt"), "root/secret_abs");
        base.symlink("../outside/created_rel.txt", "root/dangling_rel");
        base.symlink(outside.join("created_abs.txt"), "root/dangling_abs");
        base.symlink("loop_b", "root/loop_a");
        base.symlink("loop_a", "root/loop_b");
        base.symlink("self_loop", "root/self_loop");
        Layout {
            base,
            root,
            outside,
        }
    }

    fn serve(&self) -> Server {
        Server::start_in(&self.root, &["--anonymous", "--writable"])
    }

    /// Everything outside the root: `outside/` and `top.txt`, with contents.
    fn outside_snapshot(&self) -> Vec<(PathBuf, Vec<u8>, u32, i64)> {
        let mut all = snapshot(self.base.path());
        all.retain(|(path, ..)| !path.starts_with(&self.root));
        all
    }
}

/// A command that must be refused with 550 (and must not leak the secret in its reply).
fn refused(client: &mut Client, line: &[u8]) {
    let reply = client.cmd_bytes(line);
    assert_eq!(
        reply.code,
        550,
        "{:?} -> {reply:?}",
        String::from_utf8_lossy(line)
    );
    assert!(!reply.text().contains("SECRET"), "{reply:?}");
}

fn retr_refused(client: &mut Client, path: &str) {
    match client.try_retr(path.as_bytes()) {
        Ok(bytes) => panic!(
            "RETR {path} served {} bytes: {:?}",
            bytes.len(),
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ),
        Err(reply) => assert_eq!(reply.code, 550, "RETR {path} -> {reply:?}"),
    }
}

fn list_refused(client: &mut Client, line: &str) {
    match client.try_listing(line) {
        Ok(text) => panic!("{line} listed {text:?}"),
        Err(reply) => assert_eq!(reply.code, 550, "{line} -> {reply:?}"),
    }
}

/// Every read command on paths through a symlink that points out of the root, by an absolute
/// target (`/etc`, `base/outside`).
#[test]
fn symlink_to_an_absolute_path_outside_is_not_followed() {
    let layout = Layout::new("jail-abs");
    let server = layout.serve();
    let mut c = server.anonymous();
    let before = layout.outside_snapshot();
    for dir in ["etc_link", "out_abs"] {
        refused(&mut c, format!("CWD {dir}").as_bytes());
        assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
        list_refused(&mut c, &format!("LIST {dir}"));
        list_refused(&mut c, &format!("NLST {dir}"));
        list_refused(&mut c, &format!("MLSD {dir}"));
    }
    for path in [
        "etc_link/passwd",
        "etc_link/hostname",
        "out_abs/secret.txt",
        "secret_abs",
    ] {
        retr_refused(&mut c, path);
        refused(&mut c, format!("SIZE {path}").as_bytes());
        refused(&mut c, format!("MDTM {path}").as_bytes());
        refused(&mut c, format!("MLST {path}").as_bytes());
        if path.contains('/') {
            // (STAT of the link itself lists the link, as ls -l does.)
            refused(&mut c, format!("STAT {path}").as_bytes());
        }
    }
    // The links themselves are entries of the root, shown as links, not as their targets.
    let listing = c.try_listing("LIST").expect("LIST /");
    assert!(listing.contains("etc_link -> /etc"), "{listing}");
    assert!(!listing.contains("SECRET"), "{listing}");
    assert_eq!(layout.outside_snapshot(), before);
}

/// The same through relative targets that climb out: `../../..` (the host's /), `../outside`.
#[test]
fn symlink_to_a_relative_path_outside_is_not_followed() {
    let layout = Layout::new("jail-rel");
    let server = layout.serve();
    let mut c = server.anonymous();
    for dir in ["up_link", "out_rel", "up_link/etc", "dir/up/out_rel"] {
        refused(&mut c, format!("CWD {dir}").as_bytes());
        list_refused(&mut c, &format!("LIST {dir}"));
        list_refused(&mut c, &format!("NLST {dir}"));
    }
    assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
    for path in [
        "secret_link",
        "out_rel/secret.txt",
        "up_link/etc/passwd",
        "dir/up/secret_link",
        "in_dir/up/out_rel/secret.txt",
    ] {
        retr_refused(&mut c, path);
        refused(&mut c, format!("SIZE {path}").as_bytes());
        refused(&mut c, format!("MDTM {path}").as_bytes());
        refused(&mut c, format!("MLST {path}").as_bytes());
    }
    c.expect("NOOP", 200);
}

/// Loops end in 550 quickly (ELOOP), for reads and writes, and the server carries on.
#[test]
fn symlink_loops_are_refused_without_hanging() {
    let layout = Layout::new("jail-loop");
    let server = layout.serve();
    let mut c = server.anonymous();
    c.set_read_timeout(Duration::from_secs(5));
    for name in ["loop_a", "loop_b", "self_loop", "loop_a/x", "self_loop/x/y"] {
        retr_refused(&mut c, name);
        refused(&mut c, format!("CWD {name}").as_bytes());
        refused(&mut c, format!("SIZE {name}").as_bytes());
        refused(&mut c, format!("MDTM {name}").as_bytes());
        list_refused(&mut c, &format!("LIST {name}"));
        // An upload through a loop creates nothing.
        match c.try_stor(name.as_bytes(), b"data") {
            Ok(()) => panic!("STOR {name} succeeded"),
            Err(reply) => assert_eq!(reply.code, 550, "STOR {name} -> {reply:?}"),
        }
    }
    refused(&mut c, b"MKD loop_a/newdir");
    c.expect("NOOP", 200);
    // Another session is served: the loop did not stall the server.
    let mut other = server.anonymous();
    assert_eq!(other.try_retr(b"inside.txt").unwrap(), INSIDE);
}

/// `..` leading, in the middle, trailing, alone, after `/`, and more `..` than components:
/// the client's view stops at its root (RFC 959's `/`), so `..` never names anything outside.
#[test]
fn dotdot_in_every_position_stays_at_the_root() {
    let layout = Layout::new("jail-dotdot");
    let server = layout.serve();
    let mut c = server.anonymous();
    let before = layout.outside_snapshot();
    for dir in [
        "..",
        "../..",
        "/..",
        "/../..",
        "dir/..",
        "dir/../..",
        "dir/sub/../../..",
        "a/../../..",
        "../dir/..",
        "./../.",
        "dir/./../../../../../..",
    ] {
        let reply = c.cmd(&format!("CWD {dir}"));
        assert_eq!(reply.code, 250, "CWD {dir} -> {reply:?}");
        assert_eq!(
            c.pwd(),
            "257 \"/\" is the current directory.",
            "after CWD {dir}"
        );
    }
    // Outside names reached by climbing do not exist from inside: base/top.txt, base/outside,
    // and base/root/inside.txt by its outside name.
    for path in [
        "../top.txt",
        "../../top.txt",
        "/../top.txt",
        "dir/../../top.txt",
        "dir/sub/../../../outside/secret.txt",
        "../outside/secret.txt",
        "../root/inside.txt",
        "a/../../../root/inside.txt",
    ] {
        retr_refused(&mut c, path);
        refused(&mut c, format!("SIZE {path}").as_bytes());
        refused(&mut c, format!("MDTM {path}").as_bytes());
        refused(&mut c, format!("DELE {path}").as_bytes());
        refused(&mut c, format!("RNFR {path}").as_bytes());
    }
    // Climbing then naming an inside file reaches the inside file (clamped at the root).
    for path in ["../inside.txt", "/../../inside.txt", "dir/../../inside.txt"] {
        assert_eq!(c.try_retr(path.as_bytes()).unwrap(), INSIDE, "RETR {path}");
    }
    // From a subdirectory, `..` leads back to the root, then no further.
    c.expect("CWD dir/sub", 250);
    assert_eq!(c.try_retr(b"../../inside.txt").unwrap(), INSIDE);
    assert_eq!(c.try_retr(b"../../../../inside.txt").unwrap(), INSIDE);
    retr_refused(&mut c, "../../../top.txt");
    let listing = c.try_listing("LIST ../../..").expect("LIST ../../..");
    assert!(listing.contains("inside.txt"), "{listing}");
    assert!(!listing.contains("top.txt"), "{listing}");
    c.expect("CWD /", 250);
    // Writes that climb land inside the root, never beside it.
    let reply = c.expect("MKD ../escaped_dir", 257);
    assert!(reply.text().contains("\"/escaped_dir\""), "{reply:?}");
    assert!(layout.root.join("escaped_dir").is_dir());
    c.try_stor(b"../../escaped.txt", b"stored").unwrap();
    assert_eq!(
        std::fs::read(layout.root.join("escaped.txt")).unwrap(),
        b"stored"
    );
    c.expect("RNFR inside.txt", 350);
    c.expect("RNTO ../../renamed.txt", 250);
    assert!(layout.root.join("renamed.txt").is_file());
    assert_eq!(
        layout.outside_snapshot(),
        before,
        "something changed outside the root"
    );
}

/// Absolute paths are the client's: `/etc/passwd` is `root/etc/passwd`, which does not exist;
/// the server's real absolute path of the outside directory means nothing either.
#[test]
fn absolute_paths_are_resolved_inside_the_root() {
    let layout = Layout::new("jail-absolute");
    let server = layout.serve();
    let mut c = server.anonymous();
    let before = layout.outside_snapshot();
    let outside_secret = layout.outside.join("secret.txt");
    let real_inside = layout.root.join("inside.txt");
    for path in [
        "/etc/passwd",
        "/etc/hostname",
        outside_secret.to_str().unwrap(),
        real_inside.to_str().unwrap(),
    ] {
        retr_refused(&mut c, path);
        refused(&mut c, format!("SIZE {path}").as_bytes());
        refused(&mut c, format!("MDTM {path}").as_bytes());
        refused(&mut c, format!("DELE {path}").as_bytes());
    }
    refused(&mut c, b"CWD /etc");
    refused(
        &mut c,
        format!("CWD {}", layout.outside.display()).as_bytes(),
    );
    list_refused(&mut c, "LIST /etc");
    // Writes to the outside directory's real path need that path to exist inside: it does not.
    let target = format!("{}/planted.txt", layout.outside.display());
    match c.try_stor(target.as_bytes(), b"planted") {
        Ok(()) => panic!("STOR {target} succeeded"),
        Err(reply) => assert_eq!(reply.code, 550, "{reply:?}"),
    }
    refused(
        &mut c,
        format!("MKD {}/newdir", layout.outside.display()).as_bytes(),
    );
    // Absolute paths inside the root work.
    assert_eq!(c.try_retr(b"/inside.txt").unwrap(), INSIDE);
    assert_eq!(c.try_retr(b"/dir/file.txt").unwrap(), DIR_FILE);
    c.expect("CWD /dir/sub", 250);
    assert_eq!(c.try_retr(b"/inside.txt").unwrap(), INSIDE);
    assert_eq!(layout.outside_snapshot(), before);
}

/// A NUL cannot be part of a Unix file name; the parser refuses the line with 501 instead of
/// cutting the name at the NUL (which would turn `inside.txt\0.jpg` into `inside.txt`).
#[test]
fn nul_in_a_name_is_refused_with_501() {
    let layout = Layout::new("jail-nul");
    let server = layout.serve();
    let mut c = server.anonymous();
    for line in [
        &b"SIZE inside.txt\0.jpg"[..],
        b"MDTM inside.txt\0",
        b"CWD dir\0",
        b"CWD \0",
        b"DELE inside.txt\0.bak",
        b"RNFR inside.txt\0",
        b"MKD new\0dir",
        b"RMD dir\0",
        b"LIST dir\0",
    ] {
        let reply = c.cmd_bytes(line);
        assert_eq!(
            reply.code,
            501,
            "{:?} -> {reply:?}",
            String::from_utf8_lossy(line)
        );
    }
    // Transfers too (a data connection prepared, so 425 cannot hide the answer).
    let _data = c.pasv_connect();
    assert_eq!(c.cmd_bytes(b"RETR inside.txt\0.jpg").code, 501);
    assert_eq!(c.cmd_bytes(b"STOR inside.txt\0.jpg").code, 501);
    c.expect("NOOP", 200);
    assert_eq!(
        std::fs::read(layout.root.join("inside.txt")).unwrap(),
        INSIDE
    );
    assert!(layout.root.join("dir").is_dir());
    assert!(!layout.root.join("new").exists());
}

/// Control bytes 0x01..0x1f (CR and LF aside, they end the line) are just bytes of a name:
/// files and directories so named are made, read, renamed and removed inside the root, and
/// the server neither escapes nor crashes on them.
#[test]
fn control_bytes_in_names_are_confined_and_harmless() {
    let layout = Layout::new("jail-ctl");
    let server = layout.serve();
    let mut c = server.anonymous();
    let before = layout.outside_snapshot();
    for byte in (0x01u8..=0x1f).filter(|b| *b != b'\r' && *b != b'\n') {
        let file = [b"f".as_slice(), &[byte], b".txt"].concat();
        let dir = [b"d".as_slice(), &[byte], b"d"].concat();
        let renamed = [b"r".as_slice(), &[byte]].concat();
        let content = format!("content {byte}\n").into_bytes();
        let mkd = c.cmd_bytes(&[b"MKD ".as_slice(), &dir].concat());
        assert_eq!(mkd.code, 257, "MKD with byte {byte:#04x} -> {mkd:?}");
        c.try_stor(&file, &content)
            .unwrap_or_else(|r| panic!("STOR with byte {byte:#04x} -> {r:?}"));
        let size = c.cmd_bytes(&[b"SIZE ".as_slice(), &file].concat());
        assert_eq!(
            size.text(),
            format!("213 {}", content.len()),
            "byte {byte:#04x}"
        );
        assert_eq!(c.try_retr(&file).unwrap(), content, "byte {byte:#04x}");
        // Inside the directory too, then climbing out of it with the name in the path.
        let nested = [dir.as_slice(), b"/", &file].concat();
        c.try_stor(&nested, &content).unwrap();
        let up = [dir.as_slice(), b"/../../..", b"/", &file].concat();
        assert_eq!(c.try_retr(&up).unwrap(), content, "byte {byte:#04x}");
        let rnfr = c.cmd_bytes(&[b"RNFR ".as_slice(), &file].concat());
        assert_eq!(rnfr.code, 350, "byte {byte:#04x}: {rnfr:?}");
        let rnto = c.cmd_bytes(&[b"RNTO ".as_slice(), &renamed].concat());
        assert_eq!(rnto.code, 250, "byte {byte:#04x}: {rnto:?}");
        // On disk: exactly these names, inside the root.
        use std::os::unix::ffi::OsStrExt;
        let on_disk = |name: &[u8]| layout.root.join(std::ffi::OsStr::from_bytes(name));
        assert_eq!(std::fs::read(on_disk(&renamed)).unwrap(), content);
        assert!(on_disk(&dir).is_dir(), "byte {byte:#04x}");
        assert_eq!(
            std::fs::read(on_disk(&dir).join(std::ffi::OsStr::from_bytes(&file))).unwrap(),
            content
        );
        assert_eq!(
            c.cmd_bytes(&[b"DELE ".as_slice(), &renamed].concat()).code,
            250
        );
        assert_eq!(
            c.cmd_bytes(&[b"DELE ".as_slice(), &nested].concat()).code,
            250
        );
        assert_eq!(c.cmd_bytes(&[b"RMD ".as_slice(), &dir].concat()).code, 250);
    }
    // Control bytes as the whole argument, and in front of `..`.
    // Virtual paths are resolved lexically: "X/../.." is "/..", which is the root, so the CWD
    // succeeds and stays at "/".
    for byte in [0x01u8, 0x09, 0x1b, 0x1f] {
        let reply = c.cmd_bytes(&[b"CWD ".as_slice(), &[byte], b"/../.."].concat());
        assert!(reply.is(&[250]), "CWD {byte:#04x}/../.. -> {reply:?}");
        assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
        retr_refused(&mut c, &format!("{}../top.txt", byte as char));
    }
    let listing = c.try_listing("LIST").expect("LIST");
    assert!(listing.contains("inside.txt"), "{listing}");
    c.expect("NOOP", 200);
    assert!(server.log_count("panicked") == 0, "{}", server.log_text());
    assert_eq!(layout.outside_snapshot(), before);
}

/// A name longer than NAME_MAX (255 bytes) is refused (553 or 550) for every command, and
/// 255 bytes still work (so the limit, not something else, is what refuses).
#[test]
fn names_over_name_max_are_refused() {
    let layout = Layout::new("jail-namemax");
    let server = layout.serve();
    let mut c = server.anonymous();
    let ok = "n".repeat(255);
    c.expect(&format!("MKD {ok}"), 257);
    c.try_stor(format!("{ok}/f").as_bytes(), b"x").unwrap();
    for len in [256, 300, 1000, 4000] {
        let long = "n".repeat(len);
        let long_codes = [550, 553];
        let check = |c: &mut Client, line: String| {
            let reply = c.cmd(&line);
            assert!(
                reply.is(&long_codes),
                "{}... ({len} bytes) -> {reply:?}",
                &line[..10]
            );
        };
        check(&mut c, format!("MKD {long}"));
        check(&mut c, format!("CWD {long}"));
        check(&mut c, format!("SIZE {long}"));
        check(&mut c, format!("MDTM {long}"));
        check(&mut c, format!("DELE {long}"));
        check(&mut c, format!("RMD {long}"));
        check(&mut c, format!("RNFR {long}"));
        check(&mut c, format!("SIZE dir/{long}/file.txt"));
        c.expect("RNFR inside.txt", 350);
        check(&mut c, format!("RNTO {long}"));
        match c.try_stor(long.as_bytes(), b"x") {
            Ok(()) => panic!("STOR of a {len}-byte name succeeded"),
            Err(reply) => assert!(reply.is(&long_codes), "STOR -> {reply:?}"),
        }
        match c.try_retr(long.as_bytes()) {
            Ok(_) => panic!("RETR of a {len}-byte name succeeded"),
            Err(reply) => assert!(reply.is(&long_codes), "RETR -> {reply:?}"),
        }
        match c.try_listing(&format!("LIST {long}")) {
            Ok(text) => panic!("LIST of a {len}-byte name listed {text:?}"),
            Err(reply) => assert!(reply.is(&long_codes), "LIST -> {reply:?}"),
        }
    }
    assert_eq!(
        std::fs::read(layout.root.join("inside.txt")).unwrap(),
        INSIDE
    );
    c.expect("NOOP", 200);
}

/// A path longer than PATH_MAX (4096) built from many components: the current directory is
/// made 20 levels of 200-byte names deep (4,020 bytes), then every command on a name below it
/// goes over PATH_MAX and is refused (550 or 553), while the session carries on.
#[test]
fn paths_over_path_max_are_refused() {
    let layout = Layout::new("jail-pathmax");
    let server = layout.serve();
    let mut c = server.anonymous();
    // First, one line of 2,000 components (4,079 bytes: under PATH_MAX, within the line).
    let many = "a/".repeat(2039) + "a";
    let reply = c.cmd(&format!("SIZE {many}"));
    assert_eq!(reply.code, 550, "{reply:?}");
    let component = "d".repeat(200);
    let mut depth = 0;
    for _ in 0..20 {
        c.expect(&format!("MKD {component}"), 257);
        c.expect(&format!("CWD {component}"), 250);
        depth += 1;
    }
    assert_eq!(depth * 201, 4020);
    let over = [550, 553];
    // 4,020 + 1 + 200 bytes: over PATH_MAX.
    for line in [
        format!("MKD {component}"),
        format!("CWD {component}"),
        format!("SIZE {component}"),
        format!("MDTM {component}"),
        format!("DELE {component}"),
        format!("RNFR {component}"),
        format!("MKD {component}/{component}"),
        format!("SIZE x/../{component}"),
    ] {
        let reply = c.cmd(&line);
        assert!(reply.is(&over), "{}... -> {reply:?}", &line[..10]);
    }
    for path in [component.clone(), format!("{component}/{component}")] {
        match c.try_stor(path.as_bytes(), b"deep") {
            Ok(()) => panic!("STOR beyond PATH_MAX succeeded"),
            Err(reply) => assert!(reply.is(&over), "STOR -> {reply:?}"),
        }
        match c.try_retr(path.as_bytes()) {
            Ok(_) => panic!("RETR beyond PATH_MAX succeeded"),
            Err(reply) => assert!(reply.is(&over), "RETR -> {reply:?}"),
        }
        match c.try_listing(&format!("LIST {path}")) {
            Ok(text) => panic!("LIST beyond PATH_MAX listed {text:?}"),
            Err(reply) => assert!(reply.is(&over), "LIST -> {reply:?}"),
        }
    }
    // Short names still fit (4,020 + 1 + 10 < 4,096) and the session still works.
    c.try_stor(b"short.txt", b"deep").unwrap();
    assert_eq!(c.try_retr(b"short.txt").unwrap(), b"deep");
    c.expect("CWD /", 250);
    assert_eq!(c.try_retr(b"inside.txt").unwrap(), INSIDE);
}

/// A RETR through a symlink opens the file once: swapping the link to point outside while the
/// transfer runs changes nothing in the bytes served, which all come from the inside file; a
/// RETR after the swap is refused.
#[test]
fn symlink_swapped_during_a_transfer_serves_only_the_inside_file() {
    let layout = Layout::new("jail-swap");
    const SIZE: usize = 32 << 20;
    let inside = pattern(SIZE, 1);
    let secret = vec![b'S'; SIZE];
    std::fs::write(layout.root.join("big.bin"), &inside).unwrap();
    std::fs::write(layout.outside.join("big_secret.bin"), &secret).unwrap();
    layout.base.symlink("big.bin", "root/swap");
    let server = layout.serve();
    let mut c = server.anonymous();
    c.expect("TYPE I", 200);
    let mut data = c.pasv_connect();
    let reply = c.cmd("RETR swap");
    assert_eq!(reply.code, 150, "{reply:?}");
    // Read the first MiB, then swap the link (atomically, by rename) to the outside file.
    let mut received = vec![0u8; 1 << 20];
    data.read_exact(&mut received).unwrap();
    let tmp = layout.root.join("swap.tmp");
    std::os::unix::fs::symlink(layout.outside.join("big_secret.bin"), &tmp).unwrap();
    std::fs::rename(&tmp, layout.root.join("swap")).unwrap();
    data.read_to_end(&mut received).unwrap();
    assert_eq!(c.reply().code, 226);
    assert_eq!(received.len(), SIZE, "bytes served");
    assert!(
        received == inside,
        "the bytes served are not the inside file's"
    );
    // After the swap the link points outside: refused, for RETR and the others.
    retr_refused(&mut c, "swap");
    refused(&mut c, b"SIZE swap");
    // Swapped again to a relative way out: still refused.
    let tmp = layout.root.join("swap.tmp");
    std::os::unix::fs::symlink("../outside/big_secret.bin", &tmp).unwrap();
    std::fs::rename(&tmp, layout.root.join("swap")).unwrap();
    retr_refused(&mut c, "swap");
}

/// A link flipped back and forth between an inside and an outside directory while the client
/// keeps asking: every answer is the inside file or 550, never the outside one (no window
/// between a check and a use).
#[test]
fn symlink_flipping_between_inside_and_outside_never_leaks() {
    let layout = Layout::new("jail-flip");
    layout.base.write("outside/file.txt", SECRET);
    layout.base.symlink("dir", "root/flip");
    let server = layout.serve();
    let mut c = server.anonymous();
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flipped = std::sync::Arc::new(AtomicU64::new(0));
    let flipper = {
        let (stop, flipped) = (stop.clone(), flipped.clone());
        let root = layout.root.clone();
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) && flips < 10_000_000 {
                let target = if flips % 2 == 0 { "../outside" } else { "dir" };
                let tmp = root.join("flip.tmp");
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(target, &tmp).unwrap();
                std::fs::rename(&tmp, root.join("flip")).unwrap();
                flips += 1;
                flipped.store(flips, Ordering::Relaxed);
            }
            flips
        })
    };
    // Ask at least 300 times and until the link has flipped often (the flipper thread may get
    // little CPU on a loaded machine), within a bounded time.
    let started = std::time::Instant::now();
    let (mut served, mut refusals) = (0, 0);
    for i in 0.. {
        let enough = i >= 300 && flipped.load(Ordering::Relaxed) >= 1000;
        if enough || started.elapsed() > std::time::Duration::from_secs(20) {
            break;
        }
        if i % 3 == 0 {
            match c.try_retr(b"flip/file.txt") {
                Ok(bytes) => {
                    assert_eq!(bytes, DIR_FILE, "RETR through the flipping link");
                    served += 1;
                }
                Err(reply) => {
                    assert_eq!(reply.code, 550, "{reply:?}");
                    refusals += 1;
                }
            }
        } else {
            let reply = c.cmd("SIZE flip/file.txt");
            match reply.code {
                213 => {
                    assert_eq!(reply.text(), format!("213 {}", DIR_FILE.len()));
                    served += 1;
                }
                550 => refusals += 1,
                _ => panic!("{reply:?}"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(flips >= 1000, "the link flipped only {flips} times in 20 s");
    assert!(served + refusals >= 300, "{served} + {refusals} requests");
    eprintln!("flipping link: {served} served from inside, {refusals} refused, {flips} flips");
}

/// Symlinks whose targets stay inside work like the files and directories they name.
#[test]
fn symlinks_that_stay_inside_keep_working() {
    let layout = Layout::new("jail-inside");
    let server = layout.serve();
    let mut c = server.anonymous();
    assert_eq!(c.try_retr(b"in_file").unwrap(), INSIDE);
    assert_eq!(c.try_retr(b"dir/sub/back").unwrap(), INSIDE);
    assert_eq!(c.try_retr(b"in_dir/file.txt").unwrap(), DIR_FILE);
    assert_eq!(c.try_retr(b"dir/up/inside.txt").unwrap(), INSIDE);
    assert_eq!(
        c.cmd("SIZE in_file").text(),
        format!("213 {}", INSIDE.len())
    );
    assert_eq!(c.cmd("MDTM dir/sub/back").code, 213);
    let listing = c.try_listing("LIST in_dir").unwrap();
    assert!(listing.contains("file.txt"), "{listing}");
    let names = c.try_listing("NLST in_dir/up").unwrap();
    assert!(names.contains("inside.txt"), "{names}");
    c.expect("CWD in_dir", 250);
    assert_eq!(c.pwd(), "257 \"/in_dir\" is the current directory.");
    assert_eq!(c.try_retr(b"file.txt").unwrap(), DIR_FILE);
    c.expect("CWD up", 250);
    assert_eq!(c.try_retr(b"inside.txt").unwrap(), INSIDE);
    c.expect("CWD /", 250);
    // Writes through an inside directory link land in the directory it names.
    c.try_stor(b"in_dir/new.txt", b"through the link").unwrap();
    assert_eq!(
        std::fs::read(layout.root.join("dir/new.txt")).unwrap(),
        b"through the link"
    );
    c.expect("MKD in_dir/made", 257);
    assert!(layout.root.join("dir/made").is_dir());
    c.expect("RNFR in_dir/new.txt", 350);
    c.expect("RNTO in_dir/sub/moved.txt", 250);
    assert!(layout.root.join("dir/sub/moved.txt").is_file());
    // STOR onto an inside file link writes the file it names.
    c.try_stor(b"in_file", b"rewritten\n").unwrap();
    assert_eq!(
        std::fs::read(layout.root.join("inside.txt")).unwrap(),
        b"rewritten\n"
    );
}

/// RNFR/RNTO cannot move a file out through a symlinked directory (absolute or relative), nor
/// bring an outside file in.
#[test]
fn rename_to_outside_through_a_symlinked_dir_fails() {
    let layout = Layout::new("jail-rename");
    let server = layout.serve();
    let mut c = server.anonymous();
    let before = layout.outside_snapshot();
    for target in [
        "out_rel/moved.txt",
        "out_abs/moved.txt",
        "up_link/tmp/moved.txt",
        "etc_link/moved.txt",
        "dir/up/out_rel/moved.txt",
    ] {
        c.expect("RNFR inside.txt", 350);
        let reply = c.cmd(&format!("RNTO {target}"));
        assert_eq!(reply.code, 550, "RNTO {target} -> {reply:?}");
    }
    c.expect("RNFR dir", 350);
    assert_eq!(c.cmd("RNTO out_rel/dir").code, 550);
    // And nothing comes in from outside.
    refused(&mut c, b"RNFR out_rel/secret.txt");
    refused(&mut c, b"RNFR out_abs/secret.txt");
    // Other writes through the same links fail too.
    refused(&mut c, b"DELE out_rel/secret.txt");
    refused(&mut c, b"DELE secret_link/x");
    refused(&mut c, b"MKD out_rel/newdir");
    refused(&mut c, b"MKD out_abs/newdir");
    refused(&mut c, b"RMD out_rel");
    assert_eq!(
        std::fs::read(layout.root.join("inside.txt")).unwrap(),
        INSIDE
    );
    assert!(layout.root.join("dir/file.txt").is_file());
    assert_eq!(
        layout.outside_snapshot(),
        before,
        "something changed outside the root"
    );
}

/// STOR/APPE/STOU through a symlink that points outside (to a directory, to an existing file,
/// or dangling to a name that does not exist yet) write nothing outside.
#[test]
fn stor_through_a_symlink_to_outside_writes_nothing_outside() {
    let layout = Layout::new("jail-stor");
    let server = layout.serve();
    let mut c = server.anonymous();
    let before = layout.outside_snapshot();
    for (verb, path) in [
        ("STOR", "out_rel/new.txt"),
        ("STOR", "out_abs/new.txt"),
        ("STOR", "secret_link"),
        ("STOR", "secret_abs"),
        ("STOR", "dangling_rel"),
        ("STOR", "dangling_abs"),
        ("APPE", "secret_link"),
        ("APPE", "dangling_abs"),
        ("STOU", "out_rel/unique"),
        ("STOR", "up_link/tmp/planted.txt"),
    ] {
        match c.try_upload(verb, path.as_bytes(), b"PLANTED") {
            Ok(()) => panic!("{verb} {path} succeeded"),
            Err(reply) => assert_eq!(reply.code, 550, "{verb} {path} -> {reply:?}"),
        }
    }
    // A resumed upload too.
    c.expect("REST 3", 350);
    match c.try_stor(b"secret_link", b"PLANTED") {
        Ok(()) => panic!("REST+STOR secret_link succeeded"),
        Err(reply) => assert_eq!(reply.code, 550, "{reply:?}"),
    }
    assert_eq!(
        layout.outside_snapshot(),
        before,
        "something changed outside the root"
    );
    assert!(!layout.outside.join("created_rel.txt").exists());
    assert!(!layout.outside.join("created_abs.txt").exists());
    assert_eq!(
        std::fs::read(layout.outside.join("secret.txt")).unwrap(),
        SECRET
    );
    // The session is fine and ordinary uploads work.
    c.try_stor(b"ok.txt", b"fine").unwrap();
    assert_eq!(std::fs::read(layout.root.join("ok.txt")).unwrap(), b"fine");
}
