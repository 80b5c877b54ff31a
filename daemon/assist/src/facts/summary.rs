//! Mission step 2: the alerts grouped by detection policy, with counts, severities and
//! workloads; which drifted or malicious binaries were blocked and which ran.

use std::collections::BTreeMap;

use saker_event::{Alert, Body, Severity};

use super::{count_of, q, suspicious_exec, Built, FactSheet, Scope};
use crate::intent::Intent;
use crate::lang::{tr, Lang};
use crate::render::{self, esc, esc_str, fmt_time, Row, Section};

struct PolicyGroup {
    policy: String,
    alert_ids: Vec<String>,
    severities: BTreeMap<Severity, usize>,
    workloads: Vec<String>,
    rules: Vec<String>,
}

struct BinaryOutcome {
    path: String,
    blocked: usize,
    ran: usize,
    workloads: Vec<String>,
    alert_ids: Vec<String>,
}

struct WorkloadRow {
    name: String,
    pod: String,
    image: String,
    alert_ids: Vec<String>,
    worst: Severity,
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

fn workload_of(a: &Alert) -> String {
    let ctx = &a.event.ctx;
    match &ctx.container {
        Some(c) => format!(
            "{}/{}",
            esc_str(c.namespace.as_deref().unwrap_or("-")),
            esc_str(
                c.workload
                    .as_deref()
                    .or(c.pod_name.as_deref())
                    .or(c.name.as_deref())
                    .unwrap_or(&c.id)
            )
        ),
        None => match &ctx.container_id {
            Some(id) => format!("container:{}", esc_str(id.get(..12).unwrap_or(id))),
            None => format!("host:{}", esc_str(&ctx.node)),
        },
    }
}

fn severities_text(m: &BTreeMap<Severity, usize>) -> String {
    m.iter()
        .map(|(s, n)| format!("{} {n}", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn build(s: &Scope) -> Built {
    let lang = s.lang;
    let alerts = s.focused_alerts();
    if alerts.is_empty() {
        return s.nothing(Intent::Summarize);
    }
    let none = tr(lang, "(no policy)", "（ポリシーなし）");
    let mut groups: Vec<PolicyGroup> = Vec::new();
    let mut binaries: Vec<BinaryOutcome> = Vec::new();
    let mut workloads: Vec<WorkloadRow> = Vec::new();
    for a in &alerts {
        let policy = a.policy.clone().unwrap_or_else(|| none.to_string());
        let wl = workload_of(a);
        let g = match groups.iter_mut().position(|g| g.policy == policy) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(PolicyGroup {
                    policy: policy.clone(),
                    alert_ids: Vec::new(),
                    severities: BTreeMap::new(),
                    workloads: Vec::new(),
                    rules: Vec::new(),
                });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        g.alert_ids.push(a.id.clone());
        *g.severities.entry(a.severity).or_default() += 1;
        push_unique(&mut g.workloads, wl.clone());
        push_unique(&mut g.rules, a.rule.clone());

        if suspicious_exec(a) {
            if let Body::Exec(e) = &a.event.event.body {
                let path = esc(&e.filename);
                let b = match binaries.iter_mut().position(|b| b.path == path) {
                    Some(i) => &mut binaries[i],
                    None => {
                        binaries.push(BinaryOutcome {
                            path: path.clone(),
                            blocked: 0,
                            ran: 0,
                            workloads: Vec::new(),
                            alert_ids: Vec::new(),
                        });
                        let last = binaries.len() - 1;
                        &mut binaries[last]
                    }
                };
                // One exec raises several alerts (drift, miner, stratum): count execs
                // by event, not by alert.
                let first_of_event = !alerts.iter().any(|o| {
                    o.event.seq == a.event.seq
                        && o.event.ctx.node == a.event.ctx.node
                        && b.alert_ids.contains(&o.id)
                });
                if first_of_event {
                    if a.prevented || e.prevented {
                        b.blocked += 1;
                    } else {
                        b.ran += 1;
                    }
                }
                b.alert_ids.push(a.id.clone());
                push_unique(&mut b.workloads, wl.clone());
            }
        }

        let c = a.event.ctx.container.as_ref();
        match workloads.iter_mut().find(|w| w.name == wl) {
            Some(w) => {
                w.alert_ids.push(a.id.clone());
                w.worst = w.worst.min(a.severity);
            }
            None => workloads.push(WorkloadRow {
                name: wl.clone(),
                pod: c
                    .and_then(|c| c.pod_name.as_deref())
                    .map(esc_str)
                    .unwrap_or_else(|| "-".into()),
                image: c
                    .and_then(|c| c.image.as_deref())
                    .map(esc_str)
                    .unwrap_or_else(|| "-".into()),
                alert_ids: vec![a.id.clone()],
                worst: a.severity,
            }),
        }
    }
    // Most alerts first; ties by name, so the order is stable.
    groups.sort_by(|a, b| {
        b.alert_ids
            .len()
            .cmp(&a.alert_ids.len())
            .then(a.policy.cmp(&b.policy))
    });

    let incidents = s.focused_incidents();
    let worst = alerts
        .iter()
        .map(|a| a.severity)
        .min()
        .unwrap_or(Severity::Informational);
    let first = alerts.iter().map(|a| a.time_ns).min().unwrap_or(0);
    let last = alerts.iter().map(|a| a.time_ns).max().unwrap_or(0);
    let blocked: usize = alerts.iter().filter(|a| a.prevented).count();
    let ids: Vec<String> = render::union_ids(std::iter::once(
        alerts
            .iter()
            .map(|a| a.id.clone())
            .collect::<Vec<_>>()
            .as_slice(),
    ));

    let mut sections = Vec::new();
    let mut overview = vec![
        row(tr(lang, "Alerts", "アラート数"), alerts.len().to_string()),
        row(
            tr(lang, "Incidents", "インシデント数"),
            incidents.len().to_string(),
        ),
        row(
            tr(lang, "Workloads", "ワークロード数"),
            workloads.len().to_string(),
        ),
        row(
            tr(lang, "Highest severity", "最高重大度"),
            worst.as_str().to_string(),
        ),
        row(
            tr(lang, "Time range", "期間"),
            format!("{} – {}", fmt_time(first), fmt_time(last)),
        ),
        row(
            tr(lang, "Blocked alerts", "ブロックされたアラート"),
            blocked.to_string(),
        ),
    ];
    if let Some(c) = s.context {
        overview.push(row(
            tr(lang, "Context filter", "コンテキストフィルタ"),
            c.to_string(),
        ));
    }
    sections.push(
        Section::table(
            tr(lang, "Overview", "概要"),
            vec![
                tr(lang, "Item", "項目").into(),
                tr(lang, "Value", "値").into(),
            ],
            overview,
        )
        .with_alerts(ids.clone()),
    );
    sections.push(Section::table(
        tr(lang, "Alerts by policy", "ポリシー別アラート"),
        vec![
            tr(lang, "Policy", "ポリシー").into(),
            tr(lang, "Alerts", "件数").into(),
            tr(lang, "Severities", "重大度").into(),
            tr(lang, "Workloads", "ワークロード").into(),
            tr(lang, "Rules", "ルール").into(),
        ],
        groups
            .iter()
            .map(|g| Row {
                cells: vec![
                    esc_str(&g.policy),
                    g.alert_ids.len().to_string(),
                    severities_text(&g.severities),
                    g.workloads.join(", "),
                    g.rules
                        .iter()
                        .map(|r| esc_str(r))
                        .collect::<Vec<_>>()
                        .join("; "),
                ],
                alert_ids: g.alert_ids.clone(),
            })
            .collect(),
    ));
    if !binaries.is_empty() {
        sections.push(Section::table(
            tr(
                lang,
                "Drifted and malicious binaries",
                "ドリフト／悪意のあるバイナリ",
            ),
            vec![
                tr(lang, "Binary", "バイナリ").into(),
                tr(lang, "Outcome", "結果").into(),
                tr(lang, "Workloads", "ワークロード").into(),
                tr(lang, "Alerts", "件数").into(),
            ],
            binaries
                .iter()
                .map(|b| Row {
                    cells: vec![
                        b.path.clone(),
                        outcome(lang, b),
                        b.workloads.join(", "),
                        b.alert_ids.len().to_string(),
                    ],
                    alert_ids: b.alert_ids.clone(),
                })
                .collect(),
        ));
    }
    sections.push(Section::table(
        tr(lang, "Workloads involved", "関係するワークロード"),
        vec![
            tr(lang, "Workload", "ワークロード").into(),
            tr(lang, "Pod", "ポッド").into(),
            tr(lang, "Image", "イメージ").into(),
            tr(lang, "Alerts", "件数").into(),
            tr(lang, "Highest severity", "最高重大度").into(),
        ],
        workloads
            .iter()
            .map(|w| Row {
                cells: vec![
                    w.name.clone(),
                    w.pod.clone(),
                    w.image.clone(),
                    w.alert_ids.len().to_string(),
                    w.worst.as_str().to_string(),
                ],
                alert_ids: w.alert_ids.clone(),
            })
            .collect(),
    ));

    // Fact sheet: few tokens (the prompt is processed on every question).
    let by_policy: Vec<String> = groups
        .iter()
        .map(|g| format!("{} {}", esc_str(&g.policy), g.alert_ids.len()))
        .collect();
    let mut lines = vec![
        format!(
            "{} alerts in {} workloads; highest severity {}",
            alerts.len(),
            workloads.len(),
            worst.as_str()
        ),
        format!("by policy: {}", by_policy.join(", ")),
    ];
    for b in binaries.iter().take(2) {
        lines.push(match b.blocked {
            0 => format!("{} ran {} times and was never blocked", q(&b.path), b.ran),
            k => format!(
                "{} was blocked {k} times and ran {} times",
                q(&b.path),
                b.ran
            ),
        });
    }

    let fallback = narrative(lang, &alerts.len(), &workloads, &groups, worst, &binaries);
    let mut notes = Vec::new();
    if s.truncated {
        notes.push(match s.total {
            Some(t) => format!(
                "Only the {} most recent of {t} alerts were read.",
                s.alerts.len()
            ),
            None => format!("Only the {} most recent alerts were read.", s.alerts.len()),
        });
    }
    Built {
        sections,
        filters: s.filters_for(&ids, "this summary"),
        incident_ids: incidents.iter().map(|i| i.id.clone()).collect(),
        alert_ids: ids,
        facts: FactSheet { lines, fallback },
        notes,
        focus: s.focus(&incidents),
    }
}

fn row(k: &str, v: String) -> Row {
    Row {
        cells: vec![k.to_string(), v],
        alert_ids: Vec::new(),
    }
}

fn outcome(lang: Lang, b: &BinaryOutcome) -> String {
    match (b.blocked, b.ran) {
        (0, r) => format!("{} ×{r}", tr(lang, "ran", "実行")),
        (k, 0) => format!("{} ×{k}", tr(lang, "blocked", "ブロック")),
        (k, r) => format!(
            "{} ×{k}, {} ×{r}",
            tr(lang, "blocked", "ブロック"),
            tr(lang, "ran", "実行")
        ),
    }
}

fn narrative(
    lang: Lang,
    n: &usize,
    workloads: &[WorkloadRow],
    groups: &[PolicyGroup],
    worst: Severity,
    binaries: &[BinaryOutcome],
) -> String {
    let parts: Vec<String> = groups
        .iter()
        .map(|g| format!("{} {}", esc_str(&g.policy), g.alert_ids.len()))
        .collect();
    let mut out = match lang {
        Lang::En => format!(
            "{} in {}: {}. The highest severity is {}.",
            count_of(lang, *n, "alert", "alerts", "件のアラート"),
            count_of(
                lang,
                workloads.len(),
                "workload",
                "workloads",
                "つのワークロード"
            ),
            parts.join(", "),
            worst.as_str()
        ),
        Lang::Ja => format!(
            "{}で{}が検知されました（{}）。最高重大度は{}です。",
            count_of(lang, workloads.len(), "", "", "つのワークロード"),
            count_of(lang, *n, "", "", "件のアラート"),
            parts.join("、"),
            worst.as_str()
        ),
    };
    for b in binaries.iter().take(2) {
        let w = b.workloads.len();
        if lang == Lang::En {
            out.push(' ');
        }
        out.push_str(&match (lang, b.blocked, b.ran) {
            (Lang::En, 0, _) => format!(
                "{} ran in {} and was never blocked.",
                super::code(&b.path),
                count_of(lang, w, "workload", "workloads", "")
            ),
            (Lang::En, k, 0) => format!(
                "{} was blocked {k} times before it ran.",
                super::code(&b.path)
            ),
            (Lang::En, k, r) => format!(
                "{} was blocked {k} times and ran {r} times.",
                super::code(&b.path)
            ),
            (Lang::Ja, 0, _) => format!(
                "{}は{}つのワークロードで実行され、ブロックされませんでした。",
                super::code(&b.path),
                w
            ),
            (Lang::Ja, k, 0) => format!(
                "{}は実行前に{k}回ブロックされました。",
                super::code(&b.path)
            ),
            (Lang::Ja, k, r) => format!(
                "{}は{k}回ブロックされ、{r}回実行されました。",
                super::code(&b.path)
            ),
        });
    }
    out
}
