//! Hostile input must give errors, never panics or stack overflows.

mod common;

use std::path::PathBuf;

use common::MapSource;
use saker_rules::{parse, saker_fields, Definitions, Filter, RuleSet};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const TOKENS: &[&str] = &[
    "proc.name",
    "fd.name",
    "evt.type",
    "proc.aname[2]",
    "proc.aname[",
    "evt.arg.flags",
    "fd.sport",
    "proc.is_exe_upper_layer",
    "user.uid",
    "fd.sip",
    "priority",
    "tags",
    "m1",
    "m2",
    "shells",
    "=",
    "!=",
    "<",
    ">=",
    "in",
    "intersects",
    "pmatch",
    "contains",
    "icontains",
    "glob",
    "startswith",
    "exists",
    "and",
    "or",
    "not",
    "(",
    ")",
    ",",
    "'x'",
    "\"y\\\"z\"",
    "'",
    "\"",
    "bash",
    "/etc/",
    "10.0.0.0/8",
    "0x1f",
    "-1",
    "true",
    "[",
    "]",
    "é",
    "%",
    "\n",
    " ",
    "\t",
    "runc:[0:PARENT]",
    "*",
    "?",
];

#[test]
fn random_conditions_do_not_panic() {
    let reg = saker_fields();
    let mut defs = Definitions::new();
    defs.add_list("shells", ["bash", "sh", "shells"]);
    defs.add_macro("m1", "proc.name in (shells) and m2")
        .unwrap();
    defs.add_macro("m2", "not evt.type = execve or m1").unwrap();
    let src = MapSource::new(&reg)
        .s("proc.name", "bash")
        .s("evt.type", "execve")
        .l("tags", &["a"]);
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let n = 1 + rng.next() % 12;
        let text: Vec<&str> = (0..n).map(|_| rng.pick(TOKENS)).collect();
        let sep = if rng.next().is_multiple_of(3) {
            ""
        } else {
            " "
        };
        let text = text.join(sep);
        if parse(&text).is_ok() {
            parsed += 1;
        }
        if let Ok(f) = Filter::compile_with(&text, &reg, &defs) {
            let _ = f.matches(&src);
        }
    }
    // The generator must produce some valid conditions to be meaningful.
    assert!(parsed > 500, "only {parsed} parsed");
}

/// Runs `f` on a 2 MiB thread, the default for spawned threads and tokio
/// workers; a stack overflow would abort the test binary.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("thread finished")
}

/// `depth` parentheses, each adding an `or`, an `and` and a `not` level.
fn nested(depth: usize) -> String {
    let mut cond = String::from("proc.name = x");
    for _ in 0..depth {
        cond = format!("(fd.name = a or (proc.pid = 1 and not {cond}))");
    }
    cond
}

