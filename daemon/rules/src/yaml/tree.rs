//! A YAML document tree where every node keeps its source position, built
//! from yaml-rust2's event stream (iteratively, with a depth bound).

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting accepted; rule files need about five levels.
const MAX_DEPTH: usize = 64;

/// Position of a node: character index and 1-based line/column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mark {
    pub char_index: usize,
    pub line: u32,
    pub col: u32,
}

impl Mark {
    fn from_marker(m: Marker) -> Mark {
        Mark {
            char_index: m.index(),
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            col: u32::try_from(m.col())
                .unwrap_or(u32::MAX - 1)
                .saturating_add(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Scalar {
        value: String,
        style: Style,
        mark: Mark,
    },
    Seq {
        items: Vec<Node>,
        mark: Mark,
    },
    Map {
        entries: Vec<(Node, Node)>,
        mark: Mark,
    },
}

impl Node {
    pub fn mark(&self) -> Mark {
        match self {
            Node::Scalar { mark, .. } | Node::Seq { mark, .. } | Node::Map { mark, .. } => *mark,
        }
    }

    /// A plain empty scalar, `~` or `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { value, style: Style::Plain, .. }
            if value.is_empty() || value == "~" || value == "null" || value == "Null" || value == "NULL")
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map { entries, .. } => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Node::Scalar { .. } => "a scalar",
            Node::Seq { .. } => "a sequence",
            Node::Map { .. } => "a mapping",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

enum Frame {
    Seq(Vec<Node>, Mark),
    Map(Vec<(Node, Node)>, Option<Node>, Mark),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, mark: Marker, message: &str) {
        if self.error.is_none() {
            let m = Mark::from_marker(mark);
            self.error = Some(YamlError {
                line: m.line,
                col: m.col,
                message: message.to_string(),
            });
        }
    }

    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _)) => items.push(node),
            Some(Frame::Map(entries, key, mark)) => match key.take() {
                None => {
                    // yaml-rust2 marks a block mapping after its first key;
                    // the first key's position is where the item starts.
                    if entries.is_empty() {
                        *mark = node.mark();
                    }
                    *key = Some(node);
                }
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(value, style, _, _) => {
                let style = match style {
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    TScalarStyle::Literal => Style::Literal,
                    TScalarStyle::Folded => Style::Folded,
                    _ => Style::Plain,
                };
                self.push_node(Node::Scalar {
                    value,
                    style,
                    mark: Mark::from_marker(mark),
                });
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(mark, &format!("nesting deeper than {MAX_DEPTH} levels"));
                    return;
                }
                let m = Mark::from_marker(mark);
                self.stack.push(if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new(), m)
                } else {
                    Frame::Map(Vec::new(), None, m)
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq(items, mark)) => Node::Seq { items, mark },
                    Some(Frame::Map(entries, _, mark)) => Node::Map { entries, mark },
                    None => return,
                };
                self.push_node(node);
            }
            // Aliases could expand exponentially ("billion laughs"); rule
            // files have no use for them.
            Event::Alias(_) => self.fail(mark, "YAML aliases are not supported"),
            _ => {}
        }
    }
}

