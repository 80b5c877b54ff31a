//! Privilege and exposure of a real `sakerd`: the capabilities only loading needed are
//! gone from every thread while the daemon keeps alerting, and the API's unix socket
//! refuses users outside root and its group (the real `saker` CLI run as `nobody` through
//! util-linux's `setpriv`).
//!
//! TCP without mutual TLS: raw plaintext HTTP/2 (h2c) and HTTP/1.1 bytes get no answer
//! here; the CLI over plaintext, TLS without a client certificate and with a foreign one
//! are refused in `api_cli.rs` (`tcp_needs_a_client_certificate`), and sakerd refuses
//! `--listen` without the TLS files (`sakerd_refuses_tcp_without_mtls`).

mod api_support;
mod sakerd_support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::Duration;

use saker::privilege::{cap, CapSets};
use sakerd_support::*;

/// Capabilities that must be gone after loading (never needed at run time).
const GONE: [u32; 10] = [
    cap::SYS_ADMIN,
    cap::BPF,
    cap::PERFMON,
    cap::NET_ADMIN,
    cap::SYS_MODULE,
    cap::SYS_RAWIO,
    cap::SETPCAP,
    cap::DAC_OVERRIDE,
    cap::SYS_RESOURCE,
    cap::SETFCAP,
];

fn threads(pid: u32) -> Vec<(u32, CapSets)> {
    let mut out: Vec<(u32, CapSets)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(|t| Some((t, CapSets::of(pid, Some(t))?)))
        .collect();
    out.sort_by_key(|(t, _)| *t);
    out
}

fn has(mask: u64, c: u32) -> bool {
    mask & cap::bit(c) != 0
}

/// Runs /bin/sh -c with a stratum URL in the command line (a CRITICAL rule) and returns
/// the shell's pid.
fn miner_command_line(tag: &str) -> u32 {
    let mut c = Command::new("/bin/sh")
        .args([
            "-c",
            &format!("exit 0 # stratum+tcp://pool.{tag}.invalid:3333"),
        ])
        .spawn()
        .expect("spawn sh");
    let pid = c.id();
    c.wait().expect("wait sh");
    pid
}

