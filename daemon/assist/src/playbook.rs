//! Remediation and isolation playbooks: templates in `knowledge/playbooks.json`, filled
//! with the real names of the evidence. Only validated values go into a template (a
//! Kubernetes name, a container id, an image reference, a hash): names come from the
//! runtime and paths from the workload, and neither may smuggle shell syntax into a
//! command an operator copies. A step whose values are missing or invalid is left out.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::error::AssistError;
use crate::lang::{tr, Lang};

const PLAYBOOKS_JSON: &str = include_str!("../knowledge/playbooks.json");

/// Label keys set by container runtimes, not by the pod's owner: never used in selectors.
const RUNTIME_LABEL_PREFIXES: &[&str] = &[
    "io.kubernetes.",
    "io.cri-containerd.",
    "io.containerd.",
    "io.buildah.",
    "io.podman.",
    "nerdctl/",
    "org.opencontainers.",
    "annotation.",
];

/// Label put on pods to isolate when they have no usable labels of their own.
pub const QUARANTINE_LABEL: &str = "saker.io/quarantine";

#[derive(Clone, Debug, Deserialize)]
struct When {
    #[serde(default)]
    always: bool,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    techniques: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Per {
    Once,
    Pod,
    Namespace,
    Node,
    Workload,
    Image,
    Binary,
}

#[derive(Clone, Debug, Deserialize)]
struct Step {
    id: String,
    #[serde(default)]
    stage: Option<String>,
    per: Per,
    when: When,
    en: String,
    ja: String,
    /// Per-target item; when set, the step is given once with the items joined.
    #[serde(default)]
    item_en: Option<String>,
    #[serde(default)]
    item_ja: Option<String>,
    #[serde(default)]
    only_without_workload: bool,
}

#[derive(Clone, Debug, Deserialize)]
struct Stage {
    id: String,
    en: String,
    ja: String,
}

#[derive(Clone, Debug, Deserialize)]
struct PlaybookFile {
    stages: Vec<Stage>,
    isolation: Vec<Step>,
    remediation: Vec<Step>,
}

/// One affected pod (or container) as the playbooks see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodTarget {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub workload: Option<String>,
    pub node: String,
    pub container_id: Option<String>,
    pub image: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// A dropped or malicious executable and where it ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryTarget {
    pub path: String,
    pub sha256: Option<String>,
    /// Index into [`Targets::pods`].
    pub pod: usize,
}

/// Everything the playbooks are filled from.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    pub pods: Vec<PodTarget>,
    pub binaries: Vec<BinaryTarget>,
    /// `ip:port` of observed connections.
    pub destinations: Vec<String>,
    pub policies: BTreeSet<String>,
    pub techniques: BTreeSet<String>,
}

/// A filled isolation stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageSteps {
    pub id: String,
    pub title: String,
    pub steps: Vec<String>,
}

/// The loaded playbooks.
#[derive(Clone, Debug)]
pub struct Playbooks {
    file: PlaybookFile,
}

impl Playbooks {
    pub fn bundled() -> Result<Playbooks, AssistError> {
        let file: PlaybookFile = serde_json::from_str(PLAYBOOKS_JSON)
            .map_err(|e| AssistError::Knowledge(format!("playbooks.json: {e}")))?;
        for s in file.isolation.iter() {
            if !file
                .stages
                .iter()
                .any(|st| Some(&st.id) == s.stage.as_ref())
            {
                return Err(AssistError::Knowledge(format!(
                    "playbooks.json: isolation step {} has no known stage",
                    s.id
                )));
            }
        }
        Ok(Playbooks { file })
    }

    /// Remediation steps for `t`, in playbook order.
    pub fn remediation(&self, t: &Targets, lang: Lang) -> Vec<String> {
        self.file
            .remediation
            .iter()
            .filter(|s| applies(&s.when, t))
            .flat_map(|s| expand(s, t, lang))
            .collect()
    }

