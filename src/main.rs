//! The command line: flags (getopts) -> Config, --help, --version, --hash-password, the logger,
//! start-up checks, and exit codes. Every start-up error is one line on stderr and exit status 2,
//! before anyone is served.

#![deny(unsafe_code)]

use std::io::{self, BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use getopts::{Matches, Options};
use log::{info, warn, LevelFilter};

use leanftpd::auth::{self, Users};
use leanftpd::config::{self, Config, TlsConfig, TlsRequired};
use leanftpd::confine::Reached;
use leanftpd::fs::Jail;
use leanftpd::log::fifo::UploadFifo;
use leanftpd::log::xferlog::Xferlog;
use leanftpd::log::Facility;
use leanftpd::net::launch::{self, Start};
use leanftpd::net::supervisor::{Parts, Role, Supervisor, Worker};
use leanftpd::net::tls::Keys;
use leanftpd::net::Server;
use leanftpd::session::Shared;
use leanftpd::sys;
use leanftpd::transfer::pace;

const USAGE: &str = "Usage: leanftpd [OPTIONS]\n\n\
A small, safe FTP server for embedded Linux.";

fn options() -> Options {
    let mut opts = Options::new();
    opts.optopt(
        "r",
        "root",
        "directory anonymous users see as \"/\" (default \".\")",
        "DIR",
    );
    opts.optmulti(
        "l",
        "listen",
        &format!(
            "IP:PORT or [IPv6]:PORT to listen on; repeatable (default {})",
            config::DEFAULT_LISTEN
        ),
        "ADDR",
    );
    opts.optflag(
        "a",
        "anonymous",
        "allow anonymous login (user \"anonymous\" or \"ftp\", any password), read-only",
    );
    opts.optflag(
        "w",
        "writable",
        "anonymous users may also upload, append, make/remove dirs, rename, delete",
    );
    opts.optopt(
        "U",
        "users",
        "users file, one \"name:hash:home:perms[:settings]\" a line (hash from \
         --hash-password; settings: rate_down, rate_up, max_sessions, umask, max_upload_size)",
        "FILE",
    );
    opts.optopt(
        "",
        "pasv-ports",
        "ports for passive data connections (default: any free port)",
        "MIN-MAX",
    );
    opts.optopt(
        "",
        "pasv-address",
        "IPv4 address announced in PASV replies (NAT)",
        "IP",
    );
    opts.optflag(
        "",
        "port-20",
        "PORT/EPRT data connections come from port 20 (needs CAP_NET_BIND_SERVICE, kept across --run-as)",
    );
    opts.optopt(
        "",
        "max-clients",
        &format!("sessions at once (default {})", config::DEFAULT_MAX_CLIENTS),
        "N",
    );
    opts.optopt(
        "",
        "max-per-ip",
        &format!(
            "sessions at once from one IP address (default {})",
            config::DEFAULT_MAX_PER_IP
        ),
        "N",
    );
    opts.optopt(
        "",
        "max-sessions-per-user",
        "logged-in sessions at once of one users-file user, from any address; a user's \
         max_sessions overrides it (default and 0: no limit)",
        "N",
    );
    opts.optopt(
        "",
        "idle-timeout",
        &format!(
            "close a session idle this long (default {})",
            config::DEFAULT_IDLE_TIMEOUT_SECS
        ),
        "SECS",
    );
    opts.optopt(
        "",
        "data-timeout",
        &format!(
            "give up on a stalled or never-opened data connection (default {})",
            config::DEFAULT_DATA_TIMEOUT_SECS
        ),
        "SECS",
    );
    opts.optopt(
        "",
        "login-timeout",
        &format!(
            "close a connection that has not logged in this long (default {})",
            config::DEFAULT_LOGIN_TIMEOUT_SECS
        ),
        "SECS",
    );
    for (flag, what) in [
        ("max-rate-down", "each session's downloads"),
        ("max-rate-up", "each session's uploads"),
        (
            "max-rate-total-down",
            "all downloads together, shared fairly",
        ),
        ("max-rate-total-up", "all uploads together, shared fairly"),
    ] {
        let help = format!("bytes/s for {what} (512K, 10M: base 1024; default no limit)");
        opts.optopt("", flag, &help, "RATE");
    }
    opts.optopt(
        "",
        "tls-cert",
        "PEM certificate (chain) for FTPS: AUTH TLS on every --listen address",
        "FILE",
    );
    opts.optopt(
        "",
        "tls-key",
        "PEM private key of --tls-cert (default: read from the --tls-cert file)",
        "FILE",
    );
    opts.optmulti(
        "",
        "tls-listen",
        "implicit FTPS address (TLS from connect, port 990 style); repeatable",
        "ADDR",
    );
    opts.optopt(
        "",
        "tls-required",
        "login: users-file users must AUTH TLS before USER; all: every session, and PROT P",
        "login|all",
    );
    opts.optopt(
        "",
        "tls-session-reuse",
        "a TLS data connection must resume its control connection's session (default required)",
        "required|optional",
    );
    opts.optopt(
        "",
        "umask",
        "octal bits cleared from the mode of created files and directories (default 022)",
        "MASK",
    );
    opts.optflag(
        "",
        "atomic-uploads",
        "STOR/STOU write a hidden temporary file, renamed over the target only at 226",
    );
    opts.optopt(
        "",
        "max-upload-size",
        "largest file an upload may leave (K, M, G: base 1024); past it 552 (default: no limit)",
        "SIZE",
    );
    opts.optopt(
        "",
        "run-as",
        "when started as root: bind, then run as this user (and group)",
        "USER[:GROUP]",
    );
    opts.optopt(
        "",
        "workers",
        "serve in N processes (auto: one per CPU); limits count them all (default 1)",
        "N|auto",
    );
    opts.optopt(
        "",
        "pid-file",
        "write the process id to this file (for init scripts)",
        "FILE",
    );
    opts.optflagopt(
        "",
        "syslog",
        &format!(
            "log to syslog instead of stderr, through this socket (default {})",
            leanftpd::log::DEFAULT_SYSLOG_SOCKET
        ),
        "SOCKET",
    );
    opts.optopt(
        "",
        "syslog-facility",
        "syslog facility: daemon (default), ftp, local0..local7",
        "NAME",
    );
    opts.optopt(
        "",
        "xferlog",
        "append one wu-ftpd xferlog(5) line per file transfer to FILE (SIGHUP reopens it)",
        "FILE",
    );
    opts.optopt(
        "",
        "upload-fifo",
        "write the absolute path of each completed upload, one a line, to this existing FIFO",
        "PATH",
    );
    opts.optflag(
        "",
        "inetd",
        "serve one session on the connection open on stdin (inetd, tcpsvd, systemd Accept=yes), then exit",
    );
    opts.optflag(
        "",
        "no-sandbox",
        "run without the kernel sandbox (no_new_privs, Landlock, seccomp; on by default)",
    );
    opts.optmulti(
        "",
        "sandbox-root",
        "the sandbox also allows this tree (homes added to the users file later); repeatable",
        "DIR",
    );
    opts.optflag(
        "",
        "hash-password",
        "read a password from stdin, print its hash for the users file, exit",
    );
    opts.optflagmulti("v", "verbose", "more logging (-vv: trace)");
    opts.optflag("q", "quiet", "less logging (warnings and errors only)");
    opts.optflag("h", "help", "print this help and exit");
    opts.optflag("V", "version", "print the version and exit");
    opts
}

fn main() -> ExitCode {
    let mut inetd_logging = false;
    match run(&mut inetd_logging) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            report_failure(&message, inetd_logging);
            ExitCode::from(2)
        }
    }
}

