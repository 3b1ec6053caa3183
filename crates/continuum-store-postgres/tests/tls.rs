//! TLS to the machine's PostgreSQL (which serves TLS with a self-signed certificate), through
//! every `sslmode`. Needs CONTINUUM_TEST_POSTGRES_URL; skips, saying so, when the server has
//! TLS turned off.

use continuum_core::Error;
use continuum_core::time::Timestamp;
use continuum_store_postgres::tls::SslMode;
use continuum_store_postgres::{PostgresOptions, PostgresStore};

const URL_VAR: &str = "CONTINUUM_TEST_POSTGRES_URL";

/// The base URL and the server's certificate file, when the server speaks TLS.
async fn server() -> Option<(String, String)> {
    let Ok(url) = std::env::var(URL_VAR) else {
        eprintln!("skipping: {URL_VAR} is not set");
        return None;
    };
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let ssl: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    if ssl != "on" {
        eprintln!("skipping: the PostgreSQL server at {URL_VAR} has ssl = {ssl}");
        return None;
    }
    let cert: String = client
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    Some((url, cert))
}

fn with(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

async fn open(url: &str, schema: &str) -> continuum_core::Result<PostgresStore> {
    let opts = PostgresOptions {
        schema: Some(schema.into()),
        pool_size: 2,
        ..PostgresOptions::default()
    };
    PostgresStore::connect(url, &opts, Timestamp(0)).await
}

#[tokio::test]
async fn sslmodes_encrypt_as_libpq_does() {
    let Some((url, cert)) = server().await else {
        return;
    };
    let schema = format!("tls_{}", fastrand::u32(..));
    let plain = open(&with(&url, "sslmode=disable"), &schema).await.unwrap();
    assert!(!plain.encrypted().await.unwrap());
    assert_eq!(plain.ssl_mode(), SslMode::Disable);

    // The default is libpq's `prefer`: encrypted when the server offers it.
    let default = open(&url, &schema).await.unwrap();
    assert_eq!(default.ssl_mode(), SslMode::Prefer);
    assert!(default.encrypted().await.unwrap());

    let required = open(&with(&url, "sslmode=require"), &schema).await.unwrap();
    assert!(required.encrypted().await.unwrap());

    // The server's certificate is self-signed for "localhost". With it as the root, verify-ca
    // passes whatever the host is called; verify-full passes for localhost only.
    if std::fs::read(&cert).is_ok() {
        let root = format!("sslrootcert={cert}");
        let ca = open(&with(&url, &format!("sslmode=verify-ca&{root}")), &schema)
            .await
            .unwrap();
        assert!(ca.encrypted().await.unwrap());
        let by_name = url.replacen("127.0.0.1", "localhost", 1);
        if by_name != url {
            let full = open(
                &with(&by_name, &format!("sslmode=verify-full&{root}")),
                &schema,
            )
            .await
            .unwrap();
            assert!(full.encrypted().await.unwrap());
            let by_ip = by_name.replacen("localhost", "127.0.0.1", 1);
            let err = open(
                &with(&by_ip, &format!("sslmode=verify-full&{root}")),
                &schema,
            )
            .await
            .err()
            .expect("the certificate does not name 127.0.0.1");
            assert!(matches!(err, Error::Unavailable(_)), "{err}");
            assert!(err.to_string().contains("not valid for name"), "{err}");
        }
    } else {
        eprintln!("verify-ca/verify-full skipped: the server's {cert} is not readable here");
    }
    // A root file that is not a certificate is refused before connecting.
    let junk = std::env::temp_dir().join(format!("not-a-cert-{}.pem", fastrand::u32(..)));
    std::fs::write(&junk, "hello").unwrap();
    let err = open(
        &with(
            &url,
            &format!("sslmode=verify-full&sslrootcert={}", junk.display()),
        ),
        &schema,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let _ = std::fs::remove_file(&junk);
    plain.drop_schema(&schema).await.unwrap();
}
