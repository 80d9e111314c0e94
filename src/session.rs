//! One control connection's protocol state machine, sans-IO: it never sees a socket, a token or
//! the wall clock. Bytes come in through `handle_input`, data-connection news through
//! `handle_passive_opened` and `handle_data_event`, time through `handle_timeout` (and `now`
//! parameters); replies go out through `output`, requests to the server through `poll_action`,
//! and the next deadline through `poll_timeout`. The server (server.rs) owns every socket.
//!
//! Read first: RFC 959 sections 4 and 5.4 (command-reply sequences), RFC 1123 4.1, RFC 2428
//! (EPSV, EPRT), RFC 3659 (SIZE, MDTM, REST, MLST), RFC 2389 (FEAT, OPTS), RFC 2577 (security).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};

use crate::auth::{self, Account, Users};
use crate::command::{self, split_word, Command, EpsvArg, LineFramer, TransferType};
use crate::config::{
    Config, LOGIN_FAILURE_DELAY_MS, MAX_LOGIN_FAILURES, MAX_OUTPUT_BACKLOG_BYTES, MAX_STAT_ENTRIES,
    STAT_REFILL_BYTES,
};
use crate::fs::{self, FileKind, Jail, WriteMode};
use crate::listing::{self, Facts};
use crate::proto::verb;
use crate::reply;
use crate::transfer::{
    Direction, FileReceiver, FileSender, Job, ListFormat, ListSender, ListSource, TransferError,
    TransferRecord,
};

/// What every session shares: the configuration, the users, the anonymous root, the wall clock.
pub struct Shared {
    pub config: Config,
    /// Reloadable (SIGHUP) without touching sessions already logged in.
    pub users: RefCell<Users>,
    /// The anonymous root, when anonymous login is enabled.
    pub anonymous_jail: Option<Rc<Jail>>,
    /// The wall clock as the loop read it this turn: sessions never read a clock themselves
    /// (like `now: Instant`, it is passed in), so tests and the fuzzer set it.
    wall_clock: Cell<SystemTime>,
}

impl Shared {
    pub fn new(config: Config, users: Users, anonymous_jail: Option<Rc<Jail>>) -> Shared {
        Shared {
            config,
            users: RefCell::new(users),
            anonymous_jail,
            wall_clock: Cell::new(UNIX_EPOCH),
        }
    }

    pub fn set_wall_clock(&self, now: SystemTime) {
        self.wall_clock.set(now);
    }

    /// Seconds since 1970 (negative before it: a box without a real-time clock may boot there).
    fn unix_time(&self) -> i64 {
        match self.wall_clock.get().duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_secs() as i64,
            Err(before) => -(before.duration().as_secs() as i64),
        }
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
    /// Send what output is pending, then close the control connection.
    Close,
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
}

/// USER/PASS, RFC 959 5.4: the login sequence.
enum Login {
    AwaitUser,
    AwaitPass { user: Box<[u8]> },
    LoggedIn(User),
}

/// A logged-in user: what the login granted, and the jail of its home.
struct User {
    account: Account,
    jail: Rc<Jail>,
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
    /// A transfer is running (or waiting for its connection).
    Transferring(Running),
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
    /// The last command that did something (NOOP does not count): the idle timer starts here.
    last_activity: Instant,
    /// A `STAT <dir>` reply still being produced; no command runs until it has ended.
    stat_listing: Option<Box<StatListing>>,
    failed_logins: u8,
    /// When the 530 of a failed login is due; until then no command runs.
    login_delay: Option<Instant>,
    lifecycle: Lifecycle,
    /// The client closed the control connection: nothing is said any more.
    hung_up: bool,
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
        if let (Data::Passive { connected, .. }, DataEvent::Connected) = (&mut self.data, &event) {
            // The client connected before sending its transfer command.
            *connected = true;
            return;
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
                self.end_transfer(
                    now,
                    reply::TRANSFER_ABORTED,
                    "Connection closed; transfer aborted.",
                );
            }
            DataEvent::Failed(TransferError::Disk(e)) => {
                let (code, text) = reply::for_io_error(&e);
                warn!("[#{}] transfer failed on the file: {e}", self.id);
                self.end_transfer(now, code, text);
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
            && !self.is_transferring()
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
                let idle = (!self.is_transferring())
                    .then(|| self.last_activity + self.shared.config.idle_timeout);
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
            && self.login_delay.is_none()
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

    // ---- command loop -------------------------------------------------------------------

    /// Runs the complete lines waiting in the framer. During a transfer only ABOR, STAT, NOOP
    /// and QUIT run (RFC 959 4.1.3); any other command waits until the transfer ends.
    fn run_commands(&mut self, now: Instant) {
        let mut framer = std::mem::take(&mut self.framer);
        while self.lifecycle == Lifecycle::Open
            && self.login_delay.is_none()
            && self.stat_listing.is_none()
            && self.output.len() < MAX_OUTPUT_BACKLOG_BYTES
        {
            let line = match framer.peek_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(command::LineTooLong) => {
                    self.reply(reply::SYNTAX_ERROR, "Command line too long.");
                    self.close();
                    break;
                }
            };
            if is_foreign_protocol(line) {
                // SECURITY: an HTTP request (a browser, a proxy probe, a cross-protocol attack)
                // sent to the FTP port gets nothing back: the session is closed at once.
                warn!(
                    "[#{}] HTTP request from {}: closing",
                    self.id,
                    self.peer.ip()
                );
                self.close();
                break;
            }
            let parsed = command::parse(line);
            // A command pipelined behind PASV/EPSV waits for the listener (and its 227/229).
            if matches!(self.data, Data::Opening { .. }) {
                break;
            }
            if self.is_transferring()
                && !matches!(
                    parsed,
                    Ok(Command::Abor | Command::Stat(b"") | Command::Noop | Command::Quit)
                )
            {
                break;
            }
            // NOOP keeps nothing alive: a client sending only NOOPs still meets the idle timeout.
            if parsed != Ok(Command::Noop) {
                self.last_activity = now;
            }
            match parsed {
                Ok(cmd) => {
                    self.log_command(&cmd);
                    self.dispatch(cmd, now);
                }
                Err(e) => self.reply_parse_error(e, line),
            }
            framer.consume_line();
        }
        self.framer = framer;
    }

