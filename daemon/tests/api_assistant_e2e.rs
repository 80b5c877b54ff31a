//! The operator's investigation from mission.md, end to end: real models (SmolLM2 +
//! MiniLM), a real store holding the mission scenario, the gRPC API over a unix socket and
//! the `saker` CLI, eight questions in one session. Each answer must contain the facts the
//! evidence supports, cite alert ids and suggest a filter.

mod api_support;

use api_support::*;

fn answer(env: &Env, session: Option<&str>, q: &str) -> (String, String) {
    let mut args = vec!["--json", "ask"];
    if let Some(s) = session {
        args.extend(["--session", s]);
    } else {
        args.extend(["--filter", "kubernetes.cluster.name = api-test"]);
    }
    args.push(q);
    let o = env.saker(&args);
    assert_eq!(code(&o), 0, "{q}: {}", stderr(&o));
    let lines = json_lines(&o);
    let text = lines
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let sid = lines
        .iter()
        .find_map(|l| {
            l.pointer("/part/started/session_id")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .or_else(|| session.map(str::to_string))
        .unwrap_or_else(|| panic!("a session id in {text}"));
    assert!(text.contains("alert_ids"), "{q}: cites alert ids: {text}");
    assert!(
        text.contains("suggested_filter"),
        "{q}: suggests a filter: {text}"
    );
    (sid, text)
}

fn has_all(q: &str, text: &str, facts: &[&str]) {
    for f in facts {
        assert!(
            text.contains(f),
            "{q}: expected {f:?} in the answer:\n{text}"
        );
    }
}

#[test]
fn the_eight_questions_in_one_session() {
    let env = Env::start(
        "assist-e2e",
        Opts {
            models: true,
            ..Opts::default()
        },
    );
    env.seed();
    let q = "Summarize the events of this cluster.";
    let (sid, t) = answer(&env, None, q);
    has_all(
        q,
        &t,
        &["Drift Detection", "Malicious Binary Detection", "easyminer"],
    );
    let s = Some(sid.as_str());

    let q = "Write a detailed investigation report.";
    let (_, t) = answer(&env, s, q);
    has_all(q, &t, &["easyminer", "risk-10-aws-bedrock-java"]);

    let q = "What was the root cause of the malicious binary detected in risk-10-aws-bedrock-java?";
    let (_, t) = answer(&env, s, q);
    has_all(q, &t, &["sh ./malicious-bin-event-gen.sh"]);

    let q = "Which MITRE ATT&CK tactics and techniques were used?";
    let (_, t) = answer(&env, s, q);
    has_all(q, &t, &["T1105", "T1222.002", "T1496", "T1059.004"]);

    let q = "List the attack path.";
    let (_, t) = answer(&env, s, q);
    has_all(q, &t, &["wget", "chmod", "easyminer"]);
    // In the tree: the download, then the chmod, then the miner's own exec with its URL.
    let w = t
        .find("wget http")
        .unwrap_or_else(|| panic!("{q}: the download:\n{t}"));
    let c = w + t[w..]
        .find("chmod +x")
        .unwrap_or_else(|| panic!("{q}: chmod after wget:\n{t}"));
    assert!(
        t[c..].contains("easyminer --url"),
        "{q}: wget → chmod → easyminer in order:\n{t}"
    );

    let q = "How many workloads were affected?";
    let (_, t) = answer(&env, s, q);
    has_all(
        q,
        &t,
        &[
            "bedrock-java-7d9f8c6b5-x2k4p",
            "bedrock-java-worker-5c8d7-q9wz1",
            "payments-api-6f7b9-mm3tr",
        ],
    );
    assert!(t.contains('3'), "{q}: the count:\n{t}");

    let q = "How do I fix this?";
    let (_, t) = answer(&env, s, q);
    has_all(
        q,
        &t,
        &["bedrock-java-7d9f8c6b5-x2k4p", "risk-10-aws-bedrock-java"],
    );

    let q = "Give detailed guidance to isolate the affected resources.";
    let (_, t) = answer(&env, s, q);
    has_all(q, &t, &["NetworkPolicy", "risk-10-aws-bedrock-java"]);
    env.stop();
}
