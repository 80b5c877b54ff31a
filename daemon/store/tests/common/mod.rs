//! Shared test helpers: deterministic alert generation and a brute-force evaluator that
//! runs the same filter through saker-rules.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use saker_event::event::{Connect, Exec, FileKind, FileOp, Process};
use saker_event::{
    Alert, BString, Body, ContainerMeta, Context, Enriched, Event, ProcContext, Severity,
};
use saker_rules::fields::ids;
use saker_rules::{FieldArg, FieldId, FieldSource, Filter, Value};
use saker_store::{AlertColumns, GroupCount, GroupKey, StoreConfig};

pub const BASE_NS: i64 = 1_760_000_000_000_000_000;
pub const HOSTILE: &str = "'; DROP TABLE alerts; --";

/// Writer settings for tests: no retention, quick batches.
pub fn config() -> StoreConfig {
    StoreConfig {
        retention_max_age: None,
        retention_max_bytes: None,
        flush_interval: Duration::from_millis(5),
        reserve_bytes: 0,
        ..StoreConfig::default()
    }
}

/// splitmix64: reproducible without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

pub const NAMESPACES: [&str; 5] = [
    "risk-10-aws-bedrock-java",
    "default",
    "kube-system",
    "payments",
    "ns-\"quoted\"",
];
pub const POLICIES: [Option<&str>; 4] = [
    Some("Drift Detection"),
    Some("Malicious Binary Detection"),
    Some("Runtime Threats"),
    None,
];
pub const RULES: [&str; 5] = [
    "Drift detected (chmod +x)",
    "Reverse shell",
    "Crypto miner",
    "Read sensitive file",
    "Terminal shell in container",
];
pub const SEVERITIES: [Severity; 8] = [
    Severity::Emergency,
    Severity::Alert,
    Severity::Critical,
    Severity::Error,
    Severity::Warning,
    Severity::Notice,
    Severity::Informational,
    Severity::Debug,
];
pub const TECHNIQUES: [&str; 5] = ["T1059", "T1059.004", "T1105", "T1496", "T1611"];
const COMMS: [&[u8]; 8] = [
    b"bash",
    b"sh",
    b"curl",
    b"xmrig",
    b"python3",
    HOSTILE.as_bytes(),
    b"nginx",
    b"x\xffy",
];
const EXES: [&str; 5] = [
    "/bin/bash",
    "/usr/bin/curl",
    "/tmp/xmrig",
    "/usr/BIN/python3",
    "nginx",
];

fn s(x: impl AsRef<str>) -> String {
    x.as_ref().to_string()
}

/// A realistic alert; `i` makes the id unique. Times collide on purpose (ties are
/// broken by id).
pub fn gen_alert(rng: &mut Rng, i: u64) -> Alert {
    let time_ns = BASE_NS + (rng.below(300) as i64) * 1_000;
    let in_container = rng.below(7) != 0;
    let ns = *rng.pick(&NAMESPACES);
    let comm = BString::new(*rng.pick(&COMMS));
    let args: Vec<BString> = if rng.below(6) == 0 {
        Vec::new()
    } else {
        vec![
            BString::from(*rng.pick(&EXES)),
            BString::from("-c"),
            BString::new(b"echo \"hi\" \xfe".to_vec()),
        ]
    };
    let mut techniques: Vec<String> = (0..rng.below(4))
        .map(|_| s(rng.pick(&TECHNIQUES)))
        .collect();
    techniques.dedup();
    let body = match rng.below(3) {
        0 => Body::Exec(Exec {
            filename: args.first().cloned().unwrap_or_default(),
            args: args.clone(),
            args_truncated: false,
            filename_truncated: false,
            exe_dev: 1,
            exe_ino: 2,
            exe_overlay: true,
            exe_upper_layer: rng.below(2) == 0,
            exe_memfd: false,
            prevented: false,
        }),
        1 => Body::File(FileOp {
            op: FileKind::Open,
            path: BString::from("/etc/shadow"),
            path_truncated: false,
            dfd: -100,
            flags: 1,
            mode: 0,
            ret: 3,
        }),
        _ => Body::Connect(Connect {
            fd: 3,
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 4444,
            ret: 0,
        }),
    };
    let container = in_container.then(|| {
        let full = format!("{:064x}", rng.next() as u128 * 7 + 1);
        (
            full,
            ContainerMeta {
                id: String::new(),
                runtime: s("containerd"),
                name: Some(s("app")),
                image: Some(format!(
                    "docker.io/library/{}:1.25",
                    rng.pick(&["nginx", "java", "python"])
                )),
                image_repository: Some(s("docker.io/library/nginx")),
                image_tag: Some(s("1.25")),
                image_digest: None,
                pod_name: Some(format!("{ns}-pod-{}", rng.below(4))),
                pod_uid: None,
                namespace: Some(s(ns)),
                workload: (rng.below(3) != 0)
                    .then(|| format!("{}-web", rng.pick(&["api", "Web", "batch"]))),
                labels: BTreeMap::new(),
                start_ns: Some(BASE_NS),
            },
        )
    });
    let (container_id, container) = match container {
        Some((id, mut meta)) => {
            meta.id = id.clone();
            (Some(id), Some(meta))
        }
        None => (None, None),
    };
    let pid = rng.below(5000) as u32;
    Alert {
        id: format!("node-a-{:06}", (i * 7919) % 1_000_003),
        time_ns,
        rule: s(rng.pick(&RULES)),
        policy: rng.pick(&POLICIES).map(s),
        severity: *rng.pick(&SEVERITIES),
        output: format!("alert {i} with \"quotes\" and 'single' and \\ and\nnewline"),
        output_fields: BTreeMap::from([(s("proc.name"), comm.to_str_lossy().into_owned())]),
        tags: vec![s("container"), s("mitre_execution")],
        mitre_tactics: vec![s("TA0002")],
        mitre_techniques: techniques,
        prevented: rng.below(10) == 0,
        event: Enriched {
            seq: i,
            event: Event {
                time_ns,
                ktime_ns: i,
                process: Process {
                    tid: pid,
                    pid,
                    ppid: rng.below(5000) as u32,
                    comm,
                    ..Process::default()
                },
                body,
            },
            ctx: Context {
                proc: ProcContext {
                    exe: args.first().cloned().unwrap_or_default(),
                    args,
                    ..ProcContext::default()
                },
                container_id,
                container,
                meta_pending: false,
                node: s(rng.pick(&["node-a", "node-b"])),
                cluster: s(rng.pick(&["prod", "staging"])),
            },
        },
    }
}