    fn log_command(&self, cmd: &Command) {
        if log::log_enabled!(log::Level::Debug) {
            match cmd {
                // SECURITY: passwords never reach the log.
                Command::Pass(_) => debug!("[#{}] <- PASS ****", self.id),
                other => debug!("[#{}] <- {:?}", self.id, other),
            }
        }
    }

    fn reply_parse_error(&mut self, error: command::ParseError, line: &[u8]) {
        let text = match error {
            command::ParseError::Unknown => "Unknown command.",
            command::ParseError::NotImplemented => "Command not implemented.",
            command::ParseError::Syntax => "Syntax error in parameters or arguments.",
            command::ParseError::Unsupported => "Command not implemented for that parameter.",
            command::ParseError::UnsupportedProtocol => "Network protocol not supported, use (1,2)",
        };
        debug!(
            "[#{}] bad command {:?}: {text}",
            self.id,
            String::from_utf8_lossy(&line[..line.len().min(64)])
        );
        self.reply(error.code(), text);
    }

    /// One command. QUIT always; then the login gate (530 for a verb the table does not mark
    /// `before_login`); then what may run before login; then the permission gate (writes by
    /// read-only users: 550); then the verb's handler.
    fn dispatch(&mut self, cmd: Command, now: Instant) {
        let verb = cmd.verb();
        match cmd {
            // RFC 959: QUIT ends the session (after a running transfer, in spirit; we close now).
            Command::Quit => self.quit(),
            // SECURITY: the login gate: before a successful PASS only the verb table's
            // `before_login` rows run (USER, PASS, FEAT, OPTS, SYST, NOOP, HELP, QUIT).
            _ if !verb.before_login && !matches!(self.login, Login::LoggedIn(_)) => {
                self.reply(reply::NOT_LOGGED_IN, "Please login with USER and PASS.")
            }
            Command::User(name) => self.user(name),
            Command::Pass(password) => self.pass(password, now),
            Command::Feat => self.feat(),
            Command::Opts(arg) => self.opts(arg),
            Command::Syst => self.reply(reply::SYSTEM_TYPE, "UNIX Type: L8"),
            Command::Noop => self.reply(reply::OK, "NOOP ok."),
            Command::Help(_) => self.help(),
            // SECURITY: the permission gate: read-only users may not change anything.
            cmd if is_write(&cmd) && !self.writable() => {
                self.reply(reply::FILE_UNAVAILABLE, "Permission denied.")
            }
            cmd => self.dispatch_logged_in(cmd, now),
        }
    }

