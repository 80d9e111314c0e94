//! Config: what the flags said, validated, plus every limit constant in one place.
//! No I/O here beyond what validation needs; main.rs builds it, net/, session/ and transfer/ read it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest command line accepted, CRLF included; longer closes the session (RFC 959 has no limit).
pub const MAX_LINE_BYTES: usize = 4096;
/// Bytes read from a control socket per readiness: bounds the commands handled per turn.
pub const CONTROL_READ_BYTES: usize = 4096;
/// Pending reply bytes past which the server stops reading a client that does not read replies.
pub const MAX_OUTPUT_BACKLOG_BYTES: usize = 64 * 1024;
/// Reads of one control connection per turn of the loop: a flood of commands is served fairly.
pub const CONTROL_READS_PER_TURN: usize = 4;
/// Readiness events taken from the kernel per poll.
pub const EVENTS_CAPACITY: usize = 1024;
/// Bytes one transfer may move per turn of the loop before yielding to other sessions.
pub const TURN_BYTES: usize = 4 * 1024 * 1024;
/// Largest single sendfile(2) call.
pub const SENDFILE_CHUNK_BYTES: usize = 1024 * 1024;
/// Buffer of an upload, a converted (TYPE A) download or a listing; exists only during a transfer.
pub const TRANSFER_BUFFER_BYTES: usize = 128 * 1024;
/// Listing lines (LIST, NLST, MLSD) formatted per refill: a listing never holds a whole directory.
pub const LIST_REFILL_BYTES: usize = 16 * 1024;
/// Bytes a checksum (HASH, XSHA256...) reads and hashes per turn of the loop: one pread, so a
/// 4 GiB file never holds up the other sessions for more than one slice.
pub const CHECKSUM_SLICE_BYTES: usize = 1024 * 1024;
/// Bytes of a file read per TYPE A refill of a download: converted, they grow to at most twice this.
pub const ASCII_READ_BYTES: usize = 8192;
/// Pipe of a binary upload, which splice(2) fills from the socket and empties into the file (below
/// the kernel's 1 MiB pipe-max-size, so granted without privileges). Each emptying is one write,
/// and the page cache sizes its folios to it. STOR of 1 GiB, medians of 10 alternated runs:
/// 256 KiB 2493 MiB/s, 512 KiB 2960, 1 MiB 1580 (bimodal: 1 MiB folios often land on memory the
/// VM's host had reclaimed, and the copy into them crawls), vsftpd 1456.
pub const UPLOAD_PIPE_BYTES: usize = 512 * 1024;
/// --port-20: the port active data connections come from, RFC 959's L-1 for a control port of
/// 21 (vsftpd's connect_from_port_20), which some client-side firewalls expect.
pub const ACTIVE_DATA_PORT: u16 = 20;
/// Listen backlog: a short one drops SYNs under a burst of connects (vsftpd's 32 shows in its p99).
pub const LISTEN_BACKLOG: i32 = 1024;
/// Entries a STAT with a path lists over the control connection before it says it stopped.
pub const MAX_STAT_ENTRIES: usize = 2000;
/// A STAT listing is made as the control connection drains: this much at a time, at most.
pub const STAT_REFILL_BYTES: usize = 16 * 1024;

/// Pacing (--max-rate-*): a paced transfer waits for this much of its rate and then moves it in
/// one pump (sendfile slices of 20 ms: about 50 pumps a second, whatever the rate).
pub const PACE_SLICE_MS: u64 = 20;
/// The most a rate bucket holds (so the most a transfer gets at once after a pause).
pub const PACE_BURST_MS: u64 = 100;
/// The burst of a server-wide bucket (--max-rate-total-*): two slices, so whoever comes first
/// gets no more than two slices ahead of the others it shares with.
pub const PACE_POOL_BURST_MS: u64 = 2 * PACE_SLICE_MS;
/// The smallest pacing slice, for low rates (1K/s moves 4 KiB every 4 s).
pub const PACE_MIN_SLICE_BYTES: u64 = 4096;

/// --workers: the most worker processes.
pub const MAX_WORKERS: usize = 256;
/// --workers: a worker that died is forked again after this when it had lived less (a worker
/// that cannot start must not spin the supervisor); at once otherwise.
pub const WORKER_RESTART_DELAY_MS: u64 = 1000;
/// --workers: how long SIGUSR1's status waits for the workers' answers.
pub const WORKER_STATUS_WAIT_MS: u64 = 1000;
/// --workers: after SIGTERM, a worker still running past its own shutdown grace and flush plus
/// this is killed (SIGKILL).
pub const WORKER_STOP_SLACK_MS: u64 = 2000;

