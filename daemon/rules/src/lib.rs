//! Filter language and rules engine.
