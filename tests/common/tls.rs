//! FTPS from the test's side: certificates made by openssl in a temporary directory, and
//! [`Ftps`], a TLS client in a Python process (`ftps.py`, Python's ssl module: the test crate
//! has no TLS library) that the test drives one step at a time: connect, send a line, read a
//! reply, start TLS (resuming the session of another connection, or not), move data, end a
//! connection with or without close_notify.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::Duration;

use super::{parse_227, parse_229, require, run_cmd, Reply, TempDir, IO_TIMEOUT};

/// A self-signed certificate for CN=localhost and its key, as PEM files.
pub struct Cert {
    pub dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate followed by the key, in one file.
    pub combined: PathBuf,
}

/// The key type of a [`Cert`].
#[derive(Clone, Copy, Debug)]
pub enum KeyKind {
    /// ECDSA P-256.
    Ec,
    /// RSA 2048.
    Rsa,
}

impl Cert {
    /// Makes a certificate and key with `openssl req -x509`.
    pub fn new(kind: KeyKind) -> Cert {
        require("openssl");
        let dir = TempDir::new("cert");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let (c, k) = (cert.display().to_string(), key.display().to_string());
        let mut args = vec!["req", "-x509", "-newkey"];
        match kind {
            KeyKind::Ec => args.extend(["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]),
            KeyKind::Rsa => args.extend(["rsa:2048"]),
        }
        args.extend([
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &k,
            "-out",
            &c,
        ]);
        tool("openssl", &args, b"");
        let combined = dir.join("combined.pem");
        let mut both = std::fs::read(&cert).unwrap();
        both.extend(std::fs::read(&key).unwrap());
        std::fs::write(&combined, both).unwrap();
        Cert {
            dir,
            cert,
            key,
            combined,
        }
    }

    pub fn ec() -> Cert {
        Cert::new(KeyKind::Ec)
    }

    pub fn rsa() -> Cert {
        Cert::new(KeyKind::Rsa)
    }

    /// The SHA-256 of the certificate (DER), lower-case hex.
    pub fn fingerprint(&self) -> String {
        let c = self.cert.display().to_string();
        let args = ["x509", "-in", &c, "-noout", "-fingerprint", "-sha256"];
        let out = tool("openssl", &args, b"");
        // "sha256 Fingerprint=AB:CD:..."
        let hex = out.trim().rsplit('=').next().unwrap();
        hex.replace(':', "").to_lowercase()
    }

    /// `--tls-cert CERT --tls-key KEY`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

/// What reading a data connection to its end gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub len: u64,
    pub sha256: String,
    /// How it ended: `close_notify`, `eof` (a TCP FIN without close_notify on a TLS
    /// connection), `reset`, `timeout`.
    pub end: String,
}

/// What a TLS handshake gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// The offered session was resumed.
    pub reused: bool,
    /// The SHA-256 of the certificate the server presented (DER), as [`Cert::fingerprint`].
    pub peer: String,
}

/// The TLS versions a handshake may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Any,
    V12,
    V13,
}

impl Version {
    fn word(self) -> &'static str {
        match self {
            Version::Any => "any",
            Version::V12 => "1.2",
            Version::V13 => "1.3",
        }
    }
}

/// The Python TLS client (`ftps.py`): holds named connections. Killed on Drop.
pub struct Ftps {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<String>,
}

const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/ftps.py");

/// How long one step may take beyond the driver's own 10 s socket timeout.
const STEP_TIMEOUT: Duration = Duration::from_secs(IO_TIMEOUT.as_secs() + 20);

