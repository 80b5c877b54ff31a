//! An event with its context: the unit rules evaluate and the store keeps.

use serde::{Deserialize, Serialize};

use crate::{context::Context, event::Event};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Enriched {
    /// Node-local sequence number, assigned in arrival order (an event's id).
    pub seq: u64,
    pub event: Event,
    pub ctx: Context,
}
