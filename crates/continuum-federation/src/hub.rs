//! The hub: the federation's CA, its register of members, and the pool of shared knowledge,
//! served on a port of its own over mutual TLS.
//!
//! Routes: `POST /federation/v1/join` (the one request served without a client certificate,
//! authorised by a join token) and `POST /federation/v1/message` (a sealed envelope from a
//! member; the reply is an envelope sealed by the hub). The pool is a tenant of the hub's own
//! store ([`POOL_TENANT`]), reached through the engine; members hold no API key for it.

use crate::access::{AccessPolicy, RateLimiter, Tier, TierLimits};
use crate::anonymise::{Anonymiser, Verdict};
use crate::envelope::{Envelope, MAX_MESSAGE_BYTES, MessageType, Sealed, Verifier};
use crate::files;
use crate::identity::{NodeId, NodeKey, hex};
use crate::membership::{JoinToken, Registry};
use crate::pki::{self, Authority, Revocations};
use crate::wire::*;
use crate::{Error, Refusal};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use continuum_core::TenantId;
use continuum_core::keys::Caller;
use continuum_core::memory::Source;
use continuum_engine::Engine;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The tenant of the hub's store that holds the pool.
pub const POOL_TENANT: &str = "federation-pool";

use crate::identity::now_ms;

struct Paths {
    ca_key: PathBuf,
    ca_cert: PathBuf,
    ca_name: PathBuf,
    hub_key: PathBuf,
    hub_cert: PathBuf,
    registry: PathBuf,
}

fn paths(dir: &Path) -> Paths {
    Paths {
        ca_key: dir.join("ca.key"),
        ca_cert: dir.join("ca.pem"),
        ca_name: dir.join("ca.name"),
        hub_key: dir.join("hub.key"),
        hub_cert: dir.join("hub.pem"),
        registry: dir.join("registry.json"),
    }
}

/// What `federation init --hub` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Initialised {
    pub name: String,
    pub hub: NodeId,
    pub ca_fingerprint: String,
    pub hosts: Vec<String>,
}

/// Creates the federation's CA and the hub's identity in `dir`, answering on `hosts` (names
/// or addresses nodes will reach it by). The CA's key file has mode 0600 and, with a
/// `passphrase`, holds the key sealed with it (see [`set_passphrase`]). Refuses when a hub
/// is already there.
pub fn init(
    dir: &Path,
    name: &str,
    hosts: &[String],
    passphrase: Option<&str>,
) -> Result<Initialised, Error> {
    let p = paths(dir);
    if p.ca_key.exists() {
        return Err(Error::Malformed(format!(
            "{} already holds a federation CA",
            dir.display()
        )));
    }
    if hosts.is_empty() {
        return Err(Error::Malformed(
            "name at least one host the hub is reached by (--host)".into(),
        ));
    }
    let now = SystemTime::now();
    let ca = Authority::create(name, NodeKey::generate()?, now)?;
    let hub = NodeKey::generate()?;
    let cert = ca.issue(&hub.public(), hosts, crate::pki::CA_VALID_DAYS, now)?;
    files::write_atomic(
        &p.ca_key,
        files::key_text(ca.key(), passphrase)?.as_bytes(),
        true,
    )?;
    files::write_atomic(&p.ca_cert, ca.cert_pem().as_bytes(), false)?;
    files::write_atomic(&p.ca_name, name.as_bytes(), false)?;
    files::write_key(&p.hub_key, &hub)?;
    files::write_atomic(&p.hub_cert, cert.as_bytes(), false)?;
    Ok(Initialised {
        name: name.to_string(),
        hub: hub.id().clone(),
        ca_fingerprint: pki::fingerprint(ca.cert_pem())?,
        hosts: hosts.to_vec(),
    })
}

/// The CA's certificate, when `dir` holds a hub (its key is not needed to invite or revoke).
fn ca_certificate(dir: &Path) -> Result<String, Error> {
    let p = paths(dir);
    if !p.ca_key.exists() {
        return Err(Error::Malformed(format!(
            "{} holds no federation hub (run `continuum federation init --hub` first)",
            dir.display()
        )));
    }
    files::read(&p.ca_cert)
}

