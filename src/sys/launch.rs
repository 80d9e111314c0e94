//! Descriptors inherited at exec: the control connection inetd leaves on fd 0, the listeners
//! systemd passes from fd 3 on. What each one is (getsockopt SO_TYPE, SO_DOMAIN, SO_ACCEPTCONN,
//! getpeername), and taking ownership of one once the caller has decided to use it. Whether a
//! kind is acceptable, and which descriptor to look at, is the caller's policy (net/launch.rs).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// What an inherited descriptor turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherited {
    /// Not a socket at all (a terminal, /dev/null, a pipe, a file).
    NotSocket,
    /// A socket, but not a TCP one (UDP, a unix socket...).
    NotTcp,
    /// A TCP socket in the listening state (SO_ACCEPTCONN).
    Listening,
    /// A connected TCP socket (getpeername answers).
    Connected,
    /// A TCP socket neither listening nor connected.
    Unconnected,
}

fn get_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` outlive the call; `len` holds the size of `value`.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            &mut value as *mut _ as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(value)
}

/// Looks at descriptor `fd` without taking it. An error only for a descriptor that is not open
/// (EBADF) or a failing call; "not a socket" is an answer, not an error.
pub fn inherited_socket(fd: RawFd) -> io::Result<Inherited> {
    let kind = match get_int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE) {
        Ok(kind) => kind,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => return Ok(Inherited::NotSocket),
        Err(e) => return Err(e),
    };
    let domain = get_int_option(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    if kind != libc::SOCK_STREAM || (domain != libc::AF_INET && domain != libc::AF_INET6) {
        return Ok(Inherited::NotTcp);
    }
    if get_int_option(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? != 0 {
        return Ok(Inherited::Listening);
    }
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` has room for any address and `len` says how much.
    let peer = cvt(unsafe {
        libc::getpeername(fd, &mut storage as *mut _ as *mut libc::sockaddr, &mut len)
    });
    match peer {
        Ok(_) => Ok(Inherited::Connected),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(Inherited::Unconnected),
        Err(e) => Err(e),
    }
}

/// True when `fd` is a socket of any kind (under inetd, stderr may be the client's connection).
pub fn is_socket(fd: RawFd) -> bool {
    matches!(
        inherited_socket(fd),
        Ok(Inherited::NotTcp
            | Inherited::Listening
            | Inherited::Connected
            | Inherited::Unconnected)
    )
}

/// Sends `bytes` on socket `fd` without taking it (a last reply before exit); MSG_NOSIGNAL: a
/// client already gone is an error, never a SIGPIPE.
pub fn send_on(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is valid for its length during the call; a closed or non-socket `fd`
    // answers with an error, which is returned.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// True when descriptors `a` and `b` are the same open file (the same device and inode), as
/// stderr and the connection are under inetd proper.
pub fn same_file(a: RawFd, b: RawFd) -> bool {
    let identity = |fd: RawFd| {
        // SAFETY: stat is plain data; all-zero is a valid value, and fstat fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` outlives the call.
        cvt(unsafe { libc::fstat(fd, &mut st) }).ok()?;
        Some((st.st_dev, st.st_ino))
    };
    matches!((identity(a), identity(b)), (Some(x), Some(y)) if x == y)
}

/// Takes ownership of inherited descriptor `fd` and makes it close-on-exec (the caller sets it
/// non-blocking through the std type it wraps it in). The caller must take each descriptor at
/// most once and must have checked it with `inherited_socket`.
pub fn adopt(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on a descriptor number; a closed one answers EBADF, which is returned.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above; F_SETFD takes an int argument.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open (fcntl answered) and was inherited at exec: nothing in this
    // process owns it yet (std's stdin handle does not own fd 0, and leanftpd never reads it),
    // and the caller takes each descriptor once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