/// Exit status 2 and one line saying why. Once --inetd's logger is up the client is told 421,
/// the reason is logged (syslog), and stderr gets the line only when it is not the client's
/// connection itself (inetd proper puts the socket on fds 0, 1 and 2).
fn report_failure(message: &str, inetd_logging: bool) {
    if inetd_logging {
        log::error!("{message}");
        let conn = launch::inetd_fd();
        launch::refuse_inetd_client(conn);
        if sys::same_file(2, conn) {
            return;
        }
    }
    eprintln!("leanftpd: {message}");
}

/// Parses the flags and serves; `inetd_logging` is set once --inetd's logger is in place.
fn run(inetd_logging: &mut bool) -> Result<(), String> {
    let opts = options();
    let matches = opts
        .parse(std::env::args_os().skip(1))
        .map_err(|e| format!("{e} (see --help)"))?;
    if matches.opt_present("help") {
        print!("{}", opts.usage(USAGE));
        return Ok(());
    }
    if matches.opt_present("version") {
        println!("leanftpd {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    if matches.opt_present("hash-password") {
        return hash_password();
    }
    if let Some(extra) = matches.free.first() {
        return Err(format!("unexpected argument {extra:?} (see --help)"));
    }
    let inetd = matches.opt_present("inetd");
    if let Some(flag) = ["listen", "tls-listen"]
        .into_iter()
        .find(|flag| inetd && matches.opt_present(flag))
    {
        return Err(format!(
            "--inetd serves the connection on stdin: --{flag} does not apply"
        ));
    }
    if inetd && matches.opt_present("workers") {
        return Err(
            "--inetd serves one connection in one process: --workers does not apply".into(),
        );
    }
    let workers = parse_workers(&matches)?;
    let syslog_socket = init_logger(&matches)?;
    *inetd_logging = inetd;
    let config = parse_config(&matches)?;
    let sandbox_roots = parse_sandbox_roots(&matches)?;
    // Counted within one process: N workers would each allow the whole amount.
    if let Some(flag) = ["max-rate-total-down", "max-rate-total-up"]
        .into_iter()
        .find(|flag| workers > 1 && matches.opt_present(flag))
    {
        return Err(format!(
            "--{flag} is counted within one process: not with --workers {workers}"
        ));
    }
    // Every file and directory the server creates gets its mode explicitly: uploads and MKD
    // 0666/0777 less the user's umask or --umask, the xferlog 0640, the pid file 0666 less
    // --umask. The process umask is 0, so the kernel takes nothing more away: one process
    // serves users with different masks, and none is set per session.
    sys::set_umask(0);
    let pid_file_mode = 0o666 & !config.umask;
    let mut shared = load_shared(config)?;
    let run_as = matches
        .opt_str("run-as")
        .map(|spec| sys::lookup_identity(&spec).map_err(|e| format!("--run-as {spec}: {e}")))
        .transpose()?;
    if run_as.is_some() && !sys::is_root() {
        return Err("--run-as needs the server to be started as root".into());
    }
    let tls_keys = shared.config.tls.as_ref().map(Keys::load).transpose()?;
    // Opened before privileges drop: /var/log is root's.
    let xferlog = matches
        .opt_str("xferlog")
        .map(|path| Xferlog::open(path.as_ref()).map_err(|e| format!("--xferlog {path}: {e}")))
        .transpose()?;
    let (listeners, inetd_conn, origin) = match launch::start(&shared.config, inetd)? {
        Start::Listen {
            listeners,
            from_systemd,
        } => (
            listeners,
            None,
            if from_systemd { " (from systemd)" } else { "" },
        ),
        Start::Inetd(conn) => (Vec::new(), Some(conn), ""),
    };
    let notify = launch::Notify::from_env();
    // The pid file goes where init scripts want it (/run), which needs root: before the drop.
    let pid_file = matches.opt_str("pid-file").map(PathBuf::from);
    if let Some(path) = &pid_file {
        write_pid_file(path, pid_file_mode)
            .map_err(|e| format!("--pid-file {}: {e}", path.display()))?;
    }
    let addrs = listeners
        .iter()
        .map(|listener| listener.local_addr())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let port_20 = shared.config.port_20;
    let mut port_20_lost = None;
    if let Some((uid, gid)) = run_as {
        let kept = sys::drop_privileges(uid, gid, port_20).map_err(|e| format!("--run-as: {e}"))?;
        port_20_lost = kept.err();
    }
    // After the drop: the FIFO is opened again by name whenever its reader has gone, as the
    // user the server runs as, so that user must be able to open it now.
    let upload_fifo = shared
        .config
        .upload_fifo
        .as_deref()
        .map(UploadFifo::open)
        .transpose()?;
    log_start(&shared, run_as);
    if port_20 && (port_20_lost.is_some() || !sys::may_bind_port(config::ACTIVE_DATA_PORT)) {
        let why = match port_20_lost {
            Some(e) => format!("CAP_NET_BIND_SERVICE could not be kept across --run-as: {e}"),
            None => "the process lacks CAP_NET_BIND_SERVICE, which root has".into(),
        };
        warn!(
            "--port-20: port 20 cannot be used ({why}); active data connections come from any port"
        );
        shared.config.port_20 = false;
    }
    raise_descriptor_limit(shared.config.max_clients);
    let xferlog_path = xferlog.as_ref().map(|log| log.path().to_path_buf());
    let reached = Reached {
        roots: sandbox_roots,
        files: [xferlog_path, pid_file.clone()],
        sockets: [
            syslog_socket,
            notify
                .as_ref()
                .and_then(launch::Notify::path)
                .map(Path::to_path_buf),
        ],
        supervises_workers: workers > 1,
    };
    if workers > 1 {
        let parts = Parts {
            shared,
            tls_keys,
            xferlog,
            upload_fifo,
        };
        let supervisor = Supervisor::new(workers, parts, listeners, notify)
            .map_err(|e| format!("cannot start the supervisor: {e}"))?;
        // Before the first fork: every worker inherits the sandbox.
        reached.confine(supervisor.shared());
        for addr in addrs {
            info!("listening on {addr}{origin}");
        }
        return match supervisor.run() {
            Ok(Role::Stopped) => {
                if let Some(path) = &pid_file {
                    let _ = std::fs::remove_file(path);
                }
                info!("stopped");
                Ok(())
            }
            Ok(Role::Worker(worker)) => run_worker(*worker),
            Err(e) => Err(format!("supervisor failed: {e}")),
        };
    }
    // The signal handlers are in place before "listening on": a client (or a test) that sees
    // it may send SIGTERM at once.
    let mut server = Server::new(shared, listeners, tls_keys)
        .map_err(|e| format!("cannot start the event loop: {e}"))?;
    if let Some(xferlog) = xferlog {
        server.set_xferlog(xferlog);
    }
    if let Some(fifo) = upload_fifo {
        server.set_upload_fifo(fifo);
    }
    reached.confine(server.shared());
    for addr in addrs {
        info!("listening on {addr}{origin}");
    }
    match (inetd_conn, notify) {
        (Some(conn), _) => server
            .serve_inetd(conn)
            .map_err(|e| format!("--inetd: {e}"))?,
        (None, Some(notify)) => server.notify_ready(notify),
        (None, None) => {}
    }
    let result = server.run().map_err(|e| format!("event loop failed: {e}"));
    if let Some(path) = &pid_file {
        // After a privilege drop this may be refused; the init system cleans /run anyway.
        let _ = std::fs::remove_file(path);
    }
    result?;
    info!("stopped");
    Ok(())
}

/// A worker of --workers (in the process just forked): its own loop, until it is told to stop
/// or its supervisor is gone.
fn run_worker(worker: Worker) -> Result<(), String> {
    let id = worker.id();
    let mut server = worker
        .into_server()
        .map_err(|e| format!("worker {id}: cannot start the event loop: {e}"))?;
    info!("serving (pid {})", std::process::id());
    server
        .run()
        .map_err(|e| format!("worker {id}: event loop failed: {e}"))?;
    info!("stopped");
    Ok(())
}

/// --workers N|auto: 1 by default; auto is the CPUs this process may run on.
fn parse_workers(matches: &Matches) -> Result<usize, String> {
    let Some(text) = matches.opt_str("workers") else {
        return Ok(1);
    };
    if text == "auto" {
        return Ok(sys::cpu_count().min(config::MAX_WORKERS));
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=config::MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "--workers {text}: want auto or a whole number from 1 to {}",
            config::MAX_WORKERS
        )),
    }
}

