//! sakerd's gRPC API (package `saker.v1`, see `proto/saker/v1/`): the server that
//! translates between protobuf and the daemon's stages. No detection, correlation or
//! answering happens here: requests are validated, turned into store queries,
//! `saker_incident::correlate` calls and `saker_assist::Assistant` calls, and the results
//! are converted back.
//!
//! * [`server`]: listeners (unix socket 0660 in a 0750 directory; TCP only with mutual
//!   TLS), the bearer-token check, status normalisation, health and reflection, limits.
//! * `events`, `incidents`, `assistant`, `node`: one module per service.
//! * `convert`: saker types → proto messages; `status`: errors → gRPC statuses (filter
//!   errors as `line:col: message (near token 'x')`).

mod assistant;
mod convert;
mod events;
mod incidents;
mod node;
mod server;
mod status;

pub use assistant::StoreEvidence;
pub use server::{read_token_file, ApiConfig, ApiServer, ApiStats, Limits, TcpConfig};
