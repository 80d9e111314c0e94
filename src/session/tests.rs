//! Session transcripts with a virtual clock: bytes in, exact replies and actions out.

use super::*;
use crate::config::{TlsConfig, TlsRequired};
use crate::proto::hash::Algorithm;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A temporary root with a file and a directory, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Root {
        let path =
            std::env::temp_dir().join(format!("leanftpd-session-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("pub")).unwrap();
        std::fs::write(path.join("hello.txt"), b"hello\n").unwrap();
        Root(path)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn session(root: &Root, writable: bool, now: Instant) -> Session {
    session_with(root, writable, None, now)
}

/// A session on a server with FTPS configured, at `required`.
fn tls_session(root: &Root, required: TlsRequired, now: Instant) -> Session {
    let tls = TlsConfig {
        cert: "cert.pem".into(),
        key: "cert.pem".into(),
        implicit_listen: Vec::new(),
        required,
        session_reuse_required: true,
    };
    let mut s = session_with(root, false, Some(tls), now);
    take_output(&mut s);
    s
}

fn session_with(root: &Root, writable: bool, tls: Option<TlsConfig>, now: Instant) -> Session {
    let mut config = Config::anonymous(&root.0);
    config.tls = tls;
    config.writable = writable;
    config.idle_timeout = Duration::from_secs(60);
    config.data_timeout = Duration::from_secs(10);
    let shared = Shared::new(
        config,
        Users::default(),
        Some(Rc::new(Jail::open(&root.0).unwrap())),
    );
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    shared.set_unix_time(unix as i64);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:2121".parse().unwrap();
    Session::new(Rc::new(shared), 1, peer, local, now)
}

/// Feeds one line and returns the replies it produced.
fn feed(s: &mut Session, line: &str, now: Instant) -> String {
    s.handle_input(line.as_bytes(), now);
    take_output(s)
}

fn take_output(s: &mut Session) -> String {
    let out = String::from_utf8_lossy(s.output()).into_owned();
    s.consume_output(out.len());
    out
}

fn logged_in(root: &Root, writable: bool, now: Instant) -> Session {
    let mut s = session(root, writable, now);
    assert_eq!(take_output(&mut s), "220 leanftpd ready.\r\n");
    assert!(feed(&mut s, "USER anonymous\r\n", now).starts_with("331 "));
    assert_eq!(
        feed(&mut s, "PASS guest@\r\n", now),
        "230 Login successful.\r\n"
    );
    s
}

#[test]
fn login_gate_allows_only_the_whitelist_before_login() {
    let root = Root::new("gate");
    let now = Instant::now();
    let mut s = session(&root, false, now);
    take_output(&mut s);
    assert_eq!(feed(&mut s, "SYST\r\n", now), "215 UNIX Type: L8\r\n");
    assert_eq!(feed(&mut s, "NOOP\r\n", now), "200 NOOP ok.\r\n");
    assert!(feed(&mut s, "FEAT\r\n", now).starts_with("211-Features:\r\n"));
    assert_eq!(
        feed(&mut s, "PWD\r\n", now),
        "530 Please login with USER and PASS.\r\n"
    );
    assert_eq!(
        feed(&mut s, "RETR hello.txt\r\n", now),
        "530 Please login with USER and PASS.\r\n"
    );
    assert_eq!(
        feed(&mut s, "PASS x\r\n", now),
        "503 Login with USER first.\r\n"
    );
}

#[test]
fn unknown_user_and_wrong_password_get_the_same_530() {
    let root = Root::new("badlogin");
    let now = Instant::now();
    let mut s = session(&root, false, now);
    take_output(&mut s);
    assert_eq!(
        feed(&mut s, "USER bob\r\n", now),
        "331 Please specify the password.\r\n"
    );
    // The 530 waits for the failure delay; commands sent meanwhile wait behind it.
    assert_eq!(feed(&mut s, "PASS nope\r\nPWD\r\n", now), "");
    assert!(!s.wants_input());
    let due = now + Duration::from_millis(LOGIN_FAILURE_DELAY_MS);
    assert_eq!(s.poll_timeout(), Some(due));
    s.handle_timeout(due);
    assert_eq!(
        take_output(&mut s),
        "530 Login incorrect.\r\n530 Please login with USER and PASS.\r\n"
    );
}

#[test]
fn three_failed_logins_close_the_session_with_growing_delays() {
    let root = Root::new("threefail");
    let mut now = Instant::now();
    let mut s = session(&root, false, now);
    take_output(&mut s);
    for failure in 1..=3u32 {
        feed(&mut s, "USER bob\r\n", now);
        assert_eq!(feed(&mut s, "PASS wrong\r\n", now), "");
        let delay = Duration::from_millis(LOGIN_FAILURE_DELAY_MS * 2u64.pow(failure - 1));
        assert_eq!(s.poll_timeout(), Some(now + delay), "failure {failure}");
        now += delay;
        s.handle_timeout(now);
        assert_eq!(take_output(&mut s), "530 Login incorrect.\r\n");
    }
    assert!(s.is_closing());
}

#[test]
fn a_connection_that_never_logs_in_is_closed() {
    let root = Root::new("logintimeout");
    let start = Instant::now();
    let mut s = session(&root, false, start);
    take_output(&mut s);
    let deadline = start + Duration::from_secs(crate::config::DEFAULT_LOGIN_TIMEOUT_SECS);
    assert_eq!(s.poll_timeout(), Some(deadline));
    // Chatter before login does not extend it.
    feed(&mut s, "SYST\r\n", start + Duration::from_secs(20));
    assert_eq!(s.poll_timeout(), Some(deadline));
    s.handle_timeout(deadline);
    assert_eq!(
        take_output(&mut s),
        "421 Login timeout: closing control connection.\r\n"
    );
    assert!(s.is_closing());
}

#[test]
fn noop_keeps_a_session_alive() {
    let root = Root::new("noop");
    let start = Instant::now();
    let mut s = logged_in(&root, false, start);
    let later = start + Duration::from_secs(59);
    feed(&mut s, "NOOP\r\n", later);
    assert_eq!(s.poll_timeout(), Some(later + Duration::from_secs(60)));
}

#[test]
fn http_and_tls_on_the_ftp_port_close_at_once() {
    let root = Root::new("http");
    let now = Instant::now();
    let mut s = session(&root, false, now);
    take_output(&mut s);
    assert_eq!(feed(&mut s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", now), "");
    assert!(s.is_closing());
    let mut s = session(&root, false, now);
    take_output(&mut s);
    s.handle_input(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], now);
    assert!(s.is_closing());
    assert_eq!(take_output(&mut s), "");
}

#[test]
fn cwd_pwd_and_the_jail() {
    let root = Root::new("cwd");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    assert_eq!(
        feed(&mut s, "CWD pub\r\n", now),
        "250 Directory successfully changed.\r\n"
    );
    assert_eq!(
        feed(&mut s, "PWD\r\n", now),
        "257 \"/pub\" is the current directory.\r\n"
    );
    // `..` stops at the root: the session never sees above it.
    assert_eq!(
        feed(&mut s, "CWD ../../..\r\n", now),
        "250 Directory successfully changed.\r\n"
    );
    assert_eq!(
        feed(&mut s, "XPWD\r\n", now),
        "257 \"/\" is the current directory.\r\n"
    );
    assert_eq!(
        feed(&mut s, "CWD nowhere\r\n", now),
        "550 No such file or directory.\r\n"
    );
    assert_eq!(
        feed(&mut s, "CWD hello.txt\r\n", now),
        "550 Not a directory.\r\n"
    );
}

#[test]
fn read_only_users_get_550_for_writes() {
    let root = Root::new("ro");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    for line in [
        "MKD x",
        "RMD pub",
        "DELE hello.txt",
        "RNFR hello.txt",
        "STOR y",
        "APPE y",
        "SITE CHMOD 600 hello.txt",
    ] {
        assert_eq!(
            feed(&mut s, &format!("{line}\r\n"), now),
            "550 Permission denied.\r\n",
            "{line}"
        );
    }
    assert!(root.0.join("pub").is_dir());
}

#[test]
fn writable_users_make_rename_and_delete() {
    let root = Root::new("rw");
    let now = Instant::now();
    let mut s = logged_in(&root, true, now);
    assert_eq!(
        feed(&mut s, "MKD new \"dir\"\r\n", now),
        "257 \"/new \"\"dir\"\"\" created.\r\n"
    );
    assert_eq!(
        feed(&mut s, "RNTO x\r\n", now),
        "503 RNFR required first.\r\n"
    );
    assert_eq!(
        feed(&mut s, "RNFR hello.txt\r\n", now),
        "350 Ready for RNTO.\r\n"
    );
    assert_eq!(
        feed(&mut s, "RNTO pub/moved.txt\r\n", now),
        "250 Rename successful.\r\n"
    );
    assert_eq!(feed(&mut s, "SIZE pub/moved.txt\r\n", now), "213 6\r\n");
    assert_eq!(
        feed(&mut s, "DELE pub/moved.txt\r\n", now),
        "250 File deleted.\r\n"
    );
    assert_eq!(
        feed(&mut s, "DELE pub/moved.txt\r\n", now),
        "550 No such file or directory.\r\n"
    );
    assert_eq!(
        feed(&mut s, "RMD new \"dir\"\r\n", now),
        "250 Directory removed.\r\n"
    );
}

#[test]
fn transfer_needs_a_data_connection_first() {
    let root = Root::new("425");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    assert_eq!(
        feed(&mut s, "RETR hello.txt\r\n", now),
        "425 Use PORT, EPRT, PASV or EPSV first.\r\n"
    );
    assert!(s.poll_action().is_none());
}

#[test]
fn pasv_then_retr_then_done() {
    let root = Root::new("retr");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    assert_eq!(feed(&mut s, "PASV\r\n", now), "");
    assert!(matches!(s.poll_action(), Some(Action::OpenPassive)));
    s.handle_passive_opened(Ok("127.0.0.1:50000".parse().unwrap()), now);
    assert_eq!(
        take_output(&mut s),
        "227 Entering Passive Mode (127,0,0,1,195,80).\r\n"
    );
    assert!(feed(&mut s, "RETR hello.txt\r\n", now).starts_with("150 "));
    assert!(matches!(
        s.poll_action(),
        Some(Action::Transfer {
            connect_to: None,
            ..
        })
    ));
    // During the transfer a new command waits, and so does a NOOP behind it: replies
    // stay in the order of the commands.
    assert_eq!(feed(&mut s, "PWD\r\nNOOP\r\n", now), "");
    assert!(!s.wants_input());
    s.handle_data_event(DataEvent::Connected, now);
    s.handle_data_event(DataEvent::Done { bytes: 6 }, now);
    assert_eq!(
        take_output(&mut s),
        "226 Transfer complete.\r\n257 \"/\" is the current directory.\r\n200 NOOP ok.\r\n"
    );
}

#[test]
fn a_command_pipelined_behind_pasv_waits_for_the_listener() {
    let root = Root::new("pipelined");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    assert_eq!(feed(&mut s, "PASV\r\nRETR hello.txt\r\n", now), "");
    assert!(matches!(s.poll_action(), Some(Action::OpenPassive)));
    assert!(s.poll_action().is_none());
    s.handle_passive_opened(Ok("127.0.0.1:50003".parse().unwrap()), now);
    let out = take_output(&mut s);
    assert!(
        out.starts_with("227 Entering Passive Mode (127,0,0,1,195,83).\r\n150 "),
        "{out}"
    );
    assert!(matches!(
        s.poll_action(),
        Some(Action::Transfer {
            connect_to: None,
            ..
        })
    ));
}

/// A writable session with a STOR running on a passive connection.
fn uploading(root: &Root, now: Instant) -> Session {
    let mut s = logged_in(root, true, now);
    feed(&mut s, "PASV\r\n", now);
    s.poll_action();
    s.handle_passive_opened(Ok("127.0.0.1:50004".parse().unwrap()), now);
    take_output(&mut s);
    assert!(feed(&mut s, "STOR up.bin\r\n", now).starts_with("150 "));
    assert!(matches!(s.poll_action(), Some(Action::Transfer { .. })));
    s.handle_data_event(DataEvent::Connected, now);
    s
}

#[test]
fn an_upload_outlives_a_hang_up_of_the_control_connection() {
    let root = Root::new("hangup");
    let now = Instant::now();
    let mut s = uploading(&root, now);
    s.handle_hangup();
    // The data connection is left alone: nothing the client sent may be lost.
    assert!(s.poll_action().is_none());
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(10)));
    s.handle_data_event(DataEvent::Done { bytes: 300_000 }, now);
    assert!(matches!(s.poll_action(), Some(Action::Close)));
}

#[test]
fn quit_during_an_upload_answers_after_the_226() {
    let root = Root::new("quitupload");
    let now = Instant::now();
    let mut s = uploading(&root, now);
    assert_eq!(feed(&mut s, "QUIT\r\n", now), "");
    assert!(s.poll_action().is_none());
    s.handle_data_event(DataEvent::Done { bytes: 5 }, now);
    assert_eq!(
        take_output(&mut s),
        "226 Transfer complete.\r\n221 Goodbye.\r\n"
    );
    assert!(matches!(s.poll_action(), Some(Action::Close)));
}

#[test]
fn a_stalled_transfer_on_an_early_passive_connection_gets_426() {
    let root = Root::new("stall");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    feed(&mut s, "PASV\r\n", now);
    s.poll_action();
    s.handle_passive_opened(Ok("127.0.0.1:50005".parse().unwrap()), now);
    // The client connects before it sends RETR.
    s.handle_data_event(DataEvent::Connected, now);
    take_output(&mut s);
    feed(&mut s, "RETR hello.txt\r\n", now);
    s.poll_action();
    s.handle_timeout(now + Duration::from_secs(10));
    assert_eq!(take_output(&mut s), "426 Data connection timed out.\r\n");
}

#[test]
fn a_hang_up_while_a_passive_port_opens_gets_no_late_reply() {
    let root = Root::new("latepasv");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    feed(&mut s, "EPSV\r\n", now);
    s.handle_hangup();
    assert!(matches!(s.poll_action(), Some(Action::OpenPassive)));
    assert!(matches!(s.poll_action(), Some(Action::CloseData)));
    assert!(matches!(s.poll_action(), Some(Action::Close)));
    s.handle_passive_opened(Ok("127.0.0.1:50006".parse().unwrap()), now);
    assert_eq!(take_output(&mut s), "");
}

#[test]
fn an_active_connect_that_never_completes_times_out() {
    let root = Root::new("portdeadline");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    feed(&mut s, "PORT 127,0,0,1,200,0\r\n", now);
    feed(&mut s, "RETR hello.txt\r\n", now);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(10)));
    s.handle_timeout(now + Duration::from_secs(10));
    assert!(take_output(&mut s).ends_with("425 Data connection timed out.\r\n"));
}

