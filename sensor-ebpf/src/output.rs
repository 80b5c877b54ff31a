//! Maps shared by every program, and the record header every event starts with.

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_ktime_get_boot_ns,
    },
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use saker_common::{class, Config, Header};

use crate::{kernel, syscall::Pending};

/// Default size; the loader may change it (must be a power-of-two multiple of the page).
#[map(name = "EVENTS")]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 * 1024 * 1024, 0);

#[map(name = "CONFIG")]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// Failed ring-buffer reserves (and pending-map failures), per CPU, per class.
#[map(name = "DROPS")]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(class::COUNT, 0);

/// Syscall arguments remembered from sys_enter until sys_exit, per thread. LRU so that a
/// thread that never returns (killed mid-syscall) cannot leak entries forever.
#[map(name = "PENDING")]
pub static PENDING: LruHashMap<u64, Pending> = LruHashMap::with_max_entries(16384, 0);

/// cgroup ids exempt from drift prevention.
#[map(name = "PREVENT_ALLOW")]
pub static PREVENT_ALLOW: HashMap<u64, u8> = HashMap::with_max_entries(4096, 0);

/// The current config, or `None` when userspace has not written it yet (report nothing).
#[inline(always)]
pub fn config() -> Option<&'static Config> {
    CONFIG.get(0)
}

/// Whether events of `cls` from the current task should be reported.
#[inline(always)]
pub fn wanted(cls: u32) -> Option<&'static Config> {
    let cfg = config()?;
    if cfg.enabled & (1 << cls) == 0 {
        return None;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if cfg.self_tgid != 0 && tgid == cfg.self_tgid {
        return None;
    }
    if cfg.cgroup_filter != 0 && unsafe { bpf_get_current_cgroup_id() } != cfg.cgroup_filter {
        return None;
    }
    Some(cfg)
}

#[inline(always)]
pub fn count_drop(cls: u32) {
    if let Some(p) = DROPS.get_ptr_mut(cls) {
        // Per-CPU slot: no other writer can race with this one.
        unsafe { *p += 1 };
    }
}

/// Fills the header from the current task.
#[inline(always)]
pub fn fill_header(hdr: *mut Header, kind: u32) {
    let task = kernel::current_task();
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let (mnt_ns, pid_ns) = kernel::task_namespaces(task);
    unsafe {
        (*hdr).kind = kind;
        (*hdr).flags = 0;
        (*hdr).ktime_ns = bpf_ktime_get_boot_ns();
        (*hdr).pid = pid_tgid as u32;
        (*hdr).tgid = (pid_tgid >> 32) as u32;
        (*hdr).ppid = kernel::task_ppid(task);
        (*hdr).uid = uid_gid as u32;
        (*hdr).gid = (uid_gid >> 32) as u32;
        (*hdr).loginuid = kernel::task_loginuid(task);
        (*hdr).cgroup_id = bpf_get_current_cgroup_id();
        (*hdr).mnt_ns = mnt_ns;
        (*hdr).pid_ns = pid_ns;
        (*hdr).comm = bpf_get_current_comm().unwrap_or([0; 16]);
    }
}

const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_RING_SIZE: u64 = 1;

/// Submit flags: no wakeup per record (userspace drains the ring on a short timer, so a
/// burst costs one wakeup instead of one per event), except when the ring is a quarter
/// full, so a burst is drained before it can overflow.
#[inline(always)]
pub fn wakeup_flags() -> u64 {
    let avail = EVENTS.query(BPF_RB_AVAIL_DATA);
    let size = EVENTS.query(BPF_RB_RING_SIZE);
    if avail.saturating_mul(4) >= size {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}
