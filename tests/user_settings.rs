//! Per-user settings (issue 13): the users file's optional fifth field (`rate_down`, `rate_up`,
//! `max_sessions`, `umask`, `max_upload_size`) and `--max-sessions-per-user`, each end to end
//! against the real binary with curl, Python's ftplib and the raw client: a user's key
//! overrides its global flag, 0 lifts a limit, sessions are counted across addresses
//! (127.0.0.1 and 127.0.0.2), SIGHUP applies new settings to new sessions only, and a bad key
//! names its line (exit 2 at start; on SIGHUP the old users stay).

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// A users file under a temporary directory: every user's password is its name with `-pw`,
/// its home `home-NAME` there, read-write, and `settings` its fifth field ("" for none).
struct UsersFile {
    dir: TempDir,
    file: PathBuf,
}

impl UsersFile {
    fn new(users: &[(&str, &str)]) -> UsersFile {
        let dir = TempDir::new("user-settings");
        let file = dir.join("users");
        let users_file = UsersFile { dir, file };
        users_file.write(users);
        users_file
    }

    /// (Re)writes the file in one step (as an editor or a script replaces it).
    fn write(&self, users: &[(&str, &str)]) {
        let mut text = String::from("# name:hash:home:perms[:settings]\n");
        for (name, settings) in users {
            let home = self.home(name);
            fs::create_dir_all(&home).unwrap();
            let hash = hash_password(&format!("{name}-pw"));
            let settings = if settings.is_empty() {
                String::new()
            } else {
                format!(":{settings}")
            };
            text.push_str(&format!("{name}:{hash}:{}:rw{settings}\n", home.display()));
        }
        let tmp = self.file.with_extension("tmp");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &self.file).unwrap();
    }

    fn home(&self, name: &str) -> PathBuf {
        self.dir.join(format!("home-{name}"))
    }

    fn arg(&self) -> &str {
        self.file.to_str().unwrap()
    }
}

fn url(s: &Server, user: &str, path: &str) -> String {
    format!("ftp://{user}:{user}-pw@127.0.0.1:{}/{path}", s.port())
}

fn mode(path: &Path) -> u32 {
    mode_of(path) & 0o7777
}

// ---- rate_down, rate_up -----------------------------------------------------------------

/// curl moving `path` down (to /dev/null) or up (from `upload`) as `user`, timed.
fn curl_as(s: &Server, user: &str, path: &str, upload: Option<&Path>) -> Run {
    curl_finish(curl_timed(&url(s, user, path), upload))
}

/// The rate a paced transfer of `bytes` in `secs` shows, in MiB/s: a session's bucket starts
/// full (100 ms of its rate come at once), so that much is taken off before dividing.
fn paced_mibps(bytes: u64, secs: f64, rate: u64) -> f64 {
    let burst = rate as f64 * 0.1;
    (bytes as f64 - burst) / secs / MIB as f64
}

/// A user's rate_down and rate_up pace its sessions instead of --max-rate-down/-up (here
/// faster than the user's rates): 4 MiB each way at 1M/s, both at once, each within the 5% of
/// tests/pacing.rs. rate_down=0 lifts the flag's limit: 1 MiB under a 64K/s flag (16 s paced)
/// comes at once.
#[test]
fn rate_down_and_rate_up_pace_the_users_sessions_over_the_flags() {
    let users = UsersFile::new(&[("slow", "rate_down=1M,rate_up=1M"), ("free", "rate_down=0")]);
    let s = Server::start(&[
        "--users",
        users.arg(),
        "--max-rate-down",
        "64K",
        "--max-rate-up",
        "8M",
    ]);
    let data = pattern(4 * MIB as usize, 13);
    fs::write(users.home("slow").join("file"), &data).unwrap();
    fs::write(users.home("free").join("file"), &data[..MIB as usize]).unwrap();
    let upload = users.dir.write("upload.bin", &data);
    let (down, up) = thread::scope(|scope| {
        let down = scope.spawn(|| curl_as(&s, "slow", "file", None));
        let up = scope.spawn(|| curl_as(&s, "slow", "up.bin", Some(&upload)));
        (down.join().unwrap(), up.join().unwrap())
    });
    assert_eq!(down.bytes, 4 * MIB);
    assert_eq!(up.bytes, 4 * MIB);
    assert_eq!(fs::read(users.home("slow").join("up.bin")).unwrap(), data);
    within(
        "rate_down=1M",
        paced_mibps(down.bytes, down.secs, MIB),
        1.0,
        0.05,
    );
    within("rate_up=1M", paced_mibps(up.bytes, up.secs, MIB), 1.0, 0.05);

    let Run { bytes, secs } = curl_as(&s, "free", "file", None);
    assert_eq!(bytes, MIB);
    eprintln!("rate_down=0 under --max-rate-down 64K: 1 MiB in {secs:.3} s");
    assert!(secs < 4.0, "rate_down=0 was paced: {secs} s");
}

