//! The jail: virtual paths and every file system operation of a session, resolved beneath the
//! session's root directory descriptor so that no `..`, absolute path or symlink leaves it.
//! Uses openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) (Linux 5.6+), falling back to a walk
//! component by component with O_NOFOLLOW where openat2 is missing (ENOSYS). No sockets here.
//!
//! Two kinds of path meet here. A *virtual path* is what the session shows: absolute, `/`-separated,
//! normalized (`/`, `/pub/a.txt`). A *jail path* is a virtual path without its leading `/`
//! (`""` for the root itself), the form every `Jail` method takes.
//!
//! How confinement works (read this before changing anything below):
//! - Every path is resolved relative to the root descriptor, never by string: `open_beneath` is
//!   the one door. With openat2 the kernel enforces RESOLVE_BENEATH (absolute paths, absolute
//!   symlinks and `..` above the root fail with EXDEV). Without openat2, `walk_beneath` gives the
//!   same answers by opening one component at a time with O_NOFOLLOW and interpreting symlinks
//!   itself.
//! - Operations on the last component itself (lstat, unlink, mkdir, rename, readlink, utimens,
//!   chmod) resolve the *parent* with `open_beneath` and then call the `*at` syscall with a single
//!   name, never following a symlink in that name.
//! - Errors are plain `io::Error`s carrying the errno; the session maps them to reply codes.
//!
//! Decisions on cases the interface leaves open:
//! - Only regular files are opened for transfers: a directory gives EISDIR, anything else (FIFO,
//!   device, socket) EACCES. Files are opened O_NONBLOCK (so a FIFO can never block the loop),
//!   which is cleared again once the file is known to be regular.
//! - `WriteMode::Resume(n)`: a file longer than `n` is truncated to `n`; a shorter one is kept and
//!   the write position is still `n` (the gap reads as zeros, as with `lseek` past the end).
//! - `set_mtime` acts on the last component itself (AT_SYMLINK_NOFOLLOW): on a symlink it sets
//!   the link's own time, never the time of what it points to.
//! - `set_mode` refuses symlinks and special files with EPERM. Because chmod cannot be given an
//!   O_PATH descriptor on the kernels we support, the target is reopened O_RDONLY|O_NOFOLLOW and
//!   changed with fchmod: race-free, but a file the server's user cannot read cannot be chmod-ed.
//! - A final name of `.` or `..`, or an empty one (trailing `/`), is EINVAL; the empty jail path
//!   (the root) is valid everywhere and the kernel answers for it (EEXIST, EBUSY, ...).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use libc::c_int;

/// Symlinks one resolution may follow; the kernel's MAXSYMLINKS, applied by the fallback walk too.
const MAX_SYMLINKS: u32 = 40;
/// Longest path (and symlink target) accepted, the terminating NUL included (PATH_MAX).
const PATH_MAX_BYTES: usize = libc::PATH_MAX as usize;
/// The getdents64 buffer of one open listing: room for at least seven maximal entries.
const DIR_BUF_BYTES: usize = 2048;
/// How often openat2 is retried when the kernel reports a concurrent rename (EAGAIN).
const OPENAT2_RETRIES: u32 = 8;
/// Permission bits of a new file and a new directory (before the umask).
const NEW_FILE_MODE: libc::mode_t = 0o644;
const NEW_DIR_MODE: libc::mode_t = 0o755;
/// Flags for a directory that is only resolved through, never read.
const DIR_PATH_FLAGS: c_int = libc::O_PATH | libc::O_DIRECTORY;

