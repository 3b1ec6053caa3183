//! Sentence embeddings: the port that turns text into vectors, and how vectors are stored.
//!
//! An [`Embedder`] is chosen in configuration (`none`, a local model loaded from files on disk,
//! or an OpenAI-compatible HTTP endpoint); implementations live outside this crate. Vectors are
//! kept per model: a store holds each memory's vector under the model's name and dimension, and a
//! search only ever compares vectors of one model.

use crate::{Error, MemoryId, Result, TenantId};
use async_trait::async_trait;

/// Longest model name accepted (it is stored with every vector).
pub const MAX_MODEL_NAME: usize = 200;
/// Largest vector dimension accepted.
pub const MAX_DIM: usize = 8192;

/// Turns texts into vectors of one fixed dimension.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The model's name, stored with every vector it makes (e.g. `all-MiniLM-L6-v2`).
    fn model(&self) -> &str;

    /// The vectors' dimension.
    fn dim(&self) -> usize;

    /// Texts per call that the implementation handles well.
    fn batch_size(&self) -> usize {
        32
    }

    /// One L2-normalised vector of [`Self::dim`] floats per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// Dot product (the cosine of two unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise without reassociating.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks..a.len().min(b.len()) {
        sum += a[i] * b[i];
    }
    sum
}

/// Cosine similarity of two vectors of any length (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let na = dot(a, a).sqrt();
    let nb = dot(b, b).sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot(a, b) / (na * nb)
    }
}

/// A vector as stored: little-endian f32, four bytes per component.
pub fn encode_vector(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Reads a stored vector; `dim` is the dimension recorded beside it.
pub fn decode_vector(bytes: &[u8], dim: usize) -> Result<Vec<f32>> {
    if bytes.len() != dim * 4 {
        return Err(Error::Internal(format!(
            "a stored vector has {} bytes, expected {} for dimension {dim}",
            bytes.len(),
            dim * 4
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Checks what an embedder returned before it is stored.
pub fn check_vectors<V: AsRef<[f32]>>(
    model: &str,
    dim: usize,
    vectors: &[V],
    texts: usize,
) -> Result<()> {
    if model.is_empty() || model.len() > MAX_MODEL_NAME {
        return Err(Error::InvalidInput(format!(
            "model name must be 1 to {MAX_MODEL_NAME} bytes"
        )));
    }
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::InvalidInput(format!(
            "vector dimension must be 1 to {MAX_DIM}, got {dim}"
        )));
    }
    if vectors.len() != texts {
        return Err(Error::Unavailable(format!(
            "the embedder returned {} vectors for {texts} texts",
            vectors.len()
        )));
    }
    if let Some(v) = vectors.iter().find(|v| v.as_ref().len() != dim) {
        return Err(Error::Unavailable(format!(
            "the embedder returned a vector of dimension {}, expected {dim} for model {model}",
            v.as_ref().len()
        )));
    }
    if vectors
        .iter()
        .any(|v| v.as_ref().iter().any(|x| !x.is_finite()))
    {
        return Err(Error::Unavailable(
            "the embedder returned a vector with a non-finite component".into(),
        ));
    }
    Ok(())
}

/// At most `max` characters of `text` (what an embedder is given).
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// A memory waiting for a vector of some model.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEmbedding {
    /// The memory's store position (the cursor for the next page).
    pub pos: u64,
    pub tenant: TenantId,
    pub id: MemoryId,
    pub content: String,
}

/// A stored vector with its position in the store's vector log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVector {
    pub seq: u64,
    pub id: MemoryId,
    pub vector: Vec<f32>,
}

/// How many vectors of one model a tenant has.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct VectorCount {
    pub model: String,
    pub dim: usize,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_as_little_endian_f32() {
        let v = vec![1.0f32, -0.5, 3.25e-7, f32::MAX];
        let bytes = encode_vector(&v);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..4], &1.0f32.to_le_bytes());
        assert_eq!(decode_vector(&bytes, 4).unwrap(), v);
        assert!(decode_vector(&bytes, 3).is_err());
    }

    #[test]
    fn dot_matches_the_naive_sum_for_odd_lengths() {
        for len in [0usize, 1, 7, 8, 9, 384, 385] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-3, "len {len}");
        }
    }

    #[test]
    fn normalised_vectors_have_unit_length_and_cosine_ignores_scale() {
        let mut v = vec![3.0f32, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert!((cosine(&[2.0, 0.0], &[5.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn bad_embedder_output_is_refused() {
        let ok = vec![vec![0.0f32; 3]; 2];
        assert!(check_vectors("m", 3, &ok, 2).is_ok());
        assert!(check_vectors("m", 3, &ok, 3).is_err());
        assert!(check_vectors("m", 4, &ok, 2).is_err());
        assert!(check_vectors("", 3, &ok, 2).is_err());
        assert!(check_vectors("m", 3, &[vec![f32::NAN, 0.0, 0.0]], 1).is_err());
    }
}
