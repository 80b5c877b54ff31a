//! Mission steps 9 and 10: remediation that fits what happened, and concrete isolation
//! guidance with the real names filled in. Both cover the whole blast radius of the
//! incidents in scope (a fix that leaves the same miner running next door is no fix).

use saker_event::Alert;
use saker_incident::WorkloadKey;

use super::blast::blast_radius;
use super::{q, targets, Built, FactSheet, Scope};
use crate::error::AssistError;
use crate::intent::Intent;
use crate::lang::{tr, Lang};
use crate::playbook::{network_policies, Targets};
use crate::render::{opt, Row, Section};

struct Affected {
    workloads: Vec<WorkloadKey>,
    alerts: Vec<Alert>,
    alert_ids: Vec<String>,
    incident_ids: Vec<String>,
    targets: Targets,
}

fn affected(s: &Scope) -> Result<Option<(Affected, crate::session::Focus)>, AssistError> {
    let anchors = s.focused_incidents();
    if anchors.is_empty() {
        return Ok(None);
    }
    let b = blast_radius(s, &anchors)?;
    let mut alert_ids: Vec<String> = b
        .incidents
        .iter()
        .flat_map(|i| i.alert_ids.iter().cloned())
        .collect();
    alert_ids.sort();
    alert_ids.dedup();
    let alerts: Vec<Alert> = b
        .alerts
        .iter()
        .filter(|a| alert_ids.binary_search(&a.id).is_ok())
        .cloned()
        .collect();
    let workloads: Vec<WorkloadKey> = b.workloads.iter().map(|(w, _, _)| w.clone()).collect();
    let refs: Vec<&Alert> = alerts.iter().collect();
    let t = targets(s, &workloads, &refs);
    Ok(Some((
        Affected {
            workloads,
            alerts,
            alert_ids,
            incident_ids: b.incidents.iter().map(|i| i.id.clone()).collect(),
            targets: t,
        },
        s.focus(&anchors),
    )))
}

fn pods_table(lang: Lang, a: &Affected) -> Section {
    Section::table(
        tr(lang, "Affected pods", "影響を受けたポッド"),
        vec![
            tr(lang, "Namespace", "名前空間").into(),
            tr(lang, "Pod", "ポッド").into(),
            tr(lang, "Workload", "ワークロード").into(),
            tr(lang, "Image", "イメージ").into(),
            tr(lang, "Node", "ノード").into(),
        ],
        a.workloads
            .iter()
            .map(|w| Row {
                cells: vec![
                    opt(&w.namespace),
                    opt(&w.pod),
                    opt(&w.workload),
                    opt(&w.image),
                    crate::render::esc_str(&w.node),
                ],
                alert_ids: a
                    .alerts
                    .iter()
                    .filter(|x| {
                        x.event.ctx.container_id == w.container_id && x.event.ctx.node == w.node
                    })
                    .map(|x| x.id.clone())
                    .collect(),
            })
            .collect(),
    )
}

fn pod_names(a: &Affected) -> Vec<String> {
    a.workloads.iter().map(|w| opt(&w.pod)).collect()
}

fn namespaces(a: &Affected) -> Vec<String> {
    let mut v: Vec<String> = a.workloads.iter().map(|w| opt(&w.namespace)).collect();
    v.sort();
    v.dedup();
    v
}

fn filters(s: &Scope, a: &Affected) -> Vec<crate::filter::SuggestedFilter> {
    let mut out = Vec::new();
    if a.alert_ids.len() <= crate::filter::MAX_IDS_IN_FILTER {
        if let Some(f) = crate::filter::alert_ids(&a.alert_ids) {
            let times: Vec<i64> = a.alerts.iter().map(|x| x.time_ns).collect();
            out.push(crate::filter::SuggestedFilter {
                filter: f,
                description: format!("the {} alerts of the affected workloads", a.alert_ids.len()),
                since_ns: times.iter().min().copied().unwrap_or(0),
                until_ns: times.iter().max().map(|t| t + 1).unwrap_or(0),
            });
        }
    }
    let _ = s;
    out
}

