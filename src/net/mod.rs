//! The poll loop: the only layer that touches sockets. One `mio::Poll`, one `Slab<Conn>` holding
//! every listener, control connection, passive listener and data connection (Token = slab key),
//! and one timer table for all of them. Sessions (session/) decide; the loop carries out their
//! `Action`s and feeds them bytes, data-connection events and time.
//!
//! Edge-triggered readiness: every socket is read, written or accepted until `WouldBlock`, or
//! until its turn's budget is spent, after which it waits in `runnable` so that one busy client
//! cannot starve the others. With no session the loop sleeps in `poll` with no timeout.
//!
//! Panics: every call into a session or a transfer task runs under `catch_unwind`
//! (`with_session`, `data::pump`); a panic poisons that session only, which is closed with 421.
//! The loop's own accounting (session counts, the slab, the timers) is never inside a guarded
//! call, so a panic cannot leave it half updated.
//!
//! Files: `control.rs` (accepting and serving control connections), `data.rs` (passive
//! listeners, PORT connects, data connections and their states), `task.rs` (tasks without a
//! connection: checksums), `pace.rs` (--max-rate-*: budgets, waits, the pools' turns),
//! `stream.rs` (the stream seam), `tls.rs` (FTPS on rustls), `timer.rs` (the timer table),
//! `launch.rs` (inetd, systemd sockets, sd_notify).

mod admission;
mod channel;
mod control;
mod data;
pub mod launch;
mod pace;
pub mod stream;
pub mod supervisor;
mod task;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
pub mod tls;
mod worker;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{error, info};
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::auth::Users;
use crate::config::{
    Config, CONTROL_READ_BYTES, EVENTS_CAPACITY, SHUTDOWN_FLUSH_MS, SHUTDOWN_GRACE_MS,
    SYSLOG_RETRY_MS,
};
use crate::log::fifo::UploadFifo;
use crate::log::status::{Status, Totals};
use crate::log::syslog;
use crate::log::xferlog::Xferlog;
use crate::reply;
use crate::session::{Admission, Session, Shared};
use crate::sys;
use crate::transfer::pace::Pool;
use crate::transfer::TransferRecord;

use admission::{SessionCounts, UserCounts};
use control::Control;
use data::{DataConn, Passive};
use pace::PerDirection;
use task::TaskConn;
use timer::Timers;
use tls::Keys;
use worker::{WorkerChannel, CHANNEL};

/// The signal pipe's token: never a slab key.
const SIGNAL: Token = Token(usize::MAX);

enum Conn {
    Listener(Listener),
    Control(Box<Control>),
    Passive(Box<Passive>),
    Data(Box<DataConn>),
    Task(Box<TaskConn>),
}

pub struct Server {
    poll: Poll,
    conns: Slab<Conn>,
    shared: Rc<Shared>,
    timers: Timers,
    /// Connections with work left after their turn.
    runnable: VecDeque<usize>,
    /// Control connections to close once the current batch of events is handled.
    to_close: Vec<usize>,
    /// The sessions open (--max-clients, --max-per-ip).
    counts: SessionCounts,
    /// Logged-in sessions of each users-file account, from any address (`admit_user`).
    sessions_per_user: UserCounts,
    /// Ports for passive listeners: --pasv-ports, or the kernel's ephemeral range.
    passive_ports: (u16, u16),
    /// Out of descriptors: accepting waits until then, and these listeners are retried.
    accept_paused_until: Option<Instant>,
    paused_listeners: Vec<usize>,
    signals: OwnedFd,
    /// The buffer every control read goes into (a fresh zeroed array per read cost more than
    /// the rest of the loop's own work for a session).
    read_buf: Box<[u8]>,
    /// SIGTERM came: no more accepting; the loop ends when the last session has closed, or at
    /// this instant whatever the sessions are doing.
    stop_deadline: Option<Instant>,
    /// The certificate, when FTPS is configured (reloaded at SIGHUP).
    tls_keys: Option<Keys>,
    /// --xferlog, opened by main before privileges drop (reopened at SIGHUP).
    xferlog: Option<Xferlog>,
    /// --upload-fifo, checked and (with a reader there) opened by main after privileges drop.
    upload_fifo: Option<UploadFifo>,
    /// Bytes of the sessions that ended (a worker's go to the supervisor instead), and the
    /// start, for SIGUSR1's status line.
    totals: Totals,
    started: Instant,
    /// --inetd: the loop ends when its one session has closed.
    single_session: bool,
    /// sd_notify: told READY=1 once listening and STOPPING=1 at SIGTERM.
    notify: Option<launch::Notify>,
    /// Tasks in the slab, and the read buffer they share (empty while none runs).
    tasks: usize,
    task_buf: Vec<u8>,
    /// --max-rate-total-down/-up: the buckets all sessions share, and who waits for them.
    pools: PerDirection<Pool>,
    /// --workers: this process is a worker, and this its channel to the supervisor.
    channel: Option<WorkerChannel>,
}

