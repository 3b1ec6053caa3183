//! A server on a loopback port 0 over a SQLite store in a temporary directory, for the tests
//! that drive the API over real connections.

#![allow(dead_code)]

use continuum_core::keys::Scope;
use continuum_core::{TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig};
use continuum_server::{ConnectionLimits, ServerConfig, router, serve_with};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use std::sync::Arc;

pub struct Server {
    pub base: String,
    pub engine: Engine,
    pub _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start(config: ServerConfig) -> Server {
    start_with(config, ConnectionLimits::default()).await
}

pub async fn start_with(config: ServerConfig, limits: ConnectionLimits) -> Server {
    start_full(config, limits, continuum_core::account::Tiers::default()).await
}

/// A server whose engine knows `tiers`.
pub async fn start_with_tiers(
    config: ServerConfig,
    tiers: continuum_core::account::Tiers,
) -> Server {
    start_full(config, ConnectionLimits::default(), tiers).await
}

async fn start_full(
    config: ServerConfig,
    limits: ConnectionLimits,
    tiers: continuum_core::account::Tiers,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("continuum.db"),
        &SqliteOptions::default(),
        Timestamp(0),
    )
    .unwrap();
    let engine = Engine::new(Arc::new(store), EngineConfig::default())
        .unwrap()
        .with_tiers(tiers);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(engine.clone(), config);
    let task = tokio::spawn(async move {
        serve_with(
            listener,
            app,
            async {
                let _ = rx.await;
            },
            limits,
        )
        .await
        .unwrap();
    });
    Server {
        base,
        engine,
        _dir: dir,
        stop: Some(tx),
        task: Some(task),
    }
}

impl Server {
    pub async fn key(&self, tenant: &str, scope: Scope) -> String {
        self.engine
            .create_key(&TenantId::new(tenant).unwrap(), scope, None, None)
            .await
            .unwrap()
            .0
    }

    /// Begins a graceful shutdown and waits for `serve` to return (every connection closed).
    pub async fn shut_down(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}
