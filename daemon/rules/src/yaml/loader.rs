//! Falco rules files → [`RuleSet`].
//!
//! Pass 1 walks the items of every file in order and applies definitions,
//! `append: true` and `override:` to lists, macros and rules. Pass 2 parses
//! and compiles every rule against the final macros and lists; a rule that
//! fails is skipped with its reason and the rest load.

use std::collections::{BTreeMap, HashMap};

use crate::ast::{Check, Expr, Literal, Op, Operand};
use crate::compile::{Compiler, Env, ListItem, Node, SrcId};
use crate::error::{LoadError, Location, SyntaxError};
use crate::filter::{Definitions, Filter};
use crate::output::OutputFormat;
use crate::parser::parse;
use crate::priority::Priority;
use crate::registry::FieldRegistry;
use crate::ruleset::{LoadReport, MetaValue, Rule, RuleSet};
use crate::yaml::mitre;
use crate::yaml::tree::{locate_in_scalar, parse_yaml, Mark, Node as Y, Style};

/// The only event source this engine evaluates.
const SYSCALL: &str = "syscall";

struct FileText<'a> {
    name: &'a str,
    /// The text the YAML marks refer to (see `tree::parse_yaml`).
    text: std::borrow::Cow<'a, str>,
}

/// A YAML scalar a piece of condition text came from.
#[derive(Debug, Clone)]
struct Piece {
    file: usize,
    mark: Mark,
    style: Style,
    value: String,
}

/// Condition text, possibly assembled from several scalars by appends.
#[derive(Debug, Clone, Default)]
struct CondText {
    text: String,
    /// (start offset in `text`, origin).
    pieces: Vec<(usize, Piece)>,
}

impl CondText {
    fn from_scalar(file: usize, node: &Y) -> Option<CondText> {
        let Y::Scalar { value, style, mark } = node else {
            return None;
        };
        Some(CondText {
            text: value.clone(),
            pieces: vec![(
                0,
                Piece {
                    file,
                    mark: *mark,
                    style: *style,
                    value: value.clone(),
                },
            )],
        })
    }

    /// Falco appends condition text after a space.
    fn append(&mut self, other: &CondText) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let base = self.text.len();
        self.text.push_str(&other.text);
        for (start, p) in &other.pieces {
            self.pieces.push((base + start, p.clone()));
        }
    }
}

/// Where the text compiled under a [`SrcId`] came from.
enum Source {
    Cond(CondText),
    /// Generated text (exceptions): every offset maps to one place.
    Fixed(Location),
}

#[derive(Debug, Clone)]
struct ExceptionSpec {
    name: String,
    /// `None` when only values are appended to an existing exception.
    fields: Option<OneOrMany>,
    comps: Option<OneOrMany>,
    values: Vec<Y>,
    loc: Location,
}

#[derive(Debug, Clone)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone)]
struct RuleSpec {
    name: String,
    loc: Location,
    desc: String,
    condition: Option<CondText>,
    output: Option<String>,
    priority: Option<Priority>,
    tags: Vec<String>,
    enabled: bool,
    exceptions: Vec<ExceptionSpec>,
    source: String,
    warn_evttypes: bool,
    policy: Option<String>,
    mitre_tactics: Vec<String>,
    mitre_techniques: Vec<String>,
    extra: BTreeMap<String, MetaValue>,
    /// Why the rule cannot load (bad item), decided in pass 1.
    invalid: Option<String>,
}

struct MacroSpec {
    cond: CondText,
}

struct Collector<'a> {
    files: Vec<FileText<'a>>,
    lists: HashMap<String, Vec<ListItem>>,
    macros: HashMap<String, MacroSpec>,
    macro_order: Vec<String>,
    rules: Vec<RuleSpec>,
    rule_idx: HashMap<String, usize>,
    warnings: Vec<String>,
    required_engine_version: Option<String>,
}

fn meta(node: &Y) -> MetaValue {
    match node {
        Y::Scalar { value, style, .. } => {
            if *style != Style::Plain {
                return MetaValue::Str(value.clone());
            }
            if node.is_null() {
                MetaValue::Null
            } else if value == "true" || value == "True" || value == "TRUE" {
                MetaValue::Bool(true)
            } else if value == "false" || value == "False" || value == "FALSE" {
                MetaValue::Bool(false)
            } else if let Ok(i) = value.parse::<i64>() {
                MetaValue::Int(i)
            } else {
                MetaValue::Str(value.clone())
            }
        }
        Y::Seq { items, .. } => MetaValue::Seq(items.iter().map(meta).collect()),
        Y::Map { entries, .. } => MetaValue::Map(
            entries
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), meta(v))))
                .collect(),
        ),
    }
}

