//! The process and its identity: the signal self-pipe, root checks, `USER[:GROUP]` lookups,
//! dropping privileges (keeping CAP_NET_BIND_SERVICE alone for --port-20), the descriptor
//! limit, the kernel's ephemeral port range and random numbers from getrandom(2).
//! Runs at start-up or from the loop's signal handling; never touches a socket or a file of a
//! session, and decides nothing about who may run as whom (main.rs does).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use super::{cvt, net::pipe};

/// The write end of the signal pipe, for the async-signal-safe handler.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the byte, which is
        // fine: one pending byte already wakes the loop.
        unsafe { libc::write(fd, &byte as *const u8 as *const libc::c_void, 1) };
    }
}

/// Routes `signals` into a non-blocking pipe (the self-pipe trick) and returns its read end,
/// to register with the poll loop. Each byte read is the number of a signal received.
pub fn signal_pipe(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    let (read, write) = pipe()?;
    // The write end lives as long as the process: the handler may run at any time.
    SIGNAL_PIPE.store(
        std::os::fd::IntoRawFd::into_raw_fd(write),
        Ordering::Relaxed,
    );
    for &signal in signals {
        // SAFETY: installing a handler that only calls write(2); SA_RESTART keeps other
        // system calls from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            cvt(libc::sigaction(signal, &action, std::ptr::null_mut()))?;
        }
    }
    Ok(read)
}

/// Reads the signal numbers waiting in the signal pipe.
pub fn drain_signals(pipe: &OwnedFd) -> Vec<libc::c_int> {
    let mut buf = [0u8; 64];
    let mut signals = Vec::new();
    loop {
        // SAFETY: reading into our own buffer from our own non-blocking pipe.
        let n = unsafe {
            libc::read(
                pipe.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if n <= 0 {
            return signals;
        }
        signals.extend(buf[..n as usize].iter().map(|&b| b as libc::c_int));
    }
}

/// True when the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Resolves `USER[:GROUP]` (names or numeric ids) to (uid, gid); the group defaults to the
/// user's primary group.
pub fn lookup_identity(spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let (uid, primary_gid) = lookup_user(user)?;
    let gid = match group {
        Some(group) => lookup_group(group)?,
        None => primary_gid,
    };
    Ok((uid, gid))
}

fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    let cname = std::ffi::CString::new(name).map_err(|_| format!("no user {name:?}"))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data; getpwnam_r fills it with pointers into `buf`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf.len()` is its real size.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Ok((pwd.pw_uid, pwd.pw_gid));
    }
    // A numeric uid with no passwd entry: use it as it is, with the same number as group.
    name.parse::<u32>()
        .map(|uid| (uid, uid))
        .map_err(|_| format!("no user {name:?}"))
}

fn lookup_group(name: &str) -> Result<u32, String> {
    let cname = std::ffi::CString::new(name).map_err(|_| format!("no group {name:?}"))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: group is plain data; getgrnam_r fills it with pointers into `buf`.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf.len()` is its real size.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Ok(grp.gr_gid);
    }
    name.parse::<u32>()
        .map_err(|_| format!("no group {name:?}"))
}

/// CAP_NET_BIND_SERVICE's bit (linux/capability.h): binding ports below 1024.
const CAP_NET_BIND_SERVICE: u32 = 1 << 10;
/// _LINUX_CAPABILITY_VERSION_3: 64-bit capability sets, as two 32-bit halves.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`: one 32-bit half of the three sets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// This process's capability sets (capget(2)); [0] holds capabilities 0-31, [1] 32-63.
fn capget() -> io::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: a valid version 3 header and room for the two data structs version 3 writes.
    cvt(unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
    Ok(data)
}

/// Sets this process's capabilities (capset(2)): `effective` and `permitted` both to `low`
/// (capabilities 0-31, all that is ever kept), none inheritable.
fn capset(low: u32) -> io::Result<()> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: low,
            permitted: low,
            inheritable: 0,
        },
        CapData::default(),
    ];
    // SAFETY: a valid version 3 header and the two data structs version 3 reads.
    cvt(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) }).map(drop)
}

fn set_keep_caps(keep: bool) -> io::Result<()> {
    let keep = libc::c_ulong::from(keep);
    // SAFETY: prctl(PR_SET_KEEPCAPS) takes an integer and touches no memory of ours.
    cvt(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, keep, 0, 0, 0) }).map(drop)
}

/// True when this process may bind `port` now: it is unprivileged for the kernel
/// (net.ipv4.ip_unprivileged_port_start) or the process holds CAP_NET_BIND_SERVICE.
pub fn may_bind_port(port: u16) -> bool {
    let unprivileged_from =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .unwrap_or(1024);
    u32::from(port) >= unprivileged_from
        || capget().is_ok_and(|data| data[0].effective & CAP_NET_BIND_SERVICE != 0)
}

