//! Dropping capabilities once the eBPF programs are loaded and attached.
//!
//! Loading needs root's big capabilities (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN for tracefs
//! and perf events, CAP_SYS_RESOURCE for memlock). Afterwards the daemon only reads the
//! ring buffer and maps through file descriptors it already holds (no capability since
//! Linux 6.5), reads other processes' `/proc` entries and executables (CAP_SYS_PTRACE,
//! CAP_DAC_READ_SEARCH), talks to containerd's root-owned socket and creates its own
//! socket (uid 0 is the owner: no capability), and may bind a TCP port below 1024
//! (CAP_NET_BIND_SERVICE). Drift prevention kills from inside the eBPF program
//! (`bpf_send_signal`), which needs nothing at run time. Everything else is removed from
//! the effective, permitted, inheritable, ambient and bounding sets, and
//! `no_new_privs` is set, so neither a compromised daemon nor anything it executes can
//! get the capabilities back.
//!
//! Capabilities are per thread in Linux, and the daemon already runs several (tokio's
//! workers, the pipeline) when the sensor is loaded: the drop is applied on the calling
//! thread and then on every other thread of the process from a signal handler (the way
//! glibc applies `setuid` to all threads), and checked in `/proc/self/task/*/status`.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Capability numbers (linux/capability.h) and names, for the masks and the log.
pub mod cap {
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const KILL: u32 = 5;
    pub const SETPCAP: u32 = 8;
    pub const NET_BIND_SERVICE: u32 = 10;
    pub const NET_ADMIN: u32 = 12;
    pub const NET_RAW: u32 = 13;
    pub const SYS_MODULE: u32 = 16;
    pub const SYS_RAWIO: u32 = 17;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
    pub const SYS_RESOURCE: u32 = 24;
    pub const SETFCAP: u32 = 31;
    pub const PERFMON: u32 = 38;
    pub const BPF: u32 = 39;

