//! Filter language → parameterized SQL `WHERE` clause.
//!
//! The filter is first compiled with saker-rules against the daemon's field registry, so
//! syntax errors, unknown fields, bad values and unsupported operators come back as
//! saker-rules' typed errors with their `line:col`. The parsed tree is then translated.
//!
//! Semantics follow saker-rules exactly: a missing value (NULL column) makes every check
//! false, `!=` included, while `not (f = x)` is true. SQL's three-valued logic would make
//! `NOT (NULL = x)` NULL, so every translated check is guarded (`col IS NOT NULL AND …`)
//! and is always 0 or 1; `NOT` then means what it means in the rules engine.
//!
//! Checks on fields that are not columns cannot be translated. The translation then
//! yields a *necessary* condition (every alert matching the filter satisfies it: an
//! untranslatable check becomes "true" under `and`/`or`, "false" under an odd number of
//! `not`s), marked inexact; the caller's predicate evaluates the whole filter on the
//! rows it selects. Values are always bound parameters, never spliced into the SQL text.

use std::sync::OnceLock;

use rusqlite::types::Value as SqlValue;
use saker_rules::{parse, Check, Expr, FieldRegistry, Filter, Op, Operand, Priority};

use crate::error::StoreError;

/// At most this many checks become SQL (SQLite limits expression depth to 1000); checks
/// beyond it are left to the predicate.
const MAX_LEAVES: usize = 200;
/// At most this many bound values (SQLite allows 32766).
const MAX_PARAMS: usize = 4000;

/// The daemon's field registry, built once.
pub(crate) fn registry() -> &'static FieldRegistry {
    static R: OnceLock<FieldRegistry> = OnceLock::new();
    R.get_or_init(saker_rules::saker_fields)
}

/// A filter translated to SQL over `alerts AS a`.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    /// A boolean SQL expression (`1` when nothing could be translated).
    pub sql: String,
    /// Values for the `?` placeholders of [`SqlFilter::sql`], in order.
    pub params: Vec<SqlValue>,
    /// The SQL is equivalent to the filter; otherwise it is only a pre-filter and the
    /// caller's predicate decides.
    pub exact: bool,
    /// Fields (or reasons) that could not be translated, for error messages.
    pub untranslated: Vec<String>,
}

impl SqlFilter {
    /// Validates `text` against `saker_rules::saker_fields()` (saker-rules errors with
    /// position) and translates it.
    pub fn translate(text: &str) -> Result<SqlFilter, StoreError> {
        Self::translate_with(text, registry())
    }

    /// Same, validating against the caller's registry (the daemon's adds fields of its
    /// own; they are not columns, so they go to the predicate).
    pub fn translate_with(text: &str, fields: &FieldRegistry) -> Result<SqlFilter, StoreError> {
        Filter::compile(text, fields)?;
        let expr = parse(text).map_err(saker_rules::FilterError::from)?;
        Ok(Self::from_expr(&expr))
    }

