//! A private containerd 1.6 instance per test, driven through `ctr`.
//!
//! Each [`Containerd`] has its own scratch directory under /tmp (root, state, socket, logs,
//! runc root, FIFOs), so several test binaries can each run one at the same time. What is
//! shared between instances, and how it is handled:
//! - `/run/containerd/s/`: containerd 1.6 puts shim sockets there whatever `state` says. Their
//!   names hash the containerd socket path, so instances do not collide; teardown removes only
//!   this instance's sockets and then the directories if empty.
//! - the `/kubepods/<qos>` cgroup ancestors: created by runc on demand, removed by the last
//!   instance out. A `flock` on [`CGROUP_LOCK`] (shared while creating containers, exclusive
//!   while removing ancestors) keeps one instance from removing an ancestor between another's
//!   `mkdir`s.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::cgroup::Hierarchies;
use crate::cmd::{output, random_hex, run_stdout};
use crate::host::{
    kill_shims_of, mounts_under, remove_shim_sockets, shim_socket_path, unmount_under, CgroupLock,
};
use crate::image::{Image, PAUSE_IMAGE};
use crate::pod::{Container, PodSpec};

/// The containerd namespace the kubelet (CRI) uses; the harness puts everything there.
pub const NAMESPACE: &str = "k8s.io";
pub use crate::host::{Footprint, CGROUP_LOCK};
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// `ctr` bound to one containerd instance and namespace. Cheap to clone; containers keep one.
#[derive(Debug, Clone)]
pub struct Ctr {
    pub socket: PathBuf,
    pub namespace: String,
    /// Directory for exec FIFOs (ctr's default is under the shared /run/containerd).
    pub fifo_dir: PathBuf,
    /// Directory for container and detached-exec output logs.
    pub log_dir: PathBuf,
}

impl Ctr {
    /// `ctr --address <socket> --namespace <ns>`, ready for subcommand arguments.
    pub fn command(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(&self.namespace);
        c
    }

