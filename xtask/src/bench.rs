//! `cargo xtask bench sensor`: the sensor's overhead, measured side by side in one run.
//!
//! Workloads (from `saker-workload`): an exec storm (fork+exec /bin/true, waiting for each),
//! a read-only open storm and a write open storm. Each runs with no sensor, with `sakerd run`
//! attached, and with bpftrace running an equivalent program; the three are interleaved
//! `reps` times and medians are reported (docs/benchmarking notes: wall time on these VMs is
//! noise, so the figure of merit is the workload's CPU time plus the agent's CPU time).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to benchmark (only `sensor` here; rules/store have criterion benches).
    pub what: String,
    /// Interleaved repetitions per mode.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Execs in the exec storm.
    #[arg(long, default_value_t = 20_000)]
    pub execs: u64,
    /// Opens in the open storms.
    #[arg(long, default_value_t = 1_000_000)]
    pub opens: u64,
    /// Also run sakerd with its syscall tracepoint fallback forced
    /// (`SAKER_SYSCALL_HOOKS=tracepoints`), to compare both attach paths in one run.
    #[arg(long)]
    pub with_tracepoints: bool,
    /// Run only the storms whose name contains this (e.g. `exec`, `read-only`, `O_CREAT`).
    #[arg(long)]
    pub only: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    None,
    Saker,
    /// sakerd with the syscall tracepoint fallback forced.
    SakerTp,
    Bpftrace,
}

impl Mode {
    fn is_saker(self) -> bool {
        matches!(self, Mode::Saker | Mode::SakerTp)
    }

    fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Saker => "saker",
            Mode::SakerTp => "saker-tp",
            Mode::Bpftrace => "bpftrace",
        }
    }
}

struct Storm {
    name: &'static str,
    args: Vec<String>,
    bpftrace: &'static str,
    /// Events the sensor should deliver per run (for the drop check), if exact.
    expect_events: Option<u64>,
}

#[derive(Default, Clone)]
struct Sample {
    wall: f64,
    workload_cpu: f64,
    agent_cpu: f64,
    agent_events: u64,
    agent_drops: u64,
}

const BT_EXEC: &str = r#"tracepoint:syscalls:sys_enter_execve { printf("%d %d %s ", pid, curtask->real_parent->tgid, comm); join(args->argv); }"#;
const BT_OPEN: &str = r#"tracepoint:syscalls:sys_enter_openat /args->flags & 0x243/ { @f[tid] = args->filename; } tracepoint:syscalls:sys_exit_openat /@f[tid]/ { printf("%d %s %d\n", pid, str(@f[tid]), args->ret); delete(@f[tid]); }"#;

