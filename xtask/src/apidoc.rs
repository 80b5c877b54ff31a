//! `cargo xtask api-doc`: docs/api.md from the comments of proto/saker/v1/*.proto, so the
//! reference cannot drift from the API (`--check`, run by `cargo xtask test`, fails when
//! the committed file differs from what the protos give).
//!
//! A small line parser for the proto3 subset the project writes: services with one-line
//! `rpc`s, messages with fields, `oneof`s and maps, enums; `//` comments directly above an
//! item (or after it on its line) document it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

const OUT: &str = "docs/api.md";
const PROTO_DIR: &str = "proto/saker/v1";

#[derive(Debug, Default)]
struct ProtoFile {
    name: String,
    doc: String,
    package: String,
    services: Vec<Service>,
    messages: Vec<Message>,
    enums: Vec<Enum>,
}

#[derive(Debug, Default)]
struct Service {
    name: String,
    doc: String,
    rpcs: Vec<Rpc>,
}

#[derive(Debug, Default)]
struct Rpc {
    name: String,
    doc: String,
    request: String,
    response: String,
    server_streaming: bool,
    client_streaming: bool,
}

#[derive(Debug, Default)]
struct Message {
    name: String,
    doc: String,
    fields: Vec<Field>,
}

#[derive(Debug, Default)]
struct Field {
    name: String,
    ty: String,
    number: String,
    label: String,
    oneof: Option<String>,
    doc: String,
}

#[derive(Debug, Default)]
struct Enum {
    name: String,
    doc: String,
    values: Vec<(String, String, String)>,
}

enum Ctx {
    Service,
    Message,
    Enum,
    Oneof(String),
}

fn comment_text(line: &str) -> Option<&str> {
    let c = line.trim_start().strip_prefix("//")?;
    Some(c.strip_prefix(' ').unwrap_or(c))
}

/// Splits `code // comment` (a `//` inside a string literal does not occur in our protos'
/// declarations).
fn split_trailing(line: &str) -> (&str, Option<&str>) {
    match line.find("//") {
        Some(i) => (line[..i].trim(), Some(line[i + 2..].trim())),
        None => (line.trim(), None),
    }
}

fn join_doc(lines: &mut Vec<String>) -> String {
    let d = lines.join("\n").trim().to_string();
    lines.clear();
    d
}

fn parse(name: &str, text: &str) -> Result<ProtoFile> {
    let mut f = ProtoFile {
        name: name.to_string(),
        ..Default::default()
    };
    let mut pending: Vec<String> = Vec::new();
    let mut stack: Vec<Ctx> = Vec::new();
    let mut seen_syntax = false;
    for (i, raw) in text.lines().enumerate() {
        let at = || format!("{name}:{}", i + 1);
        if let Some(c) = comment_text(raw) {
            pending.push(c.to_string());
            continue;
        }
        let (code, trailing) = split_trailing(raw);
        if code.is_empty() {
            if seen_syntax {
                pending.clear();
            } else if !pending.is_empty() {
                pending.push(String::new());
            }
            continue;
        }
        let mut doc = join_doc(&mut pending);
        if let Some(t) = trailing {
            if !doc.is_empty() {
                doc.push(' ');
            }
            doc.push_str(t);
        }
        let words: Vec<&str> = code.split_whitespace().collect();
        let opens = code.ends_with('{');
        let closes_inline = code.ends_with("{}");
        match words.first().copied() {
            Some("syntax") => {
                seen_syntax = true;
                f.doc = doc;
            }
            Some("package") => {
                f.package = code
                    .trim_start_matches("package")
                    .trim()
                    .trim_end_matches(';')
                    .to_string()
            }
            Some("import" | "option" | "reserved") => {}
            Some("service") if opens => {
                f.services.push(Service {
                    name: words.get(1).context(at())?.to_string(),
                    doc,
                    rpcs: Vec::new(),
                });
                stack.push(Ctx::Service);
            }
            Some("message") if opens || closes_inline => {
                f.messages.push(Message {
                    name: words
                        .get(1)
                        .context(at())?
                        .trim_end_matches("{}")
                        .to_string(),
                    doc,
                    fields: Vec::new(),
                });
                if !closes_inline {
                    stack.push(Ctx::Message);
                }
            }
            Some("enum") if opens => {
                f.enums.push(Enum {
                    name: words.get(1).context(at())?.to_string(),
                    doc,
                    values: Vec::new(),
                });
                stack.push(Ctx::Enum);
            }
            Some("oneof") if opens => {
                stack.push(Ctx::Oneof(words.get(1).context(at())?.to_string()));
            }
            Some("}") => {
                stack
                    .pop()
                    .with_context(|| format!("{}: unbalanced `}}`", at()))?;
            }
            Some("rpc") => {
                let rpc = parse_rpc(code, doc).with_context(at)?;
                f.services.last_mut().context(at())?.rpcs.push(rpc);
            }
            Some(_) => match stack.last() {
                Some(Ctx::Enum) => {
                    let (n, v) = code
                        .trim_end_matches(';')
                        .split_once('=')
                        .with_context(|| format!("{}: enum value without `=`", at()))?;
                    f.enums.last_mut().context(at())?.values.push((
                        n.trim().to_string(),
                        v.trim().to_string(),
                        doc,
                    ));
                }
                Some(Ctx::Message) | Some(Ctx::Oneof(_)) => {
                    let oneof = match stack.last() {
                        Some(Ctx::Oneof(o)) => Some(o.clone()),
                        _ => None,
                    };
                    let mut field = parse_field(code).with_context(at)?;
                    field.doc = doc;
                    field.oneof = oneof;
                    f.messages.last_mut().context(at())?.fields.push(field);
                }
                _ => bail!("{}: unexpected `{code}`", at()),
            },
            None => {}
        }
    }
    if !stack.is_empty() {
        bail!("{name}: unclosed block at end of file");
    }
    Ok(f)
}