impl Ftps {
    pub fn new() -> Ftps {
        require("python3");
        let mut child = Command::new("python3")
            .args(["-u", DRIVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 {DRIVER}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, answers) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ftps {
            child,
            stdin,
            answers,
        }
    }

    /// Runs one driver command: Ok(what follows `ok `) or Err(the driver's error text).
    pub fn try_call(&mut self, command: &str) -> Result<String, String> {
        writeln!(self.stdin, "{command}").expect("the TLS driver is gone");
        let answer = self
            .answers
            .recv_timeout(STEP_TIMEOUT)
            .unwrap_or_else(|e| panic!("TLS driver: no answer to {command:?}: {e}"));
        if let Some(rest) = answer.strip_prefix("ok") {
            Ok(rest.trim_start().to_string())
        } else {
            Err(answer)
        }
    }

    /// Runs one driver command that must succeed.
    #[track_caller]
    pub fn call(&mut self, command: &str) -> String {
        self.try_call(command)
            .unwrap_or_else(|e| panic!("TLS driver: {command:?} -> {e}"))
    }

    // ---- connections ----

    /// A plain TCP connection `name` to `addr` (127.0.0.1), nothing read.
    #[track_caller]
    pub fn connect(&mut self, name: &str, addr: SocketAddr) {
        self.call(&format!("connect {name} {}", addr.port()));
    }

    /// The TLS handshake on `name`, resuming `resume`'s session when given.
    pub fn try_tls(
        &mut self,
        name: &str,
        resume: Option<&str>,
        version: Version,
    ) -> Result<Handshake, String> {
        let answer = self.try_call(&format!(
            "tls {name} {} {}",
            resume.unwrap_or("-"),
            version.word()
        ))?;
        let mut words = answer.split(' ');
        Ok(Handshake {
            version: words.next().unwrap_or_default().to_string(),
            reused: words.next() == Some("1"),
            peer: words.next().unwrap_or_default().to_string(),
        })
    }

    #[track_caller]
    pub fn tls(&mut self, name: &str, resume: Option<&str>, version: Version) -> Handshake {
        self.try_tls(name, resume, version)
            .unwrap_or_else(|e| panic!("TLS handshake on {name}: {e}"))
    }

    /// Closes `name` with a TCP FIN (no close_notify).
    pub fn close(&mut self, name: &str) {
        self.call(&format!("close {name}"));
    }

    /// Sends close_notify on `name`, then closes it (not waiting for the peer's).
    pub fn notify(&mut self, name: &str) {
        self.call(&format!("notify {name}"));
    }

    /// Closes `name` with a TCP RST.
    pub fn reset(&mut self, name: &str) {
        self.call(&format!("rst {name}"));
    }

    /// Sets `name`'s socket timeout.
    pub fn timeout(&mut self, name: &str, timeout: Duration) {
        self.call(&format!("timeout {name} {}", timeout.as_secs_f64()));
    }

    // ---- the control connection ----

    /// Sends `line` + CRLF on `name`.
    #[track_caller]
    pub fn send(&mut self, name: &str, line: &str) {
        assert!(!line.contains(['\r', '\n']), "{line:?}: use send_raw");
        self.call(&format!("line {name} {line}"));
    }

    /// Sends raw bytes on `name`.
    #[track_caller]
    pub fn send_raw(&mut self, name: &str, bytes: &[u8]) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.call(&format!("raw {name} {hex}"));
    }

    /// One reply on `name`, or Err(the driver's error: EOF, timeout, TLS error).
    pub fn try_reply(&mut self, name: &str) -> Result<Reply, String> {
        let answer = self.try_call(&format!("reply {name}"))?;
        let mut fields = answer.split('\t');
        let code = fields.next().unwrap_or_default();
        let code: u16 = code
            .parse()
            .map_err(|_| format!("malformed reply {answer:?}"))?;
        Ok(Reply {
            code,
            lines: fields.map(String::from).collect(),
        })
    }

    #[track_caller]
    pub fn reply(&mut self, name: &str) -> Reply {
        self.try_reply(name)
            .unwrap_or_else(|e| panic!("reading a reply on {name}: {e}"))
    }

    /// Sends a command on `name` and reads its reply.
    #[track_caller]
    pub fn cmd(&mut self, name: &str, line: &str) -> Reply {
        self.send(name, line);
        self.reply(name)
    }

    /// Sends a command and asserts the reply's code.
    #[track_caller]
    pub fn expect(&mut self, name: &str, line: &str, code: u16) -> Reply {
        let r = self.cmd(name, line);
        assert_eq!(r.code, code, "{name}: {line} -> {:?}", r.lines);
        r
    }

    /// A control connection `name`: connect, the 220, AUTH TLS -> 234, the handshake.
    #[track_caller]
    pub fn explicit(&mut self, name: &str, addr: SocketAddr, version: Version) -> Handshake {
        self.connect(name, addr);
        self.reply(name).expect(220);
        self.expect(name, "AUTH TLS", 234);
        self.tls(name, None, version)
    }

    /// A control connection `name` to an implicit TLS listener: connect, handshake, the 220.
    #[track_caller]
    pub fn implicit(&mut self, name: &str, addr: SocketAddr, version: Version) -> Handshake {
        self.connect(name, addr);
        let hs = self.tls(name, None, version);
        self.reply(name).expect(220);
        hs
    }

    /// USER, PASS: 331, 230.
    #[track_caller]
    pub fn login(&mut self, name: &str, user: &str, password: &str) {
        self.expect(name, &format!("USER {user}"), 331);
        self.expect(name, &format!("PASS {password}"), 230);
    }

