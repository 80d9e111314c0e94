//! The kernel sandbox (no_new_privs, Landlock, seccomp), on by default, through the real
//! binary: what /proc says of the running server with and without `--no-sandbox`, the start-up
//! line, `--sandbox-root` and a home the users file gains after start. With the test-only cargo
//! feature `sandbox-probe` (scripts/test builds it for this file alone), `SITE PROBE` tries from
//! inside a session what an exploit would: open a path outside every root directly (Landlock:
//! EACCES), exec a program or open a packet socket (seccomp: the process dies of SIGSYS, and
//! nothing restarts it: that is the design), or make a call the filter does not list (ENOSYS).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{hash_password, refuses, status_field, Server, TempDir};

/// A field of this test process's own /proc status: what the server inherits (a container's
/// seccomp filter, no_new_privs set by whoever started the tests).
fn own_status(name: &str) -> String {
    status_field(std::process::id() as i32, name)
}

/// The Landlock ABI this kernel offers, 0 when none (the version query of
/// landlock_create_ruleset).
fn kernel_landlock_abi() -> i64 {
    // SAFETY: the version query takes no ruleset and touches no memory.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    abi.max(0)
}

fn sandbox_line(server: &Server) -> String {
    let lines = server.log_lines();
    let found = lines.iter().find(|line| line.contains("sandbox"));
    found
        .cloned()
        .unwrap_or_else(|| panic!("no sandbox line in:\n{}", lines.join("\n")))
}

/// Writes a users file of `(name, password, home, perms)` lines in place (same inode).
fn write_users(path: &Path, users: &[(&str, &str, &Path, &str)]) {
    let mut text = String::new();
    for (name, password, home, perms) in users {
        let hash = hash_password(password);
        text.push_str(&format!("{name}:{hash}:{}:{perms}\n", home.display()));
    }
    std::fs::write(path, text).unwrap();
}

/// By default every layer is in force: /proc shows no_new_privs and seccomp filter mode (two
/// filters: the kill list and the allow list), and the start-up line names the layers with the
/// Landlock ABI of this kernel.
#[test]
fn the_running_server_has_no_new_privs_seccomp_and_landlock() {
    let server = Server::start(&["--anonymous"]);
    assert_eq!(server.status_field("NoNewPrivs"), "1");
    assert_eq!(server.status_field("Seccomp"), "2");
    let inherited: u32 = own_status("Seccomp_filters").parse().unwrap();
    let filters = server.status_field("Seccomp_filters");
    assert_eq!(filters, (inherited + 2).to_string());
    let line = sandbox_line(&server);
    let abi = kernel_landlock_abi();
    let want = if abi > 0 {
        format!(
            "sandbox: no_new_privs, landlock ABI {} (fs), seccomp",
            abi.min(10)
        )
    } else {
        "sandbox: no_new_privs, seccomp; no landlock:".to_string()
    };
    assert!(line.contains(&want), "want {want:?} in {line:?}");
    assert!(line.contains("INFO"), "a complete sandbox is info: {line}");
    // And it still serves.
    server.put("f.txt", b"served\n");
    assert_eq!(server.anonymous().try_retr(b"f.txt").unwrap(), b"served\n");
}

/// --no-sandbox: no layer beyond what the server inherited, and a warning says so.
#[test]
fn no_sandbox_leaves_every_layer_off_and_warns() {
    let server = Server::start(&["--anonymous", "--no-sandbox"]);
    // Outside a container that sets them itself, both are 0.
    for field in ["NoNewPrivs", "Seccomp", "Seccomp_filters"] {
        assert_eq!(server.status_field(field), own_status(field), "{field}");
    }
    let line = sandbox_line(&server);
    assert!(
        line.contains("WARN") && line.contains("sandbox off (--no-sandbox)"),
        "{line}"
    );
}

