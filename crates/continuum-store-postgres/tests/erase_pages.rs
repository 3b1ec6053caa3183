//! Erasure reaches PostgreSQL's pages: after a tenant is erased and one memory of another
//! tenant forgotten, `vacuum` (VACUUM FULL of each table) leaves none of their words in any
//! page of the store's tables, indexes or TOAST, read raw with `pageinspect`, while what was
//! kept is still there. Needs `CONTINUUM_TEST_POSTGRES_URL` (a superuser, for `pageinspect`).

mod common;

use continuum_core::keys::Caller;
use continuum_core::memory::Turn;
use continuum_core::store::ForgetSelector;
use continuum_core::{SessionId, TenantId};

fn turn(user: &str, assistant: &str, session: &str) -> Turn {
    Turn {
        user_message: user.into(),
        ai_response: assistant.into(),
        thinking: None,
        session_id: Some(SessionId::new(session).unwrap()),
        metadata: None,
        timestamp: None,
    }
}

/// The relations (tables, indexes, their TOAST tables and TOAST indexes) of `schema`, and in
/// which of their pages `word` occurs as bytes: `relation#block` each.
const PAGES_WITH: &str = "
WITH tables AS (
    SELECT c.oid, c.reltoastrelid FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind = 'r'
), rels AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'i')
    UNION SELECT reltoastrelid FROM tables WHERE reltoastrelid <> 0
    UNION SELECT i.indexrelid FROM pg_index i JOIN tables t ON i.indrelid = t.reltoastrelid
)
SELECT r.oid::regclass::text || '#' || b
FROM rels r,
     generate_series(0, pg_relation_size(r.oid) / current_setting('block_size')::bigint - 1) b
WHERE position(convert_to($2, 'UTF8') IN get_raw_page(r.oid::regclass::text, b::int)) > 0
ORDER BY 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_and_forgotten_words_leave_every_page_after_vacuum() {
    let Some((scratch, url, engine)) = common::scratch_engine("continuum_erase").await else {
        return;
    };
    let (gone, kept) = (
        TenantId::new("gone").unwrap(),
        TenantId::new("kept").unwrap(),
    );

    // Invented words, so that a match can only be our data.
    for i in 0..30 {
        engine
            .learn(
                &gone,
                turn(
                    &format!("Quokkazeppelin {i} visits the marzipanocelot clinic"),
                    "Noted: the quokkazeppelin appointment.",
                    "health",
                ),
            )
            .await
            .unwrap();
    }
    engine
        .learn(
            &kept,
            turn(
                "The lanternfishtrombone project ships on Friday",
                "Noted, lanternfishtrombone ships Friday.",
                "work",
            ),
        )
        .await
        .unwrap();
    engine
        .learn(
            &kept,
            turn(
                "My pelicanharpsichord password hint is private",
                "I will keep the pelicanharpsichord hint.",
                "private",
            ),
        )
        .await
        .unwrap();
    engine
        .forget(
            &kept,
            &ForgetSelector::Session(SessionId::new("private").unwrap()),
        )
        .await
        .unwrap();
    engine.erase_tenant(&gone).await.unwrap();

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // Tests run in parallel: a concurrent CREATE EXTENSION can lose the race; the other made it.
    if let Err(e) = client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        .await
    {
        eprintln!("CREATE EXTENSION pageinspect: {e} (checking it exists)");
    }
    let pages = async |word: &str| -> Vec<String> {
        client
            .query(PAGES_WITH, &[&scratch.schema, &word])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    // Prefixes: the full-text index keeps stems, which may lose a word's ending.
    let removed = ["quokkazepp", "Quokkazepp", "marzipanoc", "pelicanhar"];

    // Deleted rows are still in the pages (until VACUUM FULL): what the check below looks for
    // is there to be found.
    let before = pages(removed[0]).await;
    assert!(!before.is_empty(), "the erased rows' bytes before vacuum");
    eprintln!("before vacuum, '{}' is in {before:?}", removed[0]);

    let v = engine
        .vacuum_store(&Caller::local(TenantId::default_tenant()))
        .await
        .unwrap();
    assert!(v.tables >= 10, "{v:?}");
    assert!(v.bytes_after <= v.bytes_before, "{v:?}");

    for word in removed {
        assert_eq!(
            pages(word).await,
            Vec::<String>::new(),
            "'{word}' after vacuum"
        );
    }
    // What was kept is still stored (and the scan does see live data).
    let kept_pages = pages("lanternfis").await;
    assert!(
        kept_pages.iter().any(|p| p.contains(".memories#")),
        "{kept_pages:?}"
    );
    // And still found.
    let req = continuum_engine::SearchRequest {
        query: "lanternfishtrombone".into(),
        ..Default::default()
    };
    let hits = engine.search(&kept, &req).await.unwrap();
    assert!(!hits.is_empty());
}
