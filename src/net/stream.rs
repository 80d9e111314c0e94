//! The stream seam: every control and data connection is a `Stream`, so the loop never names a
//! socket type. Today there is one kind, `Plain` (TCP); FTPS adds a `Tls` variant here and
//! nothing else in the loop changes. Zero-copy (sendfile, splice) is a capability of the plain
//! stream only: any other kind answers `Unsupported` and the transfer tasks copy instead.
//!
//! Must not: parse FTP or decide anything about a session; it moves bytes and reports readiness.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::transfer::DataStream;

pub enum Stream {
    Plain(TcpStream),
}

/// Where a stream's close stands: a TLS close_notify may need more than one turn to go out.
#[derive(Debug, PartialEq, Eq)]
pub enum Shutdown {
    Done,
    /// More to send: call again when the socket is writable.
    Pending,
}

impl Stream {
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
        }
    }

    /// Sends what the stream itself still holds (a TLS record, say); true once nothing is left.
    /// A plain stream holds nothing.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self {
            Stream::Plain(_) => Ok(true),
        }
    }

    /// Starts or continues an orderly close. A plain stream has nothing to say first: dropping
    /// it sends the FIN.
    pub fn shutdown(&mut self) -> io::Result<Shutdown> {
        match self {
            Stream::Plain(_) => Ok(Shutdown::Done),
        }
    }

    /// True while a handshake is still running (never for plain streams).
    pub fn is_handshaking(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }

    /// The socket the loop registers: every kind of stream rides on one TCP connection.
    fn source(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
        }
    }

    pub fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        registry.register(self.source(), token, interest)
    }

    pub fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        registry.reregister(self.source(), token, interest)
    }

    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(self.source());
    }
}

/// What the transfer tasks see of a data connection.
impl DataStream for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Stream::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Stream::write(self, buf)
    }

    fn send_file(&mut self, file: &File, offset: &mut u64, len: usize) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => {
                let socket = tcp.as_raw_fd();
                // try_io tells mio when we hit WouldBlock, so readiness is re-armed correctly.
                tcp.try_io(|| crate::sys::sendfile(socket, file.as_raw_fd(), offset, len))
            }
        }
    }

    fn splice_to(&mut self, pipe: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => {
                let socket = tcp.as_raw_fd();
                tcp.try_io(|| crate::sys::splice(socket, pipe.as_raw_fd(), len))
            }
        }
    }
}
