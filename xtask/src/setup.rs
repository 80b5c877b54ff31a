//! `cargo xtask setup`: installs what building and testing saker needs, idempotently, with
//! a progress line per step. Route A (toolchain.md): Debian's BPF-capable rustc plus
//! bpf-linker built against Debian's LLVM 22 — no toolchain download.

use std::{path::Path, process::Command};

use anyhow::{bail, Context};

/// Debian packages: build (eBPF toolchain, protoc), tests (containers, BTF cross-check).
const BUILD_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "libstd-rust-web-dev-bpf",
    "llvm-22-dev",
    "protobuf-compiler",
];
/// Tests: real containers, BTF cross-check, static C fixtures, mTLS certificates and the
/// independent Python gRPC client (venv).
const TEST_PACKAGES: &[&str] = &[
    "containerd",
    "runc",
    "busybox-static",
    "jq",
    "bpftool",
    "gcc",
    "libc6-dev",
    "openssl",
    "python3",
    "python3-venv",
];
const BENCH_PACKAGES: &[&str] = &["bpftrace", "hyperfine"];

const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn step(msg: &str) {
    eprintln!("[setup] {msg}");
}

/// Everything present? (cheap: no network, no installs)
pub fn is_ready() -> bool {
    missing_packages(BUILD_PACKAGES).is_empty()
        && missing_packages(TEST_PACKAGES).is_empty()
        && bpf_linker_ok()
}

/// What `cargo xtask build` needs, present? (container image builds: no test tools)
pub fn build_ready() -> bool {
    missing_packages(BUILD_PACKAGES).is_empty() && bpf_linker_ok()
}

/// `setup --build-only`: only what `cargo xtask build` needs — no test tools, no tracefs
/// mount or BTF check (a container image build has neither and needs neither).
pub fn run_build_only() -> anyhow::Result<()> {
    check_debian_root()?;
    install_packages(BUILD_PACKAGES)?;
    install_bpf_linker()
}

fn check_debian_root() -> anyhow::Result<()> {
    if !Path::new("/usr/bin/apt-get").exists() {
        bail!(
            "this is not a Debian/Ubuntu system (no apt-get). Install by hand:\n  \
             1. a Rust toolchain that can build for bpfel-unknown-none: rustup nightly with \
             rust-src (`rustup toolchain install nightly --component rust-src`)\n  \
             2. LLVM 22 and `cargo install --locked bpf-linker --version {BPF_LINKER_VERSION}`\n  \
             3. protoc (protobuf compiler), containerd + runc + busybox (static) for the tests"
        );
    }
    if unsafe_geteuid() != 0 {
        bail!(
            "setup installs Debian packages and must run as root (try: sudo -E cargo xtask setup)"
        );
    }
    Ok(())
}

pub fn run(with_bench: bool) -> anyhow::Result<()> {
    check_debian_root()?;
    let mut wanted: Vec<&str> = BUILD_PACKAGES
        .iter()
        .chain(TEST_PACKAGES)
        .copied()
        .collect();
    if with_bench {
        wanted.extend(BENCH_PACKAGES);
    }
    install_packages(&wanted)?;
    install_bpf_linker()?;
    if Path::new("/sys/kernel/tracing/events").is_dir() {
        step("tracefs: mounted");
    } else {
        step("tracefs: mounting at /sys/kernel/tracing");
        sh(
            "mount",
            &["-t", "tracefs", "tracefs", "/sys/kernel/tracing"],
        )?;
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!("/sys/kernel/btf/vmlinux is missing: the kernel must be built with CONFIG_DEBUG_INFO_BTF=y");
    }
    step("BTF: /sys/kernel/btf/vmlinux present");
    crate::deploy::ensure_tools().map(|_| ())
}

fn install_packages(wanted: &[&str]) -> anyhow::Result<()> {
    let missing = missing_packages(wanted);
    if missing.is_empty() {
        step("Debian packages: all present");
    } else {
        step(&format!(
            "Debian packages: installing {}",
            missing.join(" ")
        ));
        sh("apt-get", &["update", "-q"])?;
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(missing.iter().copied());
        sh_env("apt-get", &args, &[("DEBIAN_FRONTEND", "noninteractive")])?;
    }
    Ok(())
}

fn install_bpf_linker() -> anyhow::Result<()> {
    if bpf_linker_ok() {
        step(&format!("bpf-linker {BPF_LINKER_VERSION}: present"));
    } else {
        step(&format!(
            "bpf-linker {BPF_LINKER_VERSION}: building against LLVM 22 (~1.5 min)"
        ));
        sh_env(
            "cargo",
            &[
                "install",
                "--locked",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                "llvm-22",
            ],
            &[("LLVM_PREFIX", "/usr/lib/llvm-22")],
        )?;
    }
    Ok(())
}

fn missing_packages<'a>(pkgs: &[&'a str]) -> Vec<&'a str> {
    pkgs.iter()
        .copied()
        .filter(|p| {
            Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| !String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(true)
        })
        .collect()
}

fn cargo_bin(name: &str) -> std::path::PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_else(|| "/root/.cargo".into());
    home.join("bin").join(name)
}

fn bpf_linker_ok() -> bool {
    Command::new(cargo_bin("bpf-linker"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
        .unwrap_or(false)
}

fn unsafe_geteuid() -> u32 {
    // No libc dependency in xtask: ask `id`.
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(u32::MAX)
}

pub fn sh(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    sh_env(cmd, args, &[])
}

pub fn sh_env(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let status = Command::new(cmd)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("running {cmd}"))?;
    if !status.success() {
        bail!("`{cmd} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
