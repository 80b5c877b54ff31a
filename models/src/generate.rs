//! Loading a llama-family GGUF and streaming generation with candle.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};

use crate::chat::{build_prompt, sanitize_with, ChatMessage, ChatTemplate, Prompt};
use crate::error::{ModelError, Result};
use crate::gguf_meta;
use crate::llama::{ModelWeights, MAX_SEQ_LEN};
use crate::threads;
use crate::tokenizer::{StreamDecoder, TextTokenizer};

/// Prompt tokens per forward pass: bounds the attention scratch memory
/// (heads x chunk x context floats) on long prompts.
const PROMPT_CHUNK: usize = 512;

/// Hyper-parameters `quantized_llama` reads with strict types (`to_u32`/`to_f32`).
const U32_KEYS: &[&str] = &[
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.block_count",
    "llama.embedding_length",
    "llama.rope.dimension_count",
];

#[derive(Clone, Debug)]
pub struct LlmOptions {
    /// Inference threads; 0 = all cores but one. candle's matmul workers are
    /// process-wide and sized by the first `Llm` loaded (see `threads.rs`). They
    /// busy-wait at every op: with other load on the cores, more threads than free
    /// cores can make generation several times slower, not faster.
    pub threads: usize,
    /// A tokenizer.json to use instead of the one rebuilt from GGUF metadata.
    pub tokenizer_json: Option<PathBuf>,
    /// Lower context cap than the model's (never above candle's 4096).
    pub context_limit: Option<usize>,
    /// Force a chat format instead of detecting it from `tokenizer.chat_template`.
    pub chat_template: Option<ChatTemplate>,
    /// Keep the KV cache of the leading system message between calls.
    pub cache_system_prompt: bool,
}

