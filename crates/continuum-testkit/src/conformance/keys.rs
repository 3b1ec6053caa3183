//! Conformance cases for keys and tenant administration.

use super::*;

pub async fn api_keys_are_stored_hashed_and_revocable(make: &Factory) {
    use continuum_core::keys::Scope;
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    let (a, b) = (tenant("a"), tenant("b"));
    let (secret, key) = e
        .create_key(&a, Scope::Write, Some(60_000), Some("ci".into()))
        .await
        .unwrap();
    e.create_key(&b, Scope::Read, None, None).await.unwrap();
    let stored = s.store.key_by_prefix(&key.prefix).await.unwrap().unwrap();
    assert_ne!(stored.hash, secret, "only the hash is stored");
    assert!(!stored.hash.contains(&secret[16..]));
    let who = e.authenticate(&secret).await.unwrap();
    assert_eq!((who.tenant, who.scope), (a.clone(), Scope::Write));
    // Change the last hex digit (to one it is not).
    let last = if secret.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &secret[..secret.len() - 1]);
    assert_ne!(wrong, secret);
    assert!(matches!(
        e.authenticate(&wrong).await,
        Err(Error::Unauthorized(_))
    ));
    assert!(matches!(
        e.authenticate("ck_garbage").await,
        Err(Error::Unauthorized(_))
    ));
    assert_eq!(
        e.list_keys(Some(&a)).await.unwrap().len(),
        1,
        "keys are listed per tenant"
    );
    assert_eq!(e.list_keys(None).await.unwrap().len(), 2);
    clock.advance_millis(61_000);
    assert!(
        matches!(e.authenticate(&secret).await, Err(Error::Unauthorized(_))),
        "expired"
    );
    let (secret2, key2) = e.create_key(&a, Scope::Admin, None, None).await.unwrap();
    e.authenticate(&secret2).await.unwrap();
    e.revoke_key(&key2.prefix).await.unwrap();
    assert!(
        matches!(e.authenticate(&secret2).await, Err(Error::Unauthorized(_))),
        "revoked"
    );
    assert!(matches!(
        e.revoke_key("000000000000").await,
        Err(Error::NotFound(_))
    ));
}

