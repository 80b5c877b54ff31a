//! Retention: delete the oldest rows by age and by database size, then give the freed
//! pages back to the filesystem.
//!
//! Runs on the writer's connection (the writer thread calls it between batches), in
//! chunks of [`CHUNK`] rows, each its own short transaction, so the write lock is never
//! held long and the WAL stays small. Events linked to a stored alert are its evidence:
//! they are kept while the alert is, and become deletable once it is gone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::is_disk_full;
use crate::schema::{db_size, DbSize};

/// Rows per delete transaction.
const CHUNK: i64 = 500;
/// Smaller chunks when shrinking to a size, so little more than needed is deleted.
const SIZE_CHUNK: i64 = 100;

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    pub max_age: Option<Duration>,
    /// Limit on the database's used pages (see [`DbSize::used_bytes`]); the WAL comes on
    /// top of it (at most a few MiB after a checkpoint).
    pub max_bytes: Option<u64>,
}

/// What one retention pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionReport {
    pub alerts_deleted: u64,
    pub events_deleted: u64,
    pub before: DbSize,
    pub after: DbSize,
}

fn now_ns() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

const DELETE_OLD_ALERTS: &str = "DELETE FROM alerts WHERE rid IN \
    (SELECT rid FROM alerts WHERE time_ns < ?1 ORDER BY time_ns LIMIT ?2)";
const DELETE_OLD_EVENTS: &str = "DELETE FROM events WHERE seq IN \
    (SELECT e.seq FROM events e WHERE e.time_ns < ?1 \
     AND NOT EXISTS (SELECT 1 FROM alert_context c WHERE c.event_seq = e.seq) \
     ORDER BY e.time_ns LIMIT ?2)";
const OLDEST_ALERT: &str = "SELECT min(time_ns) FROM alerts";
const OLDEST_FREE_EVENT: &str = "SELECT e.time_ns FROM events e \
    WHERE NOT EXISTS (SELECT 1 FROM alert_context c WHERE c.event_seq = e.seq) \
    ORDER BY e.time_ns LIMIT 1";

/// Deletes with `sql(?1 = cutoff, ?2 = chunk)`. On SQLITE_FULL the chunk shrinks (down
/// to one row) and the pass goes on: a delete needs WAL room for every page it touches,
/// and on a full disk only a small one fits in the WAL the file already has. Rows freed
/// that way are reused by the next inserts, so writes resume.
struct Deleter {
    chunk: i64,
}

