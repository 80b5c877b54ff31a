//! kill -9 during a write burst loses no committed alert.
//!
//! The test re-executes its own binary as the child (`child_process_entry`, which does
//! nothing unless the environment variable is set). The child writes alerts as fast as it
//! can, flushing after every batch and printing the batch number once `flush` returned
//! Ok. The parent SIGKILLs it mid-burst, reopens the store and checks every alert of
//! every reported batch.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use saker_store::{Query, Store, StoreConfig};

const DB_ENV: &str = "SAKER_STORE_CRASH_DB";
const ROUND_ENV: &str = "SAKER_STORE_CRASH_ROUND";
const BATCH: u64 = 250;

fn alert_id(round: u64, batch: u64, i: u64) -> String {
    format!("r{round}-b{batch:05}-{i:03}")
}

/// The child: only active when re-executed by the test below.
#[test]
fn child_process_entry() {
    let (Ok(db), Ok(round)) = (std::env::var(DB_ENV), std::env::var(ROUND_ENV)) else {
        return;
    };
    let round: u64 = round.parse().expect("round");
    let store = Store::open(
        &db,
        StoreConfig {
            channel_capacity: 4 * BATCH as usize,
            batch_max: 100,
            flush_interval: Duration::from_millis(2),
            ..config()
        },
    )
    .expect("child open");
    let w = store.writer();
    let mut rng = Rng(round);
    for batch in 0.. {
        for i in 0..BATCH {
            let mut a = gen_alert(&mut rng, batch * BATCH + i);
            a.id = alert_id(round, batch, i);
            // Never drop in the child: wait for room instead.
            while !w.send(a.clone()) {
                std::thread::yield_now();
            }
        }
        match w.flush() {
            Ok(()) => println!("COMMITTED {batch}"),
            Err(e) => eprintln!("flush failed: {e}"),
        }
    }
}

#[test]
fn kill_9_during_write_burst_loses_no_committed_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("crash.db");
    let exe = std::env::current_exe().expect("current exe");
    let mut committed: Vec<String> = Vec::new();
    for round in 0..3u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DB_ENV, &db)
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut batches = Vec::new();
        let start = Instant::now();
        // Let a few batches commit, then kill at a different point in each round.
        while batches.len() < 5 + 3 * round as usize {
            assert!(start.elapsed() < Duration::from_secs(60), "child too slow");
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(b) = l.strip_prefix("COMMITTED ") {
                        batches.push(b.parse::<u64>().expect("batch number"));
                    }
                }
                _ => panic!("child ended early: {:?}", child.wait()),
            }
        }
        std::thread::sleep(Duration::from_millis(3 + 7 * round));
        child.kill().expect("SIGKILL");
        // Batches reported before the kill landed are committed too.
        for l in lines.map_while(Result::ok) {
            if let Some(b) = l.strip_prefix("COMMITTED ") {
                batches.push(b.parse::<u64>().expect("batch number"));
            }
        }
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        for &b in &batches {
            committed.extend((0..BATCH).map(|i| alert_id(round, b, i)));
        }

        // Reopen (replays the WAL) and check every committed alert of every round.
        let store = Store::open(&db, config()).expect("reopen after kill");
        let mut present = HashSet::new();
        let mut cursor = None;
        loop {
            let page = store
                .query_alerts(&Query::new().limit(10_000).after(cursor))
                .expect("query");
            present.extend(page.items.into_iter().map(|a| a.id));
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let missing: Vec<&String> = committed
            .iter()
            .filter(|id| !present.contains(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} committed alerts lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        // Uncommitted rows of the killed batch may or may not be there; nothing else is.
        assert!(present.len() >= committed.len());
        store.close().expect("close");
        let conn = rusqlite::Connection::open(&db).expect("raw");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(check, "ok");
        eprintln!(
            "round {round}: {} batches reported committed, {} alerts present",
            batches.len(),
            present.len()
        );
    }
}
