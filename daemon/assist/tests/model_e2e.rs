//! End to end with the real models (SmolLM2-135M Q8_0 and all-MiniLM-L6-v2): the
//! mission's questions in one session; the sections hold the facts, every narrative is
//! either verified model text or the deterministic one, and nothing in an answer is
//! outside the evidence. Timings are printed, not asserted (they depend on the host).

mod common;

use common::*;
use saker_assist::{AnswerPart, Intent, Lang, NarrativeSource};

const CTX: &str = "kubernetes.cluster.name = prod-eu-1";

#[test]
fn mission_with_real_models() {
    let a = with_models();
    assert!(a.has_model() && a.has_embedder());
    let alerts = mission();
    let ev = MemEvidence::new(alerts.clone());
    let cases: [(&str, Intent, &[&str]); 8] = [
        (
            "Summarize the events of this cluster.",
            Intent::Summarize,
            &["Malicious Binary Detection", "/tmp/easyminer"],
        ),
        (
            "Write a detailed investigation report.",
            Intent::Report,
            &["sh ./malicious-bin-event-gen.sh", "127.0.0.1:3333"],
        ),
        (
            "What was the root cause of the malicious binary detected in risk-10-aws-bedrock-java?",
            Intent::RootCause,
            &["sh ./malicious-bin-event-gen.sh", NS],
        ),
        (
            "Which MITRE ATT&CK tactics and techniques were used?",
            Intent::Mitre,
            &["T1105", "T1222.002", "T1496", "T1059.004"],
        ),
        (
            "List the attack path.",
            Intent::AttackPath,
            &["easyminer", "T1496"],
        ),
        (
            "How many workloads were affected?",
            Intent::BlastRadius,
            &["| Total | 3 |", PODS[0], PODS[1], PODS[2]],
        ),
        (
            "How do I fix this?",
            Intent::Remediate,
            &[PODS[0], PODS[2], NS, NS2],
        ),
        (
            "Give detailed guidance to isolate the affected resources.",
            Intent::Isolate,
            &["kind: NetworkPolicy", "kubectl cordon node-a"],
        ),
    ];
    for (k, (q, intent, facts)) in cases.iter().enumerate() {
        let mut parts = Vec::new();
        let s = a
            .ask(&ev, "e2e", q, (k == 0).then_some(CTX), &mut |p| {
                parts.push(p)
            })
            .unwrap();
        assert_eq!(s.intent, *intent, "{q}");
        let text: String = s.sections.iter().map(|x| x.markdown()).collect();
        for f in *facts {
            assert!(text.contains(f), "{q}: {f} missing");
        }
        assert!(
            matches!(
                s.narrative_source,
                NarrativeSource::Model | NarrativeSource::Template
            ),
            "{q}"
        );
        assert!(!s.narrative.is_empty());
        // Sections come first, the narrative after them.
        let first_text = parts
            .iter()
            .position(|p| matches!(p, AnswerPart::TextDelta(_)));
        let last_section = parts
            .iter()
            .rposition(|p| matches!(p, AnswerPart::Section(_)));
        assert!(first_text > last_section, "{q}");
        assert_grounded(&format!("{text}\n{}", s.narrative), &alerts);
        let t = &s.timings;
        eprintln!(
            "{:<13} ttft {:>6} ms  total {:>6.0} ms  prompt {} ({} cached)  gen {}  {:?}: {}",
            s.intent.name(),
            t.time_to_first_token_ms
                .map(|x| format!("{x:.0}"))
                .unwrap_or_default(),
            t.total_ms,
            t.prompt_tokens,
            t.cached_prompt_tokens,
            t.generated_tokens,
            s.narrative_source,
            s.narrative
        );
        for (d, why) in &s.dropped_sentences {
            eprintln!("    dropped {d:?}: {why}");
        }
    }
}

#[test]
fn japanese_answers_use_the_deterministic_narrative() {
    let a = with_models();
    let ev = MemEvidence::new(mission());
    let (s, got) = ask(a, &ev, "ja", "根本原因は？", Some(CTX));
    assert_eq!(s.intent, Intent::RootCause);
    assert_eq!(s.language, Lang::Ja);
    assert_eq!(s.narrative_source, NarrativeSource::Template);
    assert!(s.narrative.contains("一連の処理を開始しました"));
    assert!(got.text().contains("根本原因"));
}
