//! Operator semantics, type handling and macro/list resolution of
//! standalone filters.

mod common;

use common::MapSource;
use saker_rules::{
    saker_fields, CompileError, Definitions, EvtType, Filter, FilterError, Location,
};

fn eval(cond: &str, src: &MapSource<'_>) -> bool {
    let reg = saker_fields();
    Filter::compile(cond, &reg)
        .unwrap_or_else(|e| panic!("{cond}: {e}"))
        .matches(src)
}

fn compile_err(cond: &str) -> CompileError {
    let reg = saker_fields();
    match Filter::compile(cond, &reg) {
        Err(FilterError::Compile(e)) => e,
        other => panic!("{cond}: expected a compile error, got {other:?}"),
    }
}

#[test]
fn equality_and_missing_values() {
    let reg = saker_fields();
    let bash = MapSource::new(&reg).s("proc.name", "bash");
    let empty = MapSource::new(&reg);
    assert!(eval("proc.name = bash", &bash));
    assert!(eval("proc.name == 'bash'", &bash));
    assert!(!eval("proc.name != bash", &bash));
    assert!(eval("proc.name != zsh", &bash));
    // A missing value fails every comparison, `!=` included (Falco).
    assert!(!eval("proc.name = bash", &empty));
    assert!(!eval("proc.name != bash", &empty));
    assert!(eval("not proc.name = bash", &empty));
    assert!(!eval("proc.name exists", &empty));
    assert!(eval("proc.name exists", &bash));
    assert!(eval("not proc.name exists", &empty));
}

#[test]
fn string_operators() {
    let reg = saker_fields();
    let s = MapSource::new(&reg)
        .s(
            "proc.cmdline",
            "python3 -c 'import os; AWS_SECRET_ACCESS_KEY'",
        )
        .s("fd.name", "/home/bob/.ssh/id_rsa")
        .s("fd.nameraw", "/var/www/../../etc/passwd");
    assert!(eval("proc.cmdline contains \"import os\"", &s));
    assert!(!eval("proc.cmdline contains \"IMPORT os\"", &s));
    assert!(eval("proc.cmdline icontains aws_secret_access_key", &s));
    assert!(eval("proc.cmdline startswith python3", &s));
    assert!(!eval("proc.cmdline startswith python2", &s));
    assert!(eval("proc.cmdline endswith \"KEY'\"", &s));
    assert!(eval("fd.name glob '/home/*/.ssh/*'", &s));
    assert!(!eval("fd.name glob '/root/*'", &s));
    assert!(eval("fd.name iglob '/HOME/*/.SSH/ID_*'", &s));
    assert!(eval("fd.nameraw glob '*../*../*'", &s));
    assert!(eval("fd.name in (/etc/shadow, /home/bob/.ssh/id_rsa)", &s));
    assert!(!eval("fd.name in (/etc/shadow)", &s));
    assert!(eval("fd.name intersects (/home/bob/.ssh/id_rsa)", &s));
    assert!(eval("fd.name pmatch (/home/bob, /etc)", &s));
    assert!(eval("fd.name pmatch (/home/bob/.ssh/id_rsa)", &s));
    assert!(
        !eval("fd.name pmatch (/home/bo)", &s),
        "prefix must end at a path separator"
    );
    assert!(!eval("fd.name in ()", &s));
}

#[test]
fn big_in_lists_use_a_set() {
    let reg = saker_fields();
    let items: Vec<String> = (0..500).map(|i| format!("bin{i}")).collect();
    let cond = format!("proc.name in ({})", items.join(", "));
    let f = Filter::compile(&cond, &reg).unwrap();
    assert!(f.matches(&MapSource::new(&reg).s("proc.name", "bin499")));
    assert!(f.matches(&MapSource::new(&reg).s("proc.name", "bin0")));
    assert!(!f.matches(&MapSource::new(&reg).s("proc.name", "bin500")));
}

