//! AssistantService: questions and alert explanations, answered by
//! `saker_assist::Assistant` over the store ([`StoreEvidence`]) and streamed as the
//! answer is produced.
//!
//! The assistant runs on a blocking thread (it reads the store and may run a model);
//! its parts go through a bounded channel to the response stream. At most
//! `Limits::max_answers` answers run at once; beyond that the call fails with
//! RESOURCE_EXHAUSTED.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{atomic::Ordering::Relaxed, Arc, Mutex};

use saker_assist::{AssistError, Assistant, Evidence, Lang};
use saker_event::Alert;
use saker_proto::v1::{
    assistant_service_server::AssistantService, AnswerPart, AskRequest, ExplainRequest,
};
use saker_store::{Cursor, Order, Query, Store, MAX_LIMIT};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::{Request, Response, Status};

use super::convert;
use super::server::Ctx;
use super::status::{format_filter_error, time_range, ReqFilter};
use crate::fields::Fields;

/// The store as the assistant's evidence, within the request's time range.
pub struct StoreEvidence {
    pub store: Store,
    pub fields: Arc<Fields>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl StoreEvidence {
    fn query(&self, filter: Option<&str>) -> Result<(Query, String), AssistError> {
        let text = filter.unwrap_or("");
        let f = ReqFilter::parse(text, &self.fields)
            .map_err(|s| AssistError::InvalidFilter(s.message().to_string()))?;
        let mut q = f.query(&self.fields);
        q.since_ns = self.since;
        q.until_ns = self.until;
        Ok((q, text.to_string()))
    }
}

fn evidence_error(e: saker_store::StoreError, filter: &str) -> AssistError {
    match e {
        saker_store::StoreError::Filter(f) => {
            AssistError::InvalidFilter(format_filter_error(filter, &f))
        }
        other => AssistError::Evidence(other.to_string()),
    }
}

impl Evidence for StoreEvidence {
    fn alerts(&self, filter: Option<&str>, limit: usize) -> Result<Vec<Alert>, AssistError> {
        let mut out = Vec::new();
        let mut cursor: Option<Cursor> = None;
        while out.len() < limit {
            let (q, text) = self.query(filter)?;
            let q = q
                .order(Order::Desc)
                .limit((limit - out.len()).min(MAX_LIMIT))
                .after(cursor.take());
            let page = self
                .store
                .query_alerts(&q)
                .map_err(|e| evidence_error(e, &text))?;
            out.extend(page.items);
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }

    fn alert(&self, id: &str) -> Result<Option<Alert>, AssistError> {
        self.store
            .get_alert(id)
            .map_err(|e| AssistError::Evidence(e.to_string()))
    }

    fn count(&self, filter: Option<&str>) -> Result<Option<u64>, AssistError> {
        let (q, text) = self.query(filter)?;
        self.store
            .count(&q)
            .map(Some)
            .map_err(|e| evidence_error(e, &text))
    }
}

fn assist_status(e: AssistError) -> Status {
    match e {
        AssistError::InvalidFilter(m) => Status::invalid_argument(m),
        AssistError::EmptyQuestion => Status::invalid_argument("the question is empty"),
        e @ AssistError::QuestionTooLong { .. } => Status::invalid_argument(e.to_string()),
        AssistError::AlertNotFound(id) if id.is_empty() => {
            Status::invalid_argument("empty alert id")
        }
        e @ AssistError::AlertNotFound(_) => Status::not_found(e.to_string()),
        e @ AssistError::Evidence(_) => Status::internal(e.to_string()),
        e => Status::internal(format!("assistant: {e}")),
    }
}

/// A new session id: `s-` and 32 hex digits from the kernel's random source.
fn new_session_id() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // Never expected; still unique enough within one daemon.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = (t ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("s-{hex}")
}

/// The context filter each session answered with last, for `Started.context_filter` of
/// follow-ups (the assistant keeps the session itself; this only mirrors what its answers
/// reported). Entries of expired sessions are pruned as the map grows.
#[derive(Default)]
pub struct SessionContexts {
    map: Mutex<HashMap<String, String>>,
}

impl SessionContexts {
    fn get(&self, id: &str) -> String {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    fn set(&self, id: &str, filter: String, assistant: &Assistant) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= 1024 {
            m.retain(|k, _| assistant.has_session(k));
        }
        m.insert(id.to_string(), filter);
    }
}

type PartStream = Pin<Box<dyn Stream<Item = Result<AnswerPart, Status>> + Send>>;

pub struct AssistantApi {
    pub ctx: Arc<Ctx>,
}

/// What a call resolved before streaming.
struct Prepared {
    assistant: Arc<Assistant>,
    session: String,
    permit: OwnedSemaphorePermit,
    evidence: StoreEvidence,
    language: Option<Lang>,
}

impl AssistantApi {
    fn assistant(&self) -> Result<Arc<Assistant>, Status> {
        self.ctx
            .assistant
            .clone()
            .ok_or_else(|| Status::unimplemented("the assistant is not running on this node"))
    }

