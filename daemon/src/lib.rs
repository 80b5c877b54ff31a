//! saker's daemon: sensor loading and decoding, enrichment, and (in later stages) rules,
//! store, incidents, assistant and API. Data flows one way:
//! kernel → sensor (read, decode) → enrich → rules → store → incidents → assistant/API.

pub mod capture;
pub mod config;
pub mod proctable;
pub mod sensor;

pub use saker_event::{bstr, event};
pub mod api;
pub mod daemon;
pub mod detect;
pub mod enrich;
/// The one escaping of workload strings for terminals and JSON lines (CLI and `sakerd events`).
pub mod escape;
pub mod fields;
pub mod health;
pub mod metrics;
pub mod outputs;
pub mod pipeline;
pub mod privilege;