    fn dispatch_logged_in(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Acct => self.reply(reply::NOT_NEEDED, "ACCT not needed."),
            Command::Clnt => self.reply(reply::OK, "Noted."),
            Command::Allo => self.reply(reply::NOT_NEEDED, "ALLO not needed."),
            Command::Type(kind) => self.type_(kind),
            Command::Mode => self.reply(reply::OK, "Mode set to S."),
            Command::Stru => self.reply(reply::OK, "Structure set to F."),
            Command::Pwd => self.pwd(),
            Command::Cwd(path) => self.cwd(path),
            Command::Cdup => self.cwd(b".."),
            Command::Pasv => self.pasv(),
            Command::Epsv(arg) => self.epsv(arg),
            Command::Port(addr) => self.port(SocketAddr::V4(addr)),
            Command::Eprt(addr) => self.port(addr),
            Command::Retr(path) => self.retr(path),
            Command::Stor(path) => self.stor(path, "STOR"),
            Command::Appe(path) => self.stor(path, "APPE"),
            Command::Stou(hint) => self.stou(hint),
            Command::Rest(offset) => self.rest(offset),
            Command::Rnfr(path) => self.rnfr(path),
            Command::Rnto(path) => self.rnto(path),
            Command::Abor => self.abor(now),
            Command::Dele(path) => self.dele(path),
            Command::Rmd(path) => self.rmd(path),
            Command::Mkd(path) => self.mkd(path),
            Command::List(arg) => {
                self.list(listing::strip_ls_options(arg), ListFormat::Long, "LIST")
            }
            Command::Nlst(arg) => {
                self.list(listing::strip_ls_options(arg), ListFormat::Names, "NLST")
            }
            Command::Mlsd(path) => self.list(path, ListFormat::Facts(self.facts), "MLSD"),
            Command::Mlst(path) => self.mlst(path),
            Command::Stat(path) => self.stat(path),
            Command::Size(path) => self.size(path),
            Command::Mdtm(path) => self.mdtm(path),
            Command::Mfmt { mtime, path } => self.mfmt(mtime, path),
            Command::SiteHelp => self.reply_multi(
                reply::HELP,
                "SITE commands:",
                &[" CHMOD <mode> <path>", " HELP"],
                "End.",
            ),
            Command::SiteChmod { mode, path } => self.site_chmod(mode, path),
            // Handled before login already.
            Command::Quit
            | Command::User(_)
            | Command::Pass(_)
            | Command::Feat
            | Command::Opts(_)
            | Command::Syst
            | Command::Noop
            | Command::Help(_) => {}
        }
    }

    // ---- login --------------------------------------------------------------------------

    /// RFC 959 QUIT: during an upload the server finishes it, sends its 226, then the 221;
    /// a download or listing is simply cut short.
    fn quit(&mut self) {
        if self.upload_running() {
            self.set_lifecycle(Lifecycle::Draining {
                farewell: Farewell::Goodbye,
                until: None,
            });
        } else {
            self.reply(reply::GOODBYE, "Goodbye.");
            self.finish();
        }
    }

    fn user(&mut self, name: &[u8]) {
        if matches!(self.login, Login::LoggedIn(_)) {
            self.reply(reply::NOT_LOGGED_IN, "Already logged in.");
            return;
        }
        let anonymous = auth::is_anonymous_name(name) && self.shared.anonymous_jail.is_some();
        self.set_login_state(Login::AwaitPass { user: name.into() });
        if anonymous {
            self.reply(
                reply::NEED_PASSWORD,
                "Anonymous login ok, send your e-mail address as password.",
            );
        } else {
            // The same answer for every name: USER does not tell which users exist.
            self.reply(reply::NEED_PASSWORD, "Please specify the password.");
        }
    }

    fn pass(&mut self, password: &[u8], now: Instant) {
        let user = match &self.login {
            Login::AwaitPass { user } => user.clone(),
            Login::LoggedIn(_) => return self.reply(reply::BAD_SEQUENCE, "Already logged in."),
            Login::AwaitUser => return self.reply(reply::BAD_SEQUENCE, "Login with USER first."),
        };
        let logged_in = match &self.shared.anonymous_jail {
            Some(jail) if auth::is_anonymous_name(&user) => Some(User {
                account: Account {
                    name: "anonymous".into(),
                    home: self.shared.config.root.clone(),
                    writable: self.shared.config.writable,
                },
                jail: jail.clone(),
            }),
            _ => self.login_user(&user, password),
        };
        match logged_in {
            Some(user) => {
                info!(
                    "[#{}] {} logged in from {} ({})",
                    self.id,
                    user.account.name,
                    self.peer.ip(),
                    if user.account.writable {
                        "read-write"
                    } else {
                        "read-only"
                    }
                );
                self.set_login_state(Login::LoggedIn(user));
                self.cwd = b"/".to_vec();
                self.reply(reply::LOGGED_IN, "Login successful.");
            }
            None => {
                info!(
                    "[#{}] failed login as {:?} from {}",
                    self.id,
                    String::from_utf8_lossy(&user),
                    self.peer.ip()
                );
                self.set_login_state(Login::AwaitUser);
                // SECURITY: the 530 comes after a delay that doubles with each failure (a timer
                // in the loop, never a sleep); the session closes after the last one allowed.
                self.failed_logins = self.failed_logins.saturating_add(1);
                let delay = LOGIN_FAILURE_DELAY_MS << (self.failed_logins - 1).min(8);
                self.login_delay = Some(now + Duration::from_millis(delay));
            }
        }
    }

    fn login_user(&self, name: &[u8], password: &[u8]) -> Option<User> {
        let account = self.shared.users.borrow().verify(name, password)?;
        match Jail::open(&account.home) {
            Ok(jail) => Some(User {
                account,
                jail: Rc::new(jail),
            }),
            Err(e) => {
                warn!(
                    "[#{}] home {} of {} unusable: {e}",
                    self.id,
                    account.home.display(),
                    account.name
                );
                None
            }
        }
    }

    fn set_login_state(&mut self, login: Login) {
        debug!(
            "[#{}] login: {} => {}",
            self.id,
            login_name(&self.login),
            login_name(&login)
        );
        self.login = login;
    }

    fn is_logged_in(&self) -> bool {
        matches!(self.login, Login::LoggedIn(_))
    }

    fn user_ref(&self) -> Option<&User> {
        match &self.login {
            Login::LoggedIn(user) => Some(user),
            _ => None,
        }
    }

    fn writable(&self) -> bool {
        self.user_ref().is_some_and(|user| user.account.writable)
    }

    /// The logged-in user's jail; dispatch only calls handlers that need it after the login gate.
    fn jail(&self) -> Rc<Jail> {
        match &self.login {
            Login::LoggedIn(user) => user.jail.clone(),
            _ => unreachable!("the login gate runs before every file command"),
        }
    }

    // ---- simple commands ----------------------------------------------------------------

    fn feat(&mut self) {
        let lines = verb::feat_lines(&self.facts.feat_line());
        self.reply_multi(reply::SYSTEM_STATUS, "Features:", &lines, "End");
    }

    fn opts(&mut self, arg: &[u8]) {
        let (name, value) = split_word(arg);
        if name.eq_ignore_ascii_case(b"UTF8") || name.eq_ignore_ascii_case(b"UTF-8") {
            // RFC 2640: names are UTF-8 always; there is no other mode to switch to.
            if value.eq_ignore_ascii_case(b"ON") || value.is_empty() {
                self.reply(reply::OK, "UTF8 mode is always on.");
            } else {
                self.reply(
                    reply::PARAMETER_NOT_IMPLEMENTED,
                    "UTF8 mode cannot be turned off.",
                );
            }
        } else if name.eq_ignore_ascii_case(b"MLST") {
            self.facts = Facts::parse(value);
            let text = self.facts.opts_reply();
            self.reply(reply::OK, &text);
        } else {
            self.reply(reply::BAD_ARGUMENT, "Option not understood.");
        }
    }

    fn help(&mut self) {
        let lines = verb::help_lines();
        self.reply_multi(
            reply::HELP,
            "The following commands are recognized:",
            &lines,
            "Help OK.",
        );
    }

    fn type_(&mut self, kind: TransferType) {
        self.transfer_type = kind;
        match kind {
            TransferType::Ascii => self.reply(reply::OK, "Switching to ASCII mode."),
            TransferType::Image => self.reply(reply::OK, "Switching to Binary mode."),
        }
    }

    fn pwd(&mut self) {
        let mut text = Vec::with_capacity(self.cwd.len() + 32);
        reply::push_quoted_path(&mut text, &self.cwd);
        text.extend_from_slice(b" is the current directory.");
        self.reply_bytes(reply::PATH_CREATED, &text);
    }

    fn cwd(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().stat(fs::jail_path(&path)) {
            Ok(stat) if stat.kind == FileKind::Dir => {
                self.cwd = path;
                self.reply(reply::FILE_ACTION_OK, "Directory successfully changed.");
            }
            Ok(_) => self.reply(reply::FILE_UNAVAILABLE, "Not a directory."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    fn rest(&mut self, offset: u64) {
        self.restart_offset = offset;
        self.reply(
            reply::PENDING_FURTHER_INFO,
            &format!("Restart position accepted ({offset})."),
        );
    }

    // ---- data connection set-up ---------------------------------------------------------

    fn pasv(&mut self) {
        if self.epsv_all {
            return self.reply(reply::BAD_SEQUENCE, "EPSV ALL in effect: use EPSV.");
        }
        if self.local.is_ipv6() {
            return self.reply(reply::CANT_OPEN_DATA, "PASV needs IPv4; use EPSV.");
        }
        self.open_passive(false);
    }

    fn epsv(&mut self, arg: EpsvArg) {
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                self.reply(reply::OK, "EPSV ALL ok.");
            }
            EpsvArg::Protocol(1) if self.local.is_ipv4() => self.open_passive(true),
            EpsvArg::Protocol(2) if self.local.is_ipv6() => self.open_passive(true),
            EpsvArg::Protocol(_) => {
                let supported = if self.local.is_ipv4() { "(1)" } else { "(2)" };
                self.reply(
                    reply::BAD_NETWORK_PROTOCOL,
                    &format!("Network protocol not supported, use {supported}"),
                )
            }
            EpsvArg::Any => self.open_passive(true),
        }
    }

    fn open_passive(&mut self, extended: bool) {
        if self.is_transferring() {
            return self.reply(reply::CANT_OPEN_DATA, "A transfer is running.");
        }
        self.set_data_state(Data::Opening { extended });
        self.actions.push_back(Action::OpenPassive);
    }

    fn port(&mut self, addr: SocketAddr) {
        if self.epsv_all {
            return self.reply(reply::BAD_SEQUENCE, "EPSV ALL in effect: use EPSV.");
        }
        let addr = canonical(addr);
        // SECURITY: RFC 2577 bounce protection: data goes only back to the client itself,
        // and never to a privileged port.
        if addr.ip() != self.peer.ip() || addr.port() < 1024 {
            warn!(
                "[#{}] refused PORT/EPRT to {addr} (client is {})",
                self.id,
                self.peer.ip()
            );
            return self.reply(
                reply::PARAMETER_NOT_IMPLEMENTED,
                "Data connections go only to the client, port 1024 or above.",
            );
        }
        if self.is_transferring() {
            return self.reply(reply::CANT_OPEN_DATA, "A transfer is running.");
        }
        self.actions.push_back(Action::CloseData);
        self.set_data_state(Data::Active(addr));
        self.reply(reply::OK, "PORT command successful. Consider using EPSV.");
    }

    fn set_data_state(&mut self, data: Data) {
        debug!(
            "[#{}] data: {} => {}",
            self.id,
            data_name(&self.data),
            data_name(&data)
        );
        self.data = data;
    }

    fn is_transferring(&self) -> bool {
        matches!(self.data, Data::Transferring(_))
    }

    /// Hands `job` to the server on the prepared data connection and sends the 150.
    fn start_transfer(
        &mut self,
        job: Job,
        verb: &'static str,
        path: &[u8],
        unique_name: Option<Box<[u8]>>,
        text: &str,
    ) {
        let (connect_to, connected) = match self.data {
            Data::Active(addr) => (Some(addr), false),
            Data::Passive { connected, .. } => (None, connected),
            _ => unreachable!("callers check has_data_connection first"),
        };
        self.set_data_state(Data::Transferring(Running {
            verb,
            direction: job.direction(),
            ascii: self.transfer_type == TransferType::Ascii,
            started: self.last_activity,
            started_unix: self.shared.unix_time(),
            path: path.into(),
            connected,
            bytes: 0,
            unique_name,
            // The connection (a PORT connect, or the client's passive connect) must come in time.
            deadline: self.last_activity + self.shared.config.data_timeout,
        }));
        self.actions.push_back(Action::Transfer {
            job: Box::new(job),
            connect_to,
        });
        self.reply(reply::OPENING_DATA, text);
    }

    /// PASV/EPSV or PORT/EPRT came first (RFC 959: else 425).
    fn has_data_connection(&mut self) -> bool {
        if matches!(self.data, Data::Passive { .. } | Data::Active(_)) {
            return true;
        }
        self.reply(reply::CANT_OPEN_DATA, "Use PORT, EPRT, PASV or EPSV first.");
        false
    }

    /// The running transfer ended with `code`: its reply, then (for a draining session) the
    /// farewell and the end, else the commands that waited for it.
    fn end_transfer(&mut self, now: Instant, code: u16, text: &str) {
        let Data::Transferring(running) = std::mem::replace(&mut self.data, Data::None) else {
            return;
        };
        debug!("[#{}] data: transferring => none", self.id);
        let record = TransferRecord {
            session: self.id,
            user: self
                .user_ref()
                .map_or("".into(), |user| user.account.name.as_str().into()),
            peer: self.peer.ip(),
            verb: running.verb,
            path: running.path.clone(),
            direction: running.direction,
            ascii: running.ascii,
            bytes: running.bytes,
            started_unix: running.started_unix,
            elapsed: now.saturating_duration_since(running.started),
            code,
        };
        self.records.push_back(record);
        self.last_activity = now;
        match (&running.unique_name, code) {
            (Some(name), reply::TRANSFER_COMPLETE) => {
                let mut text = b"Transfer complete (unique file name: ".to_vec();
                text.extend_from_slice(name);
                text.extend_from_slice(b").");
                self.reply_bytes(code, &text);
            }
            _ => self.reply(code, text),
        }
        if let Lifecycle::Draining { farewell, .. } = self.lifecycle {
            match farewell {
                Farewell::Silent => {}
                Farewell::Goodbye => self.reply(reply::GOODBYE, "Goodbye."),
                Farewell::ShuttingDown => {
                    self.reply(reply::SERVICE_NOT_AVAILABLE, "Server shutting down.")
                }
            }
            return self.finish();
        }
        // Commands that arrived during the transfer run now.
        self.run_commands(now);
    }

    // ---- transfers ----------------------------------------------------------------------

    fn retr(&mut self, arg: &[u8]) {
        if !self.has_data_connection() {
            return;
        }
        let path = fs::resolve(&self.cwd, arg);
        let offset = std::mem::take(&mut self.restart_offset);
        let file = match self.jail().open_read(fs::jail_path(&path)) {
            Ok(file) => file,
            Err(e) => return self.reply_io_error(&e),
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if offset > size {
            return self.reply(
                reply::FILE_UNAVAILABLE,
                "Restart position beyond the end of the file.",
            );
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        let text = format!(
            "Opening {} mode data connection for {} ({size} bytes).",
            if ascii { "ASCII" } else { "BINARY" },
            String::from_utf8_lossy(&path)
        );
        self.start_transfer(
            Job::Send(FileSender::new(file, offset, ascii)),
            "RETR",
            &path,
            None,
            &text,
        );
    }

    fn stor(&mut self, arg: &[u8], verb: &'static str) {
        if !self.has_data_connection() {
            return;
        }
        let path = fs::resolve(&self.cwd, arg);
        let offset = std::mem::take(&mut self.restart_offset);
        let mode = match (verb, offset) {
            ("APPE", _) => WriteMode::Append,
            (_, 0) => WriteMode::Truncate,
            (_, offset) => WriteMode::Resume(offset),
        };
        let file = match self.jail().open_write(fs::jail_path(&path), mode) {
            Ok(file) => file,
            Err(e) => return self.reply_io_error(&e),
        };
        let job = Job::Receive(FileReceiver::new(
            file,
            self.transfer_type == TransferType::Ascii,
        ));
        let text = format!("Ok to send data for {}.", String::from_utf8_lossy(&path));
        self.start_transfer(job, verb, &path, None, &text);
    }

    /// STOU: store under a name that does not exist yet; the 150 names it (RFC 1123 4.1.2.9).
    fn stou(&mut self, hint: &[u8]) {
        if !self.has_data_connection() {
            return;
        }
        self.restart_offset = 0;
        let base = fs::resolve(&self.cwd, if hint.is_empty() { b"stou" } else { hint });
        let jail = self.jail();
        for n in 0..1000u32 {
            let mut path = base.clone();
            if n > 0 || hint.is_empty() {
                path.extend_from_slice(format!(".{n}").as_bytes());
            }
            match jail.open_write(fs::jail_path(&path), WriteMode::CreateNew) {
                Ok(file) => {
                    let job = Job::Receive(FileReceiver::new(
                        file,
                        self.transfer_type == TransferType::Ascii,
                    ));
                    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(&path).to_vec();
                    let text = format!("FILE: {}", String::from_utf8_lossy(&name));
                    return self.start_transfer(job, "STOU", &path, Some(name.into()), &text);
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return self.reply_io_error(&e),
            }
        }
        self.reply(reply::FILE_UNAVAILABLE, "Cannot find a unique file name.");
    }

    fn abor(&mut self, now: Instant) {
        match self.data {
            Data::Transferring(_) => {
                // RFC 959 ABOR: 426 for the aborted transfer, then 226 for the ABOR itself.
                self.actions.push_back(Action::CloseData);
                self.end_transfer(now, reply::TRANSFER_ABORTED, "Transfer aborted.");
                self.reply(reply::TRANSFER_COMPLETE, "ABOR successful.");
            }
            // RFC 959: the command already completed: 226.
            Data::None => self.reply(reply::TRANSFER_COMPLETE, "No transfer to abort."),
            _ => {
                self.actions.push_back(Action::CloseData);
                self.set_data_state(Data::None);
                self.reply(
                    reply::ABORT_OK,
                    "No transfer to abort; data connection closed.",
                );
            }
        }
    }

    // ---- listings -----------------------------------------------------------------------

    fn list(&mut self, arg: &[u8], format: ListFormat, verb: &'static str) {
        if !self.has_data_connection() {
            return;
        }
        let path = fs::resolve(&self.cwd, arg);
        let jail = self.jail();
        let jail_path = fs::jail_path(&path).to_vec();
        let source = match jail.stat(&jail_path) {
            Ok(stat) if stat.kind == FileKind::Dir => match jail.read_dir(&jail_path) {
                Ok(dir) => ListSource::Dir(dir),
                Err(e) => return self.reply_io_error(&e),
            },
            // RFC 3659 7.2: MLSD names a directory.
            Ok(_) if verb == "MLSD" => return self.reply(reply::BAD_ARGUMENT, "Not a directory."),
            Ok(_) => {
                let stat = jail
                    .lstat(&jail_path)
                    .unwrap_or_else(|_| stat_placeholder());
                let link_target = (stat.kind == FileKind::Symlink)
                    .then(|| jail.read_link(&jail_path).ok())
                    .flatten();
                // LIST of a file shows the file as the client named it, as ls does.
                ListSource::Single {
                    name: arg.to_vec(),
                    stat,
                    link_target,
                }
            }
            Err(e) => return self.reply_io_error(&e),
        };
        let job = Job::List(ListSender::new(
            source,
            format,
            jail,
            jail_path,
            self.writable(),
            self.shared.unix_time(),
        ));
        self.start_transfer(job, verb, &path, None, "Here comes the directory listing.");
    }

    fn mlst(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().stat(fs::jail_path(&path)) {
            Ok(stat) => {
                let mut body = vec![b' '];
                listing::push_facts_line(&mut body, &path, &stat, self.facts, self.writable());
                // push_facts_line ends with CRLF; reply_multi adds its own.
                body.truncate(body.len().saturating_sub(2));
                let mut text = b"Listing ".to_vec();
                text.extend_from_slice(&path);
                self.reply_multi_bytes(reply::FILE_ACTION_OK, &text, &[&body], b"End.");
            }
            Err(e) => self.reply_io_error(&e),
        }
    }

    /// STAT: server status without an argument; with one, a listing over the control
    /// connection. A directory's lines are made as the connection drains (`refill_stat`), so a
    /// big directory never sits in memory whole, and commands after it wait their turn.
    fn stat(&mut self, arg: &[u8]) {
        if arg.is_empty() {
            return self.server_status();
        }
        let path = fs::resolve(&self.cwd, listing::strip_ls_options(arg));
        let jail = self.jail();
        let jail_path = fs::jail_path(&path);
        let listing = match jail.lstat(jail_path) {
            Ok(stat) if stat.kind == FileKind::Dir => match jail.read_dir(jail_path) {
                Ok(dir) => Some(dir),
                Err(e) => return self.reply_io_error(&e),
            },
            Ok(stat) => {
                let link_target = (stat.kind == FileKind::Symlink)
                    .then(|| jail.read_link(jail_path).ok())
                    .flatten();
                let line = self.stat_line(&path, &stat, link_target.as_deref());
                self.stat_first_line(&path);
                self.reply_line(&line);
                self.reply(reply::FILE_STATUS, "End of status.");
                None
            }
            Err(e) => return self.reply_io_error(&e),
        };
        if let Some(dir) = listing {
            self.stat_first_line(&path);
            self.stat_listing = Some(Box::new(StatListing {
                dir,
                taken: 0,
                listed: 0,
            }));
            self.refill_stat();
        }
    }

    fn stat_first_line(&mut self, path: &[u8]) {
        let mut first = b"Status of ".to_vec();
        first.extend_from_slice(path);
        first.push(b':');
        if !self.hung_up {
            reply::push_first(&mut self.output, reply::FILE_STATUS, &first);
        }
    }

    /// One `ls -l` line of a STAT listing, built alone so that it is escaped alone: a name with
    /// CR or LF cannot forge a reply.
    fn stat_line(&self, name: &[u8], stat: &fs::Stat, link_target: Option<&[u8]>) -> Vec<u8> {
        let mut line = vec![b' '];
        listing::push_list_line(&mut line, name, stat, link_target, self.shared.unix_time());
        line.truncate(line.len().saturating_sub(2));
        line
    }

    /// Adds lines of the running STAT listing until STAT_REFILL_BYTES are pending; ends the
    /// reply when the directory (or MAX_STAT_ENTRIES) is done.
    fn refill_stat(&mut self) {
        let Some(mut stat) = self.stat_listing.take() else {
            return;
        };
        while self.output.len() < STAT_REFILL_BYTES {
            if stat.taken == MAX_STAT_ENTRIES {
                break;
            }
            let Some(entry) = stat.dir.next() else {
                break;
            };
            stat.taken += 1;
            // An entry that cannot be read is left out, as ls does.
            if let Ok(entry) = entry {
                let line = self.stat_line(&entry.name, &entry.stat, entry.link_target.as_deref());
                self.reply_line(&line);
                stat.listed += 1;
            }
        }
        if self.output.len() < STAT_REFILL_BYTES {
            self.end_stat_listing(stat.listed);
        } else {
            self.stat_listing = Some(stat);
        }
    }

    fn end_stat_listing(&mut self, listed: usize) {
        if listed == MAX_STAT_ENTRIES {
            let note = format!(" (stopped after {MAX_STAT_ENTRIES} entries: use LIST)");
            self.reply_line(note.as_bytes());
        }
        self.reply(reply::FILE_STATUS, "End of status.");
    }

    fn server_status(&mut self) {
        let user = self
            .user_ref()
            .map(|u| u.account.name.clone())
            .unwrap_or_else(|| "nobody".into());
        let kind = match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        };
        let transfer = match &self.data {
            Data::Transferring(running) => format!(
                " {} {} in progress: {} bytes moved",
                running.verb,
                String::from_utf8_lossy(&running.path),
                running.bytes
            ),
            _ => " No data connection".to_string(),
        };
        let lines = [
            format!(" Connected from {}", self.peer.ip()),
            format!(" Logged in as {user}"),
            format!(" TYPE: {kind}, STRUcture: File, MODE: Stream"),
            transfer,
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        self.reply_multi(
            reply::SYSTEM_STATUS,
            "leanftpd status:",
            &lines,
            "End of status.",
        );
    }

    // ---- file commands ------------------------------------------------------------------

    fn size(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().stat(fs::jail_path(&path)) {
            Ok(stat) if stat.kind == FileKind::File => {
                self.reply(reply::FILE_STATUS, &stat.size.to_string())
            }
            Ok(_) => self.reply(reply::FILE_UNAVAILABLE, "Not a regular file."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    fn mdtm(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().stat(fs::jail_path(&path)) {
            Ok(stat) => {
                let mut text = Vec::with_capacity(14);
                listing::push_timeval(&mut text, stat.mtime);
                self.reply_bytes(reply::FILE_STATUS, &text);
            }
            Err(e) => self.reply_io_error(&e),
        }
    }

    fn mfmt(&mut self, mtime: i64, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().set_mtime(fs::jail_path(&path), mtime) {
            Ok(()) => {
                let mut text = b"Modify=".to_vec();
                listing::push_timeval(&mut text, mtime);
                text.extend_from_slice(b"; ");
                text.extend_from_slice(arg);
                self.reply_bytes(reply::FILE_STATUS, &text);
            }
            Err(e) => self.reply_io_error(&e),
        }
    }

    fn site_chmod(&mut self, mode: u32, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().set_mode(fs::jail_path(&path), mode) {
            Ok(()) => self.reply(reply::OK, "SITE CHMOD command ok."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    fn rnfr(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().lstat(fs::jail_path(&path)) {
            Ok(_) => {
                self.rename_from = Some(path.into());
                self.reply(reply::PENDING_FURTHER_INFO, "Ready for RNTO.");
            }
            Err(e) => self.reply_io_error(&e),
        }
    }

    fn rnto(&mut self, arg: &[u8]) {
        let Some(from) = self.rename_from.take() else {
            return self.reply(reply::BAD_SEQUENCE, "RNFR required first.");
        };
        let to = fs::resolve(&self.cwd, arg);
        match self.jail().rename(fs::jail_path(&from), fs::jail_path(&to)) {
            Ok(()) => self.reply(reply::FILE_ACTION_OK, "Rename successful."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    fn dele(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().remove_file(fs::jail_path(&path)) {
            Ok(()) => self.reply(reply::FILE_ACTION_OK, "File deleted."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    fn rmd(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        if path == b"/" {
            return self.reply(reply::FILE_UNAVAILABLE, "Permission denied.");
        }
        match self.jail().remove_dir(fs::jail_path(&path)) {
            Ok(()) => self.reply(reply::FILE_ACTION_OK, "Directory removed."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    fn mkd(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().create_dir(fs::jail_path(&path)) {
            Ok(()) => {
                let mut text = Vec::new();
                reply::push_quoted_path(&mut text, &path);
                text.extend_from_slice(b" created.");
                self.reply_bytes(reply::PATH_CREATED, &text);
            }
            Err(e) => self.reply_io_error(&e),
        }
    }

    // ---- replies ------------------------------------------------------------------------

    fn reply(&mut self, code: u16, text: &str) {
        self.reply_bytes(code, text.as_bytes());
    }

    /// A reply whose text may hold file names (raw bytes). CR and LF never reach the client
    /// inside a reply: a name cannot forge a reply line.
    fn reply_bytes(&mut self, code: u16, text: &[u8]) {
        if !self.hung_up {
            reply::push(&mut self.output, code, text);
        }
    }

    fn reply_multi(&mut self, code: u16, first: &str, body: &[impl AsRef<[u8]>], last: &str) {
        self.reply_multi_bytes(code, first.as_bytes(), body, last.as_bytes());
    }

    /// One inner line of a multi-line reply (escaped like every reply text).
    fn reply_line(&mut self, line: &[u8]) {
        if !self.hung_up {
            reply::push_line(&mut self.output, line);
        }
    }

    fn reply_multi_bytes(
        &mut self,
        code: u16,
        first: &[u8],
        body: &[impl AsRef<[u8]>],
        last: &[u8],
    ) {
        if !self.hung_up {
            reply::push_multi(&mut self.output, code, first, body, last);
        }
    }

    fn reply_io_error(&mut self, err: &io::Error) {
        let (code, text) = reply::for_io_error(err);
        debug!("[#{}] {err} -> {code}", self.id);
        self.reply(code, text);
    }

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

/// The first line of an HTTP request: `GET / HTTP/1.1`, `CONNECT host:443 HTTP/1.1`, ...
fn is_foreign_protocol(line: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"CONNECT ",
        b"OPTIONS ",
        b"TRACE ",
        b"PATCH ",
    ];
    METHODS.iter().any(|method| line.starts_with(method))
}

/// Commands that change the file system: refused with 550 for read-only users.
fn is_write(cmd: &Command) -> bool {
    cmd.verb().write
}

/// An IPv4 client on an IPv6 socket shows as ::ffff:a.b.c.d; compare and announce it as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Used only if a file vanishes between two stats of one LIST.
fn stat_placeholder() -> fs::Stat {
    fs::Stat {
        kind: FileKind::File,
        mode: 0,
        nlink: 1,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 0,
    }
}

fn login_name(login: &Login) -> &'static str {
    match login {
        Login::AwaitUser => "await-user",
        Login::AwaitPass { .. } => "await-pass",
        Login::LoggedIn(_) => "logged-in",
    }
}

fn data_name(data: &Data) -> &'static str {
    match data {
        Data::None => "none",
        Data::Opening { .. } => "opening",
        Data::Passive { .. } => "passive",
        Data::Active(_) => "active",
        Data::Transferring(_) => "transferring",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    /// A temporary root with a file and a directory, removed on drop.
    struct Root(PathBuf);

    impl Root {
        fn new(name: &str) -> Root {
            let path = std::env::temp_dir()
                .join(format!("leanftpd-session-{}-{name}", std::process::id()));
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
        let mut config = Config::anonymous(&root.0);
        config.writable = writable;
        config.idle_timeout = Duration::from_secs(60);
        config.data_timeout = Duration::from_secs(10);
        let shared = Shared::new(
            config,
            Users::default(),
            Some(Rc::new(Jail::open(&root.0).unwrap())),
        );
        shared.set_wall_clock(SystemTime::now());
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
    fn noop_does_not_keep_a_session_alive() {
        let root = Root::new("noop");
        let start = Instant::now();
        let mut s = logged_in(&root, false, start);
        feed(&mut s, "NOOP\r\n", start + Duration::from_secs(59));
        assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(60)));
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
}