    /// Translates an already parsed (and validated) expression.
    pub fn from_expr(expr: &Expr) -> SqlFilter {
        let mut t = Translator::default();
        let (cond, exact) = t.approx(expr, Bound::Necessary);
        let (sql, params) = match cond {
            Cond::Const(true) => ("1".to_string(), Vec::new()),
            Cond::Const(false) => ("0".to_string(), Vec::new()),
            Cond::Sql(s, p) => (s, p),
        };
        SqlFilter {
            sql,
            params,
            exact,
            untranslated: t.untranslated,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// filter ⇒ condition
    Necessary,
    /// condition ⇒ filter
    Sufficient,
}

impl Bound {
    fn flip(self) -> Bound {
        match self {
            Bound::Necessary => Bound::Sufficient,
            Bound::Sufficient => Bound::Necessary,
        }
    }
}

#[derive(Debug, Clone)]
enum Cond {
    Const(bool),
    Sql(String, Vec<SqlValue>),
}

#[derive(Default)]
struct Translator {
    leaves: usize,
    params: usize,
    untranslated: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Priority,
    /// `mitre.technique`: any element of the side table.
    Techniques,
}

#[derive(Clone, Copy)]
struct Column {
    sql: &'static str,
    kind: Kind,
    nullable: bool,
}

/// Field → column. Must agree with [`crate::columns::AlertColumns`].
fn column(field: &str) -> Option<Column> {
    let c = |sql, kind, nullable| {
        Some(Column {
            sql,
            kind,
            nullable,
        })
    };
    use Kind::*;
    match field {
        "alert.id" => c("a.id", Text, false),
        "evt.time" => c("a.time_ns", Int, false),
        "rule" => c("a.rule", Text, false),
        "policy" => c("a.policy", Text, true),
        "priority" | "severity" => c("a.severity", Priority, false),
        "node.name" => c("a.node", Text, false),
        "kubernetes.cluster.name" => c("a.cluster", Text, false),
        "container.id" => c("a.container_id", Text, false),
        "container.image" => c("a.image", Text, true),
        "container.image.repository" => c("a.image_repository", Text, true),
        "k8s.ns.name" => c("a.namespace", Text, true),
        "k8s.pod.name" => c("a.pod", Text, true),
        "k8s.workload.name" => c("a.workload", Text, true),
        "proc.name" => c("a.proc_name", Text, false),
        "proc.exe" => c("a.proc_exe", Text, false),
        "proc.pid" => c("a.proc_pid", Int, false),
        "proc.ppid" => c("a.proc_ppid", Int, false),
        "mitre.technique" => c("t.technique", Techniques, false),
        _ => None,
    }
}

/// Whether a filter field is answered by a column (and so runs in SQL).
pub fn is_column_field(field: &str) -> bool {
    column(field).is_some()
}

fn and(items: Vec<Cond>) -> Cond {
    combine(items, " AND ", false)
}

fn or(items: Vec<Cond>) -> Cond {
    combine(items, " OR ", true)
}

/// `absorbing` is the constant that decides the whole (true for OR, false for AND).
fn combine(items: Vec<Cond>, sep: &str, absorbing: bool) -> Cond {
    let mut parts = Vec::new();
    let mut params = Vec::new();
    for c in items {
        match c {
            Cond::Const(b) if b == absorbing => return Cond::Const(absorbing),
            Cond::Const(_) => {}
            Cond::Sql(s, p) => {
                parts.push(s);
                params.extend(p);
            }
        }
    }
    match parts.len() {
        0 => Cond::Const(!absorbing),
        1 => Cond::Sql(parts.pop().unwrap_or_default(), params),
        _ => Cond::Sql(format!("({})", parts.join(sep)), params),
    }
}

fn not(c: Cond) -> Cond {
    match c {
        Cond::Const(b) => Cond::Const(!b),
        Cond::Sql(s, p) => Cond::Sql(format!("(NOT {s})"), p),
    }
}

impl Translator {
    /// A condition bounding `e` from the `bound` side, and whether it is exact.
    fn approx(&mut self, e: &Expr, bound: Bound) -> (Cond, bool) {
        match e {
            Expr::And(v) | Expr::Or(v) => {
                let mut exact = true;
                let items = v
                    .iter()
                    .map(|x| {
                        let (c, ex) = self.approx(x, bound);
                        exact &= ex;
                        c
                    })
                    .collect();
                let c = if matches!(e, Expr::And(_)) {
                    and(items)
                } else {
                    or(items)
                };
                (c, exact)
            }
            Expr::Not(x) => {
                let (c, exact) = self.approx(x, bound.flip());
                (not(c), exact)
            }
            Expr::Check(c) => match self.check(c) {
                Some((sql, params)) => (Cond::Sql(sql, params), true),
                None => (Cond::Const(bound == Bound::Necessary), false),
            },
            Expr::Macro { name, .. } => {
                self.note(format!("macro {name}"));
                (Cond::Const(bound == Bound::Necessary), false)
            }
        }
    }

    fn note(&mut self, what: String) {
        if !self.untranslated.contains(&what) {
            self.untranslated.push(what);
        }
    }

    fn check(&mut self, c: &Check) -> Option<(String, Vec<SqlValue>)> {
        let Some(col) = column(&c.field).filter(|_| c.arg.is_none()) else {
            self.note(c.field.clone());
            return None;
        };
        if self.leaves >= MAX_LEAVES {
            self.note(format!("{} (more than {MAX_LEAVES} checks)", c.field));
            return None;
        }
        let Some((sql, params)) = leaf(col, c) else {
            let op = c.op.map_or("(bare)", Op::as_str);
            self.note(format!("{} {op}", c.field));
            return None;
        };
        if self.params + params.len() > MAX_PARAMS {
            self.note(format!("{} (more than {MAX_PARAMS} values)", c.field));
            return None;
        }
        self.leaves += 1;
        self.params += params.len();
        Some((sql, params))
    }
}

fn one(c: &Check) -> Option<&str> {
    match &c.value {
        Operand::One(l) => Some(&l.text),
        _ => None,
    }
}

fn many(c: &Check) -> Option<Vec<&str>> {
    match &c.value {
        Operand::List(items) => Some(items.iter().map(|l| l.text.as_str()).collect()),
        Operand::One(l) => Some(vec![&l.text]),
        Operand::None => None,
    }
}

/// The SQL of one check, already guarded against NULL.
fn leaf(col: Column, c: &Check) -> Option<(String, Vec<SqlValue>)> {
    let op = c.op?;
    let (expr, params) = match col.kind {
        Kind::Text => text_cmp(col.sql, op, c)?,
        Kind::Int => int_cmp(col.sql, op, c)?,
        Kind::Priority => prio_cmp(col.sql, op, c)?,
        Kind::Techniques => {
            // `!=` on a list: no element equals (saker-rules' list semantics).
            let (inner_op, negate) = if op == Op::Ne {
                (Op::Eq, true)
            } else {
                (op, false)
            };
            if op == Op::Exists {
                return Some(("1".into(), Vec::new()));
            }
            let (cond, params) = text_cmp(col.sql, inner_op, c)?;
            let sub = format!(
                "EXISTS (SELECT 1 FROM alert_techniques t WHERE t.alert_id = a.id AND {cond})"
            );
            let sql = if negate { format!("(NOT {sub})") } else { sub };
            return Some((sql, params));
        }
    };
    let sql = if col.nullable {
        if expr == "1" {
            format!("({} IS NOT NULL)", col.sql)
        } else {
            format!("({} IS NOT NULL AND {expr})", col.sql)
        }
    } else {
        expr
    };
    Some((sql, params))
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_string())
}

fn chars(s: &str) -> SqlValue {
    SqlValue::Integer(i64::try_from(s.chars().count()).unwrap_or(i64::MAX))
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// String operators. SQLite's `substr`/`instr`/`length` count characters on TEXT, so
/// prefix and suffix tests agree with Rust's on valid UTF-8 (columns are valid UTF-8).
fn text_cmp(col: &str, op: Op, c: &Check) -> Option<(String, Vec<SqlValue>)> {
    Some(match op {
        Op::Exists => ("1".into(), vec![]),
        Op::Eq => (format!("{col} = ?"), vec![text(one(c)?)]),
        Op::Ne => (format!("{col} != ?"), vec![text(one(c)?)]),
        Op::Contains => (format!("instr({col}, ?) > 0"), vec![text(one(c)?)]),
        // saker-rules folds ASCII only; so does SQLite's lower() (no ICU).
        Op::IContains => (
            format!("instr(lower({col}), ?) > 0"),
            vec![text(&one(c)?.to_ascii_lowercase())],
        ),
        Op::StartsWith => {
            let v = one(c)?;
            (format!("substr({col}, 1, ?) = ?"), vec![chars(v), text(v)])
        }
        Op::EndsWith => {
            let v = one(c)?;
            if v.is_empty() {
                ("1".into(), vec![])
            } else {
                (format!("substr({col}, -?) = ?"), vec![chars(v), text(v)])
            }
        }
        Op::In | Op::Intersects => {
            let vs = many(c)?;
            if vs.is_empty() {
                ("0".into(), vec![])
            } else {
                (
                    format!("{col} IN ({})", placeholders(vs.len())),
                    vs.into_iter().map(text).collect(),
                )
            }
        }
        // Without classes, saker-rules' globs (fnmatch, `*` crosses '/') and SQLite's
        // GLOB agree; patterns with `[` are left to the predicate.
        Op::Glob | Op::IGlob => {
            let v = one(c)?;
            if v.contains('[') {
                return None;
            }
            if op == Op::IGlob {
                (
                    format!("lower({col}) GLOB ?"),
                    vec![text(&v.to_ascii_lowercase())],
                )
            } else {
                (format!("{col} GLOB ?"), vec![text(v)])
            }
        }
        Op::PMatch => {
            let mut parts = Vec::new();
            let mut params = Vec::new();
            for p in many(c)? {
                // As saker-rules' PathSet: "/etc/" is "/etc"; "/" (or "") matches any
                // absolute path.
                let e = p.trim_end_matches('/');
                if e.is_empty() {
                    parts.push(format!("substr({col}, 1, 1) = '/'"));
                } else {
                    let below = format!("{e}/");
                    parts.push(format!("({col} = ? OR substr({col}, 1, ?) = ?)"));
                    params.extend([text(e), chars(&below), SqlValue::Text(below)]);
                }
            }
            match parts.len() {
                0 => ("0".into(), vec![]),
                _ => (format!("({})", parts.join(" OR ")), params),
            }
        }
        _ => return None,
    })
}

/// saker-rules' integer literals: decimal or 0x hex, optionally signed.
fn parse_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mag = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => i128::from(u64::from_str_radix(h, 16).ok()?),
        None => i128::from(digits.parse::<u64>().ok()?),
    };
    Some(if neg { -mag } else { mag })
}

