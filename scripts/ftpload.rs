//! ftpload: the load client of `scripts/bench` (std only, one thread per client).
//!
//! Build: `rustc -O --edition 2021 scripts/ftpload.rs -o ftpload` (it takes
//! scripts/ftpload_common.rs, shared with scripts/ftpload-tls, as its module `common`).
//!
//! Usage: `ftpload MODE HOST:PORT [--option value ...]`
//!
//! Modes (each prints one `key=value ...` line on stdout, errors on stderr, exit 1 on any error):
//! - `ping`      log in and QUIT once (used to wait for a server to be up).
//! - `retr`      `--clients N` each download `--path` once (EPSV + RETR) after all have logged in;
//!               bytes are discarded in the kernel (`recv` with MSG_TRUNC), never copied.
//!               Reports the aggregate MiB/s (all bytes / time until the last 226).
//! - `stor`      `--clients N` each upload `--bytes` from a pre-filled buffer to `--path` (with
//!               `.K` appended when N > 1). Reports the aggregate MiB/s until the last 226.
//! - `sessions`  `--clients C` threads share `--total S` sessions of (connect, USER/PASS, EPSV,
//!               RETR `--path`, QUIT). Reports sessions/s and p50/p99/max of a whole session (ms).
//! - `list`      one session runs `--cmd LIST|MLSD` of `--path` `--reps R` times (EPSV to 226).
//!               Reports the median/min/max ms and the lines and bytes of one listing.
//! - `idle`      open `--clients N` logged-in sessions, print `ready sessions=N`, and hold them
//!               until stdin reaches EOF (or a signal ends the process).
//! - `many`      open `--clients N` logged-in sessions, session i from source address
//!               127.0.0.(2 + i mod `--sources K`) (bind before connect, so that a server's
//!               per-IP limit is met honestly), one descriptor each; print `ready sessions=N
//!               login_secs=S` and wait for a line on stdin (the bench measures the server
//!               meanwhile). Then a bystander session from 127.0.1.1 sends NOOPs `--noop-ms`
//!               apart (at least `--noops`, and on until the listings end) while every one of
//!               the N sessions, all still open, does one `NLST --path` over EPSV (its data
//!               connection from the session's own address, as RFC 2577 checks want), 16 at a
//!               time; then all N close (no QUIT). Reports the time for all N listings, the
//!               lines of one (all must be equal) and the bystander's NOOP p50/p99/max (ms).
//!
//! And one helper that is not a client: `ftpload reap PIDFILE CMD [ARGS...]` runs CMD as a child
//! subreaper (prctl PR_SET_CHILD_SUBREAPER), writes CMD's pid to PIDFILE, reaps every process
//! orphaned beneath it (vsftpd's session processes can outlive their parent) so that their CPU
//! time lands in this process's cutime/cstime, and exits with CMD's status once no child is left.
//!
//! Other options: `--user` (anonymous), `--pass` (bench@), `--timeout` seconds for every socket
//! operation (30), `--expect` bytes every RETR must deliver (checked when given); for `many`:
//! `--sources` (10), `--noops` (100), `--noop-ms` (20).

