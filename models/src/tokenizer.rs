//! Tokenizer for generative models, built from GGUF metadata when the file carries
//! no tokenizer.json (SmolLM2's does not), plus incremental detokenization.
//!
//! Invariant relied on by the prompt builder: [`TextTokenizer::encode_text`] never
//! yields a special/control token id, whatever the text contains.

use std::collections::HashSet;
use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::error::{ModelError, Result};
use crate::gguf_meta;

/// llama.cpp token types (`tokenizer.ggml.token_type`).
const TYPE_UNKNOWN: i64 = 2;
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;

/// llama.cpp's split regexes for the `llama-bpe` and `qwen2` pre-tokenizers.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer plus the facts about its special tokens that templating and
/// sanitizing need.
#[derive(Clone)]
pub struct TextTokenizer {
    /// Configured with `encode_special_tokens = true`: special-token text inside
    /// the input is tokenized as ordinary text, never matched as a control token.
    inner: Tokenizer,
    special: Vec<(String, u32)>,
    special_ids: HashSet<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    /// `tokenizer.ggml.model` / `tokenizer.ggml.pre`, for diagnostics.
    kind: String,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("kind", &self.kind)
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish()
    }
}

impl TextTokenizer {
    /// Builds the tokenizer described by `tokenizer.ggml.*` metadata.
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let model = gguf_meta::get_str(content, "tokenizer.ggml.model")?;
        let tokens = gguf_meta::get_str_array(content, "tokenizer.ggml.tokens")?;
        let types = gguf_meta::get_int_array(content, "tokenizer.ggml.token_type")
            .unwrap_or_else(|_| vec![1; tokens.len()]);
        if types.len() != tokens.len() {
            return Err(ModelError::Tokenizer(format!(
                "{} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let (mut inner, kind) = match model {
            "gpt2" => build_byte_level_bpe(content, &tokens)?,
            "llama" => build_sentencepiece_bpe(content, &tokens, &types)?,
            other => {
                return Err(ModelError::UnsupportedTokenizer(format!(
                    "tokenizer.ggml.model = \"{other}\"; supply a tokenizer.json"
                )))
            }
        };
        let special: Vec<(String, u32)> = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (_, t))| matches!(**t, TYPE_UNKNOWN | TYPE_CONTROL | TYPE_USER_DEFINED))
            .map(|(id, (tok, _))| (tok.to_string(), id as u32))
            .collect();
        inner
            .add_special_tokens(
                special
                    .iter()
                    .map(|(t, _)| AddedToken::from(t.clone(), true).normalized(false)),
            )
            .map_err(ModelError::tok)?;
        let add_bos = gguf_meta::opt_bool(content, "tokenizer.ggml.add_bos_token")
            .unwrap_or(model == "llama");
        Self::finish(
            inner,
            special,
            gguf_meta::opt_u32(content, "tokenizer.ggml.bos_token_id"),
            gguf_meta::opt_u32(content, "tokenizer.ggml.eos_token_id"),
            add_bos,
            kind,
        )
    }

    /// Loads an operator-supplied tokenizer.json; bos/eos still come from GGUF metadata.
    pub fn from_file(path: &Path, content: &Content) -> Result<Self> {
        if !path.exists() {
            return Err(ModelError::MissingFile(path.to_path_buf()));
        }
        let inner = Tokenizer::from_file(path).map_err(ModelError::tok)?;
        let special: Vec<(String, u32)> = inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (t.content.clone(), *id))
            .collect();
        let add_bos = gguf_meta::opt_bool(content, "tokenizer.ggml.add_bos_token").unwrap_or(false);
        Self::finish(
            inner,
            special,
            gguf_meta::opt_u32(content, "tokenizer.ggml.bos_token_id"),
            gguf_meta::opt_u32(content, "tokenizer.ggml.eos_token_id"),
            add_bos,
            format!("tokenizer.json ({})", path.display()),
        )
    }

    fn finish(
        mut inner: Tokenizer,
        mut special: Vec<(String, u32)>,
        bos: Option<u32>,
        eos: Option<u32>,
        add_bos: bool,
        kind: String,
    ) -> Result<Self> {
        inner.set_encode_special_tokens(true);
        // Longest first so the sanitizer breaks `<|im_end|>` before a shorter prefix.
        special.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let mut special_ids: HashSet<u32> = special.iter().map(|(_, id)| *id).collect();
        special_ids.extend(bos);
        special_ids.extend(eos);
        Ok(Self {
            inner,
            special,
            special_ids,
            bos,
            eos,
            add_bos,
            kind,
        })
    }

    /// Encodes text with special-token matching disabled; never returns a special id.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(ModelError::tok)?;
        let ids = enc.get_ids().to_vec();
        // BPE could in principle merge pieces back into a control token; refuse.
        if let Some(id) = ids.iter().find(|id| self.special_ids.contains(id)) {
            return Err(ModelError::ControlTokenInContent(*id));
        }
        Ok(ids)
    }

    /// Id of a token given its exact text (special or ordinary).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Id of `token` only if it is registered as special (control) token.
    pub fn special_id(&self, token: &str) -> Option<u32> {
        self.special
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, id)| *id)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }

    /// Texts of all special tokens, longest first.
    pub fn special_tokens(&self) -> impl Iterator<Item = &str> {
        self.special.iter().map(|(t, _)| t.as_str())
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Decodes ids to text; control tokens are dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(ModelError::tok)
    }
}