/// Set once openat2 answered ENOSYS: from then on every jail walks (the kernel will not change).
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

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
            if name == b"." || name == b".." {
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
    fn new(dir: OwnedFd) -> DirStream {
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
            self.len = getdents64(self.dir.as_fd(), &mut self.buf)?;
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
        let st = match fstatat(self.dir.as_fd(), &cname, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if is_errno(&e, libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        let stat = stat_from(&st);
        let link_target = if stat.kind == FileKind::Symlink {
            match readlinkat(self.dir.as_fd(), &cname) {
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

/// A session's root: an O_PATH descriptor of its directory. Every method takes a jail path.
#[derive(Debug)]
pub struct Jail {
    root: OwnedFd,
    /// Resolve with the O_NOFOLLOW walk even where openat2 exists (tests run both paths).
    force_fallback: bool,
}

impl Jail {
    /// Opens `root` (must be a directory).
    pub fn open(root: &Path) -> io::Result<Jail> {
        let path = cstring(root.as_os_str().as_bytes())?;
        // SAFETY: `path` is NUL-terminated and outlives the call.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        let jail = Jail {
            root: owned_fd(fd)?,
            force_fallback: false,
        };
        jail.probe_openat2();
        Ok(jail)
    }

    /// Container seccomp profiles older than openat2 answer it with EPERM, not ENOSYS: probe it
    /// once on the root itself, where EPERM cannot be a real answer, and walk if it fails so.
    fn probe_openat2(&self) {
        if OPENAT2_MISSING.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) =
            openat2_beneath(self.root.as_fd(), c".", DIR_PATH_FLAGS | libc::O_CLOEXEC, 0)
        {
            if is_errno(&e, libc::ENOSYS) || is_errno(&e, libc::EPERM) {
                log::warn!("openat2 unavailable ({e}): resolving paths with the O_NOFOLLOW walk");
                OPENAT2_MISSING.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Opens a regular file for reading, following symlinks that stay inside; EISDIR for a directory.
    pub fn open_read(&self, path: &[u8]) -> io::Result<File> {
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
        regular_file(self.open_beneath(path, flags, 0)?)
    }

    /// Opens a file for an upload as `mode` says (mode 0o644 for a new file, before umask).
    pub fn open_write(&self, path: &[u8], mode: WriteMode) -> io::Result<File> {
        let how = match mode {
            WriteMode::Truncate => libc::O_TRUNC,
            WriteMode::Append => libc::O_APPEND,
            WriteMode::CreateNew => libc::O_EXCL,
            WriteMode::Resume(_) => 0,
        };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_NONBLOCK | libc::O_NOCTTY | how;
        let mut file = regular_file(self.open_beneath(path, flags, NEW_FILE_MODE)?)?;
        if let WriteMode::Resume(offset) = mode {
            if file.metadata()?.len() > offset {
                file.set_len(offset)?;
            }
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(file)
    }

    /// Follows symlinks (inside the jail).
    pub fn stat(&self, path: &[u8]) -> io::Result<Stat> {
        let fd = self.open_beneath(path, libc::O_PATH, 0)?;
        Ok(stat_from(&fstat(fd.as_fd())?))
    }

    /// Does not follow a symlink in the last component.
    pub fn lstat(&self, path: &[u8]) -> io::Result<Stat> {
        let (dir, name) = self.parent_and_name(path)?;
        Ok(stat_from(&fstatat(
            dir.as_fd(),
            &name,
            libc::AT_SYMLINK_NOFOLLOW,
        )?))
    }

    pub fn read_link(&self, path: &[u8]) -> io::Result<Vec<u8>> {
        let (dir, name) = self.parent_and_name(path)?;
        readlinkat(dir.as_fd(), &name)
    }

    pub fn read_dir(&self, path: &[u8]) -> io::Result<DirStream> {
        let dir = self.open_beneath(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(DirStream::new(dir))
    }

    /// mkdir with mode 0o755 (before umask).
    pub fn create_dir(&self, path: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(path)?;
        // SAFETY: `name` is NUL-terminated; `dir` is an open descriptor.
        cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), NEW_DIR_MODE) })
    }

    pub fn remove_dir(&self, path: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(path)?;
        unlinkat(dir.as_fd(), &name, libc::AT_REMOVEDIR)
    }

    /// Removes a file or a symlink (never what the symlink points to).
    pub fn remove_file(&self, path: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(path)?;
        unlinkat(dir.as_fd(), &name, 0)
    }

    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        let (from_dir, from_name) = self.parent_and_name(from)?;
        let (to_dir, to_name) = self.parent_and_name(to)?;
        // SECURITY: both parents are resolved beneath the root and renameat never follows a
        // symlink in either final name, so nothing moves out of or into the jail.
        // SAFETY: both names are NUL-terminated; both descriptors are open.
        cvt(unsafe {
            libc::renameat(
                from_dir.as_raw_fd(),
                from_name.as_ptr(),
                to_dir.as_raw_fd(),
                to_name.as_ptr(),
            )
        })
    }

    /// Sets the modification time (seconds since the epoch, UTC); access time unchanged.
    pub fn set_mtime(&self, path: &[u8], mtime: i64) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(path)?;
        let tv_sec = libc::time_t::try_from(mtime).map_err(|_| errno(libc::EINVAL))?;
        let times = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec { tv_sec, tv_nsec: 0 },
        ];
        // SECURITY: AT_SYMLINK_NOFOLLOW: a symlink gets its own time; its target is never touched.
        // SAFETY: `name` is NUL-terminated and `times` holds the two timespecs utimensat reads.
        cvt(unsafe {
            libc::utimensat(
                dir.as_raw_fd(),
                name.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    }

    /// chmod to `mode & 0o7777`.
    pub fn set_mode(&self, path: &[u8], mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(path)?;
        // SECURITY: fchmodat follows a symlink in its final name without any jail check, so it
        // is never used. The name is opened without following (O_PATH, to look before opening
        // anything for real), then reopened O_NOFOLLOW and changed through its descriptor; the
        // inode check catches a swap between the two opens.
        let probe = openat(dir.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let probed = fstat(probe.as_fd())?;
        let extra = match probed.st_mode & libc::S_IFMT {
            libc::S_IFREG => 0,
            libc::S_IFDIR => libc::O_DIRECTORY,
            _ => return Err(errno(libc::EPERM)),
        };
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | extra;
        let fd = openat(dir.as_fd(), &name, flags, 0)?;
        let opened = fstat(fd.as_fd())?;
        if (opened.st_dev, opened.st_ino) != (probed.st_dev, probed.st_ino) {
            return Err(errno(libc::EAGAIN));
        }
        let mode = (mode & 0o7777) as libc::mode_t;
        // SAFETY: `fd` is an open descriptor.
        cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
    }

    /// Opens `path` beneath the root, following symlinks that stay inside, with `flags`
    /// (O_CLOEXEC is added) and `mode` for O_CREAT.
    fn open_beneath(&self, path: &[u8], flags: c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
        check_path(path)?;
        let flags = flags | libc::O_CLOEXEC;
        if !self.force_fallback && !OPENAT2_MISSING.load(Ordering::Relaxed) {
            let name = cstring(if path.is_empty() { b"." } else { path })?;
            match openat2_beneath(self.root.as_fd(), &name, flags, mode) {
                Err(e) if is_errno(&e, libc::ENOSYS) => {
                    OPENAT2_MISSING.store(true, Ordering::Relaxed)
                }
                result => return result,
            }
        }
        walk_beneath(self.root.as_fd(), path, flags, mode)
    }

    /// The parent directory of `path`, resolved beneath the root, and the final name, for the
    /// `*at` calls that act on the last component itself. The root itself is (root, ".").
    fn parent_and_name(&self, path: &[u8]) -> io::Result<(OwnedFd, CString)> {
        check_path(path)?;
        if path.is_empty() {
            return Ok((self.open_beneath(b"", DIR_PATH_FLAGS, 0)?, c".".to_owned()));
        }
        // The parent keeps its trailing `/`, so that a stray leading `/` fails like elsewhere.
        let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
            Some(slash) => path.split_at(slash + 1),
            None => (&b""[..], path),
        };
        if matches!(name, b"" | b"." | b"..") {
            return Err(errno(libc::EINVAL));
        }
        let name = cstring(name)?;
        Ok((self.open_beneath(parent, DIR_PATH_FLAGS, 0)?, name))
    }
}

/// Rejects what no file system call could take: a NUL byte (EINVAL), PATH_MAX or more bytes.
fn check_path(path: &[u8]) -> io::Result<()> {
    if path.contains(&0) {
        return Err(errno(libc::EINVAL));
    }
    if path.len() >= PATH_MAX_BYTES {
        return Err(errno(libc::ENAMETOOLONG));
    }
    Ok(())
}

/// openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, retried while the kernel reports a
/// concurrent rename (EAGAIN).
fn openat2_beneath(
    dir: BorrowedFd,
    path: &CStr,
    flags: c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain integers; all zero is a valid value (and what unknown fields
    // of a newer struct must be).
    let mut how: libc::open_how = unsafe { mem::zeroed() };
    how.flags = u64::try_from(flags).map_err(|_| errno(libc::EINVAL))?;
    how.mode = if flags & libc::O_CREAT != 0 {
        u64::from(mode)
    } else {
        0
    };
    // SECURITY: the kernel resolves `path` beneath `dir`: absolute paths, absolute symlinks and
    // `..` above `dir` fail with EXDEV; /proc magic links are refused.
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    for _ in 0..OPENAT2_RETRIES {
        // SAFETY: `path` is NUL-terminated, `how` lives across the call and its size is passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                mem::size_of::<libc::open_how>(),
            )
        };
        match owned_fd(c_int::try_from(fd).unwrap_or(-1)) {
            Err(e) if is_errno(&e, libc::EAGAIN) => continue,
            result => return result,
        }
    }
    Err(errno(libc::EAGAIN))
}

/// The fallback for kernels without openat2: opens `path` beneath `root` one component at a
/// time, giving the answers openat2 with RESOLVE_BENEATH would give.
fn walk_beneath(
    root: BorrowedFd,
    path: &[u8],
    flags: c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SECURITY: nothing absolute, ever (RESOLVE_BENEATH answers EXDEV too).
    if path.starts_with(b"/") {
        return Err(errno(libc::EXDEV));
    }
    // A trailing `/` asks for a directory, as it does of the kernel.
    let flags = if path.ends_with(b"/") && flags & libc::O_CREAT == 0 {
        flags | libc::O_DIRECTORY
    } else {
        flags
    };
    // O_CREAT|O_EXCL never follows a final symlink: the name is taken (EEXIST).
    let follow_last = flags & (libc::O_CREAT | libc::O_EXCL) != libc::O_CREAT | libc::O_EXCL;
    let mut pending = Vec::new();
    push_components(&mut pending, path);
    // The real (symlink-free) directories between the root and `dir`, for `..`.
    let mut walked: Vec<Vec<u8>> = Vec::new();
    let mut dir = reopen_dir(root, &walked)?;
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == b".." {
            // SECURITY: `..` is applied to the walked names, never looked up: at the root it is
            // an escape (EXDEV), elsewhere the directory is walked to again from the root.
            if walked.pop().is_none() {
                return Err(errno(libc::EXDEV));
            }
            dir = reopen_dir(root, &walked)?;
            continue;
        }
        let name = cstring(&part)?;
        let last = pending.is_empty();
        if last && !follow_last {
            return openat(dir.as_fd(), &name, flags | libc::O_NOFOLLOW, mode);
        }
        let probe = match openat(dir.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
            Ok(fd) => fd,
            Err(e) if last && flags & libc::O_CREAT != 0 && is_errno(&e, libc::ENOENT) => {
                return openat(dir.as_fd(), &name, flags | libc::O_NOFOLLOW, mode);
            }
            Err(e) => return Err(e),
        };
        let kind = fstat(probe.as_fd())?.st_mode & libc::S_IFMT;
        if kind == libc::S_IFLNK {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(errno(libc::ELOOP));
            }
            push_components(&mut pending, &link_target(probe.as_fd())?);
            continue;
        }
        if last {
            // SECURITY: O_NOFOLLOW: if the name became a symlink since the probe, this fails.
            return openat(dir.as_fd(), &name, flags | libc::O_NOFOLLOW, mode);
        }
        if kind != libc::S_IFDIR {
            return Err(errno(libc::ENOTDIR));
        }
        walked.push(part);
        dir = probe;
    }
    // The walk ended on a directory it had already reached ("", "a/..", a link to ".").
    openat(dir.as_fd(), c".", flags, mode)
}

/// The target of the symlink `link` (an O_PATH|O_NOFOLLOW descriptor of it), to be resolved
/// from the directory holding the link.
fn link_target(link: BorrowedFd) -> io::Result<Vec<u8>> {
    let target = readlinkat(link, c"")?;
    // SECURITY: an absolute target is an escape; a relative one is resolved by the walk from the
    // link's directory, so its `..` are clamped like the path's own.
    if target.starts_with(b"/") {
        return Err(errno(libc::EXDEV));
    }
    if target.is_empty() {
        return Err(errno(libc::ENOENT));
    }
    Ok(target)
}

/// Pushes the components of `path` onto the stack `pending` so that the first one pops first;
/// empty and `.` components are dropped.
fn push_components(pending: &mut Vec<Vec<u8>>, path: &[u8]) {
    let parts = path.split(|&b| b == b'/');
    pending.extend(
        parts
            .filter(|part| !matches!(*part, b"" | b"."))
            .rev()
            .map(<[u8]>::to_vec),
    );
}

/// Opens the directory reached from `root` by the real directory names `names`, following none.
fn reopen_dir(root: BorrowedFd, names: &[Vec<u8>]) -> io::Result<OwnedFd> {
    let mut dir = openat(root, c".", DIR_PATH_FLAGS, 0)?;
    for name in names {
        let name = cstring(name)?;
        dir = openat(dir.as_fd(), &name, DIR_PATH_FLAGS | libc::O_NOFOLLOW, 0)?;
    }
    Ok(dir)
}

/// Checks that `fd` is a regular file (EISDIR for a directory, EACCES for anything else) and
/// makes it blocking again.
fn regular_file(fd: OwnedFd) -> io::Result<File> {
    match fstat(fd.as_fd())?.st_mode & libc::S_IFMT {
        libc::S_IFREG => {}
        libc::S_IFDIR => return Err(errno(libc::EISDIR)),
        _ => return Err(errno(libc::EACCES)),
    }
    // SAFETY: `fd` is an open descriptor; F_GETFL/F_SETFL take and return plain ints.
    let status = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if status < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, status & !libc::O_NONBLOCK) })?;
    Ok(File::from(fd))
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

