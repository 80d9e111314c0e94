//! Data connections: passive listeners (PASV/EPSV), non-blocking connects (PORT/EPRT, from
//! port 20 with --port-20), and the data connection itself, whose explicit state says what it
//! waits for:
//!
//! `Connecting` (PORT/EPRT) -> `Handshaking` (TLS; passes at once for plain) -> `Ready` (no
//! transfer yet: the client connected before its RETR/STOR/LIST) or `Transferring` -> `Closing`
//! (an orderly shutdown that may take turns, e.g. a TLS close_notify) -> removed, and only then
//! the session hears `Done`. Every change goes through `DataConn::set_state`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use log::{debug, error, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};

use super::stream::{Shutdown, Stream};
use super::{is_out_of_resources, Conn, Server};
use crate::config::ACTIVE_DATA_PORT;
use crate::session::DataEvent;
use crate::sys;
use crate::transfer::{Job, Step, TransferError};

/// A passive listener and the transfer waiting for the client to connect to it, if any.
pub(super) struct Passive {
    listener: TcpListener,
    owner: usize,
    job: Option<Job>,
}

pub(super) struct DataConn {
    stream: Stream,
    pub(super) owner: usize,
    state: DataState,
    job: Option<Job>,
    /// A rate pool (net/pace.rs) gave this connection its turn: it may draw on it now.
    pub(super) pace_turn: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataState {
    Connecting,
    Handshaking,
    Ready,
    Transferring,
    /// The transfer moved `bytes`; the stream is closing in order before the session is told.
    Closing {
        bytes: u64,
    },
}

impl DataConn {
    fn set_state(&mut self, state: DataState) {
        debug!(
            "[#{}] data connection: {:?} => {state:?}",
            self.owner, self.state
        );
        self.state = state;
    }
}

impl Server {
    /// Binds a passive listener on the control connection's local address, in --pasv-ports.
    pub(super) fn open_passive(&mut self, owner: usize) -> io::Result<SocketAddr> {
        let Some(control) = self.control(owner) else {
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
        entry.insert(Conn::Passive(Box::new(Passive {
            listener,
            owner,
            job: None,
        })));
        if let Some(control) = self.control(owner) {
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

    pub(super) fn accept_data(&mut self, key: usize, now: Instant) {
        if self.accept_paused_until.is_some() {
            return self.paused_listeners.push(key);
        }
        loop {
            let Some(Conn::Passive(passive)) = self.conns.get(key) else {
                return;
            };
            let owner = passive.owner;
            let (stream, peer) = match passive.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_out_of_resources(&e) => return self.pause_accepting(key, &e, now),
                Err(e) => return warn!("[#{owner}] passive accept failed: {e}"),
            };
            let Some(control) = self.control(owner) else {
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
            let Some(Conn::Passive(mut passive)) = self.conns.try_remove(key) else {
                return;
            };
            let _ = self.poll.registry().deregister(&mut passive.listener);
            let data_key = self.insert_data(owner, stream, passive.job, DataState::Handshaking);
            if let Some(control) = self.control(owner) {
                control.data_key = data_key;
            }
            match data_key {
                Some(data_key) => {
                    self.with_session(owner, |s| s.handle_data_event(DataEvent::Connected, now));
                    self.service_data(data_key, now);
                }
                None => {
                    let error = io::Error::other("cannot register the data connection");
                    self.session_event(owner, DataEvent::ConnectFailed(error), now);
                }
            }
            return self.service_control(owner, now);
        }
    }

    fn insert_data(
        &mut self,
        owner: usize,
        stream: TcpStream,
        job: Option<Job>,
        state: DataState,
    ) -> Option<usize> {
        // PROT P: the data connection is TLS too, under the control connection's session
        // store, and its handshake starts at once (before the transfer command, if need be).
        let protected = self
            .with_session(owner, |session| session.protects_data())
            .unwrap_or(false);
        let mut stream = match self.control(owner).and_then(|control| control.tls.as_ref()) {
            Some(keys) if protected => match keys.data() {
                Ok(layer) => Stream::with_tls(stream, layer),
                Err(e) => {
                    error!("[#{owner}] cannot start TLS on a data connection: {e}");
                    return None;
                }
            },
            _ => Stream::plain(stream),
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = stream.register(self.poll.registry(), Token(key), interest) {
            error!("[#{owner}] cannot register a data connection: {e}");
            return None;
        }
        entry.insert(Conn::Data(Box::new(DataConn {
            stream,
            owner,
            state,
            job,
            pace_turn: false,
        })));
        Some(key)
    }

    /// PORT/EPRT: a non-blocking connect; `service_data` completes it when the socket is writable.
    pub(super) fn connect_data(&mut self, owner: usize, addr: SocketAddr, job: Job, now: Instant) {
        let result = self.active_socket(owner, addr).and_then(|stream| {
            self.insert_data(owner, stream, Some(job), DataState::Connecting)
                .ok_or_else(|| io::Error::other("cannot register the data connection"))
        });
        match result {
            Ok(data_key) => {
                if let Some(control) = self.control(owner) {
                    control.data_key = Some(data_key);
                }
                debug!("[#{owner}] connecting to {addr}");
            }
            Err(e) => {
                self.with_session(owner, |s| {
                    s.handle_data_event(DataEvent::ConnectFailed(e), now)
                });
            }
        }
    }

    /// PORT/EPRT's connecting socket: with --port-20 from port 20 of the control connection's
    /// local address; from a port the kernel picks otherwise, and also when port 20 is refused
    /// for this one connection (a listener holds it, the same client port is still in
    /// TIME_WAIT): the transfer matters more than its source port.
    fn active_socket(&mut self, owner: usize, addr: SocketAddr) -> io::Result<TcpStream> {
        if !self.shared.config.port_20 {
            return TcpStream::connect(addr);
        }
        let Some(control) = self.control(owner) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let local = match control.stream.local_addr()? {
            // A dual-stack listener (one inherited from systemd) names IPv4 clients this way.
            SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => {
                SocketAddr::new(v6.ip().to_canonical(), ACTIVE_DATA_PORT)
            }
            mut local => {
                local.set_port(ACTIVE_DATA_PORT);
                local
            }
        };
        if local.is_ipv4() == addr.is_ipv4() {
            match sys::connect_from(local, addr) {
                Ok(stream) => return Ok(stream),
                Err(e) => debug!("[#{owner}] cannot connect from {local}: {e}; from any port"),
            }
        }
        TcpStream::connect(addr)
    }

    pub(super) fn start_passive_transfer(&mut self, owner: usize, job: Job, now: Instant) {
        let data_key = self.control(owner).and_then(|control| control.data_key);
        match data_key.and_then(|key| self.conns.get_mut(key)) {
            Some(Conn::Data(data)) => {
                data.job = Some(job);
                if data.state == DataState::Ready {
                    data.set_state(DataState::Transferring);
                }
                self.runnable.extend(data_key);
            }
            Some(Conn::Passive(passive)) => passive.job = Some(job),
            // The passive listener timed out before the command came.
            _ => {
                let error = io::Error::new(io::ErrorKind::NotConnected, "no passive listener");
                self.with_session(owner, |s| {
                    s.handle_data_event(DataEvent::ConnectFailed(error), now)
                });
            }
        }
    }

    /// Moves the data connection on from its state, as far as it can go this turn.
    pub(super) fn service_data(&mut self, key: usize, now: Instant) {
        let Some(Conn::Data(data)) = self.conns.get_mut(key) else {
            return;
        };
        let owner = data.owner;
        if data.state == DataState::Connecting {
            match connect_result(data.stream.tcp()) {
                Ok(None) => return,
                Ok(Some(())) => {
                    data.set_state(DataState::Handshaking);
                    self.with_session(owner, |s| s.handle_data_event(DataEvent::Connected, now));
                }
                Err(e) => {
                    self.remove_data(owner, key);
                    return self.session_event(owner, DataEvent::ConnectFailed(e), now);
                }
            }
        }
        let Some(Conn::Data(data)) = self.conns.get_mut(key) else {
            return;
        };
        if data.state == DataState::Handshaking {
            match data.stream.handshake() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    debug!("[#{owner}] data connection handshake failed: {e}");
                    self.remove_data(owner, key);
                    let error = TransferError::Network(e);
                    return self.session_event(owner, DataEvent::Failed(error), now);
                }
            }
            // SECURITY: a data connection that did not resume its control connection's TLS
            // session may come from someone else (RFC 4217 10.2): refused, by default.
            let reuse_required = self
                .shared
                .config
                .tls
                .as_ref()
                .map(|tls| tls.session_reuse_required);
            if data.stream.is_fresh_tls() && reuse_required == Some(true) {
                warn!("[#{owner}] data connection refused: it did not resume the TLS session");
                // An orderly close (close_notify), so the client reads a clean end and then
                // the 522, rather than a handshake cut short.
                let _ = data.stream.shutdown();
                self.remove_data(owner, key);
                return self.session_event(owner, DataEvent::TlsNotResumed, now);
            }
            let next = if data.job.is_some() {
                DataState::Transferring
            } else {
                DataState::Ready
            };
            data.set_state(next);
        }
        match data.state {
            DataState::Transferring => self.pump(key, now),
            DataState::Closing { bytes } => self.finish_data(key, bytes, now),
            DataState::Connecting | DataState::Handshaking | DataState::Ready => {}
        }
    }

    /// One bounded step of the transfer, under `catch_unwind` like every session call.
    fn pump(&mut self, key: usize, now: Instant) {
        let Some(Conn::Data(data)) = self.conns.get_mut(key) else {
            return;
        };
        let owner = data.owner;
        let Some(job) = data.job.as_mut() else {
            return;
        };
        let (direction, before) = (job.direction(), job.bytes());
        let turn = std::mem::take(&mut data.pace_turn);
        // --max-rate-*: a smaller budget, or a wait on a timer or in a pool's queue.
        let Some(budget) = self.pace_budget(key, owner, direction, turn, now) else {
            return;
        };
        let Some(Conn::Data(data)) = self.conns.get_mut(key) else {
            return;
        };
        let Some(job) = data.job.as_mut() else {
            return;
        };
        let stream = &mut data.stream;
        let Ok(step) = catch_unwind(AssertUnwindSafe(|| job.pump(stream, budget))) else {
            self.remove_data(owner, key);
            return self.abort_session(owner, "a transfer panicked");
        };
        let bytes = job.bytes();
        self.pace_charge(owner, direction, bytes - before);
        let Some(Conn::Data(data)) = self.conns.get_mut(key) else {
            return;
        };
        match step {
            Ok(Step::Blocked) => self.session_event(owner, DataEvent::Progress { bytes }, now),
            Ok(Step::Yield) => {
                self.runnable.push_back(key);
                self.session_event(owner, DataEvent::Progress { bytes }, now);
            }
            Ok(Step::Done) => {
                data.job = None;
                data.set_state(DataState::Closing { bytes });
                self.finish_data(key, bytes, now);
            }
            Err(e) => {
                self.remove_data(owner, key);
                self.session_event(owner, DataEvent::Failed(e), now);
            }
        }
    }

    /// Closes the stream in order; once that is done the session hears the transfer's end.
    fn finish_data(&mut self, key: usize, bytes: u64, now: Instant) {
        let Some(Conn::Data(data)) = self.conns.get_mut(key) else {
            return;
        };
        let owner = data.owner;
        let event = match data.stream.shutdown() {
            Ok(Shutdown::Pending) => return,
            Ok(Shutdown::Done) => DataEvent::Done { bytes },
            Err(e) => DataEvent::Failed(TransferError::Network(e)),
        };
        self.remove_data(owner, key);
        self.session_event(owner, event, now);
    }

    fn session_event(&mut self, owner: usize, event: DataEvent, now: Instant) {
        if self
            .with_session(owner, |s| s.handle_data_event(event, now))
            .is_some()
        {
            self.service_control(owner, now);
        }
    }

    /// Drops the session's data connection or passive listener at once. Data sockets are not
    /// deferred like control ones: a stale event for a reused key finds `WouldBlock` and nothing
    /// else, and a connecting socket treats "not connected yet" as "wait".
    pub(super) fn close_data(&mut self, owner: usize) {
        if let Some(key) = self.control(owner).and_then(|control| control.data_key) {
            self.remove_data(owner, key);
        }
    }

    fn remove_data(&mut self, owner: usize, key: usize) {
        match self.conns.get(key) {
            Some(Conn::Data(data)) if data.owner == owner => {}
            Some(Conn::Passive(passive)) if passive.owner == owner => {}
            _ => return,
        }
        match self.conns.remove(key) {
            Conn::Data(mut data) => data.stream.deregister(self.poll.registry()),
            Conn::Passive(mut passive) => {
                let _ = self.poll.registry().deregister(&mut passive.listener);
            }
            _ => {}
        }
        self.timers.set(key, None);
        self.pace_forget(key);
        if let Some(control) = self.control(owner) {
            if control.data_key == Some(key) {
                control.data_key = None;
            }
        }
    }
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
