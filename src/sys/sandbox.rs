//! The kernel sandbox around the whole process, applied once start-up is done (listeners
//! bound, privileges dropped, users file, certificate and log files opened):
//!
//! 1. `PR_SET_NO_NEW_PRIVS`: no exec can ever gain privileges again (set-uid, file caps).
//! 2. Landlock (Linux 5.13+), through the `landlock` crate at the highest ABI it knows,
//!    degrading feature by feature to what the kernel offers (`CompatLevel::BestEffort`): every
//!    file-system right is handled, and the process keeps only what `Policy` lists.
//! 3. seccomp-bpf, through `seccompiler`: two filters. The first kills the process on the calls
//!    only an exploit makes (`KILLED`, and `socket` of a family other than INET, INET6 and
//!    UNIX); the second allows the calls of `ALLOWED` and fails every other with ENOSYS, so that
//!    a newer C library falls back instead of dying. The kernel runs both on every call and takes
//!    the stricter answer. Filters are built for the architecture of the build target and with its
//!    syscall numbers (`libc::SYS_*`); the filter itself kills a call made under another
//!    architecture's convention.
//!
//! A layer the kernel refuses (too old, a container that forbids it) is left out and said so
//! in the `Applied` report; it never stops the server.

use std::fmt;
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, BitFlags, LandlockStatus, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, ABI,
};

/// What the process may still reach of the file system. Built in one place (confine.rs), from
/// the flags and the files start-up opened; every path must exist when the sandbox is applied.
#[derive(Debug, Default, Clone)]
pub struct Policy {
    /// Trees read-only: files read, directories listed (read-only homes, the anonymous root).
    pub read_trees: Vec<PathBuf>,
    /// Trees with every file-system right but exec: read-write homes, a --writable anonymous
    /// root, --sandbox-root.
    pub write_trees: Vec<PathBuf>,
    /// Files read again by name later (the users file, the TLS certificate and key at SIGHUP),
    /// symlinks resolved: their directory's read-file right only (no listing), so that a file
    /// replaced by a rename, or a renewed certificate beside the old one, is read.
    pub read_files: Vec<PathBuf>,
    /// Files appended to and opened again by name (the xferlog at SIGHUP): their directory may
    /// have files created and written in it (after a rotation moved the old file away), and
    /// nothing else.
    pub log_files: Vec<PathBuf>,
    /// Files opened for writing again by name (the upload FIFO, each time a reader comes
    /// back): the file itself, write only (a FIFO made anew under that name is not reached).
    pub write_files: Vec<PathBuf>,
    /// Files removed at exit (the pid file): their directory's remove-file right only.
    pub removed_files: Vec<PathBuf>,
    /// Unix sockets connected again by path (syslog, NOTIFY_SOCKET). Only Landlock ABI 9
    /// restricts that; their directory gets that right only (a restarted syslog daemon makes a
    /// new socket file). The one entry that may be missing: it is then left out.
    pub unix_sockets: Vec<PathBuf>,
    /// --workers above 1, applied in the supervisor before it forks: the workers inherit the
    /// filter, so it also allows what supervising takes (`filter::SUPERVISING`: fork, reap,
    /// signal, the channel's socketpair, a fresh worker's own epoll).
    pub supervises_workers: bool,
}

/// What `apply` put in force; its Display is the start-up log line.
#[derive(Debug)]
pub struct Applied {
    pub no_new_privs: Result<(), String>,
    /// The ABI in force (the lower of the kernel's and the crate's), or why Landlock is not.
    pub landlock: Result<i32, String>,
    pub seccomp: Result<(), String>,
}

impl Applied {
    /// True when Landlock confines the file system (homes outside `Policy` are unreachable).
    pub fn landlock_in_force(&self) -> bool {
        self.landlock.is_ok()
    }

