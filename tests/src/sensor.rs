//! A real sensor for tests: loads saker's eBPF programs into the running kernel and
//! collects decoded events, filtered to the processes a test started.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use saker::{
    event::{Body, Event},
    sensor::{Drops, EventStream, Sensor, SensorConfig},
};

pub struct TestSensor {
    pub sensor: Sensor,
    stream: EventStream,
    rt: tokio::runtime::Runtime,
    /// Events received so far that no `collect` consumed.
    backlog: Vec<Event>,
}

/// Fails the test unless it runs as root (CI does): loading eBPF needs it.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "sensor tests load eBPF programs and must run as root"
    );
}

impl TestSensor {
    pub fn start(cfg: SensorConfig) -> TestSensor {
        require_root();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (sensor, stream) = rt.block_on(async {
            let mut sensor = Sensor::load(&cfg).expect("sensor loads and attaches");
            let stream = sensor.events().expect("event stream");
            (sensor, stream)
        });
        TestSensor {
            sensor,
            stream,
            rt,
            backlog: Vec::new(),
        }
    }

    pub fn start_default() -> TestSensor {
        TestSensor::start(SensorConfig::default())
    }

    /// Pulls events for `dur` (or until `done` says so), keeping those of `pids` and of
    /// processes forked from them.
    pub fn collect_for(
        &mut self,
        pids: &[u32],
        dur: Duration,
        mut done: impl FnMut(&[Event]) -> bool,
    ) -> Vec<Event> {
        let mut family: HashSet<u32> = pids.iter().copied().collect();
        let mut out = Vec::new();
        let deadline = Instant::now() + dur;
        let mut pending = std::mem::take(&mut self.backlog);
        loop {
            for ev in pending.drain(..) {
                let p = &ev.process;
                if matches!(ev.body, Body::Fork) && family.contains(&p.ppid) {
                    family.insert(p.pid);
                }
                if family.contains(&p.pid) {
                    out.push(ev);
                } else {
                    self.backlog.push(ev);
                }
            }
            if done(&out) || Instant::now() >= deadline {
                return out;
            }
            let stream = &mut self.stream;
            let next = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), stream.recv()).await
            });
            if let Ok(Some(ev)) = next {
                pending.push(ev);
                while let Some(ev) = self.stream.try_recv() {
                    pending.push(ev);
                }
            }
            // Bound the backlog: events of other processes are rarely needed later.
            if self.backlog.len() > 200_000 {
                self.backlog.drain(..100_000);
            }
        }
    }

    /// Everything received within `dur` (no pid filter), draining the queue.
    pub fn drain_for(&mut self, dur: Duration) -> Vec<Event> {
        let mut out = std::mem::take(&mut self.backlog);
        let deadline = Instant::now() + dur;
        while Instant::now() < deadline {
            let stream = &mut self.stream;
            if let Ok(Some(ev)) = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), stream.recv()).await
            }) {
                out.push(ev);
            }
            while let Some(ev) = self.stream.try_recv() {
                out.push(ev);
            }
        }
        out
    }

    pub fn drops(&self) -> Drops {
        self.sensor.drops().expect("drop counters")
    }
}

/// A cgroup v2 directory for a test, removed on drop.
pub struct TestCgroup {
    pub path: std::path::PathBuf,
    pub id: u64,
}

impl TestCgroup {
    pub fn create(name: &str) -> TestCgroup {
        use std::os::unix::fs::MetadataExt;
        let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.join("cgroup.procs").exists() && is_cgroup2(p))
            .expect("a cgroup v2 hierarchy is mounted");
        let path = root.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).expect("create test cgroup");
        let id = std::fs::metadata(&path).expect("stat cgroup").ino();
        TestCgroup { path, id }
    }

    pub fn procs(&self) -> std::path::PathBuf {
        self.path.join("cgroup.procs")
    }
}

fn is_cgroup2(p: &std::path::Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: valid path; statfs is filled by the kernel.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    unsafe { libc::statfs(c.as_ptr(), &mut s) == 0 && s.f_type == libc::CGROUP2_SUPER_MAGIC }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Processes that ran in it have exited; move any straggler out first.
        if let Ok(p) = std::fs::read_to_string(self.procs()) {
            let parent = self.path.parent().map(|d| d.join("cgroup.procs"));
            for pid in p.lines() {
                if let Some(parent) = &parent {
                    let _ = std::fs::write(parent, pid);
                }
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}
