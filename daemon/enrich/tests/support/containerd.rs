//! containerd in a scratch directory, driven with `ctr`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{random_hex, run, Res, CGROUP_LOCK};

pub const NAMESPACE: &str = "k8s.io";

/// A containerd of our own; dropping it deletes its containers and everything it left.
pub struct Containerd {
    pub scratch: PathBuf,
    child: Option<Child>,
    /// Cgroup paths of containers started, and their pods' cgroups.
    cgroups: Vec<String>,
    pods: Vec<String>,
}

/// A container started by [`Containerd::run`].
pub struct Started {
    pub id: String,
    pub pid: u32,
}

impl Containerd {
    pub fn start() -> Res<Self> {
        // Short: shim socket paths derived from it must stay under 108 bytes.
        let scratch = PathBuf::from(format!(
            "/tmp/saker-enr-{}-{}",
            std::process::id(),
            random_hex(3)?
        ));
        for d in ["root", "state", "runc", "opt", "logs"] {
            std::fs::create_dir_all(scratch.join(d))?;
        }
        std::fs::write(scratch.join("config.toml"), config_toml(&scratch))?;
        let mut me = Self {
            scratch,
            child: None,
            cgroups: Vec::new(),
            pods: Vec::new(),
        };
        me.spawn()?;
        Ok(me)
    }

