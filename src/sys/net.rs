//! Sockets and the zero-copy paths: listener sockets with our own backlog, connects from a
//! chosen local port (--port-20), socket options, sendfile(2) from a file to a socket,
//! splice(2) through a pipe, and the pipes themselves.
//! Takes raw descriptors that the caller keeps open for the call; never registers anything with
//! mio, never decides when to call (that is the loop's and the pumps' business) and holds no state.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::{cvt, owned_fd};
use crate::config::LISTEN_BACKLOG;

/// sendfile(2): up to `len` bytes of `file` from `*offset` to `socket`, advancing `*offset`.
pub fn sendfile(socket: RawFd, file: RawFd, offset: &mut u64, len: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: both descriptors are open for the duration of the call; `off` is a valid pointer.
    let sent = cvt(unsafe { libc::sendfile(socket, file, &mut off, len) })?;
    *offset = off as u64;
    Ok(sent as usize)
}

/// splice(2) between two descriptors, one of them a pipe, without offsets: moves up to `len`
/// bytes as page references where the kernel can. Never waits on the pipe (SPLICE_F_NONBLOCK);
/// a non-blocking socket answers `WouldBlock` as usual.
pub fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: both descriptors are open for the duration of the call; null offsets mean "the
    // descriptor's own position", which splice(2) allows.
    let moved = cvt(unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            flags,
        )
    })?;
    Ok(moved as usize)
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // pipe2 succeeded, so both descriptors are fresh and ours.
    Ok((owned_fd(fds[0])?, owned_fd(fds[1])?))
}

/// Grows a pipe to `bytes` (F_SETPIPE_SZ) and returns its capacity. The kernel refuses sizes above
/// /proc/sys/fs/pipe-max-size and, for an unprivileged user past its pipe quota, any growth.
pub fn set_pipe_size(pipe: RawFd, bytes: usize) -> io::Result<usize> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int argument.
    cvt(unsafe { libc::fcntl(pipe, libc::F_SETPIPE_SZ, bytes) }).map(|n| n as usize)
}

/// A listening TCP socket, non-blocking and close-on-exec, with SO_REUSEADDR, IPV6_V6ONLY for
/// IPv6 (so `[::]:21` and `0.0.0.0:21` can both be given) and our own listen backlog.
pub fn bind_listener(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let socket = tcp_socket(addr)?;
    set_int_option(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if addr.is_ipv6() {
        set_int_option(socket.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    bind(&socket, addr)?;
    // SAFETY: listen(2) on our own socket.
    cvt(unsafe { libc::listen(socket.as_raw_fd(), LISTEN_BACKLOG) })?;
    Ok(mio::net::TcpListener::from_std(
        std::net::TcpListener::from(socket),
    ))
}

/// A non-blocking connect to `peer` from `local` (an address and a port of ours, port 20 for
/// --port-20): socket, SO_REUSEADDR (so several connections from the same port can exist at
/// once, to different peers), bind, connect. The connect is in progress when this returns: the
/// caller waits for the socket to be writable and then reads its error. Fails without a socket
/// left behind when the bind is refused (EACCES without CAP_NET_BIND_SERVICE, EADDRINUSE when a
/// listener holds the port) or the connect is refused at once (EADDRNOTAVAIL when this very
/// pair of addresses is still in TIME_WAIT).
pub fn connect_from(local: SocketAddr, peer: SocketAddr) -> io::Result<mio::net::TcpStream> {
    let socket = tcp_socket(local)?;
    set_int_option(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    bind(&socket, local)?;
    let (storage, len) = socket_addr(peer);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    let rc = unsafe {
        libc::connect(
            socket.as_raw_fd(),
            &storage as *const _ as *const libc::sockaddr,
            len,
        )
    };
    match cvt(rc) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(std::net::TcpStream::from(
        socket,
    )))
}

/// A TCP socket of `addr`'s family, non-blocking and close-on-exec.
fn tcp_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the descriptor is owned at once.
    owned_fd(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })
}

fn bind(socket: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    let (storage, len) = socket_addr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    cvt(unsafe {
        libc::bind(
            socket.as_raw_fd(),
            &storage as *const _ as *const libc::sockaddr,
            len,
        )
    })
    .map(drop)
}

fn socket_addr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// SO_OOBINLINE on a control connection: Telnet "Synch" (urgent data, as Python's ftplib and
/// others send before ABOR) stays in the byte stream, where the framer removes it, instead of
/// silently eating the last byte of the urgent send.
pub fn set_oob_inline(fd: RawFd) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_OOBINLINE, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, TcpListener};

    /// What --port-20 relies on: connections from one local port to two peers at once
    /// (SO_REUSEADDR), a second one to the same peer refused at once (the 4-tuple is taken),
    /// and a port a listener holds refused at bind. Port 20 itself needs privileges, so this
    /// uses a free unprivileged port.
    #[test]
    fn connects_from_one_port_to_two_peers_at_once() {
        let localhost = IpAddr::from(Ipv4Addr::LOCALHOST);
        let peers = [
            TcpListener::bind("127.0.0.1:0").unwrap(),
            TcpListener::bind("127.0.0.1:0").unwrap(),
        ];
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let from = SocketAddr::new(localhost, port);
        let to = |i: usize| peers[i].local_addr().unwrap();
        let e = connect_from(from, to(0)).map(drop).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE), "{e}");
        drop(held);
        let first = connect_from(from, to(0)).unwrap();
        let second = connect_from(from, to(1)).unwrap();
        for peer in &peers {
            let (_, source) = peer.accept().unwrap();
            assert_eq!(source, from);
        }
        let e = connect_from(from, to(0)).map(drop).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{e}");
        drop((first, second));
    }
}
