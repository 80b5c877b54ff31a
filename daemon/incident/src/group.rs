//! Grouping: alerts are partitioned by scope (one container, or one node's host), and
//! within a scope joined with union-find when their lineages share a pid (one process is
//! the other's ancestor, or both descend from the same in-scope ancestor) and they are at
//! most the window apart.

use std::collections::HashMap;

use crate::fast::FastMap;

use saker_event::Alert;

use crate::root_cause::{lineage, At, Lineage, ScopeEvidence};

/// Alerts in time order with what grouping learned about each.
pub(crate) struct Prepared<'a> {
    /// Alerts sorted by (time, id, event seq).
    pub alerts: Vec<&'a Alert>,
    /// Scope index per alert.
    pub scope: Vec<u32>,
    /// In-scope lineage per alert.
    pub lineage: Vec<Lineage>,
    /// Container id per scope (`None` = host).
    pub scope_container: Vec<Option<&'a str>>,
}

/// The container id of an alert: from the cgroup path, else from runtime metadata. Empty
/// and Falco's `host` mean the host.
pub(crate) fn container_id(a: &Alert) -> Option<&str> {
    let real = |s: &&str| !s.is_empty() && *s != "host";
    a.event
        .ctx
        .container_id
        .as_deref()
        .filter(real)
        .or_else(|| {
            a.event
                .ctx
                .container
                .as_ref()
                .map(|c| c.id.as_str())
                .filter(real)
        })
}

/// Sorts, assigns scopes, gathers per-pid scope evidence, then computes every lineage.
pub(crate) fn prepare<'a>(input: &'a [Alert], window: i64, max_ancestry: usize) -> Prepared<'a> {
    // A total order independent of input order, so output is deterministic; the input
    // index only separates alerts identical in every key. Sorting compact keys keeps the
    // comparisons in cache.
    let mut keys: Vec<(i64, &str, u64, &str, usize)> = input
        .iter()
        .enumerate()
        .map(|(i, a)| (a.time_ns, a.id.as_str(), a.event.seq, a.rule.as_str(), i))
        .collect();
    keys.sort_unstable();
    let alerts: Vec<&Alert> = keys.iter().map(|k| &input[k.4]).collect();
    drop(keys);

    let mut nodes: HashMap<(&str, &str), u32> = HashMap::new();
    let mut scopes: HashMap<(u32, Option<&str>), u32> = HashMap::new();
    let mut scope_container = Vec::new();
    let mut node_of = Vec::with_capacity(alerts.len());
    let mut scope = Vec::with_capacity(alerts.len());
    let mut ev = ScopeEvidence::default();
    // Consecutive alerts mostly come from the same node and container: skip the lookups.
    let mut prev: Option<(&str, &str, Option<&str>, u32, u32)> = None;
    for a in &alerts {
        let ctx = &a.event.ctx;
        let cid = container_id(a);
        let (node, s) = match prev {
            Some((c, n, id, node, s)) if c == ctx.cluster && n == ctx.node && id == cid => {
                (node, s)
            }
            _ => {
                let next = nodes.len() as u32;
                let node = *nodes
                    .entry((ctx.cluster.as_str(), ctx.node.as_str()))
                    .or_insert(next);
                let next = scopes.len() as u32;
                let s = *scopes.entry((node, cid)).or_insert_with(|| {
                    scope_container.push(cid);
                    next
                });
                prev = Some((&ctx.cluster, &ctx.node, cid, node, s));
                (node, s)
            }
        };
        ev.add(node, a.event.event.process.pid, s, a.time_ns);
        node_of.push(node);
        scope.push(s);
    }

    let lineage = alerts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let at = At {
                node: node_of[i],
                scope: scope[i],
                t: a.time_ns,
                window,
                max_ancestry,
            };
            lineage(a, &at, &ev)
        })
        .collect();

    Prepared {
        alerts,
        scope,
        lineage,
        scope_container,
    }
}

/// Union-find with path halving and union by size.
struct Dsu {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Dsu {
    fn new(n: usize) -> Self {
        Dsu {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a as usize] < self.size[b as usize] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
    }
}

/// Groups alert positions into components, each in time order, components ordered by
/// their first alert.
///
/// One sweep in time order: for every (scope, pid) of an alert's lineage, the alert joins
/// the last alert that had that pid in its lineage if that one is within the window. That
/// is enough for transitivity and keeps the work linear in the total lineage length.
pub(crate) fn components(prep: &Prepared<'_>, window: i64) -> Vec<Vec<u32>> {
    let n = prep.alerts.len();
    let mut dsu = Dsu::new(n);
    let mut last: FastMap<(u32, u32), (u32, i64)> =
        FastMap::with_capacity_and_hasher(n, Default::default());
    for (pos, a) in prep.alerts.iter().enumerate() {
        let t = a.time_ns;
        for pid in prep.lineage[pos].pids(a) {
            let key = (prep.scope[pos], pid);
            if let Some(&(other, t0)) = last.get(&key) {
                if t.saturating_sub(t0) <= window {
                    dsu.union(pos as u32, other);
                }
            }
            last.insert(key, (pos as u32, t));
        }
    }

    let mut index: FastMap<u32, usize> = FastMap::default();
    let mut out: Vec<Vec<u32>> = Vec::new();
    for pos in 0..n as u32 {
        let root = dsu.find(pos);
        let next = out.len();
        let k = *index.entry(root).or_insert(next);
        if k == next {
            out.push(Vec::new());
        }
        out[k].push(pos);
    }
    out
}
