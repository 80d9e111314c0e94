//! STOR, APPE, STOU: what arrives on the data connection goes to the file. Binary uploads
//! splice(2) socket -> pipe -> file where both ends allow it; TYPE A (CRLF -> LF) and streams or
//! files that refuse splice copy through a buffer. What arrived is kept whatever happens (up to
//! --max-upload-size: a byte past it ends the upload with `TooLarge`, and is never written).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::{DataStream, Step, TransferError};
use crate::config::{TRANSFER_BUFFER_BYTES, UPLOAD_PIPE_BYTES};

/// STOR, APPE, STOU: what arrives goes to the file; TYPE A turns CRLF into LF.
pub struct FileReceiver {
    file: File,
    pub(super) bytes: u64,
    ascii: bool,
    /// TYPE A: a CR was the last byte of the previous read; it is written or dropped once
    /// the next byte shows whether it began a CRLF.
    pending_cr: bool,
    route: Route,
    /// --max-upload-size: bytes that may arrive (what the file holds already taken off).
    limit: Option<u64>,
}

/// How an upload's bytes reach its file.
enum Route {
    /// Not chosen yet: the first pump tries to splice a binary upload.
    Undecided,
    /// Socket -> pipe -> file with splice(2).
    Splice(UploadPipe),
    /// Read into a buffer, then write it: TYPE A (which must see the bytes), and uploads whose
    /// stream or file refuses splice (an O_APPEND file for APPE, a filesystem without it).
    Copy(Vec<u8>),
}

impl FileReceiver {
    pub fn new(file: File, ascii: bool) -> FileReceiver {
        FileReceiver {
            file,
            bytes: 0,
            ascii,
            pending_cr: false,
            route: Route::Undecided,
            limit: None,
        }
    }

    /// At most `limit` bytes may arrive; one more ends the upload with `TooLarge`. Counted on
    /// the connection, so a TYPE A file (CRLF -> LF) stays at or below it too.
    pub fn with_limit(mut self, limit: Option<u64>) -> FileReceiver {
        self.limit = limit;
        self
    }

    pub(super) fn pump(
        &mut self,
        stream: &mut impl DataStream,
        budget: usize,
    ) -> Result<Step, TransferError> {
        let budget = match self.limit {
            Some(limit) if self.bytes >= limit => return self.probe_past_limit(stream),
            // Each read or splice asks for no more than the limit leaves.
            Some(limit) => budget.min(usize::try_from(limit - self.bytes).unwrap_or(usize::MAX)),
            None => budget,
        };
        if let Route::Undecided = self.route {
            let pipe = if self.ascii { None } else { UploadPipe::new() };
            self.route = pipe.map_or(Route::Copy(Vec::new()), Route::Splice);
        }
        let mut budget = budget;
        if let Route::Splice(pipe) = &self.route {
            let before = self.bytes;
            match pipe.pump(&self.file, &mut self.bytes, stream, budget)? {
                Spliced::Step(step) => return Ok(step),
                Spliced::Refused => self.route = Route::Copy(Vec::new()),
            }
            // What the splice moved before the file refused it counts against the budget.
            let spliced = usize::try_from(self.bytes - before).unwrap_or(usize::MAX);
            budget = budget.saturating_sub(spliced);
            if budget == 0 {
                return Ok(Step::Yield);
            }
        }
        self.pump_copy(stream, budget)
    }

    /// The limit is reached: the end of the stream completes the upload, one more byte (read
    /// into a throwaway byte, never written) breaks it.
    fn probe_past_limit(&mut self, stream: &mut impl DataStream) -> Result<Step, TransferError> {
        let mut byte = [0u8; 1];
        loop {
            return match stream.read(&mut byte) {
                Ok(0) => {
                    if std::mem::take(&mut self.pending_cr) {
                        self.file.write_all(b"\r").map_err(TransferError::Disk)?;
                    }
                    Ok(Step::Done)
                }
                Ok(_) => Err(TransferError::TooLarge),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(TransferError::Network(e)),
            };
        }
    }

