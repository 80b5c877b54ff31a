//! Deterministic rendering: the section types an answer is made of, their markdown-ish
//! text, and the formatting of the values inside them (times, process command lines,
//! workloads). Values from workloads are escaped (one line, no control characters) and
//! never translated.

use saker_event::BString;
use saker_incident::WorkloadKey;
use serde::{Deserialize, Serialize};

/// Longest command line or path shown in a cell; longer ones are cut with `…`.
const MAX_CELL: usize = 160;

/// How a section is laid out (mirrors the API's `SectionKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    Table,
    Tree,
    List,
    Text,
}

/// A row of a table section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub cells: Vec<String>,
    /// Alerts this row rests on.
    pub alert_ids: Vec<String>,
}

/// A node of a tree section (parents come before children).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeNode {
    pub id: String,
    /// Empty for a root.
    pub parent_id: String,
    pub label: String,
    pub detail: String,
    pub tactics: Vec<String>,
    pub techniques: Vec<String>,
    pub alert_ids: Vec<String>,
    pub time_ns: i64,
}

/// The structured body of a section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionBody {
    Table {
        columns: Vec<String>,
        rows: Vec<Row>,
    },
    Tree {
        nodes: Vec<TreeNode>,
    },
    List {
        items: Vec<String>,
        ordered: bool,
    },
    /// CommonMark.
    Text(String),
}

/// A block of facts rendered deterministically from the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub body: SectionBody,
    /// Alerts the whole section rests on.
    pub alert_ids: Vec<String>,
}

impl Section {
    pub fn kind(&self) -> SectionKind {
        match self.body {
            SectionBody::Table { .. } => SectionKind::Table,
            SectionBody::Tree { .. } => SectionKind::Tree,
            SectionBody::List { .. } => SectionKind::List,
            SectionBody::Text(_) => SectionKind::Text,
        }
    }

    pub fn table(title: impl Into<String>, columns: Vec<String>, rows: Vec<Row>) -> Section {
        let alert_ids = union_ids(rows.iter().map(|r| r.alert_ids.as_slice()));
        Section {
            title: title.into(),
            body: SectionBody::Table { columns, rows },
            alert_ids,
        }
    }

    pub fn tree(title: impl Into<String>, nodes: Vec<TreeNode>) -> Section {
        let alert_ids = union_ids(nodes.iter().map(|n| n.alert_ids.as_slice()));
        Section {
            title: title.into(),
            body: SectionBody::Tree { nodes },
            alert_ids,
        }
    }

    pub fn list(title: impl Into<String>, items: Vec<String>, ordered: bool) -> Section {
        Section {
            title: title.into(),
            body: SectionBody::List { items, ordered },
            alert_ids: Vec::new(),
        }
    }

    pub fn text(title: impl Into<String>, text: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            body: SectionBody::Text(text.into()),
            alert_ids: Vec::new(),
        }
    }

    pub fn with_alerts(mut self, ids: Vec<String>) -> Section {
        self.alert_ids = ids;
        self
    }

    /// The section as markdown-ish text: a `###` heading, then a pipe table, an
    /// indented tree, a list, or the text.
    pub fn markdown(&self) -> String {
        let mut o = format!("### {}\n", self.title);
        match &self.body {
            SectionBody::Table { columns, rows } => {
                o.push_str(&format!("| {} |\n", columns.join(" | ")));
                o.push_str(&format!("|{}\n", "---|".repeat(columns.len())));
                for r in rows {
                    let cells: Vec<String> =
                        r.cells.iter().map(|c| c.replace('|', "\\|")).collect();
                    o.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
            }
            SectionBody::Tree { nodes } => {
                for n in nodes {
                    let depth = tree_depth(nodes, n);
                    o.push_str(&"  ".repeat(depth));
                    o.push_str("- ");
                    o.push_str(&n.label);
                    if !n.detail.is_empty() {
                        o.push_str(" — ");
                        o.push_str(&n.detail);
                    }
                    let mitre: Vec<&str> = n
                        .tactics
                        .iter()
                        .chain(&n.techniques)
                        .map(String::as_str)
                        .collect();
                    if !mitre.is_empty() {
                        o.push_str(&format!(" [{}]", mitre.join(" ")));
                    }
                    o.push('\n');
                }
            }
            SectionBody::List { items, ordered } => {
                for (i, it) in items.iter().enumerate() {
                    if *ordered {
                        o.push_str(&format!("{}. {}\n", i + 1, it));
                    } else {
                        o.push_str(&format!("- {it}\n"));
                    }
                }
            }
            SectionBody::Text(t) => {
                o.push_str(t);
                if !t.ends_with('\n') {
                    o.push('\n');
                }
            }
        }
        o
    }
}