// The thin syscall wrappers: each owns its one unsafe call.

fn openat(dir: BorrowedFd, name: &CStr, flags: c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; the mode argument is read only with O_CREAT.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    };
    owned_fd(fd)
}

fn fstat(fd: BorrowedFd) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is large enough for a stat; fstat fills it when it returns 0.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded.
    Ok(unsafe { st.assume_init() })
}

fn fstatat(dir: BorrowedFd, name: &CStr, flags: c_int) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated; `st` is filled when fstatat returns 0.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: fstatat succeeded.
    Ok(unsafe { st.assume_init() })
}

/// The target of the symlink `name` in `dir` (or of `dir` itself, an O_PATH symlink, for "").
fn readlinkat(dir: BorrowedFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; PATH_MAX_BYTES];
    // SAFETY: `name` is NUL-terminated; readlinkat writes at most `buf.len()` bytes into `buf`.
    let len = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let len = usize::try_from(len).map_err(|_| io::Error::last_os_error())?;
    if len >= buf.len() {
        return Err(errno(libc::ENAMETOOLONG));
    }
    buf.truncate(len);
    buf.shrink_to_fit();
    Ok(buf)
}

fn unlinkat(dir: BorrowedFd, name: &CStr, flags: c_int) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; `dir` is an open descriptor.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// Reads the next batch of directory records into `buf`; 0 at the end of the directory.
fn getdents64(dir: BorrowedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let len = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    usize::try_from(len).map_err(|_| io::Error::last_os_error())
}

