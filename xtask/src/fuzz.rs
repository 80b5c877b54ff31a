//! `cargo xtask fuzz --seconds N [--target T]`: runs the cargo-fuzz targets in tests/fuzz
//! one after the other, each for N seconds on one core, and prints executions, exec/s,
//! coverage and findings per target (docs/fuzzing.md).
//!
//! The machine has only the stable toolchain; libFuzzer's instrumentation and the
//! sanitizer flags are nightly (`-Z`) options, so the builds run with `RUSTC_BOOTSTRAP=1`.
//! AddressSanitizer is used when the toolchain ships its runtime, else `--sanitizer none`.
//! The repo's corpus (tests/fuzz/corpus/<target>) is read-only seed input: new inputs go
//! to tests/fuzz/target/corpus/<target> and findings to tests/fuzz/target/artifacts/<target>
//! (both git-ignored).

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Only this target (default: every target in tests/fuzz/fuzz_targets).
    #[arg(long)]
    pub target: Option<String>,
}

/// Figures from libFuzzer's log (`-print_final_stats=1` and its status lines).
#[derive(Default, Debug)]
struct Stats {
    execs: Option<u64>,
    exec_per_sec: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<u64>,
    new_units: Option<u64>,
    peak_rss_mb: Option<u64>,
}

pub fn run(root: &Path, a: FuzzArgs) -> anyhow::Result<()> {
    let fuzz_dir = root.join("tests/fuzz");
    ensure_cargo_fuzz()?;
    let sanitizer = sanitizer()?;
    eprintln!("[xtask] sanitizer: {sanitizer}");
    let targets = match a.target {
        Some(t) => vec![t],
        None => list_targets(&fuzz_dir)?,
    };
    let mut findings_total = 0;
    let mut rows = Vec::new();
    for t in &targets {
        eprintln!("[xtask] fuzz {t} for {} s", a.seconds);
        let (stats, findings, log) = run_target(&fuzz_dir, t, sanitizer, a.seconds)?;
        findings_total += findings.len();
        rows.push((t.clone(), stats, findings, log));
    }
    println!(
        "{:<16} {:>12} {:>8} {:>7} {:>7} {:>6} {:>5} {:>7}  findings",
        "target", "execs", "exec/s", "cov", "ft", "corpus", "new", "rss MB"
    );
    let n = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    for (t, s, f, log) in &rows {
        println!(
            "{:<16} {:>12} {:>8} {:>7} {:>7} {:>6} {:>5} {:>7}  {}",
            t,
            n(s.execs),
            n(s.exec_per_sec),
            n(s.cov),
            n(s.ft),
            n(s.corpus),
            n(s.new_units),
            n(s.peak_rss_mb),
            if f.is_empty() {
                "none".to_string()
            } else {
                format!("{} (log {})", f.join(", "), log.display())
            }
        );
    }
    if findings_total > 0 {
        bail!("{findings_total} finding(s); reproduce with `cargo fuzz run --fuzz-dir tests/fuzz <target> <file>`");
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!("[xtask] installing cargo-fuzz");
        crate::cargo(&["install", "--locked", "cargo-fuzz"])?;
    }
    Ok(())
}

/// `address` when the toolchain has AddressSanitizer's runtime, else `none`.
fn sanitizer() -> anyhow::Result<&'static str> {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir"])
        .output()
        .context("running rustc --print target-libdir")?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let has_asan = fs::read_dir(&libdir)
        .with_context(|| format!("reading {}", libdir.display()))?
        .filter_map(Result::ok)
        .any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("librustc-") && name.ends_with("_rt.asan.a")
        });
    Ok(if has_asan { "address" } else { "none" })
}

fn list_targets(fuzz_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut v: Vec<String> = fs::read_dir(fuzz_dir.join("fuzz_targets"))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let p = e.path();
            if p.extension()? != "rs" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    v.sort();
    Ok(v)
}

fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz"]);
    c
}

