//! Mission step 4: the ancestor that started the chain (the root cause of each incident:
//! its process, command line, and the parent outside the workload), and what it started.

use saker_incident::{Action, Boundary, BoundaryReason, Incident};

use super::{count_of, incident_alert_ids, q, Built, FactSheet, Scope};
use crate::intent::Intent;
use crate::lang::{tr, Lang};
use crate::render::{cmdline, esc, fmt_time, workload_short, Row, Section};

/// The chain below the root: its direct children's actions, in order (one line each).
pub(super) fn chain(inc: &Incident) -> Vec<String> {
    let mut out = Vec::new();
    for n in &inc.attack_path.nodes {
        let what = n.steps.iter().find_map(|s| match &s.action {
            Action::Exec { .. } => None,
            Action::File { path, .. } => Some(format!("{} {}", file_verb(s), esc(path))),
            Action::Connect { addr, port, .. } => Some(format!("connect {}", sock(addr, *port))),
            _ => None,
        });
        let cmd = cmdline(&n.cmdline);
        // `chmod +x /tmp/x` needs no "(chmod /tmp/x)": say only what the command line
        // does not show.
        // A connection is the kernel's observation, not the command line's claim: kept.
        let what = what.filter(|w| {
            w.starts_with("connect ")
                || !w.split_once(' ').is_some_and(|(_, obj)| cmd.contains(obj))
        });
        let line = match what {
            Some(w) if !n.cmdline.is_empty() => format!("{cmd} ({w})"),
            Some(w) => format!("{} ({w})", esc(&n.exe)),
            None if !n.cmdline.is_empty() => cmdline(&n.cmdline),
            None => esc(&n.exe),
        };
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// A chain step for a narrative: the command line quoted, the observed action not
/// (`cmd (connect ip:port)` → `` `cmd` (connect ip:port) ``).
fn step_code(step: &str) -> String {
    match step.rsplit_once(" (") {
        Some((cmd, rest)) if rest.ends_with(')') && !rest.contains('`') => {
            format!("{} ({rest}", super::code(cmd))
        }
        _ => super::code(step),
    }
}

pub(super) fn sock(addr: &std::net::IpAddr, port: u16) -> String {
    match addr {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn file_verb(s: &saker_incident::Step) -> &'static str {
    match &s.action {
        Action::File { op, .. } => match op {
            saker_event::event::FileKind::Open => "open",
            saker_event::event::FileKind::Chmod => "chmod",
            saker_event::event::FileKind::MemfdCreate => "memfd_create",
            saker_event::event::FileKind::Unlink => "unlink",
        },
        _ => "",
    }
}

pub(super) fn boundary_text(lang: Lang, b: &Boundary) -> String {
    match b {
        Boundary::Parent {
            pid, name, reason, ..
        } => {
            let why = match reason {
                BoundaryReason::Plumbing => tr(lang, "container runtime", "コンテナランタイム"),
                BoundaryReason::InitPid => tr(lang, "init", "init"),
                BoundaryReason::OtherScope => {
                    tr(lang, "outside this workload", "このワークロード外")
                }
            };
            format!("{} (pid {pid}, {why})", esc(name))
        }
        Boundary::AncestryEnded => {
            tr(lang, "unknown (ancestry ended)", "不明（祖先情報の終端）").into()
        }
        Boundary::Cycle => tr(lang, "unknown (pid reuse)", "不明（PID再利用）").into(),
    }
}

pub(super) fn build(s: &Scope) -> Built {
    let lang = s.lang;
    let incs = super::most_severe_first(s.focused_incidents());
    if incs.is_empty() {
        return s.nothing(Intent::RootCause);
    }
    let rows: Vec<Row> = incs
        .iter()
        .map(|i| {
            let rc = &i.root_cause;
            Row {
                cells: vec![
                    workload_short(&i.workload),
                    rc.pid.to_string(),
                    esc(&rc.name),
                    cmdline(&rc.cmdline),
                    boundary_text(lang, &rc.boundary),
                    fmt_time(rc.first_seen_ns),
                    i.alert_ids.len().to_string(),
                ],
                alert_ids: i.alert_ids.clone(),
            }
        })
        .collect();
    let mut sections = vec![Section::table(
        tr(lang, "Root cause", "根本原因"),
        vec![
            tr(lang, "Workload", "ワークロード").into(),
            "PID".into(),
            tr(lang, "Process", "プロセス").into(),
            tr(lang, "Command line", "コマンドライン").into(),
            tr(lang, "Parent (outside)", "親プロセス（外部）").into(),
            tr(lang, "First seen", "初検知").into(),
            tr(lang, "Alerts", "件数").into(),
        ],
        rows,
    )];
    let first = incs[0];
    let steps = chain(first);
    sections.push(
        Section::list(
            format!(
                "{} — {}",
                tr(lang, "What it started", "起点から始まった処理"),
                workload_short(&first.workload)
            ),
            steps.clone(),
            true,
        )
        .with_alerts(first.alert_ids.clone()),
    );

    // Incidents whose root cause has the same command line (the same script elsewhere).
    let rc_cmd = cmdline(&first.root_cause.cmdline);
    let same: Vec<&&Incident> = incs
        .iter()
        .filter(|i| cmdline(&i.root_cause.cmdline) == rc_cmd)
        .collect();
    let ids = incident_alert_ids(&incs);
    let kids: Vec<String> = first
        .attack_path
        .nodes
        .iter()
        .skip(1)
        .map(|n| q(&esc(&n.name)))
        .collect();
    let parent = match &first.root_cause.boundary {
        Boundary::Parent { name, .. } => esc(name),
        _ => "unknown".into(),
    };
    let mut lines = vec![
        format!(
            "root cause: {} (pid {}) in {}",
            q(&rc_cmd),
            first.root_cause.pid,
            super::short_name(&first.workload)
        ),
        format!("its parent {} is outside the container", q(&parent)),
    ];
    if !kids.is_empty() {
        lines.push(format!("it started {}", super::and_list(&kids, 3)));
    }
    if same.len() > 1 {
        lines.push(format!("the same script started {} incidents", same.len()));
    }
    let fallback = match lang {
        Lang::En => {
            let mut t = format!(
                "The chain was started by `{rc_cmd}` (pid {}) in {}; its parent, {}, is outside the workload.",
                first.root_cause.pid,
                workload_short(&first.workload),
                boundary_text(lang, &first.root_cause.boundary)
            );
            if steps.len() > 1 {
                let ran: Vec<String> = steps[1..].iter().map(|x| step_code(x)).collect();
                t.push_str(&format!(" It then ran {}.", ran.join(", then ")));
            }
            if same.len() > 1 {
                t.push_str(&format!(
                    " The same command line started the chain in {}.",
                    count_of(lang, same.len(), "incident", "incidents", "")
                ));
            }
            t
        }
        Lang::Ja => {
            let mut t = format!(
                "{}で `{rc_cmd}`（PID {}）が一連の処理を開始しました。親プロセス {} はワークロードの外部です。",
                workload_short(&first.workload),
                first.root_cause.pid,
                boundary_text(lang, &first.root_cause.boundary)
            );
            if steps.len() > 1 {
                t.push_str(&format!(
                    "その後 {} が実行されました。",
                    steps[1..]
                        .iter()
                        .map(|x| step_code(x))
                        .collect::<Vec<_>>()
                        .join("、")
                ));
            }
            if same.len() > 1 {
                t.push_str(&format!(
                    "同じコマンドラインが{}件のインシデントの起点になっています。",
                    same.len()
                ));
            }
            t
        }
    };
    Built {
        sections,
        filters: s.filters_for(&ids, "the incidents"),
        incident_ids: incs.iter().map(|i| i.id.clone()).collect(),
        alert_ids: ids,
        facts: FactSheet { lines, fallback },
        notes: Vec::new(),
        focus: s.focus(&incs),
    }
}
