//! The store's one error type.

use std::path::PathBuf;

/// Everything the store can fail with. Filter errors keep saker-rules' types so the
/// caller gets the same `line:col` positions as for rule conditions.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create store {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a saker store (application_id {found:#x})")]
    NotAStore { path: PathBuf, found: i64 },
    #[error("store schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Bad syntax, unknown field, bad value or unsupported operator: with position.
    #[error("invalid filter: {0}")]
    Filter(#[from] saker_rules::FilterError),
    /// Part of the filter cannot run as SQL and no predicate was supplied.
    #[error("filter needs a predicate: {} cannot be evaluated in SQL", .fields.join(", "))]
    NeedsPredicate { fields: Vec<String> },
    #[error("invalid cursor '{0}'")]
    BadCursor(String),
    #[error("stored record {key} cannot be decoded: {message}")]
    Decode { key: String, message: String },
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The writer thread has exited (store closed, or a bug made it stop).
    #[error("the store's writer thread is gone")]
    WriterGone,
    /// Rows sent before a flush were not committed (e.g. disk full).
    #[error("{rows} rows not committed since the previous flush: {message}")]
    WriteFailed {
        rows: u64,
        message: String,
        /// The last failure was SQLITE_FULL.
        disk_full: bool,
    },
}

impl StoreError {
    /// True for SQLITE_FULL: the filesystem (or a size limit) has no room.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e) | StoreError::Open { source: e, .. } => is_disk_full(e),
            StoreError::WriteFailed { disk_full, .. } => *disk_full,
            _ => false,
        }
    }
}

pub(crate) fn is_disk_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}
