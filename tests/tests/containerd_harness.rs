//! The containerd harness against real containerd, runc, cgroups and overlayfs. Needs root.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use saker_tests::containerd::{Containerd, NAMESPACE};
use saker_tests::image::BUSYBOX_BINARY;
use saker_tests::pod::{Container, PodSpec};

const K8S_NAMESPACE: &str = "risk-10-aws-bedrock-java";

/// Tests here check host-wide state (/kubepods); they take turns. Each still runs its own
/// containerd, and `two_instances_run_side_by_side` runs two at once on purpose.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn require_root() {
    // SAFETY: geteuid(2) cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "containerd harness tests need root (containerd, runc, cgroups, overlayfs): run them as root, as CI does"
    );
}

#[test]
fn labelled_containers_full_cycle() {
    require_root();
    let _serial = serial();
    let cycle = Instant::now();

    let t = Instant::now();
    let containerd = Containerd::start().expect("start containerd");
    let start = t.elapsed();
    assert_eq!(containerd.namespace(), NAMESPACE);
    assert!(
        containerd.socket().exists(),
        "no socket at {}",
        containerd.socket().display()
    );

    let t = Instant::now();
    let web = PodSpec::new(K8S_NAMESPACE, "web-1", "app")
        .expect("spec")
        .label("app.kubernetes.io/name", "web");
    let app = containerd.run_pod_container(&web).expect("run app");
    // Second container of the same pod: same uid, so same pod cgroup.
    let sidecar = containerd
        .run_pod_container(&web.clone().container_name("sidecar").command(&[
            "sh",
            "-c",
            "sleep 300",
        ]))
        .expect("run sidecar");
    let run = t.elapsed();

    for (c, name) in [(&app, "app"), (&sidecar, "sidecar")] {
        check_labels(c, name, &web.pod_uid);
        check_cgroup(c);
    }
    assert_ne!(app.cgroup_id, sidecar.cgroup_id);
    assert_ne!(app.pid, sidecar.pid);

    let t = Instant::now();
    check_binary_written_in_container(&app);
    let exec = t.elapsed();

    let footprint = containerd.footprint().expect("footprint");
    let t = Instant::now();
    containerd.shutdown().expect("teardown");
    let teardown = t.elapsed();
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
    assert_no_kubepods_unless_shared();

    eprintln!(
        "containerd harness timing: start (build+import 2 images) {start:?}, run 2 containers {run:?}, \
         exec checks {exec:?}, teardown {teardown:?}, full cycle {:?}",
        cycle.elapsed()
    );
}

#[test]
fn two_instances_run_side_by_side() {
    require_root();
    let _serial = serial();
    let start = |name: &'static str| {
        std::thread::spawn(move || {
            let c = Containerd::start().expect("start containerd");
            let spec = PodSpec::new(K8S_NAMESPACE, name, "app").expect("spec");
            let container = c.run_pod_container(&spec).expect("run");
            (c, container)
        })
    };
    let (a, b) = (start("pod-a"), start("pod-b"));
    let (ctrd_a, ca) = a.join().expect("instance a");
    let (ctrd_b, cb) = b.join().expect("instance b");
    assert_ne!(ctrd_a.socket(), ctrd_b.socket());

    // Each instance sees only its own container.
    let listed = |c: &Containerd| {
        c.ctr()
            .run(["containers", "ls", "-q"])
            .expect("ctr containers ls")
    };
    assert_eq!(listed(&ctrd_a).trim(), ca.id);
    assert_eq!(listed(&ctrd_b).trim(), cb.id);

    // Tearing down one leaves the other working, including its shim socket under /run/containerd.
    let footprint_a = ctrd_a.footprint().expect("footprint");
    ctrd_a.shutdown().expect("teardown a");
    assert_eq!(footprint_a.leftovers(), Vec::<String>::new());
    assert_eq!(
        cb.exec_ok(&["echo", "still here"]).expect("exec in b"),
        "still here\n"
    );
    let fresh = ctrd_b
        .run_pod_container(&PodSpec::new(K8S_NAMESPACE, "pod-c", "app").expect("spec"))
        .expect("run after the other instance left");
    assert_eq!(fresh.exec_ok(&["echo", "ok"]).expect("exec"), "ok\n");

    let footprint_b = ctrd_b.footprint().expect("footprint");
    ctrd_b.shutdown().expect("teardown b");
    assert_eq!(footprint_b.leftovers(), Vec::<String>::new());
    assert_no_kubepods_unless_shared();
}

