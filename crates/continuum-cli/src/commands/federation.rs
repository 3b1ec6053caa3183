//! `federation`: run a hub (init, invite, revoke) or be a member node (join, share,
//! contribute, query, status). The hub serves federation traffic from `serve
//! --federation-bind ADDR`, on a port of its own with mutual TLS.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use continuum_core::Error;
use continuum_federation::access::Tier;
use continuum_federation::{NodeId, hub, node};

#[derive(Debug, Args)]
pub struct FederationArgs {
    #[command(subcommand)]
    pub command: FederationCommand,
}

#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Make this data directory a federation hub: its CA (key in `federation/ca.key`, mode
    /// 0600) and the hub's own identity, answering on --host.
    Init {
        /// Required: only hubs are initialised; members join one.
        #[arg(long)]
        hub: bool,
        /// The federation's name (letters, digits, '-', '_', '.').
        #[arg(long, default_value = "continuum")]
        name: String,
        /// A DNS name or IP address nodes reach the hub by (repeatable).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Seal the CA key with the passphrase in CONTINUUM_FEDERATION_PASSPHRASE (PBKDF2 +
        /// AES-256-GCM); `serve` and `grant` then need it in that variable too.
        #[arg(long)]
        encrypt_ca: bool,
    },
    /// Seal the hub's CA key with the passphrase in CONTINUUM_FEDERATION_NEW_PASSPHRASE, or
    /// change it (the current one in CONTINUUM_FEDERATION_PASSPHRASE), or --remove it (hub).
    Passphrase {
        /// Keep the CA key unsealed (mode 0600 only).
        #[arg(long)]
        remove: bool,
    },
    /// A one-time join token for a new node (hub).
    Invite {
        /// The new member's tier (free, pro, enterprise): its rate limits. (`--tier` is the
        /// global flag that defines the API's tiers.)
        #[arg(long = "member-tier", default_value = "free", value_parser = ["free", "pro", "enterprise"])]
        tier: String,
        /// How long the token is valid: 30m, 24h, 7d (at most 30 days).
        #[arg(long, default_value = "24h", value_parser = crate::commands::keys::parse_validity)]
        expires: i64,
    },
    /// Refuse a member from now on: at its next handshake and message (hub).
    Revoke { node: String },
    /// The hub's members with their tiers and ledgers (hub).
    Members,
    /// Unlimited access for a member (no contribution ratio, no rate limit) for --days,
    /// signed with the federation CA's key (hub).
    Grant {
        node: String,
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
    /// Join the hub at HUB_URL (https://HOST:PORT, its federation address) with a token.
    Join {
        hub_url: String,
        token: String,
        /// A name this node accepts connections under (repeatable; none for a node that only
        /// connects).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Whether --tenant shares its knowledge with the federation (off by default).
    Share {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Send --tenant's new shareable knowledge (decisions, facts, notes; through the
    /// anonymiser; never conversation turns) to the hub.
    Contribute {
        /// Start from this event position instead of where the last contribution ended
        /// (later: share only what comes after it).
        #[arg(long)]
        since: Option<u64>,
    },
    /// Recall over the federation's pool; each result names the node that contributed it.
    Query {
        text: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Search this node's copy of the pool (`federation sync`) instead of asking the hub.
        #[arg(long)]
        local: bool,
    },
    /// Copy the pool's new items into this node's store (tenant `federation-pool`), from
    /// where the last copy stopped; each item once. Every item copied counts as consumed.
    Sync,
    /// Ask the hub for a new certificate for this node's key (done in the background by
    /// `serve` when a third of its lifetime, or 30 days, remain).
    Renew,
    /// This node's federation: hub, tier, contributed and consumed, ratio, sharing tenants.
    Status,
}

fn tier(s: &str) -> Result<Tier> {
    Tier::parse(s).map_err(|e| Error::InvalidInput(e.to_string()).into())
}

/// A federation error as the CLI reports it (exit codes as everywhere).
pub(crate) fn fed(e: continuum_federation::Error) -> anyhow::Error {
    use continuum_federation::Error as F;
    match e {
        F::Malformed(m) | F::TooLarge(m) => Error::InvalidInput(m),
        F::Internal(m) => Error::Internal(m),
        F::Unavailable(m) => Error::Unavailable(m),
        r @ F::Refused { .. } => Error::Forbidden(r.to_string()),
    }
    .into()
}

/// Where the hub's CA key passphrase is read from (never from a flag: it would show in `ps`).
pub const PASSPHRASE_ENV: &str = "CONTINUUM_FEDERATION_PASSPHRASE";
const NEW_PASSPHRASE_ENV: &str = "CONTINUUM_FEDERATION_NEW_PASSPHRASE";

fn env_secret(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|s| !s.is_empty())
}

pub async fn federation(g: &Global, a: FederationArgs) -> Result<()> {
    let dir = continuum_federation::folder(&g.data_dir()?);
    match a.command {
        FederationCommand::Init {
            hub: is_hub,
            name,
            hosts,
            encrypt_ca,
        } => {
            if !is_hub {
                return Err(Error::InvalidInput(
                    "only a hub is initialised (--hub); a member node joins one with `federation join`".into(),
                )
                .into());
            }
            let passphrase = env_secret(PASSPHRASE_ENV);
            if encrypt_ca && passphrase.is_none() {
                return Err(Error::InvalidInput(format!(
                    "--encrypt-ca takes the passphrase from {PASSPHRASE_ENV}, which is not set"
                ))
                .into());
            }
            let made = hub::init(
                &dir,
                &name,
                &hosts,
                passphrase.as_deref().filter(|_| encrypt_ca),
            )
            .map_err(fed)?;
            if g.json {
                return output::json(&made);
            }
            println!("federation '{}' created; hub node {}", made.name, made.hub);
            println!("CA fingerprint (SHA-256): {}", made.ca_fingerprint);
            println!("serve it with: continuum serve --federation-bind ADDR");
            Ok(())
        }
        FederationCommand::Invite { tier: t, expires } => {
            let token = hub::invite(&dir, tier(&t)?, expires).map_err(fed)?;
            if g.json {
                return output::json(&serde_json::json!({
                    "token": token.expose(),
                    "tier": t,
                    "expires_in_secs": expires / 1000,
                }));
            }
            println!("{}", token.expose());
            eprintln!("a one-time token for a {t} node; shown once");
            Ok(())
        }
        FederationCommand::Revoke { node: n } => {
            let id = NodeId::parse(&n).map_err(fed)?;
            if !hub::revoke(&dir, &id).map_err(fed)? {
                return Err(Error::NotFound(format!("no member {id} (or revoked before)")).into());
            }
            let (engine, _) = g.open().await?;
            engine
                .audit_federation(
                    "federation.revoked",
                    false,
                    serde_json::json!({ "node": id }),
                )
                .await;
            if g.json {
                return output::json(&serde_json::json!({ "revoked": id }));
            }
            println!("revoked {id}");
            Ok(())
        }
        FederationCommand::Grant { node: n, days } => {
            let id = NodeId::parse(&n).map_err(fed)?;
            let grant = hub::grant(
                &dir,
                &id,
                days.saturating_mul(86_400_000),
                env_secret(PASSPHRASE_ENV).as_deref(),
            )
            .map_err(fed)?;
            let (engine, _) = g.open().await?;
            engine
                .audit_federation(
                    "federation.granted",
                    false,
                    serde_json::json!({ "node": id, "days": days }),
                )
                .await;
            if g.json {
                return output::json(&grant);
            }
            println!(
                "granted node {id} unlimited access for {days} days (signed by the federation's CA)"
            );
            Ok(())
        }
        FederationCommand::Passphrase { remove } => {
            let new = env_secret(NEW_PASSPHRASE_ENV);
            if !remove && new.is_none() {
                return Err(Error::InvalidInput(format!(
                    "put the new passphrase in {NEW_PASSPHRASE_ENV} (or --remove the passphrase)"
                ))
                .into());
            }
            hub::set_passphrase(
                &dir,
                env_secret(PASSPHRASE_ENV).as_deref(),
                new.as_deref().filter(|_| !remove),
            )
            .map_err(fed)?;
            let sealed = hub::ca_key_sealed(&dir).map_err(fed)?;
            if g.json {
                return output::json(&serde_json::json!({ "sealed": sealed }));
            }
            println!(
                "the federation CA key is {}",
                if sealed {
                    "sealed with the new passphrase"
                } else {
                    "not sealed (file mode 0600 only)"
                }
            );
            Ok(())
        }
        FederationCommand::Sync => {
            let n = node::Node::open(&dir).map_err(fed)?;
            let (engine, _) = g.open().await?;
            let out = n.sync(&engine).await.map_err(fed)?;
            if g.json {
                return output::json(&out);
            }
            println!(
                "copied {} new pooled items ({} held already); this node's copy holds {}",
                out.stored, out.duplicates, out.pool_items
            );
            if let Some(why) = &out.stopped {
                println!("stopped before the pool's end: {why}");
            }
            Ok(())
        }
        FederationCommand::Renew => {
            let n = node::Node::open(&dir).map_err(fed)?;
            let until = n.renew().await.map_err(fed)?;
            if g.json {
                return output::json(
                    &serde_json::json!({ "certificate_expires_at": continuum_core::Timestamp(until) }),
                );
            }
            println!(
                "renewed; the certificate is valid until {}",
                continuum_core::Timestamp(until)
            );
            Ok(())
        }
        FederationCommand::Members => {
            let r = hub::registry(&dir).map_err(fed)?;
            let members: Vec<_> = r.members.values().collect();
            if g.json {
                return output::json(&members);
            }
            for m in members {
                println!(
                    "{}  {:<10}  contributed {:>6}  consumed {:>6}{}",
                    m.id,
                    m.tier.as_str(),
                    m.ledger.contributed,
                    m.ledger.consumed,
                    if m.revoked_at.is_some() {
                        "  revoked"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        FederationCommand::Join {
            hub_url,
            token,
            names,
        } => {
            let info = node::join(&dir, &hub_url, &token, &names)
                .await
                .map_err(fed)?;
            if g.json {
                return output::json(&info);
            }
            println!(
                "joined the federation at {} as node {} ({} tier)",
                info.url,
                info.node,
                info.tier.as_str()
            );
            Ok(())
        }
        FederationCommand::Share { state } => {
            let tenant = g.tenant()?;
            node::share(&dir, &tenant, state == "on").map_err(fed)?;
            if g.json {
                return output::json(
                    &serde_json::json!({ "tenant": tenant, "sharing": state == "on" }),
                );
            }
            println!("tenant '{tenant}' sharing: {state}");
            Ok(())
        }
        FederationCommand::Contribute { since } => {
            let tenant = g.tenant()?;
            let n = node::Node::open(&dir).map_err(fed)?;
            if let Some(since) = since {
                n.set_cursor(&tenant, since).map_err(fed)?;
            }
            let (engine, _) = g.open().await?;
            let out = n.contribute(&engine, &tenant).await.map_err(fed)?;
            if g.json {
                return output::json(&out);
            }
            println!(
                "contributed {} items of tenant '{}' ({} held back by the anonymiser, {} refused by the hub); through event {}",
                out.accepted, out.tenant, out.withheld, out.refused_by_hub, out.through
            );
            Ok(())
        }
        FederationCommand::Query {
            text,
            limit,
            local: true,
        } => {
            if !node::joined(&dir) {
                return Err(fed(continuum_federation::Error::Malformed(
                    "this node has not joined a federation".into(),
                )));
            }
            let (engine, _) = g.open().await?;
            let hits = node::query_local(&engine, &text, limit)
                .await
                .map_err(fed)?;
            if g.json {
                return output::json(&serde_json::json!({ "hits": hits, "local": true }));
            }
            for h in &hits {
                println!("{:.3}  {}  (from node {})", h.score, h.text, h.node);
            }
            if hits.is_empty() {
                println!(
                    "nothing in this node's copy of the pool matches (`federation sync` copies it)"
                );
            }
            Ok(())
        }
        FederationCommand::Query { text, limit, .. } => {
            let n = node::Node::open(&dir).map_err(fed)?;
            let r = n.query(&text, limit).await.map_err(fed)?;
            if g.json {
                return output::json(&r);
            }
            for h in &r.hits {
                println!("{:.3}  {}  (from node {})", h.score, h.text, h.node);
            }
            if r.hits.is_empty() {
                println!("nothing in the pool matches");
            }
            Ok(())
        }
        FederationCommand::Status => {
            let n = node::Node::open(&dir).map_err(fed)?;
            let st = node::state(&dir).map_err(fed)?;
            let standing = n.standing().await.map_err(fed)?;
            // A grant is checked here too, with the CA's key: the hub's word is not needed.
            let grant = standing.grant.as_ref().map(|gr| n.verify_grant(gr));
            if g.json {
                return output::json(&serde_json::json!({
                    "hub": n.info(),
                    "grant_verified_until": grant.as_ref().and_then(|r| r.as_ref().ok()).map(|t| continuum_core::Timestamp(*t)),
                    "grant_error": grant.as_ref().and_then(|r| r.as_ref().err()),
                    "standing": standing,
                    "sharing": st.sharing,
                    "cursors": st.cursors,
                    "last_contribution_at": st.last_contribution_at,
                    "last_error": st.last_error,
                    "certificate_expires_at": continuum_core::Timestamp(n.certificate_expires_at()),
                    "renewal_due": n.renewal_due(),
                    "last_renewal_at": st.last_renewal_at.map(continuum_core::Timestamp),
                    "pool": {
                        "items": st.pool_items,
                        "cursor": st.pool,
                        "last_sync_at": st.last_sync_at.map(continuum_core::Timestamp),
                    },
                }));
            }
            println!("hub:          {} (node {})", n.info().url, n.info().hub);
            println!(
                "this node:    {} ({} tier)",
                standing.node,
                standing.tier.as_str()
            );
            println!(
                "contributed:  {}   consumed: {}   ratio: {}   (free queries {}, minimum ratio {})",
                standing.ledger.contributed,
                standing.ledger.consumed,
                standing
                    .ratio
                    .map(|r| format!("{r:.3}"))
                    .unwrap_or_else(|| "-".into()),
                standing.free_queries,
                standing.min_ratio
            );
            println!("members:      {}", standing.members);
            println!(
                "certificate:  valid until {}{}",
                continuum_core::Timestamp(n.certificate_expires_at()),
                if n.renewal_due() {
                    "  (renewal due: `continuum federation renew`)"
                } else {
                    ""
                }
            );
            println!(
                "pool copy:    {} items{}",
                st.pool_items,
                st.last_sync_at
                    .map(|t| format!(", last synced {}", continuum_core::Timestamp(t)))
                    .unwrap_or_default()
            );
            match &grant {
                Some(Ok(until)) => println!(
                    "unlimited:    until {} (operator's grant, signature checked here)",
                    continuum_core::Timestamp(*until)
                ),
                Some(Err(why)) => {
                    println!("unlimited:    the hub reports a grant that does not hold: {why}")
                }
                None => {}
            }
            let rates: Vec<String> = standing
                .limits
                .iter()
                .map(|r| format!("{} {}/{}", r.kind.as_str(), r.available, r.per_minute))
                .collect();
            println!("rate (now/minute): {}", rates.join(", "));
            if let Some(e) = &st.last_error {
                println!("last error:   {e}");
            }
            println!(
                "sharing:      {}",
                if st.sharing.is_empty() {
                    "no tenant".to_string()
                } else {
                    st.sharing.iter().cloned().collect::<Vec<_>>().join(", ")
                }
            );
            Ok(())
        }
    }
}

/// On a member node, puts contributing under `jobs` (named `federation-contribute`): every
/// `every`, each tenant that shares sends what is new. An error (the hub away, a refusal) is
/// logged and kept for `federation status`; the next round tries again.
pub fn spawn_contributions(
    g: &Global,
    engine: &continuum_engine::Engine,
    every: std::time::Duration,
    pull: bool,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    let dir = continuum_federation::folder(&g.data_dir()?);
    if !node::joined(&dir) {
        return Ok(());
    }
    let engine = engine.clone();
    jobs.spawn(
        "federation-contribute",
        continuum_ops::Backoff::default(),
        move |stop| {
            let (engine, dir) = (engine.clone(), dir.clone());
            async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tick.tick() => {}
                    }
                    let round = async {
                        let mut n = node::Node::open(&dir)?;
                        // Renewed while the current certificate still opens the connection.
                        if n.renewal_due() {
                            let until = n.renew().await?;
                            tracing::info!(until = %continuum_core::Timestamp(until), "renewed this node's federation certificate");
                            n = node::Node::open(&dir)?;
                        }
                        if pull {
                            let out = n.sync(&engine).await?;
                            if out.stored > 0 {
                                tracing::info!(items = out.stored, "copied pooled items from the federation");
                            }
                        }
                        for t in node::state(&dir)?.sharing {
                            let tenant = continuum_core::TenantId::new(t)
                                .map_err(|e| continuum_federation::Error::Malformed(e.to_string()))?;
                            let out = n.contribute(&engine, &tenant).await?;
                            if out.sent > 0 {
                                tracing::info!(tenant = %tenant, accepted = out.accepted, "contributed to the federation");
                            }
                        }
                        Ok::<(), continuum_federation::Error>(())
                    };
                    let error = round.await.err().map(|e| e.to_string());
                    if let Some(e) = &error {
                        tracing::warn!(error = %e, "federation contribution failed; retrying next round");
                    }
                    let _ = node::note_error(&dir, error);
                }
            }
        },
    )
    .map_err(|e| Error::Internal(e).into())
}

/// Puts the hub's federation listener under `jobs` (named `federation`).
pub fn spawn_hub(
    g: &Global,
    engine: &continuum_engine::Engine,
    bind: &str,
    policy: continuum_federation::access::AccessPolicy,
    certificate_days: u64,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    let dir = continuum_federation::folder(&g.data_dir()?);
    let hub = hub::Hub::open(
        &dir,
        engine.clone(),
        policy,
        env_secret(PASSPHRASE_ENV).as_deref(),
    )
    .and_then(|h| h.with_certificate_days(certificate_days))
    .map(std::sync::Arc::new)
    .map_err(fed)?;
    let std_listener = std::net::TcpListener::bind(bind)
        .map_err(|e| Error::Unavailable(format!("binding the federation address {bind}: {e}")))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    tracing::info!(%addr, hub = %hub.id(), "federation hub at https://{addr}");
    eprintln!("federation hub at https://{addr} (mutual TLS)");
    let listener = std::sync::Arc::new(std::sync::Mutex::new(Some(std_listener)));
    jobs.spawn(
        "federation",
        continuum_ops::Backoff::default(),
        move |stop| {
            let hub = hub.clone();
            let listener = listener.clone();
            async move {
                // The socket is bound once, at start; a restart of the job binds it again.
                let std_listener = match listener.lock().ok().and_then(|mut l| l.take()) {
                    Some(l) => l,
                    None => std::net::TcpListener::bind(addr)
                        .and_then(|l| l.set_nonblocking(true).map(|_| l))
                        .map_err(|e| format!("binding {addr}: {e}"))?,
                };
                let listener = tokio::net::TcpListener::from_std(std_listener)
                    .map_err(|e| format!("the federation listener: {e}"))?;
                hub.serve(listener, stop).await.map_err(|e| e.to_string())
            }
        },
    )
    .map_err(|e| Error::Internal(e).into())
}
