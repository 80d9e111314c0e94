//! The kernel sandbox's policy: what start-up leaves reachable (the served trees, the files
//! SIGHUP reads again, the logs, the FIFO, the pid file, the unix sockets), built in one place
//! and handed to `sys::sandbox`, which applies it.

use std::path::PathBuf;

use log::{info, warn};

use crate::config::SandboxTrees;
use crate::session::Shared;
use crate::sys;
use crate::sys::sandbox::Policy;

/// What start-up leaves for the sandbox to allow besides the served trees: --sandbox-root
/// (None: --no-sandbox), `[xferlog, pid file]` and `[syslog, NOTIFY_SOCKET]` as start-up
/// opened them, and whether this process supervises workers.
pub struct Reached {
    pub roots: Option<Vec<PathBuf>>,
    pub files: [Option<PathBuf>; 2],
    pub sockets: [Option<PathBuf>; 2],
    pub supervises_workers: bool,
}

impl Reached {
    /// Last of start-up: from here on the process reaches only what the policy lists.
    pub fn confine(&self, shared: &Shared) {
        let Some(roots) = &self.roots else {
            return warn!("sandbox off (--no-sandbox): a bug can reach all the server's user can");
        };
        confine(shared, self.policy(shared, roots));
    }

    /// The one place that says what the sandbox leaves reachable: the anonymous root and every
    /// home (read-only or read-write as their users may), --sandbox-root, the files SIGHUP
    /// reads again (users file, certificate and key), the xferlog, the upload FIFO, the pid
    /// file and the unix sockets logged or notified to.
    fn policy(&self, shared: &Shared, roots: &[PathBuf]) -> Policy {
        let config = &shared.config;
        let mut policy = Policy {
            write_trees: roots.to_vec(),
            supervises_workers: self.supervises_workers,
            ..Policy::default()
        };
        if config.anonymous {
            match config.writable {
                true => policy.write_trees.push(config.root.clone()),
                false => policy.read_trees.push(config.root.clone()),
            }
        }
        for (_, home, writable) in shared.users.borrow().homes() {
            match writable {
                true => policy.write_trees.push(home.to_path_buf()),
                false => policy.read_trees.push(home.to_path_buf()),
            }
        }
        // Their directories after symlinks: where a replaced or renewed file will be.
        let reread = config.users_file.iter();
        let reread = reread.chain(config.tls.iter().flat_map(|tls| [&tls.cert, &tls.key]));
        policy.read_files = canonical(&reread.cloned().collect::<Vec<_>>());
        let [xferlog, pid_file] = &self.files;
        policy.log_files.extend(xferlog.clone());
        policy.write_files.extend(config.upload_fifo.clone());
        policy.removed_files.extend(pid_file.clone());
        policy.unix_sockets = self.sockets.iter().flatten().cloned().collect();
        policy
    }
}

/// Applies the sandbox and logs which layers are in force (a warning when one is not); once
/// Landlock is, the login check learns its trees.
fn confine(shared: &Shared, policy: Policy) {
    // Resolved before: realpath needs getcwd, which the sandbox refuses.
    let trees = SandboxTrees {
        read: canonical(&policy.read_trees),
        write: canonical(&policy.write_trees),
    };
    let applied = sys::sandbox::apply(&policy);
    if applied.landlock_in_force() {
        let _ = shared.sandbox.set(trees);
    }
    if applied.complete() {
        info!("{applied}");
    } else {
        warn!("{applied}");
    }
}

/// The trees as the login check compares homes with them (a tree that cannot be resolved
/// stays as given).
fn canonical(trees: &[PathBuf]) -> Vec<PathBuf> {
    trees
        .iter()
        .map(|tree| std::fs::canonicalize(tree).unwrap_or_else(|_| tree.clone()))
        .collect()
}
