//! Embedders for semantic recall: a local BERT-class sentence model read from disk, or any
//! OpenAI-compatible HTTP endpoint. [`EmbedderSettings::build`] turns configuration into one.

mod http;
#[cfg(feature = "local")]
mod local;
mod wordpiece;

pub use http::{HTTP_BATCH, HTTP_TIMEOUT, HttpEmbedder};
#[cfg(feature = "local")]
pub use local::{LocalEmbedder, MAX_TOKENS};
pub use wordpiece::WordPiece;

use continuum_core::embed::Embedder;
use continuum_core::{Error, Result};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// Which embedder to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EmbedderKind {
    /// No vectors: lexical and graph recall only.
    #[default]
    None,
    /// A model directory on disk, computed on the CPU.
    Local,
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    OpenAi,
}

impl FromStr for EmbedderKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" | "" => Ok(EmbedderKind::None),
            "local" => Ok(EmbedderKind::Local),
            "openai" | "http" => Ok(EmbedderKind::OpenAi),
            other => Err(Error::InvalidInput(format!(
                "unknown embedder {other:?}: use none, local or openai"
            ))),
        }
    }
}

/// Embedder configuration, as flags and environment variables give it.
#[derive(Debug, Clone, Default)]
pub struct EmbedderSettings {
    pub kind: EmbedderKind,
    /// `local`: the model directory.
    pub model_dir: Option<PathBuf>,
    /// `openai`: the endpoint's base URL.
    pub url: Option<String>,
    /// `openai`: the model to ask for; `local`: overrides the stored model name.
    pub model: Option<String>,
    /// `openai`: sent as a bearer token.
    pub api_key: Option<String>,
}

impl EmbedderSettings {
    /// The configured embedder, or `None` for `none`. Loading a local model reads its files;
    /// an HTTP embedder makes one request to learn the dimension.
    pub async fn build(&self) -> Result<Option<Arc<dyn Embedder>>> {
        match self.kind {
            EmbedderKind::None => Ok(None),
            EmbedderKind::Local => {
                let dir = self.model_dir.as_ref().ok_or_else(|| {
                    Error::InvalidInput(
                        "the local embedder needs a model directory (--model-dir or CONTINUUM_MODEL_DIR)"
                            .into(),
                    )
                })?;
                self.local(dir)
            }
            EmbedderKind::OpenAi => {
                let url = self.url.as_deref().ok_or_else(|| {
                    Error::InvalidInput(
                        "the openai embedder needs an endpoint (--embed-url or CONTINUUM_EMBED_URL)"
                            .into(),
                    )
                })?;
                let model = self.model.as_deref().ok_or_else(|| {
                    Error::InvalidInput(
                        "the openai embedder needs a model name (--embed-model or CONTINUUM_EMBED_MODEL)"
                            .into(),
                    )
                })?;
                let e = HttpEmbedder::connect(url, model, self.api_key.clone()).await?;
                Ok(Some(Arc::new(e)))
            }
        }
    }

    #[cfg(feature = "local")]
    fn local(&self, dir: &std::path::Path) -> Result<Option<Arc<dyn Embedder>>> {
        let e = LocalEmbedder::load(dir, self.model.as_deref())?;
        Ok(Some(Arc::new(e)))
    }

    #[cfg(not(feature = "local"))]
    fn local(&self, _dir: &std::path::Path) -> Result<Option<Arc<dyn Embedder>>> {
        Err(Error::InvalidInput(
            "this build has no local embedder (built without the `local` feature)".into(),
        ))
    }
}
