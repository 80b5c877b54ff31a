//! The workload (top-level controller) that owns a pod, derived without the Kubernetes API.
//!
//! Pod labels decide when they are there (containerd gives them through the pod's sandbox):
//! - `batch.kubernetes.io/job-name` / `job-name`: the Job; a Job created by a CronJob
//!   (`<cronjob>-<minutes since the epoch>`) gives the CronJob.
//! - `pod-template-hash=<h>` and a pod name `<deployment>-<h>-<suffix>`: the Deployment.
//! - `statefulset.kubernetes.io/pod-name`: the StatefulSet (pod name less `-<ordinal>`).
//! - `controller-revision-hash` (DaemonSet): the pod name less `-<5-char suffix>`.
//!
//! Otherwise the pod name alone, using how controllers name pods (suffixes drawn from
//! Kubernetes' "safe" alphabet `bcdfghjklmnpqrstvwxz2456789`, which has no vowels):
//! - `<name>-<hash of 6-10 safe chars>-<5 safe chars>`: Deployment `<name>`;
//! - `<name>-<8+ digits>-<5 safe chars>`: CronJob `<name>`;
//! - `<name>-<5 safe chars>`: DaemonSet, Job or bare ReplicaSet `<name>`;
//! - anything else (bare pods, static pods, StatefulSet pods `<name>-<ordinal>` when no label
//!   says so, since `web-1` may as well be a bare pod): the pod name itself.
//!
//! A bare pod whose own name happens to end in `-<5 safe chars>` is misattributed; the labels,
//! when present, avoid that.

use std::collections::BTreeMap;

const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The owning workload's name for a pod (see the module docs); `None` only for an empty name.
pub fn workload_name(pod_name: &str, labels: &BTreeMap<String, String>) -> Option<String> {
    if pod_name.is_empty() {
        return None;
    }
    from_labels(pod_name, labels)
        .or_else(|| from_name(pod_name))
        .or_else(|| Some(pod_name.to_owned()))
}

fn from_labels(pod: &str, labels: &BTreeMap<String, String>) -> Option<String> {
    let label = |k: &str| labels.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(job) = label("batch.kubernetes.io/job-name").or_else(|| label("job-name")) {
        return Some(cronjob_of(job).unwrap_or(job).to_owned());
    }
    if let Some(hash) = label("pod-template-hash") {
        let deployment = pod
            .rsplit_once('-')
            .and_then(|(rest, _suffix)| rest.strip_suffix(hash)?.strip_suffix('-'))
            .filter(|d| !d.is_empty());
        if let Some(deployment) = deployment {
            return Some(deployment.to_owned());
        }
    }
    if label("statefulset.kubernetes.io/pod-name").is_some() {
        if let Some((set, ordinal)) = pod.rsplit_once('-') {
            if !set.is_empty() && all_digits(ordinal) {
                return Some(set.to_owned());
            }
        }
    }
    if label("controller-revision-hash").is_some() {
        if let Some((ds, suffix)) = pod.rsplit_once('-') {
            if !ds.is_empty() && is_safe(suffix, 5..=5) {
                return Some(ds.to_owned());
            }
        }
    }
    None
}

fn from_name(pod: &str) -> Option<String> {
    let (rest, suffix) = pod.rsplit_once('-')?;
    if rest.is_empty() || !is_safe(suffix, 5..=5) {
        return None;
    }
    if let Some((name, middle)) = rest.rsplit_once('-') {
        if !name.is_empty() && (is_safe(middle, 6..=10) || is_cron_minutes(middle)) {
            return Some(name.to_owned());
        }
    }
    Some(rest.to_owned())
}

/// `<cronjob>-<minutes>` → `<cronjob>`.
fn cronjob_of(job: &str) -> Option<&str> {
    let (name, minutes) = job.rsplit_once('-')?;
    (!name.is_empty() && is_cron_minutes(minutes)).then_some(name)
}

fn is_cron_minutes(s: &str) -> bool {
    s.len() >= 8 && all_digits(s)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_safe(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| SAFE.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(pod: &str) -> Option<String> {
        workload_name(pod, &BTreeMap::new())
    }

    fn wl(pod: &str, labels: &[(&str, &str)]) -> Option<String> {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        workload_name(pod, &labels)
    }

    #[test]
    fn from_pod_names() {
        assert_eq!(w("coredns-5d78c9869d-xk2mz").as_deref(), Some("coredns"));
        assert_eq!(w("my-app-7c5ddbdf54-2xlbq").as_deref(), Some("my-app"));
        assert_eq!(w("kube-proxy-7xk2p").as_deref(), Some("kube-proxy"));
        assert_eq!(w("hello-28391234-bq4fz").as_deref(), Some("hello"));
        // StatefulSet ordinal and bare pods: kept as the pod.
        assert_eq!(w("web-1").as_deref(), Some("web-1"));
        assert_eq!(w("postgres-0").as_deref(), Some("postgres-0"));
        assert_eq!(w("nginx").as_deref(), Some("nginx"));
        // Vowels are not in the suffix alphabet.
        assert_eq!(w("my-nginx").as_deref(), Some("my-nginx"));
        assert_eq!(
            w("kube-apiserver-node-1").as_deref(),
            Some("kube-apiserver-node-1")
        );
        assert_eq!(w(""), None);
    }

    #[test]
    fn from_pod_labels() {
        assert_eq!(
            wl(
                "api-68b9d7f5c4-zz9kd",
                &[("pod-template-hash", "68b9d7f5c4")]
            )
            .as_deref(),
            Some("api")
        );
        // The label hash must match the name.
        assert_eq!(
            wl("api-68b9d7f5c4-zz9kd", &[("pod-template-hash", "ffffff")]).as_deref(),
            Some("api")
        );
        assert_eq!(
            wl("db-12", &[("statefulset.kubernetes.io/pod-name", "db-12")]).as_deref(),
            Some("db")
        );
        assert_eq!(
            wl("agent-x7k2p", &[("controller-revision-hash", "6d4b9c")]).as_deref(),
            Some("agent")
        );
        assert_eq!(
            wl("backup-28391234-qq5tm", &[("job-name", "backup-28391234")]).as_deref(),
            Some("backup")
        );
        assert_eq!(
            wl(
                "migrate-abcde",
                &[("batch.kubernetes.io/job-name", "migrate")]
            )
            .as_deref(),
            Some("migrate")
        );
    }

    #[test]
    fn garbage() {
        for pod in [
            "-",
            "--",
            "-bcdfg",
            "a-",
            "é-€",
            "-bcdfghj-bcdfg",
            "---bcdfg",
        ] {
            let _ = w(pod);
            let _ = wl(
                pod,
                &[
                    ("pod-template-hash", "bcdfghj"),
                    ("statefulset.kubernetes.io/pod-name", pod),
                    ("controller-revision-hash", "x"),
                ],
            );
        }
        assert_eq!(w("-bcdfg").as_deref(), Some("-bcdfg"));
    }
}
