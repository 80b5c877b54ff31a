//! The Prometheus endpoint of a real daemon (eBPF sensor, real rules, SQLite store)
//! scraped over HTTP after real processes ran: events by class, a rule matched by a real
//! exec, alerts by severity, the pipeline latency histogram, the store's size, drop
//! counters, and the model latency after an Ask through the API.

mod api_support;

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::Command,
    time::{Duration, Instant},
};

use api_support::{code, stderr, Env, Opts};
use saker::metrics::MetricsServer;

const RULE: &str = "Malware - Stratum Mining Protocol In Command Line";

/// GET /metrics with a plain HTTP/1.1 request; returns (status line, content type, body).
fn scrape(addr: SocketAddr) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: saker\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    let ct = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, ct, body.to_string())
}

/// Sample name with labels (as written) → value; also checks the text format's shape.
fn samples(body: &str) -> HashMap<String, f64> {
    let mut m = HashMap::new();
    for l in body.lines() {
        if l.starts_with('#') || l.is_empty() {
            assert!(
                l.is_empty() || l.starts_with("# HELP saker_") || l.starts_with("# TYPE saker_"),
                "{l}"
            );
            continue;
        }
        let (name, v) = l.rsplit_once(' ').unwrap();
        let v: f64 = v.parse().unwrap_or_else(|_| panic!("bad value: {l}"));
        assert!(
            m.insert(name.to_string(), v).is_none(),
            "duplicate sample {name}"
        );
    }
    m
}

fn get(m: &HashMap<String, f64>, k: &str) -> f64 {
    *m.get(k).unwrap_or_else(|| panic!("no sample {k}"))
}

#[test]
fn scrape_after_real_events() {
    let env = Env::start("metrics", Opts::default());
    let server = env
        .rt
        .block_on(MetricsServer::start(
            "127.0.0.1:0".parse().unwrap(),
            env.daemon.clone(),
            None,
        ))
        .unwrap();
    let addr = server.addr;

    let (status, ct, body) = scrape(addr);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let before = samples(&body);
    let rule_key = format!("saker_rule_matches_total{{rule=\"{RULE}\"}}");
    let rule_before = before.get(&rule_key).copied().unwrap_or(0.0);

    // Real processes: execs (one matches the stratum rule), a file written, a connect.
    let dir = env.dir.join("work");
    std::fs::create_dir_all(&dir).unwrap();
    for _ in 0..3 {
        let st = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "echo stratum+tcp://pool.example:3333 > {}/out; cat {}/out > /dev/null",
                dir.display(),
                dir.display()
            ))
            .status()
            .unwrap();
        assert!(st.success());
    }
    // A connect from another process (the test's own pid is excluded by the sensor),
    // which is also a scrape by an independent client.
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import urllib.request as u; r = u.urlopen('http://{addr}/metrics'); \
             print(r.status, r.headers['Content-Type']); \
             print(sum(1 for l in r.read().decode().splitlines() if l.startswith('saker_')))"
        ))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py = String::from_utf8_lossy(&out.stdout);
    assert!(py.starts_with("200 text/plain; version=0.0.4"), "{py}");
    let st = Command::new("/bin/echo")
        .arg("--url=stratum+tcp://pool.example:3333")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());

    // Wait until the alert is raised and stored.
    let t0 = Instant::now();
    let after = loop {
        env.daemon.flush().unwrap();
        let m = samples(&scrape(addr).2);
        if m.get(&rule_key).copied().unwrap_or(0.0) > rule_before {
            break m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no alert for {RULE}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for class in ["exec", "lifecycle", "file", "net"] {
        let k = format!("saker_events_total{{class=\"{class}\"}}");
        assert!(get(&after, &k) > get(&before, &k), "{k} did not grow");
    }
    let sev: f64 = [
        "Emergency",
        "Alert",
        "Critical",
        "Error",
        "Warning",
        "Notice",
        "Informational",
        "Debug",
    ]
    .iter()
    .map(|s| get(&after, &format!("saker_alerts_total{{severity=\"{s}\"}}")))
    .sum();
    let sev_before: f64 = before
        .iter()
        .filter(|(k, _)| k.starts_with("saker_alerts_total"))
        .map(|(_, v)| v)
        .sum();
    assert!(sev > sev_before);
    let alerts = env
        .daemon
        .counters
        .alerts
        .load(std::sync::atomic::Ordering::Relaxed) as f64;
    assert!(sev <= alerts && sev >= alerts - 50.0, "{sev} vs {alerts}");

    // Latency histogram: cumulative buckets, +Inf equals the count, which grew.
    let count = get(&after, "saker_pipeline_latency_seconds_count");
    assert!(count > get(&before, "saker_pipeline_latency_seconds_count"));
    assert_eq!(
        get(&after, "saker_pipeline_latency_seconds_bucket{le=\"+Inf\"}"),
        count
    );
    let b1 = get(
        &after,
        "saker_pipeline_latency_seconds_bucket{le=\"0.001\"}",
    );
    let b2 = get(&after, "saker_pipeline_latency_seconds_bucket{le=\"0.01\"}");
    assert!(b1 <= b2 && b2 <= count);
    assert!(get(&after, "saker_pipeline_latency_seconds_sum") > 0.0);

    // Store size: the SQLite file and WAL exist and hold the alert.
    let bytes = get(&after, "saker_store_bytes");
    let db = env.daemon.store.path();
    assert!(bytes >= std::fs::metadata(db).unwrap().len() as f64 && bytes > 0.0);

    // Drop counters are present for every sensor class and the store.
    for k in [
        "saker_drops_total{reason=\"ringbuf_full\",class=\"exec\"}",
        "saker_drops_total{reason=\"pipeline_full\"}",
        "saker_drops_total{reason=\"store_queue_full\",kind=\"alert\"}",
    ] {
        assert!(after.contains_key(k), "{k}");
    }
    assert_eq!(get(&after, "saker_metadata_lookup_failures_total"), 0.0);

    // Model latency: an Ask through the real API (deterministic assistant).
    let ask_before = get(&after, "saker_model_latency_seconds_count{op=\"ask\"}");
    let o = env.saker(&["--json", "ask", "What happened?", "--no-narrative"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = samples(&scrape(addr).2);
    assert_eq!(
        get(&m, "saker_model_latency_seconds_count{op=\"ask\"}"),
        ask_before + 1.0
    );
    assert!(get(&m, "saker_model_latency_seconds_sum{op=\"ask\"}") > 0.0);

    // Unknown paths are 404.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");

    env.rt.block_on(server.shutdown());
    assert!(TcpStream::connect(addr).is_err(), "the endpoint is closed");
    env.stop();
}
