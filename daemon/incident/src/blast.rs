//! Blast radius: which workloads an incident's indicators (a suspicious binary's hash, a
//! rule, the root-cause command line) also show up in, within a time window; and the
//! cross-incident view of every incident sharing each indicator.
//!
//! Relations are direct, not transitive: a workload is affected when one of its incidents
//! shares an indicator with the anchor and their time ranges, widened by the window, meet.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::{
    AffectedWorkload, BlastConfig, Incident, Indicator, SharedIndicator, WorkloadKey,
};

type Identity<'a> = (&'a str, &'a str, Option<&'a str>);

/// Distinct workloads of a set of incidents, each with the most complete key: descriptive
/// fields are filled from the first incident that has them.
#[derive(Default)]
struct Workloads<'a> {
    ids: HashMap<Identity<'a>, u32>,
    keys: Vec<Arc<WorkloadKey>>,
}

impl<'a> Workloads<'a> {
    fn add(&mut self, k: &'a WorkloadKey) -> u32 {
        if let Some(&i) = self.ids.get(&k.identity()) {
            // Only mutated while indexing, before any clone of the Arc is handed out.
            let m = Arc::make_mut(&mut self.keys[i as usize]);
            for (slot, v) in [
                (&mut m.namespace, &k.namespace),
                (&mut m.workload, &k.workload),
                (&mut m.pod, &k.pod),
                (&mut m.container, &k.container),
                (&mut m.image, &k.image),
            ] {
                if slot.is_none() {
                    slot.clone_from(v);
                }
            }
            return i;
        }
        let i = self.keys.len() as u32;
        self.ids.insert(k.identity(), i);
        self.keys.push(Arc::new(k.clone()));
        i
    }
}

/// When one workload's incidents carrying one indicator are near: their time ranges, each
/// widened by the window, merged into disjoint sorted spans. A range [s, e] is within the
/// window of one of those incidents exactly when it meets one of the spans, and widening
/// first lets nearby incidents merge, so a query is one binary search over a few spans.
struct Posting {
    workload: u32,
    spans: Vec<(i64, i64)>,
}

impl Posting {
    fn new(workload: u32, mut ranges: Vec<(i64, i64)>, window: i64) -> Posting {
        ranges.sort_unstable();
        let mut spans: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            let (s, e) = (s.saturating_sub(window), e.saturating_add(window));
            match spans.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => spans.push((s, e)),
            }
        }
        Posting { workload, spans }
    }

    fn meets(&self, s: i64, e: i64) -> bool {
        // Spans are disjoint and sorted, so their ends are sorted too.
        let i = self.spans.partition_point(|&(_, end)| end < s);
        self.spans.get(i).is_some_and(|&(start, _)| start <= e)
    }
}

/// An index over incidents for many blast-radius queries (what [`crate::correlate`] uses
/// to fill every incident's `affected_workloads`). Each query costs, per indicator of the
/// anchor, one binary search (over a few spans) per workload that has that indicator.
pub struct BlastIndex<'a> {
    cfg: BlastConfig,
    workloads: Workloads<'a>,
    /// Workload indices in [`WorkloadKey`] order.
    sorted: Vec<u32>,
    postings: HashMap<&'a Indicator, Vec<Posting>>,
}

impl<'a> BlastIndex<'a> {
    /// Indexes `incidents` under `cfg`.
    pub fn new(incidents: &'a [Incident], cfg: &BlastConfig) -> Self {
        let mut workloads = Workloads::default();
        // Indicator → workload → time ranges of its incidents.
        type Ranges = BTreeMap<u32, Vec<(i64, i64)>>;
        let mut spans: HashMap<&'a Indicator, Ranges> = HashMap::new();
        for inc in incidents {
            let w = workloads.add(&inc.workload);
            for ind in inc.indicators.iter().filter(|i| cfg.counts(i)) {
                spans
                    .entry(ind)
                    .or_default()
                    .entry(w)
                    .or_default()
                    .push((inc.start_ns, inc.end_ns.max(inc.start_ns)));
            }
        }
        let window = cfg.window_ns.max(0);
        let postings = spans
            .into_iter()
            .map(|(ind, per_workload)| {
                let list = per_workload
                    .into_iter()
                    .map(|(workload, ranges)| Posting::new(workload, ranges, window))
                    .collect();
                (ind, list)
            })
            .collect();
        let mut sorted: Vec<u32> = (0..workloads.keys.len() as u32).collect();
        sorted.sort_by(|&a, &b| workloads.keys[a as usize].cmp(&workloads.keys[b as usize]));
        BlastIndex {
            cfg: cfg.clone(),
            workloads,
            sorted,
            postings,
        }
    }