    /// Every layer in force.
    pub fn complete(&self) -> bool {
        self.no_new_privs.is_ok() && self.landlock.is_ok() && self.seccomp.is_ok()
    }
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut on = Vec::new();
        let mut off = Vec::new();
        match &self.no_new_privs {
            Ok(()) => on.push("no_new_privs".to_string()),
            Err(e) => off.push(format!("no_new_privs not set: {e}")),
        }
        match &self.landlock {
            Ok(abi) => on.push(format!("landlock ABI {abi} (fs)")),
            Err(e) => off.push(format!("no landlock: {e}")),
        }
        match &self.seccomp {
            Ok(()) => on.push("seccomp".to_string()),
            Err(e) => off.push(format!("no seccomp: {e}")),
        }
        let on = if on.is_empty() {
            "nothing".to_string()
        } else {
            on.join(", ")
        };
        write!(f, "sandbox: {on}")?;
        if !off.is_empty() {
            write!(f, "; {}", off.join("; "))?;
        }
        Ok(())
    }
}

/// Confines the process for good: no_new_privs, then Landlock, then seccomp (last, so that the
/// calls the first two make need not be allowed). Each layer the kernel refuses is reported.
pub fn apply(policy: &Policy) -> Applied {
    // SAFETY: tzset only reads the environment and /etc/localtime, which Landlock will hide:
    // glibc reads the zone once, and localtime_r (the xferlog) uses it from then on.
    unsafe { tzset() };
    let no_new_privs = set_no_new_privs().map_err(|e| e.to_string());
    let landlock = landlock(policy);
    let seccomp = seccomp(policy.supervises_workers);
    Applied {
        no_new_privs,
        landlock,
        seccomp,
    }
}

extern "C" {
    fn tzset();
}

fn set_no_new_privs() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only; it touches no memory of ours.
    super::cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

// ---- Landlock -----------------------------------------------------------------------------

/// The newest ABI the crate knows; `BestEffort` takes what the kernel has of it.
const LANDLOCK_ABI: ABI = ABI::V10;
const LANDLOCK_ABI_NUMBER: i32 = 10;

/// The Landlock ABI the kernel offers (landlock_create_ruleset's version query), 0 for none.
fn kernel_landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the version query takes no ruleset (NULL, size 0) and touches no memory.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(version.max(0)).unwrap_or(0)
}

fn landlock(policy: &Policy) -> Result<i32, String> {
    let all = AccessFs::from_all(LANDLOCK_ABI);
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    // Everything but running programs (seccomp kills execve anyway).
    let write = all & !AccessFs::Execute;
    let mut rules: Vec<(&Path, BitFlags<AccessFs>)> = Vec::new();
    rules.extend(policy.read_trees.iter().map(|p| (p.as_path(), read)));
    rules.extend(policy.write_trees.iter().map(|p| (p.as_path(), write)));
    rules.extend((policy.read_files.iter()).map(|file| (parent(file), AccessFs::ReadFile.into())));
    for file in &policy.log_files {
        rules.push((parent(file), AccessFs::MakeReg | AccessFs::WriteFile));
    }
    rules.extend(
        policy
            .write_files
            .iter()
            .map(|p| (p.as_path(), AccessFs::WriteFile.into())),
    );
    for file in &policy.removed_files {
        rules.push((parent(file), AccessFs::RemoveFile.into()));
    }
    let mut ruleset = Ruleset::default()
        .handle_access(all)
        .map_err(|e| e.to_string())?
        .create()
        .map_err(|e| e.to_string())?;
    for (path, access) in rules {
        let fd = PathFd::new(path).map_err(|e| format!("{}: {e}", path.display()))?;
        ruleset = add_rule(ruleset, path, fd, access)?;
    }
    // A socket's directory may be missing (syslog not there yet): no rule for it then.
    for dir in policy.unix_sockets.iter().map(|socket| parent(socket)) {
        if let Ok(fd) = PathFd::new(dir) {
            ruleset = add_rule(ruleset, dir, fd, AccessFs::ResolveUnix.into())?;
        }
    }
    let status = ruleset.restrict_self().map_err(|e| e.to_string())?;
    match status.landlock {
        LandlockStatus::Available { .. } => {}
        LandlockStatus::NotEnabled => return Err("Landlock is not enabled in the kernel".into()),
        LandlockStatus::NotImplemented => return Err("the kernel has no Landlock".into()),
    }
    // What the log says: the ABI in force, the lower of the kernel's and the crate's.
    let abi = kernel_landlock_abi().min(LANDLOCK_ABI_NUMBER);
    // Partly enforced is the normal case: the kernel lacks rights of newer ABIs than its own.
    match status.ruleset {
        RulesetStatus::NotEnforced => Err("the kernel enforced no rule".into()),
        _ => Ok(abi),
    }
}