fn authority(dir: &Path, passphrase: Option<&str>) -> Result<Authority, Error> {
    let p = paths(dir);
    let cert = ca_certificate(dir)?;
    Authority::open(
        files::read(&p.ca_name)?.trim(),
        files::read_key_with(&p.ca_key, passphrase)?,
        &cert,
    )
}

/// Whether the hub's CA key is sealed with a passphrase.
pub fn ca_key_sealed(dir: &Path) -> Result<bool, Error> {
    ca_certificate(dir)?;
    files::key_is_sealed(&paths(dir).ca_key)
}

/// Seals the CA's key with `new` (or, with `None`, keeps it unsealed, mode 0600 only),
/// opening it with `current` when it is sealed now. The file is replaced whole.
pub fn set_passphrase(dir: &Path, current: Option<&str>, new: Option<&str>) -> Result<(), Error> {
    let ca = authority(dir, current)?;
    files::write_atomic(
        &paths(dir).ca_key,
        files::key_text(ca.key(), new)?.as_bytes(),
        true,
    )
}

/// A one-time join token for a node of `tier`, valid for `valid_ms`.
pub fn invite(dir: &Path, tier: Tier, valid_ms: i64) -> Result<JoinToken, Error> {
    let fp = pki::fingerprint(&ca_certificate(dir)?)?;
    files::update(&paths(dir).registry, |r: &mut Registry| {
        r.invite(tier, valid_ms, now_ms(), &fp)
    })
}

/// Revokes a member: its next handshake and message are refused.
pub fn revoke(dir: &Path, node: &NodeId) -> Result<bool, Error> {
    ca_certificate(dir)?;
    files::update(&paths(dir).registry, |r: &mut Registry| {
        Ok(r.revoke(node, now_ms()))
    })
}

/// Grants `node` unlimited access (no contribution ratio, no rate limit) for `valid_ms`,
/// signed with the CA's key so that any node can check it; replaces an earlier grant.
pub fn grant(
    dir: &Path,
    node: &NodeId,
    valid_ms: i64,
    passphrase: Option<&str>,
) -> Result<crate::access::SignedGrant, Error> {
    if valid_ms <= 0 || valid_ms > 366 * 86_400_000 {
        return Err(Error::Malformed(
            "a grant lasts more than 0 and at most 366 days".into(),
        ));
    }
    let ca = authority(dir, passphrase)?;
    let now = now_ms();
    let signed = crate::access::SignedGrant::sign(
        ca.key(),
        &crate::access::Grant {
            node: node.clone(),
            unlimited: true,
            issued_at: now,
            expires_at: now + valid_ms,
        },
    )?;
    files::update(&paths(dir).registry, |r: &mut Registry| {
        let m = r
            .members
            .get_mut(node)
            .filter(|m| m.revoked_at.is_none())
            .ok_or_else(|| Error::Malformed(format!("no member {node} (or revoked)")))?;
        m.grant = Some(signed.clone());
        Ok(())
    })?;
    Ok(signed)
}

/// The register as stored (members, their tiers and ledgers; invites as hashes).
pub fn registry(dir: &Path) -> Result<Registry, Error> {
    files::load(&paths(dir).registry)
}

/// A running hub.
pub struct Hub {
    dir: PathBuf,
    ca: Authority,
    key: NodeKey,
    chain_pem: String,
    verifier: Verifier,
    limiter: Mutex<RateLimiter>,
    policy: AccessPolicy,
    revoked: Arc<Revocations>,
    engine: Engine,
    pool: TenantId,
    anonymiser: Anonymiser,
    certificate_days: u64,
}

impl Hub {
    /// The hub of `dir` on `engine`'s store; `passphrase` opens a sealed CA key.
    pub fn open(
        dir: &Path,
        engine: Engine,
        policy: AccessPolicy,
        passphrase: Option<&str>,
    ) -> Result<Hub, Error> {
        let ca = authority(dir, passphrase)?;
        let p = paths(dir);
        let key = files::read_key(&p.hub_key)?;
        // The hub presents its CA after its own certificate, so a joining node can check the
        // CA against its token's fingerprint before it sends the token.
        let chain_pem = format!("{}{}", files::read(&p.hub_cert)?, ca.cert_pem());
        let revoked = Revocations::new(registry(dir)?.revoked());
        Ok(Hub {
            dir: dir.to_path_buf(),
            ca,
            key,
            chain_pem,
            verifier: Verifier::default(),
            limiter: Mutex::new(RateLimiter::default()),
            policy,
            revoked,
            engine,
            pool: TenantId::new(POOL_TENANT).map_err(|e| Error::Internal(e.to_string()))?,
            anonymiser: Anonymiser::default(),
            certificate_days: pki::NODE_VALID_DAYS,
        })
    }