#[test]
fn numbers_bools_and_addresses() {
    let reg = saker_fields();
    let s = MapSource::new(&reg)
        .i("fd.sport", 443)
        .i("evt.rawres", -13)
        .i("user.loginuid", -1)
        .i("user.uid", 1000)
        .b("proc.is_exe_upper_layer", true)
        .b("proc.is_exe_from_memfd", false)
        .ip("fd.sip", "10.1.2.3")
        .ip("fd.net", "127.0.0.1");
    assert!(eval("fd.sport in (80, 443)", &s));
    assert!(
        eval("fd.sport = \"443\"", &s),
        "quoted numbers are numbers for numeric fields"
    );
    assert!(eval("fd.sport = 0x1bb", &s));
    assert!(!eval("evt.rawres >= 0", &s));
    assert!(eval(
        "evt.rawres < 0 and evt.rawres > -14 and evt.rawres <= -13",
        &s
    ));
    assert!(eval("user.loginuid = -1", &s));
    assert!(eval("user.uid >= 1000", &s));
    assert!(
        eval("proc.is_exe_upper_layer", &s),
        "a bare boolean field means = true"
    );
    assert!(eval("proc.is_exe_upper_layer = true", &s));
    assert!(eval("proc.is_exe_from_memfd = false", &s));
    assert!(!eval("proc.is_exe_from_memfd", &s));
    assert!(eval("fd.sip = 10.1.2.3", &s));
    assert!(eval("fd.sip in (\"10.0.0.0/8\", \"192.168.0.0/16\")", &s));
    assert!(!eval("fd.sip = 10.1.2.4", &s));
    assert!(!eval("fd.net != \"127.0.0.0/8\"", &s));

    match compile_err("user.uid = root") {
        CompileError::BadValue {
            field,
            value,
            expected,
            pos,
        } => {
            assert_eq!(
                (field.as_str(), value.as_str(), expected),
                ("user.uid", "root", "an integer")
            );
            assert_eq!(
                pos,
                Location {
                    file: None,
                    line: 1,
                    col: 12
                }
            );
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        compile_err("proc.is_exe_upper_layer = yes"),
        CompileError::BadValue { .. }
    ));
    assert!(matches!(
        compile_err("fd.sip = 10.0.0.0/33"),
        CompileError::BadValue { .. }
    ));
}

#[test]
fn lists_and_indexed_fields() {
    let reg = saker_fields();
    let s = MapSource::new(&reg)
        .l("proc.aname", &["bash", "sshd", "systemd"])
        .s("proc.aname[2]", "sshd")
        .s("evt.arg.flags", "O_WRONLY|O_CREAT")
        .s("evt.arg[0]", "/tmp/x")
        .l("tags", &["container", "mitre_execution"]);
    // Without an index, proc.aname matches if any ancestor matches.
    assert!(eval("proc.aname = sshd", &s));
    assert!(eval("proc.aname in (sshd, login)", &s));
    assert!(eval("proc.aname startswith sys", &s));
    assert!(!eval("proc.aname = nginx", &s));
    assert!(
        !eval("proc.aname != sshd", &s),
        "!= on a list: no element equals"
    );
    assert!(eval("proc.aname[2] = sshd", &s));
    assert!(!eval("proc.aname[3] = sshd", &s), "no value for index 3");
    assert!(eval("evt.arg.flags contains O_CREAT", &s));
    assert!(eval("evt.arg[flags] contains O_CREAT", &s));
    assert!(eval("evt.arg[0] = /tmp/x", &s));
    assert!(eval(
        "tags intersects (mitre_execution, mitre_persistence)",
        &s
    ));
    assert!(!eval("tags in (network)", &s));

    match compile_err("proc.aname[x] = a") {
        CompileError::BadArgument { field, message, .. } => {
            assert_eq!(field, "proc.aname");
            assert_eq!(message, "argument 'x' is not a non-negative integer");
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        compile_err("evt.arg = x"),
        CompileError::BadArgument { .. }
    ));
    assert!(matches!(
        compile_err("proc.name[1] = x"),
        CompileError::BadArgument { .. }
    ));
}

#[test]
fn alert_fields_for_store_queries() {
    let reg = saker_fields();
    let alert = MapSource::new(&reg)
        .s("rule", "Drop and execute new binary in container")
        .s("policy", "Drift Detection")
        .s("priority", "Critical")
        .l("mitre.technique", &["T1059.004"])
        .l("tags", &["container"]);
    assert!(eval(
        "priority >= WARNING and policy = 'Drift Detection'",
        &alert
    ));
    assert!(!eval("priority > critical", &alert));
    assert!(eval("priority in (critical, error)", &alert));
    assert!(eval("rule startswith 'Drop and'", &alert));
    assert!(eval("mitre.technique startswith T1059", &alert));
    // Priorities may also come as syslog levels.
    let numeric = MapSource::new(&reg).i("priority", 4);
    assert!(eval("priority = warning", &numeric));
}