pub fn run(root: &Path, a: BenchArgs) -> anyhow::Result<()> {
    if a.what != "sensor" {
        bail!(
            "unknown benchmark {:?}: use `sensor` (rules and store benches run with `cargo bench`)",
            a.what
        );
    }
    crate::setup::run(true)?;
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "saker-daemon",
        "--bin",
        "sakerd",
        "-p",
        "saker-tests",
        "--bin",
        "saker-workload",
    ])?;
    let sakerd = root.join("target/release/sakerd");
    let workload = root.join("target/release/saker-workload");
    let tmp = std::env::temp_dir().join(format!("saker-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let ro = tmp.join("ro");
    std::fs::write(&ro, b"x")?;
    let wr = tmp.join("wr");
    let storms = [
        Storm {
            name: "exec storm",
            args: vec!["exec-storm".into(), a.execs.to_string()],
            bpftrace: BT_EXEC,
            expect_events: None,
        },
        Storm {
            name: "openat storm (read-only)",
            args: vec![
                "open-storm".into(),
                ro.display().to_string(),
                a.opens.to_string(),
            ],
            bpftrace: BT_OPEN,
            expect_events: None,
        },
        Storm {
            name: "openat storm (O_CREAT|O_WRONLY)",
            args: vec![
                "open-storm".into(),
                wr.display().to_string(),
                (a.opens / 10).to_string(),
                "write".into(),
            ],
            bpftrace: BT_OPEN,
            expect_events: Some(a.opens / 10),
        },
    ];
    let mut report = String::new();
    let chosen = storms
        .iter()
        .filter(|s| a.only.as_deref().is_none_or(|o| s.name.contains(o)));
    for storm in chosen {
        eprintln!("[bench] {} ({} reps, interleaved)", storm.name, a.reps);
        let mut samples: Vec<(Mode, Sample)> = Vec::new();
        let modes: &[Mode] = if a.with_tracepoints {
            &[Mode::None, Mode::Saker, Mode::SakerTp, Mode::Bpftrace]
        } else {
            &[Mode::None, Mode::Saker, Mode::Bpftrace]
        };
        for rep in 0..a.reps {
            for &mode in modes {
                let s = one_run(mode, &sakerd, &workload, storm)
                    .with_context(|| format!("{} with {}", storm.name, mode.name()))?;
                eprintln!(
                    "[bench]   rep {rep} {:8} wall {:.3}s workload cpu {:.3}s agent cpu {:.3}s events {} drops {}",
                    mode.name(), s.wall, s.workload_cpu, s.agent_cpu, s.agent_events, s.agent_drops
                );
                samples.push((mode, s));
            }
        }
        report.push_str(&summarize(storm, modes, &samples));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!("{report}");
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn summarize(storm: &Storm, modes: &[Mode], samples: &[(Mode, Sample)]) -> String {
    let pick = |m: Mode, f: fn(&Sample) -> f64| {
        median(
            samples
                .iter()
                .filter(|(x, _)| *x == m)
                .map(|(_, s)| f(s))
                .collect(),
        )
    };
    // Workload CPU of each repetition, in order.
    let per_rep = |m: Mode| -> Vec<f64> {
        samples
            .iter()
            .filter(|(x, _)| *x == m)
            .map(|(_, s)| s.workload_cpu)
            .collect()
    };
    let range = |m: Mode| {
        let v = per_rep(m);
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    // Ratios within each repetition (same minute of VM noise), then their median and range.
    let paired = |m: Mode| {
        let r: Vec<f64> = per_rep(m)
            .iter()
            .zip(per_rep(Mode::None))
            .map(|(w, n)| w / n)
            .collect();
        let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (median(r), lo, hi)
    };
    let base = pick(Mode::None, |s| s.workload_cpu);
    let mut out = format!("\n### {}\n\n| mode | workload CPU s (median) | min–max | ratio to none | paired ratio median (min–max) | agent CPU s | workload+agent ratio | wall s | agent events | drops |\n|---|---|---|---|---|---|---|---|---|---|\n", storm.name);
    for &m in modes {
        let w = pick(m, |s| s.workload_cpu);
        let (lo, hi) = range(m);
        let (pr, plo, phi) = paired(m);
        let ag = pick(m, |s| s.agent_cpu);
        let ev = pick(m, |s| s.agent_events as f64);
        let dr: u64 = samples
            .iter()
            .filter(|(x, _)| *x == m)
            .map(|(_, s)| s.agent_drops)
            .sum();
        out.push_str(&format!(
            "| {} | {:.3} | {:.3}–{:.3} | {:.3} | {:.3} ({:.3}–{:.3}) | {:.3} | {:.3} | {:.3} | {} | {} |\n",
            m.name(),
            w,
            lo,
            hi,
            w / base,
            pr,
            plo,
            phi,
            ag,
            (w + ag) / base,
            pick(m, |s| s.wall),
            if m.is_saker() {
                format!("{ev:.0}")
            } else {
                "-".into()
            },
            if m.is_saker() {
                dr.to_string()
            } else {
                "-".into()
            },
        ));
    }
    if let Some(n) = storm.expect_events {
        out.push_str(&format!("\nExpected file events per saker run: {n}.\n"));
    }
    out
}

fn proc_cpu_s(pid: u32) -> f64 {
    // utime and stime are fields 14 and 15 of /proc/PID/stat, in clock ticks (100 Hz).
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// Starts an agent and waits until it is attached.
fn start_agent(
    mode: Mode,
    sakerd: &Path,
    storm: &Storm,
) -> anyhow::Result<Option<(Child, std::thread::JoinHandle<String>)>> {
    let mut child = match mode {
        Mode::None => return Ok(None),
        Mode::Saker | Mode::SakerTp => Command::new(sakerd)
            .arg("run")
            .env("RUST_LOG", "warn")
            .env(
                "SAKER_SYSCALL_HOOKS",
                if mode == Mode::SakerTp {
                    "tracepoints"
                } else {
                    "auto"
                },
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?,
        // bpftrace prints "Attaching N probes..." and its events on stdout.
        Mode::Bpftrace => Command::new("bpftrace")
            .args(["-e", storm.bpftrace])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    };
    let stderr: Box<dyn std::io::Read + Send> = match mode {
        Mode::Bpftrace => Box::new(child.stdout.take().context("bpftrace stdout")?),
        _ => Box::new(child.stderr.take().context("agent stderr")?),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("sakerd: ready") || line.contains("Attaching") {
                let _ = tx.send(());
            }
            // Keep sakerd's log (its summary line); bpftrace's event lines are discarded.
            if !line.starts_with(|c: char| c.is_ascii_digit()) {
                all.push_str(&line);
                all.push('\n');
            }
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(60))
        .context("agent did not become ready")?;
    // bpftrace prints "Attaching" just before attaching; give it a moment.
    std::thread::sleep(Duration::from_millis(if mode == Mode::Bpftrace {
        1500
    } else {
        200
    }));
    Ok(Some((child, reader)))
}

fn one_run(mode: Mode, sakerd: &Path, workload: &PathBuf, storm: &Storm) -> anyhow::Result<Sample> {
    let agent = start_agent(mode, sakerd, storm)?;
    let agent_pid = agent.as_ref().map(|(c, _)| c.id());
    let cpu0 = agent_pid.map_or(0.0, proc_cpu_s);
    let t = Instant::now();
    let out = Command::new(workload).args(&storm.args).output()?;
    let wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("workload failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Let the agent drain what the storm produced before reading its CPU time.
    std::thread::sleep(Duration::from_millis(500));
    let cpu1 = agent_pid.map_or(0.0, proc_cpu_s);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("workload output")?;
    let mut s = Sample {
        wall,
        workload_cpu: v["user_s"].as_f64().unwrap_or(0.0) + v["sys_s"].as_f64().unwrap_or(0.0),
        agent_cpu: cpu1 - cpu0,
        ..Default::default()
    };
    if let Some((child, reader)) = agent {
        // SIGINT for a clean exit with a summary.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let mut child = child;
        let _ = child.wait();
        let log = reader.join().unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.starts_with("sakerd: summary ")) {
            let j: serde_json::Value = serde_json::from_str(&line["sakerd: summary ".len()..])?;
            s.agent_events = j["events"].as_u64().unwrap_or(0);
            let d = &j["drops"];
            let kernel: u64 = d["kernel"]
                .as_array()
                .map_or(0, |a| a.iter().filter_map(|p| p[1].as_u64()).sum());
            s.agent_drops = kernel
                + d["decode_errors"].as_u64().unwrap_or(0)
                + d["queue_full"].as_u64().unwrap_or(0);
        }
    }
    Ok(s)
}
