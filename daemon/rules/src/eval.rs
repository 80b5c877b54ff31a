//! Evaluation of compiled conditions. No allocation, no field-name lookups:
//! each leaf asks the host for one value by id.

use crate::compile::{parse_int, Leaf, Matcher, Node};
use crate::evttype::EvtType;
use crate::priority::Priority;
use crate::value::{FieldSource, Value};

/// `evt` is the event's interned type when the caller knows it; `evt.type`
/// checks then compare ids instead of asking the source.
pub(crate) fn eval<S: FieldSource + ?Sized>(n: &Node, src: &S, evt: Option<EvtType>) -> bool {
    match n {
        Node::Const(b) => *b,
        Node::And(v) => v.iter().all(|x| eval(x, src, evt)),
        Node::Or(v) => v.iter().any(|x| eval(x, src, evt)),
        Node::Not(x) => !eval(x, src, evt),
        Node::Leaf(l) => leaf(l, src, evt),
    }
}

#[inline]
fn leaf<S: FieldSource + ?Sized>(l: &Leaf, src: &S, evt: Option<EvtType>) -> bool {
    if let (Matcher::EvtType(set), Some(t)) = (&l.m, evt) {
        return set.contains(t) != l.negate;
    }
    // A missing value fails every check, `!=` included (Falco semantics).
    let Some(v) = src.get(l.field.id, &l.field.arg) else {
        return false;
    };
    matches(&l.m, &v) != l.negate
}

/// String checks hold for a list value if they hold for any element.
#[inline]
fn any_str(v: &Value<'_>, f: impl Fn(&str) -> bool) -> bool {
    match v {
        Value::Str(s) => f(s),
        Value::List(l) => l.iter().any(f),
        _ => false,
    }
}

#[inline]
fn num(v: &Value<'_>) -> Option<i128> {
    match *v {
        Value::Int(i) => Some(i128::from(i)),
        Value::Uint(u) => Some(i128::from(u)),
        Value::Str(s) => parse_int(s),
        _ => None,
    }
}

/// Priority values come as a name or as a syslog level.
fn prio_rank(v: &Value<'_>) -> Option<u8> {
    let p = match *v {
        Value::Str(s) => Priority::parse(s),
        Value::Int(i) => Priority::from_syslog_level(i),
        Value::Uint(u) => Priority::from_syslog_level(i64::try_from(u).ok()?),
        _ => None,
    }?;
    Some(p.rank())
}

fn matches(m: &Matcher, v: &Value<'_>) -> bool {
    match m {
        Matcher::Exists => true,
        Matcher::StrEq(x) => any_str(v, |s| s == &**x),
        Matcher::Contains(f) => any_str(v, |s| f.find(s.as_bytes()).is_some()),
        Matcher::IContains(n) => any_str(v, |s| n.found_in(s)),
        Matcher::StartsWith(p) => any_str(v, |s| s.starts_with(&**p)),
        Matcher::EndsWith(p) => any_str(v, |s| s.ends_with(&**p)),
        Matcher::Glob(g) => any_str(v, |s| g.matches(s)),
        Matcher::StrIn(set) => any_str(v, |s| set.contains(s)),
        Matcher::PMatch(p) => any_str(v, |s| p.matches(s)),
        Matcher::IntCmp(c, x) => num(v).is_some_and(|n| c.test(n, *x)),
        Matcher::IntIn(set) => num(v).is_some_and(|n| set.binary_search(&n).is_ok()),
        Matcher::Bool(b) => match *v {
            Value::Bool(x) => x == *b,
            Value::Int(i) => (i != 0) == *b,
            Value::Uint(u) => (u != 0) == *b,
            Value::Str(s) => s.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
            _ => false,
        },
        Matcher::IpIn(nets) => match *v {
            Value::Ip(ip) => nets.iter().any(|n| n.contains(ip)),
            Value::Str(s) => s
                .parse()
                .is_ok_and(|ip| nets.iter().any(|n| n.contains(ip))),
            _ => false,
        },
        Matcher::PrioCmp(c, r) => prio_rank(v).is_some_and(|x| c.test(x, *r)),
        Matcher::PrioIn(rs) => prio_rank(v).is_some_and(|x| rs.contains(&x)),
        Matcher::EvtType(set) => any_str(v, |s| set.contains(EvtType::from_name(s))),
    }
}
