//! Rule output templates: `%field` / `%field[N]` / `%evt.arg.x`
//! interpolation. Values are inserted verbatim and never re-scanned, so a
//! `%` inside attacker-controlled data stays data.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::compile::FieldRef;
use crate::lexer::Lexer;
use crate::registry::FieldRegistry;
use crate::value::{FieldSource, OwnedValue};

/// Rendering of a field with no value (or an unknown field), as in Falco.
pub const NA: &str = "<NA>";

#[derive(Debug, Clone)]
enum Seg {
    Text(String),
    Field {
        /// As written in the template, e.g. `proc.aname[2]`.
        name: String,
        /// `None` when the registry does not know the field.
        field: Option<FieldRef>,
    },
}

/// A compiled output template.
#[derive(Debug, Clone, Default)]
pub struct OutputFormat {
    segs: Vec<Seg>,
}

impl OutputFormat {
    /// Compiles `template`; returns the format and the names of fields the
    /// registry does not know (they render as `<NA>`).
    pub fn compile(template: &str, registry: &FieldRegistry) -> (OutputFormat, Vec<String>) {
        let mut segs = Vec::new();
        let mut unknown = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(p) = rest.find('%') {
            text.push_str(&rest[..p]);
            let after = &rest[p + 1..];
            if let Some(r) = after.strip_prefix('%') {
                // `%%` is a literal percent sign.
                text.push('%');
                rest = r;
                continue;
            }
            let mut lx = Lexer::new(after);
            // A field name must follow immediately (no whitespace).
            let word = match after.chars().next() {
                Some(c) if c.is_ascii_alphabetic() || c == '_' => lx.word(),
                _ => None,
            };
            let Some((_, name)) = word else {
                text.push('%');
                rest = after;
                continue;
            };
            let mut consumed = lx.pos();
            let mut arg = None;
            if after[consumed..].starts_with('[') {
                let mut alx = Lexer::new(&after[consumed + 1..]);
                if let Ok(a) = alx.field_arg() {
                    arg = Some(a);
                    consumed += 1 + alx.pos();
                }
            }
            let written = after[..consumed].to_string();
            let field = registry
                .resolve(name, arg.as_deref())
                .ok()
                .map(|(id, arg)| FieldRef { id, arg });
            if field.is_none() && !unknown.contains(&written) {
                unknown.push(written.clone());
            }
            if !text.is_empty() {
                segs.push(Seg::Text(std::mem::take(&mut text)));
            }
            segs.push(Seg::Field {
                name: written,
                field,
            });
            rest = &after[consumed..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            segs.push(Seg::Text(text));
        }
        (OutputFormat { segs }, unknown)
    }

    /// Renders the template for one event.
    pub fn format<S: FieldSource + ?Sized>(&self, src: &S) -> String {
        let mut out = String::with_capacity(256);
        for seg in &self.segs {
            match seg {
                Seg::Text(t) => out.push_str(t),
                Seg::Field { field, .. } => {
                    match field.as_ref().and_then(|f| src.get(f.id, &f.arg)) {
                        Some(v) => {
                            let _ = write!(out, "{v}");
                        }
                        None => out.push_str(NA),
                    }
                }
            }
        }
        out
    }

    /// Field name (as written) → value, for Falco JSON `output_fields`
    /// (`None` is JSON null).
    pub fn fields<S: FieldSource + ?Sized>(&self, src: &S) -> BTreeMap<String, Option<OwnedValue>> {
        let mut map = BTreeMap::new();
        for seg in &self.segs {
            if let Seg::Field { name, field } = seg {
                let v = field
                    .as_ref()
                    .and_then(|f| src.get(f.id, &f.arg))
                    .map(OwnedValue::from);
                map.insert(name.clone(), v);
            }
        }
        map
    }

    /// Ids of the known fields the template renders.
    pub fn field_ids(&self) -> impl Iterator<Item = crate::registry::FieldId> + '_ {
        self.segs.iter().filter_map(|s| match s {
            Seg::Field { field: Some(f), .. } => Some(f.id),
            _ => None,
        })
    }

    /// Field names referenced by the template, as written.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Field { name, .. } => Some(name.as_str()),
            Seg::Text(_) => None,
        })
    }
}
