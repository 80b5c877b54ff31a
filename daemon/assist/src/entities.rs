//! Entities named in a question (cluster, namespace, pod, workload, rule, binary, alert
//! id, ...) resolved against the stored evidence: only names that occur in the evidence
//! count, so a question can narrow an answer but never introduce a name. Also the
//! follow-up references ("this", "that namespace", 「それ」「その名前空間」).

use std::collections::BTreeSet;

use saker_event::{Alert, BString, Body};
use saker_incident::Incident;
use serde::{Deserialize, Serialize};

use crate::filter;

/// What a name denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    AlertId,
    IncidentId,
    Cluster,
    Node,
    Namespace,
    Workload,
    Pod,
    Container,
    Image,
    Rule,
    Policy,
    Binary,
}

impl EntityKind {
    /// The filter field selecting alerts of this entity, when one field does exactly.
    pub(crate) fn field(self) -> Option<&'static str> {
        Some(match self {
            EntityKind::AlertId => "alert.id",
            EntityKind::Cluster => "kubernetes.cluster.name",
            EntityKind::Node => "node.name",
            EntityKind::Namespace => "k8s.ns.name",
            EntityKind::Workload => "k8s.workload.name",
            EntityKind::Pod => "k8s.pod.name",
            EntityKind::Image => "container.image",
            EntityKind::Rule => "rule",
            EntityKind::Policy => "policy",
            EntityKind::Container | EntityKind::Binary | EntityKind::IncidentId => return None,
        })
    }
}

/// A name found in the question and in the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    /// The name exactly as stored (not as typed).
    pub value: String,
}

/// Words that are also common command names; a binary with such a name is only matched
/// when written as a path, or the question would "mention" it by accident.
const AMBIGUOUS_BINARIES: &[&str] = &[
    "a", "an", "as", "at", "be", "by", "cat", "cut", "date", "do", "echo", "env", "file", "find",
    "free", "go", "head", "id", "if", "in", "is", "it", "join", "kill", "last", "less", "link",
    "more", "no", "of", "on", "or", "read", "see", "sleep", "sort", "split", "tail", "test",
    "time", "to", "top", "touch", "true", "false", "up", "wait", "watch", "which", "who", "write",
    "yes",
];

/// Japanese and English aliases of saker's policy names (matched only when a policy of
/// that name is in the evidence).
const POLICY_ALIASES: &[(&str, &str)] = &[
    ("drift", "Drift Detection"),
    ("drifted", "Drift Detection"),
    ("ドリフト", "Drift Detection"),
    ("malicious binary", "Malicious Binary Detection"),
    ("malicious binaries", "Malicious Binary Detection"),
    ("malware", "Malicious Binary Detection"),
    ("悪意のあるバイナリ", "Malicious Binary Detection"),
    ("マルウェア", "Malicious Binary Detection"),
    ("suspicious activity", "Suspicious Activity"),
    ("不審な", "Suspicious Activity"),
];

/// The names in the evidence a question can refer to.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// (kind, stored value, lowercase text to match).
    items: Vec<(EntityKind, String, String)>,
}

