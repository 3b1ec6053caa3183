//! A member node: joining a hub, contributing what its tenants share, querying the pool.
//!
//! Files in the data directory's `federation/` folder: `node.key` (mode 0600), `node.pem`
//! (its certificate), `ca.pem` (the federation's CA), `hub.json` (where the hub is and its
//! key) and `state.json` (which tenants share, and how far each has contributed).

use crate::Error;
use crate::access::{Ledger, Tier};
use crate::anonymise::{Anonymiser, Verdict};
use crate::envelope::{MessageType, Sealed, Verifier};
use crate::files;
use crate::identity::{NodeId, NodeKey, hex};
use crate::membership::JoinToken;
use crate::pki;
use crate::wire::*;
use base64::Engine as _;
use continuum_core::keys::Caller;
use continuum_core::memory::Source;
use continuum_core::{Event, TenantId};
use continuum_engine::Engine;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::identity::now_ms;

/// The hub this node joined.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HubInfo {
    pub url: String,
    pub hub: NodeId,
    pub hub_key: String,
    pub node: NodeId,
    pub tier: Tier,
    pub joined_at: i64,
    /// Names this node's certificate carries (asked for again at renewal).
    #[serde(default)]
    pub names: Vec<String>,
}

/// What this node keeps between runs.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct NodeState {
    /// Tenants that share (opt-in).
    pub sharing: BTreeSet<String>,
    /// Per tenant: the event position contributed through.
    pub cursors: BTreeMap<String, u64>,
    pub last_contribution_at: Option<i64>,
    pub last_error: Option<String>,
    /// Where this node's copy of the pool stands (`federation sync`).
    #[serde(default)]
    pub pool: PoolCursor,
    /// Pooled items copied into this node's store so far.
    #[serde(default)]
    pub pool_items: u64,
    #[serde(default)]
    pub last_sync_at: Option<i64>,
    #[serde(default)]
    pub last_renewal_at: Option<i64>,
}

/// The tenant of a member node's store that holds its copy of the pool (`federation sync`),
/// searched by `federation query --local`.
pub const LOCAL_POOL_TENANT: &str = "federation-pool";

fn key_path(dir: &Path) -> PathBuf {
    dir.join("node.key")
}
fn hub_path(dir: &Path) -> PathBuf {
    dir.join("hub.json")
}
fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Accepts the hub's certificate only if it chains to the CA the join token names: the CA
/// travels after the hub's certificate, and its SHA-256 must be the token's fingerprint.
#[derive(Debug)]
struct PinnedCa {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use sha2::Digest;
        let ca = intermediates
            .iter()
            .find(|c| hex(&sha2::Sha256::digest(c.as_ref())) == self.fingerprint)
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn http(config: rustls::ClientConfig) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Internal(format!("the HTTP client: {e}")))
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

fn check_url(url: &str) -> Result<String, Error> {
    let url = url.trim_end_matches('/');
    if !url.starts_with("https://") || url.len() > 300 || url.contains('@') {
        return Err(Error::Malformed(
            "the hub's federation address is https://HOST:PORT (no credentials)".into(),
        ));
    }
    Ok(url.to_string())
}

async fn refusal(resp: reqwest::Response) -> Error {
    let status = resp.status();
    match resp.json::<Refused>().await {
        Ok(r) => Error::Refused {
            reason: r.reason,
            message: r.message,
        },
        Err(_) => Error::Unavailable(format!("the hub answered {status}")),
    }
}

