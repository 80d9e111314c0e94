//! ftpload-tls: the FTPS load client of `scripts/bench` (rustls with ring, one thread per client).
//!
//! Build: `cargo build --release --manifest-path scripts/ftpload-tls/Cargo.toml`
//!
//! Usage: `ftpload-tls MODE HOST:PORT [--option value ...]`
//!
//! Every session is explicit FTPS (RFC 4217): connect, 220, `AUTH TLS`, 234, the TLS handshake,
//! then USER/PASS over TLS. Each session has its own resumption store, so that its data
//! connections offer the control connection's own TLS session (ticket or session id) and no
//! other (what vsftpd's require_ssl_reuse and leanftpd's `--tls-session-reuse required` demand);
//! a data handshake that does not resume is an error. The certificate is not verified (the
//! bench's certificate is self-signed; `curl -k` does the same), the handshake signatures are.
//! Data connections follow ftplib's order: connect to the EPSV port, RETR, 150, then the
//! handshake (vsftpd starts its handshake only after the 150); a download must end with the
//! server's close_notify (a bare FIN is an error: it could hide a truncation).
//!
//! Why not Python's ssl (OpenSSL 3.0): about 3 ms of client CPU per session here, which on a
//! 2-CPU machine bounds the rate of a server that needs much less and hides the ratio; this
//! client needs a fraction of that (its CPU is reported).
//!
//! Modes (each prints one `key=value ...` line on stdout, errors on stderr, exit 1 on any error):
//! - `ping`      one session: AUTH TLS, login, QUIT (used to wait for a server to be up).
//! - `sessions`  `--clients C` threads share `--total S` sessions of (connect, AUTH TLS, login,
//!               PBSZ 0, PROT P, EPSV, RETR `--path` over a TLS data connection that resumes the
//!               control session, QUIT). Reports sessions/s, p50/p99/max of a whole session (ms)
//!               and the client's own CPU seconds.
//! - `idle`      open `--clients N` sessions (AUTH TLS + login) with 16 threads, print
//!               `ready sessions=N`, and hold them until stdin reaches EOF.
//!
//! Other options: `--user` (anonymous), `--pass` (bench@), `--timeout` seconds for every socket
//! operation (30), `--expect` bytes every RETR must deliver (checked when given).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, SignatureScheme,
};

// Shared with scripts/ftpload.rs: reply lines, EPSV, the sessions runner, arguments.
#[path = "../../ftpload_common.rs"]
mod common;
use common::{parse_epsv, read_reply, Res};

type Tls = rustls::StreamOwned<ClientConnection, TcpStream>;

#[derive(Clone)]
struct Opts {
    base: common::Base,
    tls: Arc<ClientConfig>,
}

impl std::ops::Deref for Opts {
    type Target = common::Base;
    fn deref(&self) -> &common::Base {
        &self.base
    }
}