impl<'a> Collector<'a> {
    fn loc(&self, file: usize, mark: Mark) -> Location {
        Location {
            file: self.files.get(file).map(|f| f.name.to_string()),
            line: mark.line,
            col: mark.col,
        }
    }

    fn warn(&mut self, file: usize, mark: Mark, msg: impl std::fmt::Display) {
        let loc = self.loc(file, mark);
        self.warnings.push(format!("{loc}: {msg}"));
    }

    fn scalar(&self, file: usize, node: &Y, key: &str) -> Result<String, String> {
        match node {
            Y::Scalar { value, .. } if !node.is_null() => Ok(value.clone()),
            Y::Scalar { .. } => Ok(String::new()),
            _ => Err(format!(
                "{}: '{key}' must be a string, not {}",
                self.loc(file, node.mark()),
                node.kind()
            )),
        }
    }

    fn boolean(&self, file: usize, node: &Y, key: &str) -> Result<bool, String> {
        match node.as_str() {
            Some(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(format!(
                "{}: '{key}' must be true or false",
                self.loc(file, node.mark())
            )),
        }
    }

    fn strings(&self, file: usize, node: &Y, key: &str) -> Result<Vec<String>, String> {
        match node {
            Y::Seq { items, .. } => items
                .iter()
                .map(|i| match i {
                    Y::Scalar { value, .. } => Ok(value.clone()),
                    other => Err(format!(
                        "{}: items of '{key}' must be strings, not {}",
                        self.loc(file, other.mark()),
                        other.kind()
                    )),
                })
                .collect(),
            _ if node.is_null() => Ok(Vec::new()),
            Y::Scalar { value, .. } => Ok(vec![value.clone()]),
            other => Err(format!(
                "{}: '{key}' must be a list of strings, not {}",
                self.loc(file, other.mark()),
                other.kind()
            )),
        }
    }

    fn one_or_many(&self, file: usize, node: &Y, key: &str) -> Result<OneOrMany, String> {
        match node {
            Y::Seq { .. } => Ok(OneOrMany::Many(self.strings(file, node, key)?)),
            Y::Scalar { value, .. } => Ok(OneOrMany::One(value.clone())),
            other => Err(format!(
                "{}: '{key}' must be a string or a list, not {}",
                self.loc(file, other.mark()),
                other.kind()
            )),
        }
    }

    fn exceptions(&self, file: usize, node: &Y) -> Result<Vec<ExceptionSpec>, String> {
        let Y::Seq { items, .. } = node else {
            if node.is_null() {
                return Ok(Vec::new());
            }
            return Err(format!(
                "{}: 'exceptions' must be a list",
                self.loc(file, node.mark())
            ));
        };
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            let loc = self.loc(file, it.mark());
            let Y::Map { .. } = it else {
                return Err(format!("{loc}: an exception must be a mapping"));
            };
            let name = match it.get("name") {
                Some(n) => self.scalar(file, n, "name")?,
                None => return Err(format!("{loc}: exception without a name")),
            };
            let fields = it
                .get("fields")
                .map(|f| self.one_or_many(file, f, "fields"))
                .transpose()?;
            let comps = it
                .get("comps")
                .map(|c| self.one_or_many(file, c, "comps"))
                .transpose()?;
            let values = match it.get("values") {
                Some(Y::Seq { items, .. }) => items.clone(),
                Some(v) if v.is_null() => Vec::new(),
                Some(v) => {
                    return Err(format!(
                        "{}: exception values must be a list",
                        self.loc(file, v.mark())
                    ))
                }
                None => Vec::new(),
            };
            out.push(ExceptionSpec {
                name,
                fields,
                comps,
                values,
                loc,
            });
        }
        Ok(out)
    }

    fn mitre_key(&self, file: usize, node: &Y, spec: &mut RuleSpec) -> Result<(), String> {
        let Y::Map { entries, .. } = node else {
            return Err(format!(
                "{}: 'mitre' must be a mapping with tactic/technique lists",
                self.loc(file, node.mark())
            ));
        };
        for (k, v) in entries {
            let key = k.as_str().unwrap_or("");
            let vals = self.strings(file, v, key)?;
            match key {
                "tactic" | "tactics" => spec.mitre_tactics.extend(vals),
                "technique" | "techniques" => spec.mitre_techniques.extend(vals),
                _ => {}
            }
        }
        Ok(())
    }