/// Drops root for good: supplementary groups, then gid, then uid, each checked, and then
/// proves that root cannot be regained. With `keep_bind_service` (--port-20), the one
/// capability CAP_NET_BIND_SERVICE survives the change of uid (PR_SET_KEEPCAPS across setuid,
/// then capset down to that capability alone, then the flag cleared again); every other
/// capability goes. `Err` from the inner result: the kernel would not keep it (a bounding set
/// without it, say), and the process holds no capability at all.
pub fn drop_privileges(
    uid: u32,
    gid: u32,
    keep_bind_service: bool,
) -> Result<io::Result<()>, String> {
    let os = |what: &str| format!("{what}: {}", io::Error::last_os_error());
    let keep_bind_service = keep_bind_service && uid != 0;
    // SAFETY: plain system calls on integers and a one-element array that outlives the call.
    unsafe {
        if libc::setgroups(1, &gid) != 0 {
            return Err(os("setgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(os("setgid"));
        }
    }
    let mut kept = if keep_bind_service {
        set_keep_caps(true)
    } else {
        Ok(())
    };
    // SAFETY: as above.
    if unsafe { libc::setuid(uid) } != 0 {
        return Err(os("setuid"));
    }
    let mut wanted = 0;
    if keep_bind_service {
        if kept.is_ok() {
            kept = capset(CAP_NET_BIND_SERVICE);
            match kept {
                Ok(()) => wanted = CAP_NET_BIND_SERVICE,
                // The permitted set kept across setuid holds root's every capability: when
                // the narrowing failed, none may stay.
                Err(_) => capset(0).map_err(|e| format!("capset: {e}"))?,
            }
        }
        set_keep_caps(false).map_err(|e| format!("prctl(PR_SET_KEEPCAPS, 0): {e}"))?;
    }
    // SAFETY: plain system calls without arguments.
    let ids = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    if ids != (uid, uid, gid, gid) {
        return Err("the new user and group did not take effect".into());
    }
    if uid != 0 {
        let caps = capget().map_err(|e| format!("capget: {e}"))?;
        let expected = [
            CapData {
                effective: wanted,
                permitted: wanted,
                inheritable: 0,
            },
            CapData::default(),
        ];
        if caps != expected {
            return Err(format!(
                "capabilities left after dropping privileges: {caps:x?}"
            ));
        }
        // SAFETY: as above.
        if unsafe { libc::setuid(0) } == 0 {
            return Err("root could be regained after dropping privileges".into());
        }
    }
    Ok(kept)
}

/// The kernel's range of ephemeral ports (net.ipv4.ip_local_port_range), where passive
/// listeners go when --pasv-ports is not given: the ports the kernel itself would pick.
pub fn ephemeral_port_range() -> (u16, u16) {
    const DEFAULT: (u16, u16) = (32768, 60999);
    let Ok(text) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") else {
        return DEFAULT;
    };
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(min)), Some(Ok(max))) if 1024 <= min && min <= max => (min, max),
        _ => DEFAULT,
    }
}

/// Raises the soft limit on open descriptors (RLIMIT_NOFILE) to `wanted`, or to the hard
/// limit when that is lower; never lowers it. Returns the soft limit now in force.
pub fn raise_descriptor_limit(wanted: u64) -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the kernel to fill.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    let wanted = libc::rlim_t::try_from(wanted).unwrap_or(libc::rlim_t::MAX);
    let target = wanted.min(limit.rlim_max);
    if target > limit.rlim_cur {
        limit.rlim_cur = target;
        // SAFETY: as above; only the soft limit changes, within the hard one.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })?;
    }
    // rlim_t is 32 bits on some 32-bit boards: widen, never truncate.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(limit.rlim_cur))
}

/// umask(2): `mask` (0o777 at most) for every file and directory the process creates from now.
pub fn set_umask(mask: u32) {
    // SAFETY: umask cannot fail and touches no memory.
    unsafe {
        libc::umask((mask & 0o777) as libc::mode_t);
    }
}

/// Fills `buf` from the kernel's random pool (getrandom(2) with GRND_NONBLOCK: never waits,
/// like /dev/urandom, but needs no file). Fails with EAGAIN only in early boot, before the pool
/// is initialized.
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        // SAFETY: `rest` is valid for writes of its length.
        let got = unsafe {
            libc::getrandom(
                rest.as_mut_ptr() as *mut libc::c_void,
                rest.len(),
                libc::GRND_NONBLOCK,
            )
        };
        match cvt(got) {
            Ok(n) => filled += n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A random number from the kernel (`fill_random`, never blocking); the clock if that fails.
pub fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    if fill_random(&mut buf).is_ok() {
        return u32::from_ne_bytes(buf);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}
