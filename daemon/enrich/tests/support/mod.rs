//! A minimal private containerd for the integration tests: scratch config, `ctr` for
//! containers, a locally built busybox image (no registry), stop/restart, full teardown.
//! Cgroup ancestors under `/kubepods` are shared with saker-tests' harness through the same
//! `flock` protocol on [`CGROUP_LOCK`].

#![allow(dead_code)]

pub mod containerd;
pub mod image;

use std::io::Read;
use std::process::{Command, Output, Stdio};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Lock file shared with saker-tests (shared while creating containers, exclusive while
/// removing `/kubepods` ancestors).
pub const CGROUP_LOCK: &str = "/tmp/saker-containerd.lock";

pub fn run(cmd: &mut Command) -> Res<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(out)
}

pub fn random_hex(bytes: usize) -> Res<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex(&buf))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random v4 UUID, as the kubelet assigns to pods.
pub fn random_uuid() -> Res<String> {
    let h = random_hex(16)?;
    Ok(format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    ))
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

pub fn require_root() {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests need root (containerd, runc, cgroups, overlayfs): run them as root, as CI does"
    );
}
