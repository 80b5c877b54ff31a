//! Which container a process is in, from its cgroup path.
//!
//! Every container runtime puts a container's processes in a cgroup whose path names the
//! container. Recognised layouts (`<id>` is the 64-hex container id unless noted):
//!
//! | runtime / driver | path |
//! |---|---|
//! | containerd, `ctr` default | `/k8s.io/<id>` (`<id>`: any containerd identifier) |
//! | kubelet, cgroupfs driver | `/kubepods[/besteffort\|/burstable]/pod<uid>/<id>` (any identifier) |
//! | kubelet, systemd driver | `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope` |
//! | containerd, systemd driver without systemd | `…/kubepods-<qos>-pod<uid>.slice:cri-containerd:<id>` (also `:crio:`, `:docker:`) |
//! | docker, cgroupfs / systemd | `/docker/<id>`, `/system.slice/docker-<id>.scope` |
//! | cri-o | `…/crio-<id>.scope`, `…/crio-<id>`; `crio-conmon-<id>.scope` is the monitor, not the container |
//! | podman | `/libpod_parent/libpod-<id>`, `/machine.slice/libpod-<id>.scope`; `libpod-conmon-<id>.scope` is the monitor |
//! | anything else | a 64-hex path segment (runtime unknown) |
//!
//! The outermost container segment wins (a container nested in a container is attributed
//! to the outer one, which is the one the node's runtime knows). Host paths (`/`,
//! `/user.slice/…`, `/system.slice/sshd.service`) give `None`.

use std::fmt;

/// The container runtime a cgroup path points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    Containerd,
    Docker,
    Crio,
    Podman,
    /// A container id without a runtime-specific marker (e.g. under a kubelet cgroupfs pod
    /// cgroup, where containerd and dockershim look the same).
    Unknown,
}

impl Runtime {
    /// Lower-case name, as in [`saker_event::ContainerMeta::runtime`].
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::Docker => "docker",
            Runtime::Crio => "crio",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container as identified by a cgroup path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    /// Container id: the full 64-hex id for every runtime-marked layout.
    pub id: String,
    pub runtime: Runtime,
    /// Kubernetes pod uid (dashed form) when the path has a pod cgroup.
    pub pod_uid: Option<String>,
}

/// Parses one line of `/proc/PID/cgroup` (`hierarchy:controllers:path`, v1 or `0::`) or a bare
/// cgroup path. Never panics.
pub fn parse(line: &str) -> Option<ContainerRef> {
    classify(path_of_line(line))
}

/// The cgroup path in a `/proc/PID/cgroup` line, or the input itself when it is not one.
/// A trailing ` (deleted)` (the cgroup was removed) is dropped.
pub fn path_of_line(line: &str) -> &str {
    let line = line.trim();
    let path = if line.starts_with('/') {
        line
    } else {
        let mut parts = line.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(hier), Some(_controllers), Some(path))
                if !hier.is_empty() && hier.bytes().all(|b| b.is_ascii_digit()) =>
            {
                path
            }
            _ => line,
        }
    };
    path.strip_suffix(" (deleted)").unwrap_or(path)
}

/// The container of the whole content of a `/proc/PID/cgroup` file. The cgroup2 (`0::`) line
/// is tried first; on hybrid hosts older runtimes only place containers in the v1 hierarchies,
/// so the other lines are tried next.
pub fn parse_proc_cgroup(content: &str) -> Option<ContainerRef> {
    let unified = content.lines().filter(|l| l.starts_with("0::"));
    let others = content.lines().filter(|l| !l.starts_with("0::"));
    unified.chain(others).find_map(parse)
}

/// The cgroup2 path (`0::` line) of a `/proc/PID/cgroup` content.
pub fn unified_path(content: &str) -> Option<&str> {
    content
        .lines()
        .find(|l| l.starts_with("0::"))
        .map(path_of_line)
}

/// The container `pid` runs in, from `/proc/PID/cgroup`; `None` on the host or when the
/// process is gone.
pub fn container_for_pid(pid: u32) -> Option<ContainerRef> {
    let content = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse_proc_cgroup(&content)
}

/// The container a cgroup path belongs to.
pub fn classify(path: &str) -> Option<ContainerRef> {
    let mut pod_uid: Option<String> = None;
    // Whether the previous segment was a cgroupfs pod cgroup (`pod<uid>`), whose children are
    // containers whatever their names.
    let mut prev_is_pod = false;
    let mut prev: Option<&str> = None;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        match segment(seg, prev, prev_is_pod) {
            Segment::Conmon => return None,
            Segment::Container {
                id,
                runtime,
                pod_uid: inline_uid,
            } => {
                return Some(ContainerRef {
                    id: id.to_owned(),
                    runtime,
                    pod_uid: inline_uid.or(pod_uid),
                })
            }
            Segment::Pod { uid, cgroupfs } => {
                pod_uid = Some(uid);
                prev_is_pod = cgroupfs;
            }
            Segment::Other => prev_is_pod = false,
        }
        prev = Some(seg);
    }
    None
}

