//! Fuzz entry: a whole rules file through saker-rules' YAML loader, then every loaded
//! rule's condition and output format on an event. Shared by `fuzz_targets/rules_yaml.rs`
//! and daemon/rules/tests/fuzz_corpus.rs.

use std::sync::OnceLock;

use saker_rules::{saker_fields, FieldArg, FieldId, FieldRegistry, FieldSource, RuleSet, Value};

fn registry() -> &'static FieldRegistry {
    static R: OnceLock<FieldRegistry> = OnceLock::new();
    R.get_or_init(saker_fields)
}

/// Answers every field with the same string, so output formatting fills every placeholder.
struct EveryFieldX;

impl FieldSource for EveryFieldX {
    fn get(&self, _field: FieldId, _arg: &FieldArg) -> Option<Value<'_>> {
        Some(Value::Str("x"))
    }
}

/// Panics on a bug: a crash while loading, evaluating or formatting.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((rules, _report)) = RuleSet::load_sources(&[("fuzz.yaml", text)], registry()) else {
        return;
    };
    for rule in rules.rules() {
        let _ = rule.matches(&EveryFieldX);
        let _ = rule.format_output(&EveryFieldX);
    }
    let _ = rules.required_fields();
}