/// Beyond i64 a literal is bound as a REAL: SQLite compares integers with reals exactly,
/// so `evt.time < 18446744073709551615` still holds for every row.
fn int_value(n: i128) -> SqlValue {
    match i64::try_from(n) {
        Ok(i) => SqlValue::Integer(i),
        Err(_) => SqlValue::Real(n as f64),
    }
}

fn cmp_sql(op: Op) -> Option<&'static str> {
    Some(match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        _ => return None,
    })
}

fn ordered_cmp(
    col: &str,
    op: Op,
    c: &Check,
    value: impl Fn(&str) -> Option<SqlValue>,
) -> Option<(String, Vec<SqlValue>)> {
    if op == Op::Exists {
        return Some(("1".into(), vec![]));
    }
    if matches!(op, Op::In | Op::Intersects) {
        let vs = many(c)?
            .into_iter()
            .map(&value)
            .collect::<Option<Vec<_>>>()?;
        if vs.is_empty() {
            return Some(("0".into(), vec![]));
        }
        return Some((format!("{col} IN ({})", placeholders(vs.len())), vs));
    }
    let sym = cmp_sql(op)?;
    Some((format!("{col} {sym} ?"), vec![value(one(c)?)?]))
}

fn int_cmp(col: &str, op: Op, c: &Check) -> Option<(String, Vec<SqlValue>)> {
    ordered_cmp(col, op, c, |v| parse_int(v).map(int_value))
}

