//! The fallback resolver for kernels without openat2 (or seccomp profiles that refuse it):
//! opens a jail path beneath the root one component at a time with O_NOFOLLOW, interpreting
//! symlinks itself, and gives the answers openat2 with RESOLVE_BENEATH would give (EXDEV for
//! every escape, ELOOP past 40 links). Only `jail.rs` calls it; it must never look a `..` up in
//! the file system or follow a link the kernel resolves on its own.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use libc::c_int;

use super::{cstring, DIR_PATH_FLAGS};
use crate::sys::fs as sys;
use crate::sys::{errno, is_errno};

/// Symlinks one resolution may follow; the kernel's MAXSYMLINKS, applied by the walk too.
const MAX_SYMLINKS: u32 = 40;

/// The fallback for kernels without openat2: opens `path` beneath `root` one component at a
/// time, giving the answers openat2 with RESOLVE_BENEATH would give.
pub(super) fn walk_beneath(
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
            return sys::openat(dir.as_fd(), &name, flags | libc::O_NOFOLLOW, mode);
        }
        let probe = match sys::openat(dir.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
            Ok(fd) => fd,
            Err(e) if last && flags & libc::O_CREAT != 0 && is_errno(&e, libc::ENOENT) => {
                return sys::openat(dir.as_fd(), &name, flags | libc::O_NOFOLLOW, mode);
            }
            Err(e) => return Err(e),
        };
        let kind = sys::fstat(probe.as_fd())?.st_mode & libc::S_IFMT;
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
            return sys::openat(dir.as_fd(), &name, flags | libc::O_NOFOLLOW, mode);
        }
        if kind != libc::S_IFDIR {
            return Err(errno(libc::ENOTDIR));
        }
        walked.push(part);
        dir = probe;
    }
    // The walk ended on a directory it had already reached ("", "a/..", a link to ".").
    sys::openat(dir.as_fd(), c".", flags, mode)
}

/// The target of the symlink `link` (an O_PATH|O_NOFOLLOW descriptor of it), to be resolved
/// from the directory holding the link.
fn link_target(link: BorrowedFd) -> io::Result<Vec<u8>> {
    let target = sys::readlinkat(link, c"")?;
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
    let mut dir = sys::openat(root, c".", DIR_PATH_FLAGS, 0)?;
    for name in names {
        let name = cstring(name)?;
        dir = sys::openat(dir.as_fd(), &name, DIR_PATH_FLAGS | libc::O_NOFOLLOW, 0)?;
    }
    Ok(dir)
}
