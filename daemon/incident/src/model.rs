//! What correlation produces: incidents, their root cause, attack path, MITRE evidence and
//! blast radius, plus the knobs that shape them.
//!
//! Every string that came from a watched workload (process names, paths, arguments) stays a
//! [`BString`] with its exact bytes: it is evidence to quote, never text to interpret.
//! All enums are externally tagged so incidents round-trip through JSON and bincode alike.

use std::net::IpAddr;
use std::sync::Arc;

use saker_event::event::FileKind;
use saker_event::{BString, Severity};
use serde::{Deserialize, Serialize};

/// Nanoseconds in a minute, for the defaults below.
const MINUTE_NS: i64 = 60 * 1_000_000_000;

/// How alerts are grouped into incidents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CorrelateConfig {
    /// Largest gap, in nanoseconds, between two alerts of related processes that still
    /// joins them. Linking is transitive (single linkage), so a steady attack stays one
    /// incident however long it lasts, while a tree that goes quiet for longer than this
    /// starts a new incident. Negative values are treated as 0.
    pub window_ns: i64,
    /// How many ancestors of an alert's process are examined at most; deeper entries are
    /// ignored (the enricher bounds the list anyway; this bounds our work on hostile input).
    pub max_ancestry: usize,
    /// How the blast radius embedded in every incident is computed.
    pub blast: BlastConfig,
}

impl Default for CorrelateConfig {
    fn default() -> Self {
        CorrelateConfig {
            // Steps of one intrusion inside one process tree come seconds to minutes apart.
            window_ns: 10 * MINUTE_NS,
            max_ancestry: 64,
            blast: BlastConfig::default(),
        }
    }
}

/// Which shared indicators put another workload in an incident's blast radius.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlastConfig {
    /// Two incidents are related only if their time ranges, each widened by this many
    /// nanoseconds, overlap. Spreading to other workloads is slower than steps inside one
    /// tree, hence a longer default than [`CorrelateConfig::window_ns`].
    pub window_ns: i64,
    /// Count a shared suspicious binary ([`Indicator::BinaryHash`]).
    pub by_binary_hash: bool,
    /// Count a shared rule ([`Indicator::Rule`]).
    pub by_rule: bool,
    /// Count a shared root-cause command line ([`Indicator::RootCommand`]).
    pub by_root_command: bool,
}

impl Default for BlastConfig {
    fn default() -> Self {
        BlastConfig {
            window_ns: 60 * MINUTE_NS,
            by_binary_hash: true,
            by_rule: true,
            by_root_command: true,
        }
    }
}

impl BlastConfig {
    /// Whether this kind of indicator counts.
    pub fn counts(&self, ind: &Indicator) -> bool {
        match ind {
            Indicator::BinaryHash(_) => self.by_binary_hash,
            Indicator::RootCommand(_) => self.by_root_command,
            Indicator::Rule(_) => self.by_rule,
        }
    }
}

/// Where alerts ran: one container (with its Kubernetes identity), or one node's host.
///
/// Field order is the display order; the derived ordering sorts by it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkloadKey {
    /// Cluster name.
    pub cluster: String,
    /// Kubernetes namespace; `None` on the host or while metadata is missing.
    pub namespace: Option<String>,
    /// Owning workload (Deployment, DaemonSet, … name), when it could be derived.
    pub workload: Option<String>,
    /// Pod name.
    pub pod: Option<String>,
    /// Container name.
    pub container: Option<String>,
    /// Image reference as run.
    pub image: Option<String>,
    /// Node the container (or host) runs on.
    pub node: String,
    /// Full container id; `None` for the host. Together with `cluster` and `node` this is
    /// the workload's identity: the other fields are descriptive and may be missing.
    pub container_id: Option<String>,
}

impl WorkloadKey {
    /// True for the node's host (no container).
    pub fn is_host(&self) -> bool {
        self.container_id.is_none()
    }

    /// `cluster/namespace/workload/pod/container (image)`, `-` for unknown parts;
    /// `cluster/host:<node>` for the host.
    pub fn display(&self) -> String {
        fn part(v: &Option<String>) -> &str {
            v.as_deref().unwrap_or("-")
        }
        if self.is_host() {
            return format!("{}/host:{}", self.cluster, self.node);
        }
        format!(
            "{}/{}/{}/{}/{} ({})",
            self.cluster,
            part(&self.namespace),
            part(&self.workload),
            part(&self.pod),
            part(&self.container),
            part(&self.image)
        )
    }

    /// The identity part: cluster, node, container id.
    pub fn identity(&self) -> (&str, &str, Option<&str>) {
        (&self.cluster, &self.node, self.container_id.as_deref())
    }
}