    pub const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];

    pub const fn bit(c: u32) -> u64 {
        1 << c
    }

    /// Names of the capabilities in `mask` (unknown ones as `cap_N`).
    pub fn names(mask: u64) -> Vec<String> {
        (0..64)
            .filter(|c| mask & (1u64 << c) != 0)
            .map(|c| {
                NAMES
                    .get(c)
                    .map_or_else(|| format!("cap_{c}"), |n| n.to_string())
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("capget: {0}")]
    Capget(#[source] std::io::Error),
    #[error("dropping capabilities on this thread: {0}")]
    Apply(#[source] std::io::Error),
    #[error("installing the per-thread signal handler: {0}")]
    Sigaction(#[source] std::io::Error),
    #[error("reading /proc/self/task: {0}")]
    Tasks(#[source] std::io::Error),
    #[error("threads {0:?} still hold dropped capabilities")]
    Incomplete(Vec<u32>),
    #[error("a thread failed to drop its capabilities: {0}")]
    Thread(#[source] std::io::Error),
}

/// A thread's capability sets, as `/proc/<pid>/task/<tid>/status` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub bounding: u64,
    pub ambient: u64,
}

impl CapSets {
    /// Parses `CapEff`, `CapPrm`, `CapBnd` and `CapAmb` from a status file's text.
    pub fn parse(status: &str) -> Option<CapSets> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        };
        Some(CapSets {
            effective: field("CapEff:")?,
            permitted: field("CapPrm:")?,
            bounding: field("CapBnd:")?,
            ambient: field("CapAmb:").unwrap_or(0),
        })
    }

    /// Reads `/proc/<pid>/task/<tid>/status` (or `/proc/<pid>/status` without a tid).
    pub fn of(pid: u32, tid: Option<u32>) -> Option<CapSets> {
        let path = match tid {
            Some(t) => format!("/proc/{pid}/task/{t}/status"),
            None => format!("/proc/{pid}/status"),
        };
        CapSets::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// Every set is within `keep`.
    fn within(&self, keep: u64, bounding_too: bool) -> bool {
        (self.effective | self.permitted | self.ambient) & !keep == 0
            && (!bounding_too || self.bounding & !keep == 0)
    }
}

/// What [`drop_capabilities`] did.
#[derive(Clone, Debug)]
pub struct Report {
    pub before: CapSets,
    pub after: CapSets,
    /// Threads the drop was applied on (the caller included).
    pub threads: usize,
    /// Whether the bounding set was reduced too (needs CAP_SETPCAP).
    pub bounding: bool,
}

impl Report {
    /// Capabilities removed from the permitted set.
    pub fn dropped(&self) -> u64 {
        self.before.permitted & !self.after.permitted
    }
}

/// What the daemon still needs once the sensor is attached (see the module doc).
pub fn runtime_keep() -> u64 {
    let mut keep = cap::bit(cap::SYS_PTRACE)
        | cap::bit(cap::DAC_READ_SEARCH)
        | cap::bit(cap::NET_BIND_SERVICE);
    // Before Linux 6.5 every bpf() command (map reads through an fd included) needed
    // CAP_BPF (CAP_SYS_ADMIN before 5.8) unless unprivileged BPF was enabled.
    let unpriv_disabled = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .map(|s| s.trim() != "0")
        .unwrap_or(true);
    if let Some(v) = kernel_version() {
        if v < (6, 5) && unpriv_disabled {
            keep |= if v >= (5, 8) {
                cap::bit(cap::BPF)
            } else {
                cap::bit(cap::SYS_ADMIN)
            };
        }
    }
    keep
}

/// The running kernel's (major, minor).
pub fn kernel_version() -> Option<(u32, u32)> {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = r.trim().split(['.', '-']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

// The plan the signal handler applies; set before any signal is sent.
static KEEP: AtomicU64 = AtomicU64::new(u64::MAX);
static LAST_CAP: AtomicU32 = AtomicU32::new(40);
static ANSWERED: AtomicUsize = AtomicUsize::new(0);
static THREAD_ERRNO: AtomicI32 = AtomicI32::new(0);

const PR_CAPBSET_READ: libc::c_int = 23;
const PR_CAPBSET_DROP: libc::c_int = 24;
const PR_SET_NO_NEW_PRIVS: libc::c_int = 38;
const PR_CAP_AMBIENT: libc::c_int = 47;
const PR_CAP_AMBIENT_CLEAR_ALL: libc::c_ulong = 4;
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn errno() -> i32 {
    // SAFETY: errno is thread-local; the pointer is valid for the thread's lifetime.
    unsafe { *libc::__errno_location() }
}

fn capget_self() -> Result<[CapData; 2], i32> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as capget(2) requires for v3.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    if rc != 0 {
        return Err(errno());
    }
    Ok(d)
}

/// Drops everything outside `keep` on the calling thread. Only raw system calls: it runs
/// inside a signal handler on the other threads. Returns 0 or an errno.
fn apply_here(keep: u64, last_cap: u32) -> i32 {
    let mut d = match capget_self() {
        Ok(d) => d,
        Err(e) => return e,
    };
    // The bounding set first, while CAP_SETPCAP is still effective.
    if d[0].effective & (1 << cap::SETPCAP) != 0 {
        for c in 0..=last_cap.min(63) {
            if keep & (1u64 << c) != 0 {
                continue;
            }
            // SAFETY: prctl with integer arguments.
            let present = unsafe { libc::prctl(PR_CAPBSET_READ, c as libc::c_ulong, 0, 0, 0) };
            // SAFETY: as above.
            if present == 1
                && unsafe { libc::prctl(PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) } != 0
            {
                return errno();
            }
        }
    }
    // Older kernels have no ambient set (EINVAL): nothing to clear there.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    // SAFETY: as above.
    if unsafe { libc::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return errno();
    }
    for (i, w) in d.iter_mut().enumerate() {
        let k = (keep >> (32 * i)) as u32;
        w.effective &= k;
        w.permitted &= k;
        w.inheritable &= k;
    }
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    // SAFETY: header and a two-element data array, as capset(2) requires for v3.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) } != 0 {
        return errno();
    }
    0
}

extern "C" fn on_signal(_: libc::c_int) {
    let saved = errno();
    let rc = apply_here(KEEP.load(Ordering::SeqCst), LAST_CAP.load(Ordering::SeqCst));
    if rc != 0 {
        let _ = THREAD_ERRNO.compare_exchange(0, rc, Ordering::SeqCst, Ordering::SeqCst);
    }
    ANSWERED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: restores this thread's errno for the interrupted code.
    unsafe { *libc::__errno_location() = saved };
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

fn tasks() -> Result<Vec<u32>, PrivilegeError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/task").map_err(PrivilegeError::Tasks)? {
        let e = e.map_err(PrivilegeError::Tasks)?;
        if let Some(t) = e.file_name().to_str().and_then(|s| s.parse().ok()) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Removes every capability outside `keep` from all threads of this process (see the
/// module doc). Call once; the signal handler it installs stays (idempotent), so a late
/// signal cannot hit the default action (which would end the process).
pub fn drop_capabilities(keep: u64) -> Result<Report, PrivilegeError> {
    let me = gettid();
    let pid = std::process::id();
    let before = CapSets::of(pid, Some(me)).unwrap_or_default();
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    KEEP.store(keep, Ordering::SeqCst);
    LAST_CAP.store(last_cap, Ordering::SeqCst);
    THREAD_ERRNO.store(0, Ordering::SeqCst);
    let bounding = before.effective & cap::bit(cap::SETPCAP) != 0;

    let sig = libc::SIGRTMIN() + 3;
    // SAFETY: a zeroed sigaction with a handler that only makes raw system calls and
    // touches atomics.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(PrivilegeError::Sigaction(std::io::Error::last_os_error()));
        }
    }
    let rc = apply_here(keep, last_cap);
    if rc != 0 {
        return Err(PrivilegeError::Apply(std::io::Error::from_raw_os_error(rc)));
    }
    let after = CapSets::of(pid, Some(me)).unwrap_or_default();
    // Threads started meanwhile by a not-yet-dropped thread inherit its full sets, so
    // repeat until every thread's status says it is done.
    let mut threads = 1;
    for _round in 0..10 {
        let stale: Vec<u32> = tasks()?
            .into_iter()
            .filter(|&t| t != me)
            .filter(|&t| CapSets::of(pid, Some(t)).is_some_and(|c| !c.within(keep, bounding)))
            .collect();
        if stale.is_empty() {
            break;
        }
        ANSWERED.store(0, Ordering::SeqCst);
        let mut sent = 0;
        for &t in &stale {
            // SAFETY: tgkill to a thread of our own process; a gone thread gives ESRCH.
            if unsafe { libc::syscall(libc::SYS_tgkill, pid as libc::c_int, t as libc::c_int, sig) }
                == 0
            {
                sent += 1;
            }
        }
        threads += sent;
        let end = Instant::now() + Duration::from_secs(1);
        while ANSWERED.load(Ordering::SeqCst) < sent && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        let e = THREAD_ERRNO.load(Ordering::SeqCst);
        if e != 0 {
            return Err(PrivilegeError::Thread(std::io::Error::from_raw_os_error(e)));
        }
    }
    let stale: Vec<u32> = tasks()?
        .into_iter()
        .filter(|&t| CapSets::of(pid, Some(t)).is_some_and(|c| !c.within(keep, bounding)))
        .collect();
    if !stale.is_empty() {
        return Err(PrivilegeError::Incomplete(stale));
    }
    Ok(Report {
        before,
        after,
        threads,
        bounding,
    })
}

/// [`drop_capabilities`] with [`runtime_keep`], logged. Failures are logged, not fatal:
/// the daemon keeps working with the capabilities it had.
pub fn drop_after_load() -> Option<Report> {
    let keep = runtime_keep();
    match drop_capabilities(keep) {
        Ok(r) => {
            tracing::info!(
                dropped = ?cap::names(r.dropped()),
                kept = ?cap::names(r.after.permitted),
                bounding = r.bounding,
                threads = r.threads,
                "capabilities dropped after loading the sensor"
            );
            Some(r)
        }
        Err(e) => {
            tracing::warn!("could not drop capabilities (keeping them): {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_names() {
        let s = "Name:\tsakerd\nCapInh:\t0000000000000000\nCapPrm:\t0000000000080404\n\
                 CapEff:\t0000000000080404\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n";
        let c = CapSets::parse(s).expect("parses");
        assert_eq!(c.permitted, 0x80404);
        assert_eq!(c.bounding, 0x1ff_ffff_ffff);
        assert_eq!(
            cap::names(c.effective),
            [
                "CAP_DAC_READ_SEARCH",
                "CAP_NET_BIND_SERVICE",
                "CAP_SYS_PTRACE"
            ]
        );
        assert_eq!(cap::names(1 << 45), ["cap_45"]);
        assert!(CapSets::parse("Name:\tx\n").is_none());
        assert!(c.within(0x80404, false));
        assert!(!c.within(0x80404, true));
    }

    #[test]
    fn runtime_keep_has_what_the_daemon_uses_and_never_the_loading_caps() {
        let k = runtime_keep();
        for c in [cap::SYS_PTRACE, cap::DAC_READ_SEARCH] {
            assert!(k & cap::bit(c) != 0, "{}", cap::NAMES[c as usize]);
        }
        for c in [cap::PERFMON, cap::NET_ADMIN, cap::SYS_MODULE, cap::SETPCAP] {
            assert!(k & cap::bit(c) == 0, "{}", cap::NAMES[c as usize]);
        }
        if kernel_version().is_some_and(|v| v >= (6, 5)) {
            assert!(k & (cap::bit(cap::BPF) | cap::bit(cap::SYS_ADMIN)) == 0);
        }
    }
}
