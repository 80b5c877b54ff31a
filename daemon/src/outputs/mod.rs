//! Alert outputs: Falco-compatible JSON to stdout, a rotating file and an HTTP webhook.
//!
//! A dispatcher task subscribes to the daemon's alert broadcast, renders each alert's
//! JSON once and offers it to every output's bounded queue without waiting: a full
//! queue drops the alert for that output and counts it, so a slow or dead receiver never
//! holds up detection. Each output drains its queue on its own (stdout and file on a
//! thread, the webhook as a task with retries).

pub mod falco;
pub mod file;
pub mod webhook;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use hyper::body::Bytes;
use saker_event::{Alert, Severity};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{config::OutputsSection, fields::Fields};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("outputs.file: opening {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("outputs.webhook.url: {0}")]
    Webhook(String),
    #[error("outputs.min_priority: unknown priority {0:?}")]
    Priority(String),
    #[error("starting an output thread: {0}")]
    Thread(std::io::Error),
}

/// One output's counters.
#[derive(Debug)]
pub struct OutputCounters {
    pub name: &'static str,
    /// Alerts delivered (written, or accepted with a 2xx).
    pub sent: AtomicU64,
    /// Alerts dropped because the output's queue was full.
    pub dropped: AtomicU64,
    /// Alerts given up (write error, or every retry failed).
    pub failed: AtomicU64,
    /// Attempts retried.
    pub retries: AtomicU64,
}

impl OutputCounters {
    fn new(name: &'static str) -> Arc<OutputCounters> {
        Arc::new(OutputCounters {
            name,
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        })
    }
}

#[derive(Debug, Default)]
pub struct OutputStats {
    outs: Vec<Arc<OutputCounters>>,
    /// Alerts the dispatcher missed because it fell behind the broadcast.
    pub lagged: AtomicU64,
    /// Alerts below `min_priority`.
    pub filtered: AtomicU64,
}

impl OutputStats {
    pub fn outputs(&self) -> impl Iterator<Item = &OutputCounters> {
        self.outs.iter().map(|o| o.as_ref())
    }

    pub fn get(&self, name: &str) -> Option<&OutputCounters> {
        self.outputs().find(|o| o.name == name)
    }
}

type Line = Arc<str>;

/// The running outputs.
pub struct Outputs {
    pub stats: Arc<OutputStats>,
    stop: Option<oneshot::Sender<()>>,
    dispatcher: Option<tokio::task::JoinHandle<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Outputs {
    /// Starts the enabled outputs (none enabled: nothing runs). Must be called inside a
    /// tokio runtime. `hostname` is the node name written in each alert.
    pub fn start(
        cfg: &OutputsSection,
        hostname: String,
        fields: Arc<Fields>,
        alerts: broadcast::Receiver<Arc<Alert>>,
    ) -> Result<Outputs, OutputError> {
        let min = Severity::parse(&cfg.min_priority)
            .ok_or_else(|| OutputError::Priority(cfg.min_priority.clone()))?;
        let cap = cfg.queue.max(1);
        let mut sinks: Vec<(mpsc::Sender<Line>, Arc<OutputCounters>)> = Vec::new();
        let mut threads = Vec::new();
        let mut tasks = Vec::new();

        if cfg.stdout.enabled {
            let c = OutputCounters::new("stdout");
            let (tx, mut rx) = mpsc::channel::<Line>(cap);
            let cc = c.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("saker-out-stdout".into())
                    .spawn(move || {
                        use std::io::Write;
                        while let Some(line) = rx.blocking_recv() {
                            let mut out = std::io::stdout().lock();
                            let r = out
                                .write_all(line.as_bytes())
                                .and_then(|_| out.write_all(b"\n"))
                                .and_then(|_| out.flush());
                            match r {
                                Ok(()) => cc.sent.fetch_add(1, Relaxed),
                                Err(_) => cc.failed.fetch_add(1, Relaxed),
                            };
                        }
                    })
                    .map_err(OutputError::Thread)?,
            );
            sinks.push((tx, c));
        }

        if cfg.file.enabled {
            let f = &cfg.file;
            let mut file =
                file::RotatingFile::open(&f.path, f.max_size_mib.saturating_mul(1 << 20), f.keep)
                    .map_err(|source| OutputError::File {
                    path: f.path.display().to_string(),
                    source,
                })?;
            let c = OutputCounters::new("file");
            let (tx, mut rx) = mpsc::channel::<Line>(cap);
            let cc = c.clone();
            let path = f.path.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("saker-out-file".into())
                    .spawn(move || {
                        while let Some(line) = rx.blocking_recv() {
                            match file.write_line(line.as_bytes()) {
                                Ok(()) => {
                                    cc.sent.fetch_add(1, Relaxed);
                                }
                                Err(e) => {
                                    // Logged once per failure streak, not per alert.
                                    if cc.failed.fetch_add(1, Relaxed) == 0 {
                                        tracing::error!(path = %path.display(), "alert file output: {e}");
                                    }
                                }
                            }
                        }
                        let _ = file.flush();
                    })
                    .map_err(OutputError::Thread)?,
            );
            sinks.push((tx, c));
        }

