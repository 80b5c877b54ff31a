//! Shared harnesses for saker integration tests.
