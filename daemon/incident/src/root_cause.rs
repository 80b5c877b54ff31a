//! Where a workload's process tree begins: which ancestors of an alerting process are still
//! inside the workload (its *lineage*), and which tree root is the incident's root cause.
//!
//! Ancestry entries carry no container id, so "inside" is inferred: the alerting process is
//! inside by definition (its alert has the container id); each ancestor is inside until the
//! first one that is container plumbing or a host service manager by name, pid 0/1, or a pid
//! that raised alerts only in another scope around that time. Names are attacker-settable
//! inside a container, so a process renamed `runc` hides its own ancestors from the root
//! cause; it still shows up itself, which keeps the chain visible.

use saker_event::{Alert, Ancestor, BString};

use crate::fast::{FastMap, FastSet};
use crate::model::{Boundary, BoundaryReason};

/// Container runtimes, shims and in-container init shims, plus host service managers: the
/// chain is never climbed through them. Compared with `comm` and the exe's basename. The
/// prefixes cover runc's re-exec stages (`runc:[2:INIT]`), every containerd shim (`comm`
/// truncates `containerd-shim-runc-v2` to 15 bytes), gVisor's helpers and Docker's old shim.
/// A `match` rather than a list: it runs for every ancestor of every alert.
fn plumbing_name(name: &[u8]) -> bool {
    matches!(
        name,
        b"runc"
            | b"crun"
            | b"youki"
            | b"runsc"
            | b"conmon"
            | b"containerd"
            | b"dockerd"
            | b"docker-init"
            | b"tini"
            | b"dumb-init"
            | b"catatonit"
            | b"kubelet"
            | b"podman"
            | b"systemd"
            | b"init"
            | b"kthreadd"
            | b"sshd"
            | b"cron"
            | b"crond"
            | b"atd"
            | b"login"
            | b"agetty"
    ) || name.starts_with(b"runc:[")
        || name.starts_with(b"containerd-shim")
        || name.starts_with(b"runsc-")
        || name.starts_with(b"docker-containe")
}

fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// True when the process is container plumbing or a host service manager.
pub(crate) fn is_plumbing(comm: &BString, exe: &BString) -> bool {
    plumbing_name(comm.as_bytes()) || plumbing_name(basename(exe.as_bytes()))
}

/// Which scopes each pid raised alerts in, with the time span, so an ancestor that is known
/// to live elsewhere is not counted as inside. Keyed by (node, pid): pids are per node.
#[derive(Default)]
pub(crate) struct ScopeEvidence {
    map: FastMap<(u32, u32), Vec<Span>>,
}

/// A scope and the first and last time a pid alerted in it.
type Span = (u32, i64, i64);

/// What the evidence says about a pid relative to one scope.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Seen {
    /// Raised alerts in this scope near that time.
    Here,
    /// Raised alerts near that time, but only in other scopes.
    Elsewhere,
    /// No alert of its own near that time.
    Unknown,
}

impl ScopeEvidence {
    pub(crate) fn add(&mut self, node: u32, pid: u32, scope: u32, t: i64) {
        let spans = self.map.entry((node, pid)).or_default();
        match spans.iter_mut().find(|s| s.0 == scope) {
            Some(s) => {
                s.1 = s.1.min(t);
                s.2 = s.2.max(t);
            }
            None => spans.push((scope, t, t)),
        }
    }

    /// Spans are widened by `window` so pid reuse long before or after does not count.
    pub(crate) fn seen(&self, node: u32, pid: u32, scope: u32, t: i64, window: i64) -> Seen {
        let Some(spans) = self.map.get(&(node, pid)) else {
            return Seen::Unknown;
        };
        let lo = t.saturating_sub(window);
        let hi = t.saturating_add(window);
        let mut elsewhere = false;
        for &(s, first, last) in spans {
            if first <= hi && last >= lo {
                if s == scope {
                    return Seen::Here;
                }
                elsewhere = true;
            }
        }
        if elsewhere {
            Seen::Elsewhere
        } else {
            Seen::Unknown
        }
    }
}

/// Why the climb up an alert's ancestry stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `ancestors[i]` is outside.
    Boundary(usize, BoundaryReason),
    /// The list ended (or `max_ancestry` was reached).
    Ended,
    /// A pid repeated (pid reuse made the list loop).
    Cycle,
}

/// The in-scope part of one alert's ancestry: the process itself, then
/// `ancestors[..taken]`, then possibly the parent found through its own alert.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lineage {
    pub taken: usize,
    pub stop: Stop,
    /// When the ancestry is empty but `ppid` raised alerts in the same scope, the parent
    /// is known to be inside and links the two.
    pub parent_alert: Option<u32>,
}

impl Lineage {
    /// Pids of the lineage, the process first. pid 0 (no process) never links anything.
    pub(crate) fn pids<'a>(&'a self, a: &'a Alert) -> impl Iterator<Item = u32> + 'a {
        let own = a.event.event.process.pid;
        let ancestors = a.event.ctx.proc.ancestors.get(..self.taken).unwrap_or(&[]);
        std::iter::once(own)
            .chain(ancestors.iter().map(|x| x.pid))
            .chain(self.parent_alert)
            .filter(|&p| p != 0)
    }

    /// The topmost in-scope ancestor from the ancestry list (the process itself when none),
    /// or `None` when the parent was only inferred from its own alert (that alert's lineage
    /// then speaks for the top).
    pub(crate) fn top(&self, a: &Alert) -> Option<u32> {
        if self.parent_alert.is_some() {
            return None;
        }
        match self.taken.checked_sub(1) {
            Some(i) => a.event.ctx.proc.ancestors.get(i).map(|x| x.pid),
            None => Some(a.event.event.process.pid),
        }
    }

