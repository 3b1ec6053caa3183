//! Traces over OTLP/HTTP: `continuum serve --otlp-endpoint` sends its spans to a minimal OTLP
//! receiver run by this test (protobuf decoded with the OpenTelemetry project's own message
//! definitions), and the spans have the expected names, parents and attributes.

mod common;

use common::{cli, request, serve_with};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// Accepts OTLP/HTTP exports on a free port; every span received lands in the returned list.
fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            let sink = sink.clone();
            std::thread::spawn(move || serve_exports(conn, sink));
        }
    });
    (url, spans)
}

/// One connection: HTTP/1.1 requests with a Content-Length body, each answered 200.
fn serve_exports(conn: std::net::TcpStream, sink: Arc<Mutex<Vec<Span>>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(path, "/v1/traces");
        let export = ExportTraceServiceRequest::decode(&body[..]).expect("an OTLP trace export");
        for rs in export.resource_spans {
            for ss in rs.scope_spans {
                sink.lock().unwrap().extend(ss.spans);
            }
        }
        let _ = writer.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
        );
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Any::StringValue(s) => s.clone(),
            Any::IntValue(i) => i.to_string(),
            Any::BoolValue(b) => b.to_string(),
            Any::DoubleValue(d) => d.to_string(),
            other => format!("{other:?}"),
        })
}

#[test]
fn spans_go_from_the_request_to_the_engine_verb_to_the_store_call() {
    let (endpoint, spans) = receiver();
    let d = tempfile::tempdir().unwrap();
    let key = cli(
        d.path(),
        &["--tenant", "acme", "keys", "create", "--scope", "write"],
    );
    let key = key.trim();
    let (mut server, url) = serve_with(d.path(), &["--otlp-endpoint", &endpoint], &[]);
    let (status, body) = request(
        &url,
        "POST",
        "/v1/learn",
        &format!("X-API-Key: {key}\r\n"),
        r#"{"user_message": "Billing runs in Frankfurt.", "ai_response": "Noted."}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(
        &url,
        "POST",
        "/v1/recall",
        &format!("X-API-Key: {key}\r\n"),
        r#"{"message": "Where does billing run?"}"#,
    );
    assert_eq!(status, 200, "{body}");
    // Stopping the server sends the spans still batched.
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(server.child.wait().unwrap().success(), "{}", server.log());

    let spans = spans.lock().unwrap().clone();
    let named = |name: &str| -> &Span {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
            panic!("no span {name:?} among {names:?}")
        })
    };
    for (route, verb) in [
        ("/v1/learn", "engine.learn"),
        ("/v1/recall", "engine.recall"),
    ] {
        let http = named(&format!("POST {route}"));
        assert!(http.parent_span_id.is_empty(), "the request span is a root");
        assert_eq!(attr(http, "http.route").as_deref(), Some(route));
        assert_eq!(attr(http, "http.request.method").as_deref(), Some("POST"));
        assert_eq!(
            attr(http, "http.response.status_code").as_deref(),
            Some("200")
        );
        // Server kind (2 in OTLP's SpanKind).
        assert_eq!(http.kind, 2, "{http:?}");
        let engine = spans
            .iter()
            .find(|s| s.name == verb && s.parent_span_id == http.span_id)
            .unwrap_or_else(|| panic!("no {verb} span under POST {route}"));
        assert_eq!(engine.trace_id, http.trace_id);
        let store: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == engine.span_id)
            .collect();
        assert!(!store.is_empty(), "no store call under {verb}");
        for s in &store {
            assert_eq!(
                attr(s, "db.operation.name").as_deref(),
                Some(s.name.as_str()),
                "{s:?}"
            );
        }
        if verb == "engine.learn" {
            assert!(store.iter().any(|s| s.name == "apply"), "{store:?}");
        }
    }
    // Nothing secret travels in a span.
    for s in &spans {
        for a in &s.attributes {
            assert!(!format!("{:?}", a.value).contains(key), "{a:?}");
        }
    }
}