/// A socket accepting control connections.
pub struct Listener {
    socket: TcpListener,
    /// Implicit FTPS (--tls-listen): the TLS handshake starts at connect.
    implicit_tls: bool,
}

impl Listener {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// What the signals received ask for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Signals {
    stop: bool,
    reload: bool,
    status: bool,
}

/// Binds every --listen address, then every --tls-listen one; inherited sockets (inetd,
/// systemd) enter the same way through `launch::start`.
pub fn bind(config: &Config) -> Result<Vec<Listener>, String> {
    let implicit = config.tls.iter().flat_map(|tls| &tls.implicit_listen);
    let addrs = config.listen.iter().map(|addr| (addr, false));
    addrs
        .chain(implicit.map(|addr| (addr, true)))
        .map(|(&addr, implicit_tls)| {
            let socket =
                sys::bind_listener(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            Ok(Listener {
                socket,
                implicit_tls,
            })
        })
        .collect()
}

impl Server {
    /// `tls_keys` is the loaded certificate, present exactly when `shared.config.tls` is.
    pub fn new(
        shared: Shared,
        listeners: Vec<Listener>,
        tls_keys: Option<Keys>,
    ) -> io::Result<Server> {
        let poll = Poll::new()?;
        let signals =
            sys::signal_pipe(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1])?;
        poll.registry().register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNAL,
            Interest::READABLE,
        )?;
        let mut conns = Slab::new();
        for mut listener in listeners {
            let entry = conns.vacant_entry();
            poll.registry().register(
                &mut listener.socket,
                Token(entry.key()),
                Interest::READABLE,
            )?;
            entry.insert(Conn::Listener(listener));
        }
        let pools = PerDirection::server(&shared.config.rates, Instant::now());
        // Sessions admitted before the first turn (--inetd) see the wall clock too.
        shared.set_unix_time(unix_time(SystemTime::now()));
        let passive_ports = shared
            .config
            .pasv_ports
            .unwrap_or_else(sys::ephemeral_port_range);
        Ok(Server {
            poll,
            conns,
            shared: Rc::new(shared),
            timers: Timers::default(),
            runnable: VecDeque::new(),
            to_close: Vec::new(),
            counts: SessionCounts::default(),
            sessions_per_user: UserCounts::default(),
            passive_ports,
            accept_paused_until: None,
            paused_listeners: Vec::new(),
            signals,
            read_buf: vec![0; CONTROL_READ_BYTES].into_boxed_slice(),
            stop_deadline: None,
            tls_keys,
            xferlog: None,
            upload_fifo: None,
            totals: Totals::default(),
            started: Instant::now(),
            single_session: false,
            notify: None,
            tasks: 0,
            task_buf: Vec::new(),
            pools,
            channel: None,
        })
    }

    /// What every session shares (main.rs records the sandbox's trees in it).
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Writes a line for every transfer that ends to `xferlog` (--xferlog).
    pub fn set_xferlog(&mut self, xferlog: Xferlog) {
        self.xferlog = Some(xferlog);
    }

    /// Writes the path of every completed upload to `fifo` (--upload-fifo).
    pub fn set_upload_fifo(&mut self, fifo: UploadFifo) {
        self.upload_fifo = Some(fifo);
    }

    /// --inetd: serves `stream` (the control connection the launcher left open); `run` returns
    /// once that session has closed.
    pub fn serve_inetd(&mut self, stream: std::net::TcpStream) -> io::Result<()> {
        let peer = stream.peer_addr()?;
        self.single_session = true;
        self.admit(
            mio::net::TcpStream::from_std(stream),
            peer,
            false,
            Instant::now(),
        );
        // Admitting serves what the client already sent; a QUIT among it closes the session
        // before the loop's first turn, whose end would otherwise close it only after an event.
        self.close_pending();
        Ok(())
    }

    /// sd_notify: the server is listening (READY=1); STOPPING=1 follows at SIGTERM.
    pub fn notify_ready(&mut self, notify: launch::Notify) {
        notify.send("READY=1");
        self.notify = Some(notify);
    }

    /// Serves until SIGTERM or SIGINT, then until the sessions have said goodbye (bounded).
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            if self.single_session && self.counts.sessions == 0 {
                return Ok(());
            }
            if let Some(deadline) = self.stop_deadline {
                if self.counts.sessions == 0 {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    self.stop_now();
                    return Ok(());
                }
            }
            let timeout = if self.runnable.is_empty() {
                [
                    self.timers.next(),
                    self.pace_wake_at(),
                    self.accept_paused_until,
                    self.stop_deadline,
                    syslog::has_backlog()
                        .then(|| Instant::now() + Duration::from_millis(SYSLOG_RETRY_MS)),
                    self.upload_fifo.as_ref().and_then(UploadFifo::retry_at),
                ]
                .into_iter()
                .flatten()
                .min()
                .map(|deadline| deadline.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            // The wall clock, read once per turn for every session (listings, transfer records).
            self.shared.set_unix_time(unix_time(SystemTime::now()));
            for event in events.iter() {
                if event.token() == SIGNAL {
                    let signals = self.read_signals();
                    if signals.reload {
                        reload(&self.shared, &mut self.tls_keys, &mut self.xferlog);
                    }
                    if signals.status {
                        self.log_status(now);
                    }
                    if signals.stop && self.stop_deadline.is_some() {
                        // A second SIGTERM: the operator does not want to wait.
                        self.stop_now();
                        return Ok(());
                    }
                    if signals.stop {
                        self.begin_stop(now);
                    }
                    continue;
                }
                if event.token() == CHANNEL {
                    self.service_channel(now);
                    continue;
                }
                let key = event.token().0;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    if let Some(control) = self.control(key) {
                        control.readable = true;
                    }
                }
                self.service(key, now);
            }
            for _ in 0..self.runnable.len() {
                let Some(key) = self.runnable.pop_front() else {
                    break;
                };
                self.service(key, now);
            }
            self.fire_timers(now);
            self.pace_turns(now);
            self.resume_accepting(now);
            self.close_pending();
            // Upload lines waiting for a reader, or for room in its pipe. Like syslog's retry,
            // this deadline joins the poll timeout directly: the timer table is per connection
            // (slab key), and the FIFO is none.
            if let Some(fifo) = &mut self.upload_fifo {
                if fifo.retry_at().is_some_and(|at| at <= now) {
                    fifo.flush(now);
                }
            }
            // Syslog lines waiting for a full socket go when it has room.
            if syslog::has_backlog() {
                ::log::logger().flush();
            }
        }
    }

    fn service(&mut self, key: usize, now: Instant) {
        match self.conns.get(key) {
            Some(Conn::Listener(_)) => self.accept_control(key, now),
            Some(Conn::Control(_)) => self.service_control(key, now),
            Some(Conn::Passive(_)) => self.accept_data(key, now),
            Some(Conn::Data(_)) => self.service_data(key, now),
            Some(Conn::Task(_)) => self.run_task(key, now),
            // An event for a connection closed earlier in this batch.
            None => {}
        }
    }

    fn control(&mut self, key: usize) -> Option<&mut Control> {
        match self.conns.get_mut(key) {
            Some(Conn::Control(control)) => Some(control),
            _ => None,
        }
    }

    /// Calls into session `key` under `catch_unwind`: a panic poisons that session only (it is
    /// closed with 421), and None is returned for it from then on.
    fn with_session<R>(&mut self, key: usize, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let control = self.control(key).filter(|control| !control.poisoned)?;
        match catch_unwind(AssertUnwindSafe(|| f(&mut control.session))) {
            Ok(result) => Some(result),
            Err(_) => {
                self.abort_session(key, "panicked");
                None
            }
        }
    }

    /// A broken invariant: tell the client 421 and close its session, never the server.
    fn abort_session(&mut self, key: usize, why: &str) {
        error!("[#{key}] internal error ({why}): closing this session");
        if let Some(control) = self.control(key) {
            control.poisoned = true;
            let text = "Internal error, closing control connection.";
            let _ = control
                .stream
                .write(&reply::render(reply::SERVICE_NOT_AVAILABLE, text));
            self.timers.set(key, None);
            self.to_close.push(key);
        }
    }

    /// Runs the deadlines that have passed.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now) {
            if !matches!(self.conns.get(key), Some(Conn::Control(_))) {
                // A data connection waiting until a time (pacing, a TLS close).
                self.service(key, now);
                continue;
            }
            let Some(next) = self.with_session(key, |session| {
                session.handle_timeout(now);
                session.poll_timeout()
            }) else {
                continue;
            };
            // Defence in depth: a deadline still due after its handling would fire again at
            // once, forever (issue 8's CPU spin). Close that session instead.
            match self.timers.rearm(key, next, now) {
                Ok(()) => self.service_control(key, now),
                Err(_) => self.abort_session(key, "a deadline did not move"),
            }
        }
    }

    fn close_pending(&mut self) {
        while let Some(key) = self.to_close.pop() {
            if !matches!(self.conns.get(key), Some(Conn::Control(_))) {
                continue;
            }
            self.close_data(key);
            self.cancel_task(key);
            if let Some(Conn::Control(mut control)) = self.conns.try_remove(key) {
                control.stream.deregister(self.poll.registry());
                self.timers.set(key, None);
                self.counts.remove(control.peer_ip);
                if let Some(name) = &control.user {
                    self.sessions_per_user.release(name);
                }
                self.session_ended(control.ticket, control.moved);
                // After the supervisor was told: once this line is out, the end is counted.
                info!("[#{key}] closed");
            }
        }
    }

    /// `Action::AdmitUser`: may users-file account `name` have one more logged-in session?
    /// `limit` is its max_sessions, or --max-sessions-per-user. The one place where a user's
    /// sessions are counted: in the loop, beside the sessions per address, and given back in
    /// `close_pending`, outside any guarded call (a panic cannot skip it).
    fn admit_user(&mut self, key: usize, name: Box<str>, limit: Option<usize>) -> Admission {
        // A session that logs in again (AUTH TLS after a login) gives back what it held.
        if let Some(held) = self.control(key).and_then(|control| control.user.take()) {
            self.sessions_per_user.release(&held);
        }
        if self.control(key).is_none() {
            return Admission::Admitted;
        }
        match self.sessions_per_user.admit(name, limit) {
            Ok(name) => {
                if let Some(control) = self.control(key) {
                    control.user = Some(name);
                }
                Admission::Admitted
            }
            Err(limit) => Admission::TooMany { limit },
        }
    }

    // ---- signals ------------------------------------------------------------------------

    fn read_signals(&mut self) -> Signals {
        let mut signals = Signals::default();
        for signal in sys::drain_signals(&self.signals) {
            match signal {
                libc::SIGTERM | libc::SIGINT => signals.stop = true,
                libc::SIGHUP => signals.reload = true,
                libc::SIGUSR1 => signals.status = true,
                _ => {}
            }
        }
        signals
    }

    /// A transfer ended: its log line, its xferlog line, its upload FIFO line (its bytes are in
    /// its session's totals).
    fn log_transfer(&mut self, record: &TransferRecord, now: Instant) {
        info!("{record}");
        if let Some(xferlog) = &mut self.xferlog {
            // The wall clock this turn already read (the record's own times come from it too).
            let now = sys::local_time(self.shared.unix_time());
            if let Err(e) = xferlog.write(record, &now) {
                error!("xferlog {}: {e}", xferlog.path().display());
            }
        }
        if let Some(fifo) = &mut self.upload_fifo {
            fifo.notify(record, now);
        }
    }

    /// SIGUSR1: one line with the sessions by state, the transfers running, the bytes moved
    /// since start (running transfers included) and the uptime.
    fn log_status(&mut self, now: Instant) {
        let status = self.status(now);
        info!("{status}");
    }

    fn status(&self, now: Instant) -> Status {
        let mut status = Status {
            totals: self.totals,
            uptime: now.saturating_duration_since(self.started),
            upload_fifo: self.upload_fifo.as_ref().map(UploadFifo::backlog),
            ..Status::default()
        };
        for (_, conn) in self.conns.iter() {
            if let Conn::Control(control) = conn {
                let (state, running) = control.session.state();
                status.count(state);
                status.totals.merge(control.moved);
                if let Some((direction, bytes)) = running {
                    status.totals.add(direction, bytes);
                }
            }
        }
        status
    }

    /// SIGTERM/SIGINT: stop accepting and tell every session; a running upload gets a short
    /// grace to finish. The loop ends when the last session has closed, or at `stop_deadline`.
    fn begin_stop(&mut self, now: Instant) {
        info!("stopping: closing {} sessions", self.counts.sessions);
        if let Some(notify) = &self.notify {
            notify.send("STOPPING=1");
        }
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        self.stop_deadline = Some(now + grace + Duration::from_millis(SHUTDOWN_FLUSH_MS));
        self.accept_paused_until = None;
        self.paused_listeners.clear();
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            match self.conns.get(key) {
                Some(Conn::Listener(_)) => {
                    if let Conn::Listener(mut listener) = self.conns.remove(key) {
                        let _ = self.poll.registry().deregister(&mut listener.socket);
                    }
                }
                Some(Conn::Control(_)) => {
                    self.with_session(key, |session| session.handle_shutdown(now, grace));
                    self.service_control(key, now);
                }
                _ => {}
            }
        }
    }

    /// The end of the grace, or a second signal: what is still open is told 421 and dropped.
    fn stop_now(&mut self) {
        info!("stopping now: dropping {} sessions", self.counts.sessions);
        for (_, conn) in self.conns.iter_mut() {
            if let Conn::Control(control) = conn {
                if !control.finished {
                    let text = "Server shutting down.";
                    let _ = control
                        .stream
                        .write(&reply::render(reply::SERVICE_NOT_AVAILABLE, text));
                }
            }
        }
        self.conns.clear();
    }
}

