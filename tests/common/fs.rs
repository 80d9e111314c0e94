//! Files: temporary directories, snapshots of a tree, modification times, test data.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::unique;

/// A fresh directory under the system temp dir (mode 0755, so that a server running as
/// `nobody` can enter it), removed with everything in it on Drop (read-only directories
/// included).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "leanftpd-test-{tag}-{}-{}",
            std::process::id(),
            unique()
        ));
        // A leftover of an earlier process with the same pid.
        let _ = fs::remove_dir_all(&path);
        make_dir(&path);
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Makes `rel` (and its parents) as a directory, mode 0755, and returns its path.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.join(rel);
        make_dir(&path);
        path
    }

    /// Writes a file at `rel` (creating parent directories) and returns its path.
    pub fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        write_file(&self.join(rel), content)
    }

    /// Makes a symlink at `rel` pointing to `target` and returns its path.
    pub fn symlink(&self, target: impl AsRef<Path>, rel: &str) -> PathBuf {
        let path = self.join(rel);
        std::os::unix::fs::symlink(target.as_ref(), &path)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Read-only dirs made by tests would stop the removal.
        let _ = make_writable(&self.path);
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn make_dir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn make_writable(p: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(p)?;
    if meta.is_dir() {
        let mut perm = meta.permissions();
        perm.set_mode(0o755);
        let _ = fs::set_permissions(p, perm);
        for e in fs::read_dir(p)? {
            let _ = make_writable(&e?.path());
        }
    }
    Ok(())
}

/// Writes `content` to `path`, creating parent directories; returns the path.
pub fn write_file(path: &Path, content: &[u8]) -> PathBuf {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.to_path_buf()
}

/// Every entry under `dir` (recursively), sorted: (path, contents (`<dir>` for a directory,
/// `-> target` for a symlink), mode, modification time). Compare two snapshots to prove that
/// nothing changed there, permissions and times included.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let content = if meta.file_type().is_symlink() {
                let mut t = b"-> ".to_vec();
                t.extend_from_slice(
                    fs::read_link(&path)
                        .expect("readlink")
                        .as_os_str()
                        .as_encoded_bytes(),
                );
                t
            } else if meta.is_dir() {
                stack.push(path.clone());
                b"<dir>".to_vec()
            } else {
                fs::read(&path).expect("read")
            };
            out.push((path, content, meta.mode(), meta.mtime()));
        }
    }
    out.sort();
    out
}

/// Sets a file's (or directory's) modification time to `secs` after the epoch (UTC).
pub fn set_mtime(p: &Path, secs: u64) {
    let f = fs::File::open(p).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// A file's modification time in seconds since the epoch.
pub fn mtime(p: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).unwrap().mtime()
}

pub fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Seconds since the epoch now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// (year, month 1-12, day) of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Deterministic pseudo-random bytes (xorshift), different for each `seed`, so binary content
/// covers every byte value.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Asserts two byte vectors are equal without dumping megabytes on failure.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got
            .iter()
            .zip(want.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: content differs: got {} bytes, want {} bytes, first difference at offset {}",
            got.len(),
            want.len(),
            first
        );
    }
}

/// Converts LF to CRLF (what TYPE A sends for a Unix text file).
pub fn to_crlf(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + v.len() / 16);
    for &b in v {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// A tmpfs mounted by the test (needs root), unmounted on drop: a disk that fills up.
pub struct Mount {
    path: PathBuf,
}

impl Mount {
    pub fn tmpfs(path: PathBuf, size: &str) -> Mount {
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "this test mounts a {size} tmpfs and needs root (CI runs as root): `mount -t tmpfs \
             -o size={size} tmpfs {}` failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Mount { path }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.path)
                .status();
        }
    }
}
