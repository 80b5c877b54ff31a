//! Alert outputs against real receivers: an HTTP server in this process (axum on
//! 127.0.0.1) that fails the first requests, one that stalls, and files in a real
//! directory. Alerts are the API tests' mission alerts (one carries an ANSI escape and
//! non-UTF-8 bytes), sent on a broadcast channel as the daemon does.

mod api_support;

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering::SeqCst},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use api_support::{mission, now_ns, NS};
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    routing::post,
    Router,
};
use saker::{
    config::{FileOutput, OutputsSection, WebhookOutput},
    fields::Fields,
    outputs::{falco, file::RotatingFile, Outputs},
};
use saker_event::Alert;
use serde_json::Value;
use tokio::sync::broadcast;

#[derive(Default)]
struct Recv {
    /// Requests to fail (500) before accepting.
    fail_first: usize,
    /// Hold every response until this is set (a stalled receiver).
    stall: Option<Arc<tokio::sync::Notify>>,
    requests: AtomicUsize,
    accepted: Mutex<Vec<(String, String, Bytes)>>,
}

async fn handle(State(r): State<Arc<Recv>>, uri: Uri, h: HeaderMap, body: Bytes) -> StatusCode {
    let n = r.requests.fetch_add(1, SeqCst);
    if let Some(s) = &r.stall {
        s.notified().await;
    }
    if n < r.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let ct = h
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    r.accepted
        .lock()
        .unwrap()
        .push((uri.path().to_string(), ct, body));
    StatusCode::OK
}

async fn receiver(r: Arc<Recv>) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = Router::new().route("/", post(handle)).with_state(r);
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

fn webhook_cfg(addr: std::net::SocketAddr, queue: usize) -> OutputsSection {
    OutputsSection {
        queue,
        webhook: WebhookOutput {
            enabled: true,
            url: format!("http://{addr}/"),
            timeout_ms: 10_000,
            max_retries: 5,
            backoff_initial_ms: 20,
            backoff_max_ms: 100,
        },
        ..Default::default()
    }
}

