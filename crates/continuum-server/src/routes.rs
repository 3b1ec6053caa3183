//! Routes. Handlers translate HTTP to engine calls and back, nothing more.
//!
//! The endpoints used by clients of the original Python service keep its request and response
//! shapes (`/v1/health`, `/v1/recall`, `/v1/learn`, `/v1/turn`, `/v1/stats`, `/v1/entities`,
//! `/v1/messages`, `/v1/messages/search`, `POST /v1/memories`); the native ones expose the
//! engine's richer results.

use crate::error::ApiError;
use crate::openapi::{Api, CompatRoute, Metered, Op, RequiredScope};
use crate::{AppState, ServerConfig};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::{Json, Router};
use continuum_core::account::UsageKind;
use continuum_core::keys::Scope;
use continuum_core::keys::{ApiKey, Caller};
use continuum_core::memory::{Metadata, SessionInfo, Turn};
use continuum_core::store::{ForgetSelector, MemoryFilter, Order, Page, PageRequest};
use continuum_core::{Error, Memory, MemoryId, SessionId, Source, TenantId, Timestamp};
use continuum_engine::{
    ConceptView, LearnOutcome, Recall, RecallRequest, RememberRequest, SearchHit, SearchRequest,
    Stats, TenantErased, TenantInfo,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

type AppResult<T> = Result<T, ApiError>;
type St = State<Arc<AppState>>;

// One module per resource family; auth, extractors and the MCP mount beside them.
mod audit;
mod auth;
mod backups;
mod billing;
mod compat;
mod dashboard;
mod events;
mod export;
mod extract;
mod keys;
mod mcp;
mod memories;
mod records;
mod reflect;
mod service;
mod stream;
mod sync;
mod tenants;
mod webhooks;

use audit::*;
use auth::Auth;
pub(crate) use auth::{AuthFailures, ClientAddr};
use backups::*;
pub use backups::{BackupCatalog, BackupSummary};
use billing::*;
use compat::*;
use events::*;
use export::*;
use extract::*;
use keys::*;
use mcp::mcp_router;
pub(crate) use mcp::{MCP_SESSION_IDLE, McpSessions};
use memories::*;
use records::*;
use reflect::*;
use service::*;
pub(crate) use stream::{Stopping, Streams};
use stream::{StreamQuery, sse, ws};
use sync::*;
use tenants::*;
use webhooks::*;

/// The most items a listing returns, and the largest offset of the offset-paged listings:
/// the limits every interface shares.
use continuum_core::limits::{MAX_OFFSET, MAX_RESULTS as MAX_PAGE};

/// Every REST endpoint: its route and its documentation, from one list (see [`crate::openapi`]).
pub(crate) fn api() -> (Router<Arc<AppState>>, Value) {
    use Method as M;
    use Scope::{Admin, Operator, Read, Write};
    let compat = |tag, summary| Op::new(tag, summary).compat();
    Api::new()
        .op(
            M::GET,
            "/v1/health",
            health,
            compat("service", "Liveness: the process answers").returns::<Health>(),
        )
        .op(
            M::GET,
            "/",
            root,
            compat("service", "What this server is and its main endpoints").returns::<Root>(),
        )
        .op(
            M::GET,
            "/docs",
            docs,
            Op::new("service", "This API's documentation as a web page (HTML)").html(),
        )
        .op(
            M::GET,
            "/v1/whoami",
            whoami,
            Op::new("service", "The key's tenant, scope and public prefix")
                .scope(Read)
                .unmetered()
                .returns::<WhoAmI>(),
        )
        .op(
            M::GET,
            "/v1/ready",
            ready,
            Op::new(
                "service",
                "Readiness: the store answers; the background jobs and their states",
            )
            .returns::<Status>(),
        )
        .op(
            M::GET,
            "/v1/openapi.json",
            openapi,
            Op::new("service", "This OpenAPI document"),
        )
        .op(
            M::POST,
            "/v1/recall",
            recall_compat,
            compat(
                "recall",
                "Recall the context for a message (original service's shape)",
            )
            .scope(Read)
            .body::<RecallCompat>()
            .returns::<RecallCompatOut>()
            .usage(UsageKind::Recall),
        )
        .op(
            M::POST,
            "/v1/learn",
            learn_compat,
            compat("learn", "Learn a conversation turn")
                .scope(Write)
                .body::<LearnCompat>()
                .returns::<LearnCompatOut>()
            .usage(UsageKind::Learn),
        )
        .op(
            M::POST,
            "/v1/turn",
            turn_compat,
            compat(
                "learn",
                "Recall for the user's message, then learn the turn",
            )
            .scope(Write)
            .body::<TurnCompat>()
            .returns::<TurnOut>()
            .usage(UsageKind::Learn),
        )
        .op(
            M::GET,
            "/v1/stats",
            stats,
            compat("service", "Counts for the key's tenant")
                .scope(Read)
                .returns::<StatsOut>(),
        )
        .op(
            M::GET,
            "/v1/entities",
            entities,
            compat("concepts", "Concepts, most mentioned first, offset-paged")
                .scope(Read)
                .query::<EntitiesQuery>()
                .returns::<EntitiesOut>(),
        )
        .op(
            M::GET,
            "/v1/messages",
            messages,
            compat("memories", "Memories, newest first, offset-paged")
                .scope(Read)
                .query::<OffsetQuery>()
                .returns::<MessagesOut>(),
        )
        .op(
            M::POST,
            "/v1/messages/search",
            messages_search,
            compat("memories", "Full-text search")
                .scope(Read)
                .body::<SearchCompat>()
                .returns::<MessagesSearchOut>()
            .usage(UsageKind::Search),
        )
        .op(
            M::POST,
            "/v1/memories",
            memories_create,
            compat("memories", "Store a fact about an entity")
                .scope(Write)
                .body::<MemoryCompat>()
                .returns::<MemoryCreated>()
                .created()
            .usage(UsageKind::Learn),
        )
        .op(
            M::GET,
            "/v1/memories",
            memories_list,
            Op::new("memories", "Memories, newest first, cursor-paged, filtered")
                .scope(Read)
                .query::<ListQuery>()
                .returns::<Page<Memory>>(),
        )
        .op(
            M::GET,
            "/v1/events",
            events_list,
            Op::new(
                "events",
                "The tenant's event log after a position, oldest first: every write, typed, with its payload",
            )
            .scope(Read)
            .query::<EventsQuery>()
            .also(410, "Events from before the log's compaction point were asked for")
            .returns::<EventsOut>(),
        )
        .op(
            M::GET,
            "/v1/sync/pull",
            sync_pull,
            Op::new(
                "sync",
                "Another node pulls this node's synced events of the key's tenant after a position (memories, supersessions, forgets, links, decisions), with their origin",
            )
            .scope(Write)
            .query::<PullQuery>()
            .also(410, "Events from before the log's compaction point were asked for")
            .returns::<continuum_core::sync::PullPage>(),
        )
        .op(
            M::POST,
            "/v1/sync/push",
            sync_push,
            Op::new(
                "sync",
                "Another node pushes the events it wrote: applied once per origin position, all of the batch or none",
            )
            .scope(Write)
            .body::<continuum_core::sync::PushRequest>()
            .usage(UsageKind::Learn)
            .also(403, "An event names another tenant than the key's (the error names its index; nothing was applied)")
            .also(429, "The tenant's tier holds no more memories")
            .returns::<continuum_core::sync::PushReceipt>(),
        )
        .op(
            M::GET,
            "/v1/events/stream",
            sse,
            Op::new(
                "events",
                "The tenant's events as Server-Sent Events: a replay after `since` (or Last-Event-ID), then live, with heartbeats",
            )
            .scope(Read)
            .query::<StreamQuery>()
            .media("text/event-stream")
            .also(410, "Events from before the log's compaction point were asked for")
            .also(429, "Too many open streams for this key or server, or the rate limit"),
        )
        .op(
            M::GET,
            "/v1/ws",
            ws,
            Op::new(
                "events",
                "The tenant's events over a WebSocket: a replay after `since`, then live, with heartbeats; the key in a header or a first `auth` message",
            )
            .scope(Read)
            .query::<StreamQuery>()
            .upgrades()
            .also(410, "Events from before the log's compaction point were asked for")
            .also(426, "Not a WebSocket upgrade request"),
        )
        .op(
            M::GET,
            "/v1/memories/{id}",
            memories_get,
            Op::new("memories", "One memory")
                .scope(Read)
                .returns::<Memory>(),
        )
        .op(
            M::GET,
            "/v1/memories/{id}/versions",
            memories_versions,
            Op::new(
                "memories",
                "A memory's versions, oldest first: what it superseded and what superseded it",
            )
            .scope(Read)
            .returns::<VersionsOut>(),
        )
        .op(
            M::GET,
            "/v1/memories/{id}/concepts",
            memories_concepts,
            Op::new("memories", "The concepts a memory mentions")
                .scope(Read)
                .returns::<MemoryConceptsOut>(),
        )
        .op(
            M::DELETE,
            "/v1/memories/{id}",
            memories_forget,
            Op::new(
                "memories",
                "Forget one memory, from the store and every index",
            )
            .scope(Write)
            .returns::<Forgotten>(),
        )
        .op(
            M::POST,
            "/v1/memories/{id}/supersede",
            memories_supersede,
            Op::new(
                "memories",
                "Store a new version; the old one is kept, marked superseded",
            )
            .scope(Write)
            .body::<SupersedeBody>()
            .returns::<Memory>()
            .usage(UsageKind::Learn),
        )
        .op(
            M::POST,
            "/v1/search",
            search,
            Op::new("memories", "Full-text search with filters, offset-paged")
                .scope(Read)
                .body::<SearchBody>()
                .returns::<SearchOut>()
            .usage(UsageKind::Search),
        )
        .op(
            M::POST,
            "/v1/recall/native",
            recall_native,
            Op::new(
                "recall",
                "Recall: the context block and the ranked, explained memories",
            )
            .scope(Read)
            .body::<RecallBody>()
            .returns::<Recall>()
            .usage(UsageKind::Recall),
        )
        .op(
            M::GET,
            "/v1/sessions",
            sessions,
            Op::new("sessions", "Conversations by recent activity")
                .scope(Read)
                .query::<OffsetQuery>()
                .returns::<SessionsOut>(),
        )
        .op(
            M::DELETE,
            "/v1/sessions/{id}",
            sessions_forget,
            Op::new("sessions", "Forget a conversation's memories")
                .scope(Write)
                .returns::<Forgotten>(),
        )
        .op(
            M::GET,
            "/v1/concepts/{name}",
            concept,
            Op::new("concepts", "A concept and its strongest links")
                .scope(Read)
                .query::<OffsetQuery>()
                .returns::<ConceptView>(),
        )
        .op(
            M::GET,
            "/v1/graph",
            graph,
            Op::new("concepts", "A concept's neighbourhood as nodes and edges")
                .scope(Read)
                .query::<GraphQuery>()
                .also(404, "No such concept in this tenant")
            .returns::<GraphOut>(),
        )
        .op(
            M::GET,
            "/v1/concepts/{name}/timeline",
            concept_timeline,
            Op::new(
                "concepts",
                "How a concept evolved, from the event log: created, first linked to each concept, links past strength 0.5, 0.8 and the cap, contradicted",
            )
            .scope(Read)
            .returns::<continuum_engine::Timeline>(),
        )
        .op(
            M::GET,
            "/v1/growth",
            growth,
            Op::new(
                "concepts",
                "What grew in a window: memories, new concepts and links, the most active concepts",
            )
            .scope(Read)
            .query::<GrowthQuery>()
            .returns::<continuum_engine::Growth>(),
        )
        .op(
            M::POST,
            "/v1/snapshots",
            snapshots_create,
            Op::new(
                "concepts",
                "Take a snapshot of the concept graph's shape (counts, degree, strength, clusters, modularity, hubs) to compare later",
            )
            .scope(Write)
            .body::<SnapshotBody>()
            .returns::<continuum_core::reflection::GraphSnapshot>()
            .created()
            .also(409, "The tenant keeps the most snapshots allowed"),
        )
        .op(
            M::GET,
            "/v1/snapshots",
            snapshots_list,
            Op::new("concepts", "The tenant's graph snapshots, newest first")
                .scope(Read)
                .query::<SnapshotsQuery>()
                .returns::<SnapshotsOut>(),
        )
        .op(
            M::GET,
            "/v1/snapshots/compare",
            snapshots_compare,
            Op::new("concepts", "How the graph's shape changed from one snapshot to another")
                .scope(Read)
                .query::<CompareQuery>()
                .returns::<continuum_engine::SnapshotComparison>()
                .also(404, "No such snapshot in this tenant"),
        )
        .op(
            M::GET,
            "/v1/insights",
            insights,
            Op::new(
                "concepts",
                "What the concept graph says: clusters, the concepts that bridge them, and unlinked concepts that share neighbours",
            )
            .scope(Read)
            .query::<InsightsQuery>()
            .returns::<continuum_engine::Insights>(),
        )
        .op(
            M::GET,
            "/v1/dream",
            dream,
            Op::new(
                "concepts",
                "A seeded, repeatable random walk along the concept graph, with the memories that join each step",
            )
            .scope(Read)
            .query::<DreamQuery>()
            .returns::<continuum_engine::Dream>()
            .also(404, "No such concept to start from"),
        )
        .op(
            M::POST,
            "/v1/intentions",
            intentions_add,
            Op::new("reflection", "Set an intention: something to do, kept across sessions until done or abandoned")
                .scope(Write)
                .body::<IntentionBody>()
                .returns::<continuum_core::reflection::Intention>()
                .created()
                .also(409, "The tenant holds the most intentions allowed"),
        )
        .op(
            M::GET,
            "/v1/intentions",
            intentions_list,
            Op::new("reflection", "The tenant's intentions, highest priority first, then newest")
                .scope(Read)
                .query::<IntentionsQuery>()
                .returns::<IntentionsOut>(),
        )
        .op(
            M::GET,
            "/v1/intentions/resume",
            intentions_resume,
            Op::new("reflection", "The pending intentions grouped high (7-10), medium (4-6) and low, with a one-line summary: for the start of a session")
                .scope(Read)
                .returns::<continuum_engine::Resume>(),
        )
        .op(
            M::POST,
            "/v1/intentions/{id}/done",
            intentions_done,
            Op::new("reflection", "Mark a pending intention done")
                .scope(Write)
                .returns::<continuum_core::reflection::Intention>()
                .also(409, "The intention is not pending"),
        )
        .op(
            M::POST,
            "/v1/intentions/{id}/abandon",
            intentions_abandon,
            Op::new("reflection", "Abandon a pending intention, with a reason")
                .scope(Write)
                .body::<AbandonBody>()
                .returns::<continuum_core::reflection::Intention>()
                .also(409, "The intention is not pending"),
        )
        .op(
            M::POST,
            "/v1/beliefs",
            beliefs_add,
            Op::new("reflection", "Record a belief; the contradictions it has with the domain's active beliefs are recorded and returned")
                .scope(Write)
                .body::<BeliefBody>()
                .returns::<continuum_engine::BeliefAdded>()
                .created()
                .also(409, "The tenant holds the most beliefs allowed"),
        )
        .op(
            M::GET,
            "/v1/beliefs",
            beliefs_list,
            Op::new("reflection", "The tenant's beliefs, newest first")
                .scope(Read)
                .query::<BeliefsQuery>()
                .returns::<BeliefsOut>(),
        )
        .op(
            M::GET,
            "/v1/contradictions",
            contradictions_list,
            Op::new("reflection", "Contradictions found between beliefs, newest first, with both texts")
                .scope(Read)
                .query::<ContradictionsQuery>()
                .returns::<ContradictionsOut>(),
        )
        .op(
            M::POST,
            "/v1/contradictions/{id}/resolve",
            contradictions_resolve,
            Op::new("reflection", "Resolve a contradiction by keeping one of its beliefs; the other is superseded")
                .scope(Write)
                .body::<ResolveBody>()
                .returns::<continuum_engine::Resolution>()
                .also(409, "The contradiction is resolved already"),
        )
        .op(
            M::POST,
            "/v1/claims",
            claims_add,
            Op::new("reflection", "Record a claim with a confidence, to verify later")
                .scope(Write)
                .body::<ClaimBody>()
                .returns::<continuum_core::reflection::Claim>()
                .created()
                .also(409, "The tenant holds the most claims allowed"),
        )
        .op(
            M::GET,
            "/v1/claims",
            claims_list,
            Op::new("reflection", "The tenant's claims, newest first")
                .scope(Read)
                .query::<ClaimsQuery>()
                .returns::<ClaimsOut>(),
        )
        .op(
            M::POST,
            "/v1/claims/{id}/verify",
            claims_verify,
            Op::new("reflection", "Record whether a claim turned out correct (once)")
                .scope(Write)
                .body::<VerifyBody>()
                .returns::<continuum_core::reflection::Claim>()
                .also(409, "The claim was verified already"),
        )
        .op(
            M::GET,
            "/v1/calibration",
            calibration,
            Op::new("reflection", "How well the confidences of verified claims matched outcomes: Brier score, reliability table, expected calibration error, advice; overall and per category")
                .scope(Read)
                .query::<CalibrationQuery>()
                .returns::<continuum_engine::Calibration>(),
        )
        .op(
            M::GET,
            "/v1/keys",
            keys_list,
            Op::new("keys", "The tenant's API keys (never their secrets)")
                .scope(Admin)
                .returns::<KeysOut>(),
        )
        .op(
            M::POST,
            "/v1/keys",
            keys_create,
            Op::new(
                "keys",
                "Create an API key for the tenant; the secret is in this response only",
            )
            .scope(Admin)
            .body::<KeyCreate>()
            .returns::<KeyCreated>()
            .created(),
        )
        .op(
            M::POST,
            "/v1/keys/{prefix}/rotate",
            keys_rotate,
            Op::new(
                "keys",
                "Replace a key with a new one (same scope and name); the old one works until the overlap ends",
            )
            .scope(Admin)
            .body::<KeyRotate>()
            .returns::<KeyRotated>()
            .created(),
        )
        .op(
            M::DELETE,
            "/v1/keys/{prefix}",
            keys_revoke,
            Op::new("keys", "Revoke one of the tenant's keys")
                .scope(Admin)
                .returns::<Revoked>(),
        )
        .op(
            M::GET,
            "/v1/webhooks",
            webhooks_list,
            Op::new("webhooks", "The tenant's webhook subscriptions (never their secrets)")
                .scope(Admin)
                .returns::<WebhooksOut>(),
        )
        .op(
            M::POST,
            "/v1/webhooks",
            webhooks_create,
            Op::new(
                "webhooks",
                "Subscribe a URL to the tenant's events from now on; the signing secret is in this response only",
            )
            .scope(Admin)
            .body::<WebhookCreate>()
            .returns::<continuum_engine::WebhookWithSecret>()
            .created()
            .also(403, "The URL points where webhooks may not go: a private, loopback or link-local address, or it holds credentials")
            .also(409, "The tenant already holds the most subscriptions allowed"),
        )
        .op(
            M::DELETE,
            "/v1/webhooks/{id}",
            webhooks_delete,
            Op::new("webhooks", "Delete a subscription and its delivery records")
                .scope(Admin)
                .returns::<WebhookDeleted>(),
        )
        .op(
            M::POST,
            "/v1/webhooks/{id}/rotate-secret",
            webhooks_rotate,
            Op::new(
                "webhooks",
                "A new signing secret; the old one still signs beside it for the overlap",
            )
            .scope(Admin)
            .body::<RotateBody>()
            .returns::<continuum_engine::WebhookWithSecret>(),
        )
        .op(
            M::GET,
            "/v1/webhooks/{id}/deliveries",
            webhooks_deliveries,
            Op::new(
                "webhooks",
                "A subscription's deliveries, newest event first: attempts, last status, dead letters",
            )
            .scope(Admin)
            .query::<DeliveriesQuery>()
            .returns::<DeliveriesOut>(),
        )
        .op(
            M::POST,
            "/v1/webhooks/{id}/deliveries/{delivery}/retry",
            webhooks_retry,
            Op::new(
                "webhooks",
                "Send a delivery again now (a dead letter, say) and record the result",
            )
            .scope(Admin)
            .returns::<continuum_core::webhook::Delivery>()
            .also(410, "The event is no longer in the log"),
        )
        .op(
            M::GET,
            "/v1/tenants",
            tenants_list,
            Op::new(
                "tenants",
                "Every tenant with its memory and key counts (never its content)",
            )
            .scope(Operator)
            .returns::<TenantsOut>(),
        )
        .op(
            M::POST,
            "/v1/tenants",
            tenants_create,
            Op::new(
                "tenants",
                "Create a tenant and its first admin key; the secret is in this response only",
            )
            .scope(Operator)
            .body::<TenantCreate>()
            .returns::<TenantCreated>()
            .created()
            .also(409, "The tenant already holds memories or a working key"),
        )
        .op(
            M::DELETE,
            "/v1/tenants/{id}",
            tenants_erase,
            Op::new(
                "tenants",
                "Erase a tenant: delete everything it stored, revoke its keys",
            )
            .scope(Operator)
            .returns::<TenantErased>(),
        )
        .op(
            M::GET,
            "/v1/tenants/{id}/plan",
            tenant_plan_get,
            Op::new("tenants", "A tenant's tier, its quotas and the plan behind it")
                .scope(Operator)
                .returns::<continuum_engine::PlanView>(),
        )
        .op(
            M::POST,
            "/v1/tenants/{id}/tier",
            tenant_tier_set,
            Op::new(
                "tenants",
                "Put a tenant on a tier; takes effect at once (within 5 s on other servers)",
            )
            .scope(Operator)
            .body::<TierSet>()
            .returns::<continuum_engine::PlanView>(),
        )
        .op(
            M::GET,
            "/v1/usage",
            usage_get,
            Op::new(
                "usage",
                "Usage per tenant and UTC day: requests by kind, embeddings, webhook deliveries, memories and bytes stored",
            )
            .scope(Admin)
            .unmetered()
            .query::<UsageQuery>()
            .returns::<continuum_engine::UsageReport>(),
        )
        .op(
            M::GET,
            "/v1/plan",
            plan_get,
            Op::new("usage", "This key's tenant's tier and quotas")
                .scope(Read)
                .unmetered()
                .returns::<continuum_engine::PlanView>(),
        )
        .op(
            M::GET,
            "/v1/tiers",
            tiers_list,
            Op::new("usage", "The tiers this server defines, with their quotas")
                .scope(Read)
                .unmetered()
                .returns::<TiersOut>(),
        )
        .op(
            M::GET,
            "/v1/export",
            export_tenant,
            Op::new(
                "memories",
                "Everything stored about the key's tenant, as JSON Lines (what `continuum export` writes): for data-subject access and moving a tenant",
            )
            .scope(Admin)
            .media("application/x-ndjson")
            .also(413, "The export is over 64 MiB: use `continuum export` against the store"),
        )
        .op(
            M::GET,
            "/v1/audit",
            audit_list,
            Op::new(
                "audit",
                "The audit log, oldest first: an admin's tenant's entries, or (operator) all",
            )
            .scope(Admin)
            .query::<AuditQuery>()
            .returns::<AuditOut>(),
        )
        .op(
            M::GET,
            "/v1/backups",
            backups_list,
            Op::new(
                "operations",
                "The backups at the destination this server backs up to, oldest first",
            )
            .scope(Operator)
            .returns::<BackupsOut>()
            .also(404, "Backups are not scheduled on this server")
            .also(503, "The destination could not be listed"),
        )
        .op(
            M::GET,
            "/v1/audit/verify",
            audit_verify,
            Op::new(
                "audit",
                "Check the audit log's hash chain; names the first entry altered, removed or reordered",
            )
            .scope(Operator)
            .returns::<continuum_engine::AuditVerification>(),
        )
        .op(
            M::POST,
            "/v1/billing/stripe",
            stripe_hook,
            Op::new(
                "billing",
                "Stripe webhooks (verified by Stripe-Signature, not an API key): subscription events set tenants' tiers",
            )
            .returns::<StripeReceipt>()
            .also(400, "The signature is missing, wrong or too old, or the body is not an event")
            .also(404, "Billing is not configured on this server"),
        )
        .finish()
}

pub(crate) fn router(
    routes: Router<Arc<AppState>>,
    state: Arc<AppState>,
    config: &ServerConfig,
) -> Router {
    let routes = if config.metrics_on_api {
        routes.route("/metrics", axum::routing::get(metrics_behind_key))
    } else {
        routes
    };
    let routes = if config.dashboard {
        dashboard::routes(routes)
    } else {
        routes
    };
    let timeout = config.request_timeout;
    let max_body = config.max_body_bytes;
    let api = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .merge(mcp_router(state))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: axum::middleware::Next| deadline(timeout, req, next),
        ))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: axum::middleware::Next| header_limits(max_body, req, next),
        ))
        .layer(axum::middleware::from_fn_with_state(
            crate::observe::PerTenant(config.metrics_per_tenant),
            crate::observe::observe,
        ));
    match cors(config) {
        Some(layer) => api.layer(layer),
        None => api,
    }
}