/// A group of alerts that tell one story: same workload, related processes, close in time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id: `inc-` + 16 hex digits of FNV-1a over cluster, node and the first alert's
    /// id, so re-correlating the same alerts yields the same id.
    pub id: String,
    /// Node the alerts came from.
    pub node: String,
    /// Cluster the node belongs to.
    pub cluster: String,
    /// Time of the first alert, ns since the epoch.
    pub start_ns: i64,
    /// Time of the last alert, ns since the epoch.
    pub end_ns: i64,
    /// The most severe alert severity.
    pub severity: Severity,
    /// Detection policies of the alerts, in order of first appearance.
    pub policies: Vec<String>,
    /// Rules that fired, in order of first appearance.
    pub rules: Vec<String>,
    /// Every alert id, in time order (ties by id).
    pub alert_ids: Vec<String>,
    /// Ids of the alerts whose action the sensor blocked (prevention mode).
    pub prevented_alert_ids: Vec<String>,
    /// The container (or host) the alerts ran in.
    pub workload: WorkloadKey,
    /// The process that started the chain.
    pub root_cause: RootCause,
    /// The process tree, in time order.
    pub attack_path: AttackPath,
    /// MITRE ATT&CK tactics seen, in order of first appearance.
    pub tactics: Vec<TacticEvidence>,
    /// MITRE ATT&CK techniques seen, in order of first appearance.
    pub techniques: Vec<TechniqueEvidence>,
    /// What this incident can share with others (sorted): the blast radius keys.
    pub indicators: Vec<Indicator>,
    /// Blast radius: this incident's workload first, then every other workload with an
    /// incident sharing an indicator within [`BlastConfig::window_ns`], sorted.
    pub affected_workloads: Vec<AffectedWorkload>,
}

/// The earliest ancestor of the chain still inside the workload.
///
/// Heuristic: starting from each alerting process, climb its ancestry (parent first) and
/// stop *before* the first ancestor that is outside — container plumbing or a host service
/// manager by name (runc, containerd-shim, conmon, crun, tini, systemd, sshd, …), pid 0/1,
/// or a pid that raised alerts only in another container or on the host around that time.
/// The alerting process itself is always inside (its alert carries the container id). The
/// topmost process reached is the root cause. When several trees remain (truncated or
/// cyclic ancestry), the one whose boundary was actually seen wins, then the one with the
/// most alerts, then the earliest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    /// Process id (host pid namespace).
    pub pid: u32,
    /// Parent pid (outside the workload, or unknown = 0).
    pub ppid: u32,
    /// `comm`.
    pub name: BString,
    /// Executable path.
    pub exe: BString,
    /// argv, one entry per argument; see [`join_args`] for display.
    pub cmdline: Vec<BString>,
    /// SHA-256 of the executable, when it was hashed.
    pub exe_sha256: Option<String>,
    /// When it was first observed (its own alert or as an ancestor of one), ns.
    pub first_seen_ns: i64,
    /// Alerts the root-cause process raised itself, in time order.
    pub alert_ids: Vec<String>,
    /// Why the climb stopped here.
    pub boundary: Boundary,
}

/// What lies above a root cause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Boundary {
    /// The parent is outside the workload.
    Parent {
        /// Parent pid.
        pid: u32,
        /// Parent `comm`.
        name: BString,
        /// Parent executable path.
        exe: BString,
        /// How it was judged outside.
        reason: BoundaryReason,
    },
    /// The ancestry list ended (bounded, or not known): the true start may be higher.
    AncestryEnded,
    /// The ancestry looped back (pid reuse); the loop was cut here.
    Cycle,
}

/// Why an ancestor counts as outside the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoundaryReason {
    /// Named like container plumbing or a host service manager.
    Plumbing,
    /// pid 0 or 1 in the host's pid namespace.
    InitPid,
    /// Raised alerts in another container or on the host, and not in this workload.
    OtherScope,
}

/// The incident's process tree as a parent-linked list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttackPath {
    /// Processes ordered by first sighting (ties: shallower first, then pid), so parents
    /// normally precede their children.
    pub nodes: Vec<PathNode>,
    /// Pids of the tree roots, in node order (more than one only for incomplete ancestry).
    pub roots: Vec<u32>,
}

impl AttackPath {
    /// The node for `pid`.
    pub fn node(&self, pid: u32) -> Option<&PathNode> {
        self.nodes.iter().find(|n| n.pid == pid)
    }

    /// Position of `pid` in [`AttackPath::nodes`].
    pub fn position(&self, pid: u32) -> Option<usize> {
        self.nodes.iter().position(|n| n.pid == pid)
    }

    /// Direct children of `pid`, in node order.
    pub fn children(&self, pid: u32) -> impl Iterator<Item = &PathNode> {
        self.nodes.iter().filter(move |n| n.parent == Some(pid))
    }
}

