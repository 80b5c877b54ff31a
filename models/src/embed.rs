//! Sentence embeddings with a BERT model (all-MiniLM-L6-v2): mean pooling over the
//! attention mask, then L2 normalisation, as sentence-transformers does.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{ModelError, Result};
use crate::threads;

/// sentence-transformers' max_seq_length for MiniLM when the directory has no
/// sentence_bert_config.json.
const DEFAULT_MAX_TOKENS: usize = 256;

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    pool: rayon::ThreadPool,
    device: Device,
    dim: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("dim", &self.dim).finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| ModelError::io(path, e))
}

fn invalid(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::InvalidConfig {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl Embedder {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_with_threads(dir, 0)
    }

    /// As [`Embedder::load`] with an explicit thread count (0 = all cores but one).
    pub fn load_with_threads(dir: &Path, threads: usize) -> Result<Self> {
        let file = |name: &str| -> PathBuf { dir.join(name) };
        let config_path = file("config.json");
        let config: Config =
            serde_json::from_slice(&read(&config_path)?).map_err(|e| invalid(&config_path, e))?;

        let tok_path = file("tokenizer.json");
        if !tok_path.exists() {
            return Err(ModelError::MissingFile(tok_path));
        }
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| invalid(&tok_path, e))?;
        // The shipped tokenizer pads every input to 128: pad to the batch's longest.
        let padding = tokenizer.get_padding().cloned().unwrap_or_default();
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..padding
        }));
        let max_tokens = max_seq_length(dir).min(config.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| invalid(&tok_path, e))?;

        let weights_path = file("model.safetensors");
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(read(&weights_path)?, DTYPE, &device)
            .map_err(|e| invalid(&weights_path, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| invalid(&weights_path, e))?;
        // BERT runs f32 ops on rayon only, so candle's process-wide matmul pool
        // is left for the `Llm` to size.
        Ok(Self {
            model,
            tokenizer,
            pool: threads::pool(threads::resolve(threads), "saker-embed")?,
            device,
            dim: config.hidden_size,
        })
    }

    /// Embedding width (384 for MiniLM-L6).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// One unit-length vector per input text.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.pool.install(|| self.embed_inner(texts))
    }

    fn embed_inner(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(ModelError::tok)?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| -> Result<Tensor> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(f(e).as_slice(), &self.device))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = rows(&|e| e.get_ids().to_vec())?;
        let type_ids = rows(&|e| e.get_type_ids().to_vec())?;
        let mask = rows(&|e| e.get_attention_mask().to_vec())?;

        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (batch, seq, dim)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (batch, seq, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (batch, dim)
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?; // (batch, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

fn max_seq_length(dir: &Path) -> usize {
    std::fs::read(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("max_seq_length").and_then(|x| x.as_u64()))
        .map(|x| x as usize)
        .unwrap_or(DEFAULT_MAX_TOKENS)
}

/// Cosine similarity; for unit vectors from [`Embedder::embed`] this is the dot product.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
