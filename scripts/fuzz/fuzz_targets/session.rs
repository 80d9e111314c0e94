//! Fuzz target `session`: one whole control connection, driven with arbitrary bytes the way
//! the loop (src/net/) drives it, against a real directory tree so that file commands run for real.
//!
//! # Input
//!
//! Byte 0 sets the scene (see `Scene::new`): addresses (IPv4, IPv6, IPv4-mapped), read-only or
//! writable anonymous login, an announced PASV address, and FTPS (bits 4-5: none, offered,
//! `--tls-required login`, `all`; bit 6: the connection came in on an implicit TLS listener;
//! bit 7: alice is at her session limit, so the loop refuses her login). The rest is what the client sends on
//! the control connection, except that NUL starts a two- or three-byte *event* (NUL NUL is a
//! literal NUL), so seeds stay readable:
//!
//! | bytes          | event                                                                |
//! |----------------|----------------------------------------------------------------------|
//! | `\0c`          | the data connection is established (client connects / PORT connect)  |
//! | `\0C`          | it fails (PORT connect refused, passive listener gone)               |
//! | `\0p` n        | the server pumps the transfer once with a budget of (n+1)*64 bytes   |
//! | `\0P`          | the server pumps until the transfer ends (bounded)                   |
//! | `\0d` n bytes  | the client sends n bytes on the data connection (upload payload)     |
//! | `\0e`          | the client closes its end of the data connection (EOF after payload) |
//! | `\0x`          | the data connection breaks: reads and writes fail from now on        |
//! | `\0b` n        | the data socket moves at most n bytes per call, then WouldBlock once |
//! | `\0f`          | the next passive listener cannot be opened                           |
//! | `\0t` n        | the clock moves n*n/4 seconds; due deadlines fire                    |
//! | `\0T`          | the clock moves to the session's next deadline, which fires          |
//! | `\0r`          | the client stops (or resumes) reading its replies                    |
//! | `\0o` n        | the client reads only n bytes of the pending replies                 |
//! | `\0s`          | a PROT P data connection did not resume the TLS session: refused     |
//! | `\0h` n        | the server steps the task (a checksum) once, with (n+1)*4 bytes      |
//! | `\0H`          | the server steps the task until it ends (bounded)                    |
//!
//! Control bytes between events arrive as one read. When the input ends the client finishes
//! whatever runs (connects, sends EOF, reads everything) and the clock runs until the session
//! closes itself on a timeout.
//!
//! # What must hold (asserted)
//!
//! - Nothing panics.
//! - After every call into the session, what it appended to its output is whole replies: lines
//!   ending in CRLF with no other CR or LF, each reply starting with three digits (first digit
//!   1-5) and a space or `-`; a multi-line reply ends with its own code and a space, and its
//!   inner lines do not start with a digit (RFC 959 4.2).
//! - Once the session is closing (`is_closing`) it wants no input; a running upload may still
//!   finish and be answered. Once it has handed out `Close` (`is_finished`), no call makes it
//!   write, queue an action or ask for a deadline; `Close` is the last action it ever queues.
//! - A session always ends: with the client gone quiet, its deadlines close it.
//! - Nothing outside the served root changes (jail), whatever was written inside it.
//! - After AUTH TLS's `StartTls` the session wants no input until the driver (like the loop,
//!   once the 234 is out) calls `handle_tls_started`.
//!
//! # Switches (environment)
//!
//! - `FUZZ_TRACE=1`: print the conversation to stderr (to read what a crash input does).
//! - `FUZZ_KNOWN=name,name`: tolerate known findings that are not fixed yet, so that a long run
//!   looks past them. Names: `reply-after-close` (a passive listener opened for a session that
//!   already closed gets its 227/229 after the 221), `stat-bare-cr` (STAT lists a name holding
//!   a CR verbatim inside its 213 reply). Strict by default.
//!
//! The root lives in a per-process temporary directory; it is rebuilt whenever a session
//! changed it, so every input sees the same tree and runs reproducibly. Uploads are bounded by
//! the input's size, so the disk cannot grow without bound.

#![no_main]

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use leanftpd::auth::Limits;
use leanftpd::auth::Users;
use leanftpd::config::{Config, TlsConfig, TlsRequired, CONTROL_READ_BYTES, TURN_BYTES};
use leanftpd::fs::Jail;
use leanftpd::session::driver::{self, Host};
use leanftpd::session::{Admission, DataEvent, Session, Shared};
use leanftpd::transfer::{DataStream, Job, Step, Task, TransferRecord};
use libfuzzer_sys::fuzz_target;