/// Operators see tenants as counts and keys; erasing one removes all it stored and revokes its
/// keys, and leaves every other tenant as it was.
pub async fn tenants_are_listed_created_and_erased_whole(make: &Factory) {
    use continuum_core::keys::Scope;
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (a, b, c, d) = (tenant("a"), tenant("b"), tenant("c"), tenant("d"));
    for text in ["Ana moved to Lisbon.", "Ana is a nurse.", "Ana likes Fado."] {
        e.remember(&a, RememberRequest::new(text, Source::Fact))
            .await
            .unwrap();
    }
    e.learn(&a, turn("We use Kafka at work.", "Kafka it is."))
        .await
        .unwrap();
    e.remember(
        &b,
        RememberRequest::new("Bo runs the Oslo office.", Source::Fact),
    )
    .await
    .unwrap();
    e.create_key(&a, Scope::Write, None, None).await.unwrap();
    e.create_key(&c, Scope::Read, None, None).await.unwrap();
    let list = e.tenants().await.unwrap();
    let summary: Vec<(String, u64, u64)> = list
        .iter()
        .map(|t| (t.tenant.to_string(), t.memories, t.active_keys))
        .collect();
    assert_eq!(
        summary,
        vec![("a".into(), 5, 1), ("b".into(), 1, 0), ("c".into(), 0, 1)]
    );
    assert!(list[0].last_memory_at.is_some() && list[2].last_memory_at.is_none());

    // A tenant with data or a working key cannot be "created" again (that would hand out a
    // key to its data); a new one gets an admin key.
    for taken in [&a, &b, &c] {
        let err = e.create_tenant(taken, None).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{taken}: {err:?}");
    }
    let (secret, key) = e.create_tenant(&d, Some("first".into())).await.unwrap();
    assert_eq!((key.tenant.clone(), key.scope), (d.clone(), Scope::Admin));
    assert_eq!(e.authenticate(&secret).await.unwrap().tenant, d);

    let erased = e.erase_tenant(&a).await.unwrap();
    assert_eq!((erased.memories, erased.keys_revoked), (5, 1));
    let st = e.stats(&a).await.unwrap().store;
    assert_eq!(
        (st.memories, st.concepts, st.links, st.decisions),
        (0, 0, 0, 0),
        "nothing of the tenant is left"
    );
    assert!(
        e.recall(&a, &RecallRequest::new("Where does Ana live?"))
            .await
            .unwrap()
            .memories
            .is_empty()
    );
    assert!(
        e.list_keys(Some(&a))
            .await
            .unwrap()
            .iter()
            .all(|k| k.revoked_at.is_some())
    );
    // The others are untouched.
    let r = e
        .recall(&b, &RecallRequest::new("Who runs the Oslo office?"))
        .await
        .unwrap();
    assert_eq!(r.memories.len(), 1);
    assert_eq!(e.stats(&b).await.unwrap().store.memories, 1);
    let names: Vec<String> = e
        .tenants()
        .await
        .unwrap()
        .iter()
        .filter(|t| t.memories > 0 || t.active_keys > 0)
        .map(|t| t.tenant.to_string())
        .collect();
    assert_eq!(names, ["b", "c", "d"]);
    // Once erased, the id can be given out again.
    e.create_tenant(&a, None).await.unwrap();
    let err = e.erase_tenant(&tenant("nobody")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

/// The engine decides what a caller may do: a read key's caller recalls but cannot learn or
/// forget; a write key's caller can; each works in its own tenant only.
pub async fn engine_verbs_decide_rights_from_the_caller(make: &Factory) {
    use continuum_core::keys::{Caller, Scope};
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let t = tenant("acme");
    let as_key = |scope| Caller {
        tenant: t.clone(),
        scope,
        key: Some("000000000000".into()),
    };
    let (reader, writer) = (as_key(Scope::Read), as_key(Scope::Write));
    let err = e
        .learn(&reader, turn("Kafka feeds Redis.", "Noted."))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    let out = e
        .learn(&writer, turn("Kafka feeds Redis.", "Noted."))
        .await
        .unwrap();
    let r = e
        .recall(&reader, &RecallRequest::new("Kafka"))
        .await
        .unwrap();
    assert!(r.memories.iter().any(|m| m.content == "Kafka feeds Redis."));
    let gone = ForgetSelector::Ids(out.memory_ids.clone());
    assert!(matches!(
        e.forget(&reader, &gone).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        e.events(&as_key(Scope::Read), 0, 10).await,
        Ok(ev) if !ev.is_empty()
    ));
    // Another tenant's caller sees nothing of acme's.
    let other = Caller {
        tenant: tenant("globex"),
        scope: Scope::Admin,
        key: None,
    };
    assert!(
        e.recall(&other, &RecallRequest::new("Kafka"))
            .await
            .unwrap()
            .memories
            .is_empty()
    );
    assert_eq!(e.forget(&writer, &gone).await.unwrap(), 2);
}

pub async fn webhooks_are_stored_per_tenant_hold_their_cursor_and_go_with_the_tenant(
    make: &Factory,
) {
    use continuum_core::keys::{Caller, Scope};
    use continuum_core::webhook::{Delivery, DeliveryState};
    let s = make().await;
    let (e, _clock) = engine(s.store.clone());
    let (a, b) = (tenant("a"), tenant("b"));
    e.remember(
        &a,
        RememberRequest::new("Before the subscription.", Source::User),
    )
    .await
    .unwrap();
    let created = e
        .create_webhook(
            &a,
            "https://hooks.example.com/a",
            vec!["memory.created".into(), "memory.created".into()],
            Some("ci".into()),
        )
        .await
        .unwrap();
    assert!(created.secret.starts_with("whsec_"));
    assert_eq!(created.webhook.events, vec!["memory.created".to_string()]);
    // It starts at the head, and its cursor keeps what it has not handled from compaction.
    let head = e.event_head().await.unwrap();
    assert_eq!(created.webhook.position, head);
    let cursors = e.event_cursors().await.unwrap();
    assert!(
        cursors
            .iter()
            .any(|c| c.name == format!("webhook:{}", created.webhook.id) && c.position == head),
        "{cursors:?}"
    );
    e.create_webhook(&b, "https://hooks.example.com/b", vec![], None)
        .await
        .unwrap();
    // Bad input is refused and stores nothing.
    for (url, events) in [
        ("ftp://example.com/", vec![]),
        ("https://example.com/", vec!["memory.nonsense".to_string()]),
    ] {
        assert!(matches!(
            e.create_webhook(&a, url, events, None).await,
            Err(Error::InvalidInput(_))
        ));
    }
    // Each tenant sees its own; a read key sees none; another tenant's id is not found.
    assert_eq!(e.webhooks(&a).await.unwrap().len(), 1);
    assert_eq!(e.all_webhooks().await.unwrap().len(), 2);
    let reader = Caller {
        tenant: a.clone(),
        scope: Scope::Read,
        key: Some("000000000000".into()),
    };
    assert!(matches!(
        e.webhooks(&reader).await,
        Err(Error::Forbidden(_))
    ));
    let of_b = e.webhooks(&b).await.unwrap()[0].id.clone();
    assert!(matches!(
        e.delete_webhook(&a, &of_b).await,
        Err(Error::NotFound(_))
    ));
    // Delivery records round-trip, newest event first.
    for seq in [head + 1, head + 2] {
        let d = Delivery {
            id: Delivery::id_for(&created.webhook.id, seq),
            webhook: created.webhook.id.clone(),
            seq,
            event_type: "memory.created".into(),
            state: DeliveryState::Pending,
            attempts: 1,
            next_attempt_at: None,
            last_status: Some(500),
            last_error: Some("the receiver answered 500".into()),
            created_at: T0,
            updated_at: T0,
        };
        e.save_delivery(&d).await.unwrap();
    }
    let listed = e
        .webhook_deliveries(&a, &created.webhook.id, 10)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|d| d.seq).collect::<Vec<_>>(),
        vec![head + 2, head + 1]
    );
    assert_eq!(listed[0].last_status, Some(500));
    // Rotation keeps the old secret for the overlap.
    let rotated = e
        .rotate_webhook_secret(&a, &created.webhook.id, 60_000)
        .await
        .unwrap();
    let stored = s.store.webhook(&created.webhook.id).await.unwrap().unwrap();
    assert_eq!(stored.secret, rotated.secret);
    assert_eq!(
        stored.previous_secret.as_deref(),
        Some(created.secret.as_str())
    );
    // Deleting removes the records and the cursor; erasing a tenant removes its webhooks.
    e.delete_webhook(&a, &created.webhook.id).await.unwrap();
    assert!(s.store.delivery(&listed[0].id).await.unwrap().is_none());
    assert!(!e.event_cursors().await.unwrap().iter().any(|c| {
        c.name
            .starts_with(&format!("webhook:{}", created.webhook.id))
    }));
    e.remember(
        &b,
        RememberRequest::new("So that b has data.", Source::User),
    )
    .await
    .unwrap();
    e.erase_tenant(&b).await.unwrap();
    assert!(e.all_webhooks().await.unwrap().is_empty());
}