#[test]
fn stat_of_a_name_with_a_line_break_cannot_forge_a_reply() {
    let root = Root::new("statcr");
    std::fs::write(root.0.join("a\r\n213 forged"), b"").unwrap();
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    let out = feed(&mut s, "STAT /\r\n", now);
    assert!(out.starts_with("213-Status of /:\r\n"), "{out}");
    assert!(!out.contains("\r\n213 forged"), "{out}");
    assert!(out.ends_with("213 End of status.\r\n"), "{out}");
    // RFC 959: a pathname has no CR.
    assert_eq!(
        feed(&mut s, "MKD c\rd\r\n", now),
        "501 Syntax error in parameters or arguments.\r\n"
    );
}

#[test]
fn noop_and_abor_are_answered_during_a_transfer() {
    let root = Root::new("abor");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    feed(&mut s, "EPSV\r\n", now);
    s.poll_action();
    s.handle_passive_opened(Ok("127.0.0.1:50001".parse().unwrap()), now);
    assert_eq!(
        take_output(&mut s),
        "229 Entering Extended Passive Mode (|||50001|)\r\n"
    );
    feed(&mut s, "RETR hello.txt\r\n", now);
    s.poll_action();
    assert_eq!(feed(&mut s, "NOOP\r\n", now), "200 NOOP ok.\r\n");
    assert_eq!(
        feed(&mut s, "ABOR\r\n", now),
        "426 Transfer aborted.\r\n226 ABOR successful.\r\n"
    );
    assert!(matches!(s.poll_action(), Some(Action::CloseData)));
    assert_eq!(
        feed(&mut s, "ABOR\r\n", now),
        "226 No transfer to abort.\r\n"
    );
}

