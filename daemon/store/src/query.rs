//! Read side: alert pages, counts, grouped counts, context events.
//!
//! Every function takes a reader connection; in WAL mode readers see the last committed
//! state and never wait for, or block, the writer.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use saker_event::{Alert, Enriched};
use saker_rules::FieldRegistry;

use crate::columns::AlertColumns;
use crate::error::StoreError;
use crate::sql_filter::SqlFilter;

/// Decides, in Rust, the part of a filter SQL cannot: it must implement the *whole*
/// filter (the daemon builds it from the same text with saker-rules and its alert
/// `FieldSource`). It only sees rows that already pass the SQL pre-filter.
pub type Predicate = Box<dyn Fn(&Alert) -> bool + Send>;

/// Largest page a query returns.
pub const MAX_LIMIT: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// Position after the last alert of a page: pages are ordered by `(time_ns, id)`, which
/// is unique, so resuming after it neither skips nor repeats a row even while alerts
/// are being added.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub time_ns: i64,
    pub id: String,
}

/// Text form for APIs: `<time_ns>:<id>` (the id may itself contain ':').
impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.time_ns, self.id)
    }
}

impl FromStr for Cursor {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Cursor, StoreError> {
        let bad = || StoreError::BadCursor(s.chars().take(80).collect());
        let (t, id) = s.split_once(':').ok_or_else(bad)?;
        Ok(Cursor {
            time_ns: t.parse().map_err(|_| bad())?,
            id: id.to_string(),
        })
    }
}

/// What to select. `filter` is in the rules' condition language; `since_ns` is
/// inclusive, `until_ns` exclusive. `limit` and `cursor` only apply to
/// [`crate::Store::query_alerts`].
pub struct Query {
    pub filter: Option<String>,
    /// Needed when the filter uses fields that are not columns; ignored when the filter
    /// translates to SQL exactly. Without a filter it filters alone.
    pub predicate: Option<Predicate>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// Page size, 1..=[`MAX_LIMIT`] (0 means 100).
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub order: Order,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            filter: None,
            predicate: None,
            since_ns: None,
            until_ns: None,
            limit: 100,
            cursor: None,
            order: Order::Asc,
        }
    }
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("filter", &self.filter)
            .field("predicate", &self.predicate.is_some())
            .field("since_ns", &self.since_ns)
            .field("until_ns", &self.until_ns)
            .field("limit", &self.limit)
            .field("cursor", &self.cursor)
            .field("order", &self.order)
            .finish()
    }
}

impl Query {
    /// All alerts, oldest first, 100 a page.
    pub fn new() -> Query {
        Query::default()
    }

    pub fn filter(mut self, text: impl Into<String>) -> Query {
        self.filter = Some(text.into());
        self
    }

    pub fn predicate(mut self, p: impl Fn(&Alert) -> bool + Send + 'static) -> Query {
        self.predicate = Some(Box::new(p));
        self
    }

    pub fn since(mut self, ns: i64) -> Query {
        self.since_ns = Some(ns);
        self
    }

    pub fn until(mut self, ns: i64) -> Query {
        self.until_ns = Some(ns);
        self
    }

    pub fn limit(mut self, n: usize) -> Query {
        self.limit = n;
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Query {
        self.cursor = cursor;
        self
    }

    pub fn order(mut self, order: Order) -> Query {
        self.order = order;
        self
    }
}

/// One page; `next` is set when more matching alerts follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// Dimensions for [`crate::Store::grouped_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKey {
    Policy,
    Rule,
    /// Severity name (`CRITICAL`).
    Severity,
    Namespace,
    Workload,
    Node,
    /// MITRE technique: an alert counts once under each of its techniques, and under
    /// `None` when it has none.
    Technique,
}

