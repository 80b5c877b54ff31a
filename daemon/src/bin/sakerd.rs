//! sakerd: the saker node daemon.

use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use saker::{
    api::{read_token_file, ApiConfig, ApiServer, TcpConfig},
    capture,
    daemon::{Daemon, DaemonConfig},
    sensor::{Sensor, SensorConfig},
};
use saker_assist::{AssistConfig, Assistant};
use saker_enrich::ContainerdConfig;

#[derive(Parser)]
#[command(
    name = "sakerd",
    version,
    about = "saker node daemon: eBPF sensor, detection, on-node assistant"
)]
struct Cli {
    /// Ring buffer size in MiB (power of two).
    #[arg(long, default_value_t = 16, global = true)]
    ring_mib: u32,
    /// Node name (default: the hostname).
    #[arg(long, global = true)]
    node: Option<String>,
    /// Cluster name (kubernetes.cluster.name).
    #[arg(long, default_value = "", global = true)]
    cluster: String,
    /// Rule file (repeatable, loaded in order). Default: /etc/saker/rules/saker_rules.yaml
    /// or the packaged rules.
    #[arg(long = "rules", global = true)]
    rules: Vec<PathBuf>,
    /// IoC list: one SHA-256 per line, optionally followed by a name.
    #[arg(long, global = true)]
    ioc: Option<PathBuf>,
    /// The alert store (one SQLite file).
    #[arg(long, default_value = "/var/lib/saker/saker.db", global = true)]
    store: PathBuf,
    /// containerd's socket, for container and Kubernetes metadata.
    #[arg(long, default_value = "/run/containerd/containerd.sock", global = true)]
    containerd_socket: PathBuf,
    /// Do not query containerd (container ids only).
    #[arg(long, global = true)]
    no_containerd: bool,
    /// Kill binaries executed from a container's upper layer (drift prevention).
    #[arg(long, global = true)]
    prevent_drift: bool,
    /// Unix socket of the gRPC API (mode 0660; its directory is created with mode 0750).
    #[arg(long, default_value = "/run/saker/saker.sock", global = true)]
    socket: PathBuf,
    /// Also serve the gRPC API over TCP on ADDR (e.g. 0.0.0.0:50051), with mutual TLS
    /// only: needs --tls-cert, --tls-key and --tls-client-ca.
    #[arg(long, value_name = "ADDR", global = true)]
    listen: Option<std::net::SocketAddr>,
    /// PEM certificate (chain) of the API's TCP listener.
    #[arg(long, value_name = "FILE", global = true)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the API's TCP listener.
    #[arg(long, value_name = "FILE", global = true)]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) that API clients' certificates must be signed by.
    #[arg(long, value_name = "FILE", global = true)]
    tls_client_ca: Option<PathBuf>,
    /// File holding a bearer token every API call must carry (`authorization: Bearer
    /// TOKEN`); surrounding whitespace is ignored.
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
    /// A llama-family GGUF model for the assistant's narratives (any llama/mistral
    /// instruct GGUF works; default: models/weights/smollm2-135m-instruct.q8_0.gguf or
    /// /var/lib/saker/models/… when present). Facts never come from the model.
    #[arg(long, global = true)]
    model: Option<PathBuf>,
    /// all-MiniLM-L6-v2 directory for question routing (default: next to the model).
    #[arg(long, global = true)]
    embedder: Option<PathBuf>,
    /// Inference threads (0 = all cores but one).
    #[arg(long, default_value_t = 0, global = true)]
    model_threads: usize,
    /// No model: deterministic answers only.
    #[arg(long, global = true)]
    no_model: bool,
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = SensorConfig {
        ring_bytes: cli.ring_mib * 1024 * 1024,
        prevent_drift: cli.prevent_drift,
        ..Default::default()
    };
    if matches!(cli.cmd, None | Some(Cmd::Run)) {
        return daemon(cli, cfg).await;
    }
    let mut sensor = Sensor::load(&cfg).context("loading the sensor")?;
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
    match cli.cmd.unwrap_or(Cmd::Run) {
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
                serde_json::to_writer(&mut out, &ev)?;
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

/// The API's listeners from the flags: TCP only with all three TLS files.
fn api_config(cli: &Cli) -> anyhow::Result<ApiConfig> {
    let tls = [&cli.tls_cert, &cli.tls_key, &cli.tls_client_ca];
    let tcp = match (cli.listen, &cli.tls_cert, &cli.tls_key, &cli.tls_client_ca) {
        (Some(addr), Some(cert), Some(key), Some(ca)) => Some(TcpConfig {
            addr,
            cert: cert.clone(),
            key: key.clone(),
            client_ca: ca.clone(),
        }),
        (Some(addr), ..) => anyhow::bail!(
            "--listen {addr} needs --tls-cert, --tls-key and --tls-client-ca: \
             the API is served over TCP with mutual TLS only"
        ),
        (None, ..) if tls.iter().any(|f| f.is_some()) => {
            anyhow::bail!("--tls-cert, --tls-key and --tls-client-ca apply to --listen only")
        }
        (None, ..) => None,
    };
    let cfg = ApiConfig {
        socket: Some(cli.socket.clone()),
        tcp,
        token: cli.token_file.as_deref().map(read_token_file).transpose()?,
        ..Default::default()
    };
    cfg.check()?;
    Ok(cfg)
}

async fn daemon(cli: Cli, sensor: SensorConfig) -> anyhow::Result<()> {
    // Refuse a bad API configuration before loading anything.
    let api_cfg = api_config(&cli)?;
    let mut config = DaemonConfig {
        cluster: cli.cluster.clone(),
        rules: cli.rules.clone(),
        ioc: cli.ioc.clone(),
        store_path: cli.store.clone(),
        sensor,
        containerd: (!cli.no_containerd).then(|| ContainerdConfig {
            socket: cli.containerd_socket.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Some(n) = &cli.node {
        config.node = n.clone();
    }
    let d = Arc::new(Daemon::start(config)?);
    let assist_cfg = if cli.no_model {
        AssistConfig::default()
    } else {
        AssistConfig {
            model_path: cli
                .model
                .clone()
                .or_else(|| default_weights("smollm2-135m-instruct.q8_0.gguf")),
            embedder_dir: cli.embedder.clone().or_else(|| default_weights("minilm")),
            threads: cli.model_threads,
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
    let c = &d.counters;
    let summary = serde_json::json!({
        "events": c.events.load(std::sync::atomic::Ordering::Relaxed),
        "alerts": c.alerts.load(std::sync::atomic::Ordering::Relaxed),
        "drops": d.drops()?,
    });
    api.shutdown().await;
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
