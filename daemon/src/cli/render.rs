//! Human-readable rendering of API messages: pure functions from messages to text. Every
//! string from the server goes through `escape` before it is placed in the output.

use std::fmt::Write;

use saker_proto::v1::{
    self, event::Body, feed_item::Item, indicator, step::Action, FeedItem, GetStatsResponse,
    Incident, IncidentSummary, NodeInfo, Workload,
};

use super::escape::{args, escape, raw};
use super::fanout::severity_name;
use super::table::{draw_tree, Table, TreeItem};
use super::timefmt::{fmt_ns, fmt_span};

/// `-` for an empty cell.
fn or_dash(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// `namespace/pod/container` of an event, `host` outside containers.
pub fn event_workload(e: &v1::Event) -> String {
    match &e.container {
        None => "host".into(),
        Some(c) => {
            let parts = [&c.namespace, &c.pod_name, &c.name];
            if parts.iter().all(|p| p.is_empty()) {
                let short: String = c.id.chars().take(12).collect();
                format!("container:{}", escape(&short))
            } else {
                parts
                    .iter()
                    .map(|p| {
                        if p.is_empty() {
                            "-".to_string()
                        } else {
                            escape(p)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            }
        }
    }
}

/// `cluster/namespace/workload/pod/container`, or `cluster/host:<node>`.
pub fn workload(w: &Workload) -> String {
    if w.container_id.is_empty() && w.pod.is_empty() && w.container.is_empty() {
        return format!("{}/host:{}", escape(&w.cluster), escape(&w.node));
    }
    [&w.cluster, &w.namespace, &w.workload, &w.pod, &w.container]
        .iter()
        .map(|p| {
            if p.is_empty() {
                "-".to_string()
            } else {
                escape(p)
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `name[pid] cmdline` of a process.
pub fn process(p: Option<&v1::Process>) -> String {
    let Some(p) = p else { return "-".into() };
    let cmd = if p.args.is_empty() {
        escape(&p.cmdline)
    } else {
        args(&p.args)
    };
    format!("{}[{}] {}", raw(p.name.as_ref()), p.pid, cmd)
        .trim_end()
        .to_string()
}

/// What an event did, in a few words.
pub fn event_action(e: &v1::Event) -> String {
    match &e.body {
        Some(Body::Exec(x)) => {
            let mut s = format!("exec {}", raw(x.filename.as_ref()));
            if x.prevented {
                s.push_str(" (blocked)");
            }
            s
        }
        Some(Body::Fork(_)) => "fork".into(),
        Some(Body::Exit(x)) => match (x.code, x.signal) {
            (Some(c), _) => format!("exit {c}"),
            (_, Some(s)) => format!("killed by signal {s}"),
            _ => "exit".into(),
        },
        Some(Body::File(f)) => {
            format!("{} {} = {}", escape(&e.r#type), raw(f.path.as_ref()), f.ret)
        }
        Some(Body::Connect(c)) => format!("connect {}:{} = {}", escape(&c.addr), c.port, c.ret),
        None => escape(&e.r#type),
    }
}

/// The event-feed table.
pub fn feed_table(items: &[(String, FeedItem)], show_node: bool) -> String {
    let mut head = vec!["time"];
    if show_node {
        head.push("node");
    }
    head.extend([
        "severity",
        "policy",
        "rule",
        "prevented",
        "workload",
        "process",
        "id",
    ]);
    let cols = head.len();
    let mut t = Table::new(&head)
        .max_width(cols - 5, 40) // rule
        .max_width(cols - 3, 48) // workload
        .max_width(cols - 2, 60); // process
    for (node, it) in items {
        let mut row = vec![fmt_ns(super::fanout::item_time(it))];
        if show_node {
            row.push(escape(node));
        }
        match &it.item {
            Some(Item::Alert(a)) => {
                let e = a.event.as_ref();
                row.extend([
                    severity_name(a.severity).to_string(),
                    or_dash(escape(&a.policy)),
                    escape(&a.rule),
                    if a.prevented {
                        "yes".into()
                    } else {
                        String::new()
                    },
                    e.map(event_workload).unwrap_or_else(|| "-".into()),
                    process(e.and_then(|e| e.process.as_ref())),
                    escape(&a.id),
                ]);
            }
            Some(Item::Event(e)) => row.extend([
                "-".into(),
                "-".into(),
                format!("({})", event_action(e)),
                String::new(),
                event_workload(e),
                process(e.process.as_ref()),
                format!("#{}", e.seq),
            ]),
            None => row.push("(empty item)".into()),
        }
        t.row(row);
    }
    t.render()
}

/// One line per item, for `events --follow`.
pub fn feed_line(node: Option<&str>, it: &FeedItem) -> String {
    let mut s = fmt_ns(super::fanout::item_time(it));
    if let Some(n) = node {
        let _ = write!(s, " [{}]", escape(n));
    }
    match &it.item {
        Some(Item::Alert(a)) => {
            let e = a.event.as_ref();
            let _ = write!(
                s,
                " {} {}{}: {} | {} | {} | {}",
                severity_name(a.severity),
                if a.policy.is_empty() {
                    String::new()
                } else {
                    format!("[{}] ", escape(&a.policy))
                },
                escape(&a.rule),
                escape(&a.output),
                e.map(event_workload).unwrap_or_else(|| "-".into()),
                if a.prevented { "prevented" } else { "allowed" },
                escape(&a.id),
            );
        }
        Some(Item::Event(e)) => {
            let _ = write!(
                s,
                " event {} | {} | {} | #{}",
                event_action(e),
                process(e.process.as_ref()),
                event_workload(e),
                e.seq
            );
        }
        None => s.push_str(" (empty item)"),
    }
    s
}

/// Column heading of a group-by dimension.
pub fn group_by_name(g: i32) -> &'static str {
    match v1::GroupBy::try_from(g) {
        Ok(v1::GroupBy::Policy) => "policy",
        Ok(v1::GroupBy::Rule) => "rule",
        Ok(v1::GroupBy::Severity) => "severity",
        Ok(v1::GroupBy::Namespace) => "namespace",
        Ok(v1::GroupBy::Workload) => "workload",
        Ok(v1::GroupBy::Node) => "node",
        Ok(v1::GroupBy::Technique) => "technique",
        _ => "key",
    }
}

/// The stats table with a totals line.
pub fn stats(r: &GetStatsResponse) -> String {
    let mut out = format!(
        "{} alerts ({} prevented), {} .. {}\n",
        r.total,
        r.prevented,
        fmt_ns(r.first_ns),
        fmt_ns(r.last_ns)
    );
    if r.groups.is_empty() {
        return out;
    }
    let mut head: Vec<&str> = r.group_by.iter().map(|g| group_by_name(*g)).collect();
    let nkeys = head.len();
    head.extend(["count", "prevented", "max severity", "first", "last"]);
    let mut t = Table::new(&head);
    for g in &r.groups {
        let mut row: Vec<String> = (0..nkeys)
            .map(|i| {
                g.key
                    .get(i)
                    .map(|k| escape(k))
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| "(none)".into())
            })
            .collect();
        row.extend([
            g.count.to_string(),
            g.prevented.to_string(),
            severity_name(g.max_severity).to_string(),
            fmt_ns(g.first_ns),
            fmt_ns(g.last_ns),
        ]);
        t.row(row);
    }
    out.push('\n');
    out.push_str(&t.render());
    if r.truncated {
        out.push_str("(more groups left out: raise --limit)\n");
    }
    out
}

/// The incident list.
pub fn incidents_table(items: &[(String, IncidentSummary)], show_node: bool) -> String {
    let mut head = vec!["id"];
    if show_node {
        head.push("node");
    }
    head.extend([
        "start",
        "duration",
        "severity",
        "alerts",
        "prevented",
        "workload",
        "root cause",
        "techniques",
    ]);
    let cols = head.len();
    let mut t = Table::new(&head)
        .max_width(cols - 3, 56)
        .max_width(cols - 2, 60)
        .max_width(cols - 1, 40);
    for (node, i) in items {
        let mut row = vec![escape(&i.id)];
        if show_node {
            row.push(escape(node));
        }
        let root = if i.root_cause_cmdline.is_empty() {
            raw(i.root_cause_name.as_ref())
        } else {
            escape(&i.root_cause_cmdline)
        };
        row.extend([
            fmt_ns(i.start_ns),
            fmt_span(i.end_ns - i.start_ns),
            severity_name(i.severity).to_string(),
            i.alert_count.to_string(),
            i.prevented_count.to_string(),
            i.workload
                .as_ref()
                .map(workload)
                .unwrap_or_else(|| "-".into()),
            or_dash(root),
            or_dash(
                i.techniques
                    .iter()
                    .map(|t| escape(t))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]);
        t.row(row);
    }
    t.render()
}

/// Comma-separated escaped list; `-` when empty.
fn list(v: &[String]) -> String {
    or_dash(v.iter().map(|s| escape(s)).collect::<Vec<_>>().join(", "))
}

/// An indicator in a few words.
fn indicator_text(i: &v1::Indicator) -> String {
    match &i.kind {
        Some(indicator::Kind::BinarySha256(h)) => format!("binary sha256 {}", escape(h)),
        Some(indicator::Kind::RootCommand(c)) => format!("root command '{}'", args(&c.args)),
        Some(indicator::Kind::Rule(r)) => format!("rule '{}'", escape(r)),
        None => "?".into(),
    }
}

/// One step of an attack path, in a few words.
fn step_text(s: &v1::Step) -> String {
    let what = match &s.action {
        Some(Action::Exec(x)) => {
            let mut w = format!("exec {}", args(&x.args));
            if x.upper_layer {
                w.push_str(" [drifted]");
            }
            if x.memfd {
                w.push_str(" [memfd]");
            }
            w
        }
        Some(Action::Fork(_)) => "fork".into(),
        Some(Action::Exit(x)) => match (x.code, x.signal) {
            (Some(c), _) => format!("exit {c}"),
            (_, Some(sig)) => format!("killed by signal {sig}"),
            _ => "exit".into(),
        },
        Some(Action::File(f)) => {
            let op = v1::FileOpKind::try_from(f.op)
                .map(|k| {
                    k.as_str_name()
                        .trim_start_matches("FILE_OP_KIND_")
                        .to_lowercase()
                })
                .unwrap_or_else(|_| "file".into());
            format!("{op} {}", raw(f.path.as_ref()))
        }
        Some(Action::Connect(c)) => format!("connect {}:{}", escape(&c.addr), c.port),
        None => "-".into(),
    };
    let mitre: Vec<String> = s
        .tactics
        .iter()
        .chain(&s.techniques)
        .map(|t| escape(t))
        .collect();
    format!(
        "{} {} {}{}{} ({})",
        fmt_ns(s.time_ns),
        escape(&s.rule),
        what,
        if mitre.is_empty() {
            String::new()
        } else {
            format!(" [{}]", mitre.join(" "))
        },
        if s.prevented { " BLOCKED" } else { "" },
        escape(&s.alert_id)
    )
}

/// One incident in full.
pub fn incident(node: &str, inc: &Incident) -> String {
    let mut o = String::new();
    let s = inc.summary.clone().unwrap_or_default();
    let _ = writeln!(
        o,
        "Incident {} ({}) on node {} [{}]",
        escape(&s.id),
        severity_name(s.severity),
        escape(&s.node),
        escape(node)
    );
    let _ = writeln!(
        o,
        "  time       {} .. {} ({})",
        fmt_ns(s.start_ns),
        fmt_ns(s.end_ns),
        fmt_span(s.end_ns - s.start_ns)
    );
    let _ = writeln!(
        o,
        "  workload   {}",
        s.workload
            .as_ref()
            .map(workload)
            .unwrap_or_else(|| "-".into())
    );
    if let Some(img) = s
        .workload
        .as_ref()
        .map(|w| &w.image)
        .filter(|i| !i.is_empty())
    {
        let _ = writeln!(o, "  image      {}", escape(img));
    }
    let _ = writeln!(o, "  policies   {}", list(&s.policies));
    let _ = writeln!(o, "  rules      {}", list(&s.rules));
    let _ = writeln!(
        o,
        "  alerts     {} ({} prevented)",
        s.alert_count, s.prevented_count
    );

    if let Some(rc) = &inc.root_cause {
        let _ = writeln!(o, "\nRoot cause");
        let _ = writeln!(
            o,
            "  process    {}[{}] (parent pid {})",
            raw(rc.name.as_ref()),
            rc.pid,
            rc.ppid
        );
        let _ = writeln!(o, "  command    {}", or_dash(args(&rc.cmdline)));
        let _ = writeln!(o, "  exe        {}", or_dash(raw(rc.exe.as_ref())));
        if !rc.exe_sha256.is_empty() {
            let _ = writeln!(o, "  sha256     {}", escape(&rc.exe_sha256));
        }
        let _ = writeln!(o, "  first seen {}", fmt_ns(rc.first_seen_ns));
        if let Some(b) = &rc.boundary {
            let above = match v1::BoundaryKind::try_from(b.kind) {
                Ok(v1::BoundaryKind::ParentPlumbing) => "container plumbing or service manager",
                Ok(v1::BoundaryKind::ParentInit) => "init",
                Ok(v1::BoundaryKind::ParentOtherScope) => "a process of another workload",
                Ok(v1::BoundaryKind::AncestryEnded) => "unknown (ancestry ended)",
                Ok(v1::BoundaryKind::Cycle) => "unknown (ancestry loops)",
                _ => "unknown",
            };
            if b.parent_pid != 0 {
                let _ = writeln!(
                    o,
                    "  started by {}[{}] {}: {}",
                    raw(b.parent_name.as_ref()),
                    b.parent_pid,
                    raw(b.parent_exe.as_ref()),
                    above
                );
            } else {
                let _ = writeln!(o, "  started by {above}");
            }
        }
        if !rc.alert_ids.is_empty() {
            let _ = writeln!(o, "  alerts     {}", list(&rc.alert_ids));
        }
    }

    if let Some(path) = inc.attack_path.as_ref().filter(|p| !p.nodes.is_empty()) {
        let _ = writeln!(o, "\nAttack path");
        let items: Vec<TreeItem> = path
            .nodes
            .iter()
            .map(|n| {
                let mitre: Vec<String> = n
                    .tactics
                    .iter()
                    .chain(&n.techniques)
                    .map(|t| escape(t))
                    .collect();
                let mut text = format!("{}[{}] {}", raw(n.name.as_ref()), n.pid, args(&n.cmdline));
                if !mitre.is_empty() {
                    let _ = write!(text, "  [{}]", mitre.join(" "));
                }
                if n.prevented {
                    text.push_str("  BLOCKED");
                }
                TreeItem {
                    id: n.pid.to_string(),
                    parent: n.parent_pid.map(|p| p.to_string()).unwrap_or_default(),
                    text,
                }
            })
            .collect();
        for line in draw_tree(&items) {
            let _ = writeln!(o, "  {line}");
        }
        let steps: Vec<&v1::Step> = path.nodes.iter().flat_map(|n| &n.steps).collect();
        if !steps.is_empty() {
            let mut steps = steps;
            steps.sort_by(|a, b| (a.time_ns, &a.alert_id).cmp(&(b.time_ns, &b.alert_id)));
            let _ = writeln!(o, "\nSteps");
            for st in steps {
                let _ = writeln!(o, "  {}", step_text(st));
            }
        }
    }

    if !inc.techniques.is_empty() || !inc.tactics.is_empty() {
        let _ = writeln!(o, "\nMITRE ATT&CK");
        let mut t = Table::new(&["id", "name", "tactics", "first seen", "alerts"]).max_width(4, 60);
        for tac in &inc.tactics {
            t.row(vec![
                escape(&tac.id),
                or_dash(escape(&tac.name)),
                "(tactic)".into(),
                fmt_ns(tac.first_seen_ns),
                list(&tac.alert_ids),
            ]);
        }
        for tech in &inc.techniques {
            t.row(vec![
                escape(&tech.id),
                or_dash(escape(&tech.name)),
                list(&tech.tactics),
                fmt_ns(tech.first_seen_ns),
                list(&tech.alert_ids),
            ]);
        }
        for line in t.render().lines() {
            let _ = writeln!(o, "  {line}");
        }
    }

    if !inc.affected_workloads.is_empty() {
        let _ = writeln!(o, "\nAffected workloads ({})", inc.affected_workloads.len());
        let mut t = Table::new(&[
            "",
            "cluster",
            "namespace",
            "workload",
            "pod",
            "container",
            "image",
            "node",
            "shared",
        ])
        .max_width(8, 60);
        for a in &inc.affected_workloads {
            let w = a.workload.clone().unwrap_or_default();
            t.row(vec![
                if a.anchor { "*".into() } else { String::new() },
                or_dash(escape(&w.cluster)),
                or_dash(escape(&w.namespace)),
                or_dash(escape(&w.workload)),
                or_dash(escape(&w.pod)),
                or_dash(escape(&w.container)),
                or_dash(escape(&w.image)),
                or_dash(escape(&w.node)),
                or_dash(
                    a.shared
                        .iter()
                        .map(indicator_text)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            ]);
        }
        for line in t.render().lines() {
            let _ = writeln!(o, "  {line}");
        }
    }

    let _ = writeln!(
        o,
        "\nAlerts ({}): {}",
        inc.alert_ids.len(),
        list(&inc.alert_ids)
    );
    if !inc.prevented_alert_ids.is_empty() {
        let _ = writeln!(o, "Prevented: {}", list(&inc.prevented_alert_ids));
    }
    if !inc.filter.is_empty() {
        let _ = writeln!(o, "Filter: {}", escape(&inc.filter));
    }
    o
}

/// The node's state.
pub fn node_info(label: &str, n: &NodeInfo) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Node {} (cluster {}) [{}]",
        escape(&n.node),
        or_dash(escape(&n.cluster)),
        escape(label)
    );
    let version = if n.git_commit.is_empty() {
        escape(&n.saker_version)
    } else {
        format!("{} ({})", escape(&n.saker_version), escape(&n.git_commit))
    };
    let _ = writeln!(o, "  saker      {version}");
    let _ = writeln!(
        o,
        "  kernel     {} {} {}",
        escape(&n.kernel_release),
        escape(&n.arch),
        escape(&n.kernel_version)
    );
    let _ = writeln!(
        o,
        "  started    {} (up {})",
        fmt_ns(n.start_ns),
        fmt_span(n.now_ns - n.start_ns)
    );
    let _ = writeln!(
        o,
        "  prevention {}",
        if n.prevention_enabled { "on" } else { "off" }
    );
    let _ = writeln!(
        o,
        "  events     {} received, {} alerts raised",
        n.events_received, n.alerts_raised
    );

    if !n.programs.is_empty() {
        let attached = n.programs.iter().filter(|p| p.attached).count();
        let _ = writeln!(
            o,
            "\nSensor programs ({attached}/{} attached)",
            n.programs.len()
        );
        let mut t = Table::new(&["program", "kind", "attach point", "state"]).max_width(3, 80);
        for p in &n.programs {
            let state = match (p.attached, p.is_optional) {
                (true, _) => "attached".to_string(),
                (false, true) => format!("not attached (optional): {}", escape(&p.error)),
                (false, false) => format!("NOT ATTACHED: {}", escape(&p.error)),
            };
            t.row(vec![
                escape(&p.name),
                escape(&p.kind),
                escape(&p.attach_point),
                state,
            ]);
        }
        for line in t.render().lines() {
            let _ = writeln!(o, "  {line}");
        }
    }

    if !n.drops.is_empty() {
        let total: u64 = n.drops.iter().map(|d| d.count).sum();
        let _ = writeln!(o, "\nDropped events ({total})");
        let mut t = Table::new(&["class", "kind", "count", "meaning"]).max_width(3, 70);
        for d in &n.drops {
            t.row(vec![
                escape(&d.class_name),
                or_dash(escape(&d.event_kind)),
                d.count.to_string(),
                escape(&d.description),
            ]);
        }
        for line in t.render().lines() {
            let _ = writeln!(o, "  {line}");
        }
    }

    if let Some(r) = &n.rules {
        let _ = writeln!(
            o,
            "\nRules: {} loaded, {} disabled, {} skipped, {} macros, {} lists (loaded {})",
            r.loaded,
            r.disabled,
            r.skipped.len(),
            r.macros,
            r.lists,
            fmt_ns(r.loaded_ns)
        );
        for f in &r.files {
            let _ = writeln!(o, "  file {}", escape(f));
        }
        if !r.skipped.is_empty() {
            let mut t = Table::new(&["skipped rule", "where", "reason"]).max_width(2, 90);
            for s in &r.skipped {
                let at = if s.line > 0 {
                    format!("{}:{}", escape(&s.file), s.line)
                } else {
                    escape(&s.file)
                };
                t.row(vec![escape(&s.rule), or_dash(at), escape(&s.reason)]);
            }
            for line in t.render().lines() {
                let _ = writeln!(o, "  {line}");
            }
        }
    }

    if let Some(m) = &n.model {
        let _ = writeln!(o, "\nModel");
        if m.loaded {
            let _ = writeln!(
                o,
                "  name       {} ({} {})",
                escape(&m.name),
                escape(&m.architecture),
                escape(&m.quantization)
            );
            let _ = writeln!(o, "  path       {}", escape(&m.path));
            let _ = writeln!(o, "  sha256     {}", escape(&m.sha256));
            let _ = writeln!(
                o,
                "  size       {} bytes, context {} tokens, {} threads",
                m.size_bytes, m.context_tokens, m.threads
            );
        } else if m.error.is_empty() {
            let _ = writeln!(o, "  none loaded (answers use templates only)");
        } else {
            let _ = writeln!(o, "  NOT LOADED: {}", escape(&m.error));
            if !m.path.is_empty() {
                let _ = writeln!(o, "  path       {}", escape(&m.path));
            }
        }
        if !m.embedding_model.is_empty() {
            let _ = writeln!(o, "  routing    {}", escape(&m.embedding_model));
        }
    }

    if let Some(s) = &n.store {
        let _ = writeln!(o, "\nStore {}", escape(&s.path));
        let _ = writeln!(o, "  size       {} bytes", s.size_bytes);
        let _ = writeln!(
            o,
            "  contents   {} alerts, {} events, {} incidents",
            s.alerts, s.events, s.incidents
        );
        let _ = writeln!(
            o,
            "  span       {} .. {}",
            fmt_ns(s.oldest_ns),
            fmt_ns(s.newest_ns)
        );
        let _ = writeln!(
            o,
            "  problems   {} dropped, {} write errors",
            s.dropped, s.write_errors
        );
        let _ = writeln!(
            o,
            "  retention  {} , {}",
            if s.retention_max_age_s == 0 {
                "no age limit".into()
            } else {
                format!(
                    "max age {}",
                    fmt_span(s.retention_max_age_s as i64 * 1_000_000_000)
                )
            },
            if s.retention_max_bytes == 0 {
                "no size limit".into()
            } else {
                format!("max {} bytes", s.retention_max_bytes)
            }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::RawString;

    fn rs(b: &[u8]) -> Option<RawString> {
        Some(RawString {
            raw: b.to_vec(),
            lossy: String::from_utf8_lossy(b).into_owned(),
        })
    }

    fn hostile_alert() -> FeedItem {
        FeedItem {
            item: Some(Item::Alert(v1::Alert {
                id: "n1-7-0".into(),
                time_ns: 1_764_152_553_000_000_000,
                rule: "Drift \u{1b}[2Jdetected".into(),
                policy: "Drift Detection".into(),
                severity: v1::Severity::Critical as i32,
                output: "bad\u{1b}]0;pwned\u{7}".into(),
                prevented: true,
                event: Some(v1::Event {
                    seq: 7,
                    process: Some(v1::Process {
                        pid: 42,
                        name: rs(b"easy\x1bminer"),
                        args: vec![rs(b"./easyminer").unwrap(), rs(b"-o\xff\n").unwrap()],
                        ..Default::default()
                    }),
                    container: Some(v1::Container {
                        namespace: "risk-10-aws-bedrock-java".into(),
                        pod_name: "java-7d9".into(),
                        name: "app".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn feed_table_escapes_everything() {
        let out = feed_table(&[("n1".into(), hostile_alert())], true);
        assert!(!out.contains('\u{1b}'), "{out}");
        assert!(
            out.contains("easy\\x1bminer[42] ./easyminer -o\\xff\\n"),
            "{out}"
        );
        assert!(out.contains("risk-10-aws-bedrock-java/java-7d9/app"));
        assert!(out.contains("CRITICAL"));
        assert!(out.contains("yes"));
        let line = feed_line(Some("n1"), &hostile_alert());
        assert!(!line.chars().any(super::super::escape::is_unsafe), "{line}");
        assert!(line.contains("bad\\x1b]0;pwned\\x07"), "{line}");
    }

    #[test]
    fn stats_render_keys_and_totals() {
        let r = GetStatsResponse {
            total: 3,
            prevented: 1,
            group_by: vec![v1::GroupBy::Policy as i32, v1::GroupBy::Namespace as i32],
            groups: vec![v1::StatsGroup {
                key: vec!["Drift Detection".into(), String::new()],
                count: 3,
                prevented: 1,
                max_severity: v1::Severity::Critical as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = stats(&r);
        assert!(out.starts_with("3 alerts (1 prevented)"), "{out}");
        assert!(out.contains("POLICY"));
        assert!(out.contains("NAMESPACE"));
        assert!(out.contains("Drift Detection  (none)"), "{out}");
    }

    #[test]
    fn incident_shows_tree_and_escapes() {
        let node = |pid, parent: Option<u32>, name: &[u8]| v1::PathNode {
            pid,
            parent_pid: parent,
            name: rs(name),
            cmdline: vec![rs(name).unwrap()],
            ..Default::default()
        };
        let inc = Incident {
            summary: Some(IncidentSummary {
                id: "inc-1".into(),
                ..Default::default()
            }),
            root_cause: Some(v1::RootCause {
                pid: 10,
                name: rs(b"sh"),
                cmdline: vec![
                    rs(b"sh").unwrap(),
                    rs(b"./malicious-bin-event-gen.sh").unwrap(),
                ],
                ..Default::default()
            }),
            attack_path: Some(v1::AttackPath {
                nodes: vec![
                    node(10, None, b"sh"),
                    node(11, Some(10), b"wget"),
                    node(12, Some(10), b"easy\x1b[1m"),
                ],
                roots: vec![10],
            }),
            ..Default::default()
        };
        let out = incident("local", &inc);
        assert!(
            out.contains("command    sh ./malicious-bin-event-gen.sh"),
            "{out}"
        );
        assert!(
            out.contains("  sh[10] sh\n  ├─ wget[11] wget\n  └─ easy\\x1b[1m[12] easy\\x1b[1m\n"),
            "{out}"
        );
        assert!(!out.contains('\u{1b}'));
    }
}