/// Longest CLNT name kept for the logs.
pub const MAX_CLIENT_NAME_BYTES: usize = 64;
/// Delay before the 530 of the first failed login; it doubles with each further failure.
pub const LOGIN_FAILURE_DELAY_MS: u64 = 500;
/// Failed logins after which the session is closed.
pub const MAX_LOGIN_FAILURES: u8 = 3;
/// At SIGTERM a running upload may finish within this grace; then it is cut (426).
pub const SHUTDOWN_GRACE_MS: u64 = 2000;
/// After the grace, the time left to send the last replies before the process exits anyway.
pub const SHUTDOWN_FLUSH_MS: u64 = 1000;
/// Descriptors one session may hold at once: its control connection, a passive listener or data
/// connection, and the file of a transfer.
pub const DESCRIPTORS_PER_SESSION: u64 = 3;
/// Descriptors beside the sessions': listeners, the poll instance, the signal pipe, the jail
/// roots, an upload's pipe, the logger.
pub const DESCRIPTORS_SPARE: u64 = 64;
/// How long accepting pauses when the process is out of descriptors (EMFILE/ENFILE).
pub const ACCEPT_PAUSE_MS: u64 = 200;
/// Syslog lines waiting for a full or missing syslog socket; more are dropped and counted.
pub const SYSLOG_QUEUE_LINES: usize = 64;
/// A syslog line is cut here (RFC 3164 4.1: 1024 bytes or less).
pub const SYSLOG_LINE_BYTES: usize = 1024;
/// A syslog socket found gone is connected again at most this often.
pub const SYSLOG_RECONNECT_MS: u64 = 1000;
/// While syslog lines wait for room, the loop wakes this often to send them.
pub const SYSLOG_RETRY_MS: u64 = 100;
/// --upload-fifo: bytes of lines waiting for a reader (or for room in the pipe); a line that
/// does not fit is dropped, counted and logged. About 200 lines of an 80-byte path.
pub const UPLOAD_FIFO_QUEUE_BYTES: usize = 16 * 1024;
/// While upload lines wait, the loop retries the FIFO this often (open when no reader had it
/// open, write when the pipe was full).
pub const UPLOAD_FIFO_RETRY_MS: u64 = 200;
/// The upload FIFO's warnings (lines dropped, the FIFO unusable) come at most this often; the
/// lines dropped meanwhile are counted in the next one.
pub const UPLOAD_FIFO_WARN_SECS: u64 = 60;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:2121";
pub const DEFAULT_MAX_CLIENTS: usize = 256;
pub const DEFAULT_MAX_PER_IP: usize = 16;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;
pub const DEFAULT_DATA_TIMEOUT_SECS: u64 = 300;
/// A connection that has not logged in this long is closed: it cannot hold a slot for nothing.
pub const DEFAULT_LOGIN_TIMEOUT_SECS: u64 = 30;
/// --umask: permission bits taken away from created files (0o666) and directories (0o777).
pub const DEFAULT_UMASK: u32 = 0o022;

#[derive(Clone, Debug)]
pub struct Config {
    /// Directory anonymous users see as "/".
    pub root: PathBuf,
    pub listen: Vec<SocketAddr>,
    pub anonymous: bool,
    /// Anonymous users may also write.
    pub writable: bool,
    pub users_file: Option<PathBuf>,
    /// Inclusive range of passive ports; None lets the kernel choose.
    pub pasv_ports: Option<(u16, u16)>,
    /// Address announced in PASV replies instead of the control connection's local address.
    pub pasv_address: Option<Ipv4Addr>,
    pub max_clients: usize,
    pub max_per_ip: usize,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    pub login_timeout: Duration,
    /// FTPS (RFC 4217): None when no certificate was given.
    pub tls: Option<TlsConfig>,
    /// --umask: bits cleared from the mode of every file and directory an upload or MKD creates
    /// (a user's `umask` setting overrides it for that user's sessions).
    pub umask: u32,
    /// --max-upload-size: the largest file a STOR, STOU or APPE may leave (APPE and REST
    /// count what the file holds already); None: no limit. A user's `max_upload_size`
    /// overrides it, as `rate_down`/`rate_up` override `rates.down`/`rates.up`.
    pub max_upload_size: Option<u64>,
    /// --atomic-uploads: STOR and STOU write a hidden temporary file, renamed over the target
    /// at 226 and removed otherwise (APPE and REST > 0 write in place).
    pub atomic_uploads: bool,
    /// --max-rate-*: bytes a second, None for no limit.
    pub rates: Rates,
    /// --port-20: PORT/EPRT data connections come from port 20 (ACTIVE_DATA_PORT) of the
    /// control connection's local address. main.rs clears it at start, with a warning, when
    /// the process cannot bind that port (not root, no CAP_NET_BIND_SERVICE).
    pub port_20: bool,
    /// --max-sessions-per-user: logged-in sessions one users-file account may hold at once,
    /// from any addresses (a user's `max_sessions` overrides it); None: no limit.
    pub max_sessions_per_user: Option<usize>,
    /// --upload-fifo: the FIFO that gets one line per completed upload (log/fifo.rs). It is
    /// opened again by name whenever its reader has gone, so a sandbox must leave it openable
    /// for writing.
    pub upload_fifo: Option<PathBuf>,
}

