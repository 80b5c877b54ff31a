//! The llama graph for GGUF weights, adapted from candle-transformers 0.11.1
//! `models/quantized_llama.rs` (Copyright The candle authors, Apache-2.0 OR MIT).
//!
//! Changes from candle's version, all for memory on a node agent:
//! - the token embedding stays quantized and only the looked-up rows are
//!   dequantized (candle's copy keeps the whole table as f32: 113 MB for
//!   SmolLM2's 49152 x 576, next to the 145 MB Q8_0 file);
//! - with tied embeddings (no `output.weight`) the output projection shares that
//!   same quantized tensor instead of holding a second copy;
//! - dense llama/mistral only (no MoE, no GGML v1 files): the interleaved RoPE
//!   those architectures use.
//!
//! The arithmetic is candle's, op for op: row lookup dequantizes with the same
//! block kernels as a whole-table dequantize, so logits are bit-identical
//! (`tests/llm.rs` compares against candle's model).

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;
use candle_transformers::utils::{build_causal_mask, repeat_kv};

/// candle's quantized llama keeps at most this many positions (RoPE table size).
pub const MAX_SEQ_LEN: usize = 4096;

#[derive(Debug, Clone)]
struct Mlp {
    gate: QMatMul,
    down: QMatMul,
    up: QMatMul,
}

impl Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let w1 = self.gate.forward(xs)?;
        let w3 = self.up.forward(xs)?;
        self.down.forward(&(candle_nn::ops::silu(&w1)? * w3)?)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    attention_norm: RmsNorm,
    mlp: Mlp,
    ffn_norm: RmsNorm,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    cos: Tensor,
    sin: Tensor,
    neg_inf: Tensor,
    kv_cache: Option<(Tensor, Tensor)>,
}