    /// Isolation steps for `t`, grouped by stage (stages without steps are left out).
    pub fn isolation(&self, t: &Targets, lang: Lang) -> Vec<StageSteps> {
        self.file
            .stages
            .iter()
            .map(|st| StageSteps {
                id: st.id.clone(),
                title: match lang {
                    Lang::En => st.en.clone(),
                    Lang::Ja => st.ja.clone(),
                },
                steps: self
                    .file
                    .isolation
                    .iter()
                    .filter(|s| s.stage.as_deref() == Some(st.id.as_str()) && applies(&s.when, t))
                    .flat_map(|s| expand(s, t, lang))
                    .collect(),
            })
            .filter(|s| !s.steps.is_empty())
            .collect()
    }
}

fn applies(w: &When, t: &Targets) -> bool {
    w.always
        || w.policies.iter().any(|p| t.policies.contains(p))
        || w.techniques
            .iter()
            .any(|p| t.techniques.iter().any(|x| x.starts_with(p.as_str())))
}

/// The step's text for every target it repeats over, or once with the targets' items
/// joined when the step has an item template.
fn expand(s: &Step, t: &Targets, lang: Lang) -> Vec<String> {
    let (template, item) = match lang {
        Lang::En => (&s.en, &s.item_en),
        Lang::Ja => (&s.ja, &s.item_ja),
    };
    let sep = tr(lang, "; ", "、");
    let per_target = target_vars(s, t, lang);
    let mut out: Vec<String> = Vec::new();
    match item {
        Some(item) if s.per != Per::Once => {
            let mut items: Vec<String> = Vec::new();
            for vars in &per_target {
                if let Some(x) = fill(item, vars) {
                    if !items.contains(&x) {
                        items.push(x);
                    }
                }
            }
            if !items.is_empty() {
                let vars = [("items", Some(items.join(sep)))];
                out.extend(fill(template, &vars));
            }
        }
        _ => {
            for vars in &per_target {
                if let Some(text) = fill(template, vars) {
                    if !out.contains(&text) {
                        out.push(text);
                    }
                }
            }
        }
    }
    out
}

