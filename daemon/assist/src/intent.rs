//! What an operator can ask: the intents, their exemplar questions (for embedding
//! routing), their keywords (for the fallback), and the Japanese glossary that lets an
//! English-trained sentence model route Japanese questions.

use serde::{Deserialize, Serialize};

/// The kinds of question the assistant answers (mission steps 2-10 plus three helpers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Step 2: alerts grouped by policy, severities, workloads, blocked vs ran.
    Summarize,
    /// Step 3: what ran where, when, from which parent, what it connected to.
    Report,
    /// Step 4: the process that started the chain.
    RootCause,
    /// Step 5: MITRE ATT&CK tactics and techniques with their evidence.
    Mitre,
    /// Step 7: the process tree, each step aligned to MITRE.
    AttackPath,
    /// Step 8: affected workloads, count and list.
    BlastRadius,
    /// Step 9: how to fix it.
    Remediate,
    /// Step 10: concrete isolation steps with the real names.
    Isolate,
    /// One alert explained.
    ExplainAlert,
    /// How many alerts.
    Count,
    /// The alerts themselves, newest first.
    ListEvents,
    /// Nothing matched well enough: the answer lists what can be asked.
    Unknown,
}

impl Intent {
    /// Every answerable intent (not `Unknown`), in display order.
    pub const ALL: [Intent; 11] = [
        Intent::Summarize,
        Intent::Report,
        Intent::RootCause,
        Intent::Mitre,
        Intent::AttackPath,
        Intent::BlastRadius,
        Intent::Remediate,
        Intent::Isolate,
        Intent::ExplainAlert,
        Intent::Count,
        Intent::ListEvents,
    ];

    /// Stable name (the API's `Done.intent`).
    pub fn name(self) -> &'static str {
        match self {
            Intent::Summarize => "summarize",
            Intent::Report => "report",
            Intent::RootCause => "root_cause",
            Intent::Mitre => "mitre",
            Intent::AttackPath => "attack_path",
            Intent::BlastRadius => "blast_radius",
            Intent::Remediate => "remediate",
            Intent::Isolate => "isolate",
            Intent::ExplainAlert => "explain_alert",
            Intent::Count => "count",
            Intent::ListEvents => "list_events",
            Intent::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<Intent> {
        Intent::ALL
            .into_iter()
            .chain([Intent::Unknown])
            .find(|i| i.name() == name)
    }

    /// Works on incidents (correlated process trees) rather than on single alerts, so
    /// a follow-up without names stays on the incidents the conversation is about.
    pub(crate) fn uses_incidents(self) -> bool {
        matches!(
            self,
            Intent::Report
                | Intent::RootCause
                | Intent::Mitre
                | Intent::AttackPath
                | Intent::BlastRadius
                | Intent::Remediate
                | Intent::Isolate
        )
    }

    /// One line for the capability list.
    pub(crate) fn capability(self, lang: crate::lang::Lang) -> &'static str {
        use crate::lang::tr;
        match self {
            Intent::Summarize => tr(
                lang,
                "Summarize the alerts (by policy, severity, workload; blocked vs ran)",
                "アラートの要約（ポリシー・重大度・ワークロード別、ブロック／実行）",
            ),
            Intent::Report => tr(lang, "Write an investigation report", "調査レポートの作成"),
            Intent::RootCause => tr(lang, "Find the root cause", "根本原因の特定"),
            Intent::Mitre => tr(
                lang,
                "List the MITRE ATT&CK tactics and techniques with their evidence",
                "MITRE ATT&CKの戦術と技術（根拠付き）",
            ),
            Intent::AttackPath => tr(
                lang,
                "Show the attack path (process tree)",
                "攻撃パス（プロセスツリー）の表示",
            ),
            Intent::BlastRadius => tr(
                lang,
                "Count and list the affected workloads",
                "影響を受けたワークロードの数と一覧",
            ),
            Intent::Remediate => tr(lang, "Recommend remediation", "修正方法の提案"),
            Intent::Isolate => tr(
                lang,
                "Give step-by-step isolation guidance",
                "隔離手順の提示",
            ),
            Intent::ExplainAlert => tr(
                lang,
                "Explain one alert (give its id)",
                "特定のアラートの説明（IDを指定）",
            ),
            Intent::Count => tr(lang, "Count alerts", "アラートの件数"),
            Intent::ListEvents => tr(lang, "List recent alerts", "最近のアラートの一覧"),
            Intent::Unknown => "",
        }
    }