/// Joins the hub at `url` with `token` (its text): makes this node's key, proves it, and keeps
/// the certificate the hub's CA issues. `names`: names this node accepts connections under.
pub async fn join(dir: &Path, url: &str, token: &str, names: &[String]) -> Result<HubInfo, Error> {
    let url = check_url(url)?;
    if key_path(dir).exists() {
        return Err(Error::Malformed(format!(
            "{} already holds a federation node identity (this node joined before)",
            dir.display()
        )));
    }
    let parsed = JoinToken::parse(token)?;
    let key = NodeKey::generate()?;
    let public_key = hex(key.public().as_bytes());
    let proof = base64::engine::general_purpose::STANDARD.encode(
        key.sign(JoinRequest::proof_text(token.trim(), &public_key).as_bytes())
            .to_bytes(),
    );
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Internal(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa {
            fingerprint: parsed.ca_fingerprint.clone(),
            provider,
        }))
        .with_no_client_auth();
    let resp = http(config)?
        .post(format!("{url}/federation/v1/join"))
        .json(&JoinRequest {
            token: token.trim().to_string(),
            public_key,
            names: names.to_vec(),
            proof,
        })
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("reaching the hub at {url}: {}", chain(&e))))?;
    if !resp.status().is_success() {
        return Err(refusal(resp).await);
    }
    let r: JoinResponse = resp
        .json()
        .await
        .map_err(|e| Error::Malformed(format!("the hub's answer: {e}")))?;
    if pki::fingerprint(&r.ca)? != parsed.ca_fingerprint {
        return Err(Error::Malformed(
            "the hub sent another CA than the token names".into(),
        ));
    }
    let (certified, _) =
        pki::node_of_certificate(pki::first_certificate(&r.certificate)?.as_ref())?;
    if certified != *key.id() || r.node != *key.id() {
        return Err(Error::Malformed(
            "the certificate the hub issued is not for this node's key".into(),
        ));
    }
    let info = HubInfo {
        url,
        hub: r.hub,
        hub_key: r.hub_key,
        node: key.id().clone(),
        tier: r.tier,
        joined_at: now_ms(),
        names: names.to_vec(),
    };
    files::write_atomic(&dir.join("ca.pem"), r.ca.as_bytes(), false)?;
    files::write_atomic(&dir.join("node.pem"), r.certificate.as_bytes(), false)?;
    files::write_atomic(
        &hub_path(dir),
        &serde_json::to_vec_pretty(&info).map_err(|e| Error::Internal(e.to_string()))?,
        false,
    )?;
    files::write_key(&key_path(dir), &key)?;
    Ok(info)
}

/// Turns sharing on or off for a tenant (off by default).
pub fn share(dir: &Path, tenant: &TenantId, on: bool) -> Result<(), Error> {
    files::update(&state_path(dir), |s: &mut NodeState| {
        if on {
            s.sharing.insert(tenant.as_str().to_string());
        } else {
            s.sharing.remove(tenant.as_str());
        }
        Ok(())
    })
}

/// Records the last error of a background contribution (shown by `status`).
pub fn note_error(dir: &Path, error: Option<String>) -> Result<(), Error> {
    files::update(&state_path(dir), |s: &mut NodeState| {
        s.last_error = error;
        Ok(())
    })
}

/// Whether this data directory's node joined a federation.
pub fn joined(dir: &Path) -> bool {
    hub_path(dir).exists()
}

/// This node's state as kept.
pub fn state(dir: &Path) -> Result<NodeState, Error> {
    files::load(&state_path(dir))
}

/// What one `contribute` did for a tenant.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Contributed {
    pub tenant: String,
    /// Items sent (after this node's anonymiser).
    pub sent: u64,
    /// Items the hub took into the pool.
    pub accepted: u64,
    /// Items held back here (the anonymiser could not clean them) or refused by the hub.
    pub withheld: u64,
    pub refused_by_hub: u64,
    /// The event position contributed through now.
    pub through: u64,
    pub ledger: Option<Ledger>,
}

/// What one `sync` copied from the pool.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Synced {
    /// Items the hub delivered.
    pub received: u64,
    /// Items stored in this node's copy now.
    pub stored: u64,
    /// Items this copy held already (delivered again after an interruption).
    pub duplicates: u64,
    /// Items in this node's copy of the pool in all.
    pub pool_items: u64,
    pub cursor: PoolCursor,
    pub ledger: Option<Ledger>,
    /// Why the copy stopped before the pool's end, when it did (the contribution ratio).
    pub stopped: Option<String>,
}

/// A joined node, ready to talk to its hub.
pub struct Node {
    dir: PathBuf,
    info: HubInfo,
    key: NodeKey,
    hub_key: ed25519_dalek::VerifyingKey,
    client: reqwest::Client,
    verifier: Verifier,
    certificate_expires_at: i64,
    certificate_valid_from: i64,
}

