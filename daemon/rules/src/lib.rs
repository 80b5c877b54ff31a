//! saker's filter language (the Falco condition dialect) and rules engine.
//!
//! One language serves rule conditions, store queries, API filters and the
//! assistant:
//!
//! * [`parse`] turns text into an [`Expr`] (errors carry line:col and the
//!   offending token);
//! * [`Filter::compile`] resolves fields through a host-declared
//!   [`FieldRegistry`] to compact [`FieldId`]s, inlines macros, expands
//!   lists and precompiles matchers;
//! * [`Filter::matches`] evaluates against a [`FieldSource`] without
//!   allocating;
//! * [`RuleSet::load`] reads Falco-style YAML rule files, and
//!   [`RuleSet::matching`] evaluates only the rules whose event types can
//!   match.
//!
//! ```
//! use saker_rules::fields::ids;
//! use saker_rules::{saker_fields, EvtType, FieldArg, FieldId, FieldSource, RuleSet, Value};
//!
//! // The host answers by field id, borrowing from its own event record.
//! struct Exec {
//!     name: String,
//!     cmdline: String,
//! }
//! impl FieldSource for Exec {
//!     fn get(&self, field: FieldId, _arg: &FieldArg) -> Option<Value<'_>> {
//!         match field {
//!             ids::EVT_TYPE => Some(Value::Str("execve")),
//!             ids::PROC_NAME => Some(Value::Str(&self.name)),
//!             ids::PROC_CMDLINE => Some(Value::Str(&self.cmdline)),
//!             _ => None,
//!         }
//!     }
//! }
//!
//! let rules = r#"
//! - macro: spawned_process
//!   condition: evt.type in (execve, execveat)
//! - rule: Miner
//!   condition: spawned_process and proc.cmdline contains "stratum+tcp"
//!   output: miner %proc.name (%proc.cmdline) user=%user.name
//!   priority: CRITICAL
//! "#;
//! let (rs, report) = RuleSet::load_sources(&[("rules.yaml", rules)], &saker_fields())?;
//! assert_eq!(report.loaded, ["Miner"]);
//! let ev = Exec { name: "xmrig".into(), cmdline: "xmrig -o stratum+tcp://p:3333".into() };
//! let execve = EvtType::from_name("execve"); // intern once, not per event
//! let alerts: Vec<String> = rs.matching(execve, &ev).map(|r| r.format_output(&ev)).collect();
//! assert_eq!(alerts, ["miner xmrig (xmrig -o stratum+tcp://p:3333) user=<NA>"]);
//! # Ok::<(), saker_rules::LoadError>(())
//! ```
//!
//! Semantics worth knowing:
//! * a field with no value (`FieldSource::get` returns `None`) makes every
//!   check on it false, `!=` included, and `exists` false (as in Falco);
//!   `not (f = x)` is therefore true for a missing `f` while `f != x` is not;
//! * on list values (`proc.aname` without index, `tags`) every operator
//!   holds if it holds for any element, and `!=` means no element equals;
//!   `in` and `intersects` both mean "some element is in the set";
//! * `pmatch` matches a path equal to an entry or below it (`/etc` matches
//!   `/etc/passwd`, not `/etcx`); `glob` is `fnmatch` without
//!   `FNM_PATHNAME` (`*` crosses `/`).

mod ast;
mod compile;
mod error;
mod eval;
mod evttype;
pub mod fields;
mod filter;
mod lexer;
mod matchers;
mod output;
mod parser;
mod priority;
mod registry;
mod ruleset;
mod value;
mod yaml;

pub use ast::{Check, Expr, Literal, Op, Operand};
pub use compile::{ListItem, MAX_COMPILE_DEPTH};
pub use error::{CompileError, FilterError, LoadError, Location, SyntaxError};
pub use evttype::{EvtType, EvtTypeSet};
pub use fields::saker_fields;
pub use filter::{Definitions, Filter};
pub use lexer::line_col;
pub use output::{OutputFormat, NA};
pub use parser::{parse, MAX_DEPTH};
pub use priority::Priority;
pub use registry::{FieldArg, FieldDef, FieldId, FieldRegistry, FieldType, RegistryError};
pub use ruleset::{LoadReport, MetaValue, Rule, RuleSet};
pub use value::{FieldSource, ListRef, OwnedValue, Value};
