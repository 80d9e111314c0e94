//! --workers N: the supervising process. It holds the listeners and N worker processes, each the
//! one-process server (`Server`, its own mio loop) with its own sessions and their data
//! connections.
//!
//! Why this way: the supervisor accepts every control connection, admits it (`SessionCounts`:
//! the same --max-clients and --max-per-ip counts as one process keeps, over every worker's
//! sessions, so the limits are exact) and hands it to the worker with the fewest sessions, as
//! its descriptor over a SOCK_SEQPACKET socketpair (SCM_RIGHTS) with a ticket; the worker says
//! when the session ended and the counts are released. A users-file login is counted here
//! too (`UserCounts`): the worker asks (`AdmitUser`) and its session waits for the answer. Shared memory between workers would
//! need locks and could not be cleaned after a worker's crash; a shared accept socket cannot
//! refuse the N+1-th client of an address exactly. The supervisor reads no byte from a client
//! and writes only the 421 of a refusal (as one process does, on the fresh socket).
//!
//! A worker that dies (a bug, the OOM killer, a seccomp kill) is reaped at SIGCHLD, logged, its
//! sessions' counts released and a new one forked in its place (after a second when it lived
//! less than one, so a worker that cannot start does not spin). The others never notice.
//! Signals: SIGTERM/SIGINT are passed to every worker, which tell their sessions 421 and exit;
//! the supervisor exits 0 once all are reaped (SIGKILL to those left after the grace). SIGHUP
//! is passed on (each worker reloads), and reloads the supervisor's own copy, which a
//! restarted worker starts from. SIGUSR1 asks each worker for its counts over the channel and
//! logs their sum. A worker whose supervisor is gone sees its channel close and stops.
//!
//! A worker is forked from this loop with every signal blocked (sys::fork); in the child `run`
//! returns `Role::Worker` and the supervisor's state is dropped (its poll, signal pipe,
//! listeners and the other workers' channels), so a worker holds only its own descriptors.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::admission::{self, SessionCounts, UserCounts};
use super::channel::{Channel, ToSupervisor, ToWorker, MAX_MESSAGE_BYTES};
use super::launch::Notify;
use super::tls::Keys;
use super::{is_out_of_resources, reload, Listener, Server, SIGNAL};
use crate::config::{
    ACCEPT_PAUSE_MS, SHUTDOWN_FLUSH_MS, SHUTDOWN_GRACE_MS, WORKER_RESTART_DELAY_MS,
    WORKER_STATUS_WAIT_MS, WORKER_STOP_SLACK_MS,
};
use crate::log::fifo::UploadFifo;
use crate::log::status::{Status, Totals};
use crate::log::xferlog::Xferlog;
use crate::session::Shared;
use crate::sys::{self, Ended, Forked};

/// Worker `i`'s channel: token WORKER_TOKENS + i (listeners are 0..).
const WORKER_TOKENS: usize = usize::MAX / 2;

/// What a worker is made from: the supervisor's copy, current as of the last SIGHUP.
pub struct Parts {
    pub shared: Shared,
    pub tls_keys: Option<Keys>,
    pub xferlog: Option<Xferlog>,
    pub upload_fifo: Option<UploadFifo>,
}

/// Which process `Supervisor::run` returns in.
pub enum Role {
    /// The supervisor, stopped: every worker has exited.
    Stopped,
    /// A freshly forked worker: serve.
    Worker(Box<Worker>),
}

/// A worker process, before its loop starts.
pub struct Worker {
    id: usize,
    channel: OwnedFd,
    parts: Parts,
}

impl Worker {
    /// Its number, from 1 (the `[wN]` of its log lines).
    pub fn id(&self) -> usize {
        self.id
    }