    /// PBSZ 0 and PROT P: 200, 200.
    #[track_caller]
    pub fn prot_p(&mut self, name: &str) {
        self.expect(name, "PBSZ 0", 200);
        self.expect(name, "PROT P", 200);
    }

    /// An explicit TLS session logged in as anonymous, PROT P, TYPE I.
    #[track_caller]
    pub fn anonymous(&mut self, name: &str, addr: SocketAddr) {
        self.explicit(name, addr, Version::Any);
        self.login(name, "anonymous", "tls@");
        self.prot_p(name);
        self.expect(name, "TYPE I", 200);
    }

    // ---- data connections ----

    /// PASV on `ctl`, then a plain TCP data connection `data` to the announced port.
    #[track_caller]
    pub fn pasv(&mut self, ctl: &str, data: &str) {
        let r = self.expect(ctl, "PASV", 227);
        let (_, port) = parse_227(&r.lines[0]);
        self.call(&format!("connect {data} {port}"));
    }

    /// EPSV on `ctl`, then a plain TCP data connection `data` to the announced port.
    #[track_caller]
    pub fn epsv(&mut self, ctl: &str, data: &str) {
        let r = self.expect(ctl, "EPSV", 229);
        let port = parse_229(&r.lines[0]);
        self.call(&format!("connect {data} {port}"));
    }

    /// A listener `name` on 127.0.0.1 and PORT for it on `ctl` (200).
    #[track_caller]
    pub fn port(&mut self, ctl: &str, name: &str) {
        let port: u16 = self.call(&format!("listen {name}")).parse().unwrap();
        self.expect(
            ctl,
            &format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff),
            200,
        );
    }

    /// Accepts the server's connection on `listener` as `data`.
    #[track_caller]
    pub fn accept(&mut self, listener: &str, data: &str) {
        self.call(&format!("accept {data} {listener}"));
    }

    /// Reads `name` to its end.
    #[track_caller]
    pub fn recv(&mut self, name: &str) -> Received {
        parse_received(&self.call(&format!("recv {name}")))
    }

    /// Reads `name` to its end into the file `path`.
    #[track_caller]
    pub fn recv_file(&mut self, name: &str, path: &std::path::Path) -> Received {
        parse_received(&self.call(&format!("recvfile {name} {}", path.display())))
    }

    /// Reads exactly `count` bytes from `name`.
    #[track_caller]
    pub fn recv_exact(&mut self, name: &str, count: usize) {
        self.call(&format!("recvn {name} {count}"));
    }

    /// Sends `len` bytes of the driver's pattern on `name`: their SHA-256.
    #[track_caller]
    pub fn send_pattern(&mut self, name: &str, len: u64) -> String {
        let answer = self.call(&format!("send {name} {len}"));
        answer.split(' ').nth(1).unwrap().to_string()
    }

    /// Sends the file at `path` on `name`: its SHA-256.
    #[track_caller]
    pub fn send_file(&mut self, name: &str, path: &std::path::Path) -> String {
        let answer = self.call(&format!("sendfile {name} {}", path.display()));
        answer.split(' ').nth(1).unwrap().to_string()
    }

    /// How many bytes wait on `name` (none read) after waiting up to `wait` for some.
    #[track_caller]
    pub fn pending(&mut self, name: &str, wait: Duration) -> usize {
        let answer = self.call(&format!("pending {name} {}", wait.as_millis()));
        answer.parse().unwrap()
    }

    /// The bytes of a TLS ClientHello (not sent anywhere).
    pub fn client_hello(&mut self) -> Vec<u8> {
        let hex = self.call("hello x");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }
}

impl Drop for Ftps {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "exit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[track_caller]
fn parse_received(answer: &str) -> Received {
    let words: Vec<&str> = answer.split(' ').collect();
    assert_eq!(words.len(), 3, "{answer:?}");
    Received {
        len: words[0].parse().unwrap(),
        sha256: words[1].to_string(),
        end: words[2].to_string(),
    }
}

/// Runs a tool (openssl, sha256sum) that must succeed within 2 minutes: its stdout.
#[track_caller]
fn tool(prog: &str, args: &[&str], stdin: &[u8]) -> String {
    let out = run_cmd(prog, args, stdin, Duration::from_secs(120));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{prog} {args:?}: {}",
        out.stderr
    );
    out.stdout
}

/// The SHA-256 of a file, by `sha256sum`.
pub fn sha256_file(path: &std::path::Path) -> String {
    let p = path.display().to_string();
    tool("sha256sum", &[&p], b"")
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

/// The SHA-256 of bytes, by `sha256sum`.
pub fn sha256_bytes(data: &[u8]) -> String {
    tool("sha256sum", &[], data)
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}