#[test]
fn errors_are_typed_and_located() {
    match compile_err("proc.name = a and\n  proc.foo = b") {
        CompileError::UnknownField { name, pos } => {
            assert_eq!(name, "proc.foo");
            assert_eq!((pos.line, pos.col), (2, 3));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        compile_err("proc.name = a and\n  proc.foo = b").to_string(),
        "unknown field proc.foo (2:3)"
    );
    assert!(matches!(
        compile_err("proc.name > a"),
        CompileError::UnsupportedOperator { .. }
    ));
    assert!(matches!(
        compile_err("proc.pid contains 1"),
        CompileError::UnsupportedOperator { .. }
    ));
    assert!(matches!(
        compile_err("proc.name regex 'a.*'"),
        CompileError::UnsupportedOperator { .. }
    ));
    assert!(matches!(
        compile_err("proc.name"),
        CompileError::NeedsOperator { .. }
    ));
    assert!(matches!(
        compile_err("spawned_process"),
        CompileError::UndefinedMacro { .. }
    ));

    let reg = saker_fields();
    match Filter::compile("proc.name in (a, b", &reg) {
        Err(FilterError::Syntax(e)) => {
            assert_eq!((e.line, e.col), (1, 19));
            assert_eq!(
                e.to_string(),
                "1:19: expected ',' or ')' in value list (at end of input)"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn macros_and_lists() {
    let reg = saker_fields();
    let mut defs = Definitions::new();
    defs.add_list("shells", ["bash", "sh"]);
    // YAML `'"(weird)"'` decodes to `"(weird)"`: a quoted value.
    defs.add_list("all_shells", ["shells", "zsh", "\"(weird)\""]);
    defs.add_macro("spawned_process", "evt.type in (execve, execveat)")
        .unwrap();
    defs.add_macro("shell_procs", "proc.name in (all_shells)")
        .unwrap();
    defs.add_macro("shell_spawned", "spawned_process and shell_procs")
        .unwrap();
    defs.add_macro("loop_a", "loop_b").unwrap();
    defs.add_macro("loop_b", "proc.name = x or loop_a").unwrap();
    let broken = defs.add_macro("broken", "proc.name = (").unwrap_err();
    assert_eq!(
        broken.to_string(),
        "macro broken:1:13: expected a value (near token '(')"
    );

    let f =
        Filter::compile_with("shell_spawned and not proc.pname in (shells)", &reg, &defs).unwrap();
    assert_eq!(f.evt_types().names(), Some(vec!["execve", "execveat"]));
    let ev = |name: &str, pname: &str| {
        MapSource::new(&reg)
            .s("evt.type", "execve")
            .s("proc.name", name)
            .s("proc.pname", pname)
    };
    assert!(f.matches(&ev("zsh", "nginx")));
    assert!(f.matches(&ev("bash", "nginx")), "nested list expanded");
    assert!(f.matches(&ev("(weird)", "nginx")), "quoted list item");
    assert!(!f.matches(&ev("bash", "sh")));
    assert!(!f.matches(&ev("python", "nginx")));
    assert!(f.matches_event(EvtType::from_name("execve"), &ev("sh", "x")));
    assert!(!f.matches_event(EvtType::from_name("openat"), &ev("sh", "x")));

    // A list name inside quotes is a plain value.
    let q = Filter::compile_with("proc.name in ('shells')", &reg, &defs).unwrap();
    assert!(q.matches(&MapSource::new(&reg).s("proc.name", "shells")));
    assert!(!q.matches(&MapSource::new(&reg).s("proc.name", "bash")));

    match Filter::compile_with("loop_a", &reg, &defs) {
        Err(FilterError::Compile(CompileError::MacroCycle { name, .. })) => {
            assert_eq!(name, "loop_a")
        }
        other => panic!("{other:?}"),
    }
    match Filter::compile_with("proc.name = a or broken", &reg, &defs) {
        Err(FilterError::Compile(CompileError::MacroSyntax { name, error })) => {
            assert_eq!(name, "broken");
            assert_eq!((error.line, error.col), (1, 13));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn constant_folding() {
    let reg = saker_fields();
    let mut defs = Definitions::new();
    defs.add_list("empty", Vec::<String>::new());
    defs.add_macro("spawned_process", "evt.type = execve")
        .unwrap();
    let f = Filter::compile_with("spawned_process and proc.name in (empty)", &reg, &defs).unwrap();
    assert!(!f.matches(
        &MapSource::new(&reg)
            .s("evt.type", "execve")
            .s("proc.name", "")
    ));
    // Type sets: `and` intersects, `or` unions, negations are unconstrained.
    let f = Filter::compile(
        "evt.type in (open, openat) and (evt.type = openat or evt.type = execve)",
        &reg,
    )
    .unwrap();
    assert_eq!(f.evt_types().names(), Some(vec!["openat"]));
    let f = Filter::compile("evt.type = open or evt.type = connect", &reg).unwrap();
    assert_eq!(f.evt_types().names(), Some(vec!["open", "connect"]));
    let f = Filter::compile("not evt.type = open", &reg).unwrap();
    assert!(f.evt_types().is_any());
    let f = Filter::compile("evt.type != open", &reg).unwrap();
    assert!(f.evt_types().is_any());
    let f = Filter::compile("evt.type = open and evt.type = execve", &reg).unwrap();
    assert!(f.evt_types().is_empty());
    // evt.type checks also work when the caller does not intern the type.
    let f = Filter::compile("evt.type in (open, openat)", &reg).unwrap();
    assert!(f.matches(&MapSource::new(&reg).s("evt.type", "openat")));
    assert!(!f.matches(&MapSource::new(&reg).s("evt.type", "bogus")));
}

#[test]
fn fields_read_by_a_filter() {
    let reg = saker_fields();
    let f = Filter::compile(
        "proc.name = a and (fd.name = b or not proc.aname[2] = c)",
        &reg,
    )
    .unwrap();
    let names: Vec<String> = f
        .fields()
        .into_iter()
        .map(|id| reg.get(id).unwrap().name.clone())
        .collect();
    assert_eq!(names, vec!["proc.name", "proc.aname", "fd.name"]);
}