    /// The heading of the model's fact sheet (English: the small default model follows
    /// English best; the instructions are in the cached system prompt).
    pub(crate) fn task(self) -> &'static str {
        match self {
            Intent::Summarize => "Alert summary:",
            Intent::Report => "Incident:",
            Intent::RootCause => "Root cause:",
            Intent::Mitre => "MITRE ATT&CK:",
            Intent::AttackPath => "Attack steps, in order:",
            Intent::BlastRadius => "Affected workloads:",
            Intent::Remediate => "Remediation:",
            Intent::Isolate => "Isolation:",
            Intent::ExplainAlert => "Alert:",
            Intent::Count => "Alert count:",
            Intent::ListEvents => "Recent alerts:",
            Intent::Unknown => "",
        }
    }
}

/// Exemplar questions per intent. English ones are embedded as they are; Japanese ones
/// are embedded through the glossary (all-MiniLM-L6-v2's WordPiece vocabulary maps most
/// kanji to [UNK], so raw Japanese embeddings all look alike: measured cosines of
/// 0.6-0.76 between unrelated Japanese questions).
pub(crate) const EXEMPLARS: &[(Intent, &str)] = &[
    // Summarize
    (Intent::Summarize, "Summarize the events of this cluster."),
    (Intent::Summarize, "Give me a summary of the alerts."),
    (
        Intent::Summarize,
        "What happened in this namespace? Give an overview.",
    ),
    (
        Intent::Summarize,
        "Overview of detections grouped by policy.",
    ),
    (
        Intent::Summarize,
        "Which drifted binaries were blocked and which ran?",
    ),
    (
        Intent::Summarize,
        "Summarize the detections and their severities.",
    ),
    (Intent::Summarize, "What is going on in this cluster?"),
    (Intent::Summarize, "Recap the security events."),
    (
        Intent::Summarize,
        "Give me the highlights of the detections.",
    ),
    (Intent::Summarize, "このクラスタのイベントを要約して"),
    (Intent::Summarize, "アラートの概要を教えて"),
    (Intent::Summarize, "検知の要約をお願いします"),
    // Report
    (Intent::Report, "Write a detailed investigation report."),
    (Intent::Report, "Produce an incident report."),
    (
        Intent::Report,
        "Write up the investigation: what ran where and when.",
    ),
    (
        Intent::Report,
        "Give me a full incident write-up with timeline.",
    ),
    (Intent::Report, "Draft a forensic report of this incident."),
    (Intent::Report, "Document the incident in detail."),
    (Intent::Report, "詳細な調査レポートを書いて"),
    (Intent::Report, "インシデントの報告書を作成して"),
    (Intent::Report, "調査結果をレポートにまとめて"),
    // Root cause
    (Intent::RootCause, "What was the root cause?"),
    (
        Intent::RootCause,
        "What was the root cause of the malicious binary?",
    ),
    (Intent::RootCause, "Which process started the chain?"),
    (Intent::RootCause, "How did the attack begin?"),
    (Intent::RootCause, "What is the origin of this detection?"),
    (
        Intent::RootCause,
        "Which parent process launched the miner?",
    ),
    (
        Intent::RootCause,
        "What triggered this alert in the first place?",
    ),
    (Intent::RootCause, "根本原因は？"),
    (Intent::RootCause, "悪意のあるバイナリの根本原因は何ですか"),
    (Intent::RootCause, "攻撃の起点となったプロセスは？"),
    // MITRE
    (
        Intent::Mitre,
        "Which MITRE ATT&CK tactics and techniques were used?",
    ),
    (Intent::Mitre, "Map this incident to MITRE ATT&CK."),
    (Intent::Mitre, "What ATT&CK techniques does this show?"),
    (
        Intent::Mitre,
        "List the tactics and techniques with their evidence.",
    ),
    (Intent::Mitre, "What TTPs did the attacker use?"),
    (Intent::Mitre, "Which technique IDs apply?"),
    (Intent::Mitre, "使用されたMITRE ATT&CKの戦術と技術は？"),
    (Intent::Mitre, "攻撃者が使った手法は？"),
    (Intent::Mitre, "ATT&CKのテクニックにマッピングして"),
    // Attack path
    (Intent::AttackPath, "List the attack path."),
    (Intent::AttackPath, "Show the process tree of the incident."),
    (
        Intent::AttackPath,
        "What were the steps of the attack, in order?",
    ),
    (Intent::AttackPath, "Show the kill chain."),
    (
        Intent::AttackPath,
        "Walk me through the sequence of processes.",
    ),
    (
        Intent::AttackPath,
        "Show the execution chain from the script to the miner.",
    ),
    (Intent::AttackPath, "攻撃パスを列挙して"),
    (Intent::AttackPath, "プロセスツリーを表示して"),
    (Intent::AttackPath, "攻撃の流れを順番に教えて"),
    // Blast radius
    (Intent::BlastRadius, "How many workloads were affected?"),
    (Intent::BlastRadius, "What is the blast radius?"),
    (Intent::BlastRadius, "Which pods were impacted?"),
    (
        Intent::BlastRadius,
        "List the affected workloads and images.",
    ),
    (Intent::BlastRadius, "Did it spread to other workloads?"),
    (Intent::BlastRadius, "Which containers are compromised?"),
    (Intent::BlastRadius, "影響を受けたワークロードはいくつ？"),
    (Intent::BlastRadius, "被害を受けたポッドの一覧"),
    (Intent::BlastRadius, "他のワークロードに広がった？"),
    // Remediate
    (Intent::Remediate, "How do I fix this?"),
    (Intent::Remediate, "How should I remediate this incident?"),
    (Intent::Remediate, "What should I do to clean this up?"),
    (Intent::Remediate, "Recommend remediation steps."),
    (
        Intent::Remediate,
        "How can I prevent this from happening again?",
    ),
    (Intent::Remediate, "What is the fix?"),
    (Intent::Remediate, "どうやって修正すればいい？"),
    (Intent::Remediate, "対処方法を教えて"),
    (Intent::Remediate, "再発を防ぐにはどうすればいい？"),
    // Isolate
    (
        Intent::Isolate,
        "Give detailed guidance to isolate the affected resources.",
    ),
    (Intent::Isolate, "How do I quarantine the compromised pods?"),
    (
        Intent::Isolate,
        "Contain the incident: cut the network of the affected pods.",
    ),
    (
        Intent::Isolate,
        "Steps to isolate the node and the workloads.",
    ),
    (
        Intent::Isolate,
        "Write a NetworkPolicy to block the affected pods.",
    ),
    (Intent::Isolate, "How do I contain this?"),
    (
        Intent::Isolate,
        "影響を受けたリソースを隔離する詳細な手順を教えて",
    ),
    (Intent::Isolate, "ポッドを隔離する方法は？"),
    (Intent::Isolate, "ネットワークを遮断する手順"),
    // Explain alert
    (Intent::ExplainAlert, "Explain this alert."),
    (Intent::ExplainAlert, "Why did this rule fire?"),
    (Intent::ExplainAlert, "What does this alert mean?"),
    (Intent::ExplainAlert, "Tell me about alert"),
    (Intent::ExplainAlert, "このアラートを説明して"),
    (Intent::ExplainAlert, "このアラートはどういう意味？"),
    // Count
    (Intent::Count, "How many alerts are there?"),
    (Intent::Count, "Count the critical alerts."),
    (Intent::Count, "How many detections in the last hour?"),
    (Intent::Count, "Number of events for this rule."),
    (Intent::Count, "アラートは何件ありますか"),
    (Intent::Count, "検知の件数は？"),
    // List events
    (Intent::ListEvents, "List the alerts."),
    (Intent::ListEvents, "Show me the latest events."),
    (Intent::ListEvents, "Show recent detections."),
    (Intent::ListEvents, "Which alerts fired?"),
    (Intent::ListEvents, "最近のアラートを一覧表示して"),
    (Intent::ListEvents, "イベントを見せて"),
];

