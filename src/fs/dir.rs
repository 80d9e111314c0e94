//! Directory streams: a directory's entries read as the data socket drains, one getdents64
//! batch at a time, each entry stat-ed without following it. Holds only the directory's own
//! descriptor, never the jail's root; opening the directory (beneath the root) is `jail.rs`'s job.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use super::{cstring, stat_from, FileKind, Stat};
use crate::sys::fs as sys;
use crate::sys::{errno, is_errno};

/// The getdents64 buffer of one open listing: room for at least seven maximal entries.
const DIR_BUF_BYTES: usize = 2048;

/// A directory's entries, read as the data socket drains (never the whole directory at once).
///
/// Holds the directory's own descriptor (closed on drop) and a small getdents64 buffer; it never
/// holds the jail's root.
pub struct DirStream {
    dir: OwnedFd,
    buf: Box<[u8]>,
    /// Next unread byte of `buf`, and the end of what the last getdents64 returned.
    pos: usize,
    len: usize,
    /// End of directory reached, or an error reported: `next` answers None from now on.
    done: bool,
}

/// One directory entry; `stat` does not follow symlinks, `link_target` is set for symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub stat: Stat,
    pub link_target: Option<Vec<u8>>,
}

impl Iterator for DirStream {
    type Item = io::Result<DirEntry>;

    /// The next entry, skipping `.` and `..`.
    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        loop {
            let name = match self.next_name() {
                Ok(Some(name)) => name,
                Ok(None) => return None,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            // Temporary uploads (--atomic-uploads) are never listed.
            if name == b"." || name == b".." || super::is_temp_name(&name) {
                continue;
            }
            match self.entry(name) {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl std::fmt::Debug for DirStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirStream")
            .field("dir", &self.dir)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Offsets in a `struct linux_dirent64`: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
const DIRENT_RECLEN_AT: usize = 16;
const DIRENT_NAME_AT: usize = 19;

impl DirStream {
    pub(super) fn new(dir: OwnedFd) -> DirStream {
        DirStream {
            dir,
            buf: vec![0; DIR_BUF_BYTES].into_boxed_slice(),
            pos: 0,
            len: 0,
            done: false,
        }
    }

    /// The next raw name from the directory, refilling the buffer when it is used up.
    fn next_name(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.pos >= self.len {
            if self.done {
                return Ok(None);
            }
            self.pos = 0;
            self.len = sys::getdents64(self.dir.as_fd(), &mut self.buf)?;
            if self.len == 0 {
                self.done = true;
                return Ok(None);
            }
        }
        let record = self
            .buf
            .get(self.pos..self.len)
            .ok_or_else(|| errno(libc::EIO))?;
        let (reclen, name) = parse_dirent(record)?;
        let name = name.to_vec();
        self.pos += reclen;
        Ok(Some(name))
    }

    /// Stats `name` without following it; None if it vanished since getdents64 listed it.
    fn entry(&self, name: Vec<u8>) -> io::Result<Option<DirEntry>> {
        let cname = cstring(&name)?;
        let st = match sys::fstatat(self.dir.as_fd(), &cname, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if is_errno(&e, libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        let stat = stat_from(&st);
        let link_target = if stat.kind == FileKind::Symlink {
            match sys::readlinkat(self.dir.as_fd(), &cname) {
                Ok(target) => Some(target),
                // Removed, or replaced by something that is no symlink: not the entry we saw.
                Err(e) if is_errno(&e, libc::ENOENT) || is_errno(&e, libc::EINVAL) => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        Ok(Some(DirEntry {
            name,
            stat,
            link_target,
        }))
    }
}

/// Splits one getdents64 record off the front of `record`: its length and its name.
fn parse_dirent(record: &[u8]) -> io::Result<(usize, &[u8])> {
    let corrupt = || errno(libc::EIO);
    let reclen_bytes = record
        .get(DIRENT_RECLEN_AT..DIRENT_RECLEN_AT + 2)
        .ok_or_else(corrupt)?;
    let reclen = usize::from(u16::from_ne_bytes([reclen_bytes[0], reclen_bytes[1]]));
    let name_field = record.get(DIRENT_NAME_AT..reclen).ok_or_else(corrupt)?;
    let end = name_field
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(corrupt)?;
    Ok((reclen, &name_field[..end]))
}