pub async fn a_rotated_key_works_until_the_overlap_ends_and_its_successor_after(make: &Factory) {
    use continuum_core::Event;
    use continuum_core::keys::{Caller, Scope};
    let s = make().await;
    let (e, clock) = engine(s.store.clone());
    // A second engine on the same store stands for another process.
    let (other, other_clock) = engine(s.store.clone());
    let (a, b) = (tenant("a"), tenant("b"));
    let (old_secret, old) = e
        .create_key(&a, Scope::Write, None, Some("ci".into()))
        .await
        .unwrap();
    e.authenticate(&old_secret).await.unwrap();
    other.authenticate(&old_secret).await.unwrap();
    let before = e.event_head().await.unwrap();

    let r = e.rotate_key(&old.prefix, 3_600_000).await.unwrap();
    assert_eq!(
        (r.key.tenant.clone(), r.key.scope),
        (a.clone(), Scope::Write)
    );
    assert_eq!(r.key.name.as_deref(), Some("ci"));
    assert_ne!(r.key.prefix, old.prefix);
    assert_eq!(r.old_expires_at.millis(), T0.millis() + 3_600_000);
    // Both work during the overlap, in both "processes".
    for eng in [&e, &other] {
        assert_eq!(
            eng.authenticate(&old_secret).await.unwrap().prefix,
            old.prefix
        );
        assert_eq!(
            eng.authenticate(&r.secret).await.unwrap().prefix,
            r.key.prefix
        );
    }
    // Recorded: the successor's key.created, then key.rotated.
    let events: Vec<Event> = e
        .events(&a, before, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(&events[0], Event::KeyCreated { prefix, .. } if *prefix == r.key.prefix));
    assert_eq!(
        events[1],
        Event::KeyRotated {
            prefix: old.prefix.clone(),
            successor: r.key.prefix.clone(),
            expires_at: r.old_expires_at,
        }
    );
    // After the overlap the old key is refused, everywhere; the new one goes on.
    clock.advance_millis(3_600_001);
    other_clock.advance_millis(3_600_001);
    for eng in [&e, &other] {
        assert!(matches!(
            eng.authenticate(&old_secret).await,
            Err(Error::Unauthorized(_))
        ));
        eng.authenticate(&r.secret).await.unwrap();
    }
    // An expired, revoked or unknown key cannot be rotated, and nothing is written.
    let head = e.event_head().await.unwrap();
    for prefix in [old.prefix.as_str(), "000000000000"] {
        assert!(matches!(
            e.rotate_key(prefix, 0).await,
            Err(Error::NotFound(_))
        ));
    }
    assert_eq!(e.event_head().await.unwrap(), head);
    assert!(matches!(
        e.rotate_key(&r.key.prefix, 31 * 86_400_000).await,
        Err(Error::InvalidInput(_))
    ));
    // Through a caller: its own tenant only, and never a key of a higher scope.
    let (_, op) = e.create_key(&a, Scope::Operator, None, None).await.unwrap();
    let (_, of_b) = e.create_key(&b, Scope::Read, None, None).await.unwrap();
    let admin = Caller {
        tenant: a.clone(),
        scope: Scope::Admin,
        key: Some("000000000001".into()),
    };
    assert!(matches!(
        e.rotate_key_as(&admin, &op.prefix, 0).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        e.rotate_key_as(&admin, &of_b.prefix, 0).await,
        Err(Error::NotFound(_))
    ));
    // With no overlap the old key stops at once; a limited key's successor gets as long.
    let (limited_secret, limited) = e
        .create_key(&a, Scope::Read, Some(86_400_000), None)
        .await
        .unwrap();
    let r2 = e.rotate_key_as(&admin, &limited.prefix, 0).await.unwrap();
    assert!(matches!(
        e.authenticate(&limited_secret).await,
        Err(Error::Unauthorized(_))
    ));
    assert_eq!(
        r2.key.expires_at.unwrap().millis() - r2.key.created_at.millis(),
        86_400_000
    );
    use continuum_core::Clock;
    // A key with a maximum age is due for rotation after it (and still works); its
    // successor has the same maximum age, counted from its own creation.
    let (aging_secret, aging) = e
        .create_key_with_max_age(&a, Scope::Read, None, None, Some(86_400_000))
        .await
        .unwrap();
    let stored = s.store.key_by_prefix(&aging.prefix).await.unwrap().unwrap();
    assert_eq!(stored.max_age_ms, Some(86_400_000));
    assert!(!stored.due_for_rotation(clock.now()));
    clock.advance_millis(86_400_000);
    let stored = s.store.key_by_prefix(&aging.prefix).await.unwrap().unwrap();
    assert!(stored.due_for_rotation(clock.now()));
    e.authenticate(&aging_secret).await.unwrap();
    let r3 = e.rotate_key(&aging.prefix, 0).await.unwrap();
    let successor = s
        .store
        .key_by_prefix(&r3.key.prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(successor.max_age_ms, Some(86_400_000));
    assert!(!successor.due_for_rotation(clock.now()));
    assert!(matches!(
        e.create_key_with_max_age(&a, Scope::Read, None, None, Some(0))
            .await,
        Err(Error::InvalidInput(_))
    ));
}

/// A key's expiry is recorded once, as a `key.expired` event of its tenant and an audit entry,
/// whether a sweep or the expired key's own use notices it first, and however many processes
/// look at once; revoked and unexpired keys are left alone.
pub async fn expired_keys_are_recorded_once(make: &Factory) {
    use continuum_core::keys::{Caller, Scope};
    let s = make().await;
    // A second engine on the same store stands for another process.
    let (e, clock) = engine(s.store.clone());
    let (other, other_clock) = engine(s.store.clone());
    let (a, b) = (tenant("a"), tenant("b"));
    let (_, short) = e
        .create_key(&a, Scope::Write, Some(60_000), None)
        .await
        .unwrap();
    let (_, forever) = e.create_key(&a, Scope::Read, None, None).await.unwrap();
    let (_, revoked) = e
        .create_key(&b, Scope::Read, Some(60_000), None)
        .await
        .unwrap();
    let (_, of_b) = e
        .create_key(&b, Scope::Write, Some(60_000), None)
        .await
        .unwrap();
    e.revoke_key(&revoked.prefix).await.unwrap();
    let (used_secret, used) = e
        .create_key(&b, Scope::Read, Some(120_000), None)
        .await
        .unwrap();

    // Nothing has expired yet: nothing is written.
    let head = e.event_head().await.unwrap();
    assert_eq!(e.note_expired_keys().await.unwrap(), 0);
    assert_eq!(e.event_head().await.unwrap(), head);

    // Both "processes" sweep at once after a minute: two keys, each recorded by one of them.
    clock.advance_millis(61_000);
    other_clock.advance_millis(61_000);
    let (x, y) = tokio::join!(e.note_expired_keys(), other.note_expired_keys());
    assert_eq!(x.unwrap() + y.unwrap(), 2);
    assert_eq!(e.note_expired_keys().await.unwrap(), 0, "recorded once");

    // The expired-but-unswept key is recorded when it is presented, and still refused.
    clock.advance_millis(60_000);
    other_clock.advance_millis(60_000);
    assert!(matches!(
        e.authenticate(&used_secret).await,
        Err(Error::Unauthorized(_))
    ));
    assert!(matches!(
        other.authenticate(&used_secret).await,
        Err(Error::Unauthorized(_))
    ));
    let expired = |t: &TenantId| {
        let e = e.clone();
        let t = t.clone();
        async move {
            e.events(&t, 0, 100)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|r| match r.event {
                    continuum_core::Event::KeyExpired { prefix } => Some(prefix),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(expired(&a).await, vec![short.prefix.clone()]);
    let mut of_tenant_b = expired(&b).await;
    assert_eq!(of_tenant_b.len(), 2, "{of_tenant_b:?}");
    assert_eq!(
        of_tenant_b.pop(),
        Some(used.prefix.clone()),
        "the presented key last"
    );
    assert_eq!(of_tenant_b, vec![of_b.prefix.clone()]);
    assert!(!expired(&a).await.contains(&forever.prefix));

    // And in the audit log, as the system's act, with the prefix and never a secret.
    let ops = Caller {
        tenant: tenant("ops"),
        scope: Scope::Operator,
        key: None,
    };
    let mut noted: Vec<(String, String)> = e
        .audit_log(ops, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.action == "key.expired")
        .map(|v| {
            assert_eq!(v.actor, "system");
            (
                v.tenant.unwrap_or_default(),
                v.details["prefix"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    noted.sort();
    let mut want = vec![
        ("a".to_string(), short.prefix.clone()),
        ("b".to_string(), of_b.prefix.clone()),
        ("b".to_string(), used.prefix.clone()),
    ];
    want.sort();
    assert_eq!(noted, want);
}