/// The process id and a newline; a new file gets `mode`.
fn write_pid_file(path: &std::path::Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    writeln!(file, "{}", std::process::id())
}

/// Raises the soft descriptor limit to what --max-clients needs (a box's default of 1,024 holds
/// about 320 sessions); says so, once, when the hard limit holds fewer than that.
fn raise_descriptor_limit(max_clients: usize) {
    let per_session = config::DESCRIPTORS_PER_SESSION;
    let wanted = max_clients as u64 * per_session + config::DESCRIPTORS_SPARE;
    match sys::raise_descriptor_limit(wanted) {
        Ok(limit) if limit < wanted => {
            let holds = limit.saturating_sub(config::DESCRIPTORS_SPARE) / per_session;
            warn!(
                "the descriptor limit ({limit}, the hard RLIMIT_NOFILE) holds about {holds} \
                 sessions, fewer than --max-clients {max_clients}: raise it (ulimit -Hn, \
                 LimitNOFILE=) or lower --max-clients"
            );
        }
        Ok(_) => {}
        Err(e) => warn!("cannot read or raise the descriptor limit: {e}"),
    }
}

/// What the server starts with, logged only once nothing can fail any more, so that a failed
/// start prints its one error line and nothing else. vsftpd refuses a writable chroot;
/// leanftpd's jail does not rely on the root being read-only, so it serves one but says so.
fn log_start(shared: &Shared, run_as: Option<(u32, u32)>) {
    let config = &shared.config;
    match run_as {
        Some((uid, gid)) => info!("running as uid {uid}, gid {gid}"),
        None if sys::is_root() => {
            warn!("running as root: use --run-as USER to drop privileges after binding")
        }
        None => {}
    }
    if config.anonymous {
        let mode = if config.writable {
            "read-write"
        } else {
            "read-only"
        };
        info!(
            "anonymous login enabled on {} ({mode})",
            config.root.display()
        );
    }
    if config.users_file.is_some() {
        info!("{} users loaded", shared.users.borrow().len());
    }
    if config.anonymous && sys::is_writable(&config.root) {
        if config.writable {
            info!(
                "anonymous root {} is writable (--writable)",
                config.root.display()
            );
        } else {
            warn!(
                "anonymous root {} is writable by the server process; anonymous users still cannot write (no --writable)",
                config.root.display()
            );
        }
    }
    for (name, home, writable) in shared.users.borrow().homes() {
        if !writable && sys::is_writable(home) {
            warn!(
                "home {} of read-only user {name} is writable by the server process",
                home.display()
            );
        }
    }
}

