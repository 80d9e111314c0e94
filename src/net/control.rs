//! Control connections: accepting them (with --max-clients, --max-per-ip and a pause when out of
//! descriptors), reading commands into the session, carrying out its actions, writing its
//! replies, and keeping its deadline in the timer table.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::admission;
use super::pace::PerDirection;
use super::stream::Stream;
use super::tls::SessionKeys;
use super::{is_out_of_resources, Conn, Server};
use crate::auth::Limits;
use crate::config::{ACCEPT_PAUSE_MS, CONTROL_READS_PER_TURN};
use crate::log::status::Totals;
use crate::session::driver::{self, Host};
use crate::session::{Admission, Session};
use crate::sys;
use crate::transfer::pace::Bucket;
use crate::transfer::{Job, Task, TransferRecord};

pub(super) struct Control {
    pub(super) stream: Stream,
    pub(super) session: Session,
    pub(super) peer_ip: IpAddr,
    /// The session's passive listener or data connection (slab key), if any.
    pub(super) data_key: Option<usize>,
    /// The session's task (slab key), if one runs.
    pub(super) task_key: Option<usize>,
    /// The socket may hold unread bytes (edge-triggered: cleared only by `WouldBlock`).
    pub(super) readable: bool,
    writable_interest: bool,
    /// The session sent `Action::Close`: close once its last replies are written.
    pub(super) finished: bool,
    /// A call into the session panicked: it is not called again, only closed.
    pub(super) poisoned: bool,
    /// FTPS: this session's TLS configurations, from its AUTH (or implicit TLS listener) on.
    pub(super) tls: Option<SessionKeys>,
    /// --max-rate-down/-up, or the user's rate_down/rate_up once logged in: its buckets.
    pub(super) rates: PerDirection<Bucket>,
    /// The users-file account this session is counted against (`admit_user`), once logged in.
    pub(super) user: Option<Box<str>>,
    /// AUTH TLS was accepted: the TLS layer goes on once its 234 is out; nothing is read before.
    start_tls: bool,
    /// --workers: the supervisor's name for this session, told back when it ends.
    pub(super) ticket: Option<u64>,
    /// --workers: a login waits for the supervisor's admission; these rates then apply.
    pub(super) pending_rates: Option<(Option<u64>, Option<u64>)>,
    /// Bytes of this session's ended transfers (the server's totals take them at its end).
    pub(super) moved: Totals,
}

