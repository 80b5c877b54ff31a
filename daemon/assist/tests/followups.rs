//! Follow-up questions within a session: "this", "it", "that namespace", 「それ」,
//! 「その名前空間」; the context filter carries over; sessions are bounded and expire.

mod common;

use std::time::Duration;

use common::*;
use saker_assist::{AssistConfig, Assistant, EntityKind, Intent};

#[test]
fn that_namespace_refers_to_the_last_one() {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let (s1, _) = ask(
        &a,
        &ev,
        "s",
        "What was the root cause in risk-11-payments?",
        None,
    );
    assert_eq!(s1.intent, Intent::RootCause);
    assert_eq!(s1.alert_ids.len(), 6);
    let (s2, got) = ask(
        &a,
        &ev,
        "s",
        "Summarize the alerts in that namespace.",
        None,
    );
    assert_eq!(s2.intent, Intent::Summarize);
    assert!(s2
        .entities
        .iter()
        .any(|e| e.kind == EntityKind::Namespace && e.value == NS2));
    assert!(got.text().contains("| Alerts | 6 |"), "{}", got.text());
    assert!(!got.text().contains(NS), "{}", got.text());
}

#[test]
fn japanese_follow_ups() {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let (s1, _) = ask(&a, &ev, "ja", "risk-11-paymentsの根本原因は？", None);
    assert_eq!(s1.intent, Intent::RootCause);
    let (s2, got) = ask(&a, &ev, "ja", "その名前空間のアラートを要約して", None);
    assert_eq!(s2.intent, Intent::Summarize);
    assert!(got.text().contains("| アラート数 | 6 |"), "{}", got.text());
    // 「それ」: the incident of the last answer (the payments one), and its blast radius.
    let (s3, got) = ask(&a, &ev, "ja", "それを隔離する手順は？", None);
    assert_eq!(s3.intent, Intent::Isolate);
    assert!(got.text().contains(PODS[2]));
}

#[test]
fn this_after_explain_is_the_alert() {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let mut parts = Vec::new();
    let e = a
        .explain_with(
            &ev,
            &saker_assist::ExplainRequest {
                session: "x",
                alert_id: "w3-miner",
                ..Default::default()
            },
            &mut |p| parts.push(p),
        )
        .unwrap();
    assert_eq!(e.intent, Intent::ExplainAlert);
    let (s, got) = ask(&a, &ev, "x", "What was the root cause of this?", None);
    assert_eq!(s.intent, Intent::RootCause);
    let text = got.text();
    assert!(text.contains("risk-11-payments/payments-api"), "{text}");
    assert!(!text.contains("bedrock-java-worker"), "{text}");
    // "Explain this alert" again: the session's alert.
    let (s, _) = ask(&a, &ev, "x", "Explain this alert", None);
    assert_eq!(s.intent, Intent::ExplainAlert);
    assert!(s.alert_ids.contains(&"w3-miner".to_string()));
}

#[test]
fn context_filter_carries_over_and_resets_the_focus() {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let ctx = format!("k8s.ns.name = {NS}");
    let (s1, _) = ask(&a, &ev, "c", "How many alerts?", Some(&ctx));
    assert_eq!(s1.context_filter.as_deref(), Some(ctx.as_str()));
    assert_eq!(s1.alert_ids.len(), 12);
    let (s2, _) = ask(&a, &ev, "c", "Summarize them", None);
    assert_eq!(s2.context_filter.as_deref(), Some(ctx.as_str()));
    assert_eq!(s2.alert_ids.len(), 12);
    // A root cause narrowed to one pod, then a new context: the old focus is dropped.
    let (s3, _) = ask(&a, &ev, "c", &format!("root cause in {}", PODS[0]), None);
    assert_eq!(s3.incident_ids.len(), 1);
    let ctx2 = format!("k8s.ns.name = {NS2}");
    let (s4, _) = ask(
        &a,
        &ev,
        "c",
        "Which MITRE techniques were used?",
        Some(&ctx2),
    );
    assert_eq!(s4.incident_ids.len(), 1);
    assert!(s4.alert_ids.iter().all(|i| i.starts_with("w3-")));
}

#[test]
fn sessions_do_not_share_context() {
    let ev = MemEvidence::new(mission());
    let a = plain();
    let ctx = format!("k8s.ns.name = {NS2}");
    ask(&a, &ev, "one", "How many alerts?", Some(&ctx));
    let (s, _) = ask(&a, &ev, "two", "How many alerts?", None);
    assert_eq!(s.context_filter, None);
    assert_eq!(s.alert_ids.len(), 168);
}

#[test]
fn sessions_are_bounded_and_expire() {
    let ev = MemEvidence::new(mission());
    let a = Assistant::new(AssistConfig {
        max_sessions: 2,
        session_ttl: Duration::from_millis(300),
        ..AssistConfig::default()
    })
    .unwrap();
    ask(&a, &ev, "s1", "How many alerts?", None);
    std::thread::sleep(Duration::from_millis(5));
    ask(&a, &ev, "s2", "How many alerts?", None);
    std::thread::sleep(Duration::from_millis(5));
    ask(&a, &ev, "s3", "How many alerts?", None);
    assert!(!a.has_session("s1"), "least recently used is evicted");
    assert!(a.has_session("s2") && a.has_session("s3"));
    std::thread::sleep(Duration::from_millis(400));
    assert!(!a.has_session("s3"), "expired");
    // An empty session id is a one-off question: nothing is kept.
    ask(&a, &ev, "", "How many alerts?", None);
    assert!(!a.has_session(""));
}
