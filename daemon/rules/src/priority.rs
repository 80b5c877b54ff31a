//! Rule priorities (Falco's syslog-like levels).

use std::fmt;
use std::str::FromStr;

/// Ordered by severity: `Debug < Informational < ... < Emergency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Debug,
    Informational,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl Priority {
    /// Falco's spelling in JSON output (`"Critical"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// Syslog level: 0 (emergency) .. 7 (debug).
    pub fn syslog_level(self) -> u8 {
        7 - self as u8
    }

    pub fn from_syslog_level(level: i64) -> Option<Priority> {
        let rank = 7i64.checked_sub(level)?;
        Self::from_rank(u8::try_from(rank).ok()?)
    }

    /// Severity rank: 0 (debug) .. 7 (emergency).
    pub(crate) fn rank(self) -> u8 {
        self as u8
    }

    fn from_rank(r: u8) -> Option<Priority> {
        Some(match r {
            0 => Priority::Debug,
            1 => Priority::Informational,
            2 => Priority::Notice,
            3 => Priority::Warning,
            4 => Priority::Error,
            5 => Priority::Critical,
            6 => Priority::Alert,
            7 => Priority::Emergency,
            _ => return None,
        })
    }

    /// Case-insensitive name, as Falco accepts in rule files.
    pub fn parse(s: &str) -> Option<Priority> {
        const NAMES: [(&str, Priority); 9] = [
            ("emergency", Priority::Emergency),
            ("alert", Priority::Alert),
            ("critical", Priority::Critical),
            ("error", Priority::Error),
            ("warning", Priority::Warning),
            ("notice", Priority::Notice),
            ("informational", Priority::Informational),
            ("info", Priority::Informational),
            ("debug", Priority::Debug),
        ];
        let s = s.trim();
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, p)| *p)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::parse(s).ok_or_else(|| format!("unknown priority '{s}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        assert_eq!(Priority::parse("CRITICAL"), Some(Priority::Critical));
        assert_eq!(Priority::parse("info"), Some(Priority::Informational));
        assert_eq!(
            Priority::parse("Informational"),
            Some(Priority::Informational)
        );
        assert_eq!(Priority::parse("bogus"), None);
        assert!(Priority::Critical > Priority::Warning);
        assert_eq!(Priority::Emergency.syslog_level(), 0);
        assert_eq!(Priority::from_syslog_level(4), Some(Priority::Warning));
        assert_eq!(Priority::from_syslog_level(9), None);
    }
}
