//! Connection setup, schema and migrations.
//!
//! Durability: WAL with `synchronous=NORMAL` (the default here) writes every committed
//! transaction into the WAL file with `write()` before COMMIT returns; a process that is
//! killed (kill -9, OOM, panic=abort) loses nothing that was committed, because those bytes
//! are in the kernel's page cache and the next open replays the WAL. Only an OS crash or a
//! power loss can drop the last transactions (never corrupt the file): NORMAL syncs the WAL
//! at checkpoints, not at each commit. [`Synchronous::Full`] fsyncs the WAL at every commit
//! (one fsync per batch) and survives power loss too.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;

/// Current schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;
/// `PRAGMA application_id`: "SAKR", so a foreign SQLite file is refused, not altered.
pub const APPLICATION_ID: i64 = 0x5341_4b52;

/// How hard a commit waits for the disk; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Survives process crashes; an OS crash or power loss may drop the last commits.
    #[default]
    Normal,
    /// Survives power loss too: one fsync per committed batch.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Readers and the writer wait this long for each other's locks (checkpoints, vacuum).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// After a checkpoint the WAL is cut back to this size, so a burst does not leave a
/// large WAL behind (disk usage ≈ database + at most this, plus the current burst).
const JOURNAL_SIZE_LIMIT: i64 = 4 << 20;

/// Version 1. `alerts.rid` keys the blob table and never changes (an INTEGER PRIMARY
/// KEY survives VACUUM); `id` is the alert's key everywhere in the API. Blobs live in
/// their own table so scans and index lookups over the columns never page them in.
const SCHEMA_V1: &str = "
CREATE TABLE alerts (
    rid               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    time_ns           INTEGER NOT NULL,
    rule              TEXT NOT NULL,
    policy            TEXT,
    severity          INTEGER NOT NULL,
    severity_text     TEXT NOT NULL,
    node              TEXT NOT NULL,
    cluster           TEXT NOT NULL,
    container_id      TEXT NOT NULL,
    container_full_id TEXT,
    namespace         TEXT,
    pod               TEXT,
    workload          TEXT,
    image             TEXT,
    image_repository  TEXT,
    proc_name         TEXT NOT NULL,
    proc_exe          TEXT NOT NULL,
    proc_pid          INTEGER NOT NULL,
    proc_ppid         INTEGER NOT NULL,
    mitre_techniques  TEXT NOT NULL,
    prevented         INTEGER NOT NULL
);
-- (column, time) so a filtered page is read in time order from the index.
CREATE INDEX alerts_time      ON alerts(time_ns, id);
CREATE INDEX alerts_rule      ON alerts(rule, time_ns);
CREATE INDEX alerts_policy    ON alerts(policy, time_ns);
CREATE INDEX alerts_severity  ON alerts(severity, time_ns);
CREATE INDEX alerts_container ON alerts(container_id, time_ns);
CREATE INDEX alerts_namespace ON alerts(namespace, time_ns);
CREATE INDEX alerts_workload  ON alerts(workload, time_ns);

-- The full alert, JSON (see lib.rs for why not bincode).
CREATE TABLE alert_blobs (
    rid  INTEGER PRIMARY KEY,
    blob BLOB NOT NULL
);

CREATE TABLE alert_techniques (
    alert_id  TEXT NOT NULL,
    technique TEXT NOT NULL,
    PRIMARY KEY (alert_id, technique)
) WITHOUT ROWID;
CREATE INDEX alert_techniques_technique ON alert_techniques(technique, alert_id);

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    time_ns      INTEGER NOT NULL,
    container_id TEXT,
    pid          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    blob         BLOB NOT NULL
);
CREATE INDEX events_time      ON events(time_ns);
CREATE INDEX events_container ON events(container_id, time_ns);
CREATE INDEX events_pid       ON events(pid, time_ns);

-- Which events are an alert's context; the event may arrive later or be gone.
CREATE TABLE alert_context (
    alert_id  TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    PRIMARY KEY (alert_id, event_seq)
) WITHOUT ROWID;
CREATE INDEX alert_context_event ON alert_context(event_seq);

-- Side tables follow their alert whoever deletes it (retention, an operator's sqlite3).
CREATE TRIGGER alerts_delete AFTER DELETE ON alerts BEGIN
    DELETE FROM alert_blobs WHERE rid = OLD.rid;
    DELETE FROM alert_techniques WHERE alert_id = OLD.id;
    DELETE FROM alert_context WHERE alert_id = OLD.id;
END;
";

/// Opens the writer's connection, creating and migrating the schema.
pub(crate) fn open_writer(
    path: &Path,
    sync: Synchronous,
    checkpoint_pages: u32,
) -> Result<Connection, StoreError> {
    create_private(path)?;
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;

    let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        if tables != 0 || (app_id != 0 && app_id != APPLICATION_ID) {
            return Err(StoreError::NotAStore {
                path: path.to_path_buf(),
                found: app_id,
            });
        }
        // auto_vacuum only takes effect before the first table exists.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    } else if app_id != APPLICATION_ID {
        return Err(StoreError::NotAStore {
            path: path.to_path_buf(),
            found: app_id,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }

    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Config(format!(
            "journal_mode WAL refused (got {mode}); the filesystem may not support shared memory"
        )));
    }
    conn.pragma_update(None, "synchronous", sync.pragma())?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    conn.pragma_update(None, "wal_autocheckpoint", checkpoint_pages)?;
    // Sorts and temporary b-trees in memory: a full disk must not break queries.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    migrate(&conn, version)?;
    Ok(conn)
}

/// Opens a reader: same file, `query_only` so a bug can never write through it.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 16 MiB of page cache: the column tables of ~100k alerts stay resident.
    conn.pragma_update(None, "cache_size", -16384)?;
    Ok(conn)
}

/// Runs every migration after `from` in one transaction, so a crash leaves either the
/// old or the new schema.
fn migrate(conn: &Connection, from: i64) -> Result<(), StoreError> {
    if from >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    if from < 1 {
        tx.execute_batch(SCHEMA_V1)?;
    }
    // Future versions: `if from < 2 { ... }`.
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Creates the file owner-only (alerts name workloads and commands); SQLite gives its
/// -wal and -shm files the database file's mode.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| StoreError::Create {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(e)),
    }
}

/// Page-level sizes of the database (the WAL excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DbSize {
    /// `page_count * page_size`: what the file holds once checkpointed.
    pub file_bytes: u64,
    /// Pages in use (free-list pages excluded): what retention compares with its limit.
    pub used_bytes: u64,
    pub free_bytes: u64,
}

pub(crate) fn db_size(conn: &Connection) -> Result<DbSize, rusqlite::Error> {
    let q = |p: &str| -> Result<u64, rusqlite::Error> {
        let v: i64 = conn.pragma_query_value(None, p, |r| r.get(0))?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    let page = q("page_size")?;
    let count = q("page_count")?;
    let free = q("freelist_count")?;
    Ok(DbSize {
        file_bytes: count * page,
        used_bytes: count.saturating_sub(free) * page,
        free_bytes: free * page,
    })
}
