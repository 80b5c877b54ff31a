//! saker's on-node investigation assistant.
//!
//! An operator asks a node about its alerts, in English or Japanese; the assistant
//! answers from the stored evidence only:
//!
//! 1. **Routing** ([`route`]): the question goes to an [`Intent`] (summarize, report,
//!    root cause, MITRE, attack path, blast radius, remediate, isolate, explain, count,
//!    list) by sentence embeddings against exemplar questions, backed by keywords; below
//!    a confidence threshold the answer lists what can be asked instead of guessing.
//! 2. **Entities** ([`entities`]): names in the question count only if the evidence has
//!    them; follow-ups ("this", 「その名前空間」) resolve against the [`session`].
//! 3. **Facts first** (`facts`): each intent builds its facts from the alerts and the
//!    incidents [`saker_incident::correlate`] makes of them, and renders its sections
//!    deterministically ([`render`]) in the question's language, with the evidence ids
//!    and an event-feed filter selecting them ([`filter`]).
//! 4. **The model phrases, a verifier checks** ([`narrate`], [`verify`]): an optional
//!    local model writes a short narrative from the fact sheet; every checkable token of
//!    it must be in the facts, failing sentences are dropped, and the deterministic
//!    narrative replaces an empty result.
//! 5. **Knowledge as data** ([`knowledge`], [`playbook`]): MITRE ATT&CK Enterprise from
//!    MITRE's published data, and remediation/isolation playbooks filled with the real,
//!    validated names.
//!
//! The store is behind the [`Evidence`] trait, which the daemon implements.

mod assistant;
pub mod entities;
mod error;
mod facts;
pub mod filter;
pub mod intent;
pub mod knowledge;
pub mod lang;
pub mod narrate;
pub mod playbook;
pub mod render;
pub mod route;
pub mod session;
pub mod verify;

pub use assistant::{
    AnswerPart, AnswerSummary, AskRequest, AssistConfig, Assistant, Evidence, ExplainRequest,
    Timings,
};
pub use entities::{Entity, EntityKind};
pub use error::AssistError;
pub use facts::FactSheet;
pub use filter::SuggestedFilter;
pub use intent::Intent;
pub use lang::Lang;
pub use narrate::NarrativeSource;
pub use render::{Row, Section, SectionBody, SectionKind, TreeNode};
pub use route::{RouteMethod, Routing};
