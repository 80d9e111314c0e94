//! The checksum commands: HASH and OPTS HASH (draft-bryan-ftpext-hash-02), and the older XCRC,
//! XMD5, XSHA1, XSHA256, XSHA512 with their optional byte range. The session opens the file
//! through the jail (as RETR does) and hands it to the loop as a task (`Action::RunTask`); the
//! loop reads and hashes it a slice per turn and answers with `handle_task_done`. Meanwhile
//! commands wait as during a transfer (only ABOR, STAT, NOOP and QUIT run), and ABOR cancels
//! the checksum: 426 for it, then 226 for the ABOR (RFC 959's pattern for an aborted transfer).
//!
//! Replies: `213 SHA-256 0-1000 <hex> name` for HASH (the range is START-END with END exclusive,
//! so the whole file reads `0-<size>`, as ProFTPD mod_digest answers); `213 <hex>` for the
//! X-verbs; hex in lower case. Errors: 550 (no such file, not a plain file, no permission), 501
//! (a range past the end of the file; OPTS HASH with an unknown algorithm, as the draft says),
//! 451 (the file shrank while it was hashed). Ranges for HASH would need RANG
//! (draft-bryan-ftp-range), which also changes RETR and STOR: not implemented, so HASH always
//! hashes the whole file; the X-verbs take ranges.

use super::*;
use crate::proto::hash::{self, Algorithm};
use crate::transfer::{Checksum, ChecksumError, Task, TaskDone};

/// The checksum running for the session, and the reply it owes.
pub(super) struct RunningTask {
    /// HASH (`213 ALGO START-END HEX name`), or an X-verb (`213 HEX`).
    hash_reply: bool,
    /// The path as the client named it, for the HASH reply.
    name: Box<[u8]>,
}

impl Session {
    /// HASH path: the session's algorithm, the whole file.
    pub(super) fn hash(&mut self, arg: &[u8]) {
        self.start_checksum(arg, self.hash_algorithm, None, true);
    }

    /// XCRC, XMD5, XSHA1, XSHA256, XSHA512: their own algorithm, the file or `start..end` of it.
    pub(super) fn x_hash(&mut self, algorithm: Algorithm, arg: &[u8], range: Option<(u64, u64)>) {
        self.start_checksum(arg, algorithm, range, false);
    }

    fn start_checksum(
        &mut self,
        arg: &[u8],
        algorithm: Algorithm,
        range: Option<(u64, u64)>,
        hash_reply: bool,
    ) {
        let path = fs::resolve(&self.cwd, arg);
        // SECURITY: through the jail, like RETR: only what the user could download is hashed.
        let file = match self.jail().open_read(fs::jail_path(&path)) {
            Ok(file) => file,
            Err(e) => return self.reply_io_error(&e),
        };
        let size = match file.metadata() {
            Ok(meta) => meta.len(),
            Err(e) => return self.reply_io_error(&e),
        };
        let (start, end) = range.unwrap_or((0, size));
        if end > size {
            return self.reply(
                reply::BAD_ARGUMENT,
                &format!("The range ends past the end of the file ({size} bytes)."),
            );
        }
        debug!(
            "[#{}] {} of {} bytes {start}..{end}",
            self.id,
            algorithm.name(),
            String::from_utf8_lossy(&path)
        );
        self.task = Some(RunningTask {
            hash_reply,
            name: arg.into(),
        });
        let task = Task::Checksum(Checksum::new(file, algorithm, start, end));
        self.actions.push_back(Action::RunTask(Box::new(task)));
    }

    /// OPTS HASH [name]: the selected algorithm, or a new one (draft section 3.2).
    pub(super) fn opts_hash(&mut self, name: &[u8]) {
        if !name.is_empty() {
            match Algorithm::from_name(name) {
                Some(algorithm) => self.hash_algorithm = algorithm,
                None => {
                    return self.reply(
                        reply::BAD_ARGUMENT,
                        "Unknown algorithm, current selection not changed.",
                    )
                }
            }
        }
        self.reply(reply::OK, self.hash_algorithm.name());
    }

    /// The FEAT line, with the session's algorithm marked.
    pub(super) fn hash_feat_line(&self) -> String {
        hash::feat_line(self.hash_algorithm)
    }

    /// A transfer or a checksum runs: other commands wait for it.
    pub(super) fn is_busy(&self) -> bool {
        self.is_transferring() || self.task.is_some()
    }

    /// ABOR while a checksum runs: it is dropped; 426 for it, 226 for the ABOR.
    pub(super) fn abor_task(&mut self) {
        if self.task.take().is_some() {
            self.actions.push_back(Action::CancelTask);
            self.reply(reply::TRANSFER_ABORTED, "Checksum aborted.");
            self.reply(reply::TRANSFER_COMPLETE, "ABOR successful.");
        }
    }

    /// A task the session asked for with `RunTask` ended (`CancelTask` means it never does).
    pub fn handle_task_done(&mut self, result: Result<TaskDone, ChecksumError>, now: Instant) {
        if self.lifecycle != Lifecycle::Open {
            return;
        }
        let Some(running) = self.task.take() else {
            return;
        };
        self.last_activity = now;
        match result {
            Ok(TaskDone::Checksum(digest)) if running.hash_reply => {
                let mut text = format!(
                    "{} {}-{} {} ",
                    digest.algorithm.name(),
                    digest.start,
                    digest.end,
                    digest.hex
                )
                .into_bytes();
                text.extend_from_slice(&running.name);
                self.reply_bytes(reply::FILE_STATUS, &text);
            }
            Ok(TaskDone::Checksum(digest)) => self.reply(reply::FILE_STATUS, &digest.hex),
            Err(ChecksumError::Shrank { at }) => {
                warn!("[#{}] checksum: the file shrank to {at} bytes", self.id);
                self.reply(reply::LOCAL_ERROR, "The file shrank during the checksum.");
            }
            Err(ChecksumError::Disk(e)) => {
                warn!("[#{}] checksum failed on the file: {e}", self.id);
                self.reply_io_error(&e);
            }
        }
        // Commands that arrived during the checksum run now.
        self.run_commands(now);
    }
}
