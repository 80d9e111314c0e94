//! A checksum over a byte range of a file: a task with no connection (HASH, XSHA256, XSHA512,
//! XSHA1, XMD5, XCRC). Each `step` reads at most one buffer (the loop's, `CHECKSUM_SLICE_BYTES`)
//! with pread and feeds it to the hash, so a 4 GiB file is hashed a slice per turn of the loop
//! and no other session waits for it.
//!
//! The range is fixed when the command is accepted (`start..end`, `end` at most the size the file
//! had then): a file that grows meanwhile (a camera still writing) is hashed up to where it
//! ended when the client asked, as a download started then would have seen it. A file that
//! shrinks below `end` fails with `ChecksumError::Shrank`: a hash of fewer bytes than the reply
//! names would be wrong. The hashes are RustCrypto's and crc32fast's, never hand-written.

use std::fmt::Write;
use std::fs::File;
use std::io;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};

use super::{read_at, Step};
use crate::proto::hash::Algorithm;

/// A running hash of one algorithm.
enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
    Sha1(Sha1),
    Md5(Md5),
    Crc32(crc32fast::Hasher),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
            Algorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            Algorithm::Md5 => Hasher::Md5(Md5::new()),
            Algorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Crc32(h) => h.update(bytes),
        }
    }

    /// The value in lower-case hex (the draft: SHOULD be lower case); CRC32 as 8 digits.
    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => hex(&h.finalize()),
            Hasher::Sha512(h) => hex(&h.finalize()),
            Hasher::Sha1(h) => hex(&h.finalize()),
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Crc32(h) => format!("{:08x}", h.finalize()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Why a checksum did not finish.
#[derive(Debug)]
pub enum ChecksumError {
    /// Reading the file failed.
    Disk(io::Error),
    /// The file ended before the range did (it was truncated meanwhile), `at` this offset.
    Shrank { at: u64 },
}

/// A finished checksum: what the reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub start: u64,
    pub end: u64,
    pub hex: String,
}

pub struct Checksum {
    file: File,
    algorithm: Algorithm,
    hasher: Hasher,
    start: u64,
    /// The next byte to read.
    offset: u64,
    end: u64,
}

impl Checksum {
    /// Hashes `start..end` of `file` with `algorithm`; the caller checked `start <= end`.
    pub fn new(file: File, algorithm: Algorithm, start: u64, end: u64) -> Checksum {
        Checksum {
            file,
            algorithm,
            hasher: Hasher::new(algorithm),
            start,
            offset: start,
            end: end.max(start),
        }
    }

    /// Reads and hashes at most `buf.len()` bytes (one pread): `Yield` while bytes are left,
    /// `Done` once the range is hashed (then `finish`).
    pub fn step(&mut self, buf: &mut [u8]) -> Result<Step, ChecksumError> {
        let left = self.end - self.offset;
        if left == 0 {
            return Ok(Step::Done);
        }
        let len = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = read_at(&self.file, &mut buf[..len], self.offset).map_err(ChecksumError::Disk)?;
        if n == 0 {
            return Err(ChecksumError::Shrank { at: self.offset });
        }
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(if self.offset == self.end {
            Step::Done
        } else {
            Step::Yield
        })
    }

    /// Bytes hashed so far.
    pub fn bytes(&self) -> u64 {
        self.offset - self.start
    }

    pub fn finish(self) -> Digest {
        Digest {
            algorithm: self.algorithm,
            start: self.start,
            end: self.end,
            hex: self.hasher.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_file;
    use super::*;

    /// Steps `task` to its end with a buffer of `slice` bytes; the digest and the steps taken.
    fn run(mut task: Checksum, slice: usize) -> (Digest, usize) {
        let mut buf = vec![0; slice];
        for steps in 1..1_000_000 {
            match task.step(&mut buf) {
                Ok(Step::Done) => return (task.finish(), steps),
                Ok(Step::Yield) => {}
                other => panic!("step: {other:?}"),
            }
        }
        panic!("the checksum never finished");
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    fn whole(algorithm: Algorithm, bytes: &[u8], slice: usize) -> Digest {
        let task = Checksum::new(temp_file(bytes), algorithm, 0, bytes.len() as u64);
        run(task, slice).0
    }

    #[test]
    fn known_values_of_every_algorithm() {
        // "abc": FIPS 180 and RFC 1321 test vectors; CRC32 of "123456789" is the check value.
        let abc = [
            (Algorithm::Sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (Algorithm::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (Algorithm::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (Algorithm::Sha512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        ];
        for (algorithm, hex) in abc {
            assert_eq!(whole(algorithm, b"abc", 2).hex, hex, "{algorithm:?}");
        }
        assert_eq!(whole(Algorithm::Crc32, b"123456789", 4).hex, "cbf43926");
        // An empty file has a hash too (and takes one step).
        let empty = whole(Algorithm::Md5, b"", 1024);
        assert_eq!(empty.hex, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!((empty.start, empty.end), (0, 0));
    }

    /// Many slices give the value one slice gives, for every algorithm, and each step reads
    /// at most one slice.
    #[test]
    fn a_file_of_many_slices_hashes_as_one_piece() {
        let bytes = content(1_000_003);
        for algorithm in Algorithm::ALL {
            let one = whole(algorithm, &bytes, 2 << 20);
            let task = Checksum::new(temp_file(&bytes), algorithm, 0, bytes.len() as u64);
            let (many, steps) = run(task, 4096);
            assert_eq!(many, one, "{algorithm:?}");
            assert_eq!(steps, bytes.len().div_ceil(4096), "{algorithm:?}");
        }
    }

    #[test]
    fn a_range_hashes_only_its_bytes() {
        let bytes = content(300_000);
        let (start, end) = (12_345u64, 250_001u64);
        let expected = whole(
            Algorithm::Sha256,
            &bytes[start as usize..end as usize],
            1 << 20,
        );
        let task = Checksum::new(temp_file(&bytes), Algorithm::Sha256, start, end);
        let (digest, _) = run(task, 7000);
        assert_eq!(digest.hex, expected.hex);
        assert_eq!((digest.start, digest.end), (start, end));
    }

    /// The file grows between slices: the range fixed at the start is what gets hashed.
    #[test]
    fn bytes_appended_during_the_hash_are_not_hashed() {
        use std::os::unix::fs::FileExt;
        let bytes = content(100_000);
        let file = temp_file(&bytes);
        let mut task = Checksum::new(file.try_clone().unwrap(), Algorithm::Sha1, 0, 100_000);
        let mut buf = vec![0; 30_000];
        assert_eq!(task.step(&mut buf).unwrap(), Step::Yield);
        file.write_all_at(b"more bytes that came later", 100_000)
            .unwrap();
        let (digest, _) = run(task, 30_000);
        assert_eq!(digest.hex, whole(Algorithm::Sha1, &bytes, 1 << 20).hex);
        assert_eq!(digest.end, 100_000);
    }

    /// The file is truncated between slices: an error, never a hash of fewer bytes.
    #[test]
    fn a_file_that_shrinks_during_the_hash_fails() {
        let bytes = content(100_000);
        let file = temp_file(&bytes);
        let mut task = Checksum::new(file.try_clone().unwrap(), Algorithm::Md5, 0, 100_000);
        let mut buf = vec![0; 30_000];
        assert_eq!(task.step(&mut buf).unwrap(), Step::Yield);
        file.set_len(50_000).unwrap();
        assert_eq!(task.step(&mut buf).unwrap(), Step::Yield);
        match task.step(&mut buf) {
            Err(ChecksumError::Shrank { at: 50_000 }) => {}
            other => panic!("{other:?}"),
        }
    }
}
