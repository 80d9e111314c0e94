//! FTPS (RFC 4217, issue 10) on the real binary: explicit TLS (AUTH TLS) on `--listen`
//! addresses, implicit TLS on `--tls-listen` ones, protected data connections (PBSZ/PROT) and
//! the policies around them (`--tls-required`, `--tls-session-reuse`).
//!
//! Certificates are made by openssl in each test's temporary directory. The clients are real:
//! curl, lftp, Python's `ftplib.FTP_TLS`, `openssl s_client`, and for the exact protocol steps
//! [`Ftps`], a TLS client in a Python process (its ssl module) that the test drives one step at
//! a time (plain steps of a test that stays plain use the std-socket [`Client`]).
//!
//! In the build without the `tls` feature only two tests run here: every TLS flag is refused
//! (exit 2, one stderr line), and a server without a certificate answers AUTH with 502.

#[macro_use]
mod common;

use common::*;

/// A server without a certificate refuses AUTH TLS with 502 ("not implemented": TLS is not
/// configured) and does not offer it in FEAT, in either build; the session goes on in the
/// clear.
#[test]
fn without_a_certificate_auth_is_502_and_feat_does_not_offer_tls() {
    let s = Server::start(&["-a"]);
    let mut c = s.connect();
    let feat = c.expect("FEAT", 211);
    for word in ["AUTH", "PBSZ", "PROT"] {
        assert!(
            !feat.lines.iter().any(|l| l.trim().starts_with(word)),
            "FEAT offers {word} without a certificate: {:?}",
            feat.lines
        );
    }
    c.expect("AUTH TLS", 502);
    c.expect("AUTH SSL", 502);
    c.login_anonymous();
    c.expect("NOOP", 200);
}