fn vocab_of(tokens: &[&str]) -> Vocab {
    let mut vocab = Vocab::default();
    for (id, tok) in tokens.iter().enumerate() {
        // Keep the first id when a converter left duplicate strings.
        vocab.entry(tok.to_string()).or_insert(id as u32);
    }
    vocab
}

/// GPT-2 style byte-level BPE; the pre-tokenizer depends on `tokenizer.ggml.pre`
/// and mirrors llama.cpp's table for that name.
fn build_byte_level_bpe(content: &Content, tokens: &[&str]) -> Result<(Tokenizer, String)> {
    let merges = gguf_meta::get_str_array(content, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| ModelError::Tokenizer(format!("malformed merge {m:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let pre = gguf_meta::opt_str(content, "tokenizer.ggml.pre").unwrap_or("default");

    let byte_level_regex = PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true));
    let byte_level_plain = PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false));
    let split = |re: &str| -> Result<PreTokenizerWrapper> {
        Ok(PreTokenizerWrapper::Split(
            Split::new(
                SplitPattern::Regex(re.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(ModelError::tok)?,
        ))
    };
    let (pre_tokenizer, ignore_merges) = match pre {
        // Digits are split one by one, then GPT-2's regex (llama.cpp's STARCODER group).
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            (
                PreSequence::new(vec![
                    PreTokenizerWrapper::Digits(Digits::new(true)),
                    byte_level_regex,
                ]),
                false,
            )
        }
        "llama-bpe" | "llama3" | "llama-v3" | "falcon3" | "pixtral" | "dbrx" | "smaug-bpe" => (
            PreSequence::new(vec![split(LLAMA3_REGEX)?, byte_level_plain]),
            true,
        ),
        "qwen2" | "deepseek-r1-qwen" | "stablelm2" => (
            PreSequence::new(vec![split(QWEN2_REGEX)?, byte_level_plain]),
            false,
        ),
        "default" | "gpt-2" | "gpt2" | "olmo" | "jais" => {
            (PreSequence::new(vec![byte_level_regex]), false)
        }
        other => {
            return Err(ModelError::UnsupportedTokenizer(format!(
                "GGUF pre-tokenizer \"{other}\" is not known here; supply a tokenizer.json"
            )))
        }
    };
    let bpe = BPE::builder()
        .vocab_and_merges(vocab_of(tokens), merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(ModelError::tok)?;
    let mut tk = Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(pre_tokenizer));
    tk.with_decoder(Some(ByteLevelDecoder::default()));
    Ok((tk, format!("gpt2 BPE, pre={pre}")))
}

/// SentencePiece (llama/mistral v1) vocabularies carry scores, not merges: derive
/// merges the way Hugging Face's converter does (pairs ranked by merged-piece score).
fn build_sentencepiece_bpe(
    content: &Content,
    tokens: &[&str],
    types: &[i64],
) -> Result<(Tokenizer, String)> {
    let scores = gguf_meta::get_f32_array(content, "tokenizer.ggml.scores")?;
    if scores.len() != tokens.len() {
        return Err(ModelError::Tokenizer(format!(
            "{} scores for {} tokens",
            scores.len(),
            tokens.len()
        )));
    }
    let vocab = vocab_of(tokens);
    let mut merges: Vec<(String, String, f32, u32, u32)> = Vec::new();
    for (piece, (&score, &ty)) in tokens.iter().zip(scores.iter().zip(types)) {
        if ty != 1 {
            continue;
        }
        let mut local = Vec::new();
        for (idx, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(idx);
            if let (Some(&il), Some(&ir)) = (vocab.get(l), vocab.get(r)) {
                local.push((l.to_string(), r.to_string(), score, il, ir));
            }
        }
        local.sort_by_key(|m| (m.3, m.4));
        merges.extend(local);
    }
    merges.sort_by(|a, b| b.2.total_cmp(&a.2));
    let merges = merges.into_iter().map(|(l, r, ..)| (l, r)).collect();
    let unk = gguf_meta::opt_u32(content, "tokenizer.ggml.unknown_token_id")
        .and_then(|id| tokens.get(id as usize))
        .map(|t| t.to_string())
        .unwrap_or_else(|| "<unk>".to_string());
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token(unk)
        .fuse_unk(true)
        .byte_fallback(true)
        .build()
        .map_err(ModelError::tok)?;
    let mut tk = Tokenizer::new(bpe);
    let mut norms = Vec::new();
    if gguf_meta::opt_bool(content, "tokenizer.ggml.add_space_prefix").unwrap_or(true) {
        norms.push(Prepend::new("\u{2581}".to_string()).into());
    }
    norms.push(
        Replace::new(" ", "\u{2581}")
            .map_err(ModelError::tok)?
            .into(),
    );
    tk.with_normalizer(Some(NormalizerSequence::new(norms)))
        .map_err(ModelError::tok)?;
    tk.with_decoder(Some(DecoderSequence::new(vec![
        Replace::new("\u{2581}", " ")
            .map_err(ModelError::tok)?
            .into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
        Strip::new(' ', 1, 0).into(),
    ])));
    Ok((tk, "sentencepiece BPE".to_string()))
}

