//! The poll loop: the only module that touches sockets. One `mio::Poll`, one `Slab<Conn>` holding
//! every listener, control connection, passive listener and data connection (Token = slab key),
//! and a heap of session deadlines. Sessions (session.rs) decide; this file carries out their
//! `Action`s and feeds them bytes, data-connection events and time.
//!
//! Edge-triggered readiness: every socket is read, written or accepted until `WouldBlock`, or
//! until its turn's budget is spent, after which it waits in `runnable` so that one busy client
//! cannot starve the others. With no session the loop sleeps in `poll` with no timeout.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::auth::Users;
use crate::config::{
    ACCEPT_PAUSE_MS, CONTROL_READ_BYTES, SHUTDOWN_FLUSH_MS, SHUTDOWN_GRACE_MS, TURN_BYTES,
};
use crate::session::{Action, DataEvent, Session, Shared};
use crate::sys;
use crate::transfer::{Job, Step};

/// The signal pipe's token: never a slab key.
const SIGNAL: Token = Token(usize::MAX);
/// Reads of one control connection per turn: a flood of commands is served fairly.
const CONTROL_READS_PER_TURN: usize = 4;
const EVENTS_CAPACITY: usize = 1024;

enum Conn {
    Listener(TcpListener),
    Control(Box<Control>),
    Passive { listener: TcpListener, owner: usize },
    Data(Box<DataConn>),
}

struct Control {
    stream: TcpStream,
    session: Session,
    peer_ip: IpAddr,
    /// The session's passive listener or data connection (slab key), if any.
    data_key: Option<usize>,
    /// A transfer waiting for the client to connect to the passive listener.
    pending_job: Option<Job>,
    /// The socket may hold unread bytes (edge-triggered: cleared only by `WouldBlock`).
    readable: bool,
    writable_interest: bool,
    /// The deadline this connection has in the timer heap, if any.
    deadline: Option<Instant>,
    /// The session sent `Action::Close`: close once its last replies are written.
    finished: bool,
}

struct DataConn {
    stream: TcpStream,
    owner: usize,
    job: Option<Job>,
    /// A PORT/EPRT connect in progress.
    connecting: bool,
}

pub struct Server {
    poll: Poll,
    conns: Slab<Conn>,
    shared: Rc<Shared>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Connections with work left after their turn.
    runnable: VecDeque<usize>,
    /// Control connections to close once the current batch of events is handled.
    to_close: Vec<usize>,
    sessions: usize,
    sessions_per_ip: HashMap<IpAddr, usize>,
    /// Ports for passive listeners: --pasv-ports, or the kernel's ephemeral range.
    passive_ports: (u16, u16),
    /// Out of descriptors: accepting waits until then, and these listeners are retried.
    accept_paused_until: Option<Instant>,
    paused_listeners: Vec<usize>,
    signals: OwnedFd,
    /// SIGTERM came: no more accepting; the loop ends when the last session has closed, or at
    /// this instant whatever the sessions are doing.
    stop_deadline: Option<Instant>,
}

/// What the signals received ask for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Signals {
    stop: bool,
    reload: bool,
}