    fn process_file(&mut self, file: usize) -> Result<(), LoadError> {
        let name = self.files[file].name;
        let (docs, patched) = parse_yaml(&self.files[file].text).map_err(|e| LoadError::Yaml {
            pos: Location {
                file: Some(name.to_string()),
                line: e.line,
                col: e.col,
            },
            message: e.message,
        })?;
        if let Some(p) = patched {
            self.files[file].text = std::borrow::Cow::Owned(p);
        }
        for doc in &docs {
            if doc.is_null() {
                continue;
            }
            let Y::Seq { items, .. } = doc else {
                return Err(LoadError::Schema {
                    pos: self.loc(file, doc.mark()),
                    message: format!("a rules file must be a list of items, not {}", doc.kind()),
                });
            };
            for item in items {
                self.item(file, item)?;
            }
        }
        Ok(())
    }

    fn item(&mut self, file: usize, item: &Y) -> Result<(), LoadError> {
        let Y::Map { entries, mark } = item else {
            return Err(LoadError::Schema {
                pos: self.loc(file, item.mark()),
                message: format!("an item must be a mapping, not {}", item.kind()),
            });
        };
        // The kind key may come anywhere in the item (`- condition: ...`
        // followed by `macro: name` is valid).
        const KINDS: [&str; 5] = [
            "rule",
            "macro",
            "list",
            "required_engine_version",
            "required_plugin_versions",
        ];
        let found = entries
            .iter()
            .find(|(k, _)| k.as_str().is_some_and(|k| KINDS.contains(&k)));
        let Some((kind_node, value)) = found else {
            let first = entries.first().and_then(|(k, _)| k.as_str()).unwrap_or("");
            self.warn(file, *mark, format!("unknown item kind '{first}' ignored"));
            return Ok(());
        };
        let kind = kind_node.as_str().unwrap_or("");
        match kind {
            "rule" | "macro" | "list" => {
                let name = match value.as_str() {
                    Some(n) if !n.trim().is_empty() => n.to_string(),
                    _ => {
                        self.warn(file, *mark, format!("{kind} item without a name ignored"));
                        return Ok(());
                    }
                };
                match kind {
                    "rule" => self.rule_item(file, item, name, *mark),
                    "macro" => self.macro_item(file, item, name, *mark),
                    _ => self.list_item(file, item, name, *mark),
                }
            }
            "required_engine_version" => {
                self.required_engine_version = value.as_str().map(str::to_string);
            }
            "required_plugin_versions" => {
                // saker provides container and k8s fields natively; plugin
                // requirements do not apply.
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads `append:` and `override:`; returns (append, override mapping).
    fn modifiers<'y>(&mut self, file: usize, item: &'y Y) -> (bool, Option<&'y [(Y, Y)]>) {
        let append = match item.get("append") {
            Some(v) => self.boolean(file, v, "append").unwrap_or_else(|e| {
                self.warnings.push(e);
                false
            }),
            None => false,
        };
        let ov = match item.get("override") {
            Some(Y::Map { entries, .. }) => Some(entries.as_slice()),
            Some(other) => {
                self.warn(file, other.mark(), "'override' must be a mapping; ignored");
                None
            }
            None => None,
        };
        (append, ov)
    }

    fn list_item(&mut self, file: usize, item: &Y, name: String, mark: Mark) {
        let (append, ov) = self.modifiers(file, item);
        let items = match item.get("items") {
            Some(node) => match self.strings(file, node, "items") {
                Ok(v) => v.iter().map(|s| ListItem::from_yaml(s)).collect::<Vec<_>>(),
                Err(e) => {
                    self.warnings.push(format!("list {name}: {e}"));
                    return;
                }
            },
            None => {
                self.warn(file, mark, format!("list {name} has no 'items'; ignored"));
                return;
            }
        };
        let mode = match ov {
            Some(entries) => match entries.iter().find(|(k, _)| k.as_str() == Some("items")) {
                Some((_, v)) => v.as_str().unwrap_or("").to_string(),
                None => {
                    self.warn(
                        file,
                        mark,
                        format!("list {name}: override does not name 'items'; ignored"),
                    );
                    return;
                }
            },
            None if append => "append".to_string(),
            None => "define".to_string(),
        };
        match mode.as_str() {
            "append" => match self.lists.get_mut(&name) {
                Some(existing) => existing.extend(items),
                None => self.warn(
                    file,
                    mark,
                    format!("append to undefined list {name} ignored"),
                ),
            },
            "replace" if !self.lists.contains_key(&name) => self.warn(
                file,
                mark,
                format!("override of undefined list {name} ignored"),
            ),
            "replace" | "define" => {
                self.lists.insert(name, items);
            }
            other => self.warn(
                file,
                mark,
                format!("list {name}: unknown override mode '{other}'"),
            ),
        }
    }

    fn macro_item(&mut self, file: usize, item: &Y, name: String, mark: Mark) {
        let (append, ov) = self.modifiers(file, item);
        let cond = match item
            .get("condition")
            .map(|c| CondText::from_scalar(file, c))
        {
            Some(Some(c)) => c,
            Some(None) => {
                self.warn(
                    file,
                    mark,
                    format!("macro {name}: 'condition' must be a string; ignored"),
                );
                return;
            }
            None => {
                self.warn(
                    file,
                    mark,
                    format!("macro {name} has no 'condition'; ignored"),
                );
                return;
            }
        };
        let mode = match ov {
            Some(entries) => match entries
                .iter()
                .find(|(k, _)| k.as_str() == Some("condition"))
            {
                Some((_, v)) => v.as_str().unwrap_or("").to_string(),
                None => {
                    self.warn(
                        file,
                        mark,
                        format!("macro {name}: override does not name 'condition'; ignored"),
                    );
                    return;
                }
            },
            None if append => "append".to_string(),
            None => "define".to_string(),
        };
        match mode.as_str() {
            "append" => match self.macros.get_mut(&name) {
                Some(m) => m.cond.append(&cond),
                None => self.warn(
                    file,
                    mark,
                    format!("append to undefined macro {name} ignored"),
                ),
            },
            "replace" if !self.macros.contains_key(&name) => self.warn(
                file,
                mark,
                format!("override of undefined macro {name} ignored"),
            ),
            "replace" | "define" => {
                if !self.macros.contains_key(&name) {
                    self.macro_order.push(name.clone());
                }
                self.macros.insert(name, MacroSpec { cond });
            }
            other => self.warn(
                file,
                mark,
                format!("macro {name}: unknown override mode '{other}'"),
            ),
        }
    }

    fn rule_item(&mut self, file: usize, item: &Y, name: String, mark: Mark) {
        let (append, ov) = self.modifiers(file, item);
        let Y::Map { entries, .. } = item else { return };
        if let Some(ov) = ov {
            self.override_rule(file, entries, ov, &name, mark);
            return;
        }
        if append {
            self.append_rule(file, entries, &name, mark);
            return;
        }
        let has = |k: &str| item.get(k).is_some();
        if !has("condition") && !has("output") && !has("priority") && has("enabled") {
            // Falco's legacy form: a rule item with only `enabled`.
            match (self.rule_idx.get(&name), item.get("enabled")) {
                (Some(&i), Some(v)) => match self.boolean(file, v, "enabled") {
                    Ok(b) => self.rules[i].enabled = b,
                    Err(e) => self.warnings.push(e),
                },
                _ => self.warn(
                    file,
                    mark,
                    format!("'enabled' given for undefined rule {name}; ignored"),
                ),
            }
            return;
        }
        let spec = self.define_rule(file, entries, name, mark);
        match self.rule_idx.get(&spec.name) {
            // A redefinition replaces the rule in place.
            Some(&i) => self.rules[i] = spec,
            None => {
                self.rule_idx.insert(spec.name.clone(), self.rules.len());
                self.rules.push(spec);
            }
        }
    }

    fn define_rule(
        &mut self,
        file: usize,
        entries: &[(Y, Y)],
        name: String,
        mark: Mark,
    ) -> RuleSpec {
        let mut spec = RuleSpec {
            name,
            loc: self.loc(file, mark),
            desc: String::new(),
            condition: None,
            output: None,
            priority: None,
            tags: Vec::new(),
            enabled: true,
            exceptions: Vec::new(),
            source: SYSCALL.to_string(),
            warn_evttypes: true,
            policy: None,
            mitre_tactics: Vec::new(),
            mitre_techniques: Vec::new(),
            extra: BTreeMap::new(),
            invalid: None,
        };
        let mut errors = Vec::new();
        for (k, v) in entries {
            let Some(key) = k.as_str() else { continue };
            let r = self.set_rule_key(file, &mut spec, key, v);
            if let Err(e) = r {
                errors.push(e);
            }
        }
        for key in ["condition", "output", "priority"] {
            let missing = match key {
                "condition" => spec.condition.is_none(),
                "output" => spec.output.is_none(),
                _ => spec.priority.is_none() && !errors.iter().any(|e| e.contains("priority")),
            };
            if missing {
                errors.push(format!("{}: missing required key '{key}'", spec.loc));
            }
        }
        if let Some(e) = errors.into_iter().next() {
            spec.invalid = Some(e);
        }
        spec
    }

    /// Sets one key of a rule (definition or `replace` override).
    fn set_rule_key(
        &self,
        file: usize,
        spec: &mut RuleSpec,
        key: &str,
        v: &Y,
    ) -> Result<(), String> {
        match key {
            "rule" | "append" | "override" => {}
            "desc" => spec.desc = self.scalar(file, v, key)?,
            "condition" => match CondText::from_scalar(file, v) {
                Some(c) => spec.condition = Some(c),
                None => {
                    return Err(format!(
                        "{}: 'condition' must be a string",
                        self.loc(file, v.mark())
                    ))
                }
            },
            "output" => spec.output = Some(self.scalar(file, v, key)?),
            "priority" => {
                let s = self.scalar(file, v, key)?;
                spec.priority = Some(Priority::parse(&s).ok_or_else(|| {
                    format!("{}: invalid priority '{s}'", self.loc(file, v.mark()))
                })?);
            }
            "tags" => spec.tags = self.strings(file, v, key)?,
            "enabled" => spec.enabled = self.boolean(file, v, key)?,
            "exceptions" => spec.exceptions = self.exceptions(file, v)?,
            "source" => spec.source = self.scalar(file, v, key)?,
            "warn_evttypes" => spec.warn_evttypes = self.boolean(file, v, key)?,
            "skip-if-unknown-filter" => {
                // Unknown fields always skip the rule with a reason here.
                self.boolean(file, v, key)?;
            }
            "capture" | "capture_duration" => {}
            "policy" => spec.policy = Some(self.scalar(file, v, key)?),
            "mitre" => {
                spec.mitre_tactics.clear();
                spec.mitre_techniques.clear();
                self.mitre_key(file, v, spec)?;
            }
            other => {
                spec.extra.insert(other.to_string(), meta(v));
            }
        }
        Ok(())
    }

    fn append_rule(&mut self, file: usize, entries: &[(Y, Y)], name: &str, mark: Mark) {
        let Some(&i) = self.rule_idx.get(name) else {
            self.warn(
                file,
                mark,
                format!("append to undefined rule {name} ignored"),
            );
            return;
        };
        for (k, v) in entries {
            let Some(key) = k.as_str() else { continue };
            match key {
                "rule" | "append" | "source" => {}
                "condition" => match CondText::from_scalar(file, v) {
                    Some(c) => {
                        if let Some(cond) = self.rules[i].condition.as_mut() {
                            cond.append(&c);
                        }
                    }
                    None => self.warn(file, v.mark(), "'condition' must be a string; ignored"),
                },
                "exceptions" => match self.exceptions(file, v) {
                    Ok(ex) => merge_exceptions(&mut self.rules[i], ex),
                    Err(e) => self.warnings.push(e),
                },
                other => self.warn(
                    file,
                    k.mark(),
                    format!("rule {name}: key '{other}' cannot be appended; ignored"),
                ),
            }
        }
    }

    fn override_rule(
        &mut self,
        file: usize,
        entries: &[(Y, Y)],
        ov: &[(Y, Y)],
        name: &str,
        mark: Mark,
    ) {
        let Some(&i) = self.rule_idx.get(name) else {
            self.warn(
                file,
                mark,
                format!("override of undefined rule {name} ignored"),
            );
            return;
        };
        let mut spec = std::mem::replace(&mut self.rules[i], placeholder());
        for (k, m) in ov {
            let (Some(key), Some(mode)) = (k.as_str(), m.as_str()) else {
                self.warn(
                    file,
                    k.mark(),
                    "override entries must be `key: append|replace`",
                );
                continue;
            };
            let Some(v) = entries
                .iter()
                .find(|(ek, _)| ek.as_str() == Some(key))
                .map(|(_, v)| v)
            else {
                self.warn(
                    file,
                    k.mark(),
                    format!("override names '{key}' but the item has no such key"),
                );
                continue;
            };
            let r = match (key, mode) {
                ("condition", "append") => match CondText::from_scalar(file, v) {
                    Some(c) => {
                        match spec.condition.as_mut() {
                            Some(cond) => cond.append(&c),
                            None => spec.condition = Some(c),
                        }
                        Ok(())
                    }
                    None => Err(format!(
                        "{}: 'condition' must be a string",
                        self.loc(file, v.mark())
                    )),
                },
                ("output" | "desc", "append") => self.scalar(file, v, key).map(|s| {
                    let target = if key == "output" {
                        spec.output.get_or_insert_with(String::new)
                    } else {
                        &mut spec.desc
                    };
                    if !target.is_empty() {
                        target.push(' ');
                    }
                    target.push_str(&s);
                }),
                ("tags", "append") => self.strings(file, v, key).map(|t| spec.tags.extend(t)),
                ("exceptions", "append") => self
                    .exceptions(file, v)
                    .map(|ex| merge_exceptions(&mut spec, ex)),
                (
                    "condition"
                    | "output"
                    | "desc"
                    | "priority"
                    | "tags"
                    | "exceptions"
                    | "enabled"
                    | "warn_evttypes"
                    | "skip-if-unknown-filter"
                    | "policy"
                    | "mitre",
                    "replace",
                ) => self.set_rule_key(file, &mut spec, key, v),
                _ => Err(format!(
                    "{}: rule {name}: cannot {mode} key '{key}'",
                    self.loc(file, k.mark())
                )),
            };
            if let Err(e) = r {
                self.warnings.push(e);
            }
        }
        for (k, _) in entries {
            let Some(key) = k.as_str() else { continue };
            if !matches!(key, "rule" | "override" | "source")
                && !ov.iter().any(|(o, _)| o.as_str() == Some(key))
            {
                self.warn(
                    file,
                    k.mark(),
                    format!("rule {name}: key '{key}' is not listed in 'override'; ignored"),
                );
            }
        }
        self.rules[i] = spec;
    }
}

/// Appended exceptions with a known name add values; new ones are added.
fn merge_exceptions(spec: &mut RuleSpec, new: Vec<ExceptionSpec>) {
    for e in new {
        match spec.exceptions.iter_mut().find(|x| x.name == e.name) {
            Some(existing) => existing.values.extend(e.values),
            None => spec.exceptions.push(e),
        }
    }
}

fn placeholder() -> RuleSpec {
    RuleSpec {
        name: String::new(),
        loc: Location::default(),
        desc: String::new(),
        condition: None,
        output: None,
        priority: None,
        tags: Vec::new(),
        enabled: false,
        exceptions: Vec::new(),
        source: String::new(),
        warn_evttypes: false,
        policy: None,
        mitre_tactics: Vec::new(),
        mitre_techniques: Vec::new(),
        extra: BTreeMap::new(),
        invalid: None,
    }
}

/// Compile-time view of the collected definitions.
struct LoadEnv<'c, 'a> {
    col: &'c Collector<'a>,
    registry: &'c FieldRegistry,
    macro_asts: HashMap<&'c str, (Result<Expr, SyntaxError>, SrcId)>,
    sources: Vec<Source>,
}

impl LoadEnv<'_, '_> {
    fn locate_cond(&self, c: &CondText, offset: usize) -> Location {
        let Some((start, piece)) = c.pieces.iter().rev().find(|(s, _)| *s <= offset) else {
            return Location::default();
        };
        let Some(f) = self.col.files.get(piece.file) else {
            return Location::default();
        };
        let (line, col) = locate_in_scalar(
            &f.text,
            piece.mark,
            piece.style,
            &piece.value,
            offset - start,
        );
        Location {
            file: Some(f.name.to_string()),
            line,
            col,
        }
    }

    /// Rewrites a syntax error's position from condition text to file.
    fn relocate(&self, mut e: SyntaxError, src: SrcId) -> SyntaxError {
        let loc = self.locate(src, e.offset);
        e.file = loc.file;
        e.line = loc.line;
        e.col = loc.col;
        e
    }
}

impl Env for LoadEnv<'_, '_> {
    fn registry(&self) -> &FieldRegistry {
        self.registry
    }

    fn list(&self, name: &str) -> Option<&[ListItem]> {
        self.col.lists.get(name).map(Vec::as_slice)
    }

    fn macro_def(&self, name: &str) -> Option<(Result<&Expr, &SyntaxError>, SrcId)> {
        self.macro_asts.get(name).map(|(r, s)| (r.as_ref(), *s))
    }

    fn locate(&self, src: SrcId, offset: usize) -> Location {
        match self.sources.get(src as usize) {
            Some(Source::Cond(c)) => self.locate_cond(c, offset),
            Some(Source::Fixed(l)) => l.clone(),
            None => Location::default(),
        }
    }
}

fn lit(text: &str, quoted: bool) -> Literal {
    Literal {
        text: text.to_string(),
        quoted,
        offset: 0,
    }
}

/// An exception value as condition operands. For list operators a string
/// may name a list; otherwise values are always literal data.
fn exception_operand(op: Op, v: &Y) -> Result<Operand, String> {
    if op.takes_list() {
        return Ok(Operand::List(match v {
            Y::Seq { items, .. } => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(|s| lit(s, false))
                        .ok_or("nested list in exception values")
                })
                .collect::<Result<Vec<_>, _>>()?,
            Y::Scalar { value, .. } => vec![lit(value, false)],
            Y::Map { .. } => return Err("a mapping in exception values".into()),
        }));
    }
    match v.as_str() {
        Some(s) => Ok(Operand::One(lit(s, true))),
        None => Err(format!(
            "exception value must be a string, not {}",
            v.kind()
        )),
    }
}

