//! The command loop and dispatch: framing, the pre-login whitelist, the login gate (530), the
//! permission gate (550), then the verb's handler; and the commands too small for a file of their
//! own (FEAT, OPTS, HELP, TYPE, REST). RFC 959 sections 4 and 5.4, RFC 2389.

use super::*;

impl Session {
    // ---- command loop -------------------------------------------------------------------

    /// Runs the complete lines waiting in the framer. During a transfer (or a checksum) only
    /// ABOR, STAT, NOOP and QUIT run (RFC 959 4.1.3); any other command waits until it ends.
    pub(super) fn run_commands(&mut self, now: Instant) {
        let mut framer = std::mem::take(&mut self.framer);
        while self.lifecycle == Lifecycle::Open
            && self.login_delay.is_none()
            && !matches!(self.login, Login::Admitting(_))
            && self.stat_listing.is_none()
            && self.output.len() < MAX_OUTPUT_BACKLOG_BYTES
        {
            let line = match framer.peek_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(command::LineTooLong) => {
                    self.reply(reply::SYNTAX_ERROR, "Command line too long.");
                    self.close();
                    break;
                }
            };
            if is_foreign_protocol(line) {
                // SECURITY: an HTTP request (a browser, a proxy probe, a cross-protocol attack)
                // sent to the FTP port gets nothing back: the session is closed at once.
                warn!(
                    "[#{}] HTTP request from {}: closing",
                    self.id,
                    self.peer.ip()
                );
                self.close();
                break;
            }
            let parsed = command::parse(line);
            // A command pipelined behind PASV/EPSV waits for the listener (and its 227/229).
            if matches!(self.data, Data::Opening { .. }) {
                break;
            }
            if self.is_busy()
                && !matches!(
                    parsed,
                    Ok(Command::Abor | Command::Stat(b"") | Command::Noop | Command::Quit)
                )
            {
                break;
            }
            // Every command line is activity, NOOP included: FileZilla, WinSCP and scripts send
            // NOOPs precisely to keep an idle session (as vsftpd, ProFTPD and pyftpdlib count
            // them). Slots stay bounded by --max-clients, --max-per-ip and the login timeout.
            self.last_activity = now;
            match parsed {
                Ok(cmd) => {
                    self.log_command(&cmd);
                    self.dispatch(cmd, now);
                }
                Err(e) => self.reply_parse_error(e, line),
            }
            if self.tls.starting {
                // AUTH TLS: SECURITY: what was pipelined behind it came in the clear, before
                // the handshake; it is dropped, never run (STARTTLS command injection).
                framer = LineFramer::default();
                break;
            }
            framer.consume_line();
        }
        self.framer = framer;
    }

    pub(super) fn log_command(&self, cmd: &Command) {
        if log::log_enabled!(log::Level::Debug) {
            match cmd {
                // SECURITY: passwords never reach the log.
                Command::Pass(_) => debug!("[#{}] <- PASS ****", self.id),
                other => debug!("[#{}] <- {:?}", self.id, other),
            }
        }
    }

    pub(super) fn reply_parse_error(&mut self, error: command::ParseError, line: &[u8]) {
        let text = match error {
            command::ParseError::Unknown => "Unknown command.",
            command::ParseError::NotImplemented => "Command not implemented.",
            command::ParseError::Syntax => "Syntax error in parameters or arguments.",
            command::ParseError::Unsupported => "Command not implemented for that parameter.",
            command::ParseError::UnsupportedProtocol => "Network protocol not supported, use (1,2)",
        };
        debug!(
            "[#{}] bad command {:?}: {text}",
            self.id,
            String::from_utf8_lossy(&line[..line.len().min(64)])
        );
        self.reply(error.code(), text);
    }

    /// One command. QUIT always; then the login gate (530 for a verb the table does not mark
    /// `before_login`); then what may run before login; then the permission gate (writes by
    /// read-only users: 550); then the verb's handler.
    pub(super) fn dispatch(&mut self, cmd: Command, now: Instant) {
        let verb = cmd.verb();
        match cmd {
            // RFC 959: QUIT ends the session (after a running transfer, in spirit; we close now).
            Command::Quit => self.quit(),
            // SECURITY: the login gate: before a successful PASS only the verb table's
            // `before_login` rows run (USER, PASS, FEAT, OPTS, SYST, NOOP, HELP, QUIT).
            _ if !verb.before_login && !matches!(self.login, Login::LoggedIn(_)) => {
                self.reply(reply::NOT_LOGGED_IN, "Please login with USER and PASS.")
            }
            Command::User(name) => self.user(name),
            Command::Pass(password) => self.pass(password, now),
            Command::Feat => self.feat(),
            Command::Opts(arg) => self.opts(arg),
            Command::Syst => self.reply(reply::SYSTEM_TYPE, "UNIX Type: L8"),
            Command::Noop => self.reply(reply::OK, "NOOP ok."),
            Command::Help(_) => self.help(),
            Command::Clnt(name) => self.clnt(name),
            Command::Auth(mechanism) => self.auth(mechanism),
            Command::Pbsz => self.pbsz(),
            Command::Prot(level) => self.prot(level),
            Command::Ccc => self.ccc(),
            // SECURITY: the permission gate: read-only users may not change anything.
            cmd if is_write(&cmd) && !self.writable() => {
                self.reply(reply::FILE_UNAVAILABLE, "Permission denied.")
            }
            cmd => self.dispatch_logged_in(cmd, now),
        }
    }

    pub(super) fn dispatch_logged_in(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Acct => self.reply(reply::NOT_NEEDED, "ACCT not needed."),
            Command::Allo => self.reply(reply::NOT_NEEDED, "ALLO not needed."),
            Command::Type(kind) => self.type_(kind),
            Command::Mode => self.reply(reply::OK, "Mode set to S."),
            Command::Stru => self.reply(reply::OK, "Structure set to F."),
            Command::Pwd => self.pwd(),
            Command::Cwd(path) => self.cwd(path),
            Command::Cdup => self.cwd(b".."),
            Command::Pasv => self.pasv(),
            Command::Epsv(arg) => self.epsv(arg),
            Command::Port(addr) => self.port(SocketAddr::V4(addr)),
            Command::Eprt(addr) => self.port(addr),
            Command::Retr(path) => self.retr(path),
            Command::Stor(path) => self.stor(path, "STOR"),
            Command::Appe(path) => self.stor(path, "APPE"),
            Command::Stou(hint) => self.stou(hint),
            Command::Rest(offset) => self.rest(offset),
            Command::Rnfr(path) => self.rnfr(path),
            Command::Rnto(path) => self.rnto(path),
            Command::Abor => self.abor(now),
            Command::Dele(path) => self.dele(path),
            Command::Rmd(path) => self.rmd(path),
            Command::Mkd(path) => self.mkd(path),
            Command::List(arg) => {
                self.list(listing::strip_ls_options(arg), ListFormat::Long, "LIST")
            }
            Command::Nlst(arg) => {
                self.list(listing::strip_ls_options(arg), ListFormat::Names, "NLST")
            }
            Command::Mlsd(path) => self.list(path, ListFormat::Facts(self.facts), "MLSD"),
            Command::Mlst(path) => self.mlst(path),
            Command::Stat(path) => self.stat(path),
            Command::Size(path) => self.size(path),
            Command::Mdtm(path) => self.mdtm(path),
            Command::Mfmt { mtime, path } => self.mfmt(mtime, path),
            Command::SiteHelp => self.reply_multi(
                reply::HELP,
                "SITE commands:",
                &[" CHMOD <mode> <path>", " HELP"],
                "End.",
            ),
            Command::SiteChmod { mode, path } => self.site_chmod(mode, path),
            // Test builds only: the probe acts directly, outside the jail and the loop.
            #[cfg(feature = "sandbox-probe")]
            Command::SiteProbe { what, path } => {
                let answer = crate::sys::sandbox::probe(what, path);
                self.reply(reply::OK, &answer);
            }
            Command::Hash(path) => self.hash(path),
            Command::XHash {
                algorithm,
                path,
                range,
            } => self.x_hash(algorithm, path, range),
            // Handled before login already.
            Command::Quit
            | Command::User(_)
            | Command::Pass(_)
            | Command::Clnt(_)
            | Command::Auth(_)
            | Command::Pbsz
            | Command::Prot(_)
            | Command::Ccc
            | Command::Feat
            | Command::Opts(_)
            | Command::Syst
            | Command::Noop
            | Command::Help(_) => {}
        }
    }

    // ---- simple commands ----------------------------------------------------------------

    pub(super) fn feat(&mut self) {
        let tls = self.shared.config.tls.is_some();
        let lines = verb::feat_lines(&self.facts.feat_line(), &self.hash_feat_line(), tls);
        self.reply_multi(reply::SYSTEM_STATUS, "Features:", &lines, "End");
    }

    pub(super) fn opts(&mut self, arg: &[u8]) {
        let (name, value) = split_word(arg);
        if name.eq_ignore_ascii_case(b"UTF8") || name.eq_ignore_ascii_case(b"UTF-8") {
            // RFC 2640: names are UTF-8 always; there is no other mode to switch to.
            if value.eq_ignore_ascii_case(b"ON") || value.is_empty() {
                self.reply(reply::OK, "UTF8 mode is always on.");
            } else {
                self.reply(
                    reply::PARAMETER_NOT_IMPLEMENTED,
                    "UTF8 mode cannot be turned off.",
                );
            }
        } else if name.eq_ignore_ascii_case(b"HASH") {
            self.opts_hash(value);
        } else if name.eq_ignore_ascii_case(b"MLST") {
            self.facts = Facts::parse(value);
            let text = self.facts.opts_reply();
            self.reply(reply::OK, &text);
        } else {
            self.reply(reply::BAD_ARGUMENT, "Option not understood.");
        }
    }

    /// CLNT: the client names itself; the name goes into this session's log lines.
    pub(super) fn clnt(&mut self, name: &[u8]) {
        let name = &name[..name.len().min(MAX_CLIENT_NAME_BYTES)];
        let name = String::from_utf8_lossy(name).replace(|c: char| c.is_control(), "?");
        info!("[#{}] client: {name}", self.id);
        self.client = Some(name.into());
        self.reply(reply::OK, "Noted.");
    }

    pub(super) fn help(&mut self) {
        let lines = verb::help_lines();
        self.reply_multi(
            reply::HELP,
            "The following commands are recognized:",
            &lines,
            "Help OK.",
        );
    }

    pub(super) fn type_(&mut self, kind: TransferType) {
        self.transfer_type = kind;
        match kind {
            TransferType::Ascii => self.reply(reply::OK, "Switching to ASCII mode."),
            TransferType::Image => self.reply(reply::OK, "Switching to Binary mode."),
        }
    }

    pub(super) fn pwd(&mut self) {
        let mut text = Vec::with_capacity(self.cwd.len() + 32);
        reply::push_quoted_path(&mut text, &self.cwd);
        text.extend_from_slice(b" is the current directory.");
        self.reply_bytes(reply::PATH_CREATED, &text);
    }

    pub(super) fn cwd(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().stat(fs::jail_path(&path)) {
            Ok(stat) if stat.kind == FileKind::Dir => {
                self.cwd = path;
                self.reply(reply::FILE_ACTION_OK, "Directory successfully changed.");
            }
            Ok(_) => self.reply(reply::FILE_UNAVAILABLE, "Not a directory."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    pub(super) fn rest(&mut self, offset: u64) {
        self.restart_offset = offset;
        self.reply(
            reply::PENDING_FURTHER_INFO,
            &format!("Restart position accepted ({offset})."),
        );
    }
}

/// The first line of an HTTP request: `GET / HTTP/1.1`, `CONNECT host:443 HTTP/1.1`, ...
fn is_foreign_protocol(line: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"CONNECT ",
        b"OPTIONS ",
        b"TRACE ",
        b"PATCH ",
    ];
    METHODS.iter().any(|method| line.starts_with(method))
}

/// Commands that change the file system: refused with 550 for read-only users.
fn is_write(cmd: &Command) -> bool {
    cmd.verb().write
}
