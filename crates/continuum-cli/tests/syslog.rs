//! Audit entries shipped to a syslog collector on loopback, over TCP and over TLS: RFC 5424
//! messages in octet-counted frames, parsed here; the collector stopped while entries are
//! written and started again, and the server restarted: every entry arrives exactly once.

mod common;

use common::{cli, serve_with};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../continuum-server/tests/tls")
        .join(name)
}

/// A collector on its own runtime and thread; stopping it closes its listener and every
/// connection it holds.
struct Collector {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    fn start(
        port: u16,
        tls: Option<Arc<continuum_server::tls::Tls>>,
        got: Arc<Mutex<Vec<String>>>,
    ) -> Collector {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, bound) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .unwrap();
                ready.send(listener.local_addr().unwrap().port()).unwrap();
                let mut stopped = stopped;
                loop {
                    let (tcp, _) = tokio::select! {
                        _ = &mut stopped => return,
                        c = listener.accept() => c.unwrap(),
                    };
                    let got = got.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            Some(t) => {
                                if let Ok(s) = t.acceptor().accept(tcp).await {
                                    read_frames(s, got).await
                                }
                            }
                            None => read_frames(tcp, got).await,
                        }
                    });
                }
            });
            // Dropping the runtime drops every connection task: the sockets close.
            drop(rt);
        });
        let port = bound.recv_timeout(Duration::from_secs(10)).unwrap();
        Collector {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads `LEN SP MSG` frames (RFC 6587 octet counting) until the connection ends.
async fn read_frames(mut s: impl tokio::io::AsyncRead + Unpin, got: Arc<Mutex<Vec<String>>>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while let Some(space) = buf.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..space])
                .unwrap()
                .parse()
                .expect("a frame starts with its length");
            if buf.len() < space + 1 + len {
                break;
            }
            let msg = String::from_utf8(buf[space + 1..space + 1 + len].to_vec()).unwrap();
            got.lock().unwrap().push(msg);
            buf.drain(..space + 1 + len);
        }
    }
}

/// The audit position of each message, checking its RFC 5424 shape on the way.
fn seqs(got: &Mutex<Vec<String>>) -> Vec<u64> {
    got.lock()
        .unwrap()
        .iter()
        .map(|m| {
            // <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG
            let (pri, rest) = m.split_once(">1 ").expect("<PRI>1 ");
            let pri: u32 = pri.trim_start_matches('<').parse().unwrap();
            assert!(pri == 84 || pri == 85, "facility authpriv: {m}");
            let fields: Vec<&str> = rest.splitn(6, ' ').collect();
            assert_eq!(fields[2], "continuum", "{m}");
            assert!(fields[5].starts_with("[continuum@32473 seq=\""), "{m}");
            let seq = fields[5]["[continuum@32473 seq=\"".len()..]
                .split('"')
                .next()
                .unwrap();
            seq.parse().unwrap()
        })
        .collect()
}

fn wait_for(got: &Mutex<Vec<String>>, n: usize, log: impl Fn() -> String) {
    let started = Instant::now();
    while got.lock().unwrap().len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {n} messages arrived: {:?}\n{}",
            got.lock().unwrap().len(),
            got.lock().unwrap(),
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn keys(dir: &Path, n: usize) {
    for i in 0..n {
        cli(dir, &["--tenant", &format!("t{i}"), "keys", "create"]);
    }
}

fn term(server: &mut common::Server) {
    std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    while server.child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ships_everything_once(scheme: &str, tls: Option<Arc<continuum_server::tls::Tls>>) {
    let dir = tempfile::tempdir().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut collector = Collector::start(0, tls.clone(), got.clone());
    let port = collector.port;
    let target = format!("{scheme}://localhost:{port}");
    let ca = fixture("ca.pem");
    let mut args = vec!["--audit-syslog", target.as_str()];
    if scheme == "tls" {
        args.extend(["--audit-syslog-ca", ca.to_str().unwrap()]);
    }
    let (mut server, _) = serve_with(dir.path(), &[], &args);
    keys(dir.path(), 3);
    wait_for(&got, 4, || server.log());
    assert_eq!(
        seqs(&got),
        vec![1, 2, 3, 4],
        "server.started, then three keys"
    );

    // The collector goes away; entries are written meanwhile; it comes back on its port.
    collector.stop();
    keys(dir.path(), 3);
    std::thread::sleep(Duration::from_millis(500));
    let _collector = Collector::start(port, tls, got.clone());
    wait_for(&got, 7, || server.log());

    // The server restarts: it resumes after the last entry it sent.
    term(&mut server);
    let (server, _) = serve_with(dir.path(), &[], &args);
    keys(dir.path(), 1);
    wait_for(&got, 9, || server.log());
    std::thread::sleep(Duration::from_millis(300));
    let got_seqs = seqs(&got);
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for s in &got_seqs {
        *counts.entry(*s).or_default() += 1;
    }
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        (1..=9).map(|s| (s, 1)).collect::<Vec<_>>(),
        "every entry once, in order: {got_seqs:?}"
    );
    assert_eq!(got_seqs, (1..=9).collect::<Vec<_>>());
    let text = got.lock().unwrap().join("\n");
    assert!(text.contains("key.created") && text.contains("server.started"));
}

#[test]
fn audit_entries_reach_a_tcp_collector_once_each_across_its_outage_and_a_restart() {
    ships_everything_once("tcp", None);
}

#[test]
fn audit_entries_reach_a_tls_collector_that_the_configured_ca_vouches_for() {
    let tls =
        continuum_server::tls::Tls::load(fixture("server-a.pem"), fixture("server-a.key")).unwrap();
    ships_everything_once("tls", Some(tls));
}
