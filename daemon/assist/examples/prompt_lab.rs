//! Tries prompt layouts on the mission's fact sheets with the real model and prints
//! the raw drafts, what the verifier keeps, and the timings.
//!
//! `cargo run --release -p saker-assist --example prompt_lab -- [--threads N]`

#[path = "../tests/common/mod.rs"]
mod common;

use saker_assist::verify::Verifier;
use saker_assist::{AskRequest, AssistConfig, Assistant};
use saker_models::{ChatMessage, GenOptions, Llm, LlmOptions};

const QUESTIONS: [&str; 8] = [
    "Summarize the events of this cluster.",
    "Write a detailed investigation report.",
    "What was the root cause of the malicious binary detected in risk-10-aws-bedrock-java?",
    "Which MITRE ATT&CK tactics and techniques were used?",
    "List the attack path.",
    "How many workloads were affected?",
    "How do I fix this?",
    "Give detailed guidance to isolate the affected resources.",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let a = Assistant::new(AssistConfig::default()).expect("assistant");
    let ev = common::MemEvidence::new(common::mission());
    let mut llm = Llm::load(
        &common::llm_path(),
        LlmOptions {
            threads,
            ..Default::default()
        },
    )
    .expect("model");
    let opts = GenOptions {
        max_tokens: 80,
        ..Default::default()
    };
    for (k, q) in QUESTIONS.iter().enumerate() {
        let req = AskRequest {
            session: "lab",
            question: q,
            context_filter: (k == 0).then_some("kubernetes.cluster.name = prod-eu-1"),
            ..Default::default()
        };
        let msgs = a.prompt_messages(&ev, &req).expect("prompt");
        // Advance the session the way a real conversation would.
        a.ask_with(&ev, &req, &mut |_| {}).expect("ask");
        let facts_text = msgs[1].content.clone();
        let (out, st) = llm.generate_text(&msgs, &opts).expect("generate");
        let v = Verifier::new([facts_text.as_str()], true).with_common_compounds();
        let checked = v.filter(&out);
        println!(
            "=== {q}\n--- user message ({} prompt tokens, {} cached):\n{facts_text}",
            st.prompt_tokens, st.cached_prompt_tokens
        );
        println!(
            "--- draft (ttft {:.0} ms, total {:.0} ms, {} tokens):\n{out}",
            st.time_to_first_token_ms,
            st.prompt_ms + st.gen_ms,
            st.generated_tokens
        );
        println!("--- kept: {:?}", checked.kept);
        for (s, r) in checked.dropped {
            println!("--- dropped: {s:?}: {r}");
        }
        let _ = ChatMessage::user("");
    }
}