    pub fn socket(&self) -> PathBuf {
        self.scratch.join("containerd.sock")
    }

    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.socket())
            .arg("--namespace")
            .arg(NAMESPACE);
        c
    }

    pub fn import(&self, archive: &Path) -> Res<()> {
        run(self.ctr().args(["images", "import"]).arg(archive))?;
        Ok(())
    }

    /// `ctr run -d` with a cgroup path of `<pod_cgroup>/<id>`; returns the task's pid.
    pub fn run(
        &mut self,
        pod_cgroup: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        image: &str,
        argv: &[&str],
    ) -> Res<Started> {
        let id = random_hex(32)?;
        let cgroup = format!("{pod_cgroup}/{id}");
        self.cgroups.push(cgroup.clone());
        if !self.pods.iter().any(|p| p == pod_cgroup) {
            self.pods.push(pod_cgroup.to_owned());
        }
        let log = self.scratch.join("logs").join(format!("{id}.log"));
        let mut cmd = self.ctr();
        cmd.args(["run", "--detach", "--cgroup", &cgroup])
            .arg("--runc-root")
            .arg(self.scratch.join("runc"))
            .arg("--log-uri")
            .arg(format!("file://{}", log.display()));
        for (k, v) in labels {
            cmd.arg("--label").arg(format!("{k}={v}"));
        }
        for (k, v) in annotations {
            cmd.arg("--annotation").arg(format!("{k}={v}"));
        }
        cmd.arg(image).arg(&id).args(argv);
        {
            let _lock = flock(libc::LOCK_SH)?;
            run(&mut cmd)?;
        }
        let pid = self.task_pid(&id)?;
        Ok(Started { id, pid })
    }

    /// Stops containerd (SIGTERM); containers keep running under their shims.
    pub fn stop(&mut self) -> Res<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill()?;
        child.wait()?;
        Err("containerd ignored SIGTERM; killed".into())
    }

    /// Starts containerd again on the same state; it reconnects to the running shims.
    pub fn restart(&mut self) -> Res<()> {
        self.stop()?;
        self.spawn()
    }

    fn spawn(&mut self) -> Res<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.scratch.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.scratch.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning containerd (install the containerd package): {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = self
                .ctr()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(format!("containerd exited during startup ({status})").into());
                }
            }
            if Instant::now() > deadline {
                return Err("containerd not answering after 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Host pid of a task, from `ctr tasks ls` (`TASK PID STATUS`).
    fn task_pid(&self, id: &str) -> Res<u32> {
        let out = String::from_utf8(run(self.ctr().args(["tasks", "ls"]))?.stdout)?;
        out.lines()
            .skip(1)
            .find_map(|l| {
                let mut cols = l.split_whitespace();
                (cols.next()? == id).then(|| cols.next()?.parse().ok())?
            })
            .filter(|pid| *pid != 0)
            .ok_or_else(|| format!("task {id} not in `ctr tasks ls`:\n{out}").into())
    }

    fn teardown(&mut self) {
        if self.child.is_none() && !self.cgroups.is_empty() {
            if let Err(e) = self.spawn() {
                eprintln!("teardown: restarting containerd: {e}");
            }
        }
        if self.child.is_some() {
            let ids = self
                .ctr()
                .args(["containers", "ls", "-q"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for id in ids.split_whitespace() {
                let _ = run(self.ctr().args(["tasks", "delete", "--force", id]));
                if let Err(e) = run(self.ctr().args(["containers", "delete", id])) {
                    eprintln!("teardown: {e}");
                }
            }
        }
        if let Err(e) = self.stop() {
            eprintln!("teardown: {e}");
        }
        let hierarchies = cgroup_mounts();
        for cg in &self.cgroups {
            kill_members(&hierarchies, cg);
        }
        unmount_under(&self.scratch);
        for cg in self.cgroups.iter().chain(&self.pods) {
            rmdir_everywhere(&hierarchies, cg);
        }
        if let Ok(_lock) = flock(libc::LOCK_EX) {
            for ancestor in ["/kubepods/besteffort", "/kubepods/burstable", "/kubepods"] {
                rmdir_everywhere(&hierarchies, ancestor);
            }
        }
        // containerd 1.6 keeps shim sockets here whatever `state` says; remove if empty.
        let _ = std::fs::remove_dir("/run/containerd/s");
        let _ = std::fs::remove_dir("/run/containerd");
        if mounts_under(&self.scratch).is_empty() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        } else {
            eprintln!("teardown: kept {} (still mounted)", self.scratch.display());
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn config_toml(scratch: &Path) -> String {
    let s = scratch.display();
    format!(
        r#"version = 2
root = "{s}/root"
state = "{s}/state"
# ctr needs no CRI; without it nothing is pulled or networked.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{s}/containerd.sock"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{s}/opt"
"#
    )
}

struct Flock(File);

fn flock(op: libc::c_int) -> Res<Flock> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(CGROUP_LOCK)?;
    // SAFETY: flock(2) on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(Flock(file))
}

/// (mount point, fstype) of every mountinfo line.
fn mounts() -> Vec<(PathBuf, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let point = pre.split(' ').nth(4)?.replace("\\040", " ");
            Some((PathBuf::from(point), post.split(' ').next()?.to_owned()))
        })
        .collect()
}

fn cgroup_mounts() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = mounts()
        .into_iter()
        .filter(|(_, t)| t == "cgroup" || t == "cgroup2")
        .map(|(p, _)| p)
        .collect();
    all.dedup();
    all
}

fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mounts()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn unmount_under(dir: &Path) {
    let mut points = mounts_under(dir);
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) {
            // SAFETY: umount2(2) with a valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn kill_members(hierarchies: &[PathBuf], cgroup: &str) {
    for h in hierarchies {
        let procs = h.join(cgroup.trim_start_matches('/')).join("cgroup.procs");
        for pid in std::fs::read_to_string(procs).unwrap_or_default().lines() {
            if let Ok(pid) = pid.trim().parse::<libc::pid_t>() {
                // SAFETY: kill(2) has no memory preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn rmdir_everywhere(hierarchies: &[PathBuf], cgroup: &str) {
    for h in hierarchies {
        let dir = h.join(cgroup.trim_start_matches('/'));
        let deadline = Instant::now() + Duration::from_secs(5);
        // Killed members leave asynchronously: retry EBUSY for a while.
        while dir.exists() && std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
            if std::fs::read_dir(&dir).is_ok_and(|mut d| {
                d.any(|e| e.is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_dir())))
            }) {
                break; // has child cgroups: in use by someone else
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