impl GroupKey {
    fn sql(self) -> &'static str {
        match self {
            GroupKey::Policy => "a.policy",
            GroupKey::Rule => "a.rule",
            GroupKey::Severity => "a.severity_text",
            GroupKey::Namespace => "a.namespace",
            GroupKey::Workload => "a.workload",
            GroupKey::Node => "a.node",
            GroupKey::Technique => "g.technique",
        }
    }

    fn of(self, c: &AlertColumns) -> Vec<Option<String>> {
        match self {
            GroupKey::Policy => vec![c.policy.clone()],
            GroupKey::Rule => vec![Some(c.rule.clone())],
            GroupKey::Severity => vec![Some(c.severity_text.to_string())],
            GroupKey::Namespace => vec![c.namespace.clone()],
            GroupKey::Workload => vec![c.workload.clone()],
            GroupKey::Node => vec![Some(c.node.clone())],
            GroupKey::Technique => {
                let mut t: Vec<Option<String>> =
                    c.mitre_techniques.iter().cloned().map(Some).collect();
                t.sort();
                t.dedup();
                if t.is_empty() {
                    t.push(None);
                }
                t
            }
        }
    }
}

/// A group and how many alerts fall in it; `key` follows the `group_by` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCount {
    pub key: Vec<Option<String>>,
    pub count: u64,
}

/// Selects context events directly (for investigation views).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Full container id; `Some("")` is not the host: use `host_only`.
    pub container_id: Option<String>,
    /// Only events outside containers.
    pub host_only: bool,
    pub pid: Option<u32>,
    /// Event type name (`execve`, `openat`, `connect`, …).
    pub kind: Option<String>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// 0 means 1000; at most [`MAX_LIMIT`].
    pub limit: usize,
}

/// The WHERE clause of a query and whether the predicate must run.
struct Plan<'q> {
    sql: String,
    params: Vec<SqlValue>,
    predicate: Option<&'q Predicate>,
}

fn plan<'q>(
    q: &'q Query,
    fields: &FieldRegistry,
    with_cursor: bool,
) -> Result<Plan<'q>, StoreError> {
    let mut parts = Vec::new();
    let mut params = Vec::new();
    let mut predicate = q.predicate.as_ref();
    if let Some(text) = &q.filter {
        let f = SqlFilter::translate_with(text, fields)?;
        if f.exact {
            predicate = None;
        } else if predicate.is_none() {
            return Err(StoreError::NeedsPredicate {
                fields: f.untranslated,
            });
        }
        parts.push(f.sql);
        params.extend(f.params);
    }
    if let Some(t) = q.since_ns {
        parts.push("a.time_ns >= ?".into());
        params.push(SqlValue::Integer(t));
    }
    if let Some(t) = q.until_ns {
        parts.push("a.time_ns < ?".into());
        params.push(SqlValue::Integer(t));
    }
    if let (true, Some(c)) = (with_cursor, &q.cursor) {
        let cmp = match q.order {
            Order::Asc => ">",
            Order::Desc => "<",
        };
        parts.push(format!("(a.time_ns, a.id) {cmp} (?, ?)"));
        params.push(SqlValue::Integer(c.time_ns));
        params.push(SqlValue::Text(c.id.clone()));
    }
    let sql = if parts.is_empty() {
        "1".to_string()
    } else {
        parts.join(" AND ")
    };
    Ok(Plan {
        sql,
        params,
        predicate,
    })
}

/// A BLOB column, borrowed from the row.
fn blob_at<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r [u8], StoreError> {
    row.get_ref(i)?.as_blob().map_err(|e| {
        StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Blob,
            Box::new(e),
        ))
    })
}

pub(crate) fn decode_alert(id: &str, blob: &[u8]) -> Result<Alert, StoreError> {
    serde_json::from_slice(blob).map_err(|e| StoreError::Decode {
        key: format!("alert {id}"),
        message: e.to_string(),
    })
}