/// `rpc Name(stream Req) returns (stream Resp);`
fn parse_rpc(code: &str, doc: String) -> Result<Rpc> {
    let rest = code.trim_start_matches("rpc").trim();
    let (name, rest) = rest.split_once('(').context("rpc without `(`")?;
    let (req, rest) = rest.split_once(')').context("rpc without `)`")?;
    let (_, rest) = rest.split_once('(').context("rpc without `returns (`")?;
    let (resp, _) = rest.split_once(')').context("rpc without `)`")?;
    let strip = |s: &str| -> (bool, String) {
        let s = s.trim();
        match s.strip_prefix("stream ") {
            Some(t) => (true, t.trim().to_string()),
            None => (false, s.to_string()),
        }
    };
    let (cs, request) = strip(req);
    let (ss, response) = strip(resp);
    Ok(Rpc {
        name: name.trim().to_string(),
        doc,
        request,
        response,
        server_streaming: ss,
        client_streaming: cs,
    })
}

/// `[repeated|optional] TYPE name = N;` or `map<K, V> name = N;`
fn parse_field(code: &str) -> Result<Field> {
    let code = code.trim_end_matches(';');
    let (lhs, number) = code.split_once('=').context("field without `=`")?;
    let lhs = lhs.trim();
    let (ty_part, name) = lhs
        .rsplit_once(char::is_whitespace)
        .context("field without a type")?;
    let ty_part = ty_part.trim();
    let (label, ty) = match ty_part.split_once(' ') {
        Some((l @ ("repeated" | "optional"), t)) => (l.to_string(), t.trim().to_string()),
        _ => (String::new(), ty_part.to_string()),
    };
    Ok(Field {
        name: name.to_string(),
        ty,
        number: number.trim().to_string(),
        label,
        oneof: None,
        doc: String::new(),
    })
}

/// `<` and `>` outside backtick code spans become entities: comments say `<token>` and
/// `a >= b`, which Markdown would take for HTML.
fn escape_angles(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_code = false;
    for c in s.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// One table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    escape_angles(
        &s.split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|"),
    )
}

/// A block of documentation text: setext underlines (`----`, `====`) become headings one
/// level below the file's, so the comment's structure survives inside this page.
fn block(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
        let underline =
            next.len() >= 3 && (next.chars().all(|c| c == '-') || next.chars().all(|c| c == '='));
        if underline && !lines[i].trim().is_empty() {
            let level = if next.starts_with('=') { "###" } else { "####" };
            out.push(String::new());
            out.push(format!("{level} {}", lines[i].trim()));
            out.push(String::new());
            i += 2;
        } else {
            out.push(escape_angles(lines[i]));
            i += 1;
        }
    }
    out.join("\n").trim().to_string()
}