        if cfg.webhook.enabled {
            let hook = webhook::Webhook::new(&cfg.webhook).map_err(OutputError::Webhook)?;
            let c = OutputCounters::new("webhook");
            let (tx, rx) = mpsc::channel::<Line>(cap);
            tasks.push(tokio::spawn(run_webhook(hook, rx, c.clone())));
            sinks.push((tx, c));
        }

        let stats = Arc::new(OutputStats {
            outs: sinks.iter().map(|(_, c)| c.clone()).collect(),
            ..Default::default()
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let dispatcher = (!sinks.is_empty()).then(|| {
            tokio::spawn(dispatch(
                alerts,
                sinks,
                min,
                hostname,
                fields,
                stats.clone(),
                stop_rx,
            ))
        });
        Ok(Outputs {
            stats,
            stop: Some(stop_tx),
            dispatcher,
            threads,
            tasks,
        })
    }

    /// Stops taking alerts and lets each output drain its queue, for at most `grace`.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.dispatcher.take() {
            let _ = d.await;
        }
        let threads = std::mem::take(&mut self.threads);
        let tasks = std::mem::take(&mut self.tasks);
        let wait = async move {
            for t in tasks {
                let _ = t.await;
            }
            let _ = tokio::task::spawn_blocking(move || {
                for t in threads {
                    let _ = t.join();
                }
            })
            .await;
        };
        if tokio::time::timeout(grace, wait).await.is_err() {
            tracing::warn!("outputs did not drain within {grace:?}");
        }
    }
}

async fn dispatch(
    mut alerts: broadcast::Receiver<Arc<Alert>>,
    sinks: Vec<(mpsc::Sender<Line>, Arc<OutputCounters>)>,
    min: Severity,
    hostname: String,
    fields: Arc<Fields>,
    stats: Arc<OutputStats>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let a = tokio::select! {
            r = alerts.recv() => r,
            _ = &mut stop => break,
        };
        let a = match a {
            Ok(a) => a,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                stats.lagged.fetch_add(n, Relaxed);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        // Severity orders most severe first.
        if a.severity > min {
            stats.filtered.fetch_add(1, Relaxed);
            continue;
        }
        let line: Line = falco::to_line(&a, &fields, &hostname).into();
        for (tx, c) in &sinks {
            if tx.try_send(line.clone()).is_err() {
                c.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

async fn run_webhook(hook: webhook::Webhook, mut rx: mpsc::Receiver<Line>, c: Arc<OutputCounters>) {
    while let Some(line) = rx.recv().await {
        let body = Bytes::from(line.as_bytes().to_vec());
        let mut n = 0u32;
        loop {
            match hook.attempt(body.clone()).await {
                Ok(()) => {
                    c.sent.fetch_add(1, Relaxed);
                    break;
                }
                Err(e) if n < hook.max_retries() => {
                    n += 1;
                    c.retries.fetch_add(1, Relaxed);
                    tracing::debug!(
                        "webhook attempt failed ({e}); retry {n} of {}",
                        hook.max_retries()
                    );
                    tokio::time::sleep(hook.backoff(n)).await;
                }
                Err(e) => {
                    c.failed.fetch_add(1, Relaxed);
                    tracing::warn!("webhook: alert given up after {} attempts: {e}", n + 1);
                    break;
                }
            }
        }
    }
}