async fn until(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn falco_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// Checks one alert's Falco JSON field by field against the alert it came from.
fn check_falco(v: &Value, a: &Alert) {
    assert_eq!(
        falco_keys(v),
        [
            "hostname",
            "output",
            "output_fields",
            "priority",
            "rule",
            "source",
            "tags",
            "time"
        ]
    );
    assert_eq!(v["rule"], a.rule.as_str());
    assert_eq!(v["output"], a.output.as_str());
    assert_eq!(v["priority"], falco::priority(a.severity));
    assert_eq!(v["source"], "syscall");
    assert_eq!(v["hostname"], "node-7");
    assert_eq!(v["tags"], serde_json::json!(a.tags));
    let t = v["time"].as_str().unwrap();
    assert_eq!(t, falco::rfc3339_ns(a.time_ns));
    // 2026-11-26T14:03:53.123456789Z
    assert_eq!(t.len(), 30, "{t}");
    assert!(
        t.ends_with('Z') && t.as_bytes()[10] == b'T' && t.as_bytes()[19] == b'.',
        "{t}"
    );
    let of = &v["output_fields"];
    assert_eq!(of["evt.time"], a.time_ns);
    assert_eq!(of["evt.type"], a.event.event.type_name());
    let meta = a.event.ctx.container.as_ref().unwrap();
    assert_eq!(of["k8s.ns.name"], meta.namespace.as_deref().unwrap());
    assert_eq!(of["k8s.pod.name"], meta.pod_name.as_deref().unwrap());
    assert_eq!(
        of["container.id"],
        a.event.ctx.container_id.as_deref().unwrap()[..12]
    );
    assert_eq!(of["proc.pid"], a.event.event.process.pid);
    assert!(of["proc.cmdline"].is_string(), "{of}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_then_delivers_falco_json() {
    let recv = Arc::new(Recv {
        fail_first: 3,
        ..Default::default()
    });
    let addr = receiver(recv.clone()).await;
    let (tx, rx) = broadcast::channel(64);
    let fields = Arc::new(Fields::new());
    let outs = Outputs::start(&webhook_cfg(addr, 16), "node-7".into(), fields, rx).unwrap();
    let seeded = mission(now_ns());
    let alerts: Vec<Alert> = seeded.alerts[..4].to_vec();
    for a in &alerts {
        tx.send(Arc::new(a.clone())).unwrap();
    }
    let st = outs.stats.clone();
    let c = st.get("webhook").unwrap();
    until("4 alerts delivered", Duration::from_secs(20), || {
        c.sent.load(SeqCst) == 4
    })
    .await;
    // The first alert failed three times (500) and was retried; the rest went through.
    assert_eq!(c.retries.load(SeqCst), 3);
    assert_eq!(c.failed.load(SeqCst), 0);
    assert_eq!(c.dropped.load(SeqCst), 0);
    assert_eq!(recv.requests.load(SeqCst), 7);
    let got = recv.accepted.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    for ((path, ct, body), a) in got.iter().zip(&alerts) {
        assert_eq!(path, "/");
        assert_eq!(ct, "application/json");
        let v: Value = serde_json::from_slice(body).unwrap();
        check_falco(&v, a);
        assert_eq!(v["output_fields"]["k8s.ns.name"], NS);
    }
    outs.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gives_up_after_max_retries() {
    let recv = Arc::new(Recv {
        fail_first: usize::MAX,
        ..Default::default()
    });
    let addr = receiver(recv.clone()).await;
    let (tx, rx) = broadcast::channel(64);
    let mut cfg = webhook_cfg(addr, 16);
    cfg.webhook.max_retries = 2;
    let outs = Outputs::start(&cfg, "node-7".into(), Arc::new(Fields::new()), rx).unwrap();
    let a = mission(now_ns()).alerts[0].clone();
    let t0 = Instant::now();
    tx.send(Arc::new(a)).unwrap();
    let c = outs.stats.clone();
    let c = c.get("webhook").unwrap();
    until("the alert given up", Duration::from_secs(10), || {
        c.failed.load(SeqCst) == 1
    })
    .await;
    assert_eq!(recv.requests.load(SeqCst), 3);
    assert_eq!(c.retries.load(SeqCst), 2);
    assert_eq!(c.sent.load(SeqCst), 0);
    // Backoff 20 ms then 40 ms: at least 60 ms between the first and last attempt.
    assert!(t0.elapsed() >= Duration::from_millis(60));
    outs.shutdown(Duration::from_secs(5)).await;
}

/// A receiver that does not answer: the queue fills, further alerts are dropped and
/// counted, and the sender (the pipeline's broadcast) never waits. Once the receiver
/// answers, every alert is either delivered or counted as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overfull_queue_counts_drops() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let recv = Arc::new(Recv {
        stall: Some(gate.clone()),
        ..Default::default()
    });
    let addr = receiver(recv.clone()).await;
    let (tx, rx) = broadcast::channel(1024);
    let outs = Outputs::start(
        &webhook_cfg(addr, 4),
        "node-7".into(),
        Arc::new(Fields::new()),
        rx,
    )
    .unwrap();
    let c = outs.stats.clone();
    let c = c.get("webhook").unwrap();
    let seeded = mission(now_ns());
    let a = Arc::new(seeded.alerts[0].clone());
    // One alert goes out and stalls in flight.
    tx.send(a.clone()).unwrap();
    until("the first request", Duration::from_secs(5), || {
        recv.requests.load(SeqCst) == 1
    })
    .await;
    for _ in 0..100 {
        tx.send(a.clone()).unwrap();
    }
    // 4 fit in the queue; the other 96 are dropped.
    until("96 drops", Duration::from_secs(5), || {
        c.dropped.load(SeqCst) == 96
    })
    .await;
    // Release the receiver: the in-flight one and the 4 queued are delivered.
    let releaser = tokio::spawn(async move {
        loop {
            gate.notify_waiters();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    until("5 delivered", Duration::from_secs(10), || {
        c.sent.load(SeqCst) == 5
    })
    .await;
    assert_eq!(c.sent.load(SeqCst) + c.dropped.load(SeqCst), 101);
    assert_eq!(c.failed.load(SeqCst), 0);
    releaser.abort();
    outs.shutdown(Duration::from_secs(5)).await;
}

/// Hostile bytes in a process name and argument (an ANSI escape, quotes, a newline,
/// invalid UTF-8) stay valid, escaped JSON on every output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_stay_valid_json() {
    let seeded = mission(now_ns());
    let mut a = seeded
        .alerts
        .iter()
        .find(|a| a.id == seeded.hostile_id)
        .unwrap()
        .clone();
    a.output = "evil \"quoted\"\n\u{1b}[31mred".into();
    a.output_fields
        .insert("proc.name".into(), "x\"}\n{\"rule\":\"forged".into());
    let fields = Fields::new();
    let line = falco::to_line(&a, &fields, "node-7");
    assert!(!line.contains('\n'), "one line: {line}");
    assert!(
        !line.contains('\u{1b}'),
        "control characters are escaped: {line}"
    );
    let v: Value = serde_json::from_str(&line).unwrap();
    check_falco(&v, &a);
    assert_eq!(v["output_fields"]["proc.name"], "x\"}\n{\"rule\":\"forged");
    // The process's own bytes (non-UTF-8 argument) come through the field registry.
    let cmd = v["output_fields"]["proc.cmdline"].as_str().unwrap();
    assert!(!cmd.is_empty());
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn numbered(p: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", p.display()))
}

#[test]
fn rotating_file_rotates_by_size_and_keeps_n() {
    let dir = std::env::temp_dir().join(format!("saker-rot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("sub/alerts.json");
    // 29-byte lines + newline: three per 100-byte file.
    let mut f = RotatingFile::open(&path, 100, 2).unwrap();
    for i in 0..10 {
        f.write_line(format!("line-{i:02}-{}", "x".repeat(21)).as_bytes())
            .unwrap();
    }
    f.flush().unwrap();
    let tag = |ls: Vec<String>| ls.iter().map(|l| l[5..7].to_string()).collect::<Vec<_>>();
    assert_eq!(tag(lines(&path)), ["09"]);
    assert_eq!(tag(lines(&numbered(&path, 1))), ["06", "07", "08"]);
    assert_eq!(tag(lines(&numbered(&path, 2))), ["03", "04", "05"]);
    assert!(!numbered(&path, 3).exists());
    for p in [path.clone(), numbered(&path, 1), numbered(&path, 2)] {
        assert!(std::fs::metadata(&p).unwrap().len() <= 100);
    }
    // Reopening appends and continues from the file's size.
    drop(f);
    let mut f = RotatingFile::open(&path, 100, 2).unwrap();
    f.write_line(format!("line-10-{}", "x".repeat(21)).as_bytes())
        .unwrap();
    f.write_line(format!("line-11-{}", "x".repeat(21)).as_bytes())
        .unwrap();
    f.write_line(format!("line-12-{}", "x".repeat(21)).as_bytes())
        .unwrap();
    assert_eq!(tag(lines(&path)), ["12"]);
    assert_eq!(tag(lines(&numbered(&path, 1))), ["09", "10", "11"]);
    assert_eq!(tag(lines(&numbered(&path, 2))), ["06", "07", "08"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The file output through the dispatcher: 1 MiB files, two kept; every line is one
/// Falco JSON alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_output_rotates() {
    let dir = std::env::temp_dir().join(format!("saker-fileout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("alerts.json");
    let cfg = OutputsSection {
        queue: 8192,
        file: FileOutput {
            enabled: true,
            path: path.clone(),
            max_size_mib: 1,
            keep: 2,
        },
        ..Default::default()
    };
    let (tx, rx) = broadcast::channel(8192);
    let outs = Outputs::start(&cfg, "node-7".into(), Arc::new(Fields::new()), rx).unwrap();
    let seeded = mission(now_ns());
    let a = Arc::new(seeded.alerts[0].clone());
    let one = falco::to_line(&a, &Fields::new(), "node-7").len() + 1;
    // Enough for a bit over three files.
    let n = (3 * (1 << 20) / one) + 10;
    for _ in 0..n {
        tx.send(a.clone()).unwrap();
    }
    let st = outs.stats.clone();
    let c = st.get("file").unwrap();
    until("all written", Duration::from_secs(20), || {
        c.sent.load(SeqCst) == n as u64
    })
    .await;
    outs.shutdown(Duration::from_secs(5)).await;
    let per_file = (1 << 20) / one;
    assert_eq!(lines(&numbered(&path, 1)).len(), per_file);
    assert_eq!(lines(&numbered(&path, 2)).len(), per_file);
    assert!(!numbered(&path, 3).exists());
    let rest = lines(&path);
    assert_eq!(rest.len(), n - 3 * per_file);
    for l in rest.iter().chain(lines(&numbered(&path, 1)).iter()) {
        let v: Value = serde_json::from_str(l).unwrap();
        check_falco(&v, &a);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real `sakerd` with a configuration file: a real exec that matches a rule reaches
/// stdout (--alerts-stdout overriding the file), the rotating file and the webhook as
/// the same Falco JSON; the metrics endpoint is disabled by the file.
#[test]
fn sakerd_sends_real_alerts_to_every_output() {
    api_support::require_root();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let recv = Arc::new(Recv::default());
    let addr = rt.block_on(receiver(recv.clone()));
    let dir = api_support::temp_dir("sakerd-out");
    let cfg = dir.join("saker.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"node = "out-node"
[rules]
paths = ["{rules}"]
[store]
path = "{dir}/saker.db"
[api]
socket = "{dir}/run/saker.sock"
[containerd]
enabled = false
[assistant]
no_model = true
[sensor]
ring_mib = 4
[outputs.file]
enabled = true
path = "{dir}/alerts.json"
[outputs.webhook]
enabled = true
url = "http://{addr}/"
[metrics]
enabled = false
"#,
            rules = api_support::rules_file().display(),
            dir = dir.display(),
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sakerd"))
        .args(["--config", cfg.to_str().unwrap(), "--alerts-stdout", "run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    // Ready when the API socket exists.
    let t0 = Instant::now();
    while !dir.join("run/saker.sock").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "sakerd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let marker = format!("stratum+tcp://out-test-{}.example:3333", std::process::id());
    let st = std::process::Command::new("/bin/echo")
        .arg(&marker)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let t0 = Instant::now();
    let mine = |b: &Bytes| String::from_utf8_lossy(b).contains(&marker);
    while !recv
        .accepted
        .lock()
        .unwrap()
        .iter()
        .any(|(_, _, b)| mine(b))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no webhook delivery"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill sends a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(child.wait().unwrap().success());
    let log = log.join().unwrap();
    assert!(
        !log.contains("metrics endpoint"),
        "metrics disabled by the file: {log}"
    );

    let hook: Value = {
        let got = recv.accepted.lock().unwrap();
        let (_, ct, body) = got.iter().find(|(_, _, b)| mine(b)).unwrap();
        assert_eq!(ct, "application/json");
        serde_json::from_slice(body).unwrap()
    };
    let pick = |text: &str| -> Value {
        let line = text
            .lines()
            .find(|l| l.contains(&marker))
            .unwrap_or_else(|| panic!("no alert line in {text}"));
        serde_json::from_str(line).unwrap()
    };
    let stdout_v = pick(&out);
    let file_v = pick(&std::fs::read_to_string(dir.join("alerts.json")).unwrap());
    assert_eq!(stdout_v, hook);
    assert_eq!(file_v, hook);
    assert_eq!(
        hook["rule"],
        "Malware - Stratum Mining Protocol In Command Line"
    );
    assert_eq!(hook["hostname"], "out-node");
    assert_eq!(hook["source"], "syscall");
    assert_eq!(hook["output_fields"]["proc.name"], "echo");
    assert_eq!(hook["output_fields"]["container.id"], "host");
    assert!(hook["output_fields"]["proc.cmdline"]
        .as_str()
        .unwrap()
        .contains(&marker));
    let _ = std::fs::remove_dir_all(&dir);
}
