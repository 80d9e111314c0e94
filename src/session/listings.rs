//! LIST, NLST, MLSD (on the data connection), MLST and STAT (on the control connection, STAT
//! streamed as it drains). RFC 959, RFC 3659 section 7.

use super::*;

impl Session {
    // ---- listings -----------------------------------------------------------------------

    pub(super) fn list(&mut self, arg: &[u8], format: ListFormat, verb: &'static str) {
        if !self.has_data_connection() {
            return;
        }
        let path = fs::resolve(&self.cwd, arg);
        let jail = self.jail();
        let jail_path = fs::jail_path(&path).to_vec();
        let source = match jail.stat(&jail_path) {
            Ok(stat) if stat.kind == FileKind::Dir => match jail.read_dir(&jail_path) {
                Ok(dir) => ListSource::Dir(dir),
                Err(e) => return self.reply_io_error(&e),
            },
            // RFC 3659 7.2: MLSD names a directory.
            Ok(_) if verb == "MLSD" => return self.reply(reply::BAD_ARGUMENT, "Not a directory."),
            Ok(_) => {
                let stat = jail
                    .lstat(&jail_path)
                    .unwrap_or_else(|_| stat_placeholder());
                let link_target = (stat.kind == FileKind::Symlink)
                    .then(|| jail.read_link(&jail_path).ok())
                    .flatten();
                // LIST of a file shows the file as the client named it, as ls does.
                ListSource::Single {
                    name: arg.to_vec(),
                    stat,
                    link_target,
                }
            }
            Err(e) => return self.reply_io_error(&e),
        };
        let job = Job::List(ListSender::new(
            source,
            format,
            jail,
            jail_path,
            self.writable(),
            self.shared.unix_time(),
        ));
        self.start_transfer(job, verb, &path, None, "Here comes the directory listing.");
    }

    pub(super) fn mlst(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().stat(fs::jail_path(&path)) {
            Ok(stat) => {
                let mut body = vec![b' '];
                listing::push_facts_line(&mut body, &path, &stat, self.facts, self.writable());
                // push_facts_line ends with CRLF; reply_multi adds its own.
                body.truncate(body.len().saturating_sub(2));
                let mut text = b"Listing ".to_vec();
                text.extend_from_slice(&path);
                self.reply_multi_bytes(reply::FILE_ACTION_OK, &text, &[&body], b"End.");
            }
            Err(e) => self.reply_io_error(&e),
        }
    }

    /// STAT: server status without an argument; with one, a listing over the control
    /// connection. A directory's lines are made as the connection drains (`refill_stat`), so a
    /// big directory never sits in memory whole, and commands after it wait their turn.
    pub(super) fn stat(&mut self, arg: &[u8]) {
        if arg.is_empty() {
            return self.server_status();
        }
        let path = fs::resolve(&self.cwd, listing::strip_ls_options(arg));
        let jail = self.jail();
        let jail_path = fs::jail_path(&path);
        let listing = match jail.lstat(jail_path) {
            Ok(stat) if stat.kind == FileKind::Dir => match jail.read_dir(jail_path) {
                Ok(dir) => Some(dir),
                Err(e) => return self.reply_io_error(&e),
            },
            Ok(stat) => {
                let link_target = (stat.kind == FileKind::Symlink)
                    .then(|| jail.read_link(jail_path).ok())
                    .flatten();
                let line = self.stat_line(&path, &stat, link_target.as_deref());
                self.stat_first_line(&path);
                self.reply_line(&line);
                self.reply(reply::FILE_STATUS, "End of status.");
                None
            }
            Err(e) => return self.reply_io_error(&e),
        };
        if let Some(dir) = listing {
            self.stat_first_line(&path);
            self.stat_listing = Some(Box::new(StatListing {
                dir,
                taken: 0,
                listed: 0,
            }));
            self.refill_stat();
        }
    }

    pub(super) fn stat_first_line(&mut self, path: &[u8]) {
        let mut first = b"Status of ".to_vec();
        first.extend_from_slice(path);
        first.push(b':');
        if !self.hung_up {
            reply::push_first(&mut self.output, reply::FILE_STATUS, &first);
        }
    }

    /// One `ls -l` line of a STAT listing, built alone so that it is escaped alone: a name with
    /// CR or LF cannot forge a reply.
    pub(super) fn stat_line(
        &self,
        name: &[u8],
        stat: &fs::Stat,
        link_target: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut line = vec![b' '];
        listing::push_list_line(&mut line, name, stat, link_target, self.shared.unix_time());
        line.truncate(line.len().saturating_sub(2));
        line
    }

    /// Adds lines of the running STAT listing until STAT_REFILL_BYTES are pending; ends the
    /// reply when the directory (or MAX_STAT_ENTRIES) is done.
    pub(super) fn refill_stat(&mut self) {
        let Some(mut stat) = self.stat_listing.take() else {
            return;
        };
        while self.output.len() < STAT_REFILL_BYTES {
            if stat.taken == MAX_STAT_ENTRIES {
                break;
            }
            let Some(entry) = stat.dir.next() else {
                break;
            };
            stat.taken += 1;
            // An entry that cannot be read is left out, as ls does.
            if let Ok(entry) = entry {
                let line = self.stat_line(&entry.name, &entry.stat, entry.link_target.as_deref());
                self.reply_line(&line);
                stat.listed += 1;
            }
        }
        if self.output.len() < STAT_REFILL_BYTES {
            self.end_stat_listing(stat.listed);
        } else {
            self.stat_listing = Some(stat);
        }
    }

    pub(super) fn end_stat_listing(&mut self, listed: usize) {
        if listed == MAX_STAT_ENTRIES {
            let note = format!(" (stopped after {MAX_STAT_ENTRIES} entries: use LIST)");
            self.reply_line(note.as_bytes());
        }
        self.reply(reply::FILE_STATUS, "End of status.");
    }

    pub(super) fn server_status(&mut self) {
        let user = self
            .user_ref()
            .map(|u| u.account.name.clone())
            .unwrap_or_else(|| "nobody".into());
        let kind = match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        };
        let transfer = match &self.data {
            Data::Transferring(running) => format!(
                " {} {} in progress: {} bytes moved",
                running.verb,
                String::from_utf8_lossy(&running.path),
                running.bytes
            ),
            _ => " No data connection".to_string(),
        };
        let lines = [
            format!(" Connected from {}", self.peer.ip()),
            format!(" Logged in as {user}"),
            format!(" TYPE: {kind}, STRUcture: File, MODE: Stream"),
            transfer,
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        self.reply_multi(
            reply::SYSTEM_STATUS,
            "leanftpd status:",
            &lines,
            "End of status.",
        );
    }
}

/// Used only if a file vanishes between two stats of one LIST.
fn stat_placeholder() -> fs::Stat {
    fs::Stat {
        kind: FileKind::File,
        mode: 0,
        nlink: 1,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 0,
    }
}
