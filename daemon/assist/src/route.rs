//! Routing a question to an intent: sentence embeddings against exemplar questions,
//! backed by keyword cues in both languages, with a confidence below which the
//! assistant says what it can answer instead of guessing.

use saker_models::{cosine, Embedder};
use serde::{Deserialize, Serialize};

use crate::error::AssistError;
use crate::intent::{gloss, Intent, EXEMPLARS, KEYWORDS};
use crate::lang::Lang;

/// Below this combined score the question is not answered as any intent.
pub const DEFAULT_THRESHOLD: f32 = 0.45;

/// Keyword weights of one intent add up to at most this (several weak cues must not
/// outweigh a good embedding match of another intent).
const KEYWORD_CAP: f32 = 0.7;

/// How the routing was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMethod {
    /// Embedding similarity and keywords agreed or keywords were absent.
    Embedding,
    /// Keywords decided (no embedder, or they outweighed the embedding).
    Keywords,
    /// Nothing scored above the threshold.
    None,
}

/// The routing decision with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    pub intent: Intent,
    /// 0..1.
    pub confidence: f32,
    pub method: RouteMethod,
    /// Combined score per intent, best first.
    pub scores: Vec<(Intent, f32)>,
}

/// Embeds the exemplars once and routes questions against them.
pub struct Router {
    embedder: Option<Embedder>,
    exemplars: Vec<(Intent, Vec<f32>)>,
    threshold: f32,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("embedder", &self.embedder.is_some())
            .field("exemplars", &self.exemplars.len())
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl Router {
    /// A router; without an embedder it routes on keywords alone.
    pub fn new(embedder: Option<Embedder>, threshold: f32) -> Result<Router, AssistError> {
        let exemplars = match &embedder {
            Some(e) => {
                let texts: Vec<String> = EXEMPLARS.iter().map(|(_, t)| embed_text(t)).collect();
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let vecs = e.embed(&refs)?;
                EXEMPLARS.iter().map(|(i, _)| *i).zip(vecs).collect()
            }
            None => Vec::new(),
        };
        Ok(Router {
            embedder,
            exemplars,
            threshold,
        })
    }

    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    /// Routes `question`.
    pub fn route(&self, question: &str) -> Result<Routing, AssistError> {
        let kw = keyword_scores(question);
        let emb = match &self.embedder {
            Some(e) => {
                let text = embed_text(question);
                if text.trim().is_empty() {
                    Vec::new()
                } else {
                    let v = e.embed(&[text.as_str()])?;
                    let q = v.first().map(Vec::as_slice).unwrap_or(&[]);
                    Intent::ALL
                        .iter()
                        .map(|i| {
                            let best = self
                                .exemplars
                                .iter()
                                .filter(|(j, _)| j == i)
                                .map(|(_, x)| cosine(q, x))
                                .fold(0.0f32, f32::max);
                            (*i, best)
                        })
                        .collect()
                }
            }
            None => Vec::new(),
        };
        Ok(decide(&emb, &kw, self.embedder.is_some(), self.threshold))
    }
}

/// What is embedded for `text`: itself for English, its glossary form for Japanese.
fn embed_text(text: &str) -> String {
    match Lang::detect(text) {
        Lang::En => text.to_string(),
        Lang::Ja => gloss(text),
    }
}

/// Summed keyword weights per intent (capped), for the intents that have any.
pub(crate) fn keyword_scores(question: &str) -> Vec<(Intent, f32)> {
    let q = question.to_lowercase();
    let mut out: Vec<(Intent, f32)> = Vec::new();
    for (intent, phrase, w) in KEYWORDS {
        if phrase_matches(&q, phrase) {
            match out.iter_mut().find(|(i, _)| i == intent) {
                Some((_, s)) => *s = (*s + w).min(KEYWORD_CAP),
                None => out.push((*intent, w.min(KEYWORD_CAP))),
            }
        }
    }
    out
}

/// English phrases at a word start (whole word with a trailing `$`); others anywhere.
fn phrase_matches(text: &str, phrase: &str) -> bool {
    let (p, whole) = match phrase.strip_suffix('$') {
        Some(p) => (p, true),
        None => (phrase, false),
    };
    if !p.is_ascii() {
        return text.contains(p);
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    text.match_indices(p).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + p.len()..].chars().next();
        !word(before) && (!whole || !word(after))
    })
}

