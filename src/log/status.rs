//! The SIGUSR1 status line: sessions by state, transfers running, bytes in and out since start,
//! uptime. The loop keeps the counters (`Totals`) and counts the sessions; this only adds and
//! renders.

use std::fmt;
use std::time::Duration;

use crate::transfer::{Direction, TransferRecord};

/// Bytes moved by transfers that ended. Listings count as bytes out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Totals {
    pub fn add(&mut self, direction: Direction, bytes: u64) {
        match direction {
            Direction::Upload => self.bytes_in = self.bytes_in.saturating_add(bytes),
            Direction::Download | Direction::Listing => {
                self.bytes_out = self.bytes_out.saturating_add(bytes)
            }
        }
    }

    pub fn add_record(&mut self, record: &TransferRecord) {
        self.add(record.direction, record.bytes);
    }

    pub fn merge(&mut self, other: Totals) {
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
    }
}

/// What a session is doing, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Connected, not logged in yet.
    LoggingIn,
    /// Logged in, no transfer running.
    Idle,
    /// A transfer (or listing) is running.
    Transferring,
}

/// One status line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub logging_in: usize,
    pub idle: usize,
    pub transferring: usize,
    /// Ended transfers plus what the running ones moved so far.
    pub totals: Totals,
    pub uptime: Duration,
    /// --upload-fifo: lines waiting for the reader, and lines dropped since start.
    pub upload_fifo: Option<(usize, u64)>,
}

impl Status {
    /// Adds another process's counts (a worker's, under --workers); the uptime stays.
    pub fn add(&mut self, other: &Status) {
        self.logging_in += other.logging_in;
        self.idle += other.idle;
        self.transferring += other.transferring;
        self.totals.merge(other.totals);
        if let Some((queued, dropped)) = other.upload_fifo {
            let (q, d) = self.upload_fifo.get_or_insert((0, 0));
            *q += queued;
            *d += dropped;
        }
    }

    pub fn count(&mut self, state: SessionState) {
        match state {
            SessionState::LoggingIn => self.logging_in += 1,
            SessionState::Idle => self.idle += 1,
            SessionState::Transferring => self.transferring += 1,
        }
    }
}

/// `status: 3 sessions (1 logging in, 1 idle, 1 transferring), 1 transfers running, 1024 bytes
/// in, 2048 bytes out, up 3725 s` (and with --upload-fifo: `, upload fifo 2 lines queued, 0
/// dropped`).
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status: {} sessions ({} logging in, {} idle, {} transferring), {} transfers \
             running, {} bytes in, {} bytes out, up {} s",
            self.logging_in + self.idle + self.transferring,
            self.logging_in,
            self.idle,
            self.transferring,
            self.transferring,
            self.totals.bytes_in,
            self.totals.bytes_out,
            self.uptime.as_secs()
        )?;
        if let Some((queued, dropped)) = self.upload_fifo {
            write!(f, ", upload fifo {queued} lines queued, {dropped} dropped")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_states_and_bytes() {
        let mut status = Status::default();
        for state in [
            SessionState::LoggingIn,
            SessionState::Idle,
            SessionState::Idle,
            SessionState::Transferring,
        ] {
            status.count(state);
        }
        status.totals.add(Direction::Upload, 5);
        status.totals.add(Direction::Download, 7);
        status.totals.add(Direction::Listing, 3);
        status.uptime = Duration::from_millis(3_725_900);
        assert_eq!(
            status.to_string(),
            "status: 4 sessions (1 logging in, 2 idle, 1 transferring), 1 transfers running, \
             5 bytes in, 10 bytes out, up 3725 s"
        );
        status.upload_fifo = Some((2, 7));
        assert!(status
            .to_string()
            .ends_with("up 3725 s, upload fifo 2 lines queued, 7 dropped"));
    }
}
