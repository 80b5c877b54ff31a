//! Mission step 3: the investigation report — what ran where, when, from which parent,
//! what it connected to, and what it means (MITRE's descriptions of the techniques).

use saker_incident::{Action, Incident};

use super::attack_path::action_text;
use super::mitre::techniques;
use super::root_cause::{boundary_text, sock};
use super::{incident_alert_ids, q, Built, FactSheet, Scope};
use crate::intent::Intent;
use crate::lang::{tr, Lang};
use crate::render::{
    cmdline, esc, esc_str, fmt_clock, fmt_time, opt, workload_short, Row, Section,
};

/// Incidents given a full timeline; the rest are in the incidents table only.
const MAX_TIMELINES: usize = 3;

fn timeline(lang: Lang, inc: &Incident) -> Vec<Row> {
    let mut rows: Vec<(i64, String, Row)> = Vec::new();
    for n in &inc.attack_path.nodes {
        let parent = match n.parent.and_then(|p| inc.attack_path.node(p)) {
            Some(p) => format!("{} ({})", esc(&p.name), p.pid),
            None if n.pid == inc.root_cause.pid => boundary_text(lang, &inc.root_cause.boundary),
            None => n.ppid.to_string(),
        };
        for st in &n.steps {
            rows.push((
                st.time_ns,
                st.alert_id.clone(),
                Row {
                    cells: vec![
                        fmt_clock(st.time_ns),
                        format!("{} ({})", esc(&n.name), n.pid),
                        parent.clone(),
                        action_text(lang, st),
                        esc_str(&st.rule),
                        st.techniques.join(", "),
                    ],
                    alert_ids: vec![st.alert_id.clone()],
                },
            ));
        }
    }
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    rows.into_iter().map(|(_, _, r)| r).collect()
}

/// The first connection of the incidents: (time, incident id, process name, `ip:port`).
fn first_connection(incs: &[&Incident]) -> Option<(i64, String, String, String)> {
    let mut best: Option<(i64, String, String, String)> = None;
    for inc in incs {
        for n in &inc.attack_path.nodes {
            for st in &n.steps {
                if let Action::Connect { addr, port, .. } = &st.action {
                    if best.as_ref().is_none_or(|b| st.time_ns < b.0) {
                        best = Some((st.time_ns, inc.id.clone(), esc(&n.name), sock(addr, *port)));
                    }
                }
            }
        }
    }
    best
}

