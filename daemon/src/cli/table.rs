//! A plain-text table: left-aligned columns, two spaces apart, no borders. Cells must
//! already be escaped (see `escape`).

/// A table being built.
pub struct Table {
    headers: Vec<String>,
    max: Vec<usize>,
    rows: Vec<Vec<String>>,
}

/// Display width of an escaped cell (one column per char; escaped cells hold no
/// control characters).
fn width(s: &str) -> usize {
    s.chars().count()
}

/// Cuts `s` to `max` columns, ending with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

impl Table {
    /// A table with these column headings (shown upper-case).
    pub fn new<S: AsRef<str>>(headers: &[S]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.as_ref().to_uppercase()).collect(),
            max: vec![usize::MAX; headers.len()],
            rows: Vec::new(),
        }
    }

    /// Caps a column's width; longer cells are cut with `…`.
    pub fn max_width(mut self, col: usize, max: usize) -> Table {
        if let Some(m) = self.max.get_mut(col) {
            *m = max.max(1);
        }
        self
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The rendered table, one line per row after the heading, each ending in `\n`.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        let cut: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(i, c)| truncate(c, self.max[i]))
                    .collect()
            })
            .collect();
        for r in &cut {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(width(c));
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(cut.iter()) {
            let mut l = String::new();
            for (i, c) in line.iter().enumerate() {
                l.push_str(c);
                if i + 1 < n {
                    l.push_str(&" ".repeat(widths[i] - width(c) + 2));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        }
        out
    }
}

/// One node of a tree to draw: its id, its parent's id (empty or unknown: a root) and its
/// text (already escaped).
pub struct TreeItem {
    pub id: String,
    pub parent: String,
    pub text: String,
}

/// Draws a tree with `├─`/`└─` connectors, children in input order. Items whose parent
/// is not in the list are roots. Every item is drawn exactly once, even when the parent
/// links form a cycle (the cycle's first item then starts a new root).
pub fn draw_tree(items: &[TreeItem]) -> Vec<String> {
    use std::collections::{HashMap, HashSet};
    let index: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, t) in items.iter().enumerate() {
        match index.get(t.parent.as_str()) {
            Some(&p) if !t.parent.is_empty() && p != i => children.entry(p).or_default().push(i),
            _ => roots.push(i),
        }
    }
    let mut w = Walker {
        items,
        children,
        seen: HashSet::new(),
        out: Vec::new(),
    };
    for &r in &roots {
        w.walk(r, "", true, true);
    }
    // Items only reachable through a cycle.
    for i in 0..items.len() {
        if !w.seen.contains(&i) {
            w.walk(i, "", true, true);
        }
    }
    w.out
}

/// Depth-first drawing state of [`draw_tree`].
struct Walker<'a> {
    items: &'a [TreeItem],
    children: std::collections::HashMap<usize, Vec<usize>>,
    seen: std::collections::HashSet<usize>,
    out: Vec<String>,
}

impl Walker<'_> {
    fn walk(&mut self, i: usize, prefix: &str, last: bool, top: bool) {
        if !self.seen.insert(i) {
            return;
        }
        let (branch, next) = match (top, last) {
            (true, _) => ("", String::new()),
            (false, true) => ("└─ ", format!("{prefix}   ")),
            (false, false) => ("├─ ", format!("{prefix}│  ")),
        };
        self.out
            .push(format!("{prefix}{branch}{}", self.items[i].text));
        let kids: Vec<usize> = self
            .children
            .get(&i)
            .map(|k| {
                k.iter()
                    .copied()
                    .filter(|k| !self.seen.contains(k))
                    .collect()
            })
            .unwrap_or_default();
        for (j, &k) in kids.iter().enumerate() {
            self.walk(k, &next, j + 1 == kids.len(), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_truncates() {
        let mut t = Table::new(&["id", "name"]).max_width(1, 5);
        t.row(vec!["1".into(), "short".into()]);
        t.row(vec!["22".into(), "longer name".into()]);
        t.row(vec!["333".into()]);
        assert_eq!(t.render(), "ID   NAME\n1    short\n22   long…\n333\n");
    }

    #[test]
    fn counts_chars_not_bytes() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["é→".into(), "x".into()]);
        assert_eq!(t.render(), "A   B\né→  x\n");
    }

    fn item(id: &str, parent: &str) -> TreeItem {
        TreeItem {
            id: id.into(),
            parent: parent.into(),
            text: format!("n{id}"),
        }
    }

    #[test]
    fn draws_trees() {
        let items = vec![
            item("1", ""),
            item("2", "1"),
            item("3", "2"),
            item("4", "1"),
            item("9", "77"),
        ];
        assert_eq!(
            draw_tree(&items),
            ["n1", "├─ n2", "│  └─ n3", "└─ n4", "n9"]
        );
    }

    #[test]
    fn survives_cycles_and_self_parents() {
        let items = vec![item("1", "2"), item("2", "1"), item("3", "3")];
        let lines = draw_tree(&items);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines, ["n3", "n1", "└─ n2"]);
    }
}
