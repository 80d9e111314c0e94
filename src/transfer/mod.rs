//! Transfer tasks: move one file or one listing between the disk and a data connection, a
//! bounded step at a time. The session builds a `Job` when it accepts RETR, STOR, LIST and the
//! like; the loop (net/) owns the data connection and calls `Job::pump` whenever it is ready.
//!
//! Connections are reached only through the `DataStream` trait, so the tasks are tested against
//! a writer that returns `WouldBlock` every few bytes. Zero-copy is the plain stream's capability:
//! binary downloads use sendfile(2), binary uploads splice(2) through a pipe; a stream without
//! it (TLS) answers `Unsupported` and the task copies through a buffer instead. A buffer exists
//! only while a task copies (TYPE A, listings, streams or files that refuse zero-copy).
//!
//! The budget: one `pump` call moves at most `budget` bytes over the connection (each syscall
//! is asked for no more than what is left), so a turn of the loop is bounded exactly.
//!
//! Tasks without a connection (`Task`: a checksum) go the same way, a bounded step per turn,
//! with a buffer the loop lends them; ABOR drops any task, with or without a connection.
//!
//! Files: `send.rs` (RETR), `receive.rs` (STOR, APPE, STOU), `list.rs` (LIST, NLST, MLSD),
//! `checksum.rs` (HASH and the X-verbs), `pace.rs` (the rate buckets the loop paces
//! transfers by), `record.rs` (what a finished transfer leaves behind for
//! the logs).

mod checksum;
mod list;
pub mod pace;
mod receive;
pub mod record;
mod send;
#[cfg(test)]
mod testing;

use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;

pub use checksum::{Checksum, ChecksumError, Digest};
pub use list::{ListFormat, ListSender, ListSource};
pub use receive::FileReceiver;
pub use record::{Direction, TransferRecord};
pub use send::FileSender;

/// What a pump needs of a data connection.
pub trait DataStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Sends up to `len` bytes of `file` from `*offset`, advancing it (sendfile(2) semantics).
    /// A stream that cannot answers `Unsupported`, and the file is read and written instead.
    fn send_file(&mut self, file: &File, offset: &mut u64, len: usize) -> io::Result<usize> {
        let _ = (file, offset, len);
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Moves up to `len` received bytes into `pipe` without copying them (splice(2)); Ok(0) at
    /// end of stream. A stream that cannot splice answers `Unsupported` and is read instead.
    fn splice_to(&mut self, pipe: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        let _ = (pipe, len);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Where a transfer went wrong: the reply code depends on the side.
#[derive(Debug)]
pub enum TransferError {
    /// The data connection failed (reset, closed early on a download): 426.
    Network(io::Error),
    /// Reading or writing the file failed (disk full: 452): mapped by `reply::for_io_error`.
    Disk(io::Error),
    /// More arrived than --max-upload-size allows (552); nothing past the limit was written.
    TooLarge,
}

/// The outcome of one `pump` call.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The socket would block: wait for the next readiness event.
    Blocked,
    /// The turn's byte budget is spent and there is more: run again soon, after other sessions.
    Yield,
    /// The transfer is complete.
    Done,
}

/// One transfer, built by the session and driven by the server.
pub enum Job {
    Send(FileSender),
    Receive(FileReceiver),
    List(ListSender),
}

impl Job {
    /// Moves bytes until the socket blocks, the job ends, or about `budget` bytes have moved.
    pub fn pump(
        &mut self,
        stream: &mut impl DataStream,
        budget: usize,
    ) -> Result<Step, TransferError> {
        match self {
            Job::Send(job) => job.pump(stream, budget),
            Job::Receive(job) => job.pump(stream, budget),
            Job::List(job) => job.pump(stream, budget),
        }
    }

    /// Bytes moved over the data connection so far.
    pub fn bytes(&self) -> u64 {
        match self {
            Job::Send(job) => job.bytes,
            Job::Receive(job) => job.bytes,
            Job::List(job) => job.out.bytes,
        }
    }

    pub fn is_upload(&self) -> bool {
        self.direction() == Direction::Upload
    }

    pub fn direction(&self) -> Direction {
        match self {
            Job::Send(_) => Direction::Download,
            Job::Receive(_) => Direction::Upload,
            Job::List(_) => Direction::Listing,
        }
    }
}

/// A task with no connection, built by the session (`Action::RunTask`) and stepped by the loop
/// with a buffer it lends (one for all tasks: they run one at a time).
pub enum Task {
    Checksum(Checksum),
}

/// What a finished task hands back to its session.
#[derive(Debug)]
pub enum TaskDone {
    Checksum(Digest),
}

impl Task {
    /// One bounded step: reads at most `buf.len()` bytes.
    pub fn step(&mut self, buf: &mut [u8]) -> Result<Step, ChecksumError> {
        match self {
            Task::Checksum(task) => task.step(buf),
        }
    }

    /// The result, once `step` said `Done`.
    pub fn finish(self) -> TaskDone {
        match self {
            Task::Checksum(task) => TaskDone::Checksum(task.finish()),
        }
    }
}

/// Bytes staged for the connection: filled by a producer, drained by writes, reused until the
/// task ends.
struct Staged {
    buf: Vec<u8>,
    pos: usize,
    pub(super) bytes: u64,
}

/// How far `Staged::drain` got.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// Everything staged was written.
    Empty,
    /// The connection would block.
    Blocked,
    /// The turn's budget is spent with bytes still staged.
    Budget,
}

impl Staged {
    fn new() -> Staged {
        Staged {
            buf: Vec::new(),
            pos: 0,
            bytes: 0,
        }
    }

    /// Writes staged bytes, never more than `budget - *moved` of them.
    fn drain(
        &mut self,
        stream: &mut impl DataStream,
        moved: &mut usize,
        budget: usize,
    ) -> Result<Drained, TransferError> {
        while self.pos < self.buf.len() {
            let left = budget.saturating_sub(*moved);
            if left == 0 {
                return Ok(Drained::Budget);
            }
            let end = self.buf.len().min(self.pos + left);
            match stream.write(&self.buf[self.pos..end]) {
                Ok(0) => return Err(TransferError::Network(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.pos += n;
                    self.bytes += n as u64;
                    *moved += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drained::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransferError::Network(e)),
            }
        }
        self.buf.clear();
        self.pos = 0;
        Ok(Drained::Empty)
    }
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The jail path of `name` inside the directory `dir` (a jail path itself).
pub fn child_path(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    path.extend_from_slice(dir);
    if !dir.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_path_joins_under_root_and_subdirs() {
        assert_eq!(child_path(b"", b"a"), b"a");
        assert_eq!(child_path(b"pub", b"a"), b"pub/a");
    }
}
