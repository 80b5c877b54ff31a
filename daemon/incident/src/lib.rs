//! saker's incidents: alerts correlated into the stories an operator investigates.
//!
//! [`correlate`] groups a node's alerts into [`Incident`]s and explains each one:
//!
//! * **Grouping**: alerts are first split by scope — one container (cluster, node, container
//!   id) or one node's host — then joined with union-find when their processes are related
//!   and at most [`CorrelateConfig::window_ns`] apart: one process is an ancestor of the
//!   other, or both descend from a common ancestor inside the same scope. Ancestors outside
//!   the scope (container runtime, host service managers, pid 1) never link anything, so
//!   two `kubectl exec` sessions in one container, or two SSH sessions on a host, stay apart.
//! * **Root cause** ([`RootCause`]): the topmost process of the tree still inside the
//!   container (see [`RootCause`] for the heuristic).
//! * **Attack path** ([`AttackPath`]): the in-scope process tree in time order, each process
//!   with its alerts, rules, MITRE ids and actions.
//! * **MITRE evidence**: every tactic and technique with the alert ids that show it.
//! * **Blast radius** ([`blast_radius`], [`cross_incident_view`]): workloads whose incidents
//!   share a suspicious binary hash, a rule or the root-cause command line in a window.
//!
//! Everything is pure and deterministic: the same alerts, in any order, give the same
//! incidents with the same ids (only alerts identical in time, id, event seq and rule fall
//! back to input order). Strings from workloads stay bytes ([`saker_event::BString`])
//! and are never interpreted.

mod blast;
mod build;
mod fast;
mod group;
mod model;
mod path;
mod root_cause;

use std::collections::HashMap;

use saker_event::Alert;

pub use blast::{blast_radius, blast_radius_with, cross_incident_view, BlastIndex};
pub use model::{
    join_args, Action, AffectedWorkload, AttackPath, BlastConfig, Boundary, BoundaryReason,
    CorrelateConfig, Incident, Indicator, PathNode, RootCause, SharedIndicator, Step,
    TacticEvidence, TechniqueEvidence, WorkloadKey,
};

/// Correlates alerts into incidents, ordered by start time then id, each with its blast
/// radius across the returned incidents already filled in.
pub fn correlate(alerts: &[Alert], cfg: &CorrelateConfig) -> Vec<Incident> {
    if alerts.is_empty() {
        return Vec::new();
    }
    let window = cfg.window_ns.max(0);
    let prep = group::prepare(alerts, window, cfg.max_ancestry);
    let mut incidents: Vec<Incident> = group::components(&prep, window)
        .iter()
        .map(|members| build::incident(&prep, members))
        .collect();
    incidents.sort_by(|a, b| (a.start_ns, &a.id).cmp(&(b.start_ns, &b.id)));
    disambiguate_ids(&mut incidents);

    let affected: Vec<Vec<AffectedWorkload>> = {
        let index = BlastIndex::new(&incidents, &cfg.blast);
        incidents.iter().map(|i| index.affected(i)).collect()
    };
    for (inc, a) in incidents.iter_mut().zip(affected) {
        inc.affected_workloads = a;
    }
    incidents
}

/// Two incidents share an id only when their first alerts share an id (duplicated input):
/// later ones get `-2`, `-3`, … in output order, which is deterministic.
fn disambiguate_ids(incidents: &mut [Incident]) {
    let mut seen: HashMap<String, u32> = HashMap::new();
    for inc in incidents.iter_mut() {
        let n = seen.entry(inc.id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            inc.id = format!("{}-{}", inc.id, n);
        }
    }
}
