//! Fuzz entry: one ring-buffer record through the sensor's decoder
//! (daemon/src/sensor/decode.rs), then through the JSON form the store keeps.
//! Shared by `fuzz_targets/sensor_decode.rs` and daemon/tests/fuzz_corpus.rs; both
//! provide the decoder as `crate::decode`.

use std::sync::OnceLock;

use crate::decode::{decode, Clock};

/// Panics on a bug: a crash in the decoder, or a decoded event that does not survive
/// the store's JSON round trip unchanged.
pub fn run(data: &[u8]) {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    let clock = CLOCK.get_or_init(Clock::new);
    let Ok(event) = decode(data, clock) else {
        return;
    };
    let json = match serde_json::to_string(&event) {
        Ok(j) => j,
        Err(e) => panic!("decoded event does not serialize: {e}: {event:?}"),
    };
    match serde_json::from_str::<saker_event::event::Event>(&json) {
        Ok(back) => assert_eq!(back, event, "JSON round trip changed the event: {json}"),
        Err(e) => panic!("decoded event's JSON does not deserialize: {e}: {json}"),
    }
}
