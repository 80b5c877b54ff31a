//! The mission scenario end to end on the real kernel with real containerd: three
//! workloads in two namespaces are compromised the same way; the daemon (sensor →
//! enrichment → rules → store) must record what happened with Kubernetes metadata.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    time::{Duration, Instant},
};

use saker::daemon::{Daemon, DaemonConfig};
use saker_enrich::ContainerdConfig;
use saker_store::{GroupKey, Query};
use saker_tests::{
    containerd::Containerd,
    scenario::{
        attack, build_fake_miner, script, start_workloads, FileServer, Pool, SCRIPT, WORKLOADS,
    },
    sensor::require_root,
};

#[test]
fn mission_scenario_is_detected_in_both_policies_with_kubernetes_metadata() {
    require_root();
    let dir = std::env::temp_dir().join(format!("saker-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let miner = std::fs::read(build_fake_miner(&dir).expect("fake miner builds")).unwrap();
    let _pool = Pool::start().expect("pool listener");
    let http = FileServer::start(|port| {
        vec![
            (SCRIPT.to_string(), script(port).into_bytes()),
            ("easyminer".to_string(), miner),
        ]
    })
    .unwrap();

    let ctrd = Containerd::start().expect("containerd starts");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store_path = dir.join("saker.db");
    let daemon = rt
        .block_on(async {
            Daemon::start(DaemonConfig {
                node: "node-1".into(),
                cluster: "saker-e2e".into(),
                rules: vec![PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../rules/saker_rules.yaml"
                ))],
                store_path: store_path.clone(),
                containerd: Some(ContainerdConfig {
                    socket: ctrd.socket().to_path_buf(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .expect("daemon starts");

    let containers = start_workloads(&ctrd).expect("workloads run");
    for c in &containers {
        attack(c, http.port).expect("attack runs");
    }

    // Wait for the last step of every chain: the pool connection of each miner.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pool_rule = "rule = \"Malware - Connection To Mining Pool Port\"";
    loop {
        daemon.flush().unwrap();
        let n = daemon.store.count(&Query::new().filter(pool_rule)).unwrap();
        if n >= 3 || Instant::now() > deadline {
            assert_eq!(n, 3, "one pool connection alert per workload");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    daemon.flush().unwrap();

    // Both policies, in the namespace filter the operator starts with.
    let ns = "k8s.ns.name = risk-10-aws-bedrock-java";
    let by_policy = daemon
        .store
        .grouped_counts(&Query::new().filter(ns), &[GroupKey::Policy])
        .unwrap();
    let policies: BTreeSet<String> = by_policy
        .iter()
        .filter_map(|g| g.key.first().cloned().flatten())
        .collect();
    assert!(policies.contains("Drift Detection"), "{by_policy:?}");
    assert!(
        policies.contains("Malicious Binary Detection"),
        "{by_policy:?}"
    );

    let all = daemon
        .store
        .query_alerts(
            &Query::new()
                .filter("kubernetes.cluster.name = saker-e2e")
                .limit(1000),
        )
        .unwrap();
    let rules: BTreeSet<&str> = all.items.iter().map(|a| a.rule.as_str()).collect();
    for r in [
        "Suspicious - Downloader Tool Run In Container",
        "Drift - Executable Bit Added In Container",
        "Drift - Binary Executed From Container Upper Layer",
        "Malware - Known Cryptominer Executed",
        "Malware - Stratum Mining Protocol In Command Line",
        "Malware - Connection To Mining Pool Port",
    ] {
        assert!(rules.contains(r), "rule {r} fired: {rules:?}");
    }
    let techniques: BTreeSet<&str> = all
        .items
        .iter()
        .flat_map(|a| a.mitre_techniques.iter().map(String::as_str))
        .collect();
    for t in ["T1105", "T1222.002", "T1496", "T1059.004"] {
        assert!(techniques.contains(t), "technique {t}: {techniques:?}");
    }
    // Every alert carries its workload's Kubernetes metadata.
    let pods: BTreeSet<(String, String)> = all
        .items
        .iter()
        .filter_map(|a| a.event.ctx.container.as_ref())
        .map(|m| {
            (
                m.namespace.clone().unwrap_or_default(),
                m.pod_name.clone().unwrap_or_default(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = WORKLOADS
        .iter()
        .map(|(n, p, _)| (n.to_string(), p.to_string()))
        .collect();
    assert_eq!(pods, want);
    // The miner runs from the upper layer with the script as an ancestor.
    let drift = all
        .items
        .iter()
        .find(|a| a.rule == "Drift - Binary Executed From Container Upper Layer")
        .unwrap();
    assert!(drift.event.ctx.proc.ancestors.iter().any(|a| a
        .args
        .iter()
        .any(|x| x.as_bytes() == format!("./{SCRIPT}").as_bytes())));
    assert!(drift.event.ctx.proc.exe_sha256.is_some());

    // Incidents: one per workload, rooted at the script, with the whole chain.
    let incidents =
        saker_incident::correlate(&all.items, &saker_incident::CorrelateConfig::default());
    let mut pods: Vec<String> = incidents
        .iter()
        .map(|i| i.workload.pod.clone().unwrap_or_default())
        .collect();
    pods.sort();
    let mut want_pods: Vec<String> = WORKLOADS.iter().map(|(_, p, _)| p.to_string()).collect();
    want_pods.sort();
    assert_eq!(
        pods,
        want_pods,
        "one incident per workload: {:#?}",
        incidents
            .iter()
            .map(|i| (&i.id, &i.workload))
            .collect::<Vec<_>>()
    );
    for inc in &incidents {
        let root =
            String::from_utf8_lossy(saker_incident::join_args(&inc.root_cause.cmdline).as_bytes())
                .into_owned();
        assert_eq!(root, format!("sh ./{SCRIPT}"), "root cause of {}", inc.id);
        let cmd = |n: &saker_incident::PathNode| {
            String::from_utf8_lossy(saker_incident::join_args(&n.cmdline).as_bytes()).into_owned()
        };
        let wget = inc
            .attack_path
            .nodes
            .iter()
            .find(|n| cmd(n).starts_with("wget") && cmd(n).contains("easyminer"))
            .expect("wget step");
        let miner = inc
            .attack_path
            .nodes
            .iter()
            .find(|n| n.exe.as_bytes().ends_with(b"/tmp/easyminer"))
            .expect("easyminer step");
        let chmod_time = inc
            .attack_path
            .nodes
            .iter()
            .flat_map(|n| n.steps.iter())
            .find(|s| s.rule == "Drift - Executable Bit Added In Container")
            .map(|s| s.time_ns)
            .expect("chmod step");
        assert!(
            wget.first_seen_ns < chmod_time && chmod_time < miner.first_seen_ns,
            "wget → chmod → easyminer in time order"
        );
        let techniques: BTreeSet<&str> = inc.techniques.iter().map(|t| t.id.as_str()).collect();
        for t in ["T1105", "T1222.002", "T1496", "T1059.004"] {
            assert!(techniques.contains(t), "{} has {t}: {techniques:?}", inc.id);
        }
        let radius = saker_incident::blast_radius(&incidents, inc);
        assert_eq!(
            radius.len(),
            3,
            "the same miner hash and script reach all three workloads"
        );
    }

    daemon.shutdown();
    drop(containers);
    drop(ctrd);
    std::fs::remove_dir_all(&dir).unwrap();
}
