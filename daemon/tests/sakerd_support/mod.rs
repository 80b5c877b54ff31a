//! A real `sakerd` process for tests: started from the built binary with a temp store and
//! socket, its log (stderr) collected, stopped with SIGTERM. Runs as root (eBPF).
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SAKERD: &str = env!("CARGO_BIN_EXE_sakerd");
pub const SAKER: &str = env!("CARGO_BIN_EXE_saker");

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests start sakerd, which loads eBPF programs: run them as root"
    );
}

pub fn rules_file() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/saker_rules.yaml"
    ))
}

/// A fresh directory under the system temp dir (short: socket paths are limited).
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("saker-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Reads a pipe to the end in a thread, into a shared buffer.
fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

pub struct Sakerd {
    child: Child,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub store: PathBuf,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Sakerd {
    /// `sakerd run` without containerd or a model, plus `extra` flags; waits for ready.
    pub fn start(tag: &str, extra: &[&str], env: &[(&str, &str)]) -> Sakerd {
        require_root();
        let dir = temp_dir(tag);
        let socket = dir.join("run/saker.sock");
        let store = dir.join("store/saker.db");
        let mut cmd = Command::new(SAKERD);
        cmd.arg("--rules")
            .arg(rules_file())
            .arg("--store")
            .arg(&store)
            .arg("--socket")
            .arg(&socket)
            .args(["--no-containerd", "--no-model", "--ring-mib", "4"])
            .args(extra)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sakerd");
        let log = collect(child.stderr.take().expect("stderr"));
        let mut d = Sakerd {
            child,
            dir,
            socket,
            store,
            log,
        };
        let end = Instant::now() + Duration::from_secs(90);
        loop {
            if d.log_text().contains("sakerd: ready") {
                break;
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("sakerd exited ({st}) before ready:\n{}", d.log_text());
            }
            assert!(
                Instant::now() < end,
                "sakerd not ready in 90 s:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> Vec<u8> {
        self.log.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.log()).into_owned()
    }

    /// Runs the `saker` CLI against this daemon's socket.
    pub fn saker(&self, args: &[&str]) -> Output {
        Command::new(SAKER)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run saker")
    }

    /// Polls `saker --json events --filter FILTER` until it returns a line with an alert.
    pub fn wait_alerts(&self, filter: &str, timeout: Duration) -> Vec<serde_json::Value> {
        let end = Instant::now() + timeout;
        loop {
            let o = self.saker(&["--json", "events", "--filter", filter]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
                .expect("saker --json prints UTF-8")
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .filter(|v: &serde_json::Value| v.get("alert").is_some())
                .collect();
            if !lines.is_empty() {
                return lines;
            }
            assert!(
                Instant::now() < end,
                "no alert for {filter} in {timeout:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, wait (the daemon commits and prints its summary), return the whole log.
    /// The directory (store) stays until the value is dropped.
    pub fn stop(&mut self) -> Vec<u8> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < end, "sakerd did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The log thread ends at EOF.
        std::thread::sleep(Duration::from_millis(100));
        self.log()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Sakerd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
