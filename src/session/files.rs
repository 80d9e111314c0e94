//! RETR, STOR, APPE, STOU and the commands on files and directories: SIZE, MDTM, MFMT, SITE
//! CHMOD, RNFR/RNTO, DELE, RMD, MKD (RFC 959, RFC 3659). Every path goes through the jail.

use super::*;

impl Session {
    // ---- transfers ----------------------------------------------------------------------

    pub(super) fn retr(&mut self, arg: &[u8]) {
        if !self.has_data_connection() {
            return;
        }
        let path = fs::resolve(&self.cwd, arg);
        let offset = std::mem::take(&mut self.restart_offset);
        let file = match self.jail().open_read(fs::jail_path(&path)) {
            Ok(file) => file,
            Err(e) => return self.reply_io_error(&e),
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if offset > size {
            return self.reply(
                reply::FILE_UNAVAILABLE,
                "Restart position beyond the end of the file.",
            );
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        let text = format!(
            "Opening {} mode data connection for {} ({size} bytes).",
            if ascii { "ASCII" } else { "BINARY" },
            String::from_utf8_lossy(&path)
        );
        self.start_transfer(
            Job::Send(FileSender::new(file, offset, ascii)),
            "RETR",
            &path,
            None,
            &text,
        );
    }

    pub(super) fn stor(&mut self, arg: &[u8], verb: &'static str) {
        if !self.has_data_connection() {
            return;
        }
        let path = fs::resolve(&self.cwd, arg);
        let offset = std::mem::take(&mut self.restart_offset);
        let mode = match (verb, offset) {
            ("APPE", _) => WriteMode::Append,
            (_, 0) => WriteMode::Truncate,
            (_, offset) => WriteMode::Resume(offset),
        };
        // --atomic-uploads: a plain STOR writes a hidden temporary file; APPE and REST > 0
        // write in place (they extend what is there).
        let atomic = self.shared.config.atomic_uploads && mode == WriteMode::Truncate;
        let opened = if atomic {
            self.open_temp(&path, false)
        } else {
            self.jail()
                .open_write_with(fs::jail_path(&path), mode, self.new_file_mode())
                .map(|file| (file, None))
        };
        let (file, temp) = match opened {
            Ok(opened) => opened,
            Err(e) => return self.reply_io_error(&e),
        };
        // SECURITY: --max-upload-size bounds the file, so APPE and a resumed STOR count what
        // it holds (or keeps) already.
        let limit = self.limits().max_upload_size.map(|max| {
            let kept = match mode {
                WriteMode::Append => file.metadata().map_or(0, |m| m.len()),
                WriteMode::Resume(offset) => offset,
                WriteMode::Truncate | WriteMode::CreateNew => 0,
            };
            max.saturating_sub(kept)
        });
        let receiver = FileReceiver::new(file, self.transfer_type == TransferType::Ascii);
        let job = Job::Receive(receiver.with_limit(limit));
        let text = format!("Ok to send data for {}.", String::from_utf8_lossy(&path));
        self.start_transfer(job, verb, &path, None, &text);
        self.set_temp(temp);
    }

    /// --atomic-uploads: the temporary file for an upload to `path`; refused at once (not at
    /// 226) when the target is a directory or not a regular file. With `no_replace` (STOU) the
    /// rename at 226 fails if the name was taken meanwhile.
    fn open_temp(
        &self,
        path: &[u8],
        no_replace: bool,
    ) -> io::Result<(std::fs::File, Option<fs::TempUpload>)> {
        let jail = self.jail();
        match jail.stat(fs::jail_path(path)) {
            Ok(stat) if stat.kind == FileKind::Dir => {
                return Err(io::Error::from_raw_os_error(libc::EISDIR))
            }
            Ok(stat) if stat.kind != FileKind::File => {
                return Err(io::Error::from_raw_os_error(libc::EACCES))
            }
            _ => {}
        }
        let (file, temp) =
            jail.create_temp(fs::jail_path(path), self.new_file_mode(), no_replace)?;
        Ok((file, Some(temp)))
    }

    /// Hands the temporary file to the transfer `start_transfer` just began.
    fn set_temp(&mut self, temp: Option<fs::TempUpload>) {
        if let Data::Transferring(running) = &mut self.data {
            running.temp = temp;
        }
    }

    /// STOU: store under a name that does not exist yet; the 150 names it (RFC 1123 4.1.2.9).
    pub(super) fn stou(&mut self, hint: &[u8]) {
        if !self.has_data_connection() {
            return;
        }
        self.restart_offset = 0;
        let base = fs::resolve(&self.cwd, if hint.is_empty() { b"stou" } else { hint });
        let jail = self.jail();
        let perm = self.new_file_mode();
        for n in 0..1000u32 {
            let mut path = base.clone();
            if n > 0 || hint.is_empty() {
                path.extend_from_slice(format!(".{n}").as_bytes());
            }
            let opened = if self.shared.config.atomic_uploads {
                match jail.lstat(fs::jail_path(&path)) {
                    Ok(_) => continue,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.open_temp(&path, true),
                    Err(e) => Err(e),
                }
            } else {
                jail.open_write_with(fs::jail_path(&path), WriteMode::CreateNew, perm)
                    .map(|file| (file, None))
            };
            match opened {
                Ok((file, temp)) => {
                    let ascii = self.transfer_type == TransferType::Ascii;
                    let receiver =
                        FileReceiver::new(file, ascii).with_limit(self.limits().max_upload_size);
                    let job = Job::Receive(receiver);
                    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(&path).to_vec();
                    let text = format!("FILE: {}", String::from_utf8_lossy(&name));
                    self.start_transfer(job, "STOU", &path, Some(name.into()), &text);
                    return self.set_temp(temp);
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return self.reply_io_error(&e),
            }
        }
        self.reply(reply::FILE_UNAVAILABLE, "Cannot find a unique file name.");
    }

    /// The mode of a file an upload creates: 0o666 less the user's umask (or --umask), given
    /// to openat as it is (the process umask is 0); SITE CHMOD sets any mode later.
    fn new_file_mode(&self) -> libc::mode_t {
        0o666 & !self.limits().umask
    }

    // ---- file commands ------------------------------------------------------------------

    pub(super) fn size(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().stat(fs::jail_path(&path)) {
            Ok(stat) if stat.kind == FileKind::File => {
                self.reply(reply::FILE_STATUS, &stat.size.to_string())
            }
            Ok(_) => self.reply(reply::FILE_UNAVAILABLE, "Not a regular file."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    pub(super) fn mdtm(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().stat(fs::jail_path(&path)) {
            Ok(stat) => {
                let mut text = Vec::with_capacity(14);
                listing::push_timeval(&mut text, stat.mtime);
                self.reply_bytes(reply::FILE_STATUS, &text);
            }
            Err(e) => self.reply_io_error(&e),
        }
    }

    pub(super) fn mfmt(&mut self, mtime: i64, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().set_mtime(fs::jail_path(&path), mtime) {
            Ok(()) => {
                let mut text = b"Modify=".to_vec();
                listing::push_timeval(&mut text, mtime);
                text.extend_from_slice(b"; ");
                text.extend_from_slice(arg);
                self.reply_bytes(reply::FILE_STATUS, &text);
            }
            Err(e) => self.reply_io_error(&e),
        }
    }

    pub(super) fn site_chmod(&mut self, mode: u32, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().set_mode(fs::jail_path(&path), mode) {
            Ok(()) => self.reply(reply::OK, "SITE CHMOD command ok."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    pub(super) fn rnfr(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().lstat(fs::jail_path(&path)) {
            Ok(_) => {
                self.rename_from = Some(path.into());
                self.reply(reply::PENDING_FURTHER_INFO, "Ready for RNTO.");
            }
            Err(e) => self.reply_io_error(&e),
        }
    }

    pub(super) fn rnto(&mut self, arg: &[u8]) {
        let Some(from) = self.rename_from.take() else {
            return self.reply(reply::BAD_SEQUENCE, "RNFR required first.");
        };
        let to = fs::resolve(&self.cwd, arg);
        match self.jail().rename(fs::jail_path(&from), fs::jail_path(&to)) {
            Ok(()) => self.reply(reply::FILE_ACTION_OK, "Rename successful."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    pub(super) fn dele(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        match self.jail().remove_file(fs::jail_path(&path)) {
            Ok(()) => self.reply(reply::FILE_ACTION_OK, "File deleted."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    pub(super) fn rmd(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        if path == b"/" {
            return self.reply(reply::FILE_UNAVAILABLE, "Permission denied.");
        }
        match self.jail().remove_dir(fs::jail_path(&path)) {
            Ok(()) => self.reply(reply::FILE_ACTION_OK, "Directory removed."),
            Err(e) => self.reply_io_error(&e),
        }
    }

    pub(super) fn mkd(&mut self, arg: &[u8]) {
        let path = fs::resolve(&self.cwd, arg);
        let perm = 0o777 & !self.limits().umask;
        match self.jail().create_dir_with(fs::jail_path(&path), perm) {
            Ok(()) => {
                let mut text = Vec::new();
                reply::push_quoted_path(&mut text, &path);
                text.extend_from_slice(b" created.");
                self.reply_bytes(reply::PATH_CREATED, &text);
            }
            Err(e) => self.reply_io_error(&e),
        }
    }
}
