//! --workers: the messages between the supervisor and a worker, one SOCK_SEQPACKET message each
//! (sys::send_message / recv_message), in a fixed little-endian layout. A control connection
//! travels as its descriptor (SCM_RIGHTS) beside a `Session` message; the supervisor reads no
//! byte of it. The ticket names the session in both processes, so its end releases its count.

use crate::log::status::{Status, Totals};

/// The largest message either way (a status report: tag and eight u64).
pub(super) const MAX_MESSAGE_BYTES: usize = 1 + 8 * 8;

/// Supervisor -> worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToWorker {
    /// Serve the connection attached: admitted under `ticket`.
    Session { ticket: u64, implicit_tls: bool },
    /// SIGUSR1: report your sessions and bytes.
    Status,
}

/// Worker -> supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToSupervisor {
    /// The session admitted under `ticket` has ended (or never started).
    Ended { ticket: u64 },
    /// The answer to `ToWorker::Status` (its uptime is not used).
    Status(Status),
}

const SESSION: u8 = b'C';
const STATUS: u8 = b'S';
const ENDED: u8 = b'E';

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
        }
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<ToWorker> {
        match (bytes.first()?, bytes.len()) {
            (&SESSION, 10) => Some(ToWorker::Session {
                ticket: u64_at(bytes, 1)?,
                implicit_tls: bytes[9] != 0,
            }),
            (&STATUS, 1) => Some(ToWorker::Status),
            _ => None,
        }
    }
}

impl ToSupervisor {
    pub(super) fn encode(self) -> Vec<u8> {
        match self {
            ToSupervisor::Ended { ticket } => {
                let mut bytes = vec![ENDED];
                bytes.extend_from_slice(&ticket.to_le_bytes());
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
            (&ENDED, 9) => Some(ToSupervisor::Ended {
                ticket: u64_at(bytes, 1)?,
            }),
            (&STATUS, MAX_MESSAGE_BYTES) => Some(ToSupervisor::Status(Status {
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
            ToSupervisor::Ended { ticket: 77 },
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
        assert_eq!(
            ToSupervisor::decode(b"E\x01\0\0\0\0\0\0\0"),
            Some(ToSupervisor::Ended { ticket: 1 })
        );
        assert_eq!(ToSupervisor::decode(b"E1234567"), None);
        assert_eq!(ToSupervisor::decode(b"X"), None);
    }
}