#[test]
fn port_bounce_is_refused() {
    let root = Root::new("bounce");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    // RFC 2577: another host, or a privileged port, is a bounce attack.
    assert!(feed(&mut s, "PORT 10,0,0,1,200,0\r\n", now).starts_with("504 "));
    assert!(feed(&mut s, "PORT 127,0,0,1,0,21\r\n", now).starts_with("504 "));
    assert!(feed(&mut s, "PORT 127,0,0,1,200,0\r\n", now).starts_with("200 "));
    assert_eq!(feed(&mut s, "EPSV ALL\r\n", now), "200 EPSV ALL ok.\r\n");
    assert!(feed(&mut s, "PORT 127,0,0,1,200,0\r\n", now).starts_with("503 "));
    assert!(feed(&mut s, "PASV\r\n", now).starts_with("503 "));
}

#[test]
fn idle_timeout_with_a_virtual_clock() {
    let root = Root::new("idle");
    let start = Instant::now();
    let mut s = logged_in(&root, false, start);
    assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(60)));
    let later = start + Duration::from_secs(30);
    feed(&mut s, "PWD\r\n", later);
    assert_eq!(s.poll_timeout(), Some(later + Duration::from_secs(60)));
    s.handle_timeout(later + Duration::from_secs(60));
    assert_eq!(
        take_output(&mut s),
        "421 Timeout: closing control connection.\r\n"
    );
    assert!(s.is_closing());
    assert!(matches!(s.poll_action(), Some(Action::Close)));
}

#[test]
fn a_pasv_nobody_connects_to_times_out() {
    let root = Root::new("pasvtimeout");
    let start = Instant::now();
    let mut s = logged_in(&root, false, start);
    feed(&mut s, "PASV\r\n", start);
    s.poll_action();
    s.handle_passive_opened(Ok("127.0.0.1:50002".parse().unwrap()), start);
    take_output(&mut s);
    assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(10)));
    s.handle_timeout(start + Duration::from_secs(10));
    assert!(matches!(s.poll_action(), Some(Action::CloseData)));
    assert_eq!(
        feed(&mut s, "RETR hello.txt\r\n", start),
        "425 Use PORT, EPRT, PASV or EPSV first.\r\n"
    );
}

