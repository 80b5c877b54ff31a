//! Builds the eBPF programs (sensor-ebpf) for bpfel-unknown-none and leaves the object in
//! OUT_DIR, so that a plain `cargo build` of the daemon embeds a fresh sensor.
//!
//! Two toolchain routes (see docs/operations.md):
//! - A (default, used by CI): Debian's rustc-web with its prebuilt BPF sysroot
//!   (/usr/lib/rustlib/bpfel-unknown-none), nightly features unlocked per crate with
//!   RUSTC_BOOTSTRAP=<crate names>; no toolchain download.
//! - B: rustup nightly with rust-src, `-Z build-std=core`.
//!
//! `SAKER_EBPF_OBJECT=/path/to/saker-ebpf` skips the build and embeds that file instead
//! (e.g. in a container image build that produced it in an earlier stage).

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const EBPF_CRATES: &str =
    "aya_ebpf,aya_ebpf_bindings,aya_ebpf_cty,aya_ebpf_macros,saker_ebpf,saker_common";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir
        .parent()
        .expect("daemon/ is inside the workspace");
    let dst = out_dir.join("saker-ebpf.o");

    println!("cargo:rerun-if-env-changed=SAKER_EBPF_OBJECT");
    for p in [
        "sensor-ebpf/src",
        "sensor-ebpf/Cargo.toml",
        "sensor-ebpf/common/src",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(p).display());
    }

    if let Some(obj) = env::var_os("SAKER_EBPF_OBJECT") {
        std::fs::copy(&obj, &dst).unwrap_or_else(|e| {
            fail(&format!(
                "SAKER_EBPF_OBJECT={}: {e}",
                Path::new(&obj).display()
            ))
        });
        return;
    }

    let path = with_cargo_bin_on_path();
    if which("bpf-linker", &path).is_none() {
        fail("bpf-linker is not installed");
    }
    let target_dir = out_dir.join("ebpf-target");
    let rustflags = "--cfg=bpf_target_arch=\"x86_64\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf";

    let mut cmd = if Path::new("/usr/lib/rustlib/bpfel-unknown-none/lib").is_dir()
        && Path::new("/usr/bin/cargo").is_file()
    {
        // Route A.
        let mut c = Command::new("/usr/bin/cargo");
        c.env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", EBPF_CRATES)
            .args(["build"]);
        c
    } else if nightly_has_rust_src() {
        // Route B.
        let mut c = Command::new("rustup");
        c.env_remove("RUSTC").env_remove("RUSTC_BOOTSTRAP").args([
            "run",
            "nightly",
            "cargo",
            "build",
            "-Z",
            "build-std=core",
        ]);
        c
    } else {
        fail("no eBPF-capable Rust toolchain (Debian rustc-web + libstd-rust-web-dev-bpf, or rustup nightly with rust-src)");
    };

    cmd.current_dir(workspace)
        .env("PATH", &path)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        // The outer build's settings must not leak into a build for another target.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .args(["--package", "saker-ebpf", "--bins", "--release", "--locked"])
        .args(["--target", "bpfel-unknown-none", "--target-dir"])
        .arg(&target_dir);

    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("could not run {cmd:?}: {e}")));
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        let notable = line.starts_with("warning") || line.starts_with("error");
        if notable || !output.status.success() {
            println!("cargo:warning={line}");
        }
    }
    if !output.status.success() {
        fail("building sensor-ebpf failed (see the warnings above)");
    }
    let obj = target_dir.join("bpfel-unknown-none/release/saker-ebpf");
    std::fs::copy(&obj, &dst)
        .unwrap_or_else(|e| fail(&format!("copy {} -> {}: {e}", obj.display(), dst.display())));
}

fn fail(what: &str) -> ! {
    panic!("\n\nsaker: cannot build the eBPF sensor: {what}.\nRun `cargo xtask setup` (installs Debian's BPF-capable rustc and bpf-linker), then build again.\n");
}

/// PATH with ~/.cargo/bin appended (where `cargo install` puts bpf-linker).
fn with_cargo_bin_on_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(h) = home {
        dirs.push(h.join("bin"));
    }
    env::join_paths(dirs).unwrap_or_default()
}

fn which(bin: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    env::split_paths(path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

fn nightly_has_rust_src() -> bool {
    Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Path::new(&sysroot)
                .join("lib/rustlib/src/rust/library/core")
                .is_dir()
        })
        .unwrap_or(false)
}
