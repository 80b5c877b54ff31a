//! Routing with the real all-MiniLM-L6-v2 embedder: the mission's questions in English
//! and Japanese, and paraphrases that are not among the exemplars, go to the right
//! intent; nonsense goes nowhere.

mod common;

use common::*;
use saker_assist::{Intent, RouteMethod};

const MISSION: &[(&str, Intent)] = &[
    ("Summarize the events of this cluster.", Intent::Summarize),
    ("Write a detailed investigation report.", Intent::Report),
    (
        "What was the root cause of the malicious binary detected in risk-10-aws-bedrock-java?",
        Intent::RootCause,
    ),
    (
        "Which MITRE ATT&CK tactics and techniques were used?",
        Intent::Mitre,
    ),
    ("List the attack path.", Intent::AttackPath),
    ("How many workloads were affected?", Intent::BlastRadius),
    ("How do I fix this?", Intent::Remediate),
    (
        "Give detailed guidance to isolate the affected resources.",
        Intent::Isolate,
    ),
    ("このクラスタのイベントを要約して", Intent::Summarize),
    ("詳細な調査レポートを書いて", Intent::Report),
    ("根本原因は？", Intent::RootCause),
    ("使用されたMITRE ATT&CKの戦術と技術は？", Intent::Mitre),
    ("攻撃パスを列挙して", Intent::AttackPath),
    ("影響を受けたワークロードはいくつ？", Intent::BlastRadius),
    ("どうやって修正すればいい？", Intent::Remediate),
    (
        "影響を受けたリソースを隔離する詳細な手順を教えて",
        Intent::Isolate,
    ),
];

/// Paraphrases written for this test, none of them an exemplar.
const PARAPHRASES: &[(&str, Intent)] = &[
    (
        "Can you give me a quick rundown of what fired?",
        Intent::Summarize,
    ),
    (
        "Brief me on the detections in this namespace.",
        Intent::Summarize,
    ),
    ("I need an incident writeup for my manager.", Intent::Report),
    (
        "Prepare a full forensic account of what happened.",
        Intent::Report,
    ),
    ("Where did this whole thing start?", Intent::RootCause),
    ("What process kicked off the miner?", Intent::RootCause),
    ("Map the activity to ATT&CK please.", Intent::Mitre),
    ("What adversary techniques are involved?", Intent::Mitre),
    (
        "Show me the chain of processes step by step.",
        Intent::AttackPath,
    ),
    ("What did the attacker do, in sequence?", Intent::AttackPath),
    ("How far did it spread?", Intent::BlastRadius),
    ("Which pods got hit?", Intent::BlastRadius),
    ("What's the remediation plan?", Intent::Remediate),
    (
        "How do we clean this up and stop it from coming back?",
        Intent::Remediate,
    ),
    (
        "How can I quarantine the compromised containers?",
        Intent::Isolate,
    ),
    ("Cut these pods off from the network.", Intent::Isolate),
    ("How many alerts fired today?", Intent::Count),
    ("Show me the newest detections.", Intent::ListEvents),
    ("アラートのまとめをお願い", Intent::Summarize),
    ("インシデントの報告を作って", Intent::Report),
    ("最初に何が原因だった？", Intent::RootCause),
    ("どんな攻撃手法が使われましたか", Intent::Mitre),
    ("プロセスツリーを見せて", Intent::AttackPath),
    ("被害はどこまで広がった？", Intent::BlastRadius),
    ("対策を教えて", Intent::Remediate),
    ("ポッドのネットワークを遮断したい", Intent::Isolate),
    ("アラートは全部で何件？", Intent::Count),
];

const NONSENSE: &[&str] = &[
    "What's the weather like in Tokyo?",
    "Tell me a joke about penguins.",
    "今日の天気は？",
    "asdf qwerty",
];

#[test]
fn mission_questions_route_with_embeddings() {
    let a = with_embedder();
    assert!(a.has_embedder());
    for (q, want) in MISSION {
        let r = a.route(q).unwrap();
        assert_eq!(r.intent, *want, "{q}: {:?}", &r.scores[..3]);
        assert!(r.confidence >= 0.6, "{q}: confidence {}", r.confidence);
    }
}

#[test]
fn paraphrases_route_with_embeddings() {
    let a = with_embedder();
    let mut wrong = Vec::new();
    for (q, want) in PARAPHRASES {
        let r = a.route(q).unwrap();
        if r.intent != *want {
            wrong.push(format!(
                "{q}: got {:?} ({:.2}), top {:?}",
                r.intent,
                r.confidence,
                &r.scores[..3]
            ));
        }
    }
    assert!(wrong.is_empty(), "misrouted:\n{}", wrong.join("\n"));
}

#[test]
fn english_paraphrases_use_the_embeddings() {
    // Without keyword cues, the embedding alone must carry these.
    let a = with_embedder();
    for q in [
        "Where did this whole thing start?",
        "Which pods got hit?",
        "How far did it spread?",
    ] {
        let r = a.route(q).unwrap();
        assert_ne!(r.method, RouteMethod::None, "{q}");
    }
}

#[test]
fn nonsense_is_not_guessed() {
    let a = with_embedder();
    for q in NONSENSE {
        let r = a.route(q).unwrap();
        assert_eq!(r.intent, Intent::Unknown, "{q}: {:?}", &r.scores[..3]);
    }
}

#[test]
fn keyword_only_routing_still_handles_the_mission() {
    let a = plain();
    for (q, want) in MISSION {
        assert_eq!(a.route(q).unwrap().intent, *want, "{q}");
    }
}
