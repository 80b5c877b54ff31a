//! Fuzz entry: a filter through the store's SQL translation, then run as a count query
//! on a real (empty) store, so the generated SQL is checked by SQLite itself. Shared by
//! `fuzz_targets/store_filter.rs` and daemon/store/tests/fuzz_corpus.rs.

use saker_store::{Query, SqlFilter, Store, StoreError};

/// Panics on a bug: a crash, or a filter that translates but whose SQL SQLite rejects.
pub fn run(store: &Store, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(f) = SqlFilter::translate(text) else {
        return;
    };
    let mut q = Query::new().filter(text);
    if !f.exact {
        q = q.predicate(|_| true);
    }
    match store.count(&q) {
        Ok(_) => {}
        Err(StoreError::Sqlite(e)) => {
            panic!("filter {text:?} → SQL {:?} fails in SQLite: {e}", f.sql)
        }
        // Other errors (e.g. limits) are the store's own, typed answers.
        Err(_) => {}
    }
}
