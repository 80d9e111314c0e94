//! One control connection's protocol state machine, sans-IO: it never sees a socket, a token or
//! the wall clock. Bytes come in through `handle_input`, data-connection news through
//! `handle_passive_opened` and `handle_data_event`, a task's result (a checksum) through
//! `handle_task_done`, time through `handle_timeout` (and `now` parameters); replies go out
//! through `output`, requests to the server through `poll_action`, and the next deadline through
//! `poll_timeout`. The loop (net/) owns every socket.
//!
//! Files by concern: `dispatch.rs` (the command loop, the login and permission gates, simple
//! commands), `login.rs` (USER, PASS, QUIT), `data.rs` (PASV/EPSV/PORT/EPRT, the transfer
//! lifecycle, ABOR), `files.rs` (RETR, STOR, STOU and the file commands), `listings.rs` (LIST,
//! NLST, MLSD, MLST, STAT), `checksum.rs` (HASH, OPTS HASH and the X-verbs, run as tasks of the
//! loop), `replies.rs` (how replies are queued), `driver.rs` (how a host carries out the actions:
//! the loop, the fuzz target and the tests share it). This file holds the state and the inputs and
//! outputs of the state machine.
//!
//! Read first: RFC 959 sections 4 and 5.4 (command-reply sequences), RFC 1123 4.1, RFC 2428
//! (EPSV, EPRT), RFC 3659 (SIZE, MDTM, REST, MLST), RFC 2389 (FEAT, OPTS), RFC 2577 (security).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::auth::{self, Account, Limits, Users};
use crate::command::{self, split_word, Command, EpsvArg, LineFramer, TransferType};
use crate::config::{
    Config, SandboxTrees, LOGIN_FAILURE_DELAY_MS, MAX_CLIENT_NAME_BYTES, MAX_LOGIN_FAILURES,
    MAX_OUTPUT_BACKLOG_BYTES, MAX_STAT_ENTRIES, STAT_REFILL_BYTES,
};
use crate::fs::{self, FileKind, Jail, WriteMode};
use crate::listing::{self, Facts};
use crate::log::status::SessionState;
use crate::proto::hash::Algorithm;
use crate::proto::verb;
use crate::reply;
use crate::transfer::{
    Direction, FileReceiver, FileSender, Job, ListFormat, ListSender, ListSource, Task,
    TransferError, TransferRecord,
};

mod checksum;
mod data;
mod dispatch;
pub mod driver;
mod files;
mod listings;
mod login;
mod replies;
#[cfg(test)]
mod tests;
mod tls;

use tls::Protection;

/// What every session shares: the configuration, the users, the anonymous root, the wall clock.
pub struct Shared {
    pub config: Config,
    /// Reloadable (SIGHUP) without touching sessions already logged in.
    pub users: RefCell<Users>,
    /// The anonymous root, when anonymous login is enabled.
    pub anonymous_jail: Option<Rc<Jail>>,
    /// What an anonymous login is granted (the flags'), shared by every anonymous session.
    anonymous_account: Rc<Account>,
    /// The wall clock as the loop read it this turn, in seconds since 1970 (negative before: a
    /// box without a real-time clock may boot there). Sessions never read a clock themselves
    /// (like `now: Instant`, it is passed in), so tests and the fuzzer set it.
    unix_time: Cell<i64>,
    /// What Landlock leaves reachable, once it is in force (set once, at start).
    pub sandbox: OnceCell<SandboxTrees>,
}

impl Shared {
    pub fn new(config: Config, users: Users, anonymous_jail: Option<Rc<Jail>>) -> Shared {
        let anonymous_account = Rc::new(Account {
            name: "anonymous".into(),
            home: config.root.clone(),
            writable: config.writable,
            settings: auth::Settings::default(),
        });
        Shared {
            config,
            users: RefCell::new(users),
            anonymous_jail,
            anonymous_account,
            unix_time: Cell::new(0),
            sandbox: OnceCell::new(),
        }
    }

    pub fn set_unix_time(&self, secs: i64) {
        self.unix_time.set(secs);
    }

    /// The wall clock as set this turn.
    pub fn unix_time(&self) -> i64 {
        self.unix_time.get()
    }
}