    /// How long the node certificates this hub issues (at joining and renewal) are valid:
    /// 1 to [`pki::CA_VALID_DAYS`] days, [`pki::NODE_VALID_DAYS`] unless set.
    pub fn with_certificate_days(mut self, days: u64) -> Result<Hub, Error> {
        if days == 0 || days > pki::CA_VALID_DAYS {
            return Err(Error::Malformed(format!(
                "node certificates are valid for 1 to {} days",
                pki::CA_VALID_DAYS
            )));
        }
        self.certificate_days = days;
        Ok(self)
    }

    pub fn id(&self) -> &NodeId {
        self.key.id()
    }

    fn tls(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        pki::server_config(
            self.ca.cert_pem(),
            &self.chain_pem,
            &self.key,
            self.revoked.clone(),
            true,
        )
    }

    /// Serves federation traffic on `listener` until `stop` is cancelled.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<(), Error> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls()?);
        let app = Router::new()
            .route("/federation/v1/join", post(join))
            .route("/federation/v1/message", post(message))
            .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
            .with_state(self.clone());
        // Revocations made by another process (the CLI) reach the handshake within seconds.
        let refresher = {
            let hub = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                    if let Ok(r) = registry(&hub.dir) {
                        for id in r.revoked() {
                            hub.revoked.revoke(id);
                        }
                    }
                }
            })
        };
        loop {
            let (tcp, addr) = tokio::select! {
                _ = stop.cancelled() => break,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "federation accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::warn!(peer = %addr, error = %e, "federation handshake refused");
                        return;
                    }
                    Err(_) => return,
                };
                let peer = pki::peer_node(tls.get_ref().1);
                let app = app.layer(Extension(Peer(peer)));
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
        refresher.abort();
        Ok(())
    }

    /// Seals a reply to a member.
    fn reply(&self, body: impl serde::Serialize) -> Response {
        let body = match serde_json::to_value(body) {
            Ok(b) => b,
            Err(e) => {
                return refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    &e.to_string(),
                );
            }
        };
        match Sealed::seal(&self.key, MessageType::Result, body, now_ms()) {
            Ok(s) => (StatusCode::OK, s.to_bytes()).into_response(),
            Err(e) => refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &e.to_string(),
            ),
        }
    }
}

/// The node a connection's client certificate proved, if any.
#[derive(Clone)]
struct Peer(Option<NodeId>);

fn refused(status: StatusCode, reason: &str, message: &str) -> Response {
    (
        status,
        Json(Refused {
            reason: reason.to_string(),
            message: message.to_string(),
        }),
    )
        .into_response()
}

