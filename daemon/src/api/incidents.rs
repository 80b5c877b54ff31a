//! IncidentService: incidents computed on demand by `saker_incident::correlate` over the
//! newest stored alerts (bounded), cached until the store changes.
//!
//! Incidents are always correlated over the same alert set (the newest
//! `Limits::incident_alerts` alerts), whatever the request's filter, so an incident's id
//! is the same in every listing and GetIncident finds it. A filter selects which
//! incidents are listed: those with at least one alert that matches it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use saker_incident::{correlate, CorrelateConfig, Incident};
use saker_proto::v1::{
    self, incident_service_server::IncidentService, GetIncidentRequest, ListIncidentsRequest,
    ListIncidentsResponse,
};
use saker_store::{Cursor, Order, Query, MAX_LIMIT};
use tonic::{Request, Response, Status};

use super::convert;
use super::server::Ctx;
use super::status::{cursor, make_cursor, order, page_size, store_error, time_range, ReqFilter};
use crate::daemon::Daemon;

const TAG: &str = "inc1";
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// What identifies the store's content: its alert count and newest alert.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    count: u64,
    newest: Option<(i64, String)>,
}

/// Incidents over the newest alerts, as of one store state.
pub struct Snapshot {
    key: Key,
    pub incidents: Vec<Incident>,
    by_id: HashMap<String, usize>,
    /// Time of the oldest alert correlated (0 when none).
    pub oldest_ns: i64,
    /// Older alerts exist that were not correlated.
    pub truncated: bool,
}

impl Snapshot {
    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.by_id.get(id).map(|&i| &self.incidents[i])
    }
}

/// The last snapshot; recomputed when the store's key changes.
#[derive(Default)]
pub struct Cache {
    last: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
}

fn key(d: &Daemon) -> Result<Key, Status> {
    let count = d
        .store
        .count(&Query::new())
        .map_err(|e| store_error(e, ""))?;
    let newest = d
        .store
        .query_alerts(&Query::new().limit(1).order(Order::Desc))
        .map_err(|e| store_error(e, ""))?
        .items
        .first()
        .map(|a| (a.time_ns, a.id.clone()));
    Ok(Key { count, newest })
}

fn build(d: &Daemon, key: Key, max_alerts: usize) -> Result<Snapshot, Status> {
    let mut alerts = Vec::new();
    let mut cursor = None;
    let mut truncated = false;
    loop {
        let want = (max_alerts - alerts.len()).min(MAX_LIMIT);
        if want == 0 {
            truncated = cursor.is_some();
            break;
        }
        let page = d
            .store
            .query_alerts(
                &Query::new()
                    .order(Order::Desc)
                    .limit(want)
                    .after(cursor.take()),
            )
            .map_err(|e| store_error(e, ""))?;
        alerts.extend(page.items);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let oldest_ns = alerts.iter().map(|a| a.time_ns).min().unwrap_or(0);
    let incidents = correlate(&alerts, &CorrelateConfig::default());
    let by_id = incidents
        .iter()
        .enumerate()
        .map(|(i, inc)| (inc.id.clone(), i))
        .collect();
    Ok(Snapshot {
        key,
        incidents,
        by_id,
        oldest_ns,
        truncated,
    })
}

impl Cache {
    /// The incidents of the store as it is now.
    pub async fn get(&self, ctx: &Ctx) -> Result<Arc<Snapshot>, Status> {
        let mut last = self.last.lock().await;
        let d = &ctx.daemon;
        let max_alerts = ctx.limits.incident_alerts;
        let dd = d.clone();
        let k = ctx.blocking(move || key(&dd)).await??;
        if let Some(s) = last.as_ref() {
            if s.key == k {
                return Ok(s.clone());
            }
        }
        let dd = d.clone();
        let snap = ctx
            .blocking(move || build(&dd, k, max_alerts.max(1)))
            .await??;
        let snap = Arc::new(snap);
        *last = Some(snap.clone());
        Ok(snap)
    }

    /// Incidents in the last snapshot, if one was computed and is not being replaced.
    pub fn known(&self) -> Option<usize> {
        self.last
            .try_lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.incidents.len()))
    }
}

