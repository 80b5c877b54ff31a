//! The running daemon: sensor → pipeline (own thread) → store, with rule reloads, pending
//! container metadata and counters. The API layer serves from [`Daemon`].

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use saker_enrich::{CacheConfig, ContainerdCache, ContainerdClient, ContainerdConfig};
use saker_event::Enriched;
use saker_store::{Store, StoreConfig, WriterHandle};
use tokio::sync::{broadcast, oneshot};

use crate::{
    detect::{hash::IocList, Detector},
    enrich::ProcEnricher,
    fields::Fields,
    pipeline::{Pipeline, Processed},
    sensor::{Drops, EventStream, Sensor, SensorConfig},
};

/// Everything the daemon needs to start.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub node: String,
    pub cluster: String,
    /// Rule files, in load order.
    pub rules: Vec<PathBuf>,
    /// IoC list (SHA-256 per line).
    pub ioc: Option<PathBuf>,
    pub store_path: PathBuf,
    pub store: StoreConfig,
    pub sensor: SensorConfig,
    /// containerd's API for container metadata (`None`: container ids only).
    pub containerd: Option<ContainerdConfig>,
    /// How long an event waits for its container's metadata before it is evaluated and
    /// stored without it (flagged `meta_pending`).
    pub meta_wait: Duration,
    /// Drop the capabilities only loading needed once the sensor is attached
    /// (`crate::privilege`). sakerd sets it; off by default because a test process that
    /// embeds the daemon loads more sensors afterwards.
    pub drop_privileges: bool,
    /// The "Sensor dropped events" monitor's polling and clearing periods.
    pub health: crate::health::HealthConfig,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            node: hostname(),
            cluster: String::new(),
            rules: Vec::new(),
            ioc: None,
            store_path: PathBuf::from("/var/lib/saker/saker.db"),
            // Commit within 5 ms: an alert should be queryable almost at once; under load
            // batches still fill to batch_max before the timer fires.
            store: StoreConfig {
                flush_interval: Duration::from_millis(5),
                ..StoreConfig::default()
            },
            sensor: SensorConfig::default(),
            containerd: Some(ContainerdConfig::default()),
            meta_wait: Duration::from_secs(2),
            drop_privileges: false,
            health: crate::health::HealthConfig::default(),
        }
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Pipeline counters (readable at any time).
#[derive(Debug, Default)]
pub struct Counters {
    pub events: AtomicU64,
    pub alerts: AtomicU64,
    pub stored_events: AtomicU64,
    pub meta_waited: AtomicU64,
    pub meta_timeouts: AtomicU64,
    pub pending_overflow: AtomicU64,
    /// Per-class events, per-rule and per-severity alerts, latency (Prometheus).
    pub metrics: crate::metrics::PipelineMetrics,
}

pub struct Daemon {
    pub config: DaemonConfig,
    pub store: Store,
    pub detector: Arc<Detector>,
    pub fields: Arc<Fields>,
    pub counters: Arc<Counters>,
    /// New alerts as they are produced (API subscribers).
    pub alerts_tx: broadcast::Sender<Arc<saker_event::Alert>>,
    /// Container metadata cache (its lookup counters feed the metrics).
    pub meta: Option<ContainerdCache>,
    /// Drop-episode state ("Sensor dropped events" raised / cleared).
    pub health: Arc<crate::health::Health>,
    health_task: tokio::task::JoinHandle<()>,
    sensor: Arc<Mutex<Sensor>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub started: Instant,
}

