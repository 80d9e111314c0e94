//! Where the log goes: stderr (simple_logger, the form it always had), syslog (`syslog.rs`:
//! RFC 3164 lines to a unix socket, never blocking the loop) and the xferlog (`xferlog.rs`: one
//! wu-ftpd line per file transfer) and the upload FIFO (`fifo.rs`: --upload-fifo, the path of
//! each completed upload for a script to read). `status.rs` is the SIGUSR1 status line. The loop
//! hands every `TransferRecord` to the stderr/syslog logger (as its Display line), to the xferlog
//! and to the upload FIFO; nothing here knows about sessions or sockets of clients.
//!
//! Choosing the target: `--syslog[=SOCKET]` asks for syslog. Under inetd and socket activation
//! stderr may be the client's connection (or /dev/null), so there syslog is the default and stderr
//! is never written, even when the syslog socket is missing (its lines are then dropped and
//! counted until the socket appears).

pub mod fifo;
pub mod status;
pub mod syslog;
pub mod xferlog;

use std::path::PathBuf;

use ::log::LevelFilter;

pub use syslog::Facility;

/// Month abbreviations of both timestamps (RFC 3164, ctime(3)).
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The syslog socket of every Linux libc (glibc, musl, uClibc) and of BusyBox syslogd.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";

/// Where the log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stderr,
    Syslog { socket: PathBuf, facility: Facility },
}

/// The target for the flags given: `syslog` is `--syslog` (None when absent, Some(None) when given
/// without a socket). `stderr_may_be_client` is true when the launch mode (--inetd, socket activation)
/// may have put the client's socket on stderr: then syslog is the default.
pub fn target(
    syslog: Option<Option<String>>,
    facility: Facility,
    stderr_may_be_client: bool,
) -> Target {
    let socket = match syslog {
        Some(socket) => socket,
        None if stderr_may_be_client => None,
        None => return Target::Stderr,
    };
    Target::Syslog {
        socket: PathBuf::from(socket.unwrap_or_else(|| DEFAULT_SYSLOG_SOCKET.into())),
        facility,
    }
}

/// Installs the logger for `target`. A syslog socket that cannot be opened is one line on stderr
/// and logging carries on there, unless `stderr_may_be_client`: then syslog keeps trying (lines are
/// dropped and counted meanwhile) and nothing is written to stderr.
pub fn init(target: Target, level: LevelFilter, stderr_may_be_client: bool) -> Result<(), String> {
    let failed = |e: ::log::SetLoggerError| format!("cannot start logging: {e}");
    match target {
        Target::Stderr => stderr(level).map_err(failed),
        Target::Syslog { socket, facility } => {
            let writer = syslog::Writer::connect(socket.clone(), facility, std::process::id());
            let writer = match writer {
                Ok(writer) => writer,
                Err(e) if !stderr_may_be_client => {
                    eprintln!(
                        "leanftpd: --syslog {}: {e}; logging to stderr instead",
                        socket.display()
                    );
                    return stderr(level).map_err(failed);
                }
                Err(_) => syslog::Writer::disconnected(socket, facility, std::process::id()),
            };
            ::log::set_boxed_logger(Box::new(syslog::Syslog::new(writer, level)))
                .map_err(failed)?;
            ::log::set_max_level(level);
            Ok(())
        }
    }
}

fn stderr(level: LevelFilter) -> Result<(), ::log::SetLoggerError> {
    simple_logger::SimpleLogger::new().with_level(level).init()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sys::CivilTime;

    /// Wednesday, 2 December 2026, 16:59:07: the moment the formatting tests log at.
    pub(crate) const DEC_2: CivilTime = CivilTime {
        year: 2026,
        month: 12,
        day: 2,
        hour: 16,
        minute: 59,
        second: 7,
        weekday: 3,
    };

    #[test]
    fn syslog_is_the_default_only_where_stderr_may_be_the_client() {
        let daemon = Facility::Daemon;
        assert_eq!(target(None, daemon, false), Target::Stderr);
        let dev_log = Target::Syslog {
            socket: "/dev/log".into(),
            facility: daemon,
        };
        assert_eq!(target(None, daemon, true), dev_log);
        assert_eq!(target(Some(None), daemon, false), dev_log);
        assert_eq!(
            target(Some(Some("/tmp/s".into())), Facility::Local(3), true),
            Target::Syslog {
                socket: "/tmp/s".into(),
                facility: Facility::Local(3)
            }
        );
    }
}