/// --sandbox-root DIR...: existing directories; None for --no-sandbox.
fn parse_sandbox_roots(matches: &Matches) -> Result<Option<Vec<PathBuf>>, String> {
    let roots: Vec<PathBuf> = matches
        .opt_strs("sandbox-root")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if matches.opt_present("no-sandbox") && !roots.is_empty() {
        return Err("--sandbox-root widens the sandbox: not with --no-sandbox".into());
    }
    if matches.opt_present("no-sandbox") {
        return Ok(None);
    }
    for root in &roots {
        if !root.is_dir() {
            return Err(format!(
                "--sandbox-root {}: not a directory",
                root.display()
            ));
        }
    }
    Ok(Some(roots))
}

/// Installs the logger; returns the syslog socket when the log goes there.
fn init_logger(matches: &Matches) -> Result<Option<PathBuf>, String> {
    let level = match (matches.opt_present("quiet"), matches.opt_count("verbose")) {
        (true, 0) => LevelFilter::Warn,
        (true, _) => return Err("--quiet and --verbose exclude each other".into()),
        (false, 0) => LevelFilter::Info,
        (false, 1) => LevelFilter::Debug,
        (false, _) => LevelFilter::Trace,
    };
    let facility = match matches.opt_str("syslog-facility") {
        None => Facility::Daemon,
        Some(name) => Facility::parse(&name).ok_or_else(|| {
            format!("--syslog-facility {name}: want daemon, ftp or local0..local7")
        })?,
    };
    let syslog = matches
        .opt_present("syslog")
        .then(|| matches.opt_str("syslog"));
    // --inetd: stderr may be the client's connection itself (inetd, xinetd), so the log goes
    // to syslog, and never to stderr even when syslog is missing.
    let stderr_may_be_client = matches.opt_present("inetd");
    let target = leanftpd::log::target(syslog, facility, stderr_may_be_client);
    let socket = match &target {
        leanftpd::log::Target::Syslog { socket, .. } => Some(socket.clone()),
        _ => None,
    };
    leanftpd::log::init(target, level, stderr_may_be_client)?;
    Ok(socket)
}

