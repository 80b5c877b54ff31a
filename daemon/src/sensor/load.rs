//! Loading: BTF offsets → globals, map sizes, attach every program, report what attached.

use std::{os::unix::fs::MetadataExt, path::Path, sync::Arc};

use aya::{
    maps::{Array, PerCpuArray, RingBuf},
    programs::{RawTracePoint, TracePoint},
    Ebpf, EbpfLoader,
};
use saker_btf::Btf;
use saker_common::{class, maps, Config, OFFSETS_GLOBAL};
use serde::Serialize;

use super::{offsets, Sensor, SensorConfig, SensorError, UserCounters};

/// The sensor object built by build.rs from sensor-ebpf.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/saker-ebpf.o"));

const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
const TRACEFS: &str = "/sys/kernel/tracing";

/// Where each program attaches, and which class it serves.
enum Hook {
    Raw(&'static str),
    Syscall(&'static str),
}

const PROGRAMS: &[(&str, Hook, u32)] = &[
    (
        "sched_process_exec",
        Hook::Raw("sched_process_exec"),
        class::EXEC,
    ),
    (
        "sched_process_fork",
        Hook::Raw("sched_process_fork"),
        class::LIFECYCLE,
    ),
    (
        "sched_process_exit",
        Hook::Raw("sched_process_exit"),
        class::LIFECYCLE,
    ),
    (
        "sys_enter_openat",
        Hook::Syscall("sys_enter_openat"),
        class::FILE,
    ),
    (
        "sys_exit_openat",
        Hook::Syscall("sys_exit_openat"),
        class::FILE,
    ),
    (
        "sys_enter_openat2",
        Hook::Syscall("sys_enter_openat2"),
        class::FILE,
    ),
    (
        "sys_exit_openat2",
        Hook::Syscall("sys_exit_openat2"),
        class::FILE,
    ),
    (
        "sys_enter_creat",
        Hook::Syscall("sys_enter_creat"),
        class::FILE,
    ),
    (
        "sys_exit_creat",
        Hook::Syscall("sys_exit_creat"),
        class::FILE,
    ),
    (
        "sys_enter_chmod",
        Hook::Syscall("sys_enter_chmod"),
        class::FILE,
    ),
    (
        "sys_exit_chmod",
        Hook::Syscall("sys_exit_chmod"),
        class::FILE,
    ),
    (
        "sys_enter_fchmod",
        Hook::Syscall("sys_enter_fchmod"),
        class::FILE,
    ),
    (
        "sys_exit_fchmod",
        Hook::Syscall("sys_exit_fchmod"),
        class::FILE,
    ),
    (
        "sys_enter_fchmodat",
        Hook::Syscall("sys_enter_fchmodat"),
        class::FILE,
    ),
    (
        "sys_exit_fchmodat",
        Hook::Syscall("sys_exit_fchmodat"),
        class::FILE,
    ),
    (
        "sys_enter_fchmodat2",
        Hook::Syscall("sys_enter_fchmodat2"),
        class::FILE,
    ),
    (
        "sys_exit_fchmodat2",
        Hook::Syscall("sys_exit_fchmodat2"),
        class::FILE,
    ),
    (
        "sys_enter_memfd_create",
        Hook::Syscall("sys_enter_memfd_create"),
        class::FILE,
    ),
    (
        "sys_exit_memfd_create",
        Hook::Syscall("sys_exit_memfd_create"),
        class::FILE,
    ),
    (
        "sys_enter_unlink",
        Hook::Syscall("sys_enter_unlink"),
        class::FILE,
    ),
    (
        "sys_exit_unlink",
        Hook::Syscall("sys_exit_unlink"),
        class::FILE,
    ),
    (
        "sys_enter_unlinkat",
        Hook::Syscall("sys_enter_unlinkat"),
        class::FILE,
    ),
    (
        "sys_exit_unlinkat",
        Hook::Syscall("sys_exit_unlinkat"),
        class::FILE,
    ),
    (
        "sys_enter_connect",
        Hook::Syscall("sys_enter_connect"),
        class::NET,
    ),
    (
        "sys_exit_connect",
        Hook::Syscall("sys_exit_connect"),
        class::NET,
    ),
];

/// One program's attach result.
#[derive(Clone, Debug, Serialize)]
pub struct Attached {
    pub program: String,
    pub hook: String,
    pub class: String,
    /// `None` when attached; the reason otherwise.
    pub error: Option<String>,
}

/// What the sensor attached, for logs and `NodeService.GetInfo`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AttachReport {
    pub programs: Vec<Attached>,
    /// Whether the overlay upper-layer check is active (ovl_inode found in BTF).
    pub upper_layer_check: bool,
    pub ring_bytes: u32,
}

impl AttachReport {
    pub fn attached(&self) -> usize {
        self.programs.iter().filter(|p| p.error.is_none()).count()
    }

