//! Mission step 7: the process tree of each incident, every step aligned to its MITRE
//! tactic and technique.

use saker_incident::{Action, Incident, PathNode, Step};

use super::root_cause::sock;
use super::{incident_alert_ids, q, Built, FactSheet, Scope};
use crate::intent::Intent;
use crate::knowledge::Knowledge;
use crate::lang::{tr, Lang};
use crate::render::{cmdline, esc, fmt_clock, workload_short, Row, Section, TreeNode};

/// Incidents drawn as trees at most; the rest are listed by id in a note.
const MAX_TREES: usize = 3;

/// What a step did, in a few words.
pub(super) fn action_text(lang: Lang, s: &Step) -> String {
    let blocked = if s.prevented {
        tr(lang, " [blocked]", " [ブロック]")
    } else {
        ""
    };
    let what = match &s.action {
        Action::Exec { filename, args, .. } => {
            if args.is_empty() {
                format!("exec {}", esc(filename))
            } else {
                format!("exec {}", cmdline(args))
            }
        }
        Action::File { op, path, mode, .. } => match op {
            saker_event::event::FileKind::Chmod => format!("chmod {:o} {}", mode, esc(path)),
            saker_event::event::FileKind::Open => format!("open {}", esc(path)),
            saker_event::event::FileKind::MemfdCreate => format!("memfd_create {}", esc(path)),
            saker_event::event::FileKind::Unlink => format!("unlink {}", esc(path)),
        },
        Action::Connect { addr, port, .. } => format!("connect {}", sock(addr, *port)),
        Action::Fork => "fork".into(),
        Action::Exit { code, signal } => match (code, signal) {
            (_, Some(sig)) => format!("exit (signal {sig})"),
            (Some(c), _) => format!("exit ({c})"),
            _ => "exit".into(),
        },
    };
    format!("{what}{blocked}")
}

fn node_label(n: &PathNode) -> String {
    if n.cmdline.is_empty() {
        esc(&n.exe)
    } else {
        cmdline(&n.cmdline)
    }
}

