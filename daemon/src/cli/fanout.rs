//! Asking several nodes at once, and merging what they answer. The merge functions are
//! pure (no I/O) so they can be tested on their own.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use saker_proto::v1::{
    self, feed_item::Item, FeedItem, GetStatsResponse, IncidentSummary, StatsGroup,
};

use super::conn::{self, Api, ConnOpts, Node};
use super::exit::CallError;

/// What one node answered.
#[derive(Debug)]
pub struct NodeResult<T> {
    /// The node's label.
    pub node: String,
    pub result: Result<T, CallError>,
}

/// Connects to every node and runs `call` on each, concurrently. Results come back in
/// node order.
pub async fn run<T, F, Fut>(nodes: &[Node], opts: &Arc<ConnOpts>, call: F) -> Vec<NodeResult<T>>
where
    T: Send + 'static,
    F: Fn(Api) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, tonic::Status>> + Send + 'static,
{
    let call = Arc::new(call);
    let mut set = tokio::task::JoinSet::new();
    for (i, n) in nodes.iter().enumerate() {
        let (call, opts, target) = (call.clone(), opts.clone(), n.target.clone());
        set.spawn(async move {
            let r = match conn::connect(&target, &opts).await {
                Ok(api) => call(api).await.map_err(|s| CallError::from_status(&s)),
                Err(e) => Err(e),
            };
            (i, r)
        });
    }
    let mut slots: Vec<Option<Result<T, CallError>>> = nodes.iter().map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            slots[i] = Some(r);
        }
    }
    nodes
        .iter()
        .zip(slots)
        .map(|(n, r)| NodeResult {
            node: n.label.clone(),
            result: r.unwrap_or_else(|| Err(CallError::Connect("task failed".into()))),
        })
        .collect()
}

/// Time of a feed item.
pub fn item_time(i: &FeedItem) -> i64 {
    match &i.item {
        Some(Item::Alert(a)) => a.time_ns,
        Some(Item::Event(e)) => e.time_ns,
        None => 0,
    }
}

/// A total order key within one node: alert id, or event seq.
fn item_key(i: &FeedItem) -> (u8, String, u64) {
    match &i.item {
        Some(Item::Alert(a)) => (0, a.id.clone(), a.event.as_ref().map_or(0, |e| e.seq)),
        Some(Item::Event(e)) => (1, String::new(), e.seq),
        None => (2, String::new(), 0),
    }
}

/// Merges feed pages of several nodes by time (then node, then id), oldest first. With
/// `newest`, the `limit` most recent items are kept (each node was asked for its newest
/// `limit`); otherwise the `limit` oldest. `limit` 0 keeps everything.
pub fn merge_feed(
    per_node: Vec<(String, Vec<FeedItem>)>,
    limit: usize,
    newest: bool,
) -> Vec<(String, FeedItem)> {
    let mut all: Vec<(String, FeedItem)> = per_node
        .into_iter()
        .flat_map(|(n, items)| items.into_iter().map(move |i| (n.clone(), i)))
        .collect();
    all.sort_by(|(na, a), (nb, b)| {
        item_time(a)
            .cmp(&item_time(b))
            .then_with(|| na.cmp(nb))
            .then_with(|| item_key(a).cmp(&item_key(b)))
    });
    if limit > 0 && all.len() > limit {
        if newest {
            all.drain(..all.len() - limit);
        } else {
            all.truncate(limit);
        }
    }
    all
}

/// Sums the stats of several nodes. Groups with the same key are merged (counts and
/// prevented summed, highest severity, earliest first and latest last), then sorted by
/// count (largest first) and key, and cut to `limit` (0: no cut). `truncated` is set when
/// any node truncated or the cut dropped groups.
pub fn merge_stats(per_node: Vec<GetStatsResponse>, limit: usize) -> GetStatsResponse {
    let mut out = GetStatsResponse::default();
    let mut groups: BTreeMap<Vec<String>, StatsGroup> = BTreeMap::new();
    for r in per_node {
        out.total += r.total;
        out.prevented += r.prevented;
        out.first_ns = min_set(out.first_ns, r.first_ns);
        out.last_ns = out.last_ns.max(r.last_ns);
        out.truncated |= r.truncated;
        if out.group_by.is_empty() {
            out.group_by = r.group_by.clone();
        }
        for g in r.groups {
            match groups.get_mut(&g.key) {
                None => {
                    groups.insert(g.key.clone(), g);
                }
                Some(m) => {
                    m.count += g.count;
                    m.prevented += g.prevented;
                    m.max_severity = m.max_severity.max(g.max_severity);
                    m.first_ns = min_set(m.first_ns, g.first_ns);
                    m.last_ns = m.last_ns.max(g.last_ns);
                }
            }
        }
    }
    let mut groups: Vec<StatsGroup> = groups.into_values().collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    if limit > 0 && groups.len() > limit {
        groups.truncate(limit);
        out.truncated = true;
    }
    out.groups = groups;
    out
}

/// The smaller of two times where 0 means unset.
fn min_set(a: i64, b: i64) -> i64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

/// Merges incident lists by start time (then node, then id), oldest first; keeps the
/// `limit` newest (with `newest`) or oldest. `limit` 0 keeps everything.
pub fn merge_incidents(
    per_node: Vec<(String, Vec<IncidentSummary>)>,
    limit: usize,
    newest: bool,
) -> Vec<(String, IncidentSummary)> {
    let mut all: Vec<(String, IncidentSummary)> = per_node
        .into_iter()
        .flat_map(|(n, v)| v.into_iter().map(move |i| (n.clone(), i)))
        .collect();
    all.sort_by(|(na, a), (nb, b)| {
        a.start_ns
            .cmp(&b.start_ns)
            .then_with(|| na.cmp(nb))
            .then_with(|| a.id.cmp(&b.id))
    });
    if limit > 0 && all.len() > limit {
        if newest {
            all.drain(..all.len() - limit);
        } else {
            all.truncate(limit);
        }
    }
    all
}

