//! Health alerts about saker itself: when events are being lost (kernel ring buffer full,
//! a userspace queue full), an operator must learn it from the same alert stream they
//! watch, not from a log line, because every lost event is a possible missed detection.
//!
//! A task polls the drop counters. The first increase raises one **"Sensor dropped
//! events"** alert (WARNING) naming the classes and counts; further drops in the same
//! episode raise nothing more (no alert storm on top of an event storm). Once no counter
//! has moved for [`HealthConfig::clear_after`], one **"Sensor drops stopped"** alert
//! (NOTICE) closes the episode with its totals. Both are stored through the normal store
//! writer and sent to live subscribers; the current state is in [`Health::state`].

use std::{
    collections::BTreeMap,
    sync::{atomic::Ordering::Relaxed, Arc, Mutex, Weak},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use saker_event::{
    event::{Body, Process},
    Alert, BString, Context, Enriched, Event, ProcContext, Severity,
};
use saker_store::WriterHandle;
use tokio::sync::broadcast;

use crate::{daemon::Counters, sensor::Sensor};

pub const RULE_DROPS: &str = "Sensor dropped events";
pub const RULE_CLEARED: &str = "Sensor drops stopped";
pub const POLICY: &str = "Sensor Health";

/// How often the counters are read and how long drops must stay away before the episode
/// is declared over.
#[derive(Clone, Copy, Debug)]
pub struct HealthConfig {
    pub interval: Duration,
    pub clear_after: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        // Clearing after 30 s of quiet keeps a storm that pauses for a few seconds one
        // episode instead of a raise/clear pair every pause.
        HealthConfig {
            interval: Duration::from_secs(2),
            clear_after: Duration::from_secs(30),
        }
    }
}

/// What the monitor currently believes (readable by the API and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HealthState {
    /// An episode is open: drops were seen and `clear_after` has not passed since.
    pub dropping: bool,
    /// Start of the open (or last) episode, ns since the epoch; 0 before the first.
    pub episode_start_ns: i64,
    /// Last time a counter moved, ns since the epoch; 0 before the first drop.
    pub last_drop_ns: i64,
    /// Events lost in the open (or last) episode, per counter.
    pub episode_drops: BTreeMap<String, u64>,
    /// Episodes raised and cleared since the daemon started.
    pub raised: u64,
    pub cleared: u64,
}

/// Shared handle to the monitor's state.
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<HealthState>,
}

impl Health {
    pub fn state(&self) -> HealthState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Cumulative drop counters by name: `kernel_ringbuf.<class>` per event class,
/// `decode_error`, `pipeline_queue_full` (sensor → pipeline), `meta_wait_overflow`
/// (events evaluated without waiting for container metadata because too many waited),
/// `store_queue_full.alert` / `.event` (pipeline → store writer).
pub type Sample = BTreeMap<String, u64>;

fn sample(sensor: &Mutex<Sensor>, counters: &Counters, writer: &WriterHandle) -> Option<Sample> {
    let drops = match sensor.lock() {
        Ok(s) => s.drops(),
        Err(_) => return None,
    };
    let drops = match drops {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("health: reading the sensor's drop counters: {e}");
            return None;
        }
    };
    let mut m = Sample::new();
    for (class, n) in drops.kernel {
        m.insert(format!("kernel_ringbuf.{class}"), n);
    }
    m.insert("decode_error".into(), drops.decode_errors);
    m.insert("pipeline_queue_full".into(), drops.queue_full);
    m.insert(
        "meta_wait_overflow".into(),
        counters.pending_overflow.load(Relaxed),
    );
    let ws = writer.stats();
    m.insert("store_queue_full.alert".into(), ws.dropped_alerts);
    m.insert("store_queue_full.event".into(), ws.dropped_events);
    Some(m)
}

/// Which health alert a sample produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Raised,
    Cleared,
}

/// The episode state machine, separate from the I/O so it can be driven directly.
pub struct Monitor {
    cfg: HealthConfig,
    prev: Option<Sample>,
    last_drop: Option<Instant>,
    pub state: HealthState,
}

impl Monitor {
    pub fn new(cfg: HealthConfig) -> Monitor {
        Monitor {
            cfg,
            prev: None,
            last_drop: None,
            state: HealthState::default(),
        }
    }