fn op_of(comp: &str) -> Option<Op> {
    Some(match comp {
        "=" | "==" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        _ => Op::WORDS.iter().find(|(w, _)| *w == comp)?.1,
    })
}

fn split_field(f: &str) -> (String, Option<String>) {
    match (f.find('['), f.ends_with(']')) {
        (Some(i), true) => (f[..i].to_string(), Some(f[i + 1..f.len() - 1].to_string())),
        _ => (f.to_string(), None),
    }
}

fn check(field: &str, op: Op, value: Operand) -> Expr {
    let (field, arg) = split_field(field.trim());
    Expr::Check(Box::new(Check {
        field,
        arg,
        offset: 0,
        op: Some(op),
        value,
    }))
}

/// Falco's exception semantics: each value tuple is a conjunction of
/// `field comp value`; the rule gets `and not (tuple or tuple ...)`.
fn exception_expr(e: &ExceptionSpec) -> Result<Option<Expr>, String> {
    let Some(fields) = &e.fields else {
        return Err(format!("exception {} has no 'fields'", e.name));
    };
    let bad_comp = |c: &str| format!("exception {}: unknown comparison '{c}'", e.name);
    let mut alts = Vec::new();
    match fields {
        OneOrMany::One(field) => {
            let comp = match &e.comps {
                None => "in".to_string(),
                Some(OneOrMany::One(c)) => c.clone(),
                Some(OneOrMany::Many(_)) => {
                    return Err(format!(
                    "exception {}: 'comps' must be a single operator when 'fields' is one field",
                    e.name
                ))
                }
            };
            let op = op_of(&comp).ok_or_else(|| bad_comp(&comp))?;
            if e.values.is_empty() {
                return Ok(None);
            }
            if op.takes_list() {
                let seq = Y::Seq {
                    items: e.values.clone(),
                    mark: Mark::default(),
                };
                alts.push(check(field, op, exception_operand(op, &seq)?));
            } else {
                for v in &e.values {
                    alts.push(check(field, op, exception_operand(op, v)?));
                }
            }
        }
        OneOrMany::Many(fields) => {
            let comps: Vec<String> = match &e.comps {
                None => vec!["=".to_string(); fields.len()],
                Some(OneOrMany::Many(c)) => c.clone(),
                Some(OneOrMany::One(c)) => vec![c.clone(); fields.len()],
            };
            if comps.len() != fields.len() {
                return Err(format!(
                    "exception {}: {} fields but {} comps",
                    e.name,
                    fields.len(),
                    comps.len()
                ));
            }
            let ops = comps
                .iter()
                .map(|c| op_of(c).ok_or_else(|| bad_comp(c)))
                .collect::<Result<Vec<_>, _>>()?;
            for tuple in &e.values {
                let Y::Seq { items, .. } = tuple else {
                    return Err(format!(
                        "exception {}: each value must be a list matching 'fields'",
                        e.name
                    ));
                };
                if items.len() != fields.len() {
                    return Err(format!(
                        "exception {}: a value has {} items for {} fields",
                        e.name,
                        items.len(),
                        fields.len()
                    ));
                }
                let conj = fields
                    .iter()
                    .zip(&ops)
                    .zip(items)
                    .map(|((f, op), v)| Ok(check(f, *op, exception_operand(*op, v)?)))
                    .collect::<Result<Vec<_>, String>>()?;
                alts.push(if conj.len() == 1 {
                    conj.into_iter().next().unwrap_or(Expr::And(Vec::new()))
                } else {
                    Expr::And(conj)
                });
            }
        }
    }
    Ok(match alts.len() {
        0 => None,
        1 => alts.pop(),
        _ => Some(Expr::Or(alts)),
    })
}