impl Server {
    pub(super) fn accept_control(&mut self, key: usize, now: Instant) {
        if self.accept_paused_until.is_some() {
            return self.paused_listeners.push(key);
        }
        loop {
            let Some(Conn::Listener(listener)) = self.conns.get(key) else {
                return;
            };
            let implicit_tls = listener.implicit_tls;
            match listener.socket.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, implicit_tls, now),
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
    pub(super) fn pause_accepting(&mut self, key: usize, error: &io::Error, now: Instant) {
        if self.accept_paused_until.is_none() {
            warn!("cannot accept: {error}; pausing new connections for {ACCEPT_PAUSE_MS} ms");
            self.accept_paused_until = Some(now + Duration::from_millis(ACCEPT_PAUSE_MS));
        }
        self.paused_listeners.push(key);
    }

    pub(super) fn resume_accepting(&mut self, now: Instant) {
        if self.accept_paused_until.is_none_or(|until| now < until) {
            return;
        }
        self.accept_paused_until = None;
        let mut listeners = std::mem::take(&mut self.paused_listeners);
        listeners.sort_unstable();
        listeners.dedup();
        for key in listeners {
            // Edge-triggered: connections already waiting raise no new event, so try now.
            self.service(key, now);
        }
    }

    /// A user admitted: its rates (or the flags') from this login on.
    pub(super) fn set_user_rates(
        &mut self,
        key: usize,
        (down, up): (Option<u64>, Option<u64>),
        now: Instant,
    ) {
        if let Some(control) = self.control(key) {
            control.rates = PerDirection::buckets(down, up, now);
        }
    }

    pub(super) fn admit(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        implicit_tls: bool,
        now: Instant,
    ) {
        let ip = peer.ip().to_canonical();
        let config = &self.shared.config;
        if let Some(text) = self.counts.refusal(config, ip) {
            return admission::refuse(&mut stream, peer, text);
        }
        self.start_session(stream, peer, implicit_tls, None, now);
    }

    /// Starts the session of an admitted connection (a worker's: under the supervisor's
    /// `ticket`, set before its first command is read); its slab key, None when it could not
    /// start.
    // Without the `tls` feature no session keys can exist, and the compiler says so.
    #[cfg_attr(not(feature = "tls"), allow(unreachable_code, unused_variables))]
    pub(super) fn start_session(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        implicit_tls: bool,
        ticket: Option<u64>,
        now: Instant,
    ) -> Option<usize> {
        let ip = peer.ip().to_canonical();
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(e) => {
                debug!("connection from {peer} gone before it started: {e}");
                return None;
            }
        };
        // Replies are small and interactive: Nagle would add tens of milliseconds to each.
        let _ = stream.set_nodelay(true);
        let _ = sys::set_oob_inline(stream.as_raw_fd());
        // Implicit FTPS: the session is under TLS before its first byte (the 220 waits in rustls
        // until the handshake is done).
        let tls = match (implicit_tls, &self.tls_keys) {
            (true, Some(keys)) => Some(keys.for_session()),
            _ => None,
        };
        let mut stream = match &tls {
            None => Stream::plain(stream),
            Some(keys) => match keys.control() {
                Ok(layer) => Stream::with_tls(stream, layer),
                Err(e) => {
                    error!("cannot start TLS for {peer}: {e}");
                    return None;
                }
            },
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = stream.register(self.poll.registry(), Token(key), Interest::READABLE) {
            error!("cannot register {peer}: {e}");
            return None;
        }
        let mut session = Session::new(self.shared.clone(), key, peer, local, now);
        if tls.is_some() {
            session.handle_implicit_tls();
        }
        entry.insert(Conn::Control(Box::new(Control {
            stream,
            session,
            peer_ip: ip,
            data_key: None,
            task_key: None,
            readable: true,
            writable_interest: false,
            finished: false,
            poisoned: false,
            tls,
            rates: PerDirection::session(&self.shared.config.rates, now),
            user: None,
            start_tls: false,
            ticket,
            pending_rates: None,
            moved: Totals::default(),
        })));
        self.counts.add(ip);
        info!("[#{key}] connection from {peer}");
        self.service_control(key, now);
        Some(key)
    }

    /// Reads commands, carries out the session's actions, writes its replies, and sets its
    /// next deadline.
    pub(super) fn service_control(&mut self, key: usize, now: Instant) {
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
            if !control.readable || !control.session.wants_input() || control.start_tls {
                break;
            }
            if reads == CONTROL_READS_PER_TURN {
                // Turn over: the others go first, then this client is read again.
                self.runnable.push_back(key);
                break;
            }
            reads += 1;
            // The loop's one read buffer, taken for this read (zeroed once at start: a fresh
            // 4 KiB array per read was half of the loop's own instructions per session).
            let mut buf = std::mem::take(&mut self.read_buf);
            let read = control.stream.read(&mut buf);
            match read {
                Ok(0) => {
                    debug!("[#{key}] client closed the control connection");
                    control.readable = false;
                    self.with_session(key, Session::handle_hangup);
                }
                Ok(n) => {
                    self.with_session(key, |session| session.handle_input(&buf[..n], now));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => control.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("[#{key}] control connection error: {e}");
                    control.readable = false;
                    self.with_session(key, Session::handle_hangup);
                }
            }
            self.read_buf = buf;
        }
        if let Some(control) = self.control(key) {
            let deadline = control.session.poll_timeout();
            self.timers.set(key, deadline);
        }
    }

