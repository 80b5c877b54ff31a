//! The assistant: routes a question, reads the evidence, builds the facts, streams the
//! deterministic sections, then the verified narrative, and remembers the session.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use saker_event::Alert;
use saker_incident::{correlate, CorrelateConfig, Incident};
use saker_models::{ChatMessage, Embedder, Llm, LlmOptions, Prompt};
use serde::{Deserialize, Serialize};

use crate::entities::{references, Catalog, Entity, EntityKind, Reference};
use crate::error::AssistError;
use crate::facts::{self, Built, Scope};
use crate::filter::{self, SuggestedFilter};
use crate::intent::Intent;
use crate::knowledge::Knowledge;
use crate::lang::Lang;
use crate::narrate::{self, NarrateOptions, NarrativeSource};
use crate::playbook::Playbooks;
use crate::render::Section;
use crate::route::{RouteMethod, Router, Routing, DEFAULT_THRESHOLD};
use crate::session::{Focus, Session, Sessions};
use crate::verify::Verifier;

/// The evidence store, as the assistant needs it. The daemon implements it over its
/// SQLite store; tests over a vector of alerts.
pub trait Evidence {
    /// Alerts matching `filter` (saker's filter language; `None` = all), at most
    /// `limit` of them — the most recent ones when more match — in any order.
    fn alerts(&self, filter: Option<&str>, limit: usize) -> Result<Vec<Alert>, AssistError>;

    /// One alert by id.
    fn alert(&self, id: &str) -> Result<Option<Alert>, AssistError>;

    /// How many alerts match `filter`, when the store can count cheaply (used to say
    /// how much was left out when the read limit is reached).
    fn count(&self, filter: Option<&str>) -> Result<Option<u64>, AssistError> {
        let _ = filter;
        Ok(None)
    }
}

/// How the assistant is set up.
#[derive(Clone, Debug)]
pub struct AssistConfig {
    /// A llama-family GGUF (e.g. SmolLM2-135M Q8_0); `None`: deterministic narratives.
    pub model_path: Option<PathBuf>,
    /// all-MiniLM-L6-v2 directory; `None`: keyword routing only.
    pub embedder_dir: Option<PathBuf>,
    /// Inference threads (0 = all cores but one).
    pub threads: usize,
    /// Narrative token budget.
    pub max_tokens: usize,
    /// Let the model write narratives (when one is loaded).
    pub narrate: bool,
    /// Languages the model writes narratives in; others get the deterministic one
    /// (the default 135M model writes no usable Japanese).
    pub model_languages: Vec<Lang>,
    /// Stop the narrative after this many sentences.
    pub max_sentences: usize,
    /// Alerts read per question at most.
    pub max_alerts: usize,
    pub max_question_bytes: usize,
    /// Routing confidence below which the capability list is given.
    pub route_threshold: f32,
    pub session_ttl: Duration,
    pub max_sessions: usize,
}

impl Default for AssistConfig {
    fn default() -> Self {
        AssistConfig {
            model_path: None,
            embedder_dir: None,
            threads: 0,
            max_tokens: 80,
            narrate: true,
            model_languages: vec![Lang::En],
            max_sentences: 3,
            max_alerts: 5000,
            max_question_bytes: 4096,
            route_threshold: DEFAULT_THRESHOLD,
            session_ttl: Duration::from_secs(30 * 60),
            max_sessions: 256,
        }
    }
}

/// A question.
#[derive(Clone, Debug, Default)]
pub struct AskRequest<'a> {
    pub session: &'a str,
    pub question: &'a str,
    /// Non-empty: restricts the evidence and becomes the session's context. Empty or
    /// `None`: the session's context (all alerts for a new session).
    pub context_filter: Option<&'a str>,
    /// Answer language; `None`: the question's.
    pub language: Option<Lang>,
    /// Only the deterministic parts.
    pub skip_narrative: bool,
}

/// A request to explain one alert.
#[derive(Clone, Debug, Default)]
pub struct ExplainRequest<'a> {
    pub session: &'a str,
    pub alert_id: &'a str,
    pub language: Option<Lang>,
    pub skip_narrative: bool,
}

/// Where the time went, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub total_ms: f64,
    pub routing_ms: f64,
    pub retrieval_ms: f64,
    /// From the request to the first section.
    pub first_section_ms: f64,
    pub prompt_ms: f64,
    pub generation_ms: f64,
    /// From the request to the model's first token (`None` without a model run).
    pub time_to_first_token_ms: Option<f64>,
    /// From the request to the first narrative text sent.
    pub first_text_ms: Option<f64>,
    pub prompt_tokens: usize,
    pub cached_prompt_tokens: usize,
    pub generated_tokens: usize,
}

