//! Errors of the assistant. Evidence errors come from the daemon's store; model errors
//! from loading or running the embedded models.

use saker_models::ModelError;

/// Everything that can make an answer fail (as opposed to an answer that says "I cannot
/// answer that", which is a normal answer).
#[derive(Debug, thiserror::Error)]
pub enum AssistError {
    /// The evidence store failed (the daemon maps its own error into this).
    #[error("evidence store: {0}")]
    Evidence(String),

    /// A context filter that does not parse (the caller's input).
    #[error("invalid filter: {0}")]
    InvalidFilter(String),

    #[error("the question is empty")]
    EmptyQuestion,

    #[error("the question is {len} bytes long; at most {max} are accepted")]
    QuestionTooLong { len: usize, max: usize },

    #[error("alert {0} not found")]
    AlertNotFound(String),

    /// Loading or running a model failed.
    #[error("model: {0}")]
    Model(#[from] ModelError),

    /// The bundled knowledge files are malformed (a build defect, caught by tests).
    #[error("knowledge base: {0}")]
    Knowledge(String),

    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
}
