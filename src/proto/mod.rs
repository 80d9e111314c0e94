//! The protocol layer, pure: bytes in, values out, no sockets, no clock, no file system calls.
//! Framing the control connection into lines, parsing a line into a `Command`, the verb table,
//! rendering replies, RFC 3659 times and listing lines. Everything here is a function of its
//! arguments, so it is tested with byte strings alone (and fuzzed: `scripts/fuzz`).
//!
//! Must not touch: sockets (`net`), the clock (`now` is a parameter), the jail (`fs`: listings
//! get a `Stat` handed in), session state. Read RFC 959 sections 4 and 5, RFC 1123 4.1,
//! RFC 2389, RFC 2428, RFC 3659, RFC 854 (Telnet, for the framer).

pub mod command;
pub mod framer;
pub mod hash;
pub mod listing;
pub mod reply;
pub mod time;
pub mod verb;
