//! `Jail`: a session's root directory descriptor and every operation on a jail path beneath it.
//! Owns the one door (`open_beneath`: openat2 with RESOLVE_BENEATH, or the walk of `walk.rs`)
//! and the rule that operations on a last component resolve its parent and then act on a single
//! name. Must not open anything by a path string from the process's point of view, and must not
//! call libc itself: the system calls are `crate::sys::fs`.
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
//! - A path through a reserved temporary-upload name (`temp.rs`) is ENOENT: it is not there
//!   for clients; only `create_temp` makes one, and its `TempUpload` renames or removes it.
//! - A final name of `.` or `..`, or an empty one (trailing `/`), is EINVAL; the empty jail path
//!   (the root) is valid everywhere and the kernel answers for it (EEXIST, EBUSY, ...).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use libc::c_int;

use super::temp::{self, TempUpload};
use super::walk::walk_beneath;
use super::{cstring, stat_from, DirStream, Stat, WriteMode, DIR_PATH_FLAGS};
use crate::sys::fs as sys;
use crate::sys::{errno, is_errno};

/// Longest path accepted, the terminating NUL included (PATH_MAX).
const PATH_MAX_BYTES: usize = libc::PATH_MAX as usize;
/// How often openat2 is retried when the kernel reports a concurrent rename (EAGAIN).
const OPENAT2_RETRIES: u32 = 8;
/// Permission bits of a new file and a new directory (before the umask).
const NEW_FILE_MODE: libc::mode_t = 0o644;
const NEW_DIR_MODE: libc::mode_t = 0o755;