fn parse_config(matches: &Matches) -> Result<Config, String> {
    let anonymous = matches.opt_present("anonymous");
    let users_file = matches.opt_str("users").map(PathBuf::from);
    if !anonymous && users_file.is_none() {
        return Err("nobody could log in: pass --anonymous (-a) and/or --users FILE (-U)".into());
    }
    if matches.opt_present("writable") && !anonymous {
        return Err("--writable applies to anonymous users: pass --anonymous too".into());
    }
    let listen = match matches.opt_strs("listen") {
        addrs if addrs.is_empty() => vec![config::DEFAULT_LISTEN.to_string()],
        addrs => addrs,
    };
    let listen = addresses(&listen, "listen")?;
    Ok(Config {
        root: absolute(PathBuf::from(
            matches.opt_str("root").unwrap_or_else(|| ".".into()),
        )),
        listen,
        anonymous,
        writable: matches.opt_present("writable"),
        users_file,
        pasv_ports: matches
            .opt_str("pasv-ports")
            .map(|r| parse_port_range(&r))
            .transpose()?,
        pasv_address: matches
            .opt_str("pasv-address")
            .map(|a| {
                a.parse::<Ipv4Addr>()
                    .map_err(|_| format!("--pasv-address {a}: want an IPv4 address"))
            })
            .transpose()?,
        max_clients: number(matches, "max-clients", config::DEFAULT_MAX_CLIENTS as u64)? as usize,
        max_per_ip: number(matches, "max-per-ip", config::DEFAULT_MAX_PER_IP as u64)? as usize,
        max_sessions_per_user: max_sessions_per_user(matches)?,
        idle_timeout: Duration::from_secs(number(
            matches,
            "idle-timeout",
            config::DEFAULT_IDLE_TIMEOUT_SECS,
        )?),
        data_timeout: Duration::from_secs(number(
            matches,
            "data-timeout",
            config::DEFAULT_DATA_TIMEOUT_SECS,
        )?),
        login_timeout: Duration::from_secs(number(
            matches,
            "login-timeout",
            config::DEFAULT_LOGIN_TIMEOUT_SECS,
        )?),
        tls: parse_tls(matches)?,
        rates: config::Rates {
            down: rate(matches, "max-rate-down")?,
            up: rate(matches, "max-rate-up")?,
            total_down: rate(matches, "max-rate-total-down")?,
            total_up: rate(matches, "max-rate-total-up")?,
        },
        umask: matches
            .opt_str("umask")
            .map_or(Ok(config::DEFAULT_UMASK), |text| {
                config::parse_umask(&text).map_err(|e| format!("--umask {e}"))
            })?,
        atomic_uploads: matches.opt_present("atomic-uploads"),
        max_upload_size: matches
            .opt_str("max-upload-size")
            .map(|text| config::parse_size(&text).map_err(|e| format!("--max-upload-size {e}")))
            .transpose()?,
        port_20: matches.opt_present("port-20"),
        upload_fifo: matches.opt_str("upload-fifo").map(PathBuf::from),
    })
}

