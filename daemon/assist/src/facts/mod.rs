//! Facts first: each intent builds its facts from the evidence (alerts and the incidents
//! correlated from them), renders its sections deterministically, and writes a short
//! fact sheet for the model plus a deterministic narrative used when there is no model
//! or its text fails verification.

mod attack_path;
mod blast;
mod count;
mod explain;
mod mitre;
mod remediate;
mod report;
mod root_cause;
mod summary;

use std::collections::{BTreeSet, HashMap};

use saker_event::{Alert, Body};
use saker_incident::{Incident, WorkloadKey};
use saker_models::sanitize_untrusted;

use crate::entities::{self, Entity, EntityKind};
use crate::filter::{self, SuggestedFilter, MAX_IDS_IN_FILTER};
use crate::intent::Intent;
use crate::knowledge::Knowledge;
use crate::lang::{tr, Lang};
use crate::playbook::{BinaryTarget, Playbooks, PodTarget, Targets};
use crate::render::{self, Section};
use crate::session::Focus;
use crate::Evidence;

pub(crate) use explain::explain_alert;

/// What the model may phrase, and what is said when it may not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FactSheet {
    /// Facts for the model, one per line, English, workload strings escaped and
    /// control-token spellings broken.
    pub lines: Vec<String>,
    /// The deterministic narrative, in the answer's language.
    pub fallback: String,
}

