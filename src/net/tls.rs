//! FTPS (RFC 4217) on rustls, which is sans-IO: this file feeds it the TCP socket's bytes and
//! sends what it produces, so a TLS stream is read and written like a plain one (stream.rs) and
//! the loop stays non-blocking. It owns the certificate (loaded at start-up and at SIGHUP), the
//! TLS layer of one connection, and the rule that a data connection resumes its own control
//! connection's TLS session.
//!
//! Session reuse: every control connection gets a TLS session store of its own, and its data
//! connections look sessions up in that store only (read-only). A data connection that resumes
//! shows it came from the client that did the control handshake (RFC 4217 10.2, the data
//! connection theft that vsftpd's require_ssl_reuse stops); one that presents another control
//! connection's ticket or id finds nothing there and makes a full handshake, which
//! `--tls-session-reuse required` refuses. Stored sessions are not single-use: every data
//! connection of a session resumes the one ticket its client got.
//!
//! Data connections get no TLS 1.3 tickets: a client that never reads an upload's data
//! connection (curl) would close it with unread bytes, which turns its close into a reset and
//! loses the end of the upload.
//!
//! Must not: parse FTP, or block: every socket call here may answer `WouldBlock`.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use mio::net::TcpStream;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::StoresServerSessions;
use rustls::{HandshakeKind, ServerConfig, ServerConnection};

use super::stream::Shutdown;
use crate::config::{TlsConfig, TLS13_TICKETS_PER_CONTROL, TLS_SESSIONS_PER_CONTROL};

/// The server's certificate and key as a rustls configuration; each control connection derives
/// its own from it (`Keys::for_session`).
pub struct Keys {
    config: Arc<ServerConfig>,
}

impl Keys {
    /// Reads the PEM certificate chain and key (RSA, ECDSA or Ed25519; PKCS#1, PKCS#8 or SEC1)
    /// and checks that they belong together. Errors are one line for the operator.
    pub fn load(tls: &TlsConfig) -> Result<Keys, String> {
        let certs = read_certs(&tls.cert)?;
        let key = read_key(&tls.key)?;
        let provider = Arc::new(ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                let why = match e {
                    rustls::Error::InconsistentKeys(_) => "the key is not the certificate's".into(),
                    other => other.to_string(),
                };
                format!(
                    "--tls-cert {} and --tls-key {}: {why}",
                    tls.cert.display(),
                    tls.key.display()
                )
            })?;
        Ok(Keys {
            config: Arc::new(config),
        })
    }

    /// The TLS state of one control connection: its own session store, shared with nobody.
    pub fn for_session(&self) -> SessionKeys {
        let store = Arc::new(SessionStore::default());
        let mut control = (*self.config).clone();
        control.session_storage = store.clone();
        control.send_tls13_tickets = TLS13_TICKETS_PER_CONTROL;
        let mut data = (*self.config).clone();
        data.session_storage = Arc::new(ReadOnly(store));
        data.send_tls13_tickets = 0;
        SessionKeys {
            control: Arc::new(control),
            data: Arc::new(data),
        }
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let what = || format!("--tls-cert {}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {}", what(), pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {}", what(), pem_error(e)))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", what()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("--tls-key {}: {}", path.display(), pem_error(e)))
}

fn pem_error(error: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(e) => e.to_string(),
        Error::NoItemsFound => "no PEM private key in it".into(),
        Error::MissingSectionEnd { .. } => "not valid PEM (a section has no END line)".into(),
        Error::IllegalSectionStart { .. } => "not valid PEM (a malformed BEGIN line)".into(),
        Error::Base64Decode(_) => "not valid PEM (bad base64)".into(),
        _ => "not valid PEM".into(),
    }
}

/// One control connection's TLS configurations: the control one stores its sessions, the
/// data one may only resume them.
pub struct SessionKeys {
    control: Arc<ServerConfig>,
    data: Arc<ServerConfig>,
}

impl SessionKeys {
    pub fn control(&self) -> io::Result<Box<TlsLayer>> {
        TlsLayer::new(self.control.clone())
    }

