//! Started by the system: where the sockets come from, and telling the system how it goes.
//!
//! - `--inetd`: one session on the connection the launcher left open: fd 0 (inetd, xinetd,
//!   BusyBox `tcpsvd`/`inetd`, systemd `Accept=yes` with `StandardInput=socket`), or fd 3 when
//!   systemd passed exactly one descriptor (`Accept=yes` without it, `systemd-socket-activate
//!   --accept`).
//! - systemd socket activation: when LISTEN_PID is our pid and LISTEN_FDS > 0, the listeners
//!   passed from fd 3 on are served instead of binding `--listen` and `--tls-listen`; a
//!   descriptor named `ftps` in LISTEN_FDNAMES (`FileDescriptorName=ftps`) is an implicit TLS
//!   listener. The variables are unset once read.
//! - sd_notify: when NOTIFY_SOCKET is set (a path, or `@name` for the abstract namespace),
//!   `READY=1` once listening and `STOPPING=1` at SIGTERM, one non-blocking datagram each.

use std::env;
use std::io;
use std::net::TcpStream;
use std::os::fd::RawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use log::warn;

use super::{bind, Listener};
use crate::config::Config;
use crate::reply;
use crate::sys::{self, Inherited};

/// The first descriptor systemd passes (SD_LISTEN_FDS_START).
const LISTEN_FDS_START: RawFd = 3;

/// The LISTEN_FDNAMES name that marks an implicit TLS listener.
pub const IMPLICIT_TLS_NAME: &str = "ftps";

/// Where the sessions come from.
pub enum Start {
    /// Listeners: bound from --listen/--tls-listen, or passed by systemd (`from_systemd`).
    Listen {
        listeners: Vec<Listener>,
        from_systemd: bool,
    },
    /// --inetd: the one control connection.
    Inetd(TcpStream),
}

/// Decides where the sessions come from (see the file comment) and takes those sockets.
pub fn start(config: &Config, inetd: bool) -> Result<Start, String> {
    if inetd {
        let fd = inetd_fd();
        systemd_fds();
        return inetd_connection(fd).map(Start::Inetd);
    }
    let passed = systemd_fds();
    match passed {
        Some(count) => Ok(Start::Listen {
            listeners: systemd_listeners(config, count)?,
            from_systemd: true,
        }),
        None => Ok(Start::Listen {
            listeners: bind(config)?,
            from_systemd: false,
        }),
    }
}

/// The descriptor --inetd serves: systemd Accept=yes passes the connection itself as fd 3;
/// inetd and tcpsvd leave it on fd 0. Read before `start` takes the variables away.
pub fn inetd_fd() -> RawFd {
    if passed_fds() == Some(1) {
        LISTEN_FDS_START
    } else {
        0
    }
}

/// --inetd could not start: the client waiting on the connection hears 421 instead of a bare
/// close (the reason goes to the log, not to the client). Nothing is sent when the descriptor
/// is not a connected TCP socket.
pub fn refuse_inetd_client(fd: RawFd) {
    if let Ok(Inherited::Connected) = sys::inherited_socket(fd) {
        let _ = sys::send_on(
            fd,
            &reply::render(reply::SERVICE_NOT_AVAILABLE, "Service not available."),
        );
    }
}

/// How many descriptors systemd passed to this process (None: none, or they were meant for
/// another process).
fn passed_fds() -> Option<usize> {
    let pid = env::var("LISTEN_PID").ok()?;
    let fds = env::var("LISTEN_FDS").ok()?;
    let ours = pid.trim().parse::<u32>().ok()? == std::process::id();
    let count = fds.trim().parse::<usize>().ok()?;
    (ours && count > 0).then_some(count)
}

/// `passed_fds`, and the variables unset either way, so that nothing started later mistakes
/// them for its own.
fn systemd_fds() -> Option<usize> {
    let passed = passed_fds();
    // Single-threaded here (before the loop starts): changing the environment is sound.
    env::remove_var("LISTEN_PID");
    env::remove_var("LISTEN_FDS");
    passed
}

