//! NodeService: versions, sensor programs, drop counters, rules, model and store.
//! Never fails: a part that cannot be read is left empty and logged.

use std::sync::{atomic::Ordering::Relaxed, Arc};
use std::time::{SystemTime, UNIX_EPOCH};

use saker_proto::v1::{
    node_service_server::NodeService, DropCounter, GetInfoRequest, ModelInfo, NodeInfo, Program,
    RulesInfo, SkippedRule, StoreInfo,
};
use saker_store::{Order, Query};
use tonic::{Request, Response, Status};

use super::server::Ctx;

pub struct Node {
    pub ctx: Arc<Ctx>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// `uname -r`, `uname -v`.
fn uname() -> (String, String) {
    // SAFETY: utsname is plain data; uname fills it and NUL-terminates every field.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return (String::new(), String::new());
        }
        let s = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        (s(&u.release), s(&u.version))
    }
}

/// Splits a skip reason ("file:line:col: message" or "message (file:line:col)") into
/// file and line; the reason is kept whole.
fn reason_location(reason: &str) -> (String, u32) {
    fn parse(loc: &str) -> Option<(String, u32)> {
        let mut it = loc.rsplitn(3, ':');
        let col = it.next()?;
        let line = it.next()?;
        let file = it.next()?;
        if col.is_empty() || !col.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((file.to_string(), line.parse().ok()?))
    }
    if let Some((loc, _)) = reason.split_once(": ") {
        if let Some(r) = parse(loc) {
            return r;
        }
    }
    if let (Some(i), true) = (reason.rfind(" ("), reason.ends_with(')')) {
        if let Some(r) = parse(&reason[i + 2..reason.len() - 1]) {
            return r;
        }
    }
    (String::new(), 0)
}

fn drop_counter(class: &str, kind: &str, count: u64, description: &str) -> DropCounter {
    DropCounter {
        class_name: class.into(),
        event_kind: kind.into(),
        count,
        description: description.into(),
    }
}