    /// Session, busy check, evidence: the checks shared by Ask and Explain.
    fn prepare(
        &self,
        session: &str,
        language: &str,
        since_ns: i64,
        until_ns: i64,
    ) -> Result<Prepared, Status> {
        let assistant = self.assistant()?;
        let (since, until) = time_range(since_ns, until_ns)?;
        let session = if session.is_empty() {
            new_session_id()
        } else if assistant.has_session(session) {
            session.to_string()
        } else {
            return Err(Status::not_found(format!(
                "unknown or expired session {session}"
            )));
        };
        let language = if language.trim().is_empty() {
            None
        } else {
            // The API promises English when it cannot do better.
            Some(Lang::from_tag(language).unwrap_or(Lang::En))
        };
        let permit = self.ctx.answers.clone().try_acquire_owned().map_err(|_| {
            self.ctx.stats.rejected_busy.fetch_add(1, Relaxed);
            Status::resource_exhausted(format!(
                "the assistant is busy: {} answers are in progress (the limit); retry later",
                self.ctx.limits.max_answers
            ))
        })?;
        Ok(Prepared {
            evidence: StoreEvidence {
                store: self.ctx.daemon.store.clone(),
                fields: self.ctx.daemon.fields.clone(),
                since,
                until,
            },
            assistant,
            session,
            permit,
            language,
        })
    }

    /// Runs `answer` on a blocking thread, streaming `started`, then its parts.
    fn stream<F>(
        &self,
        op: crate::metrics::ModelOp,
        p: Prepared,
        context_filter: String,
        answer: F,
    ) -> PartStream
    where
        F: FnOnce(
                &Assistant,
                &StoreEvidence,
                &str,
                Option<Lang>,
                &mut dyn FnMut(saker_assist::AnswerPart),
            ) -> Result<saker_assist::AnswerSummary, AssistError>
            + Send
            + 'static,
    {
        let (tx, rx) = mpsc::channel(self.ctx.limits.stream_buffer.max(1));
        let ctx = self.ctx.clone();
        let _ = tx.try_send(Ok(convert::started(&p.session, &context_filter)));
        tokio::task::spawn_blocking(move || {
            let Prepared {
                assistant,
                session,
                permit,
                evidence,
                language,
            } = p;
            let mut send = |part: saker_assist::AnswerPart| {
                // A client that went away only stops the sending, not the answer (the
                // session is still updated).
                let _ = tx.blocking_send(Ok(convert::answer_part(&part)));
            };
            let t0 = std::time::Instant::now();
            let r = answer(&assistant, &evidence, &session, language, &mut send);
            ctx.daemon.counters.metrics.on_model(op, t0.elapsed());
            match r {
                Ok(summary) => ctx.sessions.set(
                    &session,
                    summary.context_filter.unwrap_or_default(),
                    &assistant,
                ),
                Err(e) => {
                    let _ = tx.blocking_send(Err(assist_status(e)));
                }
            }
            drop(permit);
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

#[tonic::async_trait]
impl AssistantService for AssistantApi {
    type AskStream = PartStream;

    async fn ask(&self, r: Request<AskRequest>) -> Result<Response<PartStream>, Status> {
        let req = r.into_inner();
        let max = self.ctx.limits.max_question_bytes;
        if req.question.len() > max {
            return Err(Status::invalid_argument(format!(
                "the question is {} bytes long; at most {max} are accepted",
                req.question.len()
            )));
        }
        if req.question.trim().is_empty() {
            return Err(Status::invalid_argument("the question is empty"));
        }
        // Checked here for the position in the message; the assistant checks it too.
        let filter = ReqFilter::parse(&req.context_filter, &self.ctx.daemon.fields)?;
        let p = self.prepare(&req.session_id, &req.language, req.since_ns, req.until_ns)?;
        let context = if filter.is_empty() {
            self.ctx.sessions.get(&p.session)
        } else {
            filter.text.clone()
        };
        let question = req.question;
        let skip = req.skip_narrative;
        let op = crate::metrics::ModelOp::Ask;
        let stream = self.stream(op, p, context, move |a, ev, session, language, out| {
            a.ask_with(
                ev,
                &saker_assist::AskRequest {
                    session,
                    question: &question,
                    context_filter: (!filter.is_empty()).then_some(filter.text.as_str()),
                    language,
                    skip_narrative: skip,
                },
                out,
            )
        });
        Ok(Response::new(stream))
    }

    type ExplainStream = PartStream;

    async fn explain(&self, r: Request<ExplainRequest>) -> Result<Response<PartStream>, Status> {
        let req = r.into_inner();
        let id = req.alert_id.trim().to_string();
        if id.is_empty() {
            return Err(Status::invalid_argument("empty alert id"));
        }
        if id.len() > 1024 {
            return Err(Status::invalid_argument("the alert id is too long"));
        }
        let p = self.prepare(&req.session_id, &req.language, 0, 0)?;
        // Unknown alerts fail the call instead of an answer that starts and then fails.
        let store = self.ctx.daemon.store.clone();
        let lookup = id.clone();
        let found = self
            .ctx
            .blocking(move || store.get_alert(&lookup))
            .await?
            .map_err(|e| Status::internal(format!("store: {e}")))?;
        if found.is_none() {
            return Err(Status::not_found(format!("no alert {id}")));
        }
        let context = self.ctx.sessions.get(&p.session);
        let skip = req.skip_narrative;
        let op = crate::metrics::ModelOp::Explain;
        let stream = self.stream(op, p, context, move |a, ev, session, language, out| {
            a.explain_with(
                ev,
                &saker_assist::ExplainRequest {
                    session,
                    alert_id: &id,
                    language,
                    skip_narrative: skip,
                },
                out,
            )
        });
        Ok(Response::new(stream))
    }
}