#[test]
fn sakerd_drops_the_loading_capabilities_on_every_thread_and_keeps_alerting() {
    let mut d = Sakerd::start("priv", &[], &[]);
    let pid = d.pid();
    let before_any = CapSets::of(std::process::id(), None).expect("own status");
    assert!(
        has(before_any.effective, cap::SYS_ADMIN),
        "the test runs with full root capabilities"
    );

    let ts = threads(pid);
    assert!(ts.len() >= 2, "sakerd runs several threads: {ts:?}");
    for (tid, c) in &ts {
        for g in GONE {
            let n = cap::NAMES[g as usize];
            assert!(!has(c.effective, g), "thread {tid}: {n} still effective");
            assert!(!has(c.permitted, g), "thread {tid}: {n} still permitted");
            assert!(
                !has(c.bounding, g),
                "thread {tid}: {n} still in the bounding set"
            );
        }
        assert_eq!(c.ambient, 0, "thread {tid}");
        // What the daemon still uses: reading other processes' /proc entries and files.
        for k in [cap::SYS_PTRACE, cap::DAC_READ_SEARCH] {
            assert!(
                has(c.effective, k),
                "thread {tid}: {} kept",
                cap::NAMES[k as usize]
            );
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let leader = CapSets::of(pid, None).unwrap();
    assert!(!has(leader.permitted, cap::SYS_ADMIN) && !has(leader.permitted, cap::BPF));
    let log = d.log_text();
    assert!(
        log.contains("capabilities dropped after loading the sensor") && log.contains("CAP_BPF"),
        "{log}"
    );

    // Still working: a new alert arrives (ring buffer read through the map fd, rules,
    // store, API), and the drop counters are read from the per-CPU map without CAP_BPF.
    let sh = miner_command_line("priv");
    let alerts = d.wait_alerts(
        &format!(
            "rule = \"Malware - Stratum Mining Protocol In Command Line\" and proc.pid = {sh}"
        ),
        Duration::from_secs(20),
    );
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let o = d.saker(&["--json", "node"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let node: serde_json::Value =
        serde_json::from_slice(o.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    // Kernel classes come from the per-CPU DROPS map.
    let drops = node["info"]["drops"].as_array().expect("drop counters");
    assert!(
        drops
            .iter()
            .filter(|d| d["class_name"] == "ringbuf_full")
            .count()
            >= 4,
        "{node}"
    );
    // A rule reload (SIGHUP) still reads the rule files.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !d.log_text().contains("rules reloaded") {
        assert!(std::time::Instant::now() < end, "{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = String::from_utf8_lossy(&d.stop()).into_owned();
    assert!(!log.contains("GetInfo: sensor drop counters"), "{log}");
    assert!(log.contains("sakerd: summary"), "{log}");
}

/// The `saker` binary run as uid/gid 65534 (nobody) with `groups` as supplementary groups.
fn saker_as_nobody(d: &Sakerd, groups: Option<&str>) -> Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534"]);
    match groups {
        Some(g) => c.arg(format!("--groups={g}")),
        None => c.arg("--clear-groups"),
    };
    c.args(["--", SAKER, "--socket"])
        .arg(&d.socket)
        .arg("node")
        .output()
        .expect("setpriv (util-linux) runs")
}

#[test]
fn the_api_socket_refuses_other_users_and_admits_its_group() {
    let d = Sakerd::start("sockperm", &[], &[]);
    let dir = d.socket.parent().unwrap().to_path_buf();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.socket), 0o660);
    assert_eq!(mode(&dir), 0o750);

    // root: served.
    let o = d.saker(&["node"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let denied = |o: &Output, what: &str| {
        let e = String::from_utf8_lossy(&o.stderr);
        assert_ne!(o.status.code(), Some(0), "{what}: {e}");
        assert!(
            o.stdout.is_empty(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(
            e.to_lowercase().contains("permission denied"),
            "{what}: {e}"
        );
    };
    // nobody: the socket's directory (0750 root:root) is closed to it.
    denied(&saker_as_nobody(&d, None), "directory 0750");
    // With the directory opened up, the socket's own mode (0660 root:root) refuses it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    denied(&saker_as_nobody(&d, None), "socket 0660");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    // The same unprivileged uid in the socket's group (gid 0): served.
    let o = saker_as_nobody(&d, Some("0"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "group member: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The mutual-TLS port answers neither HTTP/2 with prior knowledge (h2c) nor HTTP/1.1:
/// raw bytes on a socket, no client library in between. At most a TLS alert comes back.
#[test]
fn the_tcp_port_answers_no_plaintext_http() {
    let env = api_support::Env::start(
        "h2c",
        api_support::Opts {
            tls: true,
            ..Default::default()
        },
    );
    let addr = env.tcp.expect("TCP listener");
    let h2c = [
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".as_slice(),
        // An empty SETTINGS frame.
        &[0, 0, 0, 4, 0, 0, 0, 0, 0],
    ]
    .concat();
    let h1 = b"POST /saker.v1.NodeService/GetInfo HTTP/1.1\r\nHost: localhost\r\n\
               content-type: application/grpc\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0"
        .to_vec();
    for (what, req) in [("h2c", h2c), ("HTTP/1.1", h1)] {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // The server may close before everything is written.
        let _ = s.write_all(&req);
        let mut buf = Vec::new();
        // Ends at close, reset or the timeout; what arrived before stays in buf.
        let _ = s.read_to_end(&mut buf);
        assert!(
            buf.is_empty() || buf[0] == 0x15,
            "{what}: only a TLS alert record may come back, got {buf:02x?}"
        );
        assert!(!String::from_utf8_lossy(&buf).contains("HTTP/"), "{what}");
    }
    // A good mTLS client is still served afterwards.
    let c = env.certs.as_ref().unwrap();
    let o = api_support::saker(&[
        "--addr",
        &format!("https://127.0.0.1:{}", addr.port()),
        "--ca",
        c.ca.to_str().unwrap(),
        "--cert",
        c.client_cert.to_str().unwrap(),
        "--key",
        c.client_key.to_str().unwrap(),
        "node",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    env.stop();
}
