//! Rules files: definitions, append/override, exceptions, metadata, error
//! reporting and output formatting.

mod common;

use common::MapSource;
use saker_rules::{
    saker_fields, EvtType, LoadError, LoadReport, MetaValue, OwnedValue, Priority, RuleSet,
};

fn load(files: &[(&str, &str)]) -> (RuleSet, LoadReport) {
    let reg = saker_fields();
    RuleSet::load_sources(files, &reg).unwrap_or_else(|e| panic!("{e}"))
}

fn reason<'a>(report: &'a LoadReport, rule: &str) -> &'a str {
    report
        .skipped
        .iter()
        .find(|(n, _)| n == rule)
        .map(|(_, r)| r.as_str())
        .unwrap_or_else(|| panic!("{rule} not skipped: {report:?}"))
}

const BASE: &str = r#"
- required_engine_version: 0.57.0
- list: shell_binaries
  items: [bash, sh]
- macro: spawned_process
  condition: evt.type in (execve, execveat)
- macro: container
  condition: (container.id != host)
- rule: Shell in container
  desc: a shell ran in a container
  condition: spawned_process and container and proc.name in (shell_binaries)
  output: Shell (user=%user.name shell=%proc.name parent=%proc.pname[1] flags=%evt.arg.flags)
  priority: WARNING
  tags: [container, shell, mitre_execution, T1059.004]
"#;

fn shell<'r>(reg: &'r saker_rules::FieldRegistry, name: &str) -> MapSource<'r> {
    MapSource::new(reg)
        .s("evt.type", "execve")
        .s("container.id", "abc")
        .s("container.image.repository", "docker.io/library/app")
        .s("proc.name", name)
        .s("proc.pname", "node")
        .s("user.name", "app")
}

fn fires(rs: &RuleSet, name: &str, src: &MapSource<'_>) -> bool {
    rs.matching(EvtType::from_name("execve"), src)
        .any(|r| r.name == name)
}

#[test]
fn base_rule_metadata_and_output() {
    let (rs, report) = load(&[("base.yaml", BASE)]);
    assert_eq!(report.loaded, vec!["Shell in container"]);
    assert!(report.skipped.is_empty());
    assert_eq!(rs.required_engine_version(), Some("0.57.0"));
    let r = rs.get("Shell in container").unwrap();
    assert_eq!(r.priority, Priority::Warning);
    assert_eq!(r.desc, "a shell ran in a container");
    assert_eq!(r.mitre_tactics, vec!["TA0002"]);
    assert_eq!(r.mitre_techniques, vec!["T1059.004"]);
    assert_eq!(r.location.to_string(), "base.yaml:9:3");
    let reg = saker_fields();
    let ev = shell(&reg, "bash");
    assert!(fires(&rs, "Shell in container", &ev));
    assert!(!fires(&rs, "Shell in container", &shell(&reg, "python")));
    // The host may pass a trait object.
    let dynsrc: &dyn saker_rules::FieldSource = &ev;
    assert_eq!(rs.matching(EvtType::from_name("execve"), dynsrc).count(), 1);
    assert!(r.format_output(dynsrc).starts_with("Shell (user=app"));
    assert_eq!(
        r.format_output(&ev),
        "Shell (user=app shell=bash parent=<NA> flags=<NA>)"
    );
    let fields = r.output_fields(&ev);
    assert_eq!(fields.len(), 4);
    assert_eq!(fields["proc.name"], Some(OwnedValue::Str("bash".into())));
    assert_eq!(fields["proc.pname[1]"], None);
}

#[test]
fn output_values_are_data() {
    let yaml = r#"
- rule: R
  condition: evt.type = execve
  output: "cmd=%proc.cmdline 100% done %% name=%proc.name."
  priority: INFO
"#;
    let (rs, _) = load(&[("r.yaml", yaml)]);
    let reg = saker_fields();
    let ev = MapSource::new(&reg)
        .s("evt.type", "execve")
        .s("proc.cmdline", "echo %proc.name %evt.type")
        .s("proc.name", "echo");
    assert_eq!(
        rs.get("R").unwrap().format_output(&ev),
        "cmd=echo %proc.name %evt.type 100% done % name=echo."
    );
}

