//! Errors of the model layer. Each variant names what the operator has to fix.

use std::path::PathBuf;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file not found: {}", .0.display())]
    MissingFile(PathBuf),

    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a valid GGUF file: {reason}", path.display())]
    InvalidGguf { path: PathBuf, reason: String },

    #[error("GGUF metadata key `{key}` is missing or has the wrong type")]
    MissingMetadata { key: String },

    #[error(
        "unsupported model architecture \"{0}\": only llama-family GGUF files (general.architecture = llama or mistral) can be loaded"
    )]
    UnsupportedArchitecture(String),

    #[error("unsupported tokenizer: {0}")]
    UnsupportedTokenizer(String),

    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    #[error("chat template needs token `{0}`, which the vocabulary lacks")]
    MissingSpecialToken(String),

    #[error("prompt has {prompt_tokens} tokens but the context holds at most {limit}; shorten the evidence or the question")]
    ContextOverflow { prompt_tokens: usize, limit: usize },

    #[error("untrusted text produced control token id {0}; refusing to build the prompt")]
    ControlTokenInContent(u32),

    #[error("invalid option: {0}")]
    InvalidOption(String),

    #[error("{} is not a valid model config: {reason}", path.display())]
    InvalidConfig { path: PathBuf, reason: String },

    #[error("thread pool: {0}")]
    ThreadPool(String),

    #[error("inference failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::MissingFile(path)
        } else {
            ModelError::Io { path, source }
        }
    }

    pub(crate) fn tok(e: impl std::fmt::Display) -> Self {
        ModelError::Tokenizer(e.to_string())
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