impl Node {
    pub fn open(dir: &Path) -> Result<Node, Error> {
        if !hub_path(dir).exists() {
            return Err(Error::Malformed(
                "this node has not joined a federation (run `continuum federation join HUB_URL TOKEN`)"
                    .into(),
            ));
        }
        let info: HubInfo = serde_json::from_str(&files::read(&hub_path(dir))?)
            .map_err(|e| Error::Malformed(format!("hub.json is damaged: {e}")))?;
        let key = files::read_key(&key_path(dir))?;
        let cert = files::read(&dir.join("node.pem"))?;
        let ca = files::read(&dir.join("ca.pem"))?;
        let hub_key = crate::identity::public_key_from_hex(&info.hub_key)
            .ok_or_else(|| Error::Malformed("hub.json holds no valid hub key".into()))?;
        let config = Arc::unwrap_or_clone(pki::client_config(&ca, Some((&cert, &key)))?);
        Ok(Node {
            dir: dir.to_path_buf(),
            info,
            key,
            hub_key,
            client: http(config)?,
            verifier: Verifier::default(),
            certificate_expires_at: pki::not_after(&cert)?,
            certificate_valid_from: pki::validity(&cert)?.0,
        })
    }

    /// Whether this node's certificate is due for renewal now ([`pki::renewal_due`]).
    pub fn renewal_due(&self) -> bool {
        pki::renewal_due(
            self.certificate_valid_from,
            self.certificate_expires_at,
            now_ms(),
        )
    }

    /// Asks the hub for a new certificate for this node's key, over the current one (which
    /// must still be valid: an expired node joins again with a new token), and keeps it.
    /// Returns when the new one expires. The next [`Node::open`] uses it.
    pub async fn renew(&self) -> Result<i64, Error> {
        let r: Renewed = self
            .send(
                MessageType::Hello,
                serde_json::to_value(Hello {
                    renew: Some(Renew {
                        names: self.info.names.clone(),
                    }),
                })
                .map_err(|e| Error::Internal(e.to_string()))?,
            )
            .await?;
        let (certified, _) =
            pki::node_of_certificate(pki::first_certificate(&r.certificate)?.as_ref())?;
        if certified != *self.key.id() {
            return Err(Error::Malformed(
                "the certificate the hub issued is not for this node's key".into(),
            ));
        }
        // The answer is signed by the hub's key (checked in `send`): the certificate is the
        // hub's word, as the one it replaces was.
        let not_after = pki::not_after(&r.certificate)?;
        files::write_atomic(&self.dir.join("node.pem"), r.certificate.as_bytes(), false)?;
        files::update(&state_path(&self.dir), |s: &mut NodeState| {
            s.last_renewal_at = Some(now_ms());
            Ok(())
        })?;
        Ok(not_after)
    }

    /// Copies the pool's new items into this node's store (tenant [`LOCAL_POOL_TENANT`]), page
    /// by page from where the last copy stopped: each pooled item is stored once (keyed by
    /// its id in the pool), however often it is delivered. Each delivered item counts as
    /// consumed in this node's ledger; the copy stops, keeping what it has, when the
    /// contribution ratio allows no more.
    pub async fn sync(&self, engine: &Engine) -> Result<Synced, Error> {
        let tenant =
            TenantId::new(LOCAL_POOL_TENANT).map_err(|e| Error::Internal(e.to_string()))?;
        let caller = Caller::local(tenant);
        let mut out = Synced {
            cursor: state(&self.dir)?.pool,
            ..Default::default()
        };
        loop {
            let reply: Result<SyncReply, Error> = self
                .send(
                    MessageType::Sync,
                    serde_json::to_value(SyncRequest {
                        cursor: out.cursor.clone(),
                        limit: Some(MAX_SYNC_ITEMS),
                    })
                    .map_err(|e| Error::Internal(e.to_string()))?,
                )
                .await;
            let reply = match reply {
                Ok(r) => r,
                // Refused by the ratio after some pages: keep what was copied.
                Err(Error::Refused { reason, message })
                    if reason == "contribute_first" && out.received > 0 =>
                {
                    out.stopped = Some(message);
                    break;
                }
                Err(e) => return Err(e),
            };
            out.received += reply.items.len() as u64;
            let texts: Vec<_> = reply
                .items
                .into_iter()
                .filter(|i| !i.text.trim().is_empty() && i.text.len() <= MAX_ITEM_BYTES)
                .map(|i| {
                    let mut req = continuum_engine::RememberRequest::new(i.text, Source::Fact);
                    req.metadata
                        .insert("node".into(), serde_json::Value::String(i.node));
                    req.metadata
                        .insert("pool_item".into(), serde_json::Value::String(i.id.clone()));
                    (req, format!("pool:{}", i.id))
                })
                .collect();
            let mut page_stored = 0u64;
            if !texts.is_empty() {
                let stored = engine
                    .remember_keyed(&caller, texts)
                    .await
                    .map_err(|e| Error::Internal(format!("storing pooled items: {e}")))?;
                page_stored = stored.stored.len() as u64;
                out.stored += page_stored;
                out.duplicates += stored.skipped;
            }
            out.ledger = Some(reply.ledger);
            let progressed = reply.cursor != out.cursor;
            out.cursor = reply.cursor;
            let cursor = out.cursor.clone();
            out.pool_items = files::update(&state_path(&self.dir), |s: &mut NodeState| {
                s.pool = cursor;
                s.pool_items += page_stored;
                s.last_sync_at = Some(now_ms());
                Ok(s.pool_items)
            })?;
            if !reply.more || !progressed {
                break;
            }
        }
        Ok(out)
    }

