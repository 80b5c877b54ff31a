//! Store benchmarks over 100k generated alerts: filtered count (target < 50 ms), a
//! filtered page, grouped counts, the predicate path, and insert throughput.
//!
//! `cargo bench -p saker-store --bench store`

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use saker_store::{GroupKey, Query, Store, StoreConfig, WriterHandle};

const N: u64 = 100_000;
const FILTER: &str = "k8s.ns.name=risk-10-aws-bedrock-java and policy=\"Drift Detection\"";

fn open(dir: &tempfile::TempDir) -> Store {
    let cfg = StoreConfig {
        // Room for a whole burst: `send` never drops here.
        channel_capacity: 200_000,
        ..config()
    };
    match Store::open(dir.path().join("bench.db"), cfg) {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

/// Sends the alerts and waits until they are committed.
fn insert(w: &WriterHandle, alerts: Vec<saker_event::Alert>) {
    for a in alerts {
        assert!(w.send(a), "queue full");
    }
    if let Err(e) = w.flush() {
        panic!("flush: {e}");
    }
}

/// Generated alerts shaped like a node's: ids and times increase (the detector numbers
/// alerts by event sequence), and a node runs a few dozen containers.
fn node_alerts(rng: &mut Rng, first: u64, n: u64) -> Vec<saker_event::Alert> {
    (first..first + n)
        .map(|i| {
            let mut a = gen_alert(rng, i);
            a.id = format!("node-a-{i:010}-0");
            a.time_ns = BASE_NS + i as i64 * 10_000;
            a.event.event.time_ns = a.time_ns;
            if a.event.ctx.container_id.is_some() {
                a.event.ctx.container_id = Some(format!("{:064x}", rng.below(40) + 1));
            }
            a
        })
        .collect()
}

fn tmpdir() -> tempfile::TempDir {
    // On the target disk, not a tmpfs /tmp: insert figures include real WAL writes.
    match tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")) {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

fn queries(c: &mut Criterion) {
    let dir = tmpdir();
    let store = open(&dir);
    let w = store.writer();
    let alerts = node_alerts(&mut Rng(1), 0, N);
    let start = Instant::now();
    insert(&w, alerts);
    let secs = start.elapsed().as_secs_f64();
    let size = store.size().map(|s| s.file_bytes).unwrap_or(0);
    eprintln!(
        "setup: {N} alerts inserted in {secs:.2} s ({:.0} alerts/s), database {:.1} MiB",
        N as f64 / secs,
        size as f64 / (1 << 20) as f64
    );
    let q = Query::new().filter(FILTER);
    let n = store.count(&q).unwrap_or(0);
    eprintln!("{FILTER}: {n} of {N}");

    let mut g = c.benchmark_group("query_100k");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("count_filtered", |b| {
        b.iter(|| black_box(store.count(black_box(&q)).unwrap_or(0)))
    });
    let page = Query::new().filter(FILTER).limit(100);
    g.bench_function("page_100_filtered", |b| {
        b.iter(|| {
            black_box(
                store
                    .query_alerts(&page)
                    .map(|p| p.items.len())
                    .unwrap_or(0),
            )
        })
    });
    let all = Query::new();
    g.bench_function("grouped_policy_namespace", |b| {
        b.iter(|| {
            black_box(
                store
                    .grouped_counts(&all, &[GroupKey::Policy, GroupKey::Namespace])
                    .map(|v| v.len())
                    .unwrap_or(0),
            )
        })
    });
    let pf = "evt.type = execve and k8s.ns.name = payments";
    g.bench_function("count_predicate_path", |b| {
        b.iter(|| {
            let q = Query::new().filter(pf).predicate(predicate(pf));
            black_box(store.count(&q).unwrap_or(0))
        })
    });
    g.finish();
    drop(store);
}

fn inserts(c: &mut Criterion) {
    let dir = tmpdir();
    let store = open(&dir);
    let w = store.writer();
    const BATCH: u64 = 5_000;
    let mut rng = Rng(2);
    let mut next = 0u64;
    let mut g = c.benchmark_group("insert");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(BATCH));
    g.bench_function("alerts_5000_then_flush", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Generation is outside the timed part.
                let alerts = node_alerts(&mut rng, next, BATCH);
                next += BATCH;
                let start = Instant::now();
                insert(&w, alerts);
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, queries, inserts);
criterion_main!(benches);
