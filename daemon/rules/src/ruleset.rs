//! Compiled rules, indexed by event type.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::error::{FilterError, LoadError, Location};
use crate::eval::eval;
use crate::evttype::{EvtType, EvtTypeSet};
use crate::filter::{Definitions, Filter};
use crate::output::OutputFormat;
use crate::priority::Priority;
use crate::registry::{FieldId, FieldRegistry};
use crate::value::{FieldSource, OwnedValue};

/// A metadata value from a rule item (keys the engine does not interpret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaValue {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Seq(Vec<MetaValue>),
    Map(BTreeMap<String, MetaValue>),
}

/// A loaded rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub desc: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    /// Always `syscall` for loaded rules.
    pub source: String,
    pub enabled: bool,
    /// saker's `policy` key (e.g. "Drift Detection").
    pub policy: Option<String>,
    /// MITRE tactic ids (TA0002): from `mitre.tactic` and from Falco tags
    /// such as `mitre_execution` or `TA0003`.
    pub mitre_tactics: Vec<String>,
    /// MITRE technique ids (T1059.004): from `mitre.technique` and tags.
    pub mitre_techniques: Vec<String>,
    /// Keys of the rule item that the engine does not interpret.
    pub extra: BTreeMap<String, MetaValue>,
    /// Final condition text (after appends and overrides, before exceptions).
    pub condition: String,
    /// Output template.
    pub output: String,
    /// Where the rule was defined.
    pub location: Location,
    pub(crate) filter: Filter,
    pub(crate) output_format: OutputFormat,
}

impl Rule {
    /// Evaluates the rule's condition (exceptions included).
    pub fn matches<S: FieldSource + ?Sized>(&self, src: &S) -> bool {
        self.filter.matches(src)
    }

    /// Like [`Rule::matches`] for an event whose type is known.
    pub fn matches_event<S: FieldSource + ?Sized>(&self, evt: EvtType, src: &S) -> bool {
        self.filter.matches_event(evt, src)
    }