fn inetd_connection(fd: RawFd) -> Result<TcpStream, String> {
    env::remove_var("LISTEN_FDNAMES");
    let refuse = |what: &str| format!("--inetd: fd {fd} is not a connected TCP socket ({what})");
    match sys::inherited_socket(fd) {
        Ok(Inherited::Connected) => {}
        Ok(Inherited::NotSocket) => return Err(refuse("it is not a socket")),
        Ok(Inherited::NotTcp) => return Err(refuse("it is another kind of socket")),
        Ok(Inherited::Listening) => return Err(refuse("it is a listening socket")),
        Ok(Inherited::Unconnected) => return Err(refuse("it is not connected")),
        Err(e) => return Err(refuse(&e.to_string())),
    }
    let stream = TcpStream::from(sys::adopt(fd).map_err(|e| refuse(&e.to_string()))?);
    stream
        .set_nonblocking(true)
        .map_err(|e| format!("--inetd: fd {fd}: {e}"))?;
    Ok(stream)
}

fn systemd_listeners(config: &Config, count: usize) -> Result<Vec<Listener>, String> {
    let names = env::var("LISTEN_FDNAMES").unwrap_or_default();
    env::remove_var("LISTEN_FDNAMES");
    let names: Vec<&str> = names.split(':').collect();
    (0..count)
        .map(|i| {
            let fd = LISTEN_FDS_START + i as RawFd;
            let name = names.get(i).copied().unwrap_or("");
            let refuse = |what: &str| {
                format!("socket activation: fd {fd} is not a listening TCP socket ({what})")
            };
            match sys::inherited_socket(fd) {
                Ok(Inherited::Listening) => {}
                Ok(Inherited::Connected) => {
                    return Err(refuse("it is a connection: Accept=yes units need --inetd"))
                }
                Ok(Inherited::NotSocket) => return Err(refuse("it is not a socket")),
                Ok(Inherited::NotTcp) => return Err(refuse("it is another kind of socket")),
                Ok(Inherited::Unconnected) => return Err(refuse("it is not connected")),
                Err(e) => return Err(refuse(&e.to_string())),
            }
            let implicit_tls = name == IMPLICIT_TLS_NAME;
            if implicit_tls && config.tls.is_none() {
                return Err(format!(
                    "socket activation: fd {fd} is named {IMPLICIT_TLS_NAME} (implicit TLS), \
                     which needs --tls-cert"
                ));
            }
            let socket =
                std::net::TcpListener::from(sys::adopt(fd).map_err(|e| refuse(&e.to_string()))?);
            socket
                .set_nonblocking(true)
                .map_err(|e| format!("socket activation: fd {fd}: {e}"))?;
            Ok(Listener {
                socket: mio::net::TcpListener::from_std(socket),
                implicit_tls,
            })
        })
        .collect()
}

/// sd_notify without libsystemd: datagrams to NOTIFY_SOCKET.
pub struct Notify {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notify {
    /// The notification socket systemd gave (NOTIFY_SOCKET, then unset), if any; a value that
    /// cannot be used is logged and ignored.
    pub fn from_env() -> Option<Notify> {
        let path = env::var_os("NOTIFY_SOCKET")?;
        env::remove_var("NOTIFY_SOCKET");
        let result = (|| {
            let bytes = path.as_encoded_bytes();
            let addr = match bytes.strip_prefix(b"@") {
                Some(name) => SocketAddr::from_abstract_name(name)?,
                None => SocketAddr::from_pathname(&path)?,
            };
            let socket = UnixDatagram::unbound()?;
            socket.set_nonblocking(true)?;
            io::Result::Ok(Notify { socket, addr })
        })();
        result
            .map_err(|e| {
                warn!(
                    "NOTIFY_SOCKET {}: {e}; not notifying",
                    std::path::Path::new(&path).display()
                )
            })
            .ok()
    }

    /// The socket's path, unless it is in the abstract namespace.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.addr.as_pathname()
    }

    /// Sends one state line ("READY=1", "STOPPING=1"); a full or gone socket costs the message,
    /// never a wait.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.addr) {
            warn!("sd_notify {state}: {e}");
        }
    }
}
