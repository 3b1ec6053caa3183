//! `serve --tls-cert --tls-key`: the listener speaks HTTPS (its handshakes are tested in
//! continuum-server's tests/tls.rs), refuses plain HTTP, and re-reads its certificate on
//! SIGHUP; a broken certificate at start is a clear error.

mod common;

use common::serve_with;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../continuum-server/tests/tls")
        .join(name)
}

#[test]
fn serve_speaks_https_and_reloads_its_certificate_on_sighup() {
    let d = tempfile::tempdir().unwrap();
    let (cert, key) = (d.path().join("cert.pem"), d.path().join("key.pem"));
    std::fs::copy(fixture("server-a.pem"), &cert).unwrap();
    std::fs::copy(fixture("server-a.key"), &key).unwrap();
    let data = d.path().join("data");
    let (server, url) = serve_with(
        &data,
        &[],
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(url.starts_with("https://"), "{url}");

    // Plain HTTP to it gets no answer.
    let addr = url.trim_start_matches("https://");
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));

    // A renewed certificate is taken on SIGHUP.
    std::fs::copy(fixture("server-b.pem"), &cert).unwrap();
    std::fs::copy(fixture("server-b.key"), &key).unwrap();
    Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    while !server.log().contains("TLS certificate reloaded") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no reload: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);

    // A key that does not match or parse stops the start with the file named.
    std::fs::write(&key, "not a key").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--bind", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key.pem") && !err.contains("not a key"),
        "{err}"
    );
}