fn info(ctx: &Ctx) -> NodeInfo {
    let d = &ctx.daemon;
    let (kernel_release, kernel_version) = uname();
    let now = now_ns();
    let start_ns = now.saturating_sub(i64::try_from(d.started.elapsed().as_nanos()).unwrap_or(0));

    let report = d.attach_report();
    let programs = report
        .programs
        .iter()
        .map(|p| {
            let (kind, point) = p.hook.split_once('/').unwrap_or(("", p.hook.as_str()));
            Program {
                name: p.program.clone(),
                kind: kind.to_string(),
                attach_point: point.to_string(),
                attached: p.error.is_none(),
                error: p.error.clone().unwrap_or_default(),
                is_optional: false,
            }
        })
        .collect();

    let mut drops = Vec::new();
    match d.drops() {
        Ok(s) => {
            for (class, n) in &s.kernel {
                drops.push(drop_counter(
                    "ringbuf_full",
                    class,
                    *n,
                    "the kernel ring buffer was full: the sensor could not record the event",
                ));
            }
            drops.push(drop_counter(
                "decode_error",
                "",
                s.decode_errors,
                "ring buffer records that could not be decoded",
            ));
            drops.push(drop_counter(
                "pipeline_full",
                "",
                s.queue_full,
                "decoded events dropped because the pipeline's input queue was full",
            ));
        }
        Err(e) => tracing::warn!("GetInfo: sensor drop counters: {e:#}"),
    }
    let ws = d.store.stats();
    drops.push(drop_counter(
        "store_queue_full",
        "alert",
        ws.dropped_alerts,
        "alerts not stored because the store's queue was full",
    ));
    drops.push(drop_counter(
        "store_queue_full",
        "event",
        ws.dropped_events,
        "context events not stored because the store's queue was full",
    ));
    drops.push(drop_counter(
        "store_write_failed",
        "",
        ws.failed_rows,
        "rows lost to failed store writes (disk full, I/O errors)",
    ));
    drops.push(drop_counter(
        "subscriber_lagged",
        "alert",
        ctx.stats.subscriber_dropped.load(Relaxed),
        &format!(
            "alerts not delivered to API subscribers that read too slowly ({} subscriptions \
             ended LAGGED); they stay in the store",
            ctx.stats.subscriptions_lagged.load(Relaxed)
        ),
    ));

    let rr = d.detector.report();
    let rules = d.detector.rules();
    let defs = rules.definitions();
    let rules_info = RulesInfo {
        files: crate::pipeline::rule_files(&d.config.rules)
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        loaded: u32::try_from(rr.loaded.len().saturating_sub(rr.disabled.len())).unwrap_or(0),
        disabled: u32::try_from(rr.disabled.len()).unwrap_or(0),
        skipped: rr
            .skipped
            .iter()
            .map(|(rule, reason)| {
                let (file, line) = reason_location(reason);
                SkippedRule {
                    rule: rule.clone(),
                    file,
                    line,
                    reason: reason.clone(),
                }
            })
            .collect(),
        macros: u32::try_from(defs.macro_names().count()).unwrap_or(0),
        lists: u32::try_from(defs.list_names().count()).unwrap_or(0),
        loaded_ns: 0,
    };

    let model = match &ctx.assistant {
        Some(a) => ModelInfo {
            loaded: a.has_model(),
            embedding_model: if a.has_embedder() {
                "sentence embeddings".into()
            } else {
                String::new()
            },
            ..Default::default()
        },
        None => ModelInfo {
            error: "the assistant is not running".into(),
            ..Default::default()
        },
    };

    let store = d.store.path().to_path_buf();
    let size_bytes = [store.clone(), {
        let mut p = store.clone().into_os_string();
        p.push("-wal");
        p.into()
    }]
    .iter()
    .filter_map(|p: &std::path::PathBuf| std::fs::metadata(p).ok())
    .map(|m| m.len())
    .sum();
    let count = d.store.count(&Query::new()).unwrap_or_else(|e| {
        tracing::warn!("GetInfo: counting alerts: {e}");
        0
    });
    let edge = |o: Order| {
        d.store
            .query_alerts(&Query::new().limit(1).order(o))
            .ok()
            .and_then(|p| p.items.first().map(|a| a.time_ns))
            .unwrap_or(0)
    };
    let sc = &d.config.store;
    let store_info = StoreInfo {
        path: store.display().to_string(),
        size_bytes,
        alerts: count,
        events: 0,
        incidents: ctx.incidents.known().unwrap_or(0) as u64,
        oldest_ns: if count > 0 { edge(Order::Asc) } else { 0 },
        newest_ns: if count > 0 { edge(Order::Desc) } else { 0 },
        dropped: ws.dropped_alerts + ws.dropped_events,
        write_errors: ws.write_errors,
        retention_max_age_s: sc.retention_max_age.map_or(0, |a| a.as_secs()),
        retention_max_bytes: sc.retention_max_bytes.unwrap_or(0),
    };

    NodeInfo {
        saker_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: option_env!("SAKER_GIT_COMMIT").unwrap_or("").to_string(),
        kernel_release,
        kernel_version,
        arch: std::env::consts::ARCH.to_string(),
        node: d.config.node.clone(),
        cluster: d.config.cluster.clone(),
        start_ns,
        now_ns: now,
        prevention_enabled: d.config.sensor.prevent_drift,
        programs,
        drops,
        rules: Some(rules_info),
        model: Some(model),
        store: Some(store_info),
        events_received: d.counters.events.load(Relaxed),
        alerts_raised: d.counters.alerts.load(Relaxed),
    }
}

#[tonic::async_trait]
impl NodeService for Node {
    async fn get_info(&self, _r: Request<GetInfoRequest>) -> Result<Response<NodeInfo>, Status> {
        let ctx = self.ctx.clone();
        let info = self.ctx.blocking(move || info(&ctx)).await?;
        Ok(Response::new(info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_locate() {
        assert_eq!(
            reason_location("/etc/r.yaml:12:5: unknown field x (near token 'x')"),
            ("/etc/r.yaml".to_string(), 12)
        );
        assert_eq!(
            reason_location("unknown field proc.foo (rules.yaml:3:14)"),
            ("rules.yaml".to_string(), 3)
        );
        assert_eq!(
            reason_location("source k8s_audit is not supported"),
            (String::new(), 0)
        );
        let (r, _) = uname();
        assert!(!r.is_empty());
    }
}
