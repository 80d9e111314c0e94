//! The file system layer: every file system operation of a session, resolved beneath the
//! session's root directory descriptor so that no `..`, absolute path or symlink leaves it.
//! Uses openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) (Linux 5.6+), falling back to a walk
//! component by component with O_NOFOLLOW where openat2 is missing (ENOSYS). No sockets here and
//! no raw libc calls: every system call goes through `crate::sys::fs`. Nothing here knows about
//! FTP replies; errors are plain `io::Error`s carrying the errno.
//!
//! Two kinds of path meet here. A *virtual path* is what the session shows: absolute, `/`-separated,
//! normalized (`/`, `/pub/a.txt`). A *jail path* is a virtual path without its leading `/`
//! (`""` for the root itself), the form every `Jail` method takes.
//!
//! - this file: virtual paths (`resolve`, `jail_path`) and the types the jail answers with.
//! - `jail.rs`: `Jail`, the one door (`open_beneath`) and every operation on a jail path.
//! - `walk.rs`: the O_NOFOLLOW walk that stands in for openat2 where the kernel lacks it.
//! - `dir.rs`: directory streams, read a bounded batch at a time.
//! - `temp.rs`: the hidden temporary file of an atomic upload (--atomic-uploads).

use std::ffi::CString;
use std::io;

use libc::c_int;

use crate::sys::errno;

mod dir;
mod jail;
mod temp;
mod walk;

pub use dir::{DirEntry, DirStream};
pub use jail::Jail;
pub use temp::{is_temp_name, TempUpload, TEMP_PREFIX};

/// Flags for a directory that is only resolved through, never read.
const DIR_PATH_FLAGS: c_int = libc::O_PATH | libc::O_DIRECTORY;

/// Joins `arg` (absolute, or relative to `cwd`) onto the virtual directory `cwd` and normalizes:
/// `.` and empty components vanish, `..` removes one component and stops at the root.
/// The result is absolute and has no trailing `/` except for the root itself.
pub fn resolve(cwd: &[u8], arg: &[u8]) -> Vec<u8> {
    let base: &[u8] = if arg.starts_with(b"/") { b"" } else { cwd };
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in base.split(|&b| b == b'/').chain(arg.split(|&b| b == b'/')) {
        match part {
            b"" | b"." => {}
            // SECURITY: `..` at the root stays at the root, as in RFC 959's view of a file system.
            b".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    out
}

/// The jail path of a virtual path from `resolve`: without the leading `/`.
pub fn jail_path(virtual_path: &[u8]) -> &[u8] {
    virtual_path.strip_prefix(b"/").unwrap_or(virtual_path)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// What LIST, MLSD, SIZE and MDTM need of an inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub kind: FileKind,
    /// Permission bits, 0o7777 at most.
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Modification time, seconds since the Unix epoch (UTC).
    pub mtime: i64,
}

/// How an upload opens its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// STOR: create or truncate.
    Truncate,
    /// APPE: create or append.
    Append,
    /// STOU: create; fail with EEXIST if the name is taken.
    CreateNew,
    /// STOR after REST n: create or open without truncating, positioned at n; the file is
    /// truncated to n first so that no stale tail survives a resumed upload.
    Resume(u64),
}

// The field types differ between targets (nlink_t, off_t, time_t): widen what is narrower.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn stat_from(st: &libc::stat) -> Stat {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::File,
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    };
    Stat {
        kind,
        mode: st.st_mode & 0o7777,
        nlink: st.st_nlink as u64,
        uid: st.st_uid,
        gid: st.st_gid,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime: i64::from(st.st_mtime),
    }
}

/// A name or path for a system call: EINVAL if it holds a NUL byte.
fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| errno(libc::EINVAL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("/", "", "/"),
            ("/", "a", "/a"),
            ("/pub", "a.txt", "/pub/a.txt"),
            // An absolute argument ignores the cwd.
            ("/pub", "/etc/passwd", "/etc/passwd"),
            // `..` in every position, stopping at the root.
            ("/", "..", "/"),
            ("/", "../..", "/"),
            ("/a/b", "..", "/a"),
            ("/a/b", "../..", "/"),
            ("/a/b", "../../../..", "/"),
            ("/a", "../../etc/passwd", "/etc/passwd"),
            ("/a", "x/../y", "/a/y"),
            ("/a", "x/..", "/a"),
            ("/a", "x/y/../../..", "/"),
            ("/", "/../a", "/a"),
            ("/a/../b", "c", "/b/c"),
            // Empty components and `.` vanish; trailing `/` goes.
            ("/", "//a//b//", "/a/b"),
            ("/a", ".", "/a"),
            ("/a", "./b/./c/.", "/a/b/c"),
            ("/a/", "b/", "/a/b"),
            ("/", "/", "/"),
            ("/", "//", "/"),
            // `...` is a name like any other.
            ("/", "...", "/..."),
            ("/", "a/.../b", "/a/.../b"),
            // A cwd that is not absolute is still read from the root.
            ("a", "b", "/a/b"),
        ];
        for (cwd, arg, want) in cases {
            let got = resolve(cwd.as_bytes(), arg.as_bytes());
            assert_eq!(got, want.as_bytes(), "resolve({cwd:?}, {arg:?})");
        }
        // Not UTF-8 and NUL bytes pass through untouched (the jail rejects NUL later).
        assert_eq!(resolve(b"/\xff", b"a\0b"), b"/\xff/a\0b");
        assert_eq!(jail_path(b"/"), b"");
        assert_eq!(jail_path(b"/pub/a"), b"pub/a");
    }
}
