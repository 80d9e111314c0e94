//! The stream seam: every control and data connection is a `Stream`, so the loop never names a
//! socket type. A stream is a TCP socket, plain or under a TLS layer (FTPS: tls.rs), which AUTH
//! TLS adds to a control connection that started plain. Zero-copy (sendfile, splice) is a
//! capability of the plain stream only: under TLS it answers `Unsupported` and the transfer
//! tasks copy through rustls instead, in bounded steps.
//!
//! Must not: parse FTP or decide anything about a session; it moves bytes and reports readiness.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::tls::TlsLayer;
use crate::transfer::DataStream;

pub struct Stream {
    tcp: TcpStream,
    tls: Option<Box<TlsLayer>>,
}

/// Where a stream's close stands: a TLS close_notify may need more than one turn to go out.
#[derive(Debug, PartialEq, Eq)]
pub enum Shutdown {
    Done,
    /// More to send: call again when the socket is writable.
    Pending,
}

impl Stream {
    pub fn plain(tcp: TcpStream) -> Stream {
        Stream { tcp, tls: None }
    }

    pub fn with_tls(tcp: TcpStream, tls: Box<TlsLayer>) -> Stream {
        Stream {
            tcp,
            tls: Some(tls),
        }
    }

    /// AUTH TLS: from now on every byte goes through `tls`.
    pub fn start_tls(&mut self, tls: Box<TlsLayer>) {
        self.tls = Some(tls);
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.tcp.read(buf),
            Some(tls) => tls.read(&mut self.tcp, buf),
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.tcp.write(buf),
            Some(tls) => tls.write(&mut self.tcp, buf),
        }
    }

    /// Sends what the stream itself still holds (TLS records); true once nothing is left.
    /// A plain stream holds nothing.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match &mut self.tls {
            None => Ok(true),
            Some(tls) => tls.flush_pending(&mut self.tcp),
        }
    }

    /// Runs a TLS handshake as far as the socket allows; true once it is done (at once for a
    /// plain stream).
    pub fn handshake(&mut self) -> io::Result<bool> {
        match &mut self.tls {
            None => Ok(true),
            Some(tls) => tls.handshake(&mut self.tcp),
        }
    }

    /// A TLS stream whose handshake made a new session instead of resuming a stored one.
    pub fn is_fresh_tls(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| !tls.resumed())
    }

    /// Starts or continues an orderly close (TLS: close_notify). A plain stream has nothing to
    /// say first: dropping it sends the FIN.
    pub fn shutdown(&mut self) -> io::Result<Shutdown> {
        match &mut self.tls {
            None => Ok(Shutdown::Done),
            Some(tls) => tls.shutdown(&mut self.tcp),
        }
    }

    /// True while a TLS handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    pub fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        registry.register(&mut self.tcp, token, interest)
    }

    pub fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        registry.reregister(&mut self.tcp, token, interest)
    }

    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.tcp);
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
        if self.tls.is_some() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let socket = self.tcp.as_raw_fd();
        // try_io tells mio when we hit WouldBlock, so readiness is re-armed correctly.
        self.tcp
            .try_io(|| crate::sys::sendfile(socket, file.as_raw_fd(), offset, len))
    }

    fn splice_to(&mut self, pipe: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        if self.tls.is_some() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let socket = self.tcp.as_raw_fd();
        self.tcp
            .try_io(|| crate::sys::splice(socket, pipe.as_raw_fd(), len))
    }
}