/// Pumps one `\0P` (and the final drain) may run: small files, but a 1-byte socket is slow.
const MAX_PUMPS: usize = 4096;
/// Task steps one `\0H` (and the end of an input) may run; the fixture's files are small.
const MAX_TASK_STEPS: usize = 4096;
/// Deadlines the end of an input may fire before the session must have closed. Each pipelined
/// transfer command that never gets its data connection costs one data timeout before the next
/// held command runs, and an input (libFuzzer's default max_len, 4 KiB) holds at most a few
/// hundred of them: the bound is far above that and still catches a session that never ends.
const MAX_FINAL_TIMEOUTS: usize = 10_000;
/// alice's password `secret` with the fewest rounds a users file may ask for (1000; the default
/// is 5000): every PASS for her runs the whole SHA-crypt, which under ASan and coverage
/// instrumentation costs milliseconds. Made with `openssl passwd -6 -salt
/// 'rounds=1000$fuzzsaltfuzzsalt' secret` (glibc crypt(3) gives the same).
const ALICE_HASH: &str = "$6$rounds=1000$fuzzsaltfuzzsalt$7952XvhCNrDnOOVhrkDPUljtkcFTIvZ1BcZJIXl/tjQZhW7TA1dvtiZbYjDb/rNBNheqNBAxGF3y/R6wMOwuc/";
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DATA_TIMEOUT: Duration = Duration::from_secs(10);

fuzz_target!(|data: &[u8]| {
    let mut fixture = FIXTURE.lock().unwrap_or_else(|e| e.into_inner());
    let fixture = fixture.get_or_insert_with(Fixture::create);
    run(fixture, data);
    fixture.check_and_reset();
});

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

// ---- the file tree ----------------------------------------------------------------------------

/// `base/root` is served; `base/outside` must never change. Created once per process.
struct Fixture {
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
    root_snapshot: Vec<Entry>,
    outside_snapshot: Vec<Entry>,
    /// The users file: alice.
    users_text: String,
}

impl Fixture {
    fn create() -> Fixture {
        remove_stale_fixtures();
        install_logger();
        let base = std::env::temp_dir().join(format!("leanftpd-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(&outside).expect("create the fixture");
        fs::write(outside.join("secret.txt"), b"outside the jail\n").expect("create the fixture");
        build_root(&root, &outside);
        // alice is jailed in /pub with write permission: a second kind of login.
        let users_text = format!("alice:{ALICE_HASH}:{}:rw\n", root.join("pub").display());
        Fixture {
            root_snapshot: snapshot(&root),
            outside_snapshot: snapshot(&outside),
            base,
            root,
            outside,
            users_text,
        }
    }

    /// SECURITY invariant: nothing beside the root changed. Then puts the root back as it was
    /// if the session changed it (uploads, MKD, chmod, MFMT...).
    fn check_and_reset(&mut self) {
        let mut names: Vec<_> = fs::read_dir(&self.base)
            .expect("read the fixture base")
            .map(|e| e.expect("read the fixture base").file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["outside", "root"],
            "something was created beside the root"
        );
        assert!(
            snapshot(&self.outside) == self.outside_snapshot,
            "a file outside the root changed: {:?}",
            snapshot(&self.outside)
        );
        if snapshot(&self.root) != self.root_snapshot {
            build_root(&self.root, &self.outside);
            self.root_snapshot = snapshot(&self.root);
        }
    }
}

/// (Re)creates the served tree: files, a subdirectory, symlinks inside, out of it and in a loop.
fn build_root(root: &Path, outside: &Path) {
    if root.exists() {
        // A session may have chmod-ed directories to 000: make everything removable first.
        make_writable(root);
        fs::remove_dir_all(root).expect("remove the old root");
    }
    let build = || -> io::Result<()> {
        fs::create_dir_all(root.join("pub/deeper"))?;
        fs::write(root.join("hello.txt"), b"hello\nworld\r\nbare cr\r")?;
        fs::write(root.join("empty"), b"")?;
        let bytes: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        fs::write(root.join("pub/data.bin"), bytes)?;
        fs::write(root.join("pub/deeper/notes.txt"), b"a\nb\n")?;
        std::os::unix::fs::symlink("hello.txt", root.join("link-in"))?;
        std::os::unix::fs::symlink("pub", root.join("link-dir"))?;
        std::os::unix::fs::symlink("../outside/secret.txt", root.join("link-out"))?;
        std::os::unix::fs::symlink(outside, root.join("link-abs"))?;
        std::os::unix::fs::symlink("link-loop", root.join("link-loop"))?;
        Ok(())
    };
    build().expect("build the root");
}

fn make_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}

/// One entry of a tree as far as a session could change it (not atime).
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    path: PathBuf,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    link: Option<PathBuf>,
}