fn refusal(r: &Refusal) -> Response {
    let status = match r {
        Refusal::RateLimited { .. } | Refusal::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
        Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Malformed(_) | Refusal::Version(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    refused(status, r.reason(), &r.to_string())
}

async fn join(State(hub): State<Arc<Hub>>, Json(req): Json<JoinRequest>) -> Response {
    match admit(&hub, req).await {
        Ok((response, node, tier)) => {
            hub.engine
                .audit_federation(
                    "federation.joined",
                    false,
                    serde_json::json!({ "node": node, "tier": tier.as_str() }),
                )
                .await;
            response
        }
        Err(why) => {
            tracing::warn!(reason = %why, "federation join refused");
            hub.engine
                .audit_federation(
                    "federation.refused",
                    true,
                    serde_json::json!({ "stage": "join", "reason": why }),
                )
                .await;
            refused(StatusCode::FORBIDDEN, "join_refused", &why)
        }
    }
}

/// Checks a join request and admits the node: its certificate, or why not.
async fn admit(hub: &Hub, req: JoinRequest) -> Result<(Response, NodeId, Tier), String> {
    let token = match JoinToken::parse(&req.token) {
        Ok(t) => t,
        Err(e) => return Err(e.to_string()),
    };
    let Some(public) = crate::identity::public_key_from_hex(&req.public_key) else {
        return Err("the public key is not an Ed25519 key in hex".to_string());
    };
    let proof = base64::engine::general_purpose::STANDARD
        .decode(req.proof.as_bytes())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok());
    let Some(proof) = proof else {
        return Err("the proof is not a base64 signature".to_string());
    };
    let text = JoinRequest::proof_text(&req.token, &req.public_key);
    if public
        .verify_strict(
            text.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&proof),
        )
        .is_err()
    {
        return Err("the proof is not signed by this key".to_string());
    }
    check_names(&req.names)?;
    let member = files::update(&paths(&hub.dir).registry, |r: &mut Registry| {
        r.redeem(&token, &public, now_ms())
            .map(|m| (m.id.clone(), m.tier))
            .map_err(|e| Error::Malformed(e.to_string()))
    });
    let (node, tier) = match member {
        Ok(m) => m,
        Err(e) => return Err(e.to_string()),
    };
    let cert = match hub
        .ca
        .issue(&public, &req.names, hub.certificate_days, SystemTime::now())
    {
        Ok(c) => c,
        Err(e) => return Err(e.to_string()),
    };
    tracing::info!(node = %node, tier = tier.as_str(), "a node joined the federation");
    let response = Json(JoinResponse {
        node: node.clone(),
        tier,
        certificate: cert,
        ca: hub.ca.cert_pem().to_string(),
        hub: hub.key.id().clone(),
        hub_key: hex(hub.key.public().as_bytes()),
    })
    .into_response();
    Ok((response, node, tier))
}

async fn message(
    State(hub): State<Arc<Hub>>,
    Extension(Peer(peer)): Extension<Peer>,
    body: axum::body::Bytes,
) -> Response {
    let Some(peer) = peer else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "certificate_required",
            "federation messages need a member's client certificate",
        );
    };
    let reg = match registry(&hub.dir) {
        Ok(r) => r,
        Err(e) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &e.to_string(),
            );
        }
    };
    let envelope = match hub
        .verifier
        .open(&body, |id| reg.key_of(id), Some(&peer), now_ms())
    {
        Ok(e) => e,
        Err(r) => {
            tracing::warn!(node = %peer, reason = r.reason(), "federation message refused: {r}");
            audit_refusal(&hub, &peer, &r).await;
            return refusal(&r);
        }
    };
    let Some(member) = reg.members.get(&peer).cloned() else {
        return refusal(&Refusal::UnknownSender(peer));
    };
    let limits = TierLimits::of(member.tier);
    let unlimited = unlimited(&hub, &member);
    let taken = hub
        .limiter
        .lock()
        .map_err(|_| Refusal::Busy("the rate limiter lock was poisoned".into()))
        .and_then(|mut l| {
            l.take(
                &peer,
                envelope.kind,
                (!unlimited).then_some(&limits),
                now_ms(),
            )
        });
    if let Err(r) = taken {
        tracing::warn!(node = %peer, reason = r.reason(), "federation message refused: {r}");
        audit_refusal(&hub, &peer, &r).await;
        return refusal(&r);
    }
    match envelope.kind {
        MessageType::Contribute => contribute(&hub, &member, envelope).await,
        MessageType::Query => query(&hub, &member, unlimited, envelope).await,
        MessageType::Sync => sync(&hub, &member, unlimited, envelope).await,
        MessageType::Hello => match serde_json::from_value::<Hello>(envelope.body) {
            Ok(Hello { renew: Some(r) }) => renew(&hub, &member, r).await,
            Ok(Hello { renew: None }) => hub.reply(standing(&hub, &reg, &member, unlimited)),
            Err(err) => refused(
                StatusCode::BAD_REQUEST,
                "malformed",
                &format!("a hello: {err}"),
            ),
        },
        MessageType::Heartbeat => hub.reply(standing(&hub, &reg, &member, unlimited)),
        other => refused(
            StatusCode::BAD_REQUEST,
            "unsupported",
            &format!("a hub does not take '{}' messages", other.as_str()),
        ),
    }
}

/// A refused message in the audit log: the node and the reason, never the body.
async fn audit_refusal(hub: &Hub, node: &NodeId, r: &Refusal) {
    hub.engine
        .audit_federation(
            "federation.refused",
            true,
            serde_json::json!({ "stage": "message", "node": node, "reason": r.reason() }),
        )
        .await;
}

