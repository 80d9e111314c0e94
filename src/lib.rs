//! leanftpd: a single-threaded mio FTP server. `net` is the only module that touches
//! sockets; `session` is the sans-IO protocol core driven by bytes, events and a clock.
//! `sys` is the only module allowed `unsafe` code and raw libc calls; everything else is safe Rust.

#![deny(unsafe_code)]

pub mod auth;
pub mod config;
pub mod confine;
pub mod fs;
pub mod log;
pub mod net;
pub mod proto;
pub mod session;
#[allow(unsafe_code)]
pub mod sys;
pub mod transfer;

// The protocol modules keep their old paths (`crate::command`, ...) for the layers above.
pub use proto::{command, listing, reply};
