//! `continuum mcp` driven by the official MCP Python SDK. Set CONTINUUM_TEST_MCP_PYTHON to a
//! Python that has `mcp` installed (.ci/run installs it and sets the variable).

mod common;

use common::{request, serve};
use std::process::Command;

const PY_VAR: &str = "CONTINUUM_TEST_MCP_PYTHON";

fn python() -> Option<String> {
    match std::env::var(PY_VAR) {
        Ok(p) => Some(p),
        Err(_) => {
            eprintln!("skipping: {PY_VAR} is not set (a python with `pip install mcp`)");
            None
        }
    }
}

fn client() -> String {
    format!("{}/tests/mcp/client.py", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn an_unmodified_mcp_client_stores_recalls_and_forgets() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(&py)
        .arg(client())
        .arg(env!("CARGO_BIN_EXE_continuum"))
        .arg(d.path())
        .arg("scenario")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("OK"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    // Every tool call was metered by kind, and written when the server stopped.
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(d.path())
        .args(["usage", "--json"])
        .output()
        .unwrap();
    let usage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let day = &usage["days"][0];
    assert_eq!(day["tenant"], "default", "{usage}");
    assert_eq!(
        day["learn"], 5,
        "three memory_store, two memory_remember: {usage}"
    );
    assert_eq!(day["search"], 1, "{usage}");
    assert!(day["recall"].as_u64().unwrap() >= 3, "{usage}");
    assert!(
        day["other"].as_u64().unwrap() >= 5,
        "get, list, concept_graph, forget, stats: {usage}"
    );
}

#[test]
fn two_mcp_servers_on_one_data_dir_write_concurrently() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().unwrap();
    let children: Vec<_> = ["alpha", "beta"]
        .iter()
        .map(|name| {
            Command::new(&py)
                .arg(client())
                .arg(env!("CARGO_BIN_EXE_continuum"))
                .arg(d.path())
                .args(["writer", name, "25"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(d.path())
        .args(["concepts", "--json", "rust"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["concept"]["mentions"], 100,
        "every turn of both servers landed: {v}"
    );
    let tokio = v["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["key"] == "tokio")
        .unwrap();
    assert_eq!(tokio["count"], 50);
}

fn key(data_dir: &std::path::Path, tenant: &str, scope: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--tenant", tenant, "keys", "create", "--scope", scope])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn memories(data_dir: &std::path::Path, tenant: &str) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--tenant", tenant, "stats", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["memories"].as_u64().unwrap()
}

/// The status of an MCP `tools/list` over HTTP, with `extra_header` (e.g. a key).
fn status_of(url: &str, extra_header: &str) -> u16 {
    let headers = format!("Accept: application/json, text/event-stream\r\n{extra_header}");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    request(url, "POST", "/mcp", &headers, body).0
}

#[test]
fn the_same_client_works_over_http_with_the_tenant_from_the_key() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().unwrap();
    let acme = key(d.path(), "acme", "write");
    let reader = key(d.path(), "acme", "read");
    let (server, url) = serve(d.path());
    let out = Command::new(&py)
        .arg(client())
        .args(["--http", &format!("{url}/mcp"), &acme, "scenario"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let no_key = status_of(&url, "");
    let read_only = status_of(&url, &format!("X-API-Key: {reader}\r\n"));
    drop(server);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(
        memories(d.path(), "acme"),
        6,
        "the key's tenant received the memories"
    );
    assert_eq!(memories(d.path(), "default"), 0, "and no other tenant");
    assert_eq!(no_key, 401);
    assert_eq!(read_only, 403);
}