impl Default for LlmOptions {
    fn default() -> Self {
        Self {
            threads: 0,
            tokenizer_json: None,
            context_limit: None,
            chat_template: None,
            cache_system_prompt: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct GenOptions {
    pub max_tokens: usize,
    /// <= 0 means greedy argmax (deterministic).
    pub temperature: f64,
    /// Nucleus sampling when `Some` and temperature > 0.
    pub top_p: Option<f64>,
    pub seed: u64,
    /// Generation ends before any of these strings; they are not emitted.
    pub stop: Vec<String>,
    /// 1.0 disables; small models loop without it.
    pub repeat_penalty: f32,
    /// How many trailing tokens the penalty looks at.
    pub repeat_last_n: usize,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: None,
            seed: 299_792_458,
            stop: Vec::new(),
            repeat_penalty: 1.1,
            repeat_last_n: 64,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// End-of-turn or end-of-sequence token.
    Eos,
    StopString,
    MaxTokens,
    /// The context cap was reached.
    ContextFull,
    /// The callback returned `ControlFlow::Break`.
    Cancelled,
}

/// Timings of one generation. `prompt_ms` covers the forward passes over the
/// prompt (minus any cached prefix); `gen_ms` covers the decode steps after the
/// first token (`generated_tokens - 1` forward passes), as in candle's examples.
#[derive(Clone, Debug, PartialEq)]
pub struct GenStats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV came from the system-prompt cache.
    pub cached_prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prompt_ms: f64,
    pub gen_ms: f64,
    /// From the call to the first sampled token (tokenizing + prompt + first sample).
    pub time_to_first_token_ms: f64,
    pub stop_reason: StopReason,
}

impl GenStats {
    pub fn prompt_tokens_per_s(&self) -> f64 {
        per_s(
            self.prompt_tokens - self.cached_prompt_tokens,
            self.prompt_ms,
        )
    }
    pub fn gen_tokens_per_s(&self) -> f64 {
        per_s(self.generated_tokens.saturating_sub(1), self.gen_ms)
    }
}

fn per_s(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// What was loaded, for logs and `saker doctor`-style output.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub architecture: String,
    pub name: Option<String>,
    /// Effective context cap (model's, candle's 4096 and the option, whichever is least).
    pub context_limit: usize,
    pub vocab_size: usize,
    pub tokenizer: String,
    pub chat_template: ChatTemplate,
    pub threads: usize,
    pub load_ms: f64,
}

pub struct Llm {
    model: ModelWeights,
    tokenizer: TextTokenizer,
    info: ModelInfo,
    pool: rayon::ThreadPool,
    device: Device,
    cache_system_prompt: bool,
    /// System-prompt tokens and the model state right after them.
    prefix_cache: Option<(Vec<u32>, ModelWeights)>,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm").field("info", &self.info).finish()
    }
}

impl Llm {
    /// Loads a llama-family GGUF; the tokenizer comes from its metadata unless
    /// `opts.tokenizer_json` is given.
    pub fn load(path: &Path, opts: LlmOptions) -> Result<Llm> {
        let t0 = Instant::now();
        let (mut content, mut reader) = gguf_meta::open(path)?;
        let architecture = gguf_meta::check_architecture(&content)?;
        gguf_meta::alias_to_llama(&mut content, &architecture);
        normalize_hparams(&mut content)?;

        let tokenizer = match &opts.tokenizer_json {
            Some(p) => TextTokenizer::from_file(p, &content)?,
            None => TextTokenizer::from_gguf(&content)?,
        };
        let chat_template = match opts.chat_template {
            Some(t) => t,
            None => ChatTemplate::detect(
                gguf_meta::opt_str(&content, "tokenizer.chat_template"),
                &tokenizer,
            ),
        };
        // Fails now, not at the first question, if the template's tokens are missing.
        build_prompt(
            &chat_template,
            &tokenizer,
            &[ChatMessage::system("s"), ChatMessage::user("u")],
        )?;
        let context_limit = [
            Some(MAX_SEQ_LEN),
            gguf_meta::context_length(&content),
            opts.context_limit,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(MAX_SEQ_LEN);
        let name = gguf_meta::opt_str(&content, "general.name").map(str::to_string);

        let threads = threads::configure_candle(opts.threads);
        let pool = threads::pool(threads, "saker-llm")?;
        let device = Device::Cpu;
        let model = pool
            .install(|| ModelWeights::from_gguf(content, &mut reader, &device))
            .map_err(|e| ModelError::InvalidGguf {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let info = ModelInfo {
            path: path.to_path_buf(),
            architecture,
            name,
            context_limit,
            vocab_size: tokenizer.vocab_size(),
            tokenizer: tokenizer.kind().to_string(),
            chat_template,
            threads,
            load_ms: t0.elapsed().as_secs_f64() * 1e3,
        };
        Ok(Llm {
            model,
            tokenizer,
            info,
            pool,
            device,
            cache_system_prompt: opts.cache_system_prompt,
            prefix_cache: None,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Neutralises generic control-token spellings and this model's special tokens.
    pub fn sanitize_untrusted(&self, text: &str) -> String {
        sanitize_with(text, self.tokenizer.special_tokens())
    }

    /// The exact token ids `generate` would feed for `messages`.
    pub fn build_prompt(&self, messages: &[ChatMessage]) -> Result<Prompt> {
        build_prompt(&self.info.chat_template, &self.tokenizer, messages)
    }

    /// Streams the assistant's answer to `messages` through `on_token` (text pieces,
    /// never a split UTF-8 character, never a control token).
    pub fn generate(
        &mut self,
        messages: &[ChatMessage],
        opts: &GenOptions,
        mut on_token: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenStats> {
        let t0 = Instant::now();
        if let Some(p) = opts.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(ModelError::InvalidOption(format!(
                "top_p must be in (0, 1], got {p}"
            )));
        }
        let prompt = self.build_prompt(messages)?;
        let limit = self.info.context_limit;
        if prompt.ids.len() >= limit {
            return Err(ModelError::ContextOverflow {
                prompt_tokens: prompt.ids.len(),
                limit,
            });
        }

        // Prompt: reuse the system prefix's KV cache when it is unchanged.
        let mut cached = 0;
        let logits = {
            let t_prompt = Instant::now();
            let prefix = &prompt.ids[..prompt.prefix_len];
            let hit = self.cache_system_prompt
                && !prefix.is_empty()
                && matches!(&self.prefix_cache, Some((ids, _)) if ids.as_slice() == prefix);
            let start = if hit {
                if let Some((_, snapshot)) = &self.prefix_cache {
                    self.model = snapshot.clone();
                }
                cached = prefix.len();
                prefix.len()
            } else if self.cache_system_prompt && !prefix.is_empty() {
                self.forward_chunks(prefix, 0)?;
                self.prefix_cache = Some((prefix.to_vec(), self.model.clone()));
                prefix.len()
            } else {
                0
            };
            let logits = self.forward_chunks(&prompt.ids[start..], start)?;
            (logits, t_prompt.elapsed())
        };
        let (mut logits, prompt_time) = logits;

        let sampling = if opts.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            match opts.top_p {
                Some(p) if p < 1.0 => Sampling::TopP {
                    p,
                    temperature: opts.temperature,
                },
                _ => Sampling::All {
                    temperature: opts.temperature,
                },
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(opts.seed, sampling);
        let mut stops = StopMatcher::new(
            opts.stop
                .iter()
                .chain(&prompt.stop_strings)
                .filter(|s| !s.is_empty())
                .cloned()
                .collect(),
        );
        let mut decoder = StreamDecoder::new();
        let mut history = prompt.ids.clone();
        let mut generated = 0usize;
        let mut ttft = None;
        let mut t_gen = Instant::now();
        let stop_reason = loop {
            let next = self.sample(&mut sampler, &logits, &history, opts)?;
            if ttft.is_none() {
                ttft = Some(t0.elapsed());
                t_gen = Instant::now();
            }
            if prompt.stop_ids.contains(&next) {
                break StopReason::Eos;
            }
            history.push(next);
            generated += 1;
            if let Some(piece) = decoder.push(&self.tokenizer, next)? {
                if let Some(reason) = emit(&mut stops, &piece, &mut on_token) {
                    break reason;
                }
            }
            if generated >= opts.max_tokens {
                break StopReason::MaxTokens;
            }
            if history.len() >= limit {
                break StopReason::ContextFull;
            }
            let input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
            let pos = history.len() - 1;
            let model = &mut self.model;
            logits = self.pool.install(|| model.forward(&input, pos))?;
        };
        let gen_time = t_gen.elapsed();
        // Whatever is still held back (incomplete UTF-8, a partial stop string).
        if !matches!(stop_reason, StopReason::StopString | StopReason::Cancelled) {
            let tail = decoder.flush(&self.tokenizer)?.unwrap_or_default();
            let rest = stops.finish(&tail);
            if !rest.is_empty() {
                let _ = on_token(&rest);
            }
        }
        Ok(GenStats {
            prompt_tokens: prompt.ids.len(),
            cached_prompt_tokens: cached,
            generated_tokens: generated,
            prompt_ms: prompt_time.as_secs_f64() * 1e3,
            gen_ms: gen_time.as_secs_f64() * 1e3,
            time_to_first_token_ms: ttft.map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
            stop_reason,
        })
    }

    /// Convenience wrapper collecting the whole answer.
    pub fn generate_text(
        &mut self,
        messages: &[ChatMessage],
        opts: &GenOptions,
    ) -> Result<(String, GenStats)> {
        let mut text = String::new();
        let stats = self.generate(messages, opts, |piece| {
            text.push_str(piece);
            ControlFlow::Continue(())
        })?;
        Ok((text, stats))
    }

    /// Feeds `ids` starting at position `pos`; returns the last position's logits.
    fn forward_chunks(&mut self, ids: &[u32], pos: usize) -> Result<Tensor> {
        let mut logits = None;
        for (i, chunk) in ids.chunks(PROMPT_CHUNK).enumerate() {
            let input = Tensor::new(chunk, &self.device)?.unsqueeze(0)?;
            let model = &mut self.model;
            let at = pos + i * PROMPT_CHUNK;
            logits = Some(self.pool.install(|| model.forward(&input, at))?);
        }
        logits.ok_or_else(|| ModelError::InvalidOption("empty prompt".into()))
    }

    fn sample(
        &self,
        sampler: &mut LogitsProcessor,
        logits: &Tensor,
        history: &[u32],
        opts: &GenOptions,
    ) -> Result<u32> {
        let mut logits = logits.squeeze(0)?.to_dtype(DType::F32)?;
        if opts.repeat_penalty != 1.0 && opts.repeat_last_n > 0 {
            let start = history.len().saturating_sub(opts.repeat_last_n);
            logits = candle_transformers::utils::apply_repeat_penalty(
                &logits,
                opts.repeat_penalty,
                &history[start..],
            )?;
        }
        Ok(sampler.sample(&logits)?)
    }
}

fn emit(
    stops: &mut StopMatcher,
    piece: &str,
    on_token: &mut impl FnMut(&str) -> ControlFlow<()>,
) -> Option<StopReason> {
    let (out, hit) = stops.feed(piece);
    if !out.is_empty() && on_token(&out).is_break() {
        return Some(StopReason::Cancelled);
    }
    hit.then_some(StopReason::StopString)
}

/// candle reads some hyper-parameters with exact types and requires
/// `rope.dimension_count`, which converters may omit (llama.cpp defaults it).
pub(crate) fn normalize_hparams(content: &mut Content) -> Result<()> {
    for key in U32_KEYS {
        let v = match content.metadata.get(*key) {
            Some(v) => gguf_meta::as_u64(v),
            None if *key == "llama.rope.dimension_count" => {
                let emb = gguf_meta::get_u32(content, "llama.embedding_length")?;
                let heads = gguf_meta::get_u32(content, "llama.attention.head_count")?;
                (heads > 0).then(|| u64::from(emb / heads))
            }
            None => None,
        };
        let v =
            v.and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| ModelError::MissingMetadata {
                    key: key.to_string(),
                })?;
        content.metadata.insert(key.to_string(), Value::U32(v));
    }
    let eps_key = "llama.attention.layer_norm_rms_epsilon";
    let eps = match gguf_meta::get(content, eps_key)? {
        Value::F32(x) => *x,
        Value::F64(x) => *x as f32,
        _ => {
            return Err(ModelError::MissingMetadata {
                key: eps_key.to_string(),
            })
        }
    };
    content
        .metadata
        .insert(eps_key.to_string(), Value::F32(eps));
    Ok(())
}

/// Holds back text that may be the start of a stop string, so a stop string is
/// never partially shown.
struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

impl StopMatcher {
    fn new(stops: Vec<String>) -> Self {
        Self {
            stops,
            pending: String::new(),
        }
    }

    /// Returns the text safe to emit and whether a stop string was reached.
    fn feed(&mut self, piece: &str) -> (String, bool) {
        self.pending.push_str(piece);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min()
        {
            let out = self.pending[..at].to_string();
            self.pending.clear();
            return (out, true);
        }
        let keep = self.held_suffix_len();
        let split = self.pending.len() - keep;
        let out = self.pending[..split].to_string();
        self.pending.drain(..split);
        (out, false)
    }

    fn held_suffix_len(&self) -> usize {
        let len = self.pending.len();
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        (1..longest.min(len + 1))
            .rev()
            .find(|&k| {
                self.pending.is_char_boundary(len - k)
                    && self
                        .stops
                        .iter()
                        .any(|s| s.starts_with(&self.pending[len - k..]))
            })
            .unwrap_or(0)
    }

    /// Flushes at the end of generation.
    fn finish(&mut self, tail: &str) -> String {
        let (mut out, hit) = self.feed(tail);
        if !hit {
            out.push_str(&std::mem::take(&mut self.pending));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::StopMatcher;

    #[test]
    fn stop_string_split_across_pieces() {
        let mut m = StopMatcher::new(vec!["\nUser:".into()]);
        assert_eq!(m.feed("Hello"), ("Hello".into(), false));
        assert_eq!(m.feed(" there\nUs"), (" there".into(), false));
        assert_eq!(m.feed("er: hi"), (String::new(), true));
    }

    #[test]
    fn false_alarm_is_released() {
        let mut m = StopMatcher::new(vec!["\nUser:".into()]);
        assert_eq!(m.feed("a\nU"), ("a".into(), false));
        assert_eq!(m.feed("nix"), ("\nUnix".into(), false));
        assert_eq!(m.finish("é\nU"), "é\nU");
    }

    #[test]
    fn no_stops_passes_through() {
        let mut m = StopMatcher::new(vec![]);
        assert_eq!(m.feed("日本"), ("日本".into(), false));
    }
}
