//! Times SmolLM2 (or any llama-family GGUF) on this machine.
//!
//! cargo run --release -p saker-models --example generate -- \
//!     [--model PATH] [--threads N] [--max-tokens N] [--runs N] [--question TEXT] [--cache]
//!
//! Prints load time, prompt and generation speed (timed separately), time to
//! first token and peak RSS. The prompt is a ~300-token incident fact sheet. The
//! system-prompt KV cache is off unless `--cache` (then runs after the first
//! only process the question).

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use saker_models::{ChatMessage, GenOptions, Llm, LlmOptions};

const SYSTEM: &str = "You are saker, a cloud detection and response assistant running on a \
Kubernetes node. Answer the operator's question using only the facts below. If the facts do \
not say something, answer that you do not know. Be brief and concrete.";

const FACTS: &str = "Incident 7f3a on node ip-10-0-3-17, 2026-11-26 10:42:07 UTC.
Rule: Detect crypto miners using the Stratum protocol (CRITICAL, T1496).
Container: payments-api (namespace shop).
Process tree: node server.js (pid 3121) -> sh -c (pid 4410) -> /tmp/.x/xmrig (pid 4417).
Command line: /tmp/.x/xmrig -o stratum+tcp://pool.minexmr.com:4444 --donate-level 1 -B.
/tmp/.x/xmrig was downloaded by curl at 10:41:58 and is not part of the image.
Earlier: server.js received POST /api/render with a template injection payload.";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut model = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/weights/smollm2-135m-instruct.q8_0.gguf"
    ));
    let mut threads = 0usize;
    let mut max_tokens = 100usize;
    let mut runs = 3usize;
    let mut cache = false;
    let mut question =
        "What happened, and what should I do first? Answer with numbered steps.".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = PathBuf::from(val()?),
            "--threads" => threads = val()?.parse()?,
            "--max-tokens" => max_tokens = val()?.parse()?,
            "--runs" => runs = val()?.parse()?,
            "--question" => question = val()?,
            "--cache" => cache = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    let t = Instant::now();
    let mut llm = Llm::load(
        &model,
        LlmOptions {
            threads,
            cache_system_prompt: cache,
            ..Default::default()
        },
    )?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let info = llm.info().clone();
    println!(
        "model {} ({}, {}, template {}), threads {}, load {:.0} ms",
        info.path.display(),
        info.name.as_deref().unwrap_or("?"),
        info.tokenizer,
        info.chat_template.name(),
        info.threads,
        load_ms
    );

    let messages = [
        ChatMessage::system(format!("{SYSTEM}\n\nFacts:\n{FACTS}")),
        ChatMessage::user(question),
    ];
    let opts = GenOptions {
        max_tokens,
        ..Default::default()
    };
    let mut rows = Vec::new();
    for run in 0..runs {
        let cpu0 = cpu_seconds();
        let stats = llm.generate(&messages, &opts, |piece| {
            if run == 0 {
                print!("{piece}");
                let _ = std::io::stdout().flush();
            }
            ControlFlow::Continue(())
        })?;
        let cpu = cpu_seconds() - cpu0;
        if run == 0 {
            println!("\n---");
        }
        let wall = (stats.prompt_ms + stats.gen_ms) / 1e3;
        println!(
            "run {run}: prompt {} tok ({} cached) in {:.0} ms = {:.1} tok/s | gen {} tok in {:.0} ms = {:.1} tok/s | ttft {:.0} ms | stop {:?} | cpu/wall {:.2}",
            stats.prompt_tokens,
            stats.cached_prompt_tokens,
            stats.prompt_ms,
            stats.prompt_tokens_per_s(),
            stats.generated_tokens,
            stats.gen_ms,
            stats.gen_tokens_per_s(),
            stats.time_to_first_token_ms,
            stats.stop_reason,
            cpu / wall
        );
        rows.push(stats);
    }
    let med = |f: &dyn Fn(&saker_models::GenStats) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median of {runs}: prompt {:.1} tok/s, gen {:.1} tok/s, ttft {:.0} ms",
        med(&|s| s.prompt_tokens_per_s()),
        med(&|s| s.gen_tokens_per_s()),
        med(&|s| s.time_to_first_token_ms)
    );
    println!(
        "threads: {} | peak RSS (VmHWM) {}",
        thread_names(),
        proc_status("VmHWM").unwrap_or_else(|| "?".into())
    );
    Ok(())
}

fn proc_status(key: &str) -> Option<String> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len() + 1..].trim().to_string())
}

/// User + system CPU seconds of this process (to see how many cores were busy).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Names of this process's threads, counted by prefix.
fn thread_names() -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let name = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let base = name.trim().trim_end_matches(|c: char| c.is_ascii_digit());
            *counts.entry(base.to_string()).or_default() += 1;
        }
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}x{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
