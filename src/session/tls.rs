//! FTPS as the session sees it (RFC 4217): AUTH, PBSZ, PROT and CCC, and the policy gates of
//! --tls-required. The session never touches TLS itself: it tells the loop to put the TLS layer
//! on (`Action::StartTls`), and learns from it that the layer is on (`handle_tls_started`) or
//! that a data connection did not resume its TLS session (`DataEvent::TlsNotResumed`).
//!
//! Read first: RFC 4217 sections 4 (AUTH), 8 (PBSZ, PROT), 9 (the reply codes), 10 (security),
//! and RFC 2228 for the reply codes 534 and 536.

use super::*;
use crate::config::TlsRequired;

/// How far this session is protected.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Protection {
    /// The control connection is under TLS (AUTH accepted, or an implicit TLS listener).
    pub(super) control: bool,
    /// AUTH was accepted and the loop has not put the TLS layer on yet: nothing is read
    /// meanwhile, since the next bytes are the client's handshake.
    pub(super) starting: bool,
    /// PBSZ came after AUTH (RFC 4217 8: PROT needs it first).
    pub(super) pbsz: bool,
    /// PROT P: data connections are TLS too.
    pub(super) private_data: bool,
}

impl Session {
    /// The connection came in on an implicit TLS listener: the control connection is
    /// protected from the start, and AUTH would be out of sequence.
    pub fn handle_implicit_tls(&mut self) {
        self.tls.control = true;
    }

    /// The loop has put the TLS layer on the control connection, as `Action::StartTls` asked:
    /// the client's commands come through it from now on.
    pub fn handle_tls_started(&mut self) {
        self.tls.starting = false;
    }

    /// True when this session's data connections are TLS (PROT P).
    pub fn protects_data(&self) -> bool {
        self.tls.private_data
    }

    fn tls_required(&self) -> TlsRequired {
        self.shared
            .config
            .tls
            .as_ref()
            .map_or(TlsRequired::No, |tls| tls.required)
    }

    /// RFC 4217 4: AUTH TLS (AUTH SSL and AUTH TLS-C are its old names, which curl and old
    /// clients send). Whatever the client sent after the AUTH line is dropped: those bytes came
    /// before the handshake, in the clear, and must not run as if they were protected (the
    /// STARTTLS command injection of CVE-2011-0411).
    pub(super) fn auth(&mut self, mechanism: &[u8]) {
        if self.shared.config.tls.is_none() {
            return self.reply(
                reply::NOT_IMPLEMENTED,
                "TLS is not configured on this server.",
            );
        }
        if self.tls.control {
            return self.reply(reply::BAD_SEQUENCE, "TLS is already on.");
        }
        let known = [b"TLS".as_slice(), b"TLS-C", b"SSL"];
        if !known
            .iter()
            .any(|name| mechanism.eq_ignore_ascii_case(name))
        {
            return self.reply(
                reply::PARAMETER_NOT_IMPLEMENTED,
                "Unknown mechanism: use AUTH TLS.",
            );
        }
        info!("[#{}] AUTH TLS from {}", self.id, self.peer.ip());
        if !matches!(self.login, Login::AwaitUser) {
            // RFC 2228 3: an accepted AUTH makes the user log in again; a USER (or a whole
            // login) that went in the clear does not carry over into the protected session.
            if !matches!(self.data, Data::None) {
                self.actions.push_back(Action::CloseData);
                self.set_data_state(Data::None);
            }
            self.set_login_state(Login::AwaitUser);
            self.cwd = b"/".to_vec();
        }
        self.reply(reply::AUTH_OK, "AUTH TLS successful.");
        // run_commands drops what was pipelined behind this line.
        self.tls = Protection {
            control: true,
            starting: true,
            ..Protection::default()
        };
        self.actions.push_back(Action::StartTls);
    }

    /// RFC 4217 8.1: PBSZ 0 (TLS does its own buffering; any other size is answered with 0).
    pub(super) fn pbsz(&mut self) {
        if !self.tls.control {
            return self.reply(reply::BAD_SEQUENCE, "PBSZ needs AUTH TLS first.");
        }
        self.tls.pbsz = true;
        self.reply(reply::OK, "PBSZ=0");
    }

    /// RFC 4217 8.2: PROT C (clear) or P (private); S and E are not TLS levels.
    pub(super) fn prot(&mut self, level: u8) {
        if !self.tls.pbsz {
            return self.reply(reply::BAD_SEQUENCE, "PROT needs PBSZ first.");
        }
        match level {
            b'P' => {
                self.tls.private_data = true;
                self.reply(reply::OK, "Data connections are protected (PROT P).");
            }
            b'C' if self.tls_required() == TlsRequired::All => self.reply(
                reply::POLICY_DENIED,
                "Data connections must be protected here: use PROT P.",
            ),
            b'C' => {
                self.tls.private_data = false;
                self.reply(reply::OK, "Data connections are in the clear (PROT C).");
            }
            b'S' | b'E' => self.reply(
                reply::PROTECTION_NOT_SUPPORTED,
                "Only PROT C and PROT P are supported.",
            ),
            _ => self.reply(
                reply::PARAMETER_NOT_IMPLEMENTED,
                "Unknown protection level: use PROT P.",
            ),
        }
    }

    /// RFC 4217 12.3: CCC would send the rest of the session in the clear; refused.
    pub(super) fn ccc(&mut self) {
        self.reply(
            reply::POLICY_DENIED,
            "CCC refused: the control connection stays protected.",
        );
    }

    /// The --tls-required gate of USER: true (and 530 sent) when this login must wait for
    /// AUTH TLS. `login` spares anonymous users; `all` spares nobody.
    pub(super) fn login_needs_tls(&mut self, anonymous: bool) -> bool {
        let needed = match self.tls_required() {
            TlsRequired::No => false,
            TlsRequired::Login => !anonymous,
            TlsRequired::All => true,
        };
        if needed && !self.tls.control {
            // RFC 959: a new USER replaces an earlier one, refused or not.
            self.set_login_state(Login::AwaitUser);
            self.reply(
                reply::NOT_LOGGED_IN,
                "This server requires AUTH TLS before USER.",
            );
            return true;
        }
        false
    }

    /// The --tls-required all gate of transfers: true (and 521 sent) while data would go in
    /// the clear.
    pub(super) fn data_needs_tls(&mut self) -> bool {
        if self.tls_required() == TlsRequired::All && !self.tls.private_data {
            self.reply(
                reply::DATA_PROTECTION_REQUIRED,
                "Data connections must be protected: send PBSZ 0 and PROT P first.",
            );
            return true;
        }
        false
    }
}

/// The reply to a transfer whose data connection did not resume the control connection's TLS
/// session (RFC 4217 10.2: it may not come from the client at all).
pub(super) const TLS_NOT_RESUMED: &str =
    "The data connection must resume the control connection's TLS session (--tls-session-reuse).";
