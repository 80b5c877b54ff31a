//! EventService: pages of stored alerts, live subscriptions, grouped counts.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{atomic::Ordering::Relaxed, Arc};

use saker_proto::v1::{
    self, event_service_server::EventService, subscribe_events_response::Msg, FeedScope,
    GetStatsRequest, GetStatsResponse, GroupBy, QueryEventsRequest, QueryEventsResponse,
    StatsGroup, StreamEnd, StreamEndReason, SubscribeEventsRequest, SubscribeEventsResponse,
};
use saker_store::{Cursor, GroupKey, Order, MAX_LIMIT};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::{Request, Response, Status};

use super::convert;
use super::server::Ctx;
use super::status::{cursor, make_cursor, order, page_size, store_error, time_range, ReqFilter};
use crate::daemon::Daemon;
use crate::fields::EventView;

/// Tag of QueryEvents cursors (and of StreamEnd.resume_cursor).
const TAG: &str = "ev1";
/// Default page size of QueryEvents.
const DEFAULT_PAGE: usize = 100;
/// Default and maximum number of groups of GetStats.
const DEFAULT_GROUPS: usize = 1000;
const MAX_GROUPS: usize = 10_000;
/// Stored items a subscription's backfill sends at most.
const MAX_BACKFILL: usize = 10_000;

pub struct Events {
    pub ctx: Arc<Ctx>,
}

/// Alerts only (false) or alerts and context events (true).
fn scope(v: i32) -> Result<bool, Status> {
    match FeedScope::try_from(v) {
        Ok(FeedScope::Unspecified | FeedScope::Alerts) => Ok(false),
        Ok(FeedScope::AlertsAndEvents) => Ok(true),
        Err(_) => Err(Status::invalid_argument(format!("unknown scope {v}"))),
    }
}

/// What one page asks for.
struct PageReq {
    filter: ReqFilter,
    since: Option<i64>,
    until: Option<i64>,
    limit: usize,
    cursor: Option<(i64, String)>,
    newest_first: bool,
    with_events: bool,
}

/// One page: feed items in order, the cursor of the last alert, and whether more follow.
struct Page {
    items: Vec<v1::FeedItem>,
    /// Alerts of the page, in order: (time, id).
    alerts: Vec<(i64, String)>,
    next: Option<Cursor>,
}

/// Reads one page (blocking: run it in `spawn_blocking`). With `with_events`, the stored
/// context events of the page's alerts that match the filter are merged in by time.
fn read_page(d: &Daemon, r: &PageReq) -> Result<Page, Status> {
    let mut q = r.filter.query(&d.fields);
    q.since_ns = r.since;
    q.until_ns = r.until;
    q.limit = r.limit;
    q.cursor = r.cursor.clone().map(|(time_ns, id)| Cursor { time_ns, id });
    q.order = if r.newest_first {
        Order::Desc
    } else {
        Order::Asc
    };
    let page = d
        .store
        .query_alerts(&q)
        .map_err(|e| store_error(e, &r.filter.text))?;
    let alerts: Vec<(i64, String)> = page
        .items
        .iter()
        .map(|a| (a.time_ns, a.id.clone()))
        .collect();
    let items = if !r.with_events {
        page.items.iter().map(convert::alert_item).collect()
    } else {
        // (time, 0 = alert / 1 = event, position) keeps alerts before events of the same
        // time and the store's order among alerts.
        let mut merged: Vec<(i64, u8, usize, v1::FeedItem)> = Vec::new();
        let mut seen = HashSet::new();
        for (i, a) in page.items.iter().enumerate() {
            merged.push((a.time_ns, 0, i, convert::alert_item(a)));
            let events = d
                .store
                .context_events(&a.id)
                .map_err(|e| store_error(e, &r.filter.text))?;
            for e in events {
                let keep = match &r.filter.compiled {
                    Some(f) => f.matches(&EventView::new(&d.fields, &e)),
                    None => true,
                };
                if keep && seen.insert(e.seq) {
                    merged.push((e.event.time_ns, 1, e.seq as usize, convert::event_item(&e)));
                }
            }
        }
        if r.newest_first {
            merged.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        } else {
            merged.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        }
        merged.into_iter().map(|m| m.3).collect()
    };
    Ok(Page {
        items,
        alerts,
        next: page.next,
    })
}

