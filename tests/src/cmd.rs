//! Small process and randomness helpers shared by the container harness.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// Renders a command line for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion with stdin closed; returns its output whatever the exit status.
pub(crate) fn output(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning `{}`", describe(cmd)))
}

/// Runs `cmd` and fails, quoting stderr, unless it exits 0.
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let out = output(cmd)?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Runs `cmd` and returns its stdout as a string.
pub(crate) fn run_stdout(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    String::from_utf8(out.stdout)
        .with_context(|| format!("non-UTF-8 output of `{}`", describe(cmd)))
}

/// Lowercase hex of `n` random bytes from the kernel.
pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(hex(&buf))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random RFC 4122 v4 UUID, as the kubelet would assign to a pod.
pub(crate) fn random_uuid() -> Result<String> {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("reading /proc/sys/kernel/random/uuid")?;
    Ok(uuid.trim().to_owned())
}

/// sha256 of a file, hex; shells out to coreutils' `sha256sum` to avoid a crypto dependency.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let out = run_stdout(Command::new("sha256sum").arg("--").arg(path))?;
    parse_sha256sum(&out)
}

/// sha256 of a byte string, hex.
pub(crate) fn sha256_bytes(data: &[u8]) -> Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning sha256sum")?;
    // The input is small, so writing it all before reading cannot deadlock on pipe buffers.
    child
        .stdin
        .take()
        .context("sha256sum stdin")?
        .write_all(data)
        .context("writing to sha256sum")?;
    let out = child.wait_with_output().context("waiting for sha256sum")?;
    if !out.status.success() {
        bail!("sha256sum failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    parse_sha256sum(&String::from_utf8_lossy(&out.stdout))
}

fn parse_sha256sum(out: &str) -> Result<String> {
    let digest = out.split_whitespace().next().unwrap_or_default();
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("unexpected sha256sum output {out:?}");
    }
    Ok(digest.to_owned())
}
