//! Measures rule evaluation throughput on the upstream Falco rules with a
//! struct-backed field source, the way the daemon is expected to implement
//! `FieldSource` (match on `ids::*`, borrow from the event record).
//!
//! `cargo run --release -p saker-rules --example throughput [RULES_DIR]`

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use saker_rules::fields::ids;
use saker_rules::{saker_fields, EvtType, FieldArg, FieldId, FieldSource, ListRef, RuleSet, Value};

/// A simplified enriched event.
struct Event {
    evt_type: &'static str,
    evt_num: u64,
    rawres: i64,
    proc_name: String,
    exe: String,
    exepath: String,
    cmdline: String,
    args: String,
    pname: String,
    pcmdline: String,
    cwd: String,
    ancestors: Vec<String>,
    uid: u32,
    loginuid: i64,
    user: String,
    tty: i64,
    container_id: String,
    image_repo: String,
    upper_layer: bool,
    memfd: bool,
    fd_name: String,
    fd_dir: String,
    fd_num: i64,
    open_flags: String,
    is_open_read: bool,
    is_open_write: bool,
    sip: Option<IpAddr>,
}

impl FieldSource for Event {
    fn get(&self, field: FieldId, arg: &FieldArg) -> Option<Value<'_>> {
        Some(match field {
            ids::EVT_TYPE => Value::Str(self.evt_type),
            ids::EVT_NUM => Value::Uint(self.evt_num),
            ids::EVT_RAWRES => Value::Int(self.rawres),
            ids::EVT_RES => Value::Str(if self.rawres >= 0 {
                "SUCCESS"
            } else {
                "ENOENT"
            }),
            ids::PROC_NAME => Value::Str(&self.proc_name),
            ids::PROC_EXE => Value::Str(&self.exe),
            ids::PROC_EXEPATH => Value::Str(&self.exepath),
            ids::PROC_CMDLINE => Value::Str(&self.cmdline),
            ids::PROC_ARGS => Value::Str(&self.args),
            ids::PROC_PNAME => Value::Str(&self.pname),
            ids::PROC_PCMDLINE => Value::Str(&self.pcmdline),
            ids::PROC_CWD => Value::Str(&self.cwd),
            ids::PROC_TTY => Value::Int(self.tty),
            ids::PROC_ANAME => match arg {
                FieldArg::None => Value::List(ListRef::Strings(&self.ancestors)),
                FieldArg::Index(0) => Value::Str(&self.proc_name),
                FieldArg::Index(i) => Value::Str(self.ancestors.get(*i as usize - 1)?),
                FieldArg::Name(_) => return None,
            },
            ids::USER_UID => Value::Uint(u64::from(self.uid)),
            ids::USER_LOGINUID => Value::Int(self.loginuid),
            ids::USER_NAME => Value::Str(&self.user),
            ids::CONTAINER_ID => Value::Str(&self.container_id),
            ids::CONTAINER_IMAGE_REPOSITORY => Value::Str(&self.image_repo),
            ids::PROC_IS_EXE_UPPER_LAYER => Value::Bool(self.upper_layer),
            ids::PROC_IS_EXE_FROM_MEMFD => Value::Bool(self.memfd),
            ids::FD_NAME => Value::Str(&self.fd_name),
            ids::FD_DIRECTORY => Value::Str(&self.fd_dir),
            ids::FD_NUM => Value::Int(self.fd_num),
            ids::FD_TYPECHAR => Value::Str("f"),
            ids::EVT_IS_OPEN_READ => Value::Bool(self.is_open_read),
            ids::EVT_IS_OPEN_WRITE => Value::Bool(self.is_open_write),
            ids::EVT_ARG => match arg {
                FieldArg::Name(n) if &**n == "flags" => Value::Str(&self.open_flags),
                _ => return None,
            },
            ids::FD_SIP => Value::Ip(self.sip?),
            _ => return None,
        })
    }
}

fn event(evt_type: &'static str, cmdline: &str) -> Event {
    let name = cmdline.split(' ').next().unwrap_or("").to_string();
    Event {
        evt_type,
        evt_num: 1000,
        rawres: 3,
        proc_name: name.clone(),
        exe: name.clone(),
        exepath: format!("/usr/bin/{name}"),
        cmdline: cmdline.to_string(),
        args: cmdline.split_once(' ').map_or("", |(_, a)| a).to_string(),
        pname: "node".into(),
        pcmdline: "node server.js".into(),
        cwd: "/app/".into(),
        ancestors: vec!["node".into(), "containerd-shim".into(), "systemd".into()],
        uid: 1000,
        loginuid: -1,
        user: "app".into(),
        tty: 0,
        container_id: "3ad7b26ded6d".into(),
        image_repo: "docker.io/library/node".into(),
        upper_layer: false,
        memfd: false,
        fd_name: "/app/data/cache.json".into(),
        fd_dir: "/app/data".into(),
        fd_num: 7,
        open_flags: "O_RDONLY".into(),
        is_open_read: true,
        is_open_write: false,
        sip: None,
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/falco-rules")
        });
    let files: Vec<PathBuf> = [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    let reg = saker_fields();
    let (rs, report) = match RuleSet::load(&files, &reg) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let enabled = rs.rules().iter().filter(|r| r.enabled).count();
    println!("{} rules loaded, {enabled} enabled", report.loaded.len());

    let events = [
        (EvtType::from_name("execve"), event("execve", "ls -la /app")),
        (
            EvtType::from_name("openat"),
            event("openat", "node server.js"),
        ),
        (
            EvtType::from_name("connect"),
            event("connect", "node server.js"),
        ),
        (EvtType::from_name("read"), event("read", "node server.js")),
    ];
    for (t, _) in &events {
        println!("{t}: {} candidate rules", rs.candidate_count(*t));
    }
    // The costliest rules for an exec event, to guide rule authors.
    {
        let (t, ev) = &events[0];
        let mut costs = Vec::new();
        for r in rs
            .rules()
            .iter()
            .filter(|r| r.enabled && r.evt_types().contains(*t))
        {
            let start = Instant::now();
            let mut hits = 0usize;
            for _ in 0..100_000 {
                hits += usize::from(r.matches_event(*t, ev));
            }
            costs.push((
                start.elapsed().as_nanos() as f64 / 100_000.0,
                r.name.as_str(),
                hits,
            ));
        }
        costs.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("slowest rules for {t}:");
        for (ns, name, _) in costs.iter().take(5) {
            println!("  {ns:7.1} ns  {name}");
        }
    }
    let n = 2_000_000;
    for (t, ev) in &events {
        let start = Instant::now();
        let mut fired = 0usize;
        for _ in 0..n / 4 {
            fired += rs.matching(*t, ev).count();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{t}: {:.2} M events/s ({fired} alerts)",
            (n / 4) as f64 / secs / 1e6
        );
    }
    let start = Instant::now();
    let mut fired = 0usize;
    for i in 0..n {
        let (t, ev) = &events[i % events.len()];
        fired += rs.matching(*t, ev).count();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} events in {secs:.3}s: {:.2} M events/s on one core ({fired} alerts)",
        n as f64 / secs / 1e6
    );
}