/// The last part of an answer, also returned by `ask`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnswerSummary {
    pub intent: Intent,
    pub confidence: f32,
    pub route_method: RouteMethod,
    pub language: Lang,
    /// Context filter in force.
    pub context_filter: Option<String>,
    /// Entities the answer was narrowed to.
    pub entities: Vec<Entity>,
    pub alert_ids: Vec<String>,
    pub incident_ids: Vec<String>,
    pub filters: Vec<SuggestedFilter>,
    pub sections: Vec<Section>,
    pub narrative: String,
    pub narrative_source: NarrativeSource,
    /// The model that wrote the narrative.
    pub model: Option<String>,
    /// Model sentences the verifier dropped, with the reason.
    pub dropped_sentences: Vec<(String, String)>,
    pub notes: Vec<String>,
    pub timings: Timings,
}

/// One streamed part of an answer (mirrors the API's `AnswerPart`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerPart {
    Section(Section),
    /// Narrative text to append (verified model text, or the deterministic narrative).
    TextDelta(String),
    Evidence {
        alert_ids: Vec<String>,
        incident_ids: Vec<String>,
    },
    SuggestedFilter(SuggestedFilter),
    Done(Box<AnswerSummary>),
}

/// The on-node assistant. `Send + Sync`: share it between request handlers; one model
/// generation runs at a time.
pub struct Assistant {
    cfg: AssistConfig,
    llm: Option<Mutex<Llm>>,
    model_name: Option<String>,
    router: Router,
    kb: Knowledge,
    playbooks: Playbooks,
    sessions: Mutex<Sessions>,
}

// Request handlers share one assistant across threads.
const _: fn() = || {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Assistant>();
};

impl std::fmt::Debug for Assistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assistant")
            .field("model", &self.model_name)
            .field("router", &self.router)
            .finish()
    }
}

/// Everything decided before streaming.
struct Prepared {
    routing: Routing,
    intent: Intent,
    lang: Lang,
    context: Option<String>,
    entities: Vec<Entity>,
    built: Built,
    has_evidence: bool,
    /// The evidence's names (for the verifier's kind checks).
    catalog: Catalog,
    routing_ms: f64,
    retrieval_ms: f64,
}

impl Assistant {
    /// Loads the configured models and the knowledge base.
    pub fn new(cfg: AssistConfig) -> Result<Assistant, AssistError> {
        if cfg.max_alerts == 0 || cfg.max_sentences == 0 {
            return Err(AssistError::Config(
                "max_alerts and max_sentences must be at least 1".into(),
            ));
        }
        let embedder = match &cfg.embedder_dir {
            Some(d) => Some(Embedder::load_with_threads(d, cfg.threads)?),
            None => None,
        };
        let router = Router::new(embedder, cfg.route_threshold)?;
        let (llm, model_name) = match &cfg.model_path {
            Some(p) => {
                let mut llm = Llm::load(
                    p,
                    LlmOptions {
                        threads: cfg.threads,
                        cache_system_prompt: true,
                        ..LlmOptions::default()
                    },
                )?;
                // Fill the system prompt's KV cache now, so the first question does not
                // pay for it.
                let _ = llm.generate(
                    &[
                        ChatMessage::system(narrate::SYSTEM_PROMPT),
                        ChatMessage::user("ready"),
                    ],
                    &saker_models::GenOptions {
                        max_tokens: 1,
                        ..Default::default()
                    },
                    |_| std::ops::ControlFlow::Continue(()),
                )?;
                let name = llm
                    .info()
                    .name
                    .clone()
                    .or_else(|| p.file_name().map(|f| f.to_string_lossy().into_owned()));
                (Some(Mutex::new(llm)), name)
            }
            None => (None, None),
        };
        Ok(Assistant {
            sessions: Mutex::new(Sessions::new(cfg.max_sessions, cfg.session_ttl)),
            cfg,
            llm,
            model_name,
            router,
            kb: Knowledge::bundled()?,
            playbooks: Playbooks::bundled()?,
        })
    }

    pub fn knowledge(&self) -> &Knowledge {
        &self.kb
    }

    pub fn has_model(&self) -> bool {
        self.llm.is_some()
    }

