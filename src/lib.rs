//! leanftpd: a single-threaded mio FTP server. `server` is the only module that touches
//! sockets; `session` is the sans-IO protocol core driven by bytes, events and a clock.

pub mod auth;
pub mod command;
pub mod config;
pub mod fs;
pub mod listing;
pub mod reply;
pub mod server;
pub mod session;
pub mod sys;
pub mod transfer;
