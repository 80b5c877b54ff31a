//! Listeners, authentication, limits, health and reflection.
//!
//! * **Unix socket** (default `/run/saker/saker.sock`): the parent directory is created
//!   with mode 0750 when missing; the socket is bound under a temporary name, set to
//!   0660 and renamed into place, so it is never reachable with looser permissions. A
//!   stale socket (nobody accepting) is replaced; a live one (another daemon) or a file
//!   that is not a socket makes the start fail.
//! * **TCP** only with mutual TLS (rustls): the server's certificate and key, and the CA
//!   that signs client certificates; a client without a valid certificate fails the
//!   handshake.
//! * **Bearer token** (optional): every call except the gRPC health service must carry
//!   `authorization: Bearer <token>`, else UNAUTHENTICATED.
//! * **Status normalisation**: tonic reports an undecodable request (e.g. invalid UTF-8
//!   in a string field) as INTERNAL and an oversized one as OUT_OF_RANGE; the API
//!   promises INVALID_ARGUMENT and RESOURCE_EXHAUSTED, so those are rewritten.
//! * **Limits** ([`Limits`]): request message size, page sizes (per method), concurrent
//!   subscriptions and answers, HTTP/2 streams per connection, per-request timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{atomic::AtomicU64, atomic::Ordering::Relaxed, Arc};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{bail, Context as _};
use saker_assist::{knowledge::Knowledge, Assistant};
use saker_proto::v1::{
    assistant_service_server::AssistantServiceServer, event_service_server::EventServiceServer,
    incident_service_server::IncidentServiceServer, node_service_server::NodeServiceServer,
};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::http;
use tonic::transport::{server::Router, Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::assistant::{AssistantApi, SessionContexts};
use super::events::Events;
use super::incidents::{self, Incidents};
use super::node::Node;
use crate::daemon::Daemon;

/// Per-request and per-server limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request message accepted (bytes); larger ones get RESOURCE_EXHAUSTED.
    pub max_request_bytes: usize,
    /// Largest response message (bytes): a page of 10000 alerts fits.
    pub max_response_bytes: usize,
    /// Longest question (bytes) Ask accepts.
    pub max_question_bytes: usize,
    /// SubscribeEvents streams at once (all clients).
    pub max_subscriptions: usize,
    /// Ask/Explain answers being produced at once (all clients).
    pub max_answers: usize,
    /// Messages buffered per server stream before the producer waits.
    pub stream_buffer: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams_per_connection: u32,
    /// Requests handled at once per connection.
    pub max_requests_per_connection: usize,
    /// Deadline of a unary call, and of the start of a streaming one (clients' shorter
    /// `grpc-timeout`s apply too).
    pub request_timeout: Duration,
    /// Alerts correlated into incidents at most (the newest ones).
    pub incident_alerts: usize,
    /// Store reads (queries, counts, incident builds) running at once; further requests
    /// wait for a slot (within their deadline).
    pub max_queries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 4 << 20,
            max_response_bytes: 64 << 20,
            max_question_bytes: 4096,
            max_subscriptions: 64,
            max_answers: 4,
            stream_buffer: 64,
            max_streams_per_connection: 128,
            max_requests_per_connection: 64,
            request_timeout: Duration::from_secs(60),
            incident_alerts: 50_000,
            max_queries: 8,
        }
    }
}

/// TCP with mutual TLS.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    pub addr: SocketAddr,
    /// PEM certificate chain of the server.
    pub cert: PathBuf,
    /// PEM private key of the server.
    pub key: PathBuf,
    /// PEM CA certificate(s) that client certificates must chain to.
    pub client_ca: PathBuf,
}

/// Where and how the API is served.
#[derive(Clone, Debug, Default)]
pub struct ApiConfig {
    /// Unix socket path (`None`: no socket).
    pub socket: Option<PathBuf>,
    /// TCP with mutual TLS (`None`: no TCP).
    pub tcp: Option<TcpConfig>,
    /// Bearer token every call must carry (`None`: no token check).
    pub token: Option<String>,
    pub limits: Limits,
}

impl ApiConfig {
    /// Checks what can be checked before the daemon starts: something to listen on, the
    /// TLS files readable and valid PEM.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.socket.is_none() && self.tcp.is_none() {
            bail!("the API needs a unix socket or a TCP address");
        }
        if let Some(t) = &self.tcp {
            tls_config(t)?;
        }
        if let Some(t) = &self.token {
            if t.is_empty() {
                bail!("the bearer token is empty");
            }
        }
        Ok(())
    }
}

