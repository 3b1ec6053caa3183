//! Conformance cases for metering, tiers, quotas and billing events.

use super::*;
use continuum_core::account::{BillingRecord, Tier, Tiers, UsageKind};
use continuum_core::keys::{Caller, Scope};
use continuum_engine::BillingChange;

fn caller(t: &TenantId, scope: Scope) -> Caller {
    Caller {
        tenant: t.clone(),
        scope,
        key: Some(format!("ck_{}", t.as_str())),
    }
}

pub async fn usage_is_counted_per_tenant_and_day_and_added_up_by_flushes(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let (a, b) = (tenant("a"), tenant("b"));
    e.learn(&a, turn("We deploy with Helm", "Helm charts it is"))
        .await
        .unwrap();
    let tier = e.tier_of(&a).await.unwrap();
    assert_eq!(tier.name, "unlimited", "no plan: the default tier");
    for kind in [UsageKind::Learn, UsageKind::Recall, UsageKind::Recall] {
        e.admit(&caller(&a, Scope::Write), kind, &tier).unwrap();
    }
    e.admit(&caller(&b, Scope::Read), UsageKind::Search, &tier)
        .unwrap();
    e.count_usage(&a, |c| c.embeddings += 2);
    assert_eq!(e.flush_usage().await.unwrap(), 2, "one row per tenant-day");
    assert_eq!(e.flush_usage().await.unwrap(), 0, "nothing left to flush");
    e.admit(&caller(&a, Scope::Write), UsageKind::Other, &tier)
        .unwrap();
    // The next day gets a row of its own.
    clock.advance_millis(86_400_000);
    e.admit(&caller(&a, Scope::Write), UsageKind::Learn, &tier)
        .unwrap();

    let r = e
        .usage(
            caller(&a, Scope::Admin),
            None,
            Some("2026-01-01"),
            Some("2026-01-02"),
        )
        .await
        .unwrap();
    let days: Vec<(&str, &str, u64, u64, u64, u64, u64)> = r
        .days
        .iter()
        .map(|d| {
            (
                d.tenant.as_str(),
                d.day.as_str(),
                d.learn,
                d.recall,
                d.search,
                d.other,
                d.embeddings,
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            ("a", "2026-01-01", 1, 2, 0, 1, 2),
            ("a", "2026-01-02", 1, 0, 0, 0, 0),
        ],
        "an admin sees its own tenant, counts added across flushes"
    );
    assert_eq!(
        r.days[0].memories, 2,
        "the footprint is measured: two sides stored"
    );
    assert!(r.days[0].bytes >= "We deploy with Helm".len() as u64);
    assert_eq!(r.totals.requests, 5);

    let all = e
        .usage(
            caller(&a, Scope::Operator),
            None,
            Some("2026-01-01"),
            Some("2026-01-02"),
        )
        .await
        .unwrap();
    assert_eq!(all.days.len(), 3, "an operator sees every tenant");
    assert_eq!(all.days[2].tenant, b);
    assert_eq!(all.days[2].search, 1);
    assert!(matches!(
        e.usage(caller(&a, Scope::Admin), Some(&b), None, None)
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        e.usage(caller(&a, Scope::Write), None, None, None).await,
        Err(Error::Forbidden(_))
    ));
    let backwards = e
        .usage(
            caller(&a, Scope::Admin),
            None,
            Some("2026-01-03"),
            Some("2026-01-01"),
        )
        .await
        .unwrap();
    assert!(
        backwards.days.is_empty(),
        "a span ending before it starts is empty"
    );
    for (from, to) in [("2026-02-30", "2026-03-01"), ("x", "2026-01-01")] {
        assert!(
            matches!(
                e.usage(caller(&a, Scope::Admin), None, Some(from), Some(to))
                    .await,
                Err(Error::InvalidInput(_))
            ),
            "{from}..{to} was accepted"
        );
    }
}

pub async fn quotas_refuse_past_the_tier_and_a_new_tier_applies_at_once(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let tiers = Tiers::new(
        vec![Tier::parse("tiny:memories=3,requests_per_day=2,webhooks=0").unwrap()],
        None,
    )
    .unwrap();
    let e = e.with_tiers(tiers);
    let (a, b) = (tenant("a"), tenant("b"));
    let op = caller(&tenant("ops"), Scope::Operator);
    assert!(matches!(
        e.set_tier(caller(&a, Scope::Admin), &a, "tiny").await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        e.set_tier(op.clone(), &a, "gold").await,
        Err(Error::NotFound(_))
    ));
    let view = e.set_tier(op.clone(), &a, "tiny").await.unwrap();
    assert_eq!(view.tier.max_memories, Some(3));
    assert_eq!(view.plan.unwrap().source, "operator");

    // Storage: a turn stores two memories; the second turn would make four.
    e.learn(&a, turn("Alice likes tea", "Noted: tea"))
        .await
        .unwrap();
    let before = e.stats(&a).await.unwrap().store;
    let err = e
        .learn(&a, turn("Bob likes coffee", "Noted: coffee"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::QuotaExceeded(m, None) if m.contains("tiny") && m.contains("3 memories")),
        "{err:?}"
    );
    let after = e.stats(&a).await.unwrap().store;
    assert_eq!(
        (
            after.memories,
            after.concepts,
            after.links,
            after.change_seq
        ),
        (
            before.memories,
            before.concepts,
            before.links,
            before.change_seq
        ),
        "nothing of a refused learn is stored"
    );
    // Another tenant is not limited by a's tier.
    e.learn(&b, turn("Bob likes coffee", "Noted: coffee"))
        .await
        .unwrap();
    e.learn(&b, turn("Carol likes juice", "Noted: juice"))
        .await
        .unwrap();

    // Requests per day, and their reset at midnight UTC.
    let tier = e.tier_of(&a).await.unwrap();
    let who = caller(&a, Scope::Write);
    e.admit(&who, UsageKind::Recall, &tier).unwrap();
    e.admit(&who, UsageKind::Recall, &tier).unwrap();
    match e.admit(&who, UsageKind::Recall, &tier) {
        Err(Error::QuotaExceeded(m, Some(wait))) => {
            assert!(m.contains("2 requests per day"), "{m}");
            assert_eq!(wait, 86_400, "the test clock stands at midnight");
        }
        other => panic!("{other:?}"),
    }
    // The count survives a flush (it is read back from the store).
    e.flush_usage().await.unwrap();
    assert!(e.admit(&who, UsageKind::Recall, &tier).is_err());
    clock.advance_millis(86_400_000);
    let tier = e.tier_of(&a).await.unwrap();
    e.admit(&who, UsageKind::Recall, &tier).unwrap();

    // Webhook subscriptions.
    let err = e
        .create_webhook(
            caller(&a, Scope::Admin),
            "https://example.com/hook",
            Vec::new(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::QuotaExceeded(m, None) if m.contains("0 webhook")),
        "{err:?}"
    );

    // A larger tier applies at once.
    e.set_tier(op.clone(), &a, "unlimited").await.unwrap();
    e.learn(&a, turn("Bob likes coffee", "Noted: coffee"))
        .await
        .unwrap();
    let plans = e.plans(op).await.unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].tier, "unlimited");
}