/// Whether a member holds a grant the CA signed, for it, in force now.
fn unlimited(hub: &Hub, m: &crate::membership::Member) -> bool {
    m.grant
        .as_ref()
        .is_some_and(|g| g.verify(&hub.ca.key().public(), &m.id, now_ms()).is_ok())
}

/// Where a member stands, from the register read for its message.
fn standing(hub: &Hub, r: &Registry, m: &crate::membership::Member, free: bool) -> Standing {
    let node = &m.id;
    let limits = TierLimits::of(m.tier);
    let limits = hub
        .limiter
        .lock()
        .map(|l| {
            MessageType::ALL
                .iter()
                .map(|&kind| RateState {
                    kind,
                    per_minute: limits.rate(kind),
                    available: if free {
                        limits.rate(kind)
                    } else {
                        l.available(node, kind, &limits, now_ms())
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    Standing {
        limits,
        node: node.clone(),
        tier: m.tier,
        ledger: m.ledger,
        ratio: m.ledger.ratio(),
        free_queries: hub.policy.free_queries,
        min_ratio: hub.policy.min_ratio,
        contributed_through: m.contributed_through,
        members: r
            .members
            .values()
            .filter(|m| m.revoked_at.is_none())
            .count(),
        unlimited_until: m
            .grant
            .as_ref()
            .filter(|_| free)
            .and_then(|g| serde_json::from_str::<crate::access::Grant>(&g.grant).ok())
            .map(|g| g.expires_at),
        grant: m.grant.clone().filter(|_| free),
    }
}

async fn contribute(hub: &Hub, member: &crate::membership::Member, e: Envelope) -> Response {
    let node = &member.id;
    let c: Contribution = match serde_json::from_value(e.body) {
        Ok(c) => c,
        Err(err) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "malformed",
                &format!("a contribution: {err}"),
            );
        }
    };
    if c.items.len() > MAX_ITEMS {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("at most {MAX_ITEMS} items per contribution"),
        );
    }
    let reg_path = paths(&hub.dir).registry;
    // Applied once: a contribution at or below what was applied is a resend.
    if c.through <= member.contributed_through {
        return hub.reply(ContributionReply {
            accepted: 0,
            refused: 0,
            duplicate: true,
            ledger: member.ledger,
        });
    }
    let pool = Caller::local(hub.pool.clone());
    let mut rejected = 0u64;
    let mut texts = Vec::with_capacity(c.items.len());
    for (i, item) in c.items.into_iter().enumerate() {
        match item {
            Item::Fact { text } => {
                // The hub's own anonymiser decides too: a node's filter is not trusted.
                let text = match hub.anonymiser.clean(&text) {
                    Verdict::Kept(t) | Verdict::Cleaned { text: t, .. }
                        if text.len() <= MAX_ITEM_BYTES && !t.trim().is_empty() =>
                    {
                        t
                    }
                    _ => {
                        rejected += 1;
                        continue;
                    }
                };
                let mut req = continuum_engine::RememberRequest::new(text, Source::Fact);
                req.metadata
                    .insert("node".into(), serde_json::Value::String(node.to_string()));
                // Keyed by the node, the contribution and the item's place in it: a resend
                // that slipped past the register (a crash between the two writes) is stored
                // once all the same.
                texts.push((req, format!("fed:{node}:{}:{i}", c.through)));
            }
        }
    }
    // One transaction for the whole contribution.
    let accepted = match hub.engine.remember_keyed(&pool, texts).await {
        Ok(out) => out.stored.len() as u64,
        Err(err) => {
            tracing::warn!(node = %node, error = %err, "a contribution was not stored");
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the hub could not store the contribution; send it again",
            );
        }
    };
    let ledger = files::update(&reg_path, |r: &mut Registry| {
        let m = r
            .members
            .get_mut(node)
            .ok_or_else(|| Error::Malformed("not a member".into()))?;
        m.ledger.contributed += accepted;
        m.contributed_through = m.contributed_through.max(c.through);
        Ok(m.ledger)
    });
    match ledger {
        Ok(ledger) => hub.reply(ContributionReply {
            accepted,
            refused: rejected,
            duplicate: false,
            ledger,
        }),
        Err(err) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &err.to_string(),
        ),
    }
}

