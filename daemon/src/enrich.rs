//! Enrichment: the event's process (from the process table) and its ancestry, the user
//! name, the node and cluster. Container and Kubernetes metadata come from the container
//! stage (`saker-enrich`), which never blocks this path.

use std::{collections::HashMap, time::Duration};

use saker_event::{Ancestor, Context, Enriched, Event, ProcContext};

use crate::proctable::ProcTable;

/// How many ancestors an event carries.
pub const MAX_ANCESTORS: usize = 16;

pub struct ProcEnricher {
    pub table: ProcTable,
    users: HashMap<u32, String>,
    pub node: String,
    pub cluster: String,
}

impl ProcEnricher {
    pub fn new(node: String, cluster: String) -> ProcEnricher {
        ProcEnricher {
            table: ProcTable::bootstrap(1 << 16, Duration::from_secs(60)),
            users: read_passwd("/etc/passwd"),
            node,
            cluster,
        }
    }

    /// Applies the event to the process table and returns it with its process context.
    pub fn enrich(&mut self, event: Event, seq: u64) -> Enriched {
        self.table.apply(&event);
        let p = &event.process;
        let mut proc = ProcContext {
            user: self.users.get(&p.uid).cloned(),
            ..Default::default()
        };
        if let Some(info) = self.table.get(p.pid) {
            proc.exe = info.exe.clone();
            proc.args = info.args.clone();
            proc.cwd = info.cwd.clone();
            proc.exe_upper_layer = info.exe_upper_layer;
            proc.exe_memfd = info.exe_memfd;
            proc.exe_sha256 = info.exe_sha256.clone();
            proc.exe_ioc = info.exe_ioc.clone();
            proc.sid = info.sid;
            proc.tty = info.tty;
        }
        proc.sname = proc
            .sid
            .and_then(|sid| self.table.get(sid))
            .map(|s| s.comm.clone());
        proc.ancestors = self
            .table
            .ancestors(p.pid, MAX_ANCESTORS)
            .into_iter()
            .map(|a| Ancestor {
                pid: a.pid,
                comm: a.comm.clone(),
                exe: a.exe.clone(),
                args: a.args.clone(),
            })
            .collect();
        Enriched {
            seq,
            ctx: Context {
                proc,
                container_id: None,
                container: None,
                meta_pending: false,
                node: self.node.clone(),
                cluster: self.cluster.clone(),
            },
            event,
        }
    }
}

fn read_passwd(path: &str) -> HashMap<u32, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}
