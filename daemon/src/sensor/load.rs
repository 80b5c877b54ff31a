//! Loading: BTF offsets → globals, map sizes, attach every program, report what attached.

use std::{os::unix::fs::MetadataExt, path::Path, sync::Arc};

use aya::{
    maps::{Array, PerCpuArray, RingBuf},
    programs::{FExit, RawTracePoint, TracePoint},
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
    Raw(String),
    Syscall(String),
    FExit(String),
}

impl Hook {
    fn describe(&self) -> String {
        match self {
            Hook::Raw(tp) => format!("raw_tracepoint/{tp}"),
            Hook::Syscall(tp) => format!("tracepoint/syscalls/{tp}"),
            Hook::FExit(f) => format!("fexit/{f}"),
        }
    }
}

/// Scheduler hooks: always raw tracepoints.
const SCHED: &[(&str, u32)] = &[
    ("sched_process_exec", class::EXEC),
    ("sched_process_fork", class::LIFECYCLE),
    ("sched_process_exit", class::LIFECYCLE),
];

/// One syscall the sensor watches: an fexit program on the kernel's syscall function
/// (preferred), or the program pair on its sys_enter/sys_exit tracepoints (programs named
/// like the tracepoints).
///
/// Why fexit first: enabling any syscall tracepoint puts every task's every syscall on the
/// kernel's slow syscall-tracing path, and each traced call then pays two programs and a
/// map insert/delete; an fexit program costs one trampoline call on that syscall only.
pub(super) struct SyscallHook {
    /// The syscall's name (`openat`): fexit program `fexit_<name>` on `__x64_sys_<name>`,
    /// tracepoint programs `sys_enter_<name>`/`sys_exit_<name>`.
    pub(super) name: &'static str,
    class: u32,
}

pub(super) const SYSCALLS: &[SyscallHook] = &[
    SyscallHook {
        name: "openat",
        class: class::FILE,
    },
    SyscallHook {
        name: "openat2",
        class: class::FILE,
    },
    SyscallHook {
        name: "creat",
        class: class::FILE,
    },
    SyscallHook {
        name: "chmod",
        class: class::FILE,
    },
    SyscallHook {
        name: "fchmod",
        class: class::FILE,
    },
    SyscallHook {
        name: "fchmodat",
        class: class::FILE,
    },
    SyscallHook {
        name: "fchmodat2",
        class: class::FILE,
    },
    SyscallHook {
        name: "memfd_create",
        class: class::FILE,
    },
    SyscallHook {
        name: "unlink",
        class: class::FILE,
    },
    SyscallHook {
        name: "unlinkat",
        class: class::FILE,
    },
    SyscallHook {
        name: "connect",
        class: class::NET,
    },
];

/// How the file and network programs attach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallHooks {
    /// The cheapest that works: fexit on every syscall function (no syscall tracing at
    /// all), else one raw tracepoint program on `sys_exit` (arguments from the saved
    /// registers, no map), else the syscall tracepoint pairs.
    #[default]
    Auto,
    /// The raw `sys_exit` program, else the tracepoint pairs.
    RawSysExit,
    /// Only the syscall tracepoint pairs (the last fallback, forced; for tests and
    /// comparisons).
    Tracepoints,
}

/// One program's attach result.
#[derive(Clone, Debug, Serialize)]
pub struct Attached {
    pub program: String,
    pub hook: String,
    pub class: String,
    /// `None` when attached; the reason otherwise.
    pub error: Option<String>,
    /// Set on a fallback program: why the preferred hook (fexit) was not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_from: Option<String>,
}

/// What the sensor attached, for logs and `NodeService.GetInfo`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AttachReport {
    pub programs: Vec<Attached>,
    /// Whether the overlay upper-layer check is active (ovl_inode found in BTF).
    pub upper_layer_check: bool,
    /// Whether the kernel BTF has x86-64 syscall registers and thread status (fexit and
    /// the raw `sys_exit` program possible).
    pub syscall_regs: bool,
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
        syscall_regs: offsets::syscall_regs(&btf).is_some(),
        ring_bytes: cfg.ring_bytes,
        ..Default::default()
    };
    for (name, cls) in SCHED {
        let hook = Hook::Raw(name.to_string());
        let result = attach(&mut ebpf, name, &hook, None);
        report.push(name, &hook, *cls, result, None);
    }
    attach_syscalls(&mut ebpf, syscall_hooks(cfg), &mut report);
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

impl AttachReport {
    fn push(
        &mut self,
        program: &str,
        hook: &Hook,
        cls: u32,
        result: Result<(), SensorError>,
        fallback_from: Option<String>,
    ) {
        let class = class::NAMES[cls as usize];
        self.push_named(program, hook, class, result, fallback_from);
    }

