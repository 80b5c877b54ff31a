//! The attack path: every in-scope process of an incident (alerting processes and the
//! ancestors between them and the root cause) as a parent-linked tree in time order, and
//! the root cause picked from its roots.

use crate::fast::FastMap;

use saker_event::{Alert, BString, Body};

use crate::group::Prepared;
use crate::model::{Action, AttackPath, Boundary, PathNode, RootCause, Step};
use crate::root_cause::{choose_root, RootCandidate, Stop};

static EMPTY: BString = BString(Vec::new());

/// Identity of a process as some sighting describes it.
#[derive(Clone, Copy)]
struct Info<'a> {
    name: &'a BString,
    exe: &'a BString,
    args: &'a [BString],
    sha: Option<&'a str>,
}

struct NodeB<'a> {
    pid: u32,
    /// The latest snapshot wins (alerts are visited in time order, and each carries the
    /// process table as it was then), whether from the process's own alert or from an
    /// ancestry entry: a process that exec'd is named by what it became.
    info: Option<(bool, Info<'a>)>,
    ppid: Option<u32>,
    first_seen: i64,
    /// Positions (into `Prepared::alerts`) of its own alerts, in time order.
    alerts: Vec<u32>,
    /// Alert whose lineage topped out here, and whether that lineage saw the outside
    /// parent (preferred over one whose ancestry just ended).
    top_of: Option<(bool, u32)>,
    /// Its parent link was cut to break a pid-reuse loop.
    cut: bool,
}

fn own_info(a: &Alert) -> Info<'_> {
    let p = &a.event.ctx.proc;
    let exec = match &a.event.event.body {
        Body::Exec(e) => Some(e),
        _ => None,
    };
    let exe = match exec {
        Some(e) if p.exe.is_empty() => &e.filename,
        _ => &p.exe,
    };
    let args: &[BString] = match exec {
        Some(e) if p.args.is_empty() => &e.args,
        _ => &p.args,
    };
    Info {
        name: &a.event.event.process.comm,
        exe,
        args,
        sha: p.exe_sha256.as_deref(),
    }
}

fn action(body: &Body) -> Action {
    match body {
        Body::Exec(e) => Action::Exec {
            filename: e.filename.clone(),
            args: e.args.clone(),
            upper_layer: e.exe_upper_layer,
            memfd: e.exe_memfd,
        },
        Body::Fork => Action::Fork,
        Body::Exit(x) => Action::Exit {
            code: x.code,
            signal: x.signal,
        },
        Body::File(f) => Action::File {
            op: f.op,
            path: f.path.clone(),
            mode: f.mode,
            ret: f.ret,
        },
        Body::Connect(c) => Action::Connect {
            addr: c.addr,
            port: c.port,
            ret: c.ret,
        },
    }
}

pub(crate) fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// The node for `pid`, created on first sighting; `first_seen` keeps the earliest time.
fn touch<'a>(
    nodes: &mut Vec<NodeB<'a>>,
    index: &mut FastMap<u32, usize>,
    pid: u32,
    t: i64,
) -> usize {
    let i = *index.entry(pid).or_insert_with(|| {
        nodes.push(NodeB {
            pid,
            info: None,
            ppid: None,
            first_seen: t,
            alerts: Vec::new(),
            top_of: None,
            cut: false,
        });
        nodes.len() - 1
    });
    nodes[i].first_seen = nodes[i].first_seen.min(t);
    i
}

