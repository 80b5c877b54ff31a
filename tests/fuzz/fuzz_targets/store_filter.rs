#![no_main]

use std::sync::OnceLock;

use saker_store::{Store, StoreConfig};

/// One empty store for the whole run, in `$SAKER_FUZZ_STORE_DIR` (`cargo xtask fuzz` points
/// it into tests/fuzz/target and clears it) or else a per-process temporary directory.
fn store() -> &'static Store {
    static S: OnceLock<Store> = OnceLock::new();
    S.get_or_init(|| {
        let dir = std::env::var_os("SAKER_FUZZ_STORE_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("saker-fuzz-store-{}", std::process::id()))
            });
        std::fs::create_dir_all(&dir).expect("temporary directory for the fuzz store");
        Store::open(
            dir.join("alerts.db"),
            StoreConfig {
                reserve_bytes: 0,
                ..StoreConfig::default()
            },
        )
        .expect("open the fuzz store")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| saker_fuzz::entry_store_filter::run(store(), data));
