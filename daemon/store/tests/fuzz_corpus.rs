//! Replays the fuzz corpus of the SQL filter target (tests/fuzz/corpus/store_filter)
//! through the fuzz target's own entry function, on stable, against a real store file.

#[path = "../../../tests/fuzz/src/replay.rs"]
mod replay;
#[path = "../../../tests/fuzz/src/entry/store_filter.rs"]
mod store_filter;

use saker_store::{Store, StoreConfig};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fuzz/corpus");

#[test]
fn store_filter_corpus() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(
        dir.path().join("alerts.db"),
        StoreConfig {
            reserve_bytes: 0,
            ..StoreConfig::default()
        },
    )
    .expect("open store");
    replay::replay(CORPUS, "store_filter", |data| {
        store_filter::run(&store, data)
    });
    store.close().expect("close store");
}
