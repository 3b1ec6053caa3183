//! Metering, quotas and the Stripe hook over real HTTP: a tier's rate, daily request and
//! storage quotas answered 429 with what to do; usage as admins and operators see it; Stripe
//! events signed as Stripe signs them changing tiers, and forged, stale and replayed ones not.

mod common;

use common::start_with_tiers;
use continuum_core::account::{Tier, Tiers};
use continuum_core::keys::Scope;
use continuum_server::ServerConfig;
use continuum_webhooks::stripe::{self, StripeConfig};
use serde_json::{Value, json};

const SECRET: &str = "whsec_test_endpoint_secret";

fn tiers() -> Tiers {
    Tiers::new(
        vec![
            Tier::parse("tiny:memories=4,requests_per_day=6").unwrap(),
            Tier::parse("slow:rate=1").unwrap(),
        ],
        None,
    )
    .unwrap()
}

fn config() -> ServerConfig {
    ServerConfig {
        stripe: Some(StripeConfig {
            secret: SECRET.into(),
            prices: [("price_pro".to_string(), "pro".to_string())].into(),
            fallback_tier: "tiny".into(),
            tolerance_secs: 300,
        }),
        ..ServerConfig::default()
    }
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut r = c.request(method, url).header("x-api-key", key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

fn turn(n: usize) -> Value {
    json!({"user_message": format!("Question {n} about the deploy"), "ai_response": format!("Answer {n}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_answer_429_saying_which_and_a_new_tier_applies_at_once() {
    let s = start_with_tiers(config(), tiers()).await;
    let c = reqwest::Client::new();
    let admin = s.key("acme", Scope::Admin).await;
    let op = s.key("ops", Scope::Operator).await;
    let tier = |t: &str| json!({"tier": t});
    let (st, body, _) = call(
        &c,
        reqwest::Method::POST,
        format!("{}/v1/tenants/acme/tier", s.base),
        &admin,
        Some(tier("tiny")),
    )
    .await;
    assert_eq!(st, 403, "an admin cannot choose its own tier: {body}");
    let (st, body, _) = call(
        &c,
        reqwest::Method::POST,
        format!("{}/v1/tenants/acme/tier", s.base),
        &op,
        Some(tier("gold")),
    )
    .await;
    assert_eq!(st, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown tier")
    );
    let (st, body, _) = call(
        &c,
        reqwest::Method::POST,
        format!("{}/v1/tenants/acme/tier", s.base),
        &op,
        Some(tier("tiny")),
    )
    .await;
    assert_eq!(
        (st, body["tier"]["name"].as_str()),
        (200, Some("tiny")),
        "{body}"
    );

    // Storage: two turns fill the four memories; the third is refused whole.
    for n in 0..2 {
        let (st, body, _) = call(
            &c,
            reqwest::Method::POST,
            format!("{}/v1/learn", s.base),
            &admin,
            Some(turn(n)),
        )
        .await;
        assert_eq!(st, 200, "{body}");
    }
    let (st, body, retry) = call(
        &c,
        reqwest::Method::POST,
        format!("{}/v1/learn", s.base),
        &admin,
        Some(turn(2)),
    )
    .await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("storage quota") && msg.contains("Forget"),
        "{msg}"
    );
    assert_eq!(retry, None, "storage does not reset by itself");
    let (_, stats, _) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/v1/stats", s.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(stats["messages"], 4, "{stats}");

    // Requests per day: 6 in all (2 learns, the refused learn, stats: 4 so far).
    let mut codes = Vec::new();
    for _ in 0..3 {
        let (st, body, retry) = call(
            &c,
            reqwest::Method::POST,
            format!("{}/v1/search", s.base),
            &admin,
            Some(json!({"query": "deploy"})),
        )
        .await;
        codes.push(st);
        if st == 429 {
            assert_eq!(body["error"]["code"], "quota_exceeded");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("6 requests per day")
            );
            let wait: u64 = retry.unwrap().parse().unwrap();
            assert!((1..=86_400).contains(&wait), "{wait}");
        }
    }
    assert_eq!(codes, vec![200, 200, 429]);

    // Usage, as the admin sees it (its own tenant) and as an operator sees it (every one):
    // reading usage and the plan stays possible over the quota, and is not counted.
    let (st, usage, _) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/v1/usage", s.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 200, "{usage}");
    let day = &usage["days"][0];
    assert_eq!(usage["days"].as_array().unwrap().len(), 1, "{usage}");
    assert_eq!(
        (
            day["tenant"].as_str(),
            day["learn"].as_u64(),
            day["search"].as_u64(),
            day["other"].as_u64()
        ),
        (Some("acme"), Some(3), Some(2), Some(1)),
        "requests the daily quota refused are not counted: {usage}"
    );
    assert_eq!(day["memories"], 4);
    let (_, all, _) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/v1/usage", s.base),
        &op,
        None,
    )
    .await;
    let tenants: Vec<&str> = all["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tenant"].as_str().unwrap())
        .collect();
    assert!(
        tenants.contains(&"acme") && tenants.contains(&"ops"),
        "{all}"
    );
    let (st, _, _) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/v1/usage?tenant=ops", s.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 403);

    // A larger tier: at once, no restart.
    let (st, _, _) = call(
        &c,
        reqwest::Method::POST,
        format!("{}/v1/tenants/acme/tier", s.base),
        &op,
        Some(tier("pro")),
    )
    .await;
    assert_eq!(st, 200);
    let (st, body, _) = call(
        &c,
        reqwest::Method::POST,
        format!("{}/v1/learn", s.base),
        &admin,
        Some(turn(3)),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (_, plan, _) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/v1/plan", s.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(plan["tier"]["name"], "pro");
    assert_eq!(plan["plan"]["source"], "operator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_rate_per_key_is_enforced_below_the_servers() {
    let s = start_with_tiers(config(), tiers()).await;
    let c = reqwest::Client::new();
    let key = s.key("acme", Scope::Read).await;
    let op = s.key("ops", Scope::Operator).await;
    call(
        &c,
        reqwest::Method::POST,
        format!("{}/v1/tenants/acme/tier", s.base),
        &op,
        Some(json!({"tier": "slow"})),
    )
    .await;
    // One per second, bursts of two: the third request in a row is refused.
    let mut codes = Vec::new();
    for _ in 0..3 {
        let (st, body, retry) = call(
            &c,
            reqwest::Method::GET,
            format!("{}/v1/stats", s.base),
            &key,
            None,
        )
        .await;
        if st == 429 {
            assert_eq!(body["error"]["code"], "rate_limited");
            assert_eq!(retry.as_deref(), Some("1"));
        }
        codes.push(st);
    }
    assert_eq!(codes, vec![200, 200, 429]);
    // The operator's tenant is on the default tier: not slowed.
    for _ in 0..5 {
        let (st, _, _) = call(
            &c,
            reqwest::Method::GET,
            format!("{}/v1/tiers", s.base),
            &op,
            None,
        )
        .await;
        assert_eq!(st, 200);
    }
}

fn event(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "object": "event", "type": kind, "created": created,
        "data": {"object": object}
    }))
    .unwrap()
}