#[test]
fn bad_sandbox_flags_exit_2() {
    let dir = TempDir::new("sbx-flags");
    let file = dir.write("file", b"");
    let missing = dir.join("missing");
    for bad in [&file, &missing] {
        let bad = bad.to_str().unwrap();
        refuses(
            &["--anonymous", "--sandbox-root", bad],
            &["--sandbox-root", bad, "not a directory"],
        );
    }
    let good = dir.path().to_str().unwrap();
    refuses(
        &["--anonymous", "--no-sandbox", "--sandbox-root", good],
        &["--sandbox-root", "--no-sandbox"],
    );
}

/// A home the users file gains after start, outside every tree the sandbox allows, is refused
/// at login (530) with one log line saying why; the users already there still log in. Given
/// --sandbox-root over it, the same new home works, read-write as its user's perms say.
#[test]
fn a_home_added_after_start_must_lie_in_the_sandbox() {
    let dir = TempDir::new("sbx-home");
    let alice_home = dir.mkdir("alice");
    let later = dir.mkdir("later");
    let bob_home = dir.mkdir("later/bob");
    dir.write("later/bob/b.txt", b"bob's\n");
    let users = dir.join("users");
    write_users(&users, &[("alice", "a-pw", &alice_home, "rw")]);
    let users_arg = users.to_str().unwrap();
    let later_arg = later.to_str().unwrap();
    for widened in [false, true] {
        let mut args = vec!["--users", users_arg];
        if widened {
            args.extend(["--sandbox-root", later_arg]);
        }
        write_users(&users, &[("alice", "a-pw", &alice_home, "rw")]);
        let server = Server::start(&args);
        write_users(
            &users,
            &[
                ("alice", "a-pw", &alice_home, "rw"),
                ("bob", "b-pw", &bob_home, "rw"),
            ],
        );
        server.signal(libc::SIGHUP);
        assert!(
            server.wait_for_log("SIGHUP: reloaded 2 users", 1, Duration::from_secs(5)),
            "{}",
            server.log_text()
        );
        let refused = "login of bob refused: home";
        if widened {
            let mut bob = server.login("bob", "b-pw");
            assert_eq!(bob.try_retr(b"b.txt").unwrap(), b"bob's\n");
            bob.try_stor(b"new.txt", b"written\n").unwrap();
            assert_eq!(
                std::fs::read(bob_home.join("new.txt")).unwrap(),
                b"written\n"
            );
            assert_eq!(server.log_count(refused), 0);
        } else {
            let mut bob = server.connect();
            bob.expect("USER bob", 331);
            bob.expect("PASS b-pw", 530);
            assert!(
                server.wait_for_log(refused, 1, Duration::from_secs(5)),
                "{}",
                server.log_text()
            );
            let line = server.log_lines().into_iter().find(|l| l.contains(refused));
            let line = line.unwrap();
            assert!(line.contains(bob_home.to_str().unwrap()), "{line}");
            assert!(line.contains("--sandbox-root"), "{line}");
            server.login("alice", "a-pw").expect("PWD", 257);
        }
    }
}

/// A read-write user whose new home lies only in a tree the sandbox allows read-only (the
/// anonymous root, served read-only) is refused too: every write would fail.
#[test]
fn a_read_write_home_in_a_read_only_tree_is_refused() {
    let root = TempDir::new("sbx-rotree");
    let carol_home = root.mkdir("carol");
    let dir = TempDir::new("sbx-rotree-users");
    let users = dir.join("users");
    write_users(&users, &[]);
    let server = Server::start_in(
        root.path(),
        &["--anonymous", "--users", users.to_str().unwrap()],
    );
    write_users(&users, &[("carol", "c-pw", &carol_home, "rw")]);
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("SIGHUP: reloaded 1 users", 1, Duration::from_secs(5)));
    let mut carol = server.connect();
    carol.expect("USER carol", 331);
    carol.expect("PASS c-pw", 530);
    assert!(server.wait_for_log("login of carol refused: home", 1, Duration::from_secs(5)));
    // Read-only, the same home is fine.
    write_users(&users, &[("carol", "c-pw", &carol_home, "ro")]);
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("SIGHUP: reloaded 1 users", 2, Duration::from_secs(5)));
    server.login("carol", "c-pw").expect("PWD", 257);
}