    pub fn data(&self) -> io::Result<Box<TlsLayer>> {
        TlsLayer::new(self.data.clone())
    }
}

/// The TLS sessions of one control connection, oldest first.
#[derive(Debug, Default)]
struct SessionStore {
    // A Mutex because rustls asks for Sync; the loop is single-threaded, so it never waits.
    sessions: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl StoresServerSessions for SessionStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() == TLS_SESSIONS_PER_CONTROL {
            sessions.remove(0);
        }
        sessions.push((key, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .iter()
            .find(|(stored, _)| stored == key)
            .map(|(_, value)| value.clone())
    }

    /// TLS 1.3 tickets are single-use elsewhere; here each data connection resumes the one
    /// ticket of its control connection, so taking one leaves it in place.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// A data connection's view of its control connection's store: it may resume, never add.
#[derive(Debug)]
struct ReadOnly(Arc<SessionStore>);

impl StoresServerSessions for ReadOnly {
    fn put(&self, _key: Vec<u8>, _value: Vec<u8>) -> bool {
        false
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.take(key)
    }

    fn can_cache(&self) -> bool {
        false
    }
}

/// The TLS layer of one connection, above its TCP socket.
pub struct TlsLayer {
    conn: ServerConnection,
    /// Our close_notify is queued.
    closing: bool,
    /// The peer's close_notify came: the stream ended in order.
    peer_closed: bool,
}

impl TlsLayer {
    fn new(config: Arc<ServerConfig>) -> io::Result<Box<TlsLayer>> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Box::new(TlsLayer {
            conn,
            closing: false,
            peer_closed: false,
        }))
    }

    /// Plaintext into `buf`: what rustls holds first, then records from the socket, until `buf`
    /// is full or the socket would block. Ok(0) after the peer's close_notify; a close without
    /// it is `UnexpectedEof` (the data may have been cut short).
    pub fn read(&mut self, tcp: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.conn.reader().read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if filled > 0 && e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(tcp) {
                // End of the TCP stream: the reader tells close_notify from truncation.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.process(tcp)?;
            // Handshake messages and alerts that reading produced.
            self.flush_pending(tcp)?;
        }
        Ok(filled)
    }

    /// Encrypts as much of `buf` as rustls takes. Records still waiting for the socket go out
    /// first: until they have, this is `WouldBlock`, so what rustls buffers stays bounded.
    pub fn write(&mut self, tcp: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
        if !self.flush_pending(tcp)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.conn.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            // The handshake is not done and its plaintext buffer is full.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.flush_pending(tcp)?;
        Ok(n)
    }

    /// Sends the records rustls holds; true once none is left.
    pub fn flush_pending(&mut self, tcp: &mut TcpStream) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Runs the handshake as far as the socket allows; true once it is complete.
    pub fn handshake(&mut self, tcp: &mut TcpStream) -> io::Result<bool> {
        while self.conn.is_handshaking() {
            if !self.flush_pending(tcp)? {
                return Ok(false);
            }
            match self.conn.read_tls(tcp) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.process(tcp)?;
        }
        self.flush_pending(tcp)?;
        Ok(true)
    }

    /// Decrypts the records read; a protocol error is sent to the peer as an alert and ends
    /// this connection.
    fn process(&mut self, tcp: &mut TcpStream) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.peer_closed |= state.peer_has_closed();
                Ok(())
            }
            Err(e) => {
                let _ = self.flush_pending(tcp);
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    /// Sends close_notify (once) and what is still buffered. Once the peer has sent its own
    /// close_notify, a peer that is gone already (a reset, a broken pipe) is no error: the
    /// transfer had ended in order.
    pub fn shutdown(&mut self, tcp: &mut TcpStream) -> io::Result<Shutdown> {
        if !self.closing {
            self.conn.send_close_notify();
            self.closing = true;
        }
        match self.flush_pending(tcp) {
            Ok(true) => Ok(Shutdown::Done),
            Ok(false) => Ok(Shutdown::Pending),
            Err(_) if self.peer_closed => Ok(Shutdown::Done),
            Err(e) => Err(e),
        }
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True when the handshake resumed a stored session (a data connection resuming its
    /// control connection's).
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }
}