type FeedStream = Pin<Box<dyn Stream<Item = Result<SubscribeEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for Events {
    async fn query_events(
        &self,
        r: Request<QueryEventsRequest>,
    ) -> Result<Response<QueryEventsResponse>, Status> {
        let req = r.into_inner();
        let d = self.ctx.daemon.clone();
        let filter = ReqFilter::parse(&req.filter, &d.fields)?;
        let (since, until) = time_range(req.since_ns, req.until_ns)?;
        let pr = PageReq {
            filter,
            since,
            until,
            limit: page_size(req.limit, DEFAULT_PAGE, MAX_LIMIT),
            cursor: cursor(TAG, &req.cursor)?,
            newest_first: order(req.order)?,
            with_events: scope(req.scope)?,
        };
        let page = self.ctx.blocking(move || read_page(&d, &pr)).await??;
        Ok(Response::new(QueryEventsResponse {
            items: page.items,
            next_cursor: page
                .next
                .map(|c| make_cursor(TAG, c.time_ns, &c.id))
                .unwrap_or_default(),
        }))
    }

    type SubscribeEventsStream = FeedStream;

    async fn subscribe_events(
        &self,
        r: Request<SubscribeEventsRequest>,
    ) -> Result<Response<FeedStream>, Status> {
        let req = r.into_inner();
        let ctx = self.ctx.clone();
        let filter = ReqFilter::parse(&req.filter, &ctx.daemon.fields)?;
        let with_events = scope(req.scope)?;
        let permit = ctx.subscriptions.clone().try_acquire_owned().map_err(|_| {
            ctx.stats.rejected_busy.fetch_add(1, Relaxed);
            Status::resource_exhausted(format!(
                "too many concurrent subscriptions (limit {})",
                ctx.limits.max_subscriptions
            ))
        })?;
        // Subscribe before reading the backfill, so nothing falls between the two.
        let live = ctx.daemon.alerts_tx.subscribe();
        let (tx, rx) = mpsc::channel(ctx.limits.stream_buffer.max(1));
        let sub = Subscription {
            shutdown: ctx.shutdown.clone(),
            ctx,
            filter,
            with_events,
            since_ns: req.since_ns,
            tx,
            last: None,
            delivered: 0,
        };
        tokio::spawn(async move {
            let _permit = permit;
            sub.run(live).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_stats(
        &self,
        r: Request<GetStatsRequest>,
    ) -> Result<Response<GetStatsResponse>, Status> {
        let req = r.into_inner();
        let d = self.ctx.daemon.clone();
        let filter = ReqFilter::parse(&req.filter, &d.fields)?;
        let (since, until) = time_range(req.since_ns, req.until_ns)?;
        let mut dims = Vec::new();
        for &g in &req.group_by {
            let key = match GroupBy::try_from(g) {
                Ok(GroupBy::Policy) => GroupKey::Policy,
                Ok(GroupBy::Rule) => GroupKey::Rule,
                Ok(GroupBy::Severity) => GroupKey::Severity,
                Ok(GroupBy::Namespace) => GroupKey::Namespace,
                Ok(GroupBy::Workload) => GroupKey::Workload,
                Ok(GroupBy::Node) => GroupKey::Node,
                Ok(GroupBy::Technique) => GroupKey::Technique,
                Ok(GroupBy::Unspecified) => {
                    return Err(Status::invalid_argument(
                        "group_by: GROUP_BY_UNSPECIFIED is not a dimension",
                    ))
                }
                Err(_) => {
                    return Err(Status::invalid_argument(format!(
                        "group_by: unknown dimension {g}"
                    )))
                }
            };
            if dims.contains(&key) {
                return Err(Status::invalid_argument(format!(
                    "group_by: {} is repeated",
                    GroupBy::try_from(g).map_or("?", |x| x.as_str_name())
                )));
            }
            dims.push(key);
        }
        let limit = page_size(req.limit, DEFAULT_GROUPS, MAX_GROUPS);
        let mut resp = self
            .ctx
            .blocking(move || stats(&d, &filter, since, until, &dims, limit))
            .await??;
        resp.group_by = req.group_by;
        Ok(Response::new(resp))
    }
}

/// Totals from `count` and the first/last alert; groups from the store's grouped counts.
/// The highest severity of a group comes from grouping by severity as well. The store
/// does not count prevented alerts per group or give group times, so `prevented` and the
/// groups' `first_ns`/`last_ns` stay 0 (see the API report).
fn stats(
    d: &Daemon,
    filter: &ReqFilter,
    since: Option<i64>,
    until: Option<i64>,
    dims: &[GroupKey],
    limit: usize,
) -> Result<GetStatsResponse, Status> {
    let err = |e| store_error(e, &filter.text);
    let q = || {
        let mut q = filter.query(&d.fields);
        q.since_ns = since;
        q.until_ns = until;
        q
    };
    let total = d.store.count(&q()).map_err(err)?;
    let edge = |o: Order| -> Result<i64, Status> {
        let p = d.store.query_alerts(&q().limit(1).order(o)).map_err(err)?;
        Ok(p.items.first().map_or(0, |a| a.time_ns))
    };
    let (first_ns, last_ns) = if total > 0 {
        (edge(Order::Asc)?, edge(Order::Desc)?)
    } else {
        (0, 0)
    };
    let mut groups = Vec::new();
    let mut truncated = false;
    if !dims.is_empty() {
        let sev = dims.iter().position(|k| *k == GroupKey::Severity);
        let mut ask = dims.to_vec();
        let sev = sev.unwrap_or_else(|| {
            ask.push(GroupKey::Severity);
            ask.len() - 1
        });
        let raw = d.store.grouped_counts(&q(), &ask).map_err(err)?;
        let mut merged: HashMap<Vec<Option<String>>, (u64, v1::Severity)> = HashMap::new();
        for g in raw {
            let s = g
                .key
                .get(sev)
                .cloned()
                .flatten()
                .map_or(v1::Severity::Unspecified, |s| convert::severity_name(&s));
            let key: Vec<Option<String>> = g.key.into_iter().take(dims.len()).collect();
            let e = merged.entry(key).or_insert((0, v1::Severity::Unspecified));
            e.0 += g.count;
            if (s as i32) > (e.1 as i32) {
                e.1 = s;
            }
        }
        let mut v: Vec<_> = merged.into_iter().collect();
        v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
        truncated = v.len() > limit;
        v.truncate(limit);
        groups = v
            .into_iter()
            .map(|(key, (count, max))| StatsGroup {
                key: key.into_iter().map(Option::unwrap_or_default).collect(),
                count,
                prevented: 0,
                max_severity: max as i32,
                first_ns: 0,
                last_ns: 0,
            })
            .collect();
    }
    Ok(GetStatsResponse {
        total,
        prevented: 0,
        first_ns,
        last_ns,
        groups,
        truncated,
        group_by: Vec::new(),
    })
}

/// One SubscribeEvents call, run as its own task. It reads from the daemon's alert
/// broadcast channel, which never blocks the pipeline: a subscriber that falls behind
/// loses its place in the channel (`Lagged`) and its stream ends with LAGGED.
struct Subscription {
    ctx: Arc<Ctx>,
    shutdown: watch::Receiver<bool>,
    filter: ReqFilter,
    with_events: bool,
    since_ns: i64,
    tx: mpsc::Sender<Result<SubscribeEventsResponse, Status>>,
    /// The last alert handed to the client: (time, id).
    last: Option<(i64, String)>,
    delivered: u64,
}

/// Why sending stopped.
enum Stop {
    /// The client went away.
    Gone,
    /// The daemon is shutting down.
    Shutdown,
}

fn item_msg(item: v1::FeedItem) -> SubscribeEventsResponse {
    SubscribeEventsResponse {
        msg: Some(Msg::Item(item)),
    }
}

impl Subscription {
    /// Sends one message, waiting while the client's buffer is full (the broadcast
    /// channel keeps filling meanwhile; that is how lagging is detected).
    async fn send(&mut self, m: Result<SubscribeEventsResponse, Status>) -> Result<(), Stop> {
        tokio::select! {
            r = self.tx.send(m) => r.map_err(|_| Stop::Gone),
            _ = self.shutdown.wait_for(|v| *v) => Err(Stop::Shutdown),
        }
    }

    fn resume_cursor(&self) -> String {
        self.last
            .as_ref()
            .map(|(t, id)| make_cursor(TAG, *t, id))
            .unwrap_or_default()
    }

    /// The last message; waits for the client (it is what it is waiting for), but not
    /// past shutdown.
    async fn end(&mut self, reason: StreamEndReason, message: String, dropped: u64) {
        let m = SubscribeEventsResponse {
            msg: Some(Msg::End(StreamEnd {
                reason: reason as i32,
                message,
                dropped,
                resume_cursor: self.resume_cursor(),
            })),
        };
        if reason == StreamEndReason::Shutdown {
            let _ = self.tx.try_send(Ok(m));
        } else {
            let _ = self.send(Ok(m)).await;
        }
    }

    async fn run(mut self, mut live: broadcast::Receiver<Arc<saker_event::Alert>>) {
        let mut backfilled: HashSet<String> = HashSet::new();
        if self.since_ns != 0 {
            let d = self.ctx.daemon.clone();
            let pr = PageReq {
                filter: self.filter.clone(),
                since: Some(self.since_ns),
                until: None,
                limit: MAX_BACKFILL,
                cursor: None,
                newest_first: true,
                with_events: self.with_events,
            };
            let r = self
                .ctx
                .blocking(move || {
                    // What the pipeline handed the store before we subscribed is committed
                    // first, so it is either in the backfill or in the live feed.
                    let _ = d.flush();
                    read_page(&d, &pr)
                })
                .await
                .and_then(|r| r);
            let page = match r {
                Ok(p) => p,
                Err(s) => {
                    let _ = self.tx.send(Err(s)).await;
                    return;
                }
            };
            let count = page.items.len() as u64;
            let truncated = page.next.is_some();
            for item in page.items.into_iter().rev() {
                if self.send(Ok(item_msg(item))).await.is_err() {
                    return;
                }
            }
            // The newest alert sent is where a resume continues from.
            self.last = page.alerts.first().cloned();
            backfilled.extend(page.alerts.into_iter().map(|(_, id)| id));
            let done = SubscribeEventsResponse {
                msg: Some(Msg::BackfillDone(v1::BackfillDone { count, truncated })),
            };
            if self.send(Ok(done)).await.is_err() {
                return;
            }
        }
        loop {
            let r = tokio::select! {
                r = live.recv() => Some(r),
                _ = self.shutdown.wait_for(|v| *v) => None,
                _ = self.tx.closed() => return,
            };
            let Some(r) = r else {
                self.end(
                    StreamEndReason::Shutdown,
                    "the daemon is shutting down".into(),
                    0,
                )
                .await;
                return;
            };
            match r {
                Ok(a) => {
                    if backfilled.remove(&a.id) || !self.filter.matches(&self.ctx.daemon.fields, &a)
                    {
                        continue;
                    }
                    match self.send(Ok(item_msg(convert::alert_item(&a)))).await {
                        Ok(()) => {
                            self.delivered += 1;
                            self.last = Some((a.time_ns, a.id.clone()));
                        }
                        Err(Stop::Gone) => return,
                        Err(Stop::Shutdown) => {
                            self.end(
                                StreamEndReason::Shutdown,
                                "the daemon is shutting down".into(),
                                0,
                            )
                            .await;
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Skipped by the channel, plus what it still holds for this
                    // subscriber (not read any more). Filtered or not: an upper bound of
                    // the matching items missed; QueryEvents(resume_cursor) has them all.
                    let dropped = n + live.len() as u64;
                    self.ctx.stats.subscriptions_lagged.fetch_add(1, Relaxed);
                    self.ctx
                        .stats
                        .subscriber_dropped
                        .fetch_add(dropped, Relaxed);
                    let msg = format!(
                        "the subscriber read too slowly: its buffer overflowed after {} \
                         alerts were delivered and {dropped} were not; fetch them with \
                         QueryEvents(cursor = resume_cursor) and subscribe again",
                        self.delivered
                    );
                    self.end(StreamEndReason::Lagged, msg, dropped).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.end(
                        StreamEndReason::Shutdown,
                        "the daemon's alert feed closed".into(),
                        0,
                    )
                    .await;
                    return;
                }
            }
        }
    }
}
