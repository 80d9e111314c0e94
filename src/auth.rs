//! Who may log in and what they may do: the users file (`name:hash:home:perms[:settings]` a
//! line, `#` comments), each user's own limits (`Settings`), SHA-crypt verification ($6$ SHA-512, $5$ SHA-256) through RustCrypto's sha-crypt,
//! hashing for `--hash-password`, and the anonymous rules. No sockets, no session state.
//!
//! The users file, one account a line:
//!
//! ```text
//! # name:hash:home:perms
//! alice:$6$saltsalt$TVLl...5hVO1:/srv/ftp/alice:rw
//! bob:$5$saltsalt$0Iya...dS5sA:/srv/ftp/shared:ro
//! camera:$6$saltsalt$TVLl...5hVO1:/srv/ftp/camera:rw:rate_up=2M,max_sessions=1,umask=027
//! ```
//!
//! - Lines are trimmed, and so is each field; blank lines and lines starting with `#` are
//!   skipped. There are no trailing comments (a home may contain `#`).
//! - `hash` is what `openssl passwd -6` or `-5` prints (`$6$[rounds=N$]salt$digest`); it never
//!   contains `:`. Each hash is checked when the file is loaded, so a bad one is reported with its
//!   line number rather than silently refusing logins.
//! - `home` is an absolute path to an existing directory; it cannot contain `:`.
//! - `perms` is `ro` or `rw`.
//! - An optional fifth field holds the user's own settings, `key=value` separated by commas
//!   (`Settings`): `rate_down` and `rate_up` (a RATE, as --max-rate-down/-up), `max_sessions`
//!   (logged-in sessions at once, from any addresses), `umask` (octal, as --umask) and
//!   `max_upload_size` (a SIZE, as --max-upload-size). Each overrides its global flag for this
//!   user's sessions; `0` for a rate, a size or `max_sessions` means no limit for this user,
//!   whatever the flag says. An unknown key, a key given twice or a bad value names its line.
//! - Names are case-sensitive. `anonymous` and `ftp` (any case) are refused: those names mean
//!   anonymous login to the session, so such an account could never be reached.
//!
//! Read first: RFC 959 section 4.1.1 (USER, PASS) and RFC 2577 section 5 (user names should
//! not be revealed by replies or timing).

use sha_crypt::{Params, PasswordHasher, PasswordVerifier, ShaCrypt};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::config::{self, Config};
use crate::transfer::pace;

/// What a successful login grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// The directory the user sees as "/".
    pub home: PathBuf,
    pub writable: bool,
    /// The user's own limits (the users file's fifth field); anonymous has none.
    pub settings: Settings,
}

/// A user's own limits, from the users file's fifth field. A field is None where the line does
/// not set it (the global flag applies); for the limits, `Some(None)` is the line's `0`: no
/// limit for this user, whatever the flag says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// `rate_down`, `rate_up`: bytes a second for each of the user's sessions.
    pub rate_down: Option<Option<u64>>,
    pub rate_up: Option<Option<u64>>,
    /// `max_sessions`: the user's logged-in sessions at once, from any addresses.
    pub max_sessions: Option<Option<usize>>,
    /// `umask`: bits cleared from the mode of what the user's uploads and MKD create.
    pub umask: Option<u32>,
    /// `max_upload_size`: the largest file one of the user's uploads may leave.
    pub max_upload_size: Option<Option<u64>>,
}

/// The limits one session runs under: the user's settings where it has them, else the flags'.
/// Fixed at login: a SIGHUP that changes the users file applies to sessions that log in later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub rate_down: Option<u64>,
    pub rate_up: Option<u64>,
    pub max_sessions: Option<usize>,
    pub umask: u32,
    pub max_upload_size: Option<u64>,
}

impl Settings {
    /// These settings over the flags in `config`.
    pub fn limits(&self, config: &Config) -> Limits {
        Limits {
            rate_down: self.rate_down.unwrap_or(config.rates.down),
            rate_up: self.rate_up.unwrap_or(config.rates.up),
            max_sessions: self.max_sessions.unwrap_or(config.max_sessions_per_user),
            umask: self.umask.unwrap_or(config.umask),
            max_upload_size: self.max_upload_size.unwrap_or(config.max_upload_size),
        }
    }
}

