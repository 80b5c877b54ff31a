//! exec → alert latency through the whole daemon on the real kernel: the time from the
//! kernel's exec timestamp to (a) the alert leaving the rules stage and (b) the alert
//! being readable from the SQLite store. Needs root.
//!
//! `cargo bench -p saker-tests --bench latency` (env SAKER_LATENCY_N, default 300)

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use saker::daemon::{Daemon, DaemonConfig};

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let n: usize = std::env::var("SAKER_LATENCY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = std::env::temp_dir().join(format!("saker-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A host process named like a miner fires "Malware - Known Cryptominer Executed".
    let trigger = dir.join("xmrig");
    std::fs::copy("/bin/true", &trigger).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let daemon = rt
        .block_on(async {
            Daemon::start(DaemonConfig {
                rules: vec![PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../rules/saker_rules.yaml"
                ))],
                store_path: dir.join("saker.db"),
                containerd: None,
                ..Default::default()
            })
        })
        .expect("daemon starts (root needed)");
    let mut rx = daemon.alerts_tx.subscribe();
    let (mut detect_ms, mut stored_ms) = (Vec::new(), Vec::new());
    for _ in 0..n {
        Command::new(&trigger).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let alert = loop {
            match rx.try_recv() {
                Ok(a) if a.rule == "Malware - Known Cryptominer Executed" => break Some(a),
                Ok(_) => continue,
                Err(_) if Instant::now() > deadline => break None,
                Err(_) => std::thread::sleep(Duration::from_micros(100)),
            }
        };
        let Some(alert) = alert else {
            panic!("no alert within 5 s")
        };
        detect_ms.push((now_ns() - alert.time_ns) as f64 / 1e6);
        loop {
            if daemon.store.get_alert(&alert.id).unwrap().is_some() {
                stored_ms.push((now_ns() - alert.time_ns) as f64 / 1e6);
                break;
            }
            std::thread::sleep(Duration::from_micros(250));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "exec→alert (rules stage): p50 {:.2} ms p99 {:.2} ms; exec→alert stored: p50 {:.2} ms p99 {:.2} ms (n={n})",
        pct(&mut detect_ms, 0.5),
        pct(&mut detect_ms, 0.99),
        pct(&mut stored_ms, 0.5),
        pct(&mut stored_ms, 0.99)
    );
    daemon.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
