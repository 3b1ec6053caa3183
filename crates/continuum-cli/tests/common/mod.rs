//! Helpers shared by the test files that run `continuum serve`.
#![allow(dead_code)]

use std::process::Command;

pub mod pg;

/// Runs `continuum --data-dir DIR ARGS…` (no inherited CONTINUUM_* selection) and returns
/// its standard output; panics with its standard error on failure.
pub fn cli(data_dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CONTINUUM_DATA_DIR")
        .env_remove("CONTINUUM_TENANT")
        .env_remove("CONTINUUM_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "continuum {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `continuum --data-dir DIR ARGS…` with `env` set and no inherited store, tenant,
/// configuration, sync or backup selection.
pub fn continuum(
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_continuum"));
    cmd.arg("--data-dir").arg(data_dir).args(args);
    for var in [
        "CONTINUUM_STORE",
        "CONTINUUM_TENANT",
        "CONTINUUM_CONFIG",
        "CONTINUUM_REMOTE",
        "CONTINUUM_REMOTE_KEY",
        "CONTINUUM_BACKUP_DEST",
        "CONTINUUM_BACKUP_PASSPHRASE",
        "CONTINUUM_BACKUP_SCHEDULE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// [`continuum`], which must succeed; its standard output.
pub fn ok(data_dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = continuum(data_dir, args, env);
    assert!(
        out.status.success(),
        "continuum {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// [`ok`] with `--json`, parsed.
pub fn json(data_dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let args = [&["--json"], args].concat();
    let text = ok(data_dir, &args, env);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// [`continuum`], which must fail with exit code `code`; its standard error.
pub fn fails(data_dir: &std::path::Path, args: &[&str], env: &[(&str, &str)], code: i32) -> String {
    let out = continuum(data_dir, args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "continuum {args:?}: {stderr}"
    );
    stderr
}

/// The address of the metrics listener a server logged (`--metrics-bind`), without `/metrics`.
pub fn metrics_url(server: &Server) -> String {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("metrics on"))
        .expect("the metrics address is logged")
        .to_string();
    url_in(&line, "http://")
        .trim_end_matches("/metrics")
        .to_string()
}

/// A running `continuum serve`, stopped when dropped (also when a test fails midway).
pub struct Server {
    pub child: std::process::Child,
    /// Everything the server wrote to standard error so far (a thread keeps reading it, so
    /// the server never blocks on a full pipe).
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `continuum serve` on a free port; returns the server and its base URL.
pub fn serve(data_dir: &std::path::Path) -> (Server, String) {
    serve_with(data_dir, &[], &[])
}

/// `continuum [global...] serve --bind 127.0.0.1:0 [serve_args...]`; returns the server and the
/// base URL from its "listening on" line.
pub fn serve_with(
    data_dir: &std::path::Path,
    global: &[&str],
    serve_args: &[&str],
) -> (Server, String) {
    serve_with_env(data_dir, global, serve_args, &[])
}

/// [`serve_with`], with `env` set for the server.
pub fn serve_with_env(
    data_dir: &std::path::Path,
    global: &[&str],
    serve_args: &[&str],
    env: &[(&str, &str)],
) -> (Server, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(global)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(serve_args)
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
            if line.contains("listening on")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the server did not start: {}", log.lock().unwrap()));
    let scheme = if line.contains("https://") {
        "https://"
    } else {
        "http://"
    };
    let url = url_in(&line, scheme);
    (Server { child, log }, url)
}

/// The first word of `line` starting with `scheme`, without trailing punctuation.
pub fn url_in(line: &str, scheme: &str) -> String {
    let start = line
        .find(scheme)
        .unwrap_or_else(|| panic!("no {scheme} address in {line:?}"));
    line[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .next()
        .unwrap()
        .to_string()
}

/// Sends one HTTP/1.1 request (closing the connection) and returns the status code and body.
pub fn request(url: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let (status, _, body) = request_full(url, method, path, headers, body);
    (status, body)
}

/// Like [`request`], with the response's header block too (lower-cased names).
pub fn request_full(
    url: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {out:?}"));
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((out.as_str(), ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}