use std::ffi::c_void;
use std::io::{self, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

#[path = "ftpload_common.rs"]
mod common;
use common::{client_cpu_secs, connect, parse_epsv, percentile, read_reply, Res};

extern "C" {
    fn socket(domain: i32, ty: i32, protocol: i32) -> i32;
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const c_void, len: u32) -> i32;
    fn bind(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
    #[link_name = "connect"]
    fn connect_raw(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
    fn recv(fd: i32, buf: *mut c_void, len: usize, flags: i32) -> isize;
    fn prctl(option: i32, ...) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
}

/// Linux `PR_SET_CHILD_SUBREAPER` and `ECHILD`.
const PR_SET_CHILD_SUBREAPER: i32 = 36;
const ECHILD: i32 = 10;

/// Linux `struct sockaddr_in` (no libc crate here: plain rustc).
#[repr(C)]
struct SockaddrIn {
    family: u16,
    /// Network byte order.
    port: u16,
    /// Network byte order.
    addr: u32,
    zero: [u8; 8],
}
const AF_INET: i32 = 2;
const SOCK_STREAM: i32 = 1;
const SOCK_CLOEXEC: i32 = 0o2000000;
const IPPROTO_IP: i32 = 0;
/// Linux `IP_BIND_ADDRESS_NO_PORT`: bind the address now, pick the port at connect, so that
/// the 4-tuple (not the local port alone) has to be unique.
const IP_BIND_ADDRESS_NO_PORT: i32 = 24;

fn sockaddr(ip: Ipv4Addr, port: u16) -> SockaddrIn {
    SockaddrIn {
        family: AF_INET as u16,
        port: port.to_be(),
        addr: u32::from_ne_bytes(ip.octets()),
        zero: [0; 8],
    }
}

/// A TCP connection to `to` from local address `from` (bind before connect), with read and
/// write timeouts; the connect itself is bounded too (Linux applies SO_SNDTIMEO to it).
fn connect_from(from: Ipv4Addr, to: SocketAddr, timeout: Duration) -> Res<TcpStream> {
    let SocketAddr::V4(to4) = to else {
        return Err(format!("connect {to} from {from}: IPv4 only"));
    };
    let err = |what: &str| format!("{what} {to} from {from}: {}", io::Error::last_os_error());
    // SAFETY: plain socket(2); the descriptor is owned by the TcpStream right away.
    let fd = unsafe { socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err("socket for"));
    }
    // SAFETY: `fd` is a fresh socket nothing else owns.
    let s = unsafe { TcpStream::from_raw_fd(fd) };
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let one: i32 = 1;
    let (local, remote) = (sockaddr(from, 0), sockaddr(*to4.ip(), to4.port()));
    let len = std::mem::size_of::<SockaddrIn>() as u32;
    // SAFETY: the option value and both addresses are live, correctly sized plain data.
    unsafe {
        if setsockopt(
            fd,
            IPPROTO_IP,
            IP_BIND_ADDRESS_NO_PORT,
            (&one as *const i32).cast(),
            4,
        ) != 0
        {
            return Err(err("IP_BIND_ADDRESS_NO_PORT for"));
        }
        if bind(fd, &local, len) != 0 {
            return Err(err("bind for"));
        }
        if connect_raw(fd, &remote, len) != 0 {
            return Err(err("connect"));
        }
    }
    Ok(s)
}

/// Linux `MSG_TRUNC`: on a TCP socket, `recv` drops the bytes instead of copying them.
const MSG_TRUNC: i32 = 0x20;
/// Bytes asked of one `recv` or written by one `write`.
const CHUNK_BYTES: usize = 1 << 20;
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Clone)]
struct Opts {
    base: common::Base,
    cmd: String,
    reps: usize,
    bytes: u64,
    sources: u32,
    noops: usize,
    noop_ms: u64,
}

impl std::ops::Deref for Opts {
    type Target = common::Base;
    fn deref(&self) -> &common::Base {
        &self.base
    }
}

/// One control connection: replies are read through a bounded line reader.
struct Control {
    reader: BufReader<TcpStream>,
    opts: Opts,
    /// The local address the connection was bound to (and its data connections are), if any.
    from: Option<Ipv4Addr>,
}

impl Control {
    /// Connects and reads the greeting.
    fn open(opts: &Opts) -> Res<Control> {
        Control::open_from(opts, None)
    }

    /// Connects from `from` when given (bind before connect) and reads the greeting.
    fn open_from(opts: &Opts, from: Option<Ipv4Addr>) -> Res<Control> {
        let s = match from {
            Some(ip) => connect_from(ip, opts.addr, opts.timeout)?,
            None => connect(opts.addr, opts.timeout)?,
        };
        // Our commands are small writes followed by a read: never let Nagle delay them.
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        // Replies are short; 10,000 sessions of the default 8 KiB buffer would be 80 MiB.
        let cap = if from.is_some() { 1024 } else { 8192 };
        let mut c = Control {
            reader: BufReader::with_capacity(cap, s),
            opts: opts.clone(),
            from,
        };
        c.expect(&[220], "greeting")?;
        Ok(c)
    }

    /// Reads one reply, single or multi-line.
    fn reply(&mut self) -> Res<(u32, String)> {
        read_reply(&mut self.reader)
    }

