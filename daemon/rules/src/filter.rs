//! Standalone filters: the same language as rule conditions, for store
//! queries, API filters and the assistant.

use std::collections::HashMap;
use std::fmt;

use crate::ast::Expr;
use crate::compile::{Compiler, Env, ListItem, Node, SrcId};
use crate::error::{FilterError, Location, SyntaxError};
use crate::eval::eval;
use crate::evttype::{EvtType, EvtTypeSet};
use crate::lexer::line_col;
use crate::parser::parse;
use crate::registry::FieldRegistry;
use crate::value::FieldSource;

/// A compiled condition.
#[derive(Clone)]
pub struct Filter {
    pub(crate) node: Node,
    pub(crate) evt_types: EvtTypeSet,
    pub(crate) text: String,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("text", &self.text)
            .field("evt_types", &self.evt_types.names())
            .finish()
    }
}

impl Filter {
    /// Compiles `text` against `registry`, without macros or lists.
    pub fn compile(text: &str, registry: &FieldRegistry) -> Result<Filter, FilterError> {
        Self::compile_with(text, registry, &Definitions::default())
    }

    /// Compiles `text` with macros and lists from `defs`.
    pub fn compile_with(
        text: &str,
        registry: &FieldRegistry,
        defs: &Definitions,
    ) -> Result<Filter, FilterError> {
        let ast = parse(text)?;
        let env = DefsEnv {
            defs,
            registry,
            text,
        };
        let mut c = Compiler::new(&env);
        let node = c.compile(&ast, 0)?;
        Ok(Filter::from_node(node, text.to_string()))
    }

    pub(crate) fn from_node(node: Node, text: String) -> Filter {
        let evt_types = node.evt_types();
        Filter {
            node,
            evt_types,
            text,
        }
    }

    /// Evaluates the filter; `evt.type` checks ask `src` for the value.
    pub fn matches<S: FieldSource + ?Sized>(&self, src: &S) -> bool {
        eval(&self.node, src, None)
    }

    /// Evaluates the filter for an event whose type is already interned.
    pub fn matches_event<S: FieldSource + ?Sized>(&self, evt: EvtType, src: &S) -> bool {
        self.evt_types.contains(evt) && eval(&self.node, src, Some(evt))
    }

    /// Event types this filter can match.
    pub fn evt_types(&self) -> EvtTypeSet {
        self.evt_types
    }

    /// Fields the filter reads (the host must be able to provide them).
    pub fn fields(&self) -> std::collections::BTreeSet<crate::registry::FieldId> {
        let mut out = std::collections::BTreeSet::new();
        self.node.collect_fields(&mut out);
        out
    }

    /// The condition text it was compiled from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when the condition folded to a constant (e.g. `never_true`).
    pub fn constant(&self) -> Option<bool> {
        match self.node {
            Node::Const(b) => Some(b),
            _ => None,
        }
    }
}

struct MacroDef {
    ast: Result<Expr, SyntaxError>,
    text: String,
}

/// Named macros and lists for [`Filter::compile_with`].
#[derive(Default)]
pub struct Definitions {
    lists: HashMap<String, Vec<ListItem>>,
    macros: HashMap<String, usize>,
    macro_defs: Vec<(String, MacroDef)>,
}

impl Definitions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a list. Items are as written in YAML (an item
    /// naming another list is expanded; `'"x"'` is the quoted value `x`).
    pub fn add_list<I, S>(&mut self, name: &str, items: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let items = items
            .into_iter()
            .map(|s| ListItem::from_yaml(s.as_ref()))
            .collect();
        self.lists.insert(name.to_string(), items);
    }

    pub(crate) fn add_list_items(&mut self, name: &str, items: Vec<ListItem>) {
        self.lists.insert(name.to_string(), items);
    }

    /// Adds or replaces a macro. A syntax error is returned and also kept:
    /// filters that use the macro then fail with it.
    pub fn add_macro(&mut self, name: &str, condition: &str) -> Result<(), SyntaxError> {
        let ast = parse(condition).map_err(|mut e| {
            e.file = Some(format!("macro {name}"));
            e
        });
        let r = ast.as_ref().map(|_| ()).map_err(Clone::clone);
        let def = MacroDef {
            ast,
            text: condition.to_string(),
        };
        match self.macros.get(name) {
            Some(&i) => self.macro_defs[i].1 = def,
            None => {
                self.macros.insert(name.to_string(), self.macro_defs.len());
                self.macro_defs.push((name.to_string(), def));
            }
        }
        r
    }

    pub fn list_names(&self) -> impl Iterator<Item = &str> {
        self.lists.keys().map(String::as_str)
    }

    pub fn macro_names(&self) -> impl Iterator<Item = &str> {
        self.macro_defs.iter().map(|(n, _)| n.as_str())
    }

    /// Condition text of a macro.
    pub fn macro_condition(&self, name: &str) -> Option<&str> {
        self.macros
            .get(name)
            .map(|&i| self.macro_defs[i].1.text.as_str())
    }
}

impl fmt::Debug for Definitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Definitions")
            .field("lists", &self.lists.len())
            .field("macros", &self.macro_defs.len())
            .finish()
    }
}

struct DefsEnv<'a> {
    defs: &'a Definitions,
    registry: &'a FieldRegistry,
    text: &'a str,
}

impl Env for DefsEnv<'_> {
    fn registry(&self) -> &FieldRegistry {
        self.registry
    }

    fn list(&self, name: &str) -> Option<&[ListItem]> {
        self.defs.lists.get(name).map(Vec::as_slice)
    }

    fn macro_def(&self, name: &str) -> Option<(Result<&Expr, &SyntaxError>, SrcId)> {
        let &i = self.defs.macros.get(name)?;
        let (_, def) = &self.defs.macro_defs[i];
        Some((def.ast.as_ref(), u32::try_from(i + 1).unwrap_or(u32::MAX)))
    }

    /// Source 0 is the filter text; source i+1 is macro i.
    fn locate(&self, src: SrcId, offset: usize) -> Location {
        if src == 0 {
            let (line, col) = line_col(self.text, offset);
            return Location {
                file: None,
                line,
                col,
            };
        }
        match self.defs.macro_defs.get(src as usize - 1) {
            Some((name, def)) => {
                let (line, col) = line_col(&def.text, offset);
                Location {
                    file: Some(format!("macro {name}")),
                    line,
                    col,
                }
            }
            None => Location::default(),
        }
    }
}
