//! How a host carries out what a session asks: the one place where each `Action` is mapped to
//! the host's work and to the answer the session expects back. The loop (net/control.rs), the
//! session fuzz target and the tests below are all hosts, so the contract cannot drift between
//! them.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::{Action, Admission, Session};
use crate::auth::Limits;
use crate::transfer::{Job, Task, TransferRecord};

/// The server side of one session: its sockets, its task, its logs.
pub trait Host {
    /// Calls into the session; `None` once it is gone (the loop: closed, or poisoned by a panic).
    fn with_session<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> Option<R>;
    /// A transfer ended: log it (the stderr line, xferlog, syslog, upload notices).
    fn record(&mut self, record: TransferRecord, now: Instant);
    /// Opens a passive listener; the earlier data connection is already closed.
    fn open_passive(&mut self) -> io::Result<SocketAddr>;
    /// PORT/EPRT: connects to `addr` and runs `job` on it; the earlier data connection is
    /// already closed. Failure comes back later as `DataEvent::ConnectFailed`.
    fn connect_data(&mut self, addr: SocketAddr, job: Job, now: Instant);
    /// Runs `job` on the passive connection (waiting for the client to connect), or answers
    /// `DataEvent::ConnectFailed` when there is no listener any more.
    fn passive_transfer(&mut self, job: Job, now: Instant);
    /// Drops the data connection or passive listener and whatever runs on it.
    fn close_data(&mut self);
    /// Runs `task` a bounded step per turn (replacing any earlier one); its end comes back
    /// through `Session::handle_task_done`.
    fn run_task(&mut self, task: Task);
    /// Drops the running task; `handle_task_done` never comes for it.
    fn cancel_task(&mut self);
    /// Once the pending output (the 234) is sent, puts TLS on the control connection and calls
    /// `Session::handle_tls_started`; reads nothing before.
    fn start_tls(&mut self);
    /// A users-file login whose password was right: counts the account's sessions (across
    /// addresses) and says whether it may have one more (`limits.max_sessions`); admitted, the
    /// session is paced at `limits.rate_down`/`rate_up` from now on. The answer goes to
    /// `Session::handle_admission`: now (Some), or later when the host has to ask elsewhere
    /// (None: a worker of --workers asks its supervisor, which counts every worker's sessions).
    fn admit_user(&mut self, name: Box<str>, limits: Limits, now: Instant) -> Option<Admission>;
    /// Sends what output it can, then closes the control connection, its data connection and
    /// its task. The session queues nothing after this.
    fn close(&mut self);
}