    /// The anchor's blast radius: its own workload first (`anchor: true`), then every other
    /// workload sharing an indicator with it in the window, sorted by [`WorkloadKey`].
    /// The anchor need not be one of the indexed incidents.
    pub fn affected(&self, anchor: &Incident) -> Vec<AffectedWorkload> {
        let own = self.workloads.ids.get(&anchor.workload.identity()).copied();
        let (start, end) = (anchor.start_ns, anchor.end_ns.max(anchor.start_ns));
        // Dense per-workload scratch: cheaper than a map when most workloads are hit.
        let mut shared: Vec<Vec<usize>> = vec![Vec::new(); self.workloads.keys.len()];
        let mut any = false;
        for (k, ind) in anchor.indicators.iter().enumerate() {
            if !self.cfg.counts(ind) {
                continue;
            }
            let Some(list) = self.postings.get(ind) else {
                continue;
            };
            for p in list {
                if Some(p.workload) != own && p.meets(start, end) {
                    let s = &mut shared[p.workload as usize];
                    // Indicators are distinct, so k is new for this workload.
                    s.push(k);
                    any = true;
                }
            }
        }
        let own_key = match own {
            Some(i) => self.workloads.keys[i as usize].clone(),
            None => Arc::new(anchor.workload.clone()),
        };
        let mut out = vec![AffectedWorkload {
            workload: own_key,
            anchor: true,
            shared: Vec::new(),
        }];
        if any {
            for &i in &self.sorted {
                let s = std::mem::take(&mut shared[i as usize]);
                if !s.is_empty() {
                    out.push(AffectedWorkload {
                        workload: self.workloads.keys[i as usize].clone(),
                        anchor: false,
                        shared: s,
                    });
                }
            }
        }
        out
    }
}

/// The anchor's blast radius under the default [`BlastConfig`]: its own workload first,
/// then the others, sorted. Its length is the number of affected workloads.
pub fn blast_radius(incidents: &[Incident], anchor: &Incident) -> Vec<WorkloadKey> {
    blast_radius_with(incidents, anchor, &BlastConfig::default())
        .into_iter()
        .map(|a| Arc::unwrap_or_clone(a.workload))
        .collect()
}

/// The anchor's blast radius under `cfg`, with the indicators tying each workload to it
/// (positions in `anchor.indicators`).
pub fn blast_radius_with(
    incidents: &[Incident],
    anchor: &Incident,
    cfg: &BlastConfig,
) -> Vec<AffectedWorkload> {
    BlastIndex::new(incidents, cfg).affected(anchor)
}

/// Every indicator (of the kinds `cfg` counts) that two or more incidents share, with those
/// incidents and their workloads: e.g. all incidents that ran the same malicious binary.
/// This is a catalog over all the given incidents: `cfg.window_ns` is not applied (each
/// entry carries its time span instead). Sorted by indicator: binary hashes first, then
/// root commands, then rules.
pub fn cross_incident_view(incidents: &[Incident], cfg: &BlastConfig) -> Vec<SharedIndicator> {
    let mut by: BTreeMap<&Indicator, Vec<usize>> = BTreeMap::new();
    for (i, inc) in incidents.iter().enumerate() {
        for ind in inc.indicators.iter().filter(|x| cfg.counts(x)) {
            let v = by.entry(ind).or_default();
            // An incident lists each indicator once, but input may repeat incidents.
            if v.last() != Some(&i) {
                v.push(i);
            }
        }
    }
    by.into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .map(|(ind, mut v)| {
            v.sort_by(|&a, &b| {
                (incidents[a].start_ns, &incidents[a].id)
                    .cmp(&(incidents[b].start_ns, &incidents[b].id))
            });
            let mut wl = Workloads::default();
            for &i in &v {
                wl.add(&incidents[i].workload);
            }
            let mut workloads: Vec<WorkloadKey> =
                wl.keys.into_iter().map(Arc::unwrap_or_clone).collect();
            workloads.sort();
            SharedIndicator {
                indicator: ind.clone(),
                incident_ids: v.iter().map(|&i| incidents[i].id.clone()).collect(),
                workloads,
                first_ns: v.iter().map(|&i| incidents[i].start_ns).min().unwrap_or(0),
                last_ns: v.iter().map(|&i| incidents[i].end_ns).max().unwrap_or(0),
            }
        })
        .collect()
}
