//! saker on-node models: llama-family GGUF generation and sentence embeddings
//! with candle, on CPU, with no network access.
//!
//! - [`Llm`]: loads a GGUF (tokenizer rebuilt from its metadata), formats chats
//!   by token id, streams answers.
//! - [`Embedder`]: all-MiniLM-L6-v2 sentence embeddings.
//! - [`requantize_gguf`]: one-off Q4_1 -> Q8_0 conversion done at install time.
//! - [`sanitize_untrusted`]: neutralises control-token text from watched workloads.

mod chat;
mod embed;
mod error;
mod generate;
pub mod gguf_meta;
mod llama;
mod requant;
mod threads;
mod tokenizer;

pub use chat::{
    build_prompt, sanitize_untrusted, sanitize_with, ChatMessage, ChatTemplate, Prompt, Role,
    BREAKER,
};
pub use embed::{cosine, Embedder};
pub use error::{ModelError, Result};
pub use generate::{GenOptions, GenStats, Llm, LlmOptions, ModelInfo, StopReason};
pub use requant::{requantize_gguf, write_gguf, GgmlDType, RequantReport};
pub use threads::default_threads;
pub use tokenizer::{StreamDecoder, TextTokenizer};

/// Re-exported so callers can build GGUF metadata without depending on candle.
pub use candle_core::quantized::gguf_file::Value as GgufValue;

/// The llama graph keeps at most this many positions (candle's RoPE table size).
pub const MAX_CONTEXT: usize = llama::MAX_SEQ_LEN;