/// Accepts any certificate, verifies the handshake signatures.
#[derive(Debug)]
struct NoCertCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn base_config() -> Res<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoCertCheck(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TCP connection with the socket timeouts, without Nagle (small writes, then a read).
fn connect(addr: SocketAddr, timeout: Duration) -> Res<TcpStream> {
    let s = common::connect(addr, timeout)?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

fn expect<R: BufRead>(r: &mut R, codes: &[u32], what: &str) -> Res<String> {
    let (code, text) = read_reply(r)?;
    if codes.contains(&code) {
        Ok(text)
    } else {
        Err(format!("{what}: expected {codes:?}, got {text:?}"))
    }
}

/// A logged-in control connection over TLS, with its own resumption store.
struct Session {
    ctl: BufReader<Tls>,
    tls: Arc<ClientConfig>,
    opts: Opts,
}

impl Session {
    fn open(opts: &Opts) -> Res<Session> {
        let tcp = connect(opts.addr, opts.timeout)?;
        let mut plain = BufReader::new(tcp);
        expect(&mut plain, &[220], "greeting")?;
        plain
            .get_mut()
            .write_all(b"AUTH TLS\r\n")
            .map_err(|e| format!("sending AUTH TLS: {e}"))?;
        expect(&mut plain, &[234], "AUTH TLS")?;
        if !plain.buffer().is_empty() {
            return Err("bytes after the 234, before the handshake".into());
        }
        let mut cfg = (*opts.tls).clone();
        cfg.resumption = Resumption::in_memory_sessions(4); // this session's own, see the header
        let tls = Arc::new(cfg);
        let conn = ClientConnection::new(tls.clone(), server_name(opts.addr))
            .map_err(|e| format!("TLS: {e}"))?;
        let mut s = Session {
            ctl: BufReader::new(rustls::StreamOwned::new(conn, plain.into_inner())),
            tls,
            opts: opts.clone(),
        };
        let user = format!("USER {}", s.opts.user);
        s.send(&user)?;
        match read_reply(&mut s.ctl)? {
            (230, _) => {}
            (331, _) => {
                let pass = format!("PASS {}", s.opts.pass);
                s.send(&pass)?;
                expect(&mut s.ctl, &[230], "PASS")?;
            }
            (_, text) => return Err(format!("{user}: {text:?}")),
        }
        Ok(s)
    }

    fn send(&mut self, line: &str) -> Res<()> {
        let s = self.ctl.get_mut();
        s.write_all(format!("{line}\r\n").as_bytes())
            .and_then(|_| s.flush())
            .map_err(|e| format!("sending {line:?}: {e}"))
    }

    fn cmd(&mut self, line: &str, codes: &[u32]) -> Res<String> {
        self.send(line)?;
        expect(&mut self.ctl, codes, line)
    }

    /// EPSV, RETR over a TLS data connection that must resume this session; returns the bytes.
    fn retr(&mut self, path: &str, buf: &mut [u8]) -> Res<u64> {
        let text = self.cmd("EPSV", &[229])?;
        let port = parse_epsv(&text).ok_or_else(|| format!("cannot parse EPSV reply {text:?}"))?;
        let tcp = connect(
            SocketAddr::new(self.opts.addr.ip(), port),
            self.opts.timeout,
        )?;
        self.cmd(&format!("RETR {path}"), &[125, 150])?;
        let conn = ClientConnection::new(self.tls.clone(), server_name(self.opts.addr))
            .map_err(|e| format!("TLS: {e}"))?;
        let mut data = rustls::StreamOwned::new(conn, tcp);
        while data.conn.is_handshaking() {
            data.conn
                .complete_io(&mut data.sock)
                .map_err(|e| format!("data connection handshake: {e}"))?;
        }
        if data.conn.handshake_kind() != Some(HandshakeKind::Resumed) {
            return Err(format!(
                "the data connection's handshake did not resume the control session ({:?})",
                data.conn.handshake_kind()
            ));
        }
        let mut n = 0u64;
        loop {
            match data.read(buf) {
                Ok(0) => break, // close_notify
                Ok(k) => n += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("data connection after {n} bytes: {e}")),
            }
        }
        drop(data);
        expect(&mut self.ctl, &[226, 250], "end of RETR")?;
        if let Some(want) = self.opts.expect {
            if n != want {
                return Err(format!("RETR {path}: got {n} bytes, expected {want}"));
            }
        }
        Ok(n)
    }
}

fn server_name(addr: SocketAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.ip().into())
}

fn one_session(opts: &Opts, buf: &mut [u8]) -> Res<()> {
    let mut s = Session::open(opts)?;
    s.cmd("PBSZ 0", &[200])?;
    s.cmd("PROT P", &[200])?;
    s.retr(&opts.path, buf)?;
    s.cmd("QUIT", &[221]).map(|_| ())
}

fn mode_sessions(opts: &Opts) -> Res<String> {
    let o = opts.clone();
    common::run_sessions(opts.clients, opts.total, move |buf| one_session(&o, buf))
}

fn mode_idle(opts: &Opts) -> Res<String> {
    let left = Arc::new(AtomicUsize::new(opts.clients));
    let held = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for _ in 0..opts.clients.clamp(1, 16) {
        let (left, held, opts) = (left.clone(), held.clone(), opts.clone());
        handles.push(thread::spawn(move || -> Res<()> {
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let s = Session::open(&opts)?;
                held.lock().map_err(|_| "lock poisoned")?.push(s);
            }
            Ok(())
        }));
    }
    for h in handles {
        h.join()
            .map_err(|_| "client thread panicked".to_string())??;
    }
    let n = held.lock().map_err(|_| "lock poisoned")?.len();
    println!("ready sessions={n}");
    io::stdout().flush().map_err(|e| e.to_string())?;
    let mut sink = [0u8; 256];
    while io::stdin().read(&mut sink).map_err(|e| e.to_string())? > 0 {}
    drop(held);
    Ok(format!("mode=idle sessions={n} closed"))
}

fn mode_ping(opts: &Opts) -> Res<String> {
    let mut s = Session::open(opts)?;
    s.cmd("QUIT", &[221])?;
    Ok("mode=ping ok".into())
}

fn parse_args() -> Res<(String, Opts)> {
    let a = common::Args::parse(&[])?;
    let opts = Opts {
        base: a.base()?,
        tls: base_config()?,
    };
    Ok((a.mode, opts))
}

fn main() {
    let result = parse_args().and_then(|(mode, opts)| match mode.as_str() {
        "ping" => mode_ping(&opts),
        "sessions" => mode_sessions(&opts),
        "idle" => mode_idle(&opts),
        other => Err(format!("unknown mode {other:?}")),
    });
    common::finish("ftpload-tls", result)
}
