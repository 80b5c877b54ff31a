//! What enrichment adds to an event: the process and its ancestry, the container and its
//! Kubernetes metadata, the node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bstr::BString;

/// One ancestor of the event's process (parent first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: u32,
    pub comm: BString,
    pub exe: BString,
    pub args: Vec<BString>,
}

/// The process as the process table knows it at the time of the event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcContext {
    /// Executable path (exec filename).
    pub exe: BString,
    pub args: Vec<BString>,
    /// Working directory (best effort).
    pub cwd: Option<BString>,
    /// Session leader pid and its comm (`proc.sname`), when known.
    pub sid: Option<u32>,
    pub sname: Option<BString>,
    /// Controlling tty number (0 = none), when known.
    pub tty: Option<u32>,
    /// Parent first; bounded.
    pub ancestors: Vec<Ancestor>,
    /// User name from the host's passwd (best effort).
    pub user: Option<String>,
    /// The process's executable is on an overlay upper layer (drift).
    #[serde(default)]
    pub exe_upper_layer: bool,
    /// The process's executable is a memfd (fileless).
    #[serde(default)]
    pub exe_memfd: bool,
    /// SHA-256 of the executable (hex), when it was hashed.
    #[serde(default)]
    pub exe_sha256: Option<String>,
    /// Name of the IoC entry the executable's hash matched.
    #[serde(default)]
    pub exe_ioc: Option<String>,
}

/// A container and its Kubernetes metadata (from the runtime's API).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerMeta {
    /// Full container id (64 hex for containerd/docker/cri-o).
    pub id: String,
    /// Runtime name: containerd, docker, crio, podman.
    pub runtime: String,
    /// Container name (`io.kubernetes.container.name` or the runtime's name).
    pub name: Option<String>,
    /// Image reference as run (e.g. `docker.io/library/busybox:1.36`).
    pub image: Option<String>,
    pub image_repository: Option<String>,
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
    pub pod_name: Option<String>,
    pub pod_uid: Option<String>,
    pub namespace: Option<String>,
    /// Workload owning the pod (Deployment/DaemonSet/… name), derived when possible.
    pub workload: Option<String>,
    /// Pod/container labels.
    pub labels: BTreeMap<String, String>,
    /// Container creation time, ns since the epoch.
    pub start_ns: Option<i64>,
}

/// All context attached to an event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub proc: ProcContext,
    /// Container id parsed from the cgroup path; `None` on the host.
    pub container_id: Option<String>,
    /// Runtime metadata; `None` on the host or while it is being fetched.
    pub container: Option<ContainerMeta>,
    /// True while container metadata is still being fetched (the event is re-enriched
    /// when it arrives).
    pub meta_pending: bool,
    pub node: String,
    pub cluster: String,
}