fn prio_cmp(col: &str, op: Op, c: &Check) -> Option<(String, Vec<SqlValue>)> {
    ordered_cmp(col, op, c, |v| {
        let p = Priority::parse(v)?;
        Some(SqlValue::Integer(i64::from(7 - p.syslog_level())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(s: &str) -> SqlFilter {
        match SqlFilter::translate(s) {
            Ok(f) => f,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn values_are_parameters() {
        let f = tr(r#"proc.name = "'; DROP TABLE alerts; --" and policy="Drift Detection""#);
        assert!(f.exact);
        assert_eq!(
            f.sql,
            "(a.proc_name = ? AND (a.policy IS NOT NULL AND a.policy = ?))"
        );
        assert_eq!(
            f.params,
            vec![
                SqlValue::Text("'; DROP TABLE alerts; --".into()),
                SqlValue::Text("Drift Detection".into())
            ]
        );
    }

    #[test]
    fn not_and_lists() {
        let f = tr("not k8s.ns.name in (a, b) or mitre.technique != T1059");
        assert!(f.exact);
        assert_eq!(
            f.sql,
            "((NOT (a.namespace IS NOT NULL AND a.namespace IN (?, ?))) OR (NOT EXISTS (SELECT 1 FROM alert_techniques t WHERE t.alert_id = a.id AND t.technique = ?)))"
        );
        let f = tr("priority >= warning and proc.pid in (1, 0x10)");
        assert_eq!(f.sql, "(a.severity >= ? AND a.proc_pid IN (?, ?))");
        assert_eq!(
            f.params,
            vec![
                SqlValue::Integer(3),
                SqlValue::Integer(1),
                SqlValue::Integer(16)
            ]
        );
    }

    #[test]
    fn partial_translation_is_a_necessary_condition() {
        // evt.type is not a column: dropped from the AND, marked inexact.
        let f = tr("k8s.ns.name = x and evt.type = execve");
        assert!(!f.exact);
        assert_eq!(f.sql, "(a.namespace IS NOT NULL AND a.namespace = ?)");
        assert_eq!(f.untranslated, vec!["evt.type".to_string()]);
        // Under an OR nothing can be dropped: no pre-filter.
        let f = tr("k8s.ns.name = x or evt.type = execve");
        assert_eq!((f.sql.as_str(), f.exact), ("1", false));
        // Under NOT the untranslatable check counts as false: not (A and false) = true;
        // not (A or false) = not A.
        let f = tr("not (rule = r or fd.name = /x)");
        assert_eq!(f.sql, "(NOT a.rule = ?)");
        let f = tr("not (rule = r and fd.name = /x)");
        assert_eq!(f.sql, "1");
        // Globs with classes go to the predicate.
        assert!(!tr("proc.name glob 'ba[sz]h'").exact);
        assert!(tr("proc.name glob 'ba?h*'").exact);
    }

    #[test]
    fn errors_carry_positions() {
        let e = SqlFilter::translate("k8s.ns.name = x and bogus.field = 1").unwrap_err();
        let StoreError::Filter(saker_rules::FilterError::Compile(
            saker_rules::CompileError::UnknownField { name, pos },
        )) = e
        else {
            panic!("{e:?}")
        };
        assert_eq!((name.as_str(), pos.line, pos.col), ("bogus.field", 1, 21));
        let e = SqlFilter::translate("rule = (").unwrap_err();
        assert!(
            matches!(e, StoreError::Filter(saker_rules::FilterError::Syntax(_))),
            "{e:?}"
        );
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int("-0x10"), Some(-16));
        assert_eq!(parse_int("18446744073709551615"), Some(u64::MAX as i128));
        assert_eq!(int_value(u64::MAX as i128), SqlValue::Real(u64::MAX as f64));
    }
}
