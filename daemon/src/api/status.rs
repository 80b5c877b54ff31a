//! Errors → gRPC statuses, and the request checks every service shares (filters, time
//! ranges, enums, cursors).
//!
//! Filter errors follow the API's documented form `<line>:<col>: <message> (near token
//! '<token>')`, or `(at end of input)` when the filter ended early. saker-rules gives
//! syntax errors in that form already; compile errors (unknown field, bad value, …) carry
//! their position separately and are re-assembled here.

use std::sync::Arc;

use saker_event::Alert;
use saker_rules::{CompileError, Filter, FilterError, Location};
use saker_store::{Query, StoreError};
use tonic::Status;

use crate::fields::{AlertView, Fields};

/// Longest filter accepted (bytes). Filters are typed by people or built by tools; a
/// longer one is a mistake or an attack.
pub const MAX_FILTER_BYTES: usize = 64 << 10;

/// Longest token quoted back in an error message (characters).
const MAX_TOKEN_CHARS: usize = 80;

/// `line:col: message (near token 'x')`.
fn positioned(line: u32, col: u32, message: &str, token: &str) -> String {
    if token.is_empty() {
        format!("{line}:{col}: {message} (at end of input)")
    } else {
        let t: String = token.chars().take(MAX_TOKEN_CHARS).collect();
        format!("{line}:{col}: {message} (near token '{t}')")
    }
}

/// Byte offset of a 1-based (line, column-in-characters) position in `text`.
fn offset_of(text: &str, line: u32, col: u32) -> usize {
    let (mut l, mut c) = (1u32, 1u32);
    for (i, ch) in text.char_indices() {
        if l == line && c == col {
            return i;
        }
        if ch == '\n' {
            l += 1;
            c = 1;
        } else {
            c += 1;
        }
    }
    text.len()
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | '*' | '?' | '+' | ':' | '[' | ']')
}

/// The token that starts at `offset` (a quoted string, a word, an operator or one
/// character), as saker-rules quotes tokens in its syntax errors.
fn token_at(text: &str, offset: usize) -> String {
    let Some(rest) = text.get(offset..) else {
        return String::new();
    };
    let rest = rest.trim_start();
    let mut chars = rest.char_indices();
    let Some((_, first)) = chars.next() else {
        return String::new();
    };
    let end = if first == '"' || first == '\'' {
        let mut esc = false;
        let mut end = rest.len();
        for (i, c) in chars {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == first {
                end = i + c.len_utf8();
                break;
            }
        }
        end
    } else if is_word_char(first) {
        rest.find(|c: char| !(is_word_char(c) || c == '.'))
            .unwrap_or(rest.len())
    } else if let Some(op) = ["==", "!=", "<=", ">="]
        .iter()
        .find(|o| rest.starts_with(**o))
    {
        op.len()
    } else {
        first.len_utf8()
    };
    rest[..end].to_string()
}

/// The API's text for a filter error.
pub fn format_filter_error(text: &str, e: &FilterError) -> String {
    let c = match e {
        FilterError::Syntax(s) => return positioned(s.line, s.col, &s.message, &s.token),
        FilterError::Compile(c) => c,
    };
    let at = |pos: &Location| token_at(text, offset_of(text, pos.line, pos.col));
    let (pos, message, token) = match c {
        CompileError::UnknownField { name, pos } => {
            (pos, format!("unknown field {name}"), name.clone())
        }
        CompileError::UndefinedMacro { name, pos } => {
            (pos, format!("unknown field or macro {name}"), name.clone())
        }
        CompileError::MacroCycle { name, pos } => {
            (pos, format!("macro {name} references itself"), at(pos))
        }
        CompileError::MacroSyntax { error, .. } => {
            return positioned(error.line, error.col, &error.message, &error.token)
        }
        CompileError::BadValue {
            field,
            value,
            expected,
            pos,
        } => (
            pos,
            format!("field {field}: invalid value '{value}', expected {expected}"),
            at(pos),
        ),
        CompileError::UnsupportedOperator { op, field, ty, pos } => (
            pos,
            format!("operator '{op}' is not supported for field {field} of type {ty}"),
            at(pos),
        ),
        CompileError::BadArgument {
            field,
            message,
            pos,
        } => (pos, format!("field {field}: {message}"), at(pos)),
        CompileError::NeedsOperator { field, pos } => (
            pos,
            format!("field {field} is not boolean: an operator is required"),
            at(pos),
        ),
        CompileError::TooDeep { limit, pos } => (
            pos,
            format!("condition nests deeper than the limit of {limit} levels"),
            at(pos),
        ),
        CompileError::TooLarge { limit, what, pos } => (
            pos,
            format!("condition grows beyond {limit} {what}"),
            at(pos),
        ),
    };
    if pos.file.is_some() || pos.line == 0 {
        // Not a position in the filter text (cannot happen without macros): say so.
        return format!("1:1: {c}");
    }
    positioned(pos.line, pos.col, &message, &token)
}

