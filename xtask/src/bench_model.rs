//! `cargo xtask bench-model [--llama-cpp]`: SmolLM2 Q8_0 generation speed with candle
//! (`models/examples/generate.rs`), optionally side by side with llama.cpp on the same GGUF.
//!
//! llama.cpp comes from PyPI: the `llama-cpp-python` sdist vendors its source. It is
//! downloaded with pip, and only its CPU `llama-bench` is built, with cmake and ninja from
//! PyPI, into target/llama.cpp (cached; nothing of it is committed). The build is pinned to
//! AVX2/FMA/F16C (no `-march=native`): candle's quantized kernels stop at AVX2 too, and
//! native builds met an AMX instruction this VM faults on.
//!
//! Both runners get the same prompt length (the example's fact-sheet prompt, ~295 tokens),
//! the same generation length and thread count; repetitions alternate which runs first
//! and the table reports medians with min–max, and per-repetition ratios.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// llama-cpp-python release whose vendored llama.cpp is built.
const LLAMA_CPP_PYTHON: &str = "0.3.36";

#[derive(clap::Args)]
pub struct BenchModelArgs {
    /// Also build llama.cpp (cached in target/llama.cpp) and run it on the same GGUF.
    #[arg(long)]
    pub llama_cpp: bool,
    /// Interleaved repetitions.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Inference threads for both runners.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Generated tokens.
    #[arg(long, default_value_t = 100)]
    pub gen_tokens: usize,
    /// The GGUF (default: models/weights/smollm2-135m-instruct.q8_0.gguf).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

/// One repetition of one runner.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    prompt_tokens: usize,
    prompt_tps: f64,
    gen_tps: f64,
    /// Prompt forward time (llama.cpp: prompt tokens / prompt tok/s).
    prompt_ms: f64,
    /// Call to first sampled token, tokenizing included (candle only).
    ttft_ms: Option<f64>,
}

pub fn run(root: &Path, a: BenchModelArgs) -> anyhow::Result<()> {
    let model = a
        .model
        .clone()
        .unwrap_or_else(|| root.join("models/weights/smollm2-135m-instruct.q8_0.gguf"));
    if !model.exists() {
        bail!(
            "{} is missing: run `cargo xtask fetch-model`",
            model.display()
        );
    }
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "saker-models",
        "--example",
        "generate",
    ])?;
    let generate = root.join("target/release/examples/generate");
    let llama_bench = if a.llama_cpp {
        Some(build_llama_cpp(root)?)
    } else {
        None
    };

    let mut candle = Vec::new();
    let mut llama = Vec::new();
    for rep in 0..a.reps {
        // Alternate the order so a slow drift of the shared VM hits both alike.
        let candle_first = rep % 2 == 0;
        for turn in 0..2 {
            if (turn == 0) == candle_first {
                let s = run_candle(&generate, &model, a.threads, a.gen_tokens)?;
                eprintln!("rep {rep} candle: {s:?}");
                candle.push(s);
            } else if let Some(bin) = &llama_bench {
                let n_prompt = candle.last().map(|s| s.prompt_tokens).unwrap_or(295);
                let s = run_llama(bin, &model, a.threads, n_prompt, a.gen_tokens)?;
                eprintln!("rep {rep} llama.cpp: {s:?}");
                llama.push(s);
            }
        }
    }

    println!(
        "\nSmolLM2 Q8_0 ({}), {} prompt tokens, {} generated, {} threads, {} reps: median (min–max)\n",
        model.display(),
        candle.first().map(|s| s.prompt_tokens).unwrap_or(0),
        a.gen_tokens,
        a.threads,
        a.reps
    );
    println!("| runner | prompt tok/s | gen tok/s | prompt ms | time to first token ms |");
    println!("|---|---|---|---|---|");
    let ttft = |v: &[Sample]| {
        let t: Vec<f64> = v.iter().filter_map(|s| s.ttft_ms).collect();
        if t.is_empty() {
            "—".to_string()
        } else {
            stat(&t, 0)
        }
    };
    let row = |name: &str, v: &[Sample]| {
        println!(
            "| {name} | {} | {} | {} | {} |",
            stat(&v.iter().map(|s| s.prompt_tps).collect::<Vec<_>>(), 1),
            stat(&v.iter().map(|s| s.gen_tps).collect::<Vec<_>>(), 1),
            stat(&v.iter().map(|s| s.prompt_ms).collect::<Vec<_>>(), 0),
            ttft(v),
        )
    };
    row("candle 0.11 (saker-models)", &candle);
    if !llama.is_empty() {
        row(
            &format!("llama.cpp (llama-cpp-python {LLAMA_CPP_PYTHON} vendor, AVX2)"),
            &llama,
        );
        // Ratios per repetition (paired runs), then their median.
        let ratio = |f: &dyn Fn(&Sample) -> f64| -> Vec<f64> {
            candle
                .iter()
                .zip(&llama)
                .map(|(c, l)| f(c) / f(l))
                .collect()
        };
        println!(
            "| candle / llama.cpp | {} | {} | {} | — |",
            stat(&ratio(&|s| s.prompt_tps), 2),
            stat(&ratio(&|s| s.gen_tps), 2),
            stat(&ratio(&|s| s.prompt_ms), 2),
        );
    }
    Ok(())
}

