//! Detection: evaluate the loaded rules on enriched events and build alerts. The rule set
//! is swapped atomically on reload; a reload that fails keeps the last good rules.

pub mod hash;

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
};

use saker_event::{event::Body, Alert, Enriched, Severity};
use saker_rules::{EvtType, LoadReport, RuleSet};

use crate::{
    bstr::escape_bytes,
    fields::{EventView, Fields},
};

/// Loads rule files and keeps the active set.
pub struct Detector {
    fields: Arc<Fields>,
    files: Vec<PathBuf>,
    active: RwLock<Arc<RuleSet>>,
    report: RwLock<Arc<LoadReport>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("{0}")]
    Load(#[from] saker_rules::LoadError),
    /// Rules that do not compile for a reason other than an unsupported field or source
    /// (those are skipped by design, so upstream rule files load partially).
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Skips that are allowed (the rule needs something saker does not provide); anything
/// else — a syntax error, an unknown macro or list — makes the load fail.
fn is_tolerated(reason: &str) -> bool {
    // Reasons are "file:line:col: message" or "message (file:line:col)".
    let msg = match reason.split_once(": ") {
        Some((loc, rest))
            if loc
                .rsplit(':')
                .take(2)
                .all(|p| p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty()) =>
        {
            rest
        }
        _ => reason,
    };
    msg.starts_with("unknown field") || msg.starts_with("source ") || msg.starts_with("operator '")
}

fn load_strict(fields: &Fields, files: &[PathBuf]) -> Result<(RuleSet, LoadReport), DetectError> {
    let (rules, report) = RuleSet::load(files, &fields.registry)?;
    let errors: Vec<String> = report
        .skipped
        .iter()
        .filter(|(_, reason)| !is_tolerated(reason))
        .map(|(name, reason)| format!("rule {name:?}: {reason}"))
        .collect();
    if !errors.is_empty() {
        return Err(DetectError::Invalid(errors));
    }
    Ok((rules, report))
}

impl Detector {
    /// Loads `files` (in order: later files append to/override earlier ones).
    pub fn load(fields: Arc<Fields>, files: Vec<PathBuf>) -> Result<Detector, DetectError> {
        let (rules, report) = load_strict(&fields, &files)?;
        Ok(Detector {
            fields,
            files,
            active: RwLock::new(Arc::new(rules)),
            report: RwLock::new(Arc::new(report)),
        })
    }

    /// Re-reads the rule files. On error the previous rules stay active and the error
    /// (naming file:line:col) is returned.
    pub fn reload(&self) -> Result<Arc<LoadReport>, DetectError> {
        let (rules, report) = load_strict(&self.fields, &self.files)?;
        let report = Arc::new(report);
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        *self.report.write().unwrap_or_else(|e| e.into_inner()) = report.clone();
        Ok(report)
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn report(&self) -> Arc<LoadReport> {
        self.report
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn fields(&self) -> &Arc<Fields> {
        &self.fields
    }

    /// Alerts for one event (empty for most events).
    pub fn evaluate(&self, ev: &Enriched) -> Vec<Alert> {
        evaluate(&self.rules(), &self.fields, ev)
    }
}

/// Evaluates `rules` on `ev`.
pub fn evaluate(rules: &RuleSet, fields: &Fields, ev: &Enriched) -> Vec<Alert> {
    let view = EventView::new(fields, ev);
    let evt = EvtType::from_name(ev.event.type_name());
    let prevented = matches!(&ev.event.body, Body::Exec(x) if x.prevented);
    let mut out = Vec::new();
    for (i, rule) in rules.matching(evt, &view).enumerate() {
        let output = escape_bytes(rule.format_output(&view).trim().as_bytes());
        let output_fields = rule
            .output_fields(&view)
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.map_or_else(|| saker_rules::NA.to_string(), |v| v.to_string()),
                )
            })
            .collect();
        out.push(Alert {
            id: format!("{}-{}-{}", ev.event.time_ns, ev.seq, i),
            time_ns: ev.event.time_ns,
            rule: rule.name.clone(),
            policy: rule.policy.clone(),
            severity: Severity::parse(rule.priority.as_str()).unwrap_or(Severity::Warning),
            output,
            output_fields,
            tags: rule.tags.clone(),
            mitre_tactics: rule.mitre_tactics.clone(),
            mitre_techniques: rule.mitre_techniques.clone(),
            prevented,
            event: ev.clone(),
        });
    }
    out
}
