//! leanftpd: a single-threaded mio FTP server. `net` is the only module that touches
//! sockets; `session` is the sans-IO protocol core driven by bytes, events and a clock.
//! `sys` is the only module allowed `unsafe` code and raw libc calls; everything else is safe Rust.

#![deny(unsafe_code)]

pub mod auth;
pub mod command;
pub mod config;
pub mod fs;
pub mod listing;
pub mod net;
pub mod reply;
pub mod session;
#[allow(unsafe_code)]
pub mod sys;
pub mod transfer;