/// Keyword cues: (intent, lowercase phrase, weight). English phrases match at word starts
/// (so `remediat` matches "remediation"), or as whole words with a trailing `$` (so
/// `contain$` does not match "container"); Japanese phrases match anywhere. They back up
/// the embeddings, which misroute short or unusual paraphrases.
pub(crate) const KEYWORDS: &[(Intent, &str, f32)] = &[
    (Intent::Summarize, "summar", 0.40),
    (Intent::Summarize, "overview", 0.35),
    (Intent::Summarize, "recap", 0.35),
    (Intent::Summarize, "rundown", 0.40),
    (Intent::Summarize, "brief me", 0.35),
    (Intent::Summarize, "highlights", 0.35),
    (Intent::Summarize, "what happened", 0.20),
    (Intent::Summarize, "going on", 0.20),
    (Intent::Summarize, "tl;dr", 0.35),
    (Intent::Summarize, "要約", 0.45),
    (Intent::Summarize, "概要", 0.40),
    (Intent::Summarize, "まとめ", 0.30),
    (Intent::Summarize, "サマリ", 0.40),
    (Intent::Summarize, "何が起き", 0.25),
    (Intent::Report, "report", 0.45),
    (Intent::Report, "write-up", 0.40),
    (Intent::Report, "write up", 0.40),
    (Intent::Report, "investigation", 0.25),
    (Intent::Report, "forensic", 0.25),
    (Intent::Report, "timeline", 0.25),
    (Intent::Report, "レポート", 0.50),
    (Intent::Report, "報告", 0.45),
    (Intent::Report, "調査", 0.25),
    (Intent::Report, "タイムライン", 0.25),
    (Intent::RootCause, "root cause", 0.50),
    (Intent::RootCause, "root-cause", 0.50),
    (Intent::RootCause, "origin", 0.30),
    (Intent::RootCause, "started the", 0.30),
    (Intent::RootCause, "how did it start", 0.35),
    (Intent::RootCause, "how did the attack", 0.30),
    (Intent::RootCause, "entry point", 0.30),
    (Intent::RootCause, "patient zero", 0.40),
    (Intent::RootCause, "根本原因", 0.60),
    (Intent::RootCause, "原因", 0.45),
    (Intent::RootCause, "起点", 0.45),
    (Intent::RootCause, "発端", 0.45),
    (Intent::RootCause, "きっかけ", 0.40),
    (Intent::Mitre, "mitre", 0.45),
    (Intent::Mitre, "att&ck", 0.45),
    (Intent::Mitre, "attack technique", 0.40),
    (Intent::Mitre, "tactic", 0.40),
    (Intent::Mitre, "technique", 0.35),
    (Intent::Mitre, "ttp", 0.40),
    (Intent::Mitre, "戦術", 0.50),
    (Intent::Mitre, "技術", 0.35),
    (Intent::Mitre, "テクニック", 0.45),
    (Intent::Mitre, "手法", 0.35),
    (Intent::AttackPath, "attack path", 0.55),
    (Intent::AttackPath, "attack chain", 0.45),
    (Intent::AttackPath, "kill chain", 0.45),
    (Intent::AttackPath, "process tree", 0.50),
    (Intent::AttackPath, "sequence", 0.25),
    (Intent::AttackPath, "step by step", 0.20),
    (Intent::AttackPath, "steps of the attack", 0.40),
    (Intent::AttackPath, "攻撃パス", 0.60),
    (Intent::AttackPath, "攻撃経路", 0.60),
    (Intent::AttackPath, "攻撃の流れ", 0.50),
    (Intent::AttackPath, "プロセスツリー", 0.55),
    (Intent::AttackPath, "順番", 0.20),
    (Intent::BlastRadius, "blast radius", 0.55),
    (Intent::BlastRadius, "affected", 0.35),
    (Intent::BlastRadius, "impacted", 0.35),
    (Intent::BlastRadius, "compromised", 0.25),
    (Intent::BlastRadius, "spread", 0.35),
    (Intent::BlastRadius, "how many workloads", 0.35),
    (Intent::BlastRadius, "how many pods", 0.35),
    (Intent::BlastRadius, "which workloads", 0.25),
    (Intent::BlastRadius, "which pods", 0.25),
    (Intent::BlastRadius, "影響", 0.45),
    (Intent::BlastRadius, "被害", 0.45),
    (Intent::BlastRadius, "広が", 0.40),
    (Intent::BlastRadius, "感染", 0.35),
    (Intent::Remediate, "fix", 0.45),
    (Intent::Remediate, "remediat", 0.50),
    (Intent::Remediate, "clean up", 0.40),
    (Intent::Remediate, "cleanup", 0.40),
    (Intent::Remediate, "prevent this", 0.35),
    (Intent::Remediate, "recover", 0.35),
    (Intent::Remediate, "what should i do", 0.35),
    (Intent::Remediate, "mitigat", 0.40),
    (Intent::Remediate, "修正", 0.55),
    (Intent::Remediate, "修復", 0.55),
    (Intent::Remediate, "対処", 0.50),
    (Intent::Remediate, "対策", 0.50),
    (Intent::Remediate, "是正", 0.50),
    (Intent::Remediate, "直す", 0.45),
    (Intent::Remediate, "再発", 0.40),
    (Intent::Isolate, "isolat", 0.60),
    (Intent::Isolate, "quarantin", 0.55),
    (Intent::Isolate, "contain$", 0.45),
    (Intent::Isolate, "containment", 0.45),
    (Intent::Isolate, "networkpolicy", 0.45),
    (Intent::Isolate, "network policy", 0.45),
    (Intent::Isolate, "cordon", 0.45),
    (Intent::Isolate, "cut off", 0.35),
    (Intent::Isolate, "隔離", 0.65),
    (Intent::Isolate, "遮断", 0.55),
    (Intent::Isolate, "封じ込め", 0.55),
    (Intent::ExplainAlert, "explain", 0.30),
    (Intent::ExplainAlert, "this alert", 0.30),
    (Intent::ExplainAlert, "why did", 0.20),
    (Intent::ExplainAlert, "fire$", 0.15),
    (Intent::ExplainAlert, "fired$", 0.15),
    (Intent::ExplainAlert, "説明", 0.35),
    (Intent::ExplainAlert, "このアラート", 0.30),
    (Intent::ExplainAlert, "どういう意味", 0.30),
    (Intent::Count, "how many alerts", 0.50),
    (Intent::Count, "how many events", 0.50),
    (Intent::Count, "how many detections", 0.50),
    (Intent::Count, "number of", 0.30),
    (Intent::Count, "count", 0.40),
    (Intent::Count, "how many", 0.20),
    (Intent::Count, "何件", 0.50),
    (Intent::Count, "件数", 0.50),
    (Intent::Count, "いくつ", 0.20),
    (Intent::ListEvents, "list the alerts", 0.45),
    (Intent::ListEvents, "list alerts", 0.45),
    (Intent::ListEvents, "list the events", 0.45),
    (Intent::ListEvents, "show me the alerts", 0.40),
    (Intent::ListEvents, "latest", 0.25),
    (Intent::ListEvents, "recent", 0.25),
    (Intent::ListEvents, "一覧", 0.30),
    (Intent::ListEvents, "最近", 0.25),
    (Intent::ListEvents, "最新", 0.25),
];