fn add_rule(
    ruleset: RulesetCreated,
    path: &Path,
    fd: PathFd,
    access: BitFlags<AccessFs>,
) -> Result<RulesetCreated, String> {
    (ruleset.add_rule(PathBeneath::new(fd, access))).map_err(|e| format!("{}: {e}", path.display()))
}

/// The directory a file is in (`/` for a file at the top; `.` for a bare name).
fn parent(file: &Path) -> &Path {
    match file.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
        Some(dir) => dir,
        None => file,
    }
}

// ---- seccomp ------------------------------------------------------------------------------

/// The archs seccompiler builds filters for and whose syscall table below is checked (their
/// libc constants); elsewhere (32-bit ARM boards) the layer is left out and said so.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn seccomp(_supervises_workers: bool) -> Result<(), String> {
    Err(format!("no filter for {}", std::env::consts::ARCH))
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use filter::seccomp;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod filter {
    use std::collections::BTreeMap;

    use libc::c_long;
    use seccompiler::{
        BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
        SeccompFilter, SeccompRule, TargetArch,
    };

    /// The system calls the running server makes, by what makes them. Measured with
    /// `strace -f -c` and a logging filter over the whole test suite (plain, FTPS, checksums,
    /// SIGHUP, --inetd, a full disk, socket activation, syslog, xferlog), in one process and
    /// with --workers 2 (README: Kernel sandbox). Everything else fails with ENOSYS. Keep one
    /// group per purpose, with its reason.
    pub(super) const ALLOWED: &[&[c_long]] = &[
        // The event loop: mio's epoll, and the signal self-pipe's handler and its return (and
        // std's alternate signal stack, taken down at exit).
        &[
            libc::SYS_sigaltstack,
            libc::SYS_epoll_pwait,
            libc::SYS_epoll_pwait2,
            libc::SYS_epoll_ctl,
            libc::SYS_rt_sigaction,
            libc::SYS_rt_sigprocmask,
            libc::SYS_rt_sigreturn,
        ],
        // Memory: the allocator and the stack guard (never executable: see `no_exec`).
        &[
            libc::SYS_brk,
            libc::SYS_munmap,
            libc::SYS_mremap,
            libc::SYS_madvise,
        ],
        // Descriptors: reads and writes of sockets, files and pipes, and their flags (no ioctl:
        // mio and the system layer set O_NONBLOCK with fcntl or at creation).
        &[
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_readv,
            libc::SYS_writev,
            libc::SYS_pread64,
            libc::SYS_pwrite64,
            libc::SYS_lseek,
            libc::SYS_close,
            libc::SYS_fcntl,
        ],
        // Sockets: control and data connections, passive listeners, the syslog datagram and
        // sd_notify (the families are checked by the kill filter).
        &[
            libc::SYS_socket,
            libc::SYS_bind,
            libc::SYS_listen,
            libc::SYS_accept4,
            libc::SYS_connect,
            libc::SYS_getsockname,
            libc::SYS_getpeername,
            libc::SYS_setsockopt,
            libc::SYS_getsockopt,
            libc::SYS_shutdown,
            libc::SYS_sendto,
            libc::SYS_recvfrom,
            libc::SYS_sendmsg,
            libc::SYS_recvmsg,
        ],
        // Transfers: sendfile downloads, spliced uploads through a pipe.
        &[libc::SYS_sendfile, libc::SYS_splice, libc::SYS_pipe2],
        // The jail: descriptor-relative opens (openat2 RESOLVE_BENEATH, or the O_NOFOLLOW walk),
        // listings, and the file commands (DELE, RMD, MKD, RNFR/RNTO, MFMT, SITE CHMOD).
        &[
            libc::SYS_openat,
            libc::SYS_openat2,
            libc::SYS_fstat,
            libc::SYS_newfstatat,
            libc::SYS_statx,
            libc::SYS_getdents64,
            libc::SYS_readlinkat,
            libc::SYS_unlinkat,
            libc::SYS_mkdirat,
            libc::SYS_renameat2,
            libc::SYS_utimensat,
            libc::SYS_fchmod,
            libc::SYS_ftruncate,
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_fadvise64,
        ],
        // Time (the vDSO answers most reads itself), randomness (TLS, ports), the process id for
        // abort(), and futex for std's uncontended locks.
        &[
            libc::SYS_clock_gettime,
            libc::SYS_gettimeofday,
            libc::SYS_getrandom,
            libc::SYS_getpid,
            libc::SYS_gettid,
            libc::SYS_futex,
        ],
        // Leaving: exit, and abort() after a panic in the loop itself (raise SIGABRT).
        &[libc::SYS_exit, libc::SYS_exit_group, libc::SYS_tgkill],
    ];

    /// --workers: the supervisor forks (glibc's fork is clone), reaps (wait4) and signals (kill)
    /// its workers and makes each one's channel (socketpair); a worker just forked registers its
    /// robust-futex list again (glibc's fork, in the child: the logging filter over the suite
    /// with --workers 2 named it at every fork) and makes its own event loop (epoll_create1).
    /// Allowed only when the server supervises workers.
    pub(super) const SUPERVISING: &[c_long] = &[
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_wait4,
        libc::SYS_kill,
        libc::SYS_socketpair,
        libc::SYS_set_robust_list,
        libc::SYS_epoll_create1,
    ];

    /// x86_64's older forms of calls above, which a C library may still pick.
    #[cfg(target_arch = "x86_64")]
    pub(super) const ALLOWED_LEGACY: &[c_long] = &[
        libc::SYS_epoll_wait,
        libc::SYS_open,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_readlink,
        libc::SYS_unlink,
        libc::SYS_renameat,
        libc::SYS_pipe,
        libc::SYS_time,
    ];
    #[cfg(not(target_arch = "x86_64"))]
    pub(super) const ALLOWED_LEGACY: &[c_long] = &[];

    /// Memory mappings, allowed only without PROT_EXEC: no code is made at run time.
    pub(super) const NO_EXEC: &[c_long] = &[libc::SYS_mmap, libc::SYS_mprotect];

    /// Calls only an exploit makes: the process is killed (SIGSYS) before they run.
    pub(super) const KILLED: &[c_long] = &[
        // Running another program.
        libc::SYS_execve,
        libc::SYS_execveat,
        // Reading or writing another process.
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        // Changing the file-system namespace (the old and the new mount API).
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        // The kernel itself: BPF programs, a new kernel, modules.
        libc::SYS_bpf,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
    ];

    /// Socket families the server uses: TCP over IPv4 and IPv6, and unix sockets (syslog,
    /// sd_notify). A raw or packet socket kills the process.
    pub(super) const SOCKET_FAMILIES: &[libc::c_int] =
        &[libc::AF_INET, libc::AF_INET6, libc::AF_UNIX];

    pub(super) fn seccomp(supervises_workers: bool) -> Result<(), String> {
        let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
        let kill = kill_filter(arch).map_err(|e| e.to_string())?;
        let allow = allow_filter(arch, supervises_workers).map_err(|e| e.to_string())?;
        // The kill filter first: the allow filter does not allow installing another.
        seccompiler::apply_filter(&kill).map_err(|e| e.to_string())?;
        seccompiler::apply_filter(&allow).map_err(|e| e.to_string())
    }

    pub(super) fn kill_filter(arch: TargetArch) -> Result<BpfProgram, BackendError> {
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
            KILLED.iter().map(|&nr| (nr, Vec::new())).collect();
        let foreign_family = SOCKET_FAMILIES
            .iter()
            .map(|&family| {
                SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, family as u64)
            })
            .collect::<Result<Vec<_>, _>>()?;
        rules.insert(libc::SYS_socket, vec![SeccompRule::new(foreign_family)?]);
        SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::KillProcess,
            arch,
        )?
        .try_into()
    }

    pub(super) fn allow_filter(
        arch: TargetArch,
        supervises_workers: bool,
    ) -> Result<BpfProgram, BackendError> {
        let supervising: &[c_long] = if supervises_workers { SUPERVISING } else { &[] };
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED
            .iter()
            .flat_map(|group| group.iter())
            .chain(ALLOWED_LEGACY)
            .chain(supervising)
            .map(|&nr| (nr, Vec::new()))
            .collect();
        for &nr in NO_EXEC {
            // mmap(addr, len, prot, ...), mprotect(addr, len, prot): no PROT_EXEC bit.
            let no_exec = SeccompCondition::new(
                2,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
                0,
            )?;
            rules.insert(nr, vec![SeccompRule::new(vec![no_exec])?]);
        }
        SeccompFilter::new(
            rules,
            SeccompAction::Errno(libc::ENOSYS as u32),
            SeccompAction::Allow,
            arch,
        )?
        .try_into()
    }
}