pub async fn billing_events_apply_once_and_never_undo_a_later_one(make: &Factory) {
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let a = tenant("a");
    let change = |id: &str, at: i64, tier: &str| BillingChange {
        event_id: id.into(),
        event_at: continuum_core::Timestamp(T0.millis() + at),
        tenant: a.clone(),
        tier: tier.into(),
        status: Some("active".into()),
        customer: Some("cus_1".into()),
        subscription: Some("sub_1".into()),
        source: "stripe",
    };
    assert_eq!(
        e.apply_billing(change("evt_1", 1_000, "pro"))
            .await
            .unwrap(),
        BillingRecord::Applied
    );
    assert_eq!(e.tier_of(&a).await.unwrap().name, "pro");
    assert_eq!(
        e.apply_billing(change("evt_1", 1_000, "pro"))
            .await
            .unwrap(),
        BillingRecord::Duplicate
    );
    assert_eq!(
        e.apply_billing(change("evt_3", 3_000, "free"))
            .await
            .unwrap(),
        BillingRecord::Applied
    );
    // An event created before the one that set the plan arrives late: recorded, not applied.
    assert_eq!(
        e.apply_billing(change("evt_2", 2_000, "enterprise"))
            .await
            .unwrap(),
        BillingRecord::Stale
    );
    let view = e.plan(&a, None).await.unwrap();
    assert_eq!(view.tier.name, "free");
    let plan = view.plan.unwrap();
    assert_eq!(
        (
            plan.source.as_str(),
            plan.status.as_deref(),
            plan.subscription.as_deref()
        ),
        ("stripe", Some("active"), Some("sub_1"))
    );
    assert!(
        e.apply_billing(change("evt_4", 4_000, "gold"))
            .await
            .is_err()
    );
    // Ids are remembered for a week, then forgotten.
    assert_eq!(
        e.record_billing_event("evt_5").await.unwrap(),
        BillingRecord::Applied
    );
    assert_eq!(
        e.record_billing_event("evt_5").await.unwrap(),
        BillingRecord::Duplicate
    );
    clock.advance_millis(continuum_engine::BILLING_EVENT_MEMORY_MILLIS + 1);
    assert_eq!(
        e.record_billing_event("evt_6").await.unwrap(),
        BillingRecord::Applied
    );
    assert_eq!(
        e.record_billing_event("evt_5").await.unwrap(),
        BillingRecord::Applied,
        "evt_5 was dropped when evt_6 was recorded"
    );
}