    /// Runs `ctr <args>`, failing unless it exits 0; returns stdout.
    pub fn run<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run_stdout(self.command().args(args))
    }

    /// Ids from `ctr <what> ls -q` (what: tasks, containers, ...).
    fn list_ids(&self, what: &str) -> Result<Vec<String>> {
        let out = self.run([what, "ls", "-q"])?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// What teardown must clean for each container this instance started, recorded before `ctr run`
/// so that a half-created container is cleaned too.
#[derive(Debug, Clone)]
struct Created {
    id: String,
    cgroup_path: String,
    pod_cgroup: String,
}

/// A running containerd; dropping it tears everything down (see [`Containerd::shutdown`]).
pub struct Containerd {
    scratch: PathBuf,
    ctr: Ctr,
    child: Option<Child>,
    pid: u32,
    cgroups: Hierarchies,
    created: Mutex<Vec<Created>>,
    runc_root: PathBuf,
    torn_down: bool,
}

impl Containerd {
    /// Starts containerd in a fresh scratch directory, waits until its socket answers, and
    /// imports [`crate::image::BUSYBOX_IMAGE`] and [`PAUSE_IMAGE`].
    pub fn start() -> Result<Self> {
        ensure_root()?;
        let cgroups = Hierarchies::detect()?;
        let scratch = unique_scratch_dir()?;
        let log_path = scratch.join("containerd.log");
        let child = match spawn_daemon(&scratch, &log_path) {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
        };
        let ctr = Ctr {
            socket: scratch.join("containerd.sock"),
            namespace: NAMESPACE.to_owned(),
            fifo_dir: scratch.join("fifo"),
            log_dir: scratch.join("logs"),
        };
        // From here on, Drop cleans up whatever the rest of start leaves behind.
        let mut me = Self {
            pid: child.id(),
            runc_root: scratch.join("runc"),
            scratch,
            ctr,
            child: Some(child),
            cgroups,
            created: Mutex::new(Vec::new()),
            torn_down: false,
        };
        me.wait_ready()
            .with_context(|| format!("containerd log: {}", tail(&log_path)))?;
        let images = me.scratch.join("images");
        for archive in [
            Image::build_default_busybox(&images)?,
            Image::build_pause(&images)?,
        ] {
            me.import_image(&archive)?;
        }
        Ok(me)
    }

    /// containerd's gRPC socket (the daemon's enrichment client talks to it).
    pub fn socket(&self) -> &Path {
        &self.ctr.socket
    }

    /// The containerd namespace containers run in ([`NAMESPACE`]).
    pub fn namespace(&self) -> &str {
        &self.ctr.namespace
    }

    /// The containerd process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The instance's scratch directory (removed on teardown).
    pub fn scratch_dir(&self) -> &Path {
        &self.scratch
    }

    /// The cgroup hierarchies containers are placed in.
    pub fn cgroups(&self) -> &Hierarchies {
        &self.cgroups
    }

    /// A `ctr` handle bound to this instance, for anything the harness does not wrap.
    /// Teardown deletes every task and container, but only removes the cgroups of
    /// containers started by [`Containerd::run_pod_container`].
    pub fn ctr(&self) -> &Ctr {
        &self.ctr
    }

    /// Imports an OCI archive (e.g. from [`Image::build_busybox`]) into [`NAMESPACE`].
    pub fn import_image(&self, archive: &Path) -> Result<()> {
        self.ctr
            .run([
                std::ffi::OsStr::new("images"),
                "import".as_ref(),
                archive.as_os_str(),
            ])
            .with_context(|| format!("importing {}", archive.display()))?;
        Ok(())
    }

    /// Starts a Kubernetes-shaped container: `io.kubernetes.*` labels plus `spec.labels`,
    /// cgroup `/kubepods/<qos>/pod<uid>/<64-hex id>` (kubelet cgroupfs driver layout).
    pub fn run_pod_container(&self, spec: &PodSpec) -> Result<Container> {
        let id = random_hex(32)?;
        let cgroup_path = format!("{}/{id}", spec.cgroup_parent());
        self.created
            .lock()
            .map_err(|_| anyhow!("containerd harness state poisoned"))?
            .push(Created {
                id: id.clone(),
                cgroup_path: cgroup_path.clone(),
                pod_cgroup: spec.cgroup_parent(),
            });
        let log = self.ctr.log_dir.join(format!("{id}.log"));
        let mut cmd = self.ctr.command();
        cmd.args(["run", "--detach", "--cgroup", &cgroup_path])
            .arg("--runc-root")
            .arg(&self.runc_root)
            .arg("--log-uri")
            .arg(format!("file://{}", log.display()));
        if spec.host_network {
            cmd.arg("--net-host");
        }
        for (k, v) in spec.all_labels() {
            cmd.arg("--label").arg(format!("{k}={v}"));
        }
        cmd.arg(&spec.image).arg(&id).args(&spec.command);
        {
            // Shared: other instances may create containers too, but none may remove
            // /kubepods ancestors while runc creates our cgroup under them.
            let _lock = CgroupLock::acquire(libc::LOCK_SH)?;
            crate::cmd::run(&mut cmd)
                .with_context(|| format!("starting pod container {}", spec.container_name))?;
        }
        Container::inspect(
            self.ctr.clone(),
            &self.cgroups,
            id,
            cgroup_path,
            log,
            spec.clone(),
        )
    }

    /// What this instance has put on the host so far (see [`Footprint::leftovers`]).
    pub fn footprint(&self) -> Result<Footprint> {
        let created = self
            .created
            .lock()
            .map_err(|_| anyhow!("containerd harness state poisoned"))?;
        let mut cgroup_paths = Vec::new();
        let mut shim_sockets = Vec::new();
        for c in created.iter() {
            cgroup_paths.push(c.cgroup_path.clone());
            if !cgroup_paths.contains(&c.pod_cgroup) {
                cgroup_paths.push(c.pod_cgroup.clone());
            }
            shim_sockets.push(shim_socket_path(&self.ctr.socket, &c.id)?);
        }
        Ok(Footprint {
            containerd_pid: self.pid,
            scratch: self.scratch.clone(),
            cgroup_paths,
            shim_sockets,
            cgroups: self.cgroups.clone(),
        })
    }

    /// Stops the containerd process only (SIGTERM); containers keep running under their
    /// shims. For fault tests: [`Containerd::restart_process`] starts it again.
    pub fn stop_process(&mut self) -> Result<()> {
        self.stop_daemon()
    }

    /// Starts containerd again on the same root, state and socket (after
    /// [`Containerd::stop_process`]) and waits until it answers.
    pub fn restart_process(&mut self) -> Result<()> {
        let log_path = self.scratch.join("containerd.log");
        let child = spawn_daemon(&self.scratch, &log_path)?;
        self.pid = child.id();
        self.child = Some(child);
        self.wait_ready()
            .with_context(|| format!("containerd log: {}", tail(&log_path)))
    }

    /// Tears everything down and reports what failed; Drop does the same but can only log.
    pub fn shutdown(mut self) -> Result<()> {
        let errors = self.teardown();
        if errors.is_empty() {
            return Ok(());
        }
        bail!("containerd teardown: {}", errors.join("; "))
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("containerd exited during startup ({status})");
                }
            }
            let out = output(self.ctr.command().arg("version"))?;
            if out.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd socket not answering after {READY_TIMEOUT:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Best-effort teardown: every step runs even if earlier ones failed; returns the failures.
    fn teardown(&mut self) -> Vec<String> {
        if std::mem::replace(&mut self.torn_down, true) {
            return Vec::new();
        }
        let mut errors = Vec::new();
        let mut note = |step: &str, r: Result<()>| {
            if let Err(e) = r {
                errors.push(format!("{step}: {e:#}"));
            }
        };
        let created = match self.created.lock() {
            Ok(mut c) => std::mem::take(&mut *c),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        let alive = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)) && !exiting(c.id()));
        if alive {
            note("removing containers", self.remove_all_containers());
        }
        note("stopping containerd", self.stop_daemon());
        // Fallbacks for a runtime that did not clean up. Container processes first, so that
        // their shim (a subreaper) still reaps them, then the orphaned shims.
        for c in &created {
            self.cgroups.kill_members(&c.cgroup_path);
        }
        kill_shims_of(&self.ctr.socket);
        note("unmounting leftovers", unmount_under(&self.scratch));
        note("removing cgroups", self.remove_cgroups(&created));
        note(
            "removing shim sockets",
            remove_shim_sockets(&self.ctr.socket, created.iter().map(|c| c.id.as_str())),
        );
        note("removing scratch dir", self.remove_scratch());
        errors
    }

    fn remove_all_containers(&self) -> Result<()> {
        let mut failed = Vec::new();
        for task in self.ctr.list_ids("tasks")? {
            // --force SIGKILLs the task and waits for it before deleting.
            if let Err(e) = self.ctr.run(["tasks", "delete", "--force", &task]) {
                failed.push(format!("{e:#}"));
            }
        }
        for container in self.ctr.list_ids("containers")? {
            // Also removes the container's snapshot.
            if let Err(e) = self.ctr.run(["containers", "delete", &container]) {
                failed.push(format!("{e:#}"));
            }
        }
        if !failed.is_empty() {
            bail!("{}", failed.join("; "));
        }
        Ok(())
    }

    fn stop_daemon(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our unreaped child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().context("SIGKILL containerd")?;
        child.wait().context("reaping containerd")?;
        bail!("containerd ignored SIGTERM for {STOP_TIMEOUT:?}; killed")
    }

    fn remove_cgroups(&self, created: &[Created]) -> Result<()> {
        let timeout = Duration::from_secs(5);
        let mut failed = Vec::new();
        for c in created {
            if let Err(e) = self.cgroups.remove(&c.cgroup_path, timeout) {
                failed.push(format!("{e:#}"));
            }
        }
        let mut pods: Vec<&str> = created.iter().map(|c| c.pod_cgroup.as_str()).collect();
        pods.sort_unstable();
        pods.dedup();
        for pod in &pods {
            if let Err(e) = self.cgroups.remove(pod, timeout) {
                failed.push(format!("{e:#}"));
            }
        }
        if !pods.is_empty() {
            // Exclusive: no other instance is creating a container under these right now.
            let _lock = CgroupLock::acquire(libc::LOCK_EX)?;
            for ancestor in ["/kubepods/besteffort", "/kubepods/burstable", "/kubepods"] {
                self.cgroups.remove_if_unused(ancestor);
            }
        }
        if !failed.is_empty() {
            bail!("{}", failed.join("; "));
        }
        Ok(())
    }

    fn remove_scratch(&self) -> Result<()> {
        // Never recurse into a mount that survived: it could reach outside the scratch dir.
        let mounts = mounts_under(&self.scratch)?;
        if !mounts.is_empty() {
            bail!("kept {}: still mounted {mounts:?}", self.scratch.display());
        }
        std::fs::remove_dir_all(&self.scratch)
            .with_context(|| format!("removing {}", self.scratch.display()))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for e in self.teardown() {
            eprintln!("saker-tests: containerd teardown: {e}");
        }
    }
}