/// SIGHUP: the users file, the certificate and the xferlog again (in every worker of
/// --workers, and in their supervisor, whose copy a restarted worker starts from).
fn reload(shared: &Shared, tls_keys: &mut Option<Keys>, xferlog: &mut Option<Xferlog>) {
    reload_users(shared);
    reload_tls_keys(shared, tls_keys);
    reopen_xferlog(xferlog);
}

/// SIGHUP: read the users file again. Sessions already logged in keep going; a file that
/// does not load leaves the users as they were.
fn reload_users(shared: &Shared) {
    let Some(path) = &shared.config.users_file else {
        return info!("SIGHUP: no users file to reload");
    };
    match Users::load(path) {
        Ok(users) => {
            info!(
                "SIGHUP: reloaded {} users from {}",
                users.len(),
                path.display()
            );
            *shared.users.borrow_mut() = users;
        }
        Err(e) => error!("SIGHUP: {e}; keeping the users loaded before"),
    }
}

/// SIGHUP: read the certificate and key again (a renewed certificate needs no restart).
/// Sessions already protected keep the keys they started with; a pair that does not load
/// leaves the old one in use.
fn reload_tls_keys(shared: &Shared, tls_keys: &mut Option<Keys>) {
    let Some(tls) = &shared.config.tls else {
        return;
    };
    match Keys::load(tls) {
        Ok(keys) => {
            info!(
                "SIGHUP: reloaded the TLS certificate {}",
                tls.cert.display()
            );
            *tls_keys = Some(keys);
        }
        Err(e) => error!("SIGHUP: {e}; keeping the certificate loaded before"),
    }
}

/// SIGHUP: open the xferlog by its name again (logrotate has moved the old file away).
fn reopen_xferlog(xferlog: &mut Option<Xferlog>) {
    let Some(xferlog) = xferlog else {
        return;
    };
    match xferlog.reopen() {
        Ok(()) => info!("SIGHUP: reopened the xferlog {}", xferlog.path().display()),
        Err(e) => error!(
            "SIGHUP: cannot reopen the xferlog {}: {e}; writing to the file open before",
            xferlog.path().display()
        ),
    }
}

/// Seconds since 1970, negative before it (a box without a real-time clock may boot there).
fn unix_time(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}

fn is_out_of_resources(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}
