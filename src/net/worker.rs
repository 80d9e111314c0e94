//! --workers: a worker's side of its channel to the supervisor. The supervisor has admitted
//! each connection that arrives here (the limits count every worker's sessions there); the
//! worker serves it like any other and says when it ends. The channel's end (the supervisor is
//! gone) stops the worker as SIGTERM would.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::time::Instant;

use log::{error, info, warn};
use mio::Token;

use super::channel::{Channel, ToSupervisor, ToWorker, MAX_MESSAGE_BYTES};
use super::{Conn, Server};
use crate::log::status::Totals;
use crate::reply;
use crate::session::Admission;
use crate::sys;

/// The channel's token: never a slab key.
pub(super) const CHANNEL: Token = Token(usize::MAX - 1);

/// The worker's end of its channel; `closed` once the supervisor has closed its end.
pub(super) struct WorkerChannel {
    channel: Channel,
    closed: bool,
}

impl Server {
    /// Becomes worker `id` of a supervisor at the other end of `channel`.
    pub fn set_channel(&mut self, channel: OwnedFd) -> io::Result<()> {
        self.channel = Some(WorkerChannel {
            channel: Channel::register(channel, CHANNEL, self.poll.registry())?,
            closed: false,
        });
        Ok(())
    }

    /// The channel is readable or writable: take every message waiting, send what waits.
    pub(super) fn service_channel(&mut self, now: Instant) {
        let mut buf = [0u8; MAX_MESSAGE_BYTES];
        loop {
            let Some(channel) = self.channel.as_ref().filter(|channel| !channel.closed) else {
                return;
            };
            let (len, fd) = match sys::recv_message(&channel.channel.socket, &mut buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ECONNRESET: it died with messages of ours unread. Edge-triggered, so no other
                // event would come: any error is the end.
                Err(e) => {
                    warn!("supervisor channel: {e}");
                    self.supervisor_gone(now);
                    return;
                }
            };
            if len == 0 {
                self.supervisor_gone(now);
                return;
            }
            match ToWorker::decode(&buf[..len]) {
                Some(ToWorker::Session {
                    ticket,
                    implicit_tls,
                }) => self.take_session(ticket, fd, implicit_tls, now),
                Some(ToWorker::Status) => {
                    let status = self.status(now);
                    self.tell_supervisor(ToSupervisor::Status(status));
                }
                Some(ToWorker::Admission {
                    ticket,
                    admitted,
                    limit,
                }) => {
                    let admission = match admitted {
                        true => Admission::Admitted,
                        false => Admission::TooMany {
                            limit: limit as usize,
                        },
                    };
                    self.user_admitted(ticket, admission, now);
                }
                None => error!("supervisor channel: a message of {len} bytes not understood"),
            }
        }
        self.flush_channel();
    }

    /// A connection the supervisor admitted under `ticket`.
    fn take_session(&mut self, ticket: u64, fd: Option<OwnedFd>, implicit_tls: bool, now: Instant) {
        let Some(fd) = fd else {
            warn!("a connection handed over came without its descriptor (out of descriptors?)");
            return self.session_ended(Some(ticket), Totals::default());
        };
        let mut stream = std::net::TcpStream::from(fd);
        if self.stop_deadline.is_some() {
            // Sent before the supervisor knew: it is stopping too.
            let _ = stream.write(&reply::render(
                reply::SERVICE_NOT_AVAILABLE,
                "Server shutting down.",
            ));
            return self.session_ended(Some(ticket), Totals::default());
        }
        let peer = match stream.peer_addr() {
            Ok(peer) => peer,
            Err(e) => {
                info!("a connection handed over was gone before it started: {e}");
                return self.session_ended(Some(ticket), Totals::default());
            }
        };
        let stream = mio::net::TcpStream::from_std(stream);
        if self
            .start_session(stream, peer, implicit_tls, Some(ticket), now)
            .is_none()
        {
            self.session_ended(Some(ticket), Totals::default());
        }
    }

    /// A users-file login on session `ticket`: the supervisor counts the account over every
    /// worker and answers with `ToWorker::Admission`.
    pub(super) fn ask_admission(&mut self, ticket: u64, name: Box<str>, limit: Option<usize>) {
        self.tell_supervisor(ToSupervisor::AdmitUser {
            ticket,
            limit,
            name,
        });
    }

    /// The supervisor's answer for the login of session `ticket` (gone meanwhile: nothing).
    pub(super) fn user_admitted(&mut self, ticket: u64, admission: Admission, now: Instant) {
        let Some(key) = self.conns.iter().find_map(|(key, conn)| match conn {
            Conn::Control(control) if control.ticket == Some(ticket) => Some(key),
            _ => None,
        }) else {
            return;
        };
        let rates = self
            .control(key)
            .and_then(|control| control.pending_rates.take());
        if let (Admission::Admitted, Some(rates)) = (admission, rates) {
            self.set_user_rates(key, rates, now);
        }
        self.with_session(key, |session| session.handle_admission(admission, now));
        self.service_control(key, now);
    }

    /// A session ended: its ticket and its bytes go back to the supervisor (a worker's
    /// session), or its bytes into this server's totals.
    pub(super) fn session_ended(&mut self, ticket: Option<u64>, moved: Totals) {
        match ticket {
            Some(ticket) => self.tell_supervisor(ToSupervisor::Ended { ticket, moved }),
            None => self.totals.merge(moved),
        }
    }

    fn tell_supervisor(&mut self, message: ToSupervisor) {
        let Some(end) = self.channel.as_mut().filter(|end| !end.closed) else {
            return;
        };
        if let Err(e) = end.channel.send(self.poll.registry(), message.encode()) {
            // The supervisor is gone (EPIPE): the read side says so too.
            error!("supervisor channel: {e}");
        }
    }

    /// Sends what waits; a full socket waits for its writable event.
    fn flush_channel(&mut self) {
        let Some(end) = self.channel.as_mut().filter(|end| !end.closed) else {
            return;
        };
        if let Err(e) = end.channel.flush(self.poll.registry()) {
            error!("supervisor channel: {e}");
        }
    }

    /// The supervisor closed its end (it died, or was killed): stop as at SIGTERM.
    fn supervisor_gone(&mut self, now: Instant) {
        let Some(end) = self.channel.as_mut() else {
            return;
        };
        end.closed = true;
        end.channel.deregister(self.poll.registry());
        if self.stop_deadline.is_none() {
            warn!("the supervisor is gone: stopping");
            self.begin_stop(now);
        }
    }
}