impl Layer {
    fn rope(&self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b, _h, seq_len, _d) = x.dims4()?;
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        // llama and mistral use the interleaved (GPT-J, "NORM") pairing.
        candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
    }

    fn forward_attn(
        &mut self,
        x: &Tensor,
        mask: Option<&Tensor>,
        index_pos: usize,
    ) -> Result<Tensor> {
        let (b_sz, seq_len, n_embd) = x.dims3()?;
        let q = self.wq.forward(x)?;
        let k = self.wk.forward(x)?;
        let v = self.wv.forward(x)?;
        let q = q
            .reshape((b_sz, seq_len, self.n_head, self.head_dim))?
            .transpose(1, 2)?;
        let k = k
            .reshape((b_sz, seq_len, self.n_kv_head, self.head_dim))?
            .transpose(1, 2)?;
        let v = v
            .reshape((b_sz, seq_len, self.n_kv_head, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        let q = self.rope(&q, index_pos)?;
        let k = self.rope(&k, index_pos)?;

        let (k, v) = match &self.kv_cache {
            Some((k_cache, v_cache)) if index_pos > 0 => (
                Tensor::cat(&[k_cache, &k], 2)?,
                Tensor::cat(&[v_cache, &v], 2)?,
            ),
            _ => (k, v),
        };
        self.kv_cache = Some((k.clone(), v.clone()));

        let k = repeat_kv(k, self.n_head / self.n_kv_head)?;
        let v = repeat_kv(v, self.n_head / self.n_kv_head)?;
        let att = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
        let att = match mask {
            None => att,
            Some(mask) => {
                let mask = mask.broadcast_as(att.shape())?;
                mask.where_cond(&self.neg_inf.broadcast_as(mask.shape().dims())?, &att)?
            }
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v.contiguous()?)?;
        let y = y.transpose(1, 2)?.reshape(&[b_sz, seq_len, n_embd])?;
        self.wo.forward(&y)
    }
}

#[derive(Debug, Clone)]
pub struct ModelWeights {
    /// Quantized as stored in the file; rows are dequantized on lookup.
    tok_embeddings: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    masks: HashMap<(usize, usize), Tensor>,
}

fn rope_tables(head_dim: usize, freq_base: f32, device: &Device) -> Result<(Tensor, Tensor)> {
    let theta: Vec<_> = (0..head_dim)
        .step_by(2)
        .map(|i| 1f32 / freq_base.powf(i as f32 / head_dim as f32))
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let idx_theta = Tensor::arange(0, MAX_SEQ_LEN as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((MAX_SEQ_LEN, 1))?
        .matmul(&theta.reshape((1, theta.elem_count()))?)?;
    Ok((idx_theta.cos()?, idx_theta.sin()?))
}

impl ModelWeights {
    /// Reads the weights of a llama-family GGUF whose hyper-parameters are under
    /// `llama.*` (see `gguf_meta::alias_to_llama`).
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let md = |s: &str| match ct.metadata.get(s) {
            None => candle_core::bail!("cannot find {s} in metadata"),
            Some(v) => Ok(v),
        };
        if md("llama.expert_count")
            .and_then(|v| v.to_u32())
            .unwrap_or(0)
            > 1
        {
            candle_core::bail!("mixture-of-experts GGUFs are not supported");
        }
        let head_count = md("llama.attention.head_count")?.to_u32()? as usize;
        let head_count_kv = md("llama.attention.head_count_kv")?.to_u32()? as usize;
        let block_count = md("llama.block_count")?.to_u32()? as usize;
        let embedding_length = md("llama.embedding_length")?.to_u32()? as usize;
        let rope_dim = md("llama.rope.dimension_count")?.to_u32()? as usize;
        let rms_norm_eps = md("llama.attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let rope_freq_base = md("llama.rope.freq_base")
            .and_then(|m| m.to_f32())
            .unwrap_or(10000f32);
        if head_count == 0 || head_count_kv == 0 || !head_count.is_multiple_of(head_count_kv) {
            candle_core::bail!("bad head counts {head_count}/{head_count_kv}");
        }

        let (cos, sin) = rope_tables(rope_dim, rope_freq_base, device)?;
        let neg_inf = Tensor::new(f32::NEG_INFINITY, device)?;

        let tok_embeddings = Arc::new(ct.tensor(reader, "token_embd.weight", device)?);
        let norm = RmsNorm::from_qtensor(
            ct.tensor(reader, "output_norm.weight", device)?,
            rms_norm_eps,
        )?;
        let output = match ct.tensor(reader, "output.weight", device) {
            Ok(t) => QMatMul::from_qtensor(t)?,
            // Tied embeddings: one quantized table serves both ends.
            Err(_) => QMatMul::from_arc(tok_embeddings.clone())?,
        };
        let mut t = |name: String| ct.tensor(reader, &name, device);
        let mut layers = Vec::with_capacity(block_count);
        for i in 0..block_count {
            let p = format!("blk.{i}");
            let q = |name: QTensor| QMatMul::from_qtensor(name);
            layers.push(Layer {
                wq: q(t(format!("{p}.attn_q.weight"))?)?,
                wk: q(t(format!("{p}.attn_k.weight"))?)?,
                wv: q(t(format!("{p}.attn_v.weight"))?)?,
                wo: q(t(format!("{p}.attn_output.weight"))?)?,
                mlp: Mlp {
                    gate: q(t(format!("{p}.ffn_gate.weight"))?)?,
                    down: q(t(format!("{p}.ffn_down.weight"))?)?,
                    up: q(t(format!("{p}.ffn_up.weight"))?)?,
                },
                attention_norm: RmsNorm::from_qtensor(
                    t(format!("{p}.attn_norm.weight"))?,
                    rms_norm_eps,
                )?,
                ffn_norm: RmsNorm::from_qtensor(t(format!("{p}.ffn_norm.weight"))?, rms_norm_eps)?,
                n_head: head_count,
                n_kv_head: head_count_kv,
                head_dim: embedding_length / head_count,
                cos: cos.clone(),
                sin: sin.clone(),
                neg_inf: neg_inf.clone(),
                kv_cache: None,
            });
        }
        Ok(Self {
            tok_embeddings,
            layers,
            norm,
            output,
            masks: HashMap::new(),
        })
    }

    fn mask(&mut self, seq_len: usize, index_pos: usize, device: &Device) -> Result<Tensor> {
        let key = (seq_len, index_pos + seq_len);
        if let Some(mask) = self.masks.get(&key) {
            return Ok(mask.clone());
        }
        let mask = build_causal_mask(seq_len, index_pos, device)?;
        self.masks.insert(key, mask.clone());
        Ok(mask)
    }

    /// Logits of the last position of `x` (shape `(1, seq_len)`), given that the KV
    /// cache holds positions `0..index_pos`.
    pub fn forward(&mut self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b_sz, seq_len) = x.dims2()?;
        let mask = if seq_len == 1 {
            None
        } else {
            Some(self.mask(seq_len, index_pos, x.device())?)
        };
        let mut h = self.tok_embeddings.embedding(x)?;
        for layer in self.layers.iter_mut() {
            let residual = &h;
            let x = layer.attention_norm.forward(&h)?;
            let x = (layer.forward_attn(&x, mask.as_ref(), index_pos)? + residual)?;
            let residual = &x;
            let y = layer.mlp.forward(&layer.ffn_norm.forward(&x)?)?;
            h = (y + residual)?;
        }
        let x = self.norm.forward(&h)?;
        let x = x.i((.., seq_len - 1, ..))?;
        self.output.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use candle_core::{Device, Tensor};
    use candle_transformers::models::quantized_llama as candle_llama;

    use super::ModelWeights;
    use crate::{generate::normalize_hparams, gguf_meta};

    fn open() -> (
        candle_core::quantized::gguf_file::Content,
        std::io::BufReader<std::fs::File>,
    ) {
        let dir = std::env::var_os("SAKER_MODEL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/weights")));
        let path = dir.join("smollm2-135m-instruct.q8_0.gguf");
        assert!(
            path.exists(),
            "{} is missing: run `cargo xtask fetch-model`",
            path.display()
        );
        let (mut content, reader) = gguf_meta::open(&path).expect("GGUF header");
        let arch = gguf_meta::check_architecture(&content).expect("llama");
        gguf_meta::alias_to_llama(&mut content, &arch);
        normalize_hparams(&mut content).expect("hparams");
        (content, reader)
    }

    /// Same logits as candle's own quantized_llama (which dequantizes the whole
    /// embedding table) over a prompt pass and greedy decode steps.
    #[test]
    fn logits_match_candle_quantized_llama() {
        let dev = Device::Cpu;
        let (c, mut r) = open();
        let mut ours = ModelWeights::from_gguf(c, &mut r, &dev).expect("ours");
        let (c, mut r) = open();
        let mut theirs = candle_llama::ModelWeights::from_gguf(c, &mut r, &dev).expect("candle");
        // "<|im_start|>user\nWhat is xmrig?<|im_end|>\n<|im_start|>assistant\n"-like ids.
        let prompt: Vec<u32> = vec![
            1, 4093, 198, 1780, 314, 104, 48136, 47, 2, 198, 1, 520, 9531, 198,
        ];
        let input = Tensor::new(prompt.as_slice(), &dev)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let mut a = ours.forward(&input, 0).unwrap();
        let mut b = theirs.forward(&input, 0).unwrap();
        for pos in prompt.len()..prompt.len() + 8 {
            let va: Vec<f32> = a.squeeze(0).unwrap().to_vec1().unwrap();
            let vb: Vec<f32> = b.squeeze(0).unwrap().to_vec1().unwrap();
            assert_eq!(va.len(), 49152);
            assert_eq!(va, vb, "logits differ at position {pos}");
            let next = va
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.total_cmp(y.1))
                .map(|(i, _)| i as u32)
                .unwrap();
            let input = Tensor::new(&[next], &dev).unwrap().unsqueeze(0).unwrap();
            a = ours.forward(&input, pos).unwrap();
            b = theirs.forward(&input, pos).unwrap();
        }
    }
}