    fn send(&mut self, line: &str) -> Res<()> {
        let mut s = self.reader.get_ref();
        s.write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| format!("sending {line:?}: {e}"))
    }

    fn expect(&mut self, codes: &[u32], what: &str) -> Res<String> {
        let (code, text) = self.reply()?;
        if codes.contains(&code) {
            Ok(text)
        } else {
            Err(format!("{what}: expected {codes:?}, got {text:?}"))
        }
    }

    fn cmd(&mut self, line: &str, codes: &[u32]) -> Res<String> {
        self.send(line)?;
        let what = if line.starts_with("PASS") {
            "PASS"
        } else {
            line
        };
        self.expect(codes, what)
    }

    fn login(&mut self) -> Res<()> {
        let user = format!("USER {}", self.opts.user);
        let pass = format!("PASS {}", self.opts.pass);
        self.send(&user)?;
        match self.reply()? {
            (230, _) => Ok(()),
            (331, _) => self.cmd(&pass, &[230]).map(|_| ()),
            (_, text) => Err(format!("{user}: {text:?}")),
        }
    }

    /// EPSV, then connects the data socket to the announced port on the control connection's IP.
    fn epsv(&mut self) -> Res<TcpStream> {
        let text = self.cmd("EPSV", &[229])?;
        let port = parse_epsv(&text).ok_or_else(|| format!("cannot parse EPSV reply {text:?}"))?;
        let ip: IpAddr = self.opts.addr.ip();
        let to = SocketAddr::new(ip, port);
        match self.from {
            Some(from) => connect_from(from, to, self.opts.timeout),
            None => connect(to, self.opts.timeout),
        }
    }

    fn quit(&mut self) -> Res<()> {
        self.cmd("QUIT", &[221]).map(|_| ())
    }
}

/// Reads the data connection to EOF, dropping the bytes in the kernel.
fn drain_discard(s: &TcpStream, buf: &mut [u8]) -> Res<u64> {
    let fd = s.as_raw_fd();
    let mut total = 0u64;
    loop {
        // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes (MSG_TRUNC leaves it
        // untouched on TCP, but it would be valid even if the kernel wrote into it).
        let n = unsafe { recv(fd, buf.as_mut_ptr().cast(), buf.len(), MSG_TRUNC) };
        if n == 0 {
            return Ok(total);
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("data connection after {total} bytes: {e}"));
        }
        total += n as u64;
    }
}

/// RETR `path` on an open, logged-in session; returns the bytes received.
fn retr(c: &mut Control, path: &str, buf: &mut [u8]) -> Res<u64> {
    let data = c.epsv()?;
    c.cmd(&format!("RETR {path}"), &[125, 150])?;
    let n = drain_discard(&data, buf)?;
    drop(data);
    c.expect(&[226, 250], "end of RETR")?;
    if let Some(want) = c.opts.expect {
        if n != want {
            return Err(format!("RETR {path}: got {n} bytes, expected {want}"));
        }
    }
    Ok(n)
}

/// Runs `clients` threads that log in, wait for each other, then run `job`; returns each
/// thread's bytes and the time from the common start to the last thread's end.
fn run_barrier<F>(opts: &Opts, job: F) -> Res<(u64, f64)>
where
    F: Fn(usize, &mut Control) -> Res<u64> + Send + Sync + 'static,
{
    let barrier = Arc::new(Barrier::new(opts.clients + 1));
    let job = Arc::new(job);
    let mut handles = Vec::new();
    for k in 0..opts.clients {
        let (barrier, job, opts) = (barrier.clone(), job.clone(), opts.clone());
        handles.push(thread::spawn(move || -> Res<(u64, Instant)> {
            let session = Control::open(&opts).and_then(|mut c| {
                c.login()?;
                c.cmd("TYPE I", &[200])?;
                Ok(c)
            });
            // Always meet the barrier, even after an error, so nobody waits forever.
            barrier.wait();
            let mut c = session?;
            let n = job(k, &mut c)?;
            let end = Instant::now();
            c.quit()?;
            Ok((n, end))
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let (mut bytes, mut last) = (0u64, start);
    let mut errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok((n, end))) => {
                bytes += n;
                last = last.max(end);
            }
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("client thread panicked".into()),
        }
    }
    if !errors.is_empty() {
        return Err(format!(
            "{} client(s) failed, first: {}",
            errors.len(),
            errors[0]
        ));
    }
    Ok((bytes, (last - start).as_secs_f64()))
}

fn mode_retr(opts: &Opts) -> Res<String> {
    let path = opts.path.clone();
    let (bytes, secs) = run_barrier(opts, move |_, c| {
        let mut buf = vec![0u8; CHUNK_BYTES];
        retr(c, &path, &mut buf)
    })?;
    Ok(format!(
        "mode=retr clients={} bytes={bytes} secs={secs:.4} mibps={:.1} client_cpu_s={:.2}",
        opts.clients,
        bytes as f64 / MIB / secs,
        client_cpu_secs()
    ))
}

fn mode_stor(opts: &Opts) -> Res<String> {
    let (path, size, clients) = (opts.path.clone(), opts.bytes, opts.clients);
    let (bytes, secs) = run_barrier(opts, move |k, c| {
        // A pattern that is neither zeros nor a single byte value, filled once.
        let buf: Vec<u8> = (0..CHUNK_BYTES).map(|i| (i * 7 + i / 4093) as u8).collect();
        let target = if clients > 1 {
            format!("{path}.{k}")
        } else {
            path.clone()
        };
        let mut data = c.epsv()?;
        c.cmd(&format!("STOR {target}"), &[125, 150])?;
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            data.write_all(&buf[..n])
                .map_err(|e| format!("STOR {target} after {} bytes: {e}", size - left))?;
            left -= n as u64;
        }
        drop(data); // EOF ends the upload
        c.expect(&[226, 250], "end of STOR")?;
        Ok(size)
    })?;
    Ok(format!(
        "mode=stor clients={clients} bytes={bytes} secs={secs:.4} mibps={:.1} client_cpu_s={:.2}",
        bytes as f64 / MIB / secs,
        client_cpu_secs()
    ))
}