fn anchor(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn render(files: &[ProtoFile]) -> String {
    let known: std::collections::BTreeSet<&str> = files
        .iter()
        .flat_map(|f| {
            f.messages
                .iter()
                .map(|m| m.name.as_str())
                .chain(f.enums.iter().map(|e| e.name.as_str()))
        })
        .collect();
    let ty = |t: &str| -> String {
        let mut out = String::new();
        // map<K, V>: link the value type when it is ours.
        let bare = t.trim_start_matches('.').trim_start_matches("saker.v1.");
        if known.contains(bare) {
            let _ = write!(out, "[`{bare}`](#{})", anchor(bare));
        } else {
            let _ = write!(out, "`{t}`");
        }
        out
    };
    let mut s = String::new();
    let package = files.first().map(|f| f.package.as_str()).unwrap_or("");
    let _ = writeln!(s, "# gRPC API reference (`{package}`)\n");
    let _ = writeln!(
        s,
        "<!-- Generated by `cargo xtask api-doc` from {PROTO_DIR}/*.proto. Do not edit: change \
         the comments in the .proto files and run `cargo xtask api-doc`; `cargo xtask test` \
         fails while this file is stale. -->\n"
    );
    let _ = writeln!(
        s,
        "The API of `sakerd`, served on its unix socket and, with mutual TLS, on TCP \
         (see [operations.md](operations.md)). Clients: the `saker` CLI, or any gRPC \
         client with the .proto files (the server also offers gRPC reflection and the \
         standard `grpc.health.v1.Health` service).\n"
    );
    let _ = writeln!(s, "## Files\n");
    for f in files {
        let services: Vec<String> = f.services.iter().map(|x| x.name.clone()).collect();
        let _ = writeln!(
            s,
            "- [{}](#{}){}",
            f.name,
            f.name.replace('.', ""),
            if services.is_empty() {
                String::new()
            } else {
                format!(": {}", services.join(", "))
            }
        );
    }
    for f in files {
        let _ = writeln!(s, "\n## {}\n", f.name);
        if !f.doc.is_empty() {
            let _ = writeln!(s, "{}\n", block(&f.doc));
        }
        for svc in &f.services {
            let _ = writeln!(s, "### service `{}`\n", svc.name);
            if !svc.doc.is_empty() {
                let _ = writeln!(s, "{}\n", block(&svc.doc));
            }
            let _ = writeln!(s, "| method | request | response | description |");
            let _ = writeln!(s, "|---|---|---|---|");
            for r in &svc.rpcs {
                let stream = |b: bool| if b { "stream " } else { "" };
                let _ = writeln!(
                    s,
                    "| `{}` | {}{} | {}{} | {} |",
                    r.name,
                    stream(r.client_streaming),
                    ty(&r.request),
                    stream(r.server_streaming),
                    ty(&r.response),
                    cell(&r.doc)
                );
            }
            s.push('\n');
        }
        for m in &f.messages {
            let _ = writeln!(s, "### `{}`\n", m.name);
            if !m.doc.is_empty() {
                let _ = writeln!(s, "{}\n", block(&m.doc));
            }
            if m.fields.is_empty() {
                let _ = writeln!(s, "No fields.\n");
                continue;
            }
            let _ = writeln!(s, "| field | type | # | description |");
            let _ = writeln!(s, "|---|---|---|---|");
            for fl in &m.fields {
                let mut t = String::new();
                if !fl.label.is_empty() {
                    let _ = write!(t, "{} ", fl.label);
                }
                if let Some(inner) = fl.ty.strip_prefix("map<").and_then(|x| x.strip_suffix('>')) {
                    let (k, v) = inner.split_once(',').unwrap_or((inner, ""));
                    let _ = write!(t, "map<`{}`, {}>", k.trim(), ty(v.trim()));
                } else {
                    t.push_str(&ty(&fl.ty));
                }
                let mut d = cell(&fl.doc);
                if let Some(o) = &fl.oneof {
                    d = format!("*oneof `{o}`.* {d}");
                }
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | {} |",
                    fl.name,
                    t,
                    fl.number,
                    d.trim()
                );
            }
            s.push('\n');
        }
        for e in &f.enums {
            // Plain name as the heading: links to it use the name as anchor.
            let _ = writeln!(s, "### `{}`\n\n*Enum.*\n", e.name);
            if !e.doc.is_empty() {
                let _ = writeln!(s, "{}\n", block(&e.doc));
            }
            let _ = writeln!(s, "| value | # | description |");
            let _ = writeln!(s, "|---|---|---|");
            for (n, v, d) in &e.values {
                let _ = writeln!(s, "| `{n}` | {v} | {} |", cell(d));
            }
            s.push('\n');
        }
    }
    // One blank line between blocks, however the comments were spaced.
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.trim_end().lines() {
        let line = line.trim_end();
        blank = if line.is_empty() { blank + 1 } else { 0 };
        if blank < 2 {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The protos in reading order: common.proto (the conventions) first, then by name.
fn generate(root: &Path) -> Result<String> {
    let dir = root.join(PROTO_DIR);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".proto"))
        .collect();
    names.sort_by_key(|n| (n != "common.proto", n.clone()));
    let mut files = Vec::new();
    for n in names {
        let text = std::fs::read_to_string(dir.join(&n))?;
        files.push(parse(&n, &text)?);
    }
    Ok(render(&files))
}

pub fn run(root: &Path, check: bool) -> Result<()> {
    let want = generate(root)?;
    let path = root.join(OUT);
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have == want {
        crate::setup::step(&format!("{OUT}: current"));
        return Ok(());
    }
    if check {
        bail!("{OUT} is stale (the .proto comments changed): run `cargo xtask api-doc`");
    }
    std::fs::write(&path, want)?;
    crate::setup::step(&format!("{OUT}: written"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "// File doc.\n//\n// Part\n// ----\n// text\nsyntax = \"proto3\";\n\npackage saker.v1;\n\n// The service.\nservice S {\n  // Does it.\n  rpc Do(DoRequest) returns (stream Item);\n}\n\n// Asks.\nmessage DoRequest {}\n\n// One item.\nmessage Item {\n  // Labels | tags.\n  map<string, string> labels = 1;\n  repeated Kind kinds = 2; // trailing\n  oneof body {\n    // A.\n    string a = 3;\n  }\n}\n\n// Kinds.\nenum Kind {\n  KIND_UNSPECIFIED = 0;\n  // One.\n  KIND_ONE = 1;\n}\n";

    #[test]
    fn parses_and_renders_every_construct() {
        let f = parse("x.proto", SAMPLE).unwrap();
        assert_eq!(f.package, "saker.v1");
        assert_eq!(f.services[0].rpcs[0].response, "Item");
        assert!(f.services[0].rpcs[0].server_streaming);
        assert_eq!(f.messages.len(), 2);
        assert_eq!(f.messages[1].fields[1].label, "repeated");
        assert_eq!(f.messages[1].fields[1].doc, "trailing");
        assert_eq!(f.messages[1].fields[2].oneof.as_deref(), Some("body"));
        assert_eq!(f.enums[0].values[1].0, "KIND_ONE");
        let md = render(&[f]);
        assert!(
            md.contains("| `Do` | [`DoRequest`](#dorequest) | stream [`Item`](#item) | Does it. |"),
            "{md}"
        );
        assert!(md.contains("One item."));
        assert!(md.contains("| `labels` | map<`string`, `string`> | 1 | Labels \\| tags. |"));
        assert!(md.contains("| `a` | `string` | 3 | *oneof `body`.* A. |"));
        assert!(md.contains("#### Part"));
        assert!(md.contains("| `KIND_ONE` | 1 | One. |"));
        assert!(!md.contains("\n\n\n"));
        assert_eq!(
            escape_angles("a <b> `<c>` >= d"),
            "a &lt;b&gt; `<c>` &gt;= d"
        );
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        assert!(parse("x.proto", "message A {\n  string a;\n}\n").is_err());
        assert!(parse("x.proto", "message A {\n").is_err());
        assert!(parse("x.proto", "}\n").is_err());
    }

    /// The committed reference matches the protos (the same check as `api-doc --check`).
    #[test]
    fn docs_api_md_is_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let want = generate(root).unwrap();
        let have = std::fs::read_to_string(root.join(OUT)).unwrap_or_default();
        assert!(have == want, "{OUT} is stale: run `cargo xtask api-doc`");
    }
}
