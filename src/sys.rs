//! The thin unsafe layer: every libc call the server needs and mio lacks (sendfile, splice,
//! pipes, signals, listener sockets with our own backlog, socket options). Each function is small,
//! checks its result and turns errno into `io::Error`; nothing here knows about FTP.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::config::LISTEN_BACKLOG;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// sendfile(2): up to `len` bytes of `file` from `*offset` to `socket`, advancing `*offset`.
pub fn sendfile(socket: RawFd, file: RawFd, offset: &mut u64, len: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: both descriptors are open for the duration of the call; `off` is a valid pointer.
    let sent = unsafe { libc::sendfile(socket, file, &mut off, len) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
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
    let moved = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    if moved < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(moved as usize)
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Grows a pipe to `bytes` (F_SETPIPE_SZ) and returns its capacity. The kernel refuses sizes above
/// /proc/sys/fs/pipe-max-size and, for an unprivileged user past its pipe quota, any growth.
pub fn set_pipe_size(pipe: RawFd, bytes: usize) -> io::Result<usize> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int argument.
    check(unsafe { libc::fcntl(pipe, libc::F_SETPIPE_SZ, bytes) }).map(|n| n as usize)
}

/// A listening TCP socket, non-blocking and close-on-exec, with SO_REUSEADDR, IPV6_V6ONLY for
/// IPv6 (so `[::]:21` and `0.0.0.0:21` can both be given) and our own listen backlog.
pub fn bind_listener(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the descriptor is owned at once.
    let fd = check(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int_option(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if addr.is_ipv6() {
        set_int_option(socket.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    let (storage, len) = socket_addr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    check(unsafe {
        libc::bind(
            socket.as_raw_fd(),
            &storage as *const _ as *const libc::sockaddr,
            len,
        )
    })?;
    // SAFETY: listen(2) on our own socket.
    check(unsafe { libc::listen(socket.as_raw_fd(), LISTEN_BACKLOG) })?;
    Ok(mio::net::TcpListener::from_std(
        std::net::TcpListener::from(socket),
    ))
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
    check(unsafe {
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

/// The write end of the signal pipe, for the async-signal-safe handler.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the byte, which is
        // fine: one pending byte already wakes the loop.
        unsafe { libc::write(fd, &byte as *const u8 as *const libc::c_void, 1) };
    }
}

/// Routes `signals` into a non-blocking pipe (the self-pipe trick) and returns its read end,
/// to register with the poll loop. Each byte read is the number of a signal received.
pub fn signal_pipe(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    let (read, write) = pipe()?;
    // The write end lives as long as the process: the handler may run at any time.
    SIGNAL_PIPE.store(
        std::os::fd::IntoRawFd::into_raw_fd(write),
        Ordering::Relaxed,
    );
    for &signal in signals {
        // SAFETY: installing a handler that only calls write(2); SA_RESTART keeps other
        // system calls from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            check(libc::sigaction(signal, &action, std::ptr::null_mut()))?;
        }
    }
    Ok(read)
}

/// Reads the signal numbers waiting in the signal pipe.
pub fn drain_signals(pipe: &OwnedFd) -> Vec<libc::c_int> {
    let mut buf = [0u8; 64];
    let mut signals = Vec::new();
    loop {
        // SAFETY: reading into our own buffer from our own non-blocking pipe.
        let n = unsafe {
            libc::read(
                pipe.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if n <= 0 {
            return signals;
        }
        signals.extend(buf[..n as usize].iter().map(|&b| b as libc::c_int));
    }
}

/// True when the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// True when this process may write into `path` (access(2) with W_OK, real ids).
pub fn is_writable(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// Resolves `USER[:GROUP]` (names or numeric ids) to (uid, gid); the group defaults to the
/// user's primary group.
pub fn lookup_identity(spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let (uid, primary_gid) = lookup_user(user)?;
    let gid = match group {
        Some(group) => lookup_group(group)?,
        None => primary_gid,
    };
    Ok((uid, gid))
}

fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    let cname = std::ffi::CString::new(name).map_err(|_| format!("no user {name:?}"))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data; getpwnam_r fills it with pointers into `buf`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf.len()` is its real size.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Ok((pwd.pw_uid, pwd.pw_gid));
    }
    // A numeric uid with no passwd entry: use it as it is, with the same number as group.
    name.parse::<u32>()
        .map(|uid| (uid, uid))
        .map_err(|_| format!("no user {name:?}"))
}

fn lookup_group(name: &str) -> Result<u32, String> {
    let cname = std::ffi::CString::new(name).map_err(|_| format!("no group {name:?}"))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: group is plain data; getgrnam_r fills it with pointers into `buf`.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf.len()` is its real size.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Ok(grp.gr_gid);
    }
    name.parse::<u32>()
        .map_err(|_| format!("no group {name:?}"))
}

/// Drops root for good: supplementary groups, then gid, then uid, each checked, and then
/// proves that root cannot be regained.
pub fn drop_privileges(uid: u32, gid: u32) -> Result<(), String> {
    let os = |what: &str| format!("{what}: {}", io::Error::last_os_error());
    // SAFETY: plain system calls on integers and a one-element array that outlives the call.
    unsafe {
        if libc::setgroups(1, &gid) != 0 {
            return Err(os("setgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(os("setgid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(os("setuid"));
        }
        if libc::getuid() != uid
            || libc::geteuid() != uid
            || libc::getgid() != gid
            || libc::getegid() != gid
        {
            return Err("the new user and group did not take effect".into());
        }
        if uid != 0 && libc::setuid(0) == 0 {
            return Err("root could be regained after dropping privileges".into());
        }
    }
    Ok(())
}

/// The kernel's range of ephemeral ports (net.ipv4.ip_local_port_range), where passive
/// listeners go when --pasv-ports is not given: the ports the kernel itself would pick.
pub fn ephemeral_port_range() -> (u16, u16) {
    const DEFAULT: (u16, u16) = (32768, 60999);
    let Ok(text) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") else {
        return DEFAULT;
    };
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(min)), Some(Ok(max))) if 1024 <= min && min <= max => (min, max),
        _ => DEFAULT,
    }
}

/// A random number from the kernel (getrandom(2), never blocking); the clock if that fails.
pub fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe {
        libc::getrandom(
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            libc::GRND_NONBLOCK,
        )
    };
    if n == buf.len() as isize {
        return u32::from_ne_bytes(buf);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}