    pub fn failed(&self) -> impl Iterator<Item = &Attached> {
        self.programs.iter().filter(|p| p.error.is_some())
    }
}

/// Mounts tracefs if needed: syscall tracepoints are found through it.
fn ensure_tracefs() -> Result<(), SensorError> {
    let events = Path::new(TRACEFS).join("events");
    if events.is_dir() {
        return Ok(());
    }
    let src = c"tracefs";
    let target = c"/sys/kernel/tracing";
    // SAFETY: constant NUL-terminated strings; no data pointer.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 && !events.is_dir() {
        return Err(SensorError::Tracefs(format!(
            "{TRACEFS} is not mounted and mounting it failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// The host's mount namespace: init's, or (when init's is not readable, e.g. a restricted
/// pid 1) our own — sakerd runs in the host mount namespace (hostPID, no private mounts of
/// its own namespace in the DaemonSet). Tasks in any other mount namespace count as "in a
/// container" for drift prevention.
pub fn host_mnt_ns() -> u32 {
    ["/proc/1/ns/mnt", "/proc/self/ns/mnt"]
        .iter()
        .find_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.ino() as u32)
        .unwrap_or(0)
}

pub(super) fn load(cfg: &SensorConfig) -> Result<Sensor, SensorError> {
    ensure_tracefs()?;
    let btf = Btf::from_file(Path::new(BTF_PATH)).map_err(SensorError::Btf)?;
    let offsets = offsets::from_btf(&btf)?;

    let mut ebpf: Ebpf = EbpfLoader::new()
        .override_global(OFFSETS_GLOBAL, &offsets, true)
        .map_max_entries(maps::EVENTS, cfg.ring_bytes)
        .load(OBJECT)
        .map_err(|e| SensorError::Load(Box::new(e)))?;

    let mut report = AttachReport {
        upper_layer_check: offsets.have_ovl != 0,
        ring_bytes: cfg.ring_bytes,
        ..Default::default()
    };
    for (name, hook, cls) in PROGRAMS {
        let result = attach(&mut ebpf, name, hook);
        report.programs.push(Attached {
            program: name.to_string(),
            hook: match hook {
                Hook::Raw(tp) => format!("raw_tracepoint/{tp}"),
                Hook::Syscall(tp) => format!("tracepoint/syscalls/{tp}"),
            },
            class: class::NAMES[*cls as usize].to_string(),
            error: result.err().map(|e| error_chain(&e)),
        });
    }
    if report.attached() == 0 {
        let reasons: Vec<String> = report.failed().filter_map(|p| p.error.clone()).collect();
        return Err(SensorError::NothingAttached(reasons.join("; ")));
    }

    let ring = RingBuf::try_from(
        ebpf.take_map(maps::EVENTS)
            .ok_or(SensorError::MissingMap(maps::EVENTS))?,
    )
    .map_err(|e| SensorError::Map {
        map: maps::EVENTS,
        source: Box::new(e),
    })?;
    let config_map = Array::try_from(
        ebpf.take_map(maps::CONFIG)
            .ok_or(SensorError::MissingMap(maps::CONFIG))?,
    )
    .map_err(|e| SensorError::Map {
        map: maps::CONFIG,
        source: Box::new(e),
    })?;
    let drops_map = PerCpuArray::try_from(
        ebpf.take_map(maps::DROPS)
            .ok_or(SensorError::MissingMap(maps::DROPS))?,
    )
    .map_err(|e| SensorError::Map {
        map: maps::DROPS,
        source: Box::new(e),
    })?;

    let mut sensor = Sensor {
        _ebpf: ebpf,
        ring: Some(ring),
        config_map,
        drops_map,
        config: Config::default(),
        report,
        counters: Arc::new(UserCounters::default()),
        queue_capacity: cfg.queue_capacity,
    };
    // Programs report nothing until this is written (enabled = 0 before).
    sensor.set_config(Config {
        enabled: cfg.classes,
        self_tgid: cfg.exclude_pid.unwrap_or(0),
        prevent_drift: u32::from(cfg.prevent_drift),
        host_mnt_ns: host_mnt_ns(),
        cgroup_filter: cfg.cgroup_filter.unwrap_or(0),
    })?;
    Ok(sensor)
}

fn attach(ebpf: &mut Ebpf, name: &str, hook: &Hook) -> Result<(), SensorError> {
    let perr = |e: aya::programs::ProgramError| SensorError::Program {
        program: name.to_string(),
        source: Box::new(e),
    };
    let prog = ebpf.program_mut(name).ok_or_else(|| SensorError::Program {
        program: name.to_string(),
        source: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
    })?;
    match hook {
        Hook::Raw(tp) => {
            let p: &mut RawTracePoint = prog.try_into().map_err(perr)?;
            p.load().map_err(perr)?;
            p.attach(tp).map_err(perr)?;
        }
        Hook::Syscall(tp) => {
            let p: &mut TracePoint = prog.try_into().map_err(perr)?;
            p.load().map_err(perr)?;
            p.attach("syscalls", tp).map_err(perr)?;
        }
    }
    Ok(())
}

/// "outer: inner: innermost" — aya's errors carry the useful part (e.g. the verifier log)
/// in their sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