#[test]
fn over_long_line_closes_the_session() {
    let root = Root::new("long");
    let now = Instant::now();
    let mut s = session(&root, false, now);
    take_output(&mut s);
    let line = format!("NOOP {}\r\n", "x".repeat(5000));
    assert_eq!(feed(&mut s, &line, now), "500 Command line too long.\r\n");
    assert!(s.is_closing());
}

/// The actions handed out, by name, in order.
fn action_names(s: &mut Session) -> Vec<&'static str> {
    std::iter::from_fn(|| s.poll_action())
        .map(|action| match action {
            Action::OpenPassive => "open-passive",
            Action::Transfer { .. } => "transfer",
            Action::CloseData => "close-data",
            Action::Close => "close",
            Action::StartTls => "start-tls",
            Action::RunTask(_) => "run-task",
            Action::CancelTask => "cancel-task",
            Action::AdmitUser { .. } => "admit-user",
        })
        .collect()
}

/// Calls `handle_timeout` at each deadline until the session asks for none, and checks that
/// every call moved the deadline forward (else the loop would spin).
fn run_deadlines(s: &mut Session) -> Instant {
    let mut last = None;
    for _ in 0..10 {
        let Some(due) = s.poll_timeout() else {
            return last.expect("the session had a deadline");
        };
        s.handle_timeout(due);
        assert!(
            s.poll_timeout().is_none_or(|next| next > due),
            "deadline did not move"
        );
        last = Some(due);
    }
    panic!("the session never stopped asking for deadlines");
}

/// An upload that QUIT left waiting for its data connection (issue 8: the server spun):
/// 425 at the data deadline, then 221, then the session ends.
#[test]
fn quit_with_an_unconnected_upload_ends_at_the_data_deadline() {
    for type_a in [false, true] {
        let root = Root::new("quitpending");
        let now = Instant::now();
        let mut s = logged_in(&root, true, now);
        if type_a {
            feed(&mut s, "TYPE A\r\n", now);
        }
        feed(&mut s, "EPSV\r\n", now);
        s.poll_action();
        s.handle_passive_opened(Ok("127.0.0.1:50007".parse().unwrap()), now);
        take_output(&mut s);
        assert!(feed(&mut s, "STOR up.bin\r\n", now).starts_with("150 "));
        assert_eq!(feed(&mut s, "QUIT\r\n", now), "");
        assert_eq!(action_names(&mut s), ["transfer"]);
        assert!(s.is_closing() && !s.wants_input());
        assert_eq!(run_deadlines(&mut s), now + Duration::from_secs(10));
        assert_eq!(
            take_output(&mut s),
            "425 Data connection timed out.\r\n221 Goodbye.\r\n"
        );
        assert_eq!(action_names(&mut s), ["close-data", "close"]);
        assert!(s.is_finished());
    }
}

/// The same with the connection made but no byte coming: 426, then 221.
#[test]
fn quit_with_a_stalled_upload_ends_at_the_data_deadline() {
    let root = Root::new("quitstalled");
    let now = Instant::now();
    let mut s = uploading(&root, now);
    assert_eq!(feed(&mut s, "QUIT\r\n", now), "");
    run_deadlines(&mut s);
    assert_eq!(
        take_output(&mut s),
        "426 Data connection timed out.\r\n221 Goodbye.\r\n"
    );
    assert_eq!(action_names(&mut s), ["close-data", "close"]);
}

/// A client that hangs up on a pending upload: the session still ends at the data deadline.
#[test]
fn a_hang_up_with_an_unconnected_upload_ends_at_the_data_deadline() {
    let root = Root::new("hanguppending");
    let now = Instant::now();
    let mut s = logged_in(&root, true, now);
    feed(&mut s, "PORT 127,0,0,1,200,10\r\nSTOR up.bin\r\n", now);
    s.handle_hangup();
    assert_eq!(action_names(&mut s), ["close-data", "transfer"]);
    run_deadlines(&mut s);
    assert_eq!(take_output(&mut s), "");
    assert_eq!(action_names(&mut s), ["close-data", "close"]);
    assert!(s.is_finished());
}

/// SIGTERM: an idle session is told 421 at once; a download is cut (426, 421).
#[test]
fn shutdown_closes_idle_sessions_and_cuts_downloads() {
    let root = Root::new("shutdown");
    let now = Instant::now();
    let grace = Duration::from_secs(2);
    let mut idle = logged_in(&root, false, now);
    idle.handle_shutdown(now, grace);
    assert_eq!(take_output(&mut idle), "421 Server shutting down.\r\n");
    assert_eq!(action_names(&mut idle), ["close"]);
    assert_eq!(idle.poll_timeout(), None);

    let mut downloading = logged_in(&root, false, now);
    feed(&mut downloading, "PASV\r\n", now);
    downloading.poll_action();
    downloading.handle_passive_opened(Ok("127.0.0.1:50008".parse().unwrap()), now);
    feed(&mut downloading, "RETR hello.txt\r\n", now);
    take_output(&mut downloading);
    action_names(&mut downloading);
    downloading.handle_shutdown(now, grace);
    assert_eq!(
        take_output(&mut downloading),
        "426 Transfer aborted.\r\n421 Server shutting down.\r\n"
    );
    assert_eq!(action_names(&mut downloading), ["close-data", "close"]);
}

/// SIGTERM during an upload: it may finish within the grace (226, 421), else it is cut at
/// the end of the grace (426, 421); what arrived is kept either way (the server's job).
#[test]
fn shutdown_gives_a_running_upload_a_grace() {
    let root = Root::new("shutdownupload");
    let now = Instant::now();
    let grace = Duration::from_secs(2);
    let mut finishing = uploading(&root, now);
    finishing.handle_shutdown(now, grace);
    assert_eq!(take_output(&mut finishing), "");
    assert_eq!(finishing.poll_timeout(), Some(now + grace));
    finishing.handle_data_event(DataEvent::Done { bytes: 7 }, now + grace / 2);
    assert_eq!(
        take_output(&mut finishing),
        "226 Transfer complete.\r\n421 Server shutting down.\r\n"
    );
    assert_eq!(action_names(&mut finishing), ["close"]);

    let mut stalled = uploading(&root, now);
    stalled.handle_data_event(DataEvent::Progress { bytes: 3 }, now);
    stalled.handle_shutdown(now, grace);
    assert_eq!(run_deadlines(&mut stalled), now + grace);
    assert_eq!(
        take_output(&mut stalled),
        "426 Server shutting down; transfer aborted.\r\n421 Server shutting down.\r\n"
    );
    assert_eq!(action_names(&mut stalled), ["close-data", "close"]);
    assert!(stalled.is_finished());
}

