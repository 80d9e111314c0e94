//! What the two load clients of `scripts/bench` share: scripts/ftpload.rs (built with plain
//! rustc, std only) and scripts/ftpload-tls (a cargo package, for rustls) both take this file
//! as their module `common`. Std only: reply lines, EPSV, the `sessions` runner, percentiles,
//! the client's CPU, and `MODE HOST:PORT --option value` arguments.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub type Res<T> = Result<T, String>;

/// Longest reply line accepted, and most lines in one multi-line reply.
const MAX_LINE_BYTES: u64 = 8192;
const MAX_REPLY_LINES: usize = 10_000;

extern "C" {
    fn sysconf(name: i32) -> std::ffi::c_long;
}
/// Linux `_SC_CLK_TCK`.
const SC_CLK_TCK: i32 = 2;

/// CPU seconds (user + system, every thread) this process has used so far, from
/// /proc/self/stat, so that a report can show the load client was not the bottleneck.
pub fn client_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ") " that closes the command name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split(' ').map(|x| x.parse().unwrap_or(0.0)).collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { sysconf(SC_CLK_TCK) }.max(1) as f64;
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / hz
}

/// A TCP connection whose reads and writes time out after `timeout`.
pub fn connect(addr: SocketAddr, timeout: Duration) -> Res<TcpStream> {
    let s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// One reply line, through a bounded read.
pub fn read_line<R: BufRead>(r: &mut R) -> Res<String> {
    let mut line = String::new();
    let n = Read::take(&mut *r, MAX_LINE_BYTES)
        .read_line(&mut line)
        .map_err(|e| format!("reading reply: {e}"))?;
    if n == 0 {
        return Err("control connection closed by the server".into());
    }
    if !line.ends_with('\n') {
        return Err(format!(
            "reply line over {MAX_LINE_BYTES} bytes or cut: {line:?}"
        ));
    }
    Ok(line.trim_end().to_string())
}

/// One reply, single or multi-line (`123-...` up to `123 ...`): its code and first line.
pub fn read_reply<R: BufRead>(r: &mut R) -> Res<(u32, String)> {
    let first = read_line(r)?;
    let code: u32 = first
        .get(..3)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("malformed reply {first:?}"))?;
    if first.as_bytes().get(3) == Some(&b'-') {
        let end = format!("{code} ");
        for _ in 0..MAX_REPLY_LINES {
            if read_line(r)?.starts_with(&end) {
                return Ok((code, first));
            }
        }
        return Err(format!(
            "multi-line reply {code} longer than {MAX_REPLY_LINES} lines"
        ));
    }
    Ok((code, first))
}

/// `229 Entering Extended Passive Mode (|||port|)`: the delimiter is the character after `(`.
pub fn parse_epsv(text: &str) -> Option<u16> {
    let inner = &text[text.find('(')? + 1..];
    let delim = inner.chars().next()?;
    inner.split(delim).nth(3)?.parse().ok()
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The `sessions` mode: `clients` threads share `total` runs of `session` (given a 64 KiB
/// scratch buffer); returns the report line (sessions/s, p50/p99/max ms, client CPU).
pub fn run_sessions<F>(clients: usize, total: usize, session: F) -> Res<String>
where
    F: Fn(&mut [u8]) -> Res<()> + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let session = Arc::new(session);
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..clients {
        let (next, session) = (next.clone(), session.clone());
        handles.push(thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let (mut lat, mut errors) = (Vec::new(), Vec::new());
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t = Instant::now();
                match session(&mut buf) {
                    Ok(()) => lat.push(t.elapsed().as_secs_f64() * 1000.0),
                    Err(e) => errors.push(e),
                }
            }
            (lat, errors)
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), Vec::new());
    for h in handles {
        let (l, e) = h.join().map_err(|_| "client thread panicked".to_string())?;
        lat.extend(l);
        errors.extend(e);
    }
    let secs = start.elapsed().as_secs_f64();
    if !errors.is_empty() {
        return Err(format!(
            "{} of {total} sessions failed, first: {}",
            errors.len(),
            errors[0]
        ));
    }
    lat.sort_by(f64::total_cmp);
    Ok(format!(
        "mode=sessions clients={clients} sessions={} secs={secs:.4} rate={:.1} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} client_cpu_s={:.2}",
        lat.len(),
        lat.len() as f64 / secs,
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN),
        client_cpu_secs()
    ))
}

/// Prints a mode's report line and exits 0, or its error (prefixed with `prog`) and exits 1.
pub fn finish(prog: &str, result: Res<String>) -> ! {
    match result {
        Ok(line) => {
            println!("{line}");
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("{prog}: {e}");
            std::process::exit(1)
        }
    }
}

/// The options both clients take (a client's own options struct derefs to this).
#[derive(Clone)]
pub struct Base {
    pub addr: SocketAddr,
    pub user: String,
    pub pass: String,
    /// For every socket operation.
    pub timeout: Duration,
    pub path: String,
    pub clients: usize,
    pub total: usize,
    /// Bytes every RETR must deliver.
    pub expect: Option<u64>,
}

/// `MODE HOST:PORT [--option value ...]`: the Base options and the client's `extra` ones.
pub struct Args {
    pub mode: String,
    pub addr: SocketAddr,
    kv: HashMap<String, String>,
}

impl Args {
    pub fn parse(extra: &[&str]) -> Res<Args> {
        let base = [
            "user", "pass", "timeout", "path", "clients", "total", "expect",
        ];
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.len() < 2 || args.len() % 2 != 0 {
            return Err(
                "usage: MODE HOST:PORT [--option value ...] (see the source header)".into(),
            );
        }
        let addr = args[1]
            .to_socket_addrs()
            .map_err(|e| format!("address {:?}: {e}", args[1]))?
            .next()
            .ok_or_else(|| format!("address {:?} resolves to nothing", args[1]))?;
        let mut kv = HashMap::new();
        for pair in args[2..].chunks(2) {
            let key = pair[0]
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got {:?}", pair[0]))?;
            kv.insert(key.to_string(), pair[1].clone());
        }
        let known = |k: &str| base.contains(&k) || extra.contains(&k);
        if let Some(k) = kv.keys().find(|k| !known(k)) {
            return Err(format!("unknown option --{k}"));
        }
        Ok(Args {
            mode: args[0].clone(),
            addr,
            kv,
        })
    }

    pub fn text(&self, k: &str, default: &str) -> String {
        self.kv
            .get(k)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    pub fn num(&self, k: &str, default: u64) -> Res<u64> {
        self.kv.get(k).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("--{k}: not a number: {v:?}"))
        })
    }

    pub fn base(&self) -> Res<Base> {
        Ok(Base {
            addr: self.addr,
            user: self.text("user", "anonymous"),
            pass: self.text("pass", "bench@"),
            timeout: Duration::from_secs(self.num("timeout", 30)?.max(1)),
            path: self.text("path", "/"),
            clients: self.num("clients", 1)?.max(1) as usize,
            total: self.num("total", 100)? as usize,
            expect: self
                .kv
                .contains_key("expect")
                .then(|| self.num("expect", 0))
                .transpose()?,
        })
    }
}
