//! Where the nodes are and how to reach them: unix socket, or TCP with mutual TLS.
//! Nothing here renders anything.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use saker_proto::v1::{
    assistant_service_client::AssistantServiceClient, event_service_client::EventServiceClient,
    incident_service_client::IncidentServiceClient, node_service_client::NodeServiceClient,
};
use tokio::net::UnixStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};
use tonic::{Request, Status};

use super::exit::CallError;

/// sakerd's default unix socket.
pub const DEFAULT_SOCKET: &str = "/run/saker/saker.sock";
/// Default TCP port for `--nodes` and `--nodes-dns` entries without one.
pub const DEFAULT_PORT: u16 = 50051;
/// Largest message accepted from a server (an incident with a long attack path, a
/// 10000-alert page).
const MAX_MESSAGE: usize = 64 << 20;

/// How to reach one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A unix socket path.
    Unix(PathBuf),
    /// `http(s)://host:port`; `tls` for https.
    Tcp { uri: String, tls: bool },
}

/// A node to ask: its label (as the operator named it) and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub label: String,
    pub target: Target,
}

/// Parses one node address: `/path` or `unix:///path` (socket), `https://host:port`,
/// `http://host:port` (no TLS; for tests), or `host[:port]` (https, `default_port`).
pub fn parse_target(s: &str, default_port: u16) -> Result<Target, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty node address".into());
    }
    if let Some(p) = s.strip_prefix("unix://") {
        if p.is_empty() {
            return Err(format!("invalid socket address '{s}'"));
        }
        return Ok(Target::Unix(PathBuf::from(p)));
    }
    if let Some(p) = s.strip_prefix("unix:") {
        return Ok(Target::Unix(PathBuf::from(p)));
    }
    if s.starts_with('/') || s.starts_with("./") {
        return Ok(Target::Unix(PathBuf::from(s)));
    }
    let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = s.strip_prefix("http://") {
        (false, r)
    } else if s.contains("://") {
        return Err(format!(
            "unsupported scheme in '{s}' (use https://, http:// or unix://)"
        ));
    } else {
        (true, s)
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("invalid node address '{s}'"));
    }
    let has_port = if rest.starts_with('[') {
        // [v6]:port or [v6]
        rest.contains("]:")
    } else if rest.matches(':').count() > 1 {
        // A bare IPv6 address: bracket it.
        return Ok(Target::Tcp {
            uri: format!(
                "{}://[{rest}]:{default_port}",
                if tls { "https" } else { "http" }
            ),
            tls,
        });
    } else {
        rest.contains(':')
    };
    let authority = if has_port {
        rest.to_string()
    } else {
        format!("{rest}:{default_port}")
    };
    let uri = format!("{}://{authority}", if tls { "https" } else { "http" });
    uri.parse::<Uri>()
        .map_err(|e| format!("invalid node address '{s}': {e}"))?;
    Ok(Target::Tcp { uri, tls })
}

/// Connection settings shared by every node.
#[derive(Clone, Debug, Default)]
pub struct ConnOpts {
    /// PEM CA certificate that signed the servers' certificates.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key (mTLS).
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// Name to verify in the servers' certificates instead of the host in the address.
    pub tls_server_name: Option<String>,
    /// Bearer token, sent as `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

impl ConnOpts {
    /// Reads the TLS files. Errors name the file.
    pub fn load(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
        tls_server_name: Option<String>,
        token: Option<String>,
        connect_timeout: Duration,
    ) -> Result<ConnOpts, String> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let identity_pem = match (cert, key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => return Err("--cert and --key go together".into()),
        };
        if let Some(t) = &token {
            if t.is_empty() || MetadataValue::<Ascii>::try_from(format!("Bearer {t}")).is_err() {
                return Err("the token must be non-empty printable ASCII".into());
            }
        }
        Ok(ConnOpts {
            ca_pem: ca.map(read).transpose()?,
            identity_pem,
            tls_server_name,
            token,
            connect_timeout,
        })
    }
}