/// Collects the nodes of one incident from its alerts' lineages.
fn collect<'a>(prep: &Prepared<'a>, members: &[u32]) -> Vec<NodeB<'a>> {
    let mut nodes: Vec<NodeB<'a>> = Vec::new();
    let mut index: FastMap<u32, usize> = FastMap::default();
    for &pos in members {
        let a: &'a Alert = prep.alerts[pos as usize];
        let lin = &prep.lineage[pos as usize];
        let t = a.time_ns;
        let proc = &a.event.event.process;
        let ancestors = &a.event.ctx.proc.ancestors;

        let i = touch(&mut nodes, &mut index, proc.pid, t);
        let n = &mut nodes[i];
        // Members come in time order: the latest snapshot wins, so a process that
        // exec'd (e.g. `sh -c …` → `exec sh ./script.sh`) is named by what it became.
        n.info = Some((true, own_info(a)));
        if n.ppid.is_none() {
            n.ppid = match proc.ppid {
                0 => ancestors.first().map(|x| x.pid),
                p => Some(p),
            };
        }
        n.alerts.push(pos);

        for (k, x) in ancestors.iter().take(lin.taken).enumerate() {
            let i = touch(&mut nodes, &mut index, x.pid, t);
            let n = &mut nodes[i];
            {
                // The table snapshot taken with this (later) alert is the most recent view
                // of this ancestor, even over an earlier alert of its own.
                let keep_sha = n
                    .info
                    .and_then(|(_, i)| (i.exe == &x.exe).then_some(i.sha))
                    .flatten();
                n.info = Some((
                    false,
                    Info {
                        name: &x.comm,
                        exe: &x.exe,
                        args: &x.args,
                        sha: keep_sha,
                    },
                ));
            }
            // The entry after the last one taken is the real parent, unless the climb
            // stopped because that entry repeats a pid (a loop, not a parent).
            let loops = lin.stop == Stop::Cycle && k + 1 == lin.taken;
            if n.ppid.is_none() && !loops {
                n.ppid = ancestors.get(k + 1).map(|y| y.pid);
            }
        }

        if let Some(top) = lin.top(a) {
            let resolved = lin.resolved();
            if let Some(&i) = index.get(&top) {
                let n = &mut nodes[i];
                if n.top_of.is_none_or(|(r, _)| !r && resolved) {
                    n.top_of = Some((resolved, pos));
                }
            }
        }
    }
    nodes
}

/// Links parents, breaking pid-reuse loops: in each loop the earliest-seen member loses
/// its parent link and becomes a root.
fn link(nodes: &mut [NodeB<'_>]) -> Vec<Option<usize>> {
    let index: FastMap<u32, usize> = nodes.iter().enumerate().map(|(i, n)| (n.pid, i)).collect();
    let mut parent: Vec<Option<usize>> = nodes
        .iter()
        .map(|n| {
            n.ppid
                .filter(|&p| p != n.pid)
                .and_then(|p| index.get(&p).copied())
        })
        .collect();

    // 0 = unvisited, 1 = on the current walk, 2 = done.
    let mut state = vec![0u8; nodes.len()];
    let mut walk = Vec::new();
    for start in 0..nodes.len() {
        walk.clear();
        let mut cur = Some(start);
        while let Some(c) = cur {
            match state[c] {
                0 => {
                    state[c] = 1;
                    walk.push(c);
                    cur = parent[c];
                }
                1 => {
                    let from = walk.iter().position(|&x| x == c).unwrap_or(0);
                    let cut = walk[from..]
                        .iter()
                        .copied()
                        .min_by_key(|&x| (nodes[x].first_seen, nodes[x].pid));
                    if let Some(x) = cut {
                        parent[x] = None;
                        nodes[x].cut = true;
                    }
                    break;
                }
                _ => break,
            }
        }
        for &x in &walk {
            state[x] = 2;
        }
    }
    parent
}

/// Depth and root of every node (the parent links are acyclic by now).
fn depths(parent: &[Option<usize>]) -> (Vec<u32>, Vec<usize>) {
    let n = parent.len();
    let mut depth: Vec<Option<u32>> = vec![None; n];
    let mut root: Vec<usize> = (0..n).collect();
    let mut chain = Vec::new();
    for start in 0..n {
        if depth[start].is_some() {
            continue;
        }
        chain.clear();
        let mut cur = start;
        // Climb until a root or the child of a node already done. The length guard only
        // matters if a loop survived `link`, which it cannot.
        let base = loop {
            chain.push(cur);
            match parent[cur] {
                Some(p) if chain.len() <= n => match depth[p] {
                    Some(d) => break Some((d + 1, root[p])),
                    None => cur = p,
                },
                _ => break None,
            }
        };
        let (mut d, r) = base.unwrap_or((0, cur));
        for &x in chain.iter().rev() {
            depth[x] = Some(d);
            root[x] = r;
            d += 1;
        }
    }
    (depth.into_iter().map(|d| d.unwrap_or(0)).collect(), root)
}

/// Builds the attack path and the root cause of one incident.
pub(crate) fn build(prep: &Prepared<'_>, members: &[u32]) -> (AttackPath, RootCause) {
    let mut nodes = collect(prep, members);
    let parent = link(&mut nodes);
    let (depth, root_of) = depths(&parent);

    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&i| (nodes[i].first_seen, depth[i], nodes[i].pid));

    let mut alerts_in_tree: FastMap<usize, usize> = FastMap::default();
    for (i, n) in nodes.iter().enumerate() {
        *alerts_in_tree.entry(root_of[i]).or_default() += n.alerts.len();
    }
    let boundary_of = |n: &NodeB<'_>| -> Boundary {
        if n.cut {
            return Boundary::Cycle;
        }
        match n.top_of {
            Some((_, pos)) => prep.lineage[pos as usize].boundary(prep.alerts[pos as usize]),
            None => Boundary::AncestryEnded,
        }
    };
    let cands: Vec<RootCandidate> = order
        .iter()
        .filter(|&&i| parent[i].is_none())
        .map(|&i| RootCandidate {
            node: i,
            resolved: matches!(boundary_of(&nodes[i]), Boundary::Parent { .. }),
            alerts_in_tree: alerts_in_tree.get(&i).copied().unwrap_or(0),
            first_seen_ns: nodes[i].first_seen,
            pid: nodes[i].pid,
        })
        .collect();
    let roots: Vec<u32> = cands.iter().map(|c| nodes[c.node].pid).collect();

    let path_nodes: Vec<PathNode> = order
        .iter()
        .map(|&i| path_node(prep, &nodes[i], parent[i].map(|p| nodes[p].pid), depth[i]))
        .collect();

    // Every non-empty forest has a root; the fallback only guards the empty incident.
    let root_cause = match choose_root(&cands) {
        Some(i) => {
            let n = &nodes[i];
            let info = n.info.map(|(_, x)| x);
            RootCause {
                pid: n.pid,
                ppid: n.ppid.unwrap_or(0),
                name: info.map_or(&EMPTY, |x| x.name).clone(),
                exe: info.map_or(&EMPTY, |x| x.exe).clone(),
                cmdline: info.map_or(&[][..], |x| x.args).to_vec(),
                exe_sha256: info.and_then(|x| x.sha).map(str::to_string),
                first_seen_ns: n.first_seen,
                alert_ids: n
                    .alerts
                    .iter()
                    .map(|&p| prep.alerts[p as usize].id.clone())
                    .collect(),
                boundary: boundary_of(n),
            }
        }
        None => RootCause {
            pid: 0,
            ppid: 0,
            name: BString::default(),
            exe: BString::default(),
            cmdline: Vec::new(),
            exe_sha256: None,
            first_seen_ns: 0,
            alert_ids: Vec::new(),
            boundary: Boundary::AncestryEnded,
        },
    };

    (
        AttackPath {
            nodes: path_nodes,
            roots,
        },
        root_cause,
    )
}