/// Set once openat2 answered ENOSYS: from then on every jail walks (the kernel will not change).
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

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
        let jail = Jail {
            root: sys::open(&path, DIR_PATH_FLAGS)?,
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
        self.open_write_with(path, mode, NEW_FILE_MODE)
    }

    /// `open_write` with `perm` for a new file (the process umask still applies).
    pub fn open_write_with(
        &self,
        path: &[u8],
        mode: WriteMode,
        perm: libc::mode_t,
    ) -> io::Result<File> {
        let how = match mode {
            WriteMode::Truncate => libc::O_TRUNC,
            WriteMode::Append => libc::O_APPEND,
            WriteMode::CreateNew => libc::O_EXCL,
            WriteMode::Resume(_) => 0,
        };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_NONBLOCK | libc::O_NOCTTY | how;
        let mut file = regular_file(self.open_beneath(path, flags, perm & 0o7777)?)?;
        if let WriteMode::Resume(offset) = mode {
            if file.metadata()?.len() > offset {
                file.set_len(offset)?;
            }
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(file)
    }

    /// --atomic-uploads: a new hidden temporary file (`perm`, O_EXCL) in the directory of
    /// `target`, and the `TempUpload` that renames it over `target` (with `no_replace`: only
    /// while `target` does not exist) or removes it.
    pub fn create_temp(
        &self,
        target: &[u8],
        perm: libc::mode_t,
        no_replace: bool,
    ) -> io::Result<(File, TempUpload)> {
        let (dir, name) = self.parent_and_name(target)?;
        let flags = libc::O_WRONLY
            | libc::O_CREAT
            | libc::O_EXCL
            | libc::O_NOFOLLOW
            | libc::O_NONBLOCK
            | libc::O_NOCTTY;
        // A collision of 64 random bits is not expected; a few tries cover it anyway.
        let mut last = errno(libc::EEXIST);
        for _ in 0..4 {
            let temp_name = temp::temp_name();
            match sys::openat(dir.as_fd(), &temp_name, flags, perm & 0o7777) {
                Ok(fd) => {
                    let upload = TempUpload::new(dir, temp_name, name, no_replace);
                    return Ok((regular_file(fd)?, upload));
                }
                Err(e) if is_errno(&e, libc::EEXIST) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Follows symlinks (inside the jail).
    pub fn stat(&self, path: &[u8]) -> io::Result<Stat> {
        let fd = self.open_beneath(path, libc::O_PATH, 0)?;
        Ok(stat_from(&sys::fstat(fd.as_fd())?))
    }

    /// Does not follow a symlink in the last component.
    pub fn lstat(&self, path: &[u8]) -> io::Result<Stat> {
        let (dir, name) = self.parent_and_name(path)?;
        Ok(stat_from(&sys::fstatat(
            dir.as_fd(),
            &name,
            libc::AT_SYMLINK_NOFOLLOW,
        )?))
    }

    pub fn read_link(&self, path: &[u8]) -> io::Result<Vec<u8>> {
        let (dir, name) = self.parent_and_name(path)?;
        sys::readlinkat(dir.as_fd(), &name)
    }

    pub fn read_dir(&self, path: &[u8]) -> io::Result<DirStream> {
        let dir = self.open_beneath(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(DirStream::new(dir))
    }

    /// mkdir with mode 0o755 (before umask).
    pub fn create_dir(&self, path: &[u8]) -> io::Result<()> {
        self.create_dir_with(path, NEW_DIR_MODE)
    }

    /// mkdir with `perm` (the process umask still applies).
    pub fn create_dir_with(&self, path: &[u8], perm: libc::mode_t) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(path)?;
        sys::mkdirat(dir.as_fd(), &name, perm & 0o7777)
    }

    pub fn remove_dir(&self, path: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(path)?;
        sys::unlinkat(dir.as_fd(), &name, libc::AT_REMOVEDIR)
    }

    /// Removes a file or a symlink (never what the symlink points to).
    pub fn remove_file(&self, path: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(path)?;
        sys::unlinkat(dir.as_fd(), &name, 0)
    }

    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        let (from_dir, from_name) = self.parent_and_name(from)?;
        let (to_dir, to_name) = self.parent_and_name(to)?;
        // SECURITY: both parents are resolved beneath the root and renameat never follows a
        // symlink in either final name, so nothing moves out of or into the jail.
        sys::renameat(from_dir.as_fd(), &from_name, to_dir.as_fd(), &to_name)
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
        sys::utimensat(dir.as_fd(), &name, &times, libc::AT_SYMLINK_NOFOLLOW)
    }

    /// chmod to `mode & 0o7777`.
    pub fn set_mode(&self, path: &[u8], mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent_and_name(path)?;
        // SECURITY: fchmodat follows a symlink in its final name without any jail check, so it
        // is never used. The name is opened without following (O_PATH, to look before opening
        // anything for real), then reopened O_NOFOLLOW and changed through its descriptor; the
        // inode check catches a swap between the two opens.
        let probe = sys::openat(dir.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let probed = sys::fstat(probe.as_fd())?;
        let extra = match probed.st_mode & libc::S_IFMT {
            libc::S_IFREG => 0,
            libc::S_IFDIR => libc::O_DIRECTORY,
            _ => return Err(errno(libc::EPERM)),
        };
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | extra;
        let fd = sys::openat(dir.as_fd(), &name, flags, 0)?;
        let opened = sys::fstat(fd.as_fd())?;
        if (opened.st_dev, opened.st_ino) != (probed.st_dev, probed.st_ino) {
            return Err(errno(libc::EAGAIN));
        }
        let mode = (mode & 0o7777) as libc::mode_t;
        sys::fchmod(fd.as_fd(), mode)
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

/// Rejects what no file system call could take: a NUL byte (EINVAL), PATH_MAX or more bytes;
/// and a path through a reserved temporary-upload name (ENOENT: it is not there for clients).
fn check_path(path: &[u8]) -> io::Result<()> {
    if path.contains(&0) {
        return Err(errno(libc::EINVAL));
    }
    if path.len() >= PATH_MAX_BYTES {
        return Err(errno(libc::ENAMETOOLONG));
    }
    if path.split(|&b| b == b'/').any(temp::is_temp_name) {
        return Err(errno(libc::ENOENT));
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
    // SECURITY: the kernel resolves `path` beneath `dir`: absolute paths, absolute symlinks and
    // `..` above `dir` fail with EXDEV; /proc magic links are refused.
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    for _ in 0..OPENAT2_RETRIES {
        match sys::openat2(dir, path, flags, mode, resolve) {
            Err(e) if is_errno(&e, libc::EAGAIN) => continue,
            result => return result,
        }
    }
    Err(errno(libc::EAGAIN))
}

/// Checks that `fd` is a regular file (EISDIR for a directory, EACCES for anything else) and
/// makes it blocking again.
fn regular_file(fd: OwnedFd) -> io::Result<File> {
    match sys::fstat(fd.as_fd())?.st_mode & libc::S_IFMT {
        libc::S_IFREG => {}
        libc::S_IFDIR => return Err(errno(libc::EISDIR)),
        _ => return Err(errno(libc::EACCES)),
    }
    let status = sys::status_flags(fd.as_fd())?;
    sys::set_status_flags(fd.as_fd(), status & !libc::O_NONBLOCK)?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{jail_path, resolve, DirEntry, FileKind};
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
        sys::mkfifo(&fifo, 0o644).unwrap();
        // Neither blocks (no writer, no reader) and neither is accepted.
        assert_eq!(err(fx.read(b"fifo")), libc::EACCES);
        let write_err = err(fx.upload(b"fifo", WriteMode::Truncate, ""));
        assert!(write_err == libc::ENXIO || write_err == libc::EACCES);
        // The returned file blocks again (O_NONBLOCK was only for opening).
        fx.write("f", "x");
        let file = fx.jail.open_read(b"f").unwrap();
        let status = sys::status_flags(file.as_fd()).unwrap();
        assert_eq!(status & libc::O_NONBLOCK, 0);
        let fd_flags = sys::descriptor_flags(file.as_fd()).unwrap();
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
