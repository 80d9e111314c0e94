//! curl timing a transfer: the bytes it moved and the seconds from the transfer command to its
//! end, for the pacing tests (curl is told no rate: the server's pacing is what is measured).

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// What one curl said: bytes moved, and the seconds from the transfer command to its end.
#[derive(Debug)]
pub struct Run {
    pub bytes: u64,
    pub secs: f64,
}

/// Starts curl on `url`: a download to /dev/null, or an upload of `upload`.
pub fn curl_timed(url: &str, upload: Option<&Path>) -> Child {
    super::require("curl");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "--max-time", "60"]);
    match upload {
        Some(file) => {
            cmd.arg("-T").arg(file);
            cmd.args(["-w", "%{size_upload} %{time_pretransfer} %{time_total}"]);
        }
        None => {
            cmd.args(["-o", "/dev/null"]);
            cmd.args(["-w", "%{size_download} %{time_pretransfer} %{time_total}"]);
        }
    }
    cmd.arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start curl")
}

/// Waits for a `curl_timed` and reads what it measured; asserts it succeeded.
pub fn curl_finish(child: Child) -> Run {
    let out = child.wait_with_output().expect("curl ran");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "curl: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: Vec<f64> = text.split(' ').map(|v| v.parse().unwrap()).collect();
    Run {
        bytes: f[0] as u64,
        secs: f[2] - f[1],
    }
}

/// Asserts `got` (MiB/s) is within `tolerance` (a fraction) of `want`, and prints both.
#[track_caller]
pub fn within(what: &str, got: f64, want: f64, tolerance: f64) {
    let off = (got - want).abs() / want;
    eprintln!(
        "{what}: {got:.3} MiB/s, want {want:.3} ({:+.1}%)",
        (got / want - 1.0) * 100.0
    );
    assert!(
        off <= tolerance,
        "{what}: {got:.3} MiB/s, want {want:.3} within {tolerance}"
    );
}