/// Several deadlines due at once (a passive port's and the idle one) are all handled in
/// one call: the loop treats a deadline still due afterwards as a bug.
#[test]
fn every_due_deadline_is_handled_in_one_call() {
    let root = Root::new("duetogether");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    feed(&mut s, "PASV\r\n", now);
    s.poll_action();
    s.handle_passive_opened(Ok("127.0.0.1:50009".parse().unwrap()), now);
    take_output(&mut s);
    let late = now + Duration::from_secs(120);
    s.handle_timeout(late);
    assert_eq!(
        take_output(&mut s),
        "421 Timeout: closing control connection.\r\n"
    );
    assert_eq!(s.poll_timeout(), None);
}

/// SIGUSR1's view of a session: logging in, idle, transferring (with the bytes so far).
#[test]
fn the_state_follows_login_and_transfers() {
    let root = Root::new("state");
    let now = Instant::now();
    let s = session(&root, true, now);
    assert_eq!(s.state(), (SessionState::LoggingIn, None));
    let mut s = uploading(&root, now);
    s.handle_data_event(DataEvent::Progress { bytes: 5 }, now);
    assert_eq!(
        s.state(),
        (SessionState::Transferring, Some((Direction::Upload, 5)))
    );
    s.handle_data_event(DataEvent::Done { bytes: 9 }, now);
    assert_eq!(s.state(), (SessionState::Idle, None));
}

