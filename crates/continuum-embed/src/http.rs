//! Any OpenAI-compatible `/v1/embeddings` endpoint: OpenAI, Ollama, LM Studio, vLLM, llama.cpp.

use async_trait::async_trait;
use continuum_core::embed::{Embedder, normalize};
use continuum_core::{Error, Result};
use serde::Deserialize;
use std::time::Duration;

/// Texts sent per request.
pub const HTTP_BATCH: usize = 64;
/// How long one request may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct HttpEmbedder {
    client: reqwest::Client,
    endpoint: String,
    model: String,
    api_key: Option<String>,
    dim: usize,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

impl HttpEmbedder {
    /// Connects to `url` (a base such as `http://localhost:11434/v1`, or the full
    /// `…/embeddings` address) and learns the model's dimension with one request.
    pub async fn connect(url: &str, model: &str, api_key: Option<String>) -> Result<Self> {
        if model.trim().is_empty() {
            return Err(Error::InvalidInput(
                "the HTTP embedder needs a model name (--embed-model)".into(),
            ));
        }
        let trimmed = url.trim_end_matches('/');
        if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
            return Err(Error::InvalidInput(format!(
                "embedding URL must start with http:// or https://, got {url:?}"
            )));
        }
        let endpoint = if trimmed.ends_with("/embeddings") {
            trimmed.to_string()
        } else {
            format!("{trimmed}/embeddings")
        };
        let client = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| Error::Internal(format!("cannot build an HTTP client: {e}")))?;
        let mut me = HttpEmbedder {
            client,
            endpoint,
            model: model.to_string(),
            api_key,
            dim: 0,
        };
        let probe = me.request(&["dimension probe".to_string()]).await?;
        me.dim = probe.first().map(Vec::len).unwrap_or(0);
        if me.dim == 0 {
            return Err(Error::Unavailable(format!(
                "{} returned an empty vector for model {model}",
                me.endpoint
            )));
        }
        Ok(me)
    }

    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let body = serde_json::json!({ "model": self.model, "input": texts });
        let mut req = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let unavailable = |what: String| {
            Error::Unavailable(format!("embedding endpoint {}: {what}", self.endpoint))
        };
        let resp = req.send().await.map_err(|e| unavailable(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let text: String = text.chars().take(300).collect();
            return Err(unavailable(format!("HTTP {status}: {text}")));
        }
        let parsed: Response = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("unreadable response: {e}")))?;
        if parsed.data.len() != texts.len() {
            return Err(unavailable(format!(
                "{} vectors for {} texts",
                parsed.data.len(),
                texts.len()
            )));
        }
        let mut items: Vec<(usize, Vec<f32>)> = parsed
            .data
            .into_iter()
            .enumerate()
            .map(|(i, it)| (it.index.unwrap_or(i), it.embedding))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        Ok(items
            .into_iter()
            .map(|(_, mut v)| {
                normalize(&mut v);
                v
            })
            .collect())
    }
}

#[async_trait]
impl Embedder for HttpEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn batch_size(&self) -> usize {
        HTTP_BATCH
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(HTTP_BATCH) {
            out.extend(self.request(chunk).await?);
        }
        continuum_core::embed::check_vectors(&self.model, self.dim, &out, texts.len())?;
        Ok(out)
    }
}