/// Depth of `n` in its tree (bounded: a malformed parent chain cannot loop).
fn tree_depth(nodes: &[TreeNode], n: &TreeNode) -> usize {
    let mut depth = 0;
    let mut parent = n.parent_id.as_str();
    while !parent.is_empty() && depth < nodes.len() {
        match nodes.iter().find(|m| m.id == parent) {
            Some(p) => {
                depth += 1;
                parent = p.parent_id.as_str();
            }
            None => break,
        }
    }
    depth
}

/// Sorted, deduplicated union of id lists.
pub(crate) fn union_ids<'a>(lists: impl Iterator<Item = &'a [String]>) -> Vec<String> {
    let mut v: Vec<String> = lists.flatten().cloned().collect();
    v.sort();
    v.dedup();
    v
}

/// `YYYY-MM-DD HH:MM:SSZ` (UTC) for nanoseconds since the epoch.
pub fn fmt_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `HH:MM:SSZ` only (rows of one incident share the date).
pub fn fmt_clock(ns: i64) -> String {
    let t = fmt_time(ns);
    t.split_once(' ').map(|(_, c)| c.to_string()).unwrap_or(t)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm), so no date crate is needed.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A workload string for display: escaped, cut when too long.
pub(crate) fn esc(b: &BString) -> String {
    cut(&b.escaped())
}

/// Escapes a plain string from workload metadata the same way as byte strings.
pub(crate) fn esc_str(s: &str) -> String {
    cut(&saker_event::bstr::escape_bytes(s.as_bytes()))
}

/// argv joined with spaces, escaped and cut.
pub(crate) fn cmdline(args: &[BString]) -> String {
    esc(&saker_incident::join_args(args))
}

pub(crate) fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_CELL {
        return s.to_string();
    }
    let mut t: String = s.chars().take(MAX_CELL).collect();
    t.push('…');
    t
}

/// `namespace/workload` (or pod, or container), `host:<node>` for the host.
pub(crate) fn workload_short(w: &WorkloadKey) -> String {
    if w.is_host() {
        return format!("host:{}", esc_str(&w.node));
    }
    let ns = w.namespace.as_deref().unwrap_or("-");
    let name = w
        .workload
        .as_deref()
        .or(w.pod.as_deref())
        .or(w.container.as_deref())
        .or(w.container_id.as_deref())
        .unwrap_or("-");
    format!("{}/{}", esc_str(ns), esc_str(name))
}

pub(crate) fn opt(v: &Option<String>) -> String {
    v.as_deref().map(esc_str).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(
            fmt_time(1_767_225_600 * 1_000_000_000 + 61_000_000_000),
            "2026-01-01 00:01:01Z"
        );
        assert_eq!(
            fmt_time(951_782_400 * 1_000_000_000),
            "2000-02-29 00:00:00Z"
        );
        assert_eq!(fmt_clock(1_767_225_600 * 1_000_000_000), "00:00:00Z");
    }

    #[test]
    fn markdown_of_each_kind() {
        let t = Section::table(
            "T",
            vec!["a".into(), "b".into()],
            vec![Row {
                cells: vec!["x|y".into(), "z".into()],
                alert_ids: vec!["a1".into()],
            }],
        );
        assert_eq!(t.markdown(), "### T\n| a | b |\n|---|---|\n| x\\|y | z |\n");
        assert_eq!(t.alert_ids, ["a1"]);
        let tree = Section::tree(
            "P",
            vec![
                TreeNode {
                    id: "1".into(),
                    label: "sh".into(),
                    ..Default::default()
                },
                TreeNode {
                    id: "2".into(),
                    parent_id: "1".into(),
                    label: "wget".into(),
                    techniques: vec!["T1105".into()],
                    ..Default::default()
                },
            ],
        );
        assert_eq!(tree.markdown(), "### P\n- sh\n  - wget [T1105]\n");
        let l = Section::list("L", vec!["one".into(), "two".into()], true);
        assert_eq!(l.markdown(), "### L\n1. one\n2. two\n");
    }

    #[test]
    fn escapes_and_cuts() {
        let b = BString::from("a\nb\x1b[31m");
        assert_eq!(esc(&b), "a\\nb\\x1b[31m");
        let long = "x".repeat(500);
        assert_eq!(cut(&long).chars().count(), MAX_CELL + 1);
    }
}