/// "median (min–max)".
fn stat(v: &[f64], digits: usize) -> String {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match (s.first(), s.last()) {
        (Some(lo), Some(hi)) => format!(
            "{:.*} ({:.*}–{:.*})",
            digits,
            s[s.len() / 2],
            digits,
            lo,
            digits,
            hi
        ),
        _ => "—".into(),
    }
}

/// Runs the candle example twice in one process and keeps the second (warm) run,
/// as llama-bench keeps its measured run after a warm-up.
fn run_candle(bin: &Path, model: &Path, threads: usize, gen: usize) -> anyhow::Result<Sample> {
    let out = Command::new(bin)
        .args(["--model"])
        .arg(model)
        .args(["--threads", &threads.to_string()])
        .args(["--max-tokens", &gen.to_string(), "--runs", "2"])
        .output()
        .context("running the generate example")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "generate failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("run 1:"))
        .with_context(|| format!("no `run 1:` line in\n{text}"))?;
    parse_candle(line)
}

/// `run 1: prompt 295 tok (0 cached) in 1450 ms = 203.4 tok/s | gen 99 tok in 1447 ms = 68.4 tok/s | ttft 1460 ms | …`
fn parse_candle(line: &str) -> anyhow::Result<Sample> {
    let num_after = |key: &str, from: &str| -> anyhow::Result<f64> {
        let at = from
            .find(key)
            .with_context(|| format!("{key:?} in {line}"))?
            + key.len();
        from[at..]
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .with_context(|| format!("a number after {key:?} in {line}"))
    };
    let parts: Vec<&str> = line.split('|').collect();
    if parts.len() < 3 {
        bail!("unexpected line {line}");
    }
    Ok(Sample {
        prompt_tokens: num_after("prompt ", parts[0])? as usize,
        prompt_ms: num_after(" in ", parts[0])?,
        prompt_tps: num_after("= ", parts[0])?,
        gen_tps: num_after("= ", parts[1])?,
        ttft_ms: Some(num_after("ttft ", parts[2])?),
    })
}

/// Two llama-bench tests: the prompt alone, then generation at the prompt's depth
/// (as candle generates after its prompt). Each with one warm-up and one measured run.
fn run_llama(
    bin: &Path,
    model: &Path,
    threads: usize,
    n_prompt: usize,
    gen: usize,
) -> anyhow::Result<Sample> {
    let bench = |extra: &[String]| -> anyhow::Result<serde_json::Value> {
        let out = Command::new(bin)
            .arg("-m")
            .arg(model)
            .args(["-t", &threads.to_string(), "-r", "1", "-o", "json"])
            .args(extra)
            .output()
            .context("running llama-bench")?;
        if !out.status.success() {
            bail!(
                "llama-bench failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("llama-bench JSON output")?;
        v.get(0).cloned().context("an empty llama-bench result")
    };
    let pp = bench(&["-p".into(), n_prompt.to_string(), "-n".into(), "0".into()])?;
    let tg = bench(&[
        "-p".into(),
        "0".into(),
        "-n".into(),
        gen.to_string(),
        "-d".into(),
        n_prompt.to_string(),
    ])?;
    let f = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_f64())
            .with_context(|| format!("{k} in {v}"))
    };
    Ok(Sample {
        prompt_tokens: n_prompt,
        prompt_tps: f(&pp, "avg_ts")?,
        gen_tps: f(&tg, "avg_ts")?,
        prompt_ms: f(&pp, "avg_ns")? / 1e6,
        ttft_ms: None,
    })
}