#[test]
fn old_style_append() {
    let local = r#"
- list: shell_binaries
  items: [zsh]
  append: true
- macro: container
  condition: and container.image.repository != docker.io/library/builder
  append: true
- rule: Shell in container
  condition: and not proc.pname = sshd
  append: true
- rule: No such rule
  condition: and x
  append: true
"#;
    let (rs, report) = load(&[("base.yaml", BASE), ("local.yaml", local)]);
    let reg = saker_fields();
    assert!(
        fires(&rs, "Shell in container", &shell(&reg, "zsh")),
        "list append"
    );
    assert!(
        !fires(
            &rs,
            "Shell in container",
            &shell(&reg, "bash").s("proc.pname", "sshd")
        ),
        "rule append"
    );
    assert!(
        !fires(
            &rs,
            "Shell in container",
            &shell(&reg, "bash").s("container.image.repository", "docker.io/library/builder")
        ),
        "macro append"
    );
    assert_eq!(
        rs.get("Shell in container").unwrap().condition,
        "spawned_process and container and proc.name in (shell_binaries) and not proc.pname = sshd"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w == "local.yaml:11:3: append to undefined rule No such rule ignored"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn new_style_override() {
    let local = r#"
- list: shell_binaries
  items: [fish]
  override:
    items: replace
- rule: Shell in container
  condition: and user.name != root
  output: Shell! %proc.name
  priority: CRITICAL
  override:
    condition: append
    output: replace
    priority: replace
- rule: Shell in container
  tags: [extra]
  override:
    tags: append
"#;
    let (rs, report) = load(&[("base.yaml", BASE), ("local.yaml", local)]);
    assert!(
        report.warnings.iter().all(|w| !w.contains("local.yaml")),
        "{:?}",
        report.warnings
    );
    let reg = saker_fields();
    let r = rs.get("Shell in container").unwrap();
    assert_eq!(r.priority, Priority::Critical);
    assert_eq!(r.output, "Shell! %proc.name");
    assert_eq!(
        r.tags,
        vec![
            "container",
            "shell",
            "mitre_execution",
            "T1059.004",
            "extra"
        ]
    );
    assert!(fires(&rs, "Shell in container", &shell(&reg, "fish")));
    assert!(
        !fires(&rs, "Shell in container", &shell(&reg, "bash")),
        "items replaced"
    );
    assert!(!fires(
        &rs,
        "Shell in container",
        &shell(&reg, "fish").s("user.name", "root")
    ));
}

#[test]
fn enabled_overrides() {
    let off = "- rule: Shell in container\n  enabled: false\n";
    let (rs, report) = load(&[("base.yaml", BASE), ("off.yaml", off)]);
    assert_eq!(report.loaded, vec!["Shell in container"]);
    assert_eq!(report.disabled, vec!["Shell in container"]);
    let reg = saker_fields();
    assert!(!fires(&rs, "Shell in container", &shell(&reg, "bash")));
    let on = "- rule: Shell in container\n  enabled: true\n  override:\n    enabled: replace\n";
    let (rs, report) = load(&[("base.yaml", BASE), ("off.yaml", off), ("on.yaml", on)]);
    assert!(report.disabled.is_empty());
    assert!(fires(&rs, "Shell in container", &shell(&reg, "bash")));
}

#[test]
fn exceptions_compile_to_and_not() {
    let yaml = r#"
- list: allowed_images
  items: [docker.io/library/builder]
- rule: Write below etc
  condition: evt.type = openat and fd.name startswith /etc/
  output: write %fd.name
  priority: ERROR
  exceptions:
    - name: proc_file
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [dpkg, /etc/dpkg/]
        - [apt, /etc/apt/]
    - name: images
      fields: container.image.repository
      values: [allowed_images, quay.io/ok/image]
    - name: parents
      fields: [proc.pname, proc.cmdline]
      comps: [in, contains]
      values:
        - [[ansible, salt], "--config"]
    - name: unused
      fields: [proc.name]
      values: []
"#;
    let append = r#"
- rule: Write below etc
  exceptions:
    - name: proc_file
      values:
        - [vim, /etc/hosts]
  append: true
"#;
    let (rs, report) = load(&[("r.yaml", yaml), ("a.yaml", append)]);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let reg = saker_fields();
    let w = |proc_name: &str, file: &str| {
        MapSource::new(&reg)
            .s("evt.type", "openat")
            .s("proc.name", proc_name)
            .s("fd.name", file)
            .s("container.image.repository", "docker.io/library/app")
            .s("proc.pname", "bash")
            .s("proc.cmdline", "x")
    };
    let hit = |src: &MapSource<'_>| rs.matching(EvtType::from_name("openat"), src).count() == 1;
    assert!(hit(&w("vi", "/etc/passwd")));
    assert!(!hit(&w("dpkg", "/etc/dpkg/status")));
    assert!(hit(&w("dpkg", "/etc/passwd")), "tuple needs both fields");
    assert!(!hit(&w("apt", "/etc/apt/sources.list")));
    assert!(!hit(&w("vim", "/etc/hosts")), "appended exception values");
    assert!(
        !hit(&w("vi", "/etc/x").s("container.image.repository", "docker.io/library/builder")),
        "list reference"
    );
    assert!(!hit(
        &w("vi", "/etc/x").s("container.image.repository", "quay.io/ok/image")
    ));
    assert!(!hit(&w("vi", "/etc/x")
        .s("proc.pname", "salt")
        .s("proc.cmdline", "a --config b")));
    assert!(hit(&w("vi", "/etc/x").s("proc.pname", "salt")));
    // The stored condition is the rule's own text; exceptions are compiled in.
    assert_eq!(
        rs.get("Write below etc").unwrap().condition,
        "evt.type = openat and fd.name startswith /etc/"
    );
}

#[test]
fn exception_with_unknown_field_skips_the_rule() {
    let yaml = r#"
- rule: R
  condition: evt.type = openat
  output: x
  priority: INFO
  exceptions:
    - name: e
      fields: [proc.bogus]
      values: [[a]]
"#;
    let (_, report) = load(&[("r.yaml", yaml)]);
    assert_eq!(
        reason(&report, "R"),
        "unknown field proc.bogus (r.yaml:7:7)"
    );
}

#[test]
fn unsupported_sources_and_bad_items_are_skipped_with_reasons() {
    let yaml = r#"
- rule: K8s thing
  condition: ka.verb = create
  output: x
  priority: INFO
  source: k8s_audit
- rule: Unknown field
  condition: >
    evt.type = execve and
    proc.foo = bar
  output: x
  priority: INFO
- rule: No output
  condition: evt.type = execve
  priority: INFO
- rule: Bad priority
  condition: evt.type = execve
  output: x
  priority: LOUD
- rule: Undefined macro
  condition: evt.type = execve and not_defined_anywhere
  output: x
  priority: INFO
- rule: Fine
  condition: evt.type = execve
  output: x
  priority: INFO
"#;
    let (rs, report) = load(&[("rules.yaml", yaml)]);
    assert_eq!(report.loaded, vec!["Fine"]);
    assert_eq!(rs.len(), 1);
    assert_eq!(
        reason(&report, "K8s thing"),
        "source k8s_audit not supported"
    );
    assert_eq!(
        reason(&report, "Unknown field"),
        "unknown field proc.foo (rules.yaml:10:5)"
    );
    assert_eq!(
        reason(&report, "No output"),
        "rules.yaml:13:3: missing required key 'output'"
    );
    assert_eq!(
        reason(&report, "Bad priority"),
        "rules.yaml:19:13: invalid priority 'LOUD'"
    );
    assert_eq!(
        reason(&report, "Undefined macro"),
        "undefined macro not_defined_anywhere (rules.yaml:21:36)"
    );
    let summary = report.skip_summary();
    assert_eq!(summary.len(), 5);
    for reason in [
        "source k8s_audit not supported",
        "unknown field proc.foo",
        "missing required key 'output'",
        "invalid priority 'LOUD'",
        "undefined macro not_defined_anywhere",
    ] {
        assert!(
            summary.contains(&(reason.to_string(), 1)),
            "{reason}: {summary:?}"
        );
    }
}

#[test]
fn condition_syntax_errors_point_into_the_file() {
    let yaml = r#"
- macro: m
  condition: proc.name in (a, b
- rule: Folded
  condition: >
    evt.type = execve
    and (proc.name = bash
         or proc.name = )
  output: x
  priority: INFO
- rule: Uses broken macro
  condition: evt.type = execve and m
  output: x
  priority: INFO
- rule: Quoted
  condition: "evt.type = execve and proc.name = \"bash\" and"
  output: x
  priority: INFO
- rule: Appended
  condition: evt.type = execve
  output: x
  priority: INFO
- rule: Appended
  condition: and proc.name in (a
  append: true
"#;
    let (_, report) = load(&[("rules.yaml", yaml)]);
    assert_eq!(
        reason(&report, "Folded"),
        "rules.yaml:8:25: expected a value (near token ')')"
    );
    assert_eq!(
        reason(&report, "Uses broken macro"),
        "in macro m: rules.yaml:3:32: expected ',' or ')' in value list (at end of input)"
    );
    assert_eq!(
        reason(&report, "Quoted"),
        "rules.yaml:16:61: unexpected end of condition: expected a field, a macro or '(' (at end of input)"
    );
    // The error is in the appended text: it maps to the appending item.
    assert_eq!(
        reason(&report, "Appended"),
        "rules.yaml:24:33: expected ',' or ')' in value list (at end of input)"
    );
    assert!(report
        .warnings
        .iter()
        .any(|w| w.starts_with("macro m: rules.yaml:3:32:")));
}

#[test]
fn deep_nesting_in_a_rule_is_a_clean_skip() {
    let cond = "(".repeat(10_000) + "evt.type = execve" + &")".repeat(10_000);
    let yaml = format!("- rule: Deep\n  condition: {cond}\n  output: x\n  priority: INFO\n");
    let (_, report) = load(&[("deep.yaml", &yaml)]);
    assert_eq!(
        reason(&report, "Deep"),
        "deep.yaml:2:270: condition nests deeper than the limit of 256 levels (near token '(')"
    );
}

#[test]
fn yaml_and_schema_errors_fail_the_whole_load() {
    let reg = saker_fields();
    let good = ("good.yaml", BASE);
    let bad = ("bad.yaml", "- rule: x\n  condition: [a\n- rule: y\n");
    match RuleSet::load_sources(&[good, bad], &reg) {
        Err(LoadError::Yaml { pos, message }) => {
            assert_eq!(pos.file.as_deref(), Some("bad.yaml"));
            assert_eq!((pos.line, pos.col), (3, 7));
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match RuleSet::load_sources(&[("map.yaml", "rule: x\n")], &reg) {
        Err(LoadError::Schema { pos, message }) => {
            assert_eq!(pos.to_string(), "map.yaml:1:1");
            assert_eq!(
                message,
                "a rules file must be a list of items, not a mapping"
            );
        }
        other => panic!("{other:?}"),
    }
    match RuleSet::load_sources(&[("item.yaml", "- just a string\n")], &reg) {
        Err(LoadError::Schema { message, .. }) => {
            assert_eq!(message, "an item must be a mapping, not a scalar")
        }
        other => panic!("{other:?}"),
    }
    match RuleSet::load(&["/nonexistent/rules.yaml"], &reg) {
        Err(LoadError::Io { file, .. }) => assert_eq!(file, "/nonexistent/rules.yaml"),
        other => panic!("{other:?}"),
    }
    // An empty file is a valid, empty rule set.
    let (rs, _) = RuleSet::load_sources(&[("empty.yaml", "")], &reg).unwrap();
    assert!(rs.is_empty());
}

#[test]
fn saker_metadata() {
    let yaml = r#"
- rule: Drift
  condition: evt.type = execve and proc.is_exe_upper_layer
  output: drift %proc.exepath
  priority: CRITICAL
  policy: Drift Detection
  mitre:
    tactic: [TA0002]
    technique: [T1059.004, T1610]
  tags: [mitre_persistence, T1610]
  runbook: https://example.invalid/drift
  severity_score: 9
  owners: [secops]
"#;
    let (rs, report) = load(&[("saker.yaml", yaml)]);
    assert!(report.skipped.is_empty());
    let r = rs.get("Drift").unwrap();
    assert_eq!(r.policy.as_deref(), Some("Drift Detection"));
    assert_eq!(r.mitre_tactics, vec!["TA0002", "TA0003"]);
    assert_eq!(r.mitre_techniques, vec!["T1059.004", "T1610"]);
    assert_eq!(
        r.extra["runbook"],
        MetaValue::Str("https://example.invalid/drift".into())
    );
    assert_eq!(r.extra["severity_score"], MetaValue::Int(9));
    assert_eq!(
        r.extra["owners"],
        MetaValue::Seq(vec![MetaValue::Str("secops".into())])
    );
}

#[test]
fn index_by_event_type() {
    let yaml = r#"
- rule: Opens
  condition: evt.type in (open, openat) and fd.name startswith /etc
  output: x
  priority: INFO
- rule: Anything
  condition: proc.name = nc
  output: x
  priority: INFO
  warn_evttypes: false
- rule: Negated
  condition: not evt.type = execve and proc.name = nc
  output: x
  priority: INFO
"#;
    let (rs, report) = load(&[("i.yaml", yaml)]);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("rule Negated: condition does not restrict evt.type")),
        "{:?}",
        report.warnings
    );
    assert!(!report.warnings.iter().any(|w| w.contains("rule Anything")));
    assert_eq!(rs.candidate_count(EvtType::from_name("openat")), 3);
    assert_eq!(rs.candidate_count(EvtType::from_name("execve")), 2);
    assert_eq!(rs.candidate_count(EvtType::UNKNOWN), 2);

    // A counting source shows which rules were evaluated.
    struct Counting<'a>(MapSource<'a>, std::cell::Cell<usize>);
    impl saker_rules::FieldSource for Counting<'_> {
        fn get(
            &self,
            f: saker_rules::FieldId,
            a: &saker_rules::FieldArg,
        ) -> Option<saker_rules::Value<'_>> {
            self.1.set(self.1.get() + 1);
            self.0.get(f, a)
        }
    }
    let reg = saker_fields();
    let src = Counting(
        MapSource::new(&reg)
            .s("proc.name", "bash")
            .s("fd.name", "/etc/x"),
        Default::default(),
    );
    let fired: Vec<_> = rs
        .matching(EvtType::from_name("execve"), &src)
        .map(|r| r.name.clone())
        .collect();
    assert!(fired.is_empty());
    // Anything reads proc.name; Negated stops at its evt.type check, which
    // compares interned ids without asking the source.
    assert_eq!(src.1.get(), 1);
    let fired: Vec<_> = rs
        .matching(EvtType::from_name("openat"), &src)
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(fired, vec!["Opens"]);
}

#[test]
fn later_files_redefine_lists_macros_and_rules() {
    let redefine = r#"
- list: shell_binaries
  items: [ksh]
- rule: Shell in container
  condition: spawned_process and proc.name in (shell_binaries)
  output: redefined
  priority: NOTICE
"#;
    let (rs, report) = load(&[("base.yaml", BASE), ("re.yaml", redefine)]);
    assert_eq!(report.loaded, vec!["Shell in container"]);
    let r = rs.get("Shell in container").unwrap();
    assert_eq!(r.output, "redefined");
    assert_eq!(r.location.to_string(), "re.yaml:4:3");
    let reg = saker_fields();
    assert!(fires(
        &rs,
        "Shell in container",
        &shell(&reg, "ksh").s("container.id", "host")
    ));
    assert!(!fires(&rs, "Shell in container", &shell(&reg, "bash")));
}

#[test]
fn ruleset_filters_can_use_its_macros() {
    let (rs, _) = load(&[("base.yaml", BASE)]);
    let f = rs
        .compile_filter("spawned_process and proc.name in (shell_binaries)")
        .unwrap();
    let reg = saker_fields();
    assert!(f.matches(&shell(&reg, "sh")));
    assert!(!f.matches(&shell(&reg, "sh").s("evt.type", "openat")));
    assert!(rs.compile_filter("proc.nope = 1").is_err());
}

#[test]
fn rule_sets_can_be_shared_across_threads() {
    // The daemon swaps an Arc<RuleSet> on reload and evaluates from workers.
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<RuleSet>();
    assert_send_sync::<saker_rules::Filter>();
    assert_send_sync::<saker_rules::FieldRegistry>();
}
