//! MITRE ATT&CK ids from rule metadata and Falco tags.

/// Falco's `mitre_<tactic>` tags → tactic ids.
const TACTICS: &[(&str, &str)] = &[
    ("reconnaissance", "TA0043"),
    ("resource_development", "TA0042"),
    ("initial_access", "TA0001"),
    ("execution", "TA0002"),
    ("persistence", "TA0003"),
    ("privilege_escalation", "TA0004"),
    ("defense_evasion", "TA0005"),
    ("credential_access", "TA0006"),
    ("discovery", "TA0007"),
    ("lateral_movement", "TA0008"),
    ("collection", "TA0009"),
    ("exfiltration", "TA0010"),
    ("command_and_control", "TA0011"),
    ("impact", "TA0040"),
];

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `T1059` or `T1059.004`.
fn is_technique(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('T') else {
        return false;
    };
    match rest.split_once('.') {
        Some((a, b)) => digits(a, 4) && digits(b, 3),
        None => digits(rest, 4),
    }
}

fn is_tactic(t: &str) -> bool {
    t.strip_prefix("TA").is_some_and(|r| digits(r, 4))
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// Explicit ids first, then ids derived from tags; duplicates removed.
pub(crate) fn derive(
    tags: &[String],
    tactics: &[String],
    techniques: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut ta = Vec::new();
    let mut te = Vec::new();
    for t in tactics {
        push_unique(&mut ta, t.trim());
    }
    for t in techniques {
        push_unique(&mut te, t.trim());
    }
    for tag in tags {
        let tag = tag.trim();
        if is_technique(tag) {
            push_unique(&mut te, tag);
        } else if is_tactic(tag) {
            push_unique(&mut ta, tag);
        } else if let Some(name) = tag.strip_prefix("mitre_") {
            if let Some((_, id)) = TACTICS.iter().find(|(n, _)| *n == name) {
                push_unique(&mut ta, id);
            }
        }
    }
    (ta, te)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_tags() {
        let tags: Vec<String> = [
            "maturity_stable",
            "mitre_execution",
            "T1059.004",
            "TA0003",
            "T12",
            "PCI_DSS_11.5.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (ta, te) = derive(&tags, &["TA0002".to_string()], &[]);
        assert_eq!(ta, vec!["TA0002", "TA0003"]);
        assert_eq!(te, vec!["T1059.004"]);
    }
}