pub fn filter_error(text: &str, e: &FilterError) -> Status {
    Status::invalid_argument(format_filter_error(text, e))
}

/// A store failure as a status. `filter` is the request's filter text, for positions.
pub fn store_error(e: StoreError, filter: &str) -> Status {
    match e {
        StoreError::Filter(f) => filter_error(filter, &f),
        StoreError::BadCursor(_) => Status::invalid_argument("invalid cursor"),
        StoreError::WriterGone => Status::unavailable("the store is closed"),
        other => Status::internal(format!("store: {other}")),
    }
}

/// A blocking task that panicked or was cancelled.
pub fn join_error(e: tokio::task::JoinError) -> Status {
    Status::internal(format!("request task failed: {e}"))
}

/// A request's filter, checked and compiled. Empty (or blank) text selects everything.
#[derive(Clone)]
pub struct ReqFilter {
    pub text: String,
    pub compiled: Option<Arc<Filter>>,
}

impl ReqFilter {
    pub fn parse(text: &str, fields: &Fields) -> Result<ReqFilter, Status> {
        if text.len() > MAX_FILTER_BYTES {
            return Err(Status::invalid_argument(format!(
                "the filter is {} bytes long; at most {MAX_FILTER_BYTES} are accepted",
                text.len()
            )));
        }
        if text.trim().is_empty() {
            return Ok(ReqFilter {
                text: String::new(),
                compiled: None,
            });
        }
        let f = Filter::compile(text, &fields.registry).map_err(|e| filter_error(text, &e))?;
        Ok(ReqFilter {
            text: text.to_string(),
            compiled: Some(Arc::new(f)),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.compiled.is_none()
    }

    /// Whether an alert matches (the same evaluation the store's predicate does).
    pub fn matches(&self, fields: &Fields, a: &Alert) -> bool {
        match &self.compiled {
            Some(f) => f.matches(&AlertView::new(fields, a)),
            None => true,
        }
    }

    /// A store query for this filter: the text for the SQL part and the compiled filter
    /// as the predicate for what SQL cannot decide.
    pub fn query(&self, fields: &Arc<Fields>) -> Query {
        match &self.compiled {
            None => Query::new(),
            Some(f) => {
                let (f, fields) = (f.clone(), fields.clone());
                Query::new()
                    .filter(self.text.clone())
                    .predicate(move |a: &Alert| f.matches(&AlertView::new(&fields, a)))
            }
        }
    }
}

/// `since_ns`/`until_ns` as store bounds (0 = none); `since > until` is refused.
pub fn time_range(since_ns: i64, until_ns: i64) -> Result<(Option<i64>, Option<i64>), Status> {
    let since = (since_ns != 0).then_some(since_ns);
    let until = (until_ns != 0).then_some(until_ns);
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(Status::invalid_argument(format!(
                "since_ns ({s}) is after until_ns ({u})"
            )));
        }
    }
    Ok((since, until))
}