impl FactSheet {
    /// The facts as the model's user message body: one sentence per line, so that
    /// when the small model copies a line, the copy reads as a sentence.
    pub fn prompt_text(&self) -> String {
        self.lines
            .iter()
            .map(|l| {
                let mut c = l.chars();
                let mut out: String = match c.next() {
                    Some(f) => f.to_uppercase().chain(c).collect(),
                    None => String::new(),
                };
                if !out.ends_with(['.', '!', '?', '"']) {
                    out.push('.');
                }
                out
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// An intent's answer before it is streamed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Built {
    pub sections: Vec<Section>,
    pub alert_ids: Vec<String>,
    pub incident_ids: Vec<String>,
    pub filters: Vec<SuggestedFilter>,
    pub facts: FactSheet,
    pub notes: Vec<String>,
    pub focus: Focus,
}

/// Everything an intent's facts are built from.
pub(crate) struct Scope<'a> {
    pub lang: Lang,
    pub kb: &'a Knowledge,
    pub playbooks: &'a Playbooks,
    pub ev: &'a dyn Evidence,
    pub max_alerts: usize,
    /// Context filter in force.
    pub context: Option<&'a str>,
    /// Alerts under the context filter, by time then id.
    pub alerts: &'a [Alert],
    /// Incidents correlated from `alerts`.
    pub incidents: &'a [Incident],
    /// Narrowing from the question or the session.
    pub entities: Vec<Entity>,
    /// Incidents a follow-up refers to (by id), when the question said "this incident".
    pub incident_focus: Option<Vec<String>>,
    /// The store had more alerts than were read.
    pub truncated: bool,
    /// The store's count of context alerts, when it can count.
    pub total: Option<u64>,
    by_id: HashMap<&'a str, &'a Alert>,
}

impl<'a> Scope<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        lang: Lang,
        kb: &'a Knowledge,
        playbooks: &'a Playbooks,
        ev: &'a dyn Evidence,
        max_alerts: usize,
        context: Option<&'a str>,
        alerts: &'a [Alert],
        incidents: &'a [Incident],
    ) -> Scope<'a> {
        Scope {
            lang,
            kb,
            playbooks,
            ev,
            max_alerts,
            context,
            alerts,
            incidents,
            entities: Vec::new(),
            incident_focus: None,
            truncated: false,
            total: None,
            by_id: alerts.iter().map(|a| (a.id.as_str(), a)).collect(),
        }
    }

    pub fn alert(&self, id: &str) -> Option<&'a Alert> {
        self.by_id.get(id).copied()
    }

    /// Alerts narrowed by the entities.
    pub fn focused_alerts(&self) -> Vec<&'a Alert> {
        let inc_ids: Option<BTreeSet<&str>> = self.incident_filter_ids();
        self.alerts
            .iter()
            .filter(|a| entities::matches_all(a, &self.entities))
            .filter(|a| match &inc_ids {
                Some(ids) => self
                    .incidents
                    .iter()
                    .any(|i| ids.contains(i.id.as_str()) && i.alert_ids.contains(&a.id)),
                None => true,
            })
            .collect()
    }

    /// Incident ids the entities or the follow-up pin down, if any.
    fn incident_filter_ids(&self) -> Option<BTreeSet<&str>> {
        let mut ids: Option<BTreeSet<&str>> = None;
        let named: Vec<&str> = self
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::IncidentId)
            .map(|e| e.value.as_str())
            .collect();
        if !named.is_empty() {
            ids = Some(named.into_iter().collect());
        }
        if let Some(f) = &self.incident_focus {
            let f: BTreeSet<&str> = f.iter().map(String::as_str).collect();
            ids = Some(match ids {
                Some(i) => i.intersection(&f).copied().collect(),
                None => f,
            });
        }
        ids
    }

    /// Incidents with at least one alert matching the entities (and in the follow-up's
    /// focus), in start order.
    pub fn focused_incidents(&self) -> Vec<&'a Incident> {
        let ids = self.incident_filter_ids();
        self.incidents
            .iter()
            .filter(|i| ids.as_ref().is_none_or(|s| s.contains(i.id.as_str())))
            .filter(|i| {
                i.alert_ids.iter().any(|id| {
                    self.alert(id)
                        .is_some_and(|a| entities::matches_all(a, &self.entities))
                })
            })
            .collect()
    }

    /// The filter selecting exactly the focused alerts (context ∧ entities), when the
    /// entities have exact fields and nothing was cut by the read limit.
    pub fn scope_filter(&self) -> Option<String> {
        if self.truncated || self.incident_focus.is_some() {
            return None;
        }
        let ent: Vec<Entity> = self
            .entities
            .iter()
            .filter(|e| e.kind != EntityKind::IncidentId)
            .cloned()
            .collect();
        if self
            .entities
            .iter()
            .any(|e| e.kind == EntityKind::IncidentId)
        {
            return None;
        }
        let mut parts = Vec::new();
        if let Some(c) = self.context {
            parts.push(c.to_string());
        }
        if !ent.is_empty() {
            parts.push(entities::entities_filter(&ent)?);
        }
        Some(filter::and(&parts).unwrap_or_default())
    }

    /// Suggested filters for evidence `ids`: the exact id list (when not too long), and
    /// the scope filter when it selects the same alerts.
    pub fn filters_for(&self, ids: &[String], what: &str) -> Vec<SuggestedFilter> {
        let mut out = Vec::new();
        let (since, until) = self.time_bounds(ids);
        let focused: BTreeSet<&str> = self
            .focused_alerts()
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        let same = focused.len() == ids.len() && ids.iter().all(|i| focused.contains(i.as_str()));
        if same {
            if let Some(f) = self.scope_filter() {
                if !f.is_empty() {
                    out.push(SuggestedFilter {
                        filter: f,
                        description: format!("{what} ({} alerts)", ids.len()),
                        since_ns: 0,
                        until_ns: 0,
                    });
                }
            }
        }
        if !ids.is_empty() && ids.len() <= MAX_IDS_IN_FILTER {
            if let Some(f) = filter::alert_ids(ids) {
                out.push(SuggestedFilter {
                    filter: f,
                    description: format!("the {} alerts of {what}", ids.len()),
                    since_ns: since,
                    until_ns: until,
                });
            }
        }
        out
    }

    fn time_bounds(&self, ids: &[String]) -> (i64, i64) {
        let times: Vec<i64> = ids
            .iter()
            .filter_map(|i| self.alert(i))
            .map(|a| a.time_ns)
            .collect();
        match (times.iter().min(), times.iter().max()) {
            (Some(a), Some(b)) => (*a, b.saturating_add(1)),
            _ => (0, 0),
        }
    }

    /// The focus to remember for follow-ups.
    pub fn focus(&self, incidents: &[&Incident]) -> Focus {
        Focus {
            entities: self.entities.clone(),
            incident_ids: incidents.iter().map(|i| i.id.clone()).collect(),
            alert_id: None,
        }
    }

    /// "No alerts" answer shared by every intent.
    pub fn nothing(&self, intent: Intent) -> Built {
        let lang = self.lang;
        let what = if self.entities.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                self.entities
                    .iter()
                    .map(|e| render::esc_str(&e.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let text = match lang {
            Lang::En => format!(
                "No alerts match this scope{what}, so there is nothing to {} yet.",
                match intent {
                    Intent::Remediate | Intent::Isolate => "act on",
                    _ => "report",
                }
            ),
            Lang::Ja => format!("この範囲{what}に該当するアラートはありません。"),
        };
        Built {
            sections: vec![Section::text(
                tr(lang, "No evidence", "証拠なし"),
                text.clone(),
            )],
            facts: FactSheet {
                lines: vec!["alerts in scope: 0".into()],
                fallback: text,
            },
            focus: self.focus(&[]),
            ..Built::default()
        }
    }
}

/// Builds the answer of `intent`.
pub(crate) fn build(intent: Intent, s: &Scope) -> Result<Built, crate::AssistError> {
    Ok(match intent {
        Intent::Summarize => summary::build(s),
        Intent::Report => report::build(s),
        Intent::RootCause => root_cause::build(s),
        Intent::Mitre => mitre::build(s),
        Intent::AttackPath => attack_path::build(s),
        Intent::BlastRadius => blast::build(s)?,
        Intent::Remediate => remediate::build_remediation(s)?,
        Intent::Isolate => remediate::build_isolation(s)?,
        Intent::Count => count::build_count(s),
        Intent::ListEvents => count::build_list(s),
        Intent::ExplainAlert | Intent::Unknown => count::build_capabilities(s),
    })
}

/// A value from a workload for the model: escaped to one line, control-token spellings
/// broken, quoted.
pub(crate) fn q(s: &str) -> String {
    format!("\"{}\"", sanitize_untrusted(s))
}

/// The shortest useful name of a workload for the model (its name, else the pod, the
/// container, or `host`): fewer prompt tokens than `namespace/workload`.
pub(crate) fn short_name(w: &WorkloadKey) -> String {
    if w.is_host() {
        return "the host".into();
    }
    render::esc_str(
        w.workload
            .as_deref()
            .or(w.pod.as_deref())
            .or(w.container.as_deref())
            .unwrap_or("-"),
    )
}

/// "a, b and c" (at most `max` items, then "and N more").
pub(crate) fn and_list(items: &[String], max: usize) -> String {
    let mut v: Vec<String> = items.iter().take(max).cloned().collect();
    if items.len() > max {
        v.push(format!("{} more", items.len() - max));
    }
    match v.len() {
        0 => String::new(),
        1 => v.remove(0),
        n => format!("{} and {}", v[..n - 1].join(", "), v[n - 1]),
    }
}

/// A workload string inside a narrative: in backticks (so it reads as quoted data, not
/// as the assistant's words) with control-token spellings broken.
pub(crate) fn code(s: &str) -> String {
    format!("`{}`", sanitize_untrusted(s).replace('`', "'"))
}

/// Sorted, deduplicated ids of incidents' alerts.
pub(crate) fn incident_alert_ids(incs: &[&Incident]) -> Vec<String> {
    render::union_ids(incs.iter().map(|i| i.alert_ids.as_slice()))
}

/// Short workload names, deduplicated in order.
pub(crate) fn workload_names<'x>(ws: impl Iterator<Item = &'x WorkloadKey>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in ws {
        let s = render::workload_short(w);
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The incident's workload as a [`PodTarget`], labels taken from its alerts.
pub(crate) fn pod_target(s: &Scope, w: &WorkloadKey, alerts: &[&Alert]) -> PodTarget {
    let labels = alerts
        .iter()
        .filter(|a| a.event.ctx.container_id == w.container_id)
        .find_map(|a| a.event.ctx.container.as_ref().map(|c| c.labels.clone()))
        .unwrap_or_default();
    let _ = s;
    PodTarget {
        namespace: w.namespace.clone(),
        pod: w.pod.clone(),
        workload: w.workload.clone(),
        node: w.node.clone(),
        container_id: w.container_id.clone(),
        image: w.image.clone(),
        labels,
    }
}

/// Playbook targets for a set of workloads and the alerts showing what happened there.
pub(crate) fn targets(s: &Scope, workloads: &[WorkloadKey], alerts: &[&Alert]) -> Targets {
    let mut t = Targets::default();
    for w in workloads {
        t.pods.push(pod_target(s, w, alerts));
    }
    for a in alerts {
        if let Some(p) = &a.policy {
            t.policies.insert(p.clone());
        }
        t.techniques.extend(a.mitre_techniques.iter().cloned());
        let pod_ix = workloads
            .iter()
            .position(|w| w.container_id == a.event.ctx.container_id && w.node == a.event.ctx.node);
        match &a.event.event.body {
            Body::Exec(e) if suspicious_exec(a) => {
                if let (Some(ix), Some(path)) = (pod_ix, e.filename.to_str()) {
                    let b = BinaryTarget {
                        path: path.to_string(),
                        sha256: a.event.ctx.proc.exe_sha256.clone(),
                        pod: ix,
                    };
                    if !t.binaries.contains(&b) {
                        t.binaries.push(b);
                    }
                }
            }
            Body::Connect(c) => {
                let d = match c.addr {
                    std::net::IpAddr::V4(ip) => format!("{ip}:{}", c.port),
                    std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", c.port),
                };
                if !t.destinations.contains(&d) {
                    t.destinations.push(d);
                }
            }
            _ => {}
        }
    }
    t
}

/// An exec that dropped or ran something that did not come with the image: upper-layer
/// (drift), memfd, IoC match, or a malicious-binary rule.
pub(crate) fn suspicious_exec(a: &Alert) -> bool {
    match &a.event.event.body {
        Body::Exec(e) => {
            e.exe_upper_layer
                || e.exe_memfd
                || e.prevented
                || a.event.ctx.proc.exe_ioc.is_some()
                || a.policy.as_deref() == Some("Malicious Binary Detection")
        }
        _ => false,
    }
}

/// Incidents ordered for display: most severe first, then earliest (a long tail of
/// low-severity noise must not push the attack out of the detailed sections).
pub(crate) fn most_severe_first(mut v: Vec<&Incident>) -> Vec<&Incident> {
    v.sort_by(|a, b| (a.severity, a.start_ns, &a.id).cmp(&(b.severity, b.start_ns, &b.id)));
    v
}

/// A number with its noun, e.g. "1 alert" / "3 alerts" ("3件のアラート" in Japanese).
pub(crate) fn count_of(lang: Lang, n: usize, en_one: &str, en_many: &str, ja: &str) -> String {
    match lang {
        Lang::En if n == 1 => format!("1 {en_one}"),
        Lang::En => format!("{n} {en_many}"),
        Lang::Ja => format!("{n}{ja}"),
    }
}
