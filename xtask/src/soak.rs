//! `cargo xtask soak --minutes N`: the real daemon under sustained overload.
//!
//! Builds and starts the release `sakerd` (temporary store and socket, no model, no
//! containerd, the packaged rules), then alternates storm phases (exec, open and connect
//! storms from `saker-workload`, several processes of each, at full speed) with quiet
//! phases. Every `--report-s` seconds and at the end it prints, from the real `saker` CLI
//! (gRPC over the unix socket) and /proc: events received, drops per class (kernel ring
//! buffer per event class, decode errors, the pipeline queue, the store queues), the
//! daemon's RSS, and the health alerts ("Sensor dropped events" / "Sensor drops stopped").
//!
//! It fails when the daemon's RSS passes `--max-rss-mib`, when the daemon dies, when a
//! storm phase lost events but raised no "Sensor dropped events" alert, when the last
//! quiet phase did not clear it, or when no storm overloaded the sensor at all (then the
//! soak proved nothing about overload).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use serde_json::Value;

#[derive(clap::Args)]
pub struct SoakArgs {
    /// Total duration (whole storm+quiet cycles, at least one).
    #[arg(long, default_value_t = 10)]
    pub minutes: u64,
    /// sakerd's ring buffer (MiB). Smaller rings overflow sooner under the same load.
    #[arg(long, default_value_t = 1)]
    pub ring_mib: u32,
    /// Processes per storm kind (exec, open, connect) during a storm phase.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Length of a storm phase, seconds.
    #[arg(long, default_value_t = 60)]
    pub storm_s: u64,
    /// Length of a quiet phase, seconds (longer than the daemon's 30 s clearing delay).
    #[arg(long, default_value_t = 60)]
    pub quiet_s: u64,
    /// Seconds between progress reports.
    #[arg(long, default_value_t = 10)]
    pub report_s: u64,
    /// Fail when sakerd's resident memory exceeds this (MiB).
    #[arg(long, default_value_t = 512)]
    pub max_rss_mib: u64,
    /// Use these binaries instead of building (directory with sakerd, saker,
    /// saker-workload).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

const RULE_DROPS: &str = "Sensor dropped events";
const RULE_CLEARED: &str = "Sensor drops stopped";

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A 64-bit proto JSON number (a string) or a plain number.
fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// One reading of the daemon through the API and /proc.
#[derive(Clone, Default)]
struct Reading {
    t: f64,
    events: u64,
    /// `class_name[.event_kind]` → cumulative count.
    drops: BTreeMap<String, u64>,
    rss_kib: u64,
}

impl Reading {
    fn dropped(&self) -> u64 {
        // Subscriber lag is a slow API client, not a lost event.
        self.drops
            .iter()
            .filter(|(k, _)| !k.starts_with("subscriber_lagged"))
            .map(|(_, v)| v)
            .sum()
    }
}

struct Daemon {
    child: Child,
    socket: PathBuf,
    saker: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn cli(&self, args: &[&str]) -> anyhow::Result<Vec<Value>> {
        let out = Command::new(&self.saker)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(args)
            .output()
            .context("running saker")?;
        if !out.status.success() {
            bail!(
                "saker {args:?}: {} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).context("saker --json output"))
            .collect()
    }

    fn read(&self, t: f64) -> anyhow::Result<Reading> {
        let lines = self.cli(&["node"])?;
        let info = lines
            .iter()
            .find_map(|l| l.get("info"))
            .context("saker node: no info line")?;
        let mut r = Reading {
            t,
            events: num(&info["events_received"]),
            rss_kib: rss_kib(self.child.id())?,
            ..Default::default()
        };
        for d in info["drops"].as_array().into_iter().flatten() {
            let class = d["class_name"].as_str().unwrap_or("");
            let kind = d["event_kind"].as_str().unwrap_or("");
            let key = if kind.is_empty() {
                class.to_string()
            } else {
                format!("{class}.{kind}")
            };
            r.drops.insert(key, num(&d["count"]));
        }
        Ok(r)
    }

    /// Health alerts (rule, time) in store order.
    fn health_alerts(&self) -> anyhow::Result<Vec<(String, i64, String)>> {
        let filter = format!("rule in (\"{RULE_DROPS}\", \"{RULE_CLEARED}\")");
        let lines = self.cli(&["events", "--oldest", "-n", "10000", "-f", &filter])?;
        Ok(lines
            .iter()
            .filter_map(|l| l.get("alert"))
            .map(|a| {
                (
                    a["rule"].as_str().unwrap_or("").to_string(),
                    i64::try_from(num(&a["time_ns"])).unwrap_or(0),
                    a["output"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect())
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn stop(mut self) -> anyhow::Result<String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.alive() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        Ok(log
            .lines()
            .find_map(|l| l.strip_prefix("sakerd: summary "))
            .unwrap_or("")
            .to_string())
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (is sakerd alive?)"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS in /proc/PID/status")
}

fn start_daemon(bins: &Path, dir: &Path, ring_mib: u32) -> anyhow::Result<Daemon> {
    let socket = dir.join("saker.sock");
    let log = dir.join("sakerd.log");
    let child = Command::new(bins.join("sakerd"))
        .arg("--store")
        .arg(dir.join("saker.db"))
        .arg("--socket")
        .arg(&socket)
        .args(["--no-model", "--no-containerd", "--ring-mib"])
        .arg(ring_mib.to_string())
        .arg("run")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting sakerd")?;
    let mut d = Daemon {
        child,
        socket,
        saker: bins.join("saker"),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&d.log).unwrap_or_default();
        if text.contains("sakerd: ready") {
            return Ok(d);
        }
        if !d.alive() || Instant::now() > deadline {
            let _ = d.child.kill();
            bail!("sakerd did not start:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One storm phase's workers.
fn start_storm(
    bins: &Path,
    dir: &Path,
    workers: usize,
    secs: u64,
) -> anyhow::Result<Vec<(String, Child)>> {
    let mut v = Vec::new();
    for i in 0..workers {
        let path = dir.join(format!("storm-{i}"));
        for (kind, arg) in [
            ("exec", String::new()),
            ("open", path.display().to_string()),
            // Port 9 (discard): UDP connect needs no listener.
            ("connect", "9".to_string()),
        ] {
            let mut c = Command::new(bins.join("saker-workload"));
            c.args(["storm", kind, &secs.to_string()]);
            if !arg.is_empty() {
                c.arg(&arg);
            }
            let child = c
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting saker-workload")?;
            v.push((kind.to_string(), child));
        }
    }
    Ok(v)
}

/// Waits for the workers; total operations per kind.
fn finish_storm(workers: Vec<(String, Child)>) -> BTreeMap<String, u64> {
    let mut ops = BTreeMap::new();
    for (kind, child) in workers {
        match child.wait_with_output() {
            Ok(out) => {
                let n = serde_json::from_slice::<Value>(&out.stdout)
                    .map(|v| num(&v["ops"]))
                    .unwrap_or(0);
                *ops.entry(kind).or_insert(0) += n;
            }
            Err(e) => eprintln!("[soak] a {kind} worker failed: {e}"),
        }
    }
    ops
}

fn fmt_drops(prev: &Reading, cur: &Reading) -> String {
    let parts: Vec<String> = cur
        .drops
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| {
            let d = v.saturating_sub(prev.drops.get(k).copied().unwrap_or(0));
            format!("{k}={v}(+{d})")
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

fn report(phase: &str, prev: &Reading, cur: &Reading) {
    let dt = (cur.t - prev.t).max(0.001);
    let ev = cur.events.saturating_sub(prev.events);
    let dr = cur.dropped().saturating_sub(prev.dropped());
    println!(
        "[soak] t={:>5.0}s {phase:<6} events={} (+{ev}, {:.0}/s) lost=+{dr} ({:.0}/s) rss={:.1} MiB drops: {}",
        cur.t,
        cur.events,
        ev as f64 / dt,
        dr as f64 / dt,
        cur.rss_kib as f64 / 1024.0,
        fmt_drops(prev, cur)
    );
}

struct Phase {
    storm: bool,
    start_ns: i64,
    end_ns: i64,
    events: u64,
    lost: u64,
    secs: f64,
    ops: BTreeMap<String, u64>,
}

pub fn run(root: &Path, a: SoakArgs) -> anyhow::Result<()> {
    let bins = match &a.bin_dir {
        Some(d) => d.clone(),
        None => {
            crate::cargo(&[
                "build",
                "--release",
                "-p",
                "saker-daemon",
                "--bin",
                "sakerd",
                "--bin",
                "saker",
                "-p",
                "saker-tests",
                "--bin",
                "saker-workload",
            ])?;
            root.join("target/release")
        }
    };
    let dir = std::env::temp_dir().join(format!("saker-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let res = soak(&bins, &dir, &a);
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn soak(bins: &Path, dir: &Path, a: &SoakArgs) -> anyhow::Result<()> {
    let mut d = start_daemon(bins, dir, a.ring_mib)?;
    let pid = d.child.id();
    println!(
        "[soak] sakerd pid {pid}, ring {} MiB, {} workers per storm kind, storm {} s / quiet {} s, {} min, RSS limit {} MiB",
        a.ring_mib, a.workers, a.storm_s, a.quiet_s, a.minutes, a.max_rss_mib
    );
    let t0 = Instant::now();
    let total = Duration::from_secs(a.minutes * 60);
    let baseline = d.read(0.0)?;
    let mut phases: Vec<Phase> = Vec::new();
    let mut rss: Vec<(f64, u64)> = vec![(0.0, baseline.rss_kib)];
    let mut failure: Option<String> = None;

    // Whole storm+quiet cycles only: a truncated quiet phase could not show the clear.
    let cycles = (total.as_secs() / (a.storm_s + a.quiet_s).max(1)).max(1);
    let mut storm = true;
    'outer: for _ in 0..cycles * 2 {
        let len = if storm { a.storm_s } else { a.quiet_s };
        let phase_start = d.read(t0.elapsed().as_secs_f64())?;
        let start_ns = now_ns();
        let workers = if storm {
            start_storm(bins, dir, a.workers, len)?
        } else {
            Vec::new()
        };
        let end = Instant::now() + Duration::from_secs(len);
        let mut prev = phase_start.clone();
        while Instant::now() < end {
            let wait =
                Duration::from_secs(a.report_s).min(end.saturating_duration_since(Instant::now()));
            std::thread::sleep(wait);
            if !d.alive() {
                failure = Some("sakerd exited during the soak".into());
                finish_storm(workers);
                break 'outer;
            }
            let cur = d.read(t0.elapsed().as_secs_f64())?;
            report(if storm { "storm" } else { "quiet" }, &prev, &cur);
            rss.push((cur.t, cur.rss_kib));
            if cur.rss_kib / 1024 > a.max_rss_mib {
                failure = Some(format!(
                    "sakerd RSS {:.1} MiB exceeds the {} MiB limit",
                    cur.rss_kib as f64 / 1024.0,
                    a.max_rss_mib
                ));
                finish_storm(workers);
                break 'outer;
            }
            prev = cur;
        }
        let ops = finish_storm(workers);
        let phase_end = d.read(t0.elapsed().as_secs_f64())?;
        phases.push(Phase {
            storm,
            start_ns,
            end_ns: now_ns(),
            events: phase_end.events.saturating_sub(phase_start.events),
            lost: phase_end.dropped().saturating_sub(phase_start.dropped()),
            secs: phase_end.t - phase_start.t,
            ops,
        });
        storm = !storm;
    }
    // The last phase should be a quiet one long enough to clear the alert.
    if failure.is_none() && phases.last().is_some_and(|p| p.storm) {
        println!("[soak] final quiet phase ({} s)", a.quiet_s);
        let start_ns = now_ns();
        let s = d.read(t0.elapsed().as_secs_f64())?;
        std::thread::sleep(Duration::from_secs(a.quiet_s));
        let e = d.read(t0.elapsed().as_secs_f64())?;
        report("quiet", &s, &e);
        rss.push((e.t, e.rss_kib));
        phases.push(Phase {
            storm: false,
            start_ns,
            end_ns: now_ns(),
            events: e.events.saturating_sub(s.events),
            lost: e.dropped().saturating_sub(s.dropped()),
            secs: e.t - s.t,
            ops: BTreeMap::new(),
        });
    }
    let last = d.read(t0.elapsed().as_secs_f64())?;
    let alerts = d.health_alerts()?;
    let summary = d.stop()?;

    let ev_total = last.events.saturating_sub(baseline.events);
    let lost_total = last.dropped().saturating_sub(baseline.dropped());
    println!("\n[soak] ===== summary =====");
    println!(
        "[soak] {:.0} s, events received {}, lost {} ({:.2} %)",
        last.t,
        ev_total,
        lost_total,
        100.0 * lost_total as f64 / (ev_total + lost_total).max(1) as f64
    );
    println!(
        "[soak] drops by class (cumulative): {}",
        fmt_drops(&baseline, &last)
    );
    let peak = rss.iter().map(|(_, r)| *r).max().unwrap_or(0);
    println!(
        "[soak] RSS MiB over time: {}",
        rss.iter()
            .map(|(t, r)| format!("{t:.0}s:{:.1}", *r as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "[soak] RSS start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB (limit {} MiB)",
        rss.first().map_or(0, |r| r.1) as f64 / 1024.0,
        peak as f64 / 1024.0,
        rss.last().map_or(0, |r| r.1) as f64 / 1024.0,
        a.max_rss_mib
    );
    for (i, p) in phases.iter().enumerate() {
        let offered = p.events + p.lost;
        println!(
            "[soak] phase {i} {:<5} {:>4.0} s: received {} ({:.0}/s), lost {} ({:.1} %), offered/handled {:.2}{}",
            if p.storm { "storm" } else { "quiet" },
            p.secs,
            p.events,
            p.events as f64 / p.secs.max(0.001),
            p.lost,
            100.0 * p.lost as f64 / offered.max(1) as f64,
            offered as f64 / p.events.max(1) as f64,
            if p.ops.is_empty() {
                String::new()
            } else {
                format!(", workload ops {:?}", p.ops)
            }
        );
    }
    println!("[soak] health alerts ({}):", alerts.len());
    for (rule, t, out) in &alerts {
        println!("[soak]   {t} {rule}: {out}");
    }
    println!("[soak] sakerd summary: {summary}");

    if let Some(f) = failure {
        bail!("soak failed: {f}");
    }
    // Every phase that lost events has a raise at or after its start (one episode can
    // span several phases when a quiet phase was too short to clear it).
    let mut problems = Vec::new();
    if !phases.iter().any(|p| p.storm && p.lost > 0) {
        problems.push(
            "no storm phase overloaded the sensor (no drops): raise --workers or lower --ring-mib"
                .to_string(),
        );
    }
    // Alerts are stamped when the daemon polls (every 2 s): allow for that.
    const GRACE_NS: i64 = 5_000_000_000;
    let open_at = |t_ns: i64| {
        alerts
            .iter()
            .rfind(|(_, t, _)| *t < t_ns)
            .is_some_and(|(r, _, _)| r == RULE_DROPS)
    };
    let in_phase = |p: &Phase, rule: &str| {
        alerts
            .iter()
            .any(|(r, t, _)| r == rule && *t >= p.start_ns && *t <= p.end_ns + GRACE_NS)
    };
    for p in &phases {
        let kind = if p.storm { "storm" } else { "quiet" };
        if p.lost > 0 && !open_at(p.start_ns) && !in_phase(p, RULE_DROPS) {
            problems.push(format!(
                "a {kind} phase lost {} events but no \"{RULE_DROPS}\" alert covers it",
                p.lost
            ));
        }
        // sakerd clears 30 s after the last drop, polling every 2 s.
        if !p.storm
            && p.secs >= 35.0
            && p.lost == 0
            && open_at(p.start_ns)
            && !in_phase(p, RULE_CLEARED)
        {
            problems.push(format!(
                "a quiet phase of {:.0} s without drops did not clear the episode",
                p.secs
            ));
        }
    }
    match alerts.last() {
        Some((r, _, _)) if r == RULE_CLEARED => {}
        Some(_) => problems.push(format!(
            "the last health alert is not \"{RULE_CLEARED}\": drops were never declared over"
        )),
        None if last.dropped() > baseline.dropped() => {
            problems.push("events were lost but no health alert was raised".into())
        }
        None => {}
    }
    if !problems.is_empty() {
        bail!("soak failed:\n  {}", problems.join("\n  "));
    }
    println!("[soak] PASS");
    Ok(())
}