fn run_target(
    fuzz_dir: &Path,
    target: &str,
    sanitizer: &str,
    seconds: u64,
) -> anyhow::Result<(Stats, Vec<String>, PathBuf)> {
    let work = fuzz_dir.join("target/corpus").join(target);
    let artifacts = fuzz_dir.join("target/artifacts").join(target);
    let logs = fuzz_dir.join("target/logs");
    for d in [&work, &artifacts, &logs] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let seeds = fuzz_dir.join("corpus").join(target);
    // The store target's database: a fresh empty one per run.
    let store_dir = fuzz_dir.join("target/store").join(target);
    let _ = fs::remove_dir_all(&store_dir);
    fs::create_dir_all(&store_dir)?;
    let status = cargo_fuzz(fuzz_dir)
        .args(["build", "--fuzz-dir", ".", "-s", sanitizer, target])
        .status()
        .context("running cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build {target} failed: {status}");
    }
    let before: Vec<String> = artifact_names(&artifacts)?;
    let log = logs.join(format!("{target}.log"));
    let log_file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = cargo_fuzz(fuzz_dir);
    cmd.args(["run", "--fuzz-dir", ".", "-s", sanitizer, target])
        .arg(&work)
        .args(seeds.is_dir().then_some(&seeds))
        .args([
            "--".to_string(),
            format!("-max_total_time={seconds}"),
            format!("-artifact_prefix={}/", artifacts.display()),
            // A single input taking this long is a hang worth reporting.
            "-timeout=10".to_string(),
            "-print_final_stats=1".to_string(),
        ])
        .env("SAKER_FUZZ_STORE_DIR", &store_dir)
        .stdout(Stdio::null())
        .stderr(log_file);
    let status = cmd.status().context("running cargo fuzz run")?;
    let text = fs::read_to_string(&log).unwrap_or_default();
    let stats = parse_stats(&text);
    let findings: Vec<String> = artifact_names(&artifacts)?
        .into_iter()
        .filter(|n| !before.contains(n))
        .map(|n| artifacts.join(n).display().to_string())
        .collect();
    if !status.success() && findings.is_empty() {
        bail!(
            "fuzzing {target} failed ({status}) without an artifact; see {}",
            log.display()
        );
    }
    Ok((stats, findings, log))
}

fn artifact_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    Ok(fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Reads the final stats and the last status line (`#N DONE cov: C ft: F corp: K/...`).
fn parse_stats(log: &str) -> Stats {
    let mut s = Stats::default();
    let stat = |key: &str| -> Option<u64> {
        log.lines()
            .rev()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
    };
    s.execs = stat("stat::number_of_executed_units:");
    s.exec_per_sec = stat("stat::average_exec_per_sec:");
    s.new_units = stat("stat::new_units_added:");
    s.peak_rss_mb = stat("stat::peak_rss_mb:");
    let last = log
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains(" cov: "));
    if let Some(l) = last {
        let word_after = |key: &str| -> Option<u64> {
            let rest = &l[l.find(key)? + key.len()..];
            let w = rest.split_whitespace().next()?;
            w.split('/').next()?.parse().ok()
        };
        s.cov = word_after(" cov: ");
        s.ft = word_after(" ft: ");
        s.corpus = word_after(" corp: ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_stats() {
        let log = "#2 INITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #81920 DONE   cov: 1234 ft: 5678 corp: 321/12Kb lim: 4096 exec/s: 2730 rss: 120Mb\n\
                   Done 81920 runs in 31 second(s)\n\
                   stat::number_of_executed_units: 81920\n\
                   stat::average_exec_per_sec:     2730\n\
                   stat::new_units_added:          320\n\
                   stat::slowest_unit_time_sec:    0\n\
                   stat::peak_rss_mb:              120\n";
        let s = parse_stats(log);
        assert_eq!(s.execs, Some(81920));
        assert_eq!(s.exec_per_sec, Some(2730));
        assert_eq!(s.new_units, Some(320));
        assert_eq!(s.peak_rss_mb, Some(120));
        assert_eq!((s.cov, s.ft, s.corpus), (Some(1234), Some(5678), Some(321)));
    }
}
