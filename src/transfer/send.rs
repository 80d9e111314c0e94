//! RETR: a file from an offset to the data connection. TYPE I goes by sendfile(2), page cache
//! to socket, where the stream can; TYPE A (bare LF -> CRLF) and streams without sendfile (TLS)
//! copy through a buffer read with pread at the offset.

use std::fs::File;
use std::io;

use super::{read_at, DataStream, Drained, Staged, Step, TransferError};
use crate::config::{ASCII_READ_BYTES, SENDFILE_CHUNK_BYTES, TRANSFER_BUFFER_BYTES};

pub struct FileSender {
    file: File,
    offset: u64,
    pub(super) bytes: u64,
    route: Route,
}

enum Route {
    /// The kernel copies page cache to the socket: no buffer here.
    Sendfile,
    /// Read into a buffer (converted in TYPE A), then written.
    Copy(CopyOut),
}

struct CopyOut {
    staged: Staged,
    ascii: bool,
    /// The last byte read from the file, so a CRLF split across two reads stays CRLF.
    last: u8,
    eof: bool,
}

impl CopyOut {
    fn new(ascii: bool) -> CopyOut {
        CopyOut {
            staged: Staged::new(),
            ascii,
            last: 0,
            eof: false,
        }
    }
}

impl FileSender {
    pub fn new(file: File, offset: u64, ascii: bool) -> FileSender {
        let route = if ascii {
            Route::Copy(CopyOut::new(true))
        } else {
            Route::Sendfile
        };
        FileSender {
            file,
            offset,
            bytes: 0,
            route,
        }
    }

    pub(super) fn pump(
        &mut self,
        stream: &mut impl DataStream,
        budget: usize,
    ) -> Result<Step, TransferError> {
        if let Route::Sendfile = self.route {
            match self.pump_sendfile(stream, budget)? {
                Some(step) => return Ok(step),
                // The stream cannot sendfile: copy from here on, from the same offset.
                None => self.route = Route::Copy(CopyOut::new(false)),
            }
        }
        let Route::Copy(copy) = &mut self.route else {
            unreachable!("the copy route is chosen above");
        };
        let mut moved = 0;
        loop {
            let drained = copy.staged.drain(stream, &mut moved, budget)?;
            self.bytes = copy.staged.bytes;
            match drained {
                Drained::Blocked => return Ok(Step::Blocked),
                Drained::Budget => return Ok(Step::Yield),
                Drained::Empty if copy.eof => return Ok(Step::Done),
                Drained::Empty if moved >= budget => return Ok(Step::Yield),
                Drained::Empty => {}
            }
            let n = refill(&self.file, self.offset, copy).map_err(TransferError::Disk)?;
            self.offset += n as u64;
        }
    }

    /// None when the stream refuses sendfile (nothing was sent by the refused call).
    fn pump_sendfile(
        &mut self,
        stream: &mut impl DataStream,
        budget: usize,
    ) -> Result<Option<Step>, TransferError> {
        let mut moved = 0;
        while moved < budget {
            let len = SENDFILE_CHUNK_BYTES.min(budget - moved);
            match stream.send_file(&self.file, &mut self.offset, len) {
                // End of file: the file may have grown since the 150, so EOF is the only end.
                Ok(0) => return Ok(Some(Step::Done)),
                Ok(n) => {
                    moved += n;
                    self.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(Step::Blocked)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::Unsupported => return Ok(None),
                // sendfile reports disk and socket errors alike; EIO and friends are the disk's.
                Err(e) if is_disk_error(&e) => return Err(TransferError::Disk(e)),
                Err(e) => return Err(TransferError::Network(e)),
            }
        }
        Ok(Some(Step::Yield))
    }
}

/// Reads the next piece of the file at `offset` into the staged buffer (converting bare LFs in
/// TYPE A); returns the bytes read from the file, 0 at its end.
fn refill(file: &File, offset: u64, copy: &mut CopyOut) -> io::Result<usize> {
    let n = if copy.ascii {
        let mut raw = [0u8; ASCII_READ_BYTES];
        let n = read_at(file, &mut raw, offset)?;
        let out = &mut copy.staged.buf;
        for &b in &raw[..n] {
            // Only bare LFs become CRLF, so a file that already has CRLF is sent unchanged.
            if b == b'\n' && copy.last != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            copy.last = b;
        }
        n
    } else {
        let buf = &mut copy.staged.buf;
        buf.resize(TRANSFER_BUFFER_BYTES, 0);
        let n = read_at(file, buf, offset)?;
        buf.truncate(n);
        n
    };
    copy.eof = n == 0;
    Ok(n)
}

fn is_disk_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO) | Some(libc::EOVERFLOW) | Some(libc::ESPIPE)
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Job;
    use super::*;

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

    /// A stream that cannot sendfile (TLS) gets the same bytes through the copy route,
    /// across several buffer refills and from an offset.
    #[test]
    fn binary_send_copies_when_the_stream_cannot_sendfile() {
        let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut job = Job::Send(FileSender::new(temp_file(&content), 1234, false));
        let mut stream = NoZeroCopy(Choppy::new(b"", 5000));
        let most = max_per_pump(&mut job, &mut stream, 64 * 1024, |s| s.0.written.len());
        assert_eq!(stream.0.written, &content[1234..]);
        assert_eq!(job.bytes(), (content.len() - 1234) as u64);
        assert!(most <= 64 * 1024);
    }

    /// The turn's budget holds exactly: no pump moves more than it, on any route.
    #[test]
    fn no_send_pump_moves_more_than_its_budget() {
        let content: Vec<u8> = (0..50_000u32)
            .map(|i| if i % 10 == 0 { b'\n' } else { b'a' })
            .collect();
        for ascii in [false, true] {
            let mut job = Job::Send(FileSender::new(temp_file(&content), 0, ascii));
            let mut stream = Choppy::new(b"", 1000);
            let most = max_per_pump(&mut job, &mut stream, 700, |s| s.written.len());
            assert!(most <= 700, "ascii {ascii}: {most} bytes in one pump");
            let mut job = Job::Send(FileSender::new(temp_file(&content), 0, ascii));
            let mut stream = NoZeroCopy(Choppy::new(b"", 1000));
            let most = max_per_pump(&mut job, &mut stream, 700, |s| s.0.written.len());
            assert!(most <= 700, "copy, ascii {ascii}: {most} bytes in one pump");
        }
    }
}
