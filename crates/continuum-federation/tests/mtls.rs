//! Mutual TLS between federation nodes on a loopback port: a member's certificate is accepted
//! and names its node; no certificate, a certificate from another CA, and a revoked node are
//! refused during the handshake.

use continuum_federation::NodeKey;
use continuum_federation::pki::{self, Authority, Revocations};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::ServerName;

/// A hub that answers each connection with the node the handshake proved, then closes.
async fn hub(config: Arc<rustls::ServerConfig>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let who = pki::peer_node(tls.get_ref().1)
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "anonymous".into());
                    let _ = tls.write_all(format!("hello {who}\n").as_bytes()).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

/// What the hub says to a client with this configuration, or the error.
async fn greet(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<String, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    // In TLS 1.3 the server's verdict on the client certificate arrives after the client's
    // side of the handshake: read to see it.
    let mut out = String::new();
    tls.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    if out.is_empty() {
        return Err("closed without a word".into());
    }
    Ok(out)
}

#[tokio::test]
async fn members_get_in_and_everyone_else_is_refused_at_the_handshake() {
    let now = SystemTime::now();
    let ca = Authority::create("test", NodeKey::generate().unwrap(), now).unwrap();
    let hub_key = NodeKey::generate().unwrap();
    let hub_cert = ca
        .issue(
            &hub_key.public(),
            &["localhost".into(), "127.0.0.1".into()],
            30,
            now,
        )
        .unwrap();
    let (a, b) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
    let a_cert = ca.issue(&a.public(), &[], 30, now).unwrap();
    let b_cert = ca.issue(&b.public(), &[], 30, now).unwrap();
    // Another CA, made the same way: its certificates mean nothing here.
    let other = Authority::create("other", NodeKey::generate().unwrap(), now).unwrap();
    let c = NodeKey::generate().unwrap();
    let c_cert = other.issue(&c.public(), &[], 30, now).unwrap();

    let revoked = Revocations::new([]);
    let strict =
        hub(
            pki::server_config(ca.cert_pem(), &hub_cert, &hub_key, revoked.clone(), false).unwrap(),
        )
        .await;
    let open =
        hub(pki::server_config(ca.cert_pem(), &hub_cert, &hub_key, revoked.clone(), true).unwrap())
            .await;

    let member =
        |cert: &str, key: &NodeKey| pki::client_config(ca.cert_pem(), Some((cert, key))).unwrap();
    assert_eq!(
        greet(strict, member(&a_cert, &a)).await.unwrap(),
        format!("hello {}\n", a.id())
    );
    assert_eq!(
        greet(strict, member(&b_cert, &b)).await.unwrap(),
        format!("hello {}\n", b.id())
    );

    // No certificate: refused, except where anonymous joining is allowed (and then unnamed).
    let anonymous = pki::client_config(ca.cert_pem(), None).unwrap();
    let e = greet(strict, anonymous.clone()).await.unwrap_err();
    assert!(e.contains("CertificateRequired"), "no certificate: {e}");
    assert_eq!(greet(open, anonymous).await.unwrap(), "hello anonymous\n");

    // A certificate from another CA (the client trusts our hub, but is not one of ours).
    let foreign = pki::client_config(ca.cert_pem(), Some((&c_cert, &c))).unwrap();
    let e = greet(strict, foreign.clone()).await.unwrap_err();
    assert!(e.contains("UnknownCA"), "another CA: {e}");
    assert!(
        greet(open, foreign).await.is_err(),
        "a bad certificate is refused even where anonymous is allowed"
    );

    // A revoked node, from its next handshake on; the others go on.
    revoked.revoke(a.id().clone());
    let e = greet(strict, member(&a_cert, &a)).await.unwrap_err();
    assert!(e.contains("CertificateRevoked"), "revoked: {e}");
    assert!(greet(open, member(&a_cert, &a)).await.is_err());
    assert_eq!(
        greet(strict, member(&b_cert, &b)).await.unwrap(),
        format!("hello {}\n", b.id())
    );

    // A client that does not trust this federation's CA refuses the hub.
    let wary = pki::client_config(other.cert_pem(), Some((&c_cert, &c))).unwrap();
    assert!(greet(strict, wary).await.is_err());
}