/// The keys of the fifth field, for the error messages.
const SETTING_KEYS: &str = "rate_down, rate_up, max_sessions, umask or max_upload_size";

/// The fifth field: `key=value` items separated by commas (spaces around each are trimmed).
fn parse_settings(text: &str) -> Result<Settings, String> {
    let mut settings = Settings::default();
    if text.is_empty() {
        return Ok(settings);
    }
    for item in text.split(',').map(str::trim) {
        let Some((key, value)) = item.split_once('=').map(|(k, v)| (k.trim(), v.trim())) else {
            return Err(format!(
                "setting {item:?}: want key=value with key {SETTING_KEYS}"
            ));
        };
        let bad = |reason: String| format!("{key}={reason}");
        let given_before = match key {
            "rate_down" => settings
                .rate_down
                .replace(limit(value, pace::parse_rate).map_err(bad)?)
                .is_some(),
            "rate_up" => settings
                .rate_up
                .replace(limit(value, pace::parse_rate).map_err(bad)?)
                .is_some(),
            "max_sessions" => settings
                .max_sessions
                .replace(limit(value, parse_count).map_err(bad)?)
                .is_some(),
            "umask" => settings
                .umask
                .replace(config::parse_umask(value).map_err(bad)?)
                .is_some(),
            "max_upload_size" => settings
                .max_upload_size
                .replace(limit(value, config::parse_size).map_err(bad)?)
                .is_some(),
            _ => return Err(format!("unknown setting {key:?} (want {SETTING_KEYS})")),
        };
        if given_before {
            return Err(format!("setting {key} given twice"));
        }
    }
    Ok(settings)
}

/// A limit's value: its syntax (`parse`), or 0 for no limit.
fn limit<T>(value: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if value == "0" {
        Ok(None)
    } else {
        parse(value)
            .map(Some)
            .map_err(|e| format!("{e}, or 0 for no limit"))
    }
}

/// `max_sessions`: a whole number from 1 (0 is handled by the caller: no limit).
fn parse_count(text: &str) -> Result<usize, String> {
    match text.parse::<u32>() {
        Ok(n) if n > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n as usize),
        _ => Err(format!("{text}: want a whole number of sessions")),
    }
}

#[derive(Debug, Clone, Default)]
pub struct Users {
    /// Few accounts on an appliance: a boxed slice searched linearly is smallest and fast enough.
    entries: Box<[Entry]>,
}

/// One line of the users file, as login needs it.
#[derive(Clone)]
struct Entry {
    /// Shared with the sessions logged in as it (a login clones no string).
    account: Rc<Account>,
    /// A SHA-crypt string already checked by `check_hash`.
    hash: Box<str>,
}

// Hand-written so that `{:?}` of the users (in a debug log, say) never prints password hashes.
impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// Verified in place of the real hash when the user is unknown, so that the reply comes after the
/// same work and a client cannot tell unknown names from wrong passwords (RFC 2577 section 5).
/// Default rounds, like the hashes `openssl passwd -6` and `hash_password` make.
const DUMMY_HASH: &str =
    "$6$dummydummydummy1$K8.7xIhqxt.dQb5BUjYA0iGwqETte9YxlQN6s2mMXeZJJaHcjg80bcA..7if5FVG5MyOVgeNZy/w887AWTiwD/";

/// Highest `rounds=` accepted. Every login hashes on the single event-loop thread, so a huge
/// count would stall all sessions; 100,000 is 20 times the default.
const MAX_ROUNDS: u32 = 100_000;

/// The crypt(3) Base64 alphabet, in value order.
const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Random bytes in a fresh salt: 12 bytes encode to the 16 characters SHA-crypt uses at most.
const SALT_BYTES: usize = 12;