fn snapshot(dir: &Path) -> Vec<Entry> {
    fn walk(dir: &Path, out: &mut Vec<Entry>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            out.push(Entry {
                link: fs::read_link(&path).ok(),
                mode: meta.mode(),
                // A directory's size is the file system's business; its mtime shows changes.
                size: if meta.is_dir() { 0 } else { meta.size() },
                mtime: (meta.mtime(), meta.mtime_nsec()),
                path: path.clone(),
            });
            if meta.is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(meta) = fs::metadata(dir) {
        out.push(Entry {
            path: dir.to_path_buf(),
            mode: meta.mode(),
            size: 0,
            mtime: (meta.mtime(), meta.mtime_nsec()),
            link: None,
        });
    }
    walk(dir, &mut out);
    out
}

/// Fixtures of fuzzer processes that are gone (a crash, a stopped run) would pile up in /tmp.
fn remove_stale_fixtures() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("leanftpd-fuzz-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            make_writable(&entry.path());
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A logger that formats every record and throws it away: the format arguments of log lines
/// (lossy file names, truncated command lines) run as they would with `-v`.
struct SinkLogger;

impl log::Log for SinkLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        use std::fmt::Write;
        struct Sink;
        impl Write for Sink {
            fn write_str(&mut self, _: &str) -> std::fmt::Result {
                Ok(())
            }
        }
        let _ = write!(Sink, "{}", record.args());
    }
    fn flush(&self) {}
}

fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = log::set_logger(&SinkLogger);
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// `FUZZ_TRACE` is set.
fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some_and(|v| v != "0"))
}

/// `name` is listed in `FUZZ_KNOWN`.
fn known(name: &str) -> bool {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN
        .get_or_init(|| {
            let list = std::env::var("FUZZ_KNOWN").unwrap_or_default();
            list.split(',').map(|s| s.trim().to_string()).collect()
        })
        .iter()
        .any(|k| k == name)
}

// ---- the input ---------------------------------------------------------------------------------

/// What the server and the client do next.
enum Part {
    /// Bytes the client sent on the control connection.
    Control(Vec<u8>),
    Event(u8, u8, Vec<u8>),
}