    fn push_named(
        &mut self,
        program: &str,
        hook: &Hook,
        class: &str,
        result: Result<(), SensorError>,
        fallback_from: Option<String>,
    ) {
        self.programs.push(Attached {
            program: program.to_string(),
            hook: hook.describe(),
            class: class.to_string(),
            error: result.err().map(|e| error_chain(&e)),
            fallback_from,
        });
    }
}

/// The configured syscall hooks, unless `SAKER_SYSCALL_HOOKS` (`tracepoints`,
/// `raw_sys_exit`) forces a fallback (for comparing the paths on one node, e.g. in
/// `cargo xtask bench sensor`).
fn syscall_hooks(cfg: &SensorConfig) -> SyscallHooks {
    match std::env::var("SAKER_SYSCALL_HOOKS").as_deref() {
        Ok("tracepoints") => SyscallHooks::Tracepoints,
        Ok("raw_sys_exit") => SyscallHooks::RawSysExit,
        _ => cfg.syscall_hooks,
    }
}

/// Name of the raw `sys_exit` program (covers every syscall in [`SYSCALLS`]).
pub(super) const RAW_SYS_EXIT: &str = "raw_sys_exit";

/// Attaches the file/network programs: the first of fexit, raw `sys_exit`, tracepoint
/// pairs that works (see [`SyscallHooks`]). The fallback programs' reports say why the
/// better hooks were not used.
fn attach_syscalls(ebpf: &mut Ebpf, mode: SyscallHooks, report: &mut AttachReport) {
    let mut why_not = Vec::new();
    if !report.syscall_regs && mode != SyscallHooks::Tracepoints {
        why_not.push("no x86-64 pt_regs/thread_info in the kernel BTF".to_string());
    } else {
        if mode == SyscallHooks::Auto {
            match attach_fexit(ebpf, report) {
                Ok(()) => return,
                Err(e) => why_not.push(e),
            }
        }
        if mode != SyscallHooks::Tracepoints {
            let hook = Hook::Raw("sys_exit".into());
            match attach(ebpf, RAW_SYS_EXIT, &hook, None) {
                Ok(()) => {
                    let fallback = (!why_not.is_empty()).then(|| why_not.join("; "));
                    report.push_named(RAW_SYS_EXIT, &hook, "file,net", Ok(()), fallback);
                    return;
                }
                Err(e) => why_not.push(format!("{}: {}", hook.describe(), error_chain(&e))),
            }
        }
    }
    let fallback = (!why_not.is_empty()).then(|| why_not.join("; "));
    for sc in SYSCALLS {
        for phase in ["enter", "exit"] {
            let prog = format!("sys_{phase}_{}", sc.name);
            let hook = Hook::Syscall(prog.clone());
            let result = attach(ebpf, &prog, &hook, None);
            report.push(&prog, &hook, sc.class, result, fallback.clone());
        }
    }
}

/// fexit on every syscall function, or none: a partial set would leave some syscalls to
/// the raw program, which would then report the others twice.
fn attach_fexit(ebpf: &mut Ebpf, report: &mut AttachReport) -> Result<(), String> {
    let btf = aya::Btf::from_sys_fs().map_err(|e| format!("fexit: {}", error_chain(&e)))?;
    let mut done: Vec<String> = Vec::new();
    for sc in SYSCALLS {
        let prog = format!("fexit_{}", sc.name);
        let hook = Hook::FExit(format!("__x64_sys_{}", sc.name));
        if let Err(e) = attach(ebpf, &prog, &hook, Some(&btf)) {
            for p in &done {
                let f: Option<&mut FExit> =
                    ebpf.program_mut(p).and_then(|prog| prog.try_into().ok());
                if let Some(f) = f {
                    let _ = f.unload();
                }
            }
            return Err(format!("{}: {}", hook.describe(), error_chain(&e)));
        }
        done.push(prog);
    }
    for (sc, prog) in SYSCALLS.iter().zip(done) {
        let hook = Hook::FExit(format!("__x64_sys_{}", sc.name));
        report.push(&prog, &hook, sc.class, Ok(()), None);
    }
    Ok(())
}

fn attach(
    ebpf: &mut Ebpf,
    name: &str,
    hook: &Hook,
    btf: Option<&aya::Btf>,
) -> Result<(), SensorError> {
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
        Hook::FExit(func) => {
            let p: &mut FExit = prog.try_into().map_err(perr)?;
            let btf = btf.ok_or_else(|| SensorError::FExit("no kernel BTF".into()))?;
            p.load(func, btf).map_err(perr)?;
            p.attach().map_err(perr)?;
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
