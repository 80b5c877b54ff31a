//! Rules throughput: enriched events per second through `detect::evaluate`, with saker's
//! default rules and with the upstream Falco rule files loaded on top (when present).
//!
//! `cargo bench -p saker-daemon --bench rules`
//!
//! The event mix follows a busy node: read-only opens never reach userspace, so the mix is
//! exec 10%, fork/exit 30%, file writes 45%, connect 15%, half of it in containers.

use std::{path::PathBuf, sync::Arc};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use saker::{detect::Detector, fields::Fields};
use saker_event::{
    event::{Body, Connect, Exec, Exit, FileKind, FileOp, Process},
    Ancestor, BString, ContainerMeta, Context, Enriched, Event, ProcContext,
};

fn event(i: u64) -> Enriched {
    let in_container = i.is_multiple_of(2);
    let (comm, args): (&str, Vec<&str>) = match i % 7 {
        0 => ("java", vec!["java", "-jar", "/app/service.jar"]),
        1 => ("nginx", vec!["nginx", "-g", "daemon off;"]),
        2 => ("python3", vec!["python3", "/srv/app.py"]),
        3 => ("sh", vec!["sh", "-c", "date"]),
        4 => ("postgres", vec!["postgres", "-D", "/var/lib/postgresql"]),
        5 => ("node", vec!["node", "server.js"]),
        _ => ("curl", vec!["curl", "-s", "http://10.0.0.2/health"]),
    };
    let body = match i % 20 {
        0 | 1 => Body::Exec(Exec {
            filename: format!("/usr/bin/{comm}").as_str().into(),
            args: args.iter().map(|a| BString::from(*a)).collect(),
            args_truncated: false,
            filename_truncated: false,
            exe_dev: 1,
            exe_ino: i,
            exe_overlay: in_container,
            exe_upper_layer: false,
            exe_memfd: false,
            prevented: false,
        }),
        2..=4 => Body::Fork,
        5..=7 => Body::Exit(Exit {
            raw: 0,
            code: Some(0),
            signal: None,
        }),
        8..=16 => Body::File(FileOp {
            op: if i % 20 == 16 {
                FileKind::Chmod
            } else {
                FileKind::Open
            },
            path: format!("/var/log/app/{}.log", i % 13).as_str().into(),
            path_truncated: false,
            dfd: -100,
            flags: 0o1101,
            mode: 0o644,
            ret: 3,
        }),
        _ => Body::Connect(Connect {
            fd: 4,
            addr: "10.0.0.2".parse().unwrap(),
            port: 443,
            ret: 0,
        }),
    };
    Enriched {
        seq: i,
        event: Event {
            time_ns: 1_700_000_000_000_000_000 + i as i64,
            ktime_ns: i,
            process: Process {
                pid: 1000 + (i % 50) as u32,
                tid: 1000,
                ppid: 999,
                comm: comm.into(),
                ..Default::default()
            },
            body,
        },
        ctx: Context {
            proc: ProcContext {
                exe: format!("/usr/bin/{comm}").as_str().into(),
                args: args.iter().map(|a| BString::from(*a)).collect(),
                cwd: Some("/".into()),
                ancestors: vec![
                    Ancestor {
                        pid: 999,
                        comm: "bash".into(),
                        exe: "/bin/bash".into(),
                        args: vec!["bash".into()],
                    },
                    Ancestor {
                        pid: 1,
                        comm: "systemd".into(),
                        exe: "/sbin/init".into(),
                        args: vec![],
                    },
                ],
                user: Some("app".into()),
                ..Default::default()
            },
            container_id: in_container.then(|| "4f2a".repeat(16)),
            container: in_container.then(|| ContainerMeta {
                id: "4f2a".repeat(16),
                runtime: "containerd".into(),
                name: Some("app".into()),
                image: Some("registry.local/app:1.2".into()),
                image_repository: Some("registry.local/app".into()),
                image_tag: Some("1.2".into()),
                namespace: Some("payments".into()),
                pod_name: Some("app-7d9f8-x2x9z".into()),
                workload: Some("app".into()),
                ..Default::default()
            }),
            meta_pending: false,
            node: "node-1".into(),
            cluster: "prod".into(),
        },
    }
}

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let fields = Arc::new(Fields::new());
    let events: Vec<Enriched> = (0..10_000).map(event).collect();
    let mut sets = vec![("default", vec![root.join("rules/saker_rules.yaml")])];
    let falco = std::env::var_os("SAKER_FALCO_RULES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data/falco-rules"));
    if falco.join("falco_rules.yaml").exists() {
        sets.push((
            "default+falco",
            vec![
                falco.join("falco_rules.yaml"),
                falco.join("falco-incubating_rules.yaml"),
                falco.join("falco-sandbox_rules.yaml"),
                root.join("rules/saker_rules.yaml"),
            ],
        ));
    }
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(events.len() as u64));
    for (name, files) in sets {
        let d = match Detector::load(fields.clone(), files) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        eprintln!("{name}: {} rules", d.rules().len());
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                for e in &events {
                    n += d.evaluate(e).len();
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
