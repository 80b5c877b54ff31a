//! A rule match on an enriched event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::enriched::Enriched;

/// Falco's priorities, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Emergency => "EMERGENCY",
            Severity::Alert => "ALERT",
            Severity::Critical => "CRITICAL",
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
            Severity::Informational => "INFORMATIONAL",
            Severity::Debug => "DEBUG",
        }
    }

    /// Parses Falco's spellings, case-insensitively ("info" too).
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "emergency" => Severity::Emergency,
            "alert" => Severity::Alert,
            "critical" => Severity::Critical,
            "error" => Severity::Error,
            "warning" | "warn" => Severity::Warning,
            "notice" => Severity::Notice,
            "informational" | "info" => Severity::Informational,
            "debug" => Severity::Debug,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique on the node: `<node>-<event seq>-<rule index>` style, assigned by the
    /// detector.
    pub id: String,
    pub time_ns: i64,
    pub rule: String,
    /// Detection policy (e.g. "Drift Detection", "Malicious Binary Detection").
    pub policy: Option<String>,
    pub severity: Severity,
    /// The rule's output with fields interpolated (values escaped).
    pub output: String,
    /// Field name → rendered value, for Falco-JSON `output_fields`.
    pub output_fields: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub mitre_tactics: Vec<String>,
    pub mitre_techniques: Vec<String>,
    /// The sensor blocked the action (drift prevention).
    pub prevented: bool,
    /// The event that matched, with its context.
    pub event: Enriched,
}
