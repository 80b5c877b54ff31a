//! Building event-feed filters (saker's rule filter language) that select an answer's
//! evidence. Values are always quoted, so a name from a workload cannot change the
//! filter's structure.

use crate::error::AssistError;

/// Past this many ids an `alert.id in (...)` filter is not suggested (too long to be
/// useful); the scope filter is suggested instead.
pub const MAX_IDS_IN_FILTER: usize = 500;

/// A filter that selects an answer's evidence in the event feed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SuggestedFilter {
    pub filter: String,
    /// What it selects.
    pub description: String,
    /// Time bounds to use with it; 0 = none.
    pub since_ns: i64,
    pub until_ns: i64,
}

/// A double-quoted filter string literal.
pub fn quote(v: &str) -> String {
    let mut o = String::with_capacity(v.len() + 2);
    o.push('"');
    for c in v.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `field = "v"` or `field in ("a", "b")`; `None` for no values.
pub fn field_in(field: &str, values: &[String]) -> Option<String> {
    match values {
        [] => None,
        [v] => Some(format!("{field} = {}", quote(v))),
        vs => Some(format!(
            "{field} in ({})",
            vs.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// `alert.id in (...)` for the given ids.
pub fn alert_ids(ids: &[String]) -> Option<String> {
    field_in("alert.id", ids)
}

/// Conjunction; each part is parenthesized when it is not a single comparison, so an
/// operator's `a or b` context keeps its meaning.
pub fn and(parts: &[String]) -> Option<String> {
    let parts: Vec<&String> = parts.iter().filter(|p| !p.trim().is_empty()).collect();
    match parts.as_slice() {
        [] => None,
        [p] => Some(p.trim().to_string()),
        ps => Some(
            ps.iter()
                .map(|p| format!("({})", p.trim()))
                .collect::<Vec<_>>()
                .join(" and "),
        ),
    }
}

/// Checks the syntax of an operator's filter (fields are checked by the store).
pub fn validate(filter: &str) -> Result<(), AssistError> {
    saker_rules::parse(filter)
        .map(|_| ())
        .map_err(|e| AssistError::InvalidFilter(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_values() {
        let v = "x\") or (alert.id != \"";
        let f = field_in("k8s.pod.name", &[v.to_string()]).unwrap();
        let ast = saker_rules::parse(&f).expect("parses");
        // One comparison, not an `or`.
        assert!(format!("{ast:?}").matches("Or").count() == 0, "{ast:?}");
    }

    #[test]
    fn builds_lists_and_conjunctions() {
        let ids = vec!["a-1".to_string(), "b-2".to_string()];
        let f = alert_ids(&ids).unwrap();
        assert_eq!(f, r#"alert.id in ("a-1", "b-2")"#);
        validate(&f).unwrap();
        let c = and(&["policy = x or policy = y".into(), f.clone()]).unwrap();
        assert_eq!(c, format!("(policy = x or policy = y) and ({f})"));
        validate(&c).unwrap();
        assert_eq!(and(&["".into(), "rule = r".into()]).unwrap(), "rule = r");
        assert!(validate("k8s.ns.name = ").is_err());
    }
}