type Vars = Vec<(&'static str, Option<String>)>;

/// The placeholder values of each target a step repeats over (one set for `once`).
fn target_vars(s: &Step, t: &Targets, lang: Lang) -> Vec<Vars> {
    let sep = tr(lang, ", ", "、");
    let mut out: Vec<Vars> = Vec::new();
    match s.per {
        Per::Once => {
            let pods: Vec<String> = t
                .pods
                .iter()
                .filter_map(|p| {
                    let pod = k8s_name(p.pod.as_deref())?;
                    Some(match k8s_label(p.namespace.as_deref()) {
                        Some(ns) => format!("{ns}/{pod}"),
                        None => pod,
                    })
                })
                .collect();
            let hashes: BTreeSet<String> = t
                .binaries
                .iter()
                .filter_map(|b| sha256(b.sha256.as_deref()))
                .collect();
            out.push(vec![
                ("pods", non_empty(pods.join(sep))),
                ("destinations", non_empty(t.destinations.join(sep))),
                (
                    "hashes",
                    non_empty(hashes.into_iter().collect::<Vec<_>>().join(sep)),
                ),
            ]);
        }
        Per::Pod => {
            for p in &t.pods {
                if s.only_without_workload && p.workload.is_some() {
                    continue;
                }
                out.push(pod_vars(p));
            }
        }
        Per::Namespace => {
            let mut seen = BTreeSet::new();
            for p in &t.pods {
                if let Some(ns) = k8s_label(p.namespace.as_deref()) {
                    if seen.insert(ns.clone()) {
                        out.push(vec![("namespace", Some(ns))]);
                    }
                }
            }
        }
        Per::Node => {
            let mut seen = BTreeSet::new();
            for p in &t.pods {
                if let Some(n) = k8s_name(Some(&p.node)) {
                    if seen.insert(n.clone()) {
                        out.push(vec![("node", Some(n))]);
                    }
                }
            }
        }
        Per::Workload => {
            let mut seen = BTreeSet::new();
            for p in &t.pods {
                let (Some(ns), Some(w)) = (
                    k8s_label(p.namespace.as_deref()),
                    k8s_name(p.workload.as_deref()),
                ) else {
                    continue;
                };
                if seen.insert((ns.clone(), w.clone())) {
                    out.push(vec![("namespace", Some(ns)), ("workload", Some(w))]);
                }
            }
        }
        Per::Image => {
            let mut seen = BTreeSet::new();
            for p in &t.pods {
                if let Some(i) = image_ref(p.image.as_deref()) {
                    if seen.insert(i.clone()) {
                        out.push(vec![("image", Some(i))]);
                    }
                }
            }
        }
        Per::Binary => {
            for b in &t.binaries {
                let Some(p) = t.pods.get(b.pod) else { continue };
                let mut vars = pod_vars(p);
                // The path appears in prose only (never in a command): any path is
                // shown, escaped and quoted, so hostile names cannot drop the step.
                vars.push(("binary", Some(quoted_path(&b.path))));
                vars.push(("sha256", sha256(b.sha256.as_deref())));
                out.push(vars);
            }
        }
    }
    out
}

fn pod_vars(p: &PodTarget) -> Vars {
    vec![
        ("pod", k8s_name(p.pod.as_deref())),
        ("namespace", k8s_label(p.namespace.as_deref())),
        ("node", k8s_name(Some(&p.node))),
        ("container_id", container_id(p.container_id.as_deref())),
        ("workload", k8s_name(p.workload.as_deref())),
        ("image", image_ref(p.image.as_deref())),
    ]
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Replaces `{{name}}` placeholders; `None` when a placeholder has no valid value.
fn fill(template: &str, vars: &[(&str, Option<String>)]) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let name = &after[..end];
        let value = vars.iter().find(|(k, _)| *k == name)?.1.as_ref()?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// A DNS-1123 label (namespace names): 1-63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn k8s_label(v: Option<&str>) -> Option<String> {
    let v = v?;
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    ok.then(|| v.to_string())
}

/// A DNS-1123 subdomain (pod, node, workload names): 1-253 of `[a-z0-9.-]`.
pub fn k8s_name(v: Option<&str>) -> Option<String> {
    let v = v?;
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && v.split('.').all(|l| k8s_label(Some(l)).is_some());
    ok.then(|| v.to_string())
}

fn container_id(v: Option<&str>) -> Option<String> {
    let v = v?;
    (v.len() >= 12 && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| v.to_string())
}

fn image_ref(v: Option<&str>) -> Option<String> {
    let v = v?;
    (!v.is_empty()
        && v.len() <= 255
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/:@-".contains(&b)))
    .then(|| v.to_string())
}

fn sha256(v: Option<&str>) -> Option<String> {
    let v = v?;
    (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
}

/// A workload path for prose: one line, terminal-safe, control-token spellings broken,
/// in backticks.
fn quoted_path(v: &str) -> String {
    let esc = saker_event::bstr::escape_bytes(v.as_bytes());
    format!(
        "`{}`",
        saker_models::sanitize_untrusted(&esc).replace('`', "'")
    )
}

/// A path usable inside a command: printable ASCII without quoting or expansion
/// characters.
#[cfg(test)]
fn safe_path(v: &str) -> Option<String> {
    (!v.is_empty()
        && v.len() <= 200
        && v.bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !b"`'\"$\\;|&<>(){}*?[]!#~".contains(&b)))
    .then(|| v.to_string())
}

/// A Kubernetes label key `[prefix/]name` and value, as the API server accepts them.
fn label_ok(k: &str, v: &str) -> bool {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 63
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && n.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && n.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    let key_ok = match k.split_once('/') {
        Some((prefix, name)) => k8s_name(Some(prefix)).is_some() && name_ok(name),
        None => name_ok(k),
    };
    key_ok && (v.is_empty() || name_ok(v))
}

/// The pod's own labels usable in a selector (runtime labels and invalid ones dropped).
pub fn selector_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| !RUNTIME_LABEL_PREFIXES.iter().any(|p| k.starts_with(p)))
        .filter(|(k, v)| label_ok(k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Pods of one workload and the labels all of them carry (`None` before the first).
type Group = (Vec<String>, Option<BTreeMap<String, String>>);

/// Deny-all NetworkPolicies (YAML) for the affected pods of each namespace, and the
/// `kubectl label` commands needed first for pods without usable labels. Pods of one
/// workload share a policy selecting the labels all of them carry.
pub fn network_policies(t: &Targets) -> Vec<(String, String)> {
    // namespace -> group (workload or pod) -> (pods, common labels)
    let mut groups: BTreeMap<String, BTreeMap<String, Group>> = BTreeMap::new();
    for p in &t.pods {
        let (Some(ns), Some(pod)) = (
            k8s_label(p.namespace.as_deref()),
            k8s_name(p.pod.as_deref()),
        ) else {
            continue;
        };
        let key = k8s_name(p.workload.as_deref()).unwrap_or_else(|| pod.clone());
        let labels = selector_labels(&p.labels);
        let entry = groups
            .entry(ns)
            .or_default()
            .entry(key)
            .or_insert_with(|| (Vec::new(), None));
        if !entry.0.contains(&pod) {
            entry.0.push(pod);
        }
        entry.1 = Some(match entry.1.take() {
            None => labels,
            // Only labels every pod of the group has, with the same value.
            Some(common) => common
                .into_iter()
                .filter(|(k, v)| labels.get(k) == Some(v))
                .collect(),
        });
    }
    let mut out = Vec::new();
    for (ns, by_group) in groups {
        let mut yaml = String::new();
        let mut quarantine: Vec<String> = Vec::new();
        for (group, (pods, labels)) in by_group {
            let labels = labels.unwrap_or_default();
            if labels.is_empty() {
                quarantine.extend(pods);
                continue;
            }
            yaml.push_str(&policy_yaml(
                &format!("saker-isolate-{group}"),
                &ns,
                &labels,
            ));
        }
        if !quarantine.is_empty() {
            let mut cmds = String::new();
            for pod in &quarantine {
                cmds.push_str(&format!(
                    "# kubectl -n {ns} label pod {pod} {QUARANTINE_LABEL}=true\n"
                ));
            }
            let mut l = BTreeMap::new();
            l.insert(QUARANTINE_LABEL.to_string(), "true".to_string());
            yaml.push_str(&cmds);
            yaml.push_str(&policy_yaml("saker-quarantine", &ns, &l));
        }
        out.push((ns, yaml));
    }
    out
}

fn policy_yaml(name: &str, ns: &str, labels: &BTreeMap<String, String>) -> String {
    // Policy names are DNS subdomains: cut a long workload name.
    let name: String = name.chars().take(253).collect();
    let mut y = format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  podSelector:\n    matchLabels:\n"
    );
    for (k, v) in labels {
        y.push_str(&format!("      {k}: \"{v}\"\n"));
    }
    // No ingress or egress rules: everything is denied both ways.
    y.push_str("  policyTypes:\n  - Ingress\n  - Egress\n");
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "bedrock-java".to_string());
        labels.insert("io.kubernetes.pod.name".to_string(), "x".to_string());
        Targets {
            pods: vec![
                PodTarget {
                    namespace: Some("risk-10-aws-bedrock-java".into()),
                    pod: Some("bedrock-java-7d9f8c6b5-x2k4p".into()),
                    workload: Some("bedrock-java".into()),
                    node: "node-a".into(),
                    container_id: Some(format!("{:0>64}", "c1")),
                    image: Some("docker.io/acme/bedrock-java:1.4.2".into()),
                    labels,
                },
                PodTarget {
                    namespace: Some("risk-11-payments".into()),
                    pod: Some("payments-api-6f7b9-mm3tr".into()),
                    workload: Some("payments-api".into()),
                    node: "node-a".into(),
                    container_id: Some(format!("{:0>64}", "c3")),
                    image: Some("docker.io/acme/payments-api:2.0.1".into()),
                    labels: BTreeMap::new(),
                },
                // Hostile metadata: never reaches a command.
                PodTarget {
                    namespace: Some("ns; rm -rf /".into()),
                    pod: Some("$(curl evil)".into()),
                    workload: None,
                    node: "node-a".into(),
                    container_id: None,
                    image: Some("img`id`".into()),
                    labels: BTreeMap::new(),
                },
            ],
            binaries: vec![
                BinaryTarget {
                    path: "/tmp/easyminer".into(),
                    sha256: Some(
                        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                    ),
                    pod: 0,
                },
                BinaryTarget {
                    path: "/tmp/$(reboot)".into(),
                    sha256: Some("ab".repeat(32)),
                    pod: 0,
                },
            ],
            destinations: vec!["127.0.0.1:3333".into()],
            policies: [
                "Drift Detection".to_string(),
                "Malicious Binary Detection".to_string(),
            ]
            .into_iter()
            .collect(),
            techniques: ["T1496".to_string(), "T1059.004".to_string()]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn remediation_names_real_pods_and_nothing_hostile() {
        let p = Playbooks::bundled().unwrap();
        let steps = p.remediation(&targets(), Lang::En);
        let all = steps.join("\n");
        assert!(all.contains(
            "kubectl -n risk-10-aws-bedrock-java delete pod bedrock-java-7d9f8c6b5-x2k4p"
        ));
        assert!(all.contains("kubectl -n risk-11-payments delete pod payments-api-6f7b9-mm3tr"));
        // One step for all pods, not one per pod.
        assert_eq!(steps.iter().filter(|s| s.contains("delete pod")).count(), 1);
        assert!(all.contains("risk-11-payments/payments-api-6f7b9-mm3tr"));
        assert!(all.contains("docker.io/acme/bedrock-java:1.4.2"));
        assert!(all.contains("127.0.0.1:3333"));
        assert!(all.contains(
            "drift prevention for namespace risk-10-aws-bedrock-java; namespace risk-11-payments"
        ));
        assert!(all.contains("readOnlyRootFilesystem"));
        for bad in ["rm -rf", "$(curl", "`id`", "reboot"] {
            assert!(!all.contains(bad), "{bad} in {all}");
        }
        let ja = p.remediation(&targets(), Lang::Ja).join("\n");
        assert!(ja.contains("bedrock-java-7d9f8c6b5-x2k4p") && ja.contains("ローテーション"));
    }

    #[test]
    fn isolation_stages_in_order() {
        let p = Playbooks::bundled().unwrap();
        let stages = p.isolation(&targets(), Lang::En);
        let ids: Vec<&str> = stages.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["evidence", "network", "contain", "credentials"]);
        let all: String = stages
            .iter()
            .flat_map(|s| s.steps.clone())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("kubectl cordon node-a"));
        assert!(all.contains(
            "kubectl -n risk-10-aws-bedrock-java scale deployment/bedrock-java --replicas=0"
        ));
        assert!(all.contains("`/tmp/easyminer` (sha256 9f86d081"));
        // The hostile path is shown as quoted data, never inside a command.
        assert!(all.contains("`/tmp/$(reboot)`"));
        assert!(!all.contains("$(curl"));
        assert!(safe_path("/tmp/$(reboot)").is_none());
        assert!(safe_path("/tmp/easyminer").is_some());
    }

    #[test]
    fn network_policies_select_labels_or_quarantine() {
        let np = network_policies(&targets());
        assert_eq!(np.len(), 2);
        let (ns, y) = &np[0];
        assert_eq!(ns, "risk-10-aws-bedrock-java");
        assert!(y.contains("name: saker-isolate-bedrock-java"));
        assert!(y.contains("      app: \"bedrock-java\"\n"));
        assert!(!y.contains("io.kubernetes"));
        assert!(y.contains("  - Ingress\n  - Egress\n"));
        let (ns2, y2) = &np[1];
        assert_eq!(ns2, "risk-11-payments");
        assert!(y2.contains("label pod payments-api-6f7b9-mm3tr saker.io/quarantine=true"));
        assert!(y2.contains("saker.io/quarantine: \"true\""));
    }

    #[test]
    fn validators() {
        assert!(k8s_label(Some("risk-10-aws-bedrock-java")).is_some());
        assert!(k8s_label(Some("Bad")).is_none());
        assert!(k8s_name(Some("a.b-c")).is_some());
        assert!(k8s_name(Some("a..b")).is_none());
        assert!(label_ok("app.kubernetes.io/name", "x"));
        assert!(!label_ok("app", "x y"));
        assert_eq!(
            fill("a {{x}} b", &[("x", Some("1".into()))]).as_deref(),
            Some("a 1 b")
        );
        assert_eq!(fill("a {{x}} b", &[("x", None)]), None);
        assert_eq!(fill("a {{y}} b", &[("x", Some("1".into()))]), None);
    }
}
