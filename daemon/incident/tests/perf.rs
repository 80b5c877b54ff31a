//! Timing of `correlate` on 100k alerts. Bounds are loose in debug builds; run
//! `cargo test --release -p saker-incident --test perf -- --nocapture` for real numbers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use saker_event::Alert;
use saker_incident::{correlate, CorrelateConfig};

fn workloads(n: usize) -> Vec<Wl> {
    (0..n)
        .map(|i| {
            container(
                &format!("ns-{}", i % 10),
                &format!("app-{i}"),
                &format!("app-{i}-5c8d7-q9wz1"),
                "main",
                "docker.io/acme/app:1.0",
                &format!("{i:064x}"),
            )
        })
        .collect()
}

/// `trees` runs of the mission chain spread round-robin over `ws`, one every `spacing`,
/// each followed by `extra` pool connections 20 s apart (a miner reconnecting).
fn generate(ws: &[Wl], trees: usize, spacing: i64, extra: usize) -> Vec<Alert> {
    let mut out = Vec::with_capacity(trees * (7 + extra));
    for t in 0..trees {
        let wl = &ws[t % ws.len()];
        let c = Chain::at(10_000 + 20 * t as u32);
        let start = T0 + spacing * t as i64;
        let mut chain = mission_chain(&format!("t{t}"), wl, &c, start, 10 * t as u64);
        if let Some(pool) = chain.last().cloned() {
            for k in 0..extra {
                let mut a = pool.clone();
                a.id = format!("t{t}-pool{k}");
                a.time_ns = start + 4 * SEC + 20 * SEC * (k as i64 + 1);
                chain.push(a);
            }
        }
        out.extend(chain);
    }
    out
}

fn time(label: &str, alerts: &[Alert]) -> Duration {
    let cfg = CorrelateConfig::default();
    // Best of three in release (the machine is shared); once in debug, which only checks
    // for blow-ups.
    let runs = if cfg!(debug_assertions) { 1 } else { 3 };
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let incs = correlate(alerts, &cfg);
        best = best.min(t.elapsed());
        n = incs.len();
        let affected: usize = incs.iter().map(|i| i.affected_workloads.len()).sum();
        assert!(affected >= n);
    }
    println!(
        "{label}: {} alerts -> {n} incidents in {best:?}",
        alerts.len()
    );
    best
}

/// Generous bounds: the tests share two cores with other builds. Debug builds only check
/// that nothing is quadratic.
fn bound(release_ms: u64) -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_secs(30)
    } else {
        Duration::from_millis(release_ms)
    }
}

#[test]
fn realistic_100k() {
    // 100 containers, 5000 attack trees of 20 alerts, one every 3 s: ~4 h of activity.
    let alerts = generate(&workloads(100), 5_000, 3 * SEC, 13);
    assert_eq!(alerts.len(), 100_000);
    assert!(time("realistic", &alerts) < bound(1_000));
}

#[test]
fn burst_100k() {
    // Worst case for the blast radius: 14 286 small incidents in 100 containers within
    // 20 minutes, so every incident shares rules with every other workload in the window.
    let alerts = generate(&workloads(100), 14_286, SEC / 12, 0);
    assert!(alerts.len() >= 100_000);
    assert!(time("burst", &alerts) < bound(2_000));
}

#[test]
fn one_huge_incident_and_deep_ancestry() {
    // A fork chain 64 deep under one script, 100k alerts from its leaves: one incident,
    // 64-entry ancestries everywhere (the work must stay linear in their total length).
    let wl = &workloads(1)[0];
    let mut chain: Vec<saker_event::Ancestor> = vec![
        anc(2, "containerd-shim", SHIM, &[SHIM]),
        anc(1, "systemd", "/sbin/init", &[]),
    ];
    for d in 0..62u32 {
        chain.insert(0, anc(100 + d, "sh", "/bin/sh", &["sh", "-c", "f"]));
    }
    let alerts: Vec<Alert> = (0..100_000u32)
        .map(|i| {
            let p = P::new(1_000 + i % 1_000, 161, "x", "/tmp/x", &["x"]).ancestors(chain.clone());
            alert(
                &format!("d{i:06}"),
                u64::from(i),
                T0 + i64::from(i) * 1_000,
                &POOL,
                &p,
                connect_body(3333),
                wl,
            )
        })
        .collect();
    let t = Instant::now();
    let incs = correlate(&alerts, &CorrelateConfig::default());
    let took = t.elapsed();
    println!(
        "deep: {} alerts -> {} incidents in {took:?}",
        alerts.len(),
        incs.len()
    );
    assert_eq!(incs.len(), 1);
    assert_eq!(incs[0].root_cause.pid, 100);
    assert_eq!(incs[0].attack_path.nodes.len(), 62 + 1_000);
    assert!(took < bound(2_000));
}