/// One whole session: connect, login, EPSV, RETR, QUIT.
fn one_session(opts: &Opts, buf: &mut [u8]) -> Res<()> {
    let mut c = Control::open(opts)?;
    c.login()?;
    retr(&mut c, &opts.path, buf)?;
    c.quit()
}

fn mode_sessions(opts: &Opts) -> Res<String> {
    let o = opts.clone();
    common::run_sessions(opts.clients, opts.total, move |buf| one_session(&o, buf))
}

fn mode_list(opts: &Opts) -> Res<String> {
    let mut c = Control::open(opts)?;
    c.login()?;
    let mut times = Vec::new();
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut buf = vec![0u8; 256 * 1024];
    for _ in 0..opts.reps {
        let t = Instant::now();
        let mut data = c.epsv()?;
        c.cmd(&format!("{} {}", opts.cmd, opts.path), &[125, 150])?;
        // Listings are read for real (not discarded) to count their lines.
        let (mut l, mut b) = (0u64, 0u64);
        loop {
            let n = data
                .read(&mut buf)
                .map_err(|e| format!("{} data: {e}", opts.cmd))?;
            if n == 0 {
                break;
            }
            b += n as u64;
            l += buf[..n].iter().filter(|&&x| x == b'\n').count() as u64;
        }
        drop(data);
        c.expect(&[226, 250], "end of listing")?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        (lines, bytes) = (l, b);
    }
    c.quit()?;
    times.sort_by(f64::total_cmp);
    Ok(format!(
        "mode=list cmd={} reps={} median_ms={:.3} min_ms={:.3} max_ms={:.3} lines={lines} bytes={bytes}",
        opts.cmd,
        times.len(),
        percentile(&times, 50.0),
        times.first().copied().unwrap_or(f64::NAN),
        times.last().copied().unwrap_or(f64::NAN)
    ))
}

fn mode_idle(opts: &Opts) -> Res<String> {
    // Logging in is not what is measured here: a few threads open the sessions, and the main
    // thread then holds them all.
    let workers = opts.clients.clamp(1, 16);
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (next, opts) = (next.clone(), opts.clone());
        handles.push(thread::spawn(move || -> Res<Vec<Control>> {
            let mut mine = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < opts.clients {
                let mut c = Control::open(&opts)?;
                c.login()?;
                mine.push(c);
            }
            Ok(mine)
        }));
    }
    let mut held = Vec::new();
    for h in handles {
        let mine = h
            .join()
            .map_err(|_| "client thread panicked".to_string())??;
        held.extend(mine);
    }
    println!("ready sessions={}", held.len());
    io::stdout().flush().map_err(|e| e.to_string())?;
    let mut sink = [0u8; 256];
    while io::stdin().read(&mut sink).map_err(|e| e.to_string())? > 0 {}
    drop(held);
    Ok(format!("mode=idle sessions={} closed", opts.clients))
}