async fn query(hub: &Hub, member: &crate::membership::Member, free: bool, e: Envelope) -> Response {
    let node = &member.id;
    let q: Query = match serde_json::from_value(e.body) {
        Ok(q) => q,
        Err(err) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "malformed",
                &format!("a query: {err}"),
            );
        }
    };
    let limit = q.limit.unwrap_or(10);
    if q.q.trim().is_empty() || q.q.len() > MAX_QUERY_BYTES || limit == 0 || limit > MAX_RESULTS {
        return refused(
            StatusCode::BAD_REQUEST,
            "malformed",
            &format!("a query is 1 to {MAX_QUERY_BYTES} bytes, for 1 to {MAX_RESULTS} results"),
        );
    }
    if let Err(m) = hub.policy.may_query(&member.ledger, free) {
        tracing::warn!(node = %node, "federation query refused: contribution ratio");
        hub.engine
            .audit_federation(
                "federation.refused",
                true,
                serde_json::json!({ "stage": "query", "node": node, "reason": "contribute_first" }),
            )
            .await;
        return refused(StatusCode::FORBIDDEN, "contribute_first", &m.to_string());
    }
    let req = continuum_engine::SearchRequest {
        query: q.q,
        limit: Some(limit),
        ..Default::default()
    };
    let hits = match hub
        .engine
        .search(&Caller::local(hub.pool.clone()), &req)
        .await
    {
        Ok(h) => h,
        Err(err) => return refused(StatusCode::BAD_REQUEST, "query", &err.to_string()),
    };
    let hits: Vec<QueryHit> = hits.into_iter().map(QueryHit::of).collect();
    reply_consumed(hub, node, 1, |ledger| QueryReply { hits, ledger })
}

/// Counts `n` items consumed in a member's ledger and replies with `body` made with the
/// ledger after it (or the refusal, when the register could not be written).
fn reply_consumed<T: serde::Serialize>(
    hub: &Hub,
    node: &NodeId,
    n: u64,
    body: impl FnOnce(crate::access::Ledger) -> T,
) -> Response {
    let ledger = files::update(&paths(&hub.dir).registry, |r: &mut Registry| {
        let m = r
            .members
            .get_mut(node)
            .ok_or_else(|| Error::Malformed("not a member".into()))?;
        m.ledger.consumed += n;
        Ok(m.ledger)
    });
    match ledger {
        Ok(ledger) => hub.reply(body(ledger)),
        Err(err) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &err.to_string(),
        ),
    }
}

/// The names a node certificate may carry.
fn check_names(names: &[String]) -> Result<(), String> {
    if names.len() > 16 || names.iter().any(|n| n.is_empty() || n.len() > 253) {
        return Err("at most 16 names of 1 to 253 characters".to_string());
    }
    Ok(())
}

/// A new certificate for a member's key, asked over its current (still valid) one: the TLS
/// handshake proved the key and the envelope's signature the message.
async fn renew(hub: &Hub, member: &crate::membership::Member, r: Renew) -> Response {
    if let Err(why) = check_names(&r.names) {
        return refused(StatusCode::BAD_REQUEST, "malformed", &why);
    }
    let Some(public) = crate::identity::public_key_from_hex(&member.public_key) else {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the register holds no valid key for this member",
        );
    };
    let issued = hub
        .ca
        .issue(&public, &r.names, hub.certificate_days, SystemTime::now())
        .and_then(|pem| Ok((pki::not_after(&pem)?, pem)));
    match issued {
        Ok((not_after, certificate)) => {
            tracing::info!(node = %member.id, "renewed a node certificate");
            hub.engine
                .audit_federation(
                    "federation.renewed",
                    false,
                    serde_json::json!({ "node": member.id, "not_after": not_after }),
                )
                .await;
            hub.reply(Renewed {
                certificate,
                not_after,
            })
        }
        Err(e) => refused(StatusCode::BAD_REQUEST, "renew", &e.to_string()),
    }
}

/// How many pool log events one `sync` reads at most before it answers (what it found so far,
/// with `more`): bounds the time of one answer when the log holds little but concepts.
const SYNC_SCAN_EVENTS: usize = 5_000;

