//! The delivery job against real receivers on loopback (an HTTP server in this test), over a
//! SQLite store: signatures checked with the Standard Webhooks algorithm, retries on the
//! schedule, dead letters, order, secret rotation, and private targets refused.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use continuum_core::webhook::DeliveryState;
use continuum_core::{Source, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig, RememberRequest};
use continuum_ops::CancellationToken;
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use continuum_webhooks::{Deliverer, DeliveryConfig, sign};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a receiver got: headers, body, when.
#[derive(Clone)]
struct Got {
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

/// A receiver on a loopback port answering `answers` in turn (then 200), recording requests.
async fn receiver(answers: Vec<u16>) -> (String, Arc<Mutex<Vec<Got>>>) {
    receiver_after(answers, Duration::ZERO).await
}

/// [`receiver`], taking `delay` before each answer.
async fn receiver_after(answers: Vec<u16>, delay: Duration) -> (String, Arc<Mutex<Vec<Got>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(answers.into_iter()));
    let (g, sc) = (got.clone(), script.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (g, sc) = (g.clone(), sc.clone());
            async move {
                g.lock().unwrap().push(Got {
                    headers,
                    body,
                    at: Instant::now(),
                });
                let code = sc.lock().unwrap().next().unwrap_or(200);
                tokio::time::sleep(delay).await;
                StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

fn engine(dir: &std::path::Path) -> Engine {
    let store = SqliteStore::open(
        dir.join("continuum.db"),
        &SqliteOptions::default(),
        Timestamp(0),
    )
    .unwrap();
    Engine::new(Arc::new(store), EngineConfig::default()).unwrap()
}

fn quick(allow_private: bool, schedule_ms: &[u64]) -> DeliveryConfig {
    DeliveryConfig {
        allow_private,
        schedule: schedule_ms
            .iter()
            .map(|m| Duration::from_millis(*m))
            .collect(),
        timeout: Duration::from_secs(5),
        poll: Duration::from_millis(20),
        ..DeliveryConfig::default()
    }
}

fn start(d: &Deliverer) -> CancellationToken {
    let stop = CancellationToken::new();
    let (d, s) = (d.clone(), stop.clone());
    tokio::spawn(async move { d.run(s).await.unwrap() });
    stop
}

async fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "waited 20 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Verifies a request as a receiver's Standard Webhooks library would.
fn verified(g: &Got, secret: &str) -> bool {
    let h = |n: &str| g.headers[n].to_str().unwrap().to_string();
    sign::verify(
        secret,
        &h("webhook-id"),
        &h("webhook-timestamp"),
        &g.body,
        &h("webhook-signature"),
        now_secs(),
    )
}

fn json(g: &Got) -> serde_json::Value {
    serde_json::from_slice(&g.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_on_the_schedule_then_delivered_signed_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let t = TenantId::new("acme").unwrap();
    let (url, got) = receiver(vec![500, 500, 500]).await;
    let created = e
        .create_webhook(&t, &url, vec!["memory.created".into()], Some("test".into()))
        .await
        .unwrap();
    let d = Deliverer::new(e.clone(), quick(true, &[100, 200, 400, 400])).unwrap();
    let stop = start(&d);

    let first = e
        .remember(
            &t,
            RememberRequest::new("First fact for the receiver.", Source::User),
        )
        .await
        .unwrap();
    let second = e
        .remember(
            &t,
            RememberRequest::new("Second fact, sent after the first.", Source::User),
        )
        .await
        .unwrap();
    wait_for("five requests", || got.lock().unwrap().len() >= 5).await;
    let got = got.lock().unwrap().clone();

    // Four attempts of the first event (500, 500, 500, 200), then the second: in order.
    let ids: Vec<String> = got
        .iter()
        .map(|g| g.headers["webhook-id"].to_str().unwrap().to_string())
        .collect();
    assert!(ids[..4].iter().all(|i| i == &ids[0]), "{ids:?}");
    assert_ne!(ids[4], ids[0]);
    assert_eq!(json(&got[0])["data"]["memory"]["id"], first.id.to_string());
    assert_eq!(json(&got[4])["data"]["memory"]["id"], second.id.to_string());
    assert_eq!(json(&got[4])["type"], "memory.created");
    // The pauses follow the schedule (each at least 80% of its step, the jitter's floor).
    for (k, step) in [100u64, 200, 400].iter().enumerate() {
        let gap = got[k + 1].at - got[k].at;
        assert!(
            gap >= Duration::from_millis(step * 8 / 10),
            "attempt {} came {gap:?} after the previous one (step {step} ms)",
            k + 2
        );
    }
    // Every request is signed with the subscription's secret, and not with another.
    assert!(got.iter().all(|g| verified(g, &created.secret)));
    assert!(!verified(&got[0], "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    assert_eq!(got[0].headers["content-type"], "application/json");

    // The records: delivered, after four attempts and one. The job records a delivery after
    // the receiver has answered, so wait for the last record (the job was stopped after the
    // fifth request arrived, possibly before that record was written).
    let started = Instant::now();
    let records = loop {
        let r = e
            .webhook_deliveries(&t, &created.webhook.id, 10)
            .await
            .unwrap();
        if r.len() == 2 && r.iter().all(|d| d.state == DeliveryState::Delivered) {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{r:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].attempts, 4, "{records:?}");
    assert_eq!(records[1].state, DeliveryState::Delivered);
    assert_eq!(records[0].attempts, 1);
    let started = Instant::now();
    let view = loop {
        let v = e.webhooks(&t).await.unwrap().remove(0);
        if v.position == records[0].seq || started.elapsed() > Duration::from_secs(20) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    stop.cancel();
    assert_eq!(view.position, records[0].seq);
    assert!(view.failing_since.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_good_dead_letters_and_the_next_event_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let t = TenantId::new("acme").unwrap();
    // A port with nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let w = e
        .create_webhook(
            &t,
            &format!("http://{closed}/hook"),
            vec!["memory.created".into()],
            None,
        )
        .await
        .unwrap();
    let d = Deliverer::new(e.clone(), quick(true, &[20, 20])).unwrap();
    let stop = start(&d);
    e.remember(&t, RememberRequest::new("Nobody hears this.", Source::User))
        .await
        .unwrap();
    e.remember(&t, RememberRequest::new("Nor this one.", Source::User))
        .await
        .unwrap();
    let id = w.webhook.id.clone();
    let (e2, t2) = (e.clone(), t.clone());
    let dead = move || {
        let (e2, t2, id) = (e2.clone(), t2.clone(), id.clone());
        async move {
            e2.webhook_deliveries(&t2, &id, 10)
                .await
                .unwrap()
                .iter()
                .filter(|d| d.state == DeliveryState::Failed)
                .count()
        }
    };
    let started = Instant::now();
    while dead().await < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no dead letters"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let records = e.webhook_deliveries(&t, &w.webhook.id, 10).await.unwrap();
    for r in &records {
        assert_eq!(r.attempts, 3, "{r:?}");
        assert!(
            r.last_error.as_deref().unwrap().contains("connect"),
            "{:?}",
            r.last_error
        );
        assert!(r.last_status.is_none());
    }
    let view = &e.webhooks(&t).await.unwrap()[0];
    assert!(view.failing_since.is_some());
    assert_eq!(view.position, records[0].seq, "moved past its dead letters");

    // A dead letter sent again on request, once the receiver is back.
    let (url, got) = receiver(vec![]).await;
    let mut hook = e.all_webhooks().await.unwrap().remove(0);
    hook.url = url;
    let (_, letter) = e
        .webhook_delivery(&t, &w.webhook.id, &records[1].id)
        .await
        .unwrap();
    let again = d.retry(&hook, letter).await.unwrap();
    assert_eq!(again.state, DeliveryState::Delivered);
    assert_eq!(again.attempts, 4);
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_unless_allowed_and_rotation_signs_with_both_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let t = TenantId::new("acme").unwrap();
    let (url, got) = receiver(vec![]).await;
    let w = e
        .create_webhook(&t, &url, vec!["memory.created".into()], None)
        .await
        .unwrap();

    // Without the allowance, a loopback receiver is never contacted.
    let strict = Deliverer::new(e.clone(), quick(false, &[10])).unwrap();
    let stop = start(&strict);
    e.remember(
        &t,
        RememberRequest::new("Must not leave the machine.", Source::User),
    )
    .await
    .unwrap();
    let (e2, t2, id) = (e.clone(), t.clone(), w.webhook.id.clone());
    let started = Instant::now();
    loop {
        let r = e2.webhook_deliveries(&t2, &id, 10).await.unwrap();
        if r.first().is_some_and(|d| d.state == DeliveryState::Failed) {
            let err = r[0].last_error.clone().unwrap();
            assert!(err.contains("not a public address"), "{err}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    assert!(
        got.lock().unwrap().is_empty(),
        "a private target was contacted"
    );

    // Rotated with an overlap: the next delivery carries two signatures, each verifying.
    let rotated = e
        .rotate_webhook_secret(&t, &w.webhook.id, 3_600_000)
        .await
        .unwrap();
    assert_ne!(rotated.secret, w.secret);
    assert!(rotated.webhook.previous_secret_until.is_some());
    let open = Deliverer::new(e.clone(), quick(true, &[10])).unwrap();
    let stop = start(&open);
    e.remember(
        &t,
        RememberRequest::new("Signed twice during the overlap.", Source::User),
    )
    .await
    .unwrap();
    wait_for("one request", || !got.lock().unwrap().is_empty()).await;
    stop.cancel();
    let g = got.lock().unwrap()[0].clone();
    let header = g.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(header.split(' ').count(), 2, "{header}");
    assert!(verified(&g, &rotated.secret));
    assert!(verified(&g, &w.secret));

    // Without an overlap, only the new secret signs.
    let rotated_again = e.rotate_webhook_secret(&t, &w.webhook.id, 0).await.unwrap();
    assert!(rotated_again.webhook.previous_secret_until.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_hold_up_other_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let t = TenantId::new("acme").unwrap();
    let (slow_url, slow) = receiver_after(vec![], Duration::from_secs(4)).await;
    let (fast_url, fast) = receiver(vec![]).await;
    let events = vec!["memory.created".to_string()];
    e.create_webhook(&t, &slow_url, events.clone(), None)
        .await
        .unwrap();
    e.create_webhook(&t, &fast_url, events, None).await.unwrap();
    let d = Deliverer::new(e.clone(), quick(true, &[100])).unwrap();
    let stop = start(&d);
    let started = Instant::now();
    e.remember(
        &t,
        RememberRequest::new("Wanted by both receivers.", Source::User),
    )
    .await
    .unwrap();
    wait_for("the fast receiver", || !fast.lock().unwrap().is_empty()).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the fast receiver waited {:?} behind the slow one",
        started.elapsed()
    );
    wait_for("the slow receiver", || !slow.lock().unwrap().is_empty()).await;
    stop.cancel();
}