impl Users {
    /// Reads and parses a users file; errors read `users file PATH, line N: reason`.
    pub fn load(path: &Path) -> Result<Users, String> {
        let origin = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("users file {origin}: {e}"))?;
        Users::parse(&text, &origin)
    }

    /// Parses users-file text; `origin` names the file in error messages. Checks each line's
    /// fields, the hash format ($5$ or $6$), perms (`ro` or `rw`), duplicate names, and that
    /// each home is an existing directory.
    pub fn parse(text: &str, origin: &str) -> Result<Users, String> {
        let mut entries: Vec<Entry> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = parse_line(line, &entries)
                .map_err(|reason| format!("users file {origin}, line {}: {reason}", index + 1))?;
            entries.push(entry);
        }
        Ok(Users {
            entries: entries.into_boxed_slice(),
        })
    }

    /// Verifies a password. An unknown user costs the same work as a wrong password (a dummy
    /// hash is checked) and gets the same `None`.
    pub fn verify(&self, name: &[u8], password: &[u8]) -> Option<Rc<Account>> {
        let verifier = ShaCrypt::default(); // the algorithm and rounds come from each hash
        let Some(entry) = self
            .entries
            .iter()
            .find(|e| e.account.name.as_bytes() == name)
        else {
            // SECURITY: same work as a wrong password, so timing does not reveal valid names.
            // black_box keeps the otherwise unused result from being optimised away.
            std::hint::black_box(verifier.verify_password(password, DUMMY_HASH).is_ok());
            return None;
        };
        let ok = verifier.verify_password(password, &*entry.hash).is_ok();
        ok.then(|| Rc::clone(&entry.account))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each user's name, home and whether they may write: for the start-up checks.
    pub fn homes(&self) -> impl Iterator<Item = (&str, &std::path::Path, bool)> {
        self.entries.iter().map(|e| {
            (
                &*e.account.name,
                e.account.home.as_path(),
                e.account.writable,
            )
        })
    }
}

/// One non-comment line, already trimmed; `earlier` holds the accounts above it.
fn parse_line(line: &str, earlier: &[Entry]) -> Result<Entry, String> {
    let fields: Vec<&str> = line.split(':').map(str::trim).collect();
    let (name, hash, home, perms, settings) = match fields[..] {
        [name, hash, home, perms] => (name, hash, home, perms, ""),
        [name, hash, home, perms, settings] => (name, hash, home, perms, settings),
        _ => return Err("expected name:hash:home:perms[:settings]".to_string()),
    };
    if name.is_empty() {
        return Err("empty name".to_string());
    }
    if is_anonymous_name(name.as_bytes()) {
        return Err(format!("name \"{name}\" is reserved for anonymous login"));
    }
    if earlier.iter().any(|e| e.account.name == name) {
        return Err(format!("duplicate user \"{name}\""));
    }
    check_hash(hash)?;
    let writable = match perms {
        "ro" => false,
        "rw" => true,
        _ => return Err("perms must be ro or rw".to_string()),
    };
    if home.is_empty() {
        return Err("empty home".to_string());
    }
    let home = PathBuf::from(home);
    // Relative homes would depend on the server's working directory; refuse the ambiguity.
    if !home.is_absolute() {
        return Err(format!("home {} is not an absolute path", home.display()));
    }
    if !home.is_dir() {
        return Err(format!("home {} is not a directory", home.display()));
    }
    let settings = parse_settings(settings)?;
    Ok(Entry {
        account: Rc::new(Account {
            name: name.into(),
            home,
            writable,
            settings,
        }),
        hash: hash.into(),
    })
}

/// Checks that `hash` is a SHA-crypt string sha-crypt will verify, without the cost of hashing:
/// `$6$` or `$5$`, an optional valid `rounds=N`, a salt, and a digest of the right length in the
/// crypt alphabet.
fn check_hash(hash: &str) -> Result<(), String> {
    // Digest characters: 64 bytes of SHA-512 or 32 of SHA-256 at 6 bits a character. The last
    // character holds only the leftover 2 or 4 bits, and the decoder rejects any set padding bit,
    // so its value must stay under 4 or 16.
    let (rest, digest_len, last_below) = if let Some(rest) = hash.strip_prefix("$6$") {
        (rest, 86, 4)
    } else if let Some(rest) = hash.strip_prefix("$5$") {
        (rest, 43, 16)
    } else {
        return Err("unsupported hash (want $6$ or $5$)".to_string());
    };
    let malformed =
        || "malformed hash (want $6$salt$digest as openssl passwd -6 prints)".to_string();
    // The library's own syntax check (MCF field characters, no empty fields).
    sha_crypt::PasswordHashRef::new(hash).map_err(|_| malformed())?;

    let mut fields: Vec<&str> = rest.split('$').collect();
    if let Some(count) = fields
        .first()
        .copied()
        .and_then(|f| f.strip_prefix("rounds="))
    {
        // Within MAX_ROUNDS and the library's range; whatever the verifier cannot parse as
        // rounds it would silently take for the salt.
        let count = count.parse::<u32>().ok();
        if !count.is_some_and(|n| (Params::ROUNDS_MIN..=MAX_ROUNDS).contains(&n)) {
            let min = Params::ROUNDS_MIN;
            return Err(format!("rounds must be {min} to {MAX_ROUNDS}"));
        }
        fields.remove(0);
    }
    let [_salt, digest] = fields[..] else {
        return Err(malformed());
    };
    let value = |c: u8| CRYPT64.iter().position(|&a| a == c);
    let well_formed = digest.len() == digest_len
        && digest.bytes().all(|c| value(c).is_some())
        && digest
            .bytes()
            .last()
            .and_then(value)
            .is_some_and(|v| v < last_below);
    if well_formed {
        Ok(())
    } else {
        Err(malformed())
    }
}

