//! saker's node-local alert store: one SQLite file.
//!
//! * **Writer**: one thread owns the write connection; the pipeline hands it alerts and
//!   context events through a bounded channel ([`WriterHandle::send`] never blocks; a
//!   full channel drops and counts). Rows are committed in batches; write errors (disk
//!   full) are counted and logged and the thread carries on.
//! * **Durability**: WAL journal. With the default `synchronous=NORMAL`, a committed
//!   batch survives the process being killed (kill -9 included, tested): it is in the
//!   WAL, in the kernel's page cache, before COMMIT returns. An OS crash or power loss
//!   can lose the last batches (never corrupt the file); [`Synchronous::Full`] closes
//!   that gap with one fsync per batch.
//! * **Readers**: a small pool of read-only connections; WAL readers see the last
//!   commit and never block the writer. Every query method is synchronous: from async
//!   code call it in `spawn_blocking`.
//! * **Queries** use the rules' filter language ([`SqlFilter`]). Filters over column
//!   fields run entirely in SQL with bound parameters; other fields need a caller
//!   predicate ([`Query::predicate`]) that evaluates the whole filter on the rows the
//!   SQL part pre-selects.
//!   The column fields and how each is derived from an alert are in [`AlertColumns`]
//!   (the daemon's alert `FieldSource` must answer them the same way).
//! * **Retention** by age and by database size, run by the writer thread
//!   periodically; `auto_vacuum=INCREMENTAL` lets the file shrink. Context events linked
//!   to a stored alert are kept as long as the alert.
//! * **Disk full**: a failed batch is rolled back, counted ([`WriterStats`]) and
//!   reported by the next [`WriterHandle::flush`]; later batches succeed once there is
//!   room. A reserve file (`<path>-reserve`) is released when even retention's deletes
//!   cannot get WAL space, and taken back afterwards.
//! * **Blob format**: the full alert (and event) is stored as JSON. bincode cannot
//!   decode `saker_event::Body` (an internally tagged enum needs `deserialize_any`,
//!   which bincode refuses with `AnyNotSupported`); JSON is self-describing, so alerts
//!   written by an older build still decode after fields are added with serde defaults,
//!   and an operator can read them with `sqlite3` and `json_extract`. Byte strings keep
//!   every byte (`{"hex", "lossy"}` for invalid UTF-8).

mod columns;
mod error;
mod query;
mod retention;
mod schema;
mod sql_filter;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use saker_event::{Alert, Enriched};
use saker_rules::FieldRegistry;

pub use columns::{severity_rank, short_container_id, AlertColumns, HOST_CONTAINER_ID};
pub use error::StoreError;
pub use query::{
    Cursor, EventQuery, GroupCount, GroupKey, Order, Page, Predicate, Query, MAX_LIMIT,
};
pub use retention::{RetentionPolicy, RetentionReport};
pub use schema::{DbSize, Synchronous, APPLICATION_ID, SCHEMA_VERSION};
pub use sql_filter::{is_column_field, SqlFilter};
pub use writer::{WriterHandle, WriterStats};

/// How the store writes and what it keeps.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Alerts (and unlinked events) older than this are deleted.
    pub retention_max_age: Option<Duration>,
    /// The oldest rows are deleted while the database uses more than this.
    pub retention_max_bytes: Option<u64>,
    /// Rows per transaction, at most.
    pub batch_max: usize,
    /// A batch is committed at most this long after its first row arrived.
    pub flush_interval: Duration,
    /// Queued rows before `send` starts dropping.
    pub channel_capacity: usize,
    /// How often the writer runs retention.
    pub retention_interval: Duration,
    pub synchronous: Synchronous,
    /// WAL pages after which a commit also checkpoints into the database file
    /// (`wal_autocheckpoint`). Lower it when the filesystem is small compared with the
    /// WAL: until a checkpoint, every change lives in the WAL, and retention can only free
    /// space inside the database file.
    pub checkpoint_pages: u32,
    /// Size of the reserve file kept beside the database (`<path>-reserve`), released
    /// so retention can run when the filesystem is full; 0 disables it.
    pub reserve_bytes: u64,
    /// Idle reader connections kept open.
    pub readers: usize,
    /// Registry query filters are validated against; `None` is
    /// `saker_rules::saker_fields()`. The daemon passes its own (a superset).
    pub fields: Option<Arc<FieldRegistry>>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            retention_max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_max_bytes: Some(1 << 30),
            batch_max: 500,
            flush_interval: Duration::from_millis(50),
            channel_capacity: 10_000,
            retention_interval: Duration::from_secs(60),
            synchronous: Synchronous::Normal,
            checkpoint_pages: 1000,
            reserve_bytes: 4 << 20,
            readers: 4,
            fields: None,
        }
    }
}

