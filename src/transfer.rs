//! Transfer pumps: move one file or one listing between the disk and a data connection, a
//! bounded step at a time. The session builds a `Job` when it accepts RETR, STOR, LIST and the
//! like; the server owns the data socket and calls `Job::pump` whenever the socket is ready.
//!
//! Sockets are reached only through the `DataStream` trait, so the pumps are tested against a
//! writer that returns `WouldBlock` every few bytes, and a TLS stream can implement it later.
//! Binary downloads use sendfile(2): the kernel copies page cache to the socket with no buffer
//! here. Binary uploads use splice(2) through a pipe: the received pages move into the pipe and
//! are copied once, into the page cache. A buffer exists only for TYPE A transfers, listings and
//! uploads that cannot splice, and only while the job lives.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use crate::config::{SENDFILE_CHUNK_BYTES, TRANSFER_BUFFER_BYTES, UPLOAD_PIPE_BYTES};
use crate::fs::{DirStream, FileKind, Jail, Stat};
use crate::listing::{self, Facts};

/// What a pump needs of a data connection.
pub trait DataStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Sends up to `len` bytes of `file` from `*offset`, advancing it (sendfile(2) semantics).
    fn send_file(&mut self, file: &File, offset: &mut u64, len: usize) -> io::Result<usize>;
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
        matches!(self, Job::Receive(_))
    }
}

/// Bytes staged for the socket: filled by a producer, drained by writes, reused until the job ends.
struct Staged {
    buf: Vec<u8>,
    pos: usize,
    bytes: u64,
}

impl Staged {
    fn new() -> Staged {
        Staged {
            buf: Vec::new(),
            pos: 0,
            bytes: 0,
        }
    }

    /// Writes staged bytes; Ok(false) when the socket would block.
    fn drain(
        &mut self,
        stream: &mut impl DataStream,
        moved: &mut usize,
    ) -> Result<bool, TransferError> {
        while self.pos < self.buf.len() {
            match stream.write(&self.buf[self.pos..]) {
                Ok(0) => return Err(TransferError::Network(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.pos += n;
                    self.bytes += n as u64;
                    *moved += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransferError::Network(e)),
            }
        }
        self.buf.clear();
        self.pos = 0;
        Ok(true)
    }
}

/// RETR: a file from an offset; sendfile for TYPE I, LF -> CRLF conversion for TYPE A.
pub struct FileSender {
    file: File,
    offset: u64,
    bytes: u64,
    /// Present in TYPE A: the converted bytes waiting for the socket.
    ascii: Option<AsciiOut>,
}

struct AsciiOut {
    staged: Staged,
    /// The last byte read from the file, so a CRLF split across two reads stays CRLF.
    last: u8,
    eof: bool,
}

impl FileSender {
    pub fn new(file: File, offset: u64, ascii: bool) -> FileSender {
        let ascii = ascii.then(|| AsciiOut {
            staged: Staged::new(),
            last: 0,
            eof: false,
        });
        FileSender {
            file,
            offset,
            bytes: 0,
            ascii,
        }
    }

    fn pump(&mut self, stream: &mut impl DataStream, budget: usize) -> Result<Step, TransferError> {
        match self.ascii.take() {
            Some(mut ascii) => {
                let step = self.pump_ascii(&mut ascii, stream, budget);
                self.ascii = Some(ascii);
                step
            }
            None => self.pump_binary(stream, budget),
        }
    }

