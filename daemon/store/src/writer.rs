//! The writer thread: the only connection that writes.
//!
//! rusqlite is synchronous and SQLite has one writer at a time, so one OS thread owns the
//! write connection. The pipeline hands it alerts and events through a bounded channel
//! with `try_send`: when the channel is full the item is dropped and counted, and the
//! pipeline never waits on the disk. Items are committed in batches (up to `batch_max`
//! rows, or `flush_interval` after the first row of the batch), one transaction each:
//! one WAL append (and, with `synchronous=FULL`, one fsync) per batch instead of per row.
//!
//! A failed batch (SQLITE_FULL, I/O error) is rolled back, counted and logged; the
//! thread goes on with the next batch, which succeeds once space is back.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};
use saker_event::{Alert, Enriched};

use crate::columns::AlertColumns;
use crate::error::{is_disk_full, StoreError};
use crate::retention::{self, Reserve, RetentionPolicy, RetentionReport};

pub(crate) struct AlertItem {
    alert: Alert,
    context: Vec<u64>,
}

pub(crate) enum Msg {
    Alert(Box<AlertItem>),
    Event(Box<Enriched>),
    Flush(SyncSender<Result<(), StoreError>>),
    Retention(SyncSender<Result<RetentionReport, StoreError>>),
    Shutdown,
}

/// Counters shared by the writer thread and every handle.
#[derive(Default)]
pub(crate) struct Counters {
    alerts_committed: AtomicU64,
    events_committed: AtomicU64,
    links_committed: AtomicU64,
    duplicate_alerts: AtomicU64,
    dropped_alerts: AtomicU64,
    dropped_events: AtomicU64,
    batches: AtomicU64,
    write_errors: AtomicU64,
    failed_rows: AtomicU64,
    retention_runs: AtomicU64,
    retention_errors: AtomicU64,
    retention_alerts_deleted: AtomicU64,
    retention_events_deleted: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    fn set_last_error(&self, msg: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
    }
}

/// A snapshot of the writer's counters (all since the store was opened).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub alerts_committed: u64,
    pub events_committed: u64,
    pub links_committed: u64,
    /// Alerts whose id was already stored (the first one is kept).
    pub duplicate_alerts: u64,
    /// Not accepted: the channel was full or the writer gone.
    pub dropped_alerts: u64,
    pub dropped_events: u64,
    /// Committed transactions.
    pub batches: u64,
    /// Failed transactions (each rolled back) and rows that could not be stored.
    pub write_errors: u64,
    pub failed_rows: u64,
    pub retention_runs: u64,
    pub retention_errors: u64,
    pub retention_alerts_deleted: u64,
    pub retention_events_deleted: u64,
    pub last_error: Option<String>,
}

/// Sends alerts and events to the writer thread. Cheap to clone; `send*` never block.
#[derive(Clone)]
pub struct WriterHandle {
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
    retention: Arc<Mutex<RetentionPolicy>>,
}

impl WriterHandle {
    /// Queues an alert; false (and counted as dropped) when the queue is full.
    pub fn send(&self, alert: Alert) -> bool {
        self.send_with_context(alert, Vec::new())
    }

    /// Queues an alert with the sequence numbers of its context events (the ancestry's
    /// exec events, the container's file and network events around it). The events
    /// themselves come through [`WriterHandle::send_event`], before or after.
    pub fn send_with_context(&self, alert: Alert, context: Vec<u64>) -> bool {
        let msg = Msg::Alert(Box::new(AlertItem { alert, context }));
        self.offer(msg, &self.counters.dropped_alerts)
    }

    /// Queues a context event. Sending the same `seq` again replaces the stored event
    /// (re-enrichment once container metadata arrives).
    pub fn send_event(&self, event: Enriched) -> bool {
        self.offer(Msg::Event(Box::new(event)), &self.counters.dropped_events)
    }

