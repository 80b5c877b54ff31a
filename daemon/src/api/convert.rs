//! saker's types → `saker.v1` messages. Pure functions, no I/O.
//!
//! Byte strings from workloads become `RawString` (exact bytes plus a lossy rendering);
//! nothing is escaped here (the API promises unescaped text; clients escape).

use saker_assist::knowledge::Knowledge;
use saker_event::{
    event::{Body, FileKind},
    Alert, Ancestor, BString, Enriched, Severity,
};
use saker_incident as inc;
use saker_proto::v1;

pub fn raw(b: &BString) -> v1::RawString {
    v1::RawString {
        raw: b.as_bytes().to_vec(),
        lossy: b.to_str_lossy().into_owned(),
    }
}

fn raws(v: &[BString]) -> Vec<v1::RawString> {
    v.iter().map(raw).collect()
}

/// Arguments' lossy text joined with single spaces.
pub fn display_args(v: &[BString]) -> String {
    v.iter()
        .map(|a| a.to_str_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn severity(s: Severity) -> v1::Severity {
    match s {
        Severity::Debug => v1::Severity::Debug,
        Severity::Informational => v1::Severity::Informational,
        Severity::Notice => v1::Severity::Notice,
        Severity::Warning => v1::Severity::Warning,
        Severity::Error => v1::Severity::Error,
        Severity::Critical => v1::Severity::Critical,
        Severity::Alert => v1::Severity::Alert,
        Severity::Emergency => v1::Severity::Emergency,
    }
}

/// A severity name as the store groups it (`CRITICAL`).
pub fn severity_name(s: &str) -> v1::Severity {
    Severity::parse(s).map_or(v1::Severity::Unspecified, severity)
}

fn file_kind(k: FileKind) -> v1::FileOpKind {
    match k {
        FileKind::Open => v1::FileOpKind::Open,
        FileKind::Chmod => v1::FileOpKind::Chmod,
        FileKind::MemfdCreate => v1::FileOpKind::MemfdCreate,
        FileKind::Unlink => v1::FileOpKind::Unlink,
    }
}

fn ancestor(a: &Ancestor) -> v1::Ancestor {
    v1::Ancestor {
        pid: a.pid,
        name: Some(raw(&a.comm)),
        exe: Some(raw(&a.exe)),
        args: raws(&a.args),
        cmdline: display_args(&a.args),
    }
}

fn body(b: &Body) -> v1::event::Body {
    match b {
        Body::Exec(x) => v1::event::Body::Exec(v1::Exec {
            filename: Some(raw(&x.filename)),
            args: raws(&x.args),
            args_truncated: x.args_truncated,
            filename_truncated: x.filename_truncated,
            exe_dev: x.exe_dev,
            exe_ino: x.exe_ino,
            exe_overlay: x.exe_overlay,
            exe_upper_layer: x.exe_upper_layer,
            exe_memfd: x.exe_memfd,
            prevented: x.prevented,
        }),
        Body::Fork => v1::event::Body::Fork(v1::Fork {}),
        Body::Exit(x) => v1::event::Body::Exit(v1::Exit {
            raw: x.raw,
            code: x.code.map(u32::from),
            signal: x.signal.map(u32::from),
        }),
        Body::File(f) => v1::event::Body::File(v1::FileOp {
            op: file_kind(f.op) as i32,
            path: Some(raw(&f.path)),
            path_truncated: f.path_truncated,
            dfd: f.dfd,
            flags: f.flags,
            mode: f.mode,
            ret: f.ret,
        }),
        Body::Connect(c) => v1::event::Body::Connect(v1::Connect {
            fd: c.fd,
            addr: c.addr.to_string(),
            port: u32::from(c.port),
            ret: c.ret,
        }),
    }
}

pub fn event(e: &Enriched) -> v1::Event {
    let p = &e.event.process;
    let ctx = &e.ctx;
    let pc = &ctx.proc;
    let container = match (&ctx.container, &ctx.container_id) {
        (Some(m), _) => Some(v1::Container {
            id: m.id.clone(),
            runtime: m.runtime.clone(),
            name: m.name.clone().unwrap_or_default(),
            image: m.image.clone().unwrap_or_default(),
            image_repository: m.image_repository.clone().unwrap_or_default(),
            image_tag: m.image_tag.clone().unwrap_or_default(),
            image_digest: m.image_digest.clone().unwrap_or_default(),
            pod_name: m.pod_name.clone().unwrap_or_default(),
            pod_uid: m.pod_uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            workload: m.workload.clone().unwrap_or_default(),
            workload_kind: String::new(),
            labels: m
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            start_ns: m.start_ns.unwrap_or(0),
        }),
        (None, Some(id)) => Some(v1::Container {
            id: id.clone(),
            ..Default::default()
        }),
        (None, None) => None,
    };
    v1::Event {
        seq: e.seq,
        time_ns: e.event.time_ns,
        r#type: e.event.type_name().to_string(),
        process: Some(v1::Process {
            pid: p.pid,
            ppid: p.ppid,
            tid: p.tid,
            uid: p.uid,
            gid: p.gid,
            loginuid: p.loginuid,
            user: pc.user.clone().unwrap_or_default(),
            name: Some(raw(&p.comm)),
            exe: Some(raw(&pc.exe)),
            args: raws(&pc.args),
            cmdline: display_args(&pc.args),
            cwd: pc.cwd.as_ref().map(raw),
            ancestors: pc.ancestors.iter().map(ancestor).collect(),
            sid: pc.sid,
            sname: pc.sname.as_ref().map(raw),
            tty: pc.tty,
            cgroup_id: p.cgroup_id,
            mnt_ns: p.mnt_ns,
            pid_ns: p.pid_ns,
            exe_upper_layer: pc.exe_upper_layer,
            exe_memfd: pc.exe_memfd,
            exe_sha256: pc.exe_sha256.clone().unwrap_or_default(),
            exe_ioc: pc.exe_ioc.clone().unwrap_or_default(),
        }),
        container,
        node: ctx.node.clone(),
        cluster: ctx.cluster.clone(),
        container_meta_pending: ctx.meta_pending,
        body: Some(body(&e.event.body)),
    }
}

pub fn alert(a: &Alert) -> v1::Alert {
    v1::Alert {
        id: a.id.clone(),
        time_ns: a.time_ns,
        rule: a.rule.clone(),
        policy: a.policy.clone().unwrap_or_default(),
        severity: severity(a.severity) as i32,
        output: a.output.clone(),
        output_fields: a
            .output_fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tags: a.tags.clone(),
        mitre_tactics: a.mitre_tactics.clone(),
        mitre_techniques: a.mitre_techniques.clone(),
        prevented: a.prevented,
        node: a.event.ctx.node.clone(),
        cluster: a.event.ctx.cluster.clone(),
        event: Some(event(&a.event)),
    }
}

pub fn alert_item(a: &Alert) -> v1::FeedItem {
    v1::FeedItem {
        item: Some(v1::feed_item::Item::Alert(alert(a))),
    }
}

pub fn event_item(e: &Enriched) -> v1::FeedItem {
    v1::FeedItem {
        item: Some(v1::feed_item::Item::Event(event(e))),
    }
}

// ---------------------------------------------------------------------------------------
// Incidents

pub fn workload(w: &inc::WorkloadKey) -> v1::Workload {
    v1::Workload {
        cluster: w.cluster.clone(),
        node: w.node.clone(),
        namespace: w.namespace.clone().unwrap_or_default(),
        workload: w.workload.clone().unwrap_or_default(),
        workload_kind: String::new(),
        pod: w.pod.clone().unwrap_or_default(),
        container: w.container.clone().unwrap_or_default(),
        container_id: w.container_id.clone().unwrap_or_default(),
        image: w.image.clone().unwrap_or_default(),
    }
}

/// Technique ids in order of first appearance.
pub fn incident_summary(i: &inc::Incident) -> v1::IncidentSummary {
    v1::IncidentSummary {
        id: i.id.clone(),
        node: i.node.clone(),
        cluster: i.cluster.clone(),
        start_ns: i.start_ns,
        end_ns: i.end_ns,
        severity: severity(i.severity) as i32,
        policies: i.policies.clone(),
        rules: i.rules.clone(),
        alert_count: u32::try_from(i.alert_ids.len()).unwrap_or(u32::MAX),
        prevented_count: u32::try_from(i.prevented_alert_ids.len()).unwrap_or(u32::MAX),
        workload: Some(workload(&i.workload)),
        root_cause_name: Some(raw(&i.root_cause.name)),
        root_cause_cmdline: display_args(&i.root_cause.cmdline),
        techniques: i.techniques.iter().map(|t| t.id.clone()).collect(),
        affected_workload_count: u32::try_from(i.affected_workloads.len()).unwrap_or(u32::MAX),
    }
}

fn boundary(b: &inc::Boundary) -> v1::Boundary {
    match b {
        inc::Boundary::Parent {
            pid,
            name,
            exe,
            reason,
        } => v1::Boundary {
            kind: match reason {
                inc::BoundaryReason::Plumbing => v1::BoundaryKind::ParentPlumbing,
                inc::BoundaryReason::InitPid => v1::BoundaryKind::ParentInit,
                inc::BoundaryReason::OtherScope => v1::BoundaryKind::ParentOtherScope,
            } as i32,
            parent_pid: *pid,
            parent_name: Some(raw(name)),
            parent_exe: Some(raw(exe)),
        },
        inc::Boundary::AncestryEnded => v1::Boundary {
            kind: v1::BoundaryKind::AncestryEnded as i32,
            ..Default::default()
        },
        inc::Boundary::Cycle => v1::Boundary {
            kind: v1::BoundaryKind::Cycle as i32,
            ..Default::default()
        },
    }
}

fn step(s: &inc::Step) -> v1::Step {
    use v1::step::Action as A;
    let action = match &s.action {
        inc::Action::Exec {
            filename,
            args,
            upper_layer,
            memfd,
        } => A::Exec(v1::StepExec {
            filename: Some(raw(filename)),
            args: raws(args),
            upper_layer: *upper_layer,
            memfd: *memfd,
        }),
        inc::Action::Fork => A::Fork(v1::StepFork {}),
        inc::Action::Exit { code, signal } => A::Exit(v1::StepExit {
            code: code.map(u32::from),
            signal: signal.map(u32::from),
        }),
        inc::Action::File {
            op,
            path,
            mode,
            ret,
        } => A::File(v1::StepFile {
            op: file_kind(*op) as i32,
            path: Some(raw(path)),
            mode: *mode,
            ret: *ret,
        }),
        inc::Action::Connect { addr, port, ret } => A::Connect(v1::StepConnect {
            addr: addr.to_string(),
            port: u32::from(*port),
            ret: *ret,
        }),
    };
    v1::Step {
        alert_id: s.alert_id.clone(),
        event_seq: s.event_seq,
        time_ns: s.time_ns,
        rule: s.rule.clone(),
        severity: severity(s.severity) as i32,
        tactics: s.tactics.clone(),
        techniques: s.techniques.clone(),
        prevented: s.prevented,
        action: Some(action),
    }
}

fn path_node(n: &inc::PathNode) -> v1::PathNode {
    v1::PathNode {
        pid: n.pid,
        ppid: n.ppid,
        parent_pid: n.parent,
        depth: n.depth,
        name: Some(raw(&n.name)),
        exe: Some(raw(&n.exe)),
        cmdline: raws(&n.cmdline),
        cmdline_display: display_args(&n.cmdline),
        exe_sha256: n.exe_sha256.clone().unwrap_or_default(),
        first_seen_ns: n.first_seen_ns,
        alert_ids: n.alert_ids.clone(),
        rules: n.rules.clone(),
        tactics: n.tactics.clone(),
        techniques: n.techniques.clone(),
        prevented: n.prevented,
        steps: n.steps.iter().map(step).collect(),
    }
}

fn indicator(i: &inc::Indicator) -> v1::Indicator {
    use v1::indicator::Kind;
    v1::Indicator {
        kind: Some(match i {
            inc::Indicator::BinaryHash(h) => Kind::BinarySha256(h.clone()),
            inc::Indicator::RootCommand(args) => Kind::RootCommand(v1::RootCommand {
                args: raws(args),
                display: display_args(args),
            }),
            inc::Indicator::Rule(r) => Kind::Rule(r.clone()),
        }),
    }
}

/// The whole incident; `kb` names tactics and techniques; `filter` selects its alerts.
pub fn incident(i: &inc::Incident, kb: Option<&Knowledge>, filter: String) -> v1::Incident {
    let rc = &i.root_cause;
    v1::Incident {
        summary: Some(incident_summary(i)),
        alert_ids: i.alert_ids.clone(),
        prevented_alert_ids: i.prevented_alert_ids.clone(),
        root_cause: Some(v1::RootCause {
            pid: rc.pid,
            ppid: rc.ppid,
            name: Some(raw(&rc.name)),
            exe: Some(raw(&rc.exe)),
            cmdline: raws(&rc.cmdline),
            cmdline_display: display_args(&rc.cmdline),
            exe_sha256: rc.exe_sha256.clone().unwrap_or_default(),
            first_seen_ns: rc.first_seen_ns,
            alert_ids: rc.alert_ids.clone(),
            boundary: Some(boundary(&rc.boundary)),
        }),
        attack_path: Some(v1::AttackPath {
            nodes: i.attack_path.nodes.iter().map(path_node).collect(),
            roots: i.attack_path.roots.clone(),
        }),
        tactics: i
            .tactics
            .iter()
            .map(|t| v1::TacticEvidence {
                id: t.id.clone(),
                name: kb
                    .and_then(|k| k.tactic_name(&t.id))
                    .unwrap_or_default()
                    .to_string(),
                techniques: t.techniques.clone(),
                alert_ids: t.alert_ids.clone(),
                first_seen_ns: t.first_seen_ns,
            })
            .collect(),
        techniques: i
            .techniques
            .iter()
            .map(|t| v1::TechniqueEvidence {
                id: t.id.clone(),
                name: kb
                    .and_then(|k| k.technique_name(&t.id))
                    .unwrap_or_default()
                    .to_string(),
                tactics: t.tactics.clone(),
                alert_ids: t.alert_ids.clone(),
                first_seen_ns: t.first_seen_ns,
            })
            .collect(),
        indicators: i.indicators.iter().map(indicator).collect(),
        affected_workloads: i
            .affected_workloads
            .iter()
            .map(|a| v1::AffectedWorkload {
                workload: Some(workload(&a.workload)),
                anchor: a.anchor,
                shared: a
                    .shared
                    .iter()
                    .filter_map(|&k| i.indicators.get(k))
                    .map(indicator)
                    .collect(),
            })
            .collect(),
        filter,
    }
}

// ---------------------------------------------------------------------------------------
// Assistant answers

fn section(s: &saker_assist::Section) -> v1::Section {
    use saker_assist::SectionBody as B;
    use v1::section::Body;
    let (kind, body) = match &s.body {
        B::Table { columns, rows } => (
            v1::SectionKind::Table,
            Body::Table(v1::Table {
                columns: columns.clone(),
                rows: rows
                    .iter()
                    .map(|r| v1::Row {
                        cells: r.cells.clone(),
                        alert_ids: r.alert_ids.clone(),
                    })
                    .collect(),
            }),
        ),
        B::Tree { nodes } => (
            v1::SectionKind::Tree,
            Body::Tree(v1::Tree {
                nodes: nodes
                    .iter()
                    .map(|n| v1::TreeNode {
                        id: n.id.clone(),
                        parent_id: n.parent_id.clone(),
                        label: n.label.clone(),
                        detail: n.detail.clone(),
                        tactics: n.tactics.clone(),
                        techniques: n.techniques.clone(),
                        alert_ids: n.alert_ids.clone(),
                        time_ns: n.time_ns,
                    })
                    .collect(),
            }),
        ),
        B::List { items, ordered } => (
            v1::SectionKind::List,
            Body::List(v1::ItemList {
                items: items.clone(),
                ordered: *ordered,
            }),
        ),
        B::Text(t) => (v1::SectionKind::Text, Body::Markdown(t.clone())),
    };
    v1::Section {
        title: s.title.clone(),
        kind: kind as i32,
        body: Some(body),
        alert_ids: s.alert_ids.clone(),
    }
}

fn ms(v: f64) -> u32 {
    if v.is_finite() && v > 0.0 {
        v.round().min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

fn done(s: &saker_assist::AnswerSummary) -> v1::Done {
    let t = &s.timings;
    v1::Done {
        intent: s.intent.name().to_string(),
        confidence: s.confidence,
        timings: Some(v1::Timings {
            total_ms: ms(t.total_ms),
            routing_ms: ms(t.routing_ms),
            retrieval_ms: ms(t.retrieval_ms),
            prompt_ms: ms(t.prompt_ms),
            generation_ms: ms(t.generation_ms),
            prompt_tokens: u32::try_from(t.prompt_tokens).unwrap_or(u32::MAX),
            generated_tokens: u32::try_from(t.generated_tokens).unwrap_or(u32::MAX),
        }),
        narrative_source: match s.narrative_source {
            saker_assist::NarrativeSource::None => v1::NarrativeSource::Unspecified,
            saker_assist::NarrativeSource::Model => v1::NarrativeSource::Model,
            saker_assist::NarrativeSource::Template => v1::NarrativeSource::Template,
        } as i32,
        model: s.model.clone().unwrap_or_default(),
        notes: s.notes.clone(),
    }
}

pub fn answer_part(p: &saker_assist::AnswerPart) -> v1::AnswerPart {
    use saker_assist::AnswerPart as P;
    use v1::answer_part::Part;
    let part = match p {
        P::Section(s) => Part::Section(section(s)),
        P::TextDelta(t) => Part::Text(v1::TextDelta {
            text: t.clone(),
            replace: false,
        }),
        P::Evidence {
            alert_ids,
            incident_ids,
        } => Part::Evidence(v1::Evidence {
            alert_ids: alert_ids.clone(),
            event_seqs: Vec::new(),
            incident_ids: incident_ids.clone(),
        }),
        P::SuggestedFilter(f) => Part::SuggestedFilter(v1::SuggestedFilter {
            filter: f.filter.clone(),
            description: f.description.clone(),
            since_ns: f.since_ns,
            until_ns: f.until_ns,
        }),
        P::Done(s) => Part::Done(done(s)),
    };
    v1::AnswerPart { part: Some(part) }
}

pub fn started(session_id: &str, context_filter: &str) -> v1::AnswerPart {
    v1::AnswerPart {
        part: Some(v1::answer_part::Part::Started(v1::Started {
            session_id: session_id.to_string(),
            context_filter: context_filter.to_string(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_strings_keep_bytes() {
        let r = raw(&BString(b"a\x1b[2J\xff".to_vec()));
        assert_eq!(r.raw, b"a\x1b[2J\xff");
        assert_eq!(r.lossy, "a\u{1b}[2J\u{fffd}");
        assert_eq!(
            display_args(&[BString::from("sh"), BString(b"-c\xfe".to_vec())]),
            "sh -c\u{fffd}"
        );
    }

    #[test]
    fn severities_follow_the_proto_numbers() {
        assert_eq!(severity(Severity::Critical), v1::Severity::Critical);
        assert_eq!(severity_name("WARNING"), v1::Severity::Warning);
        assert_eq!(severity_name("nope"), v1::Severity::Unspecified);
        assert!((v1::Severity::Emergency as i32) > (v1::Severity::Debug as i32));
    }
}