/// "anonymous" or "ftp", any case.
pub fn is_anonymous_name(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"anonymous") || name.eq_ignore_ascii_case(b"ftp")
}

/// A SHA-512-crypt (`$6$`) hash of `password` with a fresh random salt, as `openssl passwd -6` prints.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    // getrandom(2) through the system layer: never blocks, needs no /dev.
    let mut salt = [0u8; SALT_BYTES];
    crate::sys::fill_random(&mut salt).map_err(|e| format!("getrandom: {e}"))?;
    // sha-crypt encodes the salt bytes in the crypt alphabet and uses that text as the salt.
    let hash = ShaCrypt::SHA512
        .hash_password_with_salt(password, &salt)
        .map_err(|e| format!("hashing failed: {e}"))?;
    // It also writes the default `rounds=5000$` out; openssl and glibc leave it implicit, and the
    // digest is the same either way, so drop it to print exactly what `openssl passwd -6` would.
    let hash: &str = hash.as_ref();
    Ok(match hash.strip_prefix("$6$rounds=5000$") {
        Some(rest) => format!("$6${rest}"),
        None => hash.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl passwd -6 -salt saltsalt secret`
    const SHA512_SECRET: &str =
        "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    /// `openssl passwd -5 -salt saltsalt secret`
    const SHA256_SECRET: &str = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
    /// glibc `crypt("secret", "$6$rounds=6000$saltsalt$")`
    const SHA512_ROUNDS_SECRET: &str = "$6$rounds=6000$saltsalt$TcDhk3vUDSxdkj1LteXIA0htMq0pABOdsvxFLaAf.9RFOU5G4Ss5YPBOHb6uwE8gqarkBzBeX3AE9KlDjd3pv0";

    fn users(text: &str) -> Users {
        Users::parse(text, "users.txt").unwrap()
    }

    fn error(text: &str) -> String {
        Users::parse(text, "users.txt").unwrap_err()
    }

    fn one_user(hash: &str) -> Users {
        users(&format!("alice:{hash}:/tmp:rw"))
    }

    #[test]
    fn good_file_with_comments_and_blank_lines() {
        let text = format!(
            "# leanftpd users\n\n   \n  # indented comment\n\
             alice:{SHA512_SECRET}:/tmp:rw\r\n\
             \t bob : {SHA256_SECRET} : / : ro \n\
             carol:{SHA512_ROUNDS_SECRET}:/tmp:ro\n"
        );
        let users = users(&text);
        assert_eq!(users.len(), 3);
        assert!(!users.is_empty());
        let bob = users.verify(b"bob", b"secret").unwrap();
        assert_eq!(
            *bob,
            Account {
                name: "bob".to_string(),
                home: PathBuf::from("/"),
                writable: false,
                settings: Settings::default(),
            }
        );
        assert!(users.verify(b"alice", b"secret").unwrap().writable);
        assert!(!users.verify(b"carol", b"secret").unwrap().writable);
    }

    #[test]
    fn empty_or_comment_only_file_has_no_users() {
        for text in ["", "\n\n", "# nobody yet\n  # still nobody\n"] {
            let users = users(text);
            assert!(users.is_empty());
            assert_eq!(users.verify(b"alice", b"secret"), None);
        }
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let good = format!("alice:{SHA512_SECRET}:/tmp:rw");
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let cases = [
            (
                "alice:/tmp:rw".to_string(),
                "expected name:hash:home:perms[:settings]",
            ),
            (
                format!("{good}:umask=022:extra"),
                "expected name:hash:home:perms[:settings]",
            ),
            (format!(":{SHA512_SECRET}:/tmp:rw"), "empty name"),
            (
                format!("bob:{SHA512_SECRET}:/tmp:RW"),
                "perms must be ro or rw",
            ),
            (
                format!("alice:{SHA512_SECRET}:/tmp:ro"),
                "duplicate user \"alice\"",
            ),
            (
                format!("bob:{SHA512_SECRET}:/nonexistent/leanftpd:rw"),
                "home /nonexistent/leanftpd is not a directory",
            ),
            (
                format!("bob:{SHA512_SECRET}:{file}:rw"),
                &format!("home {file} is not a directory"),
            ),
            (
                format!("bob:{SHA512_SECRET}:tmp:rw"),
                "home tmp is not an absolute path",
            ),
            (format!("bob:{SHA512_SECRET}::rw"), "empty home"),
            // MD5-crypt, bcrypt and plain text are refused by name.
            (
                "bob:$1$saltsalt$abc:/tmp:rw".to_string(),
                "unsupported hash (want $6$ or $5$)",
            ),
            (
                "bob:$2b$10$abc:/tmp:rw".to_string(),
                "unsupported hash (want $6$ or $5$)",
            ),
            (
                "bob:secret:/tmp:rw".to_string(),
                "unsupported hash (want $6$ or $5$)",
            ),
            (
                format!("ftp:{SHA512_SECRET}:/tmp:ro"),
                "name \"ftp\" is reserved for anonymous login",
            ),
            (
                format!("Anonymous:{SHA512_SECRET}:/tmp:ro"),
                "name \"Anonymous\" is reserved for anonymous login",
            ),
        ];
        for (bad, reason) in cases {
            // Line 4: a comment, a blank line and a good account come first.
            let text = format!("# users\n\n{good}\n{bad}\n");
            assert_eq!(
                error(&text),
                format!("users file users.txt, line 4: {reason}"),
                "for {bad:?}"
            );
        }
    }

    #[test]
    fn malformed_hashes_are_reported_at_load() {
        let malformed = "users file users.txt, line 1: malformed hash \
                         (want $6$salt$digest as openssl passwd -6 prints)";
        let truncated = &SHA512_SECRET[..SHA512_SECRET.len() - 1];
        let no_salt = SHA512_SECRET.replace("saltsalt$", "");
        let bad_char = SHA256_SECRET.replace("lpP", "l*P");
        let extra_field = format!("{SHA256_SECRET}$x");
        for hash in [truncated, &no_salt, &bad_char, &extra_field, "$6$", "$5$$x"] {
            assert_eq!(
                error(&format!("bob:{hash}:/tmp:rw")),
                malformed,
                "for {hash}"
            );
        }
        let rounds = "users file users.txt, line 1: rounds must be 1000 to 100000";
        for count in ["999", "100001", "x", ""] {
            let hash = SHA512_ROUNDS_SECRET.replace("6000", count);
            assert_eq!(error(&format!("bob:{hash}:/tmp:rw")), rounds, "for {hash}");
        }
    }

    #[test]
    fn digest_check_agrees_with_the_verifier() {
        // Every possible last digest character: the load-time check must accept exactly those
        // the library can decode (PasswordInvalid) and refuse those it cannot (EncodingInvalid).
        for good in [SHA512_SECRET, SHA256_SECRET] {
            let stem = &good[..good.len() - 1];
            for &c in CRYPT64 {
                let hash = format!("{stem}{}", c as char);
                let decodes = !matches!(
                    ShaCrypt::default().verify_password(b"", hash.as_str()),
                    Err(sha_crypt::password_hash::Error::EncodingInvalid)
                );
                assert_eq!(check_hash(&hash).is_ok(), decodes, "for {hash}");
            }
        }
    }

    #[test]
    fn verify_right_and_wrong_password() {
        let users = one_user(SHA512_SECRET);
        let alice = users.verify(b"alice", b"secret").unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.home, PathBuf::from("/tmp"));
        assert!(alice.writable);
        assert_eq!(users.verify(b"alice", b"Secret"), None);
        assert_eq!(users.verify(b"alice", b""), None);
        assert_eq!(users.verify(b"alice", b"secret\0"), None);
    }

    #[test]
    fn unknown_user_gets_none() {
        let users = one_user(SHA512_SECRET);
        assert_eq!(users.verify(b"mallory", b"secret"), None);
        assert_eq!(users.verify(b"", b""), None);
        // Names are case-sensitive.
        assert_eq!(users.verify(b"Alice", b"secret"), None);
        // The dummy hash itself must be well-formed, or unknown users would cost less.
        assert!(check_hash(DUMMY_HASH).is_ok());
        assert!(ShaCrypt::default()
            .verify_password(b"leanftpd unknown-user dummy", DUMMY_HASH)
            .is_ok());
    }

    #[test]
    fn openssl_sha512_vector() {
        assert!(one_user(SHA512_SECRET)
            .verify(b"alice", b"secret")
            .is_some());
    }

    #[test]
    fn openssl_sha256_vector() {
        assert!(one_user(SHA256_SECRET)
            .verify(b"alice", b"secret")
            .is_some());
        assert!(one_user(SHA256_SECRET)
            .verify(b"alice", b"secreT")
            .is_none());
    }

    #[test]
    fn glibc_rounds_vector() {
        assert!(one_user(SHA512_ROUNDS_SECRET)
            .verify(b"alice", b"secret")
            .is_some());
    }

    #[test]
    fn hash_password_round_trip_and_format() {
        let hash = hash_password(b"pass word").unwrap();
        // `$6$` + 16-character salt + `$` + 86-character digest, all in the crypt alphabet.
        assert_eq!(hash.len(), 3 + 16 + 1 + 86, "{hash}");
        assert!(hash.starts_with("$6$"), "{hash}");
        assert_eq!(hash.as_bytes()[19], b'$', "{hash}");
        let crypt64 = |s: &str| s.bytes().all(|c| CRYPT64.contains(&c));
        assert!(crypt64(&hash[3..19]) && crypt64(&hash[20..]), "{hash}");
        assert!(check_hash(&hash).is_ok());
        let users = one_user(&hash);
        assert!(users.verify(b"alice", b"pass word").is_some());
        assert!(users.verify(b"alice", b"password").is_none());
    }

    #[test]
    fn hash_password_salts_are_fresh() {
        assert_ne!(hash_password(b"x").unwrap(), hash_password(b"x").unwrap());
    }

    #[test]
    fn anonymous_names() {
        for name in ["anonymous", "ftp", "FTP", "Anonymous", "aNoNyMoUs"] {
            assert!(is_anonymous_name(name.as_bytes()), "{name}");
        }
        for name in ["", "anon", "ftpuser", "anonymous ", "ft"] {
            assert!(!is_anonymous_name(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn load_reads_the_file_and_reports_io_errors() {
        let dir = std::env::temp_dir().join(format!("leanftpd-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users");
        std::fs::write(
            &path,
            format!("# one\nalice:{SHA256_SECRET}:/tmp:ro\nbob:x\n"),
        )
        .unwrap();
        let err = Users::load(&path).unwrap_err();
        assert_eq!(
            err,
            format!(
                "users file {}, line 3: expected name:hash:home:perms[:settings]",
                path.display()
            )
        );
        std::fs::write(&path, format!("alice:{SHA256_SECRET}:/tmp:ro\n")).unwrap();
        assert_eq!(Users::load(&path).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();

        let err = Users::load(&path).unwrap_err();
        assert!(
            err.starts_with(&format!("users file {}: ", path.display())),
            "{err}"
        );
    }

    #[test]
    fn settings_parse_and_override_the_flags() {
        let text = format!(
            "alice:{SHA512_SECRET}:/tmp:rw\n\
             bob:{SHA512_SECRET}:/tmp:rw:\n\
             carol:{SHA512_SECRET}:/tmp:rw: rate_down=512K , rate_up=2m,max_sessions=3,\
             umask=027,max_upload_size=10M\n\
             dave:{SHA512_SECRET}:/tmp:ro:rate_down=0,max_sessions=0,max_upload_size=0,umask=0\n"
        );
        let users = users(&text);
        let settings = |name: &str| users.verify(name.as_bytes(), b"secret").unwrap().settings;
        assert_eq!(settings("alice"), Settings::default());
        assert_eq!(settings("bob"), Settings::default());
        let carol = Settings {
            rate_down: Some(Some(512 * 1024)),
            rate_up: Some(Some(2 << 20)),
            max_sessions: Some(Some(3)),
            umask: Some(0o027),
            max_upload_size: Some(Some(10 << 20)),
        };
        assert_eq!(settings("carol"), carol);
        let dave = Settings {
            rate_down: Some(None),
            rate_up: None,
            max_sessions: Some(None),
            umask: Some(0),
            max_upload_size: Some(None),
        };
        assert_eq!(settings("dave"), dave);

        // Over the flags: a setting wins, 0 lifts the flag's limit, an unset key keeps it.
        let mut config = Config::anonymous("/tmp");
        config.rates.down = Some(1 << 20);
        config.rates.up = Some(1 << 20);
        config.max_sessions_per_user = Some(2);
        config.umask = 0o077;
        config.max_upload_size = Some(1000);
        let global = Settings::default().limits(&config);
        assert_eq!(
            global,
            Limits {
                rate_down: Some(1 << 20),
                rate_up: Some(1 << 20),
                max_sessions: Some(2),
                umask: 0o077,
                max_upload_size: Some(1000),
            }
        );
        assert_eq!(
            carol.limits(&config),
            Limits {
                rate_down: Some(512 * 1024),
                rate_up: Some(2 << 20),
                max_sessions: Some(3),
                umask: 0o027,
                max_upload_size: Some(10 << 20),
            }
        );
        assert_eq!(
            dave.limits(&config),
            Limits {
                rate_down: None,
                rate_up: Some(1 << 20),
                max_sessions: None,
                umask: 0,
                max_upload_size: None,
            }
        );
    }

    #[test]
    fn bad_settings_name_the_line() {
        let keys = "rate_down, rate_up, max_sessions, umask or max_upload_size";
        let rate = "want bytes a second, like 512K, 10M or 1G, or 0 for no limit";
        let cases = [
            ("speed=1M".to_string(), format!("unknown setting \"speed\" (want {keys})")),
            ("Rate_Down=1M".to_string(), format!("unknown setting \"Rate_Down\" (want {keys})")),
            ("rate_down".to_string(), format!("setting \"rate_down\": want key=value with key {keys}")),
            ("umask=022,,rate_up=1M".to_string(), format!("setting \"\": want key=value with key {keys}")),
            ("rate_down=1M,".to_string(), format!("setting \"\": want key=value with key {keys}")),
            ("rate_down=fast".to_string(), format!("rate_down=fast: {rate}")),
            ("rate_up=1.5M".to_string(), format!("rate_up=1.5M: {rate}")),
            ("rate_up=".to_string(), format!("rate_up=: {rate}")),
            ("max_sessions=-1".to_string(), "max_sessions=-1: want a whole number of sessions, or 0 for no limit".to_string()),
            ("max_sessions=two".to_string(), "max_sessions=two: want a whole number of sessions, or 0 for no limit".to_string()),
            ("umask=8".to_string(), "umask=8: want octal from 000 to 777".to_string()),
            ("umask=1000".to_string(), "umask=1000: want octal from 000 to 777".to_string()),
            ("max_upload_size=10T".to_string(), "max_upload_size=10T: want a positive size like 1000, 512K, 10M or 4G, or 0 for no limit".to_string()),
            ("umask=022,umask=077".to_string(), "setting umask given twice".to_string()),
        ];
        for (bad, reason) in cases {
            let text = format!(
                "# users\nalice:{SHA512_SECRET}:/tmp:rw\nbob:{SHA512_SECRET}:/tmp:rw:{bad}\n"
            );
            assert_eq!(
                error(&text),
                format!("users file users.txt, line 3: {reason}"),
                "for {bad:?}"
            );
        }
    }

    #[test]
    fn debug_output_hides_hashes() {
        let shown = format!("{:?}", one_user(SHA512_SECRET));
        assert!(
            shown.contains("alice") && !shown.contains("saltsalt"),
            "{shown}"
        );
    }
}
