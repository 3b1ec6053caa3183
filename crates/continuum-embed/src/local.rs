//! A local sentence-embedding model, computed in-process on the CPU: a BERT encoder (the
//! all-MiniLM-L6-v2 / bge-small class) read from files on disk, mean-pooled over the tokens and
//! L2-normalised, as sentence-transformers does it. Nothing is downloaded.
//!
//! A model directory holds `config.json` (a BERT configuration), `model.safetensors` (f32 or
//! f16 weights, with or without a `bert.` prefix), and `tokenizer.json` or `vocab.txt`.

use crate::wordpiece::WordPiece;
use async_trait::async_trait;
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use continuum_core::embed::Embedder;
use continuum_core::{Error, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Tokens per text the model sees (sentence-transformers' default for these models); the rest
/// of a longer text is cut off.
pub const MAX_TOKENS: usize = 256;

#[derive(Debug, Deserialize)]
struct BertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

fn default_type_vocab() -> usize {
    2
}

fn default_eps() -> f64 {
    1e-12
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    inter: Linear,
    out: Linear,
    out_norm: LayerNorm,
}

struct Bert {
    words: Embedding,
    positions: Embedding,
    types: Embedding,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
}

fn ce(e: candle_core::Error) -> Error {
    Error::Internal(format!("the embedding model failed: {e}"))
}

impl Bert {
    fn load(cfg: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps;
        let e = vb.pp("embeddings");
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            layers.push(Layer {
                query: candle_nn::linear(h, h, a.pp("self.query"))?,
                key: candle_nn::linear(h, h, a.pp("self.key"))?,
                value: candle_nn::linear(h, h, a.pp("self.value"))?,
                attn_out: candle_nn::linear(h, h, a.pp("output.dense"))?,
                attn_norm: candle_nn::layer_norm(h, eps, a.pp("output.LayerNorm"))?,
                inter: candle_nn::linear(h, cfg.intermediate_size, l.pp("intermediate.dense"))?,
                out: candle_nn::linear(cfg.intermediate_size, h, l.pp("output.dense"))?,
                out_norm: candle_nn::layer_norm(h, eps, l.pp("output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            words: candle_nn::embedding(cfg.vocab_size, h, e.pp("word_embeddings"))?,
            positions: candle_nn::embedding(
                cfg.max_position_embeddings,
                h,
                e.pp("position_embeddings"),
            )?,
            types: candle_nn::embedding(cfg.type_vocab_size, h, e.pp("token_type_embeddings"))?,
            emb_norm: candle_nn::layer_norm(h, eps, e.pp("LayerNorm"))?,
            layers,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
        })
    }

    /// `ids` and `mask` are (batch, seq); returns mean-pooled, L2-normalised (batch, hidden).
    fn embed(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, n) = ids.dims2()?;
        let pos = Tensor::arange(0u32, n as u32, ids.device())?
            .unsqueeze(0)?
            .broadcast_as((b, n))?;
        let types = ids.zeros_like()?;
        let mut x = (self.words.forward(ids)?
            + self.positions.forward(&pos)?
            + self.types.forward(&types)?)?;
        x = self.emb_norm.forward(&x)?;
        // Padding is masked out of attention with a large negative bias.
        let maskf = mask.to_dtype(DType::F32)?;
        let bias = ((maskf.clone() - 1.0)? * 1e4)?
            .reshape((b, 1, 1, n))?
            .contiguous()?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for l in &self.layers {
            let split = |t: Tensor| -> candle_core::Result<Tensor> {
                t.reshape((b, n, self.heads, self.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(l.query.forward(&x)?)?;
            let k = split(l.key.forward(&x)?)?;
            let v = split(l.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let ctx = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((
                b,
                n,
                self.heads * self.head_dim,
            ))?;
            x = l.attn_norm.forward(&(l.attn_out.forward(&ctx)? + &x)?)?;
            let hidden = l.inter.forward(&x)?.gelu_erf()?;
            x = l.out_norm.forward(&(l.out.forward(&hidden)? + &x)?)?;
        }
        // Mean over real tokens, then unit length.
        let m = maskf.unsqueeze(2)?;
        let summed = x.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?.clamp(1.0, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)
    }
}

/// all-MiniLM-L6-v2 or a model of its kind, from a directory on disk.
pub struct LocalEmbedder {
    inner: Arc<Inner>,
    name: String,
    dim: usize,
}

struct Inner {
    bert: Bert,
    tokenizer: WordPiece,
    max_tokens: usize,
}

impl LocalEmbedder {
    /// Loads the model in `dir`. `name` overrides the model name stored with each vector
    /// (default: the directory's name and a fingerprint of the weights).
    pub fn load(dir: &Path, name: Option<&str>) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::InvalidInput(format!(
                "model directory {} does not exist (see README, \"Semantic recall\")",
                dir.display()
            )));
        }
        let read = |file: &str| -> Result<Vec<u8>> {
            let p = dir.join(file);
            std::fs::read(&p).map_err(|e| {
                Error::InvalidInput(format!(
                    "cannot read {} (a model directory needs config.json, model.safetensors and tokenizer.json): {e}",
                    p.display()
                ))
            })
        };
        let config_bytes = read("config.json")?;
        let cfg: BertConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
            Error::InvalidInput(format!("{}: {e}", dir.join("config.json").display()))
        })?;
        if cfg.model_type.as_deref().is_some_and(|t| t != "bert") {
            return Err(Error::InvalidInput(format!(
                "only BERT encoders are supported; {} is a {:?} model",
                dir.display(),
                cfg.model_type.as_deref().unwrap_or("")
            )));
        }
        if cfg.hidden_act.as_deref().is_some_and(|a| a != "gelu")
            || cfg
                .position_embedding_type
                .as_deref()
                .is_some_and(|p| p != "absolute")
            || cfg.num_attention_heads == 0
            || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(Error::InvalidInput(format!(
                "{}: unsupported BERT variant (needs gelu, absolute positions, heads dividing the hidden size)",
                dir.display()
            )));
        }
        let weights = read("model.safetensors")?;
        let fingerprint = {
            let mut h = Sha256::new();
            h.update(&config_bytes);
            h.update(&weights);
            let d = h.finalize();
            d.iter()
                .take(4)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let tokenizer = WordPiece::load(dir)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", dir.display())))?;
        // Some exports prefix every tensor with `bert.`.
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") {
            vb
        } else {
            vb.pp("bert")
        };
        let bert = Bert::load(&cfg, vb).map_err(|e| {
            Error::InvalidInput(format!(
                "{} does not hold the weights its config.json describes: {e}",
                dir.display()
            ))
        })?;
        let name = match name {
            Some(n) => n.to_string(),
            None => format!("{}@{fingerprint}", model_dir_name(dir)),
        };
        Ok(LocalEmbedder {
            dim: cfg.hidden_size,
            name,
            inner: Arc::new(Inner {
                bert,
                tokenizer,
                max_tokens: MAX_TOKENS.min(cfg.max_position_embeddings),
            }),
        })
    }

    /// Embeds on the calling thread (the async [`Embedder::embed`] moves this off the runtime).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.inner.embed(texts)
    }
}