    fn pump_copy(
        &mut self,
        stream: &mut impl DataStream,
        budget: usize,
    ) -> Result<Step, TransferError> {
        let Route::Copy(buf) = &mut self.route else {
            unreachable!("pump_copy runs on the copy route only");
        };
        if buf.is_empty() {
            *buf = vec![0; TRANSFER_BUFFER_BYTES];
        }
        let mut moved = 0;
        while moved < budget {
            let left = buf.len().min(budget - moved);
            let n = match stream.read(&mut buf[..left]) {
                Ok(0) => {
                    if self.pending_cr {
                        self.pending_cr = false;
                        self.file.write_all(b"\r").map_err(TransferError::Disk)?;
                    }
                    return Ok(Step::Done);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(TransferError::Network(e)),
            };
            moved += n;
            self.bytes += n as u64;
            let len = if self.ascii {
                let (emit_held, len) = crlf_to_lf(&mut buf[..n], &mut self.pending_cr);
                if emit_held {
                    self.file.write_all(b"\r").map_err(TransferError::Disk)?;
                }
                len
            } else {
                n
            };
            self.file
                .write_all(&buf[..len])
                .map_err(TransferError::Disk)?;
        }
        Ok(Step::Yield)
    }
}

/// The pipe of a spliced upload. The socket's pages move into it, and the only copy is the
/// kernel's, from it into the page cache: about half the CPU of reading into a buffer and writing
/// that (scripts/bench, STOR). It is empty between pumps: every byte spliced in goes on to the
/// file in the same call.
struct UploadPipe {
    /// A File only for its `Read`, used when the file refuses splice.
    reader: File,
    writer: OwnedFd,
}

/// What a splice pump did: a step, or found splice refused (the caller goes on by copying).
enum Spliced {
    Step(Step),
    Refused,
}

impl UploadPipe {
    /// A pipe grown to UPLOAD_PIPE_BYTES when the kernel allows it (past an unprivileged user's
    /// pipe quota it keeps the default 64 KiB, which still works). None when no descriptor is
    /// left: the upload then copies.
    fn new() -> Option<UploadPipe> {
        let (reader, writer) = crate::sys::pipe().ok()?;
        let _ = crate::sys::set_pipe_size(writer.as_raw_fd(), UPLOAD_PIPE_BYTES);
        Some(UploadPipe {
            reader: File::from(reader),
            writer,
        })
    }

    fn pump(
        &self,
        file: &File,
        bytes: &mut u64,
        stream: &mut impl DataStream,
        budget: usize,
    ) -> Result<Spliced, TransferError> {
        let mut moved = 0;
        while moved < budget {
            let len = UPLOAD_PIPE_BYTES.min(budget - moved);
            let n = match stream.splice_to(self.writer.as_fd(), len) {
                Ok(0) => return Ok(Spliced::Step(Step::Done)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Spliced::Step(Step::Blocked))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if refuses_splice(&e) => return Ok(Spliced::Refused),
                Err(e) => return Err(TransferError::Network(e)),
            };
            moved += n;
            *bytes += n as u64;
            if !self.empty_into(file, n)? {
                return Ok(Spliced::Refused);
            }
        }
        Ok(Spliced::Step(Step::Yield))
    }

    /// Moves the `held` bytes in the pipe to the file; Ok(false) when the file refused splice
    /// and they were copied instead.
    fn empty_into(&self, mut file: &File, mut held: usize) -> Result<bool, TransferError> {
        while held > 0 {
            match crate::sys::splice(self.reader.as_raw_fd(), file.as_raw_fd(), held) {
                Ok(0) => return Err(TransferError::Disk(io::ErrorKind::WriteZero.into())),
                Ok(n) => held -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if refuses_splice(&e) => {
                    // The bytes are in the pipe, so reading them out does not wait.
                    let mut buf = vec![0; held];
                    (&self.reader)
                        .read_exact(&mut buf)
                        .map_err(TransferError::Disk)?;
                    file.write_all(&buf).map_err(TransferError::Disk)?;
                    return Ok(false);
                }
                Err(e) => return Err(TransferError::Disk(e)),
            }
        }
        Ok(true)
    }
}

/// splice(2)'s answer for descriptors it cannot serve: EINVAL (O_APPEND files, filesystems and
/// sockets without splice support); `Unsupported` from streams that have no descriptor.
fn refuses_splice(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported || e.raw_os_error() == Some(libc::EINVAL)
}

/// Converts CRLF to LF in place and returns (whether a CR held back by the previous call must be
/// written before `buf`, the new length). A CR ending `buf` is held in `pending_cr`: it may begin
/// a CRLF split across two reads. A CR not followed by LF is data and is kept.
fn crlf_to_lf(buf: &mut [u8], pending_cr: &mut bool) -> (bool, usize) {
    let emit_held = *pending_cr && buf.first() != Some(&b'\n');
    let Some(&last) = buf.last() else {
        return (false, 0);
    };
    let mut len = 0;
    for read in 0..buf.len() {
        let b = buf[read];
        let next = buf.get(read + 1).copied();
        if b == b'\r' && (next.is_none() || next == Some(b'\n')) {
            continue;
        }
        buf[len] = b;
        len += 1;
    }
    *pending_cr = last == b'\r';
    (emit_held, len)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Job;
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn binary_receive_writes_everything() {
        let content: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let file = temp_file(b"");
        let mut job = Job::Receive(FileReceiver::new(file.try_clone().unwrap(), false));
        let mut stream = Choppy::new(&content, 999);
        run(&mut job, &mut stream);
        assert_eq!(read_all(file), content);
        assert_eq!(job.bytes(), content.len() as u64);
    }

    /// Uploads `content` over a real loopback connection (so splice(2) has a socket to read)
    /// into `file`, and returns the receiver for a look at its route.
    fn receive_over_tcp(file: File, content: &[u8]) -> FileReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut stream = crate::net::stream::Stream::plain(mio::net::TcpStream::from_std(server));
        let sent = content.to_vec();
        let writer = std::thread::spawn(move || client.write_all(&sent).unwrap());
        let mut receiver = FileReceiver::new(file, false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match receiver.pump(&mut stream, 64 * 1024) {
                Ok(Step::Done) => break,
                Ok(Step::Blocked) => std::thread::sleep(std::time::Duration::from_millis(1)),
                Ok(Step::Yield) => {}
                Err(e) => panic!("pump failed: {e:?}"),
            }
            assert!(std::time::Instant::now() < deadline, "upload never ended");
        }
        writer.join().unwrap();
        assert_eq!(receiver.bytes, content.len() as u64);
        receiver
    }