    /// The climb ended at an outside parent it saw (not at the end of the list or a loop).
    pub(crate) fn resolved(&self) -> bool {
        matches!(self.stop, Stop::Boundary(..))
    }

    /// The boundary above [`Lineage::top`].
    pub(crate) fn boundary(&self, a: &Alert) -> Boundary {
        match self.stop {
            Stop::Boundary(i, reason) => match a.event.ctx.proc.ancestors.get(i) {
                Some(x) => parent_boundary(x, reason),
                None => Boundary::AncestryEnded,
            },
            Stop::Ended => Boundary::AncestryEnded,
            Stop::Cycle => Boundary::Cycle,
        }
    }
}

fn parent_boundary(x: &Ancestor, reason: BoundaryReason) -> Boundary {
    Boundary::Parent {
        pid: x.pid,
        name: x.comm.clone(),
        exe: x.exe.clone(),
        reason,
    }
}

/// Where the scope of an alert sits, for [`lineage`].
pub(crate) struct At {
    pub node: u32,
    pub scope: u32,
    pub t: i64,
    pub window: i64,
    pub max_ancestry: usize,
}

/// Climbs one alert's ancestry while it stays inside the alert's scope.
pub(crate) fn lineage(a: &Alert, at: &At, ev: &ScopeEvidence) -> Lineage {
    let own = a.event.event.process.pid;
    let ancestors = &a.event.ctx.proc.ancestors;
    if ancestors.is_empty() {
        let ppid = a.event.event.process.ppid;
        let parent_alert = (ppid > 1
            && ppid != own
            && ev.seen(at.node, ppid, at.scope, at.t, at.window) == Seen::Here)
            .then_some(ppid);
        return Lineage {
            taken: 0,
            stop: Stop::Ended,
            parent_alert,
        };
    }
    let mut seen = Repeats::default();
    for (i, x) in ancestors.iter().enumerate() {
        if i >= at.max_ancestry {
            return ended(i);
        }
        let reason = if x.pid <= 1 {
            Some(BoundaryReason::InitPid)
        } else if is_plumbing(&x.comm, &x.exe) {
            Some(BoundaryReason::Plumbing)
        } else if ev.seen(at.node, x.pid, at.scope, at.t, at.window) == Seen::Elsewhere {
            Some(BoundaryReason::OtherScope)
        } else {
            None
        };
        if let Some(reason) = reason {
            return Lineage {
                taken: i,
                stop: Stop::Boundary(i, reason),
                parent_alert: None,
            };
        }
        if x.pid == own || seen.repeats(x.pid, &ancestors[..i]) {
            return Lineage {
                taken: i,
                stop: Stop::Cycle,
                parent_alert: None,
            };
        }
    }
    ended(ancestors.len())
}

/// Detects a repeated pid: a scan while the list is short (the usual case), a set once it
/// is long, so a deep hostile fork chain costs linear time, not quadratic.
#[derive(Default)]
struct Repeats {
    set: Option<FastSet<u32>>,
}

const SCAN_LIMIT: usize = 16;

impl Repeats {
    /// Whether `pid` occurs in `before` (the entries already taken).
    fn repeats(&mut self, pid: u32, before: &[Ancestor]) -> bool {
        if before.len() < SCAN_LIMIT {
            return before.iter().any(|y| y.pid == pid);
        }
        let set = self
            .set
            .get_or_insert_with(|| before.iter().map(|y| y.pid).collect());
        // `before` grows by one entry per call: add the newest.
        if let Some(last) = before.last() {
            set.insert(last.pid);
        }
        set.contains(&pid)
    }
}

fn ended(taken: usize) -> Lineage {
    Lineage {
        taken,
        stop: Stop::Ended,
        parent_alert: None,
    }
}

/// What [`choose_root`] weighs for one tree root.
pub(crate) struct RootCandidate {
    pub node: usize,
    pub resolved: bool,
    pub alerts_in_tree: usize,
    pub first_seen_ns: i64,
    pub pid: u32,
}

/// The root cause among several roots: the one whose outside parent was seen (a complete
/// chain), then the one with the most alerts below it, then the earliest, then lowest pid.
pub(crate) fn choose_root(cands: &[RootCandidate]) -> Option<usize> {
    cands
        .iter()
        .min_by_key(|c| {
            (
                !c.resolved,
                std::cmp::Reverse(c.alerts_in_tree),
                c.first_seen_ns,
                c.pid,
            )
        })
        .map(|c| c.node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plumbing_names() {
        let b = |s: &str| BString::from(s);
        assert!(is_plumbing(&b("containerd-shim"), &b("")));
        assert!(is_plumbing(&b("x"), &b("/usr/bin/containerd-shim-runc-v2")));
        assert!(is_plumbing(&b("runc:[2:INIT]"), &b("")));
        assert!(is_plumbing(&b("conmon"), &b("/usr/bin/conmon")));
        assert!(!is_plumbing(&b("sh"), &b("/bin/sh")));
        assert!(!is_plumbing(&b("runcx"), &b("/tmp/runcx")));
        assert!(!is_plumbing(&b(""), &b("")));
    }

    #[test]
    fn evidence_respects_window() {
        let mut ev = ScopeEvidence::default();
        ev.add(0, 42, 1, 1_000);
        assert_eq!(ev.seen(0, 42, 1, 1_500, 1_000), Seen::Here);
        assert_eq!(ev.seen(0, 42, 2, 1_500, 1_000), Seen::Elsewhere);
        assert_eq!(ev.seen(0, 42, 2, 10_000, 1_000), Seen::Unknown);
        assert_eq!(ev.seen(1, 42, 2, 1_500, 1_000), Seen::Unknown);
    }
}
