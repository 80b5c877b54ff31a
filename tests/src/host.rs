//! Host-side state that containerd instances share or may leave behind: the cgroup lock,
//! shim processes and sockets, mounts; and [`Footprint`], to check that teardown removed it all.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cgroup::Hierarchies;
use crate::cmd::sha256_bytes;
use crate::containerd::NAMESPACE;
use crate::mountinfo;

/// Lock file coordinating cgroup ancestor creation/removal between harness instances. Left in
/// place: removing a lock file races with its next user.
pub const CGROUP_LOCK: &str = "/tmp/saker-containerd.lock";
/// Where containerd 1.6 keeps shim sockets regardless of its configured `state`.
const SHIM_SOCKET_DIR: &str = "/run/containerd/s";

/// `flock` on [`CGROUP_LOCK`], released on drop (closing the file).
pub(crate) struct CgroupLock {
    _file: File,
}

impl CgroupLock {
    pub(crate) fn acquire(op: libc::c_int) -> Result<Self> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(CGROUP_LOCK)
            .with_context(|| format!("opening {CGROUP_LOCK}"))?;
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
            return Err(std::io::Error::last_os_error()).context(format!("flock {CGROUP_LOCK}"));
        }
        Ok(Self { _file: file })
    }
}

/// Pids of processes with an argument containing `needle` (e.g. a scratch path).
pub(crate) fn processes_mentioning(needle: &[u8]) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// SIGKILLs shims started by the containerd at `socket` (their argv has `-address <socket>`).
pub(crate) fn kill_shims_of(socket: &Path) {
    for pid in processes_mentioning(socket.as_os_str().as_encoded_bytes()) {
        let is_shim = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.windows(15).any(|w| w == b"containerd-shim"));
        if is_shim {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

pub(crate) fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(mountinfo::read(None)?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect())
}

/// Lazily unmounts anything left mounted under `dir` (e.g. a task's rootfs), deepest first.
pub(crate) fn unmount_under(dir: &Path) -> Result<()> {
    let mut mounts = mounts_under(dir)?;
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let mut failed = Vec::new();
    for m in mounts {
        let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes())?;
        // SAFETY: c is a valid NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            failed.push(format!(
                "{}: {}",
                m.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// containerd 1.6 names a shim socket sha256(<containerd socket>/<namespace>/<id>) under
/// [`SHIM_SOCKET_DIR`].
pub(crate) fn shim_socket_path(socket: &Path, id: &str) -> Result<PathBuf> {
    let key = socket.join(NAMESPACE).join(id);
    let name = sha256_bytes(key.as_os_str().as_encoded_bytes())?;
    Ok(Path::new(SHIM_SOCKET_DIR).join(name))
}

/// Removes this instance's shim sockets, then the shared directories if nothing else uses them.
pub(crate) fn remove_shim_sockets<'a>(
    socket: &Path,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    for id in ids {
        match std::fs::remove_file(shim_socket_path(socket, id)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    // rmdir only succeeds when empty, so a concurrent instance's sockets are never touched.
    let _ = std::fs::remove_dir(SHIM_SOCKET_DIR);
    let _ = std::fs::remove_dir("/run/containerd");
    Ok(())
}

/// What an instance puts on the host, captured before teardown to check afterwards that all
/// of it is gone.
#[derive(Debug, Clone)]
pub struct Footprint {
    pub containerd_pid: u32,
    pub scratch: PathBuf,
    /// Container and pod cgroup paths.
    pub cgroup_paths: Vec<String>,
    pub shim_sockets: Vec<PathBuf>,
    pub(crate) cgroups: Hierarchies,
}

impl Footprint {
    /// Everything of the instance still present: processes whose argv names the scratch dir
    /// (containerd, shims), cgroup dirs in any hierarchy, mounts, files. Empty when clean.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for pid in processes_mentioning(self.scratch.as_os_str().as_encoded_bytes()) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            left.push(format!(
                "process {pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
        if Path::new(&format!("/proc/{}", self.containerd_pid)).exists() {
            left.push(format!(
                "pid {} (was containerd) exists",
                self.containerd_pid
            ));
        }
        for path in &self.cgroup_paths {
            for dir in self.cgroups.existing_dirs(path) {
                left.push(format!("cgroup {}", dir.display()));
            }
        }
        match mounts_under(&self.scratch) {
            Ok(mounts) => left.extend(mounts.iter().map(|m| format!("mount {}", m.display()))),
            Err(e) => left.push(format!("cannot read mounts: {e:#}")),
        }
        for p in self.shim_sockets.iter().chain([&self.scratch]) {
            if p.exists() {
                left.push(format!("file {}", p.display()));
            }
        }
        left
    }
}
