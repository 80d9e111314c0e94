//! Who may start a session: --max-clients and --max-per-ip, counted over every session of the
//! server, and who may log in: the sessions of each users-file account (max_sessions). One process counts in its loop; under --workers the supervisor counts for all the
//! workers (each session is admitted here before a worker gets it, and released when the
//! worker says it ended or died), so the limits stay exact whichever worker serves.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use log::info;

use crate::config::Config;
use crate::reply;

/// Tells a connection that may not start why (421), and drops it.
pub(super) fn refuse(stream: &mut impl Write, peer: SocketAddr, text: &str) {
    info!("refused {peer}: 421 {text}");
    // Best effort on a fresh socket: its send buffer is empty, so this does not block.
    let _ = stream.write(&reply::render(reply::SERVICE_NOT_AVAILABLE, text));
}

/// The sessions open, in all and by client address.
#[derive(Debug, Default)]
pub(super) struct SessionCounts {
    pub(super) sessions: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl SessionCounts {
    /// The text of the 421 for a new session from `ip`, or None when it may start.
    pub(super) fn refusal(&self, config: &Config, ip: IpAddr) -> Option<&'static str> {
        if self.sessions >= config.max_clients {
            Some("Too many users, try again later.")
        } else if self.per_ip.get(&ip).copied().unwrap_or(0) >= config.max_per_ip {
            Some("Too many connections from your address.")
        } else {
            None
        }
    }

    pub(super) fn add(&mut self, ip: IpAddr) {
        self.sessions += 1;
        *self.per_ip.entry(ip).or_insert(0) += 1;
    }

    pub(super) fn remove(&mut self, ip: IpAddr) {
        self.sessions -= 1;
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Logged-in sessions of each users-file account, from any address (max_sessions,
/// --max-sessions-per-user).
#[derive(Debug, Default)]
pub(super) struct UserCounts {
    per_user: HashMap<Box<str>, usize>,
}

impl UserCounts {
    /// Counts one more session of `name` unless it has `limit` already (then Err(limit));
    /// gives the name back to be held until `release`.
    pub(super) fn admit(
        &mut self,
        name: Box<str>,
        limit: Option<usize>,
    ) -> Result<Box<str>, usize> {
        let count = self.per_user.get(&name).copied().unwrap_or(0);
        if let Some(limit) = limit.filter(|&limit| count >= limit) {
            return Err(limit);
        }
        *self.per_user.entry(name.clone()).or_insert(0) += 1;
        Ok(name)
    }

    pub(super) fn release(&mut self, name: &str) {
        if let Some(count) = self.per_user.get_mut(name) {
            *count -= 1;
            if *count == 0 {
                self.per_user.remove(name);
            }
        }
    }
}