/// The build without the feature `tls` refuses every TLS flag: exit 2, one stderr line that
/// names the flag.
#[cfg(not(feature = "tls"))]
#[test]
fn every_tls_flag_is_refused_by_the_build_without_tls() {
    let root = TempDir::new("notls");
    let pem = root.write("cert.pem", b"not used");
    let pem = pem.display().to_string();
    let r = root.path().display().to_string();
    for flag in [
        vec!["--tls-cert", pem.as_str()],
        vec!["--tls-key", pem.as_str()],
        vec!["--tls-listen", "127.0.0.1:0"],
        vec!["--tls-required", "login"],
        vec!["--tls-required", "all"],
        vec!["--tls-session-reuse", "optional"],
        vec!["--tls-session-reuse", "required"],
    ] {
        let mut args = vec!["--root", r.as_str(), "-a", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(&flag);
        refuses(&args, &[flag[0]]);
    }
}

#[cfg(feature = "tls")]
mod ftps {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::net::{SocketAddr, TcpStream};
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant};

    /// How much later than a deadline its effect may come on a loaded machine.
    const SLACK: Duration = Duration::from_secs(3);

    // ------------------------------------------------------------ servers and transfers

    /// `-a -w`, the certificate, `extra`, on `--listen 127.0.0.1:0`.
    fn server(cert: &Cert, extra: &[&str]) -> Server {
        let cert_args = cert.args();
        let mut args: Vec<&str> = vec!["-a", "-w"];
        args.extend(cert_args.iter().map(String::as_str));
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// A server with a plain listener and an implicit TLS one: (server, plain, implicit).
    fn implicit_server(cert: &Cert, extra: &[&str]) -> (Server, SocketAddr, SocketAddr) {
        let cert_args = cert.args();
        let mut args: Vec<&str> = vec!["-a", "-w"];
        args.extend(cert_args.iter().map(String::as_str));
        args.extend_from_slice(extra);
        args.extend(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"]);
        let s = Server::start_with_listeners(&args, 2);
        // `listening on` lines come in the order of the listeners: --listen ones, then
        // --tls-listen ones.
        let (plain, implicit) = (s.addrs()[0], s.addrs()[1]);
        (s, plain, implicit)
    }

    /// How a protected data connection is made.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Dc {
        Pasv,
        Epsv,
        Port,
    }

    const DCS: [Dc; 3] = [Dc::Pasv, Dc::Epsv, Dc::Port];

    /// PASV/EPSV (connected as `d`) or PORT (listener `l`) on `ctl`.
    fn open_data(py: &mut Ftps, ctl: &str, dc: Dc) {
        match dc {
            Dc::Pasv => py.pasv(ctl, "d"),
            Dc::Epsv => py.epsv(ctl, "d"),
            Dc::Port => py.port(ctl, "l"),
        }
    }

    /// Starts a protected transfer on `ctl` as ftplib does: the data connection made, the
    /// command sent, its 150 read, then the data connection `d` (accepted first in active
    /// mode) handshakes, offering the TLS session of `resume`. Err(reply) when the command
    /// is refused.
    fn start_transfer(
        py: &mut Ftps,
        ctl: &str,
        dc: Dc,
        command: &str,
        resume: Option<&str>,
    ) -> Result<Handshake, Reply> {
        open_data(py, ctl, dc);
        let first = py.cmd(ctl, command);
        if !first.is(&[125, 150]) {
            return Err(first);
        }
        if dc == Dc::Port {
            py.accept("l", "d");
        }
        Ok(py.tls("d", resume, Version::Any))
    }

    /// A protected download (RETR, LIST, MLSD, NLST) on `ctl`, resuming `ctl`'s session (into
    /// the file `sink` when given): its data connection's handshake and what came, which must
    /// end with close_notify, then 226.
    #[track_caller]
    fn download(
        py: &mut Ftps,
        ctl: &str,
        dc: Dc,
        command: &str,
        sink: Option<&Path>,
    ) -> (Handshake, Received) {
        let hs = start_transfer(py, ctl, dc, command, Some(ctl))
            .unwrap_or_else(|r| panic!("{command} -> {:?}", r.lines));
        let got = match sink {
            Some(path) => py.recv_file("d", path),
            None => py.recv("d"),
        };
        assert_eq!(got.end, "close_notify", "{command} ({dc:?}): {got:?}");
        py.close("d");
        py.reply(ctl).expect(226);
        (hs, got)
    }

    /// `download`: what came.
    #[track_caller]
    fn get(py: &mut Ftps, ctl: &str, dc: Dc, command: &str) -> Received {
        download(py, ctl, dc, command, None).1
    }

    /// `download` in passive mode: the bytes, through a file in `tmp`.
    #[track_caller]
    fn get_bytes(py: &mut Ftps, tmp: &TempDir, ctl: &str, command: &str) -> Vec<u8> {
        let path = tmp.join(format!("got-{}", unique()));
        download(py, ctl, Dc::Pasv, command, Some(&path));
        fs::read(&path).unwrap()
    }

    /// A protected upload of `len` pattern bytes on `ctl`, ended with close_notify: 226;
    /// their SHA-256.
    #[track_caller]
    fn put(py: &mut Ftps, ctl: &str, dc: Dc, command: &str, len: u64) -> String {
        start_transfer(py, ctl, dc, command, Some(ctl))
            .unwrap_or_else(|r| panic!("{command} -> {:?}", r.lines));
        let sha = py.send_pattern("d", len);
        py.notify("d");
        py.reply(ctl).expect(226);
        sha
    }

    /// The 522 of a refused data connection names the flag that allows it.
    #[track_caller]
    fn assert_522_names_the_flag(r: &Reply) {
        assert_eq!(r.code, 522, "{:?}", r.lines);
        assert!(
            r.text().contains("--tls-session-reuse"),
            "522 should name --tls-session-reuse: {:?}",
            r.lines
        );
    }

    /// A sparse file of `len` bytes with a few marks (so a checksum tells offsets apart).
    fn sparse(path: &Path, len: u64) {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(path).unwrap();
        f.set_len(len).unwrap();
        for (i, off) in [0, len / 3, len / 2, len - 4096].into_iter().enumerate() {
            f.write_all_at(&pattern(4096, i as u64 + 1), off).unwrap();
        }
    }

    fn users(name: &str, password: &str) -> Users {
        Users::new(&[(name, &hash_password(password), name, "rw")])
    }

    // ------------------------------------------------------------ flags

    /// Missing, unreadable, non-PEM or mismatched certificate and key, TLS flags without a
    /// certificate, and bad values: exit 2 with one stderr line.
    #[test]
    fn bad_certificate_key_and_tls_flags_exit_2_with_one_line() {
        let a = Cert::ec();
        let b = Cert::rsa();
        let root = TempDir::new("tls-cli");
        let junk = root.write("junk.pem", b"-----BEGIN CERTIFICATE-----\nnot base64\n");
        let empty = root.write("empty.pem", b"");
        let p = |p: &Path| p.display().to_string();
        let (ac, ak, bk, junk, empty) = (p(&a.cert), p(&a.key), p(&b.key), p(&junk), p(&empty));
        let missing = "/nonexistent/leanftpd-cert.pem".to_string();
        let r = root.path().display().to_string();
        let ok = ["--tls-cert", ac.as_str(), "--tls-key", ak.as_str()];
        let with = |extra: [&'static str; 2]| [&ok[..], &extra[..]].concat();
        // (flags, what the one line must name)
        let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
            (
                vec!["--tls-cert", &missing, "--tls-key", &ak],
                vec![&missing],
            ),
            (
                vec!["--tls-cert", &ac, "--tls-key", &missing],
                vec![&missing],
            ),
            // The cert file holds no key, and no --tls-key.
            (vec!["--tls-cert", &ac], vec![&ac]),
            (vec!["--tls-cert", &junk, "--tls-key", &ak], vec![&junk]),
            (vec!["--tls-cert", &empty, "--tls-key", &ak], vec![&empty]),
            (vec!["--tls-cert", &ac, "--tls-key", &empty], vec![&empty]),
            // A key of another certificate (and of another type).
            (vec!["--tls-cert", &ac, "--tls-key", &bk], vec![&ac, &bk]),
            // Flags that need a certificate, without one.
            (vec!["--tls-key", &ak], vec!["--tls-key", "--tls-cert"]),
            (
                vec!["--tls-listen", "127.0.0.1:0"],
                vec!["--tls-listen", "--tls-cert"],
            ),
            (
                vec!["--tls-required", "all"],
                vec!["--tls-required", "--tls-cert"],
            ),
            (
                vec!["--tls-session-reuse", "optional"],
                vec!["--tls-session-reuse", "--tls-cert"],
            ),
            // Bad values.
            (
                with(["--tls-required", "sometimes"]),
                vec!["--tls-required"],
            ),
            (
                with(["--tls-session-reuse", "maybe"]),
                vec!["--tls-session-reuse"],
            ),
            (with(["--tls-listen", "nowhere"]), vec!["nowhere"]),
        ];
        for (flags, mentions) in cases {
            let mut args = vec!["--root", r.as_str(), "-a", "--listen", "127.0.0.1:0"];
            args.extend_from_slice(&flags);
            refuses(&args, &mentions);
        }
    }

    /// An RSA certificate with its key in the same file (no --tls-key) and an ECDSA one with a
    /// separate key: both serve TLS 1.2 and TLS 1.3, on control and data connections.
    #[test]
    fn rsa_and_ecdsa_certificates_serve_tls_1_2_and_1_3() {
        for (kind, combined) in [(KeyKind::Rsa, true), (KeyKind::Ec, false)] {
            let cert = Cert::new(kind);
            let combined_path = cert.combined.display().to_string();
            let s = if combined {
                Server::start(&["-a", "--tls-cert", &combined_path])
            } else {
                server(&cert, &[])
            };
            s.put("f.bin", &pattern(100_000, 1));
            let want = sha256_bytes(&pattern(100_000, 1));
            for (version, name) in [(Version::V12, "TLSv1.2"), (Version::V13, "TLSv1.3")] {
                let mut py = Ftps::new();
                let hs = py.explicit("c", s.addr(), version);
                assert_eq!(hs.version, name, "{kind:?}");
                py.login("c", "anonymous", "x");
                py.prot_p("c");
                py.expect("c", "TYPE I", 200);
                let (hs, got) = download(&mut py, "c", Dc::Pasv, "RETR f.bin", None);
                assert_eq!((got.len, got.sha256), (100_000, want.clone()), "{kind:?}");
                assert_eq!(hs.version, name, "{kind:?}: the data connection");
                assert!(
                    hs.reused,
                    "{kind:?} {name}: the data connection did not resume"
                );
            }
        }
    }

    // ------------------------------------------------------------ reply codes

    #[test]
    fn feat_lists_auth_tls_pbsz_and_prot() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let mut c = s.connect();
        let feat = c.expect("FEAT", 211);
        let features: Vec<&str> = feat.lines[1..feat.lines.len() - 1]
            .iter()
            .map(|l| l.trim())
            .collect();
        for want in ["AUTH TLS", "PBSZ", "PROT"] {
            assert!(features.contains(&want), "FEAT lacks {want}: {features:?}");
        }
    }

    /// AUTH TLS after a login makes the user log in again (RFC 2228 3): the session counts
    /// once against --max-sessions-per-user, not once per login, and a second session is
    /// still refused.
    #[test]
    fn a_login_again_after_auth_tls_counts_its_session_once() {
        let cert = Cert::ec();
        let u = users("alice", "alice-pw");
        let file = u.file_arg();
        let s = server(&cert, &["--users", &file, "--max-sessions-per-user", "1"]);
        let mut py = Ftps::new();
        py.connect("c", s.addr());
        py.reply("c").expect(220);
        py.login("c", "alice", "alice-pw");
        py.expect("c", "AUTH TLS", 234);
        py.tls("c", None, Version::Any);
        py.login("c", "alice", "alice-pw");
        let mut other = s.connect();
        other.expect("USER alice", 331);
        other.expect("PASS alice-pw", 421);
        py.expect("c", "PWD", 257);
    }

    /// Every reply code of AUTH, PBSZ, PROT and CCC, in the order a session meets them.
    #[test]
    fn auth_pbsz_prot_and_ccc_reply_codes() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let mut py = Ftps::new();
        py.connect("c", s.addr());
        py.reply("c").expect(220);
        // Before AUTH.
        py.expect("c", "AUTH KERBEROS_V4", 504);
        py.expect("c", "PBSZ 0", 503);
        py.expect("c", "PROT P", 503);
        py.expect("c", "AUTH TLS", 234);
        py.tls("c", None, Version::Any);
        // After AUTH.
        py.expect("c", "AUTH TLS", 503);
        py.expect("c", "AUTH SSL", 503);
        py.expect("c", "PROT P", 503);
        py.expect("c", "PBSZ 0", 200);
        py.expect("c", "PROT S", 536);
        py.expect("c", "PROT E", 536);
        py.expect("c", "PROT X", 504);
        py.expect("c", "PROT C", 200);
        py.expect("c", "PROT P", 200);
        py.expect("c", "CCC", 534);
        // Still protected and usable.
        py.login("c", "anonymous", "x");
        py.expect("c", "NOOP", 200);
        py.expect("c", "QUIT", 221);
    }

    /// curl sends AUTH SSL first; AUTH TLS-C is RFC 4217's other name: both are AUTH TLS.
    #[test]
    fn auth_ssl_and_auth_tls_c_are_synonyms() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        for mech in ["AUTH SSL", "AUTH TLS-C", "auth tls"] {
            let mut py = Ftps::new();
            py.connect("c", s.addr());
            py.reply("c").expect(220);
            py.expect("c", mech, 234);
            py.tls("c", None, Version::Any);
            py.login("c", "anonymous", "x");
            py.expect("c", "PBSZ 0", 200);
        }
    }

    /// STARTTLS command injection: bytes after the AUTH line, in the same segment, are
    /// discarded, never executed after the handshake.
    #[test]
    fn commands_pipelined_after_auth_tls_are_discarded() {
        let cert = Cert::ec();
        let s = server(&cert, &["-v"]);
        let mut py = Ftps::new();
        py.connect("c", s.addr());
        py.reply("c").expect(220);
        py.send_raw("c", b"AUTH TLS\r\nUSER anonymous\r\nMKD evil\r\n");
        py.reply("c").expect(234);
        py.tls("c", None, Version::Any);
        // USER was not executed: PASS is out of sequence.
        py.expect("c", "PASS x", 503);
        py.login("c", "anonymous", "x");
        py.expect("c", "NOOP", 200);
        assert!(!s.path("evil").exists(), "MKD evil was executed");
        py.expect("c", "QUIT", 221);
        assert_eq!(
            s.log_count_where(|l| l.contains("evil")),
            0,
            "the injected command reached the log: {}",
            s.log_text()
        );
    }

    /// RFC 2228 3 (AUTH): "The AUTH command, if accepted, removes any state associated with
    /// prior FTP Security commands. The server must also require that the user reauthorize
    /// (that is, reissue some or all of the USER, PASS, and ACCT commands)". A USER sent in the
    /// clear must not carry over into the protected session: PASS after AUTH is 503.
    #[test]
    fn a_user_given_before_auth_tls_does_not_survive_it() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let mut py = Ftps::new();
        py.connect("c", s.addr());
        py.reply("c").expect(220);
        py.expect("c", "USER anonymous", 331);
        py.expect("c", "AUTH TLS", 234);
        py.tls("c", None, Version::Any);
        py.expect("c", "PASS x", 503);
        py.login("c", "anonymous", "x");
    }

    /// `--tls-required login`: a users-file user's USER before AUTH TLS is 530 with a text
    /// that says to use AUTH TLS; after AUTH the user logs in; anonymous may stay in the
    /// clear, data included.
    #[test]
    fn tls_required_login_protects_users_file_logins_only() {
        let cert = Cert::ec();
        let u = users("alice", "secret");
        fs::write(u.home("alice").join("a.txt"), b"alice's").unwrap();
        let (s, plain, implicit) =
            implicit_server(&cert, &["-U", &u.file_arg(), "--tls-required", "login"]);
        s.put("pub.txt", b"public");
        let mut c = Client::connect(plain);
        let r = c.expect("USER alice", 530);
        assert!(r.text().contains("AUTH TLS"), "{:?}", r.lines);
        // Not even PASS gets through.
        c.expect("PASS secret", 503);
        // Anonymous in the clear, data connection in the clear too.
        c.login_anonymous();
        assert_eq!(c.retr(Mode::Pasv, "pub.txt"), b"public");
        // The user over TLS.
        let mut py = Ftps::new();
        py.explicit("c", plain, Version::Any);
        py.login("c", "alice", "secret");
        py.prot_p("c");
        py.expect("c", "TYPE I", 200);
        let got = get(&mut py, "c", Dc::Pasv, "RETR a.txt");
        assert_eq!(got.sha256, sha256_bytes(b"alice's"));
        // PROT C is allowed under `login`.
        py.expect("c", "PROT C", 200);
        // An implicit TLS session is protected from its start: USER goes through.
        py.implicit("i", implicit, Version::Any);
        py.login("i", "alice", "secret");
    }

    /// `--tls-required all`: USER before AUTH is 530 (saying AUTH TLS), PROT C is 534, a
    /// transfer at the default level C is 521, and after it the session goes on to a
    /// protected transfer.
    #[test]
    fn tls_required_all_protects_every_session_and_every_transfer() {
        let cert = Cert::ec();
        let s = server(&cert, &["--tls-required", "all"]);
        s.put("f.txt", b"protected");
        let mut c = s.connect();
        let r = c.expect("USER anonymous", 530);
        assert!(r.text().contains("AUTH TLS"), "{:?}", r.lines);
        let mut py = Ftps::new();
        py.explicit("c", s.addr(), Version::Any);
        py.login("c", "anonymous", "x");
        py.expect("c", "TYPE I", 200);
        // No PBSZ/PROT yet: the level is C.
        py.pasv("c", "d");
        py.expect("c", "RETR f.txt", 521);
        py.close("d");
        py.expect("c", "PBSZ 0", 200);
        py.expect("c", "PROT C", 534);
        // Still C after the refused PROT C: LIST is refused too.
        py.pasv("c", "d");
        py.expect("c", "LIST", 521);
        py.close("d");
        py.expect("c", "NOOP", 200);
        py.expect("c", "PROT P", 200);
        let got = get(&mut py, "c", Dc::Pasv, "RETR f.txt");
        assert_eq!(got.sha256, sha256_bytes(b"protected"));
    }

    // ------------------------------------------------------------ session reuse

    /// With reuse required (the default), a data connection that does not resume its control
    /// connection's session is refused with 522 naming `--tls-session-reuse`, whether it
    /// handshakes before or after the command, in passive and active mode; the session goes
    /// on, and the same transfer resuming the session passes.
    #[test]
    fn a_data_connection_that_does_not_resume_gets_522_naming_the_flag() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        s.put("f.bin", &pattern(50_000, 3));
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        for dc in DCS {
            // As ftplib does: command, 150, then the handshake.
            start_transfer(&mut py, "c", dc, "RETR f.bin", None).unwrap();
            let r = py.reply("c");
            assert_522_names_the_flag(&r);
            // Refused in order: nothing sent, then close_notify (ftplib reads a clean end).
            let got = py.recv("d");
            assert_eq!(
                (got.len, got.end.as_str()),
                (0, "close_notify"),
                "{dc:?}: the refused data connection"
            );
            py.close("d");
            py.expect("c", "NOOP", 200);
        }
        // The handshake at connect, before the command.
        py.pasv("c", "d");
        let _ = py.try_tls("d", None, Version::Any);
        let mut r = py.cmd("c", "RETR f.bin");
        if r.code == 150 {
            r = py.reply("c");
        }
        assert_522_names_the_flag(&r);
        py.close("d");
        // Upload too: nothing is stored.
        let _ = start_transfer(&mut py, "c", Dc::Pasv, "STOR up.bin", None);
        let _ = py.try_call("send d 10000");
        let _ = py.try_call("notify d");
        assert_522_names_the_flag(&py.reply("c"));
        let stored = fs::metadata(s.path("up.bin")).map(|m| m.len()).unwrap_or(0);
        assert_eq!(stored, 0, "bytes of a refused data connection were stored");
        // Resuming: passes.
        let got = get(&mut py, "c", Dc::Pasv, "RETR f.bin");
        assert_eq!(got.sha256, sha256_bytes(&pattern(50_000, 3)));
    }

    /// A data connection that resumes the TLS session of ANOTHER control connection (a
    /// session id in TLS 1.2, a ticket in TLS 1.3) is refused with 522, though the server
    /// issued that session; resuming its own passes (the check is not just "resumed").
    #[test]
    fn a_data_connection_resuming_another_sessions_tls_session_gets_522() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        s.put("f.bin", &pattern(20_000, 4));
        for version in [Version::V12, Version::V13] {
            let mut py = Ftps::new();
            for ctl in ["a", "b"] {
                py.explicit(ctl, s.addr(), version);
                py.login(ctl, "anonymous", "x");
                py.prot_p(ctl);
                py.expect(ctl, "TYPE I", 200);
            }
            // A's data connection with B's session.
            py.pasv("a", "d");
            py.expect("a", "RETR f.bin", 150);
            let hs = py.try_tls("d", Some("b"), version);
            let r = py.reply("a");
            assert_522_names_the_flag(&r);
            if let Ok(hs) = hs {
                assert_eq!(py.recv("d").len, 0, "{version:?}: {hs:?}");
            }
            py.close("d");
            // A's own session: resumed, 226.
            py.pasv("a", "d");
            py.expect("a", "RETR f.bin", 150);
            let hs = py.tls("d", Some("a"), version);
            assert!(
                hs.reused,
                "{version:?}: A's own session was not resumed: {hs:?}"
            );
            assert_eq!(py.recv("d").len, 20_000);
            py.close("d");
            py.reply("a").expect(226);
            // And B with its own.
            let got = get(&mut py, "b", Dc::Pasv, "RETR f.bin");
            assert_eq!(got.len, 20_000);
        }
    }

    /// `--tls-session-reuse optional`: a fresh data handshake is accepted.
    #[test]
    fn session_reuse_optional_accepts_a_fresh_data_handshake() {
        let cert = Cert::ec();
        let s = server(&cert, &["--tls-session-reuse", "optional"]);
        s.put("f.bin", &pattern(30_000, 5));
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        for dc in DCS {
            start_transfer(&mut py, "c", dc, "RETR f.bin", None).unwrap();
            let got = py.recv("d");
            assert_eq!(got.end, "close_notify");
            assert_eq!(got.sha256, sha256_bytes(&pattern(30_000, 5)), "{dc:?}");
            py.close("d");
            py.reply("c").expect(226);
        }
    }

    // ------------------------------------------------------------ Python ftplib

    const FTPLIB_TLS: &str = r#"
