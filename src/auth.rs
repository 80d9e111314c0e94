//! Who may log in and what they may do: the users file (`name:hash:home:perms` a line, `#`
//! comments), SHA-crypt verification ($6$ SHA-512, $5$ SHA-256) through RustCrypto's sha-crypt,
//! hashing for `--hash-password`, and the anonymous rules. No sockets, no session state.

use std::path::{Path, PathBuf};

/// What a successful login grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// The directory the user sees as "/".
    pub home: PathBuf,
    pub writable: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Users {
    _private: (),
}

impl Users {
    /// Reads and parses a users file; errors read `users file PATH, line N: reason`.
    pub fn load(path: &Path) -> Result<Users, String> {
        let _ = path;
        todo!("Users::load")
    }

    /// Parses users-file text; `origin` names the file in error messages. Checks each line's
    /// fields, the hash format ($5$ or $6$), perms (`ro` or `rw`), duplicate names, and that
    /// each home is an existing directory.
    pub fn parse(text: &str, origin: &str) -> Result<Users, String> {
        let _ = (text, origin);
        todo!("Users::parse")
    }

    /// Verifies a password. An unknown user costs the same work as a wrong password (a dummy
    /// hash is checked) and gets the same `None`.
    pub fn verify(&self, name: &[u8], password: &[u8]) -> Option<Account> {
        let _ = (name, password);
        todo!("Users::verify")
    }

    pub fn len(&self) -> usize {
        todo!("Users::len")
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// "anonymous" or "ftp", any case.
pub fn is_anonymous_name(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"anonymous") || name.eq_ignore_ascii_case(b"ftp")
}

/// A SHA-512-crypt (`$6$`) hash of `password` with a fresh random salt, as `openssl passwd -6` prints.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let _ = password;
    todo!("hash_password")
}