pub(super) fn tree(lang: Lang, inc: &Incident) -> Vec<TreeNode> {
    inc.attack_path
        .nodes
        .iter()
        .map(|n| {
            let mut detail = format!("pid {}", n.pid);
            if !n.rules.is_empty() {
                detail.push_str(" · ");
                detail.push_str(
                    &n.rules
                        .iter()
                        .map(|r| crate::render::esc_str(r))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
            if let Some(t) = n.steps.first() {
                detail.push_str(" · ");
                detail.push_str(&fmt_clock(t.time_ns));
            }
            if n.prevented {
                detail.push_str(tr(lang, " · blocked", " · ブロック"));
            }
            TreeNode {
                id: n.pid.to_string(),
                parent_id: n.parent.map(|p| p.to_string()).unwrap_or_default(),
                label: node_label(n),
                detail,
                tactics: n.tactics.clone(),
                techniques: n.techniques.clone(),
                alert_ids: n.alert_ids.clone(),
                time_ns: n.first_seen_ns,
            }
        })
        .collect()
}

/// The steps of an incident in time order, each with its MITRE alignment.
pub(super) fn steps_table(lang: Lang, kb: &Knowledge, inc: &Incident) -> Vec<Row> {
    let mut steps: Vec<(&PathNode, &Step)> = inc
        .attack_path
        .nodes
        .iter()
        .flat_map(|n| n.steps.iter().map(move |s| (n, s)))
        .collect();
    steps.sort_by(|a, b| (a.1.time_ns, &a.1.alert_id).cmp(&(b.1.time_ns, &b.1.alert_id)));
    // Several alerts on one action (drift + miner + stratum) make one step.
    let mut rows: Vec<Row> = Vec::new();
    let mut last_key: Option<(u32, u64)> = None;
    for (n, s) in steps {
        let key = (n.pid, s.event_seq);
        let tactics: Vec<String> = s.tactics.iter().map(|t| kb.tactic_label(t)).collect();
        let techniques: Vec<String> = s.techniques.iter().map(|t| kb.technique_label(t)).collect();
        if last_key == Some(key) {
            if let Some(r) = rows.last_mut() {
                merge_cell(&mut r.cells[4], &tactics);
                merge_cell(&mut r.cells[5], &techniques);
                r.alert_ids.push(s.alert_id.clone());
                continue;
            }
        }
        last_key = Some(key);
        rows.push(Row {
            cells: vec![
                (rows.len() + 1).to_string(),
                fmt_clock(s.time_ns),
                format!("{} ({})", esc(&n.name), n.pid),
                action_text(lang, s),
                tactics.join(", "),
                techniques.join(", "),
            ],
            alert_ids: vec![s.alert_id.clone()],
        });
    }
    rows
}

fn merge_cell(cell: &mut String, items: &[String]) {
    for it in items {
        if !cell.split(", ").any(|c| c == it) {
            if !cell.is_empty() {
                cell.push_str(", ");
            }
            cell.push_str(it);
        }
    }
}

pub(super) fn build(s: &Scope) -> Built {
    let lang = s.lang;
    let incs = super::most_severe_first(s.focused_incidents());
    if incs.is_empty() {
        return s.nothing(Intent::AttackPath);
    }
    let mut sections = Vec::new();
    for inc in incs.iter().take(MAX_TREES) {
        sections.push(Section::tree(
            format!(
                "{} — {}",
                tr(lang, "Attack path", "攻撃パス"),
                workload_short(&inc.workload)
            ),
            tree(lang, inc),
        ));
    }
    let first = incs[0];
    let rows = steps_table(lang, s.kb, first);
    sections.push(Section::table(
        format!(
            "{} — {}",
            tr(lang, "Steps and MITRE ATT&CK", "手順とMITRE ATT&CK"),
            workload_short(&first.workload)
        ),
        vec![
            "#".into(),
            tr(lang, "Time", "時刻").into(),
            tr(lang, "Process", "プロセス").into(),
            tr(lang, "Action", "動作").into(),
            tr(lang, "Tactic", "戦術").into(),
            tr(lang, "Technique", "技術").into(),
        ],
        rows.clone(),
    ));
    let mut notes = Vec::new();
    if incs.len() > MAX_TREES {
        notes.push(format!(
            "{} more incidents are not drawn: {}",
            incs.len() - MAX_TREES,
            incs[MAX_TREES..]
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // The model gets the first incident's steps in few words: who did what.
    let mut lines: Vec<String> = Vec::new();
    let mut seen_exec = false;
    for n in &first.attack_path.nodes {
        for st in n.steps.iter().take(2) {
            let what = match &st.action {
                Action::Exec { args, filename, .. } if !seen_exec => {
                    seen_exec = true;
                    let c = if args.is_empty() {
                        esc(filename)
                    } else {
                        cmdline(args)
                    };
                    format!("{} ran", q(&c))
                }
                Action::Exec { .. } => format!("{} ran", q(&esc(&n.name))),
                Action::File { path, .. } => {
                    format!("{} changed {}", q(&esc(&n.name)), q(&esc(path)))
                }
                Action::Connect { addr, port, .. } => {
                    format!("{} connected to {}", q(&esc(&n.name)), sock(addr, *port))
                }
                _ => continue,
            };
            let tech = st
                .techniques
                .first()
                .and_then(|t| s.kb.technique_name(t))
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            let line = format!("{what}{tech}");
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    lines.truncate(5);
    if incs.len() > 1 {
        lines.push(format!(
            "the same path was seen in {} incidents",
            incs.len()
        ));
    }
    let steps: Vec<String> = rows.iter().map(|r| super::code(&r.cells[3])).collect();
    let fallback = match lang {
        Lang::En => format!(
            "In {} the attack took {} steps: {}.",
            workload_short(&first.workload),
            rows.len(),
            steps.join("; then ")
        ),
        Lang::Ja => format!(
            "{}では攻撃は{}つの手順で進みました: {}。",
            workload_short(&first.workload),
            rows.len(),
            steps.join("、次に ")
        ),
    };
    let ids = incident_alert_ids(&incs);
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
