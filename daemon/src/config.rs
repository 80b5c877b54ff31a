//! sakerd's configuration file (TOML): schema, defaults, loading and validation.
//!
//! Every key has a default, so an empty file (or no file) runs out of the box; the
//! shipped `daemon/config/saker.toml` lists every key with its default and a comment.
//! Unknown keys are errors (a typo must not silently fall back to a default). TOML has no
//! null, so optional paths and addresses use `""` for "unset".

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where sakerd looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/saker/saker.toml";

/// The documented default file, as shipped.
pub const SHIPPED: &str = include_str!("../config/saker.toml");

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A syntax or type error; `location` is `file:line:col` when toml gave a span.
    #[error("{location}: {key}: {message}")]
    Parse {
        location: String,
        key: String,
        message: String,
    },
    /// A value of the right type that is not acceptable.
    #[error("{source_name}: {key}: {message}")]
    Invalid {
        source_name: String,
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// The offending key (dotted path; empty when unknown).
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Read { .. } => "",
            ConfigError::Parse { key, .. } | ConfigError::Invalid { key, .. } => key,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Node name in events and alerts; "" = the hostname.
    pub node: String,
    /// Cluster name (`kubernetes.cluster.name`).
    pub cluster: String,
    pub sensor: SensorSection,
    pub rules: RulesSection,
    pub policies: PoliciesSection,
    pub store: StoreSection,
    pub api: ApiSection,
    pub containerd: ContainerdSection,
    pub assistant: AssistantSection,
    pub outputs: OutputsSection,
    pub metrics: MetricsSection,
    pub log: LogSection,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensorSection {
    /// Kernel ring buffer size in MiB (a power of two).
    pub ring_mib: u32,
    /// Decoded events queued between the ring reader and the pipeline.
    pub queue_capacity: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSection {
    /// Rule files loaded in order; empty = /etc/saker/rules/saker_rules.yaml or the
    /// packaged rules.
    pub paths: Vec<PathBuf>,
    /// IoC list (SHA-256 per line, optional name); "" = none.
    pub ioc: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoliciesSection {
    /// Kill binaries executed from a container's upper layer before they run.
    pub prevent_drift: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    pub path: PathBuf,
    /// Alerts older than this are deleted; 0 = keep forever.
    pub retention_max_age_hours: u64,
    /// Oldest rows are deleted while the database is larger; 0 = no limit.
    pub retention_max_mib: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// gRPC unix socket (mode 0660); "" = none.
    pub socket: PathBuf,
    /// gRPC over TCP with mutual TLS, e.g. "0.0.0.0:50051"; "" = none.
    pub listen: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub tls_client_ca: PathBuf,
    /// File holding the bearer token every call must carry; "" = no token.
    pub token_file: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerdSection {
    /// Query containerd for image, labels, pod and namespace.
    pub enabled: bool,
    pub socket: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssistantSection {
    /// No model: deterministic answers only.
    pub no_model: bool,
    /// llama-family GGUF; "" = the fetched default weights when present.
    pub model: PathBuf,
    /// all-MiniLM-L6-v2 directory; "" = next to the model.
    pub embedder: PathBuf,
    /// Inference threads (0 = all cores but one).
    pub threads: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputsSection {
    /// Alerts below this priority are not sent to any output (Falco's names).
    pub min_priority: String,
    /// Alerts queued per output; beyond it new alerts are dropped (and counted).
    pub queue: usize,
    pub stdout: StdoutOutput,
    pub file: FileOutput,
    pub webhook: WebhookOutput,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StdoutOutput {
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileOutput {
    pub enabled: bool,
    pub path: PathBuf,
    /// Rotate when the file would grow past this.
    pub max_size_mib: u64,
    /// Rotated files kept (`path.1` newest … `path.N`).
    pub keep: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookOutput {
    pub enabled: bool,
    /// http:// URL, e.g. falcosidekick's "http://falcosidekick:2801/".
    pub url: String,
    /// Per-request deadline.
    pub timeout_ms: u64,
    /// Attempts after the first before the alert is given up (and counted).
    pub max_retries: u32,
    /// First retry delay; doubled each retry up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    pub enabled: bool,
    /// Prometheus text endpoint address (served at /metrics).
    pub listen: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    pub format: LogFormat,
    /// tracing filter: a level ("info") or directives ("info,saker=debug"). RUST_LOG,
    /// when set, wins.
    pub level: String,
}

impl Default for SensorSection {
    fn default() -> Self {
        SensorSection {
            ring_mib: 16,
            queue_capacity: 65536,
        }
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            path: PathBuf::from("/var/lib/saker/saker.db"),
            retention_max_age_hours: 7 * 24,
            retention_max_mib: 1024,
        }
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            socket: PathBuf::from("/run/saker/saker.sock"),
            listen: String::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_client_ca: PathBuf::new(),
            token_file: PathBuf::new(),
        }
    }
}

impl Default for ContainerdSection {
    fn default() -> Self {
        ContainerdSection {
            enabled: true,
            socket: PathBuf::from("/run/containerd/containerd.sock"),
        }
    }
}

impl Default for OutputsSection {
    fn default() -> Self {
        OutputsSection {
            min_priority: "debug".into(),
            queue: 1024,
            stdout: StdoutOutput::default(),
            file: FileOutput::default(),
            webhook: WebhookOutput::default(),
        }
    }
}

impl Default for FileOutput {
    fn default() -> Self {
        FileOutput {
            enabled: false,
            path: PathBuf::from("/var/log/saker/alerts.json"),
            max_size_mib: 100,
            keep: 5,
        }
    }
}

impl Default for WebhookOutput {
    fn default() -> Self {
        WebhookOutput {
            enabled: false,
            url: String::new(),
            timeout_ms: 5000,
            max_retries: 5,
            backoff_initial_ms: 200,
            backoff_max_ms: 10_000,
        }
    }
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: true,
            listen: "127.0.0.1:9376".into(),
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `""` → `None` (TOML has no null).
pub fn opt_path(p: &Path) -> Option<PathBuf> {
    (!p.as_os_str().is_empty()).then(|| p.to_path_buf())
}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates `text`; `name` labels errors (normally the file path).
    pub fn parse(name: &str, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| parse_error(name, text, &e))?;
        cfg.validate(name)?;
        Ok(cfg)
    }

    /// `--config FILE` when given, else [`DEFAULT_PATH`] if it exists, else the defaults.
    pub fn load_default(given: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        match given {
            Some(p) => Ok((Config::load(p)?, Some(p.to_path_buf()))),
            None if Path::new(DEFAULT_PATH).exists() => {
                let p = PathBuf::from(DEFAULT_PATH);
                Ok((Config::load(&p)?, Some(p)))
            }
            None => Ok((Config::default(), None)),
        }
    }

    /// Checks values that have the right type but are not acceptable; `name` labels the
    /// errors (the file, or "command line" after overrides).
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            source_name: name.to_string(),
            key: key.to_string(),
            message,
        };
        let r = self.sensor.ring_mib;
        if r == 0 || !r.is_power_of_two() || r > 1024 {
            return Err(bad(
                "sensor.ring_mib",
                format!("{r} is not a power of two between 1 and 1024"),
            ));
        }
        if self.sensor.queue_capacity == 0 {
            return Err(bad("sensor.queue_capacity", "must be at least 1".into()));
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(bad("store.path", "must not be empty".into()));
        }
        let api = &self.api;
        if api.socket.as_os_str().is_empty() && api.listen.is_empty() {
            return Err(bad(
                "api.socket",
                "the API needs a unix socket or api.listen".into(),
            ));
        }
        let tls = [
            ("api.tls_cert", &api.tls_cert),
            ("api.tls_key", &api.tls_key),
            ("api.tls_client_ca", &api.tls_client_ca),
        ];
        if api.listen.is_empty() {
            if let Some((k, _)) = tls.iter().find(|(_, p)| !p.as_os_str().is_empty()) {
                return Err(bad(k, "applies to api.listen only (which is unset)".into()));
            }
        } else {
            parse_addr(&api.listen).map_err(|m| bad("api.listen", m))?;
            if let Some((k, _)) = tls.iter().find(|(_, p)| p.as_os_str().is_empty()) {
                return Err(bad(
                    k,
                    "required with api.listen: the API is served over TCP with mutual TLS only"
                        .into(),
                ));
            }
        }
        if self.containerd.enabled && self.containerd.socket.as_os_str().is_empty() {
            return Err(bad("containerd.socket", "must not be empty".into()));
        }
        let o = &self.outputs;
        if saker_event::Severity::parse(&o.min_priority).is_none() {
            return Err(bad(
                "outputs.min_priority",
                format!(
                    "unknown priority {:?} (emergency, alert, critical, error, warning, \
                     notice, informational, debug)",
                    o.min_priority
                ),
            ));
        }
        if o.queue == 0 {
            return Err(bad("outputs.queue", "must be at least 1".into()));
        }
        if o.file.enabled {
            if o.file.path.as_os_str().is_empty() {
                return Err(bad("outputs.file.path", "must not be empty".into()));
            }
            if o.file.max_size_mib == 0 {
                return Err(bad(
                    "outputs.file.max_size_mib",
                    "must be at least 1".into(),
                ));
            }
            if o.file.keep > 1000 {
                return Err(bad("outputs.file.keep", "at most 1000".into()));
            }
        }
        let w = &o.webhook;
        if w.enabled {
            crate::outputs::webhook::check_url(&w.url)
                .map_err(|m| bad("outputs.webhook.url", m))?;
            if w.timeout_ms == 0 || w.timeout_ms > 600_000 {
                return Err(bad(
                    "outputs.webhook.timeout_ms",
                    "must be between 1 and 600000 (10 minutes)".into(),
                ));
            }
            if w.backoff_initial_ms == 0
                || w.backoff_max_ms < w.backoff_initial_ms
                || w.backoff_max_ms > 3_600_000
            {
                return Err(bad(
                    "outputs.webhook.backoff_initial_ms",
                    "must be at least 1 and at most outputs.webhook.backoff_max_ms \
                     (itself at most 3600000, an hour)"
                        .into(),
                ));
            }
        }
        if self.metrics.enabled {
            parse_addr(&self.metrics.listen).map_err(|m| bad("metrics.listen", m))?;
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(bad("log.level", format!("{:?}: {e}", self.log.level)));
        }
        Ok(())
    }

    /// The TCP address of the API, when set (validated).
    pub fn api_listen(&self) -> Option<SocketAddr> {
        parse_addr(&self.api.listen).ok()
    }

    /// The metrics address when enabled (validated).
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics
            .enabled
            .then(|| parse_addr(&self.metrics.listen).ok())
            .flatten()
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an IP:port address (e.g. \"127.0.0.1:9376\")"))
}

/// A toml error as `file:line:col: key: message`, the key found from the span (the
/// dotted path of the table header above the line plus the key on it).
fn parse_error(name: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return ConfigError::Parse {
            location: name.to_string(),
            key: key_from_message(&message).unwrap_or_default(),
            message,
        };
    };
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let key = key_at(text, start)
        .or_else(|| key_from_message(&message))
        .unwrap_or_default();
    ConfigError::Parse {
        location: format!("{name}:{line}:{col}"),
        key,
        message,
    }
}

/// `unknown field `x`` messages name the key themselves.
fn key_from_message(m: &str) -> Option<String> {
    let rest = m.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// The dotted key whose line contains byte offset `at`: the innermost `[table]` header
/// above it, plus the key on that line (if the line is a `key = value` line).
fn key_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = text[line_start..line_end].trim();
    let header = |l: &str| {
        let l = l.trim();
        (l.starts_with('[') && !l.starts_with("[["))
            .then(|| {
                l.trim_start_matches('[')
                    .split(']')
                    .next()
                    .map(|s| s.trim().to_string())
            })
            .flatten()
    };
    if let Some(h) = header(line) {
        return Some(h);
    }
    let table = text[..line_start].lines().rev().find_map(header);
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('#'));
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_at_finds_table_and_key() {
        let t = "node = \"a\"\n[outputs.file]\n# c\nkeep = \"x\"\n";
        let at = t.find("\"x\"").unwrap();
        assert_eq!(key_at(t, at).as_deref(), Some("outputs.file.keep"));
        assert_eq!(key_at(t, 2).as_deref(), Some("node"));
    }
}