    /// The worker's server: the one-process loop, fed through the channel instead of
    /// listeners. Its signal handlers are in place before the signals blocked since the fork
    /// are let through.
    pub fn into_server(self) -> io::Result<Server> {
        let mut server = Server::new(self.parts.shared, Vec::new(), self.parts.tls_keys)?;
        sys::restore_signal_mask();
        if let Some(xferlog) = self.parts.xferlog {
            server.set_xferlog(xferlog);
        }
        if let Some(fifo) = self.parts.upload_fifo {
            server.set_upload_fifo(fifo);
        }
        server.set_channel(self.channel)?;
        Ok(server)
    }
}

/// One worker's place.
#[derive(Default)]
struct Slot {
    /// The process, while it runs.
    pid: Option<i32>,
    /// The supervisor's end of its channel, while it runs.
    channel: Option<Channel>,
    /// Its sessions (tickets held).
    sessions: usize,
    started: Option<Instant>,
    /// It died: fork the new one then.
    restart_at: Option<Instant>,
}

/// A session admitted and not yet ended.
struct Ticket {
    worker: usize,
    ip: IpAddr,
    /// The users-file account it is logged in as (`ToSupervisor::AdmitUser`).
    user: Option<Box<str>>,
}

/// A connection accepted and admitted while every worker's channel was full: accepting pauses
/// until a channel has room for it (the rest wait in the listen backlog, not refused).
struct Held {
    stream: TcpStream,
    peer: SocketAddr,
    ip: IpAddr,
    implicit_tls: bool,
}

/// Where `hand_over` put a connection.
enum HandOver {
    To(usize),
    /// Every running worker's channel is full for now.
    Full,
    /// No worker runs (or every send failed otherwise).
    Nobody,
}

/// SIGUSR1: the sums so far and who has not answered.
struct StatusRound {
    sum: Status,
    waiting: Vec<usize>,
    deadline: Instant,
}

pub struct Supervisor {
    poll: Poll,
    signals: OwnedFd,
    listeners: Vec<Listener>,
    slots: Vec<Slot>,
    parts: Parts,
    counts: SessionCounts,
    /// Every session admitted and not yet ended: its worker and client address.
    tickets: HashMap<u64, Ticket>,
    /// Logged-in sessions of each users-file account, over every worker.
    users: UserCounts,
    next_ticket: u64,
    notify: Option<Notify>,
    /// SIGTERM came: no restarts, and the end once every worker has exited.
    stopping: bool,
    /// Workers still running then are killed (SIGKILL).
    kill_at: Option<Instant>,
    accept_paused_until: Option<Instant>,
    status: Option<StatusRound>,
    held: Option<Held>,
    /// Bytes of every worker's ended sessions (SIGUSR1): a worker that dies takes only its
    /// running sessions' with it.
    ended_totals: Totals,
    started: Instant,
}

