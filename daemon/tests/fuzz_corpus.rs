//! Replays the fuzz corpus of the ring-buffer decoder target
//! (tests/fuzz/corpus/sensor_decode) through the fuzz target's own entry function, on
//! stable, against the daemon's decoder.

/// The entry function reaches the decoder as `crate::decode` (in the fuzz crate it is
/// compiled in place from daemon/src/sensor/decode.rs).
mod decode {
    pub use saker::sensor::decode::{decode, Clock};
}
#[path = "../../tests/fuzz/src/replay.rs"]
mod replay;
#[path = "../../tests/fuzz/src/entry/sensor_decode.rs"]
mod sensor_decode;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fuzz/corpus");

#[test]
fn sensor_decode_corpus() {
    replay::replay(CORPUS, "sensor_decode", sensor_decode::run);
}