fn decode_event(seq: i64, blob: &[u8]) -> Result<Enriched, StoreError> {
    serde_json::from_slice(blob).map_err(|e| StoreError::Decode {
        key: format!("event {seq}"),
        message: e.to_string(),
    })
}

pub(crate) fn query_alerts(
    conn: &Connection,
    fields: &FieldRegistry,
    q: &Query,
) -> Result<Page<Alert>, StoreError> {
    let limit = match q.limit {
        0 => 100,
        n => n.min(MAX_LIMIT),
    };
    let p = plan(q, fields, true)?;
    let dir = match q.order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    };
    // One more row than asked tells whether a next page exists. With a predicate the
    // scan runs until one more match (or the end), so no LIMIT in SQL.
    let mut params = p.params;
    let limit_sql = if p.predicate.is_none() {
        params.push(SqlValue::Integer(
            i64::try_from(limit + 1).unwrap_or(i64::MAX),
        ));
        " LIMIT ?"
    } else {
        ""
    };
    let sql = format!(
        "SELECT a.time_ns, a.id, b.blob FROM alerts a JOIN alert_blobs b ON b.rid = a.rid \
         WHERE {} ORDER BY a.time_ns {dir}, a.id {dir}{limit_sql}",
        p.sql
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut items = Vec::new();
    let mut more = false;
    while let Some(row) = rows.next()? {
        let id: String = row.get(1)?;
        let alert = decode_alert(&id, blob_at(row, 2)?)?;
        if let Some(pred) = p.predicate {
            if !pred(&alert) {
                continue;
            }
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(alert);
    }
    let next = match (more, items.last()) {
        (true, Some(a)) => Some(Cursor {
            time_ns: a.time_ns,
            id: a.id.clone(),
        }),
        _ => None,
    };
    Ok(Page { items, next })
}

pub(crate) fn count(
    conn: &Connection,
    fields: &FieldRegistry,
    q: &Query,
) -> Result<u64, StoreError> {
    let p = plan(q, fields, false)?;
    match p.predicate {
        None => {
            let sql = format!("SELECT count(*) FROM alerts a WHERE {}", p.sql);
            let n: i64 = conn
                .prepare_cached(&sql)?
                .query_row(params_from_iter(p.params), |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        }
        Some(pred) => {
            let mut n = 0u64;
            scan(conn, &p.sql, p.params, |a| {
                if pred(a) {
                    n += 1;
                }
            })?;
            Ok(n)
        }
    }
}

/// Decodes every alert passing the SQL condition, in storage order.
fn scan(
    conn: &Connection,
    where_sql: &str,
    params: Vec<SqlValue>,
    mut f: impl FnMut(&Alert),
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT a.id, b.blob FROM alerts a JOIN alert_blobs b ON b.rid = a.rid WHERE {where_sql}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let alert = decode_alert(&id, blob_at(row, 1)?)?;
        f(&alert);
    }
    Ok(())
}

/// Sorted by count (largest first), then by key (`None` first).
pub(crate) fn grouped_counts(
    conn: &Connection,
    fields: &FieldRegistry,
    q: &Query,
    group_by: &[GroupKey],
) -> Result<Vec<GroupCount>, StoreError> {
    if group_by.is_empty() {
        return Ok(vec![GroupCount {
            key: Vec::new(),
            count: count(conn, fields, q)?,
        }]);
    }
    let p = plan(q, fields, false)?;
    let mut out = match p.predicate {
        None => {
            let keys: Vec<&str> = group_by.iter().map(|k| k.sql()).collect();
            let join = if group_by.contains(&GroupKey::Technique) {
                " LEFT JOIN alert_techniques g ON g.alert_id = a.id"
            } else {
                ""
            };
            let positions: Vec<String> = (1..=keys.len()).map(|i| i.to_string()).collect();
            let sql = format!(
                "SELECT {}, count(*) FROM alerts a{join} WHERE {} GROUP BY {}",
                keys.join(", "),
                p.sql,
                positions.join(", ")
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(p.params))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut key = Vec::with_capacity(keys.len());
                for i in 0..keys.len() {
                    key.push(row.get::<_, Option<String>>(i)?);
                }
                let n: i64 = row.get(keys.len())?;
                out.push(GroupCount {
                    key,
                    count: u64::try_from(n).unwrap_or(0),
                });
            }
            out
        }
        Some(pred) => {
            let mut groups: BTreeMap<Vec<Option<String>>, u64> = BTreeMap::new();
            scan(conn, &p.sql, p.params, |a| {
                if !pred(a) {
                    return;
                }
                let cols = AlertColumns::from_alert(a);
                // Cartesian product of the keys' values (only Technique has several).
                let mut keys: Vec<Vec<Option<String>>> = vec![Vec::new()];
                for k in group_by {
                    let vals = k.of(&cols);
                    keys = keys
                        .into_iter()
                        .flat_map(|prefix| {
                            vals.iter().map(move |v| {
                                let mut k = prefix.clone();
                                k.push(v.clone());
                                k
                            })
                        })
                        .collect();
                }
                for k in keys {
                    *groups.entry(k).or_default() += 1;
                }
            })?;
            groups
                .into_iter()
                .map(|(key, count)| GroupCount { key, count })
                .collect()
        }
    };
    out.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.key.cmp(&y.key)));
    Ok(out)
}