impl Catalog {
    /// Every name in `alerts` and `incidents`.
    pub fn build(alerts: &[Alert], incidents: &[Incident]) -> Catalog {
        let mut set: BTreeSet<(EntityKind, String)> = BTreeSet::new();
        let mut add = |k: EntityKind, v: &str| {
            if !v.trim().is_empty() && v.len() <= 512 {
                set.insert((k, v.to_string()));
            }
        };
        for a in alerts {
            add(EntityKind::AlertId, &a.id);
            add(EntityKind::Rule, &a.rule);
            if let Some(p) = &a.policy {
                add(EntityKind::Policy, p);
            }
            let ctx = &a.event.ctx;
            add(EntityKind::Cluster, &ctx.cluster);
            add(EntityKind::Node, &ctx.node);
            if let Some(c) = &ctx.container {
                for (k, v) in [
                    (EntityKind::Namespace, &c.namespace),
                    (EntityKind::Workload, &c.workload),
                    (EntityKind::Pod, &c.pod_name),
                    (EntityKind::Container, &c.name),
                    (EntityKind::Image, &c.image),
                ] {
                    if let Some(v) = v {
                        add(k, v);
                    }
                }
            }
            for b in binaries(a) {
                add(EntityKind::Binary, &b);
            }
        }
        for i in incidents {
            add(EntityKind::IncidentId, &i.id);
        }
        Catalog {
            items: set
                .into_iter()
                .map(|(k, v)| {
                    let key = v.to_lowercase();
                    (k, v, key)
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the evidence has this entity.
    pub fn contains(&self, e: &Entity) -> bool {
        self.items
            .iter()
            .any(|(k, v, _)| *k == e.kind && *v == e.value)
    }

    /// Every (kind, name) pair.
    pub fn entries(&self) -> impl Iterator<Item = (EntityKind, &str)> {
        self.items.iter().map(|(k, v, _)| (*k, v.as_str()))
    }

    /// Every stored value of `kind`.
    pub fn values(&self, kind: EntityKind) -> impl Iterator<Item = &str> {
        self.items
            .iter()
            .filter(move |(k, _, _)| *k == kind)
            .map(|(_, v, _)| v.as_str())
    }

    /// The entities named in `question`. Longer names win where names overlap (a pod
    /// name contains its workload's name); a name must stand alone (not be part of a
    /// longer word or name).
    pub fn find(&self, question: &str) -> Vec<Entity> {
        let q = question.to_lowercase();
        let mut cands: Vec<(usize, usize, EntityKind, &str)> = Vec::new();
        for (kind, value, key) in &self.items {
            // Container names ("app", "api") are too generic to match in prose.
            if *kind == EntityKind::Container {
                continue;
            }
            if *kind == EntityKind::Binary && AMBIGUOUS_BINARIES.contains(&key.as_str()) {
                continue;
            }
            for (at, _) in q.match_indices(key.as_str()) {
                if standalone(&q, at, key.len()) {
                    cands.push((at, key.len(), *kind, value.as_str()));
                }
            }
        }
        for (alias, policy) in POLICY_ALIASES {
            if !self.contains(&Entity {
                kind: EntityKind::Policy,
                value: policy.to_string(),
            }) {
                continue;
            }
            for (at, _) in q.match_indices(alias) {
                if alias.is_ascii() && !standalone(&q, at, alias.len()) {
                    continue;
                }
                cands.push((at, alias.len(), EntityKind::Policy, policy));
            }
        }
        // Longest first, then leftmost; a span taken by a longer name hides shorter ones.
        cands.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)).then(a.2.cmp(&b.2)));
        let mut taken: Vec<(usize, usize)> = Vec::new();
        let mut out: BTreeSet<Entity> = BTreeSet::new();
        for (at, len, kind, value) in cands {
            let end = at + len;
            let overlaps = taken.iter().any(|&(s, e)| at < e && s < end);
            let same_span = taken.iter().any(|&(s, e)| s == at && e == end);
            // The same text can be several things (a pod and a binary of one name).
            if overlaps && !same_span {
                continue;
            }
            taken.push((at, end));
            out.insert(Entity {
                kind,
                value: value.to_string(),
            });
        }
        out.into_iter().collect()
    }
}

/// Characters that continue a name (so a match inside a longer name does not count).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn standalone(q: &str, at: usize, len: usize) -> bool {
    let before = q[..at].chars().next_back();
    let rest = &q[at + len..];
    let mut after = rest.chars();
    let a1 = after.next();
    let a2 = after.next();
    // "x.sh": the "sh" after a dot is an extension, not a name.
    let before_ok = !before.is_some_and(|c| name_char(c) || c == '.');
    // "name." at the end of a sentence is fine; "name.sh" is another name.
    let after_ok = match a1 {
        Some(c) if name_char(c) => false,
        Some('.') => !a2.is_some_and(|c| c.is_ascii_alphanumeric()),
        _ => true,
    };
    before_ok && after_ok
}

/// Binary names an alert shows: its process, the executed file, script arguments.
pub(crate) fn binaries(a: &Alert) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |b: &BString| {
        if let Some(s) = b.to_str() {
            let base = s.rsplit('/').next().unwrap_or(s);
            if base.len() >= 2 && base.len() <= 128 && !base.chars().any(char::is_whitespace) {
                out.push(base.to_string());
            }
        }
    };
    push(&a.event.event.process.comm);
    push(&a.event.ctx.proc.exe);
    if let Body::Exec(e) = &a.event.event.body {
        push(&e.filename);
    }
    // Scripts run by an interpreter: `sh ./x.sh`.
    for arg in a.event.ctx.proc.args.iter().skip(1).take(4) {
        if let Some(s) = arg.to_str() {
            if [".sh", ".py", ".pl", ".rb", ".bash"]
                .iter()
                .any(|x| s.ends_with(x))
            {
                push(arg);
            }
        }
    }
    for anc in a.event.ctx.proc.ancestors.iter().take(8) {
        push(&anc.comm);
    }
    out
}

