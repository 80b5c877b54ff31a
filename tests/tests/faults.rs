//! The daemon under faults, on the real kernel: the sensor overflowing (the "Sensor dropped
//! events" health alert is raised, stored and cleared) and containerd going away and
//! coming back while a container runs.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use saker::{
    daemon::{Daemon, DaemonConfig},
    health::{HealthConfig, RULE_CLEARED, RULE_DROPS},
    sensor::SensorConfig,
};
use saker_enrich::ContainerdConfig;
use saker_store::{EventQuery, Query, StoreConfig};
use saker_tests::{
    containerd::Containerd,
    pod::PodSpec,
    sensor::{require_root, TestCgroup},
};

const WORKLOAD: &str = env!("CARGO_BIN_EXE_saker-workload");

fn rules() -> Vec<PathBuf> {
    vec![PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/saker_rules.yaml"
    ))]
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("saker-faults-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn health_alerts(d: &Daemon, rule: &str) -> Vec<saker_event::Alert> {
    d.flush().unwrap();
    d.store
        .query_alerts(&Query::new().filter(format!("rule = \"{rule}\"")).limit(100))
        .unwrap()
        .items
}

#[test]
fn dropped_events_raise_one_stored_alert_and_quiet_clears_it() {
    require_root();
    let dir = temp_dir("health");
    let cg = TestCgroup::create("saker-health-test");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = rt
        .block_on(async {
            Daemon::start(DaemonConfig {
                rules: rules(),
                store_path: dir.join("saker.db"),
                containerd: None,
                // One page of ring (a few records) and only the test's cgroup: the burst
                // overflows it and nothing else on the machine can.
                sensor: SensorConfig {
                    ring_bytes: 4096,
                    cgroup_filter: Some(cg.id),
                    ..Default::default()
                },
                health: HealthConfig {
                    interval: Duration::from_millis(200),
                    clear_after: Duration::from_secs(2),
                },
                ..Default::default()
            })
        })
        .expect("daemon starts");
    let mut live = d.alerts_tx.subscribe();
    assert!(!d.health.state().dropping);

    let target = dir.join("burst");
    let st = Command::new(WORKLOAD)
        .arg("open-burst")
        .arg(&target)
        .arg("20000")
        .arg(cg.procs())
        .status()
        .unwrap();
    assert!(st.success());

    let raised = wait_for(Duration::from_secs(10), || {
        let a = health_alerts(&d, RULE_DROPS);
        (!a.is_empty()).then_some(a)
    })
    .expect("a \"Sensor dropped events\" alert is stored");
    assert_eq!(raised.len(), 1, "one alert for one episode: {raised:?}");
    let a = &raised[0];
    assert_eq!(a.severity, saker_event::Severity::Warning);
    assert!(
        a.output.contains("kernel_ringbuf.file="),
        "the output names the class: {}",
        a.output
    );
    let drops = d.drops().unwrap();
    let lost = drops.kernel_class("file");
    assert!(lost > 0, "the one-page ring overflowed: {drops:?}");

    // Quiet: no more events in the cgroup, so the episode clears after clear_after.
    let cleared = wait_for(Duration::from_secs(15), || {
        let a = health_alerts(&d, RULE_CLEARED);
        (!a.is_empty()).then_some(a)
    })
    .expect("a \"Sensor drops stopped\" alert after the quiet period");
    assert_eq!(cleared.len(), 1);
    let c = &cleared[0];
    assert!(c.time_ns > a.time_ns);
    // The episode's totals are exact: the monitor saw every drop since the daemon started.
    assert_eq!(
        c.output_fields.get("saker.drops.kernel_ringbuf.file"),
        Some(&lost.to_string()),
        "{}",
        c.output
    );
    let st = d.health.state();
    assert!(!st.dropping);
    assert_eq!((st.raised, st.cleared), (1, 1));

    // Live subscribers got both, in order.
    let mut seen = Vec::new();
    while let Ok(a) = live.try_recv() {
        if a.rule == RULE_DROPS || a.rule == RULE_CLEARED {
            seen.push(a.rule.clone());
        }
    }
    assert_eq!(seen, vec![RULE_DROPS.to_string(), RULE_CLEARED.to_string()]);
    d.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn containerd_down_then_back_events_keep_their_container_and_metadata_returns() {
    require_root();
    let dir = temp_dir("ctrd");
    let mut ctrd = Containerd::start().expect("containerd starts");
    // The container writes a file every 200 ms on its own: activity that needs no
    // `ctr exec` (impossible while containerd is down).
    let spec = PodSpec::new("faults", "writer-0", "writer")
        .unwrap()
        .command(&[
            "sh",
            "-c",
            "while true; do echo x > /tmp/tick; sleep 0.2; done",
        ]);
    let c = ctrd.run_pod_container(&spec).expect("container runs");

    // containerd goes away; then the daemon starts (so it has no cached metadata).
    ctrd.stop_process().expect("containerd stops");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = rt
        .block_on(async {
            Daemon::start(DaemonConfig {
                rules: rules(),
                store_path: dir.join("saker.db"),
                containerd: Some(ContainerdConfig {
                    socket: ctrd.socket().to_path_buf(),
                    ..Default::default()
                }),
                store: StoreConfig {
                    flush_interval: Duration::from_millis(5),
                    ..Default::default()
                },
                meta_wait: Duration::from_millis(500),
                ..Default::default()
            })
        })
        .expect("daemon starts without containerd");
    let events = |since: i64| {
        d.flush().unwrap();
        d.store
            .events_by(&EventQuery {
                container_id: Some(c.id.clone()),
                since_ns: Some(since),
                limit: 1000,
                ..Default::default()
            })
            .unwrap()
    };
    let t_down = now_ns();
    let down = wait_for(Duration::from_secs(15), || {
        let e = events(t_down);
        (e.len() >= 5).then_some(e)
    })
    .expect("container events keep flowing while containerd is down");
    for e in &down {
        assert_eq!(e.ctx.container_id.as_deref(), Some(c.id.as_str()));
        assert!(e.ctx.container.is_none(), "no metadata source: {e:?}");
    }
    // The pipeline did not stall waiting: events were stored flagged pending.
    assert!(down.iter().any(|e| e.ctx.meta_pending));

    ctrd.restart_process().expect("containerd restarts");
    let t_up = now_ns();
    // The cache retries with backoff (at most 30 s apart).
    let back = wait_for(Duration::from_secs(60), || {
        events(t_up).into_iter().find(|e| e.ctx.container.is_some())
    })
    .expect("metadata fills in once containerd is back");
    let m = back.ctx.container.as_ref().unwrap();
    assert_eq!(m.pod_name.as_deref(), Some("writer-0"));
    assert_eq!(m.namespace.as_deref(), Some("faults"));
    assert_eq!(back.ctx.container_id.as_deref(), Some(c.id.as_str()));
    d.shutdown();
    ctrd.shutdown().expect("teardown");
    let _ = std::fs::remove_dir_all(&dir);
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