impl Deleter {
    fn delete(
        &mut self,
        conn: &Connection,
        sql: &str,
        cutoff: i64,
    ) -> Result<u64, rusqlite::Error> {
        let mut stmt = conn.prepare_cached(sql)?;
        loop {
            match stmt.execute([cutoff, self.chunk]) {
                Ok(n) => return Ok(n as u64),
                Err(e) if is_disk_full(&e) && self.chunk > 1 => {
                    self.chunk = (self.chunk / 8).max(1);
                    checkpoint_passive(conn);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes chunk after chunk until one comes back short, adding to `total`.
    fn delete_all(
        &mut self,
        conn: &Connection,
        sql: &str,
        cutoff: i64,
        total: &mut u64,
    ) -> Result<(), rusqlite::Error> {
        loop {
            let n = self.delete(conn, sql, cutoff)?;
            *total += n;
            if n < self.chunk as u64 {
                return Ok(());
            }
        }
    }
}

/// Backfills the WAL into the database without waiting for readers, so the next write
/// starts the WAL over in space it already has. Best effort.
fn checkpoint_passive(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::debug!("passive checkpoint: {e}");
    }
}

/// A file of zeros kept beside the database. On a completely full filesystem SQLite
/// cannot even delete (every change goes through the WAL, and the WAL cannot restart
/// until a checkpoint has grown the database file); deleting the reserve gives retention
/// the room it needs, and the reserve is taken back once retention has returned space.
pub(crate) struct Reserve {
    path: PathBuf,
    bytes: u64,
}

impl Reserve {
    pub(crate) fn new(db: &Path, bytes: u64) -> Reserve {
        let mut name = db.as_os_str().to_owned();
        name.push("-reserve");
        Reserve {
            path: PathBuf::from(name),
            bytes,
        }
    }

    /// Creates the reserve if it is missing; best effort (no room, no reserve).
    pub(crate) fn ensure(&self) {
        if self.bytes == 0 || std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.bytes) {
            return;
        }
        // Written out, not sparse: the blocks must really be allocated.
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&self.path)?;
            let zeros = vec![0u8; 64 << 10];
            let mut left = self.bytes;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                f.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            f.sync_all()
        };
        if let Err(e) = write() {
            tracing::debug!("cannot create the store's reserve file: {e}");
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Deletes the reserve; false if there was none.
    pub(crate) fn release(&self) -> bool {
        self.bytes > 0 && std::fs::remove_file(&self.path).is_ok()
    }
}

/// One retention pass. When the filesystem is full, the reserve is released and the
/// pass retried; the reserve is taken back afterwards if there is room.
///
/// The report counts what was deleted even when the pass then fails.
pub(crate) fn run(
    conn: &Connection,
    policy: &RetentionPolicy,
    reserve: &Reserve,
) -> (RetentionReport, Result<(), rusqlite::Error>) {
    let mut report = RetentionReport::default();
    let mut r = db_size(conn).map(|s| {
        report.before = s;
        report.after = s;
    });
    if r.is_ok() {
        r = run_once(conn, policy, &mut report);
    }
    if matches!(&r, Err(e) if is_disk_full(e)) && reserve.release() {
        tracing::warn!("filesystem full: released the alert store's reserve for retention");
        // First move the WAL into the database and cut it to zero: the failed delete
        // has grown it with dead frames up to the last free byte.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::debug!("checkpoint with the reserve released: {e}");
        }
        r = run_once(conn, policy, &mut report);
    }
    if let Ok(s) = db_size(conn) {
        report.after = s;
    }
    reserve.ensure();
    (report, r)
}

/// Deleting is done even when giving pages back fails.
fn run_once(
    conn: &Connection,
    policy: &RetentionPolicy,
    report: &mut RetentionReport,
) -> Result<(), rusqlite::Error> {
    let deleted_before = report.alerts_deleted + report.events_deleted;
    if let Some(age) = policy.max_age {
        let cutoff = now_ns().saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
        let mut d = Deleter { chunk: CHUNK };
        d.delete_all(conn, DELETE_OLD_ALERTS, cutoff, &mut report.alerts_deleted)?;
        d.delete_all(conn, DELETE_OLD_EVENTS, cutoff, &mut report.events_deleted)?;
    }
    if let Some(max) = policy.max_bytes {
        shrink_to(conn, max, report)?;
    }
    if report.alerts_deleted + report.events_deleted > deleted_before {
        // Best effort: on a full disk moving pages may not fit, and the freed pages are
        // reused by the next inserts anyway.
        if let Err(e) = give_back(conn) {
            tracing::debug!("retention could not shrink the file: {e}");
        }
    }
    Ok(())
}

/// Free pages go back to the filesystem: incremental vacuum moves them to the end and
/// cuts them off; in WAL mode the file shrinks at the checkpoint, which TRUNCATE also
/// uses to reset the WAL to zero bytes.
fn give_back(conn: &Connection) -> Result<(), rusqlite::Error> {
    // Each step frees one page: step to the end.
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// Deletes the oldest chunk (alerts or unlinked events, whichever is older) until the
/// used size is at most `max` or nothing is left to delete.
fn shrink_to(
    conn: &Connection,
    max: u64,
    report: &mut RetentionReport,
) -> Result<(), rusqlite::Error> {
    let mut d = Deleter { chunk: SIZE_CHUNK };
    while db_size(conn)?.used_bytes > max {
        let oldest_alert: Option<i64> = conn
            .prepare_cached(OLDEST_ALERT)?
            .query_row([], |r| r.get(0))?;
        let oldest_event: Option<i64> = {
            let mut stmt = conn.prepare_cached(OLDEST_FREE_EVENT)?;
            let mut rows = stmt.query([])?;
            match rows.next()? {
                Some(r) => Some(r.get(0)?),
                None => None,
            }
        };
        let n = match (oldest_alert, oldest_event) {
            (None, None) => break,
            (Some(a), Some(e)) if e < a => {
                let n = d.delete(conn, DELETE_OLD_EVENTS, i64::MAX)?;
                report.events_deleted += n;
                n
            }
            (None, Some(_)) => {
                let n = d.delete(conn, DELETE_OLD_EVENTS, i64::MAX)?;
                report.events_deleted += n;
                n
            }
            (Some(_), _) => {
                let n = d.delete(conn, DELETE_OLD_ALERTS, i64::MAX)?;
                report.alerts_deleted += n;
                n
            }
        };
        if n == 0 {
            break;
        }
    }
    Ok(())
}