/// Writes the config and starts containerd, logging to `log_path`.
fn spawn_daemon(scratch: &Path, log_path: &Path) -> Result<Child> {
    for d in [
        "root", "state", "runc", "fifo", "logs", "opt", "cni/bin", "cni/conf", "images",
    ] {
        std::fs::create_dir_all(scratch.join(d))
            .with_context(|| format!("creating {d} in scratch"))?;
    }
    let config = scratch.join("config.toml");
    std::fs::write(&config, config_toml(scratch)).context("writing containerd config")?;
    let log = File::create(log_path).context("creating containerd log")?;
    Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("spawning containerd (install the containerd package)")
}

/// Whether `pid` is a zombie. A killed multi-threaded process (containerd is Go) shows as one
/// while its other threads still exit, before waitpid reports it.
fn exiting(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // "pid (comm) S ...": the state follows the last ')'.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

fn ensure_root() -> Result<()> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the containerd harness needs root (containerd, runc, cgroups, overlayfs); run the tests as root");
    }
    Ok(())
}

fn unique_scratch_dir() -> Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    // Short: shim and ttrpc socket paths derived from it must stay under 108 bytes.
    let dir = PathBuf::from(format!(
        "/tmp/saker-ctrd-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        random_hex(3)?
    ));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn config_toml(scratch: &Path) -> String {
    let s = scratch.display();
    format!(
        r#"version = 2
root = "{s}/root"
state = "{s}/state"

[grpc]
  address = "{s}/containerd.sock"

[plugins]
  # Default is /opt/containerd, shared by the host.
  [plugins."io.containerd.internal.v1.opt"]
    path = "{s}/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    # Locally imported; never pulled (no registry).
    sandbox_image = "{PAUSE_IMAGE}"
    # CAP_SYS_RESOURCE is not in the bounding set on the test VMs: negative oom_score_adj fails.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          # No systemd on the test machines: cgroupfs driver.
          SystemdCgroup = false
          Root = "{s}/runc"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{s}/cni/bin"
      conf_dir = "{s}/cni/conf"
"#
    )
}

/// Last lines of a log file, for error context.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