/// Whether an alert concerns `e` (a binary: the process, its executable or an ancestor).
pub(crate) fn alert_matches(a: &Alert, e: &Entity) -> bool {
    let ctx = &a.event.ctx;
    let meta = |f: fn(&saker_event::ContainerMeta) -> &Option<String>| {
        ctx.container
            .as_ref()
            .and_then(|c| f(c).as_deref())
            .is_some_and(|v| v == e.value)
    };
    match e.kind {
        EntityKind::AlertId => a.id == e.value,
        EntityKind::IncidentId => false,
        EntityKind::Cluster => ctx.cluster == e.value,
        EntityKind::Node => ctx.node == e.value,
        EntityKind::Namespace => meta(|c| &c.namespace),
        EntityKind::Workload => meta(|c| &c.workload),
        EntityKind::Pod => meta(|c| &c.pod_name),
        EntityKind::Container => meta(|c| &c.name),
        EntityKind::Image => meta(|c| &c.image),
        EntityKind::Rule => a.rule == e.value,
        EntityKind::Policy => a.policy.as_deref() == Some(e.value.as_str()),
        EntityKind::Binary => binaries(a).contains(&e.value),
    }
}

/// Whether an alert matches every kind of `entities` (any value within a kind).
pub(crate) fn matches_all(a: &Alert, entities: &[Entity]) -> bool {
    let kinds: BTreeSet<EntityKind> = entities
        .iter()
        .map(|e| e.kind)
        .filter(|k| *k != EntityKind::IncidentId)
        .collect();
    kinds.into_iter().all(|k| {
        entities
            .iter()
            .filter(|e| e.kind == k)
            .any(|e| alert_matches(a, e))
    })
}

/// The filter for `entities` when every kind has an exact field (else `None`: the caller
/// falls back to listing alert ids).
pub(crate) fn entities_filter(entities: &[Entity]) -> Option<String> {
    let kinds: BTreeSet<EntityKind> = entities.iter().map(|e| e.kind).collect();
    let mut parts = Vec::new();
    for k in kinds {
        let field = k.field()?;
        let values: Vec<String> = entities
            .iter()
            .filter(|e| e.kind == k)
            .map(|e| e.value.clone())
            .collect();
        parts.extend(filter::field_in(field, &values));
    }
    filter::and(&parts)
}

/// A follow-up reference in a question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// "this", "it", 「それ」: whatever the last answer was about.
    It,
    /// "that namespace", 「その名前空間」.
    Kind(EntityKind),
    /// "the incident", 「このインシデント」.
    Incident,
}

const EN_REFS: &[(&str, Option<EntityKind>)] = &[
    ("namespace", Some(EntityKind::Namespace)),
    ("pod", Some(EntityKind::Pod)),
    ("pods", Some(EntityKind::Pod)),
    ("workload", Some(EntityKind::Workload)),
    ("workloads", Some(EntityKind::Workload)),
    ("cluster", Some(EntityKind::Cluster)),
    ("node", Some(EntityKind::Node)),
    ("image", Some(EntityKind::Image)),
    ("rule", Some(EntityKind::Rule)),
    ("binary", Some(EntityKind::Binary)),
    ("process", Some(EntityKind::Binary)),
    ("alert", Some(EntityKind::AlertId)),
    ("incident", None),
    ("attack", None),
];

const JA_REFS: &[(&str, Option<EntityKind>)] = &[
    ("名前空間", Some(EntityKind::Namespace)),
    ("ネームスペース", Some(EntityKind::Namespace)),
    ("ポッド", Some(EntityKind::Pod)),
    ("ワークロード", Some(EntityKind::Workload)),
    ("クラスタ", Some(EntityKind::Cluster)),
    ("ノード", Some(EntityKind::Node)),
    ("イメージ", Some(EntityKind::Image)),
    ("ルール", Some(EntityKind::Rule)),
    ("バイナリ", Some(EntityKind::Binary)),
    ("プロセス", Some(EntityKind::Binary)),
    ("アラート", Some(EntityKind::AlertId)),
    ("インシデント", None),
    ("攻撃", None),
];

