//! Syslog: RFC 3164 lines, `<PRI>Mmm dd hh:mm:ss leanftpd[PID]: message`, to a unix socket
//! (/dev/log). That is the form glibc's and musl's syslog(3) send: no hostname (the daemon adds
//! its own), which BusyBox syslogd (it takes the 15-character timestamp when one is there) and
//! rsyslog's imuxsock both read. A datagram socket is what those daemons bind; a stream socket is
//! the fallback (syslog-ng's `unix-stream`), each line ended by a NUL as glibc does.
//!
//! Never blocking the loop: the socket is non-blocking, lines that do not fit wait in a small
//! queue (`SYSLOG_QUEUE_LINES`), and once that is full further lines are dropped and counted. When
//! the queue has drained, "syslog: N lines dropped" is sent before the next line. A daemon that is
//! gone (ECONNREFUSED after a restart, the socket missing) costs the same; the socket is connected
//! again at most once a second (`SYSLOG_RECONNECT_MS`), on the next line logged.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::log::{Level, LevelFilter, Log, Metadata, Record};
use mio::net::{UnixDatagram, UnixStream};

use super::MONTHS;
use crate::config::{SYSLOG_LINE_BYTES, SYSLOG_QUEUE_LINES, SYSLOG_RECONNECT_MS};
use crate::sys::{self, CivilTime};

/// Lines wait in the queue (or a count of dropped ones does): the loop wakes to retry.
static BACKLOG: AtomicBool = AtomicBool::new(false);

/// True while syslog lines wait for room in the socket: the loop then polls with a timeout of
/// `SYSLOG_RETRY_MS` and flushes the logger each turn, so that they go once the reader reads,
/// even when nothing else happens.
pub fn has_backlog() -> bool {
    BACKLOG.load(Ordering::Relaxed)
}

/// The syslog facility (RFC 3164 4.1.1): daemon (3), ftp (11), local0..local7 (16-23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    Daemon,
    Ftp,
    /// local0 to local7.
    Local(u8),
}

impl Facility {
    /// `--syslog-facility NAME`.
    pub fn parse(name: &str) -> Option<Facility> {
        match name {
            "daemon" => Some(Facility::Daemon),
            "ftp" => Some(Facility::Ftp),
            _ => match name.strip_prefix("local")?.as_bytes() {
                [digit @ b'0'..=b'7'] => Some(Facility::Local(digit - b'0')),
                _ => None,
            },
        }
    }

    fn code(self) -> u8 {
        match self {
            Facility::Daemon => 3,
            Facility::Ftp => 11,
            Facility::Local(n) => 16 + n,
        }
    }
}

/// RFC 3164 severities: error 3, warning 4, info 6, debug (and trace) 7.
fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One line as sent: `<PRI>Mmm dd hh:mm:ss leanftpd[PID]: message`. Control characters in the
/// message (a file name may carry a newline) become spaces, so one event is one line; the line
/// is cut at `SYSLOG_LINE_BYTES` (RFC 3164's 1024), on a character boundary.
pub fn format_line(
    facility: Facility,
    level: Level,
    time: &CivilTime,
    pid: u32,
    message: &str,
) -> Vec<u8> {
    let mut line = String::with_capacity(64 + message.len());
    let pri = facility.code() * 8 + severity(level);
    let month = MONTHS[usize::from(time.month.clamp(1, 12)) - 1];
    let _ = write!(
        line,
        "<{pri}>{month} {:>2} {:02}:{:02}:{:02} leanftpd[{pid}]: ",
        time.day, time.hour, time.minute, time.second
    );
    for c in message.chars() {
        if line.len() + c.len_utf8() > SYSLOG_LINE_BYTES {
            break;
        }
        line.push(if c.is_control() { ' ' } else { c });
    }
    line.into_bytes()
}

enum Socket {
    Datagram(UnixDatagram),
    /// `sent`: bytes of the queue's first line already written.
    Stream {
        stream: UnixStream,
        sent: usize,
    },
}

/// The syslog connection, its queue and its count of dropped lines.
pub struct Writer {
    path: PathBuf,
    facility: Facility,
    pid: u32,
    socket: Option<Socket>,
    last_connect: Instant,
    queue: VecDeque<Vec<u8>>,
    dropped: u64,
}