/// A request from the session to the server, which owns the sockets.
pub enum Action {
    /// Open a passive listener on the control connection's local address (in --pasv-ports),
    /// dropping any earlier data connection; answer with `handle_passive_opened`.
    OpenPassive,
    /// Run `job` on the data connection: connect to `connect_to` (PORT/EPRT), or use the
    /// passive connection (waiting for the client to connect if it has not yet).
    Transfer {
        job: Box<Job>,
        connect_to: Option<SocketAddr>,
    },
    /// Drop the data connection or passive listener and whatever runs on it.
    CloseData,
    /// AUTH TLS: once the 234 is sent, put the TLS layer on the control connection and call
    /// `handle_tls_started`; read nothing before.
    StartTls,
    /// Run `task` (a checksum: no connection) a bounded step per turn; answer with
    /// `handle_task_done`. The session runs one task at a time.
    RunTask(Box<Task>),
    /// Drop the running task (ABOR, the session's end): `handle_task_done` never comes for it.
    CancelTask,
    /// PASS was right for users-file account `name`: may it have one more session? The loop
    /// counts each account's logged-in sessions across addresses and refuses one past
    /// `limits.max_sessions`; answer with `handle_admission`, the session runs nothing
    /// meanwhile. Admitted, the session is paced at `limits.rate_down`/`rate_up` from then on.
    AdmitUser { name: Box<str>, limits: Limits },
    /// Send what output is pending, then close the control connection.
    Close,
}

/// The loop's answer to `Action::AdmitUser`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted: the login goes on (230).
    Admitted,
    /// The account already has `limit` sessions: the session is refused with 421 and closed.
    TooMany { limit: usize },
}

/// News of the data connection, from the server.
#[derive(Debug)]
pub enum DataEvent {
    /// The data connection is established (accepted, or connected for PORT).
    Connected,
    /// Bytes moved so far; the transfer is alive.
    Progress { bytes: u64 },
    /// The transfer finished.
    Done { bytes: u64 },
    /// Connecting for PORT/EPRT failed.
    ConnectFailed(io::Error),
    /// The transfer failed part way.
    Failed(TransferError),
    /// A TLS data connection made a new TLS session instead of resuming the control
    /// connection's, and --tls-session-reuse requires it: it was closed.
    TlsNotResumed,
}

/// USER/PASS, RFC 959 5.4: the login sequence.
enum Login {
    AwaitUser,
    AwaitPass {
        user: Box<[u8]>,
    },
    /// The password was right; the loop decides whether the account may have one more
    /// session (`Action::AdmitUser`, `handle_admission`). No command runs meanwhile.
    Admitting(User),
    LoggedIn(User),
}

/// A logged-in user: what the login granted, the jail of its home, and the limits its session
/// runs under (fixed at login).
struct User {
    account: Rc<Account>,
    jail: Rc<Jail>,
    limits: Limits,
}

/// The data connection, as far as the session knows it.
enum Data {
    /// Nothing prepared since the last transfer.
    None,
    /// PASV or EPSV asked the server for a listener; no reply sent yet.
    Opening { extended: bool },
    /// A passive listener is open; `connected` once the client connected to it. Nobody
    /// connecting by `deadline` frees the port.
    Passive { connected: bool, deadline: Instant },
    /// PORT or EPRT: the server connects there when a transfer starts.
    Active(SocketAddr),
    /// A transfer is running (or waiting for its connection). Boxed: an idle session does not
    /// carry its size.
    Transferring(Box<Running>),
    /// The passive data connection was refused (`DataEvent::TlsNotResumed`) before a transfer
    /// command came: that command gets 522.
    Refused,
}

struct Running {
    verb: &'static str,
    /// Uploads (STOR, APPE, STOU): what arrived is kept even when the transfer fails.
    direction: Direction,
    ascii: bool,
    started: Instant,
    started_unix: i64,
    path: Box<[u8]>,
    connected: bool,
    bytes: u64,
    /// STOU's chosen name, for the 226.
    unique_name: Option<Box<[u8]>>,
    /// --atomic-uploads: the temporary file, renamed over the target at 226; dropped (and so
    /// removed) however else the transfer or the session ends.
    temp: Option<fs::TempUpload>,
    /// The data connection must come, or move bytes again, by then (--data-timeout).
    deadline: Instant,
}