/// Combines embedding and keyword scores and applies the threshold.
fn decide(emb: &[(Intent, f32)], kw: &[(Intent, f32)], embedder: bool, threshold: f32) -> Routing {
    let score = |i: Intent| -> (f32, f32) {
        let e = emb.iter().find(|(j, _)| *j == i).map_or(0.0, |(_, s)| *s);
        let k = kw.iter().find(|(j, _)| *j == i).map_or(0.0, |(_, s)| *s);
        (e, k)
    };
    let mut scores: Vec<(Intent, f32)> = Intent::ALL
        .iter()
        .map(|&i| {
            let (e, k) = score(i);
            // Without an embedder keywords stand alone; a strong cue (0.45+) alone
            // passes the threshold, weak ones ("how many", "recent") need company.
            let s = if embedder { e + k } else { k * 1.2 };
            (i, s)
        })
        .collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let (best, top) = scores.first().copied().unwrap_or((Intent::Unknown, 0.0));
    let second = scores.get(1).map_or(0.0, |s| s.1);
    if top < threshold {
        return Routing {
            intent: Intent::Unknown,
            confidence: top.clamp(0.0, 1.0),
            method: RouteMethod::None,
            scores,
        };
    }
    // A near tie is less certain than the raw score says.
    let margin = (top - second).max(0.0);
    let confidence = (top.min(1.0) * (0.75 + margin.min(0.25))).clamp(0.0, 1.0);
    let (e, k) = score(best);
    let emb_best = emb
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| *i);
    let method = if !embedder || (k > e && emb_best != Some(best)) {
        RouteMethod::Keywords
    } else {
        RouteMethod::Embedding
    };
    Routing {
        intent: best,
        confidence,
        method,
        scores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw_route(q: &str) -> Intent {
        decide(&[], &keyword_scores(q), false, DEFAULT_THRESHOLD).intent
    }

    #[test]
    fn word_start_and_whole_word_matching() {
        assert!(phrase_matches("how do i fix this", "fix"));
        assert!(!phrase_matches("use the prefix", "fix"));
        assert!(phrase_matches("remediation steps", "remediat"));
        assert!(!phrase_matches("which containers", "contain$"));
        assert!(phrase_matches("how do i contain it", "contain$"));
        assert!(phrase_matches("根本原因は？", "原因"));
    }

    #[test]
    fn keywords_alone_route_the_mission_questions() {
        let cases = [
            ("Summarize the events of this cluster.", Intent::Summarize),
            ("Write a detailed investigation report.", Intent::Report),
            (
                "What was the root cause of the malicious binary detected in risk-10-aws-bedrock-java?",
                Intent::RootCause,
            ),
            ("Which MITRE ATT&CK tactics and techniques were used?", Intent::Mitre),
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
            ("影響を受けたリソースを隔離する詳細な手順を教えて", Intent::Isolate),
        ];
        for (q, want) in cases {
            assert_eq!(kw_route(q), want, "{q}");
        }
    }

    #[test]
    fn nothing_matches_means_unknown() {
        assert_eq!(kw_route("What's the weather like?"), Intent::Unknown);
        assert_eq!(kw_route("今日の天気は？"), Intent::Unknown);
        let r = decide(&[], &[], true, DEFAULT_THRESHOLD);
        assert_eq!(r.intent, Intent::Unknown);
        assert_eq!(r.method, RouteMethod::None);
    }
}