impl Inner {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encoded: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.tokenizer.encode(t, self.max_tokens))
            .collect();
        let n = encoded.iter().map(Vec::len).max().unwrap_or(2);
        let b = encoded.len();
        let mut ids = Vec::with_capacity(b * n);
        let mut mask = Vec::with_capacity(b * n);
        for e in &encoded {
            ids.extend_from_slice(e);
            ids.extend(std::iter::repeat_n(self.tokenizer.pad, n - e.len()));
            mask.extend(std::iter::repeat_n(1u32, e.len()));
            mask.extend(std::iter::repeat_n(0u32, n - e.len()));
        }
        let dev = Device::Cpu;
        let ids = Tensor::from_vec(ids, (b, n), &dev).map_err(ce)?;
        let mask = Tensor::from_vec(mask, (b, n), &dev).map_err(ce)?;
        let out = self.bert.embed(&ids, &mask).map_err(ce)?;
        out.to_vec2::<f32>().map_err(ce)
    }
}

/// `…/all-MiniLM-L6-v2` gives `all-MiniLM-L6-v2`; a directory called `model` is named after its
/// parent (as in the PyPI packagings).
fn model_dir_name(dir: &Path) -> String {
    let dir: PathBuf = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let base = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "local".into());
    if base == "model" {
        dir.parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or(base)
    } else {
        base
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn batch_size(&self) -> usize {
        32
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let inner = self.inner.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || inner.embed(&texts))
            .await
            .map_err(|e| Error::Internal(format!("the embedding task failed: {e}")))?
    }
}
