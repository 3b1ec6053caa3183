//! The REST API driven over real HTTP: a server on port 0, a SQLite store in a temp dir.

mod common;
use common::{Server, start};

use continuum_core::keys::Scope;
use continuum_core::{TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig};
use continuum_server::{ServerConfig, router, serve};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

/// The body as JSON, or null when it is not JSON (an event stream, which never ends, is not
/// read).
async fn json_body(r: reqwest::Response) -> Value {
    let json = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        r.json().await.unwrap_or(Value::Null)
    } else {
        Value::Null
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    fn new(s: &Server, key: Option<&str>) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: s.base.clone(),
            key: key.map(str::to_string),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(k) => r.header("X-API-Key", k),
            None => r,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.req(reqwest::Method::GET, path).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .req(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .req(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

#[tokio::test]
async fn the_original_service_shapes_are_kept() {
    let s = start(ServerConfig::default()).await;
    let c = Client::new(&s, Some(&s.key("acme", Scope::Write).await));

    let (st, v) = c.get("/v1/health").await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("healthy"))
    );
    assert_eq!(v["service"], "continuum");
    assert!(
        Timestamp::parse(v["timestamp"].as_str().unwrap()).is_ok(),
        "{v}"
    );
    let (st, v) = c.get("/").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["service"], "CONTINUUM");
    assert_eq!(v["endpoints"]["recall"], "/v1/recall");
    assert!(v["version"].is_string());

    let (st, v) = c
        .post("/v1/learn", json!({"user_message": "We deploy billing on Kubernetes in Frankfurt.", "ai_response": "Noted. I will keep Frankfurt as the primary region.", "metadata": {"channel": "slack"}}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for (field, kind) in [
        ("concepts_extracted", "n"),
        ("decisions_detected", "n"),
        ("links_created", "n"),
        ("compounds_found", "n"),
        ("tenant_id", "s"),
    ] {
        assert!(
            if kind == "n" {
                v[field].is_u64()
            } else {
                v[field].is_string()
            },
            "{field}: {v}"
        );
    }
    assert_eq!(v["tenant_id"], "acme");
    assert!(v["concepts_extracted"].as_u64().unwrap() >= 2);
    assert_eq!(v["decisions_detected"], 1);

    let (st, v) = c
        .post(
            "/v1/recall",
            json!({"message": "Which region runs Kubernetes?", "max_concepts": 5}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["context"].as_str().unwrap().contains("Frankfurt"), "{v}");
    assert!(
        v["concepts_found"].is_u64() && v["relationships_found"].is_u64(),
        "{v}"
    );
    assert!(v["query_time_ms"].is_number());
    assert_eq!(v["tenant_id"], "acme");

    let (st, v) = c.post("/v1/turn", json!({"user_message": "And the database for billing?", "ai_response": "Billing uses PostgreSQL."})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        v["recall"]["context"].is_string() && v["learn"]["concepts_extracted"].is_u64(),
        "{v}"
    );

    // `query` is the synonym some of the original's clients send.
    let (st, v) = c
        .post(
            "/v1/recall",
            json!({"query": "Which region runs Kubernetes?"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["context"].as_str().unwrap().contains("Frankfurt"), "{v}");
    // max_concepts is held to its documented range.
    for bad in [json!(0), json!(101), json!(u64::MAX)] {
        let (st, v) = c
            .post(
                "/v1/recall",
                json!({"message": "Kubernetes", "max_concepts": bad}),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("max_concepts"),
            "{v}"
        );
    }

    let (_, v) = c.get("/v1/stats").await;
    assert_eq!(v["memories"], 4);
    assert_eq!(v["tenant_id"], "acme");
    assert_eq!(v["messages"], 4);
    assert_eq!(v["entities"], v["concepts"]);
    assert_eq!(v["attention_links"], v["links"]);
    assert_eq!(v["decisions"], 1);
    assert_eq!(v["compound_concepts"], 0);
    let (_, v) = c.get("/v1/entities?limit=10&offset=0").await;
    let names: Vec<&str> = v["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Frankfurt") && names.contains(&"PostgreSQL"),
        "{v}"
    );
    let (_, v) = c.get("/v1/entities?entity_type=person").await;
    assert_eq!(v["entities"].as_array().unwrap().len(), 0);
    let (_, v) = c.get("/v1/messages?limit=2&offset=1").await;
    assert_eq!(v["messages"].as_array().unwrap().len(), 2);
    let (_, v) = c
        .post(
            "/v1/messages/search",
            json!({"query": "PostgreSQL billing"}),
        )
        .await;
    assert!(
        v["results"][0]["content"]
            .as_str()
            .unwrap()
            .contains("PostgreSQL"),
        "{v}"
    );
    let (st, v) = c
        .post(
            "/v1/memories",
            json!({"entity": "Priya", "content": "Priya prefers tea.", "metadata": {"k": 1}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, m) = c
        .get(&format!("/v1/memories/{}", v["id"].as_str().unwrap()))
        .await;
    assert_eq!(m["metadata"]["entity"], "Priya");
    assert_eq!(m["metadata"]["k"], 1);
}

#[tokio::test]
async fn native_endpoints_page_supersede_and_forget() {
    let s = start(ServerConfig::default()).await;
    let c = Client::new(&s, Some(&s.key("acme", Scope::Write).await));
    for i in 0..5 {
        c.post("/v1/learn", json!({"user_message": format!("Note {i} about the Falcon launch"), "ai_response": "ok", "session_id": "launch"})).await;
    }
    let (_, p1) = c.get("/v1/memories?limit=4").await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 4);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = c
        .get(&format!("/v1/memories?limit=100&cursor={cursor}"))
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 6);
    let (_, r) = c
        .post(
            "/v1/recall/native",
            json!({"query": "Falcon launch", "limit": 3}),
        )
        .await;
    assert_eq!(r["memories"].as_array().unwrap().len(), 3);
    assert!(r["memories"][0]["signals"]["lexical"].is_number());
    let (_, hits) = c
        .post(
            "/v1/search",
            json!({"query": "Falcon", "limit": 2, "offset": 1}),
        )
        .await;
    assert_eq!(hits["results"].as_array().unwrap().len(), 2);
    let old = p1["items"][0]["id"].as_str().unwrap().to_string();
    let (st, new) = c
        .post(
            &format!("/v1/memories/{old}/supersede"),
            json!({"content": "The Falcon launch moved to May."}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{new}");
    let (_, g) = c.get(&format!("/v1/memories/{old}")).await;
    assert_eq!(g["superseded_by"], new["id"]);
    // Its versions, oldest first, read the same from either end; its concepts.
    for from in [old.as_str(), new["id"].as_str().unwrap()] {
        let (st, v) = c.get(&format!("/v1/memories/{from}/versions")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let ids: Vec<&str> = v["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![old.as_str(), new["id"].as_str().unwrap()]);
    }
    let (_, v) = c
        .get(&format!(
            "/v1/memories/{}/concepts",
            new["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(v["concepts"][0]["key"], "falcon", "{v}");
    let (_, me) = c.get("/v1/whoami").await;
    assert_eq!(
        (me["tenant"].as_str(), me["scope"].as_str()),
        (Some("acme"), Some("write"))
    );
    // Oldest first, and a span of days.
    let (_, oldest) = c.get("/v1/memories?order=oldest&limit=1").await;
    assert_eq!(
        oldest["items"][0]["content"],
        "Note 0 about the Falcon launch"
    );
    let (_, none) = c.get("/v1/memories?until=2000-01-01").await;
    assert!(none["items"].as_array().unwrap().is_empty(), "{none}");
    let (_, all) = c.get("/v1/memories?since=2000-01-01&limit=100").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 11);
    for bad in ["order=sideways", "since=2024-13-01", "until=yesterday"] {
        let (st, v) = c.get(&format!("/v1/memories?{bad}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    // Reflection over the graph, and a walk its seed repeats.
    let (st, ins) = c.get("/v1/insights?limit=5").await;
    assert_eq!(st, StatusCode::OK, "{ins}");
    assert!(ins["graph"]["links"].as_u64().unwrap() > 0, "{ins}");
    let (st, d1) = c
        .get("/v1/dream?from=Falcon&seed=3&steps=5&temperature=0.5")
        .await;
    assert_eq!(st, StatusCode::OK, "{d1}");
    let (_, d2) = c
        .get("/v1/dream?from=Falcon&seed=3&steps=5&temperature=0.5")
        .await;
    assert_eq!(d1["steps"], d2["steps"]);
    assert_eq!(d1["steps"][0]["concept"]["key"], "falcon");
    for bad in [
        "temperature=0",
        "temperature=11",
        "steps=0",
        "seed=9007199254740992",
    ] {
        let (st, v) = c.get(&format!("/v1/dream?{bad}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (st, _) = c.get("/v1/dream?from=nowhere-at-all").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, sessions) = c.get("/v1/sessions").await;
    assert_eq!(sessions["sessions"][0]["id"], "launch");
    let (_, graph) = c.get("/v1/graph?concept=falcon").await;
    assert!(!graph["nodes"].as_array().unwrap().is_empty(), "{graph}");
    let (st, v) = c.delete("/v1/sessions/launch").await;
    assert_eq!((st, v["forgotten"].as_u64()), (StatusCode::OK, Some(10)));
    let (st, v) = c.delete(&format!("/v1/memories/{old}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_error(&v, "not_found");
}

#[tokio::test]
async fn keys_scopes_and_credentials_are_enforced() {
    let s = start(ServerConfig::default()).await;
    let read = s.key("acme", Scope::Read).await;
    let admin = s.key("acme", Scope::Admin).await;

    let (st, v) = Client::new(&s, None).get("/v1/stats").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_error(&v, "unauthorized");
    let (st, _) = Client::new(
        &s,
        Some("ck_000000000000_000000000000000000000000000000000000000000000000"),
    )
    .get("/v1/stats")
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = Client::new(&s, Some(&read))
        .post(
            "/v1/learn",
            json!({"user_message": "a", "ai_response": "b"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_error(&v, "forbidden");
    let bearer = reqwest::Client::new()
        .get(format!("{}/v1/stats", s.base))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    // Key administration needs admin scope and stays inside the tenant.
    let (st, _) = Client::new(&s, Some(&read)).get("/v1/keys").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let a = Client::new(&s, Some(&admin));
    let (st, created) = a
        .post(
            "/v1/keys",
            json!({"scope": "write", "expires_in_days": 30, "name": "bot"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let new_key = created["key"].as_str().unwrap().to_string();
    let (_, listed) = a.get("/v1/keys").await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 3);
    assert!(
        !listed.to_string().contains(&new_key[16..]),
        "secrets are never listed"
    );
    let (st, _) = Client::new(&s, Some(&new_key))
        .post(
            "/v1/learn",
            json!({"user_message": "a b", "ai_response": "c d"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let other_admin = s.key("other", Scope::Admin).await;
    let (st, _) = Client::new(&s, Some(&other_admin))
        .delete(&format!("/v1/keys/{}", created["prefix"].as_str().unwrap()))
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "another tenant's admin cannot revoke it"
    );
    let (st, _) = a
        .delete(&format!("/v1/keys/{}", created["prefix"].as_str().unwrap()))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = Client::new(&s, Some(&new_key)).get("/v1/stats").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "revoked");
}

#[tokio::test]
async fn one_tenants_key_never_reaches_another_tenants_memories() {
    let s = start(ServerConfig::default()).await;
    let a = Client::new(&s, Some(&s.key("alice", Scope::Write).await));
    let b = Client::new(&s, Some(&s.key("bob", Scope::Write).await));
    b.post("/v1/learn", json!({"user_message": "Bob's locker code is 4411 at the Oslo office.", "ai_response": "Saved the Oslo locker code.", "session_id": "bob-s"})).await;
    let (_, bob_mem) = b.get("/v1/memories?limit=1").await;
    let bob_id = bob_mem["items"][0]["id"].as_str().unwrap().to_string();
    a.post(
        "/v1/learn",
        json!({"user_message": "Alice likes tea.", "ai_response": "Tea it is."}),
    )
    .await;

    // A body or query field naming a tenant is not trusted.
    let (_, v) = a
        .post(
            "/v1/recall",
            json!({"message": "Oslo locker code", "tenant_id": "bob"}),
        )
        .await;
    assert!(!v["context"].as_str().unwrap().contains("Oslo"), "{v}");
    assert_eq!(v["tenant_id"], "alice");
    let (_, v) = a
        .post("/v1/recall/native", json!({"query": "Oslo locker code"}))
        .await;
    assert!(
        v["memories"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| !m["content"].as_str().unwrap().contains("Oslo"))
    );
    let (_, v) = a
        .post("/v1/messages/search", json!({"query": "locker"}))
        .await;
    assert!(v["results"].as_array().unwrap().is_empty());
    let (_, v) = a.post("/v1/search", json!({"query": "Oslo"})).await;
    assert!(v["results"].as_array().unwrap().is_empty());
    let (_, v) = a.get("/v1/messages?limit=100").await;
    assert!(!v.to_string().contains("Oslo"));
    let (_, v) = a.get("/v1/memories?limit=100&session=bob-s").await;
    assert!(v["items"].as_array().unwrap().is_empty());
    let (st, _) = a.get(&format!("/v1/memories/{bob_id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = a.get("/v1/stats?tenant=bob").await;
    assert_eq!(v["memories"], 2);
    let (_, v) = a.get("/v1/entities").await;
    assert!(!v.to_string().contains("Oslo"));
    let (st, _) = a.get("/v1/concepts/oslo").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = a.get("/v1/sessions").await;
    assert!(v["sessions"].as_array().unwrap().is_empty());
    let (st, _) = a.delete(&format!("/v1/memories/{bob_id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = a.delete("/v1/sessions/bob-s").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = b.get(&format!("/v1/memories/{bob_id}")).await;
    assert_eq!(st, StatusCode::OK, "Bob still has it: {v}");
}

#[tokio::test]
async fn limits_answer_with_clear_errors() {
    let s = start(ServerConfig {
        max_body_bytes: 4096,
        rate_per_second: 2.0,
        rate_burst: 4.0,
        ..ServerConfig::default()
    })
    .await;
    let c = Client::new(&s, Some(&s.key("acme", Scope::Write).await));
    let big = "x ".repeat(5000);
    let (st, v) = c
        .post(
            "/v1/learn",
            json!({"user_message": big, "ai_response": "b"}),
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_error(&v, "payload_too_large");
    let (st, v) = c.get("/v1/memories?limit=5000").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "invalid_input");
    let r = c
        .req(reqwest::Method::POST, "/v1/recall")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    // The original (FastAPI) answered 422 to a body that is not JSON.
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (st, v) = c
        .post(
            "/v1/learn",
            json!({"user_message": "   ", "ai_response": "b"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("empty"),
        "{v}"
    );
    let (st, v) = c.get("/v1/nowhere").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(&v, "not_found");
    // The bucket: 4 in a burst (some already spent above), then 429 with Retry-After.
    let mut limited = None;
    for _ in 0..10 {
        let r = c
            .req(reqwest::Method::GET, "/v1/stats")
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the rate limit answered 429");
    assert!(r.headers().get("retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    assert_error(&v, "rate_limited");
}

#[tokio::test]
async fn cors_preflight_is_answered_before_authentication() {
    let s = start(ServerConfig {
        cors_origins: vec!["https://app.example".into()],
        ..ServerConfig::default()
    })
    .await;
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/v1/recall", s.base))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-api-key, content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/v1/recall", s.base))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_and_refuses_new_ones() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("continuum.db"),
        &SqliteOptions::default(),
        Timestamp(0),
    )
    .unwrap();
    let engine = Engine::new(Arc::new(store), EngineConfig::default()).unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let (key, _) = engine
        .create_key(&tenant, Scope::Write, None, None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router(engine.clone(), ServerConfig::default()),
        async {
            let _ = stopped.await;
        },
    ));

    // A learn request whose body is only half sent when the shutdown signal comes.
    let body = json!({"user_message": "We ship the Falcon release on Friday.", "ai_response": "Noted: Falcon ships Friday."})
        .to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/learn HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // No new connection is served once shutdown has begun.
    let refused = match tokio::net::TcpStream::connect(addr).await {
        Err(_) => true,
        Ok(mut late) => {
            let _ = late
                .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            let mut buf = Vec::new();
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                late.read_to_end(&mut buf),
            )
            .await;
            !matches!(read, Ok(Ok(_))) || buf.is_empty()
        }
    };
    assert!(refused, "a connection opened after the signal was served");

    // The request in flight completes and its write is kept.
    conn.write_all(rest.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("the server stops once the request is done")
        .unwrap()
        .unwrap();
    assert_eq!(engine.stats(&tenant).await.unwrap().store.memories, 2);
}

/// The schema a `$ref` points at (or the schema itself), resolved against the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Top-level property names of a documented object schema.
fn documented_fields(doc: &Value, schema: &Value) -> std::collections::BTreeSet<String> {
    resolve(doc, schema)["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("an object schema: {schema}"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_matches_real_responses() {
    let s = start(ServerConfig::default()).await;
    let anonymous = Client::new(&s, None);
    let (st, doc) = anonymous.get("/v1/openapi.json").await;
    assert_eq!(st, StatusCode::OK, "served without a key");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc,
        continuum_server::openapi_document(),
        "the served document is the code's"
    );

    // Every documented operation is routed: called with an admin key, none meets the
    // router's fallback (404 "no such endpoint") or a 405.
    let admin = Client::new(&s, Some(&s.key("acme", Scope::Admin).await));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let concrete = path
                .replace("{id}", "x")
                .replace("{name}", "x")
                .replace("{prefix}", "x");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = admin
                .req(m, &concrete)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = json_body(r).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(
                body["error"]["message"], "no such endpoint",
                "{method} {path} is documented but not routed"
            );
            let op = &item[method];
            assert!(
                op["summary"].as_str().is_some_and(|t| !t.is_empty()),
                "{method} {path}"
            );
            assert!(
                op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|k| k.starts_with('2') || k == "101"),
                "{method} {path} documents no success"
            );
        }
    }
    assert!(operations >= 24, "{operations} operations");

    // The original service's endpoints are there with their shapes.
    let body_fields = |path: &str, method: &str| {
        documented_fields(
            &doc,
            &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"],
        )
    };
    let response_schema = |path: &str, method: &str, status: &str| {
        doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
            .clone()
    };
    assert!(
        body_fields("/v1/recall", "post")
            .is_superset(&["message".to_string(), "max_concepts".into()].into())
    );
    assert!(
        body_fields("/v1/learn", "post").is_superset(
            &[
                "user_message".to_string(),
                "ai_response".into(),
                "thinking".into(),
                "metadata".into()
            ]
            .into()
        )
    );
    let recall_required = resolve(
        &doc,
        &doc["paths"]["/v1/recall"]["post"]["requestBody"]["content"]["application/json"]["schema"],
    )["required"]
        .clone();
    assert_eq!(recall_required, json!(["message"]));
    assert_eq!(
        doc["paths"]["/v1/recall"]["post"]["x-required-scope"],
        "read"
    );
    assert_eq!(
        doc["paths"]["/v1/learn"]["post"]["x-required-scope"],
        "write"
    );
    assert_eq!(
        doc["paths"]["/v1/keys"]["post"]["x-required-scope"],
        "admin"
    );
    assert_eq!(doc["paths"]["/v1/health"]["get"]["security"], json!([]));
    let entities = &doc["paths"]["/v1/entities"]["get"]["parameters"];
    let names: Vec<&str> = entities
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for q in ["limit", "offset", "entity_type"] {
        assert!(names.contains(&q), "{names:?}");
    }

    // Real responses carry exactly the documented fields.
    let c = Client::new(&s, Some(&s.key("acme", Scope::Write).await));
    let fields = |v: &Value| -> std::collections::BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    let (_, v) = c
        .post("/v1/learn", json!({"user_message": "We ship the Rust service from Berlin.", "ai_response": "I'll note Berlin."}))
        .await;
    assert_eq!(
        fields(&v),
        documented_fields(&doc, &response_schema("/v1/learn", "post", "200"))
    );
    let (_, v) = c
        .post("/v1/recall", json!({"message": "Where do we ship from?"}))
        .await;
    assert_eq!(
        fields(&v),
        documented_fields(&doc, &response_schema("/v1/recall", "post", "200"))
    );
    let (_, v) = c
        .post(
            "/v1/turn",
            json!({"user_message": "And the Go service?", "ai_response": "Also Berlin."}),
        )
        .await;
    assert_eq!(
        fields(&v),
        documented_fields(&doc, &response_schema("/v1/turn", "post", "200"))
    );
    let (_, v) = c.get("/v1/health").await;
    assert_eq!(
        fields(&v),
        documented_fields(&doc, &response_schema("/v1/health", "get", "200"))
    );
    let (_, v) = c
        .post("/v1/recall/native", json!({"query": "Berlin"}))
        .await;
    let documented = documented_fields(&doc, &response_schema("/v1/recall/native", "post", "200"));
    assert!(documented.is_superset(&fields(&v)), "{v}");
    let memory = &v["memories"][0];
    let recalled = resolve(&doc, &response_schema("/v1/recall/native", "post", "200"))["properties"]["memories"]["items"].clone();
    assert_eq!(fields(memory), documented_fields(&doc, &recalled));
    let (_, v) = c
        .post(
            "/v1/memories",
            json!({"entity": "Berlin", "content": "Berlin is the shipping hub."}),
        )
        .await;
    assert_eq!(
        fields(&v),
        documented_fields(&doc, &response_schema("/v1/memories", "post", "201"))
    );
    let (_, v) = c
        .get(&format!("/v1/memories/{}", v["id"].as_str().unwrap()))
        .await;
    assert!(
        documented_fields(&doc, &response_schema("/v1/memories/{id}", "get", "200"))
            .is_superset(&fields(&v))
    );
    let (_, v) = c.get("/v1/stats").await;
    assert_eq!(
        fields(&v),
        documented_fields(&doc, &response_schema("/v1/stats", "get", "200"))
    );
}

/// The document is valid OpenAPI 3.1, by the reference validator (`openapi-spec-validator` from
/// PyPI; CI installs it and sets CONTINUUM_TEST_OPENAPI_PYTHON).
#[test]
fn the_openapi_document_passes_the_reference_validator() {
    let Ok(python) = std::env::var("CONTINUUM_TEST_OPENAPI_PYTHON") else {
        eprintln!(
            "skipping: CONTINUUM_TEST_OPENAPI_PYTHON is not set (a Python with openapi-spec-validator)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, continuum_server::openapi_document().to_string()).unwrap();
    let out = std::process::Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn operators_administer_tenants_without_reading_them() {
    let s = start(ServerConfig::default()).await;
    let operator = Client::new(&s, Some(&s.key("ops", Scope::Operator).await));
    let admin = Client::new(&s, Some(&s.key("acme", Scope::Admin).await));

    // Only an operator key may; an admin cannot mint itself one.
    let (st, v) = admin.get("/v1/tenants").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = admin.post("/v1/keys", json!({"scope": "operator"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_error(&v, "forbidden");

    // A new tenant comes with an admin key that works in it, and only in it.
    let (st, v) = operator
        .post("/v1/tenants", json!({"tenant": "globex", "name": "first"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["tenant"], "globex");
    assert_eq!(v["admin_key"]["scope"], "admin");
    let globex_admin = v["key"].as_str().unwrap().to_string();
    let globex = Client::new(&s, Some(&globex_admin));
    let (st, _) = globex
        .post(
            "/v1/learn",
            json!({"user_message": "Globex ships from Oslo.", "ai_response": "Noted."}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = operator
        .post("/v1/tenants", json!({"tenant": "globex"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, v) = operator
        .post("/v1/tenants", json!({"tenant": "no spaces"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    let w = Client::new(&s, Some(&s.key("acme", Scope::Write).await));
    w.post(
        "/v1/learn",
        json!({"user_message": "Acme runs on Kubernetes.", "ai_response": "Ok."}),
    )
    .await;
    let (st, v) = operator.get("/v1/tenants").await;
    assert_eq!(st, StatusCode::OK);
    let row = |t: &str| {
        v["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["tenant"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("{t} listed: {v}"))
    };
    assert_eq!(row("globex")["memories"], 2);
    assert_eq!(row("acme")["memories"], 2);
    assert_eq!(row("acme")["active_keys"], 2);
    assert!(
        !v.to_string().contains("Kubernetes"),
        "counts, never content: {v}"
    );
    // The operator's own tenant holds nothing of the others.
    let (_, r) = operator
        .post(
            "/v1/recall",
            json!({"message": "Where does Globex ship from?"}),
        )
        .await;
    assert!(!r["context"].as_str().unwrap().contains("Oslo"), "{r}");

    // Erasing: everything goes, its keys stop working, the others stay.
    let (st, v) = operator.delete("/v1/tenants/ops").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "not its own tenant: {v}");
    let (st, v) = operator.delete("/v1/tenants/globex").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["memories"].as_u64(), v["keys_revoked"].as_u64()),
        (Some(2), Some(1))
    );
    let (st, _) = globex.get("/v1/stats").await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "the erased tenant's key is revoked"
    );
    let (st, _) = operator.delete("/v1/tenants/globex").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = w.get("/v1/stats").await;
    assert_eq!(v["memories"], 2, "another tenant is untouched");
}

#[tokio::test]
async fn the_event_log_pages_by_position_for_the_keys_tenant_only() {
    let s = start(ServerConfig::default()).await;
    let writer = Client::new(&s, Some(&s.key("acme", Scope::Write).await));
    let reader = Client::new(&s, Some(&s.key("acme", Scope::Read).await));
    let other = Client::new(&s, Some(&s.key("globex", Scope::Read).await));
    for i in 0..3 {
        let (st, _) = writer
            .post(
                "/v1/learn",
                json!({"user_message": format!("Kafka note {i}"), "ai_response": "ok"}),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, v) = reader.get("/v1/events?limit=2").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    // The first events of a store are the keys made above, then the turns.
    assert!(events.iter().all(|e| e["tenant"] == "acme"), "{v}");
    assert_eq!(events[0]["type"], "key.created");
    assert!(events[0].get("hash").is_none() && events[0]["prefix"].is_string());
    let next = v["next_since"].as_u64().unwrap();
    assert_eq!(next, events[1]["seq"].as_u64().unwrap());
    let (_, rest) = reader
        .get(&format!("/v1/events?since={next}&limit=1000"))
        .await;
    let rest = rest["events"].as_array().unwrap();
    assert!(rest.iter().all(|e| e["seq"].as_u64().unwrap() > next));
    let created: Vec<&Value> = rest
        .iter()
        .filter(|e| e["type"] == "memory.created")
        .collect();
    assert_eq!(created.len(), 6);
    assert_eq!(created[0]["memory"]["content"], "Kafka note 0");
    assert_eq!(created[0]["v"], 1);

    // Another tenant's key sees only its own (its key.created).
    let (_, theirs) = other.get("/v1/events").await;
    let theirs = theirs["events"].as_array().unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["tenant"], "globex");

    // Past the end: empty, not an error. Bad positions and limits: clear errors.
    let (st, v) = reader.get("/v1/events?since=999999").await;
    assert_eq!(
        (st, v["events"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    assert_eq!(v["next_since"], 999_999);
    for bad in ["since=-1", "since=abc", "limit=0", "limit=1001"] {
        let (st, v) = reader.get(&format!("/v1/events?{bad}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 10, "{v}");
    }
    let (st, _) = Client::new(&s, None).get("/v1/events").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// Every route in the OpenAPI document, called with a key of each scope: a scope below the
/// documented one is refused with 403 before anything else of the request is looked at, and
/// the documented scope (or a higher one) is never refused for its scope.
#[tokio::test]
async fn every_route_enforces_exactly_the_scope_it_documents() {
    let s = start(ServerConfig {
        rate_per_second: 10_000.0,
        rate_burst: 20_000.0,
        ..ServerConfig::default()
    })
    .await;
    let scopes = [Scope::Read, Scope::Write, Scope::Admin, Scope::Operator];
    let mut keys = Vec::new();
    for sc in scopes {
        keys.push((sc, s.key("walker", sc).await));
    }
    let (_, doc) = Client::new(&s, None).get("/v1/openapi.json").await;
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(needed) = op["x-required-scope"].as_str() else {
                continue;
            };
            let needed: Scope = needed.parse().unwrap();
            // Path parameters that name nothing stored: no call below changes anything.
            let url = path
                .replace("{id}", "01890a5d-ac96-774b-bcce-b302099a8057")
                .replace("{prefix}", "000000000000")
                .replace("{name}", "nothing-here");
            let url = if path == "/v1/tenants/{id}" {
                "/v1/tenants/nobody-here".to_string()
            } else {
                url
            };
            let m: reqwest::Method = method.to_uppercase().parse().unwrap();
            for (sc, key) in &keys {
                let c = Client::new(&s, Some(key));
                let mut r = c.req(m.clone(), &url);
                if m == reqwest::Method::POST {
                    r = r.json(&json!({}));
                }
                let resp = r.send().await.unwrap();
                let status = resp.status();
                let body = json_body(resp).await;
                if sc.allows(needed) {
                    assert!(
                        status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                        "{method} {path} with a {sc} key (needs {needed}): {status} {body}"
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{method} {path} with a {sc} key (needs {needed}): {body}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} operations walked");
}

#[tokio::test]
async fn a_key_never_revokes_or_creates_a_key_above_its_own_scope() {
    let s = start(ServerConfig::default()).await;
    let admin = Client::new(&s, Some(&s.key("acme", Scope::Admin).await));
    let (_, operator) = s
        .engine
        .create_key(&TenantId::new("acme").unwrap(), Scope::Operator, None, None)
        .await
        .unwrap();
    let (st, v) = admin.delete(&format!("/v1/keys/{}", operator.prefix)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        s.engine
            .list_keys(Some(&TenantId::new("acme").unwrap()))
            .await
            .unwrap()
            .iter()
            .all(|k| k.revoked_at.is_none()),
        "nothing was revoked"
    );
    let (st, _) = admin.post("/v1/keys", json!({"scope": "operator"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Another tenant's key is not found, whatever its scope.
    let (_, theirs) = s
        .engine
        .create_key(&TenantId::new("globex").unwrap(), Scope::Read, None, None)
        .await
        .unwrap();
    let (st, _) = admin.delete(&format!("/v1/keys/{}", theirs.prefix)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Its own tenant's write key it may revoke.
    let (_, write) = s
        .engine
        .create_key(&TenantId::new("acme").unwrap(), Scope::Write, None, None)
        .await
        .unwrap();
    let (st, v) = admin.delete(&format!("/v1/keys/{}", write.prefix)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// The body of an error answer: the envelope, in JSON, without Rust type names.
fn assert_envelope(what: &str, status: StatusCode, content_type: &str, body: &str) {
    assert!(
        status.is_client_error(),
        "{what}: {status} is not a client error: {body}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {status} answered {content_type:?}: {body:?}"
    );
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{what}: {status} body is not JSON ({e}): {body:?}"));
    let code = v["error"]["code"].as_str().unwrap_or("");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(
        !code.is_empty() && !message.is_empty(),
        "{what}: not the envelope: {v}"
    );
    for rust in ["struct ", "usize", "u64", "Option<"] {
        assert!(
            !message.contains(rust),
            "{what}: names a Rust type: {message}"
        );
    }
}

#[tokio::test]
async fn every_route_answers_malformed_input_with_the_error_envelope() {
    // Many requests here carry wrong keys on purpose: lift the per-address limit on failed
    // authentications (tests/abuse.rs covers it).
    let s = start(ServerConfig {
        auth_failures_per_minute: 0.0,
        ..ServerConfig::default()
    })
    .await;
    let key = s.key("ops", Scope::Operator).await;
    let doc = continuum_server::openapi_document();
    let http = reqwest::Client::new();
    let send =
        |method: reqwest::Method, path: String, key: Option<&str>, body: Option<(&str, &str)>| {
            let mut r = http.request(method, format!("{}{path}", s.base));
            if let Some(k) = key {
                r = r.header("X-API-Key", k);
            }
            if let Some((ct, b)) = body {
                r = r.header("content-type", ct).body(b.to_string());
            }
            async move {
                let r = r.send().await.unwrap();
                let status = r.status();
                let ct = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                (status, ct, r.text().await.unwrap())
            }
        };
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Path parameters filled with text no id has.
        let concrete: String = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "no%20such%20thing"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().unwrap() {
            let m: reqwest::Method = method.to_uppercase().parse().unwrap();
            let what = format!("{method} {path}");
            let secured = op["x-required-scope"].is_string();
            if secured {
                let (st, ct, b) = send(m.clone(), concrete.clone(), None, None).await;
                assert_eq!(st, StatusCode::UNAUTHORIZED, "{what} without a key: {b}");
                assert_envelope(&format!("{what} without a key"), st, &ct, &b);
                let (st, ct, b) = send(m.clone(), concrete.clone(), Some("cm_bogus"), None).await;
                assert_envelope(&format!("{what} with a bad key"), st, &ct, &b);
            }
            if op["requestBody"].is_object() {
                let compat = op["x-compatibility"].is_string();
                for (label, ct_in, body) in [
                    ("not JSON", "application/json", "{not json"),
                    ("an array", "application/json", "[1, 2]"),
                    (
                        "wrong types",
                        "application/json",
                        r#"{"message": 5, "user_message": [], "content": {}, "query": false, "tenant": 1, "scope": 2}"#,
                    ),
                    ("not declared JSON", "text/plain", "{}"),
                ] {
                    let (st, ct, b) =
                        send(m.clone(), concrete.clone(), Some(&key), Some((ct_in, body))).await;
                    let w = format!("{what} with {label}");
                    assert_envelope(&w, st, &ct, &b);
                    if label == "not JSON" && compat {
                        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{w}: {b}");
                    }
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] != "query" {
                    continue;
                }
                let name = p["name"].as_str().unwrap();
                for bad in ["-1", "abc", "99999999999999999999999", "%FF%FE"] {
                    let (st, ct, b) = send(
                        m.clone(),
                        format!("{concrete}?{name}={bad}"),
                        Some(&key),
                        None,
                    )
                    .await;
                    if st.is_success() {
                        continue; // a free-text parameter takes any text
                    }
                    assert_envelope(&format!("{what}?{name}={bad}"), st, &ct, &b);
                }
            }
            let (st, ct, b) =
                send(reqwest::Method::PATCH, concrete.clone(), Some(&key), None).await;
            assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED, "PATCH {path}: {b}");
            assert_envelope(&format!("PATCH {path}"), st, &ct, &b);
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} operations walked");
    let (st, ct, b) = send(
        reqwest::Method::GET,
        "/v1/no-such-endpoint".into(),
        None,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_envelope("an unknown path", st, &ct, &b);
    // Lower-case scheme: RFC 9110 makes it case-insensitive.
    let r = http
        .get(format!("{}/v1/stats", s.base))
        .header("authorization", format!("bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_over_the_deadline_answers_408_in_the_envelope() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(ServerConfig {
        request_timeout: std::time::Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    let key = s.key("acme", Scope::Write).await;
    // A client that announces a body and stops sending it halfway.
    let addr = s.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        format!(
            "POST /v1/learn HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user_mess"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.ends_with(b"}}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ct = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    assert_eq!(status, 408, "{text}");
    assert_envelope(
        "a late request",
        StatusCode::from_u16(status).unwrap(),
        &ct,
        body,
    );
}

#[tokio::test]
async fn the_docs_page_is_served_whole_by_the_binary() {
    let s = start(ServerConfig::default()).await;
    let r = reqwest::get(format!("{}/docs", s.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let page = r.text().await.unwrap();
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(page.contains("/v1/openapi.json") && page.contains("<script>"));
    // Nothing is fetched from elsewhere: no external script, style, image or font, and the
    // browser is told so.
    for attr in ["src=", "href=", "url(", "@import"] {
        assert!(!page.contains(attr), "the page loads something: {attr}");
    }
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    let doc = continuum_server::openapi_document();
    assert!(doc["paths"]["/docs"]["get"]["responses"]["200"]["content"]["text/html"].is_object());
}

#[tokio::test]
async fn too_many_or_too_large_headers_answer_431_in_the_envelope() {
    let s = start(ServerConfig::default()).await;
    let http = reqwest::Client::new();
    let many = (0..150).fold(http.get(format!("{}/v1/health", s.base)), |r, i| {
        r.header(format!("x-extra-{i}"), "1")
    });
    let large = http
        .get(format!("{}/v1/health", s.base))
        .header("x-large", "a".repeat(40 * 1024));
    for (what, req) in [("150 headers", many), ("40 KiB of headers", large)] {
        let r = req.send().await.unwrap();
        let status = r.status();
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let body = r.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "{what}: {body}"
        );
        assert_envelope(what, status, &ct, &body);
    }
    // Within the limits, the same request is answered.
    let r = http
        .get(format!("{}/v1/health", s.base))
        .header("x-large", "a".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_audit_log_pages_oldest_or_newest_first_for_the_keys_tenant() {
    let s = start(ServerConfig::default()).await;
    let admin = Client::new(&s, Some(&s.key("acme", Scope::Admin).await));
    for i in 0..4 {
        let (st, _) = admin
            .post(
                "/v1/keys",
                json!({"scope": "read", "name": format!("k{i}")}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    s.key("globex", Scope::Admin).await;
    let (st, all) = admin.get("/v1/audit").await;
    assert_eq!(st, StatusCode::OK, "{all}");
    let seqs = |v: &Value| -> Vec<u64> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    let oldest = seqs(&all);
    assert!(oldest.len() >= 5, "{all}");
    assert!(oldest.windows(2).all(|w| w[0] < w[1]));
    assert!(
        all["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == "acme"),
        "an admin sees its own tenant only: {all}"
    );
    // Newest first, two at a time, back to the start.
    let mut newest = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/v1/audit?order=newest&limit=2&before={b}"),
            None => "/v1/audit?order=newest&limit=2".to_string(),
        };
        let (st, page) = admin.get(&path).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        newest.extend(seqs(&page));
        match page["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let mut reversed = oldest.clone();
    reversed.reverse();
    assert_eq!(newest, reversed);
    // Both bounds at once, either way round.
    let (lo, hi) = (oldest[0], oldest[3]);
    let (_, between) = admin
        .get(&format!("/v1/audit?order=newest&since={lo}&before={hi}"))
        .await;
    assert_eq!(seqs(&between), vec![oldest[2], oldest[1]]);
    let (_, between) = admin
        .get(&format!("/v1/audit?since={lo}&before={hi}"))
        .await;
    assert_eq!(seqs(&between), vec![oldest[1], oldest[2]]);
    let (st, v) = admin.get("/v1/audit?order=sideways").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn reflection_records_over_rest_are_the_keys_tenants_only() {
    let s = start(ServerConfig::default()).await;
    let a = Client::new(&s, Some(&s.key("alice", Scope::Write).await));
    let b = Client::new(&s, Some(&s.key("bob", Scope::Write).await));
    let reader = Client::new(&s, Some(&s.key("alice", Scope::Read).await));
    let doc = continuum_server::openapi_document();
    let fields = |v: &Value| -> std::collections::BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    let documented = |path: &str, method: &str, status: &str| {
        documented_fields(
            &doc,
            &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"],
        )
    };

    let (st, i) = a
        .post(
            "/v1/intentions",
            json!({"text": "Renew the TLS certificate", "priority": 9, "session": "ops"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{i}");
    assert_eq!(fields(&i), documented("/v1/intentions", "post", "201"));
    let iid = i["id"].as_str().unwrap().to_string();
    let (st, _) = a
        .post("/v1/intentions", json!({"text": "Later", "priority": 1}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, r) = a.get("/v1/intentions/resume").await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        fields(&r),
        documented("/v1/intentions/resume", "get", "200")
    );
    assert_eq!(r["high"][0]["id"], iid.as_str());
    assert_eq!(r["pending"], 2);
    for (bad, want) in [
        (json!({"text": "x", "priority": 0}), StatusCode::BAD_REQUEST),
        (json!({"text": "   "}), StatusCode::BAD_REQUEST),
        (
            json!({"text": "x", "tenant": "bob"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (st, v) = a.post("/v1/intentions", bad.clone()).await;
        assert_eq!(st, want, "{bad}: {v}");
    }
    // Bob cannot see or finish alice's intention; a read key cannot write.
    let (_, v) = b.get("/v1/intentions").await;
    assert_eq!(v["intentions"], json!([]));
    let (st, _) = b
        .post(&format!("/v1/intentions/{iid}/done"), json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = reader
        .post(&format!("/v1/intentions/{iid}/done"), json!({}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = a
        .post(&format!("/v1/intentions/{iid}/done"), json!({}))
        .await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("done")));
    let (st, v) = a
        .post(
            &format!("/v1/intentions/{iid}/abandon"),
            json!({"reason": "too late"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, _) = a.post("/v1/intentions/not-a-uuid/done", json!({})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (st, first) = a
        .post("/v1/beliefs", json!({"text": "The office opens at 9am", "domain": "work", "confidence": 0.9, "evidence": ["the door sign"]}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    let (st, second) = a
        .post(
            "/v1/beliefs",
            json!({"text": "The office opens at 8am", "domain": "work"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{second}");
    assert_eq!(fields(&second), documented("/v1/beliefs", "post", "201"));
    let c = &second["contradictions"][0];
    assert_eq!(c["kind"], "value", "{second}");
    assert_eq!(c["earlier_text"], "The office opens at 9am");
    let cid = c["id"].as_str().unwrap().to_string();
    let (_, v) = b.get("/v1/contradictions").await;
    assert_eq!(v["contradictions"], json!([]));
    let (st, _) = b
        .post(
            &format!("/v1/contradictions/{cid}/resolve"),
            json!({"keep": first["belief"]["id"]}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = a
        .post(
            &format!("/v1/contradictions/{cid}/resolve"),
            json!({"keep": first["belief"]["id"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["superseded"]["id"], second["belief"]["id"]);
    let (_, v) = a.get("/v1/beliefs?domain=work&status=active").await;
    assert_eq!(v["beliefs"].as_array().unwrap().len(), 1);
    assert_eq!(v["beliefs"][0]["id"], first["belief"]["id"]);

    let (st, claim) = a
        .post(
            "/v1/claims",
            json!({"text": "The migration takes an hour", "confidence": 0.7, "category": "ops"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{claim}");
    let id = claim["id"].as_str().unwrap();
    let (st, _) = b
        .post(&format!("/v1/claims/{id}/verify"), json!({"correct": true}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = a
        .post(
            &format!("/v1/claims/{id}/verify"),
            json!({"correct": false, "notes": "three hours"}),
        )
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("wrong")),
        "{v}"
    );
    let (st, v) = a.get("/v1/claims?category=ops&status=wrong").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["claims"][0]["notes"], "three hours");
    let (_, v) = a.get("/v1/claims?status=open").await;
    assert_eq!(v["claims"], json!([]));
    let (_, v) = a.get("/v1/intentions?status=pending").await;
    assert_eq!(v["intentions"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["intentions"][0]["text"], "Later");
    let (st, _) = a.get("/v1/intentions?status=sideways").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, cal) = a.get("/v1/calibration?category=ops").await;
    assert_eq!(st, StatusCode::OK, "{cal}");
    assert_eq!(fields(&cal), documented("/v1/calibration", "get", "200"));
    assert!(
        (cal["brier"].as_f64().unwrap() - 0.49).abs() < 1e-9,
        "{cal}"
    );
    let (_, v) = b.get("/v1/calibration").await;
    assert_eq!(v["claims"], 0);
    assert!(v["brier"].is_null());
    for bad in ["bins=0", "since=2026-13-01"] {
        let (st, v) = a.get(&format!("/v1/calibration?{bad}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (st, _) = a
        .post("/v1/claims", json!({"text": "x", "confidence": 1.5}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // A window that ends before it starts is empty, not an error.
    let (st, v) = a
        .get("/v1/calibration?since=2026-02-01&until=2026-01-01")
        .await;
    assert_eq!((st, v["claims"].as_u64()), (StatusCode::OK, Some(0)), "{v}");

    // A concept's timeline and the tenant's growth, from the event log.
    for _ in 0..2 {
        let (st, _) = a
            .post(
                "/v1/learn",
                json!({"user_message": "The Falcon rocket uses Merlin engines.", "ai_response": "Falcon and Merlin noted."}),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, t) = a.get("/v1/concepts/falcon/timeline").await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(
        fields(&t),
        documented("/v1/concepts/{name}/timeline", "get", "200")
    );
    assert_eq!(t["entries"][0]["kind"], "created");
    assert!(
        t["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "linked" && e["other"] == "merlin"),
        "{t}"
    );
    let (st, _) = b.get("/v1/concepts/falcon/timeline").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, g) = a.get("/v1/growth").await;
    assert_eq!(st, StatusCode::OK, "{g}");
    assert_eq!(fields(&g), documented("/v1/growth", "get", "200"));
    assert_eq!(g["memories"], 4);
    let (_, g) = b.get("/v1/growth").await;
    assert_eq!(g["memories"], 0);
    let (st, g) = a.get("/v1/growth?since=2026-02-01&until=2026-01-01").await;
    assert_eq!(
        (st, g["memories"].as_u64()),
        (StatusCode::OK, Some(0)),
        "an empty window"
    );
    let (st, _) = a.get("/v1/growth?since=2026-02-30").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Snapshots of the graph's shape, compared; never across tenants.
    let (st, one) = a.post("/v1/snapshots", json!({"label": "first"})).await;
    assert_eq!(st, StatusCode::CREATED, "{one}");
    assert_eq!(fields(&one), documented("/v1/snapshots", "post", "201"));
    a.post(
        "/v1/learn",
        json!({"user_message": "The Falcon rocket lands on a Drone ship.", "ai_response": "Falcon and Drone noted."}),
    )
    .await;
    let (_, two) = a.post("/v1/snapshots", json!({})).await;
    let q = format!(
        "/v1/snapshots/compare?from={}&to={}",
        one["id"].as_str().unwrap(),
        two["id"].as_str().unwrap()
    );
    let (st, cmp) = a.get(&q).await;
    assert_eq!(st, StatusCode::OK, "{cmp}");
    assert_eq!(
        fields(&cmp),
        documented("/v1/snapshots/compare", "get", "200")
    );
    assert_eq!(cmp["memories"], 2);
    let (st, _) = b.get(&q).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, list) = b.get("/v1/snapshots").await;
    assert_eq!(list["snapshots"], json!([]));
    let (_, list) = a.get("/v1/snapshots?limit=1").await;
    assert_eq!(list["snapshots"][0]["id"], two["id"]);
    let (st, _) = reader.post("/v1/snapshots", json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = a.get("/v1/snapshots/compare?from=not-a-uuid&to=x").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