/// The directory of a `STAT <dir>` reply, read as the control connection drains.
struct StatListing {
    dir: fs::DirStream,
    /// Entries read, and entries listed (unreadable ones are skipped).
    taken: usize,
    listed: usize,
}

/// Where the session is in its life. A session never goes back to `Open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Commands run.
    Open,
    /// No more commands run; an upload is still running (or waiting for its data connection)
    /// and ends by its data deadline at the latest (or by `until`, at shutdown): nothing a user
    /// sent is cut short because the control connection went away. Then `farewell` is said.
    Draining {
        farewell: Farewell,
        until: Option<Instant>,
    },
    /// `Action::Close` was handed out: nothing more to say, to do, or to wait for.
    Finished,
}

/// What a draining session says once its upload has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Farewell {
    /// Nothing: the session said why it closes already (or the client hung up).
    Silent,
    /// QUIT came during the upload: its 221 follows the upload's 226 (RFC 959 QUIT).
    Goodbye,
    /// The server is stopping: 421.
    ShuttingDown,
}

pub struct Session {
    shared: Rc<Shared>,
    /// Log prefix, e.g. `[#12]`.
    id: usize,
    peer: SocketAddr,
    local: SocketAddr,
    login: Login,
    cwd: Vec<u8>,
    transfer_type: TransferType,
    restart_offset: u64,
    rename_from: Option<Box<[u8]>>,
    epsv_all: bool,
    facts: Facts,
    data: Data,
    framer: LineFramer,
    output: Vec<u8>,
    actions: VecDeque<Action>,
    /// Transfers that ended, for the logs (`poll_record`).
    records: VecDeque<TransferRecord>,
    connected_at: Instant,
    /// The last command line (NOOP included): the idle timer starts here.
    last_activity: Instant,
    /// A `STAT <dir>` reply still being produced; no command runs until it has ended.
    stat_listing: Option<Box<StatListing>>,
    failed_logins: u8,
    /// When the 530 of a failed login is due; until then no command runs.
    login_delay: Option<Instant>,
    lifecycle: Lifecycle,
    /// The client closed the control connection: nothing is said any more.
    hung_up: bool,
    /// RFC 4217: AUTH, PBSZ, PROT.
    tls: Protection,
    /// OPTS HASH: the algorithm of HASH (SHA-256 until changed).
    hash_algorithm: Algorithm,
    /// A checksum the loop runs for the session (`Action::RunTask`).
    task: Option<checksum::RunningTask>,
    /// What CLNT said, for the log lines.
    client: Option<Box<str>>,
}

impl Session {
    /// A new session for a client at `peer` that connected to our `local` address; queues the 220.
    pub fn new(
        shared: Rc<Shared>,
        id: usize,
        peer: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) -> Session {
        let mut session = Session {
            shared,
            id,
            peer: canonical(peer),
            local: canonical(local),
            login: Login::AwaitUser,
            cwd: b"/".to_vec(),
            transfer_type: TransferType::Image,
            restart_offset: 0,
            rename_from: None,
            epsv_all: false,
            facts: Facts::default(),
            data: Data::None,
            framer: LineFramer::default(),
            output: Vec::new(),
            actions: VecDeque::new(),
            records: VecDeque::new(),
            connected_at: now,
            last_activity: now,
            stat_listing: None,
            failed_logins: 0,
            login_delay: None,
            lifecycle: Lifecycle::Open,
            hung_up: false,
            tls: Protection::default(),
            hash_algorithm: Algorithm::Sha256,
            task: None,
            client: None,
        };
        session.reply(reply::READY, "leanftpd ready.");
        session
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Bytes read from the control connection.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if self.is_closing() {
            return;
        }
        // SECURITY: a TLS ClientHello (implicit FTPS, or a scanner) is not FTP: close at once.
        if !self.framer.has_pending() && bytes.starts_with(&[0x16, 0x03]) {
            warn!(
                "[#{}] TLS handshake from {} on the plain FTP port: closing",
                self.id,
                self.peer.ip()
            );
            return self.close();
        }
        self.framer.push(bytes);
        self.run_commands(now);
    }

