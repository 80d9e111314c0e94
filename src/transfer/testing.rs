//! Test doubles for the transfer tasks.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use super::{read_at, DataStream, Job, Step};

/// A data connection that accepts or yields at most `step` bytes per call and returns
/// `WouldBlock` every other call, to prove the pumps resume correctly.
pub(super) struct Choppy {
    pub(super) input: Vec<u8>,
    pub(super) read_pos: usize,
    pub(super) written: Vec<u8>,
    pub(super) step: usize,
    pub(super) block_next: bool,
}

impl Choppy {
    pub(super) fn new(input: &[u8], step: usize) -> Choppy {
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

pub(super) fn temp_file(content: &[u8]) -> File {
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
pub(super) fn run(job: &mut Job, stream: &mut Choppy) -> usize {
    for calls in 1..100_000 {
        match job.pump(stream, 7) {
            Ok(Step::Done) => return calls,
            Ok(_) => {}
            Err(e) => panic!("pump failed: {e:?}"),
        }
    }
    panic!("pump never finished");
}

pub(super) fn read_all(mut file: File) -> Vec<u8> {
    let mut out = Vec::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut out).unwrap();
    out
}

/// A stream without sendfile or splice, as a TLS stream will be: the tasks must copy.
pub(super) struct NoZeroCopy(pub(super) Choppy);

impl DataStream for NoZeroCopy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
}

/// Pumps `job` to its end with `budget`, and returns the most bytes one pump moved over the
/// connection (`moved` reads the stream's byte count).
pub(super) fn max_per_pump<S: DataStream>(
    job: &mut Job,
    stream: &mut S,
    budget: usize,
    moved: impl Fn(&S) -> usize,
) -> usize {
    let mut most = 0;
    for _ in 0..100_000 {
        let before = moved(stream);
        let step = job.pump(stream, budget).expect("pump failed");
        most = most.max(moved(stream) - before);
        if step == Step::Done {
            return most;
        }
    }
    panic!("the job never finished");
}
