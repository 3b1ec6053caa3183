//! A real Turso sync server (`tursodb FILE --sync-server ADDR`) on a free loopback port, and
//! replicas of it. Tests skip, saying why, when `CONTINUUM_TEST_TURSODB` is unset; `.ci/run`
//! installs `tursodb` and sets it.
#![allow(dead_code)]

use continuum_core::time::Timestamp;
use continuum_engine::Engine;
use continuum_store_libsql::{LibsqlLocation, Replica, ReplicaOptions};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn tursodb() -> Option<PathBuf> {
    match std::env::var("CONTINUUM_TEST_TURSODB") {
        Ok(p) if !p.trim().is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!(
                "skipped: CONTINUUM_TEST_TURSODB (a tursodb binary with --sync-server) is not set"
            );
            None
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running sync server; stopped on drop.
pub struct Server {
    bin: PathBuf,
    pub db: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Server {
    pub fn start(bin: &Path, dir: &Path) -> Server {
        let mut s = Server {
            bin: bin.to_path_buf(),
            db: dir.join("primary.db"),
            port: free_port(),
            child: None,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn store_url(&self, replica: &Path) -> String {
        format!(
            "libsql+http://127.0.0.1:{}?replica={}",
            self.port,
            replica.display()
        )
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts (again) on the same port and file.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(&self.bin)
            .arg(&self.db)
            .arg("--sync-server")
            .arg(format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tursodb");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tursodb did not listen in 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A replica: its local store, an engine over it, and its journal.
pub struct Node {
    pub engine: Engine,
    pub replica: Arc<Replica>,
    pub store: Arc<SqliteStore>,
    pub location: LibsqlLocation,
}

pub async fn open_location(location: &LibsqlLocation) -> continuum_core::Result<Node> {
    let replica = Replica::open(location, &ReplicaOptions::default()).await?;
    let store = Arc::new(
        SqliteStore::open(&location.replica, &SqliteOptions::default(), Timestamp(0)).unwrap(),
    );
    let (engine, _clock) = continuum_testkit::engine(store.clone());
    Ok(Node {
        engine,
        replica: Arc::new(replica),
        store,
        location: location.clone(),
    })
}

pub async fn node(server: &Server, file: &Path) -> Node {
    let location = LibsqlLocation::parse(&server.store_url(file)).unwrap();
    open_location(&location).await.expect("open the replica")
}
