//! saker daemon library.
