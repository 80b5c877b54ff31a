//! Runs the mission's eight questions in one session against the test scenario and
//! prints the answers and their timings (the benchmark behind docs/benchmarks.md).
//!
//! ```text
//! cargo run --release -p saker-assist --example mission -- \
//!     [--models] [--threads N] [--lang en|ja] [--quiet] [--max-tokens N]
//! ```
//! `--models` loads SmolLM2 and MiniLM from models/weights (or $SAKER_MODEL_DIR).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use saker_assist::{AnswerPart, AssistConfig, Assistant, Lang};

const QUESTIONS_EN: [&str; 8] = [
    "Summarize the events of this cluster.",
    "Write a detailed investigation report.",
    "What was the root cause of the malicious binary detected in risk-10-aws-bedrock-java?",
    "Which MITRE ATT&CK tactics and techniques were used?",
    "List the attack path.",
    "How many workloads were affected?",
    "How do I fix this?",
    "Give detailed guidance to isolate the affected resources.",
];

const QUESTIONS_JA: [&str; 8] = [
    "このクラスタのイベントを要約して",
    "詳細な調査レポートを書いて",
    "risk-10-aws-bedrock-javaで検知された悪意のあるバイナリの根本原因は？",
    "使用されたMITRE ATT&CKの戦術と技術は？",
    "攻撃パスを列挙して",
    "影響を受けたワークロードはいくつ？",
    "どうやって修正すればいい？",
    "影響を受けたリソースを隔離する詳細な手順を教えて",
];

fn status_mib(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Peak resident memory so far.
fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Resident memory now.
fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let value = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let models = flag("--models");
    let quiet = flag("--quiet");
    let threads: usize = value("--threads").and_then(|v| v.parse().ok()).unwrap_or(0);
    let lang = match value("--lang").as_deref() {
        Some("ja") => Lang::Ja,
        _ => Lang::En,
    };
    let mut cfg = AssistConfig {
        threads,
        ..AssistConfig::default()
    };
    if let Some(n) = value("--max-tokens").and_then(|v| v.parse().ok()) {
        cfg.max_tokens = n;
    }
    if models {
        cfg.model_path = Some(common::llm_path());
        cfg.embedder_dir = Some(common::minilm_dir());
    }
    let t = Instant::now();
    let a = match Assistant::new(cfg) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cannot start the assistant: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "loaded in {:.0} ms (model: {}, embedder: {}); RSS {:.0} MiB, peak {:.0} MiB",
        t.elapsed().as_secs_f64() * 1e3,
        a.has_model(),
        a.has_embedder(),
        rss_mib().unwrap_or(0.0),
        peak_rss_mib().unwrap_or(0.0)
    );
    let ev = common::MemEvidence::new(common::mission());
    let qs = match lang {
        Lang::En => QUESTIONS_EN,
        Lang::Ja => QUESTIONS_JA,
    };
    println!(
        "| # | intent | conf | first section ms | TTFT ms | first text ms | total ms | prompt tok (cached) | gen tok | narrative |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (k, q) in qs.iter().enumerate() {
        let ctx = (k == 0).then_some("kubernetes.cluster.name = prod-eu-1");
        let mut text = String::new();
        let mut narrative = String::new();
        let r = a.ask(&ev, "bench", q, ctx, &mut |p| match p {
            AnswerPart::Section(s) => text.push_str(&s.markdown()),
            AnswerPart::TextDelta(t) => narrative.push_str(&t),
            AnswerPart::SuggestedFilter(f) => text.push_str(&format!("filter: {}\n", f.filter)),
            _ => {}
        });
        let s = match r {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{q}: {e}");
                std::process::exit(1);
            }
        };
        let t = &s.timings;
        let row = format!(
            "| {} | {} | {:.2} | {:.0} | {} | {} | {:.0} | {} ({}) | {} | {:?} |",
            k + 1,
            s.intent.name(),
            s.confidence,
            t.first_section_ms,
            t.time_to_first_token_ms
                .map(|x| format!("{x:.0}"))
                .unwrap_or("-".into()),
            t.first_text_ms
                .map(|x| format!("{x:.0}"))
                .unwrap_or("-".into()),
            t.total_ms,
            t.prompt_tokens,
            t.cached_prompt_tokens,
            t.generated_tokens,
            s.narrative_source,
        );
        println!("{row}");
        rows.push(row);
        if !quiet {
            println!("\n## {q}\n\n{text}\nNarrative: {narrative}\n");
            for (d, why) in &s.dropped_sentences {
                println!("  dropped: {d:?} ({why})");
            }
            println!();
        }
    }
    if !quiet {
        for r in rows {
            println!("{r}");
        }
    }
    println!(
        "RSS {:.0} MiB, peak {:.0} MiB",
        rss_mib().unwrap_or(0.0),
        peak_rss_mib().unwrap_or(0.0)
    );
}
