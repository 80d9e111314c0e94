//! Test harness shared by every integration test: start the real `leanftpd` binary on
//! 127.0.0.1:0 (or wherever a test says) with its own temporary root, read the port from its
//! `listening on` log line, drive it with a small raw FTP client built on std sockets, and look
//! at the process through /proc. Everything is bounded by a timeout (a test fails, it never
//! hangs) and every process started here is killed and reaped on Drop.
//!
//! - `server`: [`Server`] (the binary under test and its log), [`run_bin`] / [`run_cmd`]
//!   (run a program to completion), [`hash_password`], [`Users`] (a users file and homes).
//! - `client`: [`Client`] (a raw control connection), [`Reply`], data connection [`Mode`]s.
//! - `net`: plain sockets: connect (from another loopback address too), accept, read until
//!   the peer closes, SO_LINGER / SO_SNDBUF.
//! - `fs`: [`TempDir`], directory snapshots, modification times, test data.
//! - `curl`: curl timing a transfer ([`curl_timed`], [`Run`]) and [`within`], for pacing.
//! - `proc`: /proc readers (descriptors, CPU time, status fields) and [`is_root`].
//! - `tls`: certificates made by openssl, and [`Ftps`], a TLS client (Python's ssl module)
//!   driven step by step.
//!
//! Each test binary compiles this module on its own and uses a subset of it.
#![allow(dead_code)]

mod client;
mod curl;
mod fs;
mod net;
mod proc;
mod server;
mod tls;

pub use client::*;
#[allow(unused_imports)]
pub use curl::*;
pub use fs::*;
pub use net::*;
pub use proc::*;
pub use server::*;
#[allow(unused_imports)]
pub use tls::*;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Socket read/write timeout of the raw client, and the bound of every wait in the harness.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server may take to log `listening on`.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

pub const BIN: &str = env!("CARGO_BIN_EXE_leanftpd");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A process-unique number: distinguishes temporary directories and port ranges of tests that
/// run in parallel in one test binary.
pub fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A range of `len` ports for `--pasv-ports`, different for each call in this process and
/// (through the pid) likely different from other test binaries; kept below the Linux ephemeral
/// range (32768+) so outgoing connections do not take them.
pub fn port_range(len: u16) -> (u16, u16) {
    let slots = 20_000 / len as usize;
    let slot = (std::process::id() as usize * 7 + unique()) % slots;
    let min = 10_000 + (slot * len as usize) as u16;
    (min, min + len - 1)
}

/// Polls `f` every 20 ms until it is true or `timeout` passes; returns the last value.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts a program is installed; clients tests fail (not skip) without it.
#[track_caller]
pub fn require(prog: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{prog}` is not installed: run .ci/run, which installs every client the tests use"
    );
}

/// Generates one test per data connection mode: `$name::pasv`, `::epsv`, `::port`, `::eprt`.
/// Use with `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! in_every_mode {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn pasv() {
                ($body)(crate::common::Mode::Pasv)
            }
            #[test]
            fn epsv() {
                ($body)(crate::common::Mode::Epsv)
            }
            #[test]
            fn port() {
                ($body)(crate::common::Mode::Port)
            }
            #[test]
            fn eprt() {
                ($body)(crate::common::Mode::Eprt)
            }
        }
    };
}