    #[test]
    fn binary_receive_splices_a_socket_into_the_file() {
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i * 13 % 256) as u8).collect();
        let file = temp_file(b"");
        let receiver = receive_over_tcp(file.try_clone().unwrap(), &content);
        assert!(matches!(receiver.route, Route::Splice(_)));
        assert_eq!(read_all(file), content);
    }

    #[test]
    fn append_file_refuses_splice_and_is_copied_without_losing_a_byte() {
        let content: Vec<u8> = (0..500_000u32).map(|i| (i * 31 % 256) as u8).collect();
        let file = temp_file(b"head");
        let path = format!("/proc/self/fd/{}", file.as_raw_fd());
        // splice(2) refuses O_APPEND files: the bytes already in the pipe must still arrive.
        let append = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        let receiver = receive_over_tcp(append, &content);
        assert!(matches!(receiver.route, Route::Copy(_)));
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&content);
        assert_eq!(read_all(file), expected);
    }

    #[test]
    fn ascii_receive_turns_crlf_into_lf_split_at_every_byte() {
        let content = b"a\r\nb\rc\r\n\r\nd\r";
        let file = temp_file(b"");
        let mut job = Job::Receive(FileReceiver::new(file.try_clone().unwrap(), true));
        // One byte per read: every CR is split from its LF.
        let mut stream = Choppy::new(content, 1);
        run(&mut job, &mut stream);
        assert_eq!(read_all(file), b"a\nb\rc\n\nd\r");
    }

    #[test]
    fn crlf_to_lf_keeps_a_trailing_cr_pending() {
        let mut pending = false;
        let mut buf = *b"ab\r";
        assert_eq!(crlf_to_lf(&mut buf, &mut pending), (false, 2));
        assert!(pending);
        // The held CR was the first half of a CRLF: dropped.
        let mut buf = *b"\ncd";
        assert_eq!(crlf_to_lf(&mut buf, &mut pending), (false, 3));
        assert_eq!(&buf, b"\ncd");
        assert!(!pending);
        // A held CR followed by something else is data: the caller writes it first.
        let mut buf = *b"x\r";
        pending = true;
        assert_eq!(crlf_to_lf(&mut buf, &mut pending), (true, 1));
        assert_eq!(&buf[..1], b"x");
        assert!(pending);
    }

    #[test]
    fn a_limit_keeps_exactly_the_allowed_bytes_and_refuses_one_more() {
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for ascii in [false, true] {
            // Exactly the limit: done.
            let file = temp_file(b"");
            let receiver = FileReceiver::new(file.try_clone().unwrap(), ascii);
            let mut job = Job::Receive(receiver.with_limit(Some(10_000)));
            run(&mut job, &mut Choppy::new(&content, 333));
            assert_eq!(job.bytes(), 10_000);
            // One byte more: TooLarge, and the file holds only the allowed bytes.
            let file = temp_file(b"");
            let receiver = FileReceiver::new(file.try_clone().unwrap(), ascii);
            let mut job = Job::Receive(receiver.with_limit(Some(9_999)));
            let mut stream = Choppy::new(&content, 333);
            let result = loop {
                match job.pump(&mut stream, 4096) {
                    Ok(Step::Done) => panic!("ascii {ascii}: past the limit, yet done"),
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            assert!(matches!(result, TransferError::TooLarge), "{result:?}");
            assert_eq!(job.bytes(), 9_999);
            assert_eq!(read_all(file).len(), 9_999, "ascii {ascii}");
        }
    }

    #[test]
    fn no_receive_pump_moves_more_than_its_budget() {
        let content: Vec<u8> = (0..50_000u32).map(|i| (i % 13) as u8).collect();
        for ascii in [false, true] {
            let file = temp_file(b"");
            let mut job = Job::Receive(FileReceiver::new(file.try_clone().unwrap(), ascii));
            let mut stream = Choppy::new(&content, 1000);
            let most = max_per_pump(&mut job, &mut stream, 700, |s| s.read_pos);
            assert!(most <= 700, "ascii {ascii}: {most} bytes in one pump");
            assert_eq!(job.bytes(), content.len() as u64);
        }
    }
}
