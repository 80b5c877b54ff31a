//! Explaining one alert: what happened, why the rule fired, what it means (MITRE), which
//! incident it belongs to, and what to do.

use saker_event::{Alert, Body};
use saker_incident::{correlate, CorrelateConfig};

use super::attack_path::action_text;
use super::{q, targets, Built, FactSheet, Scope};
use crate::error::AssistError;
use crate::lang::{tr, Lang};
use crate::render::{cmdline, esc, esc_str, fmt_time, Row, Section};
use crate::session::Focus;

/// Alerts of the same node read around the explained one, to find its incident.
const CONTEXT_WINDOW_NS: i64 = 10 * 60 * 1_000_000_000;

fn field(k: &str, v: String) -> Row {
    Row {
        cells: vec![k.to_string(), v],
        alert_ids: Vec::new(),
    }
}

fn action(lang: Lang, a: &Alert) -> String {
    // The same wording as attack paths, from the raw event.
    let step = saker_incident::Step {
        alert_id: a.id.clone(),
        event_seq: a.event.seq,
        time_ns: a.time_ns,
        rule: a.rule.clone(),
        severity: a.severity,
        tactics: Vec::new(),
        techniques: Vec::new(),
        prevented: a.prevented,
        action: match &a.event.event.body {
            Body::Exec(e) => saker_incident::Action::Exec {
                filename: e.filename.clone(),
                args: e.args.clone(),
                upper_layer: e.exe_upper_layer,
                memfd: e.exe_memfd,
            },
            Body::File(f) => saker_incident::Action::File {
                op: f.op,
                path: f.path.clone(),
                mode: f.mode,
                ret: f.ret,
            },
            Body::Connect(c) => saker_incident::Action::Connect {
                addr: c.addr,
                port: c.port,
                ret: c.ret,
            },
            Body::Fork => saker_incident::Action::Fork,
            Body::Exit(x) => saker_incident::Action::Exit {
                code: x.code,
                signal: x.signal,
            },
        },
    };
    action_text(lang, &step)
}

