//! Cgroup helpers for both layouts seen on test machines: hybrid (v1 controllers plus cgroup2
//! at `/sys/fs/cgroup/unified`) and pure cgroup2 at `/sys/fs/cgroup`.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::mountinfo;

/// Every mounted cgroup hierarchy of this host.
#[derive(Debug, Clone)]
pub struct Hierarchies {
    /// Mount point of the cgroup2 (unified) hierarchy, whose directory inodes are cgroup ids.
    pub unified: PathBuf,
    /// Mount points of all hierarchies, v1 and v2; runc creates a container's cgroup in each.
    pub all: Vec<PathBuf>,
}

impl Hierarchies {
    pub fn detect() -> Result<Self> {
        let mounts = mountinfo::read(None)?;
        let mut all: Vec<PathBuf> = Vec::new();
        for m in mounts
            .iter()
            .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        {
            // A hierarchy may be mounted twice; removing through one mount is enough.
            if !all.contains(&m.mount_point) {
                all.push(m.mount_point.clone());
            }
        }
        let unified = mounts
            .iter()
            .find(|m| m.fstype == "cgroup2")
            .map(|m| m.mount_point.clone())
            .ok_or_else(|| anyhow!("no cgroup2 hierarchy is mounted (needed for cgroup ids)"))?;
        Ok(Self { unified, all })
    }

    /// Directory of cgroup `path` (e.g. `/kubepods/besteffort/pod…/…`) in the unified hierarchy.
    pub fn unified_dir(&self, path: &str) -> PathBuf {
        self.unified.join(path.trim_start_matches('/'))
    }

    /// The cgroup v2 id of `path`: the kernfs inode number of its directory, which is what
    /// `bpf_get_current_cgroup_id()` returns.
    pub fn cgroup_id(&self, path: &str) -> Result<u64> {
        let dir = self.unified_dir(path);
        let meta = std::fs::metadata(&dir).with_context(|| format!("stat {}", dir.display()))?;
        Ok(meta.ino())
    }

    /// Directories of `path` that exist in any hierarchy.
    pub fn existing_dirs(&self, path: &str) -> Vec<PathBuf> {
        self.all
            .iter()
            .map(|root| root.join(path.trim_start_matches('/')))
            .filter(|d| d.is_dir())
            .collect()
    }

    /// SIGKILLs every process still in `path` (any hierarchy); a fallback when runtime teardown failed.
    pub fn kill_members(&self, path: &str) {
        for dir in self.existing_dirs(path) {
            let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
                continue;
            };
            for pid in procs
                .lines()
                .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
            {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// Removes `path` in every hierarchy. Missing directories are fine; a busy one is retried
    /// until `timeout`, since killed members take a moment to leave.
    pub fn remove(&self, path: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut failed = Vec::new();
        for dir in self.existing_dirs(path) {
            if let Err(e) = rmdir_retrying(&dir, deadline) {
                failed.push(format!("{}: {e}", dir.display()));
            }
        }
        if !failed.is_empty() {
            bail!("cannot remove cgroup {path}: {}", failed.join("; "));
        }
        Ok(())
    }

    /// Removes `path` where it is empty (no children, no members) and leaves it elsewhere;
    /// for ancestors that other harness instances may share.
    pub fn remove_if_unused(&self, path: &str) {
        for dir in self.existing_dirs(path) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn rmdir_retrying(dir: &Path, deadline: Instant) -> std::io::Result<()> {
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The lines of `/proc/<pid>/cgroup` (`hierarchy-id:controllers:path`).
pub fn proc_cgroup_lines(pid: u32) -> Result<Vec<String>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// The unified-hierarchy (`0::`) cgroup path of `pid`.
pub fn unified_path_of(pid: u32) -> Result<String> {
    proc_cgroup_lines(pid)?
        .iter()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .ok_or_else(|| anyhow!("/proc/{pid}/cgroup has no 0:: line"))
}
