//! The audit log's chain against direct edits in PostgreSQL: an altered field, a removed
//! entry and two swapped entries are each named by `verify`. Needs
//! `CONTINUUM_TEST_POSTGRES_URL`.

mod common;

#[tokio::test]
async fn tampering_in_the_database_is_named() {
    let Some((scratch, url, engine)) = common::scratch_engine("continuum_audit").await else {
        return;
    };
    let schema = scratch.schema.clone();
    let exec = move |sql: String| -> continuum_testkit::BoxFuture<()> {
        let (url, schema) = (url.clone(), schema.clone());
        Box::pin(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(&format!("SET search_path TO {schema}; {sql}"))
                .await
                .unwrap();
        })
    };
    continuum_testkit::audit_tampering_is_named(&engine, &exec).await;
}
