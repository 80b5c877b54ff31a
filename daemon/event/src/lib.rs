//! saker's shared data types: the decoded [`event::Event`], its enrichment
//! ([`context::Context`]), the [`enriched::Enriched`] event rules see, and [`alert::Alert`].

pub mod alert;
pub mod bstr;
pub mod context;
pub mod enriched;
pub mod event;

pub use alert::{Alert, Severity};
pub use bstr::BString;
pub use context::{Ancestor, ContainerMeta, Context, ProcContext};
pub use enriched::Enriched;
pub use event::{Body, Event};