/// --max-sessions-per-user: a whole number; 0 (or no flag) is no limit.
fn max_sessions_per_user(matches: &Matches) -> Result<Option<usize>, String> {
    let Some(text) = matches.opt_str("max-sessions-per-user") else {
        return Ok(None);
    };
    match text.parse::<u32>() {
        Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => Ok((n > 0).then_some(n as usize)),
        _ => Err(format!(
            "--max-sessions-per-user {text}: want a whole number from 0 (no limit) to {}",
            u32::MAX
        )),
    }
}

/// --root made absolute (lexically: symlinks stay), so that the on-disk path of an upload
/// (--upload-fifo) is absolute; the server never changes its working directory.
fn absolute(root: PathBuf) -> PathBuf {
    std::path::absolute(&root).unwrap_or(root)
}

/// A --max-rate-* flag: bytes a second (transfer::pace::parse_rate).
fn rate(matches: &Matches, name: &str) -> Result<Option<u64>, String> {
    matches
        .opt_str(name)
        .map(|text| pace::parse_rate(&text).map_err(|e| format!("--{name} {e}")))
        .transpose()
}

fn addresses(texts: &[String], flag: &str) -> Result<Vec<SocketAddr>, String> {
    texts
        .iter()
        .map(|a| {
            a.parse::<SocketAddr>()
                .map_err(|_| format!("--{flag} {a}: want IP:PORT or [IPv6]:PORT"))
        })
        .collect()
}