    pub fn info(&self) -> &HubInfo {
        &self.info
    }

    /// Checks a grant the hub reports for this node against the federation CA's key (from
    /// this node's copy of the CA certificate): the grant's end, or why it does not hold.
    pub fn verify_grant(&self, g: &crate::access::SignedGrant) -> Result<i64, String> {
        let ca = files::read(&self.dir.join("ca.pem")).map_err(|e| e.to_string())?;
        let der = pki::first_certificate(&ca).map_err(|e| e.to_string())?;
        let (_, ca_key) = pki::node_of_certificate(der.as_ref()).map_err(|e| e.to_string())?;
        g.verify(&ca_key, &self.info.node, now_ms())
            .map(|g| g.expires_at)
    }

    /// Sets where `tenant`'s next contribution starts (an event position): later, to share
    /// only what comes after; earlier, to send again (the hub applies nothing twice).
    pub fn set_cursor(&self, tenant: &TenantId, since: u64) -> Result<(), Error> {
        files::update(&state_path(&self.dir), |s: &mut NodeState| {
            s.cursors.insert(tenant.as_str().to_string(), since);
            Ok(())
        })
    }

    /// When this node's certificate expires (Unix milliseconds).
    pub fn certificate_expires_at(&self) -> i64 {
        self.certificate_expires_at
    }