    fn offer(&self, msg: Msg, dropped: &AtomicU64) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Blocks until everything this thread sent before the call is committed (or has
    /// failed). Err when rows failed since the previous flush. From async code, call it
    /// in `spawn_blocking`.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Flush(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Runs a retention pass now (after committing what is queued) and reports it.
    pub fn run_retention(&self) -> Result<RetentionReport, StoreError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Retention(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Replaces the retention policy (configuration reload); used from the next pass.
    pub fn set_retention(&self, policy: RetentionPolicy) {
        *self.retention.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    pub fn retention(&self) -> RetentionPolicy {
        *self.retention.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Relaxed);
        WriterStats {
            alerts_committed: g(&c.alerts_committed),
            events_committed: g(&c.events_committed),
            links_committed: g(&c.links_committed),
            duplicate_alerts: g(&c.duplicate_alerts),
            dropped_alerts: g(&c.dropped_alerts),
            dropped_events: g(&c.dropped_events),
            batches: g(&c.batches),
            write_errors: g(&c.write_errors),
            failed_rows: g(&c.failed_rows),
            retention_runs: g(&c.retention_runs),
            retention_errors: g(&c.retention_errors),
            retention_alerts_deleted: g(&c.retention_alerts_deleted),
            retention_events_deleted: g(&c.retention_events_deleted),
            last_error: c
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Asks the thread to commit what is queued and stop (blocks while the queue is full).
    pub(crate) fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}

pub(crate) struct WriterConfig {
    pub batch_max: usize,
    pub flush_interval: Duration,
    pub channel_capacity: usize,
    pub retention: RetentionPolicy,
    pub retention_interval: Duration,
    pub reserve: Reserve,
}

pub(crate) struct Writer {
    conn: Connection,
    rx: Receiver<Msg>,
    counters: Arc<Counters>,
    cfg: WriterConfig,
    retention: Arc<Mutex<RetentionPolicy>>,
    /// Rows lost since the last flush, and the last failure (message, disk full).
    failed_since_flush: u64,
    last_failure: Option<(String, bool)>,
    next_retention: Instant,
}

pub(crate) fn channel(conn: Connection, cfg: WriterConfig) -> (Writer, WriterHandle) {
    let (tx, rx) = sync_channel(cfg.channel_capacity.max(1));
    let counters = Arc::new(Counters::default());
    let retention = Arc::new(Mutex::new(cfg.retention));
    // Ticks run even without a policy: one may be set later, and PRAGMA optimize runs.
    let next_retention = Instant::now() + cfg.retention_interval;
    let writer = Writer {
        conn,
        rx,
        counters: counters.clone(),
        cfg,
        retention: retention.clone(),
        failed_since_flush: 0,
        last_failure: None,
        next_retention,
    };
    (
        writer,
        WriterHandle {
            tx,
            counters,
            retention,
        },
    )
}

enum Item {
    Alert(Box<AlertItem>),
    Event(Box<Enriched>),
}

/// What a committed batch added.
#[derive(Default)]
struct Committed {
    alerts: u64,
    events: u64,
    links: u64,
    duplicates: u64,
    /// Rows skipped on their own (unencodable), with the reason of the last one.
    bad_rows: u64,
    bad_reason: Option<String>,
}

impl Writer {
    pub(crate) fn run(mut self) {
        let mut batch: Vec<Item> = Vec::with_capacity(self.cfg.batch_max.max(1));
        loop {
            let wait = self
                .next_retention
                .saturating_duration_since(Instant::now());
            let first = match self.rx.recv_timeout(wait) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    self.periodic_retention();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut control = self.take(first, &mut batch);
            if control.is_none() {
                // Gather more until the batch is full, its time is up, or a control
                // message asks for the batch now.
                // Alerts are committed as soon as the queue is drained (group commit: no
                // waiting, so exec→stored latency stays in single milliseconds); batches of
                // context events alone wait up to flush_interval to grow.
                let deadline = Instant::now() + self.cfg.flush_interval;
                while batch.len() < self.cfg.batch_max {
                    let has_alert = batch.iter().any(|i| matches!(i, Item::Alert(_)));
                    let left = if has_alert {
                        Duration::ZERO
                    } else {
                        deadline.saturating_duration_since(Instant::now())
                    };
                    match self.rx.recv_timeout(left) {
                        Ok(m) => {
                            control = self.take(m, &mut batch);
                            if control.is_some() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch);
            }
            match control {
                Some(Msg::Flush(reply)) => {
                    let _ = reply.send(self.flush_result());
                }
                Some(Msg::Retention(reply)) => {
                    let r = self.retention();
                    let _ = reply.send(r);
                }
                Some(Msg::Shutdown) => break,
                _ => {}
            }
            if Instant::now() >= self.next_retention {
                self.periodic_retention();
            }
        }
        if !batch.is_empty() {
            self.commit(&mut batch);
        }
    }

    /// Adds a data message to the batch, or returns a control message.
    fn take(&self, m: Msg, batch: &mut Vec<Item>) -> Option<Msg> {
        match m {
            Msg::Alert(a) => batch.push(Item::Alert(a)),
            Msg::Event(e) => batch.push(Item::Event(e)),
            other => return Some(other),
        }
        None
    }

    fn flush_result(&mut self) -> Result<(), StoreError> {
        let rows = std::mem::take(&mut self.failed_since_flush);
        match self.last_failure.take() {
            Some((message, disk_full)) if rows > 0 => Err(StoreError::WriteFailed {
                rows,
                message,
                disk_full,
            }),
            _ => Ok(()),
        }
    }

    fn commit(&mut self, batch: &mut Vec<Item>) {
        let n = batch.len() as u64;
        match insert_batch(&mut self.conn, batch) {
            Ok(c) => {
                let k = &self.counters;
                k.alerts_committed.fetch_add(c.alerts, Relaxed);
                k.events_committed.fetch_add(c.events, Relaxed);
                k.links_committed.fetch_add(c.links, Relaxed);
                k.duplicate_alerts.fetch_add(c.duplicates, Relaxed);
                k.batches.fetch_add(1, Relaxed);
                if c.bad_rows > 0 {
                    let msg = c.bad_reason.unwrap_or_default();
                    self.fail(c.bad_rows, msg, false);
                }
            }
            Err(e) => {
                // The transaction was rolled back when it was dropped.
                self.counters.write_errors.fetch_add(1, Relaxed);
                let full = is_disk_full(&e);
                self.fail(n, format!("batch of {n} rows rolled back: {e}"), full);
                if full {
                    // Run retention soon (it may free room), but not after every batch.
                    let soon = Instant::now() + Duration::from_secs(1);
                    self.next_retention = self.next_retention.min(soon);
                    // Copy what the WAL holds into the database file without waiting for
                    // readers: once it is all backfilled, the next commit rewrites the
                    // WAL from its start, in space the file already has.
                    if let Err(e) =
                        self.conn
                            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!("checkpoint after SQLITE_FULL: {e}");
                    }
                }
            }
        }
        batch.clear();
    }

    fn fail(&mut self, rows: u64, message: String, disk_full: bool) {
        tracing::warn!(rows, disk_full, "alert store write failed: {message}");
        self.counters.failed_rows.fetch_add(rows, Relaxed);
        self.counters.set_last_error(message.clone());
        self.failed_since_flush += rows;
        self.last_failure = Some((message, disk_full));
    }

    fn retention(&mut self) -> Result<RetentionReport, StoreError> {
        self.counters.retention_runs.fetch_add(1, Relaxed);
        let policy = *self.retention.lock().unwrap_or_else(|e| e.into_inner());
        let (report, r) = retention::run(&self.conn, &policy, &self.cfg.reserve);
        let k = &self.counters;
        k.retention_alerts_deleted
            .fetch_add(report.alerts_deleted, Relaxed);
        k.retention_events_deleted
            .fetch_add(report.events_deleted, Relaxed);
        match r {
            Ok(()) => Ok(report),
            Err(e) => {
                k.retention_errors.fetch_add(1, Relaxed);
                k.set_last_error(format!("retention: {e}"));
                tracing::warn!(
                    alerts_deleted = report.alerts_deleted,
                    events_deleted = report.events_deleted,
                    "alert store retention failed: {e}"
                );
                Err(e.into())
            }
        }
    }

    fn periodic_retention(&mut self) {
        let _ = self.retention();
        // Lets SQLite refresh planner statistics for tables that changed a lot.
        if let Err(e) = self.conn.execute_batch("PRAGMA optimize;") {
            tracing::debug!("PRAGMA optimize: {e}");
        }
        self.next_retention = Instant::now() + self.cfg.retention_interval;
    }
}

const INSERT_ALERT: &str = "INSERT INTO alerts (id, time_ns, rule, policy, severity, severity_text, \
    node, cluster, container_id, container_full_id, namespace, pod, workload, image, \
    image_repository, proc_name, proc_exe, proc_pid, proc_ppid, mitre_techniques, prevented) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) \
    ON CONFLICT(id) DO NOTHING";
const INSERT_BLOB: &str = "INSERT INTO alert_blobs (rid, blob) VALUES (?1, ?2)";
const INSERT_TECHNIQUE: &str =
    "INSERT OR IGNORE INTO alert_techniques (alert_id, technique) VALUES (?1, ?2)";
const INSERT_LINK: &str =
    "INSERT OR IGNORE INTO alert_context (alert_id, event_seq) VALUES (?1, ?2)";
const UPSERT_EVENT: &str = "INSERT INTO events (seq, time_ns, container_id, pid, kind, blob) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(seq) DO UPDATE SET time_ns = excluded.time_ns, \
    container_id = excluded.container_id, pid = excluded.pid, kind = excluded.kind, blob = excluded.blob";

/// One transaction for the whole batch. A row that cannot be encoded is skipped and
/// reported; any SQL error aborts (and, on drop, rolls back) the batch.
fn insert_batch(conn: &mut Connection, batch: &[Item]) -> Result<Committed, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut c = Committed::default();
    {
        let mut alert_stmt = tx.prepare_cached(INSERT_ALERT)?;
        let mut blob_stmt = tx.prepare_cached(INSERT_BLOB)?;
        let mut tech_stmt = tx.prepare_cached(INSERT_TECHNIQUE)?;
        let mut link_stmt = tx.prepare_cached(INSERT_LINK)?;
        let mut event_stmt = tx.prepare_cached(UPSERT_EVENT)?;
        for item in batch {
            match item {
                Item::Alert(a) => {
                    let blob = match serde_json::to_vec(&a.alert) {
                        Ok(b) => b,
                        Err(e) => {
                            c.bad_rows += 1;
                            c.bad_reason =
                                Some(format!("alert {}: cannot encode: {e}", a.alert.id));
                            continue;
                        }
                    };
                    let r = AlertColumns::from_alert(&a.alert);
                    let inserted = alert_stmt.execute(params![
                        r.id,
                        r.time_ns,
                        r.rule,
                        r.policy,
                        r.severity,
                        r.severity_text,
                        r.node,
                        r.cluster,
                        r.container_id,
                        r.container_full_id,
                        r.namespace,
                        r.pod,
                        r.workload,
                        r.image,
                        r.image_repository,
                        r.proc_name,
                        r.proc_exe,
                        r.proc_pid,
                        r.proc_ppid,
                        r.mitre_techniques.join(","),
                        r.prevented,
                    ])?;
                    if inserted == 0 {
                        c.duplicates += 1;
                        continue;
                    }
                    blob_stmt.execute(params![tx.last_insert_rowid(), blob])?;
                    for t in &r.mitre_techniques {
                        tech_stmt.execute(params![r.id, t])?;
                    }
                    for &seq in &a.context {
                        // Sequence numbers beyond i64 cannot be stored (nor occur).
                        if let Ok(seq) = i64::try_from(seq) {
                            c.links += link_stmt.execute(params![r.id, seq])? as u64;
                        }
                    }
                    c.alerts += 1;
                }
                Item::Event(e) => {
                    let Ok(seq) = i64::try_from(e.seq) else {
                        c.bad_rows += 1;
                        c.bad_reason = Some(format!("event {}: seq out of range", e.seq));
                        continue;
                    };
                    let blob = match serde_json::to_vec(&**e) {
                        Ok(b) => b,
                        Err(err) => {
                            c.bad_rows += 1;
                            c.bad_reason = Some(format!("event {seq}: cannot encode: {err}"));
                            continue;
                        }
                    };
                    event_stmt.execute(params![
                        seq,
                        e.event.time_ns,
                        e.ctx.container_id,
                        e.event.process.pid,
                        e.event.type_name(),
                        blob,
                    ])?;
                    c.events += 1;
                }
            }
        }
    }
    tx.commit()?;
    Ok(c)
}
