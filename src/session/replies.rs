//! How the session queues replies: every text goes through proto's one renderer (CR/LF made
//! harmless), and nothing is queued once the client has hung up.

use super::*;

impl Session {
    // ---- replies ------------------------------------------------------------------------

    pub(super) fn reply(&mut self, code: u16, text: &str) {
        self.reply_bytes(code, text.as_bytes());
    }

    /// A reply whose text may hold file names (raw bytes). CR and LF never reach the client
    /// inside a reply: a name cannot forge a reply line.
    pub(super) fn reply_bytes(&mut self, code: u16, text: &[u8]) {
        if !self.hung_up {
            reply::push(&mut self.output, code, text);
        }
    }

    pub(super) fn reply_multi(
        &mut self,
        code: u16,
        first: &str,
        body: &[impl AsRef<[u8]>],
        last: &str,
    ) {
        self.reply_multi_bytes(code, first.as_bytes(), body, last.as_bytes());
    }

    /// One inner line of a multi-line reply (escaped like every reply text).
    pub(super) fn reply_line(&mut self, line: &[u8]) {
        if !self.hung_up {
            reply::push_line(&mut self.output, line);
        }
    }

    pub(super) fn reply_multi_bytes(
        &mut self,
        code: u16,
        first: &[u8],
        body: &[impl AsRef<[u8]>],
        last: &[u8],
    ) {
        if !self.hung_up {
            reply::push_multi(&mut self.output, code, first, body, last);
        }
    }

    pub(super) fn reply_io_error(&mut self, err: &io::Error) {
        let (code, text) = reply::for_io_error(err);
        debug!("[#{}] {err} -> {code}", self.id);
        self.reply(code, text);
    }
}