impl StoreConfig {
    fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: &str| Err(StoreError::Config(m.to_string()));
        if self.batch_max == 0 {
            return bad("batch_max must be at least 1");
        }
        if self.channel_capacity == 0 {
            return bad("channel_capacity must be at least 1");
        }
        if self.retention_interval.is_zero() {
            return bad("retention_interval must be positive");
        }
        Ok(())
    }
}

/// The open store. Cheap to clone; the writer stops when the last clone is dropped or
/// [`Store::close`] is called.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    fields: Arc<FieldRegistry>,
    pool: Pool,
    writer: WriterHandle,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    fn stop(&self) {
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            self.writer.shutdown();
            let _ = h.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Store {
    /// Opens (creating or migrating) the store at `path` and starts its writer thread.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Store, StoreError> {
        config.validate()?;
        let path = path.as_ref().to_path_buf();
        let conn = schema::open_writer(&path, config.synchronous, config.checkpoint_pages)?;
        let pool = Pool {
            path: path.clone(),
            idle: Mutex::new(Vec::new()),
            max_idle: config.readers.max(1),
        };
        // Fail now, not at the first query, if readers cannot open.
        pool.with(|_| Ok(()))?;
        let (w, handle) = writer::channel(
            conn,
            writer::WriterConfig {
                batch_max: config.batch_max,
                flush_interval: config.flush_interval,
                channel_capacity: config.channel_capacity,
                retention: RetentionPolicy {
                    max_age: config.retention_max_age,
                    max_bytes: config.retention_max_bytes,
                },
                retention_interval: config.retention_interval,
                reserve: {
                    let r = retention::Reserve::new(&path, config.reserve_bytes);
                    r.ensure();
                    r
                },
            },
        );
        let thread = std::thread::Builder::new()
            .name("saker-store-writer".into())
            .spawn(move || w.run())
            .map_err(|e| StoreError::Create {
                path: path.clone(),
                source: e,
            })?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                fields: config
                    .fields
                    .unwrap_or_else(|| Arc::new(saker_rules::saker_fields())),
                pool,
                writer: handle,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// A handle for the pipeline to send alerts and events with.
    pub fn writer(&self) -> WriterHandle {
        self.inner.writer.clone()
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }

    /// Commits what is queued, stops the writer thread and waits for it. Queries keep
    /// working; later sends are dropped.
    pub fn close(self) -> Result<(), StoreError> {
        let r = self.inner.writer.flush();
        self.inner.stop();
        r
    }

    /// One page of alerts in `(time_ns, id)` order.
    pub fn query_alerts(&self, q: &Query) -> Result<Page<Alert>, StoreError> {
        self.inner
            .pool
            .with(|c| query::query_alerts(c, &self.inner.fields, q))
    }

    /// How many alerts match (cursor and limit ignored).
    pub fn count(&self, q: &Query) -> Result<u64, StoreError> {
        self.inner
            .pool
            .with(|c| query::count(c, &self.inner.fields, q))
    }

    /// Matching alerts counted per distinct `group_by` values; largest groups first.
    pub fn grouped_counts(
        &self,
        q: &Query,
        group_by: &[GroupKey],
    ) -> Result<Vec<GroupCount>, StoreError> {
        self.inner
            .pool
            .with(|c| query::grouped_counts(c, &self.inner.fields, q, group_by))
    }

    pub fn get_alert(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        self.inner.pool.with(|c| query::get_alert(c, id))
    }

    /// The alert's context events that are stored, oldest first.
    pub fn context_events(&self, alert_id: &str) -> Result<Vec<Enriched>, StoreError> {
        self.inner.pool.with(|c| query::context_events(c, alert_id))
    }

    pub fn events_by(&self, q: &EventQuery) -> Result<Vec<Enriched>, StoreError> {
        self.inner.pool.with(|c| query::events_by(c, q))
    }

    /// Database size in pages (the WAL excluded).
    pub fn size(&self) -> Result<DbSize, StoreError> {
        self.inner.pool.with(|c| Ok(schema::db_size(c)?))
    }
}

/// Idle reader connections; a query takes one (or opens one) and puts it back.
struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl Pool {
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => schema::open_reader(&self.path)?,
        };
        let r = f(&conn);
        // A connection left inside a transaction (by an error mid-query) is not reused.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        r
    }
}