fn subscription(status: &str) -> Value {
    json!({
        "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status,
        "metadata": {"tenant": "acme"},
        "items": {"object": "list", "data": [{"price": {"id": "price_pro"}}]}
    })
}

async fn post_stripe(
    c: &reqwest::Client,
    base: &str,
    body: &[u8],
    signature: Option<String>,
) -> (u16, Value) {
    let mut r = c
        .post(format!("{base}/v1/billing/stripe"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(sig) = signature {
        r = r.header("stripe-signature", sig);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_events_set_tiers_and_forged_stale_or_replayed_ones_do_not() {
    let s = start_with_tiers(config(), tiers()).await;
    let c = reqwest::Client::new();
    let admin = s.key("acme", Scope::Read).await;
    let tier_now = || async {
        let (_, plan, _) = call(
            &c,
            reqwest::Method::GET,
            format!("{}/v1/plan", s.base),
            &admin,
            None,
        )
        .await;
        plan["tier"]["name"].as_str().unwrap().to_string()
    };
    assert_eq!(tier_now().await, "unlimited");
    let t = now();

    let created = event(
        "evt_1",
        "customer.subscription.created",
        t - 10,
        subscription("active"),
    );
    let (st, r) = post_stripe(
        &c,
        &s.base,
        &created,
        Some(stripe::sign(SECRET, t, &created)),
    )
    .await;
    assert_eq!((st, r["outcome"].as_str()), (200, Some("applied")), "{r}");
    assert_eq!(tier_now().await, "pro");

    // Forged: signed with another secret; tampered: the body changed after signing.
    let failed = event(
        "evt_2",
        "invoice.payment_failed",
        t - 5,
        json!({
            "customer": "cus_1",
            "parent": {"subscription_details": {"subscription": "sub_1", "metadata": {"tenant": "acme"}}}
        }),
    );
    let (st, r) = post_stripe(
        &c,
        &s.base,
        &failed,
        Some(stripe::sign("whsec_forged", t, &failed)),
    )
    .await;
    assert_eq!(
        (st, r["error"]["code"].as_str()),
        (400, Some("invalid_signature")),
        "{r}"
    );
    let sig = stripe::sign(SECRET, t, &created);
    let (st, _) = post_stripe(&c, &s.base, &failed, Some(sig)).await;
    assert_eq!(st, 400);
    let (st, _) = post_stripe(&c, &s.base, &failed, None).await;
    assert_eq!(st, 400);
    // Stale: signed more than five minutes ago.
    let (st, r) = post_stripe(
        &c,
        &s.base,
        &failed,
        Some(stripe::sign(SECRET, t - 301, &failed)),
    )
    .await;
    assert_eq!(
        (st, r["error"]["code"].as_str()),
        (400, Some("stale_signature")),
        "{r}"
    );
    assert_eq!(tier_now().await, "pro", "nothing refused changed the tier");

    // The real payment failure: down to the fallback tier.
    let (st, r) = post_stripe(&c, &s.base, &failed, Some(stripe::sign(SECRET, t, &failed))).await;
    assert_eq!(
        (st, r["outcome"].as_str(), r["tier"].as_str()),
        (200, Some("applied"), Some("tiny")),
        "{r}"
    );
    assert_eq!(tier_now().await, "tiny");

    // A replay of the first event, freshly signed (the same id): acknowledged, not applied.
    let (st, r) = post_stripe(
        &c,
        &s.base,
        &created,
        Some(stripe::sign(SECRET, now(), &created)),
    )
    .await;
    assert_eq!((st, r["outcome"].as_str()), (200, Some("duplicate")), "{r}");
    assert_eq!(tier_now().await, "tiny");

    // An update created before the payment failure, delivered late: recorded, not applied.
    let late = event(
        "evt_0",
        "customer.subscription.updated",
        t - 20,
        subscription("active"),
    );
    let (st, r) = post_stripe(&c, &s.base, &late, Some(stripe::sign(SECRET, t, &late))).await;
    assert_eq!((st, r["outcome"].as_str()), (200, Some("stale")), "{r}");
    assert_eq!(tier_now().await, "tiny");

    // Paid again, then cancelled.
    let paid = event(
        "evt_3",
        "customer.subscription.updated",
        t,
        subscription("active"),
    );
    post_stripe(&c, &s.base, &paid, Some(stripe::sign(SECRET, t, &paid))).await;
    assert_eq!(tier_now().await, "pro");
    let gone = event(
        "evt_4",
        "customer.subscription.deleted",
        t + 1,
        subscription("canceled"),
    );
    post_stripe(&c, &s.base, &gone, Some(stripe::sign(SECRET, t, &gone))).await;
    assert_eq!(tier_now().await, "tiny");
    let (_, plan, _) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/v1/plan", s.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (
            plan["plan"]["source"].as_str(),
            plan["plan"]["status"].as_str(),
            plan["plan"]["subscription"].as_str()
        ),
        (Some("stripe"), Some("canceled"), Some("sub_1"))
    );

    // Unknown types are acknowledged and ignored.
    let other = event("evt_5", "charge.succeeded", t, json!({"id": "ch_1"}));
    let (st, r) = post_stripe(&c, &s.base, &other, Some(stripe::sign(SECRET, t, &other))).await;
    assert_eq!((st, r["outcome"].as_str()), (200, Some("ignored")), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stripe_secret_the_hook_is_not_there() {
    let s = start_with_tiers(ServerConfig::default(), tiers()).await;
    let body = event(
        "evt_1",
        "customer.subscription.created",
        now(),
        subscription("active"),
    );
    let (st, r) = post_stripe(
        &reqwest::Client::new(),
        &s.base,
        &body,
        Some(stripe::sign(SECRET, now(), &body)),
    )
    .await;
    assert_eq!(
        (st, r["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{r}"
    );
}