/// Adds the bearer token to every request.
#[derive(Clone, Debug, Default)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A channel with the token interceptor.
pub type Svc = InterceptedService<Channel, Auth>;

/// Clients of every service over one connection.
#[derive(Clone)]
pub struct Api {
    pub events: EventServiceClient<Svc>,
    pub incidents: IncidentServiceClient<Svc>,
    pub assistant: AssistantServiceClient<Svc>,
    pub node: NodeServiceClient<Svc>,
}

impl Api {
    /// Wraps a connected channel.
    pub fn new(channel: Channel, token: Option<&str>) -> Api {
        let auth = Auth(token.and_then(|t| format!("Bearer {t}").try_into().ok()));
        let svc = InterceptedService::new(channel, auth);
        Api {
            events: EventServiceClient::new(svc.clone()).max_decoding_message_size(MAX_MESSAGE),
            incidents: IncidentServiceClient::new(svc.clone())
                .max_decoding_message_size(MAX_MESSAGE),
            assistant: AssistantServiceClient::new(svc.clone())
                .max_decoding_message_size(MAX_MESSAGE),
            node: NodeServiceClient::new(svc).max_decoding_message_size(MAX_MESSAGE),
        }
    }
}

/// Connects to one node.
pub async fn connect(target: &Target, opts: &ConnOpts) -> Result<Api, CallError> {
    let channel = match target {
        Target::Unix(path) => connect_unix(path, opts.connect_timeout).await?,
        Target::Tcp { uri, tls } => connect_tcp(uri, *tls, opts).await?,
    };
    Ok(Api::new(channel, opts.token.as_deref()))
}

async fn connect_unix(path: &Path, timeout: Duration) -> Result<Channel, CallError> {
    let path: Arc<PathBuf> = Arc::new(path.to_path_buf());
    let p = path.clone();
    // The URI is required by tonic but not used: the connector dials the socket.
    let endpoint = Endpoint::from_static("http://[::]:50051").connect_timeout(timeout);
    let connector = tower::service_fn(move |_: Uri| {
        let p = p.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(&*p).await?)) }
    });
    match tokio::time::timeout(timeout, endpoint.connect_with_connector(connector)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(CallError::Connect(format!(
            "unix socket {}: {}",
            path.display(),
            error_chain(&e)
        ))),
        Err(_) => Err(CallError::Connect(format!(
            "unix socket {}: timed out after {:?}",
            path.display(),
            timeout
        ))),
    }
}

