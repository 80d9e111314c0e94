//! Privileges and signals, through the real binary: `--run-as` drops root for good after binding
//! and refuses to run without root, `--pid-file` tells init scripts the pid, SIGHUP reloads the
//! users file without touching the sessions (and keeps the old users when the new file is
//! broken), SIGTERM stops cleanly.
//!
//! The suite runs as root in CI: a test that needs root fails (it does not skip) without it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{hash_password, require_root, Server, TempDir, BIN};

const NOBODY_UID: &str = "65534";

/// `--run-as nobody` started as root: after start the process's real, effective, saved and
/// file-system uids and gids are nobody's, no supplementary group is root's, no capability is
/// left, and it still serves (and can no longer read what only root may read).
#[test]
fn run_as_nobody_drops_root_for_good_and_still_serves() {
    require_root("--run-as nobody");
    let root = TempDir::new("priv-runas");
    root.write("public.txt", b"for everyone\n");
    let private = root.write("root-only.txt", b"root's eyes only\n");
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let server = Server::start_in(root.path(), &["--run-as", "nobody", "--anonymous"]);
    let uids: Vec<String> = server
        .status_field("Uid")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(uids, [NOBODY_UID; 4], "Uid: real, effective, saved, fs");
    let nobody_gid = passwd_gid("nobody");
    let gids: Vec<String> = server
        .status_field("Gid")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        gids,
        [nobody_gid.as_str(); 4],
        "Gid: real, effective, saved, fs"
    );
    let groups = server.status_field("Groups");
    assert!(
        groups.split_whitespace().all(|g| g == nobody_gid),
        "supplementary groups: {groups:?}"
    );
    assert_eq!(
        server.status_field("CapEff"),
        "0000000000000000",
        "capabilities left"
    );
    assert!(server.log_text().contains("running as uid 65534"));
    // Still serving.
    let mut c = server.anonymous();
    assert_eq!(c.try_retr(b"public.txt").unwrap(), b"for everyone\n");
    assert!(c.try_listing("LIST").unwrap().contains("public.txt"));
    // As nobody, a file only root may read is refused.
    assert_eq!(c.try_retr(b"root-only.txt").unwrap_err().code, 550);
}