    /// The client closed the control connection (or it failed): nothing more can be said to
    /// it, but an upload in progress still finishes, so nothing it sent is lost.
    pub fn handle_hangup(&mut self) {
        self.output = Vec::new();
        self.stat_listing = None;
        self.hung_up = true;
        if self.lifecycle == Lifecycle::Open {
            debug!("[#{}] client hung up", self.id);
        }
        self.close();
    }

    /// The server is stopping: every session is told 421 and closed, except that a running
    /// upload may finish within `grace` (then 226 and 421; else 426 and 421), so that an init
    /// system's stop neither loses a nearly complete upload nor waits for a stalled one.
    pub fn handle_shutdown(&mut self, now: Instant, grace: Duration) {
        match self.lifecycle {
            Lifecycle::Finished => {}
            _ if self.upload_running() => {
                let farewell = match self.lifecycle {
                    Lifecycle::Draining { farewell, .. } => farewell,
                    _ => Farewell::ShuttingDown,
                };
                self.set_lifecycle(Lifecycle::Draining {
                    farewell,
                    until: Some(now + grace),
                });
            }
            _ => {
                if self.is_transferring() {
                    self.actions.push_back(Action::CloseData);
                    self.end_transfer(now, reply::TRANSFER_ABORTED, "Transfer aborted.");
                }
                self.reply(reply::SERVICE_NOT_AVAILABLE, "Server shutting down.");
                self.finish();
            }
        }
    }

    /// The server opened (or failed to open) the passive listener asked for by `OpenPassive`.
    pub fn handle_passive_opened(&mut self, result: io::Result<SocketAddr>, now: Instant) {
        let Data::Opening { extended } = self.data else {
            return;
        };
        match result {
            Ok(addr) => {
                self.set_data_state(Data::Passive {
                    connected: false,
                    deadline: now + self.shared.config.data_timeout,
                });
                if extended {
                    let text = format!("Entering Extended Passive Mode (|||{}|)", addr.port());
                    self.reply(reply::EXTENDED_PASSIVE, &text);
                } else {
                    let ip = match (self.shared.config.pasv_address, self.local.ip()) {
                        (Some(announced), _) => announced,
                        (None, IpAddr::V4(ip)) => ip,
                        // PASV is refused on IPv6 before we get here.
                        (None, IpAddr::V6(_)) => std::net::Ipv4Addr::UNSPECIFIED,
                    };
                    let [a, b, c, d] = ip.octets();
                    let (p1, p2) = (addr.port() >> 8, addr.port() & 0xff);
                    let text = format!("Entering Passive Mode ({a},{b},{c},{d},{p1},{p2}).");
                    self.reply(reply::PASSIVE, &text);
                }
            }
            Err(e) => {
                warn!("[#{}] cannot open a passive port: {e}", self.id);
                self.set_data_state(Data::None);
                self.reply(reply::CANT_OPEN_DATA, "Cannot open a passive port.");
            }
        }
        self.run_commands(now);
    }

    /// News of the data connection of the running transfer.
    pub fn handle_data_event(&mut self, event: DataEvent, now: Instant) {
        match (&mut self.data, &event) {
            (Data::Passive { connected, .. }, DataEvent::Connected) => {
                // The client connected before sending its transfer command.
                *connected = true;
                return;
            }
            (Data::Passive { .. }, DataEvent::TlsNotResumed) => {
                return self.set_data_state(Data::Refused);
            }
            _ => {}
        }
        let data_timeout = self.shared.config.data_timeout;
        let Data::Transferring(running) = &mut self.data else {
            return;
        };
        match event {
            DataEvent::Connected => {
                running.connected = true;
                running.deadline = now + data_timeout;
            }
            DataEvent::Progress { bytes } => {
                running.bytes = bytes;
                running.connected = true;
                running.deadline = now + data_timeout;
            }
            DataEvent::Done { bytes } => {
                running.bytes = bytes;
                self.end_transfer(now, reply::TRANSFER_COMPLETE, "Transfer complete.");
            }
            DataEvent::ConnectFailed(e) => {
                debug!("[#{}] data connection failed: {e}", self.id);
                self.end_transfer(now, reply::CANT_OPEN_DATA, "Cannot open data connection.");
            }
            DataEvent::Failed(TransferError::Network(e)) => {
                debug!("[#{}] data connection broke: {e}", self.id);
                // Only TLS tells a truncated stream from a whole one: a FIN without close_notify.
                let text = if e.kind() == io::ErrorKind::UnexpectedEof {
                    "Data connection closed without TLS close_notify: possibly truncated."
                } else {
                    "Connection closed; transfer aborted."
                };
                self.end_transfer(now, reply::TRANSFER_ABORTED, text);
            }
            DataEvent::Failed(TransferError::TooLarge) => {
                info!("[#{}] upload stopped at --max-upload-size", self.id);
                let text = "Exceeded storage allocation (upload size limit).";
                self.end_transfer(now, reply::EXCEEDED_STORAGE, text);
            }
            DataEvent::Failed(TransferError::Disk(e)) => {
                let (code, text) = reply::for_io_error(&e);
                warn!("[#{}] transfer failed on the file: {e}", self.id);
                self.end_transfer(now, code, text);
            }
            DataEvent::TlsNotResumed => {
                self.end_transfer(now, reply::BAD_NETWORK_PROTOCOL, tls::TLS_NOT_RESUMED)
            }
        }
    }