/// Japanese terms → English glosses, longest first where they overlap. A Japanese
/// question is embedded as the glosses of the terms it contains (plus any ASCII words,
/// such as "MITRE ATT&CK" or a namespace), which the English sentence model understands.
pub(crate) const GLOSSARY: &[(&str, &str)] = &[
    ("根本原因", "root cause"),
    ("原因", "cause"),
    ("起点", "origin start"),
    ("発端", "origin start"),
    ("きっかけ", "trigger origin"),
    ("要約", "summarize"),
    ("概要", "overview summary"),
    ("まとめ", "summarize"),
    ("サマリ", "summary"),
    ("何が起き", "what happened"),
    ("イベント", "events"),
    ("アラート", "alert"),
    ("検知", "detections"),
    ("検出", "detections"),
    ("クラスタ", "cluster"),
    ("名前空間", "namespace"),
    ("ネームスペース", "namespace"),
    ("詳細な", "detailed"),
    ("詳細", "detailed"),
    ("調査", "investigation"),
    ("レポート", "report"),
    ("報告書", "report"),
    ("報告", "report"),
    ("タイムライン", "timeline"),
    ("戦術", "tactics"),
    ("技術", "techniques"),
    ("テクニック", "techniques"),
    ("手法", "techniques"),
    ("攻撃者", "attacker"),
    ("攻撃パス", "attack path"),
    ("攻撃経路", "attack path"),
    ("攻撃の流れ", "attack steps in order"),
    ("攻撃", "attack"),
    ("プロセスツリー", "process tree"),
    ("プロセス", "process"),
    ("順番", "in order"),
    ("列挙", "list"),
    ("一覧", "list"),
    ("影響を受けた", "affected"),
    ("影響", "affected"),
    ("被害", "impacted"),
    ("広が", "spread"),
    ("感染", "compromised"),
    ("ワークロード", "workloads"),
    ("ポッド", "pods"),
    ("コンテナ", "containers"),
    ("いくつ", "how many"),
    ("何個", "how many"),
    ("何件", "how many"),
    ("件数", "count number of"),
    ("修正", "fix"),
    ("修復", "fix"),
    ("対処", "remediate"),
    ("対策", "remediation"),
    ("是正", "remediate"),
    ("直す", "fix"),
    ("再発を防ぐ", "prevent this from happening again"),
    ("隔離", "isolate"),
    ("遮断", "cut off block"),
    ("封じ込め", "contain"),
    ("ネットワーク", "network"),
    ("リソース", "resources"),
    ("手順", "steps"),
    ("方法", "how"),
    ("どうやって", "how"),
    ("どのように", "how"),
    ("説明", "explain"),
    ("どういう意味", "what does it mean"),
    ("意味", "meaning"),
    ("悪意のある", "malicious"),
    ("バイナリ", "binary"),
    ("最近", "recent"),
    ("最新", "latest"),
    ("表示", "show"),
    ("見せて", "show me"),
    ("教えて", "tell me"),
    ("書いて", "write"),
    ("作成", "write"),
    ("使用された", "used"),
    ("使われた", "used"),
    ("使った", "used"),
    ("ブロック", "blocked"),
    ("実行", "ran executed"),
    ("ノード", "node"),
];

