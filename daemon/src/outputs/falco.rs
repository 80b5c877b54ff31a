//! Alerts as Falco's JSON output (`json_output: true`), which falcosidekick and other
//! Falco consumers accept unchanged: `time` (RFC 3339, nanoseconds, UTC), `rule`,
//! `priority` (Falco's capitalised names), `output`, `output_fields` (Falco field names),
//! `tags`, `hostname`, `source` ("syscall").

use saker_event::{Alert, Severity};
use saker_rules::{FieldArg, FieldSource};
use serde_json::{Map, Value};

use crate::fields::{EventView, Fields};

/// Falco's priority name for a severity (as Falco prints it in JSON).
pub fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Emergency => "Emergency",
        Severity::Alert => "Alert",
        Severity::Critical => "Critical",
        Severity::Error => "Error",
        Severity::Warning => "Warning",
        Severity::Notice => "Notice",
        Severity::Informational => "Informational",
        Severity::Debug => "Debug",
    }
}

/// Context fields every alert carries in `output_fields`, besides those of the rule's
/// output, so consumers can route on them (falcosidekick's custom fields, k8s.ns.name
/// filters) whatever the rule prints.
pub const CONTEXT_FIELDS: &[&str] = &[
    "evt.type",
    "proc.name",
    "proc.pid",
    "proc.exepath",
    "proc.cmdline",
    "proc.pname",
    "user.uid",
    "user.name",
    "container.id",
    "container.name",
    "container.image.repository",
    "container.image.tag",
    "k8s.ns.name",
    "k8s.pod.name",
];

/// RFC 3339 UTC with nanoseconds (`2024-05-01T12:34:56.123456789Z`), as Falco writes.
pub fn rfc3339_ns(time_ns: i64) -> String {
    let secs = time_ns.div_euclid(1_000_000_000);
    let nanos = time_ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// The Falco JSON object of an alert. `hostname` is the node name.
pub fn to_json(alert: &Alert, fields: &Fields, hostname: &str) -> Value {
    let mut of = Map::new();
    // Falco always includes evt.time (integer nanoseconds).
    of.insert("evt.time".into(), Value::from(alert.time_ns));
    let view = EventView::new(fields, &alert.event);
    for name in CONTEXT_FIELDS {
        let Some(id) = fields.registry.lookup(name) else {
            continue;
        };
        let v = view
            .get(id, &FieldArg::None)
            .map_or(Value::Null, |v| match v {
                saker_rules::Value::Int(i) => Value::from(i),
                saker_rules::Value::Uint(u) => Value::from(u),
                saker_rules::Value::Bool(b) => Value::from(b),
                other => Value::from(other.to_string()),
            });
        of.insert((*name).into(), v);
    }
    // The rule's own output fields win (they are what its output line shows).
    for (k, v) in &alert.output_fields {
        of.insert(k.clone(), Value::from(v.as_str()));
    }
    let mut o = Map::new();
    o.insert("hostname".into(), Value::from(hostname));
    o.insert("output".into(), Value::from(alert.output.as_str()));
    o.insert("output_fields".into(), Value::Object(of));
    o.insert("priority".into(), Value::from(priority(alert.severity)));
    o.insert("rule".into(), Value::from(alert.rule.as_str()));
    o.insert("source".into(), Value::from("syscall"));
    o.insert(
        "tags".into(),
        Value::from(
            alert
                .tags
                .iter()
                .map(|t| Value::from(t.as_str()))
                .collect::<Vec<_>>(),
        ),
    );
    o.insert("time".into(), Value::from(rfc3339_ns(alert.time_ns)));
    Value::Object(o)
}

/// One JSON line (no trailing newline). serde_json escapes every string, so attacker
/// bytes (already escaped by the detector) cannot break the object.
pub fn to_line(alert: &Alert, fields: &Fields, hostname: &str) -> String {
    to_json(alert, fields, hostname).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        // 2024-02-29T23:59:59.000000001Z (leap day)
        assert_eq!(
            rfc3339_ns(1_709_251_199_000_000_001),
            "2024-02-29T23:59:59.000000001Z"
        );
        assert_eq!(rfc3339_ns(-1), "1969-12-31T23:59:59.999999999Z");
    }
}
