//! Replays the fuzz corpus of the rules targets (tests/fuzz/corpus/rules_condition and
//! rules_yaml) through the fuzz targets' own entry functions, on stable: every input the
//! fuzzer kept, and every crash it found (fixed), stays checked by `cargo test`.

#[path = "../../../tests/fuzz/src/replay.rs"]
mod replay;
#[path = "../../../tests/fuzz/src/entry/rules_condition.rs"]
mod rules_condition;
#[path = "../../../tests/fuzz/src/entry/rules_yaml.rs"]
mod rules_yaml;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fuzz/corpus");

#[test]
fn rules_condition_corpus() {
    replay::replay(CORPUS, "rules_condition", rules_condition::run);
}

#[test]
fn rules_yaml_corpus() {
    replay::replay(CORPUS, "rules_yaml", rules_yaml::run);
}

/// Found by the rules_condition fuzzer: a quoted field argument holding `[` printed bare
/// (`proc.aname[a[]`), so the canonical text did not parse back.
#[test]
fn quoted_field_argument_prints_back_quoted() {
    let e =
        saker_rules::parse(r#"proc.aname["a[ b"] = x and proc.aname['c"d'] = y"#).expect("parses");
    let printed = e.to_string();
    assert_eq!(
        printed,
        r#"(proc.aname["a[ b"] = x and proc.aname["c\"d"] = y)"#
    );
    let again = saker_rules::parse(&printed).expect("canonical text parses");
    assert_eq!(again.to_string(), printed);
    // Bare arguments stay bare.
    let e = saker_rules::parse("proc.aname[2] = sh").expect("parses");
    assert_eq!(e.to_string(), "proc.aname[2] = sh");
}