// ---- max_sessions, --max-sessions-per-user ------------------------------------------------

/// A control connection from `from` (127.0.0.1 or another loopback address), greeting read.
fn connect_from(s: &Server, from: Ipv4Addr) -> Client {
    let mut c = Client::from_stream(tcp_connect_from(from, s.addr()).expect("connect"));
    assert_eq!(c.reply().code, 220);
    c
}

/// The login of `user` past its limit: PASS is right, the answer is 421 and the connection
/// closes.
#[track_caller]
fn refused(c: &mut Client, user: &str, limit: usize) {
    c.expect(&format!("USER {user}"), 331);
    let r = c.cmd(&format!("PASS {user}-pw"));
    assert_eq!(r.code, 421, "{:?}", r.lines);
    assert_eq!(
        r.text(),
        format!("421 Too many sessions for this user ({limit}), try again later.")
    );
    c.expect_closed(IO_TIMEOUT);
}

/// Python's ftplib logging in as `user`: what its login() says (the reply, or the error).
fn ftplib_login(s: &Server, user: &str) -> String {
    require("python3");
    let script = format!(
        "import ftplib\n\
         ftp = ftplib.FTP()\n\
         ftp.connect('127.0.0.1', {}, timeout=10)\n\
         try:\n    print(ftp.login('{user}', '{user}-pw'))\n\
         except ftplib.all_errors as e:\n    print(type(e).__name__, e)\n",
        s.port()
    );
    let out = run_cmd("python3", &["-c", &script], b"", IO_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    out.stdout.trim().to_string()
}

/// --max-sessions-per-user 1 is the default; alice's max_sessions=2 overrides it, carol's
/// max_sessions=0 lifts it. Sessions count per account from any address (127.0.0.1 and
/// 127.0.0.2 alike), only once logged in, and are given back when a session ends (QUIT or
/// a dropped connection); a refused login takes nothing. Anonymous is not counted per user.
#[test]
fn max_sessions_counts_a_users_logins_across_addresses() {
    let users = UsersFile::new(&[
        ("alice", "max_sessions=2"),
        ("bob", ""),
        ("carol", "max_sessions=0"),
    ]);
    let s = Server::start(&["--users", users.arg(), "-a", "--max-sessions-per-user", "1"]);
    let local = Ipv4Addr::new(127, 0, 0, 1);
    let other = Ipv4Addr::new(127, 0, 0, 2);

    // alice: one session from each address, the third (from either) is refused.
    let mut a1 = connect_from(&s, local);
    a1.login("alice", "alice-pw");
    let mut a2 = connect_from(&s, other);
    a2.login("alice", "alice-pw");
    // Not logged in yet: not counted.
    let mut waiting = connect_from(&s, other);
    waiting.expect("USER alice", 331);
    refused(&mut connect_from(&s, local), "alice", 2);
    refused(&mut connect_from(&s, other), "alice", 2);
    let said = ftplib_login(&s, "alice");
    assert_eq!(
        said,
        "error_temp 421 Too many sessions for this user (2), try again later."
    );
    // The sessions already in go on.
    a1.expect("NOOP", 200);
    a2.expect("PWD", 257);

    // bob: the flag's 1, from two addresses.
    let mut b1 = connect_from(&s, other);
    b1.login("bob", "bob-pw");
    refused(&mut connect_from(&s, local), "bob", 1);
    // carol: no limit.
    let carols: Vec<Client> = (0..3)
        .map(|i| {
            let mut c = connect_from(&s, if i % 2 == 0 { local } else { other });
            c.login("carol", "carol-pw");
            c
        })
        .collect();
    // Anonymous is everybody's account: not counted per user.
    let anons: Vec<Client> = (0..3).map(|_| s.anonymous()).collect();

    // QUIT gives alice's slot back: the connection closes in the turn that frees the slot.
    a1.expect("QUIT", 221);
    a1.expect_closed(IO_TIMEOUT);
    waiting.expect("PASS alice-pw", 230);
    refused(&mut connect_from(&s, local), "alice", 2);
    // So does a connection that is dropped (a reset, no QUIT).
    set_linger_zero(a2.stream());
    drop(a2);
    let mut again = None;
    assert!(
        eventually(IO_TIMEOUT, || {
            let mut c = connect_from(&s, local);
            c.expect("USER alice", 331);
            let r = c.cmd("PASS alice-pw");
            let ok = r.code == 230;
            if ok {
                again = Some(c);
            }
            ok
        }),
        "{}",
        s.log_text()
    );
    drop((b1, carols, anons, waiting, again));
}

#[test]
fn max_sessions_per_user_must_be_a_whole_number() {
    for bad in ["-1", "x", "1.5", "4294967296"] {
        refuses(
            &["-a", "--max-sessions-per-user", bad],
            &["--max-sessions-per-user", bad, "whole number"],
        );
    }
    // 0 is no limit, as leaving the flag out.
    let users = UsersFile::new(&[("alice", "")]);
    let s = Server::start(&["--users", users.arg(), "--max-sessions-per-user", "0"]);
    let sessions: Vec<Client> = (0..3).map(|_| s.login("alice", "alice-pw")).collect();
    assert_eq!(sessions.len(), 3);
}

// ---- umask ----------------------------------------------------------------------------------

/// A user's umask makes the modes on disk of what its STOR (curl), STOU, APPE and MKD create,
/// over --umask 077; umask=0 gives 0666 and 0777 (the process umask takes nothing away); a
/// user without the key gets --umask.
#[test]
fn umask_sets_the_modes_of_a_users_files_over_the_flag() {
    let users = UsersFile::new(&[("alice", "umask=002"), ("open", "umask=0"), ("bob", "")]);
    let s = Server::start(&["--users", users.arg(), "--umask", "077"]);
    let local = users.dir.write("local.bin", b"curl upload");
    for (user, file, dir) in [
        ("alice", 0o664, 0o775),
        ("open", 0o666, 0o777),
        ("bob", 0o600, 0o700),
    ] {
        let home = users.home(user);
        run_ok(
            users.dir.path(),
            "curl",
            &[
                "-sS",
                "--fail",
                "-T",
                local.to_str().unwrap(),
                &url(&s, user, "curl.bin"),
            ],
        );
        assert_eq!(fs::read(home.join("curl.bin")).unwrap(), b"curl upload");
        assert_eq!(mode(&home.join("curl.bin")), file, "{user}: STOR");
        let mut c = s.login(user, &format!("{user}-pw"));
        c.expect("TYPE I", 200);
        c.try_upload("APPE", b"appended", b"a").unwrap();
        assert_eq!(mode(&home.join("appended")), file, "{user}: APPE");
        c.try_upload("STOU", b"unique", b"u").unwrap();
        assert_eq!(mode(&home.join("unique")), file, "{user}: STOU");
        c.expect("MKD dir", 257);
        assert_eq!(mode(&home.join("dir")), dir, "{user}: MKD");
    }
}

// ---- max_upload_size ------------------------------------------------------------------------

/// A user's max_upload_size bounds its uploads instead of --max-upload-size: 2K for alice
/// under a 1K flag (2048 bytes land, 2049 get 552 and keep 2048), the flag for bob, none for
/// carol (max_upload_size=0).
#[test]
fn max_upload_size_bounds_a_users_uploads_over_the_flag() {
    let users = UsersFile::new(&[
        ("alice", "max_upload_size=2K"),
        ("bob", ""),
        ("carol", "max_upload_size=0"),
    ]);
    let s = Server::start(&["--users", users.arg(), "--max-upload-size", "1K"]);
    let mut alice = s.login("alice", "alice-pw");
    alice.expect("TYPE I", 200);
    alice.try_stor(b"fits", &pattern(2048, 1)).unwrap();
    assert_eq!(
        fs::read(users.home("alice").join("fits")).unwrap(),
        pattern(2048, 1)
    );
    let r = alice.try_stor(b"over", &pattern(2049, 2)).unwrap_err();
    assert_eq!(r.code, 552, "{:?}", r.lines);
    assert_eq!(
        fs::read(users.home("alice").join("over")).unwrap(),
        pattern(2048, 2)
    );
    // curl sees the 552 too (its exit status 70), as bob past the flag's 1K.
    let big = users.dir.write("big.bin", &pattern(1025, 3));
    let out = run_cmd(
        "curl",
        &[
            "-sS",
            "-T",
            big.to_str().unwrap(),
            &url(&s, "bob", "big.bin"),
        ],
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(70), "{}", out.stderr);
    assert!(
        out.stderr.contains("Exceeded storage allocation"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read(users.home("bob").join("big.bin")).unwrap(),
        pattern(1024, 3)
    );
    let mut carol = s.login("carol", "carol-pw");
    carol.expect("TYPE I", 200);
    carol.try_stor(b"big", &pattern(100_000, 4)).unwrap();
    assert_eq!(
        fs::read(users.home("carol").join("big")).unwrap(),
        pattern(100_000, 4)
    );
}

// ---- SIGHUP, bad keys -------------------------------------------------------------------------

/// SIGHUP applies new settings to sessions that log in afterwards; a session already in keeps
/// the settings it logged in with, and still counts against the new max_sessions. A file with
/// a bad key is refused on SIGHUP (the log names the line) and the users stay as they were.
#[test]
fn sighup_applies_new_settings_to_new_sessions_only() {
    let users = UsersFile::new(&[("alice", "umask=022")]);
    let s = Server::start(&["--users", users.arg()]);
    let home = users.home("alice");
    let mut before = s.login("alice", "alice-pw");

    users.write(&[("alice", "umask=077,max_sessions=2")]);
    s.signal(libc::SIGHUP);
    assert!(
        s.wait_for_log("SIGHUP: reloaded 1 users", 1, IO_TIMEOUT),
        "{}",
        s.log_text()
    );
    let mut after = s.login("alice", "alice-pw");
    before.stor(Mode::Epsv, "before.bin", b"b");
    after.stor(Mode::Epsv, "after.bin", b"a");
    assert_eq!(mode(&home.join("before.bin")), 0o644);
    assert_eq!(mode(&home.join("after.bin")), 0o600);
    // `before` counts: alice's two sessions are in.
    refused(&mut s.connect(), "alice", 2);

    // A bad key: the reload is refused, the line named, the old settings stay.
    let text = fs::read_to_string(&users.file).unwrap();
    fs::write(
        &users.file,
        text.replace("max_sessions=2", "max_sessions=2,quota=1G"),
    )
    .unwrap();
    s.signal(libc::SIGHUP);
    let line = s.wait_for_line("keeping the users loaded before");
    assert!(
        line.contains(&format!(
            "users file {}, line 2: unknown setting \"quota\"",
            users.arg()
        )),
        "{line}"
    );
    refused(&mut s.connect(), "alice", 2);
    drop(before);
    assert!(
        eventually(IO_TIMEOUT, || {
            let mut c = s.connect();
            c.expect("USER alice", 331);
            c.cmd("PASS alice-pw").code == 230
        }),
        "{}",
        s.log_text()
    );
}

/// A bad key or value at start: one line naming the file and the line, exit 2.
#[test]
fn a_bad_setting_names_its_line_and_exits_2() {
    let users = UsersFile::new(&[("alice", ""), ("bob", "rate_down=1M")]);
    let cases = [
        ("speed=1M", "unknown setting \"speed\""),
        ("rate_down=fast", "rate_down=fast: want bytes a second"),
        ("umask=9", "umask=9: want octal"),
        ("max_sessions=-1", "max_sessions=-1: want a whole number"),
        (
            "max_upload_size=1T",
            "max_upload_size=1T: want a positive size",
        ),
        ("umask=022,umask=022", "setting umask given twice"),
    ];
    for (bad, reason) in cases {
        users.write(&[("alice", ""), ("bob", bad)]);
        let file = users.arg();
        refuses(
            &["--users", file],
            &[&format!("users file {file}, line 3: {reason}")],
        );
    }
}
