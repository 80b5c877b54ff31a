//! Turning what containerd knows about a container into a [`ContainerMeta`].

use std::collections::{BTreeMap, HashMap};

use saker_event::ContainerMeta;

use crate::image::ImageRef;
use crate::workload::workload_name;

/// Labels the kubelet puts on every container (and on the pod's sandbox).
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Annotations containerd's CRI plugin writes into the container's OCI spec.
pub const ANNOTATION_SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
pub const ANNOTATION_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
pub const ANNOTATION_SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
pub const ANNOTATION_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const ANNOTATION_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
pub const ANNOTATION_IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
/// Container name label of nerdctl (non-Kubernetes containerd containers).
const LABEL_NERDCTL_NAME: &str = "nerdctl/name";

/// A container record from the runtime, gathered before conversion.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub id: String,
    /// [`ContainerMeta::runtime`].
    pub runtime: String,
    /// The container's labels.
    pub labels: HashMap<String, String>,
    /// The OCI spec's annotations.
    pub annotations: BTreeMap<String, String>,
    /// Labels of the pod's sandbox (for CRI pods: the pod's own labels).
    pub sandbox_labels: HashMap<String, String>,
    /// Image reference as run.
    pub image: String,
    /// Digest of the image's target (manifest or index), from the images service.
    pub image_digest: Option<String>,
    /// Creation time as a protobuf timestamp (seconds, nanos).
    pub created_at: Option<(i64, i32)>,
    /// Pod uid parsed from the cgroup path, used when no label or annotation has it.
    pub cgroup_pod_uid: Option<String>,
}