#[cfg(feature = "sandbox-probe")]
mod probe {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::Command;
    use std::time::Duration;

    use super::common::{Server, TempDir, BIN};

    /// A server whose death leaves no core file (SIGSYS dumps core by default).
    fn start(root: &std::path::Path, args: &[&str]) -> Server {
        let mut cmd = Command::new(BIN);
        // SAFETY: setrlimit is async-signal-safe, and the child only calls it before exec.
        unsafe {
            cmd.pre_exec(|| {
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                Ok(())
            });
        }
        Server::start_command(cmd, root, args)
    }

    fn probe(server: &Server, what: &str) -> String {
        let mut client = server.anonymous();
        let reply = client.cmd(&format!("SITE PROBE {what}"));
        assert!(reply.is(&[200]), "SITE PROBE {what}: {}", reply.text());
        reply.msg().to_string()
    }

    /// Opening a file outside every root by its path, not through the jail: Landlock answers
    /// EACCES; without the sandbox the same open succeeds (the probe is real).
    #[test]
    fn an_open_outside_every_root_is_eacces() {
        let root = TempDir::new("sbx-probe-open");
        let outside = TempDir::new("sbx-probe-outside");
        let secret = outside.write("secret", b"not served\n");
        let what = format!("open {}", secret.display());
        let server = start(root.path(), &["--anonymous"]);
        assert!(probe(&server, &what).contains("errno 13"));
        assert!(probe(&server, "open /etc/passwd").contains("errno 13"));
        let free = start(root.path(), &["--anonymous", "--no-sandbox"]);
        assert!(probe(&free, &what).contains("ok"));
    }

    /// Inside the read-only anonymous root a file opens for reading but not for writing;
    /// with --writable it opens for both.
    #[test]
    fn the_read_only_root_is_read_only_to_the_process_itself() {
        let root = TempDir::new("sbx-probe-ro");
        let file = root.write("f.txt", b"kept\n");
        let server = start(root.path(), &["--anonymous"]);
        assert!(probe(&server, &format!("open {}", file.display())).contains("ok"));
        assert!(probe(&server, &format!("write {}", file.display())).contains("errno 13"));
        let writable = start(root.path(), &["--anonymous", "--writable"]);
        assert!(probe(&writable, &format!("write {}", file.display())).contains("ok"));
        assert_eq!(std::fs::read(&file).unwrap(), b"kept\n");
    }

    /// A call the allow list lacks fails with ENOSYS, and the server goes on serving.
    #[test]
    fn an_unlisted_call_is_enosys() {
        let root = TempDir::new("sbx-probe-enosys");
        let server = start(root.path(), &["--anonymous"]);
        assert!(probe(&server, "unlisted").contains("errno 38"));
        server.anonymous().expect("NOOP", 200);
        let free = start(root.path(), &["--anonymous", "--no-sandbox"]);
        assert!(probe(&free, "unlisted").contains("ok"));
    }

    /// exec and a packet socket kill the whole process with SIGSYS before they run.
    #[test]
    fn exec_and_a_packet_socket_kill_the_server() {
        for what in ["exec", "packet-socket"] {
            let root = TempDir::new("sbx-probe-kill");
            let mut server = start(root.path(), &["--anonymous"]);
            let mut client = server.anonymous();
            client.send(&format!("SITE PROBE {what}"));
            client.expect_closed(Duration::from_secs(10));
            let status = server.wait_exit(Duration::from_secs(10));
            let status = status.unwrap_or_else(|| panic!("{what}: the server is still running"));
            assert_eq!(status.signal(), Some(libc::SIGSYS), "{what}: {status}");
        }
    }
}
