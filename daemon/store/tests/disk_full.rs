//! A full filesystem: SQLITE_FULL is counted and reported, nothing panics, queries keep
//! working, and writes succeed again once space is freed (a file deleted, or retention).
//!
//! Needs root to mount a 2 MiB tmpfs (CI runs as root).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use saker_store::{Query, RetentionPolicy, Store, StoreConfig, WriterHandle};

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Mount {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "the full-filesystem test mounts a tmpfs and must run as root (CI does)"
        );
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs failed (needs CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Sends batches of `per` big alerts, flushing each, until a flush fails or `max`
/// batches went through. Returns (batches committed, the error).
fn fill(
    w: &WriterHandle,
    rng: &mut Rng,
    next: &mut u64,
    per: u64,
    max: u64,
) -> (u64, Option<saker_store::StoreError>) {
    for b in 0..max {
        for _ in 0..per {
            let mut a = gen_alert(rng, *next);
            a.id = format!("full-{next:06}");
            a.output = "y".repeat(3000);
            *next += 1;
            assert!(w.send(a), "queue full");
        }
        if let Err(e) = w.flush() {
            return (b, Some(e));
        }
    }
    (max, None)
}

#[test]
fn full_filesystem_is_counted_and_recovered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    let _mount = Mount::tmpfs(&mnt, "2m");
    let ballast = mnt.join("ballast");
    std::fs::write(&ballast, vec![0u8; 512 << 10]).expect("ballast");

    let store = Store::open(
        mnt.join("alerts.db"),
        StoreConfig {
            batch_max: 20,
            // A 2 MiB filesystem holds less than SQLite's default 1000-page WAL:
            // checkpoint often so the data lives in the database file.
            checkpoint_pages: 32,
            reserve_bytes: 256 << 10,
            ..config()
        },
    )
    .expect("open on tmpfs");
    let w = store.writer();
    let mut rng = Rng(9);
    let mut next = 0u64;

    // 1. Write until the filesystem is full.
    let (ok_batches, err) = fill(&w, &mut rng, &mut next, 20, 1000);
    let err = err.expect("the 2 MiB tmpfs never filled up");
    assert!(err.is_disk_full(), "expected SQLITE_FULL, got {err}");
    assert!(ok_batches > 0);
    let st = w.stats();
    assert!(st.write_errors >= 1 && st.failed_rows >= 1, "{st:?}");
    assert!(
        st.last_error.as_deref().is_some_and(|m| m.contains("full")),
        "{st:?}"
    );

    // 2. Queries still work and see exactly what was committed.
    let committed = st.alerts_committed;
    assert_eq!(
        store.count(&Query::new()).expect("count while full"),
        committed
    );
    let page = store
        .query_alerts(&Query::new().limit(5))
        .expect("query while full");
    assert_eq!(page.items.len(), 5);
    assert!(store
        .get_alert(&page.items[0].id)
        .expect("get while full")
        .is_some());
    assert_eq!(
        store
            .count(&Query::new().filter("k8s.ns.name exists"))
            .expect("filtered count while full"),
        store
            .count(&Query::new().filter("not container.id = host"))
            .expect("count")
    );

    // 3. Still full: more failures, counted, no panic, the writer answers.
    let (n, err) = fill(&w, &mut rng, &mut next, 20, 3);
    assert_eq!(n, 0);
    assert!(err.is_some_and(|e| e.is_disk_full()));
    assert!(w.stats().write_errors > st.write_errors);

    // 4. Space freed by deleting a file: writes succeed again.
    std::fs::remove_file(&ballast).expect("rm ballast");
    let (n, err) = fill(&w, &mut rng, &mut next, 20, 1);
    assert!(err.is_none(), "after freeing space: {err:?}");
    assert_eq!(n, 1);
    let after_free = w.stats().alerts_committed;
    assert_eq!(after_free, committed + 20);
    assert_eq!(store.count(&Query::new()).expect("count"), after_free);

    // 5. Full again; this time retention makes room (it releases the reserve file to be
    // able to delete at all, then takes it back).
    let reserve = mnt.join("alerts.db-reserve");
    assert_eq!(
        std::fs::metadata(&reserve).expect("reserve").len(),
        256 << 10
    );
    let (_, err) = fill(&w, &mut rng, &mut next, 20, 1000);
    assert!(err.is_some_and(|e| e.is_disk_full()), "did not fill again");
    let full_count = store.count(&Query::new()).expect("count");
    let before = store.size().expect("size");
    w.set_retention(RetentionPolicy {
        max_age: None,
        max_bytes: Some(before.used_bytes / 2),
    });
    // (A pass the writer starts by itself after SQLITE_FULL may do the work first: the
    // checks below use the writer's totals.)
    w.run_retention().expect("retention on a full filesystem");
    let deleted = w.stats().retention_alerts_deleted;
    assert!(deleted > 0);
    let after = store.size().expect("size");
    assert!(
        after.file_bytes < before.file_bytes,
        "{before:?} -> {after:?}"
    );
    assert!(reserve.exists(), "reserve taken back after retention");
    let (n, err) = fill(&w, &mut rng, &mut next, 20, 3);
    assert!(err.is_none(), "after retention: {err:?}");
    assert_eq!(n, 3);
    assert_eq!(
        store.count(&Query::new()).expect("count"),
        full_count - deleted + 60
    );
    let st = w.stats();
    eprintln!(
        "first full after {committed} alerts; retention deleted {deleted} alerts ({} -> {} bytes); {st:?}",
        before.file_bytes, after.file_bytes
    );
    assert_eq!(st.retention_errors, 0);
    store.close().expect("close");
}