// ---- the probe (tests only) -----------------------------------------------------------

/// The test build's probe (cargo feature `sandbox-probe`, never in a default build; SITE PROBE
/// from a logged-in session): tries what an exploit would, directly, bypassing the jail, and
/// says `ok` or `errno N`. `open PATH` and `write PATH` open a file by its path; `unlisted` makes
/// a harmless call the allow list lacks (sysinfo); `exec` runs /bin/true and `packet-socket`
/// opens an AF_PACKET socket, which the sandbox answers by killing the process.
#[cfg(feature = "sandbox-probe")]
pub fn probe(what: &[u8], path: &[u8]) -> String {
    use std::os::unix::ffi::OsStrExt;
    let path = Path::new(std::ffi::OsStr::from_bytes(path));
    let result = match what {
        b"open" => std::fs::File::open(path).map(drop),
        b"write" => std::fs::OpenOptions::new().write(true).open(path).map(drop),
        b"unlisted" => {
            // SAFETY: sysinfo fills the struct it is given, which outlives the call.
            let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
            // SAFETY: as above; the raw call bypasses any libc emulation.
            super::cvt(unsafe { libc::syscall(libc::SYS_sysinfo, &mut info) }).map(drop)
        }
        b"exec" => {
            let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            // SAFETY: NUL-terminated argv and envp that outlive the call; on success the process
            // is /bin/true.
            super::cvt(unsafe { libc::execve(argv[0], argv.as_ptr(), envp.as_ptr()) }).map(drop)
        }
        b"packet-socket" => {
            // SAFETY: socket(2) with integer arguments; the descriptor is owned at once.
            super::owned_fd(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) }).map(drop)
        }
        _ => return "unknown probe".into(),
    };
    match result {
        Ok(()) => "ok".into(),
        Err(e) => format!("errno {}: {e}", e.raw_os_error().unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    use filter::*;
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    use seccompiler::TargetArch;

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn filters_build_for_this_target() {
        let arch = TargetArch::try_from(std::env::consts::ARCH).unwrap();
        assert!(!kill_filter(arch).unwrap().is_empty());
        let single = allow_filter(arch, false).unwrap();
        let supervising = allow_filter(arch, true).unwrap();
        assert!(!single.is_empty());
        // The supervisor's filter is the single process's plus its own calls.
        assert!(supervising.len() > single.len());
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn no_call_is_both_allowed_and_killed() {
        for group in ALLOWED
            .iter()
            .chain([&ALLOWED_LEGACY, &NO_EXEC, &SUPERVISING])
        {
            for nr in group.iter() {
                assert!(!KILLED.contains(nr), "syscall {nr} is in both lists");
            }
        }
    }

    #[test]
    fn the_log_line_names_each_layer() {
        let all = Applied {
            no_new_privs: Ok(()),
            landlock: Ok(5),
            seccomp: Ok(()),
        };
        assert_eq!(
            all.to_string(),
            "sandbox: no_new_privs, landlock ABI 5 (fs), seccomp"
        );
        let old = Applied {
            no_new_privs: Ok(()),
            landlock: Err("the kernel has no Landlock".into()),
            seccomp: Ok(()),
        };
        assert_eq!(
            old.to_string(),
            "sandbox: no_new_privs, seccomp; no landlock: the kernel has no Landlock"
        );
        assert!(!old.complete() && !old.landlock_in_force());
    }
}