    /// Sends a sealed message and opens the hub's sealed reply.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        kind: MessageType,
        body: serde_json::Value,
    ) -> Result<T, Error> {
        let sealed = Sealed::seal(&self.key, kind, body, now_ms())?;
        let url = format!("{}/federation/v1/message", self.info.url);
        let resp = self
            .client
            .post(&url)
            .body(sealed.to_bytes())
            .send()
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "reaching the hub at {}: {}",
                    self.info.url,
                    chain(&e)
                ))
            })?;
        if !resp.status().is_success() {
            return Err(refusal(resp).await);
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Unavailable(format!("reading the hub's answer: {e}")))?;
        let hub = self.info.hub.clone();
        let e = self
            .verifier
            .open(
                &bytes,
                |id| (*id == hub).then_some(self.hub_key),
                None,
                now_ms(),
            )
            .map_err(|r| Error::Malformed(format!("the hub's answer: {r}")))?;
        serde_json::from_value(e.body)
            .map_err(|e| Error::Malformed(format!("the hub's answer: {e}")))
    }

    /// Seals a message from this node at `at_ms` without sending it (diagnostics and tests:
    /// what [`Node::post`] sends as it is).
    pub fn seal(
        &self,
        kind: MessageType,
        body: serde_json::Value,
        at_ms: i64,
    ) -> Result<Sealed, Error> {
        Sealed::seal(&self.key, kind, body, at_ms)
    }

    /// Posts bytes as a message over this node's mutual TLS connection; the hub's status and
    /// body as they are.
    pub async fn post(&self, bytes: Vec<u8>) -> Result<(u16, Vec<u8>), Error> {
        let resp = self
            .client
            .post(format!("{}/federation/v1/message", self.info.url))
            .body(bytes)
            .send()
            .await
            .map_err(|e| Error::Unavailable(chain(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::Unavailable(chain(&e)))?;
        Ok((status, body.to_vec()))
    }

    /// Where this node stands with the hub.
    pub async fn standing(&self) -> Result<Standing, Error> {
        self.send(MessageType::Heartbeat, serde_json::json!({}))
            .await
    }

    /// Recall over the pool.
    pub async fn query(&self, q: &str, limit: usize) -> Result<QueryReply, Error> {
        self.send(
            MessageType::Query,
            serde_json::to_value(Query {
                q: q.to_string(),
                limit: Some(limit),
            })
            .map_err(|e| Error::Internal(e.to_string()))?,
        )
        .await
    }

    /// Sends what `tenant` learned since its last contribution: decisions and fact, note and
    /// document memories (never conversation turns), each through the anonymiser with the
    /// tenant's and the memory's session ids. The cursor moves only once the hub acknowledged.
    pub async fn contribute(
        &self,
        engine: &Engine,
        tenant: &TenantId,
    ) -> Result<Contributed, Error> {
        let st = state(&self.dir)?;
        if !st.sharing.contains(tenant.as_str()) {
            return Err(Error::Malformed(format!(
                "tenant '{tenant}' does not share (turn it on with `continuum --tenant {tenant} federation share on`)"
            )));
        }
        let mut out = Contributed {
            tenant: tenant.to_string(),
            through: st.cursors.get(tenant.as_str()).copied().unwrap_or(0),
            ..Default::default()
        };
        let caller = Caller::local(tenant.clone());
        loop {
            let page = engine
                .events(&caller, out.through, MAX_ITEMS)
                .await
                .map_err(|e| Error::Internal(format!("reading events: {e}")))?;
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            let mut items = Vec::new();
            for r in &page {
                let (text, session) = match &r.event {
                    Event::DecisionCreated {
                        decision: Some(d), ..
                    } => (d.text.clone(), None),
                    Event::MemoryCreated {
                        memory: Some(m), ..
                    } if matches!(m.source, Source::Fact | Source::Note | Source::Document) => (
                        m.content.clone(),
                        m.session.as_ref().map(|s| s.as_str().to_string()),
                    ),
                    _ => continue,
                };
                let known = std::iter::once(tenant.as_str().to_string()).chain(session);
                match Anonymiser::new(known).clean(&text) {
                    Verdict::Kept(t) | Verdict::Cleaned { text: t, .. } => {
                        items.push(Item::Fact { text: t })
                    }
                    Verdict::Refused(_) => out.withheld += 1,
                }
            }
            // A page is at most MAX_ITEMS events, so one contribution, through its end.
            if !items.is_empty() {
                let sent = items.len() as u64;
                let reply: ContributionReply = self
                    .send(
                        MessageType::Contribute,
                        serde_json::to_value(Contribution {
                            through: last,
                            items,
                        })
                        .map_err(|e| Error::Internal(e.to_string()))?,
                    )
                    .await?;
                out.sent += sent;
                out.accepted += reply.accepted;
                out.refused_by_hub += reply.refused;
                out.ledger = Some(reply.ledger);
            }
            out.through = last;
            files::update(&state_path(&self.dir), |s: &mut NodeState| {
                s.cursors.insert(tenant.as_str().to_string(), last);
                s.last_contribution_at = Some(now_ms());
                s.last_error = None;
                Ok(())
            })?;
        }
        Ok(out)
    }
}

/// Search over this node's copy of the pool (what `federation sync` brought), without the
/// hub: each hit names the contributing node.
pub async fn query_local(engine: &Engine, q: &str, limit: usize) -> Result<Vec<QueryHit>, Error> {
    if q.trim().is_empty() || q.len() > MAX_QUERY_BYTES || limit == 0 || limit > MAX_RESULTS {
        return Err(Error::Malformed(format!(
            "a query is 1 to {MAX_QUERY_BYTES} bytes, for 1 to {MAX_RESULTS} results"
        )));
    }
    let tenant = TenantId::new(LOCAL_POOL_TENANT).map_err(|e| Error::Internal(e.to_string()))?;
    let req = continuum_engine::SearchRequest {
        query: q.to_string(),
        limit: Some(limit),
        ..Default::default()
    };
    let hits = engine
        .search(&Caller::local(tenant), &req)
        .await
        .map_err(|e| Error::Malformed(e.to_string()))?;
    Ok(hits.into_iter().map(QueryHit::of).collect())
}
