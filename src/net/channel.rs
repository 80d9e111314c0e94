//! --workers: the messages between the supervisor and a worker, one SOCK_SEQPACKET message each
//! (sys::send_message / recv_message), in a fixed little-endian layout. A control connection
//! travels as its descriptor (SCM_RIGHTS) beside a `Session` message; the supervisor reads no
//! byte of it. The ticket names the session in both processes, so its end releases its count.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::config::MAX_LINE_BYTES;
use crate::log::status::{Status, Totals};
use crate::sys;

/// The largest message either way: an `AdmitUser` with the longest name a USER line can hold.
pub(super) const MAX_MESSAGE_BYTES: usize = 17 + MAX_LINE_BYTES;
/// A status report: tag and eight u64.
const STATUS_BYTES: usize = 1 + 8 * 8;

/// Supervisor -> worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToWorker {
    /// Serve the connection attached: admitted under `ticket`.
    Session { ticket: u64, implicit_tls: bool },
    /// SIGUSR1: report your sessions and bytes.
    Status,
    /// The answer to `ToSupervisor::AdmitUser`: the session may log in, or its account has
    /// `limit` sessions already.
    Admission {
        ticket: u64,
        admitted: bool,
        limit: u64,
    },
}

/// Worker -> supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ToSupervisor {
    /// The session of `ticket` gave the password of users-file account `name`: may it have
    /// one more logged-in session (`limit`: its max_sessions; None: no limit, just count)?
    AdmitUser {
        ticket: u64,
        limit: Option<usize>,
        name: Box<str>,
    },
    /// The session admitted under `ticket` has ended (or never started), having moved `moved`
    /// in its transfers: the supervisor keeps the totals of ended sessions, so a worker that
    /// dies takes only its running sessions' bytes with it.
    Ended { ticket: u64, moved: Totals },
    /// The answer to `ToWorker::Status` (its uptime is not used).
    Status(Status),
}

/// One end of a channel (registered READABLE under `token`), with the messages its socket had
/// no room for yet: a worker busy for a moment delays an answer, it never loses it. What can
/// wait is bounded by what asks (one admission per session, one status round at a time).
pub(super) struct Channel {
    pub(super) socket: OwnedFd,
    token: Token,
    outbox: VecDeque<Vec<u8>>,
    /// A send of a connection found the socket full (`block`): wanted writable until `writable`.
    blocked: bool,
    writable_interest: bool,
}

