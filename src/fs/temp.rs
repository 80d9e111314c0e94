//! --atomic-uploads: an upload's hidden temporary file beside its target, renamed over the
//! target at 226 and removed in every other case (ABOR, a failure, a timeout, a dropped
//! connection, shutdown, the session's end: whatever drops it without `commit`).
//!
//! The temporary name is `.leanftpd-upload.` and 16 random hex digits, created O_EXCL in the
//! target's directory, so the rename cannot cross file systems and two uploads of one name
//! never share a file. The directory is held by descriptor from the start: the rename lands in
//! the directory the upload began in, even if that was renamed meanwhile. Names with the prefix
//! are reserved: directory streams skip them and the jail answers ENOENT for any path through
//! one, so no client can list, read, replace, delete or rename another upload's temporary file.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::sys::fs as sys;

/// The prefix of every temporary upload name (reserved: see the module comment).
pub const TEMP_PREFIX: &[u8] = b".leanftpd-upload.";

/// True for a name the server reserves for its temporary uploads.
pub fn is_temp_name(name: &[u8]) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// A new random temporary name.
pub(super) fn temp_name() -> CString {
    let mut random = [0u8; 8];
    if crate::sys::fill_random(&mut random).is_err() {
        random = (u64::from(crate::sys::random_u32()) << 32 | u64::from(crate::sys::random_u32()))
            .to_ne_bytes();
    }
    let mut name = TEMP_PREFIX.to_vec();
    for byte in random {
        name.extend_from_slice(format!("{byte:02x}").as_bytes());
    }
    CString::new(name).expect("hex digits hold no NUL")
}

/// The temporary file of one atomic upload; removed on drop unless committed.
#[derive(Debug)]
pub struct TempUpload {
    dir: OwnedFd,
    temp: CString,
    target: CString,
    /// STOU: the target must still not exist at the rename (EEXIST otherwise).
    no_replace: bool,
    committed: bool,
}

impl TempUpload {
    pub(super) fn new(dir: OwnedFd, temp: CString, target: CString, no_replace: bool) -> Self {
        TempUpload {
            dir,
            temp,
            target,
            no_replace,
            committed: false,
        }
    }

    /// Renames the temporary file over the target in one step (rename(2) is atomic: a reader
    /// sees the old file or the new one, never a mix). On failure the temporary file is removed.
    pub fn commit(mut self) -> io::Result<()> {
        let dir = self.dir.as_fd();
        let result = if self.no_replace {
            sys::renameat_noreplace(dir, &self.temp, dir, &self.target)
        } else {
            sys::renameat(dir, &self.temp, dir, &self.target)
        };
        self.committed = result.is_ok();
        result
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = sys::unlinkat(self.dir.as_fd(), &self.temp, 0) {
                log::warn!(
                    "cannot remove the temporary upload {}: {e}",
                    self.temp.to_string_lossy()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_reserved_and_distinct() {
        let a = temp_name();
        let b = temp_name();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), TEMP_PREFIX.len() + 16);
        assert!(is_temp_name(a.as_bytes()));
        assert!(!is_temp_name(b"leanftpd-upload.x"));
        assert!(!is_temp_name(b".leanftpd-upload"));
    }
}
