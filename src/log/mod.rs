//! Where the log goes: stderr (`LEVEL [target] message`, simple_logger's form, each line one
//! write(2) so that the lines of --workers processes never mix), syslog (`syslog.rs`:
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

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use ::log::{LevelFilter, Log, Metadata, Record};

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
            install(Box::new(syslog::Syslog::new(writer, level)), level).map_err(failed)
        }
    }
}

fn stderr(level: LevelFilter) -> Result<(), ::log::SetLoggerError> {
    install(Box::new(Stderr(level)), level)
}

/// The stderr logger: one line, one write(2) (a pipe takes up to 4 KiB at once, unmixed).
struct Stderr(LevelFilter);

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.0
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let target = match record.target() {
            "" => record.module_path().unwrap_or_default(),
            target => target,
        };
        let line = format!("{:<5} [{target}] {}\n", record.level(), record.args());
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

fn install(logger: Box<dyn Log>, level: LevelFilter) -> Result<(), ::log::SetLoggerError> {
    ::log::set_boxed_logger(Box::new(Tagged(logger)))?;
    ::log::set_max_level(level);
    Ok(())
}

/// This process's worker number under --workers (0: the one process, or the supervisor).
static WORKER: AtomicUsize = AtomicUsize::new(0);

/// From now on every line of this process starts with `[wN] ` (a worker of --workers).
pub fn set_worker(id: usize) {
    WORKER.store(id, Ordering::Relaxed);
}

/// This process's worker number (0: not a worker).
pub fn worker() -> usize {
    WORKER.load(Ordering::Relaxed)
}

/// The logger in front of the target: puts the worker's tag before each line.
struct Tagged(Box<dyn Log>);

impl Log for Tagged {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        match WORKER.load(Ordering::Relaxed) {
            0 => self.0.log(record),
            id => self.0.log(
                &Record::builder()
                    .args(format_args!("[w{id}] {}", record.args()))
                    .metadata(record.metadata().clone())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            ),
        }
    }

    fn flush(&self) {
        self.0.flush()
    }
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