    /// Writes pending replies; false if the connection is closing or gone.
    fn flush(&mut self, key: usize, now: Instant) -> bool {
        let Some(Conn::Control(control)) = self.conns.get_mut(key) else {
            return false;
        };
        if control.poisoned {
            return false;
        }
        while !control.session.output().is_empty() {
            match control.stream.write(control.session.output()) {
                Ok(n) => control.session.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("[#{key}] control connection error: {e}");
                    self.with_session(key, Session::handle_hangup);
                    // The session asked to close (or to drain an upload): run_actions next.
                    return true;
                }
            }
        }
        if control.finished {
            // What fits in the socket buffer is sent (under TLS the shutdown sends the records
            // still held, then close_notify); we do not wait for a slow reader.
            let _ = control.stream.shutdown();
            self.timers.set(key, None);
            self.to_close.push(key);
            return false;
        }
        if control.start_tls && control.session.output().is_empty() {
            if let Err(e) = self.start_tls(key) {
                error!("[#{key}] cannot start TLS: {e}");
                self.to_close.push(key);
                return false;
            }
            return true;
        }
        // Records the TLS layer could not send yet count as pending output too.
        let sent = match control.stream.flush_pending() {
            Ok(sent) => sent,
            Err(e) => {
                debug!("[#{key}] control connection error: {e}");
                self.with_session(key, Session::handle_hangup);
                return true;
            }
        };
        let pending = !control.session.output().is_empty() || !sent;
        if pending != control.writable_interest {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = control
                .stream
                .reregister(self.poll.registry(), Token(key), interest)
            {
                error!("[#{key}] reregister failed: {e}");
                self.to_close.push(key);
                return false;
            }
            control.writable_interest = pending;
        }
        if !pending {
            // The client reads again: run any lines held back while it did not.
            self.with_session(key, |session| session.handle_input(&[], now));
        }
        true
    }

    /// The 234 of AUTH TLS is out: put the TLS layer on, so the client's handshake (the next
    /// bytes it sends) goes to rustls.
    #[cfg_attr(not(feature = "tls"), allow(unreachable_code, unused_variables))]
    fn start_tls(&mut self, key: usize) -> io::Result<()> {
        let keys = self
            .tls_keys
            .as_ref()
            .ok_or_else(|| io::Error::other("no certificate loaded"))?
            .for_session();
        let layer = keys.control()?;
        let Some(control) = self.control(key) else {
            return Ok(());
        };
        control.stream.start_tls(layer);
        control.tls = Some(keys);
        control.start_tls = false;
        self.with_session(key, Session::handle_tls_started);
        Ok(())
    }

    fn run_actions(&mut self, key: usize, now: Instant) {
        driver::run_actions(&mut SessionHost { server: self, key }, now);
    }
}

/// The loop as the host of session `key` (session/driver.rs holds the contract).
struct SessionHost<'a> {
    server: &'a mut Server,
    key: usize,
}

impl Host for SessionHost<'_> {
    fn with_session<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        self.server.with_session(self.key, f)
    }

    fn record(&mut self, record: TransferRecord, now: Instant) {
        if let Some(control) = self.server.control(self.key) {
            control.moved.add_record(&record);
        }
        self.server.log_transfer(&record, now);
    }

    fn open_passive(&mut self) -> io::Result<SocketAddr> {
        self.server.open_passive(self.key)
    }

    fn connect_data(&mut self, addr: SocketAddr, job: Job, now: Instant) {
        self.server.connect_data(self.key, addr, job, now);
    }

    fn passive_transfer(&mut self, job: Job, now: Instant) {
        self.server.start_passive_transfer(self.key, job, now);
    }

    fn close_data(&mut self) {
        self.server.close_data(self.key);
    }

    fn run_task(&mut self, task: Task) {
        self.server.start_task(self.key, task);
    }

    fn cancel_task(&mut self) {
        self.server.cancel_task(self.key);
    }

    fn start_tls(&mut self) {
        if let Some(control) = self.server.control(self.key) {
            control.start_tls = true;
        }
    }

    fn admit_user(&mut self, name: Box<str>, limits: Limits, now: Instant) -> Option<Admission> {
        let rates = (limits.rate_down, limits.rate_up);
        if let Some(ticket) = self.server.control(self.key).and_then(|c| c.ticket) {
            // A worker: the supervisor counts the account over every worker and answers later
            // (`Server::user_admitted`).
            if let Some(control) = self.server.control(self.key) {
                control.pending_rates = Some(rates);
            }
            self.server.ask_admission(ticket, name, limits.max_sessions);
            return None;
        }
        let admission = self.server.admit_user(self.key, name, limits.max_sessions);
        if let Admission::Admitted = admission {
            self.server.set_user_rates(self.key, rates, now);
        }
        Some(admission)
    }

    // flush() closes the connection after sending what it can.
    fn close(&mut self) {
        if let Some(control) = self.server.control(self.key) {
            control.finished = true;
        }
    }
}
