//! The sensor: load the eBPF programs with offsets from BTF, attach them, read the ring
//! buffer and decode records into [`Event`]s.

pub mod decode;
mod load;
mod offsets;
mod read;
#[cfg(test)]
mod tests;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

pub use load::{host_mnt_ns, AttachReport, Attached, SyscallHooks};
pub use read::EventStream;

use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    Ebpf,
};
use saker_common::{class, Config};

/// Errors of the sensor stage; aya's errors are wrapped, not flattened.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("reading kernel BTF: {0}")]
    Btf(#[source] saker_btf::BtfError),
    #[error("loading the eBPF object: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("program {program}: {source}")]
    Program {
        program: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("map {0} is missing from the eBPF object")]
    MissingMap(&'static str),
    #[error("no program attached (every attach failed: {0})")]
    NothingAttached(String),
    #[error("fexit: {0}")]
    FExit(String),
    #[error("tracefs: {0}")]
    Tracefs(String),
    #[error("ring buffer fd: {0}")]
    Io(#[from] std::io::Error),
}

/// What to load and report.
#[derive(Clone, Debug)]
pub struct SensorConfig {
    /// Ring buffer size in bytes (power-of-two multiple of the page size).
    pub ring_bytes: u32,
    /// Bitmask of enabled classes (`1 << saker_common::class::X`).
    pub classes: u32,
    /// Do not report events of this process (normally the daemon's own pid).
    pub exclude_pid: Option<u32>,
    /// Report only tasks in this cgroup v2 id.
    pub cgroup_filter: Option<u64>,
    /// Kill execs from a container's overlay upper layer (drift prevention).
    pub prevent_drift: bool,
    /// Capacity of the decoded-event queue between the ring reader and consumers.
    pub queue_capacity: usize,
    /// How the file/network programs attach: the cheapest hook that works (fexit, raw
    /// `sys_exit`, syscall tracepoints), or a forced fallback.
    pub syscall_hooks: SyscallHooks,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            ring_bytes: 16 * 1024 * 1024,
            classes: class::ALL_MASK,
            exclude_pid: Some(std::process::id()),
            cgroup_filter: None,
            prevent_drift: false,
            queue_capacity: 65536,
            syscall_hooks: SyscallHooks::Auto,
        }
    }
}

/// Counters of what the sensor could not deliver, by place and class.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Drops {
    /// Ring-buffer reserve failures in the kernel, per class (`class::NAMES`).
    pub kernel: Vec<(String, u64)>,
    /// Records that failed to decode (malformed).
    pub decode_errors: u64,
    /// Decoded events dropped because the consumer queue was full.
    pub queue_full: u64,
}

impl Drops {
    pub fn kernel_class(&self, name: &str) -> u64 {
        self.kernel
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    pub fn total(&self) -> u64 {
        self.kernel.iter().map(|(_, v)| v).sum::<u64>() + self.decode_errors + self.queue_full
    }
}

/// Userspace counters shared between the reader task and the handle.
#[derive(Debug, Default)]
pub(crate) struct UserCounters {
    pub received: AtomicU64,
    pub decode_errors: AtomicU64,
    pub queue_full: AtomicU64,
}

/// A loaded, attached sensor. Dropping it detaches every program.
pub struct Sensor {
    // Keeps programs and links alive.
    _ebpf: Ebpf,
    ring: Option<RingBuf<MapData>>,
    config_map: Array<MapData, Config>,
    drops_map: PerCpuArray<MapData, u64>,
    config: Config,
    report: AttachReport,
    counters: Arc<UserCounters>,
    queue_capacity: usize,
}

impl Sensor {
    /// Loads and attaches the embedded sensor.
    pub fn load(cfg: &SensorConfig) -> Result<Sensor, SensorError> {
        load::load(cfg)
    }

    pub fn report(&self) -> &AttachReport {
        &self.report
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// Replaces the runtime config (classes, exclusions, prevention) without reloading.
    pub fn set_config(&mut self, c: Config) -> Result<(), SensorError> {
        self.config_map.set(0, c, 0).map_err(|e| SensorError::Map {
            map: "CONFIG",
            source: Box::new(e),
        })?;
        self.config = c;
        Ok(())
    }

    /// Current drop counters (kernel per class summed over CPUs, and userspace).
    pub fn drops(&self) -> Result<Drops, SensorError> {
        let mut kernel = Vec::new();
        for (i, name) in class::NAMES.iter().enumerate() {
            let v = self
                .drops_map
                .get(&(i as u32), 0)
                .map_err(|e| SensorError::Map {
                    map: "DROPS",
                    source: Box::new(e),
                })?;
            kernel.push((name.to_string(), v.iter().sum()));
        }
        Ok(Drops {
            kernel,
            decode_errors: self.counters.decode_errors.load(Ordering::Relaxed),
            queue_full: self.counters.queue_full.load(Ordering::Relaxed),
        })
    }

    /// Records received from the ring buffer so far (decoded or not).
    pub fn received(&self) -> u64 {
        self.counters.received.load(Ordering::Relaxed)
    }

    /// Starts reading the ring buffer on the current tokio runtime. Call once.
    pub fn events(&mut self) -> Result<EventStream, SensorError> {
        let ring = self.ring.take().ok_or(SensorError::MissingMap("EVENTS"))?;
        read::spawn(ring, self.counters.clone(), self.queue_capacity)
    }
}
