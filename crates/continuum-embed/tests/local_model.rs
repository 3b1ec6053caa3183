//! The local embedder against the reference implementation (sentence-transformers), on the
//! real all-MiniLM-L6-v2 files. Needs CONTINUUM_TEST_MODEL_DIR (`.ci/run` fetches the model).

use continuum_core::embed::{Embedder, cosine};
use continuum_embed::{EmbedderKind, EmbedderSettings, LocalEmbedder};
use std::path::PathBuf;

fn model_dir() -> Option<PathBuf> {
    match std::env::var("CONTINUUM_TEST_MODEL_DIR") {
        Ok(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => {
            eprintln!("skipping: CONTINUUM_TEST_MODEL_DIR is not set (a MiniLM model directory)");
            None
        }
    }
}

struct Reference {
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/minilm-reference.json"
    );
    let text = std::fs::read_to_string(path).expect("the reference vectors");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let items = v["items"].as_array().unwrap();
    Reference {
        texts: items
            .iter()
            .map(|i| i["text"].as_str().unwrap().to_string())
            .collect(),
        vectors: items
            .iter()
            .map(|i| {
                i["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect(),
    }
}

#[tokio::test]
async fn vectors_match_sentence_transformers() {
    let Some(dir) = model_dir() else { return };
    let e = LocalEmbedder::load(&dir, None).unwrap();
    assert_eq!(e.dim(), 384);
    let r = reference();
    assert!(r.texts.len() >= 5);
    // In one padded batch, then one by one: padding must not change a vector.
    let batch = e.embed(&r.texts).await.unwrap();
    for (i, text) in r.texts.iter().enumerate() {
        let c = cosine(&batch[i], &r.vectors[i]);
        assert!(c >= 0.999, "cosine {c} for {text:?}");
        let one = e.embed(std::slice::from_ref(text)).await.unwrap().remove(0);
        let same = cosine(&one, &batch[i]);
        assert!(
            same >= 0.9999,
            "batched and single differ ({same}) for {text:?}"
        );
        let norm: f32 = one.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}

#[tokio::test]
async fn paraphrases_are_closer_than_unrelated_text() {
    let Some(dir) = model_dir() else { return };
    let e = LocalEmbedder::load(&dir, None).unwrap();
    let v = e
        .embed(&[
            "My dog loves chasing tennis balls in the park.".to_string(),
            "Which pet enjoys playing fetch outside?".to_string(),
            "The quarterly budget review moved to Thursday.".to_string(),
        ])
        .await
        .unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[1], &v[2]) + 0.2);
}

#[tokio::test]
async fn long_and_odd_texts_embed_without_error() {
    let Some(dir) = model_dir() else { return };
    let e = LocalEmbedder::load(&dir, None).unwrap();
    let long = "memory ".repeat(5000);
    let texts = vec![
        long,
        "😀 emoji, ÀÉÎ accents, 中文 ideographs, tabs\tand\u{0}nul".to_string(),
        "".to_string(),
    ];
    let v = e.embed(&texts).await.unwrap();
    assert_eq!(v.len(), 3);
    assert!(
        v.iter()
            .all(|x| x.len() == 384 && x.iter().all(|f| f.is_finite()))
    );
}

#[tokio::test]
async fn the_model_name_is_stable_and_can_be_overridden() {
    let Some(dir) = model_dir() else { return };
    let a = LocalEmbedder::load(&dir, None).unwrap();
    let b = LocalEmbedder::load(&dir, None).unwrap();
    assert_eq!(a.model(), b.model());
    assert!(a.model().contains('@'), "{}", a.model());
    let named = LocalEmbedder::load(&dir, Some("minilm")).unwrap();
    assert_eq!(named.model(), "minilm");
}

#[tokio::test]
async fn a_missing_or_broken_model_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = LocalEmbedder::load(&tmp.path().join("nope"), None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
    std::fs::write(tmp.path().join("config.json"), "{not json").unwrap();
    let err = LocalEmbedder::load(tmp.path(), None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
    let settings = EmbedderSettings {
        kind: EmbedderKind::Local,
        ..Default::default()
    };
    let err = settings.build().await.err().unwrap().to_string();
    assert!(err.contains("--model-dir"), "{err}");
}