/// Follow-up references in `question`.
pub fn references(question: &str) -> Vec<Reference> {
    let q = question.to_lowercase();
    let words: Vec<&str> = q
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        // "the" alone is not a reference ("the attack path" is a new question).
        let demonstrative = matches!(*w, "this" | "that" | "these" | "those" | "same");
        if demonstrative {
            if let Some(next) = words.get(i + 1) {
                if let Some((_, k)) = EN_REFS.iter().find(|(n, _)| n == next) {
                    out.push(match k {
                        Some(k) => Reference::Kind(*k),
                        None => Reference::Incident,
                    });
                    continue;
                }
            }
        }
        // Bare "that" is mostly a relative pronoun ("pods that ran"), so it is not one.
        if matches!(*w, "this" | "it" | "these" | "those" | "them" | "its") {
            out.push(Reference::It);
        }
    }
    for prefix in ["その", "この", "あの", "同じ"] {
        for (at, _) in question.match_indices(prefix) {
            let rest = &question[at + prefix.len()..];
            match JA_REFS.iter().find(|(n, _)| rest.starts_with(n)) {
                Some((_, Some(k))) => out.push(Reference::Kind(*k)),
                Some((_, None)) => out.push(Reference::Incident),
                None => out.push(Reference::It),
            }
        }
    }
    for pron in ["それ", "これ", "あれ"] {
        if question.contains(pron) {
            out.push(Reference::It);
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(items: &[(EntityKind, &str)]) -> Catalog {
        Catalog {
            items: items
                .iter()
                .map(|(k, v)| (*k, v.to_string(), v.to_lowercase()))
                .collect(),
        }
    }

    #[test]
    fn longest_name_wins_and_names_stand_alone() {
        let c = cat(&[
            (EntityKind::Workload, "bedrock-java"),
            (EntityKind::Pod, "bedrock-java-7d9f8c6b5-x2k4p"),
            (EntityKind::Namespace, "risk-10-aws-bedrock-java"),
            (EntityKind::Binary, "easyminer"),
            (EntityKind::Binary, "sh"),
        ]);
        let found =
            c.find("What about pod bedrock-java-7d9f8c6b5-x2k4p in risk-10-aws-bedrock-java?");
        assert_eq!(
            found,
            vec![
                Entity {
                    kind: EntityKind::Namespace,
                    value: "risk-10-aws-bedrock-java".into()
                },
                Entity {
                    kind: EntityKind::Pod,
                    value: "bedrock-java-7d9f8c6b5-x2k4p".into()
                },
            ]
        );
        assert_eq!(
            c.find("Where did EASYMINER come from."),
            vec![Entity {
                kind: EntityKind::Binary,
                value: "easyminer".into()
            }]
        );
        // "sh" inside "shell" or "easyminer.sh" is not the binary sh.
        assert!(c.find("a shell ran easyminer.sh").is_empty());
        assert!(c.find("namespace risk-10-aws-bedrock-javax").is_empty());
        assert!(c.find("根本原因はrisk-10-aws-bedrock-javaですか").len() == 1);
    }

    #[test]
    fn policy_aliases_only_for_stored_policies() {
        let c = cat(&[(EntityKind::Policy, "Malicious Binary Detection")]);
        assert_eq!(
            c.find("root cause of the malicious binary?"),
            vec![Entity {
                kind: EntityKind::Policy,
                value: "Malicious Binary Detection".into()
            }]
        );
        assert!(c.find("any drift?").is_empty());
        assert_eq!(c.find("悪意のあるバイナリの根本原因").len(), 1);
    }

    #[test]
    fn follow_up_references() {
        assert_eq!(references("How do I fix this?"), vec![Reference::It]);
        assert_eq!(
            references("What else ran in that namespace?"),
            vec![Reference::Kind(EntityKind::Namespace)]
        );
        assert_eq!(
            references("その名前空間で他に何が実行された？"),
            vec![Reference::Kind(EntityKind::Namespace)]
        );
        assert_eq!(references("それを隔離して"), vec![Reference::It]);
        assert_eq!(
            references("List the attack path of this incident"),
            vec![Reference::Incident]
        );
        assert!(references("Summarize the alerts").is_empty());
        assert!(references("List the attack path.").is_empty());
    }

    #[test]
    fn filters_for_entities() {
        let e = vec![
            Entity {
                kind: EntityKind::Namespace,
                value: "ns-a".into(),
            },
            Entity {
                kind: EntityKind::Policy,
                value: "Drift Detection".into(),
            },
        ];
        assert_eq!(
            entities_filter(&e).unwrap(),
            r#"(k8s.ns.name = "ns-a") and (policy = "Drift Detection")"#
        );
        let b = vec![Entity {
            kind: EntityKind::Binary,
            value: "x".into(),
        }];
        assert_eq!(entities_filter(&b), None);
    }
}