    pub fn has_embedder(&self) -> bool {
        self.router.has_embedder()
    }

    /// Routes a question without answering it.
    pub fn route(&self, question: &str) -> Result<Routing, AssistError> {
        self.router.route(question)
    }

    /// Whether `id` is a live session.
    pub fn has_session(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id, Instant::now())
    }

    /// Forgets a session.
    pub fn end_session(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    /// Answers `question` in `session`, streaming the parts through `out`.
    pub fn ask(
        &self,
        ev: &dyn Evidence,
        session: &str,
        question: &str,
        context_filter: Option<&str>,
        out: &mut dyn FnMut(AnswerPart),
    ) -> Result<AnswerSummary, AssistError> {
        self.ask_with(
            ev,
            &AskRequest {
                session,
                question,
                context_filter,
                ..AskRequest::default()
            },
            out,
        )
    }

    /// [`Assistant::ask`] with every option.
    pub fn ask_with(
        &self,
        ev: &dyn Evidence,
        req: &AskRequest,
        out: &mut dyn FnMut(AnswerPart),
    ) -> Result<AnswerSummary, AssistError> {
        let t0 = Instant::now();
        let question = req.question.trim();
        if question.is_empty() {
            return Err(AssistError::EmptyQuestion);
        }
        if question.len() > self.cfg.max_question_bytes {
            return Err(AssistError::QuestionTooLong {
                len: question.len(),
                max: self.cfg.max_question_bytes,
            });
        }
        let mut session = self.session(req.session);
        let p = self.prepare(ev, req, &session)?;
        let (summary, mut focus) = self.stream(p, req.skip_narrative, t0, out)?;
        // "This alert" stays the last explained one until another is explained, within
        // the same context.
        if focus.alert_id.is_none() && summary.context_filter == session.context_filter {
            focus.alert_id = session.focus.alert_id.clone();
        }
        session.context_filter = summary.context_filter.clone();
        session.focus = focus;
        session.last_intent = Some(summary.intent);
        session.lang = summary.language;
        session.questions += 1;
        self.remember(req.session, session);
        Ok(summary)
    }

    /// Explains one alert.
    pub fn explain(
        &self,
        ev: &dyn Evidence,
        alert_id: &str,
        out: &mut dyn FnMut(AnswerPart),
    ) -> Result<AnswerSummary, AssistError> {
        self.explain_with(
            ev,
            &ExplainRequest {
                alert_id,
                ..ExplainRequest::default()
            },
            out,
        )
    }

    /// [`Assistant::explain`] with every option.
    pub fn explain_with(
        &self,
        ev: &dyn Evidence,
        req: &ExplainRequest,
        out: &mut dyn FnMut(AnswerPart),
    ) -> Result<AnswerSummary, AssistError> {
        let t0 = Instant::now();
        let id = req.alert_id.trim();
        if id.is_empty() {
            return Err(AssistError::AlertNotFound(String::new()));
        }
        let mut session = self.session(req.session);
        let t_ret = Instant::now();
        let alert = ev
            .alert(id)?
            .ok_or_else(|| AssistError::AlertNotFound(id.to_string()))?;
        let lang = req.language.unwrap_or(session.lang);
        let scope = Scope::new(
            lang,
            &self.kb,
            &self.playbooks,
            ev,
            self.cfg.max_alerts,
            session.context_filter.as_deref(),
            &[],
            &[],
        );
        let mut built = facts::explain_alert(&scope, &alert)?;
        // Follow-ups ("how do I fix this?") are about the alert's pod.
        built.focus.entities = alert_entities(&alert);
        let p = Prepared {
            routing: Routing {
                intent: Intent::ExplainAlert,
                confidence: 1.0,
                method: RouteMethod::None,
                scores: Vec::new(),
            },
            intent: Intent::ExplainAlert,
            lang,
            context: session.context_filter.clone(),
            entities: alert_entities(&alert),
            built,
            has_evidence: true,
            catalog: Catalog::build(std::slice::from_ref(&alert), &[]),
            routing_ms: 0.0,
            retrieval_ms: ms(t_ret),
        };
        let (summary, focus) = self.stream(p, req.skip_narrative, t0, out)?;
        session.focus = focus;
        session.last_intent = Some(Intent::ExplainAlert);
        session.lang = lang;
        session.questions += 1;
        self.remember(req.session, session);
        Ok(summary)
    }

    /// The chat the model would get for this question (for tests and debugging; the
    /// session is read, not changed).
    pub fn prompt_messages(
        &self,
        ev: &dyn Evidence,
        req: &AskRequest,
    ) -> Result<Vec<ChatMessage>, AssistError> {
        let session = self.session(req.session);
        let p = self.prepare(ev, req, &session)?;
        Ok(narrate::messages(p.intent, &p.built.facts))
    }

    /// The token ids the loaded model would be fed for `messages` (`None` without a
    /// model).
    pub fn tokenize_prompt(&self, messages: &[ChatMessage]) -> Result<Option<Prompt>, AssistError> {
        match &self.llm {
            Some(l) => {
                let guard = l.lock().unwrap_or_else(|p| p.into_inner());
                Ok(Some(guard.build_prompt(messages)?))
            }
            None => Ok(None),
        }
    }

    /// Ids of the loaded model's control (special) tokens, for checking that workload
    /// text never becomes one (empty without a model).
    pub fn control_token_ids(&self) -> Vec<u32> {
        match &self.llm {
            Some(l) => {
                let guard = l.lock().unwrap_or_else(|p| p.into_inner());
                let tok = guard.tokenizer();
                let mut ids: Vec<u32> = tok
                    .special_tokens()
                    .filter_map(|t| tok.special_id(t))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            }
            None => Vec::new(),
        }
    }

    fn session(&self, id: &str) -> Session {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot(id, Instant::now())
    }

    /// Stores the session (an empty id means a one-off question: nothing to keep).
    fn remember(&self, id: &str, session: Session) {
        if id.is_empty() {
            return;
        }
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(id, session, Instant::now());
    }

    /// Routing, retrieval, entity and follow-up resolution, facts.
    fn prepare(
        &self,
        ev: &dyn Evidence,
        req: &AskRequest,
        session: &Session,
    ) -> Result<Prepared, AssistError> {
        let question = req.question.trim();
        let lang = req.language.unwrap_or_else(|| Lang::detect(question));
        let t_route = Instant::now();
        let routing = self.router.route(question)?;
        let routing_ms = ms(t_route);

        let context: Option<String> = match req.context_filter.map(str::trim) {
            Some(f) if !f.is_empty() => {
                filter::validate(f)?;
                Some(f.to_string())
            }
            _ => session.context_filter.clone(),
        };
        // A new context starts a new line of questions: the old focus does not apply.
        let empty = Focus::default();
        let focus = if context == session.context_filter {
            &session.focus
        } else {
            &empty
        };
        let t_ret = Instant::now();
        let mut alerts = ev.alerts(context.as_deref(), self.cfg.max_alerts)?;
        alerts.sort_by(|a, b| (a.time_ns, &a.id).cmp(&(b.time_ns, &b.id)));
        let truncated = alerts.len() >= self.cfg.max_alerts;
        let total = if truncated {
            ev.count(context.as_deref())?
        } else {
            None
        };
        let incidents: Vec<Incident> = correlate(&alerts, &CorrelateConfig::default());
        let catalog = Catalog::build(&alerts, &incidents);
        let mut entities = catalog.find(question);

        // Explaining an alert by id, even one outside the context.
        let mut explain_target: Option<Alert> = entities
            .iter()
            .find(|e| e.kind == EntityKind::AlertId)
            .and_then(|e| alerts.iter().find(|a| a.id == e.value).cloned());
        let mut intent = routing.intent;
        let wants_alert = matches!(
            intent,
            Intent::ExplainAlert | Intent::Unknown | Intent::Count | Intent::ListEvents
        );
        if explain_target.is_none() && wants_alert {
            for tok in id_like_tokens(question).into_iter().take(3) {
                if let Some(a) = ev.alert(&tok)? {
                    explain_target = Some(a);
                    break;
                }
            }
        }
        let refs = references(question);
        if explain_target.is_none() && intent == Intent::ExplainAlert {
            // "Explain this alert" after an explain: the session's alert.
            if let Some(id) = &focus.alert_id {
                explain_target = ev.alert(id)?;
            }
        }
        if explain_target.is_some() && wants_alert {
            intent = Intent::ExplainAlert;
        }

        let mut scope = Scope::new(
            lang,
            &self.kb,
            &self.playbooks,
            ev,
            self.cfg.max_alerts,
            context.as_deref(),
            &alerts,
            &incidents,
        );
        scope.truncated = truncated;
        scope.total = total;
        // Follow-ups: no names in the question, but a reference to the last answer.
        if entities.is_empty() && !refs.is_empty() {
            let (ents, inc) = resolve_references(&refs, focus, &incidents, &catalog);
            entities = ents;
            scope.incident_focus = inc;
        } else if entities.is_empty() && intent.uses_incidents() {
            // "Which techniques were used?" after a root-cause answer is about the same
            // attack: incident questions without names stay on the last incidents.
            let ids: Vec<String> = focus
                .incident_ids
                .iter()
                .filter(|id| incidents.iter().any(|i| &i.id == *id))
                .cloned()
                .collect();
            if !ids.is_empty() {
                scope.incident_focus = Some(ids);
            }
        }
        // Alert ids narrow incident answers to the incidents holding them; for alert
        // answers they would select one alert, which is what explain is for.
        scope.entities = entities.clone();

        let built = match (intent, &explain_target) {
            (Intent::ExplainAlert, Some(a)) => {
                let mut b = facts::explain_alert(&scope, a)?;
                b.focus.entities = alert_entities(a);
                b
            }
            (Intent::ExplainAlert, None) => facts::build(Intent::Unknown, &scope)?,
            (i, _) => facts::build(i, &scope)?,
        };
        let intent = match (intent, &explain_target) {
            (Intent::ExplainAlert, None) => Intent::Unknown,
            (i, _) => i,
        };
        let has_evidence = !built.alert_ids.is_empty();
        Ok(Prepared {
            routing,
            intent,
            lang,
            context,
            entities,
            built,
            has_evidence,
            catalog,
            routing_ms,
            retrieval_ms: ms(t_ret),
        })
    }

    /// Streams sections, evidence, filters and the narrative; returns the summary.
    fn stream(
        &self,
        p: Prepared,
        skip_narrative: bool,
        t0: Instant,
        out: &mut dyn FnMut(AnswerPart),
    ) -> Result<(AnswerSummary, Focus), AssistError> {
        let mut timings = Timings {
            routing_ms: p.routing_ms,
            retrieval_ms: p.retrieval_ms,
            first_section_ms: ms(t0),
            ..Timings::default()
        };
        let built = p.built;
        for s in &built.sections {
            out(AnswerPart::Section(s.clone()));
        }
        if !built.alert_ids.is_empty() || !built.incident_ids.is_empty() {
            out(AnswerPart::Evidence {
                alert_ids: built.alert_ids.clone(),
                incident_ids: built.incident_ids.clone(),
            });
        }
        for f in &built.filters {
            out(AnswerPart::SuggestedFilter(f.clone()));
        }

        let use_model = !skip_narrative
            && self.cfg.narrate
            && p.intent != Intent::Unknown
            && !built.facts.lines.is_empty()
            && self.cfg.model_languages.contains(&p.lang);
        let mut narrative = String::new();
        let mut source = NarrativeSource::None;
        let mut model = None;
        let mut dropped = Vec::new();
        match (&self.llm, use_model) {
            (Some(llm), true) => {
                let verifier = verifier_for(&built, p.has_evidence, &p.catalog);
                let before = ms(t0);
                let n = narrate::narrate(
                    llm,
                    p.intent,
                    &built.facts,
                    &verifier,
                    &NarrateOptions {
                        max_tokens: self.cfg.max_tokens,
                        max_sentences: self.cfg.max_sentences,
                    },
                    &mut |piece| out(AnswerPart::TextDelta(piece.to_string())),
                )?;
                if let Some(st) = &n.stats {
                    timings.prompt_ms = st.prompt_ms;
                    timings.generation_ms = st.gen_ms;
                    timings.time_to_first_token_ms = Some(before + st.time_to_first_token_ms);
                    timings.prompt_tokens = st.prompt_tokens;
                    timings.cached_prompt_tokens = st.cached_prompt_tokens;
                    timings.generated_tokens = st.generated_tokens;
                }
                timings.first_text_ms = n.first_text_ms.map(|x| before + x);
                narrative = n.text;
                source = n.source;
                if source == NarrativeSource::Model {
                    model = self.model_name.clone();
                }
                dropped = n.dropped;
            }
            _ if !skip_narrative && !built.facts.fallback.is_empty() => {
                timings.first_text_ms = Some(ms(t0));
                narrative = built.facts.fallback.clone();
                out(AnswerPart::TextDelta(narrative.clone()));
                source = NarrativeSource::Template;
            }
            _ => {}
        }
        let mut notes = built.notes.clone();
        if !dropped.is_empty() {
            notes.push(format!(
                "{} sentence(s) of the model's draft failed verification and were left out.",
                dropped.len()
            ));
        }
        if p.intent == Intent::Unknown {
            notes.push(format!(
                "Routing confidence {:.2} is below the threshold {:.2}.",
                p.routing.confidence, self.cfg.route_threshold
            ));
        }
        timings.total_ms = ms(t0);
        let summary = AnswerSummary {
            intent: p.intent,
            confidence: if p.intent == Intent::ExplainAlert
                && p.routing.intent != Intent::ExplainAlert
            {
                // Routed by the alert id in the question.
                p.routing.confidence.max(0.9)
            } else {
                p.routing.confidence
            },
            route_method: p.routing.method,
            language: p.lang,
            context_filter: p.context,
            entities: p.entities,
            alert_ids: built.alert_ids,
            incident_ids: built.incident_ids,
            filters: built.filters,
            sections: built.sections,
            narrative,
            narrative_source: source,
            model,
            dropped_sentences: dropped,
            notes,
            timings,
        };
        out(AnswerPart::Done(Box::new(summary.clone())));
        Ok((summary, built.focus))
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The verifier's vocabulary: the fact sheet, every section, the deterministic text,
/// and the kinds of the evidence's names.
fn verifier_for(built: &Built, has_evidence: bool, catalog: &Catalog) -> Verifier {
    let mut texts: Vec<String> = built.facts.lines.clone();
    texts.push(built.facts.fallback.clone());
    texts.extend(built.sections.iter().map(Section::markdown));
    Verifier::new(texts.iter().map(String::as_str), has_evidence)
        .with_common_compounds()
        .with_entities(catalog.entries())
}

/// Entities an explained alert puts in focus (its pod and namespace).
fn alert_entities(a: &Alert) -> Vec<Entity> {
    let mut v = Vec::new();
    if let Some(c) = &a.event.ctx.container {
        if let Some(ns) = &c.namespace {
            v.push(Entity {
                kind: EntityKind::Namespace,
                value: ns.clone(),
            });
        }
        if let Some(p) = &c.pod_name {
            v.push(Entity {
                kind: EntityKind::Pod,
                value: p.clone(),
            });
        }
    }
    v
}

/// Tokens of a question that could be alert ids (checked against the store).
fn id_like_tokens(q: &str) -> Vec<String> {
    q.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | '?' | '!' | '"' | '\'' | '`' | '(' | ')' | '、' | '。' | '？'
            )
    })
    .map(|t| t.trim_end_matches('.'))
    .filter(|t| {
        t.len() >= 3
            && t.len() <= 128
            && t.is_ascii()
            && t.bytes().any(|b| b.is_ascii_digit())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    })
    .map(str::to_string)
    .collect()
}

