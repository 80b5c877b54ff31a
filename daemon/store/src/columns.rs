//! The indexed columns of an alert, derived in one place.
//!
//! SQL filters are only correct if a column holds exactly what the rules engine sees for
//! the field it stands for. [`AlertColumns`] is that derivation, and its [`FieldSource`]
//! impl answers the column-mapped fields from it, so the daemon's alert `FieldSource` can
//! delegate those fields here and stay in step with the SQL translation.

use saker_event::{Alert, Body, Severity};
use saker_rules::fields::ids;
use saker_rules::{FieldArg, FieldId, FieldSource, ListRef, Value};

/// Falco's `container.id` for host processes.
pub const HOST_CONTAINER_ID: &str = "host";
/// Length of Falco's short container id.
pub const SHORT_ID_LEN: usize = 12;

/// Severity as a rank ordered like `saker_rules::Priority`: 0 = DEBUG … 7 = EMERGENCY,
/// so `priority >= WARNING` is `severity >= 3` in SQL.
pub fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Debug => 0,
        Severity::Informational => 1,
        Severity::Notice => 2,
        Severity::Warning => 3,
        Severity::Error => 4,
        Severity::Critical => 5,
        Severity::Alert => 6,
        Severity::Emergency => 7,
    }
}

/// Falco's short container id: the first 12 characters of the full id.
pub fn short_container_id(full: &str) -> &str {
    match full.char_indices().nth(SHORT_ID_LEN) {
        Some((i, _)) => &full[..i],
        None => full,
    }
}

/// `proc.exe` as the daemon's event view answers it.
fn proc_exe(a: &Alert) -> String {
    let (argv, path) = match &a.event.event.body {
        Body::Exec(x) => (&x.args, &x.filename),
        _ => (&a.event.ctx.proc.args, &a.event.ctx.proc.exe),
    };
    argv.first().unwrap_or(path).to_str_lossy().into_owned()
}

/// One alert's column values. Byte strings from the kernel (`proc.name`, `proc.exe`) are
/// decoded lossily (U+FFFD for invalid bytes): filters are text; the exact bytes stay in
/// the stored alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertColumns {
    /// `alert.id`
    pub id: String,
    /// `evt.time`: the alert's time (the detector sets it to the matched event's time).
    pub time_ns: i64,
    /// `rule`
    pub rule: String,
    /// `policy`
    pub policy: Option<String>,
    /// `priority` / `severity`, see [`severity_rank`].
    pub severity: u8,
    pub severity_text: &'static str,
    /// `node.name`
    pub node: String,
    /// `kubernetes.cluster.name`
    pub cluster: String,
    /// `container.id`: short id, or `host` outside containers.
    pub container_id: String,
    /// The full container id (`None` on the host); not a filter field.
    pub container_full_id: Option<String>,
    /// `k8s.ns.name`
    pub namespace: Option<String>,
    /// `k8s.pod.name`
    pub pod: Option<String>,
    /// `k8s.workload.name`
    pub workload: Option<String>,
    /// `container.image`
    pub image: Option<String>,
    /// `container.image.repository`
    pub image_repository: Option<String>,
    /// `proc.name`: the task's comm.
    pub proc_name: String,
    /// `proc.exe`: argv\[0\] (an exec event's own argv, else the process table's),
    /// or the executable path when there is no argv.
    pub proc_exe: String,
    /// `proc.pid`
    pub proc_pid: i64,
    /// `proc.ppid`
    pub proc_ppid: i64,
    /// `mitre.technique`: always a value (possibly an empty list), as in the alert.
    pub mitre_techniques: Vec<String>,
    pub prevented: bool,
}

impl AlertColumns {
    pub fn from_alert(a: &Alert) -> AlertColumns {
        let ctx = &a.event.ctx;
        let meta = ctx.container.as_ref();
        let meta_str =
            |f: fn(&saker_event::ContainerMeta) -> &Option<String>| meta.and_then(|m| f(m).clone());
        let proc = &a.event.event.process;
        AlertColumns {
            id: a.id.clone(),
            time_ns: a.time_ns,
            rule: a.rule.clone(),
            policy: a.policy.clone(),
            severity: severity_rank(a.severity),
            severity_text: a.severity.as_str(),
            node: ctx.node.clone(),
            cluster: ctx.cluster.clone(),
            container_id: match &ctx.container_id {
                Some(id) => short_container_id(id).to_string(),
                None => HOST_CONTAINER_ID.to_string(),
            },
            container_full_id: ctx.container_id.clone(),
            namespace: meta_str(|m| &m.namespace),
            pod: meta_str(|m| &m.pod_name),
            workload: meta_str(|m| &m.workload),
            image: meta_str(|m| &m.image),
            image_repository: meta_str(|m| &m.image_repository),
            proc_name: proc.comm.to_str_lossy().into_owned(),
            proc_exe: proc_exe(a),
            proc_pid: i64::from(proc.pid),
            proc_ppid: i64::from(proc.ppid),
            mitre_techniques: a.mitre_techniques.clone(),
            prevented: a.prevented,
        }
    }
}

/// Answers the column-mapped fields of `saker_rules::saker_fields()` (ids from
/// [`saker_rules::fields::ids`]); every other field is `None`.
impl FieldSource for AlertColumns {
    fn get(&self, field: FieldId, arg: &FieldArg) -> Option<Value<'_>> {
        if *arg != FieldArg::None {
            return None;
        }
        fn s(v: &str) -> Option<Value<'_>> {
            Some(Value::Str(v))
        }
        fn opt(v: &Option<String>) -> Option<Value<'_>> {
            v.as_deref().map(Value::Str)
        }
        match field {
            ids::ALERT_ID => s(&self.id),
            ids::EVT_TIME => Some(Value::Int(self.time_ns)),
            ids::RULE => s(&self.rule),
            ids::POLICY => opt(&self.policy),
            ids::PRIORITY | ids::SEVERITY => Some(Value::Str(self.severity_text)),
            ids::NODE_NAME => s(&self.node),
            ids::KUBERNETES_CLUSTER_NAME => s(&self.cluster),
            ids::CONTAINER_ID => s(&self.container_id),
            ids::K8S_NS_NAME => opt(&self.namespace),
            ids::K8S_POD_NAME => opt(&self.pod),
            ids::K8S_WORKLOAD_NAME => opt(&self.workload),
            ids::CONTAINER_IMAGE => opt(&self.image),
            ids::CONTAINER_IMAGE_REPOSITORY => opt(&self.image_repository),
            ids::PROC_NAME => s(&self.proc_name),
            ids::PROC_EXE => s(&self.proc_exe),
            ids::PROC_PID => Some(Value::Int(self.proc_pid)),
            ids::PROC_PPID => Some(Value::Int(self.proc_ppid)),
            ids::MITRE_TECHNIQUE => Some(Value::List(ListRef::Strings(&self.mitre_techniques))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_and_ranks() {
        assert_eq!(short_container_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_container_id("abc"), "abc");
        assert_eq!(short_container_id("ééééééééééééé"), "éééééééééééé");
        assert_eq!(severity_rank(Severity::Emergency), 7);
        // Same order as saker-rules' Priority (which ranks by 7 - syslog level).
        for (sev, prio) in [
            (Severity::Debug, saker_rules::Priority::Debug),
            (Severity::Warning, saker_rules::Priority::Warning),
            (Severity::Emergency, saker_rules::Priority::Emergency),
        ] {
            assert_eq!(severity_rank(sev), 7 - prio.syslog_level());
        }
    }
}