impl Writer {
    /// Connects to the socket at `path`: a datagram socket, or else a stream one.
    pub fn connect(path: PathBuf, facility: Facility, pid: u32) -> io::Result<Writer> {
        let socket = open(&path)?;
        let mut writer = Writer::disconnected(path, facility, pid);
        writer.socket = Some(socket);
        Ok(writer)
    }

    /// A writer whose socket is not there yet: lines wait, or are counted, until it is.
    pub fn disconnected(path: PathBuf, facility: Facility, pid: u32) -> Writer {
        Writer {
            path,
            facility,
            pid,
            socket: None,
            last_connect: Instant::now(),
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// The pid the lines carry: a worker of --workers, forked after the writer was made, has
    /// its own.
    fn pid(&self) -> u32 {
        if super::worker() == 0 {
            self.pid
        } else {
            std::process::id()
        }
    }

    /// Queues the line for `message` and sends what the socket takes now.
    pub fn log(&mut self, level: Level, message: &str) {
        let time = sys::local_time(unix_now());
        let line = format_line(self.facility, level, &time, self.pid(), message);
        self.send_queued();
        self.queue_drop_count();
        if self.queue.len() >= SYSLOG_QUEUE_LINES {
            self.dropped += 1;
            return;
        }
        self.queue.push_back(line);
        self.send_queued();
    }

    fn note_backlog(&self) {
        BACKLOG.store(
            !self.queue.is_empty() || self.dropped > 0,
            Ordering::Relaxed,
        );
    }

    /// Lines waiting in the queue, and lines dropped since the last count was sent.
    pub fn backlog(&self) -> (usize, u64) {
        (self.queue.len(), self.dropped)
    }

    /// Once the queue has room after drops, their count takes the next place in it: before any
    /// line logged later.
    fn queue_drop_count(&mut self) {
        if self.dropped == 0 || self.queue.len() >= SYSLOG_QUEUE_LINES {
            return;
        }
        let text = format!("syslog: {} lines dropped", self.dropped);
        let time = sys::local_time(unix_now());
        let line = format_line(self.facility, Level::Warn, &time, self.pid(), &text);
        self.queue.push_back(line);
        self.dropped = 0;
    }

    /// Sends queued lines until the socket would block; once there is room after drops, the
    /// count of dropped lines is queued next.
    pub fn send_queued(&mut self) {
        self.send();
        self.note_backlog();
    }

    fn send(&mut self) {
        if self.socket.is_none() {
            let retry = Duration::from_millis(SYSLOG_RECONNECT_MS);
            if self.last_connect.elapsed() < retry {
                return;
            }
            self.last_connect = Instant::now();
            match open(&self.path) {
                Ok(socket) => self.socket = Some(socket),
                Err(_) => return,
            }
        }
        loop {
            self.queue_drop_count();
            let Some(line) = self.queue.front() else {
                return;
            };
            let Some(socket) = self.socket.as_mut() else {
                return;
            };
            let result = match socket {
                Socket::Datagram(socket) => socket.send(line).map(|_| true),
                Socket::Stream { stream, sent } => write_framed(stream, line, sent),
            };
            match result {
                Ok(true) => {
                    self.queue.pop_front();
                }
                // Part of a stream line went out: the rest waits for room.
                Ok(false) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The daemon is gone (restarted, stopped): connect again later. A stream
                    // line sent in part goes again whole, the daemon never saw its end.
                    self.socket = None;
                    self.last_connect = Instant::now();
                    return;
                }
            }
        }
    }
}

/// Writes what is left of `line` and its NUL; true when all of it is out.
fn write_framed(stream: &mut UnixStream, line: &[u8], sent: &mut usize) -> io::Result<bool> {
    let mut framed = Vec::with_capacity(line.len() + 1);
    framed.extend_from_slice(line);
    framed.push(0);
    while *sent < framed.len() {
        match stream.write(&framed[*sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && *sent > 0 => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    *sent = 0;
    Ok(true)
}

/// A non-blocking connection to the socket at `path`: datagram first, stream when the socket
/// is of that kind (EPROTOTYPE). Neither connect can block: a unix datagram connect only names
/// the peer, and mio's stream connect is non-blocking.
fn open(path: &std::path::Path) -> io::Result<Socket> {
    let datagram = UnixDatagram::unbound()?;
    match datagram.connect(path) {
        Ok(()) => Ok(Socket::Datagram(datagram)),
        Err(e) if sys::is_errno(&e, libc::EPROTOTYPE) => Ok(Socket::Stream {
            stream: UnixStream::connect(path)?,
            sent: 0,
        }),
        Err(e) => Err(e),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The `log::Log` that writes to syslog. The loop is single-threaded; the mutex is only what
/// `Log: Sync` asks for and is never contended.
pub struct Syslog {
    writer: Mutex<Writer>,
    level: LevelFilter,
}

impl Syslog {
    pub fn new(writer: Writer, level: LevelFilter) -> Syslog {
        Syslog {
            writer: Mutex::new(writer),
            level,
        }
    }
}

impl Log for Syslog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        writer.log(record.level(), &message);
    }

    /// Sends what waits in the queue (the loop calls this once a turn while lines wait).
    fn flush(&self) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        writer.send_queued();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests::DEC_2;

    #[test]
    fn lines_carry_pri_timestamp_and_ident() {
        let line = |facility, level, message| {
            String::from_utf8(format_line(facility, level, &DEC_2, 42, message)).unwrap()
        };
        // daemon.info = 3*8+6; the day is space-padded to two columns, as RFC 3164 says.
        assert_eq!(
            line(Facility::Daemon, Level::Info, "listening on 127.0.0.1:21"),
            "<30>Dec  2 16:59:07 leanftpd[42]: listening on 127.0.0.1:21"
        );
        // PRI = facility * 8 + severity.
        for (facility, level, pri) in [
            (Facility::Local(0), Level::Info, 134),
            (Facility::Ftp, Level::Error, 91),
            (Facility::Local(7), Level::Warn, 188),
            (Facility::Daemon, Level::Debug, 31),
            (Facility::Daemon, Level::Trace, 31),
        ] {
            assert_eq!(
                line(facility, level, "x"),
                format!("<{pri}>Dec  2 16:59:07 leanftpd[42]: x")
            );
        }
        // One event, one line: a name with a newline cannot forge a second line.
        assert_eq!(
            line(Facility::Daemon, Level::Info, "RETR /a\nb\r\0c"),
            "<30>Dec  2 16:59:07 leanftpd[42]: RETR /a b  c"
        );
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let message = "é".repeat(SYSLOG_LINE_BYTES);
        let line = format_line(Facility::Daemon, Level::Info, &DEC_2, 1, &message);
        assert!(line.len() <= SYSLOG_LINE_BYTES && line.len() >= SYSLOG_LINE_BYTES - 1);
        assert!(String::from_utf8(line).is_ok());
    }

    #[test]
    fn facility_names() {
        assert_eq!(Facility::parse("daemon"), Some(Facility::Daemon));
        assert_eq!(Facility::parse("ftp"), Some(Facility::Ftp));
        assert_eq!(Facility::parse("local0"), Some(Facility::Local(0)));
        assert_eq!(Facility::parse("local7"), Some(Facility::Local(7)));
        for bad in ["local8", "local", "local00", "user", "DAEMON", ""] {
            assert_eq!(Facility::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_full_reader_costs_counted_drops_then_one_count_line() {
        let dir = std::env::temp_dir().join(format!("leanftpd-syslog-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let reader = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let mut writer = Writer::connect(path.clone(), Facility::Daemon, 7).unwrap();
        // Never read: the reader's queue fills, then ours, then lines are counted.
        let mut sent = 0;
        while writer.backlog().1 == 0 {
            writer.log(Level::Info, &format!("line {sent}"));
            sent += 1;
            assert!(sent < 100_000, "the socket never filled");
        }
        assert_eq!(writer.backlog().0, SYSLOG_QUEUE_LINES);
        writer.log(Level::Info, "one more");
        assert_eq!(writer.backlog().1, 2);
        // The reader drains: the queue goes, then the count, then the next line.
        reader.set_nonblocking(true).unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 2048];
        let mut drain = |received: &mut Vec<String>| {
            while let Ok(n) = reader.recv(&mut buf) {
                received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        };
        drain(&mut received);
        writer.log(Level::Info, "after");
        drain(&mut received);
        while writer.backlog().0 > 0 {
            writer.send_queued();
            drain(&mut received);
        }
        let tail: Vec<&str> = received[received.len() - 2..]
            .iter()
            .map(|l| l.split_once(": ").unwrap().1)
            .collect();
        assert_eq!(tail, ["syslog: 2 lines dropped", "after"]);
        assert!(received[0].starts_with("<30>"));
        // Every line but the two dropped, the count and "after".
        assert_eq!(received.len(), sent - 1 + 1 + 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