/// Resolves follow-up references against the session's last focus.
fn resolve_references(
    refs: &[Reference],
    focus: &Focus,
    incidents: &[Incident],
    catalog: &Catalog,
) -> (Vec<Entity>, Option<Vec<String>>) {
    let live = |e: &Entity| catalog.contains(e);
    let mut entities: Vec<Entity> = Vec::new();
    let mut incident_focus: Option<Vec<String>> = None;
    for r in refs {
        match r {
            Reference::Kind(EntityKind::AlertId) => {
                if let Some(id) = &focus.alert_id {
                    let e = Entity {
                        kind: EntityKind::AlertId,
                        value: id.clone(),
                    };
                    if live(&e) {
                        entities.push(e);
                    }
                }
            }
            Reference::Kind(k) => {
                entities.extend(
                    focus
                        .entities
                        .iter()
                        .filter(|e| e.kind == *k && live(e))
                        .cloned(),
                );
            }
            Reference::It | Reference::Incident => {
                let ids: Vec<String> = focus
                    .incident_ids
                    .iter()
                    .filter(|id| incidents.iter().any(|i| &i.id == *id))
                    .cloned()
                    .collect();
                if !ids.is_empty() {
                    incident_focus = Some(ids);
                } else {
                    entities.extend(focus.entities.iter().filter(|e| live(e)).cloned());
                    if let Some(id) = &focus.alert_id {
                        let e = Entity {
                            kind: EntityKind::AlertId,
                            value: id.clone(),
                        };
                        if live(&e) {
                            entities.push(e);
                        }
                    }
                }
            }
        }
    }
    entities.sort();
    entities.dedup();
    (entities, incident_focus)
}
