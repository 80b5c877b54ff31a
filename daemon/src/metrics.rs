//! Prometheus metrics: counters the pipeline updates ([`PipelineMetrics`], kept in
//! `daemon::Counters`) and a text-format endpoint (`GET /metrics`) that renders them with
//! the sensor's, store's, outputs' and metadata cache's own counters at scrape time.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Duration,
};

use saker_event::{event::Body, Alert, Event, Severity};
use tokio::sync::oneshot;

use crate::{daemon::Daemon, outputs::OutputStats};

/// Event classes as the sensor names them (`saker_common::class::NAMES`).
const CLASSES: [&str; 4] = ["exec", "lifecycle", "file", "net"];

const SEVERITIES: [Severity; 8] = [
    Severity::Emergency,
    Severity::Alert,
    Severity::Critical,
    Severity::Error,
    Severity::Warning,
    Severity::Notice,
    Severity::Informational,
    Severity::Debug,
];

/// A fixed-bucket histogram (upper bounds in seconds, cumulative at render time).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    sum_ns: AtomicU64,
    count: AtomicU64,
}

/// Pipeline latency buckets: 100 µs .. 5 s (events may wait up to 2 s for metadata).
const LATENCY_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Model answer buckets: 10 ms .. 120 s (CPU inference).
const MODEL_BOUNDS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // Only the first bucket that fits is counted; render() accumulates.
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut acc = 0;
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            acc += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {acc}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// The assistant call a model latency observation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelOp {
    Ask,
    Explain,
}

/// What the pipeline and API record as they go (everything else is read at scrape time).
#[derive(Debug)]
pub struct PipelineMetrics {
    events: [AtomicU64; 4],
    severities: [AtomicU64; 8],
    /// Rule name → alerts (a mutex: alerts are rare next to events).
    rules: Mutex<BTreeMap<String, u64>>,
    /// Event timestamp (kernel) → evaluated and handed to the store.
    pub latency: Histogram,
    ask: Histogram,
    explain: Histogram,
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        PipelineMetrics {
            events: Default::default(),
            severities: Default::default(),
            rules: Mutex::new(BTreeMap::new()),
            latency: Histogram::new(LATENCY_BOUNDS),
            ask: Histogram::new(MODEL_BOUNDS),
            explain: Histogram::new(MODEL_BOUNDS),
        }
    }
}

