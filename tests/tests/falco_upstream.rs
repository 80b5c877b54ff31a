//! Falco's upstream rule files (read from ../shared/data/falco-rules, never copied into
//! the repository) loaded by the daemon, firing on real activity in a real containerd
//! container: drop-and-execute, fileless memfd execution, execution from /dev/shm, a
//! stratum command line, chmod adding exec bits, and creating an executable file.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    time::{Duration, Instant},
};

use saker::daemon::{Daemon, DaemonConfig};
use saker_enrich::ContainerdConfig;
use saker_store::Query;
use saker_tests::{
    containerd::Containerd, pod::PodSpec, scenario::build_static, sensor::require_root,
};

fn falco_dir() -> PathBuf {
    std::env::var_os("SAKER_FALCO_RULES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/falco-rules"
            ))
        })
}

const MUST_FIRE: [&str; 6] = [
    "Drop and execute new binary in container",
    "Fileless execution via memfd_create",
    "Execution from /dev/shm",
    "Detect crypto miners using the Stratum protocol",
    "Container Drift Detected (chmod)",
    "Container Drift Detected (open+create)",
];

#[test]
fn upstream_drift_and_miner_rules_fire_on_a_real_container() {
    require_root();
    let falco = falco_dir();
    assert!(
        falco.join("falco_rules.yaml").exists(),
        "upstream rules in {} (set SAKER_FALCO_RULES_DIR)",
        falco.display()
    );
    let dir = std::env::temp_dir().join(format!("saker-falco-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let memfd = build_static("memfd-exec.c", &dir.join("memfd-exec")).expect("memfd-exec builds");

    let ctrd = Containerd::start().expect("containerd starts");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let daemon = rt
        .block_on(async {
            Daemon::start(DaemonConfig {
                node: "node-1".into(),
                cluster: "falco-compat".into(),
                rules: vec![
                    falco.join("falco_rules.yaml"),
                    falco.join("falco-incubating_rules.yaml"),
                    falco.join("falco-sandbox_rules.yaml"),
                    PathBuf::from(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/fixtures/enable_falco_drift_rules.yaml"
                    )),
                ],
                store_path: dir.join("saker.db"),
                containerd: Some(ContainerdConfig {
                    socket: ctrd.socket().to_path_buf(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .expect("daemon starts with the upstream rules");
    let report = daemon.detector.report();
    eprintln!(
        "upstream rules: {} loaded, {} skipped: {:?}",
        report.loaded.len(),
        report.skipped.len(),
        report.skipped
    );
    for r in MUST_FIRE {
        assert!(report.loaded.iter().any(|l| l == r), "{r} loads");
    }

    let spec = PodSpec::new("falco-compat", "drift-0", "app").expect("spec");
    let c = ctrd.run_pod_container(&spec).expect("container");
    // Put the static memfd executor into the container's upper layer via its rootfs.
    std::fs::copy(&memfd, c.upperdir.join("memfd-exec")).expect("copy into upperdir");
    for argv in [
        // open+create of an executable file, chmod +x, then execute it (drop and execute).
        &["sh", "-c", "cp /bin/busybox /tmp/busybox-drop && chmod 755 /tmp/busybox-drop && /tmp/busybox-drop true"][..],
        // /dev/shm is mounted noexec in the container: a shell runs a script from it.
        &["sh", "-c", "echo true > /dev/shm/run.sh"][..],
        &["sh", "/dev/shm/run.sh"][..],
        // From a shell: a process whose parent is still `runc` is excluded upstream
        // (known_memfd_execution_processes), and right after `ctr exec` it may be.
        &["sh", "-c", "/memfd-exec /bin/busybox true; true"][..],
        &["/bin/busybox", "echo", "stratum+tcp://pool.example:3333"][..],
    ] {
        let out = c.exec(argv).expect("exec");
        assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    let fired = loop {
        daemon.flush().unwrap();
        let page = daemon
            .store
            .query_alerts(
                &Query::new()
                    .filter("k8s.ns.name = falco-compat")
                    .limit(10_000),
            )
            .unwrap();
        let fired: BTreeSet<String> = page.items.iter().map(|a| a.rule.clone()).collect();
        if MUST_FIRE.iter().all(|r| fired.contains(*r)) || Instant::now() > deadline {
            break fired;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("fired: {fired:?}");
    for r in MUST_FIRE {
        assert!(fired.contains(r), "{r} fired (fired: {fired:?})");
    }
    daemon.shutdown();
    drop(c);
    drop(ctrd);
    std::fs::remove_dir_all(&dir).unwrap();
}
