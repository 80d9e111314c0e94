//! --upload-fifo: after each completed upload (STOR, APPE, STOU: a 226), one line with the
//! file's absolute path on disk goes to a FIFO that the integrator's script reads. That is
//! Pure-FTPd's uploadscript pipe without the server running any program. Fed from the transfer
//! record like the xferlog; nothing here knows about sessions or sockets of clients.
//!
//! Never blocking a session:
//! - The FIFO is opened O_WRONLY|O_NONBLOCK (std adds O_CLOEXEC): ENXIO means no reader has it
//!   open yet. Lines then wait in a queue bounded in bytes (`UPLOAD_FIFO_QUEUE_BYTES`), and the
//!   loop retries every `UPLOAD_FIFO_RETRY_MS` while any wait (`retry_at`); with none waiting
//!   it never wakes for the FIFO. A full pipe (EAGAIN) waits the same way.
//! - A line that does not fit in the queue is dropped and counted (SIGUSR1's status line shows
//!   the count), with a warning at most every `UPLOAD_FIFO_WARN_SECS`.
//! - The reader went away (EPIPE): the FIFO is closed, the line stays first in the queue, and
//!   the FIFO is opened again by name at once and then at each retry. SIGPIPE cannot kill the
//!   server: Rust's runtime sets it to SIG_IGN before main and nothing here changes that, so the
//!   write answers EPIPE instead. A line the kernel took but the reader never read is gone with
//!   the reader: nobody can tell it apart from one read.
//!
//! Lines are whole: each is one write(2) of at most PIPE_BUF bytes, which POSIX makes atomic,
//! so several writers (--workers) never interleave. A path that would make a longer line, or
//! that holds a newline (a reader could not tell it from two lines, and an escaped name would
//! not be the file's), gets no line and a warning; the file itself stays. Other bytes are
//! written as they are in the name (names need not be UTF-8).
//!
//! At exit the queue is written once more; what a missing reader leaves in it is counted in a
//! warning (so under --inetd, a reader must be there before the session ends).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ::log::warn;

use crate::config::{UPLOAD_FIFO_QUEUE_BYTES, UPLOAD_FIFO_RETRY_MS, UPLOAD_FIFO_WARN_SECS};
use crate::sys;
use crate::transfer::{Direction, TransferRecord};

/// The longest line written: PIPE_BUF, the newline included (atomic in one write).
const LINE_MAX_BYTES: usize = libc::PIPE_BUF;

/// The line for `record` (with its newline): a completed upload's absolute path on disk. None
/// for anything else; Err names why an upload gets none.
pub fn format_line(record: &TransferRecord) -> Option<Result<Vec<u8>, &'static str>> {
    if record.direction != Direction::Upload || !record.is_complete() {
        return None;
    }
    let path = record.disk_path.as_ref()?.as_os_str().as_bytes();
    if path.contains(&b'\n') {
        return Some(Err("its path holds a newline"));
    }
    if path.len() + 1 > LINE_MAX_BYTES {
        return Some(Err(
            "its path is longer than one atomic pipe write (PIPE_BUF)",
        ));
    }
    let mut line = Vec::with_capacity(path.len() + 1);
    line.extend_from_slice(path);
    line.push(b'\n');
    Some(Ok(line))
}

/// The FIFO, the lines waiting for it and the count of those dropped.
pub struct UploadFifo {
    path: PathBuf,
    /// Open while a reader has the FIFO open (as far as the last write knows).
    pipe: Option<File>,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    /// When the loop should call `flush` again: Some exactly while lines wait.
    retry_at: Option<Instant>,
    /// Lines dropped since start (the status line), and since the last warning.
    dropped: u64,
    unwarned: u64,
    last_warning: Option<Instant>,
}

