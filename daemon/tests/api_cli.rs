//! The real gRPC server through the `saker` CLI: every RPC over the unix socket, mutual
//! TLS over TCP, the bearer token, the socket's permissions, and sakerd's API flags.
//! Runs as root (the daemon loads its eBPF sensor).

mod api_support;

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;

use api_support::*;
use saker::api::{ApiConfig, ApiServer};
use serde_json::Value;

fn alerts_of(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter_map(|l| l.get("alert")).collect()
}

#[test]
fn every_rpc_over_the_unix_socket() {
    let env = Env::start("cli", Opts::default());
    let seeded = env.seed();
    let mine = format!("kubernetes.cluster.name = {CLUSTER} and alert.id startswith api-");

    // QueryEvents: everything seeded, then the namespace the operator starts with.
    let o = env.saker(&["--json", "events", "-n", "1000", "--filter", &mine]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = json_lines(&o);
    let ids: BTreeSet<String> = alerts_of(&lines)
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = seeded.alerts.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids, want);
    let o = env.saker(&[
        "--json",
        "events",
        "-n",
        "1000",
        "--filter",
        &format!("k8s.ns.name = {NS}"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let n = alerts_of(&json_lines(&o)).len();
    assert_eq!(n, seeded.by_workload[0].len() + seeded.by_workload[1].len());
    // Non-column fields go through the daemon's predicate.
    let o = env.saker(&[
        "--json",
        "events",
        "--filter",
        "mitre.tactic = TA0040 and proc.cmdline contains stratum",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(alerts_of(&json_lines(&o)).len() >= 5);

    // Attacker-controlled bytes travel unchanged (RawString), and the table escapes them.
    let o = env.saker(&[
        "--json",
        "events",
        "--filter",
        &format!("alert.id = {}", seeded.hostile_id),
    ]);
    let lines = json_lines(&o);
    let a = alerts_of(&lines)[0];
    let name = a["event"]["process"]["name"]["raw"].as_str().unwrap();
    assert_eq!(name, "ZWFzeRtbMkptaW5lcg==", "base64 of easy\\x1b[2Jminer");
    let o = env.saker(&[
        "events",
        "--filter",
        &format!("alert.id = {}", seeded.hostile_id),
    ]);
    assert_eq!(code(&o), 0);
    assert!(
        !stdout(&o).contains('\u{1b}'),
        "no raw ESC reaches the terminal"
    );

    // Paging with cursors, oldest first: no item twice, none missing.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec![
            "--json",
            "events",
            "--oldest",
            "-n",
            "4",
            "--filter",
            mine.as_str(),
        ];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let o = env.saker(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let lines = json_lines(&o);
        seen.extend(
            alerts_of(&lines)
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string()),
        );
        cursor = lines.iter().find_map(|l| {
            l.get("next_cursor")
                .and_then(|c| c.as_str())
                .map(String::from)
        });
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), want.len(), "{seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), want);

    // Context events come with --context.
    // (The filter must be about events too: `alert.id` would exclude them.)
    let o = env.saker(&[
        "--json",
        "events",
        "--context",
        "--filter",
        &format!("kubernetes.cluster.name = {CLUSTER} and container.id != host"),
    ]);
    let lines = json_lines(&o);
    let events: Vec<&Value> = lines.iter().filter_map(|l| l.get("event")).collect();
    assert_eq!(events.len(), 2, "the two stored DNS lookups of the miners");
    assert!(events.iter().all(|e| e["connect"]["port"] == 53));

    // GetStats by policy and severity.
    let o = env.saker(&[
        "--json",
        "stats",
        "--by",
        "policy,severity",
        "--filter",
        &mine,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s = &json_lines(&o)[0]["stats"];
    assert_eq!(
        s["total"].as_str().unwrap(),
        seeded.alerts.len().to_string()
    );
    let groups = s["groups"].as_array().unwrap();
    let drift = groups
        .iter()
        .find(|g| g["key"][0] == "Drift Detection" && g["key"][1] == "CRITICAL")
        .expect("a Drift Detection/CRITICAL group");
    assert_eq!(drift["count"], "3");
    assert_eq!(drift["max_severity"], "SEVERITY_CRITICAL");
    let o = env.saker(&["stats", "--by", "technique", "--filter", &mine]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("T1496"), "{}", stdout(&o));

    // Incidents: one per workload, each with the script as root cause.
    let o = env.saker(&["--json", "incidents", "--filter", &mine]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let incs: Vec<Value> = json_lines(&o)
        .into_iter()
        .map(|l| l["incident"].clone())
        .collect();
    assert_eq!(incs.len(), 3, "{incs:?}");
    for i in &incs {
        assert!(
            i["root_cause_cmdline"].as_str().unwrap().contains(SCRIPT),
            "{i}"
        );
        assert_eq!(i["affected_workload_count"], 3, "{i}");
    }
    let ns_only = env.saker(&[
        "--json",
        "incidents",
        "--filter",
        &format!("k8s.ns.name = {NS}"),
    ]);
    assert_eq!(json_lines(&ns_only).len(), 2);
    let id = incs[0]["id"].as_str().unwrap();
    let o = env.saker(&["--json", "incident", id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let inc = &json_lines(&o)[0]["incident"];
    assert_eq!(inc["summary"]["id"], id);
    assert_eq!(inc["root_cause"]["cmdline_display"], format!("sh {SCRIPT}"));
    assert!(inc["attack_path"]["nodes"].as_array().unwrap().len() >= 3);
    assert!(
        inc["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "T1496" && t["name"] == "Resource Hijacking"),
        "{inc}"
    );
    assert_eq!(inc["affected_workloads"].as_array().unwrap().len(), 3);
    // The incident's filter selects exactly its alerts.
    let f = inc["filter"].as_str().unwrap();
    let o = env.saker(&["--json", "events", "-n", "1000", "--filter", f]);
    assert_eq!(
        alerts_of(&json_lines(&o)).len(),
        inc["alert_ids"].as_array().unwrap().len()
    );
    let o = env.saker(&["incident", "inc-00000000deadbeef"]);
    assert_eq!(code(&o), 4, "NOT_FOUND: {}", stderr(&o));

    // Ask, streamed, then a follow-up in the same session; Explain.
    let o = env.saker(&[
        "--json",
        "ask",
        "Summarize the events of this cluster.",
        "--filter",
        &format!("k8s.ns.name = {NS}"),
        "--no-narrative",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let parts: Vec<Value> = json_lines(&o)
        .into_iter()
        .map(|l| l["part"].clone())
        .collect();
    let started = &parts[0]["started"];
    let session = started["session_id"].as_str().unwrap().to_string();
    assert!(session.starts_with("s-"), "{started}");
    assert_eq!(started["context_filter"], format!("k8s.ns.name = {NS}"));
    assert!(parts.iter().any(|p| p.get("section").is_some()));
    assert!(parts.iter().any(|p| p.get("evidence").is_some()));
    assert!(parts.last().unwrap().get("done").is_some());
    let o = env.saker(&[
        "--json",
        "ask",
        "What was the root cause?",
        "--session",
        &session,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let parts: Vec<Value> = json_lines(&o)
        .into_iter()
        .map(|l| l["part"].clone())
        .collect();
    assert_eq!(parts[0]["started"]["session_id"], session.as_str());
    assert_eq!(
        parts[0]["started"]["context_filter"],
        format!("k8s.ns.name = {NS}"),
        "the session keeps its context"
    );
    let text = stdout(&o);
    assert!(text.contains("malicious-bin-event-gen.sh"), "{text}");
    let o = env.saker(&[
        "ask",
        "hello?",
        "--session",
        "s-00000000000000000000000000000000",
    ]);
    assert_eq!(code(&o), 4, "unknown session: {}", stderr(&o));
    let o = env.saker(&["explain", &seeded.prevented_id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Drift - Binary Executed From Container Upper Layer"));
    let o = env.saker(&["explain", "api-nope"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));

    // GetInfo.
    let o = env.saker(&["--json", "node"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let info = &json_lines(&o)[0]["info"];
    assert_eq!(info["node"], NODE);
    assert_eq!(info["cluster"], CLUSTER);
    assert_eq!(info["saker_version"], env!("CARGO_PKG_VERSION"));
    assert!(!info["kernel_release"].as_str().unwrap().is_empty());
    assert!(info["programs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["attached"] == true));
    assert!(
        info["rules"]["loaded"].as_u64().unwrap() > 5,
        "{}",
        info["rules"]
    );
    assert!(info["drops"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["class_name"] == "ringbuf_full"));
    let alerts: u64 = info["store"]["alerts"].as_str().unwrap().parse().unwrap();
    assert!(alerts >= seeded.alerts.len() as u64);
    // (At least: the sensor may have seen alerting activity on this host meanwhile.)
    let incidents: u64 = info["store"]["incidents"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(incidents >= 3, "{}", info["store"]);

    // SubscribeEvents through `saker events --follow`: the stored alerts, the end of the
    // backfill, then a live alert from a real exec seen by the sensor.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_saker"))
        .args([
            "--socket",
            env.socket.to_str().unwrap(),
            "--json",
            "events",
            "--follow",
        ])
        .args([
            "--since",
            "1h",
            "--filter",
            &format!("k8s.ns.name = {NS} or proc.name = xmrig"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    let next = || {
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("saker --follow prints")
    };
    let mut backfill = 0;
    loop {
        let v = next();
        if v.get("backfill_done").is_some() {
            break;
        }
        assert!(v.get("alert").is_some(), "{v}");
        backfill += 1;
    }
    assert_eq!(
        backfill,
        seeded.by_workload[0].len() + seeded.by_workload[1].len()
    );
    let miner = env.dir.join("xmrig");
    std::fs::copy("/bin/true", &miner).unwrap();
    assert!(Command::new(&miner).status().unwrap().success());
    let live = next();
    assert_eq!(
        live["alert"]["rule"], "Malware - Known Cryptominer Executed",
        "{live}"
    );
    let _ = follow.kill();
    let _ = follow.wait();

    // A bad filter: INVALID_ARGUMENT with the position and token, exit code 3.
    let o = env.saker(&["events", "--filter", "k8s.ns.name = x and proc.nam = y"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("1:21: unknown field proc.nam (near token 'proc.nam')"),
        "{}",
        stderr(&o)
    );
    let o = env.saker(&["stats", "--filter", "k8s.ns.name ="]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("INVALID_ARGUMENT: 1:"),
        "{}",
        stderr(&o)
    );
    env.stop();
}

#[test]
fn socket_mode_stale_socket_and_a_second_daemon() {
    let env = Env::start("sock", Opts::default());
    let m = std::fs::metadata(&env.socket).unwrap();
    assert!(m.file_type().is_socket());
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
    let dir = std::fs::metadata(env.socket.parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o750);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(m.uid(), 0, "owned by root");

    // A second server on the same socket: refused, the first one keeps serving.
    let cfg = ApiConfig {
        socket: Some(env.socket.clone()),
        ..Default::default()
    };
    let e = env
        .rt
        .block_on(ApiServer::start(env.daemon.clone(), None, cfg))
        .err()
        .expect("a live socket is not taken over");
    assert!(e.to_string().contains("in use"), "{e}");
    assert_eq!(code(&env.saker(&["node"])), 0);

    // A stale socket (nobody listening) is replaced.
    let stale = env.dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let cfg = ApiConfig {
        socket: Some(stale.clone()),
        ..Default::default()
    };
    let s2 = env
        .rt
        .block_on(ApiServer::start(env.daemon.clone(), None, cfg))
        .expect("a stale socket is replaced");
    let o = saker(&["--socket", stale.to_str().unwrap(), "node"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Without an assistant, Ask is UNIMPLEMENTED (exit 3), the rest works.
    let o = saker(&["--socket", stale.to_str().unwrap(), "ask", "what happened?"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("UNIMPLEMENTED"), "{}", stderr(&o));
    env.rt.block_on(s2.shutdown());
    assert!(!stale.exists());

    // A regular file is never replaced.
    let file = env.dir.join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let cfg = ApiConfig {
        socket: Some(file.clone()),
        ..Default::default()
    };
    assert!(env
        .rt
        .block_on(ApiServer::start(env.daemon.clone(), None, cfg))
        .is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    env.stop();
}

#[test]
fn tcp_needs_a_client_certificate() {
    let env = Env::start(
        "mtls",
        Opts {
            tls: true,
            ..Opts::default()
        },
    );
    let seeded = env.seed();
    let c = env.certs.as_ref().unwrap();
    let addr = format!("https://127.0.0.1:{}", env.tcp.unwrap().port());
    let (ca, cert, key) = (
        c.ca.to_str().unwrap(),
        c.client_cert.to_str().unwrap(),
        c.client_key.to_str().unwrap(),
    );

    let o = saker(&[
        "--addr", &addr, "--ca", ca, "--cert", cert, "--key", key, "--json", "node",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["info"]["node"], NODE);
    let o = saker(&[
        "--addr",
        &addr,
        "--ca",
        ca,
        "--cert",
        cert,
        "--key",
        key,
        "--json",
        "events",
        "--filter",
        &format!("alert.id = {}", seeded.prevented_id),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["alert"]["prevented"], true);

    // No client certificate: the server aborts the TLS session (with TLS 1.3 the client
    // only notices at its first request, so the CLI reports a cancelled call or a
    // connection failure).
    let refused = |o: &std::process::Output| {
        assert!(matches!(code(o), 2 | 3), "{}", stderr(o));
        assert!(stdout(o).is_empty(), "{}", stdout(o));
        let e = stderr(o);
        assert!(
            e.contains("CANCELLED")
                || e.contains("UNAVAILABLE")
                || e.contains("transport error")
                || e.contains("connect"),
            "{e}"
        );
    };
    refused(&saker(&["--addr", &addr, "--ca", ca, "node"]));
    // A certificate from another CA: refused too.
    refused(&saker(&[
        "--addr",
        &addr,
        "--ca",
        ca,
        "--cert",
        c.rogue_cert.to_str().unwrap(),
        "--key",
        c.rogue_key.to_str().unwrap(),
        "node",
    ]));
    // Plaintext on the TLS port.
    let o = saker(&[
        "--addr",
        &format!("http://127.0.0.1:{}", env.tcp.unwrap().port()),
        "node",
    ]);
    assert_ne!(code(&o), 0);
    // And the server still serves good clients.
    let o = saker(&[
        "--addr", &addr, "--ca", ca, "--cert", cert, "--key", key, "node",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    env.stop();
}

#[test]
fn bearer_token_is_enforced() {
    let env = Env::start(
        "token",
        Opts {
            token: Some(TOKEN.into()),
            ..Opts::default()
        },
    );
    let o = env.saker(&["node"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("UNAUTHENTICATED"), "{}", stderr(&o));
    let o = env.saker(&["--token", "wrong", "events"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("UNAUTHENTICATED"));
    let tf = env.dir.join("token");
    std::fs::write(&tf, format!("{TOKEN}\n")).unwrap();
    for args in [["node"], ["events"], ["stats"], ["incidents"]] {
        let mut a = vec!["--token-file", tf.to_str().unwrap()];
        a.extend_from_slice(&args);
        let o = env.saker(&a);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        env.server
            .as_ref()
            .unwrap()
            .stats()
            .unauthenticated
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    env.stop();
}

/// sakerd refuses TCP without mutual TLS, before loading anything.
#[test]
fn sakerd_refuses_tcp_without_mtls() {
    let dir = temp_dir("flags");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_sakerd"))
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (c, e) = run(&["--listen", "127.0.0.1:0"]);
    assert_eq!(c, Some(1));
    assert!(
        e.contains("--listen 127.0.0.1:0 needs --tls-cert, --tls-key and --tls-client-ca"),
        "{e}"
    );
    let (c, e) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "/x.pem",
        "--tls-key",
        "/x.key",
    ]);
    assert_eq!(c, Some(1));
    assert!(e.contains("mutual TLS"), "{e}");
    let (c, e) = run(&["--tls-cert", "/x.pem"]);
    assert_eq!(c, Some(1));
    assert!(e.contains("apply to --listen only"), "{e}");
    let bad = dir.join("bad.pem");
    std::fs::write(&bad, "not pem").unwrap();
    let b = bad.to_str().unwrap();
    let (c, e) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        b,
        "--tls-key",
        b,
        "--tls-client-ca",
        b,
    ]);
    assert_eq!(c, Some(1));
    assert!(e.contains("is not a PEM file"), "{e}");
    let empty = dir.join("token");
    std::fs::write(&empty, "\n").unwrap();
    let (c, e) = run(&["--token-file", empty.to_str().unwrap()]);
    assert_eq!(c, Some(1));
    assert!(e.contains("is empty"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
