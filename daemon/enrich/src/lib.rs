//! Container and Kubernetes metadata for events.
//!
//! - [`cgroup`]: which container a process is in, from its cgroup path.
//! - [`cgroup_ids`]: the same from a cgroup v2 id, for processes that already exited.
//! - [`containerd`]: the container's Kubernetes metadata from containerd's API.
//! - [`cache`]: a bounded, non-blocking metadata cache for the event path.

pub mod cache;
pub mod cgroup;
pub mod cgroup_ids;
pub mod containerd;
pub mod error;
pub mod image;
pub mod meta;
pub mod workload;

pub use cache::{
    CacheConfig, CacheStats, ContainerdCache, Lookup, MetadataCache, MetadataSource, Resolved,
};
pub use cgroup::{container_for_pid, ContainerRef, Runtime};
pub use cgroup_ids::CgroupIdCache;
pub use containerd::{ContainerdClient, ContainerdConfig};
pub use error::EnrichError;
pub use saker_event::ContainerMeta;
