//! Shipping the audit log to a SIEM: every entry, in order, as an RFC 5424 syslog message
//! (or CEF inside one) over TCP or TLS (octet-counted framing, RFC 6587 / RFC 5425) or UDP
//! (one datagram per entry).
//!
//! The position shipped so far is a cursor in the store (`syslog`), saved after each entry:
//! entries written while the collector is down are sent when it is back, and a restart
//! resumes after the last entry sent. Before each entry the connection is checked (a
//! collector never writes to us, so a readable socket means it closed) and remade if needed,
//! so an entry is not written into a connection the collector already closed. Syslog has no
//! acknowledgement: an entry in flight when the collector dies, or the process between a write
//! and its cursor update, can be lost or sent twice; anything else arrives once.

type Result<T> = continuum_core::Result<T>;
use continuum_core::Error;
use continuum_core::keys::Caller;
use continuum_engine::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The cursor the shipper keeps in the store.
pub const CURSOR: &str = "syslog";
/// The largest UDP datagram sent (RFC 5426 asks receivers for at least 2048 bytes); longer
/// messages are cut.
pub const MAX_UDP_BYTES: usize = 2048;

/// This machine's name for the syslog HOSTNAME field (empty when unknown: the nil value).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Where and how entries are sent.
#[derive(Debug, Clone)]
pub struct SyslogTarget {
    pub transport: Transport,
    /// `host:port`.
    pub addr: String,
    /// CEF lines inside the syslog message instead of RFC 5424 structured data.
    pub cef: bool,
    /// For TLS: a PEM file of the CA to trust (default: the system's roots).
    pub ca: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
    Udp,
}