/// Reads a bearer token file: the token is the file's content with surrounding
/// whitespace removed; it must be non-empty and printable ASCII without spaces.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let t = text.trim();
    if t.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        bail!(
            "the token in {} must be printable ASCII without spaces",
            path.display()
        );
    }
    Ok(t.to_string())
}

fn tls_config(t: &TcpConfig) -> anyhow::Result<ServerTlsConfig> {
    let read = |p: &Path, what: &str| {
        std::fs::read(p).with_context(|| format!("reading the {what} {}", p.display()))
    };
    let cert = read(&t.cert, "TLS certificate (--tls-cert)")?;
    let key = read(&t.key, "TLS key (--tls-key)")?;
    let ca = read(&t.client_ca, "client CA (--tls-client-ca)")?;
    for (what, pem, p) in [
        ("certificate", &cert, &t.cert),
        ("private key", &key, &t.key),
        ("client CA certificate", &ca, &t.client_ca),
    ] {
        if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
            bail!("{} is not a PEM file (expected a {what})", p.display());
        }
    }
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(ca))
        .client_auth_optional(false)
        .timeout(Duration::from_secs(10));
    // Building the acceptor validates the certificate, key and CA now.
    Server::builder()
        .tls_config(tls.clone())
        .map_err(|e| anyhow::anyhow!("TLS configuration: {e}: {}", error_chain(&e)))?;
    Ok(tls)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut s = e.source();
    while let Some(c) = s {
        parts.push(c.to_string());
        s = c.source();
    }
    parts.join(": ")
}

/// Counters of the API (also reported by NodeService.GetInfo).
#[derive(Debug, Default)]
pub struct ApiStats {
    /// Subscriptions ended because the subscriber read too slowly.
    pub subscriptions_lagged: AtomicU64,
    /// Alerts those subscribers did not get.
    pub subscriber_dropped: AtomicU64,
    /// Calls refused with RESOURCE_EXHAUSTED (too many subscriptions or answers).
    pub rejected_busy: AtomicU64,
    /// Calls refused for a missing or wrong bearer token.
    pub unauthenticated: AtomicU64,
}

/// What every service shares.
pub(crate) struct Ctx {
    pub daemon: Arc<Daemon>,
    pub assistant: Option<Arc<Assistant>>,
    pub knowledge: Option<Knowledge>,
    pub limits: Limits,
    pub stats: Arc<ApiStats>,
    pub subscriptions: Arc<Semaphore>,
    pub answers: Arc<Semaphore>,
    pub queries: Arc<Semaphore>,
    pub incidents: incidents::Cache,
    pub sessions: SessionContexts,
    /// Becomes true when the server shuts down (streams end with SHUTDOWN).
    pub shutdown: watch::Receiver<bool>,
}

impl Ctx {
    /// Runs store work on a blocking thread, at most `Limits::max_queries` at once. The
    /// slot is held by the blocking task itself, so work whose request timed out still
    /// counts until it really ends.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self
            .queries
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the server is stopping"))?;
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            f()
        })
        .await
        .map_err(super::status::join_error)
    }
}

/// The running server. Stop it with [`ApiServer::shutdown`].
pub struct ApiServer {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    socket: Option<PathBuf>,
    tcp_addr: Option<SocketAddr>,
    stats: Arc<ApiStats>,
    health: tonic_health::server::HealthReporter,
}

/// The server's layer stack.
type Guarded = tower::layer::util::Stack<GuardLayer, tower::layer::util::Identity>;

const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

impl ApiServer {
    /// Binds the listeners and starts serving. Fails when a listener cannot be set up.
    pub async fn start(
        daemon: Arc<Daemon>,
        assistant: Option<Arc<Assistant>>,
        cfg: ApiConfig,
    ) -> anyhow::Result<ApiServer> {
        cfg.check()?;
        let tls = cfg.tcp.as_ref().map(tls_config).transpose()?;
        let limits = cfg.limits.clone();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let stats = Arc::new(ApiStats::default());
        let knowledge = match Knowledge::bundled() {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!("MITRE ATT&CK names unavailable: {e}");
                None
            }
        };
        let ctx = Arc::new(Ctx {
            daemon,
            assistant,
            knowledge,
            subscriptions: Arc::new(Semaphore::new(limits.max_subscriptions)),
            answers: Arc::new(Semaphore::new(limits.max_answers)),
            queries: Arc::new(Semaphore::new(limits.max_queries.max(1))),
            limits,
            stats: stats.clone(),
            incidents: incidents::Cache::default(),
            sessions: SessionContexts::default(),
            shutdown: shutdown_rx.clone(),
        });

