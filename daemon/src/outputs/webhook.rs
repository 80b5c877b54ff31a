//! HTTP webhook: a POST of each alert's Falco JSON (`Content-Type: application/json`), as
//! Falco's http_output does, so falcosidekick accepts it at its root path. Failed
//! attempts (connection error, timeout, non-2xx) are retried with exponential backoff.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Method, Request, Uri};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};

use crate::config::WebhookOutput;

/// Checks a webhook URL: `http://host[:port][/path]`. (TLS is not built in: in-cluster
/// receivers such as falcosidekick listen on plain HTTP.)
pub fn check_url(url: &str) -> Result<Uri, String> {
    if url.is_empty() {
        return Err(
            "required when the webhook is enabled (e.g. \"http://falcosidekick:2801/\")".into(),
        );
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "{url:?}: https is not supported; point it at an http:// receiver \
                 (e.g. falcosidekick in the cluster)"
            ))
        }
        _ => return Err(format!("{url:?} must start with http://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(uri)
}

pub struct Webhook {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    cfg: WebhookOutput,
}

/// Why one attempt failed.
#[derive(Debug)]
pub enum AttemptError {
    Status(u16),
    Timeout,
    Transport(String),
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Status(s) => write!(f, "HTTP status {s}"),
            AttemptError::Timeout => f.write_str("timed out"),
            AttemptError::Transport(e) => f.write_str(e),
        }
    }
}

impl Webhook {
    pub fn new(cfg: &WebhookOutput) -> Result<Webhook, String> {
        let uri = check_url(&cfg.url)?;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_millis(cfg.timeout_ms)));
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(http);
        Ok(Webhook {
            client,
            uri,
            cfg: cfg.clone(),
        })
    }

    /// One POST; the response body is read (and discarded) so the connection is reused.
    pub async fn attempt(&self, body: Bytes) -> Result<(), AttemptError> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("saker/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|e| AttemptError::Transport(e.to_string()))?;
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| AttemptError::Transport(format!("{e:?}")))?;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(AttemptError::Status(status.as_u16()))
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or(Err(AttemptError::Timeout))
    }

    /// Delay before retry `n` (1-based): initial × 2^(n-1), capped.
    pub fn backoff(&self, n: u32) -> Duration {
        let ms = self
            .cfg
            .backoff_initial_ms
            .saturating_mul(1u64 << n.saturating_sub(1).min(30))
            .min(self.cfg.backoff_max_ms);
        Duration::from_millis(ms)
    }

    pub fn max_retries(&self) -> u32 {
        self.cfg.max_retries
    }
}
