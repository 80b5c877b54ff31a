//! Prints an assistant answer as its parts stream in: sections as tables, trees and
//! lists, narrative text as it arrives, and the evidence ids, suggested filters and
//! session at the end.

use std::io::{self, Write};

use saker_proto::v1::{self, answer_part::Part, section::Body, AnswerPart, Section};

use super::escape::{escape, escape_text};
use super::table::{draw_tree, Table, TreeItem};
use super::timefmt::fmt_ns;

/// How many evidence ids are listed before "... and N more".
const MAX_IDS_SHOWN: usize = 20;

/// Renders a section (without trailing blank line).
pub fn section(s: &Section) -> String {
    let mut o = String::new();
    let title = escape(&s.title);
    o.push_str(&title);
    o.push('\n');
    o.push_str(&"-".repeat(title.chars().count().max(3)));
    o.push('\n');
    match &s.body {
        Some(Body::Table(t)) => {
            let mut tab = Table::new(&t.columns.iter().map(|c| escape(c)).collect::<Vec<_>>());
            for c in 0..t.columns.len() {
                tab = tab.max_width(c, 70);
            }
            for r in &t.rows {
                tab.row(r.cells.iter().map(|c| escape(c)).collect());
            }
            o.push_str(&tab.render());
        }
        Some(Body::Tree(t)) => {
            let items: Vec<TreeItem> = t
                .nodes
                .iter()
                .map(|n| {
                    let mut text = escape(&n.label);
                    if !n.detail.is_empty() {
                        text.push_str("  ");
                        text.push_str(&escape(&n.detail));
                    }
                    let mitre: Vec<String> = n
                        .tactics
                        .iter()
                        .chain(&n.techniques)
                        .map(|x| escape(x))
                        .collect();
                    if !mitre.is_empty() {
                        text.push_str(&format!("  [{}]", mitre.join(" ")));
                    }
                    TreeItem {
                        id: n.id.clone(),
                        parent: n.parent_id.clone(),
                        text,
                    }
                })
                .collect();
            for l in draw_tree(&items) {
                o.push_str(&l);
                o.push('\n');
            }
        }
        Some(Body::List(l)) => {
            for (i, item) in l.items.iter().enumerate() {
                let bullet = if l.ordered {
                    format!("{}. ", i + 1)
                } else {
                    "- ".into()
                };
                // Continuation lines are indented under the bullet.
                let text =
                    escape_text(item).replace('\n', &format!("\n{}", " ".repeat(bullet.len())));
                o.push_str(&bullet);
                o.push_str(&text);
                o.push('\n');
            }
        }
        Some(Body::Markdown(m)) => {
            o.push_str(&escape_text(m));
            if !m.ends_with('\n') {
                o.push('\n');
            }
        }
        None => o.push_str("(empty section)\n"),
    }
    o
}

/// Quotes a string for a POSIX shell (single quotes).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A shell command to show for copy and paste: as it is when it holds no character that
/// must be escaped (backslashes stay single), otherwise escaped with a note.
pub fn command_text(cmd: &str) -> String {
    if cmd.chars().any(super::escape::is_unsafe) {
        format!("{} (has control characters: shown escaped)", escape(cmd))
    } else {
        cmd.to_string()
    }
}

/// Prints the parts of one answer to a writer, in order.
pub struct AnswerPrinter<W: Write> {
    out: W,
    /// Narrative text is open (the last write was a text delta).
    in_text: bool,
    session: String,
    alert_ids: Vec<String>,
    event_seqs: Vec<u64>,
    incident_ids: Vec<String>,
    filters: Vec<v1::SuggestedFilter>,
    done: Option<v1::Done>,
}

impl<W: Write> AnswerPrinter<W> {
    pub fn new(out: W) -> Self {
        AnswerPrinter {
            out,
            in_text: false,
            session: String::new(),
            alert_ids: Vec::new(),
            event_seqs: Vec::new(),
            incident_ids: Vec::new(),
            filters: Vec::new(),
            done: None,
        }
    }

    fn close_text(&mut self) -> io::Result<()> {
        if self.in_text {
            writeln!(self.out, "\n")?;
            self.in_text = false;
        }
        Ok(())
    }

