//! `GET /v1/export`: a tenant's whole store as JSON Lines for its admin, never another
//! tenant's, recorded in the audit log.

mod common;

use common::start;
use continuum_core::keys::{Caller, Scope};
use continuum_core::{Source, TenantId};
use continuum_engine::RememberRequest;
use continuum_server::ServerConfig;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_downloads_its_tenant_and_nothing_else() {
    let s = start(ServerConfig::default()).await;
    let admin = s.key("acme", Scope::Admin).await;
    let reader = s.key("acme", Scope::Read).await;
    for (t, text) in [
        ("acme", "Acme's invoices go out on Mondays."),
        ("other", "Other's secret recipe."),
    ] {
        s.engine
            .remember(
                &TenantId::new(t).unwrap(),
                RememberRequest::new(text, Source::Fact),
            )
            .await
            .unwrap();
    }
    let c = reqwest::Client::new();
    let r = c
        .get(format!("{}/v1/export", s.base))
        .header("x-api-key", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("acme.jsonl")
    );
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["tenant"], "acme", "{}", lines[0]);
    assert!(text.contains("invoices go out on Mondays"));
    assert!(!text.contains("secret recipe"), "never another tenant's");

    let r = c
        .get(format!("{}/v1/export", s.base))
        .header("x-api-key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "an export is an admin's");

    let ops = Caller::local(TenantId::new("ops").unwrap());
    let audit = s.engine.audit_log(ops, 0, 100).await.unwrap();
    let export = audit
        .iter()
        .find(|e| e.action == "export")
        .expect("the export is audited");
    assert_eq!(export.tenant.as_deref(), Some("acme"));
    assert!(export.actor.starts_with("key:"), "{export:?}");
}
