//! The file-system calls the jail is built from: open, openat, openat2, fstat, fstatat,
//! readlinkat, mkdirat, unlinkat, renameat, utimensat, fchmod, the file status flags (fcntl) and
//! getdents64, plus access(2) for the start-up checks. Each is one call on a directory descriptor
//! and a single NUL-terminated name, exactly as the kernel takes it. Confinement is not enforced
//! here: which flags and which RESOLVE_* mode keep a path inside the root is decided in
//! `crate::fs`, which is the only caller of the `*at` calls.

use std::ffi::CStr;
use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use libc::c_int;

use super::{cvt, errno, owned_fd};

/// The longest symlink target readlinkat returns, the terminating NUL included (PATH_MAX).
const LINK_BUF_BYTES: usize = libc::PATH_MAX as usize;

/// open(2) of an absolute or cwd-relative `path` (O_CLOEXEC is added).
pub fn open(path: &CStr, flags: c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated and outlives the call; no mode is read without O_CREAT.
    owned_fd(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })
}

/// openat(2) of `name` in `dir` (O_CLOEXEC is added); `mode` is read only with O_CREAT.
pub fn openat(
    dir: BorrowedFd,
    name: &CStr,
    flags: c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; the mode argument is read only with O_CREAT.
    owned_fd(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    })
}

/// One openat2(2) call (Linux 5.6+) with `flags`, `mode` (sent only with O_CREAT, as the kernel
/// demands) and the RESOLVE_* bits `resolve`. ENOSYS where the kernel lacks it; retrying on
/// EAGAIN is the caller's choice.
pub fn openat2(
    dir: BorrowedFd,
    path: &CStr,
    flags: c_int,
    mode: libc::mode_t,
    resolve: u64,
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
    how.resolve = resolve;
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
    owned_fd(c_int::try_from(fd).unwrap_or(-1))
}

pub fn fstat(fd: BorrowedFd) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is large enough for a stat; fstat fills it when it returns 0.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded.
    Ok(unsafe { st.assume_init() })
}

pub fn fstatat(dir: BorrowedFd, name: &CStr, flags: c_int) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated; `st` is filled when fstatat returns 0.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: fstatat succeeded.
    Ok(unsafe { st.assume_init() })
}

/// The target of the symlink `name` in `dir` (or of `dir` itself, an O_PATH symlink, for "");
/// ENAMETOOLONG for a target of PATH_MAX bytes or more.
pub fn readlinkat(dir: BorrowedFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; LINK_BUF_BYTES];
    // SAFETY: `name` is NUL-terminated; readlinkat writes at most `buf.len()` bytes into `buf`.
    let len = cvt(unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })? as usize;
    if len >= buf.len() {
        return Err(errno(libc::ENAMETOOLONG));
    }
    buf.truncate(len);
    buf.shrink_to_fit();
    Ok(buf)
}

pub fn mkdirat(dir: BorrowedFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; `dir` is an open descriptor.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

pub fn unlinkat(dir: BorrowedFd, name: &CStr, flags: c_int) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; `dir` is an open descriptor.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

pub fn renameat(
    from_dir: BorrowedFd,
    from_name: &CStr,
    to_dir: BorrowedFd,
    to_name: &CStr,
) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated; both descriptors are open.
    cvt(unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            from_name.as_ptr(),
            to_dir.as_raw_fd(),
            to_name.as_ptr(),
        )
    })
    .map(drop)
}

/// renameat2(2) with RENAME_NOREPLACE: EEXIST when `to_name` exists (STOU's atomic upload).
/// Made with syscall(2): older C libraries (musl before 1.2.?) lack the wrapper.
pub fn renameat_noreplace(
    from_dir: BorrowedFd,
    from_name: &CStr,
    to_dir: BorrowedFd,
    to_name: &CStr,
) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated; both descriptors are open; the flags are a
    // plain integer.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            from_dir.as_raw_fd(),
            from_name.as_ptr(),
            to_dir.as_raw_fd(),
            to_name.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    })
    .map(drop)
}

/// utimensat(2): `times` are the access and the modification time (UTIME_OMIT keeps one).
pub fn utimensat(
    dir: BorrowedFd,
    name: &CStr,
    times: &[libc::timespec; 2],
    flags: c_int,
) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and `times` holds the two timespecs utimensat reads.
    cvt(unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times.as_ptr(), flags) }).map(drop)
}

pub fn fchmod(fd: BorrowedFd, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// The file status flags (fcntl F_GETFL): access mode, O_NONBLOCK, O_APPEND...
pub fn status_flags(fd: BorrowedFd) -> io::Result<c_int> {
    // SAFETY: `fd` is an open descriptor; F_GETFL takes no argument and returns an int.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })
}

/// Sets the file status flags (fcntl F_SETFL).
pub fn set_status_flags(fd: BorrowedFd, flags: c_int) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor; F_SETFL takes an int argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) }).map(drop)
}

/// Reads the next batch of `struct linux_dirent64` records of `dir` into `buf`; 0 at the end of
/// the directory.
pub fn getdents64(dir: BorrowedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let len = cvt(unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    })?;
    Ok(len as usize)
}

/// True when this process may write into `path` (access(2) with W_OK, real ids).
pub fn is_writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// The descriptor flags (fcntl F_GETFD), for tests that check FD_CLOEXEC.
#[cfg(test)]
pub fn descriptor_flags(fd: BorrowedFd) -> io::Result<c_int> {
    // SAFETY: `fd` is an open descriptor; F_GETFD takes no argument and returns an int.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) })
}

/// mkfifo(3), for tests that need a FIFO in a jail.
#[cfg(test)]
pub fn mkfifo(path: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    cvt(unsafe { libc::mkfifo(path.as_ptr(), mode) }).map(drop)
}
