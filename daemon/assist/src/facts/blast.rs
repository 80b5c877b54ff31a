//! Mission step 8: the blast radius — every workload tied to the incidents in scope by a
//! shared suspicious binary, root-cause command line or rule, within the blast window.
//! Looks beyond the context filter: a namespace filter must not hide that the same
//! miner also ran elsewhere on the node.

use std::collections::BTreeMap;

use saker_event::Alert;
use saker_incident::{correlate, CorrelateConfig, Incident, Indicator, WorkloadKey};

use super::{Built, FactSheet, Scope};
use crate::error::AssistError;
use crate::intent::Intent;
use crate::lang::{tr, Lang};
use crate::render::{cmdline, esc_str, opt, workload_short, Row, Section};

/// The blast radius of the focused incidents.
pub(super) struct Blast {
    /// Affected workloads, sorted; with the indicators tying each to the anchors.
    pub workloads: Vec<(WorkloadKey, bool, Vec<Indicator>)>,
    /// Every incident involved (anchors and related).
    pub incidents: Vec<Incident>,
    /// Alerts read to compute it (node-wide, around the anchors).
    pub alerts: Vec<Alert>,
}

/// Computes the blast radius of `anchors` over the node's alerts around them.
pub(super) fn blast_radius(s: &Scope, anchors: &[&Incident]) -> Result<Blast, AssistError> {
    let cfg = CorrelateConfig::default();
    let (all_alerts, all_incidents): (Vec<Alert>, Vec<Incident>) = if s.context.is_none() {
        (s.alerts.to_vec(), s.incidents.to_vec())
    } else {
        let w = cfg.blast.window_ns;
        let from = anchors
            .iter()
            .map(|i| i.start_ns)
            .min()
            .unwrap_or(0)
            .saturating_sub(w);
        let to = anchors
            .iter()
            .map(|i| i.end_ns)
            .max()
            .unwrap_or(0)
            .saturating_add(w);
        let f = format!("evt.time >= {} and evt.time <= {}", from.max(0), to.max(0));
        let mut alerts = s.ev.alerts(Some(&f), s.max_alerts)?;
        alerts.sort_by(|a, b| (a.time_ns, &a.id).cmp(&(b.time_ns, &b.id)));
        let incs = correlate(&alerts, &cfg);
        (alerts, incs)
    };
    // The node-wide incidents holding the anchors' alerts.
    let node_anchors: Vec<&Incident> = all_incidents
        .iter()
        .filter(|i| {
            anchors
                .iter()
                .any(|a| a.alert_ids.iter().any(|id| i.alert_ids.contains(id)))
        })
        .collect();
    let mut by_identity: BTreeMap<WorkloadKey, (bool, Vec<Indicator>)> = BTreeMap::new();
    for a in &node_anchors {
        for aw in &a.affected_workloads {
            let e = by_identity
                .entry((*aw.workload).clone())
                .or_insert((false, Vec::new()));
            e.0 |= aw.anchor;
            for &pos in &aw.shared {
                if let Some(ind) = a.indicators.get(pos) {
                    if !e.1.contains(ind) {
                        e.1.push(ind.clone());
                    }
                }
            }
        }
    }
    // Incidents behind each affected workload: the anchors, and those of the other
    // workloads that share one of the anchors' indicators.
    let anchor_inds: Vec<&Indicator> = node_anchors
        .iter()
        .flat_map(|a| a.indicators.iter())
        .collect();
    let incidents: Vec<Incident> = all_incidents
        .iter()
        .filter(|i| {
            node_anchors.iter().any(|a| a.id == i.id)
                || (by_identity.contains_key(&i.workload)
                    && i.indicators.iter().any(|x| anchor_inds.contains(&x)))
        })
        .cloned()
        .collect();
    let mut workloads: Vec<(WorkloadKey, bool, Vec<Indicator>)> = by_identity
        .into_iter()
        .map(|(w, (anchor, mut inds))| {
            inds.sort();
            (w, anchor, inds)
        })
        .collect();
    workloads.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Blast {
        workloads,
        incidents,
        alerts: all_alerts,
    })
}

pub(super) fn indicator_text(lang: Lang, i: &Indicator) -> String {
    match i {
        Indicator::BinaryHash(h) => format!(
            "{} sha256 {}",
            tr(lang, "binary", "バイナリ"),
            esc_str(h.get(..12).unwrap_or(h))
        ),
        Indicator::RootCommand(args) => {
            format!(
                "{} `{}`",
                tr(lang, "root command", "起点コマンド"),
                cmdline(args)
            )
        }
        Indicator::Rule(r) => format!("{} {}", tr(lang, "rule", "ルール"), esc_str(r)),
    }
}

