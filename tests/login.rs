//! Logging in: anonymous rules, the users file (hashes from --hash-password and openssl),
//! read-only versus read-write users, homes as roots, and the pre-login gate.

#[macro_use]
mod common;

use common::*;
use std::fs;

const OPENSSL_SHA512_SECRET: &str = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";
const OPENSSL_SHA256_SECRET: &str = "$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.";

#[test]
fn anonymous_user_logs_in_with_any_password() {
    let s = Server::start(&["-a"]);
    let mut c = s.connect();
    c.expect("USER anonymous", 331);
    c.expect("PASS whatever@example.org", 230);
    c.expect("PWD", 257);
    c.expect("QUIT", 221);
    assert!(
        c.wait_closed(IO_TIMEOUT).is_ok(),
        "QUIT closes the connection"
    );
}

#[test]
fn ftp_user_is_anonymous_too() {
    let s = Server::start(&["-a"]);
    s.put("hello.txt", b"hi\n");
    let mut c = s.connect();
    c.expect("USER ftp", 331);
    c.expect("PASS x", 230);
    assert_eq!(c.retr(Mode::Pasv, "hello.txt"), b"hi\n");
}

#[test]
fn anonymous_refused_when_only_users_file_given() {
    let u = Users::new(&[("alice", OPENSSL_SHA512_SECRET, "alice", "rw")]);
    let s = Server::start(&["-U", &u.file_arg()]);
    let mut c = s.connect();
    c.expect("USER anonymous", 331);
    c.expect("PASS a@b.c", 530);
    c.expect("PWD", 530);
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_530() {
    let u = Users::new(&[("alice", OPENSSL_SHA512_SECRET, "alice", "rw")]);
    let s = Server::start(&["-U", &u.file_arg()]);
    let mut c = s.connect();
    let user1 = c.expect("USER alice", 331);
    let bad = c.expect("PASS wrong", 530);
    let user2 = c.expect("USER mallory", 331);
    let unknown = c.expect("PASS secret", 530);
    assert_eq!(
        user1, user2,
        "USER reply must not reveal whether the user exists"
    );
    assert_eq!(bad, unknown, "530 must not reveal whether the user exists");
    c.expect("PWD", 530);
    // The session may try again.
    c.expect("USER alice", 331);
    c.expect("PASS secret", 230);
    c.expect("PWD", 257).expect(257);
}

#[test]
fn pass_without_user_is_a_sequence_error() {
    let s = Server::start(&["-a"]);
    let mut c = s.connect();
    c.expect("PASS x", 503);
}

#[test]
fn user_with_hash_from_hash_password_logs_in_and_sees_home_as_root() {
    let h = hash_password("correct horse");
    let u = Users::new(&[("alice", &h, "alice-home", "rw")]);
    fs::write(u.home("alice-home").join("mine.txt"), b"alice's file\n").unwrap();
    let s = Server::start(&["-U", &u.file_arg()]);
    s.put("root-only.txt", b"not for alice");
    let mut c = s.connect();
    c.expect("USER alice", 331);
    // A password with a space: the argument is everything after "PASS ".
    c.expect("PASS correct horse", 230);
    assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
    assert_eq!(c.nlst(Mode::Pasv, "NLST"), ["mine.txt"]);
    assert_eq!(c.retr(Mode::Pasv, "/mine.txt"), b"alice's file\n");
    c.expect("SIZE /root-only.txt", 550);
}

#[test]
fn openssl_sha512_and_sha256_crypt_hashes_are_accepted() {
    let u = Users::new(&[
        ("six", OPENSSL_SHA512_SECRET, "six", "ro"),
        ("five", OPENSSL_SHA256_SECRET, "five", "ro"),
    ]);
    let s = Server::start(&["-U", &u.file_arg()]);
    for user in ["six", "five"] {
        let mut c = s.connect();
        c.expect(&format!("USER {user}"), 331);
        c.expect("PASS secret", 230);
        let mut c = s.connect();
        c.expect(&format!("USER {user}"), 331);
        c.expect("PASS Secret", 530);
    }
}

#[test]
fn users_file_and_anonymous_together_each_get_their_own_root() {
    let u = Users::new(&[("alice", OPENSSL_SHA512_SECRET, "alice", "rw")]);
    fs::write(u.home("alice").join("a.txt"), b"A").unwrap();
    let s = Server::start(&["-a", "-U", &u.file_arg()]);
    s.put("anon.txt", b"N");
    let mut a = s.connect();
    a.login("alice", "secret");
    assert_eq!(a.nlst(Mode::Pasv, "NLST"), ["a.txt"]);
    let mut n = s.anonymous();
    assert_eq!(n.nlst(Mode::Pasv, "NLST"), ["anon.txt"]);
}

/// Every write command, each with a target that exists where needed; returns (command, needs
/// a data connection).
fn write_commands() -> Vec<(&'static str, bool)> {
    vec![
        ("STOR new.txt", true),
        ("APPE existing.txt", true),
        ("STOU", true),
        ("MKD newdir", false),
        ("XMKD newdir2", false),
        ("RMD emptydir", false),
        ("XRMD emptydir", false),
        ("DELE existing.txt", false),
        ("RNFR existing.txt", false),
        ("SITE CHMOD 600 existing.txt", false),
        ("MFMT 20200101000000 existing.txt", false),
    ]
}

fn read_only_refuses_every_write(c: &mut Client, root: &std::path::Path) {
    let before = snapshot(root);
    for (cmd, data) in write_commands() {
        if data {
            let _d = c.pasv_connect();
            c.expect(cmd, 550);
        } else {
            c.expect(cmd, 550);
        }
    }
    // RNTO after a refused RNFR has nothing to rename.
    let r = c.cmd("RNTO renamed.txt");
    assert!(r.code == 503 || r.code == 550, "{:?}", r.lines);
    assert_eq!(
        snapshot(root),
        before,
        "a read-only session changed the disk"
    );
    // Reading still works.
    assert_eq!(c.retr(Mode::Pasv, "existing.txt"), b"old\n");
}

fn populate(dir: &std::path::Path) {
    fs::write(dir.join("existing.txt"), b"old\n").unwrap();
    fs::create_dir(dir.join("emptydir")).unwrap();
}

#[test]
fn anonymous_without_writable_gets_550_for_every_write() {
    let s = Server::start(&["-a"]);
    populate(s.root());
    let mut c = s.anonymous();
    read_only_refuses_every_write(&mut c, s.root());
}

#[test]
fn read_only_user_gets_550_for_every_write() {
    let u = Users::new(&[("bob", OPENSSL_SHA512_SECRET, "bob", "ro")]);
    populate(&u.home("bob"));
    let s = Server::start(&["-U", &u.file_arg()]);
    let mut c = s.connect();
    c.login("bob", "secret");
    read_only_refuses_every_write(&mut c, &u.home("bob"));
}

fn read_write_may_do_every_write(c: &mut Client, root: &std::path::Path) {
    c.stor(Mode::Pasv, "new.txt", b"new\n");
    assert_eq!(fs::read(root.join("new.txt")).unwrap(), b"new\n");
    c.put(Mode::Pasv, "APPE existing.txt", b"more\n");
    assert_eq!(fs::read(root.join("existing.txt")).unwrap(), b"old\nmore\n");
    c.expect("MKD newdir", 257);
    assert!(root.join("newdir").is_dir());
    c.expect("RMD emptydir", 250);
    assert!(!root.join("emptydir").exists());
    c.expect("RNFR new.txt", 350);
    c.expect("RNTO renamed.txt", 250);
    assert!(root.join("renamed.txt").is_file());
    c.expect("SITE CHMOD 600 renamed.txt", 200);
    {
        use std::os::unix::fs::PermissionsExt;
        let m = fs::metadata(root.join("renamed.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o600);
    }
    c.expect("DELE renamed.txt", 250);
    assert!(!root.join("renamed.txt").exists());
}

#[test]
fn anonymous_with_writable_may_write() {
    let s = Server::start(&["-a", "-w"]);
    populate(s.root());
    let mut c = s.anonymous();
    read_write_may_do_every_write(&mut c, s.root());
}

#[test]
fn read_write_user_may_write_in_home() {
    let u = Users::new(&[
        ("alice", OPENSSL_SHA512_SECRET, "alice", "rw"),
        ("bob", OPENSSL_SHA512_SECRET, "bob", "ro"),
    ]);
    populate(&u.home("alice"));
    let s = Server::start(&["-U", &u.file_arg()]);
    let mut c = s.connect();
    c.login("alice", "secret");
    read_write_may_do_every_write(&mut c, &u.home("alice"));
}

#[test]
fn user_is_confined_to_home() {
    let u = Users::new(&[
        ("alice", OPENSSL_SHA512_SECRET, "alice", "rw"),
        ("bob", OPENSSL_SHA512_SECRET, "bob", "ro"),
    ]);
    fs::write(u.home("bob").join("bob-secret.txt"), b"bob only").unwrap();
    fs::write(u.home("alice").join("a.txt"), b"alice").unwrap();
    let s = Server::start(&["-U", &u.file_arg()]);
    let mut c = s.connect();
    c.login("alice", "secret");
    let _d = c.pasv_connect();
    c.expect("RETR ../bob/bob-secret.txt", 550);
    c.expect("SIZE ../bob/bob-secret.txt", 550);
    c.expect("SIZE /../bob/bob-secret.txt", 550);
    c.expect("CWD ..", 250);
    assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
    c.expect("CWD ../bob", 550);
    assert_eq!(c.nlst(Mode::Pasv, "NLST .."), ["a.txt"]);
    // Writes cannot land outside either.
    c.expect("MKD ../escaped", 257);
    assert!(
        !u.dir.join("escaped").exists(),
        "MKD ../escaped left the home"
    );
    assert!(u.home("alice").join("escaped").is_dir());
}

#[test]
fn commands_before_login_get_530() {
    let s = Server::start(&["-a", "-w"]);
    s.put("f.txt", b"x");
    let mut c = s.connect();
    for cmd in [
        "PWD",
        "XPWD",
        "CWD /",
        "XCWD /",
        "CDUP",
        "XCUP",
        "TYPE I",
        "MODE S",
        "STRU F",
        "PASV",
        "EPSV",
        "PORT 127,0,0,1,200,10",
        "EPRT |1|127.0.0.1|51210|",
        "RETR f.txt",
        "STOR g.txt",
        "STOU",
        "APPE f.txt",
        "REST 0",
        "RNFR f.txt",
        "RNTO g.txt",
        "DELE f.txt",
        "RMD d",
        "MKD d",
        "XMKD d",
        "XRMD d",
        "LIST",
        "NLST",
        "MLSD",
        "MLST f.txt",
        "STAT",
        "STAT f.txt",
        "SIZE f.txt",
        "MDTM f.txt",
        "MFMT 20200101000000 f.txt",
        "SITE CHMOD 600 f.txt",
        "SITE HELP",
        "ALLO 10",
        "ACCT x",
        "ABOR",
    ] {
        c.expect(cmd, 530);
    }
    assert_eq!(std::fs::read(s.path("f.txt")).unwrap(), b"x");
    assert!(!s.path("g.txt").exists() && !s.path("d").exists());
    // The whitelist works before login.
    c.expect("FEAT", 211);
    c.expect("SYST", 215);
    c.expect("NOOP", 200);
    c.expect("HELP", 214);
    c.expect("OPTS UTF8 ON", 200);
    c.expect("QUIT", 221);
}