/// Every transfer that ends leaves one record, completed or not, with what the logs need.
#[test]
fn each_ended_transfer_leaves_one_record() {
    let root = Root::new("records");
    let now = Instant::now();
    let later = now + Duration::from_secs(3);
    let mut s = uploading(&root, now);
    s.handle_data_event(DataEvent::Progress { bytes: 5 }, now);
    feed(&mut s, "ABOR\r\n", later);
    let record = s.poll_record().expect("a record for the aborted upload");
    assert_eq!(s.poll_record(), None);
    assert_eq!(
        (record.verb, &*record.path, record.direction, record.ascii),
        ("STOR", &b"/up.bin"[..], Direction::Upload, false)
    );
    assert_eq!(
        (record.bytes, record.code, &*record.user),
        (5, 426, "anonymous")
    );
    assert_eq!(record.peer, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert!(record.anonymous);
    assert_eq!(record.elapsed, Duration::from_secs(3));
    assert!(record.is_incomplete_upload());

    feed(&mut s, "TYPE A\r\nPASV\r\n", later);
    s.poll_action();
    s.handle_passive_opened(Ok("127.0.0.1:50010".parse().unwrap()), later);
    feed(&mut s, "RETR hello.txt\r\n", later);
    s.handle_data_event(DataEvent::Done { bytes: 7 }, later);
    let record = s.poll_record().expect("a record for the download");
    assert_eq!(
        (
            record.verb,
            record.direction,
            record.ascii,
            record.bytes,
            record.code
        ),
        ("RETR", Direction::Download, true, 7, 226)
    );
}

/// STAT of a big directory is made as the reply drains: never more than a refill pending,
/// the whole reply in order, and a command pipelined behind it answered after it.
#[test]
fn stat_of_a_big_directory_streams_with_bounded_output() {
    let root = Root::new("statbig");
    let big = root.0.join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..2500 {
        std::fs::write(big.join(format!("file-{i:05}")), b"").unwrap();
    }
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    s.handle_input(b"STAT big\r\nNOOP\r\n", now);
    let mut reply = String::new();
    let mut most = 0;
    while !s.output().is_empty() {
        most = most.max(s.output().len());
        // The client reads 1000 bytes at a time.
        let n = s.output().len().min(1000);
        reply.push_str(&String::from_utf8_lossy(&s.output()[..n]));
        s.consume_output(n);
        if s.output().is_empty() {
            // As the loop does once the socket has taken everything.
            s.handle_input(b"", now);
        }
    }
    assert!(
        most < STAT_REFILL_BYTES + 200,
        "{most} bytes pending at once"
    );
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert_eq!(lines[0], "213-Status of /big:");
    assert_eq!(
        lines.len(),
        1 + 2000 + 1 + 1 + 1 + 1,
        "{:?}",
        &lines[lines.len() - 4..]
    );
    assert!(lines[1..=2000].iter().all(|line| line.starts_with(" -rw")));
    assert_eq!(lines[2001], " (stopped after 2000 entries: use LIST)");
    assert_eq!(lines[2002], "213 End of status.");
    assert_eq!(lines[2003], "200 NOOP ok.");
}

// ---- FTPS (RFC 4217) -----------------------------------------------------------------------

#[test]
fn auth_without_a_certificate_is_502_and_feat_does_not_offer_it() {
    let root = Root::new("auth-none");
    let now = Instant::now();
    let mut s = session(&root, false, now);
    take_output(&mut s);
    assert_eq!(
        feed(&mut s, "AUTH TLS\r\n", now),
        "502 TLS is not configured on this server.\r\n"
    );
    assert!(!feed(&mut s, "FEAT\r\n", now).contains("AUTH TLS"));
    assert_eq!(
        feed(&mut s, "PBSZ 0\r\n", now),
        "503 PBSZ needs AUTH TLS first.\r\n"
    );
}

#[test]
fn auth_tls_drops_what_was_pipelined_behind_it() {
    let root = Root::new("auth-inject");
    let now = Instant::now();
    let mut s = tls_session(&root, TlsRequired::No, now);
    let feat = feed(&mut s, "FEAT\r\n", now);
    for line in ["\r\n AUTH TLS\r\n", "\r\n PBSZ\r\n", "\r\n PROT\r\n"] {
        assert!(feat.contains(line), "{feat}");
    }
    // SECURITY: USER came in the clear behind AUTH: it must never run.
    assert_eq!(
        feed(&mut s, "AUTH TLS\r\nUSER anonymous\r\n", now),
        "234 AUTH TLS successful.\r\n"
    );
    assert_eq!(action_names(&mut s), ["start-tls"]);
    assert!(
        !s.wants_input(),
        "nothing is read until the TLS layer is on"
    );
    s.handle_tls_started();
    assert!(s.wants_input());
    assert_eq!(
        feed(&mut s, "PASS x\r\n", now),
        "503 Login with USER first.\r\n"
    );
    assert_eq!(
        feed(&mut s, "AUTH TLS\r\n", now),
        "503 TLS is already on.\r\n"
    );
}

#[test]
fn auth_pbsz_prot_and_ccc_answer_each_case() {
    let root = Root::new("auth-codes");
    let now = Instant::now();
    let mut s = tls_session(&root, TlsRequired::No, now);
    assert_eq!(
        feed(&mut s, "AUTH KERBEROS_V4\r\n", now),
        "504 Unknown mechanism: use AUTH TLS.\r\n"
    );
    assert_eq!(
        feed(&mut s, "PROT P\r\n", now),
        "503 PROT needs PBSZ first.\r\n"
    );
    // curl sends AUTH SSL first; it is the same thing.
    assert_eq!(
        feed(&mut s, "AUTH ssl\r\n", now),
        "234 AUTH TLS successful.\r\n"
    );
    s.handle_tls_started();
    assert_eq!(
        feed(&mut s, "PROT P\r\n", now),
        "503 PROT needs PBSZ first.\r\n"
    );
    assert_eq!(feed(&mut s, "PBSZ 16384\r\n", now), "200 PBSZ=0\r\n");
    assert_eq!(
        feed(&mut s, "PROT S\r\n", now),
        "536 Only PROT C and PROT P are supported.\r\n"
    );
    assert_eq!(
        feed(&mut s, "PROT E\r\n", now),
        "536 Only PROT C and PROT P are supported.\r\n"
    );
    assert_eq!(
        feed(&mut s, "PROT X\r\n", now),
        "504 Unknown protection level: use PROT P.\r\n"
    );
    assert!(!s.protects_data());
    assert!(feed(&mut s, "PROT P\r\n", now).starts_with("200 "));
    assert!(s.protects_data());
    assert!(feed(&mut s, "PROT C\r\n", now).starts_with("200 "));
    assert!(!s.protects_data());
    assert_eq!(
        feed(&mut s, "CCC\r\n", now),
        "534 CCC refused: the control connection stays protected.\r\n"
    );
}

#[test]
fn tls_required_login_spares_anonymous_only() {
    let root = Root::new("auth-login");
    let now = Instant::now();
    let mut s = tls_session(&root, TlsRequired::Login, now);
    assert_eq!(
        feed(&mut s, "USER bob\r\n", now),
        "530 This server requires AUTH TLS before USER.\r\n"
    );
    assert!(feed(&mut s, "USER anonymous\r\n", now).starts_with("331 "));
    // A refused USER replaces an accepted one: PASS has no USER to go with (RFC 959).
    assert!(feed(&mut s, "USER bob\r\n", now).starts_with("530 "));
    assert_eq!(
        feed(&mut s, "PASS x\r\n", now),
        "503 Login with USER first.\r\n"
    );
    let mut s = tls_session(&root, TlsRequired::Login, now);
    feed(&mut s, "AUTH TLS\r\n", now);
    s.handle_tls_started();
    assert!(feed(&mut s, "USER bob\r\n", now).starts_with("331 "));
}

#[test]
fn a_login_in_the_clear_does_not_survive_auth_tls() {
    // RFC 2228 3: an accepted AUTH makes the user log in again.
    let root = Root::new("auth-relogin");
    let now = Instant::now();
    let mut s = tls_session(&root, TlsRequired::No, now);
    feed(&mut s, "USER anonymous\r\n", now);
    feed(&mut s, "PASS x\r\n", now);
    feed(&mut s, "CWD pub\r\n", now);
    feed(&mut s, "AUTH TLS\r\n", now);
    s.handle_tls_started();
    assert!(feed(&mut s, "PWD\r\n", now).starts_with("530 "));
    feed(&mut s, "USER anonymous\r\n", now);
    assert!(feed(&mut s, "PASS x\r\n", now).starts_with("230 "));
    assert_eq!(
        feed(&mut s, "PWD\r\n", now),
        "257 \"/\" is the current directory.\r\n"
    );
}

#[test]
fn tls_required_all_wants_auth_and_prot_p() {
    let root = Root::new("auth-all");
    let now = Instant::now();
    let mut s = tls_session(&root, TlsRequired::All, now);
    assert_eq!(
        feed(&mut s, "USER anonymous\r\n", now),
        "530 This server requires AUTH TLS before USER.\r\n"
    );
    feed(&mut s, "AUTH TLS\r\n", now);
    s.handle_tls_started();
    assert!(feed(&mut s, "USER anonymous\r\n", now).starts_with("331 "));
    assert!(feed(&mut s, "PASS x\r\n", now).starts_with("230 "));
    assert_eq!(feed(&mut s, "PBSZ 0\r\n", now), "200 PBSZ=0\r\n");
    assert_eq!(
        feed(&mut s, "PROT C\r\n", now),
        "534 Data connections must be protected here: use PROT P.\r\n"
    );
    // At the default level C, a transfer is refused, and the session goes on.
    assert_eq!(
        feed(&mut s, "RETR hello.txt\r\n", now),
        "521 Data connections must be protected: send PBSZ 0 and PROT P first.\r\n"
    );
    assert!(feed(&mut s, "PROT P\r\n", now).starts_with("200 "));
    assert_eq!(
        feed(&mut s, "RETR hello.txt\r\n", now),
        "425 Use PORT, EPRT, PASV or EPSV first.\r\n"
    );
}

#[test]
fn a_data_connection_that_did_not_resume_gets_522_and_the_session_goes_on() {
    let root = Root::new("auth-reuse");
    let now = Instant::now();
    let mut s = tls_session(&root, TlsRequired::No, now);
    for line in [
        "AUTH TLS",
        "USER anonymous",
        "PASS x",
        "PBSZ 0",
        "PROT P",
        "PASV",
    ] {
        if line == "USER anonymous" {
            s.handle_tls_started();
        }
        feed(&mut s, &format!("{line}\r\n"), now);
    }
    action_names(&mut s);
    s.handle_passive_opened(Ok("127.0.0.1:50000".parse().unwrap()), now);
    take_output(&mut s);
    // Refused before the command came: the command gets the 522.
    s.handle_data_event(DataEvent::Connected, now);
    s.handle_data_event(DataEvent::TlsNotResumed, now);
    assert_eq!(
        feed(&mut s, "RETR hello.txt\r\n", now),
        format!("522 {}\r\n", tls::TLS_NOT_RESUMED)
    );
    // Refused during the transfer: the transfer ends with 522.
    feed(&mut s, "PASV\r\n", now);
    action_names(&mut s);
    s.handle_passive_opened(Ok("127.0.0.1:50001".parse().unwrap()), now);
    take_output(&mut s);
    assert!(feed(&mut s, "RETR hello.txt\r\n", now).starts_with("150 "));
    s.handle_data_event(DataEvent::TlsNotResumed, now);
    assert_eq!(
        take_output(&mut s),
        format!("522 {}\r\n", tls::TLS_NOT_RESUMED)
    );
    assert_eq!(feed(&mut s, "NOOP\r\n", now), "200 NOOP ok.\r\n");
}

// ---- checksums ------------------------------------------------------------------------------

/// The task the session asked for, if its next action is `RunTask`.
fn take_task(s: &mut Session) -> Option<Task> {
    match s.poll_action() {
        Some(Action::RunTask(task)) => Some(*task),
        _ => None,
    }
}

/// Runs `task` to its end as the loop does (small slices) and hands the result back.
fn finish_task(s: &mut Session, mut task: Task, now: Instant) -> String {
    let mut buf = [0u8; 4];
    loop {
        match task.step(&mut buf) {
            Ok(crate::transfer::Step::Done) => {
                s.handle_task_done(Ok(task.finish()), now);
                return take_output(s);
            }
            Ok(_) => {}
            Err(e) => {
                s.handle_task_done(Err(e), now);
                return take_output(s);
            }
        }
    }
}

const HELLO_SHA256: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

#[test]
fn hash_runs_as_a_task_and_commands_wait_for_it() {
    let root = Root::new("hash-task");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    // NOOP runs during the checksum; PWD waits for it, as during a transfer.
    assert_eq!(
        feed(&mut s, "HASH hello.txt\r\nNOOP\r\nPWD\r\n", now),
        "200 NOOP ok.\r\n"
    );
    let task = take_task(&mut s).expect("a task");
    assert!(s.poll_action().is_none());
    assert_eq!(
        finish_task(&mut s, task, now),
        format!(
            "213 SHA-256 0-6 {HELLO_SHA256} hello.txt\r\n257 \"/\" is the current directory.\r\n"
        )
    );
    // The X-verbs answer with the hex alone, and take a range (end exclusive).
    assert_eq!(feed(&mut s, "XMD5 \"hello.txt\"\r\n", now), "");
    let task = take_task(&mut s).unwrap();
    assert_eq!(
        finish_task(&mut s, task, now),
        "213 b1946ac92492d2347c6235b4d2611184\r\n"
    );
    feed(&mut s, "XSHA1 hello.txt 1 4\r\n", now);
    let task = take_task(&mut s).unwrap();
    assert_eq!(
        finish_task(&mut s, task, now),
        "213 d027b4c247e6911ac060b71f7a4979b6e52e773b\r\n"
    );
    feed(&mut s, "XCRC /hello.txt\r\n", now);
    let task = take_task(&mut s).unwrap();
    assert_eq!(finish_task(&mut s, task, now), "213 363a3020\r\n");
}

#[test]
fn opts_hash_selects_the_algorithm_and_feat_marks_it() {
    let root = Root::new("hash-opts");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    assert_eq!(feed(&mut s, "OPTS HASH\r\n", now), "200 SHA-256\r\n");
    assert!(
        feed(&mut s, "FEAT\r\n", now).contains("\r\n HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32\r\n")
    );
    assert_eq!(feed(&mut s, "OPTS HASH crc32\r\n", now), "200 CRC32\r\n");
    assert_eq!(
        feed(&mut s, "OPTS HASH CRC-37\r\n", now),
        "501 Unknown algorithm, current selection not changed.\r\n"
    );
    assert_eq!(feed(&mut s, "OPTS HASH\r\n", now), "200 CRC32\r\n");
    assert!(
        feed(&mut s, "FEAT\r\n", now).contains("\r\n HASH SHA-256;SHA-512;SHA-1;MD5;CRC32*\r\n")
    );
    feed(&mut s, "HASH hello.txt\r\n", now);
    let task = take_task(&mut s).unwrap();
    assert_eq!(
        finish_task(&mut s, task, now),
        "213 CRC32 0-6 363a3020 hello.txt\r\n"
    );
}

#[test]
fn abor_cancels_a_checksum_and_the_waiting_commands_run() {
    let root = Root::new("hash-abor");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    assert_eq!(
        feed(&mut s, "HASH hello.txt\r\nABOR\r\nPWD\r\n", now),
        "426 Checksum aborted.\r\n226 ABOR successful.\r\n257 \"/\" is the current directory.\r\n"
    );
    assert_eq!(action_names(&mut s), ["run-task", "cancel-task"]);
    // A late result (the loop dropped the task, so none comes; if one did) says nothing.
    let digest = crate::transfer::Digest {
        algorithm: Algorithm::Sha256,
        start: 0,
        end: 6,
        hex: HELLO_SHA256.into(),
    };
    s.handle_task_done(Ok(crate::transfer::TaskDone::Checksum(digest)), now);
    assert_eq!(take_output(&mut s), "");
    // QUIT during a checksum: the task is dropped before the close.
    feed(&mut s, "HASH hello.txt\r\n", now);
    assert_eq!(feed(&mut s, "QUIT\r\n", now), "221 Goodbye.\r\n");
    assert_eq!(action_names(&mut s), ["run-task", "cancel-task", "close"]);
}

#[test]
fn checksum_errors() {
    let root = Root::new("hash-errors");
    let now = Instant::now();
    let mut s = session(&root, false, now);
    take_output(&mut s);
    assert_eq!(
        feed(&mut s, "HASH hello.txt\r\n", now),
        "530 Please login with USER and PASS.\r\n"
    );
    assert_eq!(
        feed(&mut s, "XSHA256 hello.txt\r\n", now),
        "530 Please login with USER and PASS.\r\n"
    );
    let mut s = logged_in(&root, false, now);
    assert_eq!(
        feed(&mut s, "HASH missing\r\n", now),
        "550 No such file or directory.\r\n"
    );
    assert_eq!(feed(&mut s, "HASH pub\r\n", now), "550 Is a directory.\r\n");
    assert_eq!(
        feed(&mut s, "XSHA512 \"../../etc/passwd\"\r\n", now),
        "550 No such file or directory.\r\n"
    );
    assert_eq!(
        feed(&mut s, "XMD5 hello.txt 0 7\r\n", now),
        "501 The range ends past the end of the file (6 bytes).\r\n"
    );
    assert_eq!(
        feed(&mut s, "XMD5 hello.txt 5 5\r\n", now),
        "501 Syntax error in parameters or arguments.\r\n"
    );
    assert!(s.poll_action().is_none());
    // A file that shrank during the checksum: 451, never a hash of fewer bytes.
    feed(&mut s, "HASH hello.txt\r\n", now);
    let task = take_task(&mut s).unwrap();
    s.handle_task_done(Err(crate::transfer::ChecksumError::Shrank { at: 3 }), now);
    drop(task);
    assert_eq!(
        take_output(&mut s),
        "451 The file shrank during the checksum.\r\n"
    );
}

/// A checksum of a large file on a slow card may outlast --idle-timeout: like a transfer, it
/// keeps the session; the idle clock starts again at its reply.
#[test]
fn a_running_checksum_is_not_idle() {
    let root = Root::new("hash-idle");
    let now = Instant::now();
    let mut s = logged_in(&root, false, now);
    feed(&mut s, "HASH hello.txt\r\n", now);
    let task = take_task(&mut s).unwrap();
    assert_eq!(s.poll_timeout(), None);
    let later = now + Duration::from_secs(3600);
    s.handle_timeout(later);
    assert!(!s.is_closing());
    assert!(finish_task(&mut s, task, later).starts_with("213 SHA-256 0-6 "));
    assert_eq!(s.poll_timeout(), Some(later + Duration::from_secs(60)));
}

/// `openssl passwd -6 -salt saltsalt secret`
const ALICE_SECRET: &str =
    "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

/// A session on a server whose users file holds alice (home: the root) with `settings`, the
/// flags as `config` leaves them; USER alice and PASS secret are sent, the 331 taken.
fn alice_after_pass(root: &Root, settings: &str, config: impl FnOnce(&mut Config)) -> Session {
    let now = Instant::now();
    let mut c = Config::anonymous(&root.0);
    config(&mut c);
    let line = format!("alice:{ALICE_SECRET}:{}:rw{settings}\n", root.0.display());
    let users = Users::parse(&line, "users").unwrap();
    let shared = Shared::new(c, users, None);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:2121".parse().unwrap();
    let mut s = Session::new(Rc::new(shared), 1, peer, local, now);
    take_output(&mut s);
    assert!(feed(&mut s, "USER alice\r\n", now).starts_with("331 "));
    // The commands behind PASS wait for the loop's answer.
    assert_eq!(feed(&mut s, "PASS secret\r\nPWD\r\n", now), "");
    assert!(!s.wants_input());
    s
}

#[test]
fn a_users_file_login_waits_for_the_loops_admission() {
    let root = Root::new("admit");
    let now = Instant::now();
    let mut s = alice_after_pass(&root, ":umask=027,rate_down=1M,max_sessions=2", |c| {
        c.rates.up = Some(4096);
        c.max_sessions_per_user = Some(5);
    });
    match s.poll_action() {
        Some(Action::AdmitUser { name, limits }) => {
            assert_eq!(&*name, "alice");
            assert_eq!(
                limits,
                Limits {
                    rate_down: Some(1 << 20),
                    rate_up: Some(4096),
                    max_sessions: Some(2),
                    umask: 0o027,
                    max_upload_size: None,
                }
            );
        }
        _ => panic!("AdmitUser expected"),
    }
    assert!(s.poll_action().is_none());
    assert_eq!(take_output(&mut s), "");
    s.handle_admission(Admission::Admitted, now);
    assert_eq!(
        take_output(&mut s),
        "230 Login successful.\r\n257 \"/\" is the current directory.\r\n"
    );
    assert!(s.wants_input());
    // The user's umask takes its bits from what it creates (the test process's own umask may
    // take more; tests/users.rs checks exact modes against the binary, whose umask is 0).
    assert_eq!(feed(&mut s, "MKD d\r\n", now), "257 \"/d\" created.\r\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(root.0.join("d")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o027, 0, "{mode:o}");
}

#[test]
fn a_user_over_its_session_limit_gets_421_and_is_closed() {
    let root = Root::new("toomany");
    let now = Instant::now();
    let mut s = alice_after_pass(&root, "", |c| c.max_sessions_per_user = Some(2));
    assert!(matches!(
        s.poll_action(),
        Some(Action::AdmitUser { limits, .. }) if limits.max_sessions == Some(2)
    ));
    s.handle_admission(Admission::TooMany { limit: 2 }, now);
    assert_eq!(
        take_output(&mut s),
        "421 Too many sessions for this user (2), try again later.\r\n"
    );
    assert!(matches!(s.poll_action(), Some(Action::Close)));
    assert!(s.is_finished());
    // An answer that comes twice changes nothing.
    s.handle_admission(Admission::Admitted, now);
    assert_eq!(take_output(&mut s), "");
}

#[test]
fn an_admission_that_comes_after_the_client_hung_up_says_nothing() {
    let root = Root::new("admitgone");
    let now = Instant::now();
    for admission in [Admission::TooMany { limit: 1 }, Admission::Admitted] {
        let mut s = alice_after_pass(&root, "", |c| c.max_sessions_per_user = Some(1));
        assert!(matches!(s.poll_action(), Some(Action::AdmitUser { .. })));
        s.handle_hangup();
        assert!(matches!(s.poll_action(), Some(Action::Close)));
        assert!(s.is_finished());
        s.handle_admission(admission, now);
        assert_eq!(take_output(&mut s), "");
        assert!(s.poll_action().is_none());
        assert!(!s.is_logged_in());
    }
}