/// A page size: 0 → `default`, above `max` → `max`.
pub fn page_size(limit: u32, default: usize, max: usize) -> usize {
    match limit {
        0 => default,
        n => (n as usize).min(max),
    }
}

/// Newest first?
pub fn order(v: i32) -> Result<bool, Status> {
    use saker_proto::v1::Order;
    match Order::try_from(v) {
        Ok(Order::Unspecified | Order::OldestFirst) => Ok(false),
        Ok(Order::NewestFirst) => Ok(true),
        Err(_) => Err(Status::invalid_argument(format!("unknown order {v}"))),
    }
}

/// Cursors are `<tag>:<time_ns>:<id>`; the tag names the method that returned it.
pub fn cursor(tag: &str, s: &str) -> Result<Option<(i64, String)>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Status::invalid_argument(
            "invalid cursor: pass back the next_cursor returned by the same method",
        )
    };
    let rest = s
        .strip_prefix(tag)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(bad)?;
    let (t, id) = rest.split_once(':').ok_or_else(bad)?;
    let t: i64 = t.parse().map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Some((t, id.to_string())))
}

pub fn make_cursor(tag: &str, time_ns: i64, id: &str) -> String {
    format!("{tag}:{time_ns}:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> String {
        match ReqFilter::parse(text, &Fields::new()) {
            Ok(_) => panic!("{text:?} should not compile"),
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::InvalidArgument);
                s.message().to_string()
            }
        }
    }

    #[test]
    fn filter_errors_have_position_and_token() {
        assert_eq!(
            msg("proc.nam = x"),
            "1:1: unknown field proc.nam (near token 'proc.nam')"
        );
        let m = msg("proc.name = x )");
        assert!(m.starts_with("1:15: "), "{m}");
        assert!(m.ends_with("(near token ')')"), "{m}");
        let m = msg("proc.name = ");
        assert!(m.ends_with("(at end of input)"), "{m}");
        let deep = "(".repeat(10_000) + "proc.name=x" + &")".repeat(10_000);
        let m = msg(&deep);
        assert!(m.starts_with("1:257: "), "{m}");
        assert!(m.contains("256"), "{m}");
        let m = msg("proc.pid = abc");
        assert!(m.starts_with("1:"), "{m}");
        assert!(m.contains("near token"), "{m}");
        assert!(ReqFilter::parse("   ", &Fields::new()).unwrap().is_empty());
        assert!(ReqFilter::parse("proc.name = x", &Fields::new()).is_ok());
        let long = "proc.name = x or ".repeat(5000) + "proc.name = y";
        assert!(msg(&long).contains("at most"));
    }

    #[test]
    fn tokens_and_offsets() {
        assert_eq!(token_at("a = \"x y\" b", 4), "\"x y\"");
        assert_eq!(token_at("a >= 3", 2), ">=");
        assert_eq!(token_at("x\n  é.b c", offset_of("x\n  é.b c", 2, 3)), "é.b");
        assert_eq!(offset_of("abc", 5, 1), 3);
    }

    #[test]
    fn cursors_are_tagged() {
        assert_eq!(
            cursor("ev1", &make_cursor("ev1", -5, "a:b")).unwrap(),
            Some((-5, "a:b".to_string()))
        );
        assert!(cursor("inc1", &make_cursor("ev1", 5, "x")).is_err());
        assert!(cursor("ev1", "ev1:x:y").is_err());
        assert!(cursor("ev1", "ev1:5:").is_err());
        assert_eq!(cursor("ev1", "").unwrap(), None);
    }

    #[test]
    fn ranges_and_pages() {
        assert!(time_range(5, 4).is_err());
        assert_eq!(time_range(0, 4).unwrap(), (None, Some(4)));
        assert_eq!(page_size(0, 100, 10_000), 100);
        assert_eq!(page_size(50_000, 100, 10_000), 10_000);
        assert!(order(7).is_err());
        assert!(order(2).unwrap());
    }
}