pub(super) fn build(s: &Scope) -> Result<Built, AssistError> {
    let lang = s.lang;
    let anchors = s.focused_incidents();
    if anchors.is_empty() {
        return Ok(s.nothing(Intent::BlastRadius));
    }
    let b = blast_radius(s, &anchors)?;
    let n = b.workloads.len();
    let mut ids: Vec<String> = b
        .incidents
        .iter()
        .flat_map(|i| i.alert_ids.iter().cloned())
        .collect();
    ids.sort();
    ids.dedup();

    let mut by_ns: BTreeMap<String, usize> = BTreeMap::new();
    for (w, _, _) in &b.workloads {
        *by_ns.entry(opt(&w.namespace)).or_default() += 1;
    }
    let rows: Vec<Row> = b
        .workloads
        .iter()
        .enumerate()
        .map(|(k, (w, anchor, inds))| {
            let linked = if *anchor && inds.is_empty() {
                tr(lang, "in scope", "対象範囲").to_string()
            } else {
                // Rules are the weakest link: name the specific indicators first.
                let mut v: Vec<String> = inds
                    .iter()
                    .take(3)
                    .map(|i| indicator_text(lang, i))
                    .collect();
                if inds.len() > 3 {
                    v.push(format!("+{}", inds.len() - 3));
                }
                v.join("; ")
            };
            let wl_alerts: Vec<String> = b
                .incidents
                .iter()
                .filter(|i| i.workload.identity() == w.identity())
                .flat_map(|i| i.alert_ids.iter().cloned())
                .collect();
            Row {
                cells: vec![
                    (k + 1).to_string(),
                    esc_str(&w.cluster),
                    opt(&w.namespace),
                    opt(&w.workload),
                    opt(&w.pod),
                    opt(&w.container),
                    opt(&w.image),
                    esc_str(&w.node),
                    linked,
                    wl_alerts.len().to_string(),
                ],
                alert_ids: wl_alerts,
            }
        })
        .collect();
    let sections = vec![
        Section::table(
            tr(lang, "Blast radius", "影響範囲"),
            vec![
                tr(lang, "Namespace", "名前空間").into(),
                tr(lang, "Affected workloads", "影響を受けたワークロード").into(),
            ],
            by_ns
                .iter()
                .map(|(ns, c)| Row {
                    cells: vec![ns.clone(), c.to_string()],
                    alert_ids: Vec::new(),
                })
                .chain(std::iter::once(Row {
                    cells: vec![tr(lang, "Total", "合計").into(), n.to_string()],
                    alert_ids: Vec::new(),
                }))
                .collect(),
        )
        .with_alerts(ids.clone()),
        Section::table(
            tr(lang, "Affected workloads", "影響を受けたワークロード"),
            vec![
                "#".into(),
                tr(lang, "Cluster", "クラスタ").into(),
                tr(lang, "Namespace", "名前空間").into(),
                tr(lang, "Workload", "ワークロード").into(),
                tr(lang, "Pod", "ポッド").into(),
                tr(lang, "Container", "コンテナ").into(),
                tr(lang, "Image", "イメージ").into(),
                tr(lang, "Node", "ノード").into(),
                tr(lang, "Linked by", "関連の根拠").into(),
                tr(lang, "Alerts", "件数").into(),
            ],
            rows,
        ),
    ];
    let mut kinds: Vec<&str> = Vec::new();
    for (_, _, inds) in &b.workloads {
        for i in inds {
            let k = match i {
                Indicator::BinaryHash(_) => "the same binary hash",
                Indicator::RootCommand(_) => "the same root command line",
                Indicator::Rule(_) => "the same rules",
            };
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    let names: Vec<String> = b
        .workloads
        .iter()
        .map(|(w, _, _)| super::short_name(w))
        .collect();
    let ns_list: Vec<String> = by_ns.iter().map(|(ns, c)| format!("{ns} ({c})")).collect();
    let mut lines = vec![
        format!("{n} workloads affected: {}", super::and_list(&names, 5)),
        format!("namespaces: {}", ns_list.join(", ")),
    ];
    if !kinds.is_empty() {
        lines.push(format!("linked by {}", kinds.join(" and ")));
    }
    let list: Vec<String> = b
        .workloads
        .iter()
        .map(|(w, _, _)| workload_short(w))
        .collect();
    let fallback = match lang {
        Lang::En => {
            let mut t = format!(
                "{} affected: {}.",
                super::count_of(lang, n, "workload was", "workloads were", ""),
                list.join(", ")
            );
            if !kinds.is_empty() {
                t.push_str(&format!(" They are linked by {}.", kinds.join(" and ")));
            }
            t
        }
        Lang::Ja => {
            let ja: Vec<&str> = kinds
                .iter()
                .map(|k| match *k {
                    "the same binary hash" => "同じバイナリのハッシュ",
                    "the same root command line" => "同じ起点コマンドライン",
                    _ => "同じルール",
                })
                .collect();
            let mut t = format!("影響を受けたワークロードは{n}個です: {}。", list.join("、"));
            if !ja.is_empty() {
                t.push_str(&format!("{}で関連付けられています。", ja.join("と")));
            }
            t
        }
    };
    // Follow-ups ("how do I fix this?") start again from the anchors in scope, and
    // recompute the radius from them.
    let focus = s.focus(&anchors);
    let filters = {
        let mut f = Vec::new();
        if let Some(x) = crate::filter::alert_ids(&ids) {
            if ids.len() <= crate::filter::MAX_IDS_IN_FILTER {
                let times: Vec<i64> = b
                    .alerts
                    .iter()
                    .filter(|a| ids.contains(&a.id))
                    .map(|a| a.time_ns)
                    .collect();
                f.push(crate::filter::SuggestedFilter {
                    filter: x,
                    description: format!("the {} alerts of the affected workloads", ids.len()),
                    since_ns: times.iter().min().copied().unwrap_or(0),
                    until_ns: times.iter().max().map(|t| t + 1).unwrap_or(0),
                });
            }
        }
        f
    };
    Ok(Built {
        sections,
        alert_ids: ids,
        incident_ids: b.incidents.iter().map(|i| i.id.clone()).collect(),
        filters,
        facts: FactSheet { lines, fallback },
        notes: Vec::new(),
        focus,
    })
}
