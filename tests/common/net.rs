//! Plain sockets with timeouts: connect (from another loopback address too), accept, read
//! until the peer closes, and the socket options tests play with.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::thread;
use std::time::{Duration, Instant};

use super::IO_TIMEOUT;

/// Connects to `addr` (bounded) and sets the read and write timeouts to IO_TIMEOUT.
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    set_timeouts(&s);
    s
}

fn set_timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
}

/// A TCP connection to `to` from the local address `from` (port chosen by the kernel): how a
/// test plays a second host, e.g. 127.0.0.2, on the loopback interface (std cannot bind
/// before connect).
pub fn tcp_connect_from(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else {
        return Err(io::Error::other("IPv4 only"));
    };
    fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
        // SAFETY: sockaddr_in is plain data; all-zero is valid.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = addr.port().to_be();
        sin.sin_addr = libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        };
        sin
    }
    // SAFETY: plain socket(2); the descriptor is owned by the TcpStream right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nothing else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let local = sockaddr(SocketAddrV4::new(from, 0));
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `local` is a valid sockaddr_in of `len` bytes.
    if unsafe { libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let remote = sockaddr(to);
    // SAFETY: `remote` is a valid sockaddr_in of `len` bytes; a blocking connect on loopback.
    if unsafe { libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Accepts one connection within `timeout` (read and write timeouts set), or returns None.
pub fn accept_timeout(l: &TcpListener, timeout: Duration) -> Option<TcpStream> {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                set_timeouts(&s);
                return Some(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return None;
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Reads a stream to its end (bounded by the socket's read timeout).
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).expect("read data connection to EOF");
    v
}

/// Reads `stream` until EOF or a reset, appending to `out`; Err(()) when it is still open
/// after `timeout`.
pub fn read_until_closed(
    stream: &mut TcpStream,
    timeout: Duration,
    out: &mut Vec<u8>,
) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(());
        }
        stream
            .set_read_timeout(Some(left.min(Duration::from_millis(200))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            // ECONNRESET, EPIPE...: closed too.
            Err(_) => return Ok(()),
        }
    }
}

/// setsockopt(SOL_SOCKET, `option`, `value`), asserted to succeed.
fn set_socket_option<T>(stream: &TcpStream, option: libc::c_int, value: &T, name: &str) {
    // SAFETY: `value` outlives the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "{name}: {}", io::Error::last_os_error());
}

/// Sets SO_LINGER {on, 0}: dropping the socket then sends a RST instead of a FIN (an abrupt
/// disconnect).
pub fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set_socket_option(stream, libc::SO_LINGER, &linger, "SO_LINGER");
}

/// Sets SO_SNDBUF (which also stops the kernel from growing it): bounds how much a client can
/// have in flight when its peer stops reading.
pub fn set_send_buffer(stream: &TcpStream, bytes: i32) {
    set_socket_option(stream, libc::SO_SNDBUF, &bytes, "SO_SNDBUF");
}

/// A TLS ClientHello sent to a plain FTP listener at `addr` before reading anything, as a TLS
/// client does: the server closes the session with nothing said but (at most) its 220.
#[track_caller]
pub fn assert_hello_gets_only_the_greeting(addr: SocketAddr, hello: &[u8]) {
    let mut raw = tcp_connect(addr);
    raw.write_all(hello).unwrap();
    let mut got = Vec::new();
    assert!(
        read_until_closed(&mut raw, Duration::from_secs(3), &mut got).is_ok(),
        "the session that sent a ClientHello is still open"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || (text.starts_with("220 ") && text.matches("\r\n").count() == 1),
        "{text:?}"
    );
}