/// The glossed form of a Japanese question: glosses of the known terms (longest match
/// first) and the ASCII words, in order. Unknown Japanese text is left out (it would
/// only add [UNK] noise to the embedding).
pub(crate) fn gloss(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut ascii = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((term, en)) = GLOSSARY
            .iter()
            .filter(|(t, _)| rest.starts_with(t))
            .max_by_key(|(t, _)| t.len())
        {
            flush_ascii(&mut ascii, &mut out);
            out.push((*en).to_string());
            rest = &rest[term.len()..];
            continue;
        }
        if c.is_ascii() {
            ascii.push(c);
        } else {
            flush_ascii(&mut ascii, &mut out);
        }
        rest = &rest[c.len_utf8()..];
    }
    flush_ascii(&mut ascii, &mut out);
    out.join(" ")
}

fn flush_ascii(buf: &mut String, out: &mut Vec<String>) {
    let t = buf.trim();
    if !t.is_empty() {
        out.push(t.to_string());
    }
    buf.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for i in Intent::ALL.into_iter().chain([Intent::Unknown]) {
            assert_eq!(Intent::from_name(i.name()), Some(i));
        }
    }

    #[test]
    fn every_intent_has_exemplars_in_both_languages() {
        for i in Intent::ALL {
            let ex: Vec<&str> = EXEMPLARS
                .iter()
                .filter(|(j, _)| *j == i)
                .map(|(_, t)| *t)
                .collect();
            assert!(ex.iter().filter(|t| t.is_ascii()).count() >= 4, "{i:?}");
            assert!(ex.iter().filter(|t| !t.is_ascii()).count() >= 2, "{i:?}");
        }
    }

    #[test]
    fn glosses_japanese() {
        assert_eq!(gloss("根本原因は？"), "root cause");
        assert_eq!(
            gloss("使用されたMITRE ATT&CKの戦術と技術は？"),
            "used MITRE ATT&CK tactics techniques"
        );
        assert_eq!(
            gloss("影響を受けたワークロードはいくつ？"),
            "affected workloads how many"
        );
    }
}