        let (health, health_svc) = tonic_health::server::health_reporter();
        for name in saker_proto::SERVICE_NAMES {
            health
                .set_service_status(*name, tonic_health::ServingStatus::Serving)
                .await;
        }
        let guard = GuardLayer {
            token: cfg.token.as_deref().map(Arc::from),
            stats: stats.clone(),
        };
        let router = |server: Server| -> anyhow::Result<Router<Guarded>> {
            let l = &ctx.limits;
            let mut server = server
                .layer(guard.clone())
                .timeout(l.request_timeout)
                .max_concurrent_streams(l.max_streams_per_connection)
                .concurrency_limit_per_connection(l.max_requests_per_connection)
                .http2_keepalive_interval(Some(Duration::from_secs(30)))
                .http2_keepalive_timeout(Some(Duration::from_secs(20)))
                .tcp_keepalive(Some(Duration::from_secs(60)));
            let (req, resp) = (l.max_request_bytes, l.max_response_bytes);
            let reflection = || {
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(saker_proto::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            };
            let v1 = reflection().build_v1()?;
            let v1alpha = reflection().build_v1alpha()?;
            Ok(server
                .add_service(health_svc.clone())
                .add_service(v1)
                .add_service(v1alpha)
                .add_service(
                    EventServiceServer::new(Events { ctx: ctx.clone() })
                        .max_decoding_message_size(req)
                        .max_encoding_message_size(resp),
                )
                .add_service(
                    IncidentServiceServer::new(Incidents { ctx: ctx.clone() })
                        .max_decoding_message_size(req)
                        .max_encoding_message_size(resp),
                )
                .add_service(
                    AssistantServiceServer::new(AssistantApi { ctx: ctx.clone() })
                        .max_decoding_message_size(req)
                        .max_encoding_message_size(resp),
                )
                .add_service(
                    NodeServiceServer::new(Node { ctx: ctx.clone() })
                        .max_decoding_message_size(req)
                        .max_encoding_message_size(resp),
                ))
        };

        let mut tasks = Vec::new();
        let mut socket = None;
        if let Some(path) = &cfg.socket {
            let listener = bind_unix(path)?;
            let incoming = accept_loop(listener);
            let r = router(Server::builder())?;
            let mut sd = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                let stop = async move {
                    let _ = sd.wait_for(|v| *v).await;
                };
                if let Err(e) = r.serve_with_incoming_shutdown(incoming, stop).await {
                    tracing::error!("API server (unix socket): {e}");
                }
            }));
            socket = Some(path.clone());
            tracing::info!(socket = %path.display(), "gRPC API listening");
        }
        let mut tcp_addr = None;
        if let (Some(t), Some(tls)) = (&cfg.tcp, tls) {
            let listener = tokio::net::TcpListener::bind(t.addr)
                .await
                .with_context(|| format!("binding the API's TCP address {}", t.addr))?;
            let addr = listener.local_addr()?;
            let incoming = accept_loop(listener);
            let r = router(Server::builder().tls_config(tls)?)?;
            let mut sd = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                let stop = async move {
                    let _ = sd.wait_for(|v| *v).await;
                };
                if let Err(e) = r.serve_with_incoming_shutdown(incoming, stop).await {
                    tracing::error!("API server (TCP): {e}");
                }
            }));
            tcp_addr = Some(addr);
            tracing::info!(%addr, "gRPC API listening (mutual TLS)");
        }
        Ok(ApiServer {
            shutdown: shutdown_tx,
            tasks,
            socket,
            tcp_addr,
            stats,
            health,
        })
    }

    /// The bound TCP address (with the real port when 0 was asked for).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    pub fn stats(&self) -> &ApiStats {
        &self.stats
    }

    /// Ends subscriptions (StreamEnd SHUTDOWN), stops accepting, waits up to 5 s for calls
    /// in progress, and removes the socket.
    pub async fn shutdown(self) {
        for name in saker_proto::SERVICE_NAMES.iter().copied().chain([""]) {
            self.health
                .set_service_status(name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A listening socket.
trait Accept: Send + Sync + 'static {
    type Conn: Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Conn>> + Send + '_;
}

impl Accept for tokio::net::UnixListener {
    type Conn = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Conn> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Accept for tokio::net::TcpListener {
    type Conn = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Conn> {
        let (s, _) = tokio::net::TcpListener::accept(self).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

/// Accepts connections on a task of its own and hands them over through a channel. An
/// accept error (EMFILE, ...) is logged and retried after a pause instead of spinning.
fn accept_loop<L: Accept>(listener: L) -> ReceiverStream<std::io::Result<L::Conn>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok(s) => {
                        if tx.send(Ok(s)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("API: accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = tx.closed() => return,
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Binds the unix socket as described in the module doc.
fn bind_unix(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
            .with_context(|| format!("setting the mode of {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "{} is in use: another sakerd is serving on it",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing the stale socket {}", path.display()))?;
            tracing::info!(socket = %path.display(), "removed a stale socket");
        }
        Ok(_) => bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener = tokio::net::UnixListener::bind(&tmp)
        .with_context(|| format!("binding the API socket {}", tmp.display()))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("moving the API socket to {}", path.display()))
        });
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(listener)
}

/// The bearer-token check and the status normalisation, in front of every service.
#[derive(Clone)]
struct GuardLayer {
    token: Option<Arc<str>>,
    stats: Arc<ApiStats>,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            token: self.token.clone(),
            stats: self.stats.clone(),
        }
    }
}

#[derive(Clone)]
struct Guard<S> {
    inner: S,
    token: Option<Arc<str>>,
    stats: Arc<ApiStats>,
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(headers: &http::HeaderMap, token: &str) -> bool {
    let Some(v) = headers.get(http::header::AUTHORIZATION) else {
        return false;
    };
    let v = v.as_bytes();
    if v.len() < 7 || !v[..7].eq_ignore_ascii_case(b"bearer ") {
        return false;
    }
    constant_time_eq(v[7..].trim_ascii(), token.as_bytes())
}

/// Rewrites tonic's statuses for malformed requests into the ones the API documents.
fn normalise(headers: &mut http::HeaderMap) {
    let Some(st) = Status::from_header_map(headers) else {
        return;
    };
    let msg = st.message();
    let new = match st.code() {
        Code::Internal if msg.starts_with("failed to decode Protobuf message") => {
            Status::invalid_argument(format!("malformed request message: {msg}"))
        }
        Code::OutOfRange if msg.contains("decoded message length too large") => {
            Status::resource_exhausted(format!("request message too large: {msg}"))
        }
        _ => return,
    };
    headers.remove(Status::GRPC_STATUS_DETAILS);
    let _ = new.add_header(headers);
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for Guard<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if let Some(t) = &self.token {
            if !req.uri().path().starts_with(HEALTH_PREFIX) && !authorized(req.headers(), t) {
                self.stats.unauthenticated.fetch_add(1, Relaxed);
                let st = Status::unauthenticated(
                    "missing or wrong bearer token (metadata authorization: Bearer <token>)",
                );
                return Box::pin(std::future::ready(Ok(st.into_http())));
            }
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut resp = inner.call(req).await?;
            normalise(resp.headers_mut());
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut h = http::HeaderMap::new();
        assert!(!authorized(&h, "t0k"));
        h.insert("authorization", "Bearer t0k".parse().unwrap());
        assert!(authorized(&h, "t0k"));
        assert!(!authorized(&h, "t0k2"));
        h.insert("authorization", "bearer  t0k ".parse().unwrap());
        assert!(authorized(&h, "t0k"));
        h.insert("authorization", "Basic t0k".parse().unwrap());
        assert!(!authorized(&h, "t0k"));
    }

    #[test]
    fn decode_errors_become_invalid_argument() {
        let mut h = http::HeaderMap::new();
        Status::internal("failed to decode Protobuf message: QueryEventsRequest.filter: invalid string value: data is not UTF-8 encoded")
            .add_header(&mut h)
            .unwrap();
        normalise(&mut h);
        let s = Status::from_header_map(&h).unwrap();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("not UTF-8"));
        let mut h = http::HeaderMap::new();
        Status::out_of_range(
            "Error, decoded message length too large: found 5 bytes, the limit is: 4 bytes",
        )
        .add_header(&mut h)
        .unwrap();
        normalise(&mut h);
        assert_eq!(
            Status::from_header_map(&h).unwrap().code(),
            Code::ResourceExhausted
        );
        let mut h = http::HeaderMap::new();
        Status::internal("store: disk on fire")
            .add_header(&mut h)
            .unwrap();
        normalise(&mut h);
        assert_eq!(Status::from_header_map(&h).unwrap().code(), Code::Internal);
    }

    #[test]
    fn token_files() {
        let dir = std::env::temp_dir().join(format!("saker-api-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t");
        std::fs::write(&p, "  s3cret\n").unwrap();
        assert_eq!(read_token_file(&p).unwrap(), "s3cret");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_token_file(&p).is_err());
        std::fs::write(&p, "a b").unwrap();
        assert!(read_token_file(&p).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
