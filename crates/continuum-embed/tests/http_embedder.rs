//! The OpenAI-compatible embedder against a local stand-in server speaking the same protocol.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use continuum_core::Error;
use continuum_core::embed::Embedder;
use continuum_embed::{EmbedderKind, EmbedderSettings, HTTP_BATCH, HttpEmbedder};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Seen {
    requests: Vec<(Option<String>, Value)>,
}

/// Answers like /v1/embeddings: a 4-dimensional vector per input (its length, its count of
/// `a`s, 1, 0), items listed in reverse order with their index, as some servers do.
async fn embeddings(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    seen.lock().unwrap().requests.push((auth, body.clone()));
    if body["model"] == "broken" {
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "model crashed".into()));
    }
    let inputs = body["input"].as_array().unwrap();
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let t = t.as_str().unwrap();
            let a = t.matches('a').count() as f32;
            json!({"object": "embedding", "index": i, "embedding": [t.len() as f32, a, 1.0, 0.0]})
        })
        .collect();
    data.reverse();
    Ok(Json(
        json!({"object": "list", "data": data, "model": body["model"]}),
    ))
}

async fn stand_in() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = axum::Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

#[tokio::test]
async fn embeds_in_order_in_batches_with_the_key() {
    let (url, seen) = stand_in().await;
    let e = HttpEmbedder::connect(&url, "nomic-embed-text", Some("sk-test".into()))
        .await
        .unwrap();
    assert_eq!(e.dim(), 4, "learned from a probe request");
    assert_eq!(e.model(), "nomic-embed-text");
    let texts: Vec<String> = (0..HTTP_BATCH + 6)
        .map(|i| "a".repeat(i % 7 + 1) + &"b".repeat(i))
        .collect();
    let v = e.embed(&texts).await.unwrap();
    assert_eq!(v.len(), texts.len());
    for (t, v) in texts.iter().zip(&v) {
        // Normalised, and in input order despite the reversed response.
        let len = t.len() as f32;
        let a = t.matches('a').count() as f32;
        let norm = (len * len + a * a + 1.0).sqrt();
        assert!((v[0] - len / norm).abs() < 1e-5, "{t}: {v:?}");
        assert!((v[1] - a / norm).abs() < 1e-5, "{t}: {v:?}");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.requests.len(), 3, "probe + two batches");
    assert!(
        seen.requests
            .iter()
            .all(|(auth, _)| auth.as_deref() == Some("Bearer sk-test"))
    );
    assert_eq!(
        seen.requests[1].1["input"].as_array().unwrap().len(),
        HTTP_BATCH
    );
    assert_eq!(seen.requests[1].1["model"], "nomic-embed-text");
}

#[tokio::test]
async fn the_full_endpoint_address_is_accepted_too() {
    let (url, _) = stand_in().await;
    let full = format!("{url}/embeddings");
    let e = HttpEmbedder::connect(&full, "m", None).await.unwrap();
    assert_eq!(e.embed(&["abc".into()]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn server_errors_and_unreachable_endpoints_are_unavailable() {
    let (url, _) = stand_in().await;
    let err = HttpEmbedder::connect(&url, "broken", None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("model crashed"), "{err}");
    // Nothing listens on port 9 here.
    let err = HttpEmbedder::connect("http://127.0.0.1:9/v1", "m", None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    let err = HttpEmbedder::connect("ftp://example", "m", None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

#[tokio::test]
async fn settings_pick_the_embedder_and_explain_what_is_missing() {
    let (url, _) = stand_in().await;
    assert!(
        EmbedderSettings::default().build().await.unwrap().is_none(),
        "none is the default"
    );
    let mut s = EmbedderSettings {
        kind: "openai".parse().unwrap(),
        ..Default::default()
    };
    let err = s.build().await.err().unwrap().to_string();
    assert!(err.contains("--embed-url"), "{err}");
    s.url = Some(url);
    let err = s.build().await.err().unwrap().to_string();
    assert!(err.contains("--embed-model"), "{err}");
    s.model = Some("m".into());
    let e = s.build().await.unwrap().unwrap();
    assert_eq!(e.dim(), 4);
    assert!("bogus".parse::<EmbedderKind>().is_err());
}