/// `--pid-file` holds the server's pid once it listens; SIGTERM ends the process with status
/// 0 and removes the file.
#[test]
fn pid_file_holds_the_pid_and_sigterm_stops_cleanly() {
    let dir = TempDir::new("priv-pidfile");
    let root = dir.mkdir("root");
    let pid_file = dir.join("leanftpd.pid");
    let mut server = Server::start_in(
        &root,
        &["--anonymous", "--pid-file", pid_file.to_str().unwrap()],
    );
    let written = std::fs::read_to_string(&pid_file).expect("the pid file");
    assert_eq!(written, format!("{}\n", server.pid()));
    let mut c = server.anonymous();
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("still running 5 s after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
    let bye = c.read_reply().expect("a 421 before the close");
    assert_eq!(bye.code, 421, "{bye:?}");
    assert!(!pid_file.exists(), "the pid file is left behind");
}

/// Writes a users file of `(name, password, home)` lines, read-write.
fn write_users(path: &Path, users: &[(&str, &str, &Path)]) {
    let mut text = String::from("# name:hash:home:perms\n");
    for (name, password, home) in users {
        text.push_str(&format!(
            "{name}:{}:{}:rw\n",
            hash_password(password),
            home.display()
        ));
    }
    // Replace the file in one step, as an administrator's editor or a script would.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// SIGHUP reloads the users file: a user added can log in, a user removed cannot log in again
/// but keeps the session already open, and the other sessions are untouched.
#[test]
fn sighup_reloads_the_users_file_without_dropping_sessions() {
    let dir = TempDir::new("priv-hup");
    let alice_home = dir.mkdir("alice");
    let bob_home = dir.mkdir("bob");
    dir.write("alice/a.txt", b"alice's file\n");
    dir.write("bob/b.txt", b"bob's file\n");
    let users = dir.join("users");
    write_users(&users, &[("alice", "alice-pw", &alice_home)]);
    // Bob's home comes with the reload: the sandbox must already reach it (tests/sandbox.rs).
    let server = Server::start(&[
        "--users",
        users.to_str().unwrap(),
        "--sandbox-root",
        dir.path().to_str().unwrap(),
    ]);
    let mut alice = server.login("alice", "alice-pw");
    let mut bob_before = server.connect();
    bob_before.expect("USER bob", 331);
    bob_before.expect("PASS bob-pw", 530);

    write_users(&users, &[("bob", "bob-pw", &bob_home)]);
    server.signal(libc::SIGHUP);
    assert!(
        server.wait_for_log("SIGHUP: reloaded 1 users", 1, Duration::from_secs(5)),
        "{}",
        server.log_text()
    );
    let mut bob = server.login("bob", "bob-pw");
    assert_eq!(bob.try_retr(b"b.txt").unwrap(), b"bob's file\n");
    // Alice was removed: her open session goes on, a new login is refused.
    alice.expect("NOOP", 200);
    assert_eq!(alice.try_retr(b"a.txt").unwrap(), b"alice's file\n");
    let mut alice_again = server.connect();
    alice_again.expect("USER alice", 331);
    alice_again.expect("PASS alice-pw", 530);
}

/// A users file that does not load on SIGHUP (a malformed line) leaves the users as they were,
/// none of its valid lines taking effect, and the server keeps running and serving.
#[test]
fn a_broken_users_file_on_sighup_keeps_the_old_users() {
    let dir = TempDir::new("priv-hupbroken");
    let home = dir.mkdir("home");
    dir.write("home/f.txt", b"file\n");
    let users = dir.join("users");
    write_users(&users, &[("alice", "alice-pw", &home)]);
    let mut server = Server::start(&["--users", users.to_str().unwrap()]);
    let mut alice = server.login("alice", "alice-pw");
    // A valid line for carol, then garbage.
    let carol = format!(
        "carol:{}:{}:rw\n",
        hash_password("carol-pw"),
        home.display()
    );
    std::fs::write(&users, format!("{carol}this line is not a user\n")).unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        server.wait_for_log("keeping the users loaded before", 1, Duration::from_secs(5)),
        "{}",
        server.log_text()
    );
    assert!(
        server.is_running(),
        "the server died on a broken users file"
    );
    // The old users stand: alice logs in again, carol does not exist.
    let mut again = server.login("alice", "alice-pw");
    assert_eq!(again.try_retr(b"f.txt").unwrap(), b"file\n");
    let mut c = server.connect();
    c.expect("USER carol", 331);
    c.expect("PASS carol-pw", 530);
    alice.expect("NOOP", 200);
    // A users file that vanished is no better.
    std::fs::remove_file(&users).unwrap();
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("keeping the users loaded before", 2, Duration::from_secs(5)));
    server.login("alice", "alice-pw").expect("PWD", 257);
}

/// `--run-as` by a server not started as root is a start-up error (exit 2, one line saying
/// why), not a silent run as whoever started it.
#[test]
fn run_as_without_root_exits_2() {
    require_root("switching to a non-root user for this test");
    let dir = TempDir::new("priv-notroot");
    let root = dir.mkdir("root");
    // A copy of the binary where any user can run it.
    let bin = dir.join("leanftpd");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let args = [
        bin.to_str().unwrap(),
        "--run-as",
        "nobody",
        "--anonymous",
        "--root",
        root.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let wrappers: [(&str, &[&str]); 2] = [
        (
            "setpriv",
            &["--reuid=65534", "--regid=65534", "--clear-groups", "--"],
        ),
        ("runuser", &["-u", "nobody", "--"]),
    ];
    let Some(output) = wrappers.iter().find_map(|(tool, wrapper_args)| {
        Command::new(tool)
            .args(*wrapper_args)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()
            // A wrapper that itself failed to switch users exits 1 or 127 with its own message.
            .filter(|out| !String::from_utf8_lossy(&out.stderr).starts_with(tool))
    }) else {
        panic!(
            "neither setpriv nor runuser could run the server as nobody: install util-linux \
             (setpriv), which .ci/run's machine has"
        );
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("--run-as") && stderr.contains("root"),
        "stderr: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

/// The primary gid of `user` from /etc/passwd.
fn passwd_gid(user: &str) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&user)).then(|| fields[3].to_string())
        })
        .unwrap_or_else(|| panic!("no {user} in /etc/passwd"))
}