    /// Feeds one sample taken at `now` (`now_ns`: the same instant as wall clock).
    pub fn observe(&mut self, now: Instant, now_ns: i64, s: Sample) -> Option<Transition> {
        // The first sample is the baseline: drops before the monitor started (a restart
        // on a busy node) still count, so compare against zero.
        let prev = self.prev.take().unwrap_or_default();
        let delta: BTreeMap<String, u64> = s
            .iter()
            .filter_map(|(k, v)| {
                let d = v.saturating_sub(prev.get(k).copied().unwrap_or(0));
                (d > 0).then(|| (k.clone(), d))
            })
            .collect();
        self.prev = Some(s);
        if !delta.is_empty() {
            self.last_drop = Some(now);
            self.state.last_drop_ns = now_ns;
            let raised = !self.state.dropping;
            if raised {
                self.state.dropping = true;
                self.state.episode_start_ns = now_ns;
                self.state.episode_drops.clear();
                self.state.raised += 1;
            }
            for (k, d) in delta {
                *self.state.episode_drops.entry(k).or_default() += d;
            }
            return raised.then_some(Transition::Raised);
        }
        if self.state.dropping
            && self
                .last_drop
                .is_some_and(|t| now.duration_since(t) >= self.cfg.clear_after)
        {
            self.state.dropping = false;
            self.state.cleared += 1;
            return Some(Transition::Cleared);
        }
        None
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn counts_text(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The health alert for a transition. Health alerts have no triggering event: the event
/// they carry is a placeholder about the daemon's own process (pid, comm, exe), so every
/// consumer that expects `alert.event` keeps working and the alert is attributed to saker.
pub fn alert(t: Transition, st: &HealthState, node: &str, cluster: &str, time_ns: i64) -> Alert {
    let total: u64 = st.episode_drops.values().sum();
    let (rule, severity, output) = match t {
        Transition::Raised => (
            RULE_DROPS,
            Severity::Warning,
            format!(
                "saker is losing events; detections may be missed (lost={total} {})",
                counts_text(&st.episode_drops)
            ),
        ),
        Transition::Cleared => (
            RULE_CLEARED,
            Severity::Notice,
            format!(
                "saker lost no events for a while; the drop episode is over (lost={total} \
                 duration_s={} {})",
                (st.last_drop_ns - st.episode_start_ns).max(0) / 1_000_000_000,
                counts_text(&st.episode_drops)
            ),
        ),
    };
    let mut output_fields: BTreeMap<String, String> = st
        .episode_drops
        .iter()
        .map(|(k, v)| (format!("saker.drops.{k}"), v.to_string()))
        .collect();
    output_fields.insert("saker.drops.total".into(), total.to_string());
    let pid = std::process::id();
    let comm = std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "sakerd".into());
    let exe = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let event = Enriched {
        seq: 0,
        event: Event {
            time_ns,
            ktime_ns: 0,
            process: Process {
                tid: pid,
                pid,
                comm: BString::from(comm.as_str()),
                ..Process::default()
            },
            body: Body::Fork,
        },
        ctx: Context {
            proc: ProcContext {
                exe: BString::from(exe.as_str()),
                ..ProcContext::default()
            },
            node: node.to_string(),
            cluster: cluster.to_string(),
            ..Context::default()
        },
    };
    let kind = match t {
        Transition::Raised => "drops",
        Transition::Cleared => "drops-cleared",
    };
    Alert {
        id: format!("{node}-health-{kind}-{time_ns}"),
        time_ns,
        rule: rule.to_string(),
        policy: Some(POLICY.to_string()),
        severity,
        output,
        output_fields,
        tags: vec!["saker".into(), "health".into()],
        mitre_tactics: Vec::new(),
        mitre_techniques: Vec::new(),
        prevented: false,
        event,
    }
}

/// Everything the polling task reads and writes.
pub(crate) struct Sources {
    /// Weak: the task must not keep the sensor attached after the daemon is gone.
    pub sensor: Weak<Mutex<Sensor>>,
    pub counters: Arc<Counters>,
    pub writer: WriterHandle,
    pub alerts_tx: broadcast::Sender<Arc<Alert>>,
    pub node: String,
    pub cluster: String,
}

/// Starts the polling task on the current tokio runtime.
pub(crate) fn spawn(
    cfg: HealthConfig,
    src: Sources,
    health: Arc<Health>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut monitor = Monitor::new(cfg);
        // interval() panics on zero.
        let mut tick = tokio::time::interval(cfg.interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(sensor) = src.sensor.upgrade() else {
                return;
            };
            let s = sample(&sensor, &src.counters, &src.writer);
            drop(sensor);
            let Some(s) = s else { continue };
            let now_ns = now_ns();
            let t = monitor.observe(Instant::now(), now_ns, s);
            *health.state.lock().unwrap_or_else(|e| e.into_inner()) = monitor.state.clone();
            let Some(t) = t else { continue };
            let a = alert(t, &monitor.state, &src.node, &src.cluster, now_ns);
            match t {
                Transition::Raised => tracing::warn!("{}: {}", a.rule, a.output),
                Transition::Cleared => tracing::info!("{}: {}", a.rule, a.output),
            }
            // Counted like rule alerts, so `saker_alerts_total` shows drop episodes too.
            src.counters.metrics.on_alert(&a);
            let _ = src.alerts_tx.send(Arc::new(a.clone()));
            if !src.writer.send(a) {
                tracing::warn!("health: the store's queue is full; the health alert is not stored");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pairs: &[(&str, u64)]) -> Sample {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn one_alert_per_episode_and_a_clear_after_quiet() {
        let cfg = HealthConfig {
            interval: Duration::from_secs(1),
            clear_after: Duration::from_secs(5),
        };
        let mut m = Monitor::new(cfg);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let quiet = s(&[("kernel_ringbuf.exec", 0), ("pipeline_queue_full", 0)]);
        assert_eq!(m.observe(at(0), 0, quiet), None);
        let d1 = s(&[("kernel_ringbuf.exec", 10), ("pipeline_queue_full", 0)]);
        assert_eq!(m.observe(at(1), 1, d1), Some(Transition::Raised));
        let d2 = s(&[("kernel_ringbuf.exec", 15), ("pipeline_queue_full", 7)]);
        assert_eq!(m.observe(at(2), 2, d2.clone()), None, "same episode");
        assert_eq!(m.state.episode_drops["kernel_ringbuf.exec"], 15);
        assert_eq!(m.state.episode_drops["pipeline_queue_full"], 7);
        assert_eq!(m.observe(at(6), 6, d2.clone()), None, "4 s of quiet < 5 s");
        assert_eq!(m.observe(at(7), 7, d2.clone()), Some(Transition::Cleared));
        assert!(!m.state.dropping);
        assert_eq!(m.observe(at(8), 8, d2.clone()), None);
        // A new episode counts only its own drops.
        let d3 = s(&[("kernel_ringbuf.exec", 16), ("pipeline_queue_full", 7)]);
        assert_eq!(m.observe(at(9), 9, d3), Some(Transition::Raised));
        assert_eq!(m.state.episode_drops, s(&[("kernel_ringbuf.exec", 1)]));
        assert_eq!((m.state.raised, m.state.cleared), (2, 1));
    }

    #[test]
    fn drops_before_start_open_an_episode() {
        let mut m = Monitor::new(HealthConfig::default());
        let t = m.observe(Instant::now(), 1, s(&[("store_queue_full.event", 3)]));
        assert_eq!(t, Some(Transition::Raised));
    }

    #[test]
    fn alert_names_classes_and_counts() {
        let st = HealthState {
            dropping: true,
            episode_drops: s(&[("kernel_ringbuf.file", 40), ("pipeline_queue_full", 2)]),
            ..Default::default()
        };
        let a = alert(Transition::Raised, &st, "n1", "c", 5);
        assert_eq!(a.rule, RULE_DROPS);
        assert_eq!(a.severity, Severity::Warning);
        assert!(a.output.contains("lost=42"), "{}", a.output);
        assert!(a.output.contains("kernel_ringbuf.file=40"), "{}", a.output);
        assert_eq!(a.output_fields["saker.drops.pipeline_queue_full"], "2");
        let c = alert(Transition::Cleared, &st, "n1", "c", 6);
        assert_eq!(c.rule, RULE_CLEARED);
        assert_ne!(a.id, c.id);
    }
}