impl Daemon {
    /// Loads the sensor, rules and store and starts the pipeline thread. Must be called
    /// inside a tokio runtime (the metadata cache spawns on it).
    pub fn start(config: DaemonConfig) -> anyhow::Result<Daemon> {
        let fields = Arc::new(Fields::new());
        let rules = crate::pipeline::rule_files(&config.rules);
        anyhow::ensure!(
            !rules.is_empty(),
            "no rule files (pass --rules or install /etc/saker/rules)"
        );
        let detector = Arc::new(Detector::load(fields.clone(), rules).context("loading rules")?);
        let ioc = match &config.ioc {
            Some(p) => IocList::load(p).context("loading the IoC list")?,
            None => IocList::default(),
        };
        let mut store_cfg = config.store.clone();
        store_cfg.fields = Some(Arc::new(fields.registry.clone()));
        if let Some(dir) = config.store_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let store = Store::open(&config.store_path, store_cfg)
            .with_context(|| format!("opening the store {}", config.store_path.display()))?;
        let meta = match &config.containerd {
            Some(c) => Some(ContainerdCache::new(
                ContainerdClient::new(c.clone()),
                CacheConfig::default(),
            )?),
            None => None,
        };
        let mut sensor = Sensor::load(&config.sensor).context("loading the eBPF sensor")?;
        let stream = sensor.events()?;
        if config.drop_privileges {
            crate::privilege::drop_after_load();
        }
        let sensor = Arc::new(Mutex::new(sensor));
        let procs = ProcEnricher::new(config.node.clone(), config.cluster.clone());
        let pipeline = Pipeline::new(procs, meta.clone(), detector.clone(), ioc);
        let counters = Arc::new(Counters::default());
        let (alerts_tx, _) = broadcast::channel(4096);
        let (stop_tx, stop_rx) = oneshot::channel();
        let worker = Worker {
            pipeline,
            writer: store.writer(),
            counters: counters.clone(),
            alerts_tx: alerts_tx.clone(),
            meta_wait: config.meta_wait,
            resolved: meta.as_ref().map(|m| m.subscribe()),
            pending: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("saker-pipeline".into())
            .spawn(move || worker.run(stream, stop_rx))?;
        let health = Arc::new(crate::health::Health::default());
        let health_task = crate::health::spawn(
            config.health,
            crate::health::Sources {
                sensor: Arc::downgrade(&sensor),
                counters: counters.clone(),
                writer: store.writer(),
                alerts_tx: alerts_tx.clone(),
                node: config.node.clone(),
                cluster: config.cluster.clone(),
            },
            health.clone(),
        );
        Ok(Daemon {
            config,
            store,
            detector,
            fields,
            counters,
            alerts_tx,
            meta,
            health,
            health_task,
            sensor,
            stop: Some(stop_tx),
            thread: Some(thread),
            started: Instant::now(),
        })
    }

    pub fn drops(&self) -> anyhow::Result<Drops> {
        Ok(self
            .sensor
            .lock()
            .map_err(|_| anyhow::anyhow!("sensor lock poisoned"))?
            .drops()?)
    }

    pub fn attach_report(&self) -> crate::sensor::AttachReport {
        self.sensor
            .lock()
            .map(|s| s.report().clone())
            .unwrap_or_default()
    }

    /// Reloads rules; on failure the previous rules stay active.
    pub fn reload_rules(&self) -> Result<Arc<saker_rules::LoadReport>, crate::detect::DetectError> {
        self.detector.reload()
    }

    /// Waits until everything processed so far is committed to the store.
    pub fn flush(&self) -> Result<(), saker_store::StoreError> {
        self.store.writer().flush()
    }

    /// Stops the pipeline and waits for it (everything queued is committed).
    pub fn shutdown(mut self) {
        self.health_task.abort();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.store.writer().flush();
    }
}

/// Most events that may wait for metadata at once (beyond: evaluated without it).
const MAX_PENDING: usize = 20_000;

struct Worker {
    pipeline: Pipeline,
    writer: WriterHandle,
    counters: Arc<Counters>,
    alerts_tx: broadcast::Sender<Arc<saker_event::Alert>>,
    meta_wait: Duration,
    resolved: Option<broadcast::Receiver<saker_enrich::Resolved>>,
    pending: Vec<(Instant, Enriched)>,
}

impl Worker {
    fn run(mut self, mut stream: EventStream, mut stop: oneshot::Receiver<()>) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("pipeline runtime: {e}");
                return;
            }
        };
        rt.block_on(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    ev = stream.recv() => {
                        let Some(ev) = ev else { break };
                        self.on_event(ev);
                        // Drain what is already queued without re-entering select.
                        for _ in 0..1024 {
                            match stream.try_recv() { Some(ev) => self.on_event(ev), None => break }
                        }
                    }
                    r = recv_resolved(&mut self.resolved) => {
                        // An empty id (the subscription lagged) re-checks everything.
                        if let Some(id) = r {
                            self.release(|e| id.is_empty() || e.ctx.container_id.as_deref() == Some(&id));
                        }
                    }
                    _ = tick.tick() => {
                        let wait = self.meta_wait;
                        self.release_expired(Instant::now(), wait);
                    }
                    _ = &mut stop => break,
                }
            }
            // Evaluate whatever still waits before exiting.
            let rest = std::mem::take(&mut self.pending);
            for (_, ev) in rest {
                self.finish(ev);
            }
        });
    }

    fn on_event(&mut self, ev: saker_event::Event) {
        self.counters.events.fetch_add(1, Relaxed);
        self.counters.metrics.on_event(&ev);
        if self.pipeline.table_only(&ev) {
            return;
        }
        let ev = self.pipeline.enrich(ev);
        if ev.ctx.meta_pending && self.pending.len() < MAX_PENDING {
            self.counters.meta_waited.fetch_add(1, Relaxed);
            self.pending.push((Instant::now(), ev));
        } else {
            if ev.ctx.meta_pending {
                self.counters.pending_overflow.fetch_add(1, Relaxed);
            }
            self.finish(ev);
        }
    }

    /// Evaluates and stores the pending events for which `ready` holds, after filling
    /// their metadata (in arrival order).
    fn release(&mut self, ready: impl Fn(&Enriched) -> bool) {
        if self.pending.is_empty() {
            return;
        }
        let all = std::mem::take(&mut self.pending);
        for (t, mut ev) in all {
            if ready(&ev) {
                self.pipeline.fill_container(&mut ev);
            }
            if !ev.ctx.meta_pending {
                self.finish(ev);
            } else {
                self.pending.push((t, ev));
            }
        }
    }

    fn release_expired(&mut self, now: Instant, wait: Duration) {
        if self.pending.is_empty() {
            return;
        }
        let all = std::mem::take(&mut self.pending);
        for (t, mut ev) in all {
            self.pipeline.fill_container(&mut ev);
            if !ev.ctx.meta_pending {
                self.finish(ev);
            } else if now.duration_since(t) >= wait {
                self.counters.meta_timeouts.fetch_add(1, Relaxed);
                self.finish(ev);
            } else {
                self.pending.push((t, ev));
            }
        }
    }

    fn finish(&mut self, ev: Enriched) {
        let Processed {
            event,
            alerts,
            context,
            store_event,
        } = self.pipeline.detect(ev);
        self.counters.metrics.on_finished(&event.event);
        if store_event {
            self.counters.stored_events.fetch_add(1, Relaxed);
            self.writer.send_event(event);
        }
        for a in alerts {
            self.counters.alerts.fetch_add(1, Relaxed);
            self.counters.metrics.on_alert(&a);
            let _ = self.alerts_tx.send(Arc::new(a.clone()));
            self.writer.send_with_context(a, context.clone());
        }
    }
}

async fn recv_resolved(
    rx: &mut Option<broadcast::Receiver<saker_enrich::Resolved>>,
) -> Option<String> {
    match rx {
        Some(r) => match r.recv().await {
            Ok((id, _)) => Some(id),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(String::new()),
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}