enum Segment<'a> {
    Container {
        id: &'a str,
        runtime: Runtime,
        pod_uid: Option<String>,
    },
    /// A runtime's monitor process (conmon): not in the container.
    Conmon,
    Pod {
        uid: String,
        /// `pod<uid>` (kubelet cgroupfs driver) rather than a systemd slice.
        cgroupfs: bool,
    },
    Other,
}

/// Prefixed scope/cgroup names: `<prefix><64-hex>[.scope]`.
const PREFIXES: [(&str, Runtime); 4] = [
    ("cri-containerd-", Runtime::Containerd),
    ("crio-", Runtime::Crio),
    ("docker-", Runtime::Docker),
    ("libpod-", Runtime::Podman),
];
const CONMON_PREFIXES: [&str; 2] = ["crio-conmon-", "libpod-conmon-"];
/// `<slice>:<prefix>:<id>` (runc's systemd cgroupsPath written literally).
const INLINE_PREFIXES: [(&str, Runtime); 3] = [
    ("cri-containerd", Runtime::Containerd),
    ("crio", Runtime::Crio),
    ("docker", Runtime::Docker),
];

fn segment<'a>(seg: &'a str, prev: Option<&str>, prev_is_pod: bool) -> Segment<'a> {
    let base = seg.strip_suffix(".scope").unwrap_or(seg);
    if CONMON_PREFIXES.iter().any(|p| base.starts_with(p)) {
        return Segment::Conmon;
    }
    if let Some(found) = inline_systemd(seg) {
        return found;
    }
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = base.strip_prefix(prefix).filter(|id| is_hex64(id)) {
            return Segment::Container {
                id,
                runtime,
                pod_uid: None,
            };
        }
    }
    let container = |runtime| Segment::Container {
        id: seg,
        runtime,
        pod_uid: None,
    };
    match prev {
        Some("k8s.io") if is_identifier(seg) => return container(Runtime::Containerd),
        Some("docker") if is_hex64(seg) => return container(Runtime::Docker),
        _ => {}
    }
    if let Some(uid) = pod_segment(seg) {
        return Segment::Pod {
            uid,
            cgroupfs: !seg.ends_with(".slice"),
        };
    }
    if (prev_is_pod && is_identifier(seg)) || is_hex64(seg) {
        return container(Runtime::Unknown);
    }
    Segment::Other
}

/// `kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>`.
fn inline_systemd(seg: &str) -> Option<Segment<'_>> {
    let mut parts = seg.splitn(3, ':');
    let (slice, kind, id) = (parts.next()?, parts.next()?, parts.next()?);
    if !is_hex64(id) {
        return None;
    }
    let runtime = INLINE_PREFIXES
        .iter()
        .find(|(p, _)| *p == kind)
        .map(|(_, r)| *r)?;
    Some(Segment::Container {
        id,
        runtime,
        pod_uid: pod_segment(slice),
    })
}

/// The pod uid of a pod cgroup: `pod<uid>` (cgroupfs) or
/// `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd).
fn pod_segment(seg: &str) -> Option<String> {
    let raw = match seg.strip_suffix(".slice") {
        Some(slice) if slice.starts_with("kubepods") => {
            slice.rsplit_once('-')?.1.strip_prefix("pod")?
        }
        Some(_) => return None,
        None => seg.strip_prefix("pod")?,
    };
    normalize_uid(raw)
}

/// A Kubernetes uid: a UUID (dashes or, in systemd slice names, underscores) or, for static
/// pods, a 32-hex hash. Returned with dashes.
fn normalize_uid(raw: &str) -> Option<String> {
    let uid = raw.replace('_', "-");
    let b = uid.as_bytes();
    let uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    let hash = b.len() == 32 && b.iter().all(u8::is_ascii_hexdigit);
    (uuid || hash).then_some(uid)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A containerd identifier: alphanumerics separated by single `.`, `_` or `-`, at most 76.
fn is_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    let sep = |c: u8| matches!(c, b'.' | b'_' | b'-');
    !b.is_empty()
        && b.len() <= 76
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || sep(*c))
        && !b.windows(2).any(|w| sep(w[0]) && sep(w[1]))
}

#[cfg(test)]
mod tests;