impl UploadFifo {
    /// Checks that `path` is a FIFO the server can open for writing, and opens it when a reader
    /// is there already. Called after privileges drop, so that what fails here would fail at
    /// every later reopen too.
    pub fn open(path: &Path) -> Result<UploadFifo, String> {
        let what = |e: io::Error| format!("--upload-fifo {}: {e}", path.display());
        let meta = std::fs::metadata(path).map_err(what)?;
        if !meta.file_type().is_fifo() {
            return Err(format!(
                "--upload-fifo {}: not a FIFO (create it first: mkfifo -m 600 {0})",
                path.display()
            ));
        }
        let pipe = match open_pipe(path) {
            Ok(pipe) => Some(pipe),
            Err(e) if sys::is_errno(&e, libc::ENXIO) => None,
            Err(e) => return Err(what(e)),
        };
        Ok(UploadFifo {
            path: path.to_path_buf(),
            pipe,
            queue: VecDeque::new(),
            queued_bytes: 0,
            retry_at: None,
            dropped: 0,
            unwarned: 0,
            last_warning: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A transfer ended: a completed upload's line joins the queue, and what the FIFO takes
    /// goes now.
    pub fn notify(&mut self, record: &TransferRecord, now: Instant) {
        let line = match format_line(record) {
            None => return,
            Some(Ok(line)) => line,
            Some(Err(why)) => {
                return warn!(
                    "[#{}] upload fifo: no line for {}: {why}",
                    record.session,
                    String::from_utf8_lossy(&record.path)
                )
            }
        };
        if self.queued_bytes + line.len() > UPLOAD_FIFO_QUEUE_BYTES {
            self.dropped += 1;
            self.unwarned += 1;
            let path = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.warn(now, &format!("queue full, dropped the line for {path}"));
        } else {
            self.queued_bytes += line.len();
            self.queue.push_back(line);
        }
        self.flush(now);
    }

    /// When the loop should call `flush` again (None: nothing waits).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Lines waiting, and lines dropped since start.
    pub fn backlog(&self) -> (usize, u64) {
        (self.queue.len(), self.dropped)
    }

    /// Writes queued lines until none is left or the FIFO cannot take the next one now.
    pub fn flush(&mut self, now: Instant) {
        while let Some(line) = self.queue.front() {
            let pipe = match &mut self.pipe {
                Some(pipe) => pipe,
                None => match open_pipe(&self.path) {
                    Ok(pipe) => self.pipe.insert(pipe),
                    Err(e) => {
                        if !sys::is_errno(&e, libc::ENXIO) {
                            self.warn(now, &format!("cannot open it: {e}"));
                        }
                        return self.wait(now);
                    }
                },
            };
            match pipe.write(line) {
                Ok(n) if n == line.len() => {
                    self.queued_bytes -= n;
                    self.queue.pop_front();
                }
                // A line of at most PIPE_BUF bytes is written whole or not at all; should a
                // kernel cut one anyway, the rest goes next, still before any other line.
                Ok(n) => {
                    self.queued_bytes -= n;
                    if let Some(line) = self.queue.front_mut() {
                        line.drain(..n);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.wait(now),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The reader is gone: open again (a new reader may be waiting in its open).
                Err(e) if sys::is_errno(&e, libc::EPIPE) => self.pipe = None,
                Err(e) => {
                    self.pipe = None;
                    self.warn(now, &format!("cannot write to it: {e}"));
                    return self.wait(now);
                }
            }
        }
        self.retry_at = None;
    }

    fn wait(&mut self, now: Instant) {
        self.retry_at = Some(now + Duration::from_millis(UPLOAD_FIFO_RETRY_MS));
    }

    /// A warning, at most one every UPLOAD_FIFO_WARN_SECS; it carries the count of lines
    /// dropped since the last one.
    fn warn(&mut self, now: Instant, what: &str) {
        let interval = Duration::from_secs(UPLOAD_FIFO_WARN_SECS);
        if self
            .last_warning
            .is_some_and(|last| now.saturating_duration_since(last) < interval)
        {
            return;
        }
        self.last_warning = Some(now);
        let dropped = std::mem::take(&mut self.unwarned);
        warn!(
            "upload fifo {}: {what} ({dropped} lines dropped since the last warning, {} since \
             start)",
            self.path.display(),
            self.dropped
        );
    }
}

/// At exit (SIGTERM, the --inetd session's end): one last write; what is left is said.
impl Drop for UploadFifo {
    fn drop(&mut self) {
        self.flush(Instant::now());
        if !self.queue.is_empty() {
            warn!(
                "upload fifo {}: exiting with {} lines no reader took ({} dropped before)",
                self.path.display(),
                self.queue.len(),
                self.dropped
            );
        }
    }
}

/// O_WRONLY|O_NONBLOCK (std adds O_CLOEXEC). Refuses what is not a FIFO (the path replaced by
/// a regular file must not be appended to).
fn open_pipe(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.file_type().is_fifo() {
        return Err(io::Error::other("not a FIFO any more"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::io::Read;
    use std::time::Duration;

    use super::*;
    use crate::transfer::Direction;

    fn upload(disk_path: &str, code: u16) -> TransferRecord {
        TransferRecord {
            session: 1,
            user: "anonymous".into(),
            anonymous: true,
            peer: "127.0.0.1".parse().unwrap(),
            verb: "STOR",
            path: b"/x".to_vec().into(),
            disk_path: Some(disk_path.into()),
            direction: Direction::Upload,
            ascii: false,
            bytes: 1,
            started_unix: 0,
            elapsed: Duration::ZERO,
            code,
        }
    }

    /// A FIFO in a directory of its own, removed on drop.
    struct Fifo(PathBuf);

    impl Fifo {
        fn new(tag: &str) -> Fifo {
            let dir =
                std::env::temp_dir().join(format!("leanftpd-fifo-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("fifo");
            let c = CString::new(path.as_os_str().as_bytes()).unwrap();
            sys::fs::mkfifo(&c, 0o600).unwrap();
            Fifo(path)
        }

        /// A reader that never blocks: open O_RDONLY|O_NONBLOCK succeeds with no writer.
        fn reader(&self) -> File {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.0)
                .unwrap()
        }
    }

    impl Drop for Fifo {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    fn read_now(reader: &mut File) -> String {
        let mut buf = vec![0; 1 << 16];
        match reader.read(&mut buf) {
            Ok(n) => String::from_utf8(buf[..n].to_vec()).unwrap(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => String::new(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn only_completed_uploads_get_a_line_and_only_a_whole_one() {
        let line = |r: &TransferRecord| format_line(r).map(|l| l.map(String::from_utf8));
        assert_eq!(
            line(&upload("/srv/a b.bin", 226)),
            Some(Ok(Ok("/srv/a b.bin\n".into())))
        );
        assert_eq!(line(&upload("/srv/a", 426)), None);
        let mut download = upload("/srv/a", 226);
        download.direction = Direction::Download;
        assert_eq!(line(&download), None);
        // A newline would read as two lines: no line (the file stays).
        assert!(matches!(line(&upload("/srv/a\nb", 226)), Some(Err(_))));
        // PIPE_BUF bytes with the newline is the longest atomic line.
        let longest = format!("/{}", "a".repeat(LINE_MAX_BYTES - 2));
        assert!(matches!(line(&upload(&longest, 226)), Some(Ok(_))));
        let longer = format!("{longest}a");
        assert!(matches!(line(&upload(&longer, 226)), Some(Err(_))));
    }

    #[test]
    fn start_up_refuses_what_is_not_a_fifo() {
        let fifo = Fifo::new("refuse");
        let dir = fifo.0.parent().unwrap();
        std::fs::write(dir.join("file"), b"").unwrap();
        let err = UploadFifo::open(&dir.join("file")).err().unwrap();
        assert!(err.contains("not a FIFO"), "{err}");
        let err = UploadFifo::open(&dir.join("missing")).err().unwrap();
        assert!(err.contains("No such file"), "{err}");
        assert!(UploadFifo::open(&fifo.0).is_ok(), "no reader yet is fine");
    }

    #[test]
    fn lines_wait_for_a_reader_then_arrive_in_order() {
        let fifo = Fifo::new("wait");
        let mut sink = UploadFifo::open(&fifo.0).unwrap();
        let t0 = Instant::now();
        sink.notify(&upload("/r/1", 226), t0);
        sink.notify(&upload("/r/2", 226), t0);
        assert_eq!(sink.backlog(), (2, 0));
        let retry = Duration::from_millis(UPLOAD_FIFO_RETRY_MS);
        assert_eq!(sink.retry_at(), Some(t0 + retry));
        let mut reader = fifo.reader();
        sink.flush(t0 + retry);
        assert_eq!(sink.backlog(), (0, 0));
        assert_eq!(sink.retry_at(), None, "nothing waits: no wake-ups");
        sink.notify(&upload("/r/3", 226), t0 + retry);
        assert_eq!(read_now(&mut reader), "/r/1\n/r/2\n/r/3\n");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let fifo = Fifo::new("full");
        let mut sink = UploadFifo::open(&fifo.0).unwrap();
        let now = Instant::now();
        let path = format!("/{}", "p".repeat(99));
        let fits = UPLOAD_FIFO_QUEUE_BYTES / (path.len() + 1);
        for _ in 0..fits + 3 {
            sink.notify(&upload(&path, 226), now);
        }
        assert_eq!(sink.backlog(), (fits, 3));
        assert!(sink.queued_bytes <= UPLOAD_FIFO_QUEUE_BYTES);
        let mut reader = fifo.reader();
        sink.flush(now);
        assert_eq!(read_now(&mut reader).lines().count(), fits);
        assert_eq!(sink.backlog(), (0, 3));
    }

    /// A reader that does not read: the pipe fills, then the queue, then lines are dropped;
    /// nothing blocks, and once it reads, the retries deliver the rest in order.
    #[test]
    fn a_full_pipe_queues_then_drops_and_drains_on_retry() {
        let fifo = Fifo::new("pipe");
        let mut reader = fifo.reader();
        let mut sink = UploadFifo::open(&fifo.0).unwrap();
        let now = Instant::now();
        let mut sent = 0;
        while sink.backlog().1 == 0 {
            sink.notify(&upload(&format!("/r/{sent:06}"), 226), now);
            sent += 1;
            assert!(sent < 100_000, "the pipe never filled");
        }
        assert!(sink.retry_at().is_some());
        let (queued, dropped) = sink.backlog();
        assert!(queued > 0 && dropped == 1);
        let mut got = String::new();
        while sink.retry_at().is_some() {
            got.push_str(&read_now(&mut reader));
            sink.flush(now);
        }
        got.push_str(&read_now(&mut reader));
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), sent - 1, "all but the dropped one");
        let want: Vec<String> = (0..sent - 1).map(|i| format!("/r/{i:06}")).collect();
        assert_eq!(lines, want, "in order, the last one dropped");
    }

    #[test]
    fn a_reader_gone_costs_no_line() {
        let fifo = Fifo::new("gone");
        let reader = fifo.reader();
        let mut sink = UploadFifo::open(&fifo.0).unwrap();
        assert!(sink.pipe.is_some(), "a reader was there at start");
        drop(reader);
        let now = Instant::now();
        // EPIPE (not SIGPIPE: the test harness, like main, ignores it), then ENXIO: it waits.
        sink.notify(&upload("/r/after", 226), now);
        assert!(sink.pipe.is_none());
        assert_eq!(sink.backlog(), (1, 0));
        let mut reader = fifo.reader();
        sink.flush(now);
        assert_eq!(read_now(&mut reader), "/r/after\n");
    }
}