/// Binds every --listen address; kept apart from the loop so that inherited sockets (inetd,
/// systemd) can later enter the same way.
pub fn bind(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, String> {
    addrs
        .iter()
        .map(|&addr| sys::bind_listener(addr).map_err(|e| format!("cannot listen on {addr}: {e}")))
        .collect()
}

impl Server {
    pub fn new(shared: Shared, listeners: Vec<TcpListener>) -> io::Result<Server> {
        let poll = Poll::new()?;
        let signals = sys::signal_pipe(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])?;
        poll.registry().register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNAL,
            Interest::READABLE,
        )?;
        let mut conns = Slab::new();
        for mut listener in listeners {
            let entry = conns.vacant_entry();
            poll.registry()
                .register(&mut listener, Token(entry.key()), Interest::READABLE)?;
            entry.insert(Conn::Listener(listener));
        }
        let passive_ports = shared
            .config
            .pasv_ports
            .unwrap_or_else(sys::ephemeral_port_range);
        Ok(Server {
            poll,
            conns,
            shared: Rc::new(shared),
            timers: BinaryHeap::new(),
            runnable: VecDeque::new(),
            to_close: Vec::new(),
            sessions: 0,
            sessions_per_ip: HashMap::new(),
            passive_ports,
            accept_paused_until: None,
            paused_listeners: Vec::new(),
            signals,
            stop_deadline: None,
        })
    }

    /// Serves until SIGTERM or SIGINT, then until the sessions have said goodbye (bounded).
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            if let Some(deadline) = self.stop_deadline {
                if self.sessions == 0 {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    self.stop_now();
                    return Ok(());
                }
            }
            self.prune_timers();
            let timeout = if self.runnable.is_empty() {
                let next_timer = self.timers.peek().map(|Reverse((deadline, _))| *deadline);
                [next_timer, self.accept_paused_until, self.stop_deadline]
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
            for event in events.iter() {
                if event.token() == SIGNAL {
                    let signals = self.read_signals();
                    if signals.reload {
                        self.reload_users();
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
                let key = event.token().0;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    if let Some(Conn::Control(control)) = self.conns.get_mut(key) {
                        control.readable = true;
                    }
                }
                self.guarded(key, |server| server.service(key, now));
            }
            for _ in 0..self.runnable.len() {
                let Some(key) = self.runnable.pop_front() else {
                    break;
                };
                self.guarded(key, |server| server.service(key, now));
            }
            self.fire_timers(now);
            self.resume_accepting(now);
            self.close_pending();
        }
    }

    /// Runs `f` for connection `key`; a panic closes only the session it belongs to.
    fn guarded(&mut self, key: usize, f: impl FnOnce(&mut Server)) {
        if catch_unwind(AssertUnwindSafe(|| f(self))).is_err() {
            let owner = self.owner_of(key);
            self.abort_session(owner, "panicked");
        }
    }

    /// A broken invariant: tell the client 421 and close its session, never the server.
    fn abort_session(&mut self, key: usize, why: &str) {
        error!("[#{key}] internal error ({why}): closing this session");
        if let Some(Conn::Control(control)) = self.conns.get_mut(key) {
            let _ = control
                .stream
                .write(b"421 Internal error, closing control connection.\r\n");
            control.deadline = None;
            self.to_close.push(key);
        }
    }

    fn owner_of(&self, key: usize) -> usize {
        match self.conns.get(key) {
            Some(Conn::Passive { owner, .. }) => *owner,
            Some(Conn::Data(data)) => data.owner,
            _ => key,
        }
    }

    fn service(&mut self, key: usize, now: Instant) {
        match self.conns.get(key) {
            Some(Conn::Listener(_)) => self.accept_control(key, now),
            Some(Conn::Control(_)) => self.service_control(key, now),
            Some(Conn::Passive { .. }) => self.accept_data(key, now),
            Some(Conn::Data(_)) => self.service_data(key, now),
            // An event for a connection closed earlier in this batch.
            None => {}
        }
    }

    // ---- control connections ------------------------------------------------------------

    fn accept_control(&mut self, key: usize, now: Instant) {
        if self.accept_paused_until.is_some() {
            return self.paused_listeners.push(key);
        }
        loop {
            let Some(Conn::Listener(listener)) = self.conns.get(key) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_out_of_resources(&e) => return self.pause_accepting(key, &e, now),
                Err(e) => {
                    error!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Out of descriptors or memory: accepting again at once would spin on the same error,
    /// so the listener rests a moment while the sessions already open carry on.
    fn pause_accepting(&mut self, key: usize, error: &io::Error, now: Instant) {
        if self.accept_paused_until.is_none() {
            warn!("cannot accept: {error}; pausing new connections for {ACCEPT_PAUSE_MS} ms");
            self.accept_paused_until = Some(now + Duration::from_millis(ACCEPT_PAUSE_MS));
        }
        self.paused_listeners.push(key);
    }

    fn resume_accepting(&mut self, now: Instant) {
        if self.accept_paused_until.is_none_or(|until| now < until) {
            return;
        }
        self.accept_paused_until = None;
        let mut listeners = std::mem::take(&mut self.paused_listeners);
        listeners.sort_unstable();
        listeners.dedup();
        for key in listeners {
            // Edge-triggered: connections already waiting raise no new event, so try now.
            self.guarded(key, |server| server.service(key, now));
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        let ip = peer.ip().to_canonical();
        let config = &self.shared.config;
        let refusal = if self.sessions >= config.max_clients {
            Some("421 Too many users, try again later.\r\n")
        } else if self.sessions_per_ip.get(&ip).copied().unwrap_or(0) >= config.max_per_ip {
            Some("421 Too many connections from your address.\r\n")
        } else {
            None
        };
        if let Some(text) = refusal {
            info!("refused {peer}: {}", text.trim_end());
            // Best effort on a fresh socket: its send buffer is empty, so this does not block.
            let _ = stream.write(text.as_bytes());
            return;
        }
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(e) => return debug!("connection from {peer} gone before it started: {e}"),
        };
        // Replies are small and interactive: Nagle would add tens of milliseconds to each.
        let _ = stream.set_nodelay(true);
        let _ = sys::set_oob_inline(stream.as_raw_fd());
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)
        {
            return error!("cannot register {peer}: {e}");
        }
        let session = Session::new(self.shared.clone(), key, peer, local, now);
        entry.insert(Conn::Control(Box::new(Control {
            stream,
            session,
            peer_ip: ip,
            data_key: None,
            pending_job: None,
            readable: true,
            writable_interest: false,
            deadline: None,
            finished: false,
        })));
        self.sessions += 1;
        *self.sessions_per_ip.entry(ip).or_insert(0) += 1;
        info!("[#{key}] connection from {peer}");
        self.service_control(key, now);
    }

    /// Reads commands, carries out the session's actions, writes its replies, and schedules
    /// its next deadline.
    fn service_control(&mut self, key: usize, now: Instant) {
        let mut reads = 0;
        loop {
            // After every read: carry out what the session asked for and send its replies.
            self.run_actions(key, now);
            if !self.flush(key, now) {
                return;
            }
            let Some(Conn::Control(control)) = self.conns.get_mut(key) else {
                return;
            };
            if control.session.has_actions() {
                // Writing found the client gone: the session asked to close meanwhile.
                continue;
            }
            if !control.readable || !control.session.wants_input() {
                break;
            }
            if reads == CONTROL_READS_PER_TURN {
                // Turn over: the others go first, then this client is read again.
                self.runnable.push_back(key);
                break;
            }
            reads += 1;
            let mut buf = [0u8; CONTROL_READ_BYTES];
            match control.stream.read(&mut buf) {
                Ok(0) => {
                    debug!("[#{key}] client closed the control connection");
                    control.readable = false;
                    control.session.handle_hangup();
                }
                Ok(n) => control.session.handle_input(&buf[..n], now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => control.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("[#{key}] control connection error: {e}");
                    control.readable = false;
                    control.session.handle_hangup();
                }
            }
        }
        self.schedule(key);
    }

    /// Writes pending replies; false if the connection is closing or gone.
    fn flush(&mut self, key: usize, now: Instant) -> bool {
        let Some(Conn::Control(control)) = self.conns.get_mut(key) else {
            return false;
        };
        while !control.session.output().is_empty() {
            match control.stream.write(control.session.output()) {
                Ok(n) => control.session.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("[#{key}] control connection error: {e}");
                    control.session.handle_hangup();
                }
            }
        }
        if control.finished {
            // What fits in the socket buffer is sent; we do not wait for a slow reader.
            self.to_close.push(key);
            return false;
        }
        let pending = !control.session.output().is_empty();
        if pending != control.writable_interest {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) =
                self.poll
                    .registry()
                    .reregister(&mut control.stream, Token(key), interest)
            {
                error!("[#{key}] reregister failed: {e}");
                self.to_close.push(key);
                return false;
            }
            control.writable_interest = pending;
        }
        if !pending {
            // The client reads again: run any lines held back while it did not.
            control.session.handle_input(&[], now);
        }
        true
    }

    fn run_actions(&mut self, key: usize, now: Instant) {
        loop {
            let Some(Conn::Control(control)) = self.conns.get_mut(key) else {
                return;
            };
            let Some(action) = control.session.poll_action() else {
                return;
            };
            match action {
                Action::OpenPassive => {
                    self.close_data(key);
                    let result = self.open_passive(key);
                    if let Some(Conn::Control(control)) = self.conns.get_mut(key) {
                        control.session.handle_passive_opened(result, now);
                    }
                }
                Action::Transfer {
                    job,
                    connect_to: Some(addr),
                } => {
                    self.close_data(key);
                    self.connect_data(key, addr, *job, now);
                }
                Action::Transfer {
                    job,
                    connect_to: None,
                } => self.start_passive_transfer(key, *job, now),
                Action::CloseData => self.close_data(key),
                // flush() closes the connection after sending what it can.
                Action::Close => control.finished = true,
            }
        }
    }

    fn schedule(&mut self, key: usize) {
        let Some(Conn::Control(control)) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(deadline) = control.session.poll_timeout() {
            if control
                .deadline
                .is_none_or(|scheduled| deadline < scheduled)
            {
                control.deadline = Some(deadline);
                self.timers.push(Reverse((deadline, key)));
            }
        }
    }

    /// Drops stale entries from the top of the heap (closed sessions, moved deadlines), so that
    /// they wake nobody: with no session left the loop sleeps with no timeout.
    fn prune_timers(&mut self) {
        while let Some(&Reverse((deadline, key))) = self.timers.peek() {
            match self.conns.get(key) {
                Some(Conn::Control(control)) if control.deadline == Some(deadline) => return,
                _ => {
                    self.timers.pop();
                }
            }
        }
    }

    /// Runs the deadlines that have passed. Entries are never removed from the heap when a
    /// deadline moves: a popped entry that no longer matches its connection is skipped, and one
    /// whose session now wants a later time is pushed again.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((deadline, key))) = self.timers.peek() {
            if deadline > now {
                return;
            }
            self.timers.pop();
            let Some(Conn::Control(control)) = self.conns.get_mut(key) else {
                continue;
            };
            if control.deadline != Some(deadline) {
                continue;
            }
            control.deadline = None;
            match control.session.poll_timeout() {
                Some(next) if next > now => {
                    control.deadline = Some(next);
                    self.timers.push(Reverse((next, key)));
                }
                Some(_) => {
                    self.guarded(key, |server| {
                        if let Some(Conn::Control(control)) = server.conns.get_mut(key) {
                            control.session.handle_timeout(now);
                            // Defence in depth: a deadline still due after its handling would
                            // fire again at once, forever (the CPU spin of a closing upload).
                            if control
                                .session
                                .poll_timeout()
                                .is_some_and(|next| next <= now)
                            {
                                return server.abort_session(key, "a deadline did not move");
                            }
                        }
                        server.service_control(key, now);
                    });
                }
                None => {}
            }
        }
    }

    fn close_pending(&mut self) {
        while let Some(key) = self.to_close.pop() {
            if !matches!(self.conns.get(key), Some(Conn::Control(_))) {
                continue;
            }
            self.close_data(key);
            if let Some(Conn::Control(mut control)) = self.conns.try_remove(key) {
                let _ = self.poll.registry().deregister(&mut control.stream);
                self.sessions -= 1;
                if let Some(count) = self.sessions_per_ip.get_mut(&control.peer_ip) {
                    *count -= 1;
                    if *count == 0 {
                        self.sessions_per_ip.remove(&control.peer_ip);
                    }
                }
                info!("[#{key}] closed");
            }
        }
    }

    // ---- data connections ---------------------------------------------------------------

    /// Binds a passive listener on the control connection's local address, in --pasv-ports.
    fn open_passive(&mut self, owner: usize) -> io::Result<SocketAddr> {
        let Some(Conn::Control(control)) = self.conns.get(owner) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let local_ip = control.stream.local_addr()?.ip();
        let mut listener = self.bind_passive(local_ip)?;
        let addr = listener.local_addr()?;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut listener, Token(key), Interest::READABLE)?;
        entry.insert(Conn::Passive { listener, owner });
        if let Some(Conn::Control(control)) = self.conns.get_mut(owner) {
            control.data_key = Some(key);
        }
        debug!("[#{owner}] passive listener on {addr}");
        Ok(addr)
    }

    /// Binds a passive listener on a free port of the range: each port is tried once, from a
    /// random start. Never port 0: with thousands of TIME_WAIT sockets the kernel's own search
    /// for a free port costs milliseconds of system time per bind, while an explicit port with
    /// SO_REUSEADDR binds at once. SECURITY: random ports also make a data connection hard to
    /// steal (RFC 2577), on top of the peer address check.
    fn bind_passive(&mut self, ip: IpAddr) -> io::Result<TcpListener> {
        let (min, max) = self.passive_ports;
        let span = u32::from(max - min) + 1;
        let start = sys::random_u32() % span;
        for i in 0..span {
            let port = min + ((start + i) % span) as u16;
            match sys::bind_listener(SocketAddr::new(ip, port)) {
                Ok(listener) => return Ok(listener),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("every passive port from {min} to {max} is in use"),
        ))
    }

    fn accept_data(&mut self, key: usize, now: Instant) {
        if self.accept_paused_until.is_some() {
            return self.paused_listeners.push(key);
        }
        loop {
            let Some(Conn::Passive { listener, owner }) = self.conns.get(key) else {
                return;
            };
            let owner = *owner;
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_out_of_resources(&e) => return self.pause_accepting(key, &e, now),
                Err(e) => return warn!("[#{owner}] passive accept failed: {e}"),
            };
            let Some(Conn::Control(control)) = self.conns.get_mut(owner) else {
                return;
            };
            // SECURITY: only the client itself may open its data connection (RFC 2577);
            // anyone else is dropped and the listener keeps waiting for the right peer.
            if peer.ip().to_canonical() != control.peer_ip {
                warn!(
                    "[#{owner}] data connection from {peer} refused: the client is {}",
                    control.peer_ip
                );
                continue;
            }
            let job = control.pending_job.take();
            if let Some(Conn::Passive { mut listener, .. }) = self.conns.try_remove(key) {
                let _ = self.poll.registry().deregister(&mut listener);
            }
            let has_job = job.is_some();
            let data_key = self.insert_data(owner, stream, job, false);
            if let Some(Conn::Control(control)) = self.conns.get_mut(owner) {
                control.data_key = data_key;
                control.session.handle_data_event(DataEvent::Connected, now);
                if data_key.is_none() {
                    let error = io::Error::other("cannot register the data connection");
                    control
                        .session
                        .handle_data_event(DataEvent::ConnectFailed(error), now);
                }
            }
            if let (Some(data_key), true) = (data_key, has_job) {
                self.service_data(data_key, now);
            } else {
                self.service_control(owner, now);
            }
            return;
        }
    }

    fn insert_data(
        &mut self,
        owner: usize,
        mut stream: TcpStream,
        job: Option<Job>,
        connecting: bool,
    ) -> Option<usize> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), interest)
        {
            error!("[#{owner}] cannot register a data connection: {e}");
            return None;
        }
        entry.insert(Conn::Data(Box::new(DataConn {
            stream,
            owner,
            job,
            connecting,
        })));
        Some(key)
    }

    /// PORT/EPRT: a non-blocking connect; `service_data` completes it when the socket is writable.
    fn connect_data(&mut self, owner: usize, addr: SocketAddr, job: Job, now: Instant) {
        let result = TcpStream::connect(addr).and_then(|stream| {
            self.insert_data(owner, stream, Some(job), true)
                .ok_or_else(|| io::Error::other("cannot register the data connection"))
        });
        match result {
            Ok(data_key) => {
                if let Some(Conn::Control(control)) = self.conns.get_mut(owner) {
                    control.data_key = Some(data_key);
                }
                debug!("[#{owner}] connecting to {addr}");
            }
            Err(e) => {
                if let Some(Conn::Control(control)) = self.conns.get_mut(owner) {
                    control
                        .session
                        .handle_data_event(DataEvent::ConnectFailed(e), now);
                }
            }
        }
    }

    fn start_passive_transfer(&mut self, owner: usize, job: Job, now: Instant) {
        let Some(Conn::Control(control)) = self.conns.get_mut(owner) else {
            return;
        };
        match control.data_key {
            Some(data_key) => match self.conns.get_mut(data_key) {
                Some(Conn::Data(data)) => {
                    data.job = Some(job);
                    self.runnable.push_back(data_key);
                }
                Some(Conn::Passive { .. }) => {
                    if let Some(Conn::Control(control)) = self.conns.get_mut(owner) {
                        control.pending_job = Some(job);
                    }
                }
                _ => {}
            },
            // The passive listener timed out before the command came.
            None => {
                let error = io::Error::new(io::ErrorKind::NotConnected, "no passive listener");
                control
                    .session
                    .handle_data_event(DataEvent::ConnectFailed(error), now);
            }
        }
    }

    fn service_data(&mut self, key: usize, now: Instant) {
        let Some(Conn::Data(data)) = self.conns.get_mut(key) else {
            return;
        };
        let owner = data.owner;
        if data.connecting {
            match connect_result(&data.stream) {
                Ok(None) => return,
                Ok(Some(())) => {
                    data.connecting = false;
                    if let Some(Conn::Control(control)) = self.conns.get_mut(owner) {
                        control.session.handle_data_event(DataEvent::Connected, now);
                    }
                }
                Err(e) => {
                    self.remove_data(owner, key);
                    self.session_event(owner, DataEvent::ConnectFailed(e), now);
                    return;
                }
            }
        }
        let Some(Conn::Data(data)) = self.conns.get_mut(key) else {
            return;
        };
        let Some(job) = data.job.as_mut() else { return };
        let step = job.pump(&mut data.stream, TURN_BYTES);
        let bytes = job.bytes();
        match step {
            Ok(Step::Blocked) => self.session_event(owner, DataEvent::Progress { bytes }, now),
            Ok(Step::Yield) => {
                self.runnable.push_back(key);
                self.session_event(owner, DataEvent::Progress { bytes }, now);
            }
            Ok(Step::Done) => {
                self.remove_data(owner, key);
                self.session_event(owner, DataEvent::Done { bytes }, now);
            }
            Err(e) => {
                self.remove_data(owner, key);
                self.session_event(owner, DataEvent::Failed(e), now);
            }
        }
    }

    fn session_event(&mut self, owner: usize, event: DataEvent, now: Instant) {
        if let Some(Conn::Control(control)) = self.conns.get_mut(owner) {
            control.session.handle_data_event(event, now);
            self.service_control(owner, now);
        }
    }

    /// Drops the session's data connection or passive listener at once. Data sockets are not
    /// deferred like control ones: a stale event for a reused key finds `WouldBlock` and nothing
    /// else, and a connecting socket treats "not connected yet" as "wait".
    fn close_data(&mut self, owner: usize) {
        let Some(Conn::Control(control)) = self.conns.get_mut(owner) else {
            return;
        };
        control.pending_job = None;
        if let Some(key) = control.data_key {
            self.remove_data(owner, key);
        }
    }

    fn remove_data(&mut self, owner: usize, key: usize) {
        match self.conns.get(key) {
            Some(Conn::Data(data)) if data.owner == owner => {}
            Some(Conn::Passive { owner: o, .. }) if *o == owner => {}
            _ => return,
        }
        match self.conns.remove(key) {
            Conn::Data(mut data) => {
                let _ = self.poll.registry().deregister(&mut data.stream);
            }
            Conn::Passive { mut listener, .. } => {
                let _ = self.poll.registry().deregister(&mut listener);
            }
            _ => {}
        }
        if let Some(Conn::Control(control)) = self.conns.get_mut(owner) {
            if control.data_key == Some(key) {
                control.data_key = None;
            }
        }
    }

    // ---- signals ------------------------------------------------------------------------

    fn read_signals(&mut self) -> Signals {
        let mut signals = Signals::default();
        for signal in sys::drain_signals(&self.signals) {
            match signal {
                libc::SIGTERM | libc::SIGINT => signals.stop = true,
                libc::SIGHUP => signals.reload = true,
                _ => {}
            }
        }
        signals
    }

    /// SIGHUP: read the users file again. Sessions already logged in keep going; a file that
    /// does not load leaves the users as they were.
    fn reload_users(&mut self) {
        let Some(path) = &self.shared.config.users_file else {
            return info!("SIGHUP: no users file to reload");
        };
        match Users::load(path) {
            Ok(users) => {
                info!(
                    "SIGHUP: reloaded {} users from {}",
                    users.len(),
                    path.display()
                );
                *self.shared.users.borrow_mut() = users;
            }
            Err(e) => error!("SIGHUP: {e}; keeping the users loaded before"),
        }
    }

    /// SIGTERM/SIGINT: stop accepting and tell every session; a running upload gets a short
    /// grace to finish. The loop ends when the last session has closed, or at `stop_deadline`.
    fn begin_stop(&mut self, now: Instant) {
        info!("stopping: closing {} sessions", self.sessions);
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        self.stop_deadline = Some(now + grace + Duration::from_millis(SHUTDOWN_FLUSH_MS));
        self.accept_paused_until = None;
        self.paused_listeners.clear();
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            match self.conns.get(key) {
                Some(Conn::Listener(_)) => {
                    if let Conn::Listener(mut listener) = self.conns.remove(key) {
                        let _ = self.poll.registry().deregister(&mut listener);
                    }
                }
                Some(Conn::Control(_)) => self.guarded(key, |server| {
                    if let Some(Conn::Control(control)) = server.conns.get_mut(key) {
                        control.session.handle_shutdown(now, grace);
                    }
                    server.service_control(key, now);
                }),
                _ => {}
            }
        }
    }

    /// The end of the grace, or a second signal: what is still open is told 421 and dropped.
    fn stop_now(&mut self) {
        info!("stopping now: dropping {} sessions", self.sessions);
        for (_, conn) in self.conns.iter_mut() {
            if let Conn::Control(control) = conn {
                if !control.finished {
                    let _ = control.stream.write(b"421 Server shutting down.\r\n");
                }
            }
        }
        self.conns.clear();
    }
}

fn is_out_of_resources(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// The state of a non-blocking connect: Ok(None) while it is still in progress.
fn connect_result(stream: &TcpStream) -> io::Result<Option<()>> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(Some(())),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(None),
        Err(e) => Err(e),
    }
}