/// Threads that log in (and later list with) the `many` sessions.
const MANY_WORKERS: usize = 16;
/// Most NOOPs the `many` bystander sends, whatever happens (a bound on its loop).
const MAX_NOOPS: usize = 100_000;

/// One listing on an open session of `many`: EPSV, NLST, the whole listing, 226; its lines.
fn nlst(c: &mut Control, path: &str, buf: &mut [u8]) -> Res<u64> {
    let mut data = c.epsv()?;
    c.cmd(&format!("NLST {path}"), &[125, 150])?;
    let mut lines = 0u64;
    loop {
        let n = data.read(buf).map_err(|e| format!("NLST data: {e}"))?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&x| x == b'\n').count() as u64;
    }
    drop(data);
    c.expect(&[226, 250], "end of NLST")?;
    Ok(lines)
}

/// The `many` bystander: logs in from 127.0.1.1, says so on `ready`, then times NOOPs
/// `noop_ms` apart, at least `noops` of them and on until `done`; returns the sorted times (ms).
fn bystander(opts: &Opts, ready: mpsc::Sender<Res<()>>, done: &AtomicBool) -> Res<Vec<f64>> {
    let session = Control::open_from(opts, Some(Ipv4Addr::new(127, 0, 1, 1))).and_then(|mut c| {
        c.login()?;
        Ok(c)
    });
    let mut c = match session {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            return Err(e);
        }
    };
    let mut times = Vec::new();
    while times.len() < MAX_NOOPS && (times.len() < opts.noops || !done.load(Ordering::Relaxed)) {
        let t = Instant::now();
        c.cmd("NOOP", &[200])?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        thread::sleep(Duration::from_millis(opts.noop_ms));
    }
    c.quit()?;
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn mode_many(opts: &Opts) -> Res<String> {
    let n = opts.clients;
    let sources = opts.sources.clamp(1, 250);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..MANY_WORKERS.min(n) {
        let (next, opts) = (next.clone(), opts.clone());
        handles.push(thread::spawn(move || -> Res<Vec<Control>> {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= opts.clients {
                    return Ok(mine);
                }
                let from = Ipv4Addr::new(127, 0, 0, 2 + (i as u32 % sources) as u8);
                let mut c = Control::open_from(&opts, Some(from))
                    .map_err(|e| format!("session {i}: {e}"))?;
                c.login().map_err(|e| format!("session {i}: {e}"))?;
                mine.push(c);
            }
        }));
    }
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(mine)) => groups.push(mine),
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("client thread panicked".into()),
        }
    }
    if let Some(e) = errors.first() {
        let held: usize = groups.iter().map(Vec::len).sum();
        return Err(format!(
            "{} login thread(s) failed with {held} sessions up, first: {e}",
            errors.len()
        ));
    }
    let login_secs = started.elapsed().as_secs_f64();
    println!("ready sessions={n} login_secs={login_secs:.3}");
    io::stdout().flush().map_err(|e| e.to_string())?;
    let mut go = String::new();
    if io::stdin().read_line(&mut go).map_err(|e| e.to_string())? == 0 {
        return Err("stdin closed before the go line".into());
    }

    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let by = {
        let (opts, done) = (opts.clone(), done.clone());
        thread::spawn(move || bystander(&opts, tx, &done))
    };
    let by_ready = rx
        .recv_timeout(opts.timeout * 3)
        .map_err(|_| "the bystander did not log in".to_string())?;
    if let Err(e) = by_ready {
        done.store(true, Ordering::Relaxed);
        return Err(format!("bystander: {e}"));
    }

    let path = opts.path.clone();
    let t = Instant::now();
    let listers: Vec<_> = groups
        .into_iter()
        .map(|mut group| {
            let path = path.clone();
            thread::spawn(move || -> (Vec<Control>, Res<Vec<u64>>) {
                let mut buf = vec![0u8; 64 * 1024];
                let mut lines = Vec::with_capacity(group.len());
                for c in &mut group {
                    match nlst(c, &path, &mut buf) {
                        Ok(l) => lines.push(l),
                        Err(e) => return (group, Err(e)),
                    }
                }
                (group, Ok(lines))
            })
        })
        .collect();
    let mut held = Vec::new();
    let mut lines = Vec::new();
    for h in listers {
        match h.join() {
            Ok((group, res)) => {
                held.push(group);
                match res {
                    Ok(l) => lines.extend(l),
                    Err(e) => errors.push(e),
                }
            }
            Err(_) => errors.push("lister thread panicked".into()),
        }
    }
    let list_secs = t.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let noops = by
        .join()
        .map_err(|_| "bystander thread panicked".to_string())?
        .map_err(|e| format!("bystander: {e}"))?;
    drop(held); // every session closes (no QUIT)
    if let Some(e) = errors.first() {
        return Err(format!("{} lister(s) failed, first: {e}", errors.len()));
    }
    let first = lines.first().copied().unwrap_or(0);
    if lines.len() != n || lines.iter().any(|&l| l != first) {
        return Err(format!(
            "{} listings, lines from {:?} to {:?}",
            lines.len(),
            lines.iter().min(),
            lines.iter().max()
        ));
    }
    Ok(format!(
        "mode=many sessions={n} sources={sources} login_secs={login_secs:.3} list_secs={list_secs:.3} \
         lines={first} noops={} noop_p50_ms={:.3} noop_p99_ms={:.3} noop_max_ms={:.3} client_cpu_s={:.2}",
        noops.len(),
        percentile(&noops, 50.0),
        percentile(&noops, 99.0),
        noops.last().copied().unwrap_or(f64::NAN),
        client_cpu_secs()
    ))
}

