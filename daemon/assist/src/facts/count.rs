//! Counting and listing alerts, and the capability list given instead of a guess when a
//! question matches no intent.

use std::collections::BTreeMap;

use saker_event::Severity;

use super::{count_of, Built, FactSheet, Scope};
use crate::intent::Intent;
use crate::lang::{tr, Lang};
use crate::render::{cmdline, esc_str, fmt_time, Row, Section};

/// Alerts listed at most.
const MAX_LISTED: usize = 20;

pub(super) fn build_count(s: &Scope) -> Built {
    let lang = s.lang;
    let alerts = s.focused_alerts();
    let n = alerts.len();
    let mut by_sev: BTreeMap<Severity, Vec<String>> = BTreeMap::new();
    let mut by_policy: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in &alerts {
        by_sev.entry(a.severity).or_default().push(a.id.clone());
        by_policy
            .entry(a.policy.clone().unwrap_or_else(|| "-".into()))
            .or_default()
            .push(a.id.clone());
    }
    let ids: Vec<String> = {
        let mut v: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
        v.sort();
        v
    };
    let mut rows = vec![Row {
        cells: vec![tr(lang, "Total", "合計").into(), n.to_string()],
        alert_ids: Vec::new(),
    }];
    rows.extend(by_sev.iter().map(|(sev, v)| Row {
        cells: vec![sev.as_str().to_string(), v.len().to_string()],
        alert_ids: v.clone(),
    }));
    rows.extend(by_policy.iter().map(|(p, v)| Row {
        cells: vec![esc_str(p), v.len().to_string()],
        alert_ids: v.clone(),
    }));
    let mut notes = Vec::new();
    let exact = !s.truncated;
    if !exact {
        notes.push(match s.total {
            Some(t) if s.entities.is_empty() => {
                format!("The store holds {t} alerts in this scope; {n} were read.")
            }
            _ => format!("At least {n} alerts: the read limit was reached."),
        });
    }
    let sections = vec![Section::table(
        tr(lang, "Alert count", "アラート件数"),
        vec![
            tr(lang, "Group", "区分").into(),
            tr(lang, "Alerts", "件数").into(),
        ],
        rows,
    )];
    let lines = vec![
        format!("alerts in scope: {n}"),
        format!(
            "by severity: {}",
            by_sev
                .iter()
                .map(|(k, v)| format!("{} {}", k.as_str(), v.len()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    let fallback = match lang {
        Lang::En => format!(
            "{} match this scope.",
            count_of(lang, n, "alert", "alerts", "")
        ),
        Lang::Ja => format!("この範囲に該当するアラートは{n}件です。"),
    };
    let incs = s.focused_incidents();
    Built {
        sections,
        filters: s.filters_for(&ids, "the counted alerts"),
        alert_ids: ids,
        incident_ids: incs.iter().map(|i| i.id.clone()).collect(),
        facts: FactSheet { lines, fallback },
        notes,
        focus: s.focus(&incs),
    }
}

pub(super) fn build_list(s: &Scope) -> Built {
    let lang = s.lang;
    let mut alerts = s.focused_alerts();
    if alerts.is_empty() {
        return s.nothing(Intent::ListEvents);
    }
    // Newest first.
    alerts.sort_by(|a, b| (b.time_ns, &b.id).cmp(&(a.time_ns, &a.id)));
    let shown: Vec<_> = alerts.iter().take(MAX_LISTED).collect();
    let rows: Vec<Row> = shown
        .iter()
        .map(|a| {
            let c = a.event.ctx.container.as_ref();
            Row {
                cells: vec![
                    fmt_time(a.time_ns),
                    a.id.clone(),
                    esc_str(&a.rule),
                    a.severity.as_str().to_string(),
                    c.and_then(|c| c.namespace.as_deref())
                        .map(esc_str)
                        .unwrap_or_else(|| "-".into()),
                    c.and_then(|c| c.pod_name.as_deref())
                        .map(esc_str)
                        .unwrap_or_else(|| "-".into()),
                    cmdline(&a.event.ctx.proc.args),
                ],
                alert_ids: vec![a.id.clone()],
            }
        })
        .collect();
    let ids: Vec<String> = {
        let mut v: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
        v.sort();
        v
    };
    let shown_ids: Vec<String> = shown.iter().map(|a| a.id.clone()).collect();
    let sections = vec![Section::table(
        tr(lang, "Recent alerts", "最近のアラート"),
        vec![
            tr(lang, "Time", "時刻").into(),
            tr(lang, "Alert", "アラート").into(),
            tr(lang, "Rule", "ルール").into(),
            tr(lang, "Severity", "重大度").into(),
            tr(lang, "Namespace", "名前空間").into(),
            tr(lang, "Pod", "ポッド").into(),
            tr(lang, "Command line", "コマンドライン").into(),
        ],
        rows,
    )];
    let mut notes = Vec::new();
    if alerts.len() > MAX_LISTED {
        notes.push(format!(
            "The {MAX_LISTED} newest of {} alerts are listed; the suggested filter selects all of them.",
            alerts.len()
        ));
    }
    let newest = shown.first().map(|a| a.rule.clone()).unwrap_or_default();
    let lines = vec![
        format!("alerts: {}, newest first", alerts.len()),
        format!("newest rule: {}", super::q(&esc_str(&newest))),
    ];
    let fallback = match lang {
        Lang::En => format!(
            "{} match; the newest {} are listed.",
            count_of(lang, alerts.len(), "alert", "alerts", ""),
            shown_ids.len()
        ),
        Lang::Ja => format!(
            "{}件が該当し、新しい{}件を表示しています。",
            alerts.len(),
            shown_ids.len()
        ),
    };
    let incs = s.focused_incidents();
    Built {
        sections,
        filters: s.filters_for(&ids, "the listed alerts"),
        alert_ids: shown_ids,
        incident_ids: Vec::new(),
        facts: FactSheet { lines, fallback },
        notes,
        focus: s.focus(&incs),
    }
}

/// What the assistant can answer (for questions it could not route).
pub(super) fn build_capabilities(s: &Scope) -> Built {
    let lang = s.lang;
    let items: Vec<String> = Intent::ALL
        .iter()
        .map(|i| i.capability(lang).to_string())
        .collect();
    let text = match lang {
        Lang::En => format!(
            "I could not match this question to something I can answer from the evidence, so I will not guess. {} alerts are in scope. I can:",
            s.alerts.len()
        ),
        Lang::Ja => format!(
            "この質問は証拠から答えられる内容に対応付けられなかったため、推測はしません。対象範囲のアラートは{}件です。回答できる内容:",
            s.alerts.len()
        ),
    };
    Built {
        sections: vec![Section::list(
            tr(lang, "What I can answer", "回答できる質問"),
            items,
            false,
        )],
        facts: FactSheet {
            lines: Vec::new(),
            fallback: text,
        },
        focus: s.focus(&[]),
        ..Built::default()
    }
}