fn class_of(ev: &Event) -> usize {
    match ev.body {
        Body::Exec(_) => 0,
        Body::Fork | Body::Exit(_) => 1,
        Body::File(_) => 2,
        Body::Connect(_) => 3,
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl PipelineMetrics {
    /// An event received from the sensor.
    pub fn on_event(&self, ev: &Event) {
        self.events[class_of(ev)].fetch_add(1, Relaxed);
    }

    /// An event evaluated and handed to the store: latency since its kernel timestamp.
    pub fn on_finished(&self, ev: &Event) {
        let ns = now_ns().saturating_sub(ev.time_ns).max(0);
        self.latency
            .observe(Duration::from_nanos(u64::try_from(ns).unwrap_or(0)));
    }

    pub fn on_alert(&self, a: &Alert) {
        self.severities[a.severity as usize].fetch_add(1, Relaxed);
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        match rules.get_mut(&a.rule) {
            Some(n) => *n += 1,
            None => {
                rules.insert(a.rule.clone(), 1);
            }
        }
    }

    pub fn on_model(&self, op: ModelOp, d: Duration) {
        match op {
            ModelOp::Ask => self.ask.observe(d),
            ModelOp::Explain => self.explain.observe(d),
        }
    }

    pub fn events(&self, class: &str) -> u64 {
        CLASSES
            .iter()
            .position(|c| *c == class)
            .map_or(0, |i| self.events[i].load(Relaxed))
    }
}

/// A Prometheus label value: `\`, `"` and newlines escaped (rule names come from files).
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Bytes of the store: the SQLite file and its WAL.
pub fn store_bytes(path: &std::path::Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), wal.into()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Renders every metric in Prometheus' text format (0.0.4).
pub fn render(d: &Daemon, outputs: Option<&OutputStats>) -> String {
    let mut o = String::with_capacity(8192);
    let m = &d.counters.metrics;

    header(
        &mut o,
        "saker_events_total",
        "counter",
        "Events received from the sensor, by class.",
    );
    for (i, c) in CLASSES.iter().enumerate() {
        let _ = writeln!(
            o,
            "saker_events_total{{class=\"{c}\"}} {}",
            m.events[i].load(Relaxed)
        );
    }

    header(
        &mut o,
        "saker_drops_total",
        "counter",
        "Events or alerts lost, by reason (and class, kind or output).",
    );
    match d.drops() {
        Ok(s) => {
            for (class, n) in &s.kernel {
                let _ = writeln!(
                    o,
                    "saker_drops_total{{reason=\"ringbuf_full\",class=\"{}\"}} {n}",
                    label(class)
                );
            }
            let _ = writeln!(
                o,
                "saker_drops_total{{reason=\"decode_error\"}} {}",
                s.decode_errors
            );
            let _ = writeln!(
                o,
                "saker_drops_total{{reason=\"pipeline_full\"}} {}",
                s.queue_full
            );
        }
        Err(e) => tracing::warn!("metrics: sensor drop counters: {e:#}"),
    }
    let ws = d.store.stats();
    let _ = writeln!(
        o,
        "saker_drops_total{{reason=\"store_queue_full\",kind=\"alert\"}} {}",
        ws.dropped_alerts
    );
    let _ = writeln!(
        o,
        "saker_drops_total{{reason=\"store_queue_full\",kind=\"event\"}} {}",
        ws.dropped_events
    );
    let _ = writeln!(
        o,
        "saker_drops_total{{reason=\"store_write_failed\"}} {}",
        ws.failed_rows
    );
    if let Some(st) = outputs {
        for out in st.outputs() {
            let _ = writeln!(
                o,
                "saker_drops_total{{reason=\"output_queue_full\",output=\"{}\"}} {}",
                out.name,
                out.dropped.load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "saker_drops_total{{reason=\"output_lagged\"}} {}",
            st.lagged.load(Relaxed)
        );
    }

    header(
        &mut o,
        "saker_alerts_total",
        "counter",
        "Alerts raised, by severity (Falco priority).",
    );
    for (i, s) in SEVERITIES.iter().enumerate() {
        let _ = writeln!(
            o,
            "saker_alerts_total{{severity=\"{}\"}} {}",
            crate::outputs::falco::priority(*s),
            m.severities[i].load(Relaxed)
        );
    }

    header(
        &mut o,
        "saker_rule_matches_total",
        "counter",
        "Alerts raised, by rule.",
    );
    for (rule, n) in m.rules.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(
            o,
            "saker_rule_matches_total{{rule=\"{}\"}} {n}",
            label(rule)
        );
    }

    header(
        &mut o,
        "saker_pipeline_latency_seconds",
        "histogram",
        "From an event's kernel timestamp to its evaluation and hand-off to the store \
         (includes any wait for container metadata).",
    );
    m.latency
        .render(&mut o, "saker_pipeline_latency_seconds", "");

    header(
        &mut o,
        "saker_model_latency_seconds",
        "histogram",
        "Duration of assistant answers (Ask, Explain), model narration included.",
    );
    m.ask
        .render(&mut o, "saker_model_latency_seconds", "op=\"ask\"");
    m.explain
        .render(&mut o, "saker_model_latency_seconds", "op=\"explain\"");

    header(
        &mut o,
        "saker_store_bytes",
        "gauge",
        "Size of the SQLite store (database file + WAL).",
    );
    let _ = writeln!(o, "saker_store_bytes {}", store_bytes(d.store.path()));

    header(
        &mut o,
        "saker_store_rows_committed_total",
        "counter",
        "Rows committed to the store, by kind.",
    );
    let _ = writeln!(
        o,
        "saker_store_rows_committed_total{{kind=\"alert\"}} {}",
        ws.alerts_committed
    );
    let _ = writeln!(
        o,
        "saker_store_rows_committed_total{{kind=\"event\"}} {}",
        ws.events_committed
    );

    header(
        &mut o,
        "saker_metadata_lookup_failures_total",
        "counter",
        "Failed container metadata fetches from the runtime (containerd).",
    );
    let cache = d.meta.as_ref().map(|c| c.stats()).unwrap_or_default();
    let _ = writeln!(o, "saker_metadata_lookup_failures_total {}", cache.failures);
    header(
        &mut o,
        "saker_metadata_lookups_total",
        "counter",
        "Container metadata fetches, by result.",
    );
    let _ = writeln!(
        o,
        "saker_metadata_lookups_total{{result=\"resolved\"}} {}",
        cache.resolved
    );
    let _ = writeln!(
        o,
        "saker_metadata_lookups_total{{result=\"not_found\"}} {}",
        cache.not_found
    );
    let _ = writeln!(
        o,
        "saker_metadata_lookups_total{{result=\"failed\"}} {}",
        cache.failures
    );

    let c = &d.counters;
    header(
        &mut o,
        "saker_metadata_wait_timeouts_total",
        "counter",
        "Events evaluated without container metadata after waiting for it.",
    );
    let _ = writeln!(
        o,
        "saker_metadata_wait_timeouts_total {}",
        c.meta_timeouts.load(Relaxed)
    );

    if let Some(st) = outputs {
        type Get = fn(&crate::outputs::OutputCounters) -> &AtomicU64;
        let per_output: [(&str, &str, Get); 3] = [
            (
                "saker_output_sent_total",
                "Alerts delivered, by output.",
                |c| &c.sent,
            ),
            (
                "saker_output_retries_total",
                "Delivery attempts retried, by output.",
                |c| &c.retries,
            ),
            (
                "saker_output_failures_total",
                "Alerts given up after all retries (or a write error), by output.",
                |c| &c.failed,
            ),
        ];
        for (name, help, get) in per_output {
            header(&mut o, name, "counter", help);
            for out in st.outputs() {
                let _ = writeln!(
                    o,
                    "{name}{{output=\"{}\"}} {}",
                    out.name,
                    get(out).load(Relaxed)
                );
            }
        }
    }

    header(
        &mut o,
        "saker_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    );
    let _ = writeln!(
        o,
        "saker_uptime_seconds {}",
        d.started.elapsed().as_secs_f64()
    );
    o
}

/// The running metrics endpoint; dropping it (or [`MetricsServer::shutdown`]) stops it.
pub struct MetricsServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0: any) and serves `GET /metrics` from `daemon`.
    pub async fn start(
        addr: SocketAddr,
        daemon: Arc<Daemon>,
        outputs: Option<Arc<OutputStats>>,
    ) -> std::io::Result<MetricsServer> {
        use axum::{http::header::CONTENT_TYPE, routing::get, Router};
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let d = daemon.clone();
                let outs = outputs.clone();
                async move {
                    // Drop counters take the sensor lock and stat files: off the reactor.
                    let body = tokio::task::spawn_blocking(move || render(&d, outs.as_deref()))
                        .await
                        .unwrap_or_default();
                    (
                        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        body,
                    )
                }
            }),
        );
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let r = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!("metrics endpoint: {e}");
            }
        });
        tracing::info!(%addr, "metrics endpoint at http://{addr}/metrics");
        Ok(MetricsServer {
            addr,
            stop: Some(tx),
            task: Some(task),
        })
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