    /// Handles one part.
    pub fn part(&mut self, p: AnswerPart) -> io::Result<()> {
        match p.part {
            Some(Part::Started(s)) => {
                self.session = s.session_id;
                if !s.context_filter.is_empty() {
                    writeln!(self.out, "(context: {})\n", escape(&s.context_filter))?;
                }
            }
            Some(Part::Section(s)) => {
                self.close_text()?;
                writeln!(self.out, "{}", section(&s))?;
            }
            Some(Part::Text(t)) => {
                if t.replace {
                    if self.in_text {
                        writeln!(self.out)?;
                    }
                    writeln!(
                        self.out,
                        "[the draft above failed verification; verified text follows]"
                    )?;
                }
                write!(self.out, "{}", escape_text(&t.text))?;
                self.in_text = true;
                self.out.flush()?;
            }
            Some(Part::Evidence(e)) => {
                for id in e.alert_ids {
                    if !self.alert_ids.contains(&id) {
                        self.alert_ids.push(id);
                    }
                }
                for s in e.event_seqs {
                    if !self.event_seqs.contains(&s) {
                        self.event_seqs.push(s);
                    }
                }
                for id in e.incident_ids {
                    if !self.incident_ids.contains(&id) {
                        self.incident_ids.push(id);
                    }
                }
            }
            Some(Part::SuggestedFilter(f))
                if !self.filters.iter().any(|x| x.filter == f.filter) =>
            {
                self.filters.push(f);
            }
            Some(Part::SuggestedFilter(_)) => {}
            Some(Part::Done(d)) => self.done = Some(d),
            None => {}
        }
        self.out.flush()
    }