impl Channel {
    /// Registers `socket` (READABLE) under `token`.
    pub(super) fn register(
        socket: OwnedFd,
        token: Token,
        registry: &Registry,
    ) -> io::Result<Channel> {
        registry.register(
            &mut SourceFd(&socket.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        Ok(Channel {
            socket,
            token,
            outbox: VecDeque::new(),
            blocked: false,
            writable_interest: false,
        })
    }

    /// Sends `message` after those waiting; with the socket full it waits for `flush`.
    /// Err: the other end is gone.
    pub(super) fn send(&mut self, registry: &Registry, message: Vec<u8>) -> io::Result<()> {
        self.outbox.push_back(message);
        self.flush(registry)
    }

    /// Sends what waits, oldest first, and wants the writable event while some still waits.
    /// Err: the other end is gone (what waited is dropped).
    pub(super) fn flush(&mut self, registry: &Registry) -> io::Result<()> {
        while let Some(message) = self.outbox.front() {
            match sys::send_message(&self.socket, message, None) {
                Ok(()) => {
                    self.outbox.pop_front();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.outbox.clear();
                    return Err(e);
                }
            }
        }
        self.update_interest(registry)
    }

    /// The socket had no room for a message sent past the outbox (a connection's descriptor):
    /// wants the writable event. True when it was not blocked already.
    pub(super) fn block(&mut self, registry: &Registry) -> io::Result<bool> {
        let newly = !std::mem::replace(&mut self.blocked, true);
        self.update_interest(registry)?;
        Ok(newly)
    }

    pub(super) fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// The writable event came: sends what waits and unblocks. True when it was blocked.
    pub(super) fn writable(&mut self, registry: &Registry) -> io::Result<bool> {
        let was = std::mem::take(&mut self.blocked);
        self.flush(registry)?;
        Ok(was)
    }

    fn update_interest(&mut self, registry: &Registry) -> io::Result<()> {
        let wanted = self.blocked || !self.outbox.is_empty();
        if wanted != self.writable_interest {
            let interest = match wanted {
                true => Interest::READABLE | Interest::WRITABLE,
                false => Interest::READABLE,
            };
            registry.reregister(
                &mut SourceFd(&self.socket.as_raw_fd()),
                self.token,
                interest,
            )?;
            self.writable_interest = wanted;
        }
        Ok(())
    }

    /// Messages waiting for room.
    pub(super) fn waiting(&self) -> usize {
        self.outbox.len()
    }

    pub(super) fn deregister(&self, registry: &Registry) {
        let _ = registry.deregister(&mut SourceFd(&self.socket.as_raw_fd()));
    }
}

const SESSION: u8 = b'C';
const STATUS: u8 = b'S';
const ENDED: u8 = b'E';
const ADMISSION: u8 = b'A';
const ADMIT_USER: u8 = b'U';

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl ToWorker {
    pub(super) fn encode(self) -> Vec<u8> {
        match self {
            ToWorker::Session {
                ticket,
                implicit_tls,
            } => {
                let mut bytes = vec![SESSION];
                bytes.extend_from_slice(&ticket.to_le_bytes());
                bytes.push(implicit_tls as u8);
                bytes
            }
            ToWorker::Status => vec![STATUS],
            ToWorker::Admission {
                ticket,
                admitted,
                limit,
            } => {
                let mut bytes = vec![ADMISSION];
                bytes.extend_from_slice(&ticket.to_le_bytes());
                bytes.push(admitted as u8);
                bytes.extend_from_slice(&limit.to_le_bytes());
                bytes
            }
        }
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<ToWorker> {
        match (bytes.first()?, bytes.len()) {
            (&SESSION, 10) => Some(ToWorker::Session {
                ticket: u64_at(bytes, 1)?,
                implicit_tls: bytes[9] != 0,
            }),
            (&STATUS, 1) => Some(ToWorker::Status),
            (&ADMISSION, 18) => Some(ToWorker::Admission {
                ticket: u64_at(bytes, 1)?,
                admitted: bytes[9] != 0,
                limit: u64_at(bytes, 10)?,
            }),
            _ => None,
        }
    }
}

impl ToSupervisor {
    pub(super) fn encode(&self) -> Vec<u8> {
        match self {
            ToSupervisor::AdmitUser {
                ticket,
                limit,
                name,
            } => {
                let mut bytes = vec![ADMIT_USER];
                bytes.extend_from_slice(&ticket.to_le_bytes());
                let limit = limit.map_or(u64::MAX, |limit| limit as u64);
                bytes.extend_from_slice(&limit.to_le_bytes());
                bytes.extend_from_slice(name.as_bytes());
                bytes
            }
            ToSupervisor::Ended { ticket, moved } => {
                let mut bytes = vec![ENDED];
                for n in [*ticket, moved.bytes_in, moved.bytes_out] {
                    bytes.extend_from_slice(&n.to_le_bytes());
                }
                bytes
            }
            ToSupervisor::Status(status) => {
                let mut bytes = vec![STATUS];
                for n in [
                    status.logging_in as u64,
                    status.idle as u64,
                    status.transferring as u64,
                    status.totals.bytes_in,
                    status.totals.bytes_out,
                    status.upload_fifo.is_some() as u64,
                    status.upload_fifo.map_or(0, |(queued, _)| queued as u64),
                    status.upload_fifo.map_or(0, |(_, dropped)| dropped),
                ] {
                    bytes.extend_from_slice(&n.to_le_bytes());
                }
                bytes
            }
        }
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<ToSupervisor> {
        match (bytes.first()?, bytes.len()) {
            (&ADMIT_USER, 17..) => Some(ToSupervisor::AdmitUser {
                ticket: u64_at(bytes, 1)?,
                limit: Some(u64_at(bytes, 9)?)
                    .filter(|&limit| limit != u64::MAX)
                    .map(|limit| limit as usize),
                name: std::str::from_utf8(&bytes[17..]).ok()?.into(),
            }),
            (&ENDED, 25) => Some(ToSupervisor::Ended {
                ticket: u64_at(bytes, 1)?,
                moved: Totals {
                    bytes_in: u64_at(bytes, 9)?,
                    bytes_out: u64_at(bytes, 17)?,
                },
            }),
            (&STATUS, STATUS_BYTES) => Some(ToSupervisor::Status(Status {
                logging_in: u64_at(bytes, 1)? as usize,
                idle: u64_at(bytes, 9)? as usize,
                transferring: u64_at(bytes, 17)? as usize,
                totals: Totals {
                    bytes_in: u64_at(bytes, 25)?,
                    bytes_out: u64_at(bytes, 33)?,
                },
                uptime: Default::default(),
                upload_fifo: (u64_at(bytes, 41)? != 0)
                    .then(|| Some((u64_at(bytes, 49)? as usize, u64_at(bytes, 57)?)))
                    .flatten(),
            })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_round_trip_and_junk_is_refused() {
        for message in [
            ToWorker::Session {
                ticket: u64::MAX - 3,
                implicit_tls: true,
            },
            ToWorker::Session {
                ticket: 0,
                implicit_tls: false,
            },
            ToWorker::Status,
            ToWorker::Admission {
                ticket: 5,
                admitted: false,
                limit: 2,
            },
        ] {
            assert_eq!(ToWorker::decode(&message.encode()), Some(message));
        }
        let status = Status {
            logging_in: 1,
            idle: 2,
            transferring: 3,
            totals: Totals {
                bytes_in: 1 << 40,
                bytes_out: 5,
            },
            uptime: Default::default(),
            upload_fifo: Some((3, 9)),
        };
        for message in [
            ToSupervisor::AdmitUser {
                ticket: 9,
                limit: Some(3),
                name: "alice".into(),
            },
            ToSupervisor::AdmitUser {
                ticket: 10,
                limit: None,
                name: "b\u{e9}".into(),
            },
            ToSupervisor::Ended {
                ticket: 77,
                moved: Totals {
                    bytes_in: 3,
                    bytes_out: u64::MAX,
                },
            },
            ToSupervisor::Status(status),
            ToSupervisor::Status(Status {
                upload_fifo: None,
                ..status
            }),
        ] {
            assert_eq!(ToSupervisor::decode(&message.encode()), Some(message));
        }
        assert_eq!(ToWorker::decode(b""), None);
        assert_eq!(ToWorker::decode(b"C123"), None);
        let mut ended = b"E\x01\0\0\0\0\0\0\0".to_vec();
        ended.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            ToSupervisor::decode(&ended),
            Some(ToSupervisor::Ended {
                ticket: 1,
                moved: Totals {
                    bytes_in: 7,
                    bytes_out: 256
                }
            })
        );
        assert_eq!(ToSupervisor::decode(&ended[..24]), None);
        assert_eq!(ToSupervisor::decode(b"E1234567"), None);
        assert_eq!(ToSupervisor::decode(b"X"), None);
    }
}