    /// Event types the rule can match.
    pub fn evt_types(&self) -> EvtTypeSet {
        self.filter.evt_types()
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The output line with `%field` interpolated (`<NA>` when missing).
    pub fn format_output<S: FieldSource + ?Sized>(&self, src: &S) -> String {
        self.output_format.format(src)
    }

    /// Field name → value for Falco JSON `output_fields` (`None` = null).
    pub fn output_fields<S: FieldSource + ?Sized>(
        &self,
        src: &S,
    ) -> BTreeMap<String, Option<OwnedValue>> {
        self.output_format.fields(src)
    }
}

/// What a load did, for logs and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Rules compiled, in load order (disabled ones included).
    pub loaded: Vec<String>,
    /// Loaded rules that are disabled (`enabled: false`).
    pub disabled: Vec<String>,
    /// Rules not loaded, with the reason.
    pub skipped: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

impl LoadReport {
    /// Skip reasons with positions removed, most frequent first (e.g.
    /// `("unknown field evt.buffer", 1)`).
    pub fn skip_summary(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (_, reason) in &self.skipped {
            *counts
                .entry(strip_location(reason).to_string())
                .or_default() += 1;
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// Whether `s` ends with `:<line>:<col>`.
fn ends_with_line_col(s: &str) -> bool {
    let mut parts = s.rsplitn(3, ':');
    let col = parts.next().unwrap_or("");
    let line = parts.next().unwrap_or("");
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    digits(col) && digits(line) && parts.next().is_some()
}

/// Removes a leading `file:line:col: ` and a trailing ` (file:line:col)`.
fn strip_location(reason: &str) -> &str {
    let mut r = reason;
    if let Some(i) = r.find(": ") {
        if ends_with_line_col(&r[..i]) {
            r = &r[i + 2..];
        }
    }
    if let Some(i) = r.rfind(" (") {
        if r.ends_with(')') && ends_with_line_col(&r[i + 2..r.len() - 1]) {
            r = &r[..i];
        }
    }
    r
}

/// A loaded, compiled set of rules.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Per known event type (plus a last slot for unknown types): indexes of
    /// enabled rules that can match it, in load order.
    by_type: Vec<Box<[u32]>>,
    defs: Arc<Definitions>,
    registry: Arc<FieldRegistry>,
    required_engine_version: Option<String>,
}

impl RuleSet {
    /// Loads rule files in order (later files append to or override earlier
    /// ones). Any file that cannot be read or is not valid YAML fails the
    /// whole load, so the caller keeps its previous rule set; rules that do
    /// not compile are skipped and listed in the report.
    pub fn load<P: AsRef<Path>>(
        files: &[P],
        registry: &FieldRegistry,
    ) -> Result<(RuleSet, LoadReport), LoadError> {
        let mut texts = Vec::with_capacity(files.len());
        for f in files {
            let path = f.as_ref();
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io {
                file: name.clone(),
                message: e.to_string(),
            })?;
            texts.push((name, text));
        }
        let refs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        Self::load_sources(&refs, registry)
    }

    /// Like [`RuleSet::load`] for in-memory `(file name, text)` pairs.
    pub fn load_sources(
        sources: &[(&str, &str)],
        registry: &FieldRegistry,
    ) -> Result<(RuleSet, LoadReport), LoadError> {
        crate::yaml::loader::load(sources, registry)
    }

    pub(crate) fn build(
        rules: Vec<Rule>,
        defs: Definitions,
        registry: FieldRegistry,
        required_engine_version: Option<String>,
    ) -> RuleSet {
        let mut rs = RuleSet {
            rules,
            by_type: Vec::new(),
            defs: Arc::new(defs),
            registry: Arc::new(registry),
            required_engine_version,
        };
        rs.reindex();
        rs
    }

    fn reindex(&mut self) {
        let n = EvtType::count();
        let mut by_type: Vec<Vec<u32>> = vec![Vec::new(); n + 1];
        for (i, r) in self.rules.iter().enumerate() {
            if !r.enabled {
                continue;
            }
            let set = r.evt_types();
            for (t, slot) in by_type.iter_mut().enumerate().take(n) {
                if set.contains(EvtType::from_index(t)) {
                    slot.push(i as u32);
                }
            }
            if set.is_any() {
                by_type[n].push(i as u32);
            }
        }
        self.by_type = by_type.into_iter().map(Vec::into_boxed_slice).collect();
    }

    /// Enabled rules that match an event of type `evt`; only rules whose
    /// condition admits that type are evaluated.
    pub fn matching<'a, 's, S: FieldSource + ?Sized>(
        &'a self,
        evt: EvtType,
        src: &'s S,
    ) -> impl Iterator<Item = &'a Rule> + use<'a, 's, S> {
        let slot = evt.index().unwrap_or(EvtType::count());
        let candidates: &'a [u32] = self.by_type.get(slot).map_or(&[], |b| &b[..]);
        candidates.iter().filter_map(move |&i| {
            let r = self.rules.get(i as usize)?;
            eval(&r.filter.node, src, Some(evt)).then_some(r)
        })
    }

    /// Number of rules [`RuleSet::matching`] evaluates for `evt`.
    pub fn candidate_count(&self, evt: EvtType) -> usize {
        let slot = evt.index().unwrap_or(EvtType::count());
        self.by_type.get(slot).map_or(0, |b| b.len())
    }

    /// Fields read by the conditions of enabled rules, and fields rendered
    /// by their outputs: what the host must provide values for.
    pub fn required_fields(&self) -> (BTreeSet<FieldId>, BTreeSet<FieldId>) {
        let mut cond = BTreeSet::new();
        let mut out = BTreeSet::new();
        for r in self.rules.iter().filter(|r| r.enabled) {
            r.filter.node.collect_fields(&mut cond);
            out.extend(r.output_format.field_ids());
        }
        (cond, out)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Enables or disables a loaded rule; false if no such rule.
    pub fn set_enabled(&mut self, name: &str, enabled: bool) -> bool {
        let Some(r) = self.rules.iter_mut().find(|r| r.name == name) else {
            return false;
        };
        r.enabled = enabled;
        self.reindex();
        true
    }

    /// Compiles a filter (store query, API filter) that may use this rule
    /// set's macros and lists, e.g. `spawned_process and container`.
    pub fn compile_filter(&self, text: &str) -> Result<Filter, FilterError> {
        Filter::compile_with(text, &self.registry, &self.defs)
    }

    pub fn definitions(&self) -> &Definitions {
        &self.defs
    }

    pub fn registry(&self) -> &FieldRegistry {
        &self.registry
    }

    pub fn required_engine_version(&self) -> Option<&str> {
        self.required_engine_version.as_deref()
    }
}
