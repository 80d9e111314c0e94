//! --workers: the calls a supervisor and its worker processes need. fork(2) with every signal
//! blocked across it, the SOCK_SEQPACKET socketpair between them, one message with an optional
//! descriptor (SCM_RIGHTS) each way, waitpid(WNOHANG), kill(2) and the CPUs the process may run
//! on (sched_getaffinity). Which process does what, and when, is net/supervisor.rs's policy.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use super::process::SIGNAL_PIPE;
use super::{cvt, owned_fd};

/// What fork returned to this process.
pub enum Forked {
    Parent(i32),
    /// In the child every signal is still blocked, and the parent's signal pipe is closed
    /// (its handlers write nowhere): `restore_signal_mask` once the child has its own.
    Child,
}

/// The signal mask before `fork`, for the child's `restore_signal_mask`.
static MASK_BEFORE_FORK: Mutex<Option<libc::sigset_t>> = Mutex::new(None);

/// fork(2) with every signal blocked across it, so that no handler of the parent runs in the
/// child. The process must be single-threaded (leanftpd always is).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: sigset_t is plain data, filled by sigfillset; the old mask is written by the call.
    let old = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        cvt(libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old))?;
        old
    };
    // SAFETY: the process is single-threaded, so the child's copy of memory is consistent.
    let pid = unsafe { libc::fork() };
    if pid != 0 {
        let result = cvt(pid);
        // SAFETY: restoring the mask saved above.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        return result.map(Forked::Parent);
    }
    // The child: the parent's signal pipe is not ours (a signal must not reach the parent's
    // loop through it); SIGCHLD of our own children (there are none) goes back to the default.
    // (The read end belongs to the parent's loop, which the child drops.)
    let fd = SIGNAL_PIPE.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: the write end is owned by the process-wide handler state alone (it was
        // leaked from its OwnedFd on purpose), and no handler runs: every signal is blocked.
        unsafe { libc::close(fd) };
    }
    // SAFETY: SIG_DFL for SIGCHLD, a plain call.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    *MASK_BEFORE_FORK.lock().unwrap_or_else(|e| e.into_inner()) = Some(old);
    Ok(Forked::Child)
}

/// In a child of `fork`: unblocks the signals again (the mask the parent had), once the child's
/// own handlers are in place. Signals that came meanwhile are delivered now.
pub fn restore_signal_mask() {
    let old = MASK_BEFORE_FORK
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(old) = old {
        // SAFETY: setting the mask saved by `fork`.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    }
}

/// A connected pair of SOCK_SEQPACKET unix sockets (one message per send, boundaries kept),
/// non-blocking and close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) })?;
    Ok((owned_fd(fds[0])?, owned_fd(fds[1])?))
}

/// Room for the control message of one descriptor.
const CMSG_SPACE_ONE_FD: usize = 32;

/// Sends `bytes` as one message on `socket`, with `fd` attached (SCM_RIGHTS) when given.
/// Never waits: a full socket is `WouldBlock`.
pub fn send_message(socket: &OwnedFd, bytes: &[u8], fd: Option<RawFd>) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut control = [0u64; CMSG_SPACE_ONE_FD / 8];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        assert!(space <= CMSG_SPACE_ONE_FD);
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space as _;
        // SAFETY: the control buffer is aligned (u64) and `space` bytes long, room for one
        // header and one descriptor; CMSG_FIRSTHDR points into it.
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&msg);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(header) as *mut RawFd, fd);
        }
    }
    loop {
        // SAFETY: `msg` and what it points to live across the call.
        let sent = unsafe {
            libc::sendmsg(
                socket.as_raw_fd(),
                &msg,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        match cvt(sent) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Receives one message into `buf`: its length (0 when the peer has closed) and the
/// descriptor it carried, if any (close-on-exec). A message whose descriptor could not be
/// taken (out of descriptors: MSG_CTRUNC) comes without one. Never waits.
pub fn recv_message(socket: &OwnedFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut control = [0u64; CMSG_SPACE_ONE_FD / 8];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = CMSG_SPACE_ONE_FD as _;
    let len = loop {
        // SAFETY: `msg` points to our buffers, which live across the call.
        let got = unsafe {
            libc::recvmsg(
                socket.as_raw_fd(),
                &mut msg,
                libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
            )
        };
        match cvt(got) {
            Ok(n) => break n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let mut fd = None;
    // SAFETY: the kernel filled `msg_controllen` bytes of the control buffer; the CMSG macros
    // walk only within them, and each SCM_RIGHTS descriptor is fresh and ours.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&msg);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header) as *const RawFd;
                let count = ((*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let raw = std::ptr::read_unaligned(data.add(i));
                    let owned = OwnedFd::from_raw_fd(raw);
                    // One descriptor per message; any more are closed here.
                    if fd.is_none() {
                        fd = Some(owned);
                    }
                }
            }
            header = libc::CMSG_NXTHDR(&msg, header);
        }
    }
    Ok((len, fd))
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Reaps one child that has ended, without waiting: its pid and how it ended, or None when no
/// child has ended (or there are none).
pub fn reap_child() -> Option<(i32, Ended)> {
    let mut status = 0;
    // SAFETY: `status` is written by the call.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let ended = if libc::WIFSIGNALED(status) {
        Ended::Signaled(libc::WTERMSIG(status))
    } else {
        Ended::Exited(libc::WEXITSTATUS(status))
    };
    Some((pid, ended))
}

/// kill(2): sends `signal` to process `pid`.
pub fn kill(pid: i32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: a plain system call on integers.
    cvt(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// The CPUs this process may run on (sched_getaffinity), at least 1.
pub fn cpu_count() -> usize {
    // SAFETY: cpu_set_t is plain data, filled by the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 1;
        }
        (libc::CPU_COUNT(&set) as usize).max(1)
    }
}