fn compile_rule(
    env: &LoadEnv<'_, '_>,
    spec: &RuleSpec,
    src: SrcId,
    exc_srcs: &[SrcId],
    warnings: &mut Vec<String>,
) -> Result<(Node, String), String> {
    let cond = spec.condition.as_ref().ok_or("missing condition")?;
    let ast = parse(&cond.text).map_err(|e| env.relocate(e, src).to_string())?;
    let mut c = Compiler::new(env);
    let mut node = c.compile(&ast, src).map_err(|e| e.to_string())?;
    for (exc, &esrc) in spec.exceptions.iter().zip(exc_srcs) {
        let expr = exception_expr(exc).map_err(|m| format!("{m} ({})", exc.loc))?;
        if let Some(expr) = expr {
            let n = c.compile(&expr, esrc).map_err(|e| e.to_string())?;
            node = Node::and(vec![node, Node::not(n)]);
        }
    }
    warnings.extend(
        c.warnings
            .into_iter()
            .map(|w| format!("rule {}: {w}", spec.name)),
    );
    Ok((node, cond.text.clone()))
}

pub(crate) fn load(
    sources: &[(&str, &str)],
    registry: &FieldRegistry,
) -> Result<(RuleSet, LoadReport), LoadError> {
    let mut col = Collector {
        files: sources
            .iter()
            .map(|&(name, text)| FileText {
                name,
                text: std::borrow::Cow::Borrowed(text),
            })
            .collect(),
        lists: HashMap::new(),
        macros: HashMap::new(),
        macro_order: Vec::new(),
        rules: Vec::new(),
        rule_idx: HashMap::new(),
        warnings: Vec::new(),
        required_engine_version: None,
    };
    for i in 0..col.files.len() {
        col.process_file(i)?;
    }

    // Sources: macros first, then each rule's condition and exceptions.
    let mut env = LoadEnv {
        col: &col,
        registry,
        macro_asts: HashMap::new(),
        sources: Vec::new(),
    };
    let mut macro_srcs = Vec::with_capacity(col.macro_order.len());
    for name in &col.macro_order {
        if let Some(m) = col.macros.get(name) {
            macro_srcs.push((name.as_str(), env.sources.len() as SrcId));
            env.sources.push(Source::Cond(m.cond.clone()));
        }
    }
    let mut rule_srcs = Vec::with_capacity(col.rules.len());
    for spec in &col.rules {
        let src = env.sources.len() as SrcId;
        env.sources
            .push(Source::Cond(spec.condition.clone().unwrap_or_default()));
        let exc: Vec<SrcId> = spec
            .exceptions
            .iter()
            .map(|e| {
                env.sources.push(Source::Fixed(e.loc.clone()));
                (env.sources.len() - 1) as SrcId
            })
            .collect();
        rule_srcs.push((src, exc));
    }
    let mut report = LoadReport::default();
    for (name, src) in macro_srcs {
        let Some(m) = col.macros.get(name) else {
            continue;
        };
        let ast = parse(&m.cond.text).map_err(|e| env.relocate(e, src));
        if let Err(e) = &ast {
            report.warnings.push(format!("macro {name}: {e}"));
        }
        env.macro_asts.insert(name, (ast, src));
    }

    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for (spec, (src, exc_srcs)) in col.rules.iter().zip(&rule_srcs) {
        if let Some(reason) = &spec.invalid {
            report.skipped.push((spec.name.clone(), reason.clone()));
            continue;
        }
        if spec.source != SYSCALL {
            report.skipped.push((
                spec.name.clone(),
                format!("source {} not supported", spec.source),
            ));
            continue;
        }
        let (node, text) = match compile_rule(&env, spec, *src, exc_srcs, &mut warnings) {
            Ok(x) => x,
            Err(reason) => {
                report.skipped.push((spec.name.clone(), reason));
                continue;
            }
        };
        let template = spec.output.clone().unwrap_or_default();
        let (output_format, unknown) = OutputFormat::compile(&template, registry);
        if !unknown.is_empty() {
            warnings.push(format!(
                "rule {}: unknown output fields render as <NA>: {}",
                spec.name,
                unknown.join(", ")
            ));
        }
        let filter = Filter::from_node(node, text.clone());
        let set = filter.evt_types();
        if set.is_empty() {
            warnings.push(format!(
                "rule {}: no event type can match its condition",
                spec.name
            ));
        } else if set.is_any() && spec.warn_evttypes {
            warnings.push(format!(
                "rule {}: condition does not restrict evt.type; it is evaluated for every event",
                spec.name
            ));
        }
        let (tactics, techniques) =
            mitre::derive(&spec.tags, &spec.mitre_tactics, &spec.mitre_techniques);
        report.loaded.push(spec.name.clone());
        if !spec.enabled {
            report.disabled.push(spec.name.clone());
        }
        rules.push(Rule {
            name: spec.name.clone(),
            desc: spec.desc.clone(),
            priority: spec.priority.unwrap_or(Priority::Debug),
            tags: spec.tags.clone(),
            source: spec.source.clone(),
            enabled: spec.enabled,
            policy: spec.policy.clone(),
            mitre_tactics: tactics,
            mitre_techniques: techniques,
            extra: spec.extra.clone(),
            condition: text,
            output: template,
            location: spec.loc.clone(),
            filter,
            output_format,
        });
    }
    report.warnings.extend(col.warnings.iter().cloned());
    report.warnings.extend(warnings);

    let mut defs = Definitions::new();
    for (name, items) in &col.lists {
        defs.add_list_items(name, items.clone());
    }
    for name in &col.macro_order {
        if let Some(m) = col.macros.get(name) {
            let _ = defs.add_macro(name, &m.cond.text);
        }
    }
    let rs = RuleSet::build(
        rules,
        defs,
        registry.clone(),
        col.required_engine_version.clone(),
    );
    Ok((rs, report))
}