async fn connect_tcp(uri: &str, tls: bool, opts: &ConnOpts) -> Result<Channel, CallError> {
    let fail = |m: String| CallError::Connect(format!("{uri}: {m}"));
    let mut endpoint = Endpoint::from_shared(uri.to_string())
        .map_err(|e| fail(error_chain(&e)))?
        .connect_timeout(opts.connect_timeout)
        .tcp_nodelay(true);
    if tls {
        let mut cfg = ClientTlsConfig::new();
        match &opts.ca_pem {
            Some(ca) => cfg = cfg.ca_certificate(Certificate::from_pem(ca)),
            None => {
                return Err(fail(
                    "https needs --ca (the CA that signed the node certificates)".into(),
                ))
            }
        }
        if let Some((cert, key)) = &opts.identity_pem {
            cfg = cfg.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &opts.tls_server_name {
            cfg = cfg.domain_name(name.clone());
        }
        endpoint = endpoint
            .tls_config(cfg)
            .map_err(|e| fail(error_chain(&e)))?;
    }
    match tokio::time::timeout(opts.connect_timeout, endpoint.connect()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(fail(error_chain(&e))),
        Err(_) => Err(fail(format!("timed out after {:?}", opts.connect_timeout))),
    }
}

/// An error and its sources, `: `-separated (tonic's transport errors hide the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Resolves a DNS name (a headless Service with one address per node) to one node per
/// address, sorted. `name` may carry a port (`name:port`).
pub async fn resolve_nodes(name: &str, default_port: u16) -> Result<Vec<Node>, String> {
    let (host, port) = match name.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (
            h.to_string(),
            p.parse::<u16>()
                .map_err(|_| format!("invalid port in '{name}'"))?,
        ),
        _ => (name.to_string(), default_port),
    };
    let mut addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("{host} resolved to no address"));
    }
    Ok(addrs
        .into_iter()
        .map(|a| Node {
            label: a.ip().to_string(),
            target: Target::Tcp {
                uri: format!("https://{a}"),
                tls: true,
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(uri: &str, tls: bool) -> Target {
        Target::Tcp {
            uri: uri.into(),
            tls,
        }
    }

    #[test]
    fn parses_node_addresses() {
        let p = |s| parse_target(s, 50051);
        assert_eq!(
            p("/run/saker/saker.sock"),
            Ok(Target::Unix("/run/saker/saker.sock".into()))
        );
        assert_eq!(
            p("unix:///tmp/s.sock"),
            Ok(Target::Unix("/tmp/s.sock".into()))
        );
        assert_eq!(
            p("unix:/tmp/s.sock"),
            Ok(Target::Unix("/tmp/s.sock".into()))
        );
        assert_eq!(p("node-a"), Ok(tcp("https://node-a:50051", true)));
        assert_eq!(p("node-a:7000"), Ok(tcp("https://node-a:7000", true)));
        assert_eq!(
            p("https://10.0.0.1:9000/"),
            Ok(tcp("https://10.0.0.1:9000", true))
        );
        assert_eq!(
            p("http://127.0.0.1:9000"),
            Ok(tcp("http://127.0.0.1:9000", false))
        );
        assert_eq!(p("[::1]:9000"), Ok(tcp("https://[::1]:9000", true)));
        assert_eq!(p("[::1]"), Ok(tcp("https://[::1]:50051", true)));
        assert_eq!(p("fe80::1"), Ok(tcp("https://[fe80::1]:50051", true)));
        assert!(p("ftp://x").is_err());
        assert!(p("").is_err());
        assert!(p("host/path").is_err());
        assert!(p("unix://").is_err());
    }

    #[test]
    fn token_is_checked() {
        let t = Duration::from_secs(1);
        assert!(ConnOpts::load(None, None, None, None, Some("abc".into()), t).is_ok());
        assert!(ConnOpts::load(None, None, None, None, Some("a\nb".into()), t).is_err());
        assert!(ConnOpts::load(None, None, None, None, Some(String::new()), t).is_err());
        assert!(ConnOpts::load(None, Some(Path::new("/x")), None, None, None, t).is_err());
    }

    #[test]
    fn interceptor_adds_bearer_token() {
        let mut auth = Auth(Some("Bearer s3cret".try_into().unwrap()));
        let req = auth.call(Request::new(())).unwrap();
        assert_eq!(
            req.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        let req = Auth(None).call(Request::new(())).unwrap();
        assert!(req.metadata().get("authorization").is_none());
    }

    #[tokio::test]
    async fn dns_names_resolve_to_one_node_per_address() {
        let nodes = resolve_nodes("localhost:7000", 1).await.unwrap();
        assert!(
            nodes
                .iter()
                .any(|n| n.label == "127.0.0.1" && n.target == tcp("https://127.0.0.1:7000", true)),
            "{nodes:?}"
        );
        let nodes = resolve_nodes("localhost", 7001).await.unwrap();
        assert!(nodes
            .iter()
            .all(|n| matches!(&n.target, Target::Tcp { uri, .. } if uri.ends_with(":7001"))));
        assert!(resolve_nodes("no-such-host.invalid", 1).await.is_err());
    }

    #[tokio::test]
    async fn missing_socket_is_a_connection_error() {
        let r = connect(
            &Target::Unix("/nonexistent/saker.sock".into()),
            &ConnOpts {
                connect_timeout: Duration::from_secs(2),
                ..Default::default()
            },
        )
        .await;
        match r {
            Err(CallError::Connect(m)) => assert!(m.contains("/nonexistent/saker.sock"), "{m}"),
            Err(e) => panic!("unexpected {e:?}"),
            Ok(_) => panic!("connected to nothing"),
        }
    }
}
