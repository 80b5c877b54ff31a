//! Mission step 5: the MITRE ATT&CK tactics and techniques the alerts carry, each tied
//! to the alerts that show it; names and descriptions from MITRE's data.

use std::collections::BTreeSet;

use saker_incident::Incident;

use super::{incident_alert_ids, workload_names, Built, FactSheet, Scope};
use crate::intent::Intent;
use crate::lang::{tr, Lang};
use crate::render::{fmt_time, Row, Section};

/// One technique across the focused incidents.
pub(super) struct TechniqueFacts {
    pub id: String,
    pub tactics: Vec<String>,
    pub alert_ids: Vec<String>,
    pub workloads: Vec<String>,
    pub first_ns: i64,
}

/// Techniques (first seen first) of `incs`.
pub(super) fn techniques(incs: &[&Incident]) -> Vec<TechniqueFacts> {
    let mut out: Vec<TechniqueFacts> = Vec::new();
    for i in incs {
        for t in &i.techniques {
            let wl = workload_names(std::iter::once(&i.workload));
            match out.iter_mut().find(|x| x.id == t.id) {
                Some(x) => {
                    x.alert_ids.extend(t.alert_ids.iter().cloned());
                    for ta in &t.tactics {
                        if !x.tactics.contains(ta) {
                            x.tactics.push(ta.clone());
                        }
                    }
                    for w in wl {
                        if !x.workloads.contains(&w) {
                            x.workloads.push(w);
                        }
                    }
                    x.first_ns = x.first_ns.min(t.first_seen_ns);
                }
                None => out.push(TechniqueFacts {
                    id: t.id.clone(),
                    tactics: t.tactics.clone(),
                    alert_ids: t.alert_ids.clone(),
                    workloads: wl,
                    first_ns: t.first_seen_ns,
                }),
            }
        }
    }
    for t in &mut out {
        t.alert_ids.sort();
        t.alert_ids.dedup();
    }
    out.sort_by(|a, b| (a.first_ns, &a.id).cmp(&(b.first_ns, &b.id)));
    out
}

pub(super) fn build(s: &Scope) -> Built {
    let lang = s.lang;
    let incs = s.focused_incidents();
    if incs.is_empty() {
        return s.nothing(Intent::Mitre);
    }
    let techs = techniques(&incs);
    let kb = s.kb;
    let mut sections = Vec::new();
    sections.push(Section::table(
        tr(lang, "MITRE ATT&CK techniques", "MITRE ATT&CK 技術"),
        vec![
            tr(lang, "Tactic", "戦術").into(),
            tr(lang, "Technique", "技術").into(),
            tr(lang, "Name", "名称").into(),
            tr(lang, "Alerts", "件数").into(),
            tr(lang, "Workloads", "ワークロード").into(),
            tr(lang, "First seen", "初検知").into(),
        ],
        techs
            .iter()
            .map(|t| Row {
                cells: vec![
                    t.tactics
                        .iter()
                        .map(|x| kb.tactic_label(x))
                        .collect::<Vec<_>>()
                        .join(", "),
                    t.id.clone(),
                    kb.technique_name(&t.id).unwrap_or("-").to_string(),
                    t.alert_ids.len().to_string(),
                    t.workloads.join(", "),
                    fmt_time(t.first_ns),
                ],
                alert_ids: t.alert_ids.clone(),
            })
            .collect(),
    ));

    // Tactics in ATT&CK matrix order.
    let mut tactic_ids: Vec<String> = techs
        .iter()
        .flat_map(|t| t.tactics.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    tactic_ids.sort_by_key(|t| (kb.tactic_order(t), t.clone()));
    sections.push(Section::table(
        tr(lang, "Tactics", "戦術"),
        vec![
            tr(lang, "Tactic", "戦術").into(),
            tr(lang, "Name", "名称").into(),
            tr(lang, "Techniques", "技術").into(),
            tr(lang, "Alerts", "件数").into(),
        ],
        tactic_ids
            .iter()
            .map(|ta| {
                let ts: Vec<&TechniqueFacts> =
                    techs.iter().filter(|t| t.tactics.contains(ta)).collect();
                let mut ids: Vec<String> = ts
                    .iter()
                    .flat_map(|t| t.alert_ids.iter().cloned())
                    .collect();
                ids.sort();
                ids.dedup();
                Row {
                    cells: vec![
                        ta.clone(),
                        kb.tactic_name(ta).unwrap_or("-").to_string(),
                        ts.iter()
                            .map(|t| t.id.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                        ids.len().to_string(),
                    ],
                    alert_ids: ids,
                }
            })
            .collect(),
    ));
    let descriptions: Vec<String> = techs
        .iter()
        .filter_map(|t| {
            kb.technique(&t.id)
                .map(|k| format!("{} {}: {}", k.id, k.name, k.description))
        })
        .collect();
    if !descriptions.is_empty() {
        sections.push(Section::list(
            tr(
                lang,
                "What the techniques mean (MITRE ATT&CK)",
                "各技術の意味（MITRE ATT&CK、英語原文）",
            ),
            descriptions,
            false,
        ));
    }

    let ids = incident_alert_ids(&incs);
    let lines = vec![
        format!(
            "techniques: {}",
            techs
                .iter()
                .map(|t| kb.technique_name(&t.id).unwrap_or(&t.id).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "tactics: {}",
            tactic_ids
                .iter()
                .map(|t| kb.tactic_name(t).unwrap_or(t).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    let labels: Vec<String> = techs.iter().map(|t| kb.technique_label(&t.id)).collect();
    let tactic_names: Vec<String> = tactic_ids.iter().map(|t| kb.tactic_label(t)).collect();
    let fallback = match lang {
        Lang::En => format!(
            "The alerts show {} techniques across {} tactics: {}. Tactics: {}.",
            techs.len(),
            tactic_ids.len(),
            labels.join(", "),
            tactic_names.join(", ")
        ),
        Lang::Ja => format!(
            "アラートから{}つの戦術にわたる{}個の技術が確認されました: {}。戦術: {}。",
            tactic_ids.len(),
            techs.len(),
            labels.join("、"),
            tactic_names.join("、")
        ),
    };
    Built {
        sections,
        filters: s.filters_for(&ids, "the incidents"),
        incident_ids: incs.iter().map(|i| i.id.clone()).collect(),
        alert_ids: ids,
        facts: FactSheet { lines, fallback },
        notes: vec![kb.attribution_line()],
        focus: s.focus(&incs),
    }
}
