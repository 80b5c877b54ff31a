//! MITRE ATT&CK Enterprise knowledge, compiled in from `knowledge/attack-enterprise.json`
//! (built by `knowledge/gen_attack.py` from MITRE's published STIX data; see its
//! `source` block for the package, version and terms). Names and descriptions here are
//! reference data, not evidence: an answer cites a technique because an alert carries
//! its id, and only then looks up what the id means.

use std::collections::HashMap;

use serde::Deserialize;

use crate::error::AssistError;

const ATTACK_JSON: &str = include_str!("../knowledge/attack-enterprise.json");

/// Where the ATT&CK data came from, and the attribution its terms require.
#[derive(Clone, Debug, Deserialize)]
pub struct AttackSource {
    pub dataset: String,
    pub attack_version: String,
    pub attack_spec_version: String,
    pub stix_file: String,
    pub package: String,
    pub package_sha256: String,
    pub package_licence: String,
    pub terms_of_use: String,
    pub attribution: String,
    pub copyright: String,
    pub notes: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Tactic {
    pub id: String,
    pub name: String,
    pub shortname: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Technique {
    pub id: String,
    pub name: String,
    /// Tactic ids.
    pub tactics: Vec<String>,
    /// First sentence of MITRE's description.
    pub description: String,
    /// Mitigation ids.
    pub mitigations: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Mitigation {
    pub id: String,
    pub name: String,
}

#[derive(Deserialize)]
struct AttackFile {
    source: AttackSource,
    tactics: Vec<Tactic>,
    techniques: Vec<Technique>,
    mitigations: Vec<Mitigation>,
}

/// The ATT&CK lookup tables.
#[derive(Clone, Debug)]
pub struct Knowledge {
    source: AttackSource,
    tactics: Vec<Tactic>,
    techniques: Vec<Technique>,
    mitigations: Vec<Mitigation>,
    tactic_ix: HashMap<String, usize>,
    technique_ix: HashMap<String, usize>,
    mitigation_ix: HashMap<String, usize>,
}

impl Knowledge {
    /// The bundled data.
    pub fn bundled() -> Result<Knowledge, AssistError> {
        Knowledge::from_json(ATTACK_JSON)
    }

    pub fn from_json(text: &str) -> Result<Knowledge, AssistError> {
        let f: AttackFile =
            serde_json::from_str(text).map_err(|e| AssistError::Knowledge(e.to_string()))?;
        let ix = |ids: Vec<&String>| -> HashMap<String, usize> {
            ids.into_iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect()
        };
        Ok(Knowledge {
            tactic_ix: ix(f.tactics.iter().map(|t| &t.id).collect()),
            technique_ix: ix(f.techniques.iter().map(|t| &t.id).collect()),
            mitigation_ix: ix(f.mitigations.iter().map(|t| &t.id).collect()),
            source: f.source,
            tactics: f.tactics,
            techniques: f.techniques,
            mitigations: f.mitigations,
        })
    }

    pub fn source(&self) -> &AttackSource {
        &self.source
    }

    /// One line crediting MITRE, as the ATT&CK terms of use require.
    pub fn attribution_line(&self) -> String {
        format!(
            "MITRE ATT&CK® Enterprise v{} — {} Terms: {}",
            self.source.attack_version, self.source.attribution, self.source.terms_of_use
        )
    }

    pub fn tactic(&self, id: &str) -> Option<&Tactic> {
        self.tactic_ix.get(id).map(|&i| &self.tactics[i])
    }

    pub fn technique(&self, id: &str) -> Option<&Technique> {
        self.technique_ix.get(id).map(|&i| &self.techniques[i])
    }

    pub fn mitigation(&self, id: &str) -> Option<&Mitigation> {
        self.mitigation_ix.get(id).map(|&i| &self.mitigations[i])
    }

    /// Tactics in ATT&CK matrix order (for sorting).
    pub fn tactic_order(&self, id: &str) -> usize {
        self.tactic_ix.get(id).copied().unwrap_or(usize::MAX)
    }

    pub fn techniques(&self) -> &[Technique] {
        &self.techniques
    }

    pub fn tactics(&self) -> &[Tactic] {
        &self.tactics
    }

    /// `T1105 Ingress Tool Transfer`, or the bare id when ATT&CK does not know it (the id
    /// still came from the rule; the name is simply not shown).
    pub fn technique_label(&self, id: &str) -> String {
        match self.technique(id) {
            Some(t) => format!("{} {}", t.id, t.name),
            None => id.to_string(),
        }
    }

    pub fn tactic_label(&self, id: &str) -> String {
        match self.tactic(id) {
            Some(t) => format!("{} {}", t.id, t.name),
            None => id.to_string(),
        }
    }

    pub fn technique_name(&self, id: &str) -> Option<&str> {
        self.technique(id).map(|t| t.name.as_str())
    }

    pub fn tactic_name(&self, id: &str) -> Option<&str> {
        self.tactic(id).map(|t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_data_is_complete_and_attributed() {
        let k = Knowledge::bundled().unwrap();
        assert_eq!(k.tactics().len(), 14);
        assert!(k.techniques().len() > 600, "{}", k.techniques().len());
        assert_eq!(k.source().attack_version, "18.1");
        assert!(k.attribution_line().contains("The MITRE Corporation"));
        // The techniques saker's rules use, with ATT&CK's names.
        for (id, name) in [
            ("T1105", "Ingress Tool Transfer"),
            (
                "T1222.002",
                "Linux and Mac File and Directory Permissions Modification",
            ),
            ("T1496", "Resource Hijacking"),
            ("T1059.004", "Unix Shell"),
            ("T1204.002", "Malicious File"),
            ("T1620", "Reflective Code Loading"),
            ("T1003.008", "/etc/passwd and /etc/shadow"),
            ("T1543", "Create or Modify System Process"),
            ("T1053.003", "Cron"),
            ("T1548.001", "Setuid and Setgid"),
            ("T1611", "Escape to Host"),
        ] {
            assert_eq!(k.technique_name(id), Some(name), "{id}");
        }
        assert_eq!(k.tactic_name("TA0040"), Some("Impact"));
        assert_eq!(k.technique("T1105").unwrap().tactics, ["TA0011"]);
        assert!(k
            .technique("T1105")
            .unwrap()
            .mitigations
            .contains(&"M1037".to_string()));
        assert_eq!(
            k.mitigation("M1037").unwrap().name,
            "Filter Network Traffic"
        );
        assert!(k.tactic_order("TA0043") < k.tactic_order("TA0040"));
        for t in k.techniques() {
            assert!(!t.description.contains("(Citation"), "{}", t.id);
            for m in &t.mitigations {
                assert!(k.mitigation(m).is_some(), "{} -> {m}", t.id);
            }
            for ta in &t.tactics {
                assert!(k.tactic(ta).is_some(), "{} -> {ta}", t.id);
            }
        }
    }
}