    fn pump_binary(
        &mut self,
        stream: &mut impl DataStream,
        budget: usize,
    ) -> Result<Step, TransferError> {
        let mut moved = 0;
        while moved < budget {
            match stream.send_file(&self.file, &mut self.offset, SENDFILE_CHUNK_BYTES) {
                // End of file: the file may have grown since the 150, so EOF is the only end.
                Ok(0) => return Ok(Step::Done),
                Ok(n) => {
                    moved += n;
                    self.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // sendfile reports disk and socket errors alike; EIO and friends are the disk's.
                Err(e) if is_disk_error(&e) => return Err(TransferError::Disk(e)),
                Err(e) => return Err(TransferError::Network(e)),
            }
        }
        Ok(Step::Yield)
    }

    fn pump_ascii(
        &mut self,
        ascii: &mut AsciiOut,
        stream: &mut impl DataStream,
        budget: usize,
    ) -> Result<Step, TransferError> {
        let mut moved = 0;
        let mut raw = [0u8; 8192];
        loop {
            if !ascii.staged.drain(stream, &mut moved)? {
                self.bytes = ascii.staged.bytes;
                return Ok(Step::Blocked);
            }
            self.bytes = ascii.staged.bytes;
            if ascii.eof {
                return Ok(Step::Done);
            }
            if moved >= budget {
                return Ok(Step::Yield);
            }
            let n = read_at(&self.file, &mut raw, self.offset).map_err(TransferError::Disk)?;
            self.offset += n as u64;
            if n == 0 {
                ascii.eof = true;
            }
            let out = &mut ascii.staged.buf;
            for &b in &raw[..n] {
                // Only bare LFs become CRLF, so a file that already has CRLF is sent unchanged.
                if b == b'\n' && ascii.last != b'\r' {
                    out.push(b'\r');
                }
                out.push(b);
                ascii.last = b;
            }
        }
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

fn is_disk_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO) | Some(libc::EOVERFLOW) | Some(libc::ESPIPE)
    )
}

/// STOR, APPE, STOU: what arrives goes to the file; TYPE A turns CRLF into LF.
pub struct FileReceiver {
    file: File,
    bytes: u64,
    ascii: bool,
    /// TYPE A: a CR was the last byte of the previous read; it is written or dropped once
    /// the next byte shows whether it began a CRLF.
    pending_cr: bool,
    route: Route,
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
        }
    }

    fn pump(&mut self, stream: &mut impl DataStream, budget: usize) -> Result<Step, TransferError> {
        if let Route::Undecided = self.route {
            let pipe = if self.ascii { None } else { UploadPipe::new() };
            self.route = pipe.map_or(Route::Copy(Vec::new()), Route::Splice);
        }
        if let Route::Splice(pipe) = &self.route {
            match pipe.pump(&self.file, &mut self.bytes, stream, budget)? {
                Spliced::Step(step) => return Ok(step),
                Spliced::Refused => self.route = Route::Copy(Vec::new()),
            }
        }
        self.pump_copy(stream, budget)
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
            let n = match stream.read(buf) {
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
            let n = match stream.splice_to(self.writer.as_fd(), UPLOAD_PIPE_BYTES) {
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

/// Which listing a `ListSender` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// LIST: `ls -l` lines.
    Long,
    /// NLST: bare names.
    Names,
    /// MLSD: RFC 3659 facts lines.
    Facts(Facts),
}

/// Where a listing's entries come from.
pub enum ListSource {
    /// A directory, read entry by entry as the socket drains.
    Dir(DirStream),
    /// LIST or NLST of a single file: its one line.
    Single {
        name: Vec<u8>,
        stat: Stat,
        link_target: Option<Vec<u8>>,
    },
}

/// LIST, NLST, MLSD: formats entries into a small buffer as the socket drains.
pub struct ListSender {
    source: Option<ListSource>,
    format: ListFormat,
    /// For MLSD: symlinks are reported with their target's facts, so the jail and the
    /// directory's jail path are kept to stat them.
    jail: Rc<Jail>,
    dir: Vec<u8>,
    writable: bool,
    now: i64,
    out: Staged,
}

/// Entries formatted per refill: a few KiB, so a listing never holds a whole directory.
const LIST_REFILL_BYTES: usize = 16 * 1024;

impl ListSender {
    pub fn new(
        source: ListSource,
        format: ListFormat,
        jail: Rc<Jail>,
        dir: Vec<u8>,
        writable: bool,
        now: i64,
    ) -> ListSender {
        ListSender {
            source: Some(source),
            format,
            jail,
            dir,
            writable,
            now,
            out: Staged::new(),
        }
    }

    fn pump(&mut self, stream: &mut impl DataStream, budget: usize) -> Result<Step, TransferError> {
        let mut moved = 0;
        loop {
            if !self.out.drain(stream, &mut moved)? {
                return Ok(Step::Blocked);
            }
            if self.source.is_none() {
                return Ok(Step::Done);
            }
            if moved >= budget {
                return Ok(Step::Yield);
            }
            self.refill().map_err(TransferError::Disk)?;
        }
    }

    /// Formats the next entries; drops the source when it is exhausted.
    fn refill(&mut self) -> io::Result<()> {
        match self.source.take() {
            Some(ListSource::Single {
                name,
                stat,
                link_target,
            }) => {
                self.push_entry(&name, &stat, link_target.as_deref());
            }
            Some(ListSource::Dir(mut dir)) => {
                while self.out.buf.len() < LIST_REFILL_BYTES {
                    match dir.next() {
                        Some(Ok(entry)) => {
                            self.push_entry(&entry.name, &entry.stat, entry.link_target.as_deref())
                        }
                        Some(Err(e)) => return Err(e),
                        None => return Ok(()),
                    }
                }
                self.source = Some(ListSource::Dir(dir));
            }
            None => {}
        }
        Ok(())
    }

    fn push_entry(&mut self, name: &[u8], stat: &Stat, link_target: Option<&[u8]>) {
        let out = &mut self.out.buf;
        match self.format {
            ListFormat::Long => listing::push_list_line(out, name, stat, link_target, self.now),
            ListFormat::Names => listing::push_nlst_line(out, name),
            ListFormat::Facts(facts) => {
                let followed = (stat.kind == FileKind::Symlink)
                    .then(|| self.jail.stat(&child_path(&self.dir, name)).ok())
                    .flatten();
                listing::push_facts_line(
                    out,
                    name,
                    followed.as_ref().unwrap_or(stat),
                    facts,
                    self.writable,
                )
            }
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
    use std::io::{Seek, SeekFrom};

    /// A data connection that accepts or yields at most `step` bytes per call and returns
    /// `WouldBlock` every other call, to prove the pumps resume correctly.
    struct Choppy {
        input: Vec<u8>,
        read_pos: usize,
        written: Vec<u8>,
        step: usize,
        block_next: bool,
    }

    impl Choppy {
        fn new(input: &[u8], step: usize) -> Choppy {
            Choppy {
                input: input.to_vec(),
                read_pos: 0,
                written: Vec::new(),
                step,
                block_next: false,
            }
        }

        fn blocks(&mut self) -> bool {
            self.block_next = !self.block_next;
            !self.block_next
        }
    }

    impl DataStream for Choppy {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.blocks() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf
                .len()
                .min(self.step)
                .min(self.input.len() - self.read_pos);
            buf[..n].copy_from_slice(&self.input[self.read_pos..self.read_pos + n]);
            self.read_pos += n;
            Ok(n)
        }

        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.blocks() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.step);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn send_file(&mut self, file: &File, offset: &mut u64, len: usize) -> io::Result<usize> {
            if self.blocks() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut buf = vec![0; len.min(self.step)];
            let n = read_at(file, &mut buf, *offset)?;
            self.written.extend_from_slice(&buf[..n]);
            *offset += n as u64;
            Ok(n)
        }
    }

    fn temp_file(content: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!(
            "leanftpd-transfer-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file.write_all(content).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        file
    }

    /// Pumps until done, counting the calls, with a small budget so `Yield` happens too.
    fn run(job: &mut Job, stream: &mut Choppy) -> usize {
        for calls in 1..100_000 {
            match job.pump(stream, 7) {
                Ok(Step::Done) => return calls,
                Ok(_) => {}
                Err(e) => panic!("pump failed: {e:?}"),
            }
        }
        panic!("pump never finished");
    }

    fn read_all(mut file: File) -> Vec<u8> {
        let mut out = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn binary_send_from_offset_survives_would_block() {
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut job = Job::Send(FileSender::new(temp_file(&content), 1234, false));
        let mut stream = Choppy::new(b"", 100);
        run(&mut job, &mut stream);
        assert_eq!(stream.written, &content[1234..]);
        assert_eq!(job.bytes(), (content.len() - 1234) as u64);
    }

    #[test]
    fn ascii_send_turns_bare_lf_into_crlf_across_reads() {
        // 8192-byte reads: put a CRLF exactly across the first read boundary.
        let mut content = vec![b'x'; 8191];
        content.extend_from_slice(b"\r\nline\nend\r\n\n");
        let mut job = Job::Send(FileSender::new(temp_file(&content), 0, true));
        let mut stream = Choppy::new(b"", 333);
        run(&mut job, &mut stream);
        let mut expected = vec![b'x'; 8191];
        expected.extend_from_slice(b"\r\nline\r\nend\r\n\r\n");
        assert_eq!(stream.written, expected);
        assert_eq!(job.bytes(), expected.len() as u64);
    }

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
        let mut stream = crate::net::stream::Stream::Plain(mio::net::TcpStream::from_std(server));
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
    fn child_path_joins_under_root_and_subdirs() {
        assert_eq!(child_path(b"", b"a"), b"a");
        assert_eq!(child_path(b"pub", b"a"), b"pub/a");
    }
}