/// The answer for `alert`.
pub(crate) fn explain_alert(s: &Scope, alert: &Alert) -> Result<Built, AssistError> {
    let lang = s.lang;
    let kb = s.kb;
    let ctx = &alert.event.ctx;
    let c = ctx.container.as_ref();
    let workload = match c {
        Some(c) => format!(
            "{}/{}/{}/{}",
            esc_str(&ctx.cluster),
            c.namespace
                .as_deref()
                .map(esc_str)
                .unwrap_or_else(|| "-".into()),
            c.workload
                .as_deref()
                .map(esc_str)
                .unwrap_or_else(|| "-".into()),
            c.pod_name
                .as_deref()
                .map(esc_str)
                .unwrap_or_else(|| "-".into()),
        ),
        None => format!("{}/host:{}", esc_str(&ctx.cluster), esc_str(&ctx.node)),
    };
    let proc_cmd = cmdline(&ctx.proc.args);
    let parent = ctx
        .proc
        .ancestors
        .first()
        .map(|p| format!("{} ({}) {}", esc(&p.comm), p.pid, cmdline(&p.args)))
        .unwrap_or_else(|| "-".into());
    let act = action(lang, alert);
    let techs: Vec<String> = alert
        .mitre_techniques
        .iter()
        .map(|t| kb.technique_label(t))
        .collect();
    let tactics: Vec<String> = alert
        .mitre_tactics
        .iter()
        .map(|t| kb.tactic_label(t))
        .collect();
    let yes_no = |b: bool| {
        tr(
            lang,
            if b { "yes" } else { "no" },
            if b { "はい" } else { "いいえ" },
        )
        .to_string()
    };
    let mut rows = vec![
        field(tr(lang, "Alert", "アラート"), alert.id.clone()),
        field(tr(lang, "Time", "時刻"), fmt_time(alert.time_ns)),
        field(tr(lang, "Rule", "ルール"), esc_str(&alert.rule)),
        field(
            tr(lang, "Policy", "ポリシー"),
            alert
                .policy
                .as_deref()
                .map(esc_str)
                .unwrap_or_else(|| "-".into()),
        ),
        field(
            tr(lang, "Severity", "重大度"),
            alert.severity.as_str().into(),
        ),
        field(tr(lang, "Blocked", "ブロック"), yes_no(alert.prevented)),
        field(tr(lang, "Workload", "ワークロード"), workload.clone()),
        field(
            tr(lang, "Image", "イメージ"),
            c.and_then(|c| c.image.as_deref())
                .map(esc_str)
                .unwrap_or_else(|| "-".into()),
        ),
        field(tr(lang, "Node", "ノード"), esc_str(&ctx.node)),
        field(
            tr(lang, "Process", "プロセス"),
            format!(
                "{} ({})",
                esc(&alert.event.event.process.comm),
                alert.event.event.process.pid
            ),
        ),
        field(tr(lang, "Command line", "コマンドライン"), proc_cmd.clone()),
        field(tr(lang, "Executable", "実行ファイル"), esc(&ctx.proc.exe)),
    ];
    if let Some(h) = &ctx.proc.exe_sha256 {
        rows.push(field("SHA256", esc_str(h)));
    }
    rows.push(field(tr(lang, "Parent", "親プロセス"), parent));
    rows.push(field(tr(lang, "Action", "動作"), act.clone()));
    rows.push(field(
        tr(lang, "MITRE tactics", "MITRE 戦術"),
        tactics.join(", "),
    ));
    rows.push(field(
        tr(lang, "MITRE techniques", "MITRE 技術"),
        techs.join(", "),
    ));
    let mut sections = vec![Section::table(
        tr(lang, "Alert details", "アラートの詳細"),
        vec![
            tr(lang, "Field", "項目").into(),
            tr(lang, "Value", "値").into(),
        ],
        rows,
    )
    .with_alerts(vec![alert.id.clone()])];
    if !alert.output.is_empty() {
        sections.push(Section::text(
            tr(lang, "Why the rule fired", "ルールが発火した理由"),
            format!(
                "{}: `{}`",
                tr(lang, "Rule output", "ルール出力"),
                esc_str(&alert.output).replace('`', "'")
            ),
        ));
    }
    let meaning: Vec<String> = alert
        .mitre_techniques
        .iter()
        .filter_map(|t| {
            kb.technique(t)
                .map(|k| format!("{} {}: {}", k.id, k.name, k.description))
        })
        .collect();
    if !meaning.is_empty() {
        sections.push(Section::list(
            tr(
                lang,
                "What it means (MITRE ATT&CK)",
                "意味（MITRE ATT&CK、英語原文）",
            ),
            meaning,
            false,
        ));
    }

    // Its incident: the node's alerts around it, correlated.
    let from = alert.time_ns.saturating_sub(CONTEXT_WINDOW_NS).max(0);
    let to = alert.time_ns.saturating_add(CONTEXT_WINDOW_NS);
    let f = format!(
        "{} and evt.time >= {from} and evt.time <= {to}",
        crate::filter::field_in("node.name", std::slice::from_ref(&ctx.node)).unwrap_or_default()
    );
    let mut around = s.ev.alerts(Some(&f), s.max_alerts)?;
    if !around.iter().any(|a| a.id == alert.id) {
        around.push(alert.clone());
    }
    around.sort_by(|a, b| (a.time_ns, &a.id).cmp(&(b.time_ns, &b.id)));
    let incidents = correlate(&around, &CorrelateConfig::default());
    let inc = incidents.iter().find(|i| i.alert_ids.contains(&alert.id));
    let mut evidence = vec![alert.id.clone()];
    let mut lines = vec![
        format!(
            "rule {} ({}, {}) fired at {}",
            q(&esc_str(&alert.rule)),
            alert
                .policy
                .as_deref()
                .map(esc_str)
                .unwrap_or_else(|| "-".into()),
            alert.severity.as_str(),
            fmt_time(alert.time_ns)
        ),
        format!("process: {}", q(&proc_cmd)),
        format!("action: {}", q(&act)),
        format!("workload: {}", q(&workload)),
        format!(
            "techniques: {}",
            alert
                .mitre_techniques
                .iter()
                .map(|t| kb.technique_name(t).unwrap_or(t).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("blocked: {}", if alert.prevented { "yes" } else { "no" }),
    ];
    // What happened, in the fewest words: an exec is its command line; any other
    // action is the process doing it.
    let is_exec = matches!(alert.event.event.body, Body::Exec(_));
    let comm = esc(&alert.event.event.process.comm);
    let what = match (lang, is_exec) {
        (Lang::En, true) => format!("{} was executed", super::code(&proc_cmd)),
        (Lang::En, false) => format!("{} did {}", super::code(&comm), super::code(&act)),
        (Lang::Ja, true) => format!("{} が実行されました", super::code(&proc_cmd)),
        (Lang::Ja, false) => format!(
            "{} が {} を行いました",
            super::code(&comm),
            super::code(&act)
        ),
    };
    let mut fallback = match lang {
        Lang::En => format!(
            "Rule \"{}\" ({}) fired at {} in {}: {what}.",
            esc_str(&alert.rule),
            alert.severity.as_str(),
            fmt_time(alert.time_ns),
            workload,
        ),
        Lang::Ja => format!(
            "{} に {} でルール「{}」（{}）が発火しました: {what}。",
            fmt_time(alert.time_ns),
            workload,
            esc_str(&alert.rule),
            alert.severity.as_str(),
        ),
    };
    if !techs.is_empty() {
        fallback.push_str(&match lang {
            Lang::En => format!(" It maps to {}.", techs.join(", ")),
            Lang::Ja => format!("対応する技術は {} です。", techs.join("、")),
        });
    }
    let mut incident_ids = Vec::new();
    if let Some(i) = inc {
        incident_ids.push(i.id.clone());
        evidence = i.alert_ids.clone();
        evidence.sort();
        let rc = cmdline(&i.root_cause.cmdline);
        sections.push(Section::text(
            tr(lang, "Incident", "インシデント"),
            match lang {
                Lang::En => format!(
                    "Part of incident {} ({} alerts, {} – {}), started by `{}` (pid {}).",
                    i.id,
                    i.alert_ids.len(),
                    fmt_time(i.start_ns),
                    fmt_time(i.end_ns),
                    rc,
                    i.root_cause.pid
                ),
                Lang::Ja => format!(
                    "インシデント {} の一部です（{}件のアラート、{} – {}）。起点は `{}`（PID {}）です。",
                    i.id,
                    i.alert_ids.len(),
                    fmt_time(i.start_ns),
                    fmt_time(i.end_ns),
                    rc,
                    i.root_cause.pid
                ),
            },
        )
        .with_alerts(evidence.clone()));
        lines.push(format!(
            "part of an incident of {} alerts started by {}",
            i.alert_ids.len(),
            q(&rc)
        ));
        fallback.push_str(&match lang {
            Lang::En => format!(
                " It is one of {} alerts of an incident started by `{rc}`.",
                i.alert_ids.len()
            ),
            Lang::Ja => format!(
                "これは `{rc}` を起点とする{}件のアラートからなるインシデントの一部です。",
                i.alert_ids.len()
            ),
        });
        let refs: Vec<&Alert> = around
            .iter()
            .filter(|a| i.alert_ids.contains(&a.id))
            .collect();
        let t = targets(s, std::slice::from_ref(&i.workload), &refs);
        let steps = s.playbooks.remediation(&t, lang);
        if !steps.is_empty() {
            sections.push(Section::list(tr(lang, "What to do", "対応"), steps, true));
        }
    }
    let mut filters = Vec::new();
    if let Some(f) = crate::filter::alert_ids(std::slice::from_ref(&alert.id)) {
        filters.push(crate::filter::SuggestedFilter {
            filter: f,
            description: "this alert".into(),
            since_ns: 0,
            until_ns: 0,
        });
    }
    if evidence.len() > 1 && evidence.len() <= crate::filter::MAX_IDS_IN_FILTER {
        if let Some(f) = crate::filter::alert_ids(&evidence) {
            filters.push(crate::filter::SuggestedFilter {
                filter: f,
                description: format!("the {} alerts of its incident", evidence.len()),
                since_ns: 0,
                until_ns: 0,
            });
        }
    }
    Ok(Built {
        sections,
        alert_ids: evidence,
        incident_ids: incident_ids.clone(),
        filters,
        facts: FactSheet { lines, fallback },
        notes: vec![kb.attribution_line()],
        focus: Focus {
            entities: Vec::new(),
            incident_ids,
            alert_id: Some(alert.id.clone()),
        },
    })
}