pub fn gen_alerts(n: u64, seed: u64) -> Vec<Alert> {
    let mut rng = Rng(seed);
    (0..n).map(|i| gen_alert(&mut rng, i)).collect()
}

/// An alert with a given id and time and otherwise fixed content; its event is not an
/// exec, so `proc.exe` comes from `ctx.proc.args`.
pub fn simple_alert(id: &str, time_ns: i64) -> Alert {
    let mut a = gen_alert(&mut Rng(42), 0);
    a.id = id.to_string();
    a.time_ns = time_ns;
    a.event.event.time_ns = time_ns;
    a.event.event.body = Body::Fork;
    a
}

pub fn event(seq: u64, time_ns: i64, container: Option<&str>, pid: u32) -> Enriched {
    Enriched {
        seq,
        event: Event {
            time_ns,
            ktime_ns: seq,
            process: Process {
                pid,
                comm: BString::from("sh"),
                ..Process::default()
            },
            body: Body::Fork,
        },
        ctx: Context {
            container_id: container.map(str::to_string),
            node: s("node-a"),
            ..Context::default()
        },
    }
}

/// The alert as the daemon's FieldSource would answer: the column fields from
/// [`AlertColumns`], plus two fields that are not columns (`evt.type`, `proc.cmdline`).
pub struct Source {
    cols: AlertColumns,
    evt_type: &'static str,
    cmdline: String,
}

impl Source {
    pub fn new(a: &Alert) -> Source {
        let mut cmdline = a.event.event.process.comm.to_str_lossy().into_owned();
        for arg in a.event.ctx.proc.args.iter().skip(1) {
            cmdline.push(' ');
            cmdline.push_str(&arg.to_str_lossy());
        }
        Source {
            cols: AlertColumns::from_alert(a),
            evt_type: a.event.event.type_name(),
            cmdline,
        }
    }
}

impl FieldSource for Source {
    fn get(&self, field: FieldId, arg: &FieldArg) -> Option<Value<'_>> {
        match field {
            ids::EVT_TYPE => Some(Value::Str(self.evt_type)),
            ids::PROC_CMDLINE => Some(Value::Str(&self.cmdline)),
            _ => self.cols.get(field, arg),
        }
    }
}

pub fn compile(filter: &str) -> Filter {
    match Filter::compile(filter, &saker_rules::saker_fields()) {
        Ok(f) => f,
        Err(e) => panic!("{filter}: {e}"),
    }
}

/// The predicate the daemon would pass: the whole filter, evaluated by saker-rules.
pub fn predicate(filter: &str) -> impl Fn(&Alert) -> bool + Send + 'static {
    let f = compile(filter);
    move |a: &Alert| f.matches(&Source::new(a))
}

/// Brute force: matching alerts sorted by (time_ns, id).
pub fn brute_force<'a>(alerts: &'a [Alert], filter: &str) -> Vec<&'a Alert> {
    let f = compile(filter);
    let mut out: Vec<&Alert> = alerts
        .iter()
        .filter(|a| f.matches(&Source::new(a)))
        .collect();
    out.sort_by(|x, y| (x.time_ns, &x.id).cmp(&(y.time_ns, &y.id)));
    out
}

pub fn ids<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Vec<String> {
    alerts.into_iter().map(|a| a.id.clone()).collect()
}

/// Brute-force grouped counts, sorted as the store sorts them.
pub fn brute_groups(matching: &[&Alert], keys: &[GroupKey]) -> Vec<GroupCount> {
    let mut groups: BTreeMap<Vec<Option<String>>, u64> = BTreeMap::new();
    for a in matching {
        let c = AlertColumns::from_alert(a);
        let mut combos: Vec<Vec<Option<String>>> = vec![Vec::new()];
        for k in keys {
            let vals: Vec<Option<String>> = match k {
                GroupKey::Policy => vec![c.policy.clone()],
                GroupKey::Rule => vec![Some(c.rule.clone())],
                GroupKey::Severity => vec![Some(c.severity_text.to_string())],
                GroupKey::Namespace => vec![c.namespace.clone()],
                GroupKey::Workload => vec![c.workload.clone()],
                GroupKey::Node => vec![Some(c.node.clone())],
                GroupKey::Technique => {
                    let mut t: Vec<Option<String>> =
                        c.mitre_techniques.iter().cloned().map(Some).collect();
                    t.sort();
                    t.dedup();
                    if t.is_empty() {
                        vec![None]
                    } else {
                        t
                    }
                }
            };
            combos = combos
                .into_iter()
                .flat_map(|p| {
                    vals.iter().map(move |v| {
                        let mut p = p.clone();
                        p.push(v.clone());
                        p
                    })
                })
                .collect();
        }
        for k in combos {
            *groups.entry(k).or_default() += 1;
        }
    }
    let mut out: Vec<GroupCount> = groups
        .into_iter()
        .map(|(key, count)| GroupCount { key, count })
        .collect();
    out.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.key.cmp(&y.key)));
    out
}