/// The severity as Falco spells it (`CRITICAL`); `-` when unset or unknown.
pub fn severity_name(s: i32) -> &'static str {
    match v1::Severity::try_from(s) {
        Ok(v1::Severity::Unspecified) | Err(_) => "-",
        Ok(s) => s.as_str_name().trim_start_matches("SEVERITY_"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::Severity;

    fn alert(id: &str, t: i64) -> FeedItem {
        FeedItem {
            item: Some(Item::Alert(v1::Alert {
                id: id.into(),
                time_ns: t,
                ..Default::default()
            })),
        }
    }

    fn event(seq: u64, t: i64) -> FeedItem {
        FeedItem {
            item: Some(Item::Event(v1::Event {
                seq,
                time_ns: t,
                ..Default::default()
            })),
        }
    }

    fn ids(v: &[(String, FeedItem)]) -> Vec<String> {
        v.iter()
            .map(|(n, i)| match &i.item {
                Some(Item::Alert(a)) => format!("{n}/{}", a.id),
                Some(Item::Event(e)) => format!("{n}/#{}", e.seq),
                None => "?".into(),
            })
            .collect()
    }

    #[test]
    fn feed_merges_by_time_then_node() {
        let a = (
            "a".to_string(),
            vec![alert("a1", 10), alert("a2", 30), event(5, 40)],
        );
        let b = ("b".to_string(), vec![alert("b1", 20), alert("b2", 30)]);
        let m = merge_feed(vec![b.clone(), a.clone()], 0, false);
        assert_eq!(ids(&m), ["a/a1", "b/b1", "a/a2", "b/b2", "a/#5"]);
        // Newest 2, still in time order.
        let m = merge_feed(vec![a.clone(), b.clone()], 2, true);
        assert_eq!(ids(&m), ["b/b2", "a/#5"]);
        // Oldest 2.
        let m = merge_feed(vec![a, b], 2, false);
        assert_eq!(ids(&m), ["a/a1", "b/b1"]);
    }

    fn group(
        key: &[&str],
        count: u64,
        prevented: u64,
        sev: Severity,
        first: i64,
        last: i64,
    ) -> StatsGroup {
        StatsGroup {
            key: key.iter().map(|s| s.to_string()).collect(),
            count,
            prevented,
            max_severity: sev as i32,
            first_ns: first,
            last_ns: last,
        }
    }

    #[test]
    fn stats_are_summed() {
        let by = vec![v1::GroupBy::Policy as i32];
        let a = GetStatsResponse {
            total: 10,
            prevented: 2,
            first_ns: 100,
            last_ns: 500,
            groups: vec![
                group(&["Drift Detection"], 7, 2, Severity::Critical, 100, 500),
                group(&[""], 3, 0, Severity::Notice, 200, 300),
            ],
            truncated: false,
            group_by: by.clone(),
        };
        let b = GetStatsResponse {
            total: 5,
            prevented: 0,
            first_ns: 50,
            last_ns: 400,
            groups: vec![
                group(
                    &["Malicious Binary Detection"],
                    4,
                    0,
                    Severity::Critical,
                    50,
                    400,
                ),
                group(&["Drift Detection"], 1, 0, Severity::Warning, 60, 60),
            ],
            truncated: false,
            group_by: by.clone(),
        };
        let empty = GetStatsResponse::default();
        let m = merge_stats(vec![a.clone(), empty, b.clone()], 0);
        assert_eq!(
            (m.total, m.prevented, m.first_ns, m.last_ns),
            (15, 2, 50, 500)
        );
        assert_eq!(m.group_by, by);
        assert!(!m.truncated);
        assert_eq!(
            m.groups,
            vec![
                group(&["Drift Detection"], 8, 2, Severity::Critical, 60, 500),
                group(
                    &["Malicious Binary Detection"],
                    4,
                    0,
                    Severity::Critical,
                    50,
                    400
                ),
                group(&[""], 3, 0, Severity::Notice, 200, 300),
            ]
        );
        let m = merge_stats(vec![a, b], 2);
        assert_eq!(m.groups.len(), 2);
        assert!(m.truncated);
    }

    #[test]
    fn incidents_merge_with_their_node() {
        let inc = |id: &str, start: i64| IncidentSummary {
            id: id.into(),
            start_ns: start,
            ..Default::default()
        };
        let m = merge_incidents(
            vec![
                ("n2".into(), vec![inc("inc-b", 5), inc("inc-c", 9)]),
                ("n1".into(), vec![inc("inc-a", 5)]),
            ],
            0,
            false,
        );
        let got: Vec<String> = m.iter().map(|(n, i)| format!("{n}:{}", i.id)).collect();
        assert_eq!(got, ["n1:inc-a", "n2:inc-b", "n2:inc-c"]);
        let m = merge_incidents(
            vec![("n".into(), vec![inc("x", 1), inc("y", 2), inc("z", 3)])],
            2,
            true,
        );
        assert_eq!(
            m.iter().map(|(_, i)| i.id.as_str()).collect::<Vec<_>>(),
            ["y", "z"]
        );
    }

    #[test]
    fn severity_names() {
        assert_eq!(severity_name(Severity::Critical as i32), "CRITICAL");
        assert_eq!(severity_name(0), "-");
        assert_eq!(severity_name(99), "-");
    }
}