/// Splits the input (after byte 0) into control reads and events.
fn script(mut rest: &[u8]) -> Vec<Part> {
    let mut steps = Vec::new();
    let mut control = Vec::new();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        if byte != 0 {
            control.push(byte);
            continue;
        }
        let Some((&kind, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        if kind == 0 {
            control.push(0);
            continue;
        }
        let mut arg = 0;
        let mut payload = Vec::new();
        if matches!(kind, b'p' | b'd' | b'b' | b't' | b'o' | b'h') {
            let Some((&n, tail)) = rest.split_first() else {
                break;
            };
            arg = n;
            rest = tail;
            if kind == b'd' {
                let (bytes, tail) = rest.split_at(usize::from(n).min(rest.len()));
                payload = bytes.to_vec();
                rest = tail;
            }
        }
        if !control.is_empty() {
            steps.push(Part::Control(std::mem::take(&mut control)));
        }
        steps.push(Part::Event(kind, arg, payload));
    }
    if !control.is_empty() {
        steps.push(Part::Control(control));
    }
    steps
}

// ---- the data connection -----------------------------------------------------------------------

/// The client's end of a data connection, in memory: what it uploads, and how the socket behaves.
#[derive(Default)]
struct MockStream {
    /// Bytes the client sent that the server has not read yet.
    incoming: VecDeque<u8>,
    /// The client closed its end: reads return 0 once `incoming` is empty.
    eof: bool,
    /// Reset: every call fails.
    broken: bool,
    /// At most this many bytes per call, and a WouldBlock after each such call (0: no limit).
    chunk: usize,
    /// The next call returns WouldBlock (set after a limited call).
    block_next: bool,
}

impl MockStream {
    /// Ok(limit) for a call that may move bytes, or the error it returns instead.
    fn gate(&mut self) -> io::Result<usize> {
        if self.broken {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if self.block_next {
            self.block_next = false;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.chunk > 0 {
            self.block_next = true;
            Ok(self.chunk)
        } else {
            Ok(usize::MAX)
        }
    }
}

impl DataStream for MockStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limit = self.gate()?;
        if self.incoming.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(limit).min(self.incoming.len());
        for (dst, src) in buf.iter_mut().zip(self.incoming.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let limit = self.gate()?;
        Ok(buf.len().min(limit))
    }

    fn send_file(&mut self, file: &fs::File, offset: &mut u64, len: usize) -> io::Result<usize> {
        let limit = self.gate()?;
        let mut buf = vec![0; len.min(limit).min(64 * 1024)];
        let n = file.read_at(&mut buf, *offset)?;
        *offset += n as u64;
        Ok(n)
    }
}

/// The server's view of the session's data connection (net/ `Conn::Passive`/`Conn::Data`).
enum DataSide {
    None,
    /// A passive listener nobody connected to yet; a transfer may wait for it.
    Listening {
        job: Option<Job>,
    },
    /// PORT/EPRT: connecting for this job.
    Connecting {
        job: Job,
    },
    /// Established; a job runs on it once the session starts one.
    Connected {
        job: Option<Job>,
    },
}

// ---- the driver --------------------------------------------------------------------------------

/// Byte 0 of the input: the addresses and permissions the session sees.
struct Scene {
    peer: SocketAddr,
    local: SocketAddr,
    writable: bool,
    pasv_address: Option<Ipv4Addr>,
    tls: Option<TlsRequired>,
    implicit_tls: bool,
    /// The loop answers alice's `AdmitUser` with `TooMany` (she has her sessions already).
    user_over_limit: bool,
}

impl Scene {
    fn new(flags: u8) -> Scene {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let mapped = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        let (peer, local) = match flags & 3 {
            0 => (v4, v4),
            1 => (v6, v6),
            // An IPv4 client on an IPv6 listener: the session must see IPv4.
            2 => (mapped, mapped),
            _ => (v4, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
        };
        Scene {
            peer: SocketAddr::new(peer, 40000),
            local: SocketAddr::new(local, 2121),
            // Writable by default: uploads, MKD, DELE... run for real.
            writable: flags & 4 == 0,
            pasv_address: (flags & 8 != 0).then_some(Ipv4Addr::new(192, 0, 2, 1)),
            tls: match (flags >> 4) & 3 {
                0 => None,
                1 => Some(TlsRequired::No),
                2 => Some(TlsRequired::Login),
                _ => Some(TlsRequired::All),
            },
            implicit_tls: flags & 64 != 0 && flags & 48 != 0,
            user_over_limit: flags & 128 != 0,
        }
    }
}

struct Driver {
    session: Session,
    now: Instant,
    /// Control bytes the client sent that the server has not read yet.
    unread: VecDeque<u8>,
    data: DataSide,
    stream: MockStream,
    /// The client reads its replies (consumes the session's output) as they come.
    reading: bool,
    fail_next_passive: bool,
    next_passive_port: u16,
    /// How many bytes of the session's output were already checked.
    checked: usize,
    replies: ReplyChecker,
    /// The session's `Close` action was taken: it is over.
    closed: bool,
    local_ip: IpAddr,
    /// The session asked for `StartTls`: the layer goes on once its output is read.
    starting_tls: bool,
    /// The task the session asked for with `RunTask` (net/task.rs: a slab entry).
    task: Option<Task>,
    /// net/mod.rs admit_user(): the answer to `AdmitUser`.
    user_over_limit: bool,
}

fn run(fixture: &Fixture, data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let scene = Scene::new(flags);
    let mut config = Config::anonymous(&fixture.root);
    config.writable = scene.writable;
    config.pasv_address = scene.pasv_address;
    config.idle_timeout = IDLE_TIMEOUT;
    config.data_timeout = DATA_TIMEOUT;
    // The session only reads the policy; the certificate is the loop's (never loaded here).
    config.tls = scene.tls.map(|required| TlsConfig {
        cert: "cert.pem".into(),
        key: "cert.pem".into(),
        implicit_listen: Vec::new(),
        required,
        session_reuse_required: true,
    });
    let users = Users::parse(&fixture.users_text, "fuzz").expect("valid users");
    let jail = Jail::open(&fixture.root).expect("open the root");
    let shared = Rc::new(Shared::new(config, users, Some(Rc::new(jail))));
    // A fixed wall clock (2023-11-14, for MDTM, MLSD and listing dates): inputs replay the same.
    shared.set_unix_time(1_700_000_000);
    let now = Instant::now();
    let mut session = Session::new(shared, 1, scene.peer, scene.local, now);
    if scene.implicit_tls {
        session.handle_implicit_tls();
    }
    let mut driver = Driver {
        session,
        now,
        unread: VecDeque::new(),
        data: DataSide::None,
        stream: MockStream::default(),
        reading: true,
        fail_next_passive: false,
        next_passive_port: 50000,
        checked: 0,
        replies: ReplyChecker::default(),
        closed: false,
        local_ip: scene.local.ip(),
        starting_tls: false,
        task: None,
        user_over_limit: scene.user_over_limit,
    };
    driver.after_call("Session::new", false);
    driver.service();
    for step in script(rest) {
        if driver.closed {
            // The server dropped the connection: whatever else the client sends goes nowhere.
            // The session must ignore it even if it were called.
            driver.check_closed_is_inert();
            return;
        }
        match step {
            Part::Control(bytes) => driver.unread.extend(bytes),
            Part::Event(kind, arg, payload) => driver.event(kind, arg, payload),
        }
        driver.service();
    }
    driver.finish();
}

impl Driver {
    /// Checks what the last call into the session did. `was_finished`: the session had handed
    /// out `Close`
    /// before the call, so it must have done nothing at all.
    fn after_call(&mut self, call: &str, was_finished: bool) {
        let output = self.session.output();
        let new = &output[self.checked.min(output.len())..];
        if tracing() && !new.is_empty() {
            eprintln!("-> {:?}", String::from_utf8_lossy(new));
        }
        let tolerated = call == "run_actions" && known("reply-after-close");
        if was_finished && !tolerated {
            assert!(
                new.is_empty(),
                "{call} wrote after the session closed: {:?}",
                String::from_utf8_lossy(new)
            );
        }
        self.replies.feed(new, call);
        self.checked = output.len();
        // Closing: no more commands, but a running upload still finishes (and may still time
        // out). Finished: nothing more at all.
        if self.session.is_closing() {
            assert!(
                !self.session.wants_input(),
                "{call}: a closing session wants input"
            );
        }
        if self.session.is_finished() {
            assert_eq!(
                self.session.poll_timeout(),
                None,
                "{call}: a finished session wants a deadline"
            );
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.session.output().len());
        self.session.consume_output(n);
        self.checked -= n;
    }

    fn handle_input(&mut self, bytes: &[u8]) {
        if tracing() && !bytes.is_empty() {
            eprintln!("<- {:?}", String::from_utf8_lossy(bytes));
        }
        let finished = self.session.is_finished();
        self.session.handle_input(bytes, self.now);
        self.after_call("handle_input", finished);
    }

    fn data_event(&mut self, event: DataEvent) {
        let finished = self.session.is_finished();
        self.session.handle_data_event(event, self.now);
        self.after_call("handle_data_event", finished);
    }

    /// What the server does between readiness events: carry out actions, write replies, read
    /// control bytes while the session wants them. Runs until nothing moves.
    fn service(&mut self) {
        loop {
            if self.closed {
                return;
            }
            self.run_actions();
            if self.closed {
                return;
            }
            let mut moved = false;
            if self.reading && !self.session.output().is_empty() {
                self.consume(usize::MAX);
                // net/control.rs flush(): the client reads again, so held lines may run.
                self.handle_input(&[]);
                moved = true;
            }
            if self.starting_tls && self.session.output().is_empty() {
                // net/control.rs flush(): the 234 is out; the TLS layer goes on.
                assert!(
                    !self.session.wants_input(),
                    "the session wants input before its TLS layer is on"
                );
                self.starting_tls = false;
                let finished = self.session.is_finished();
                self.session.handle_tls_started();
                self.after_call("handle_tls_started", finished);
                moved = true;
            }
            if !self.unread.is_empty() && self.session.wants_input() {
                let n = self.unread.len().min(CONTROL_READ_BYTES);
                let bytes: Vec<u8> = self.unread.drain(..n).collect();
                self.handle_input(&bytes);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// net/control.rs run_actions(): the shared driver, with this fuzz target as its host.
    fn run_actions(&mut self) {
        let now = self.now;
        driver::run_actions(self, now);
    }

    fn event(&mut self, kind: u8, arg: u8, payload: Vec<u8>) {
        if tracing() {
            eprintln!("** event {:?} {arg} {:?}", char::from(kind), payload);
        }
        match kind {
            b'c' => self.connect(),
            b'C' => self.connect_failed(),
            b'p' => {
                self.pump((usize::from(arg) + 1) * 64);
            }
            b'P' => self.pump_to_end(),
            b'd' => self.stream.incoming.extend(payload),
            b'e' => self.stream.eof = true,
            b'x' => self.stream.broken = true,
            b'b' => self.stream.chunk = usize::from(arg),
            b'f' => self.fail_next_passive = true,
            b't' => {
                let secs = u64::from(arg) * u64::from(arg) / 4;
                self.now += Duration::from_secs(secs);
                self.fire_timers();
            }
            b'T' => {
                if let Some(deadline) = self.session.poll_timeout() {
                    self.now = self.now.max(deadline);
                }
                self.fire_timers();
            }
            b'r' => self.reading = !self.reading,
            b'o' => self.consume(usize::from(arg)),
            b's' => self.tls_not_resumed(),
            b'h' => {
                self.step_task((usize::from(arg) + 1) * 4);
            }
            b'H' => self.task_to_end(),
            _ => {}
        }
    }

    /// net/mod.rs fire_timers(): a deadline that passed fires, and fires again while the session
    /// still asks for a time that has passed (the loop would spin on such a session).
    fn fire_timers(&mut self) {
        const MAX_FIRES: usize = 4;
        for fired in 0..=MAX_FIRES {
            match self.session.poll_timeout() {
                Some(deadline) if deadline <= self.now => {
                    assert!(
                        fired < MAX_FIRES,
                        "handle_timeout does not move the deadline: the loop would spin"
                    );
                    let finished = self.session.is_finished();
                    self.session.handle_timeout(self.now);
                    self.after_call("handle_timeout", finished);
                    self.service();
                    if self.closed {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// The client connects to the passive listener, or the PORT connect completes.
    fn connect(&mut self) {
        match std::mem::replace(&mut self.data, DataSide::None) {
            DataSide::Listening { job } => {
                let has_job = job.is_some();
                self.data = DataSide::Connected { job };
                // net/data.rs accept_data() tells the session even with no job yet (ignored then).
                self.data_event(DataEvent::Connected);
                if has_job {
                    self.pump(TURN_BYTES);
                }
            }
            DataSide::Connecting { job } => {
                self.data = DataSide::Connected { job: Some(job) };
                self.data_event(DataEvent::Connected);
                self.pump(TURN_BYTES);
            }
            other => self.data = other,
        }
    }

    /// net/data.rs service_data(): a PROT P data connection's handshake made a new TLS
    /// session; with reuse required it is dropped and the session told. Only a protected one
    /// can be refused.
    fn tls_not_resumed(&mut self) {
        if !self.session.protects_data() {
            return;
        }
        if let DataSide::Connected { .. } = self.data {
            self.close_data();
            self.data_event(DataEvent::TlsNotResumed);
        }
    }

    fn connect_failed(&mut self) {
        match std::mem::replace(&mut self.data, DataSide::None) {
            DataSide::Connecting { .. } | DataSide::Listening { job: Some(_) } => {
                let error = io::Error::from(io::ErrorKind::ConnectionRefused);
                self.close_data();
                self.data_event(DataEvent::ConnectFailed(error));
            }
            other => self.data = other,
        }
    }

    /// net/data.rs service_data(): one pump and what follows from its result. False when the
    /// transfer is over (or none runs).
    fn pump(&mut self, budget: usize) -> bool {
        let DataSide::Connected { job: Some(job) } = &mut self.data else {
            return false;
        };
        let step = job.pump(&mut self.stream, budget);
        let bytes = job.bytes();
        match step {
            Ok(Step::Blocked) | Ok(Step::Yield) => {
                self.data_event(DataEvent::Progress { bytes });
                true
            }
            Ok(Step::Done) => {
                self.close_data();
                self.data_event(DataEvent::Done { bytes });
                false
            }
            Err(e) => {
                self.close_data();
                self.data_event(DataEvent::Failed(e));
                false
            }
        }
    }

    /// net/task.rs run_task(): one step of the task with a buffer of `len` bytes, and what
    /// follows from its result. False when no task runs (any more).
    fn step_task(&mut self, len: usize) -> bool {
        let Some(task) = self.task.as_mut() else {
            return false;
        };
        let mut buf = vec![0; len];
        let step = task.step(&mut buf);
        let result = match step {
            Ok(Step::Done) => Ok(self.task.take().expect("the task").finish()),
            Ok(Step::Blocked) | Ok(Step::Yield) => return true,
            Err(e) => {
                self.task = None;
                Err(e)
            }
        };
        if tracing() {
            eprintln!("** task done: {result:?}");
        }
        let finished = self.session.is_finished();
        self.session.handle_task_done(result, self.now);
        self.after_call("handle_task_done", finished);
        false
    }

    /// The loop's run queue: each task to its end, and the tasks the commands held behind it
    /// start (a task's result runs them).
    fn run_tasks(&mut self) {
        for _ in 0..MAX_TASK_STEPS {
            if self.closed || self.task.is_none() {
                return;
            }
            self.task_to_end();
            self.service();
        }
    }

    fn task_to_end(&mut self) {
        for _ in 0..MAX_TASK_STEPS {
            if !self.step_task(64 * 1024) {
                break;
            }
        }
    }

    fn pump_to_end(&mut self) {
        for _ in 0..MAX_PUMPS {
            if !self.pump(TURN_BYTES) {
                break;
            }
            // An upload that waits for bytes the client has not sent waits for the next event.
            if self.stream.incoming.is_empty() && !self.stream.eof && self.uploading() {
                break;
            }
        }
    }

    fn uploading(&self) -> bool {
        matches!(&self.data, DataSide::Connected { job: Some(job) } if job.is_upload())
    }

    /// The input ended: the client completes what runs, reads everything and goes quiet; then
    /// the session's own deadlines must close it.
    fn finish(&mut self) {
        self.reading = true;
        for _ in 0..16 {
            if self.closed {
                return self.check_closed_is_inert();
            }
            self.stream.eof = true;
            self.stream.broken = false;
            if matches!(
                self.data,
                DataSide::Listening { job: Some(_) } | DataSide::Connecting { .. }
            ) {
                self.connect();
            }
            self.pump_to_end();
            self.task_to_end();
            self.service();
            let running = self.task.is_some()
                || matches!(
                    self.data,
                    DataSide::Connected { job: Some(_) }
                        | DataSide::Listening { job: Some(_) }
                        | DataSide::Connecting { .. }
                );
            if self.unread.is_empty() && !running {
                break;
            }
        }
        for _ in 0..MAX_FINAL_TIMEOUTS {
            if self.closed {
                return self.check_closed_is_inert();
            }
            // A deadline may have run a command that started a task: the loop's run queue
            // steps it to its end (a session with a task has no idle deadline meanwhile).
            self.run_tasks();
            if self.closed {
                return self.check_closed_is_inert();
            }
            let Some(deadline) = self.session.poll_timeout() else {
                break;
            };
            self.now = self.now.max(deadline);
            self.fire_timers();
            self.service();
        }
        assert!(
            self.closed,
            "the session never ends: not closed after {MAX_FINAL_TIMEOUTS} deadlines (next: {:?})",
            self.session
                .poll_timeout()
                .map(|t| t.saturating_duration_since(self.now))
        );
        self.check_closed_is_inert();
    }

    /// After `Close`, nothing the session is given makes it do anything.
    fn check_closed_is_inert(&mut self) {
        self.handle_input(b"NOOP\r\nPASV\r\nRETR hello.txt\r\n");
        self.now += IDLE_TIMEOUT * 10;
        let finished = self.session.is_finished();
        self.session.handle_timeout(self.now);
        self.after_call("handle_timeout after Close", finished);
        assert!(
            self.session.poll_action().is_none(),
            "an action after Close"
        );
        assert_eq!(self.session.poll_timeout(), None, "a deadline after Close");
    }
}

/// The loop's side of the Action contract (session/driver.rs), against the mock data side.
impl Host for Driver {
    /// Every call the driver makes into the session is checked like the direct ones.
    fn with_session<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let finished = self.session.is_finished();
        let result = f(&mut self.session);
        self.after_call("run_actions", finished);
        Some(result)
    }

    fn record(&mut self, record: TransferRecord, _now: Instant) {
        self.not_closed("a transfer record");
        if tracing() {
            eprintln!("** record {} {} bytes", record.verb, record.bytes);
        }
    }

    fn open_passive(&mut self) -> io::Result<SocketAddr> {
        self.not_closed("OpenPassive");
        if std::mem::take(&mut self.fail_next_passive) {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, "no free port"));
        }
        self.data = DataSide::Listening { job: None };
        self.next_passive_port = self.next_passive_port.wrapping_add(1);
        // The server binds it on the control connection's local address.
        Ok(SocketAddr::new(self.local_ip, self.next_passive_port))
    }

    fn connect_data(&mut self, _addr: SocketAddr, job: Job, _now: Instant) {
        self.not_closed("Transfer");
        self.data = DataSide::Connecting { job };
    }

    fn passive_transfer(&mut self, job: Job, _now: Instant) {
        self.not_closed("Transfer");
        match &mut self.data {
            DataSide::Listening { job: pending } => *pending = Some(job),
            DataSide::Connected { job: running } => *running = Some(job),
            // The passive listener timed out (or was closed) before the command came.
            DataSide::None | DataSide::Connecting { .. } => {
                let error = io::Error::new(io::ErrorKind::NotConnected, "no listener");
                self.data_event(DataEvent::ConnectFailed(error));
            }
        }
    }

    fn close_data(&mut self) {
        self.data = DataSide::None;
        self.stream = MockStream {
            chunk: self.stream.chunk,
            ..MockStream::default()
        };
    }

    fn run_task(&mut self, task: Task) {
        self.not_closed("RunTask");
        if tracing() {
            eprintln!("** RunTask");
        }
        // net/task.rs start_task(): a new task replaces any earlier one.
        self.task = Some(task);
    }

    fn cancel_task(&mut self) {
        self.not_closed("CancelTask");
        if tracing() {
            eprintln!("** CancelTask");
        }
        self.task = None;
    }

    fn start_tls(&mut self) {
        self.not_closed("StartTls");
        self.starting_tls = true;
    }

    /// net/mod.rs admit_user(): the account's sessions counted across addresses.
    fn admit_user(&mut self, name: Box<str>, limits: Limits, _now: Instant) -> Option<Admission> {
        self.not_closed("AdmitUser");
        if tracing() {
            eprintln!("** AdmitUser {name} {limits:?}");
        }
        Some(if self.user_over_limit {
            Admission::TooMany { limit: 1 }
        } else {
            Admission::Admitted
        })
    }

    fn close(&mut self) {
        self.not_closed("Close");
        if tracing() {
            eprintln!("** Close");
        }
        assert!(
            self.session.is_closing(),
            "Close from a session not closing"
        );
        // net/control.rs sends what output it can, then drops the connection.
        self.consume(usize::MAX);
        self.close_data();
        // net/mod.rs close_pending(): the session's task goes with it.
        self.task = None;
        self.closed = true;
    }
}

impl Driver {
    fn not_closed(&self, what: &str) {
        assert!(!self.closed, "{what} was queued after Close");
    }
}

// ---- reply syntax ------------------------------------------------------------------------------

/// Checks the session's output as a stream of replies (RFC 959 4.2).
#[derive(Default)]
struct ReplyChecker {
    /// Inside a multi-line reply with this code.
    multi: Option<[u8; 3]>,
}

impl ReplyChecker {
    /// `bytes` is what one call appended: whole replies only.
    fn feed(&mut self, bytes: &[u8], call: &str) {
        let text = || String::from_utf8_lossy(bytes).into_owned();
        if bytes.is_empty() {
            return;
        }
        assert!(
            bytes.ends_with(b"\r\n"),
            "{call}: output ends mid-line: {:?}",
            text()
        );
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        lines.pop(); // the empty rest after the final LF
        for line in lines {
            let line = line
                .strip_suffix(b"\r")
                .unwrap_or_else(|| panic!("{call}: a bare LF in a reply: {:?}", text()));
            let in_stat = self.multi == Some(*b"213") || line.starts_with(b"213-");
            assert!(
                !line.contains(&b'\r') || (in_stat && known("stat-bare-cr")),
                "{call}: a bare CR in a reply line: {:?}",
                text()
            );
            match self.multi {
                None => {
                    let ok = line.len() >= 4
                        && (b'1'..=b'5').contains(&line[0])
                        && line[1..3].iter().all(u8::is_ascii_digit)
                        && (line[3] == b' ' || line[3] == b'-');
                    assert!(
                        ok,
                        "{call}: a reply line without a code: {:?} in {:?}",
                        String::from_utf8_lossy(line),
                        text()
                    );
                    if line[3] == b'-' {
                        self.multi = Some([line[0], line[1], line[2]]);
                    }
                }
                Some(code) => {
                    if line.len() >= 4 && line[..3] == code && line[3] == b' ' {
                        self.multi = None;
                    } else {
                        // RFC 959 4.2: inner lines starting with a digit must be padded.
                        assert!(
                            !line.first().is_some_and(u8::is_ascii_digit),
                            "{call}: an inner line of a multi-line reply starts with a digit: {:?}",
                            String::from_utf8_lossy(line)
                        );
                    }
                }
            }
        }
        assert!(
            self.multi.is_none(),
            "{call}: a multi-line reply left open: {:?}",
            text()
        );
    }
}
