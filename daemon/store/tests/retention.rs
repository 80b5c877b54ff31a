//! Retention by age (periodic and on demand) and by database size.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use saker_store::{Query, RetentionPolicy, Store, StoreConfig};

const DAY_NS: i64 = 24 * 3600 * 1_000_000_000;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn raw_count(path: &std::path::Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("raw open");
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

#[test]
fn age_retention_deletes_old_alerts_and_unlinked_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let store = Store::open(
        &path,
        StoreConfig {
            retention_max_age: Some(Duration::from_secs(24 * 3600)),
            retention_interval: Duration::from_secs(3600),
            ..config()
        },
    )
    .expect("open");
    let w = store.writer();
    let now = now_ns();
    let old = now - 3 * DAY_NS;
    let cid = "d".repeat(64);
    // Events 1-5 old and unlinked; 6, 7 old but linked to a new alert; 8 old and linked
    // to an old alert; 9, 10 new.
    for seq in 1..=8 {
        assert!(w.send_event(event(seq, old + seq as i64, Some(&cid), 1)));
    }
    for seq in 9..=10 {
        assert!(w.send_event(event(seq, now - 1000 + seq as i64, Some(&cid), 1)));
    }
    for i in 0..10 {
        let mut a = simple_alert(&format!("old-{i}"), old + i);
        a.mitre_techniques = vec!["T1059".into(), "T1105".into()];
        assert!(w.send_with_context(a, if i == 0 { vec![8] } else { vec![] }));
        let mut a = simple_alert(&format!("new-{i}"), now - 60_000_000_000 + i);
        a.mitre_techniques = vec!["T1059".into()];
        assert!(w.send_with_context(a, if i == 0 { vec![6, 7, 10] } else { vec![] }));
    }
    w.flush().expect("flush");
    assert_eq!(store.count(&Query::new()).expect("count"), 20);

    let r = w.run_retention().expect("retention");
    assert_eq!((r.alerts_deleted, r.events_deleted), (10, 6), "{r:?}");
    let left = store.query_alerts(&Query::new().limit(100)).expect("query");
    assert_eq!(
        ids(&left.items),
        (0..10).map(|i| format!("new-{i}")).collect::<Vec<_>>()
    );
    let ctx: Vec<u64> = store
        .context_events("new-0")
        .expect("ctx")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(ctx, vec![6, 7, 10], "linked old events are kept");
    // Side tables follow their alerts (trigger).
    assert_eq!(raw_count(&path, "SELECT count(*) FROM alert_blobs"), 10);
    assert_eq!(
        raw_count(&path, "SELECT count(*) FROM alert_techniques"),
        10
    );
    assert_eq!(raw_count(&path, "SELECT count(*) FROM alert_context"), 3);
    assert_eq!(raw_count(&path, "SELECT count(*) FROM events"), 4);
    assert_eq!(
        store
            .grouped_counts(&Query::new(), &[saker_store::GroupKey::Technique])
            .expect("groups")[0]
            .count,
        10
    );
    // Nothing more to do.
    let r = w.run_retention().expect("retention");
    assert_eq!((r.alerts_deleted, r.events_deleted), (0, 0));
}

#[test]
fn retention_runs_periodically_in_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path().join("a.db"),
        StoreConfig {
            retention_max_age: Some(Duration::from_secs(3600)),
            retention_interval: Duration::from_millis(100),
            ..config()
        },
    )
    .expect("open");
    let w = store.writer();
    let old = now_ns() - DAY_NS;
    for i in 0..50 {
        assert!(w.send(simple_alert(&format!("p-{i}"), old + i)));
    }
    assert!(w.send(simple_alert("fresh", now_ns())));
    let start = Instant::now();
    while w.stats().retention_alerts_deleted < 50 {
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", w.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(store.count(&Query::new()).expect("count"), 1);
    assert_eq!(w.stats().retention_errors, 0);
}

#[test]
fn size_retention_keeps_the_newest_and_shrinks_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let max: u64 = 2 << 20;
    let store = Store::open(
        &path,
        StoreConfig {
            retention_interval: Duration::from_secs(3600),
            ..config()
        },
    )
    .expect("open");
    let w = store.writer();
    // 300 small events, older than every alert; 3000 alerts of ~2.5 KB, unique times.
    for seq in 0..300u64 {
        assert!(w.send_event(event(seq, BASE_NS - 10_000 + seq as i64, None, 1)));
    }
    let mut rng = Rng(5);
    let mut alerts = Vec::new();
    for i in 0..3000u64 {
        let mut a = gen_alert(&mut rng, i);
        a.time_ns = BASE_NS + i as i64;
        a.output = "x".repeat(2000);
        alerts.push(a.clone());
        while !w.send(a.clone()) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    w.flush().expect("flush");
    let before = store.size().expect("size");
    assert!(before.used_bytes > 3 * max, "{before:?}");

    w.set_retention(RetentionPolicy {
        max_age: None,
        max_bytes: Some(max),
    });
    let r = w.run_retention().expect("retention");
    assert!(r.after.used_bytes <= max, "{r:?}");
    // Events are older, so they go first; then just enough alerts (100 per chunk).
    assert_eq!(r.events_deleted, 300, "{r:?}");
    let kept = store.count(&Query::new()).expect("count");
    assert_eq!(kept, 3000 - r.alerts_deleted);
    assert!(kept > 300 && r.alerts_deleted > 0, "{r:?}");
    // The survivors are exactly the newest alerts.
    let page = store
        .query_alerts(&Query::new().limit(10_000))
        .expect("query");
    assert_eq!(ids(&page.items), ids(&alerts[r.alerts_deleted as usize..]));
    // The file itself shrank (incremental vacuum + truncating checkpoint).
    let file = std::fs::metadata(&path).expect("meta").len();
    assert!(file <= max + (64 << 10), "file {file} bytes, {r:?}");
    let wal = std::fs::metadata(path.with_extension("db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(wal, 0);
    // A second pass has nothing to do, and the writer goes on.
    let r2 = w.run_retention().expect("retention");
    assert_eq!((r2.alerts_deleted, r2.events_deleted), (0, 0));
    assert!(w.send(simple_alert("after", BASE_NS + 10_000)));
    w.flush().expect("flush");
    assert_eq!(store.count(&Query::new()).expect("count"), kept + 1);
}