impl SyslogTarget {
    /// `tcp://host:port`, `tls://host:port` or `udp://host:port`.
    pub fn parse(url: &str, cef: bool, ca: Option<std::path::PathBuf>) -> Result<SyslogTarget> {
        let bad = || {
            Error::InvalidInput(format!(
                "'{url}' is not a syslog destination (tcp://HOST:PORT, tls://HOST:PORT or udp://HOST:PORT)"
            ))
        };
        let (scheme, addr) = url.trim().split_once("://").ok_or_else(bad)?;
        let transport = match scheme {
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            "udp" => Transport::Udp,
            _ => return Err(bad()),
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().is_err() || addr.contains('/') {
            return Err(bad());
        }
        Ok(SyslogTarget {
            transport,
            addr: addr.to_string(),
            cef,
            ca,
        })
    }

    fn host(&self) -> &str {
        self.addr
            .rsplit_once(':')
            .map_or(self.addr.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| {
                    Error::InvalidInput(format!("cannot read {}: {e}", path.display()))
                })? {
                    let cert = cert.map_err(|e| {
                        Error::InvalidInput(format!("{} is not PEM: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        Error::InvalidInput(format!("a CA in {} is refused: {e}", path.display()))
                    })?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        if roots.is_empty() {
            return Err(Error::InvalidInput(
                "no CA to trust for the syslog collector (give --audit-syslog-ca)".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Internal(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

enum Conn {
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
    Udp(tokio::net::UdpSocket),
}

impl Conn {
    /// Is the collector still there? It never writes to us: a socket with something to read
    /// (its close, or anything else) is given up.
    fn alive(&self) -> bool {
        let tcp = match self {
            Conn::Tcp(s) => s,
            Conn::Tls(s) => s.get_ref().0,
            Conn::Udp(_) => return true,
        };
        let mut probe = [0u8; 1];
        matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    async fn send(&mut self, message: &str) -> std::io::Result<()> {
        match self {
            Conn::Udp(s) => {
                let bytes = message.as_bytes();
                s.send(&bytes[..bytes.len().min(MAX_UDP_BYTES)]).await?;
                Ok(())
            }
            Conn::Tcp(s) => {
                let frame = format!("{} {message}", message.len());
                s.write_all(frame.as_bytes()).await?;
                s.flush().await
            }
            Conn::Tls(s) => {
                let frame = format!("{} {message}", message.len());
                s.write_all(frame.as_bytes()).await?;
                s.flush().await
            }
        }
    }
}

async fn connect(target: &SyslogTarget, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Conn> {
    let unreachable =
        |e: std::io::Error| Error::Unavailable(format!("syslog collector {}: {e}", target.addr));
    match target.transport {
        Transport::Udp => {
            let socket = tokio::net::UdpSocket::bind(if target.addr.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            })
            .await
            .map_err(unreachable)?;
            socket.connect(&target.addr).await.map_err(unreachable)?;
            Ok(Conn::Udp(socket))
        }
        Transport::Tcp | Transport::Tls => {
            let tcp = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::net::TcpStream::connect(&target.addr),
            )
            .await
            .map_err(|_| {
                Error::Unavailable(format!("syslog collector {}: timed out", target.addr))
            })?
            .map_err(unreachable)?;
            let _ = tcp.set_nodelay(true);
            if target.transport == Transport::Tcp {
                return Ok(Conn::Tcp(tcp));
            }
            let config = tls.expect("a TLS config for a TLS target").clone();
            let name = rustls::pki_types::ServerName::try_from(target.host().to_string()).map_err(
                |_| Error::InvalidInput(format!("'{}' is not a host name", target.host())),
            )?;
            let stream = tokio::time::timeout(
                Duration::from_secs(10),
                tokio_rustls::TlsConnector::from(config).connect(name, tcp),
            )
            .await
            .map_err(|_| {
                Error::Unavailable(format!("syslog collector {}: TLS timed out", target.addr))
            })?
            .map_err(|e| {
                Error::Unavailable(format!("syslog collector {}: TLS: {e}", target.addr))
            })?;
            Ok(Conn::Tls(Box::new(stream)))
        }
    }
}

/// Sends entries after the stored cursor until `stop`; reconnects (after a pause that grows
/// to 30 s) while the collector is away, never skipping an entry.
pub async fn run_shipper(
    engine: Engine,
    target: SyslogTarget,
    stop: continuum_engine::CancellationToken,
) -> std::result::Result<(), String> {
    let operator = Caller::local(continuum_core::TenantId::new("system").expect("a valid id"));
    let tls = match target.transport {
        Transport::Tls => Some(target.tls_config().map_err(|e| e.to_string())?),
        _ => None,
    };
    let host = host_name();
    let version = env!("CARGO_PKG_VERSION");
    let mut conn: Option<Conn> = None;
    let mut pause = Duration::from_millis(250);
    let mut shipped = engine
        .audit_cursor(operator.clone(), CURSOR)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let page = engine
            .audit_entries(operator.clone(), shipped, 500)
            .await
            .map_err(|e| e.to_string())?;
        if page.is_empty() {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
            }
        }
        for entry in &page {
            let view = entry.view().map_err(|e| e.to_string())?;
            let message = if target.cef {
                // CEF inside a syslog envelope, as collectors expect it.
                let cef = view.to_cef(version);
                let severity = if view.outcome == "ok" { 5 } else { 4 };
                format!(
                    "<{}>1 {} {} continuum - {} - {cef}",
                    10 * 8 + severity,
                    view.at,
                    if host.is_empty() { "-" } else { &host },
                    view.action
                )
            } else {
                view.to_syslog(&host)
            };
            loop {
                if stop.is_cancelled() {
                    return Ok(());
                }
                if conn.as_ref().is_some_and(|c| !c.alive()) {
                    conn = None;
                }
                if conn.is_none() {
                    match connect(&target, tls.as_ref()).await {
                        Ok(c) => {
                            tracing::info!(collector = %target.addr, "connected to the syslog collector");
                            conn = Some(c);
                            pause = Duration::from_millis(250);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "syslog collector unreachable; audit entries wait");
                            tokio::select! {
                                _ = stop.cancelled() => return Ok(()),
                                _ = tokio::time::sleep(pause) => {}
                            }
                            pause = (pause * 2).min(Duration::from_secs(30));
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().expect("connected above");
                match c.send(&message).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, seq = entry.seq, "sending to the syslog collector failed; reconnecting");
                        conn = None;
                    }
                }
            }
            shipped = entry.seq;
            engine
                .set_audit_cursor(operator.clone(), CURSOR, shipped)
                .await
                .map_err(|e| e.to_string())?;
            metrics::counter!(continuum_ops::metrics::AUDIT_SHIPPED).increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_and_nonsense_is_refused() {
        let t = SyslogTarget::parse("tls://logs.example.com:6514", false, None).unwrap();
        assert_eq!(
            (t.transport, t.addr.as_str(), t.host()),
            (Transport::Tls, "logs.example.com:6514", "logs.example.com")
        );
        assert_eq!(
            SyslogTarget::parse("udp://[::1]:514", true, None)
                .unwrap()
                .host(),
            "::1"
        );
        for bad in [
            "logs:514",
            "http://logs:514",
            "tcp://logs",
            "tcp://:514",
            "tcp://logs:99999",
            "tcp://logs:514/x",
        ] {
            assert!(SyslogTarget::parse(bad, false, None).is_err(), "{bad}");
        }
    }
}
