//! Per-session context, so follow-up questions work: the active context filter, and what
//! the last answer was about (entities, incidents, alert). Sessions are bounded in
//! number (least recently used evicted first) and expire after a period of inactivity.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::entities::Entity;
use crate::intent::Intent;
use crate::lang::Lang;

/// What the last answer was about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Focus {
    /// Entities the answer was narrowed to (explicit or inherited).
    pub entities: Vec<Entity>,
    /// Incidents the answer covered.
    pub incident_ids: Vec<String>,
    /// The alert an explain-alert answer was about.
    pub alert_id: Option<String>,
}

/// One operator's conversation.
#[derive(Clone, Debug)]
pub struct Session {
    /// Context filter in force (set by a request with a non-empty filter).
    pub context_filter: Option<String>,
    pub focus: Focus,
    pub last_intent: Option<Intent>,
    pub lang: Lang,
    pub questions: u64,
    last_used: Instant,
}

impl Session {
    fn new(now: Instant) -> Session {
        Session {
            context_filter: None,
            focus: Focus::default(),
            last_intent: None,
            lang: Lang::En,
            questions: 0,
            last_used: now,
        }
    }
}

/// The session table.
#[derive(Debug)]
pub struct Sessions {
    map: HashMap<String, Session>,
    max: usize,
    ttl: Duration,
}

impl Sessions {
    pub fn new(max: usize, ttl: Duration) -> Sessions {
        Sessions {
            map: HashMap::new(),
            max: max.max(1),
            ttl,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `id` names a live session.
    pub fn contains(&self, id: &str, now: Instant) -> bool {
        self.map
            .get(id)
            .is_some_and(|s| now.saturating_duration_since(s.last_used) <= self.ttl)
    }

    /// A copy of the session `id` (a fresh one when unknown or expired).
    pub fn snapshot(&mut self, id: &str, now: Instant) -> Session {
        self.expire(now);
        self.map
            .get(id)
            .cloned()
            .unwrap_or_else(|| Session::new(now))
    }

    /// Stores `session` as `id`, evicting expired sessions and then the least recently
    /// used ones beyond the bound.
    pub fn put(&mut self, id: &str, mut session: Session, now: Instant) {
        session.last_used = now;
        self.map.insert(id.to_string(), session);
        self.expire(now);
        while self.map.len() > self.max {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.map.remove(&k);
                }
                None => break,
            }
        }
    }

    pub fn remove(&mut self, id: &str) -> bool {
        self.map.remove(id).is_some()
    }

    fn expire(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.map
            .retain(|_, s| now.saturating_duration_since(s.last_used) <= ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_bound_and_ttl() {
        let t0 = Instant::now();
        let mut s = Sessions::new(2, Duration::from_secs(60));
        let mut a = s.snapshot("a", t0);
        a.context_filter = Some("k8s.ns.name = x".into());
        s.put("a", a, t0);
        let b = s.snapshot("b", t0);
        s.put("b", b, t0 + Duration::from_secs(1));
        // Touch a, then add c: b is the least recently used.
        let a = s.snapshot("a", t0 + Duration::from_secs(2));
        s.put("a", a, t0 + Duration::from_secs(2));
        let c = s.snapshot("c", t0);
        s.put("c", c, t0 + Duration::from_secs(3));
        assert!(s.contains("a", t0 + Duration::from_secs(3)));
        assert!(!s.contains("b", t0 + Duration::from_secs(3)));
        assert_eq!(
            s.snapshot("a", t0 + Duration::from_secs(3))
                .context_filter
                .as_deref(),
            Some("k8s.ns.name = x")
        );
        // Expired after the TTL: a fresh session comes back.
        let later = t0 + Duration::from_secs(200);
        assert!(!s.contains("a", later));
        assert_eq!(s.snapshot("a", later).context_filter, None);
        assert!(s.is_empty());
    }
}