#[test]
fn deep_but_legal_nesting_compiles_on_a_normal_stack() {
    let reg = saker_fields();
    // 2 parentheses and 3 tree levels per step: 122 parens, ~370 levels;
    // the innermost check is false and each step negates, so 61 steps: true.
    let r = on_small_stack({
        let reg = reg.clone();
        move || {
            let f = Filter::compile(&nested(61), &reg).map_err(|e| e.to_string())?;
            let src = MapSource::new(&reg)
                .s("proc.name", "y")
                .s("fd.name", "b")
                .i("proc.pid", 1);
            Ok::<bool, String>(f.matches(&src))
        }
    });
    assert_eq!(r, Ok(true));
    // Parser depth counts parentheses and `not`: 3 per step, so 85 steps
    // (255) is the deepest legal condition; it compiles on a small stack.
    let r = on_small_stack({
        let reg = reg.clone();
        move || {
            Filter::compile(&nested(85), &reg)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    });
    assert_eq!(r, Ok(()));
    let e = on_small_stack({
        let reg = reg.clone();
        move || {
            Filter::compile(&nested(86), &reg)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    });
    assert!(e
        .unwrap_err()
        .contains("condition nests deeper than the limit of 256 levels"));
    // Chained macros also hit the compile bound, not the stack.
    let mut defs = Definitions::new();
    for i in 0..2000 {
        defs.add_macro(&format!("m{i}"), &format!("(not m{})", i + 1))
            .unwrap();
    }
    defs.add_macro("m2000", "proc.name = x").unwrap();
    let e = on_small_stack(move || {
        Filter::compile_with("m0", &reg, &defs)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    assert!(e
        .unwrap_err()
        .starts_with("condition nests deeper than 512 levels"));
}

#[test]
fn exponential_expansion_is_bounded() {
    let reg = saker_fields();
    // Each macro uses the next one four times: 4^20 leaves if unbounded.
    let mut defs = Definitions::new();
    for i in 0..20 {
        let n = format!("m{}", i + 1);
        defs.add_macro(
            &format!("m{i}"),
            &format!("({n} and {n}) or ({n} and not {n})"),
        )
        .unwrap();
    }
    defs.add_macro("m20", "proc.name = x").unwrap();
    let e = Filter::compile_with("m0", &reg, &defs)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("condition grows beyond 200000 nodes"), "{e}");
    // Same with lists that reference each other several times.
    defs.add_list("l20", ["a", "b"]);
    for i in (0..20).rev() {
        let n = format!("l{}", i + 1);
        defs.add_list(
            &format!("l{i}"),
            [n.as_str(), n.as_str(), n.as_str(), n.as_str()],
        );
    }
    let e = Filter::compile_with("proc.name in (l0)", &reg, &defs)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("condition grows beyond 200000 list values"),
        "{e}"
    );
}

fn upstream_text() -> Option<String> {
    let dir = std::env::var("SAKER_FALCO_RULES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/falco-rules")
        });
    std::fs::read_to_string(dir.join("falco_rules.yaml")).ok()
}

#[test]
fn mutated_rule_files_do_not_panic() {
    let reg = saker_fields();
    let base = upstream_text().unwrap_or_else(|| {
        "- list: l\n  items: [a, \"b\"]\n- macro: m\n  condition: proc.name in (l)\n- rule: r\n  condition: >\n    evt.type = execve and m\n  output: \"%proc.name\"\n  priority: INFO\n  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [[x]]\n".to_string()
    });
    let bytes = base.as_bytes();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let inserts: &[&str] = &[
        "\n- rule: x\n",
        ": ",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "'",
        "&a ",
        "*a",
        "\t",
        "\n  ",
        "- ",
        "#",
        "|",
        ">",
        "%",
        "(",
        ")",
        " and ",
        " or not ",
        "\n  append: true\n",
        "\n  override:\n    condition: append\n",
    ];
    for _ in 0..60 {
        let mut text = bytes.to_vec();
        for _ in 0..(1 + rng.next() % 8) {
            let pos = (rng.next() % (text.len() as u64 + 1)) as usize;
            match rng.next() % 3 {
                0 => {
                    let end = (pos + (rng.next() % 40) as usize).min(text.len());
                    text.drain(pos..end);
                }
                _ => {
                    let ins = rng.pick(inserts).as_bytes();
                    text.splice(pos..pos, ins.iter().copied());
                }
            }
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        let _ = RuleSet::load_sources(&[("mutated.yaml", &text)], &reg);
    }
}

#[test]
fn hostile_yaml_shapes() {
    let reg = saker_fields();
    for text in [
        "[".repeat(50_000),
        "- ".repeat(5_000) + "x",
        "a: &x [1, 2]\nb: *x\n".to_string(),
        "- rule: r\n  condition: *x\n".to_string(),
        "- rule: [a, b]\n".to_string(),
        "- rule: r\n  condition: {a: b}\n  output: x\n  priority: INFO\n".to_string(),
        "- rule: r\n  condition: evt.type = execve\n  output: [x]\n  priority: INFO\n".to_string(),
        "- list: l\n  items: [[a]]\n".to_string(),
        "- macro: m\n".to_string(),
        "- rule: r\n  exceptions: 5\n  condition: a\n  output: x\n  priority: INFO\n".to_string(),
        "---\n- rule: a\n...\n---\n- list: b\n  items: []\n".to_string(),
        "\u{feff}- list: l\n  items: []\n".to_string(),
    ] {
        let _ = RuleSet::load_sources(&[("h.yaml", &text)], &reg);
    }
}
