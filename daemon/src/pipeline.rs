//! The event path after decoding: process enrichment → container enrichment → exe hash /
//! IoC → rules → alerts. Synchronous and single-threaded by design (the rules engine is
//! cheap; a single owner of the process table needs no locks); the daemon runs it on its
//! own thread fed by the sensor's bounded queue.

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    sync::Arc,
};

use saker_enrich::{cache::Lookup, cgroup_ids::CgroupIdCache, ContainerdCache};
use saker_event::{event::Body, Alert, Enriched, Event};

use crate::{
    detect::{
        hash::{ExeHasher, IocList},
        Detector,
    },
    enrich::ProcEnricher,
};

/// Context events remembered per container for linking to alerts.
const CONTEXT_PER_CONTAINER: usize = 256;
/// How far back context events are linked to an alert.
const CONTEXT_WINDOW_NS: i64 = 60_000_000_000;

/// What processing one event produced.
pub struct Processed {
    pub event: Enriched,
    pub alerts: Vec<Alert>,
    /// Sequence numbers of earlier stored events that give the alerts context.
    pub context: Vec<u64>,
    /// Whether the event itself should be stored (container activity, alerting events).
    pub store_event: bool,
}

pub struct Pipeline {
    pub procs: ProcEnricher,
    cgroups: CgroupIdCache,
    meta: Option<ContainerdCache>,
    detector: Arc<Detector>,
    hasher: ExeHasher,
    ioc: IocList,
    seq: u64,
    /// Per container: (time, seq) of recent stored events.
    recent: HashMap<String, VecDeque<(i64, u64)>>,
}

impl Pipeline {
    pub fn new(
        procs: ProcEnricher,
        meta: Option<ContainerdCache>,
        detector: Arc<Detector>,
        ioc: IocList,
    ) -> Pipeline {
        Pipeline {
            procs,
            cgroups: CgroupIdCache::new(16_384),
            meta,
            detector,
            hasher: ExeHasher::new(8192),
            ioc,
            seq: 0,
            recent: HashMap::new(),
        }
    }

    pub fn detector(&self) -> &Arc<Detector> {
        &self.detector
    }

    pub fn hash_stats(&self) -> crate::detect::hash::HashStats {
        self.hasher.stats
    }

    /// Fills container metadata into an event (used again when pending metadata arrives).
    pub fn fill_container(&self, ev: &mut Enriched) {
        // The container ref (with its runtime) as resolved when the event was enriched.
        if let Some(Some(c)) = self.cgroups.cached(ev.event.process.cgroup_id) {
            self.apply_meta(&c, ev);
        }
    }

    /// Sets the container's metadata on `ev` from the cache, or flags it pending.
    fn apply_meta(&self, c: &saker_enrich::ContainerRef, ev: &mut Enriched) {
        let Some(meta) = &self.meta else { return };
        match meta.lookup(c) {
            Lookup::Ready(m) => {
                ev.ctx.container = Some((*m).clone());
                ev.ctx.meta_pending = false;
            }
            Lookup::Pending => ev.ctx.meta_pending = true,
            Lookup::NotFound => ev.ctx.meta_pending = false,
        }
    }

    /// Fork and exit events only update the process table unless a rule can match them
    /// (none of the default rules does): building their full context would be wasted work
    /// on the hottest event classes. Returns true when the event was fully handled.
    pub fn table_only(&mut self, event: &Event) -> bool {
        if !matches!(event.body, Body::Fork | Body::Exit(_)) {
            return false;
        }
        let evt = saker_rules::EvtType::from_name(event.type_name());
        if self.detector.rules().candidate_count(evt) > 0 {
            return false;
        }
        self.seq += 1;
        self.procs.table.apply(event);
        true
    }

    /// Enriches and detects in one step (no waiting for pending container metadata).
    pub fn process(&mut self, event: Event) -> Processed {
        let ev = self.enrich(event);
        self.detect(ev)
    }

    /// Enrichment only: process, container (metadata may still be pending: see
    /// `ctx.meta_pending`), exe hash and IoC.
    pub fn enrich(&mut self, event: Event) -> Enriched {
        // evt.num starts at 1 (Falco's `never_true` macro is `evt.num=0`).
        self.seq += 1;
        let seq = self.seq;
        let pid = event.process.pid;
        let ppid = event.process.ppid;
        let cgroup_id = event.process.cgroup_id;
        let mut ev = self.procs.enrich(event, seq);

        // Container: cached by cgroup id; /proc is read once per new cgroup.
        let cref = match self.cgroups.cached(cgroup_id) {
            Some(c) => c,
            None => self.cgroups.resolve_pid(pid, Some(cgroup_id)),
        };
        if let Some(c) = &cref {
            ev.ctx.container_id = Some(c.id.clone());
            self.apply_meta(c, &mut ev);
        }

        // Hash executables that matter: everything when an IoC list is loaded, otherwise
        // drifted and container binaries (blast radius by hash).
        if let Body::Exec(x) = &ev.event.body {
            let wanted = !self.ioc.is_empty() || x.exe_upper_layer || x.exe_memfd || cref.is_some();
            if wanted {
                let mut roots = vec![ppid];
                roots.extend(self.procs.table.live_in_mnt_ns(ev.event.process.mnt_ns, 4));
                if let Some(h) =
                    self.hasher
                        .hash_exec(pid, &roots, x.filename.as_bytes(), x.exe_ino)
                {
                    let ioc = self.ioc.lookup(&h).map(str::to_string);
                    if let Some(info) = self.procs.table.get_mut(pid) {
                        info.exe_sha256 = Some(h.clone());
                        info.exe_ioc = ioc.clone();
                    }
                    ev.ctx.proc.exe_sha256 = Some(h);
                    ev.ctx.proc.exe_ioc = ioc;
                }
            }
        }

        ev
    }

    /// Rules on an enriched event, and what to store with the alerts.
    pub fn detect(&mut self, ev: Enriched) -> Processed {
        let seq = ev.seq;
        let alerts = self.detector.evaluate(&ev);
        let interesting = !matches!(ev.event.body, Body::Fork | Body::Exit(_));
        let store_event = !alerts.is_empty() || (ev.ctx.container_id.is_some() && interesting);
        let mut context = Vec::new();
        if let Some(cid) = &ev.ctx.container_id {
            let q = self.recent.entry(cid.clone()).or_default();
            if !alerts.is_empty() {
                // The same container's stored events in the window: the ancestry's execs
                // and the file/network activity around the alert.
                let t = ev.event.time_ns;
                context = q
                    .iter()
                    .filter(|(et, _)| t - et <= CONTEXT_WINDOW_NS)
                    .map(|(_, s)| *s)
                    .collect();
            }
            if store_event {
                if q.len() >= CONTEXT_PER_CONTAINER {
                    q.pop_front();
                }
                q.push_back((ev.event.time_ns, seq));
            }
        }
        if matches!(ev.event.body, Body::Exit(_)) && self.recent.len() > 4096 {
            // Bound the map: drop containers with no recent activity.
            let now = ev.event.time_ns;
            self.recent
                .retain(|_, q| q.back().is_some_and(|(t, _)| now - t < CONTEXT_WINDOW_NS));
        }
        Processed {
            event: ev,
            alerts,
            context,
            store_event,
        }
    }
}

/// Paths of the rule files to load: those given, else the packaged default.
pub fn rule_files(given: &[PathBuf]) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    for p in [
        "/etc/saker/rules/saker_rules.yaml",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/saker_rules.yaml"),
    ] {
        let p = PathBuf::from(p);
        if p.exists() {
            return vec![p];
        }
    }
    Vec::new()
}