/// The trees the Landlock sandbox leaves reachable, canonical; main.rs sets them once Landlock
/// is in force (`Shared::sandbox`). A user whose home lies outside cannot log in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxTrees {
    /// Trees files can be read and listed in.
    pub read: Vec<PathBuf>,
    /// Trees with every file-system right (--sandbox-root, read-write homes).
    pub write: Vec<PathBuf>,
}

impl SandboxTrees {
    /// True when `home` (canonical) lies in a tree that allows what its user may do there.
    pub fn admits(&self, home: &Path, writable: bool) -> bool {
        let within = |trees: &[PathBuf]| trees.iter().any(|tree| home.starts_with(tree));
        within(&self.write) || (!writable && within(&self.read))
    }
}

/// Bandwidth limits (transfer/pace.rs): per session and for the whole server, per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub down: Option<u64>,
    pub up: Option<u64>,
    pub total_down: Option<u64>,
    pub total_up: Option<u64>,
}

/// FTPS settings (--tls-*). The certificate itself is loaded by net::tls (the feature `tls`).
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub cert: PathBuf,
    /// The same file as `cert` when --tls-key was left out (the cert file holds the key).
    pub key: PathBuf,
    /// Implicit FTPS listeners (--tls-listen): the handshake starts at connect.
    pub implicit_listen: Vec<SocketAddr>,
    pub required: TlsRequired,
    /// A protected data connection must resume its own control connection's TLS session.
    pub session_reuse_required: bool,
}

/// --tls-required: what must be protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsRequired {
    /// Nothing: AUTH TLS is offered.
    No,
    /// A users-file user must send AUTH TLS before USER (anonymous may stay in the clear).
    Login,
    /// Every session must protect its control connection and use PROT P for data.
    All,
}

/// TLS session tickets (or TLS 1.2 session ids) one control connection keeps for its data
/// connections to resume: a client needs one; a few cover renegotiating clients.
pub const TLS_SESSIONS_PER_CONTROL: usize = 4;
/// TLS 1.3 tickets sent on a control connection (none on data connections: see net/tls.rs).
pub const TLS13_TICKETS_PER_CONTROL: usize = 1;

impl Config {
    /// A config for tests and embedders: anonymous read-only on `root`, defaults elsewhere.
    pub fn anonymous(root: impl Into<PathBuf>) -> Config {
        Config {
            root: root.into(),
            listen: vec![DEFAULT_LISTEN.parse().expect("valid default address")],
            anonymous: true,
            writable: false,
            users_file: None,
            pasv_ports: None,
            pasv_address: None,
            max_clients: DEFAULT_MAX_CLIENTS,
            max_per_ip: DEFAULT_MAX_PER_IP,
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            data_timeout: Duration::from_secs(DEFAULT_DATA_TIMEOUT_SECS),
            login_timeout: Duration::from_secs(DEFAULT_LOGIN_TIMEOUT_SECS),
            tls: None,
            rates: Rates::default(),
            umask: DEFAULT_UMASK,
            max_upload_size: None,
            atomic_uploads: false,
            port_20: false,
            max_sessions_per_user: None,
            upload_fifo: None,
        }
    }
}

/// --umask and a user's `umask=`: octal, as umask(1) and vsftpd's local_umask read it (a
/// leading 0 is optional). The error starts with `text`; the caller names the flag or key.
pub fn parse_umask(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(format!("{text}: want octal from 000 to 777")),
    }
}

/// --max-upload-size and a user's `max_upload_size=`: bytes with an optional K, M or G (base
/// 1024, either case), as curl's --limit-rate and Pure-FTPd read them: `512K`, `10M`, `4G`,
/// `1000`. The error starts with `text`; the caller names the flag or key.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("{text}: want a positive size like 1000, 512K, 10M or 4G");
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match n.checked_mul(1 << shift) {
        Some(size) if size > 0 => Ok(size),
        _ => Err(bad()),
    }
}