/// Takes ownership of a descriptor a syscall returned, or its errno when it returned -1.
fn owned_fd(fd: c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cvt(ret: c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| errno(libc::EINVAL))
}

fn errno(code: c_int) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn is_errno(e: &io::Error, code: c_int) -> bool {
    e.raw_os_error() == Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs as stdfs;
    use std::io::{Read, Write};
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::path::PathBuf;
    use std::sync::atomic::AtomicUsize;

    static NEXT_FIXTURE: AtomicUsize = AtomicUsize::new(0);

    /// A temporary `base/` holding `root/` (the jail) and, beside it, `outside/secret`;
    /// removed on drop.
    struct Fixture {
        base: PathBuf,
        jail: Jail,
    }

    impl Fixture {
        fn new(fallback: bool) -> Fixture {
            let n = NEXT_FIXTURE.fetch_add(1, Ordering::Relaxed);
            let base = std::env::temp_dir().join(format!(
                "leanftpd-fs-test-{}-{n}-{}",
                std::process::id(),
                if fallback { "walk" } else { "openat2" }
            ));
            let _ = stdfs::remove_dir_all(&base);
            stdfs::create_dir_all(base.join("root")).unwrap();
            stdfs::create_dir(base.join("outside")).unwrap();
            stdfs::write(base.join("outside/secret"), "secret").unwrap();
            let mut jail = Jail::open(&base.join("root")).unwrap();
            jail.force_fallback = fallback;
            Fixture { base, jail }
        }

        /// A real path inside the jail's root.
        fn at(&self, rel: &str) -> PathBuf {
            self.base.join("root").join(rel)
        }

        fn write(&self, rel: &str, contents: &str) {
            stdfs::write(self.at(rel), contents).unwrap();
        }

        fn mkdir(&self, rel: &str) {
            stdfs::create_dir_all(self.at(rel)).unwrap();
        }

        fn link(&self, target: &str, rel: &str) {
            symlink(target, self.at(rel)).unwrap();
        }

        fn read(&self, path: &[u8]) -> io::Result<String> {
            let mut out = String::new();
            self.jail.open_read(path)?.read_to_string(&mut out)?;
            Ok(out)
        }

        fn upload(&self, path: &[u8], mode: WriteMode, data: &str) -> io::Result<()> {
            self.jail.open_write(path, mode)?.write_all(data.as_bytes())
        }

        fn secret_untouched(&self) -> bool {
            stdfs::read_to_string(self.base.join("outside/secret")).unwrap() == "secret"
                && stdfs::read_dir(self.base.join("outside")).unwrap().count() == 1
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = stdfs::remove_dir_all(&self.base);
        }
    }

    /// The errno of a failed call (the test fails if the call succeeded).
    fn err<T>(result: io::Result<T>) -> c_int {
        match result {
            Ok(_) => panic!("succeeded, an error was expected"),
            Err(e) => e.raw_os_error().expect("an errno"),
        }
    }

    /// Each case runs twice: `<case>::openat2` and `<case>::fallback` (the O_NOFOLLOW walk).
    macro_rules! both_resolvers {
        ($($case:ident),* $(,)?) => {$(
            mod $case {
                #[test]
                fn openat2() {
                    super::$case(false)
                }
                #[test]
                fn fallback() {
                    super::$case(true)
                }
            }
        )*};
    }

    both_resolvers!(
        read_write_modes,
        resume_offsets,
        open_refuses_non_regular,
        stat_and_lstat,
        read_dir_lists_entries,
        read_dir_streams_large_directory,
        dir_and_file_operations,
        set_mtime_and_mode,
        dotdot_cannot_escape,
        absolute_symlink_is_refused,
        relative_symlink_out_is_refused,
        symlink_to_outside_dir_is_refused,
        symlink_loops_fail_with_eloop,
        symlinks_inside_work,
        rename_cannot_cross_the_jail,
        bad_names_are_errors,
    );

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

    #[test]
    fn open_root_must_be_a_directory() {
        let fx = Fixture::new(false);
        fx.write("f", "x");
        assert_eq!(err(Jail::open(&fx.at("f"))), libc::ENOTDIR);
        assert_eq!(err(Jail::open(&fx.at("missing"))), libc::ENOENT);
    }

    fn read_write_modes(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.upload(b"a.txt", WriteMode::Truncate, "hello").unwrap();
        assert_eq!(fx.read(b"a.txt").unwrap(), "hello");
        assert_eq!(
            fx.jail.stat(b"a.txt").unwrap().mode & 0o7077,
            0o644 & 0o7077
        );
        fx.upload(b"a.txt", WriteMode::Truncate, "hi").unwrap();
        assert_eq!(fx.read(b"a.txt").unwrap(), "hi");
        fx.upload(b"a.txt", WriteMode::Append, "!").unwrap();
        assert_eq!(fx.read(b"a.txt").unwrap(), "hi!");
        fx.upload(b"new.txt", WriteMode::Append, "n").unwrap();
        assert_eq!(fx.read(b"new.txt").unwrap(), "n");
        assert_eq!(
            err(fx.upload(b"a.txt", WriteMode::CreateNew, "x")),
            libc::EEXIST
        );
        fx.upload(b"b.txt", WriteMode::CreateNew, "b").unwrap();
        assert_eq!(fx.read(b"b.txt").unwrap(), "b");
        fx.mkdir("d");
        fx.upload(b"d/c.txt", WriteMode::Truncate, "c").unwrap();
        assert_eq!(stdfs::read_to_string(fx.at("d/c.txt")).unwrap(), "c");
        assert_eq!(err(fx.read(b"missing")), libc::ENOENT);
        assert_eq!(
            err(fx.upload(b"no/such/dir", WriteMode::Truncate, "")),
            libc::ENOENT
        );
        assert_eq!(err(fx.read(b"a.txt/x")), libc::ENOTDIR);
        assert_eq!(err(fx.read(b"a.txt/")), libc::ENOTDIR);
    }

    fn resume_offsets(fallback: bool) {
        let fx = Fixture::new(fallback);
        // Longer than the offset: the stale tail goes.
        fx.write("long", "hello world");
        fx.upload(b"long", WriteMode::Resume(2), "XY").unwrap();
        assert_eq!(fx.read(b"long").unwrap(), "heXY");
        // Exactly the offset: appended.
        fx.upload(b"long", WriteMode::Resume(4), "!").unwrap();
        assert_eq!(fx.read(b"long").unwrap(), "heXY!");
        // Shorter than the offset: kept, written at the offset.
        fx.write("short", "ab");
        fx.upload(b"short", WriteMode::Resume(4), "Z").unwrap();
        assert_eq!(fx.read(b"short").unwrap(), "ab\0\0Z");
        // Missing: created.
        fx.upload(b"fresh", WriteMode::Resume(0), "f").unwrap();
        assert_eq!(fx.read(b"fresh").unwrap(), "f");
        // An offset no file can have.
        assert_eq!(
            err(fx.jail.open_write(b"fresh", WriteMode::Resume(u64::MAX))),
            libc::EINVAL
        );
    }

    fn open_refuses_non_regular(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.mkdir("d");
        assert_eq!(err(fx.read(b"d")), libc::EISDIR);
        assert_eq!(err(fx.read(b"")), libc::EISDIR);
        assert_eq!(err(fx.upload(b"d", WriteMode::Truncate, "")), libc::EISDIR);
        assert_eq!(err(fx.upload(b"", WriteMode::Append, "")), libc::EISDIR);
        let fifo = CString::new(fx.at("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        // Neither blocks (no writer, no reader) and neither is accepted.
        assert_eq!(err(fx.read(b"fifo")), libc::EACCES);
        let write_err = err(fx.upload(b"fifo", WriteMode::Truncate, ""));
        assert!(write_err == libc::ENXIO || write_err == libc::EACCES);
        // The returned file blocks again (O_NONBLOCK was only for opening).
        fx.write("f", "x");
        let file = fx.jail.open_read(b"f").unwrap();
        // SAFETY: an open descriptor.
        let status = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(status & libc::O_NONBLOCK, 0);
        // SAFETY: as above.
        let fd_flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFD) };
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0);
    }

    fn stat_and_lstat(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.write("f", "12345");
        stdfs::set_permissions(fx.at("f"), stdfs::Permissions::from_mode(0o640)).unwrap();
        fx.mkdir("d");
        fx.link("f", "lf");
        fx.link("d", "ld");
        let meta = stdfs::metadata(fx.at("f")).unwrap();
        let st = fx.jail.stat(b"f").unwrap();
        let want = Stat {
            kind: FileKind::File,
            mode: 0o640,
            nlink: 1,
            uid: meta.uid(),
            gid: meta.gid(),
            size: 5,
            mtime: meta.mtime(),
        };
        assert_eq!(st, want);
        assert_eq!(fx.jail.lstat(b"f").unwrap(), want);
        assert_eq!(fx.jail.stat(b"lf").unwrap(), want);
        let link = fx.jail.lstat(b"lf").unwrap();
        assert_eq!((link.kind, link.size), (FileKind::Symlink, 1));
        assert_eq!(fx.jail.stat(b"d").unwrap().kind, FileKind::Dir);
        assert_eq!(fx.jail.stat(b"ld").unwrap().kind, FileKind::Dir);
        assert_eq!(fx.jail.lstat(b"ld").unwrap().kind, FileKind::Symlink);
        assert_eq!(fx.jail.read_link(b"ld").unwrap(), b"d");
        assert_eq!(err(fx.jail.read_link(b"f")), libc::EINVAL);
        // The root itself.
        assert_eq!(fx.jail.stat(b"").unwrap().kind, FileKind::Dir);
        assert_eq!(fx.jail.lstat(b"").unwrap().kind, FileKind::Dir);
        assert_eq!(err(fx.jail.stat(b"missing")), libc::ENOENT);
        assert_eq!(err(fx.jail.lstat(b"missing/x")), libc::ENOENT);
        assert_eq!(err(fx.jail.lstat(b"f/x")), libc::ENOTDIR);
    }

    /// The entries of `path`, sorted by name.
    fn listing(jail: &Jail, path: &[u8]) -> Vec<DirEntry> {
        let mut entries: Vec<DirEntry> = jail.read_dir(path).unwrap().map(Result::unwrap).collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// Name, kind and link target of a listed entry.
    type Summary<'a> = (&'a [u8], FileKind, Option<&'a [u8]>);

    fn read_dir_lists_entries(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.write("file", "abc");
        fx.mkdir("dir");
        fx.link("file", "link");
        fx.link("nowhere", "dangling");
        fx.link("/etc/passwd", "abs");
        let entries = listing(&fx.jail, b"");
        let summary: Vec<Summary> = entries
            .iter()
            .map(|e| (&e.name[..], e.stat.kind, e.link_target.as_deref()))
            .collect();
        let want: Vec<Summary> = vec![
            (b"abs", FileKind::Symlink, Some(b"/etc/passwd")),
            (b"dangling", FileKind::Symlink, Some(b"nowhere")),
            (b"dir", FileKind::Dir, None),
            (b"file", FileKind::File, None),
            (b"link", FileKind::Symlink, Some(b"file")),
        ];
        assert_eq!(summary, want);
        assert_eq!(entries[3].stat.size, 3);
        assert!(listing(&fx.jail, b"dir").is_empty());
        assert_eq!(err(fx.jail.read_dir(b"file")), libc::ENOTDIR);
        assert_eq!(err(fx.jail.read_dir(b"missing")), libc::ENOENT);
        // Exhausted streams stay exhausted.
        let mut stream = fx.jail.read_dir(b"dir").unwrap();
        assert!(stream.next().is_none());
        assert!(stream.next().is_none());
    }

    fn read_dir_streams_large_directory(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.mkdir("big");
        // Long names: many getdents64 batches of the small buffer.
        let names: Vec<String> = (0..300)
            .map(|i| format!("{i:03}-{}", "n".repeat(200)))
            .collect();
        for name in &names {
            fx.write(&format!("big/{name}"), "");
        }
        let mut stream = fx.jail.read_dir(b"big").unwrap();
        // Entries removed while listing are skipped, never reported as errors.
        let first = stream.next().unwrap().unwrap();
        for name in &names {
            let _ = stdfs::remove_file(fx.at(&format!("big/{name}")));
        }
        assert_eq!(first.stat.kind, FileKind::File);
        for entry in stream {
            entry.unwrap();
        }
        for name in &names {
            fx.write(&format!("big/{name}"), "");
        }
        let got: Vec<String> = listing(&fx.jail, b"big")
            .into_iter()
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect();
        assert_eq!(got, names);
    }

    fn dir_and_file_operations(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.jail.create_dir(b"d").unwrap();
        assert!(fx.at("d").is_dir());
        assert_eq!(err(fx.jail.create_dir(b"d")), libc::EEXIST);
        assert_eq!(err(fx.jail.create_dir(b"")), libc::EEXIST);
        assert_eq!(err(fx.jail.create_dir(b"x/y")), libc::ENOENT);
        fx.jail.create_dir(b"d/e").unwrap();
        assert_eq!(err(fx.jail.remove_dir(b"d")), libc::ENOTEMPTY);
        assert_eq!(err(fx.jail.remove_file(b"d")), libc::EISDIR);
        fx.jail.remove_dir(b"d/e").unwrap();
        fx.write("d/f", "f");
        assert_eq!(err(fx.jail.remove_dir(b"d/f")), libc::ENOTDIR);
        fx.jail.rename(b"d/f", b"g").unwrap();
        assert_eq!(fx.read(b"g").unwrap(), "f");
        fx.jail.rename(b"d", b"d2").unwrap();
        assert!(fx.at("d2").is_dir());
        assert_eq!(err(fx.jail.rename(b"missing", b"x")), libc::ENOENT);
        // A symlink is removed, never what it points to.
        fx.link("g", "lg");
        fx.jail.remove_file(b"lg").unwrap();
        assert_eq!(fx.read(b"g").unwrap(), "f");
        fx.link("d2", "ld");
        assert_eq!(err(fx.jail.remove_dir(b"ld")), libc::ENOTDIR);
        fx.jail.remove_file(b"ld").unwrap();
        assert!(fx.at("d2").is_dir());
        fx.jail.remove_file(b"g").unwrap();
        fx.jail.remove_dir(b"d2").unwrap();
        assert_eq!(err(fx.jail.remove_file(b"g")), libc::ENOENT);
        // The root cannot be removed or renamed.
        assert!(fx.jail.remove_dir(b"").is_err());
        assert!(fx.jail.remove_file(b"").is_err());
        assert!(fx.jail.rename(b"", b"x").is_err());
        assert!(fx.at("").is_dir());
    }

    fn set_mtime_and_mode(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.write("f", "x");
        let atime_before = stdfs::metadata(fx.at("f")).unwrap().atime();
        fx.jail.set_mtime(b"f", 1_000_000_000).unwrap();
        let meta = stdfs::metadata(fx.at("f")).unwrap();
        assert_eq!((meta.mtime(), meta.atime()), (1_000_000_000, atime_before));
        assert_eq!(fx.jail.stat(b"f").unwrap().mtime, 1_000_000_000);
        fx.jail.set_mtime(b"", 1_100_000_000).unwrap();
        assert_eq!(fx.jail.stat(b"").unwrap().mtime, 1_100_000_000);
        // On a symlink: its own time; the target keeps its own.
        fx.link("f", "lf");
        fx.jail.set_mtime(b"lf", 1_200_000_000).unwrap();
        assert_eq!(fx.jail.lstat(b"lf").unwrap().mtime, 1_200_000_000);
        assert_eq!(fx.jail.stat(b"f").unwrap().mtime, 1_000_000_000);
        assert_eq!(err(fx.jail.set_mtime(b"missing", 0)), libc::ENOENT);

        fx.jail.set_mode(b"f", 0o600).unwrap();
        assert_eq!(fx.jail.stat(b"f").unwrap().mode, 0o600);
        // Bits above 0o7777 are ignored.
        fx.jail.set_mode(b"f", 0o170_640).unwrap();
        assert_eq!(fx.jail.stat(b"f").unwrap().mode, 0o640);
        fx.mkdir("d");
        fx.jail.set_mode(b"d", 0o700).unwrap();
        assert_eq!(fx.jail.stat(b"d").unwrap().mode, 0o700);
        // Symlinks are refused, and their targets keep their mode.
        assert_eq!(err(fx.jail.set_mode(b"lf", 0o777)), libc::EPERM);
        assert_eq!(fx.jail.stat(b"f").unwrap().mode, 0o640);
        assert_eq!(err(fx.jail.set_mode(b"missing", 0o777)), libc::ENOENT);
    }

    fn dotdot_cannot_escape(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.mkdir("a");
        // Through resolve, `..` clamps at the root: the name is looked up inside.
        let clamped = resolve(b"/a", b"../../outside/secret");
        assert_eq!(jail_path(&clamped), b"outside/secret");
        assert_eq!(err(fx.read(jail_path(&clamped))), libc::ENOENT);
        // Jail paths that were not normalized are still confined.
        for path in [
            &b"../outside/secret"[..],
            b"a/../../outside/secret",
            b"a/../..",
        ] {
            assert_eq!(err(fx.read(path)), libc::EXDEV, "{path:?}");
            assert_eq!(err(fx.jail.stat(path)), libc::EXDEV, "{path:?}");
        }
        assert_eq!(err(fx.jail.read_dir(b"..")), libc::EXDEV);
        assert_eq!(err(fx.jail.lstat(b"../outside/secret")), libc::EXDEV);
        assert_eq!(err(fx.jail.create_dir(b"../outside/new")), libc::EXDEV);
        assert_eq!(err(fx.jail.create_dir(b"a/..")), libc::EINVAL);
        assert_eq!(err(fx.jail.remove_file(b"a/.")), libc::EINVAL);
        // Nor do absolute jail paths.
        assert_eq!(err(fx.read(b"/etc/passwd")), libc::EXDEV);
        assert_eq!(err(fx.jail.lstat(b"/etc/passwd")), libc::EXDEV);
        assert_eq!(err(fx.jail.remove_file(b"/etc/passwd")), libc::EXDEV);
        // `..` that stays inside is fine.
        fx.write("a/f", "f");
        assert_eq!(fx.read(b"a/../a/f").unwrap(), "f");
        assert!(fx.secret_untouched());
    }

    fn absolute_symlink_is_refused(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.link("/etc", "etc");
        fx.link("/etc/passwd", "passwd");
        assert_eq!(err(fx.read(b"passwd")), libc::EXDEV);
        assert_eq!(err(fx.read(b"etc/passwd")), libc::EXDEV);
        assert_eq!(err(fx.jail.stat(b"passwd")), libc::EXDEV);
        assert_eq!(err(fx.jail.read_dir(b"etc")), libc::EXDEV);
        assert_eq!(err(fx.jail.lstat(b"etc/passwd")), libc::EXDEV);
        assert_eq!(
            err(fx.upload(b"passwd", WriteMode::Append, "x")),
            libc::EXDEV
        );
        assert_eq!(
            err(fx.upload(b"etc/evil", WriteMode::Truncate, "x")),
            libc::EXDEV
        );
        // A dangling link is not a way to create a file outside either.
        fx.link("/tmp/leanftpd-fs-test-never-created", "dangling");
        assert_eq!(
            err(fx.upload(b"dangling", WriteMode::Truncate, "x")),
            libc::EXDEV
        );
        assert!(!Path::new("/tmp/leanftpd-fs-test-never-created").exists());
        assert_eq!(err(fx.jail.set_mode(b"passwd", 0o777)), libc::EPERM);
        // The link itself is visible and removable.
        assert_eq!(fx.jail.lstat(b"passwd").unwrap().kind, FileKind::Symlink);
        assert_eq!(fx.jail.read_link(b"passwd").unwrap(), b"/etc/passwd");
        fx.jail.remove_file(b"passwd").unwrap();
        assert!(Path::new("/etc/passwd").exists());
    }

    fn relative_symlink_out_is_refused(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.mkdir("a/b");
        fx.link("../../etc/passwd", "up2");
        fx.link("../outside/secret", "up1");
        fx.link("../../../outside/secret", "a/b/deep");
        // Out and back in is still out (RESOLVE_BENEATH answers the same).
        fx.link("../root/a", "outin");
        for path in [&b"up2"[..], b"up1", b"a/b/deep", b"outin"] {
            assert_eq!(err(fx.read(path)), libc::EXDEV, "{path:?}");
            assert_eq!(err(fx.jail.stat(path)), libc::EXDEV, "{path:?}");
        }
        assert_eq!(
            err(fx.upload(b"up1", WriteMode::Truncate, "pwned")),
            libc::EXDEV
        );
        fx.link("../outside/new", "dangling");
        assert_eq!(
            err(fx.upload(b"dangling", WriteMode::Append, "x")),
            libc::EXDEV
        );
        assert_eq!(
            err(fx.upload(b"a/b/deep", WriteMode::Resume(0), "pwned")),
            libc::EXDEV
        );
        assert!(fx.secret_untouched());
    }

    fn symlink_to_outside_dir_is_refused(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.link("../outside", "out");
        assert_eq!(err(fx.jail.read_dir(b"out")), libc::EXDEV);
        assert_eq!(err(fx.read(b"out/secret")), libc::EXDEV);
        assert_eq!(err(fx.jail.stat(b"out/secret")), libc::EXDEV);
        assert_eq!(err(fx.jail.lstat(b"out/secret")), libc::EXDEV);
        assert_eq!(
            err(fx.upload(b"out/new", WriteMode::CreateNew, "x")),
            libc::EXDEV
        );
        assert_eq!(err(fx.jail.create_dir(b"out/newdir")), libc::EXDEV);
        assert_eq!(err(fx.jail.remove_file(b"out/secret")), libc::EXDEV);
        assert_eq!(err(fx.jail.set_mtime(b"out/secret", 0)), libc::EXDEV);
        assert_eq!(err(fx.jail.set_mode(b"out/secret", 0o777)), libc::EXDEV);
        assert_eq!(err(fx.jail.read_link(b"out/secret")), libc::EXDEV);
        assert!(fx.secret_untouched());
    }

    fn symlink_loops_fail_with_eloop(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.link("b", "a");
        fx.link("a", "b");
        fx.link("self", "self");
        fx.link("loopdir/x", "loopdir");
        for path in [&b"a"[..], b"b", b"self", b"loopdir", b"a/x"] {
            assert_eq!(err(fx.read(path)), libc::ELOOP, "{path:?}");
            assert_eq!(err(fx.jail.stat(path)), libc::ELOOP, "{path:?}");
        }
        assert_eq!(
            err(fx.upload(b"self", WriteMode::Truncate, "")),
            libc::ELOOP
        );
        // The kernel follows at most 40 symlinks in one resolution; the walk agrees.
        fx.write("target", "t");
        fx.link("target", "l0");
        for i in 1..=40 {
            fx.link(&format!("l{}", i - 1), &format!("l{i}"));
        }
        assert_eq!(fx.read(b"l39").unwrap(), "t");
        assert_eq!(err(fx.read(b"l40")), libc::ELOOP);
    }

    fn symlinks_inside_work(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.mkdir("d/sub");
        fx.write("d/f", "in d");
        fx.write("top", "top");
        fx.link("d", "dl");
        fx.link("d/f", "fl");
        fx.link("../../top", "d/sub/up");
        fx.link("../../dl/f", "d/sub/around");
        fx.link("sub/..", "d/dot");
        assert_eq!(fx.read(b"fl").unwrap(), "in d");
        assert_eq!(fx.read(b"dl/f").unwrap(), "in d");
        assert_eq!(fx.read(b"d/sub/up").unwrap(), "top");
        assert_eq!(fx.read(b"d/sub/around").unwrap(), "in d");
        assert_eq!(fx.read(b"d/dot/f").unwrap(), "in d");
        let names: Vec<Vec<u8>> = listing(&fx.jail, b"dl")
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, [&b"dot"[..], b"f", b"sub"]);
        assert_eq!(fx.jail.stat(b"d/dot").unwrap().kind, FileKind::Dir);
        // Writing through a link inside writes the target, creating it if dangling.
        fx.upload(b"fl", WriteMode::Append, "!").unwrap();
        assert_eq!(stdfs::read_to_string(fx.at("d/f")).unwrap(), "in d!");
        fx.link("d/created", "dangling");
        fx.upload(b"dangling", WriteMode::Truncate, "new").unwrap();
        assert_eq!(stdfs::read_to_string(fx.at("d/created")).unwrap(), "new");
        // ... except for STOU, which never takes a name that exists, even as a link.
        fx.link("d/never", "dangling2");
        assert_eq!(
            err(fx.upload(b"dangling2", WriteMode::CreateNew, "x")),
            libc::EEXIST
        );
        assert!(!fx.at("d/never").exists());
        // Directory operations through a directory link.
        fx.jail.create_dir(b"dl/made").unwrap();
        assert!(fx.at("d/made").is_dir());
        fx.jail.rename(b"dl/made", b"dl/sub/moved").unwrap();
        assert!(fx.at("d/sub/moved").is_dir());
    }

    fn rename_cannot_cross_the_jail(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.write("f", "mine");
        fx.link("../outside", "out");
        fx.link("../outside/secret", "outlink");
        // Through a link that leads out, in either direction.
        assert_eq!(err(fx.jail.rename(b"f", b"out/f")), libc::EXDEV);
        assert_eq!(err(fx.jail.rename(b"f", b"out/secret")), libc::EXDEV);
        assert_eq!(err(fx.jail.rename(b"out/secret", b"stolen")), libc::EXDEV);
        assert_eq!(err(fx.jail.rename(b"f", b"../outside/f")), libc::EXDEV);
        assert!(fx.secret_untouched());
        // Onto a link that leads out: the link itself is replaced, the outside is untouched.
        fx.jail.rename(b"f", b"outlink").unwrap();
        assert_eq!(fx.jail.lstat(b"outlink").unwrap().kind, FileKind::File);
        assert_eq!(fx.read(b"outlink").unwrap(), "mine");
        assert!(fx.secret_untouched());
        // Moving the link to the outside dir moves the link, never the directory.
        fx.jail.rename(b"out", b"moved").unwrap();
        assert_eq!(fx.jail.lstat(b"moved").unwrap().kind, FileKind::Symlink);
        assert!(fx.secret_untouched());
    }

    fn bad_names_are_errors(fallback: bool) {
        let fx = Fixture::new(fallback);
        fx.write("f", "x");
        let nul = b"f\0x";
        assert_eq!(err(fx.jail.open_read(nul)), libc::EINVAL);
        assert_eq!(err(fx.jail.open_read(b"missing/f\0")), libc::EINVAL);
        assert_eq!(
            err(fx.jail.open_write(nul, WriteMode::Truncate)),
            libc::EINVAL
        );
        assert_eq!(err(fx.jail.stat(nul)), libc::EINVAL);
        assert_eq!(err(fx.jail.lstat(nul)), libc::EINVAL);
        assert_eq!(err(fx.jail.read_link(nul)), libc::EINVAL);
        assert_eq!(err(fx.jail.read_dir(nul)), libc::EINVAL);
        assert_eq!(err(fx.jail.create_dir(nul)), libc::EINVAL);
        assert_eq!(err(fx.jail.remove_dir(nul)), libc::EINVAL);
        assert_eq!(err(fx.jail.remove_file(nul)), libc::EINVAL);
        assert_eq!(err(fx.jail.rename(b"f", nul)), libc::EINVAL);
        assert_eq!(err(fx.jail.rename(nul, b"g")), libc::EINVAL);
        assert_eq!(err(fx.jail.set_mtime(nul, 0)), libc::EINVAL);
        assert_eq!(err(fx.jail.set_mode(nul, 0o644)), libc::EINVAL);
        assert_eq!(fx.read(b"f").unwrap(), "x");
        // A name over NAME_MAX (255 bytes).
        let long = vec![b'n'; 256];
        assert_eq!(
            err(fx.jail.open_write(&long, WriteMode::Truncate)),
            libc::ENAMETOOLONG
        );
        assert_eq!(err(fx.jail.open_read(&long)), libc::ENAMETOOLONG);
        assert_eq!(err(fx.jail.create_dir(&long)), libc::ENAMETOOLONG);
        assert_eq!(err(fx.jail.stat(&long)), libc::ENAMETOOLONG);
        assert_eq!(err(fx.jail.lstat(&long)), libc::ENAMETOOLONG);
        let mut nested = b"f/".to_vec();
        nested.extend_from_slice(&long);
        assert_eq!(err(fx.jail.create_dir(&nested)), libc::ENOTDIR);
        // A name of exactly 255 bytes is fine.
        fx.upload(&long[..255], WriteMode::CreateNew, "ok").unwrap();
        // A path over PATH_MAX, however short its names.
        let deep = b"a/".repeat(PATH_MAX_BYTES / 2 + 1);
        assert_eq!(err(fx.jail.stat(&deep)), libc::ENAMETOOLONG);
        assert_eq!(err(fx.jail.create_dir(&deep)), libc::ENAMETOOLONG);
        // Empty final names (trailing `/`).
        assert_eq!(err(fx.jail.create_dir(b"new/")), libc::EINVAL);
        assert_eq!(err(fx.jail.lstat(b".")), libc::EINVAL);
    }
}