/// Parses all documents of `text`. Returns the documents and, when the
/// text had to be adjusted (see [`closing_bracket_fix`]), the adjusted text
/// that the marks refer to.
pub(crate) fn parse_yaml(text: &str) -> Result<(Vec<Node>, Option<String>), YamlError> {
    let mut patched: Option<String> = None;
    let mut fixes = 0;
    loop {
        let cur = patched.as_deref().unwrap_or(text);
        match parse_once(cur) {
            Err(e) if e.message == "invalid indentation" && fixes < MAX_FIXES => {
                match closing_bracket_fix(cur, e.line) {
                    Some(fixed) => {
                        patched = Some(fixed);
                        fixes += 1;
                    }
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
            Ok(docs) => return Ok((docs, patched)),
        }
    }
}

/// Bound on re-parses for [`closing_bracket_fix`].
const MAX_FIXES: usize = 64;

/// yaml-rust2 rejects a flow sequence whose closing `]` sits at the parent
/// key's indentation when the last item is quoted (upstream Falco files do
/// this; libyaml and yaml-cpp accept it). If the offending line holds only
/// closing brackets, indent it like the previous non-blank line; indentation
/// inside a flow collection carries no meaning.
fn closing_bracket_fix(text: &str, line: u32) -> Option<String> {
    let idx = usize::try_from(line).ok()?.checked_sub(1)?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let bad = lines.get(idx)?;
    let body = bad.trim();
    if body.is_empty() || !body.chars().all(|c| matches!(c, ']' | '}' | ',' | ' ')) {
        return None;
    }
    let prev = lines[..idx].iter().rev().find(|l| !l.trim().is_empty())?;
    let want = prev.len() - prev.trim_start().len();
    let have = bad.len() - bad.trim_start().len();
    if want <= have {
        return None;
    }
    let mut out = String::with_capacity(text.len() + want);
    for (i, l) in lines.iter().enumerate() {
        if i == idx {
            out.push_str(&" ".repeat(want - have));
        }
        out.push_str(l);
    }
    Some(out)
}

fn parse_once(text: &str) -> Result<Vec<Node>, YamlError> {
    let run = || {
        let mut b = Builder::default();
        let mut p = Parser::new_from_str(text);
        // Pull events one by one: `Parser::load` recurses per nesting level
        // and overflows the stack on `- - - - ...`; our builder is iterative
        // and stops at its depth bound.
        let r = loop {
            match p.next_token() {
                Ok((ev, mark)) => {
                    let end = ev == Event::StreamEnd;
                    b.on_event(ev, mark);
                    if end || b.error.is_some() {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        };
        (b, r)
    };
    // The parser is third-party code fed untrusted files: contain a panic.
    let (b, r) = std::panic::catch_unwind(run).map_err(|_| YamlError {
        line: 0,
        col: 0,
        message: "the YAML parser failed on this input".into(),
    })?;
    if let Err(e) = r {
        let m = Mark::from_marker(*e.marker());
        return Err(YamlError {
            line: m.line,
            col: m.col,
            message: e.info().to_string(),
        });
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.docs)
}

/// Byte offset of a character index.
pub(crate) fn byte_of_char(text: &str, char_index: usize) -> usize {
    text.char_indices()
        .nth(char_index)
        .map_or(text.len(), |(b, _)| b)
}

/// Maps a byte offset inside a scalar's value back to (line, col) in the
/// file, by walking the value and the source together: folding and
/// indentation only change whitespace, and quoting adds escape characters.
/// Falls back to the scalar's own position when they diverge.
pub(crate) fn locate_in_scalar(
    file: &str,
    mark: Mark,
    style: Style,
    value: &str,
    offset: usize,
) -> (u32, u32) {
    let mut si = byte_of_char(file, mark.char_index);
    if matches!(style, Style::SingleQuoted | Style::DoubleQuoted) {
        si += 1;
    }
    let src = file.as_bytes();
    let is_ws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    for (vi, vc) in value.char_indices() {
        if vi >= offset || si >= src.len() {
            break;
        }
        let sc = src[si];
        if vc.is_ascii_whitespace() {
            if sc == vc as u8 {
                si += 1;
            } else if is_ws(sc) {
                while si < src.len() && is_ws(src[si]) {
                    si += 1;
                }
            } else {
                // An escape such as `\n` in a double-quoted scalar.
                si += if sc == b'\\' { 2 } else { 1 };
            }
            continue;
        }
        while si < src.len() && is_ws(src[si]) {
            si += 1;
        }
        let Some(rest) = file.get(si..) else { break };
        if rest.starts_with(vc) {
            si += vc.len_utf8();
        } else if (style == Style::DoubleQuoted && rest.starts_with('\\'))
            || (style == Style::SingleQuoted && rest.starts_with("''"))
        {
            // An escape: skip it and the escaped character.
            si += 2;
        } else {
            return (mark.line, mark.col);
        }
    }
    crate::lexer::line_col(file, si.min(file.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_and_marks() {
        let text = "# c\n- rule: a é\n  tags: [x, y]\n  condition: >\n    foo and\n    bar\n";
        let (docs, patched) = parse_yaml(text).unwrap();
        assert!(patched.is_none());
        assert_eq!(docs.len(), 1);
        let Node::Seq { items, .. } = &docs[0] else {
            panic!()
        };
        let item = &items[0];
        assert_eq!(item.get("rule").and_then(Node::as_str), Some("a é"));
        let cond = item.get("condition").unwrap();
        assert_eq!(cond.mark().line, 5);
        assert_eq!(cond.mark().col, 5);
        let Node::Scalar { value, style, mark } = cond else {
            panic!()
        };
        assert_eq!(value, "foo and bar\n");
        // "bar" (value offset 8) is on line 6, column 5.
        assert_eq!(locate_in_scalar(text, *mark, *style, value, 8), (6, 5));
        assert_eq!(locate_in_scalar(text, *mark, *style, value, 4), (5, 9));
    }

    #[test]
    fn quoted_scalars_map_through_escapes() {
        let text = "k: \"a\\\"b c\"\n";
        let (docs, _) = parse_yaml(text).unwrap();
        let Node::Scalar { value, style, mark } = docs[0].get("k").unwrap() else {
            panic!()
        };
        assert_eq!(value, "a\"b c");
        // 'c' is value offset 4; in the file it is at column 10.
        assert_eq!(locate_in_scalar(text, *mark, *style, value, 4), (1, 10));
    }

    #[test]
    fn errors_and_limits() {
        let e = parse_yaml("- a: [b\n- c").unwrap_err();
        assert!(e.line >= 1, "{e:?}");
        let e = parse_yaml("a: &x [1]\nb: *x\n").unwrap_err();
        assert_eq!(e.message, "YAML aliases are not supported");
        let deep = "[".repeat(100_000);
        assert!(parse_yaml(&deep).is_err());
        let e = parse_yaml(&("- ".repeat(100_000) + "x")).unwrap_err();
        assert_eq!(e.message, "nesting deeper than 64 levels");
        assert!(parse_yaml("").unwrap().0.is_empty());
    }

    #[test]
    fn closing_bracket_at_parent_indentation() {
        let text = "- list: a\n  items: [\n    \"x\",\n    \"y\"\n  ]\n- list: b\n  items: [z]\n";
        let (docs, patched) = parse_yaml(text).unwrap();
        assert_eq!(
            patched.as_deref(),
            Some(text.replace("\n  ]", "\n    ]").as_str())
        );
        let Node::Seq { items, .. } = &docs[0] else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        // Other errors are reported as they are.
        assert!(parse_yaml("a: [\n  \"x\"\n b: c").is_err());
    }
}
