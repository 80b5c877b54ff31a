//! Errors of metadata lookups.

use std::path::PathBuf;
use std::time::Duration;

use containerd_client::tonic;

/// Why container metadata could not be fetched. A container the runtime does not know is not
/// an error (`Ok(None)`); these are the failures that are counted and retried.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("connecting to containerd at {socket}: {source}")]
    Connect {
        socket: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{what} timed out after {after:?}")]
    Timeout { what: &'static str, after: Duration },
    #[error("containerd {what}: {status}")]
    Rpc {
        what: &'static str,
        #[source]
        status: Box<tonic::Status>,
    },
    #[error("invalid containerd namespace {0:?} (not a valid gRPC metadata value)")]
    InvalidNamespace(String),
    #[error("no tokio runtime: the metadata cache must be created inside one")]
    NoRuntime,
}