impl Supervisor {
    /// The supervisor of `workers` processes serving `listeners`; the signal handlers are in
    /// place when this returns.
    pub fn new(
        workers: usize,
        parts: Parts,
        listeners: Vec<Listener>,
        notify: Option<Notify>,
    ) -> io::Result<Supervisor> {
        let poll = Poll::new()?;
        let signals = sys::signal_pipe(&[
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGCHLD,
        ])?;
        poll.registry().register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNAL,
            Interest::READABLE,
        )?;
        let mut listeners = listeners;
        for (i, listener) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(&mut listener.socket, Token(i), Interest::READABLE)?;
        }
        Ok(Supervisor {
            poll,
            signals,
            listeners,
            slots: (0..workers).map(|_| Slot::default()).collect(),
            parts,
            counts: SessionCounts::default(),
            tickets: HashMap::new(),
            users: UserCounts::default(),
            next_ticket: 0,
            notify,
            stopping: false,
            kill_at: None,
            accept_paused_until: None,
            status: None,
            held: None,
            ended_totals: Totals::default(),
            started: Instant::now(),
        })
    }

    /// What every session shares, for the sandbox's policy (and its login check, which the
    /// workers inherit).
    pub fn shared(&self) -> &Shared {
        &self.parts.shared
    }

    /// Forks the workers and supervises them until SIGTERM/SIGINT; returns `Role::Worker` in
    /// each worker forked (at start or later), `Role::Stopped` in the supervisor at the end.
    pub fn run(mut self) -> io::Result<Role> {
        for i in 0..self.slots.len() {
            if let Some(channel) = self.spawn(i)? {
                return Ok(self.into_worker(i, channel));
            }
        }
        if let Some(notify) = &self.notify {
            notify.send("READY=1");
        }
        let mut events = Events::with_capacity(crate::config::EVENTS_CAPACITY);
        loop {
            if self.stopping && self.slots.iter().all(|slot| slot.pid.is_none()) {
                info!("all workers stopped");
                return Ok(Role::Stopped);
            }
            let timeout = [
                self.kill_at,
                self.accept_paused_until,
                self.status.as_ref().map(|round| round.deadline),
            ]
            .into_iter()
            .chain(self.slots.iter().map(|slot| slot.restart_at))
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    SIGNAL => self.signalled(now),
                    Token(key) if key >= WORKER_TOKENS => {
                        let i = key - WORKER_TOKENS;
                        if event.is_writable() {
                            self.writable(i);
                        }
                        self.hear(i);
                    }
                    Token(key) => self.accept(key),
                }
            }
            if self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept_paused_until = None;
                // Edge-triggered: connections already waiting raise no new event.
                for key in 0..self.listeners.len() {
                    self.accept(key);
                }
            }
            if self.kill_at.is_some_and(|at| now >= at) {
                self.kill_at = None;
                for slot in &self.slots {
                    if let Some(pid) = slot.pid {
                        warn!("a worker (pid {pid}) did not stop in time: killing it");
                        let _ = sys::kill(pid, libc::SIGKILL);
                    }
                }
            }
            if self
                .status
                .as_ref()
                .is_some_and(|round| round.waiting.is_empty() || now >= round.deadline)
            {
                self.log_status(now);
            }
            for i in 0..self.slots.len() {
                if self.slots[i].restart_at.is_some_and(|at| now >= at) {
                    self.slots[i].restart_at = None;
                    match self.spawn(i) {
                        Ok(Some(channel)) => return Ok(self.into_worker(i, channel)),
                        Ok(None) => self.place_held(),
                        Err(e) => {
                            error!("cannot start worker {}: {e}; trying again", i + 1);
                            self.slots[i].restart_at =
                                Some(now + Duration::from_millis(WORKER_RESTART_DELAY_MS));
                        }
                    }
                }
            }
        }
    }

    /// Forks worker `i`: None in the supervisor, the worker's channel in the worker.
    fn spawn(&mut self, i: usize) -> io::Result<Option<OwnedFd>> {
        let (ours, theirs) = sys::seqpacket_pair()?;
        match sys::fork()? {
            Forked::Child => {
                drop(ours);
                crate::log::set_worker(i + 1);
                Ok(Some(theirs))
            }
            Forked::Parent(pid) => {
                drop(theirs);
                let token = Token(WORKER_TOKENS + i);
                let channel = Channel::register(ours, token, self.poll.registry())?;
                let slot = &mut self.slots[i];
                slot.pid = Some(pid);
                slot.channel = Some(channel);
                slot.sessions = 0;
                slot.started = Some(Instant::now());
                info!("worker {} (pid {pid}) started", i + 1);
                Ok(None)
            }
        }
    }

    /// In a fresh worker: everything of the supervisor's goes (its poll, signal pipe,
    /// listeners, the other workers' channels, the sd_notify socket) but the parts.
    fn into_worker(self, i: usize, channel: OwnedFd) -> Role {
        let Supervisor { parts, .. } = self;
        Role::Worker(Box::new(Worker {
            id: i + 1,
            channel,
            parts,
        }))
    }

    fn signalled(&mut self, now: Instant) {
        let mut reap = false;
        for signal in sys::drain_signals(&self.signals) {
            match signal {
                libc::SIGCHLD => reap = true,
                libc::SIGTERM | libc::SIGINT => self.stop(now, signal),
                libc::SIGHUP => {
                    reload(
                        &self.parts.shared,
                        &mut self.parts.tls_keys,
                        &mut self.parts.xferlog,
                    );
                    self.signal_workers(libc::SIGHUP);
                }
                libc::SIGUSR1 => self.ask_status(now),
                _ => {}
            }
        }
        if reap {
            while let Some((pid, ended)) = sys::reap_child() {
                self.reaped(pid, ended, now);
            }
        }
    }

    fn signal_workers(&self, signal: libc::c_int) {
        for pid in self.slots.iter().filter_map(|slot| slot.pid) {
            if let Err(e) = sys::kill(pid, signal) {
                warn!("cannot signal worker pid {pid}: {e}");
            }
        }
    }

    /// SIGTERM/SIGINT: no more accepting; every worker is told (a second signal is passed on
    /// too: the workers then drop their sessions at once).
    fn stop(&mut self, now: Instant, signal: libc::c_int) {
        if !self.stopping {
            self.stopping = true;
            info!(
                "stopping: {} sessions in {} workers",
                self.counts.sessions,
                self.slots.len()
            );
            if let Some(notify) = &self.notify {
                notify.send("STOPPING=1");
            }
            for mut listener in std::mem::take(&mut self.listeners) {
                let _ = self.poll.registry().deregister(&mut listener.socket);
            }
            if let Some(mut held) = self.held.take() {
                admission::refuse(&mut held.stream, held.peer, "Server shutting down.");
            }
            for slot in &mut self.slots {
                slot.restart_at = None;
            }
            let grace = SHUTDOWN_GRACE_MS + SHUTDOWN_FLUSH_MS + WORKER_STOP_SLACK_MS;
            self.kill_at = Some(now + Duration::from_millis(grace));
        }
        self.signal_workers(signal);
    }

    fn reaped(&mut self, pid: i32, ended: Ended, now: Instant) {
        let Some(i) = self.slots.iter().position(|slot| slot.pid == Some(pid)) else {
            return;
        };
        // What it said before it died (sessions that ended, their bytes) still counts: SIGCHLD
        // may come before its channel's last messages are read.
        self.hear(i);
        let how = match ended {
            Ended::Exited(code) => format!("exited with status {code}"),
            Ended::Signaled(signal) => format!("died: signal {signal}"),
        };
        let slot = &mut self.slots[i];
        let lost = slot.sessions;
        if self.stopping && ended == Ended::Exited(0) {
            info!("worker {} (pid {pid}) stopped", i + 1);
        } else {
            error!("worker {} (pid {pid}) {how}: {lost} sessions lost", i + 1);
        }
        if let Some(channel) = slot.channel.take() {
            channel.deregister(self.poll.registry());
        }
        slot.pid = None;
        slot.sessions = 0;
        if !self.stopping {
            let lived = slot
                .started
                .map_or(Duration::ZERO, |at| now.duration_since(at));
            let delay = Duration::from_millis(WORKER_RESTART_DELAY_MS);
            slot.restart_at = Some(if lived < delay { now + delay } else { now });
        }
        let (counts, users) = (&mut self.counts, &mut self.users);
        self.tickets.retain(|_, ticket| {
            if ticket.worker == i {
                counts.remove(ticket.ip);
                if let Some(name) = &ticket.user {
                    users.release(name);
                }
            }
            ticket.worker != i
        });
        if let Some(round) = &mut self.status {
            round.waiting.retain(|&w| w != i);
        }
    }

    /// A listener is readable: accept, admit, hand over, until WouldBlock.
    fn accept(&mut self, key: usize) {
        if self.accept_paused_until.is_some() {
            return;
        }
        // A held connection waits for a channel with room: the next ones wait in the backlog.
        while self.held.is_none() {
            let Some(listener) = self.listeners.get(key) else {
                return;
            };
            let implicit_tls = listener.implicit_tls;
            match listener.socket.accept() {
                Ok((mut stream, peer)) => {
                    let ip = peer.ip().to_canonical();
                    let config = &self.parts.shared.config;
                    if let Some(text) = self.counts.refusal(config, ip) {
                        admission::refuse(&mut stream, peer, text);
                        continue;
                    }
                    self.place(Held {
                        stream,
                        peer,
                        ip,
                        implicit_tls,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_out_of_resources(&e) => {
                    warn!("cannot accept: {e}; pausing new connections for {ACCEPT_PAUSE_MS} ms");
                    let pause = Duration::from_millis(ACCEPT_PAUSE_MS);
                    self.accept_paused_until = Some(Instant::now() + pause);
                    return;
                }
                Err(e) => {
                    error!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Hands an admitted connection to a worker and counts it there; with every channel full
    /// it is held (accepting pauses), with no worker to take it it is refused.
    fn place(&mut self, mut conn: Held) {
        let ticket = self.next_ticket;
        let message = ToWorker::Session {
            ticket,
            implicit_tls: conn.implicit_tls,
        }
        .encode();
        match self.hand_over(&message, conn.stream.as_raw_fd()) {
            HandOver::To(i) => {
                debug!("{} to worker {}", conn.peer, i + 1);
                self.next_ticket += 1;
                self.counts.add(conn.ip);
                let held = Ticket {
                    worker: i,
                    ip: conn.ip,
                    user: None,
                };
                self.tickets.insert(ticket, held);
                self.slots[i].sessions += 1;
            }
            HandOver::Full => self.held = Some(conn),
            HandOver::Nobody => admission::refuse(
                &mut conn.stream,
                conn.peer,
                "No worker can take the session now, try again later.",
            ),
        }
    }

    /// Sends the connection to the running worker with the fewest sessions whose channel has
    /// room (the next one when a channel turns out full).
    fn hand_over(&mut self, message: &[u8], fd: i32) -> HandOver {
        let blocked = |slot: &Slot| slot.channel.as_ref().is_some_and(Channel::is_blocked);
        let mut order: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].channel.is_some() && !blocked(&self.slots[i]))
            .collect();
        order.sort_by_key(|&i| (self.slots[i].sessions, i));
        for i in order {
            let Some(channel) = &mut self.slots[i].channel else {
                continue;
            };
            match sys::send_message(&channel.socket, message, Some(fd)) {
                Ok(()) => return HandOver::To(i),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if channel.block(self.poll.registry()).unwrap_or(true) {
                        warn!(
                            "worker {} is not reading its channel: connections go to the others",
                            i + 1
                        );
                    }
                }
                Err(e) => warn!("cannot hand a connection to worker {}: {e}", i + 1),
            }
        }
        if self.slots.iter().any(blocked) {
            HandOver::Full
        } else {
            HandOver::Nobody
        }
    }

    /// Worker `i`'s channel has room again: what waited for it goes (its answers, and the
    /// connection held while every channel was full; then accepting goes on).
    fn writable(&mut self, i: usize) {
        let Some(channel) = &mut self.slots[i].channel else {
            return;
        };
        match channel.writable(self.poll.registry()) {
            Ok(true) => info!("worker {} takes connections again", i + 1),
            Ok(false) => {}
            Err(e) => debug!("worker {} channel: {e}", i + 1),
        }
        self.place_held();
    }

    /// A channel may have room (it drained, or a worker was started): the held connection
    /// goes, then accepting goes on.
    fn place_held(&mut self) {
        let Some(conn) = self.held.take() else {
            return;
        };
        self.place(conn);
        if self.held.is_none() {
            // Edge-triggered: connections already waiting raise no new event.
            for key in 0..self.listeners.len() {
                self.accept(key);
            }
        }
    }

    /// Worker `i`'s channel is readable.
    fn hear(&mut self, i: usize) {
        let mut buf = [0u8; MAX_MESSAGE_BYTES];
        let mut reset = false;
        loop {
            let Some(channel) = self.slots.get(i).and_then(|slot| slot.channel.as_ref()) else {
                return;
            };
            let len = match sys::recv_message(&channel.socket, &mut buf) {
                // A descriptor never comes this way; one that did is closed on drop.
                Ok((len, _)) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ECONNRESET: the worker died with messages of ours unread. The error is
                // reported once; what it sent before it died is read after it.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !reset => {
                    debug!("worker {} channel: {e}", i + 1);
                    reset = true;
                    continue;
                }
                Err(e) => {
                    debug!("worker {} channel: {e}", i + 1);
                    0
                }
            };
            if len == 0 {
                // The worker is gone: SIGCHLD tells how, and releases its sessions.
                if let Some(channel) = self.slots[i].channel.take() {
                    channel.deregister(self.poll.registry());
                }
                return;
            }
            match ToSupervisor::decode(&buf[..len]) {
                Some(ToSupervisor::Ended { ticket, moved }) => {
                    self.ended_totals.merge(moved);
                    if let Some(ticket) = self.tickets.remove(&ticket) {
                        self.counts.remove(ticket.ip);
                        if let Some(name) = &ticket.user {
                            self.users.release(name);
                        }
                        self.slots[ticket.worker].sessions -= 1;
                    }
                }
                Some(ToSupervisor::AdmitUser {
                    ticket,
                    limit,
                    name,
                }) => self.admit_user(i, ticket, name, limit),
                Some(ToSupervisor::Status(status)) => {
                    if let Some(round) = &mut self.status {
                        round.sum.add(&status);
                        round.waiting.retain(|&w| w != i);
                    }
                }
                None => error!(
                    "worker {} channel: a message of {len} bytes not understood",
                    i + 1
                ),
            }
        }
    }

    /// A login on worker `i`'s session `ticket`: counted over every worker, answered to `i`.
    fn admit_user(&mut self, i: usize, ticket: u64, name: Box<str>, limit: Option<usize>) {
        let Some(held) = self.tickets.get_mut(&ticket) else {
            return; // Ended meanwhile.
        };
        debug!(
            "worker {} ticket {ticket}: may {name} log in (limit {limit:?})?",
            i + 1
        );
        // A session that logs in again (AUTH TLS after a login) gives back what it held.
        if let Some(previous) = held.user.take() {
            self.users.release(&previous);
        }
        let answer = match self.users.admit(name, limit) {
            Ok(name) => {
                held.user = Some(name);
                ToWorker::Admission {
                    ticket,
                    admitted: true,
                    limit: 0,
                }
            }
            Err(limit) => ToWorker::Admission {
                ticket,
                admitted: false,
                limit: limit as u64,
            },
        };
        self.tell(i, answer);
    }

    /// Sends `message` to worker `i`; with its channel full, it waits there (said once).
    fn tell(&mut self, i: usize, message: ToWorker) -> bool {
        let Some(channel) = &mut self.slots[i].channel else {
            return false;
        };
        if let Err(e) = channel.send(self.poll.registry(), message.encode()) {
            warn!("cannot tell worker {} {message:?}: {e}", i + 1);
            return false;
        }
        if channel.waiting() == 1 {
            info!("worker {}'s channel is full: what it is told waits", i + 1);
        }
        true
    }

    /// SIGUSR1: ask every running worker; `log_status` sums the answers.
    fn ask_status(&mut self, now: Instant) {
        if self.status.is_some() {
            return;
        }
        let waiting = (0..self.slots.len())
            .filter(|&i| self.tell(i, ToWorker::Status))
            .collect();
        self.status = Some(StatusRound {
            sum: Status::default(),
            waiting,
            deadline: now + Duration::from_millis(WORKER_STATUS_WAIT_MS),
        });
    }

    fn log_status(&mut self, now: Instant) {
        let Some(round) = self.status.take() else {
            return;
        };
        let mut status = round.sum;
        status.totals.merge(self.ended_totals);
        status.uptime = now.saturating_duration_since(self.started);
        let running = self.slots.iter().filter(|slot| slot.pid.is_some()).count();
        let silent = if round.waiting.is_empty() {
            String::new()
        } else {
            format!(" ({} did not answer)", round.waiting.len())
        };
        info!("{status}, {running} workers{silent}");
    }
}
