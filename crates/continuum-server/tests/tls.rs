//! HTTPS on the API listener: a client that trusts the test CA connects and is answered; plain
//! HTTP to the TLS port gets no answer; a reloaded certificate is served to new connections
//! while a connection made before keeps working; a broken file keeps the old certificate.
//! The certificates are in tests/tls (see its README).

mod common;

use common::start_with;
use continuum_server::tls::Tls;
use continuum_server::{ConnectionLimits, ServerConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Conn = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

fn der(name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(fixture(name)).unwrap()
}

fn install(dir: &Path, which: &str) {
    std::fs::copy(
        fixture(&format!("server-{which}.pem")),
        dir.join("cert.pem"),
    )
    .unwrap();
    std::fs::copy(fixture(&format!("server-{which}.key")), dir.join("key.pem")).unwrap();
}

async fn connect(addr: &str) -> Conn {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der("ca.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

fn peer(c: &Conn) -> CertificateDer<'static> {
    c.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// Sends `GET /v1/health` on a kept-alive connection and returns the status line.
async fn health<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: &mut S) -> String {
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the head, then the body its Content-Length announces.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text.lines().next().unwrap().to_string();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_reloaded_without_dropping_connections_and_plain_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "a");
    let tls = Tls::load(dir.path().join("cert.pem"), dir.path().join("key.pem")).unwrap();
    let s = start_with(
        ServerConfig::default(),
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(5),
            tls: Some(tls.clone()),
            ..ConnectionLimits::default()
        },
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();

    let mut first = connect(&addr).await;
    assert_eq!(peer(&first), der("server-a.pem"));
    assert_eq!(health(&mut first).await, "HTTP/1.1 200 OK");

    // Plain HTTP to the TLS port is not answered.
    let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
    plain
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut buf)).await;
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "plain HTTP was answered"
    );

    // A renewed certificate: new connections get it; the first connection goes on.
    install(dir.path(), "b");
    tls.reload().unwrap();
    let mut second = connect(&addr).await;
    assert_eq!(peer(&second), der("server-b.pem"));
    assert_eq!(health(&mut second).await, "HTTP/1.1 200 OK");
    assert_eq!(health(&mut first).await, "HTTP/1.1 200 OK");

    // A broken renewal is refused, naming the file and never the key's contents, and the
    // certificate in use stays.
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let e = tls.reload().unwrap_err();
    assert!(e.contains("key.pem"), "{e}");
    let third = connect(&addr).await;
    assert_eq!(peer(&third), der("server-b.pem"));
    // A missing file at start is a clear error too.
    let e = Tls::load(dir.path().join("nope.pem"), dir.path().join("key.pem")).unwrap_err();
    assert!(e.contains("nope.pem"), "{e}");
}

/// Connects offering `alpn` (most preferred first).
async fn connect_offering(addr: &str, alpn: &[&[u8]]) -> Conn {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der("ca.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_spoken_to_clients_that_offer_it_and_http1_to_the_others() {
    use http_body_util::{BodyExt, Empty};
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "a");
    let tls = Tls::load(dir.path().join("cert.pem"), dir.path().join("key.pem")).unwrap();
    let s = start_with(
        ServerConfig::default(),
        ConnectionLimits {
            tls: Some(tls),
            ..ConnectionLimits::default()
        },
    )
    .await;
    let key = s.key("acme", continuum_core::keys::Scope::Read).await;
    let addr = s.base.trim_start_matches("http://").to_string();

    let h2 = connect_offering(&addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(h2),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // Several requests at once on the one connection.
    let mut pending = Vec::new();
    for _ in 0..5 {
        let req = hyper::Request::get(format!("https://{addr}/v1/stats"))
            .header("x-api-key", &key)
            .body(Empty::<hyper::body::Bytes>::new())
            .unwrap();
        pending.push(sender.send_request(req));
    }
    for p in pending {
        let r = p.await.unwrap();
        assert_eq!(r.version(), hyper::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["tenant_id"], "acme", "{v}");
    }

    // A client offering only HTTP/1.1 gets HTTP/1.1.
    let mut h1 = connect_offering(&addr, &[b"http/1.1"]).await;
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    h1.write_all(
        format!("GET /v1/health HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    h1.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}