pub(super) fn build(s: &Scope) -> Built {
    let lang = s.lang;
    let incs = super::most_severe_first(s.focused_incidents());
    if incs.is_empty() {
        return s.nothing(Intent::Report);
    }
    let kb = s.kb;
    let mut sections = Vec::new();
    sections.push(Section::table(
        tr(lang, "Incidents", "インシデント"),
        vec![
            tr(lang, "Incident", "インシデント").into(),
            tr(lang, "Workload", "ワークロード").into(),
            tr(lang, "Pod", "ポッド").into(),
            tr(lang, "Image", "イメージ").into(),
            tr(lang, "Start", "開始").into(),
            tr(lang, "End", "終了").into(),
            tr(lang, "Severity", "重大度").into(),
            tr(lang, "Alerts", "件数").into(),
            tr(lang, "Root cause", "根本原因").into(),
        ],
        incs.iter()
            .map(|i| Row {
                cells: vec![
                    i.id.clone(),
                    workload_short(&i.workload),
                    opt(&i.workload.pod),
                    opt(&i.workload.image),
                    fmt_time(i.start_ns),
                    fmt_time(i.end_ns),
                    i.severity.as_str().to_string(),
                    i.alert_ids.len().to_string(),
                    cmdline(&i.root_cause.cmdline),
                ],
                alert_ids: i.alert_ids.clone(),
            })
            .collect(),
    ));
    for inc in incs.iter().take(MAX_TIMELINES) {
        sections.push(Section::table(
            format!(
                "{} — {} ({})",
                tr(lang, "Timeline", "タイムライン"),
                workload_short(&inc.workload),
                fmt_time(inc.start_ns)
            ),
            vec![
                tr(lang, "Time", "時刻").into(),
                tr(lang, "Process", "プロセス").into(),
                tr(lang, "Parent", "親プロセス").into(),
                tr(lang, "Action", "動作").into(),
                tr(lang, "Rule", "ルール").into(),
                "MITRE".into(),
            ],
            timeline(lang, inc),
        ));
    }
    // Connections, from the kernel's view of connect(): address and port are facts, not
    // what a command line claims.
    let mut conns: Vec<Row> = Vec::new();
    for inc in &incs {
        for n in &inc.attack_path.nodes {
            for st in &n.steps {
                if let Action::Connect { addr, port, ret } = &st.action {
                    conns.push(Row {
                        cells: vec![
                            workload_short(&inc.workload),
                            format!("{} ({})", esc(&n.name), n.pid),
                            sock(addr, *port),
                            if *ret == 0 || *ret == -115 {
                                tr(lang, "connected", "接続").to_string()
                            } else {
                                format!("{} ({ret})", tr(lang, "failed", "失敗"))
                            },
                            fmt_time(st.time_ns),
                        ],
                        alert_ids: vec![st.alert_id.clone()],
                    });
                }
            }
        }
    }
    if !conns.is_empty() {
        sections.push(Section::table(
            tr(lang, "Network connections", "ネットワーク接続"),
            vec![
                tr(lang, "Workload", "ワークロード").into(),
                tr(lang, "Process", "プロセス").into(),
                tr(lang, "Destination", "接続先").into(),
                tr(lang, "Result", "結果").into(),
                tr(lang, "Time", "時刻").into(),
            ],
            conns.clone(),
        ));
    }
    let techs = techniques(&incs);
    let meaning: Vec<String> = techs
        .iter()
        .map(|t| match kb.technique(&t.id) {
            Some(k) => format!(
                "{} {} ({}): {}",
                k.id,
                k.name,
                t.tactics
                    .iter()
                    .map(|x| kb.tactic_name(x).unwrap_or(x).to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                k.description
            ),
            None => t.id.clone(),
        })
        .collect();
    sections.push(Section::list(
        tr(
            lang,
            "What it means (MITRE ATT&CK)",
            "意味（MITRE ATT&CK、英語原文）",
        ),
        meaning,
        false,
    ));

    let first = incs[0];
    let prevented: usize = incs.iter().map(|i| i.prevented_alert_ids.len()).sum();
    let kids: Vec<String> = first
        .attack_path
        .nodes
        .iter()
        .skip(1)
        .map(|n| q(&esc(&n.name)))
        .collect();
    let mut lines = vec![
        format!(
            "{} incidents; the first in {}",
            incs.len(),
            super::short_name(&first.workload)
        ),
        format!(
            "{} started {}",
            q(&cmdline(&first.root_cause.cmdline)),
            super::and_list(&kids, 3)
        ),
    ];
    if let Some((_, inc, n, st)) = first_connection(&incs) {
        let _ = inc;
        lines.push(format!("{} connected to {st}", q(&n)));
    }
    lines.push(format!(
        "techniques: {}",
        techs
            .iter()
            .take(4)
            .map(|t| kb.technique_name(&t.id).unwrap_or(&t.id).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if prevented > 0 {
        lines.push(format!("{prevented} actions were blocked"));
    }

    let names: Vec<String> = techs.iter().map(|t| kb.technique_label(&t.id)).collect();
    let fallback = match lang {
        Lang::En => {
            let mut t = format!(
                "{} incident(s) from {} to {}. In {} (pod {}), `{}` started the chain",
                incs.len(),
                fmt_time(incs.iter().map(|i| i.start_ns).min().unwrap_or(0)),
                fmt_time(incs.iter().map(|i| i.end_ns).max().unwrap_or(0)),
                workload_short(&first.workload),
                opt(&first.workload.pod),
                cmdline(&first.root_cause.cmdline),
            );
            let kids: Vec<String> = first
                .attack_path
                .nodes
                .iter()
                .skip(1)
                .map(|n| format!("`{}`", cmdline(&n.cmdline)))
                .collect();
            if !kids.is_empty() {
                t.push_str(&format!(" and ran {}", kids.join(", ")));
            }
            t.push('.');
            if let Some(c) = conns.first() {
                t.push_str(&format!(
                    " {} connected to {}.",
                    super::code(&c.cells[1]),
                    c.cells[2]
                ));
            }
            t.push_str(&format!(" The techniques are {}.", names.join(", ")));
            if prevented == 0 {
                t.push_str(" Nothing was blocked.");
            }
            t
        }
        Lang::Ja => {
            let mut t = format!(
                "{}件のインシデント（{}〜{}）。{}（ポッド {}）で `{}` が一連の処理を開始しました。",
                incs.len(),
                fmt_time(incs.iter().map(|i| i.start_ns).min().unwrap_or(0)),
                fmt_time(incs.iter().map(|i| i.end_ns).max().unwrap_or(0)),
                workload_short(&first.workload),
                opt(&first.workload.pod),
                cmdline(&first.root_cause.cmdline),
            );
            if let Some(c) = conns.first() {
                t.push_str(&format!(
                    "{} は {} に接続しました。",
                    super::code(&c.cells[1]),
                    c.cells[2]
                ));
            }
            t.push_str(&format!("確認された技術: {}。", names.join("、")));
            if prevented == 0 {
                t.push_str("ブロックされた操作はありません。");
            }
            t
        }
    };
    let ids = incident_alert_ids(&incs);
    let mut notes = vec![kb.attribution_line()];
    if incs.len() > MAX_TIMELINES {
        notes.push(format!(
            "Timelines are shown for the first {MAX_TIMELINES} of {} incidents.",
            incs.len()
        ));
    }
    Built {
        sections,
        filters: s.filters_for(&ids, "the incidents"),
        incident_ids: incs.iter().map(|i| i.id.clone()).collect(),
        alert_ids: ids,
        facts: FactSheet { lines, fallback },
        notes,
        focus: s.focus(&incs),
    }
}