/// Turns a stream of generated ids into text pieces without ever splitting a
/// multi-byte UTF-8 character: decoding stays pending while the text ends in an
/// incomplete sequence (rendered by the decoders as U+FFFD).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    prev: usize,
    cur: usize,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one id; returns the newly completed text, if any.
    pub fn push(&mut self, tok: &TextTokenizer, id: u32) -> Result<Option<String>> {
        let prev_text = if self.prev < self.cur {
            tok.decode(&self.ids[self.prev..self.cur])?
        } else {
            String::new()
        };
        self.ids.push(id);
        let text = tok.decode(&self.ids[self.prev..])?;
        if text.len() > prev_text.len() && !text.ends_with('\u{FFFD}') {
            if let Some(new) = text.get(prev_text.len()..) {
                let new = new.to_string();
                self.prev = self.cur;
                self.cur = self.ids.len();
                return Ok(Some(new));
            }
        }
        Ok(None)
    }

    /// Text still pending at the end of generation (possibly with U+FFFD).
    pub fn flush(&mut self, tok: &TextTokenizer) -> Result<Option<String>> {
        let prev_text = if self.prev < self.cur {
            tok.decode(&self.ids[self.prev..self.cur])?
        } else {
            String::new()
        };
        let text = tok.decode(&self.ids[self.prev..])?;
        self.prev = self.ids.len();
        self.cur = self.ids.len();
        Ok(text
            .get(prev_text.len()..)
            .filter(|s| !s.is_empty())
            .map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};

    use super::*;

    fn content(md: Vec<(&str, Value)>) -> Content {
        Content {
            magic: VersionedMagic::GgufV3,
            metadata: md
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<HashMap<_, _>>(),
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    fn strings(v: &[String]) -> Value {
        Value::Array(v.iter().cloned().map(Value::String).collect())
    }

    /// A tiny SentencePiece vocabulary in llama.cpp's GGUF layout.
    fn spm() -> TextTokenizer {
        let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
        let mut types = vec![2, 3, 3];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        for t in [
            "▁", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "llo", "hello", "▁hello", "▁w",
            "or", "▁wor", "ld", "▁world",
        ] {
            tokens.push(t.to_string());
            types.push(1);
        }
        let scores = (0..tokens.len()).map(|i| Value::F32(-(i as f32))).collect();
        TextTokenizer::from_gguf(&content(vec![
            ("tokenizer.ggml.model", Value::String("llama".into())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            (
                "tokenizer.ggml.token_type",
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            ("tokenizer.ggml.scores", Value::Array(scores)),
            ("tokenizer.ggml.bos_token_id", Value::U32(1)),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ]))
        .expect("spm tokenizer")
    }

    #[test]
    fn sentencepiece_from_scores() {
        let tok = spm();
        let ids = tok.encode_text("hello world").expect("encode");
        let pieces: Vec<String> = ids.iter().filter_map(|i| tok.id_to_token(*i)).collect();
        assert_eq!(pieces, ["▁hello", "▁world"]);
        assert_eq!(tok.decode(&ids).expect("decode"), "hello world");
        assert!(tok.add_bos());
        // Unknown characters fall back to bytes and decode back.
        let ids = tok.encode_text("hé").expect("encode");
        let pieces: Vec<String> = ids.iter().filter_map(|i| tok.id_to_token(*i)).collect();
        assert_eq!(pieces, ["▁", "h", "<0xC3>", "<0xA9>"]);
        assert_eq!(tok.decode(&ids).expect("decode"), "hé");
        // Control-token text stays text.
        let ids = tok.encode_text("</s>").expect("encode");
        assert!(!ids.contains(&2));
    }

    fn gpt2(pre: &str) -> Result<TextTokenizer> {
        let tokens: Vec<String> = ["a", "b", "ab", "<|end|>"].map(String::from).to_vec();
        TextTokenizer::from_gguf(&content(vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String(pre.into())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            (
                "tokenizer.ggml.token_type",
                Value::Array([1, 1, 1, 3].map(Value::I32).to_vec()),
            ),
            ("tokenizer.ggml.merges", strings(&["a b".to_string()])),
        ]))
    }

    #[test]
    fn byte_level_pre_tokenizers() {
        for pre in ["default", "smollm", "llama-bpe", "qwen2"] {
            let tok = gpt2(pre).expect(pre);
            assert_eq!(tok.encode_text("ab").expect("encode"), [2], "{pre}");
            assert_eq!(tok.special_id("<|end|>"), Some(3));
        }
        let err = gpt2("mystery").unwrap_err();
        assert!(err.to_string().contains("mystery"), "{err}");
    }
}
