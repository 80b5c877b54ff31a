//! Entry functions of saker's fuzz targets.
//!
//! Each `entry_*` module is one file under `src/entry/` that depends only on the crate it
//! exercises, so the owning crate's corpus-replay test (`fuzz_corpus.rs` in its `tests/`)
//! compiles the very same file with `#[path]` and runs every corpus file through it on
//! stable, without libFuzzer.

// The ring-buffer decoder lives in the daemon crate, whose build compiles the eBPF object
// and links aya, tonic and candle. decode.rs itself needs only saker-common, saker-event,
// libc and thiserror, so it is compiled here in place from its source file; these two
// re-exports are the `crate::` paths it imports (the daemon's lib.rs has the same).
pub use saker_event::{bstr, event};
#[path = "../../../daemon/src/sensor/decode.rs"]
pub mod decode;

#[path = "entry/cgroup_path.rs"]
pub mod entry_cgroup_path;
#[path = "entry/rules_condition.rs"]
pub mod entry_rules_condition;
#[path = "entry/rules_yaml.rs"]
pub mod entry_rules_yaml;
#[path = "entry/sensor_decode.rs"]
pub mod entry_sensor_decode;
#[path = "entry/store_filter.rs"]
pub mod entry_store_filter;

#[path = "replay.rs"]
pub mod replay;