/// Fills a [`ContainerMeta`]: Kubernetes identity from the kubelet's labels, falling back to
/// the CRI annotations; `labels` are the sandbox's (pod) labels overlaid with the container's.
pub fn build(record: Record) -> ContainerMeta {
    let mut labels: BTreeMap<String, String> = record.sandbox_labels.into_iter().collect();
    labels.extend(record.labels);
    let pick = |label: &str, annotation: &str| {
        labels
            .get(label)
            .or_else(|| record.annotations.get(annotation))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let pod_name = pick(LABEL_POD_NAME, ANNOTATION_SANDBOX_NAME);
    let namespace = pick(LABEL_POD_NAMESPACE, ANNOTATION_SANDBOX_NAMESPACE);
    let pod_uid = pick(LABEL_POD_UID, ANNOTATION_SANDBOX_UID).or(record.cgroup_pod_uid);
    let name = pick(LABEL_CONTAINER_NAME, ANNOTATION_CONTAINER_NAME)
        .or_else(|| labels.get(LABEL_NERDCTL_NAME).cloned());
    let image = Some(record.image)
        .filter(|i| !i.is_empty())
        .or_else(|| record.annotations.get(ANNOTATION_IMAGE_NAME).cloned())
        .filter(|i| !i.is_empty());
    let parts = image.as_deref().map(ImageRef::parse).unwrap_or_default();
    let workload = pod_name
        .as_deref()
        .and_then(|pod| workload_name(pod, &labels));
    ContainerMeta {
        id: record.id,
        runtime: record.runtime,
        name,
        image_repository: Some(parts.repository).filter(|r| !r.is_empty()),
        image_tag: parts.tag,
        image_digest: record
            .image_digest
            .filter(|d| !d.is_empty())
            .or(parts.digest),
        image,
        pod_name,
        pod_uid,
        namespace,
        workload,
        labels,
        start_ns: record.created_at.and_then(|(s, n)| timestamp_ns(s, n)),
    }
}

/// The `annotations` of an OCI runtime spec (JSON); empty when it has none or is not JSON.
pub fn spec_annotations(spec_json: &[u8]) -> BTreeMap<String, String> {
    let Ok(serde_json::Value::Object(spec)) = serde_json::from_slice(spec_json) else {
        return BTreeMap::new();
    };
    let Some(serde_json::Value::Object(annotations)) = spec.get("annotations") else {
        return BTreeMap::new();
    };
    annotations
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// Nanoseconds since the epoch; `None` when out of range or the nanos are invalid.
pub fn timestamp_ns(seconds: i64, nanos: i32) -> Option<i64> {
    if !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    seconds
        .checked_mul(1_000_000_000)?
        .checked_add(i64::from(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn kubelet_labels() {
        let meta = build(Record {
            id: "abc".into(),
            runtime: "containerd".into(),
            labels: map(&[
                (LABEL_POD_NAME, "api-68b9d7f5c4-zz9kd"),
                (LABEL_POD_NAMESPACE, "prod"),
                (LABEL_POD_UID, "u-1"),
                (LABEL_CONTAINER_NAME, "app"),
                ("tier", "container-wins"),
            ]),
            sandbox_labels: map(&[
                ("pod-template-hash", "68b9d7f5c4"),
                ("tier", "backend"),
                ("app", "api"),
            ]),
            image: "registry.local:5000/team/api:v3".into(),
            image_digest: Some("sha256:aa".into()),
            created_at: Some((1_700_000_000, 5)),
            cgroup_pod_uid: Some("from-cgroup".into()),
            ..Record::default()
        });
        assert_eq!(meta.id, "abc");
        assert_eq!(meta.runtime, "containerd");
        assert_eq!(meta.name.as_deref(), Some("app"));
        assert_eq!(meta.pod_name.as_deref(), Some("api-68b9d7f5c4-zz9kd"));
        assert_eq!(meta.namespace.as_deref(), Some("prod"));
        assert_eq!(meta.pod_uid.as_deref(), Some("u-1"));
        assert_eq!(meta.workload.as_deref(), Some("api"));
        assert_eq!(
            meta.image.as_deref(),
            Some("registry.local:5000/team/api:v3")
        );
        assert_eq!(
            meta.image_repository.as_deref(),
            Some("registry.local:5000/team/api")
        );
        assert_eq!(meta.image_tag.as_deref(), Some("v3"));
        assert_eq!(meta.image_digest.as_deref(), Some("sha256:aa"));
        assert_eq!(meta.start_ns, Some(1_700_000_000_000_000_005));
        assert_eq!(
            meta.labels.get("tier").map(String::as_str),
            Some("container-wins")
        );
        assert_eq!(meta.labels.get("app").map(String::as_str), Some("api"));
    }

    #[test]
    fn cri_annotations_and_fallbacks() {
        let annotations = spec_annotations(
            br#"{"ociVersion":"1.0.2","annotations":{
                "io.kubernetes.cri.sandbox-name":"web-1",
                "io.kubernetes.cri.sandbox-namespace":"ns",
                "io.kubernetes.cri.container-name":"c",
                "io.kubernetes.cri.image-name":"busybox@sha256:bb",
                "io.kubernetes.cri.sandbox-id":"s1",
                "n": 5}}"#,
        );
        assert_eq!(annotations.len(), 5, "{annotations:?}");
        let meta = build(Record {
            id: "abc".into(),
            runtime: "containerd".into(),
            annotations,
            cgroup_pod_uid: Some("from-cgroup".into()),
            ..Record::default()
        });
        assert_eq!(meta.pod_name.as_deref(), Some("web-1"));
        assert_eq!(meta.workload.as_deref(), Some("web-1"));
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        assert_eq!(meta.name.as_deref(), Some("c"));
        assert_eq!(meta.pod_uid.as_deref(), Some("from-cgroup"));
        assert_eq!(meta.image.as_deref(), Some("busybox@sha256:bb"));
        assert_eq!(meta.image_repository.as_deref(), Some("busybox"));
        assert_eq!(meta.image_tag, None);
        assert_eq!(meta.image_digest.as_deref(), Some("sha256:bb"));
        assert_eq!(meta.start_ns, None);
    }

    #[test]
    fn bare_container() {
        let meta = build(Record {
            id: "x".into(),
            runtime: "containerd".into(),
            labels: map(&[("nerdctl/name", "db")]),
            ..Record::default()
        });
        assert_eq!(meta.name.as_deref(), Some("db"));
        assert_eq!(meta.pod_name, None);
        assert_eq!(meta.workload, None);
        assert_eq!(meta.image, None);
        assert_eq!(meta.image_repository, None);
    }

    #[test]
    fn garbage_specs_and_times() {
        for spec in [
            &b""[..],
            b"null",
            b"[]",
            b"{\"annotations\":[]}",
            b"\xff\xfe",
            b"{",
        ] {
            assert!(spec_annotations(spec).is_empty());
        }
        assert_eq!(timestamp_ns(0, -1), None);
        assert_eq!(timestamp_ns(0, 1_000_000_000), None);
        assert_eq!(timestamp_ns(i64::MAX, 0), None);
        assert_eq!(timestamp_ns(-1, 0), Some(-1_000_000_000));
        assert_eq!(timestamp_ns(2, 3), Some(2_000_000_003));
    }
}