pub(crate) fn get_alert(conn: &Connection, id: &str) -> Result<Option<Alert>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.blob FROM alerts a JOIN alert_blobs b ON b.rid = a.rid WHERE a.id = ?",
    )?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => Ok(Some(decode_alert(id, blob_at(row, 0)?)?)),
        None => Ok(None),
    }
}

/// The alert's linked events that are still stored, oldest first.
pub(crate) fn context_events(
    conn: &Connection,
    alert_id: &str,
) -> Result<Vec<Enriched>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.seq, e.blob FROM alert_context c JOIN events e ON e.seq = c.event_seq \
         WHERE c.alert_id = ? ORDER BY e.time_ns, e.seq",
    )?;
    let mut rows = stmt.query([alert_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_event(row.get(0)?, blob_at(row, 1)?)?);
    }
    Ok(out)
}

pub(crate) fn events_by(conn: &Connection, q: &EventQuery) -> Result<Vec<Enriched>, StoreError> {
    let mut parts = vec!["1".to_string()];
    let mut params = Vec::new();
    if q.host_only {
        parts.push("container_id IS NULL".into());
    } else if let Some(c) = &q.container_id {
        parts.push("container_id = ?".into());
        params.push(SqlValue::Text(c.clone()));
    }
    if let Some(pid) = q.pid {
        parts.push("pid = ?".into());
        params.push(SqlValue::Integer(i64::from(pid)));
    }
    if let Some(k) = &q.kind {
        parts.push("kind = ?".into());
        params.push(SqlValue::Text(k.clone()));
    }
    if let Some(t) = q.since_ns {
        parts.push("time_ns >= ?".into());
        params.push(SqlValue::Integer(t));
    }
    if let Some(t) = q.until_ns {
        parts.push("time_ns < ?".into());
        params.push(SqlValue::Integer(t));
    }
    let limit = match q.limit {
        0 => 1000,
        n => n.min(MAX_LIMIT),
    };
    params.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT seq, blob FROM events WHERE {} ORDER BY time_ns, seq LIMIT ?",
        parts.join(" AND ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_event(row.get(0)?, blob_at(row, 1)?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_text() {
        let c = Cursor {
            time_ns: -5,
            id: "node:1:2".into(),
        };
        assert_eq!(c.to_string(), "-5:node:1:2");
        assert_eq!(c.to_string().parse::<Cursor>().ok(), Some(c));
        assert!("x:1".parse::<Cursor>().is_err());
        assert!("12".parse::<Cursor>().is_err());
    }
}