pub(super) fn build_remediation(s: &Scope) -> Result<Built, AssistError> {
    let lang = s.lang;
    let Some((a, focus)) = affected(s)? else {
        return Ok(s.nothing(Intent::Remediate));
    };
    let steps = s.playbooks.remediation(&a.targets, lang);
    let mut sections = vec![
        pods_table(lang, &a),
        Section::list(tr(lang, "Remediation steps", "修正手順"), steps, true)
            .with_alerts(a.alert_ids.clone()),
    ];
    // MITRE's mitigations for the techniques seen (reference data, by technique).
    let mut rows = Vec::new();
    for t in &a.targets.techniques {
        if let Some(k) = s.kb.technique(t) {
            for m in &k.mitigations {
                if let Some(mi) = s.kb.mitigation(m) {
                    rows.push(Row {
                        cells: vec![
                            format!("{} {}", k.id, k.name),
                            mi.id.clone(),
                            mi.name.clone(),
                        ],
                        alert_ids: a
                            .alerts
                            .iter()
                            .filter(|x| x.mitre_techniques.contains(t))
                            .map(|x| x.id.clone())
                            .collect(),
                    });
                }
            }
        }
    }
    if !rows.is_empty() {
        sections.push(Section::table(
            tr(lang, "MITRE ATT&CK mitigations", "MITRE ATT&CK 緩和策"),
            vec![
                tr(lang, "Technique", "技術").into(),
                tr(lang, "Mitigation", "緩和策").into(),
                tr(lang, "Name", "名称").into(),
            ],
            rows,
        ));
    }
    let pods = pod_names(&a);
    let nss = namespaces(&a);
    let images: Vec<String> = {
        let mut v: Vec<String> = a.workloads.iter().map(|w| opt(&w.image)).collect();
        v.sort();
        v.dedup();
        v
    };
    let binaries: Vec<String> = {
        let mut v: Vec<String> = a
            .targets
            .binaries
            .iter()
            .map(|b| crate::render::esc_str(&b.path))
            .collect();
        v.dedup();
        v
    };
    let names: Vec<String> = a.workloads.iter().map(super::short_name).collect();
    let mut lines = vec![format!(
        "affected workloads: {} in {}",
        super::and_list(&names, 4),
        super::and_list(&nss, 3)
    )];
    if let Some(b) = binaries.first() {
        lines.push(format!("malicious binary: {}", q(b)));
    }
    lines.push(
        "steps: isolate the pods, replace them, rotate their credentials, rebuild the images, enable drift prevention"
            .into(),
    );
    let fallback = match lang {
        Lang::En => format!(
            "Isolate and then replace the {} affected pods ({}), rotate the service-account tokens, secrets and keys they could reach, rebuild {} from a trusted base, and tighten policy in {} (drift prevention, read-only root filesystem).",
            pods.len(),
            pods.join(", "),
            images.join(", "),
            nss.join(", ")
        ),
        Lang::Ja => format!(
            "影響を受けた{}個のポッド（{}）を隔離してから置き換え、アクセス可能だったサービスアカウントのトークン・シークレット・鍵をローテーションし、{} を信頼できるベースから再ビルドし、{} のポリシーを強化します（ドリフト防止、読み取り専用ルートファイルシステム）。",
            pods.len(),
            pods.join("、"),
            images.join("、"),
            nss.join("、")
        ),
    };
    Ok(Built {
        sections,
        filters: filters(s, &a),
        alert_ids: a.alert_ids.clone(),
        incident_ids: a.incident_ids.clone(),
        facts: FactSheet { lines, fallback },
        notes: vec![s.kb.attribution_line()],
        focus,
    })
}

pub(super) fn build_isolation(s: &Scope) -> Result<Built, AssistError> {
    let lang = s.lang;
    let Some((a, focus)) = affected(s)? else {
        return Ok(s.nothing(Intent::Isolate));
    };
    let mut sections = vec![pods_table(lang, &a)];
    let policies = network_policies(&a.targets);
    for st in s.playbooks.isolation(&a.targets, lang) {
        sections.push(Section::list(st.title.clone(), st.steps, true));
        if st.id == "network" && !policies.is_empty() {
            let mut md = String::new();
            for (ns, yaml) in &policies {
                md.push_str(&format!(
                    "{} `{ns}` (`kubectl apply -f -`):\n\n```yaml\n{yaml}```\n\n",
                    tr(lang, "Namespace", "名前空間")
                ));
            }
            sections.push(Section::text(
                tr(
                    lang,
                    "NetworkPolicy (deny all ingress and egress)",
                    "NetworkPolicy（全ingress/egressを拒否）",
                ),
                md.trim_end().to_string(),
            ));
        }
    }
    let pods = pod_names(&a);
    let mut nodes: Vec<String> = a
        .workloads
        .iter()
        .map(|w| crate::render::esc_str(&w.node))
        .collect();
    nodes.sort();
    nodes.dedup();
    let names: Vec<String> = a.workloads.iter().map(super::short_name).collect();
    let lines = vec![
        format!(
            "isolate {} on {}",
            super::and_list(&names, 4),
            super::and_list(&nodes, 2)
        ),
        "order: save evidence, deny-all NetworkPolicy, cordon the node, scale to zero, rotate credentials".into(),
    ];
    let fallback = match lang {
        Lang::En => format!(
            "First save the evidence of the {} affected pods ({}): the dropped binaries and their hashes, the filesystem changes, pod specs and logs. Then cut their network with the deny-all NetworkPolicy below, cordon {} and scale the workloads to zero; rotate the credentials they could reach last.",
            pods.len(),
            pods.join(", "),
            nodes.join(", ")
        ),
        Lang::Ja => format!(
            "まず影響を受けた{}個のポッド（{}）の証拠（落とされたバイナリとハッシュ、ファイルシステム差分、ポッド定義とログ）を保存します。次に下記の全拒否NetworkPolicyで通信を遮断し、{} をcordonしてワークロードをゼロにスケールし、最後に認証情報をローテーションします。",
            pods.len(),
            pods.join("、"),
            nodes.join("、")
        ),
    };
    Ok(Built {
        sections,
        filters: filters(s, &a),
        alert_ids: a.alert_ids.clone(),
        incident_ids: a.incident_ids.clone(),
        facts: FactSheet { lines, fallback },
        notes: Vec::new(),
        focus,
    })
}