    /// Time passed: called at (or after) `poll_timeout`. Every deadline that `poll_timeout`
    /// can return is handled here in every state, and handling it moves or clears it: a
    /// deadline left in the past would make the loop spin.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.lifecycle {
            Lifecycle::Finished => return,
            Lifecycle::Draining { until, .. } => {
                if until.is_some_and(|until| now >= until) {
                    info!("[#{}] shutting down: cutting the upload short", self.id);
                    self.actions.push_back(Action::CloseData);
                    return self.end_transfer(
                        now,
                        reply::TRANSFER_ABORTED,
                        "Server shutting down; transfer aborted.",
                    );
                }
                return self.check_data_deadline(now);
            }
            Lifecycle::Open => {}
        }
        // Each due deadline is handled in turn, not just the first: after this call none of
        // them is in the past (the loop checks it).
        if self.login_delay.is_some_and(|due| now >= due) {
            self.login_delay = None;
            self.reply(reply::NOT_LOGGED_IN, "Login incorrect.");
            if self.failed_logins >= MAX_LOGIN_FAILURES {
                info!(
                    "[#{}] {} failed logins: closing",
                    self.id, self.failed_logins
                );
                return self.close();
            }
            self.run_commands(now);
        }
        if !self.is_logged_in() && now >= self.connected_at + self.shared.config.login_timeout {
            info!(
                "[#{}] no login within {} s: closing",
                self.id,
                self.shared.config.login_timeout.as_secs()
            );
            self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Login timeout: closing control connection.",
            );
            return self.close();
        }
        self.check_data_deadline(now);
        if self.lifecycle == Lifecycle::Open
            && !self.is_busy()
            && now >= self.last_activity + self.shared.config.idle_timeout
        {
            info!("[#{}] idle timeout", self.id);
            self.reply(
                reply::SERVICE_NOT_AVAILABLE,
                "Timeout: closing control connection.",
            );
            self.close();
        }
    }

    fn data_deadline(&self) -> Option<Instant> {
        match &self.data {
            Data::Passive { deadline, .. } => Some(*deadline),
            Data::Transferring(running) => Some(running.deadline),
            _ => None,
        }
    }

    /// The data connection's deadline: a transfer whose connection never came (425) or stalled
    /// (426), or a passive port nobody connected to (freed; the next transfer gets 425).
    fn check_data_deadline(&mut self, now: Instant) {
        if self.data_deadline().is_none_or(|deadline| now < deadline) {
            return;
        }
        match &self.data {
            Data::Transferring(running) => {
                let code = if running.connected {
                    reply::TRANSFER_ABORTED
                } else {
                    reply::CANT_OPEN_DATA
                };
                self.actions.push_back(Action::CloseData);
                self.end_transfer(now, code, "Data connection timed out.");
            }
            Data::Passive { .. } => {
                info!("[#{}] passive data connection timed out", self.id);
                self.actions.push_back(Action::CloseData);
                self.set_data_state(Data::None);
            }
            _ => {}
        }
    }

    // ---- outputs ------------------------------------------------------------------------

    /// Reply bytes waiting for the control connection.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// The first `n` bytes of `output` were written.
    pub fn consume_output(&mut self, n: usize) {
        self.output.drain(..n.min(self.output.len()));
        if self.output.len() < STAT_REFILL_BYTES / 2 {
            self.refill_stat();
        }
        if self.output.is_empty() {
            // An idle session keeps no buffer.
            self.output = Vec::new();
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The record of a transfer that ended, for the logs (the stderr line, xferlog...).
    pub fn poll_record(&mut self) -> Option<TransferRecord> {
        self.records.pop_front()
    }

    /// What the session is doing, for the SIGUSR1 status line, and the bytes its running
    /// transfer has moved so far.
    pub fn state(&self) -> (SessionState, Option<(Direction, u64)>) {
        match &self.data {
            Data::Transferring(running) => (
                SessionState::Transferring,
                Some((running.direction, running.bytes)),
            ),
            _ if self.is_logged_in() => (SessionState::Idle, None),
            _ => (SessionState::LoggingIn, None),
        }
    }

    /// True while `poll_action` has something to hand out.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The next instant at which `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.lifecycle {
            Lifecycle::Finished => None,
            Lifecycle::Draining { until, .. } => {
                [self.data_deadline(), until].into_iter().flatten().min()
            }
            Lifecycle::Open => {
                let idle =
                    (!self.is_busy()).then(|| self.last_activity + self.shared.config.idle_timeout);
                let login = (!self.is_logged_in())
                    .then(|| self.connected_at + self.shared.config.login_timeout);
                [idle, login, self.data_deadline(), self.login_delay]
                    .into_iter()
                    .flatten()
                    .min()
            }
        }
    }

    /// False while the server should leave further input in the socket: a command waits for
    /// the transfer to end, the client is not reading its replies, or the session is closing.
    pub fn wants_input(&self) -> bool {
        self.lifecycle == Lifecycle::Open
            && !self.tls.starting
            && self.login_delay.is_none()
            && !matches!(self.login, Login::Admitting(_))
            && self.stat_listing.is_none()
            && !self.framer.has_line()
            && self.output.len() < MAX_OUTPUT_BACKLOG_BYTES
    }

    /// No more commands run (QUIT, a timeout, a hang-up...); a running upload may still finish.
    pub fn is_closing(&self) -> bool {
        self.lifecycle != Lifecycle::Open
    }

    /// `Action::Close` was handed out: nothing more to say, to do, or to wait for.
    pub fn is_finished(&self) -> bool {
        self.lifecycle == Lifecycle::Finished
    }

    // ---- lifecycle --------------------------------------------------------------------

    /// Ends the session: at once, or once a running upload has finished (nothing a user
    /// uploaded is cut short because the control connection went away).
    fn close(&mut self) {
        if self.lifecycle != Lifecycle::Open {
            return;
        }
        if self.upload_running() {
            self.set_lifecycle(Lifecycle::Draining {
                farewell: Farewell::Silent,
                until: None,
            });
        } else {
            self.finish();
        }
    }

    fn finish(&mut self) {
        if let Some(stat) = self.stat_listing.take() {
            // Closing mid-listing (a timeout): the multi-line reply still ends properly.
            self.end_stat_listing(stat.listed);
        }
        if self.lifecycle != Lifecycle::Finished {
            self.set_lifecycle(Lifecycle::Finished);
            if !matches!(self.data, Data::None) {
                self.actions.push_back(Action::CloseData);
                // A passive port still being opened is answered by no 227/229 now.
                self.set_data_state(Data::None);
            }
            if self.task.take().is_some() {
                self.actions.push_back(Action::CancelTask);
            }
            self.actions.push_back(Action::Close);
        }
    }

    fn set_lifecycle(&mut self, lifecycle: Lifecycle) {
        debug!(
            "[#{}] session: {:?} => {lifecycle:?}",
            self.id, self.lifecycle
        );
        self.lifecycle = lifecycle;
    }

    fn upload_running(&self) -> bool {
        matches!(&self.data, Data::Transferring(running) if running.direction == Direction::Upload)
    }
}

/// An IPv4 client on an IPv6 socket shows as ::ffff:a.b.c.d; compare and announce it as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
