//! The daemon under faults, with real parts: the real `sakerd` binary killed with SIGKILL
//! during an alert burst and restarted on the same SQLite file (read independently with
//! Python's sqlite3); the store on a full filesystem (a small tmpfs); and a rules reload
//! (SIGHUP) with a broken file.
//!
//! Alerts come from the packaged rules: a copy of /bin/true named `xmrig` fires
//! "Malware - Known Cryptominer Executed" on every exec.

use std::{
    collections::BTreeSet,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use saker::daemon::{Daemon, DaemonConfig};
use saker_store::{Query, StoreConfig};

const MINER_RULE: &str = "Malware - Known Cryptominer Executed";

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the fault tests load the eBPF sensor and mount a tmpfs: run them as root"
    );
}

fn rules_file() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/saker_rules.yaml"
    ))
}

/// Short (socket paths are limited) and unique per test.
fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("saker-f-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A copy of /bin/true named like a miner (each test its own name: tests run in parallel
/// and every daemon sees every exec on the host).
fn fake_miner(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy("/bin/true", &p).unwrap();
    p
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Sakerd {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Sakerd {
    fn start(dir: &Path, store: &Path, rules: &Path) -> Sakerd {
        let socket = dir.join("s.sock");
        let log = dir.join(format!(
            "sakerd-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let child = Command::new(env!("CARGO_BIN_EXE_sakerd"))
            .arg("--store")
            .arg(store)
            .arg("--socket")
            .arg(&socket)
            .arg("--rules")
            .arg(rules)
            .args(["--no-model", "--no-containerd", "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("sakerd starts");
        let mut s = Sakerd { child, socket, log };
        wait_until("sakerd: ready", Duration::from_secs(60), || {
            assert!(
                matches!(s.child.try_wait(), Ok(None)),
                "sakerd exited: {}",
                s.log_text()
            );
            s.log_text().contains("sakerd: ready")
        });
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn saker(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let o = Command::new(env!("CARGO_BIN_EXE_saker"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "saker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn node(&self) -> serde_json::Value {
        self.saker(&["node"])
            .into_iter()
            .find_map(|l| l.get("info").cloned())
            .expect("node info")
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own unreaped child.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }

    /// SIGTERM and wait: the daemon must exit cleanly.
    fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let st = self.child.wait().unwrap();
        assert!(st.success(), "sakerd exit {st}: {}", self.log_text());
    }
}

/// 64-bit numbers are strings in proto JSON.
fn num(v: &serde_json::Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
        .unwrap_or(0)
}

/// Python's own SQLite (not ours) reading the store file: `PRAGMA integrity_check` (when
/// `check`) and the committed alert ids.
fn sqlite_ids(db: &Path, check: bool) -> (String, BTreeSet<String>) {
    let script = r#"
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("pragma integrity_check").fetchone()[0] if sys.argv[2] == "1" else "skipped")
for (i,) in c.execute("select id from alerts"):
    print(i)
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(db)
        .arg(if check { "1" } else { "0" })
        .output()
        .expect("python3 (installed by cargo xtask setup)");
    assert!(
        o.status.success(),
        "python3 sqlite3: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut lines = text.lines();
    let verdict = lines.next().unwrap_or("").to_string();
    (verdict, lines.map(str::to_string).collect())
}

#[test]
fn sigkill_during_an_alert_burst_loses_no_committed_alert() {
    require_root();
    let dir = temp_dir("kill");
    let miner = fake_miner(&dir, "xmrig");
    let db = dir.join("saker.db");
    let d = Sakerd::start(&dir, &db, &rules_file());
    // The burst: the fake miner executed in a loop until we stop it.
    let mut burst = Command::new("sh")
        .args(["-c", "while :; do \"$0\"; done"])
        .arg(&miner)
        .spawn()
        .unwrap();
    wait_until("200 committed alerts", Duration::from_secs(60), || {
        sqlite_ids(&db, false).1.len() >= 200
    });
    // Read what is committed, then kill at once: alerts are still being written.
    let (_, before) = sqlite_ids(&db, false);
    d.signal(libc::SIGKILL);
    let mut d = d;
    let st = d.child.wait().unwrap();
    let _ = burst.kill();
    let _ = burst.wait();
    assert!(!st.success(), "killed");

    let d2 = Sakerd::start(&dir, &db, &rules_file());
    let (verdict, after) = sqlite_ids(&db, true);
    assert_eq!(verdict, "ok", "integrity_check after SIGKILL");
    let missing: Vec<&String> = before.difference(&after).collect();
    assert!(
        missing.is_empty(),
        "{} of {} committed alerts lost: {:?}",
        missing.len(),
        before.len(),
        &missing[..missing.len().min(5)]
    );
    // The restarted daemon serves them and keeps detecting.
    let stored = num(&d2.node()["store"]["alerts"]);
    assert!(stored >= before.len() as u64, "{stored} < {}", before.len());
    let t = Command::new(&miner).status().unwrap();
    assert!(t.success());
    wait_until("a new alert after restart", Duration::from_secs(10), || {
        num(&d2.node()["store"]["alerts"]) > stored
    });
    d2.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_with_a_broken_rules_file_keeps_the_last_good_rules() {
    require_root();
    let dir = temp_dir("hup");
    let miner = fake_miner(&dir, "cpuminer");
    let rules = dir.join("r.yaml");
    std::fs::copy(rules_file(), &rules).unwrap();
    let d = Sakerd::start(&dir, &dir.join("saker.db"), &rules);
    let loaded = d.node()["rules"]["loaded"].as_u64().unwrap();
    assert!(loaded > 10, "{loaded}");

    std::fs::write(
        &rules,
        "- rule: broken\n  desc: x\n  condition: proc.name = (\n  output: x\n  priority: INFO\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    wait_until(
        "the reload failure in the log",
        Duration::from_secs(10),
        || d.log_text().contains("r.yaml:3:"),
    );
    let line = d
        .log_text()
        .lines()
        .find(|l| l.contains("r.yaml:3:"))
        .unwrap()
        .to_string();
    // file:line:col, and the daemon says it kept the previous rules.
    let at = line.find("r.yaml:3:").unwrap() + "r.yaml:3:".len();
    assert!(
        line[at..].starts_with(|c: char| c.is_ascii_digit()),
        "line:col in {line}"
    );
    assert!(line.contains("keeping the previous rules"), "{line}");
    assert_eq!(d.node()["rules"]["loaded"].as_u64().unwrap(), loaded);

    // Detection still runs on the last good rules.
    assert!(Command::new(&miner).status().unwrap().success());
    let filter = format!("rule = \"{MINER_RULE}\"");
    wait_until(
        "a miner alert after the failed reload",
        Duration::from_secs(10),
        || {
            d.saker(&["events", "-f", &filter])
                .iter()
                .any(|l| l.get("alert").is_some())
        },
    );

    // A good file again: the reload succeeds and the daemon is still up.
    std::fs::copy(rules_file(), &rules).unwrap();
    d.signal(libc::SIGHUP);
    wait_until("rules reloaded", Duration::from_secs(10), || {
        d.log_text().contains("rules reloaded")
    });
    assert_eq!(d.node()["rules"]["loaded"].as_u64().unwrap(), loaded);
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "saker-full"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if !Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
        {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 << 10];
    let mut n = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(w) => n += w as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
    }
    let _ = f.sync_all();
    n
}

#[test]
fn a_full_filesystem_is_reported_detection_goes_on_and_space_coming_back_recovers() {
    require_root();
    let dir = temp_dir("full");
    let miner = fake_miner(&dir, "minerd");
    let mnt = Tmpfs::mount(&dir.join("mnt"), "4m");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = rt
        .block_on(async {
            Daemon::start(DaemonConfig {
                rules: vec![rules_file()],
                store_path: mnt.0.join("saker.db"),
                containerd: None,
                store: StoreConfig {
                    flush_interval: Duration::from_millis(5),
                    // No reserve file: the point is what happens when nothing is left.
                    reserve_bytes: 0,
                    // A short WAL: new rows need new pages in the database file soon.
                    checkpoint_pages: 16,
                    ..StoreConfig::default()
                },
                ..Default::default()
            })
        })
        .expect("daemon starts");
    let mut live = d.alerts_tx.subscribe();
    // This test's alerts: its miner's path (other tests' miners run at the same time).
    let mine = miner.display().to_string();
    let stored = || {
        d.store
            .query_alerts(
                &Query::new()
                    .filter(format!("rule = \"{MINER_RULE}\""))
                    .limit(saker_store::MAX_LIMIT),
            )
            .unwrap()
            .items
            .iter()
            .filter(|a| a.output.contains(mine.as_str()))
            .count()
    };
    let exec_miner = |n: usize| {
        for _ in 0..n {
            assert!(Command::new(&miner).status().unwrap().success());
        }
    };
    let count_live =
        |rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<saker_event::Alert>>| {
            let mut n = 0;
            while let Ok(a) = rx.try_recv() {
                if a.rule == MINER_RULE && a.output.contains(mine.as_str()) {
                    n += 1;
                }
            }
            n
        };

    exec_miner(5);
    wait_until("5 stored alerts", Duration::from_secs(10), || {
        d.flush().is_ok() && stored() >= 5
    });
    assert_eq!(count_live(&mut live), 5);

    let filler = mnt.0.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0);
    let stored_full = stored();
    // Detection goes on while nothing can be written.
    exec_miner(300);
    let mut seen = 0;
    wait_until(
        "300 live alerts while the disk is full",
        Duration::from_secs(20),
        || {
            seen += count_live(&mut live);
            seen >= 300
        },
    );
    let err = d.flush().expect_err("rows were lost to the full disk");
    assert!(err.is_disk_full(), "{err}");
    let ws = d.store.stats();
    assert!(ws.write_errors > 0 && ws.failed_rows > 0, "{ws:?}");
    assert!(
        ws.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "{ws:?}"
    );
    let stored_during = stored();
    assert!(
        stored_during < stored_full + 300,
        "some of the 300 alerts could not be stored ({stored_full} → {stored_during})"
    );

    // Space comes back: new alerts are stored again.
    std::fs::remove_file(&filler).unwrap();
    let events_before = d.counters.events.load(std::sync::atomic::Ordering::Relaxed);
    exec_miner(20);
    wait_until("20 more stored alerts", Duration::from_secs(20), || {
        d.flush().is_ok() && stored() >= stored_during + 20
    });
    assert!(d.counters.events.load(std::sync::atomic::Ordering::Relaxed) > events_before);
    d.shutdown();
    drop(rt);
    drop(mnt);
    let _ = std::fs::remove_dir_all(&dir);
}