/// The --tls-* flags; the certificate itself is loaded (and checked) by `Keys::load`.
fn parse_tls(matches: &Matches) -> Result<Option<TlsConfig>, String> {
    const FLAGS: [&str; 5] = [
        "tls-cert",
        "tls-key",
        "tls-listen",
        "tls-required",
        "tls-session-reuse",
    ];
    let Some(given) = FLAGS.into_iter().find(|flag| matches.opt_present(flag)) else {
        return Ok(None);
    };
    if !cfg!(feature = "tls") {
        return Err(format!(
            "--{given}: this leanftpd was built without TLS (cargo feature `tls`)"
        ));
    }
    let Some(cert) = matches.opt_str("tls-cert").map(PathBuf::from) else {
        return Err(format!("--{given} needs --tls-cert FILE"));
    };
    let required = match matches.opt_str("tls-required").as_deref() {
        None => TlsRequired::No,
        Some("login") => TlsRequired::Login,
        Some("all") => TlsRequired::All,
        Some(other) => return Err(format!("--tls-required {other}: want login or all")),
    };
    let session_reuse_required = match matches.opt_str("tls-session-reuse").as_deref() {
        None | Some("required") => true,
        Some("optional") => false,
        Some(other) => {
            return Err(format!(
                "--tls-session-reuse {other}: want required or optional"
            ))
        }
    };
    Ok(Some(TlsConfig {
        key: matches
            .opt_str("tls-key")
            .map_or_else(|| cert.clone(), PathBuf::from),
        cert,
        implicit_listen: addresses(&matches.opt_strs("tls-listen"), "tls-listen")?,
        required,
        session_reuse_required,
    }))
}

/// A positive whole number flag.
fn number(matches: &Matches, name: &str, default: u64) -> Result<u64, String> {
    match matches.opt_str(name) {
        None => Ok(default),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n > 0 && n <= u32::MAX as u64 => Ok(n),
            _ => Err(format!(
                "--{name} {text}: want a whole number from 1 to {}",
                u32::MAX
            )),
        },
    }
}

fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("--pasv-ports {text}: want MIN-MAX with 1024 <= MIN <= MAX <= 65535");
    let (min, max) = text.split_once('-').ok_or_else(bad)?;
    let min: u16 = min.trim().parse().map_err(|_| bad())?;
    let max: u16 = max.trim().parse().map_err(|_| bad())?;
    if min < 1024 || min > max {
        return Err(bad());
    }
    Ok((min, max))
}

fn load_shared(config: Config) -> Result<Shared, String> {
    let users = match &config.users_file {
        Some(path) => Users::load(path)?,
        None => Users::default(),
    };
    let anonymous_jail = if config.anonymous {
        let jail =
            Jail::open(&config.root).map_err(|e| format!("root {}: {e}", config.root.display()))?;
        Some(Rc::new(jail))
    } else {
        None
    };
    Ok(Shared::new(config, users, anonymous_jail))
}

/// --hash-password: one line from stdin (no echo handling: pipe it in), its $6$ hash on stdout.
fn hash_password() -> Result<(), String> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err("empty password on stdin".into());
    }
    let hash = auth::hash_password(password.as_bytes())?;
    writeln!(io::stdout(), "{hash}").map_err(|e| format!("cannot write the hash: {e}"))
}
