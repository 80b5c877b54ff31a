//! Fuzz entry: one filter condition through saker-rules' lexer, parser, printer,
//! compiler and evaluator. Shared by `fuzz_targets/rules_condition.rs` and
//! daemon/rules/tests/fuzz_corpus.rs.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use saker_rules::{
    parse, saker_fields, FieldArg, FieldId, FieldRegistry, FieldSource, Filter, ListRef, Value,
};

fn registry() -> &'static FieldRegistry {
    static R: OnceLock<FieldRegistry> = OnceLock::new();
    R.get_or_init(saker_fields)
}

/// Answers every field with one of a few values of every variant (or none), chosen by
/// field id, so evaluation reaches each operator's matcher. Any variant is legal for any
/// field: "a variant the operator cannot use makes the check false" (saker-rules).
pub struct Varied;

const LIST: &[&str] = &["bash", "/etc/passwd", ""];

impl FieldSource for Varied {
    fn get(&self, field: FieldId, _arg: &FieldArg) -> Option<Value<'_>> {
        let id = format!("{field:?}");
        match id.bytes().map(usize::from).sum::<usize>() % 8 {
            0 => None,
            1 => Some(Value::Str("/etc/passwd")),
            2 => Some(Value::Str("")),
            3 => Some(Value::Int(-1)),
            4 => Some(Value::Uint(u64::MAX)),
            5 => Some(Value::Bool(true)),
            6 => Some(Value::List(ListRef::Strs(LIST))),
            _ => Some(Value::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))),
        }
    }
}

/// Panics on a bug: a crash in any stage, or a parsed tree whose canonical text
/// (`Display`) does not parse back to a tree with the same text.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = parse(text) {
        // Trees carry source offsets, so compare canonical texts: printing the reparsed
        // tree must give the same text again.
        let printed = expr.to_string();
        match parse(&printed) {
            Ok(again) => assert_eq!(
                again.to_string(),
                printed,
                "canonical text {printed:?} of {text:?} parses to a different tree"
            ),
            // Printing parenthesises every and/or group, so a tree just under the
            // nesting limit may print one level over it.
            Err(e) => assert!(
                e.message.contains("nests deeper"),
                "canonical text {printed:?} of {text:?} does not parse: {e}"
            ),
        }
    }
    if let Ok(filter) = Filter::compile(text, registry()) {
        let _ = filter.matches(&Varied);
        let _ = filter.evt_types();
        let _ = filter.constant();
    }
}
