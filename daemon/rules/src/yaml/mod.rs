//! YAML rules files: a position-keeping tree and the loader.

pub(crate) mod loader;
pub(crate) mod mitre;
pub(crate) mod tree;