fn cors(config: &ServerConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origins = if config.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers(Any),
    )
}

/// `GET /metrics` on the API listener: operators only.
async fn metrics_behind_key(auth: Auth, State(s): St) -> AppResult<axum::response::Response> {
    auth.require(Scope::Operator)?;
    Ok(crate::observe::exposition(&s).await)
}

/// Answers 431, in the error envelope, to a request with more than [`crate::MAX_HEADERS`]
/// header fields or more than [`crate::MAX_HEADER_BYTES`] of them.
/// Also answers 413 at once to a request whose declared `Content-Length` is over the body
/// limit, before any of the body is read.
async fn header_limits(
    max_body: usize,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let h = req.headers();
    let declared = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return ApiError::Http {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!("request body is over the size limit ({max_body} bytes)"),
        }
        .into_response();
    }
    let bytes: usize = h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if h.len() > crate::MAX_HEADERS || bytes > crate::MAX_HEADER_BYTES {
        return ApiError::Http {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            code: "headers_too_large",
            message: format!(
                "at most {} header fields and {} bytes of them are accepted",
                crate::MAX_HEADERS,
                crate::MAX_HEADER_BYTES
            ),
        }
        .into_response();
    }
    next.run(req).await
}

/// Answers 408, in the error envelope, when a request takes longer than `limit`.
async fn deadline(
    limit: std::time::Duration,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Http {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "timeout",
            message: format!(
                "the request took longer than {} s and was abandoned",
                limit.as_secs_f64()
            ),
        }
        .into_response(),
    }
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::Http {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: format!("{method} is not allowed on this endpoint"),
    }
}

async fn not_found() -> ApiError {
    ApiError::Http {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such endpoint".into(),
    }
}
