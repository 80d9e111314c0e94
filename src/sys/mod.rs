//! The system layer: every `unsafe` block and every raw libc call of leanftpd lives in this
//! folder, and the rest of the crate is `#![deny(unsafe_code)]`. Each wrapper is small, checks its
//! result and turns errno into `io::Error`. Nothing here knows about FTP, sessions or the jail's
//! rules: which flags to pass, which resolution to ask for and when to retry is the caller's
//! policy, decided (and commented with `// SECURITY:`) where it is used, never here.
//!
//! - `fs`: the descriptor-relative file-system calls the jail (`crate::fs`) is built from.
//! - `net`: listener sockets, socket options, sendfile, splice and pipes.
//! - `launch`: descriptors inherited at exec (inetd's fd 0, systemd's listeners).
//! - `process`: signals, privileges, identity lookup, randomness.
//! - `time`: local civil time (localtime_r) for the log timestamps.
//! - `workers`: --workers: fork, the supervisor's socketpairs with SCM_RIGHTS, waitpid, kill,
//!   the CPU count.
//! - `sandbox`: no_new_privs, Landlock and seccomp around the whole process, once started.
//!
//! Rules for code in this folder: every `unsafe` block carries a `// SAFETY:` comment (clippy
//! enforces it below), every descriptor a call returns is owned at once (`owned_fd`), and every
//! result goes through the one `cvt`.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

pub(crate) mod fs;
mod launch;
mod net;
mod process;
pub mod sandbox;
mod time;
mod workers;

pub use fs::is_writable;
pub use launch::{adopt, inherited_socket, is_socket, same_file, send_on, Inherited};
pub use net::{bind_listener, connect_from, pipe, sendfile, set_oob_inline, set_pipe_size, splice};
pub use process::{
    drain_signals, drop_privileges, ephemeral_port_range, fill_random, is_root, lookup_identity,
    may_bind_port, raise_descriptor_limit, random_u32, set_umask, signal_pipe,
};
pub use time::{local_time, CivilTime};
pub use workers::{
    cpu_count, fork, kill, reap_child, recv_message, restore_signal_mask, send_message,
    seqpacket_pair, Ended, Forked,
};

/// The result of a system call that answers -1 (or any negative value) with errno set: the value
/// itself, or errno as an `io::Error`. Works for `int`, `ssize_t` and `long` returns alike.
fn cvt<T: Default + PartialOrd>(ret: T) -> io::Result<T> {
    if ret < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a descriptor a system call returned, or its errno when it returned -1.
fn owned_fd(fd: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(fd)?;
    // SAFETY: the call just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `io::Error` carrying `code` as its errno, for answers given without asking the kernel.
pub fn errno(code: libc::c_int) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// True when `e` carries the errno `code`.
pub fn is_errno(e: &io::Error, code: libc::c_int) -> bool {
    e.raw_os_error() == Some(code)
}