/// Hands out the session's transfer records, then carries out its actions in order.
pub fn run_actions(host: &mut impl Host, now: Instant) {
    while let Some(record) = host.with_session(Session::poll_record).flatten() {
        host.record(record, now);
    }
    while let Some(action) = host.with_session(Session::poll_action).flatten() {
        match action {
            Action::OpenPassive => {
                host.close_data();
                let result = host.open_passive();
                host.with_session(|session| session.handle_passive_opened(result, now));
            }
            Action::Transfer {
                job,
                connect_to: Some(addr),
            } => {
                host.close_data();
                host.connect_data(addr, *job, now);
            }
            Action::Transfer {
                job,
                connect_to: None,
            } => host.passive_transfer(*job, now),
            Action::CloseData => host.close_data(),
            Action::RunTask(task) => host.run_task(*task),
            Action::CancelTask => host.cancel_task(),
            Action::StartTls => host.start_tls(),
            Action::AdmitUser { name, limits } => {
                if let Some(admission) = host.admit_user(name, limits, now) {
                    host.with_session(|session| session.handle_admission(admission, now));
                }
            }
            Action::Close => host.close(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::rc::Rc;

    use super::*;
    use crate::auth::Users;
    use crate::config::Config;
    use crate::session::{DataEvent, Shared};

    /// A host that records what it was asked, in order, with a passive port that always opens.
    struct Recorder {
        session: Session,
        calls: Vec<String>,
    }

    impl Host for Recorder {
        fn with_session<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
            Some(f(&mut self.session))
        }
        fn record(&mut self, record: TransferRecord, _now: Instant) {
            let path = String::from_utf8_lossy(&record.path);
            self.calls
                .push(format!("record {} {path} {}", record.verb, record.bytes));
        }
        fn open_passive(&mut self) -> io::Result<SocketAddr> {
            self.calls.push("open-passive".into());
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50001))
        }
        fn connect_data(&mut self, addr: SocketAddr, _job: Job, _now: Instant) {
            self.calls.push(format!("connect {addr}"));
        }
        fn passive_transfer(&mut self, _job: Job, _now: Instant) {
            self.calls.push("passive-transfer".into());
        }
        fn close_data(&mut self) {
            self.calls.push("close-data".into());
        }
        fn run_task(&mut self, _task: Task) {
            self.calls.push("run-task".into());
        }
        fn cancel_task(&mut self) {
            self.calls.push("cancel-task".into());
        }
        fn start_tls(&mut self) {
            self.calls.push("start-tls".into());
        }
        fn admit_user(
            &mut self,
            name: Box<str>,
            _limits: Limits,
            _now: Instant,
        ) -> Option<Admission> {
            self.calls.push(format!("admit-user {name}"));
            Some(Admission::Admitted)
        }
        fn close(&mut self) {
            self.calls.push("close".into());
        }
    }

    fn logged_in(root: &std::path::Path) -> Recorder {
        let mut config = Config::anonymous(root);
        config.writable = false;
        let jail = crate::fs::Jail::open(root).expect("open the root");
        let shared = Rc::new(Shared::new(config, Users::default(), Some(Rc::new(jail))));
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
        let now = Instant::now();
        let mut session = Session::new(shared, 1, addr, addr, now);
        session.handle_input(b"USER anonymous\r\nPASS x\r\n", now);
        let mut host = Recorder {
            session,
            calls: Vec::new(),
        };
        run_actions(&mut host, now);
        host.session.consume_output(usize::MAX);
        host
    }

    fn send(host: &mut Recorder, line: &str) -> String {
        let now = Instant::now();
        host.session.handle_input(line.as_bytes(), now);
        run_actions(host, now);
        let out = String::from_utf8_lossy(host.session.output()).into_owned();
        host.session.consume_output(usize::MAX);
        out
    }

    #[test]
    fn each_action_reaches_its_host_call_and_the_answer_comes_back() {
        let root = std::env::temp_dir().join(format!("leanftpd-driver-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.txt"), b"hello").unwrap();
        let mut host = logged_in(&root);

        // PASV: the old data connection goes first, then the listener, and the 227 carries the
        // port the host opened (50001 = 195*256 + 81).
        let reply = send(&mut host, "PASV\r\n");
        assert_eq!(host.calls, ["close-data", "open-passive"]);
        assert_eq!(reply, "227 Entering Passive Mode (127,0,0,1,195,81).\r\n");

        host.calls.clear();
        send(&mut host, "RETR a.txt\r\n");
        assert_eq!(host.calls, ["passive-transfer"]);
        let now = Instant::now();
        host.session.handle_data_event(DataEvent::Connected, now);
        host.session
            .handle_data_event(DataEvent::Done { bytes: 5 }, now);
        host.calls.clear();
        run_actions(&mut host, now);
        assert_eq!(host.calls, ["record RETR /a.txt 5"]);
        let out = String::from_utf8_lossy(host.session.output()).into_owned();
        assert!(out.ends_with("226 Transfer complete.\r\n"), "{out}");
        host.session.consume_output(usize::MAX);

        host.calls.clear();
        let reply = send(&mut host, "PORT 127,0,0,1,4,1\r\n");
        assert_eq!(
            reply,
            "200 PORT command successful. Consider using EPSV.\r\n"
        );
        // PORT drops the passive listener; the transfer command connects.
        assert_eq!(host.calls, ["close-data"]);
        host.calls.clear();
        send(&mut host, "NLST\r\n");
        assert_eq!(host.calls, ["close-data", "connect 127.0.0.1:1025"]);

        host.calls.clear();
        // ABOR: the aborted transfer still gets its record, before its connection goes.
        send(&mut host, "ABOR\r\n");
        assert_eq!(host.calls, ["record NLST / 0", "close-data"]);

        host.calls.clear();
        let reply = send(&mut host, "QUIT\r\n");
        assert!(reply.starts_with("221 "), "{reply}");
        assert_eq!(host.calls.last().map(String::as_str), Some("close"));
        assert!(host.session.poll_action().is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A users-file PASS asks the host to admit the user; its answer logs the session in, and
    /// the commands pipelined behind PASS run then.
    #[test]
    fn admit_user_reaches_the_host_and_its_answer_logs_in() {
        // `openssl passwd -6 -salt saltsalt secret`
        let hash = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
        let home = std::env::temp_dir();
        let line = format!("alice:{hash}:{}:ro:max_sessions=3\n", home.display());
        let users = Users::parse(&line, "users").unwrap();
        let shared = Rc::new(Shared::new(Config::anonymous(&home), users, None));
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
        let now = Instant::now();
        let mut host = Recorder {
            session: Session::new(shared, 1, addr, addr, now),
            calls: Vec::new(),
        };
        host.session.consume_output(usize::MAX);
        let reply = send(&mut host, "USER alice\r\nPASS secret\r\nNOOP\r\n");
        assert_eq!(host.calls, ["admit-user alice"]);
        assert_eq!(
            reply,
            "331 Please specify the password.\r\n230 Login successful.\r\n200 NOOP ok.\r\n"
        );
    }
}
