//! Assembles one [`Incident`] from a component of alerts: id, workload, severity,
//! MITRE evidence and indicators (the blast radius is filled in later, across incidents).

use std::collections::BTreeSet;

use saker_event::{Alert, Body};

use crate::group::Prepared;
use crate::model::{Incident, Indicator, TacticEvidence, TechniqueEvidence, WorkloadKey};
use crate::path::{self, push_unique};

/// FNV-1a, 64 bits: tiny, dependency-free and identical on every platform and release,
/// which is all a stable id needs (it is not a security boundary).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `inc-<16 hex>` from cluster, node and the first alert's id.
pub(crate) fn incident_id(cluster: &str, node: &str, first_alert: &str) -> String {
    let h = fnv1a(&[cluster.as_bytes(), node.as_bytes(), first_alert.as_bytes()]);
    format!("inc-{h:016x}")
}

fn fill(slot: &mut Option<String>, v: Option<&String>) {
    if slot.is_none() {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            *slot = Some(v.clone());
        }
    }
}

/// The workload, each descriptive field taken from the first alert that has it: metadata
/// can be pending on early alerts and arrive on later ones.
fn workload(alerts: &[&Alert], container_id: Option<&str>) -> WorkloadKey {
    let first = alerts.first().map(|a| &a.event.ctx);
    let mut key = WorkloadKey {
        cluster: first.map(|c| c.cluster.clone()).unwrap_or_default(),
        node: first.map(|c| c.node.clone()).unwrap_or_default(),
        container_id: container_id.map(str::to_string),
        ..WorkloadKey::default()
    };
    if container_id.is_none() {
        return key;
    }
    for a in alerts {
        let Some(m) = &a.event.ctx.container else {
            continue;
        };
        fill(&mut key.namespace, m.namespace.as_ref());
        fill(&mut key.workload, m.workload.as_ref());
        fill(&mut key.pod, m.pod_name.as_ref());
        fill(&mut key.container, m.name.as_ref());
        fill(&mut key.image, m.image.as_ref());
    }
    key
}

/// The executable raised an alert and is itself suspicious: drifted, fileless or an IoC.
fn suspicious_binary(a: &Alert) -> bool {
    let p = &a.event.ctx.proc;
    let exec_drift =
        matches!(&a.event.event.body, Body::Exec(e) if e.exe_upper_layer || e.exe_memfd);
    p.exe_upper_layer || p.exe_memfd || p.exe_ioc.is_some() || exec_drift
}

/// Builds an incident; `affected_workloads` is left empty.
pub(crate) fn incident(prep: &Prepared<'_>, members: &[u32]) -> Incident {
    let alerts: Vec<&Alert> = members.iter().map(|&p| prep.alerts[p as usize]).collect();
    let container_id = members
        .first()
        .and_then(|&p| prep.scope_container[prep.scope[p as usize] as usize]);
    let workload = workload(&alerts, container_id);
    let first_id = alerts.first().map_or("", |a| a.id.as_str());
    let (attack_path, root_cause) = path::build(prep, members);

    let mut policies = Vec::new();
    let mut rules = Vec::new();
    let mut prevented_alert_ids = Vec::new();
    let mut techniques: Vec<TechniqueEvidence> = Vec::new();
    let mut tactics: Vec<TacticEvidence> = Vec::new();
    let mut indicators = BTreeSet::new();
    for a in &alerts {
        if let Some(p) = &a.policy {
            push_unique(&mut policies, p);
        }
        if !rules.contains(&a.rule) {
            rules.push(a.rule.clone());
            indicators.insert(Indicator::Rule(a.rule.clone()));
        }
        if a.prevented {
            prevented_alert_ids.push(a.id.clone());
        }
        if suspicious_binary(a) {
            if let Some(h) = a
                .event
                .ctx
                .proc
                .exe_sha256
                .as_ref()
                .filter(|h| !h.is_empty())
            {
                indicators.insert(Indicator::BinaryHash(h.clone()));
            }
        }
        for t in dedup(&a.mitre_techniques) {
            // Few distinct ids per incident (bounded by the rule set): a scan beats hashing.
            let i = match techniques.iter().position(|e| e.id == t) {
                Some(i) => i,
                None => {
                    techniques.push(TechniqueEvidence {
                        id: t.to_string(),
                        tactics: Vec::new(),
                        alert_ids: Vec::new(),
                        first_seen_ns: a.time_ns,
                    });
                    techniques.len() - 1
                }
            };
            let e = &mut techniques[i];
            e.alert_ids.push(a.id.clone());
            for ta in &a.mitre_tactics {
                push_unique(&mut e.tactics, ta);
            }
        }
        for t in dedup(&a.mitre_tactics) {
            let i = match tactics.iter().position(|e| e.id == t) {
                Some(i) => i,
                None => {
                    tactics.push(TacticEvidence {
                        id: t.to_string(),
                        techniques: Vec::new(),
                        alert_ids: Vec::new(),
                        first_seen_ns: a.time_ns,
                    });
                    tactics.len() - 1
                }
            };
            let e = &mut tactics[i];
            e.alert_ids.push(a.id.clone());
            for te in &a.mitre_techniques {
                push_unique(&mut e.techniques, te);
            }
        }
    }
    if !root_cause.cmdline.is_empty() {
        indicators.insert(Indicator::RootCommand(root_cause.cmdline.clone()));
    }

    Incident {
        id: incident_id(&workload.cluster, &workload.node, first_id),
        node: workload.node.clone(),
        cluster: workload.cluster.clone(),
        start_ns: alerts.first().map_or(0, |a| a.time_ns),
        end_ns: alerts.last().map_or(0, |a| a.time_ns),
        // Severity orders most severe first.
        severity: alerts
            .iter()
            .map(|a| a.severity)
            .min()
            .unwrap_or(saker_event::Severity::Debug),
        policies,
        rules,
        alert_ids: alerts.iter().map(|a| a.id.clone()).collect(),
        prevented_alert_ids,
        workload,
        root_cause,
        attack_path,
        tactics,
        techniques,
        indicators: indicators.into_iter().collect(),
        affected_workloads: Vec::new(),
    }
}

/// Distinct ids of one alert in first-occurrence order (a rule may list an id twice).
fn dedup(ids: &[String]) -> impl Iterator<Item = &str> {
    ids.iter()
        .enumerate()
        .filter(move |(i, s)| !ids[..*i].contains(s))
        .map(|(_, s)| s.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_separated() {
        assert_eq!(incident_id("c", "n", "a1"), incident_id("c", "n", "a1"));
        assert_ne!(incident_id("c", "n", "a1"), incident_id("c", "na", "1"));
        assert_eq!(incident_id("c", "n", "a1").len(), 20);
        // Pinned: a change here breaks every stored incident reference.
        assert_eq!(
            incident_id("prod-eu-1", "node-a", "w1-shell"),
            "inc-b57714905d4c03e9"
        );
    }
}