/// The pool's items after a node's cursor, as many as its ledger allows; each counts as
/// consumed. The node's own contributions are passed over (it has them), and so are events
/// that are not new pooled items.
async fn sync(hub: &Hub, member: &crate::membership::Member, free: bool, e: Envelope) -> Response {
    let node = &member.id;
    let r: SyncRequest = match serde_json::from_value(e.body) {
        Ok(r) => r,
        Err(err) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "malformed",
                &format!("a sync: {err}"),
            );
        }
    };
    let limit = r.limit.unwrap_or(MAX_SYNC_ITEMS);
    if limit == 0
        || limit > MAX_SYNC_ITEMS
        || r.cursor
            .page
            .as_ref()
            .is_some_and(|p| p.len() > MAX_PAGE_CURSOR_BYTES)
    {
        return refused(
            StatusCode::BAD_REQUEST,
            "malformed",
            &format!(
                "a sync asks for 1 to {MAX_SYNC_ITEMS} items, with a cursor page of at most {MAX_PAGE_CURSOR_BYTES} bytes"
            ),
        );
    }
    let budget = match hub.policy.items_allowed(&member.ledger, free, limit as u64) {
        Ok(n) => n as usize,
        Err(m) => {
            tracing::warn!(node = %node, "federation sync refused: contribution ratio");
            hub.engine
                .audit_federation(
                    "federation.refused",
                    true,
                    serde_json::json!({ "stage": "sync", "node": node, "reason": "contribute_first" }),
                )
                .await;
            return refused(StatusCode::FORBIDDEN, "contribute_first", &m.to_string());
        }
    };
    let pool = Caller::local(hub.pool.clone());
    let mine = node.to_string();
    let item_of = |m: &continuum_core::Memory| -> Option<PooledItem> {
        let from = m.metadata.get("node").and_then(|v| v.as_str())?;
        (from != mine).then(|| PooledItem {
            id: m.id.to_string(),
            text: m.content.clone(),
            node: from.to_string(),
        })
    };
    let mut items = Vec::new();
    let mut cursor = r.cursor.clone();
    let mut more = false;
    let outcome: continuum_core::Result<()> = async {
        if cursor.page.is_none() {
            let mut scanned = 0;
            loop {
                let page = match hub
                    .engine
                    .events(&pool, cursor.after, continuum_engine::MAX_EVENTS_PAGE)
                    .await
                {
                    Ok(p) => p,
                    // The log before this position is compacted away: copy the pool from
                    // its listing, then follow the log from where it stands now.
                    Err(continuum_core::Error::Gone(_)) => {
                        cursor = PoolCursor {
                            after: hub.engine.event_head().await?,
                            page: Some(String::new()),
                        };
                        break;
                    }
                    Err(e) => return Err(e),
                };
                let full = page.len() == continuum_engine::MAX_EVENTS_PAGE;
                for rec in page {
                    if let continuum_core::Event::MemoryCreated {
                        memory: Some(m), ..
                    } = &rec.event
                        && let Some(item) = item_of(m)
                    {
                        if items.len() == budget {
                            more = true;
                            return Ok(());
                        }
                        items.push(item);
                    }
                    cursor.after = rec.seq;
                    scanned += 1;
                }
                if !full {
                    return Ok(());
                }
                if scanned >= SYNC_SCAN_EVENTS {
                    more = true;
                    return Ok(());
                }
            }
        }
        // Copying from the listing, oldest first.
        while items.len() < budget {
            let page = continuum_core::store::PageRequest {
                limit: (budget - items.len()).min(continuum_core::store::MAX_PAGE),
                cursor: cursor.page.clone().filter(|p| !p.is_empty()),
                order: continuum_core::store::Order::OldestFirst,
            };
            let listed = hub
                .engine
                .list(
                    &pool,
                    &continuum_core::store::MemoryFilter::default(),
                    &page,
                )
                .await?;
            items.extend(listed.items.iter().filter_map(&item_of));
            match listed.next_cursor {
                Some(next) => cursor.page = Some(next),
                None => {
                    cursor.page = None;
                    break;
                }
            }
        }
        more = cursor.page.is_some();
        Ok(())
    }
    .await;
    if let Err(err) = outcome {
        return refused(StatusCode::BAD_REQUEST, "sync", &err.to_string());
    }
    reply_consumed(hub, node, items.len() as u64, |ledger| SyncReply {
        items,
        cursor,
        more,
        ledger,
    })
}