/// One process of the attack path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathNode {
    /// Process id.
    pub pid: u32,
    /// Parent pid as observed (0 when unknown).
    pub ppid: u32,
    /// The parent's pid when the parent is a node of this path.
    pub parent: Option<u32>,
    /// Distance from its root (roots are 0).
    pub depth: u32,
    /// `comm`.
    pub name: BString,
    /// Executable path.
    pub exe: BString,
    /// argv, one entry per argument; see [`join_args`] for display.
    pub cmdline: Vec<BString>,
    /// SHA-256 of the executable, when it was hashed.
    pub exe_sha256: Option<String>,
    /// Earliest alert time at which the process was observed (its own alert, or as an
    /// ancestor of an alerting process): an upper bound on its start, ns.
    pub first_seen_ns: i64,
    /// Alerts the process raised itself, in time order.
    pub alert_ids: Vec<String>,
    /// Rules behind those alerts, in order of first appearance.
    pub rules: Vec<String>,
    /// MITRE tactic ids of those alerts.
    pub tactics: Vec<String>,
    /// MITRE technique ids of those alerts.
    pub techniques: Vec<String>,
    /// Some action of this process was blocked by the sensor.
    pub prevented: bool,
    /// The alerted actions, in time order.
    pub steps: Vec<Step>,
}

/// One alerted action of a process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Alert id.
    pub alert_id: String,
    /// Sequence number of the event behind the alert (to open it in the event feed).
    pub event_seq: u64,
    /// Alert time, ns.
    pub time_ns: i64,
    /// Rule that fired.
    pub rule: String,
    /// Alert severity.
    pub severity: Severity,
    /// MITRE tactic ids of the alert.
    pub tactics: Vec<String>,
    /// MITRE technique ids of the alert.
    pub techniques: Vec<String>,
    /// The action was blocked.
    pub prevented: bool,
    /// What the process did.
    pub action: Action,
}

/// The syscall-level action behind an alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// execve.
    Exec {
        /// Path given to execve.
        filename: BString,
        /// argv.
        args: Vec<BString>,
        /// The executable was on the overlay upper layer (drift).
        upper_layer: bool,
        /// The executable was a memfd (fileless).
        memfd: bool,
    },
    /// fork/clone.
    Fork,
    /// Process exit.
    Exit {
        /// Exit code, when it exited normally.
        code: Option<u8>,
        /// Signal number, when it was killed.
        signal: Option<u8>,
    },
    /// A file operation.
    File {
        /// Which operation.
        op: FileKind,
        /// Path as passed.
        path: BString,
        /// Mode argument (chmod/open).
        mode: u32,
        /// Return value (`-errno` on failure).
        ret: i64,
    },
    /// An outbound connection.
    Connect {
        /// Destination address.
        addr: IpAddr,
        /// Destination port.
        port: u16,
        /// Return value (`-errno` on failure).
        ret: i64,
    },
}

/// A MITRE ATT&CK technique and the alerts that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TechniqueEvidence {
    /// Technique id, e.g. `T1059.004`.
    pub id: String,
    /// Tactic ids listed by the same alerts.
    pub tactics: Vec<String>,
    /// Alerts that show it, in time order.
    pub alert_ids: Vec<String>,
    /// Time of the first of them, ns.
    pub first_seen_ns: i64,
}

/// A MITRE ATT&CK tactic and the alerts that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TacticEvidence {
    /// Tactic id, e.g. `TA0002`.
    pub id: String,
    /// Technique ids listed by the same alerts.
    pub techniques: Vec<String>,
    /// Alerts that show it, in time order.
    pub alert_ids: Vec<String>,
    /// Time of the first of them, ns.
    pub first_seen_ns: i64,
}

/// Something two incidents can have in common. Variant order is the sort order: the most
/// specific evidence first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Indicator {
    /// SHA-256 of a suspicious executable that raised an alert: one that drifted (overlay
    /// upper layer), ran from a memfd, or matched an IoC. Image binaries (sh, wget) are left
    /// out because every workload built on the same base image shares them.
    BinaryHash(String),
    /// The root cause's argv (the same script started in several workloads).
    RootCommand(Vec<BString>),
    /// A rule that fired.
    Rule(String),
}

/// One workload in a blast radius.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedWorkload {
    /// The workload. Shared between the blast radii that list it (a node's worth of
    /// incidents can each list every workload); serialized as a plain [`WorkloadKey`].
    pub workload: Arc<WorkloadKey>,
    /// True for the anchor incident's own workload.
    pub anchor: bool,
    /// Positions, in the anchor incident's [`Incident::indicators`], of the indicators that
    /// tie this workload to it (empty for the anchor's own workload). Positions rather than
    /// copies keep the blast radius cheap when many workloads share many rules.
    pub shared: Vec<usize>,
}

/// Cross-incident view: every incident sharing one indicator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedIndicator {
    /// The shared indicator.
    pub indicator: Indicator,
    /// Incidents that have it, by start time then id.
    pub incident_ids: Vec<String>,
    /// Their distinct workloads, sorted.
    pub workloads: Vec<WorkloadKey>,
    /// Start of the earliest of those incidents, ns.
    pub first_ns: i64,
    /// End of the latest of those incidents, ns.
    pub last_ns: i64,
}

/// Joins argv with single spaces, bytes unchanged (for display; escape before printing).
pub fn join_args(args: &[BString]) -> BString {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(a.as_bytes());
    }
    BString(out)
}
