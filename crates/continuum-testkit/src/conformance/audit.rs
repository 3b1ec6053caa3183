//! Conformance cases for the audit log, and the tampering check each backend runs with its own
//! raw SQL ([`crate::audit_tampering_is_named`]).

use super::*;
use continuum_core::keys::{Caller, Scope};

pub async fn the_audit_log_records_security_acts_in_one_verified_chain(make: &Factory) {
    let s = make().await;
    let (e, _) = engine(s.store.clone());
    let (a, b) = (tenant("a"), tenant("b"));
    let ops = Caller {
        tenant: tenant("ops"),
        scope: Scope::Operator,
        key: Some("ck_opsopsopsops".into()),
    };
    e.create_tenant_as(&ops, &a, None).await.unwrap();
    let (_, key) = e.create_key(&b, Scope::Write, None, None).await.unwrap();
    let rotated = e.rotate_key(&key.prefix, 0).await.unwrap();
    e.revoke_key(&rotated.key.prefix).await.unwrap();
    let secret_text = "Ada's private medical appointment is on Tuesday";
    e.learn(
        &a,
        in_session(turn(secret_text, "Noted, Tuesday it is."), "health"),
    )
    .await
    .unwrap();
    e.forget(
        &a,
        &ForgetSelector::Session(SessionId::new("health").unwrap()),
    )
    .await
    .unwrap();
    e.export(&a, &mut |_| Ok(()), &mut |_| {}).await.unwrap();
    e.set_tier(ops.clone(), &a, "pro").await.unwrap();
    e.erase_tenant_as(&ops, &b).await.unwrap();
    e.audit_auth_failure(
        Some("ck_0123456789ab"),
        Some("10.1.2.3".into()),
        "unknown key",
    )
    .await;

    let all = e.audit_log(ops.clone(), 0, 1000).await.unwrap();
    let actions: Vec<(&str, Option<&str>, &str)> = all
        .iter()
        .map(|v| (v.action.as_str(), v.tenant.as_deref(), v.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("tenant.created", Some("a"), "key:ck_opsopsopsops"),
            ("key.created", Some("a"), "key:ck_opsopsopsops"),
            ("key.created", Some("b"), "local"),
            ("key.rotated", Some("b"), "local"),
            ("key.revoked", Some("b"), "local"),
            ("memories.forgotten", Some("a"), "local"),
            ("export", Some("a"), "local"),
            ("tenant.tier_set", Some("a"), "key:ck_opsopsopsops"),
            ("tenant.erased", Some("b"), "key:ck_opsopsopsops"),
            ("auth.failed", None, "anonymous"),
        ]
    );
    let seqs: Vec<u64> = all.iter().map(|v| v.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let failed = all.last().unwrap();
    assert_eq!(
        (failed.outcome.as_str(), failed.source.as_deref()),
        ("refused", Some("10.1.2.3"))
    );
    assert_eq!(failed.details["key_prefix"], "ck_0123456789ab");
    let raw = e.audit_entries(ops.clone(), 0, 1000).await.unwrap();
    for entry in &raw {
        assert!(
            !entry.body.contains("Ada") && !entry.body.contains("Tuesday"),
            "no memory text in the audit log: {}",
            entry.body
        );
    }

    // An admin sees its own tenant's entries; verification is an operator's.
    let admin = Caller {
        tenant: a.clone(),
        scope: Scope::Admin,
        key: Some("ck_aaaaaaaaaaaa".into()),
    };
    let own = e.audit_log(admin.clone(), 0, 1000).await.unwrap();
    assert!(!own.is_empty() && own.iter().all(|v| v.tenant.as_deref() == Some("a")));
    assert!(matches!(
        e.verify_audit(admin, |_| {}).await,
        Err(Error::Forbidden(_))
    ));
    let v = e.verify_audit(ops.clone(), |_| {}).await.unwrap();
    assert_eq!((v.entries, v.head_seq, v.fault), (10, 10, None));
    assert_eq!(v.head_hash, raw.last().unwrap().hash);

    // Concurrent writers (many tasks over the store's connections) still make one chain.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let e = e.clone();
            tokio::spawn(async move {
                for j in 0..10 {
                    e.audit_auth_failure(None, Some(format!("10.0.{i}.{j}")), "unknown key")
                        .await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let v = e.verify_audit(ops, |_| {}).await.unwrap();
    assert_eq!((v.entries, v.fault), (90, None));
}

/// Writes five entries through `e`, then has `exec` (raw SQL on the backend, around the
/// engine) alter one, delete one and swap two; each time `verify` must name the entry and the
/// kind of damage, and a repaired log must verify again.
pub async fn audit_tampering_is_named(
    e: &Engine,
    exec: &(dyn Fn(String) -> crate::BoxFuture<()> + Send + Sync),
) {
    let ops = Caller::local(tenant("ops"));
    for i in 0..5 {
        e.create_key(&tenant(&format!("t{i}")), Scope::Read, None, None)
            .await
            .unwrap();
    }
    let clean = e.audit_entries(ops.clone(), 0, 100).await.unwrap();
    assert_eq!(clean.len(), 5);
    let fault = |v: continuum_engine::AuditVerification| {
        let f = v.fault.expect("damage was not found");
        (f.seq, f.problem)
    };
    let put = |seq: u64, body: &str, prev: &str, hash: &str| {
        format!(
            "UPDATE audit_log SET body = '{}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {seq}",
            body.replace('\'', "''")
        )
    };
    let restore = |i: usize| {
        let c = &clean[i];
        put(c.seq, &c.body, &c.prev_hash, &c.hash)
    };

    // One field of entry 3, changed in place.
    exec(put(
        3,
        &clean[2].body.replace("\"t2\"", "\"tX\""),
        &clean[2].prev_hash,
        &clean[2].hash,
    ))
    .await;
    assert_eq!(
        fault(e.verify_audit(ops.clone(), |_| {}).await.unwrap()),
        (3, "altered")
    );
    exec(restore(2)).await;
    assert!(
        e.verify_audit(ops.clone(), |_| {})
            .await
            .unwrap()
            .fault
            .is_none()
    );

    // Entry 4 removed.
    exec("DELETE FROM audit_log WHERE seq = 4".into()).await;
    assert_eq!(
        fault(e.verify_audit(ops.clone(), |_| {}).await.unwrap()),
        (4, "missing")
    );
    let c = &clean[3];
    exec(format!(
        "INSERT INTO audit_log (seq, tenant, action, body, prev_hash, hash) VALUES (4, 't3', 'key.created', '{}', '{}', '{}')",
        c.body.replace('\'', "''"),
        c.prev_hash,
        c.hash
    ))
    .await;
    assert!(
        e.verify_audit(ops.clone(), |_| {})
            .await
            .unwrap()
            .fault
            .is_none()
    );

    // Entries 2 and 3 swapped.
    exec(put(2, &clean[2].body, &clean[2].prev_hash, &clean[2].hash)).await;
    exec(put(3, &clean[1].body, &clean[1].prev_hash, &clean[1].hash)).await;
    assert_eq!(
        fault(e.verify_audit(ops.clone(), |_| {}).await.unwrap()),
        (2, "reordered")
    );
    exec(restore(1)).await;
    exec(restore(2)).await;
    let v = e.verify_audit(ops, |_| {}).await.unwrap();
    assert_eq!((v.entries, v.fault), (5, None));
}