#[test]
fn teardown_cleans_up_after_containerd_died() {
    require_root();
    let _serial = serial();
    let containerd = Containerd::start().expect("start containerd");
    let c = containerd
        .run_pod_container(&PodSpec::new(K8S_NAMESPACE, "orphan", "app").expect("spec"))
        .expect("run");
    let footprint = containerd.footprint().expect("footprint");
    // Shims and containers outlive containerd; teardown must then clean up without its API.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(containerd.pid() as libc::pid_t, libc::SIGKILL) };
    // Our unreaped child shows as a zombie once dead; then teardown deterministically skips
    // the containerd API and only its fallbacks run.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_dead(containerd.pid()) {
        assert!(Instant::now() < deadline, "containerd survived SIGKILL");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!is_dead(c.pid), "container died with containerd");
    containerd.shutdown().expect("teardown without containerd");
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
    assert!(is_dead(c.pid), "container process {} survived", c.pid);
    assert_no_kubepods_unless_shared();
}

/// Gone, or a zombie: orphans are reparented to pid 1, which on the test VMs reaps lazily.
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn check_labels(c: &Container, name: &str, pod_uid: &str) {
    let labels = c.labels().expect("ctr containers info");
    for (k, v) in [
        ("io.kubernetes.pod.name", "web-1"),
        ("io.kubernetes.pod.namespace", K8S_NAMESPACE),
        ("io.kubernetes.container.name", name),
        ("io.kubernetes.pod.uid", pod_uid),
        ("app.kubernetes.io/name", "web"),
    ] {
        assert_eq!(
            labels.get(k).map(String::as_str),
            Some(v),
            "label {k} of {name}: {labels:?}"
        );
    }
}

fn check_cgroup(c: &Container) {
    let expected = format!("/kubepods/besteffort/pod{}/{}", c.spec.pod_uid, c.id);
    assert_eq!(c.cgroup_path, expected);
    let lines = c.proc_cgroup().expect("/proc/PID/cgroup");
    assert!(lines.iter().any(|l| l.starts_with("0::")), "{lines:?}");
    for line in &lines {
        assert!(
            line.ends_with(&format!(":{expected}")),
            "/proc/{}/cgroup line {line:?}",
            c.pid
        );
    }
    assert_ne!(c.cgroup_id, 0);
    let dir = unified_root().join(expected.trim_start_matches('/'));
    let ino = std::fs::metadata(&dir).expect("stat cgroup dir").ino();
    assert_eq!(c.cgroup_id, ino, "cgroup id vs inode of {}", dir.display());
}

/// The cgroup2 mount, found independently of the harness: statfs magic.
fn unified_root() -> PathBuf {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| {
            let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
                return false;
            };
            // SAFETY: zeroed statfs is a valid out-parameter; c is NUL-terminated.
            let mut st: libc::statfs = unsafe { std::mem::zeroed() };
            let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
            rc == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC
        })
        .expect("no cgroup2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup")
}

fn check_binary_written_in_container(c: &Container) {
    // Not "/tmp/x": busybox picks the applet from argv[0] and only treats names starting with
    // "busybox" as the multi-call entry point ("x: applet not found" otherwise).
    c.exec_ok(&["cp", "/bin/busybox", "/tmp/busybox-x"])
        .expect("cp in container");
    let in_upper = c.upperdir.join("tmp/busybox-x");
    let meta = std::fs::metadata(&in_upper)
        .unwrap_or_else(|e| panic!("{} not in the upper layer: {e}", in_upper.display()));
    assert_eq!(
        meta.len(),
        std::fs::metadata(BUSYBOX_BINARY)
            .expect("stat busybox")
            .len()
    );
    assert_eq!(
        c.exec_ok(&["/tmp/busybox-x", "echo", "hi"])
            .expect("run the copy"),
        "hi\n"
    );

    // A long-running copy: the host sees its exe as the upper-layer inode.
    let detached = c
        .exec_detached(&["/tmp/busybox-x", "sleep", "30"])
        .expect("exec -d");
    let exe = std::fs::metadata(format!("/proc/{}/exe", detached.pid)).expect("stat exe");
    assert_eq!(
        exe.ino(),
        meta.ino(),
        "exe of pid {} vs {}",
        detached.pid,
        in_upper.display()
    );
    c.kill_exec(&detached, "SIGKILL").expect("kill exec");

    let out = c.exec(&["sh", "-c", "echo err >&2; exit 3"]).expect("exec");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
}

/// `/kubepods` is removed by the last harness instance out. If another test binary's instance
/// is running (its scratch dir exists), it may hold `/kubepods`, so there is nothing to check.
fn assert_no_kubepods_unless_shared() {
    let others = std::fs::read_dir("/tmp")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("saker-ctrd-"))
        })
        .unwrap_or(false);
    if others {
        eprintln!("another containerd harness is running; not checking /kubepods");
        return;
    }
    // Every hierarchy: v1 controllers and cgroup2, hybrid or pure.
    let remaining: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("kubepods"))
        .chain([PathBuf::from("/sys/fs/cgroup/kubepods")])
        .filter(|p| p.exists())
        .collect();
    assert!(remaining.is_empty(), "left behind: {remaining:?}");
}