    fn ids<T: ToString>(&mut self, what: &str, ids: &[T]) -> io::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let shown: Vec<String> = ids
            .iter()
            .take(MAX_IDS_SHOWN)
            .map(|i| escape(&i.to_string()))
            .collect();
        write!(self.out, "{what} ({}): {}", ids.len(), shown.join(", "))?;
        if ids.len() > MAX_IDS_SHOWN {
            write!(
                self.out,
                ", ... and {} more (--json lists all)",
                ids.len() - MAX_IDS_SHOWN
            )?;
        }
        writeln!(self.out)
    }

    /// Prints the collected evidence, filters, timings and session. Call once, after
    /// the stream ended (also after an error, to show what arrived).
    pub fn finish(&mut self) -> io::Result<()> {
        self.close_text()?;
        let alerts = std::mem::take(&mut self.alert_ids);
        let seqs = std::mem::take(&mut self.event_seqs);
        let incs = std::mem::take(&mut self.incident_ids);
        self.ids("Evidence: alerts", &alerts)?;
        self.ids(
            "Evidence: events",
            &seqs.iter().map(|s| format!("#{s}")).collect::<Vec<_>>(),
        )?;
        self.ids("Evidence: incidents", &incs)?;
        for f in std::mem::take(&mut self.filters) {
            let mut cmd = format!("saker events --filter {}", shell_quote(&f.filter));
            if f.since_ns != 0 {
                cmd.push_str(&format!(" --since {}", fmt_ns(f.since_ns)));
            }
            if f.until_ns != 0 {
                cmd.push_str(&format!(" --until {}", fmt_ns(f.until_ns)));
            }
            if f.description.is_empty() {
                writeln!(self.out, "Filter: {}", escape(&f.filter))?;
            } else {
                writeln!(
                    self.out,
                    "Filter ({}): {}",
                    escape(&f.description),
                    escape(&f.filter)
                )?;
            }
            writeln!(self.out, "  {}", command_text(&cmd))?;
        }
        if let Some(d) = self.done.take() {
            let t = d.timings.unwrap_or_default();
            let source = match v1::NarrativeSource::try_from(d.narrative_source) {
                Ok(v1::NarrativeSource::Model) => format!("model {}", escape(&d.model)),
                Ok(v1::NarrativeSource::Template) => "template".into(),
                _ => "none".into(),
            };
            writeln!(
                self.out,
                "-- intent {} (confidence {:.2}), narrative: {}, {} ms (retrieval {} ms, generation {} ms, {} tokens)",
                escape(&d.intent),
                d.confidence,
                source,
                t.total_ms,
                t.retrieval_ms,
                t.generation_ms,
                t.generated_tokens
            )?;
            for n in &d.notes {
                writeln!(self.out, "-- note: {}", escape(n))?;
            }
        }
        if !self.session.is_empty() {
            writeln!(
                self.out,
                "-- session {} (follow up with: {})",
                escape(&self.session),
                command_text(&format!(
                    "saker ask --session {} \"...\"",
                    shell_quote(&self.session)
                ))
            )?;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::{Evidence, Row, Started, SuggestedFilter, TextDelta, Tree, TreeNode};

    fn part(p: Part) -> AnswerPart {
        AnswerPart { part: Some(p) }
    }

    #[test]
    fn prints_a_streamed_answer() {
        let mut buf = Vec::new();
        let mut p = AnswerPrinter::new(&mut buf);
        p.part(part(Part::Started(Started {
            session_id: "s-1".into(),
            context_filter: "k8s.ns.name=risk-10-aws-bedrock-java".into(),
        })))
        .unwrap();
        p.part(part(Part::Section(Section {
            title: "Alerts by policy".into(),
            kind: v1::SectionKind::Table as i32,
            body: Some(Body::Table(v1::Table {
                columns: vec!["Policy".into(), "Count".into()],
                rows: vec![Row {
                    cells: vec!["Drift Detection".into(), "12".into()],
                    alert_ids: vec![],
                }],
            })),
            alert_ids: vec![],
        })))
        .unwrap();
        p.part(part(Part::Text(TextDelta {
            text: "The miner ".into(),
            replace: false,
        })))
        .unwrap();
        p.part(part(Part::Text(TextDelta {
            text: "ran \u{1b}[31m.".into(),
            replace: false,
        })))
        .unwrap();
        p.part(part(Part::Evidence(Evidence {
            alert_ids: vec!["a1".into(), "a2".into()],
            ..Default::default()
        })))
        .unwrap();
        p.part(part(Part::Evidence(Evidence {
            alert_ids: vec!["a2".into(), "a3".into()],
            ..Default::default()
        })))
        .unwrap();
        p.part(part(Part::SuggestedFilter(SuggestedFilter {
            filter: "k8s.ns.name='x' and proc.name=\"it's\"".into(),
            description: "the miner's alerts".into(),
            ..Default::default()
        })))
        .unwrap();
        p.part(part(Part::Done(v1::Done {
            intent: "summarize".into(),
            confidence: 0.9,
            ..Default::default()
        })))
        .unwrap();
        p.finish().unwrap();
        let out = String::from_utf8(buf).unwrap();
        assert!(out.starts_with("(context: k8s.ns.name=risk-10-aws-bedrock-java)\n\nAlerts by policy\n----------------\nPOLICY"), "{out}");
        assert!(out.contains("The miner ran \\x1b[31m.\n\n"), "{out}");
        assert!(out.contains("Evidence: alerts (3): a1, a2, a3\n"), "{out}");
        assert!(
            out.contains(
                "saker events --filter 'k8s.ns.name='\\''x'\\'' and proc.name=\"it'\\''s\"'"
            ),
            "{out}"
        );
        assert!(
            out.contains("-- intent summarize (confidence 0.90)"),
            "{out}"
        );
        assert!(out.contains("-- session s-1"), "{out}");
        assert!(!out.contains('\u{1b}'));
    }

    #[test]
    fn renders_tree_and_list_sections() {
        let tree = Section {
            title: "Attack path".into(),
            kind: v1::SectionKind::Tree as i32,
            body: Some(Body::Tree(Tree {
                nodes: vec![
                    TreeNode {
                        id: "1".into(),
                        label: "sh ./x.sh".into(),
                        techniques: vec!["T1059.004".into()],
                        ..Default::default()
                    },
                    TreeNode {
                        id: "2".into(),
                        parent_id: "1".into(),
                        label: "easyminer".into(),
                        ..Default::default()
                    },
                ],
            })),
            alert_ids: vec![],
        };
        assert_eq!(
            section(&tree),
            "Attack path\n-----------\nsh ./x.sh  [T1059.004]\n└─ easyminer\n"
        );
        let list = Section {
            title: "Fix".into(),
            kind: v1::SectionKind::List as i32,
            body: Some(Body::List(v1::ItemList {
                items: vec!["Isolate\nthe pod".into(), "Rotate keys".into()],
                ordered: true,
            })),
            alert_ids: vec![],
        };
        assert_eq!(
            section(&list),
            "Fix\n---\n1. Isolate\n   the pod\n2. Rotate keys\n"
        );
    }

    #[test]
    fn commands_stay_copyable_and_safe() {
        assert_eq!(
            command_text("saker events --filter 'a\\b'"),
            "saker events --filter 'a\\b'"
        );
        assert!(command_text("x \u{1b}[2J").starts_with("x \\x1b[2J (has control"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