pub struct Incidents {
    pub ctx: Arc<Ctx>,
}

/// Ids of the alerts that match `filter`, among those at or after `since`.
fn matching_ids(
    d: &Daemon,
    filter: &ReqFilter,
    since: i64,
    max: usize,
) -> Result<HashSet<String>, Status> {
    let mut ids = HashSet::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let mut q = filter
            .query(&d.fields)
            .limit(MAX_LIMIT)
            .after(cursor.take());
        if since != 0 {
            q.since_ns = Some(since);
        }
        let page = d
            .store
            .query_alerts(&q)
            .map_err(|e| store_error(e, &filter.text))?;
        ids.extend(page.items.into_iter().map(|a| a.id));
        match page.next {
            Some(c) if ids.len() < max => cursor = Some(c),
            _ => return Ok(ids),
        }
    }
}

#[tonic::async_trait]
impl IncidentService for Incidents {
    async fn list_incidents(
        &self,
        r: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        let req = r.into_inner();
        let ctx = &self.ctx;
        let d = ctx.daemon.clone();
        let filter = ReqFilter::parse(&req.filter, &d.fields)?;
        let (since, until) = time_range(req.since_ns, req.until_ns)?;
        let limit = page_size(req.limit, DEFAULT_PAGE, MAX_PAGE);
        let newest_first = order(req.order)?;
        let after = cursor(TAG, &req.cursor)?;
        let min_sev = match v1::Severity::try_from(req.min_severity) {
            Ok(s) => s as i32,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown min_severity {}",
                    req.min_severity
                )))
            }
        };
        let snap = ctx.incidents.get(ctx).await?;
        let matching = if filter.is_empty() {
            None
        } else {
            let (dd, f, oldest, max) = (
                d.clone(),
                filter.clone(),
                snap.oldest_ns,
                ctx.limits.incident_alerts,
            );
            Some(
                ctx.blocking(move || matching_ids(&dd, &f, oldest, max))
                    .await??,
            )
        };
        let mut list: Vec<&Incident> = snap
            .incidents
            .iter()
            .filter(|i| since.is_none_or(|s| i.end_ns >= s))
            .filter(|i| until.is_none_or(|u| i.start_ns < u))
            .filter(|i| convert::severity(i.severity) as i32 >= min_sev)
            .filter(|i| {
                matching
                    .as_ref()
                    .is_none_or(|m| i.alert_ids.iter().any(|id| m.contains(id)))
            })
            .collect();
        // correlate() orders by (start, id) already; keep it explicit for the cursor.
        list.sort_by(|a, b| (a.start_ns, &a.id).cmp(&(b.start_ns, &b.id)));
        if newest_first {
            list.reverse();
        }
        if let Some((t, id)) = &after {
            list.retain(|i| {
                let k = (i.start_ns, &i.id);
                if newest_first {
                    k < (*t, id)
                } else {
                    k > (*t, id)
                }
            });
        }
        let more = list.len() > limit;
        list.truncate(limit);
        let next_cursor = match (more, list.last()) {
            (true, Some(i)) => make_cursor(TAG, i.start_ns, &i.id),
            _ => String::new(),
        };
        Ok(Response::new(ListIncidentsResponse {
            incidents: list.into_iter().map(convert::incident_summary).collect(),
            next_cursor,
        }))
    }

    async fn get_incident(
        &self,
        r: Request<GetIncidentRequest>,
    ) -> Result<Response<v1::Incident>, Status> {
        let id = r.into_inner().id;
        if id.trim().is_empty() {
            return Err(Status::invalid_argument("empty incident id"));
        }
        let ctx = &self.ctx;
        let snap = ctx.incidents.get(ctx).await?;
        let Some(i) = snap.get(&id) else {
            let mut msg = format!("no incident {id}");
            if snap.truncated {
                msg.push_str(" among the incidents of the newest stored alerts");
            }
            return Err(Status::not_found(msg));
        };
        let filter = saker_assist::filter::alert_ids(&i.alert_ids).unwrap_or_default();
        Ok(Response::new(convert::incident(
            i,
            ctx.knowledge.as_ref(),
            filter,
        )))
    }
}