import ftplib, hashlib, io, ssl, sys
port, kind, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]

class Resuming(ftplib.FTP_TLS):
    """Resumes the control connection's TLS session on every data connection."""
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session)
        return conn, size

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ftp = (Resuming if kind == "resuming" else ftplib.FTP_TLS)(context=ctx, timeout=10)
ftp.connect("127.0.0.1", port)
ftp.auth()
ftp.login("anonymous", "py@")
ftp.prot_p()
ftp.set_pasv(mode == "passive")
data = bytes(range(256)) * (3 * 4096)
try:
    ftp.storbinary("STOR up.bin", io.BytesIO(data))
except (ftplib.error_perm, ssl.SSLError, OSError) as e:
    if not isinstance(e, ftplib.error_perm):
        try:
            ftp.getresp()
        except ftplib.error_perm as refused:
            e = refused
    print("refused", e)
    print("noop", ftp.voidcmd("NOOP"))
    sys.exit(0)
buf = io.BytesIO()
ftp.retrbinary("RETR up.bin", buf.write)
assert buf.getvalue() == data, "retrbinary"
names = ftp.nlst()
assert names == ["up.bin"], names
facts = dict(ftp.mlsd(facts=["size"]))
assert facts["up.bin"]["size"] == str(len(data)), facts
print("OK", ftp.quit())
"#;

    fn ftplib_tls(s: &Server, kind: &str, mode: &str) -> String {
        let tmp = TempDir::new("py-tls");
        fs::write(tmp.join("t.py"), FTPLIB_TLS).unwrap();
        run_ok(
            tmp.path(),
            "python3",
            &["t.py", &s.port().to_string(), kind, mode],
        )
    }

    const THREE_MIB: usize = 3 * 1024 * 1024;

    /// Plain `ftplib.FTP_TLS` never resumes the data connection's session: 522 naming the flag
    /// with reuse required, and the session goes on (NOOP 200); nothing is stored.
    #[test]
    fn python_ftplib_ftp_tls_gets_522_with_reuse_required() {
        require("python3");
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        for mode in ["passive", "active"] {
            let out = ftplib_tls(&s, "plain", mode);
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 2, "{mode}: {out}");
            assert!(lines[0].starts_with("refused 522 "), "{mode}: {out}");
            assert!(lines[0].contains("--tls-session-reuse"), "{mode}: {out}");
            assert!(lines[1].starts_with("noop 200"), "{mode}: {out}");
            let stored = fs::metadata(s.path("up.bin")).map(|m| m.len()).unwrap_or(0);
            assert_eq!(stored, 0, "{mode}");
        }
    }

    /// With `--tls-session-reuse optional`, plain `ftplib.FTP_TLS` passes: a 3 MiB upload
    /// (which ftplib ends with close_notify), its download, NLST and MLSD, QUIT 221.
    #[test]
    fn python_ftplib_ftp_tls_passes_with_reuse_optional() {
        require("python3");
        let cert = Cert::ec();
        let s = server(&cert, &["--tls-session-reuse", "optional"]);
        for mode in ["passive", "active"] {
            let out = ftplib_tls(&s, "plain", mode);
            assert!(out.starts_with("OK 221"), "{mode}: {out}");
            assert_eq!(fs::read(s.path("up.bin")).unwrap().len(), THREE_MIB);
        }
    }

    /// The small subclass whose data connections resume `self.sock.session` passes with reuse
    /// required, passive and active.
    #[test]
    fn python_ftplib_subclass_resuming_the_session_passes_with_reuse_required() {
        require("python3");
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        for mode in ["passive", "active"] {
            let out = ftplib_tls(&s, "resuming", mode);
            assert!(out.starts_with("OK 221"), "{mode}: {out}");
            let want: Vec<u8> = (0..=255u8).cycle().take(THREE_MIB).collect();
            assert_bytes_eq(&fs::read(s.path("up.bin")).unwrap(), &want, mode);
        }
    }

    // ------------------------------------------------------------ curl

    fn curl(dir: &Path, args: &[&str]) -> String {
        let mut all = vec!["-sS", "--fail", "-k"];
        all.extend_from_slice(args);
        run_ok(dir, "curl", &all)
    }

    /// curl explicit FTPS (`--ssl-reqd -k` on ftp://): download, upload, listing, with TLS
    /// 1.3 and with `--tls-max 1.2`, EPSV and PASV.
    #[test]
    fn curl_explicit_ftps_downloads_uploads_and_lists() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let data = pattern(1_234_567, 6);
        s.put("d/f.bin", &data);
        let tmp = TempDir::new("curl-tls");
        fs::write(tmp.join("up.bin"), &data).unwrap();
        let base = format!("ftp://127.0.0.1:{}", s.port());
        for (i, extra) in [vec![], vec!["--tls-max", "1.2"], vec!["--disable-epsv"]]
            .iter()
            .enumerate()
        {
            let mut args = vec!["--ssl-reqd"];
            args.extend(extra.iter().copied());
            let out = format!("out{i}");
            let u = format!("{base}/d/f.bin");
            let mut a = args.clone();
            a.extend(["-o", &out, &u]);
            curl(tmp.path(), &a);
            assert_bytes_eq(
                &fs::read(tmp.join(&out)).unwrap(),
                &data,
                &format!("{extra:?}"),
            );
            let u = format!("{base}/d/up{i}.bin");
            let mut a = args.clone();
            a.extend(["-T", "up.bin", &u]);
            curl(tmp.path(), &a);
            assert_bytes_eq(
                &fs::read(s.path(&format!("d/up{i}.bin"))).unwrap(),
                &data,
                &format!("upload {extra:?}"),
            );
            let u = format!("{base}/d/");
            let mut a = args.clone();
            a.extend(["--list-only", &u]);
            let names = curl(tmp.path(), &a);
            let mut names: Vec<&str> = names.lines().map(|l| l.trim_end_matches('\r')).collect();
            names.sort();
            let mut want: Vec<String> = vec!["f.bin".into()];
            want.extend((0..=i).map(|j| format!("up{j}.bin")));
            assert_eq!(names, want, "{extra:?}");
            let mut a = args.clone();
            a.push(&u);
            let list = curl(tmp.path(), &a);
            assert!(
                list.lines()
                    .any(|l| l.starts_with('-') && l.ends_with(" f.bin")),
                "{list}"
            );
        }
    }

    /// curl `ftps://` (implicit) against `--tls-listen`: download, upload and listing, TLS 1.3
    /// and 1.2.
    #[test]
    fn curl_implicit_ftps_against_tls_listen() {
        let cert = Cert::ec();
        let (s, _, implicit) = implicit_server(&cert, &[]);
        let data = pattern(654_321, 7);
        s.put("f.bin", &data);
        let tmp = TempDir::new("curl-tls");
        fs::write(tmp.join("up.bin"), &data).unwrap();
        let base = format!("ftps://127.0.0.1:{}", implicit.port());
        for (i, extra) in [vec![], vec!["--tls-max", "1.2"]].iter().enumerate() {
            let out = format!("out{i}");
            let u = format!("{base}/f.bin");
            let mut a: Vec<&str> = extra.clone();
            a.extend(["-o", &out, &u]);
            curl(tmp.path(), &a);
            assert_bytes_eq(
                &fs::read(tmp.join(&out)).unwrap(),
                &data,
                "ftps:// download",
            );
            let u = format!("{base}/up{i}.bin");
            let mut a: Vec<&str> = extra.clone();
            a.extend(["-T", "up.bin", &u]);
            curl(tmp.path(), &a);
            assert_bytes_eq(
                &fs::read(s.path(&format!("up{i}.bin"))).unwrap(),
                &data,
                "ftps:// upload",
            );
            let u = format!("{base}/");
            let mut a: Vec<&str> = extra.clone();
            a.extend(["--list-only", &u]);
            let names = curl(tmp.path(), &a);
            assert!(names.lines().any(|l| l.trim_end() == "f.bin"), "{names}");
        }
    }

    // ------------------------------------------------------------ lftp

    fn lftp(port: u16, dir: &Path, user: &str, script: &str) -> String {
        let full = format!(
            "set ftp:ssl-force true; set ftp:ssl-protect-data true; \
             set ftp:ssl-protect-list true; set ssl:verify-certificate no; \
             set net:max-retries 1; set net:timeout 10; set cmd:fail-exit yes; \
             open -u {user} ftp://127.0.0.1:{port}; {script}"
        );
        run_ok(dir, "lftp", &["-c", &full])
    }

    /// lftp (GnuTLS) with a users-file user under `--tls-required login`, passive and active:
    /// a 3 MiB upload (lftp closes it without reading) arrives whole, comes back whole, and
    /// is listed.
    #[test]
    fn lftp_with_a_users_file_user_passive_and_active() {
        let cert = Cert::ec();
        let u = users("bob", "pw");
        let s = server(&cert, &["-U", &u.file_arg(), "--tls-required", "login"]);
        let tmp = TempDir::new("lftp-tls");
        let data = pattern(THREE_MIB, 9);
        fs::write(tmp.join("up.bin"), &data).unwrap();
        for passive in ["on", "off"] {
            let out = lftp(
                s.port(),
                tmp.path(),
                "bob,pw",
                &format!(
                    "set ftp:passive-mode {passive}; put up.bin -o up-{passive}.bin; \
                     get up-{passive}.bin -o back-{passive}.bin; cls -1"
                ),
            );
            assert_bytes_eq(
                &fs::read(u.home("bob").join(format!("up-{passive}.bin"))).unwrap(),
                &data,
                &format!("lftp put, passive {passive}"),
            );
            assert_bytes_eq(
                &fs::read(tmp.join(format!("back-{passive}.bin"))).unwrap(),
                &data,
                &format!("lftp get, passive {passive}"),
            );
            assert!(
                out.lines().any(|l| l == format!("up-{passive}.bin")),
                "{out:?}"
            );
        }
    }

    // ------------------------------------------------------------ rclone

    /// rclone (Go's crypto/tls: its data connections resume with the control connection's
    /// TLS 1.3 ticket) with reuse required: a 3 MiB upload over explicit TLS, the download
    /// back, and a listing over implicit TLS.
    #[test]
    fn rclone_explicit_and_implicit_with_reuse_required() {
        let cert = Cert::ec();
        let (s, plain, implicit) = implicit_server(&cert, &[]);
        let tmp = TempDir::new("rclone-tls");
        let data = pattern(THREE_MIB, 18);
        tmp.write("src/up.bin", &data);
        fs::write(tmp.join("rclone.conf"), b"").unwrap();
        let pass = run_ok(tmp.path(), "rclone", &["obscure", "x"]);
        let remote = |addr: SocketAddr, tls: &str| {
            format!(
                ":ftp,host=127.0.0.1,port={},user=anonymous,pass={},{tls}=true,\
                 no_check_certificate=true:",
                addr.port(),
                pass.trim()
            )
        };
        let rclone = |args: &[&str]| {
            let mut all = vec!["--config", "rclone.conf", "--retries", "1"];
            all.extend_from_slice(args);
            run_ok(tmp.path(), "rclone", &all)
        };
        let explicit = remote(plain, "explicit_tls");
        rclone(&["copy", "src", &format!("{explicit}/r")]);
        assert_bytes_eq(
            &fs::read(s.path("r/up.bin")).unwrap(),
            &data,
            "rclone upload",
        );
        rclone(&["copy", &format!("{explicit}/r"), "back"]);
        assert_bytes_eq(
            &fs::read(tmp.join("back/up.bin")).unwrap(),
            &data,
            "rclone download",
        );
        let list = rclone(&["lsl", &format!("{}/r", remote(implicit, "tls"))]);
        assert!(
            list.lines()
                .any(|l| l.trim_start().starts_with(&format!("{THREE_MIB} "))
                    && l.ends_with(" up.bin")),
            "{list}"
        );
    }

    // ------------------------------------------------------------ openssl s_client

    /// `openssl s_client -starttls ftp`: 220, AUTH TLS, 234, a completed handshake, then FTP
    /// over TLS: login and QUIT.
    #[test]
    fn openssl_s_client_starttls_ftp_completes_the_handshake() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        require("openssl");
        let connect = format!("127.0.0.1:{}", s.port());
        let out = run_cmd(
            "timeout",
            &[
                "30",
                "openssl",
                "s_client",
                "-starttls",
                "ftp",
                "-connect",
                &connect,
                "-crlf",
                "-ign_eof",
            ],
            b"USER anonymous\nPASS x\nQUIT\n",
            Duration::from_secs(40),
        );
        assert_eq!(out.status.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("New, TLSv1.3") || out.stdout.contains("New, TLSv1.2"),
            "no completed handshake: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains("Verify return code: 18"),
            "{}",
            out.stdout
        );
        let codes: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.len() >= 4 && l.as_bytes()[..3].iter().all(u8::is_ascii_digit))
            .map(|l| &l[..4])
            .collect();
        // Some s_client versions print the greeting they read before AUTH TLS.
        let over_tls = codes.strip_prefix(&["220 "][..]).unwrap_or(&codes);
        assert_eq!(over_tls, ["331 ", "230 ", "221 "], "{}", out.stdout);
    }

    // ------------------------------------------------------------ implicit TLS

    /// `--tls-listen`: the handshake at connect, then 220 over TLS, a protected session;
    /// AUTH on it is 503 (already protected); the plain listener of the same server still
    /// closes a session that sends a ClientHello.
    #[test]
    fn implicit_listener_handshakes_at_connect_and_the_plain_one_still_closes_on_tls() {
        let cert = Cert::ec();
        let (s, plain, implicit) = implicit_server(&cert, &["--tls-required", "all"]);
        s.put("f.bin", &pattern(70_000, 10));
        let mut py = Ftps::new();
        for (i, version) in [Version::V12, Version::V13].into_iter().enumerate() {
            let c = format!("c{i}");
            py.implicit(&c, implicit, version);
            py.expect(&c, "AUTH TLS", 503);
            py.login(&c, "anonymous", "x");
            py.prot_p(&c);
            py.expect(&c, "TYPE I", 200);
            let got = get(&mut py, &c, Dc::Epsv, "RETR f.bin");
            assert_eq!(got.sha256, sha256_bytes(&pattern(70_000, 10)));
        }
        // The plain listener: a ClientHello closes the session with nothing but the 220.
        let hello = py.client_hello();
        assert_hello_gets_only_the_greeting(plain, &hello);
        // And explicit TLS still works there.
        let mut py2 = Ftps::new();
        py2.anonymous("c", plain);
    }

    /// `--tls-listen` is repeatable: every implicit listener serves TLS at connect.
    #[test]
    fn every_tls_listen_address_serves_implicit_tls() {
        let cert = Cert::ec();
        let cert_args = cert.args();
        let mut args: Vec<&str> = vec!["-a"];
        args.extend(cert_args.iter().map(String::as_str));
        args.extend(["--listen", "127.0.0.1:0"]);
        args.extend(["--tls-listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"]);
        let s = Server::start_with_listeners(&args, 3);
        let mut py = Ftps::new();
        for (i, addr) in s.addrs()[1..].iter().enumerate() {
            let c = format!("c{i}");
            py.implicit(&c, *addr, Version::Any);
            py.login(&c, "anonymous", "x");
        }
        py.anonymous("plain", s.addr());
    }

    // ------------------------------------------------------------ how connections end

    /// An upload ended by the client's close_notify is 226 with every byte; one ended by a
    /// bare TCP FIN (no close_notify) is 426 (possible truncation) and its bytes are kept.
    #[test]
    fn uploads_end_on_close_notify_and_a_bare_fin_is_426_with_the_bytes_kept() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        for dc in DCS {
            let name = format!("notify-{dc:?}.bin");
            let sha = put(&mut py, "c", dc, &format!("STOR {name}"), 1_000_000);
            assert_eq!(sha256_file(&s.path(&name)), sha, "{dc:?}");
            let name = format!("fin-{dc:?}.bin");
            start_transfer(&mut py, "c", dc, &format!("STOR {name}"), Some("c")).unwrap();
            let sha = py.send_pattern("d", 500_000);
            py.close("d");
            py.reply("c").expect(426);
            assert_eq!(
                sha256_file(&s.path(&name)),
                sha,
                "{dc:?}: the bytes are kept"
            );
            py.expect("c", "NOOP", 200);
        }
    }

    /// A download ends with the server's close_notify, then 226; after QUIT the control
    /// connection ends with close_notify too.
    #[test]
    fn downloads_and_quit_end_with_close_notify() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        s.put("f.bin", &pattern(200_000, 11));
        s.put("empty", b"");
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        for dc in DCS {
            // `get` asserts the close_notify before the 226.
            assert_eq!(get(&mut py, "c", dc, "RETR f.bin").len, 200_000);
            assert_eq!(get(&mut py, "c", dc, "RETR empty").len, 0);
        }
        py.expect("c", "QUIT", 221);
        let end = py.recv("c");
        assert_eq!((end.len, end.end.as_str()), (0, "close_notify"));
    }

    /// No TLS 1.3 session ticket on a data connection (a client that never reads an upload's
    /// data connection would close it with the ticket unread: a reset, and the end of the
    /// upload lost); the control connection gets its ticket (which shows the probe sees one).
    #[test]
    fn tls_1_3_tickets_go_out_on_control_connections_only() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let mut py = Ftps::new();
        py.explicit("c", s.addr(), Version::V13);
        let ticket = py.pending("c", IO_TIMEOUT);
        assert!(ticket > 0, "no ticket on the control connection");
        py.login("c", "anonymous", "x");
        py.prot_p("c");
        py.expect("c", "TYPE I", 200);
        for dc in DCS {
            start_transfer(&mut py, "c", dc, "STOR up.bin", Some("c")).unwrap();
            // The server's ticket would follow its Finished at once: 500 ms is plenty.
            let sent = py.pending("d", Duration::from_millis(500));
            assert_eq!(
                sent, 0,
                "{dc:?}: the server sent {sent} bytes on an upload's data connection"
            );
            py.send_pattern("d", 100_000);
            py.notify("d");
            py.reply("c").expect(226);
        }
    }

    /// An empty upload whose data connection handshakes and sends close_notify before STOR is
    /// even read: 226 and an empty file (the data handshake starts at connect).
    #[test]
    fn an_empty_upload_may_end_before_its_command_arrives() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        py.pasv("c", "d");
        let hs = py.tls("d", Some("c"), Version::Any);
        assert!(hs.reused, "{hs:?}");
        py.notify("d");
        let first = py.cmd("c", "STOR empty.bin");
        assert!(first.is(&[125, 150]), "{:?}", first.lines);
        py.reply("c").expect(226);
        assert_eq!(fs::read(s.path("empty.bin")).unwrap(), b"");
    }

    // ------------------------------------------------------------ deadlines and garbage

    /// What a server may send to a peer that never started its handshake before it closes:
    /// nothing, or TLS alert records (a close_notify); never FTP text in the clear.
    #[track_caller]
    fn assert_only_tls_alerts(mut bytes: &[u8]) {
        while !bytes.is_empty() {
            assert!(
                bytes.len() >= 5 && bytes[0] == 0x15 && bytes[1] == 0x03,
                "not a TLS alert record: {:?}",
                String::from_utf8_lossy(bytes)
            );
            let len = 5 + u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
            assert!(bytes.len() >= len, "a cut alert record: {bytes:?}");
            bytes = &bytes[len..];
        }
    }

    /// A control handshake has the login timeout as its deadline: after AUTH TLS (explicit)
    /// or at connect (implicit), a client that sends no ClientHello is closed at the
    /// deadline, not before; the server goes on.
    #[test]
    fn a_control_handshake_deadline_is_the_login_timeout() {
        let cert = Cert::ec();
        let (_s, plain, implicit) = implicit_server(&cert, &["--login-timeout", "2"]);
        let deadline = Duration::from_secs(2);
        let mut explicit = Client::connect(plain);
        explicit.expect("AUTH TLS", 234);
        let t_explicit = Instant::now();
        let mut imp = Client::connect_raw(implicit);
        let t_implicit = Instant::now();
        let rest = imp.expect_closed(deadline + SLACK);
        assert_only_tls_alerts(&rest);
        let took = t_implicit.elapsed();
        assert!(took >= deadline - Duration::from_millis(200), "{took:?}");
        let rest = explicit.expect_closed(deadline + SLACK);
        assert_only_tls_alerts(&rest);
        let took = t_explicit.elapsed();
        assert!(took >= deadline - Duration::from_millis(200), "{took:?}");
        let mut py = Ftps::new();
        py.anonymous("c", plain);
    }

    /// A data connection's handshake has `--data-timeout` as its deadline: a data connection
    /// that never sends its ClientHello is closed then, the transfer is refused, and the
    /// session goes on.
    #[test]
    fn a_data_handshake_deadline_is_the_data_timeout() {
        let cert = Cert::ec();
        let s = server(&cert, &["--data-timeout", "1"]);
        s.put("f.bin", &pattern(10_000, 12));
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        for dc in [Dc::Pasv, Dc::Port] {
            open_data(&mut py, "c", dc);
            py.expect("c", "RETR f.bin", 150);
            if dc == Dc::Port {
                py.accept("l", "d");
            }
            let t = Instant::now();
            let r = py.reply("c");
            let took = t.elapsed();
            assert_eq!(
                r.code, 426,
                "{dc:?}: a data handshake that never started: {r:?}"
            );
            assert!(took >= Duration::from_millis(800), "{dc:?}: {took:?}");
            assert!(took < Duration::from_secs(1) + SLACK, "{dc:?}: {took:?}");
            let end = py.recv("d");
            assert_eq!(end.len, 0, "{dc:?}: {end:?}");
            py.close("d");
        }
        assert_eq!(get(&mut py, "c", Dc::Pasv, "RETR f.bin").len, 10_000);
    }

    /// Garbage instead of a ClientHello closes that connection only: on a control connection
    /// after AUTH TLS (another session is untouched), on an implicit connection, and on a data
    /// connection (the transfer fails, its session goes on).
    #[test]
    fn garbage_instead_of_a_client_hello_closes_that_connection_only() {
        let cert = Cert::ec();
        let (s, plain, implicit) = implicit_server(&cert, &[]);
        s.put("f.bin", &pattern(10_000, 13));
        let mut py = Ftps::new();
        py.anonymous("other", plain);
        let garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4);
        let mut c = Client::connect(plain);
        c.expect("AUTH TLS", 234);
        let t = Instant::now();
        c.send_raw(&garbage);
        c.expect_closed(Duration::from_secs(3));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let mut imp = Client::connect_raw(implicit);
        imp.send_raw(&garbage);
        imp.expect_closed(Duration::from_secs(3));
        py.expect("other", "NOOP", 200);
        // A data connection.
        py.pasv("other", "d");
        py.expect("other", "RETR f.bin", 150);
        py.send_raw("d", &garbage);
        let r = py.reply("other");
        assert!(r.code == 426, "{:?}", r.lines);
        py.close("d");
        py.expect("other", "NOOP", 200);
        assert_eq!(get(&mut py, "other", Dc::Pasv, "RETR f.bin").len, 10_000);
        assert_eq!(s.log_count("internal error"), 0, "{}", s.log_text());
    }

    // ------------------------------------------------------------ commands over TLS

    /// REST past 4 GiB over TLS: the download starts at the 64-bit offset.
    #[test]
    fn rest_past_4_gib_over_tls() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let len: u64 = 5 << 30;
        sparse(&s.path("huge.bin"), len);
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        py.expect("c", &format!("REST {}", len - 4096), 350);
        let got = get(&mut py, "c", Dc::Pasv, "RETR huge.bin");
        // The last of `sparse`'s marks.
        assert_eq!(
            (got.len, got.sha256),
            (4096, sha256_bytes(&pattern(4096, 4)))
        );
    }

    /// REST before RETR and STOR, TYPE A both ways, LIST and MLSD, over protected data
    /// connections.
    #[test]
    fn rest_type_a_list_and_mlsd_over_tls() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let data = pattern(300_000, 14);
        s.put("f.bin", &data);
        s.put("t.txt", b"one\ntwo\nthree\n");
        let tmp = TempDir::new("tls-cmds");
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        py.expect("c", "REST 100000", 350);
        let got = get_bytes(&mut py, &tmp, "c", "RETR f.bin");
        assert_bytes_eq(&got, &data[100_000..], "REST 100000 + RETR");
        // REST + STOR: writes from the offset.
        s.put("up.bin", &data[..1000]);
        py.expect("c", "REST 1000", 350);
        start_transfer(&mut py, "c", Dc::Pasv, "STOR up.bin", Some("c")).unwrap();
        py.send_pattern("d", 5000);
        py.notify("d");
        py.reply("c").expect(226);
        assert_eq!(fs::metadata(s.path("up.bin")).unwrap().len(), 6000);
        assert_bytes_eq(
            &fs::read(s.path("up.bin")).unwrap()[..1000],
            &data[..1000],
            "kept",
        );
        // TYPE A: LF -> CRLF down, CRLF -> LF up.
        py.expect("c", "TYPE A", 200);
        let got = get_bytes(&mut py, &tmp, "c", "RETR t.txt");
        assert_eq!(got, b"one\r\ntwo\r\nthree\r\n");
        let got = get(&mut py, "c", Dc::Pasv, "LIST");
        assert!(got.len > 0);
        let list = String::from_utf8(get_bytes(&mut py, &tmp, "c", "LIST")).unwrap();
        assert!(
            list.lines()
                .any(|l| l.starts_with('-') && l.ends_with(" f.bin")),
            "{list:?}"
        );
        let mlsd = String::from_utf8(get_bytes(&mut py, &tmp, "c", "MLSD")).unwrap();
        let entry = mlsd
            .split("\r\n")
            .find(|l| l.ends_with(" f.bin"))
            .unwrap_or_else(|| panic!("{mlsd:?}"));
        assert!(entry.to_lowercase().contains("size=300000;"), "{entry:?}");
        assert!(entry.to_lowercase().contains("type=file;"), "{entry:?}");
        let names = String::from_utf8(get_bytes(&mut py, &tmp, "c", "NLST")).unwrap();
        let mut names: Vec<&str> = names.split_terminator("\r\n").collect();
        names.sort();
        assert_eq!(names, ["f.bin", "t.txt", "up.bin"]);
    }

    /// Commands pipelined over TLS, many in one TLS record and one write: each is answered,
    /// in order (what rustls has decrypted is served without waiting for more bytes).
    #[test]
    fn commands_pipelined_over_tls_are_all_answered_in_order() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        let mut batch = Vec::new();
        for i in 0..200 {
            batch.extend_from_slice(if i % 2 == 0 { b"NOOP\r\n" } else { b"PWD\r\n" });
        }
        py.send_raw("c", &batch);
        for i in 0..200 {
            let r = py.reply("c");
            assert_eq!(
                r.code,
                if i % 2 == 0 { 200 } else { 257 },
                "reply {i}: {:?}",
                r.lines
            );
        }
        // A command cut across TLS records (two writes): one reply, once whole.
        py.send_raw("c", b"NO");
        py.send_raw("c", b"OP\r\n");
        py.reply("c").expect(200);
        // The last command of a batch too, when it is the only one left.
        py.send_raw("c", b"NOOP\r\nNOOP\r\nQUIT\r\n");
        py.reply("c").expect(200);
        py.reply("c").expect(200);
        py.reply("c").expect(221);
    }

    /// Listings bigger than any buffer over TLS: LIST and MLSD of 3,000 entries come whole.
    #[test]
    fn large_listings_over_tls_come_whole() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        for i in 0..3000 {
            s.put(&format!("many/file-{i:04}-with-a-longer-name.txt"), b"x");
        }
        let tmp = TempDir::new("tls-list");
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        for command in ["LIST many", "MLSD many", "NLST many"] {
            let text = String::from_utf8(get_bytes(&mut py, &tmp, "c", command)).unwrap();
            let n = text
                .split_terminator("\r\n")
                .filter(|l| l.contains("with-a-longer-name.txt"))
                .count();
            assert_eq!(n, 3000, "{command}: {} bytes", text.len());
        }
    }

    /// Established TLS sessions ended every way (QUIT, close_notify, a bare FIN, a reset,
    /// during a download or an upload) are all freed: the descriptors come back, at the
    /// latest at the data timeout (an upload whose control connection went waits for its
    /// data that long, as in the clear).
    #[test]
    fn tls_sessions_ended_every_way_are_freed() {
        let cert = Cert::ec();
        let s = server(&cert, &["--data-timeout", "2"]);
        sparse(&s.path("big.bin"), 1 << 30);
        let baseline = s.fd_count();
        let mut py = Ftps::new();
        for i in 0..8 {
            let c = format!("c{i}");
            py.anonymous(&c, s.addr());
            if i >= 4 {
                let command = if i % 2 == 0 {
                    "RETR big.bin"
                } else {
                    "STOR up.bin"
                };
                start_transfer(&mut py, &c, Dc::Pasv, command, Some(&c)).unwrap();
                if i % 2 == 0 {
                    py.recv_exact("d", 100_000);
                } else {
                    py.send_pattern("d", 100_000);
                }
                let d = format!("d{i}");
                py.call(&format!("rename d {d}"));
            }
            match i % 4 {
                0 => {
                    py.expect(&c, "QUIT", 221);
                    py.close(&c);
                }
                1 => py.notify(&c),
                2 => py.close(&c),
                _ => py.reset(&c),
            }
        }
        // The data connections of the sessions that went, still open on our side: the server
        // drops them with their sessions.
        assert!(
            eventually(Duration::from_secs(2) + SLACK, || s.fd_count() == baseline),
            "descriptors: {} now, {baseline} before; log:\n{}",
            s.fd_count(),
            s.log_text()
        );
    }

    /// Protected data connections that no transfer uses: one replaced by a second PASV, one
    /// that never handshakes, one handshaken and left idle: the server closes each (at the
    /// data timeout at the latest) and the descriptors come back; the session goes on.
    #[test]
    fn unused_protected_data_connections_are_closed() {
        let cert = Cert::ec();
        let s = server(&cert, &["--data-timeout", "1"]);
        s.put("f.bin", &pattern(5000, 17));
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        let baseline = s.fd_count();
        // Handshaken, then replaced by another PASV, which the transfer uses.
        py.pasv("c", "d");
        assert!(py.tls("d", Some("c"), Version::Any).reused);
        py.call("rename d first");
        assert_eq!(get(&mut py, "c", Dc::Pasv, "RETR f.bin").len, 5000);
        let end = py.recv("first");
        assert_eq!(end.len, 0, "{end:?}");
        py.close("first");
        // Connected, never handshaken, no command.
        py.pasv("c", "d");
        let end = py.recv("d");
        assert_eq!(end.end, "eof", "{end:?}");
        py.close("d");
        // Handshaken, no command.
        py.pasv("c", "d");
        py.tls("d", Some("c"), Version::Any);
        let end = py.recv("d");
        assert_eq!(end.len, 0, "{end:?}");
        py.close("d");
        assert!(
            eventually(Duration::from_secs(1) + SLACK, || s.fd_count() == baseline),
            "descriptors: {} now, {baseline} before",
            s.fd_count()
        );
        assert_eq!(get(&mut py, "c", Dc::Pasv, "RETR f.bin").len, 5000);
    }

    /// ABOR during a protected download: 426 then 226, and the session transfers again.
    #[test]
    fn abor_during_a_protected_download() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        sparse(&s.path("big.bin"), 1 << 30);
        s.put("small.txt", b"still works");
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        start_transfer(&mut py, "c", Dc::Pasv, "RETR big.bin", Some("c")).unwrap();
        py.recv_exact("d", 64 * 1024);
        py.send("c", "ABOR");
        py.reply("c").expect(426);
        py.reply("c").expect(226);
        let rest = py.recv("d");
        assert!(
            rest.len < (1 << 30) - 64 * 1024,
            "the whole file came after ABOR"
        );
        py.close("d");
        py.expect("c", "NOOP", 200);
        let got = get(&mut py, "c", Dc::Pasv, "RETR small.txt");
        assert_eq!(got.sha256, sha256_bytes(b"still works"));
    }

    /// A client that stops reading a protected download meets `--data-timeout`: 426, and the
    /// session goes on.
    #[test]
    fn a_protected_download_that_is_not_read_meets_the_data_timeout() {
        let cert = Cert::ec();
        let s = server(&cert, &["--data-timeout", "1"]);
        sparse(&s.path("big.bin"), 1 << 30);
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        start_transfer(&mut py, "c", Dc::Pasv, "RETR big.bin", Some("c")).unwrap();
        py.recv_exact("d", 64 * 1024);
        let t = Instant::now();
        let r = py.reply("c");
        assert_eq!(r.code, 426, "{:?}", r.lines);
        assert!(
            t.elapsed() < Duration::from_secs(1) + SLACK + SLACK,
            "{:?}",
            t.elapsed()
        );
        py.close("d");
        py.expect("c", "NOOP", 200);
    }

    /// `--idle-timeout` over TLS as in the clear: 421, then the close, with close_notify.
    #[test]
    fn idle_timeout_over_tls_is_421_then_close_notify() {
        let cert = Cert::ec();
        let s = server(&cert, &["--idle-timeout", "1"]);
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        let t = Instant::now();
        py.reply("c").expect(421);
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(800), "{took:?}");
        assert!(took < Duration::from_secs(1) + SLACK, "{took:?}");
        let end = py.recv("c");
        assert_eq!((end.len, end.end.as_str()), (0, "close_notify"));
    }

    /// SIGTERM with TLS sessions open (idle, mid-handshake, in a stalled protected download):
    /// exit 0 within the bound; the idle session gets 421 over TLS, then close_notify.
    #[test]
    fn sigterm_with_tls_sessions_open_exits_0_with_421_over_tls() {
        let cert = Cert::ec();
        let mut s = server(&cert, &[]);
        sparse(&s.path("big.bin"), 1 << 30);
        let mut py = Ftps::new();
        py.anonymous("idle", s.addr());
        py.anonymous("busy", s.addr());
        start_transfer(&mut py, "busy", Dc::Pasv, "RETR big.bin", Some("busy")).unwrap();
        py.recv_exact("d", 64 * 1024);
        let mut handshaking = Client::connect(s.addr());
        handshaking.expect("AUTH TLS", 234);
        s.signal(libc::SIGTERM);
        let status = s.wait_exit(Duration::from_secs(5));
        assert_eq!(
            status.and_then(|st| st.code()),
            Some(0),
            "exit after SIGTERM: {status:?}"
        );
        py.reply("idle").expect(421);
        let end = py.recv("idle");
        assert_eq!((end.len, end.end.as_str()), (0, "close_notify"));
        handshaking.expect_closed(Duration::from_secs(1));
    }

    // ------------------------------------------------------------ SIGHUP

    /// SIGHUP loads a renewed certificate for new connections without a restart; a session
    /// from before keeps going, its data connections resuming as before; a pair that does
    /// not load (a key of another certificate) keeps the one loaded before.
    #[test]
    fn sighup_reloads_the_certificate_and_keeps_the_old_one_when_the_new_pair_is_bad() {
        let (a, b) = (Cert::ec(), Cert::rsa());
        let dir = TempDir::new("tls-hup");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        fs::copy(&a.cert, &cert).unwrap();
        fs::copy(&a.key, &key).unwrap();
        let (c, k) = (cert.display().to_string(), key.display().to_string());
        let s = Server::start(&["-a", "--tls-cert", &c, "--tls-key", &k]);
        s.put("f.bin", &pattern(10_000, 16));
        let mut py = Ftps::new();
        let hs = py.explicit("old", s.addr(), Version::Any);
        assert_eq!(hs.peer, a.fingerprint());
        py.login("old", "anonymous", "x");
        py.prot_p("old");
        py.expect("old", "TYPE I", 200);
        // Renewed.
        fs::copy(&b.cert, &cert).unwrap();
        fs::copy(&b.key, &key).unwrap();
        s.signal(libc::SIGHUP);
        assert!(
            s.wait_for_log("reloaded the TLS certificate", 1, IO_TIMEOUT),
            "{}",
            s.log_text()
        );
        assert_eq!(
            py.explicit("new", s.addr(), Version::Any).peer,
            b.fingerprint()
        );
        assert_eq!(get(&mut py, "old", Dc::Pasv, "RETR f.bin").len, 10_000);
        py.login("new", "anonymous", "x");
        py.prot_p("new");
        assert_eq!(get(&mut py, "new", Dc::Pasv, "RETR f.bin").len, 10_000);
        // A bad pair: the renewed certificate stays.
        fs::copy(&a.key, &key).unwrap();
        s.signal(libc::SIGHUP);
        assert!(
            s.wait_for_log("keeping the certificate", 1, IO_TIMEOUT),
            "{}",
            s.log_text()
        );
        assert_eq!(
            py.explicit("third", s.addr(), Version::Any).peer,
            b.fingerprint()
        );
        py.expect("old", "NOOP", 200);
    }

    // ------------------------------------------------------------ volume

    /// 10,000 connections dropped mid-handshake, on the implicit listener (at connect, after
    /// part of a ClientHello, after a whole one, by FIN or RST) and after AUTH TLS on the
    /// plain one: afterwards the server holds the descriptors it started with, logged no
    /// internal error, and serves a protected transfer.
    #[test]
    fn ten_thousand_connections_dropped_mid_handshake_leave_nothing_behind() {
        const CONNECTIONS: usize = 10_000;
        const EXPLICIT_EVERY: usize = 10;
        const THREADS: usize = 4;
        let cert = Cert::ec();
        let (s, plain, implicit) =
            implicit_server(&cert, &["--max-clients", "10000", "--max-per-ip", "10000"]);
        s.put("f.bin", &pattern(10_000, 15));
        let hello = Arc::new(Ftps::new().client_hello());
        assert!(hello.len() > 100 && hello[0] == 0x16, "{hello:?}");
        let baseline = s.fd_count();
        let started = Instant::now();
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (next, hello) = (next.clone(), hello.clone());
                thread::spawn(move || -> Result<(), String> {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= CONNECTIONS || started.elapsed() > Duration::from_secs(60) {
                            return Ok(());
                        }
                        drop_mid_handshake(n, plain, implicit, &hello, EXPLICIT_EVERY)
                            .map_err(|e| format!("connection {n}: {e}"))?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap().unwrap();
        }
        let done = next.load(Ordering::Relaxed).min(CONNECTIONS);
        eprintln!("{done} dropped handshakes in {:?}", started.elapsed());
        assert_eq!(done, CONNECTIONS, "only {done} in {:?}", started.elapsed());
        let opened = || s.log_count_where(|l| l.contains("] connection from "));
        let closed = || s.log_count_where(|l| l.ends_with("] closed"));
        eventually(Duration::from_secs(20), || {
            s.fd_count() == baseline && opened() == closed()
        });
        assert_eq!(
            (s.fd_count(), closed()),
            (baseline, opened()),
            "descriptors (now, before the 10,000 connections) and sessions (closed, opened)"
        );
        assert!(
            opened() >= CONNECTIONS,
            "only {} connections logged",
            opened()
        );
        assert_eq!(s.log_count("internal error"), 0);
        let mut py = Ftps::new();
        py.anonymous("c", plain);
        assert_eq!(get(&mut py, "c", Dc::Pasv, "RETR f.bin").len, 10_000);
        py.implicit("i", implicit, Version::Any);
    }

    /// Connection `n` of the 10,000: how it is dropped depends on `n`.
    fn drop_mid_handshake(
        n: usize,
        plain: SocketAddr,
        implicit: SocketAddr,
        hello: &[u8],
        explicit_every: usize,
    ) -> std::io::Result<()> {
        let mut stream;
        if n % explicit_every == 0 {
            let mut c = Client::connect_raw(plain);
            let greeting = c.read_reply()?;
            if greeting.code != 220 {
                return Err(std::io::Error::other(format!("{greeting:?}")));
            }
            c.send("AUTH TLS");
            let r = c.read_reply()?;
            if r.code != 234 {
                return Err(std::io::Error::other(format!("AUTH TLS: {r:?}")));
            }
            stream = c.stream().try_clone()?;
        } else {
            stream = TcpStream::connect_timeout(&implicit, IO_TIMEOUT)?;
        }
        match n % 4 {
            0 => {}
            1 => stream.write_all(&hello[..hello.len() / 2])?,
            2 => stream.write_all(&hello[..5])?,
            _ => stream.write_all(hello)?,
        }
        if n % 3 == 0 {
            set_linger_zero(&stream);
        }
        Ok(())
    }

    /// 1 GiB down and 1 GiB up over TLS with curl, compared by checksum (sparse files with
    /// marks at four offsets). `cargo test --release` moves the whole GiB; a debug build (what
    /// `cargo test` runs, the binary is built with the tests' profile) moves 256 MiB each way:
    /// there the whole GiB took 9.3 s down and 7.1 s up on 2 cores, 33 s with the checksums,
    /// more than this file's other tests together.
    #[test]
    fn a_large_download_and_upload_over_tls_match_by_checksum() {
        let len: u64 = if cfg!(debug_assertions) {
            256 << 20
        } else {
            1 << 30
        };
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        sparse(&s.path("big.bin"), len);
        let tmp = TempDir::new("tls-big");
        sparse(&tmp.join("up.bin"), len + 1);
        let base = format!("ftp://127.0.0.1:{}", s.port());
        let t = Instant::now();
        curl(
            tmp.path(),
            &["--ssl-reqd", "-o", "down.bin", &format!("{base}/big.bin")],
        );
        let down = t.elapsed();
        assert_eq!(
            sha256_file(&tmp.join("down.bin")),
            sha256_file(&s.path("big.bin"))
        );
        let t = Instant::now();
        curl(
            tmp.path(),
            &["--ssl-reqd", "-T", "up.bin", &format!("{base}/up.bin")],
        );
        let up = t.elapsed();
        assert_eq!(
            sha256_file(&s.path("up.bin")),
            sha256_file(&tmp.join("up.bin"))
        );
        eprintln!(
            "{} MiB over TLS: download {down:?}, upload {up:?}",
            len >> 20
        );
    }

    /// 3 MiB uploads from clients that close without reading anything: the driver (close_notify,
    /// then close at once, in passive and active mode) and Python's ftplib subclass; lftp's
    /// is in `lftp_with_a_users_file_user_passive_and_active`.
    #[test]
    fn three_mib_uploads_closed_without_reading_arrive_whole() {
        let cert = Cert::ec();
        let s = server(&cert, &[]);
        let mut py = Ftps::new();
        py.anonymous("c", s.addr());
        for dc in DCS {
            let name = format!("up-{dc:?}.bin");
            let sha = put(&mut py, "c", dc, &format!("STOR {name}"), THREE_MIB as u64);
            assert_eq!(sha256_file(&s.path(&name)), sha, "{dc:?}");
        }
    }
}
