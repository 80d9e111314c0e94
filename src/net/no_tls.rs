//! The build without the `tls` feature: the same names as tls.rs, but no value of them can
//! exist (uninhabited enums), so the loop compiles unchanged and no TLS code path is left in.
//! Any TLS flag ends at `Keys::load` with one clear error.

use std::io;

use mio::net::TcpStream;

use super::stream::Shutdown;
use crate::config::TlsConfig;

pub enum Keys {}

impl Keys {
    pub fn load(_tls: &TlsConfig) -> Result<Keys, String> {
        Err("this leanftpd was built without TLS (cargo feature `tls`): the --tls-* flags are not available".into())
    }

    pub fn for_session(&self) -> SessionKeys {
        match *self {}
    }
}

pub enum SessionKeys {}

impl SessionKeys {
    pub fn control(&self) -> io::Result<Box<TlsLayer>> {
        match *self {}
    }

    pub fn data(&self) -> io::Result<Box<TlsLayer>> {
        match *self {}
    }
}

pub enum TlsLayer {}

impl TlsLayer {
    pub fn read(&mut self, _tcp: &mut TcpStream, _buf: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }

    pub fn write(&mut self, _tcp: &mut TcpStream, _buf: &[u8]) -> io::Result<usize> {
        match *self {}
    }

    pub fn flush_pending(&mut self, _tcp: &mut TcpStream) -> io::Result<bool> {
        match *self {}
    }

    pub fn handshake(&mut self, _tcp: &mut TcpStream) -> io::Result<bool> {
        match *self {}
    }

    pub fn shutdown(&mut self, _tcp: &mut TcpStream) -> io::Result<Shutdown> {
        match *self {}
    }

    pub fn is_handshaking(&self) -> bool {
        match *self {}
    }

    pub fn resumed(&self) -> bool {
        match *self {}
    }
}