fn mode_ping(opts: &Opts) -> Res<String> {
    let mut c = Control::open(opts)?;
    c.login()?;
    c.quit()?;
    Ok("mode=ping ok".into())
}

/// `reap PIDFILE CMD [ARGS...]`: see the header. Returns CMD's exit status.
fn reap(args: &[String]) -> Res<i32> {
    let [pidfile, cmd, rest @ ..] = args else {
        return Err("usage: ftpload reap PIDFILE CMD [ARGS...]".into());
    };
    // SAFETY: plain prctl call with an integer argument.
    if unsafe { prctl(PR_SET_CHILD_SUBREAPER, 1 as std::ffi::c_ulong) } != 0 {
        return Err(format!("prctl: {}", io::Error::last_os_error()));
    }
    let child = std::process::Command::new(cmd)
        .args(rest)
        .spawn()
        .map_err(|e| format!("starting {cmd}: {e}"))?;
    let main_pid = child.id() as i32;
    std::fs::write(pidfile, format!("{main_pid}\n")).map_err(|e| format!("{pidfile}: {e}"))?;
    let mut main_status = 0;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into `status`.
        let pid = unsafe { waitpid(-1, &mut status, 0) };
        if pid < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(ECHILD) => break, // nobody left beneath us
                _ if e.kind() == io::ErrorKind::Interrupted => continue,
                _ => return Err(format!("waitpid: {e}")),
            }
        }
        if pid == main_pid {
            main_status = status;
        }
    }
    // WIFEXITED: low 7 bits zero, exit code in the next byte; else 128 + signal number.
    Ok(if main_status & 0x7f == 0 {
        (main_status >> 8) & 0xff
    } else {
        128 + (main_status & 0x7f)
    })
}

fn parse_args() -> Res<(String, Opts)> {
    let a = common::Args::parse(&["cmd", "reps", "bytes", "sources", "noops", "noop-ms"])?;
    let opts = Opts {
        base: a.base()?,
        cmd: a.text("cmd", "LIST"),
        reps: a.num("reps", 5)?.max(1) as usize,
        bytes: a.num("bytes", 1 << 20)?,
        sources: a.num("sources", 10)?.clamp(1, 250) as u32,
        noops: a.num("noops", 100)? as usize,
        noop_ms: a.num("noop-ms", 20)?,
    };
    Ok((a.mode, opts))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("reap") {
        match reap(&args[2..]) {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("ftpload reap: {e}");
                std::process::exit(1);
            }
        }
    }
    let result = parse_args().and_then(|(mode, opts)| match mode.as_str() {
        "ping" => mode_ping(&opts),
        "retr" => mode_retr(&opts),
        "stor" => mode_stor(&opts),
        "sessions" => mode_sessions(&opts),
        "list" => mode_list(&opts),
        "idle" => mode_idle(&opts),
        "many" => mode_many(&opts),
        other => Err(format!("unknown mode {other:?}")),
    });
    common::finish("ftpload", result)
}