fn sh(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} exited with {status}");
    }
    Ok(())
}

/// Builds llama-bench once into target/llama.cpp/build and returns its path.
fn build_llama_cpp(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = root.join("target/llama.cpp");
    let bin = dir.join("build/bin/llama-bench");
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir)?;
    let venv = dir.join("venv");
    if !venv.join("bin/cmake").exists() {
        crate::step(
            "llama.cpp: cmake, ninja and scikit-build-core from PyPI into target/llama.cpp/venv",
        );
        sh(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        sh(Command::new(venv.join("bin/pip")).args([
            "install",
            "-q",
            "cmake",
            "ninja",
            "scikit-build-core",
        ]))?;
    }
    let src_root = dir.join(format!("llama_cpp_python-{LLAMA_CPP_PYTHON}"));
    let src = src_root.join("vendor/llama.cpp");
    if !src.join("CMakeLists.txt").exists() {
        crate::step(&format!(
            "llama.cpp: pip download llama-cpp-python=={LLAMA_CPP_PYTHON} (sdist)"
        ));
        let sdist = dir.join("sdist");
        // No build isolation: preparing the sdist's metadata then needs only the
        // scikit-build-core installed above, not a from-source build of cmake.
        sh(Command::new(venv.join("bin/pip"))
            .args([
                "download",
                "--no-deps",
                "--no-binary",
                "llama-cpp-python",
                "--no-build-isolation",
                "-d",
            ])
            .arg(&sdist)
            .arg(format!("llama-cpp-python=={LLAMA_CPP_PYTHON}")))?;
        let tarball = sdist.join(format!("llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"));
        sh(Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&dir)
            .arg(format!(
                "llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp"
            )))?;
    }
    crate::step("llama.cpp: building llama-bench (CPU, AVX2) into target/llama.cpp/build");
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let build = dir.join("build");
    sh(Command::new(venv.join("bin/cmake"))
        .env("PATH", &path)
        .arg("-S")
        .arg(&src)
        .arg("-B")
        .arg(&build)
        .args([
            "-G",
            "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_SHARED_LIBS=OFF",
            "-DGGML_NATIVE=OFF",
            "-DGGML_AVX=ON",
            "-DGGML_AVX2=ON",
            "-DGGML_FMA=ON",
            "-DGGML_F16C=ON",
            "-DGGML_BMI2=ON",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_SERVER=OFF",
            "-DLLAMA_BUILD_APP=OFF",
            "-DLLAMA_OPENSSL=OFF",
        ]))?;
    sh(Command::new(venv.join("bin/cmake"))
        .env("PATH", &path)
        .arg("--build")
        .arg(&build)
        .args(["--target", "llama-bench", "-j", "2"]))?;
    if !bin.exists() {
        bail!("{} was not built", bin.display());
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_generate_example_line() {
        let s = super::parse_candle(
            "run 1: prompt 295 tok (0 cached) in 1450 ms = 203.4 tok/s | gen 99 tok in 1447 ms = 68.4 tok/s | ttft 1460 ms | stop MaxTokens | cpu/wall 1.90",
        )
        .unwrap();
        assert_eq!(s.prompt_tokens, 295);
        assert_eq!(s.prompt_ms, 1450.0);
        assert_eq!(s.prompt_tps, 203.4);
        assert_eq!(s.gen_tps, 68.4);
        assert_eq!(s.ttft_ms, Some(1460.0));
    }
}