fn path_node(prep: &Prepared<'_>, n: &NodeB<'_>, parent: Option<u32>, depth: u32) -> PathNode {
    let info = n.info.map(|(_, x)| x);
    let mut node = PathNode {
        pid: n.pid,
        ppid: n.ppid.unwrap_or(0),
        parent,
        depth,
        name: info.map_or(&EMPTY, |x| x.name).clone(),
        exe: info.map_or(&EMPTY, |x| x.exe).clone(),
        cmdline: info.map_or(&[][..], |x| x.args).to_vec(),
        exe_sha256: info.and_then(|x| x.sha).map(str::to_string),
        first_seen_ns: n.first_seen,
        alert_ids: Vec::with_capacity(n.alerts.len()),
        rules: Vec::new(),
        tactics: Vec::new(),
        techniques: Vec::new(),
        prevented: false,
        steps: Vec::with_capacity(n.alerts.len()),
    };
    for &pos in &n.alerts {
        let a = prep.alerts[pos as usize];
        node.alert_ids.push(a.id.clone());
        push_unique(&mut node.rules, &a.rule);
        for t in &a.mitre_tactics {
            push_unique(&mut node.tactics, t);
        }
        for t in &a.mitre_techniques {
            push_unique(&mut node.techniques, t);
        }
        node.prevented |= a.prevented;
        node.steps.push(Step {
            alert_id: a.id.clone(),
            event_seq: a.event.seq,
            time_ns: a.time_ns,
            rule: a.rule.clone(),
            severity: a.severity,
            tactics: a.mitre_tactics.clone(),
            techniques: a.mitre_techniques.clone(),
            prevented: a.prevented,
            action: action(&a.event.event.body),
        });
    }
    node
}

#[cfg(test)]
mod tests {
    use super::depths;

    #[test]
    fn depths_of_a_forest() {
        // 0 <- 1 <- 2, 3 alone, 4 <- 5
        let parent = vec![None, Some(0), Some(1), None, None, Some(4)];
        let (d, r) = depths(&parent);
        assert_eq!(d, vec![0, 1, 2, 0, 0, 1]);
        assert_eq!(r, vec![0, 0, 0, 3, 4, 4]);
    }
}
