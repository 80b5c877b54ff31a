//! Shared harnesses for saker integration tests.

pub mod cgroup;
mod cmd;
pub mod containerd;
mod host;
pub mod image;
pub mod mountinfo;
pub mod pod;
pub mod scenario;
pub mod sensor;
