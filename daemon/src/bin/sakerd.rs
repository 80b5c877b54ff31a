//! sakerd: the saker node daemon.

use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use saker::{
    api::{read_token_file, ApiConfig, ApiServer, TcpConfig},
    capture,
    config::{opt_path, Config, LogFormat, DEFAULT_PATH},
    daemon::{Daemon, DaemonConfig},
    metrics::MetricsServer,
    outputs::Outputs,
    sensor::{Sensor, SensorConfig},
};
use saker_assist::{AssistConfig, Assistant};
use saker_enrich::ContainerdConfig;

#[derive(Parser)]
#[command(
    name = "sakerd",
    version,
    about = "saker node daemon: eBPF sensor, detection, on-node assistant",
    long_about = "saker node daemon: eBPF sensor, detection, on-node assistant.\n\n\
        Settings come from the configuration file (--config, default /etc/saker/saker.toml \
        when it exists, else built-in defaults; see docs/configuration.md); the flags below \
        override the file's values."
)]
struct Cli {
    /// Configuration file (TOML). Default: /etc/saker/saker.toml if it exists.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Ring buffer size in MiB (power of two) [sensor.ring_mib].
    #[arg(long, global = true)]
    ring_mib: Option<u32>,
    /// Node name (default: the hostname) [node].
    #[arg(long, global = true)]
    node: Option<String>,
    /// Cluster name (kubernetes.cluster.name) [cluster].
    #[arg(long, global = true)]
    cluster: Option<String>,
    /// Rule file (repeatable, loaded in order) [rules.paths]. Default:
    /// /etc/saker/rules/saker_rules.yaml or the packaged rules.
    #[arg(long = "rules", global = true)]
    rules: Vec<PathBuf>,
    /// IoC list: one SHA-256 per line, optionally followed by a name [rules.ioc].
    #[arg(long, global = true)]
    ioc: Option<PathBuf>,
    /// The alert store (one SQLite file) [store.path].
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// containerd's socket, for container and Kubernetes metadata [containerd.socket].
    #[arg(long, global = true)]
    containerd_socket: Option<PathBuf>,
    /// Do not query containerd (container ids only) [containerd.enabled = false].
    #[arg(long, global = true)]
    no_containerd: bool,
    /// Kill binaries executed from a container's upper layer (drift prevention)
    /// [policies.prevent_drift = true].
    #[arg(long, global = true)]
    prevent_drift: bool,
    /// Unix socket of the gRPC API (mode 0660; its directory is created with mode 0750)
    /// [api.socket].
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Also serve the gRPC API over TCP on ADDR (e.g. 0.0.0.0:50051), with mutual TLS
    /// only: needs --tls-cert, --tls-key and --tls-client-ca [api.listen].
    #[arg(long, value_name = "ADDR", global = true)]
    listen: Option<std::net::SocketAddr>,
    /// PEM certificate (chain) of the API's TCP listener [api.tls_cert].
    #[arg(long, value_name = "FILE", global = true)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the API's TCP listener [api.tls_key].
    #[arg(long, value_name = "FILE", global = true)]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) that API clients' certificates must be signed by
    /// [api.tls_client_ca].
    #[arg(long, value_name = "FILE", global = true)]
    tls_client_ca: Option<PathBuf>,
    /// File holding a bearer token every API call must carry (`authorization: Bearer
    /// TOKEN`); surrounding whitespace is ignored [api.token_file].
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
    /// A llama-family GGUF model for the assistant's narratives (any llama/mistral
    /// instruct GGUF works; default: models/weights/smollm2-135m-instruct.q8_0.gguf or
    /// /var/lib/saker/models/… when present). Facts never come from the model
    /// [assistant.model].
    #[arg(long, global = true)]
    model: Option<PathBuf>,
    /// all-MiniLM-L6-v2 directory for question routing (default: next to the model)
    /// [assistant.embedder].
    #[arg(long, global = true)]
    embedder: Option<PathBuf>,
    /// Inference threads (0 = all cores but one) [assistant.threads].
    #[arg(long, global = true)]
    model_threads: Option<usize>,
    /// No model: deterministic answers only [assistant.no_model = true].
    #[arg(long, global = true)]
    no_model: bool,
    /// Prometheus endpoint address, e.g. 127.0.0.1:9376 [metrics.listen].
    #[arg(long, value_name = "ADDR", global = true)]
    metrics_listen: Option<String>,
    /// No Prometheus endpoint [metrics.enabled = false].
    #[arg(long, global = true)]
    no_metrics: bool,
    /// Falco JSON alerts on stdout [outputs.stdout.enabled = true].
    #[arg(long, global = true)]
    alerts_stdout: bool,
    /// Log format: text or json [log.format].
    #[arg(long, value_name = "FORMAT", global = true)]
    log_format: Option<String>,
    /// Log filter: a level or tracing directives [log.level]; wins over RUST_LOG.
    #[arg(long, value_name = "FILTER", global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// The first existing path among the default model locations.
fn default_weights(rel: &str) -> Option<PathBuf> {
    [
        PathBuf::from("/var/lib/saker/models").join(rel),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/weights")).join(rel),
    ]
    .into_iter()
    .find(|p| p.exists())
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon in the foreground (default).
    Run,
    /// Print decoded events as JSON lines on stdout.
    Events {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Write decoded events to FILE as a bincode capture (for replay in tests/benchmarks).
    Record {
        file: PathBuf,
        #[arg(long)]
        count: Option<u64>,
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Print the sensor's drop counters and attach report as JSON, then exit.
    Status,
}

/// The configuration: the file (or defaults), then the flags on top, validated again.
fn config(cli: &Cli) -> anyhow::Result<(Config, Option<PathBuf>)> {
    let (mut c, file) = Config::load_default(cli.config.as_deref())?;
    let set = |dst: &mut PathBuf, v: &Option<PathBuf>| {
        if let Some(v) = v {
            *dst = v.clone();
        }
    };
    if let Some(v) = cli.ring_mib {
        c.sensor.ring_mib = v;
    }
    if let Some(v) = &cli.node {
        c.node = v.clone();
    }
    if let Some(v) = &cli.cluster {
        c.cluster = v.clone();
    }
    if !cli.rules.is_empty() {
        c.rules.paths = cli.rules.clone();
    }
    set(&mut c.rules.ioc, &cli.ioc);
    set(&mut c.store.path, &cli.store);
    set(&mut c.containerd.socket, &cli.containerd_socket);
    if cli.no_containerd {
        c.containerd.enabled = false;
    }
    if cli.prevent_drift {
        c.policies.prevent_drift = true;
    }
    set(&mut c.api.socket, &cli.socket);
    if let Some(v) = cli.listen {
        c.api.listen = v.to_string();
    }
    set(&mut c.api.tls_cert, &cli.tls_cert);
    set(&mut c.api.tls_key, &cli.tls_key);
    set(&mut c.api.tls_client_ca, &cli.tls_client_ca);
    set(&mut c.api.token_file, &cli.token_file);
    set(&mut c.assistant.model, &cli.model);
    set(&mut c.assistant.embedder, &cli.embedder);
    if let Some(v) = cli.model_threads {
        c.assistant.threads = v;
    }
    if cli.no_model {
        c.assistant.no_model = true;
    }
    if let Some(v) = &cli.metrics_listen {
        c.metrics.listen = v.clone();
        c.metrics.enabled = true;
    }
    if cli.no_metrics {
        c.metrics.enabled = false;
    }
    if cli.alerts_stdout {
        c.outputs.stdout.enabled = true;
    }
    if let Some(v) = &cli.log_format {
        c.log.format = match v.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => anyhow::bail!("--log-format {other:?}: expected text or json"),
        };
    }
    if let Some(v) = &cli.log_level {
        c.log.level = v.clone();
    }
    // The flags' own wording for the TCP listener's combinations (scripts rely on it).
    let tls_set = [&c.api.tls_cert, &c.api.tls_key, &c.api.tls_client_ca]
        .iter()
        .filter(|p| !p.as_os_str().is_empty())
        .count();
    if let Some(addr) = cli.listen {
        if tls_set < 3 {
            anyhow::bail!(
                "--listen {addr} needs --tls-cert, --tls-key and --tls-client-ca (api.tls_*): \
                 the API is served over TCP with mutual TLS only"
            );
        }
    }
    let tls_flag = cli.tls_cert.is_some() || cli.tls_key.is_some() || cli.tls_client_ca.is_some();
    if tls_flag && c.api.listen.is_empty() {
        anyhow::bail!(
            "--tls-cert, --tls-key and --tls-client-ca apply to --listen only (api.listen)"
        );
    }
    let name = match &file {
        Some(f) => format!("{} (with command-line flags)", f.display()),
        None => "built-in defaults (with command-line flags)".to_string(),
    };
    c.validate(&name)?;
    Ok((c, file))
}

fn init_logs(c: &Config, flag_level: bool) {
    use tracing_subscriber::EnvFilter;
    // --log-level > RUST_LOG > log.level.
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !flag_level && !v.is_empty() => EnvFilter::try_new(v).ok(),
        _ => None,
    }
    .unwrap_or_else(|| EnvFilter::new(&c.log.level));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs go to files and journals, where escape
        // sequences are noise (and must not be confused with a workload's).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match c.log.format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().flatten_event(true).init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (cfg, file) = config(&cli)?;
    init_logs(&cfg, cli.log_level.is_some());
    match &file {
        Some(f) => tracing::info!(config = %f.display(), "configuration loaded"),
        None => tracing::info!("no configuration file ({DEFAULT_PATH}): built-in defaults"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(run(cli.cmd, cfg))
}

async fn run(cmd: Option<Cmd>, c: Config) -> anyhow::Result<()> {
    let sensor_cfg = SensorConfig {
        ring_bytes: c.sensor.ring_mib * 1024 * 1024,
        prevent_drift: c.policies.prevent_drift,
        queue_capacity: c.sensor.queue_capacity,
        ..Default::default()
    };
    if matches!(cmd, None | Some(Cmd::Run)) {
        return daemon(c, sensor_cfg).await;
    }
    let mut sensor = Sensor::load(&sensor_cfg).context("loading the sensor")?;
    let report = sensor.report();
    tracing::info!(
        attached = report.attached(),
        total = report.programs.len(),
        upper_layer_check = report.upper_layer_check,
        "sensor attached"
    );
    for p in report.failed() {
        tracing::warn!(program = %p.program, hook = %p.hook, "not attached: {}", p.error.as_deref().unwrap_or(""));
    }
    match cmd.unwrap_or(Cmd::Run) {
        Cmd::Status => {
            let out = serde_json::json!({ "attach": sensor.report(), "drops": sensor.drops()? });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Cmd::Events { count } => print_events(&mut sensor, count).await,
        Cmd::Record {
            file,
            count,
            seconds,
        } => record(&mut sensor, file, count, seconds).await,
        Cmd::Run => unreachable!("handled above"),
    }
}

async fn print_events(sensor: &mut Sensor, count: Option<u64>) -> anyhow::Result<()> {
    let mut events = sensor.events()?;
    let stdout = std::io::stdout();
    let mut n = 0u64;
    eprintln!("sakerd: ready");
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                let mut out = stdout.lock();
                // serde_json leaves DEL, C1 controls and bidi characters raw.
                out.write_all(saker::escape::json_safe(&serde_json::to_string(&ev)?).as_bytes())?;
                out.write_all(b"\n")?;
                out.flush()?;
                n += 1;
                if count.is_some_and(|c| n >= c) { break; }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    eprintln!("sakerd: drops {}", serde_json::to_string(&sensor.drops()?)?);
    Ok(())
}

async fn record(
    sensor: &mut Sensor,
    file: PathBuf,
    count: Option<u64>,
    seconds: Option<u64>,
) -> anyhow::Result<()> {
    let f = std::fs::File::create(&file).with_context(|| format!("creating {}", file.display()))?;
    let mut w = capture::Writer::new(std::io::BufWriter::new(f))?;
    let mut events = sensor.events()?;
    let deadline = tokio::time::sleep(Duration::from_secs(seconds.unwrap_or(u64::MAX / 4)));
    tokio::pin!(deadline);
    let mut n = 0u64;
    eprintln!("sakerd: ready");
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                w.write(&ev)?;
                n += 1;
                if count.is_some_and(|c| n >= c) { break; }
            }
            _ = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    w.flush()?;
    eprintln!("sakerd: recorded {n} events to {}", file.display());
    Ok(())
}

/// The API's listeners (validated by `Config::validate`: TCP only with all three TLS
/// files).
fn api_config(c: &Config) -> anyhow::Result<ApiConfig> {
    let tcp = c.api_listen().map(|addr| TcpConfig {
        addr,
        cert: c.api.tls_cert.clone(),
        key: c.api.tls_key.clone(),
        client_ca: c.api.tls_client_ca.clone(),
    });
    let cfg = ApiConfig {
        socket: opt_path(&c.api.socket),
        tcp,
        token: opt_path(&c.api.token_file)
            .as_deref()
            .map(read_token_file)
            .transpose()?,
        ..Default::default()
    };
    cfg.check()?;
    Ok(cfg)
}

async fn daemon(c: Config, sensor: SensorConfig) -> anyhow::Result<()> {
    // Refuse a bad API configuration before loading anything.
    let api_cfg = api_config(&c)?;
    let hours = |h: u64| (h > 0).then(|| Duration::from_secs(h.saturating_mul(3600)));
    let mut config = DaemonConfig {
        cluster: c.cluster.clone(),
        rules: c.rules.paths.clone(),
        ioc: opt_path(&c.rules.ioc),
        store_path: c.store.path.clone(),
        sensor,
        // The sensor is loaded in Daemon::start: then drop what only loading needed.
        drop_privileges: true,
        containerd: c.containerd.enabled.then(|| ContainerdConfig {
            socket: c.containerd.socket.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    config.store.retention_max_age = hours(c.store.retention_max_age_hours);
    config.store.retention_max_bytes = (c.store.retention_max_mib > 0)
        .then_some(c.store.retention_max_mib.saturating_mul(1 << 20));
    if !c.node.is_empty() {
        config.node = c.node.clone();
    }
    let d = Arc::new(Daemon::start(config)?);
    let outputs = Outputs::start(
        &c.outputs,
        d.config.node.clone(),
        d.fields.clone(),
        d.alerts_tx.subscribe(),
    )?;
    // A taken port must not stop detection: the endpoint is reported missing instead.
    let metrics = match c.metrics_listen() {
        Some(addr) => {
            match MetricsServer::start(addr, d.clone(), Some(outputs.stats.clone())).await {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!(
                        "metrics.listen: cannot listen on {addr} ({e}); running without the \
                         metrics endpoint"
                    );
                    None
                }
            }
        }
        None => None,
    };
    let a = &c.assistant;
    let assist_cfg = if a.no_model {
        AssistConfig::default()
    } else {
        AssistConfig {
            model_path: opt_path(&a.model)
                .or_else(|| default_weights("smollm2-135m-instruct.q8_0.gguf")),
            embedder_dir: opt_path(&a.embedder).or_else(|| default_weights("minilm")),
            threads: a.threads,
            ..AssistConfig::default()
        }
    };
    tracing::info!(model = ?assist_cfg.model_path, embedder = ?assist_cfg.embedder_dir, "assistant");
    let assistant = match Assistant::new(assist_cfg) {
        Ok(a) => Some(Arc::new(a)),
        Err(e) => {
            tracing::error!("the assistant could not start (Ask/Explain unavailable): {e}");
            None
        }
    };
    let api = ApiServer::start(d.clone(), assistant, api_cfg).await?;
    let report = d.attach_report();
    tracing::info!(
        attached = report.attached(),
        total = report.programs.len(),
        upper_layer_check = report.upper_layer_check,
        rules = d.detector.rules().len(),
        outputs = ?outputs.stats.outputs().map(|o| o.name).collect::<Vec<_>>(),
        metrics = ?metrics.as_ref().map(|m| m.addr),
        "sakerd running"
    );
    for p in report.failed() {
        tracing::warn!(program = %p.program, "not attached: {}", p.error.as_deref().unwrap_or(""));
    }
    eprintln!("sakerd: ready");
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let mut last_drops = 0;
    loop {
        tokio::select! {
            _ = hup.recv() => match d.reload_rules() {
                Ok(r) => tracing::info!(loaded = r.loaded.len(), skipped = r.skipped.len(), "rules reloaded"),
                Err(e) => tracing::error!("rules reload failed, keeping the previous rules: {e}"),
            },
            _ = tick.tick() => {
                let drops = d.drops()?;
                if drops.total() > last_drops {
                    tracing::warn!("sensor dropped events: {}", serde_json::to_string(&drops)?);
                    last_drops = drops.total();
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm() => break,
        }
    }
    let cn = &d.counters;
    let summary = serde_json::json!({
        "events": cn.events.load(std::sync::atomic::Ordering::Relaxed),
        "alerts": cn.alerts.load(std::sync::atomic::Ordering::Relaxed),
        "drops": d.drops()?,
    });
    api.shutdown().await;
    if let Some(m) = metrics {
        m.shutdown().await;
    }
    outputs.shutdown(Duration::from_secs(5)).await;
    match Arc::try_unwrap(d) {
        Ok(d) => d.shutdown(),
        // A request still holds the daemon: commit what is queued at least.
        Err(d) => {
            let _ = d.flush();
        }
    }
    eprintln!("sakerd: summary {summary}");
    Ok(())
}

async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
