//! The data connection as the session knows it: PASV/EPSV (RFC 959, RFC 2428), PORT/EPRT with
//! the bounce guard (RFC 2577), the transfer's start and end, ABOR.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::*;

impl Session {
    // ---- data connection set-up ---------------------------------------------------------

    pub(super) fn pasv(&mut self) {
        if self.epsv_all {
            return self.reply(reply::BAD_SEQUENCE, "EPSV ALL in effect: use EPSV.");
        }
        if self.local.is_ipv6() {
            // A permanent refusal (RFC 2428), not 425: trying PASV again cannot help.
            return self.reply_wrong_family("EPSV");
        }
        self.open_passive(false);
    }

    pub(super) fn epsv(&mut self, arg: EpsvArg) {
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                self.reply(reply::OK, "EPSV ALL ok.");
            }
            EpsvArg::Protocol(1) if self.local.is_ipv4() => self.open_passive(true),
            EpsvArg::Protocol(2) if self.local.is_ipv6() => self.open_passive(true),
            EpsvArg::Protocol(_) => {
                let supported = if self.local.is_ipv4() { "(1)" } else { "(2)" };
                self.reply(
                    reply::BAD_NETWORK_PROTOCOL,
                    &format!("Network protocol not supported, use {supported}"),
                )
            }
            EpsvArg::Any => self.open_passive(true),
        }
    }

    pub(super) fn open_passive(&mut self, extended: bool) {
        if self.is_transferring() {
            return self.reply(reply::CANT_OPEN_DATA, "A transfer is running.");
        }
        self.set_data_state(Data::Opening { extended });
        self.actions.push_back(Action::OpenPassive);
    }

    pub(super) fn port(&mut self, addr: SocketAddr) {
        if self.epsv_all {
            return self.reply(reply::BAD_SEQUENCE, "EPSV ALL in effect: use EPSV.");
        }
        let addr = canonical(addr);
        if addr.is_ipv4() != self.peer.is_ipv4() {
            // An IPv4 address on an IPv6 session (or the other way round) is the wrong network
            // protocol (RFC 2428 522), not a bounce attempt.
            return self.reply_wrong_family("EPRT");
        }
        // SECURITY: RFC 2577 bounce protection: data goes only back to the client itself,
        // and never to a privileged port.
        if addr.ip() != self.peer.ip() || addr.port() < 1024 {
            warn!(
                "[#{}] refused PORT/EPRT to {addr} (client is {})",
                self.id,
                self.peer.ip()
            );
            return self.reply(
                reply::PARAMETER_NOT_IMPLEMENTED,
                "Data connections go only to the client, port 1024 or above.",
            );
        }
        if self.is_transferring() {
            return self.reply(reply::CANT_OPEN_DATA, "A transfer is running.");
        }
        self.actions.push_back(Action::CloseData);
        self.set_data_state(Data::Active(addr));
        self.reply(reply::OK, "PORT command successful. Consider using EPSV.");
    }

    /// 522 with the session's network protocol, as RFC 2428 words it for EPRT.
    fn reply_wrong_family(&mut self, verb: &str) {
        let family = if self.peer.is_ipv4() { 1 } else { 2 };
        let text = format!("Network protocol not supported, use ({family}) with {verb}.");
        self.reply(reply::BAD_NETWORK_PROTOCOL, &text);
    }

    pub(super) fn set_data_state(&mut self, data: Data) {
        debug!(
            "[#{}] data: {} => {}",
            self.id,
            data_name(&self.data),
            data_name(&data)
        );
        self.data = data;
    }

    pub(super) fn is_transferring(&self) -> bool {
        matches!(self.data, Data::Transferring(_))
    }

    /// Hands `job` to the server on the prepared data connection and sends the 150.
    pub(super) fn start_transfer(
        &mut self,
        job: Job,
        verb: &'static str,
        path: &[u8],
        unique_name: Option<Box<[u8]>>,
        text: &str,
    ) {
        let (connect_to, connected) = match self.data {
            Data::Active(addr) => (Some(addr), false),
            Data::Passive { connected, .. } => (None, connected),
            _ => unreachable!("callers check has_data_connection first"),
        };
        self.set_data_state(Data::Transferring(Box::new(Running {
            verb,
            direction: job.direction(),
            ascii: self.transfer_type == TransferType::Ascii,
            started: self.last_activity,
            started_unix: self.shared.unix_time(),
            path: path.into(),
            connected,
            bytes: 0,
            unique_name,
            temp: None,
            // The connection (a PORT connect, or the client's passive connect) must come in time.
            deadline: self.last_activity + self.shared.config.data_timeout,
        })));
        self.actions.push_back(Action::Transfer {
            job: Box::new(job),
            connect_to,
        });
        self.reply(reply::OPENING_DATA, text);
    }

    /// PASV/EPSV or PORT/EPRT came first (RFC 959: else 425).
    /// Under --tls-required all, PROT P came too (else 521).
    pub(super) fn has_data_connection(&mut self) -> bool {
        if self.data_needs_tls() {
            return false;
        }
        match self.data {
            Data::Passive { .. } | Data::Active(_) => return true,
            Data::Refused => {
                self.set_data_state(Data::None);
                self.reply(reply::BAD_NETWORK_PROTOCOL, super::tls::TLS_NOT_RESUMED);
            }
            _ => self.reply(reply::CANT_OPEN_DATA, "Use PORT, EPRT, PASV or EPSV first."),
        }
        false
    }

    /// The running transfer ended with `code`: its reply, then (for a draining session) the
    /// farewell and the end, else the commands that waited for it.
    pub(super) fn end_transfer(&mut self, now: Instant, code: u16, text: &str) {
        let Data::Transferring(mut running) = std::mem::replace(&mut self.data, Data::None) else {
            return;
        };
        debug!("[#{}] data: transferring => none", self.id);
        let (code, text) = match running.temp.take() {
            // --atomic-uploads: the upload lands only now, in one rename.
            Some(temp) if code == reply::TRANSFER_COMPLETE => match temp.commit() {
                Ok(()) => (code, text),
                Err(e) => {
                    warn!("[#{}] cannot rename the upload into place: {e}", self.id);
                    reply::for_io_error(&e)
                }
            },
            // Any other end: dropping it removes the temporary file; the old file stands.
            _ => (code, text),
        };
        let record = TransferRecord {
            session: self.id,
            user: self
                .user_ref()
                .map_or("".into(), |user| user.account.name.as_str().into()),
            anonymous: self.is_anonymous(),
            peer: self.peer.ip(),
            verb: running.verb,
            path: running.path.clone(),
            disk_path: match (running.direction, self.user_ref()) {
                (Direction::Upload, Some(user)) => {
                    let jail_path = OsStr::from_bytes(fs::jail_path(&running.path));
                    Some(user.account.home.join(jail_path))
                }
                _ => None,
            },
            direction: running.direction,
            ascii: running.ascii,
            bytes: running.bytes,
            started_unix: running.started_unix,
            elapsed: now.saturating_duration_since(running.started),
            code,
        };
        self.records.push_back(record);
        self.last_activity = now;
        match (&running.unique_name, code) {
            (Some(name), reply::TRANSFER_COMPLETE) => {
                let mut text = b"Transfer complete (unique file name: ".to_vec();
                text.extend_from_slice(name);
                text.extend_from_slice(b").");
                self.reply_bytes(code, &text);
            }
            _ => self.reply(code, text),
        }
        if let Lifecycle::Draining { farewell, .. } = self.lifecycle {
            match farewell {
                Farewell::Silent => {}
                Farewell::Goodbye => self.reply(reply::GOODBYE, "Goodbye."),
                Farewell::ShuttingDown => {
                    self.reply(reply::SERVICE_NOT_AVAILABLE, "Server shutting down.")
                }
            }
            return self.finish();
        }
        // Commands that arrived during the transfer run now.
        self.run_commands(now);
    }

    pub(super) fn abor(&mut self, now: Instant) {
        if self.task.is_some() {
            // A checksum, not a transfer (they never run together).
            return self.abor_task();
        }
        match self.data {
            Data::Transferring(_) => {
                // RFC 959 ABOR: 426 for the aborted transfer, then 226 for the ABOR itself.
                self.actions.push_back(Action::CloseData);
                self.end_transfer(now, reply::TRANSFER_ABORTED, "Transfer aborted.");
                self.reply(reply::TRANSFER_COMPLETE, "ABOR successful.");
            }
            // RFC 959: the command already completed: 226.
            Data::None => self.reply(reply::TRANSFER_COMPLETE, "No transfer to abort."),
            _ => {
                self.actions.push_back(Action::CloseData);
                self.set_data_state(Data::None);
                self.reply(
                    reply::ABORT_OK,
                    "No transfer to abort; data connection closed.",
                );
            }
        }
    }
}

fn data_name(data: &Data) -> &'static str {
    match data {
        Data::None => "none",
        Data::Opening { .. } => "opening",
        Data::Passive { .. } => "passive",
        Data::Active(_) => "active",
        Data::Transferring(_) => "transferring",
        Data::Refused => "refused",
    }
}
