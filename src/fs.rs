//! The jail: virtual paths and every file system operation of a session, resolved beneath the
//! session's root directory descriptor so that no `..`, absolute path or symlink leaves it.
//! Uses openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) (Linux 5.6+), falling back to a walk
//! component by component with O_NOFOLLOW where openat2 is missing (ENOSYS). No sockets here.
//!
//! Two kinds of path meet here. A *virtual path* is what the session shows: absolute, `/`-separated,
//! normalized (`/`, `/pub/a.txt`). A *jail path* is a virtual path without its leading `/`
//! (`""` for the root itself), the form every `Jail` method takes.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Joins `arg` (absolute, or relative to `cwd`) onto the virtual directory `cwd` and normalizes:
/// `.` and empty components vanish, `..` removes one component and stops at the root.
/// The result is absolute and has no trailing `/` except for the root itself.
pub fn resolve(cwd: &[u8], arg: &[u8]) -> Vec<u8> {
    let _ = (cwd, arg);
    todo!("fs::resolve")
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

/// A directory's entries, read as the data socket drains (never the whole directory at once).
pub struct DirStream {
    _private: (),
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
        todo!("DirStream::next")
    }
}

/// A session's root: an O_PATH descriptor of its directory. Every method takes a jail path.
#[derive(Debug)]
pub struct Jail {
    root: OwnedFd,
}

impl Jail {
    /// Opens `root` (must be a directory).
    pub fn open(root: &Path) -> io::Result<Jail> {
        let _ = root;
        todo!("Jail::open")
    }

    /// Opens a regular file for reading, following symlinks that stay inside; EISDIR for a directory.
    pub fn open_read(&self, path: &[u8]) -> io::Result<File> {
        let _ = (path, &self.root);
        todo!("Jail::open_read")
    }

    /// Opens a file for an upload as `mode` says (mode 0o644 for a new file, before umask).
    pub fn open_write(&self, path: &[u8], mode: WriteMode) -> io::Result<File> {
        let _ = (path, mode);
        todo!("Jail::open_write")
    }

    /// Follows symlinks (inside the jail).
    pub fn stat(&self, path: &[u8]) -> io::Result<Stat> {
        let _ = path;
        todo!("Jail::stat")
    }

    /// Does not follow a symlink in the last component.
    pub fn lstat(&self, path: &[u8]) -> io::Result<Stat> {
        let _ = path;
        todo!("Jail::lstat")
    }

    pub fn read_link(&self, path: &[u8]) -> io::Result<Vec<u8>> {
        let _ = path;
        todo!("Jail::read_link")
    }

    pub fn read_dir(&self, path: &[u8]) -> io::Result<DirStream> {
        let _ = path;
        todo!("Jail::read_dir")
    }

    /// mkdir with mode 0o755 (before umask).
    pub fn create_dir(&self, path: &[u8]) -> io::Result<()> {
        let _ = path;
        todo!("Jail::create_dir")
    }

    pub fn remove_dir(&self, path: &[u8]) -> io::Result<()> {
        let _ = path;
        todo!("Jail::remove_dir")
    }

    /// Removes a file or a symlink (never what the symlink points to).
    pub fn remove_file(&self, path: &[u8]) -> io::Result<()> {
        let _ = path;
        todo!("Jail::remove_file")
    }

    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        let _ = (from, to);
        todo!("Jail::rename")
    }

    /// Sets the modification time (seconds since the epoch, UTC); access time unchanged.
    pub fn set_mtime(&self, path: &[u8], mtime: i64) -> io::Result<()> {
        let _ = (path, mtime);
        todo!("Jail::set_mtime")
    }

    /// chmod to `mode & 0o7777`.
    pub fn set_mode(&self, path: &[u8], mode: u32) -> io::Result<()> {
        let _ = (path, mode);
        todo!("Jail::set_mode")
    }
}
