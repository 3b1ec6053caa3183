//! Vector search inside PostgreSQL with the pgvector extension, when the server has it.
//!
//! The `vectors` table (BYTEA, little-endian f32) stays the store's own copy; `vector_ann` is
//! derived from it: the same vectors as pgvector's `vector` type beside their memory's id,
//! deleted with their `vectors` row by a cascading foreign key, with one HNSW index per dimension (inner product, the
//! vectors being unit length) and deliberately no index by tenant: given one, the planner
//! sorts the whole tenant by distance instead of walking the HNSW graph (26 ms against 2 ms at
//! 10k vectors). Exact searches of a tenant go through `vectors`' own tenant index instead (see
//! `nearest_vectors` in the store). It is created at connect time outside the numbered migrations,
//! because its column type exists only where the extension is installed, and filled from
//! `vectors` when it is behind (a store that was used without the extension). Without the
//! extension, or with `pgvector=off` in the URL, none of this exists and the engine ranks
//! vectors in process, as it does with SQLite.

use crate::map_err;
use continuum_core::{Error, Result};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// The HNSW index of pgvector's `vector` type takes at most this many dimensions; above it the
/// search still works, by a sequential scan.
const MAX_INDEXED_DIM: usize = 2000;
/// Rows copied per statement when `vector_ann` catches up with `vectors`.
const BACKFILL_PAGE: i64 = 2_000;

/// Whether to search vectors with pgvector (`pgvector=` in the store URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Use it when the server has the extension (installing it if allowed); otherwise rank
    /// vectors in process.
    #[default]
    Auto,
    /// Never: vectors are ranked in process.
    Off,
    /// Refuse to start without it.
    On,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "auto" => Ok(Mode::Auto),
            "off" | "false" | "0" => Ok(Mode::Off),
            "on" | "true" | "1" | "require" => Ok(Mode::On),
            other => Err(Error::InvalidInput(format!(
                "pgvector must be auto, on or off, not '{other}'"
            ))),
        }
    }
}

/// Takes `pgvector=…` out of a store URL's query string (the driver would refuse it).
pub fn split_mode(url: &str) -> Result<(String, Option<Mode>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut mode = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("pgvector", v)) => mode = Some(Mode::parse(v)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, mode))
}

/// How vectors are searched in this store, for `doctor` and `stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// pgvector of this version, installed in this schema.
    Enabled { version: String, schema: String },
    /// Not used, and why.
    Disabled(String),
}

/// A transaction holding the advisory lock `name`: DDL that several processes may run at once
/// (creating the extension, the table, an index) runs one process at a time.
async fn locked<'a>(
    client: &'a mut tokio_postgres::Client,
    name: &str,
) -> Result<tokio_postgres::Transaction<'a>> {
    let tx = client.transaction().await.map_err(map_err)?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&name])
        .await
        .map_err(map_err)?;
    Ok(tx)
}

/// The schema and version of the installed extension, if it is installed.
async fn installed(client: &tokio_postgres::Client) -> Result<Option<(String, String)>> {
    let row = client
        .query_opt(
            "SELECT n.nspname::text, e.extversion FROM pg_extension e
             JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'",
            &[],
        )
        .await
        .map_err(map_err)?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// The extension's whereabouts and the dimensions that have an HNSW index.
#[derive(Debug)]
pub(crate) struct Ann {
    /// The extension's schema, quoted: its type and operators are named through it, so they
    /// are found whatever the connection's search path.
    ns: String,
    version: String,
    schema: String,
    /// pgvector 0.8 can keep walking the HNSW graph until enough rows pass the tenant filter.
    iterative: bool,
    indexed: Mutex<BTreeSet<usize>>,
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A vector in pgvector's text form, `[x,y,…]` (shortest round-trip decimals).
pub(crate) fn literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 11 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // pgvector refuses NaN and infinities; embedders never produce them (checked before
        // storing), and a query vector with one matches nothing useful anyway.
        let x = if x.is_finite() { *x } else { 0.0 };
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

fn version_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let a = parts.next().unwrap_or(0);
    let b = parts.next().unwrap_or(0);
    (a, b) >= (major, minor)
}

impl Ann {
    pub(crate) fn status(&self) -> Status {
        Status::Enabled {
            version: self.version.clone(),
            schema: self.schema.clone(),
        }
    }

    /// `vector` qualified by the extension's schema, with a dimension when given.
    pub(crate) fn ty(&self, dim: Option<usize>) -> String {
        match dim {
            Some(d) => format!("{}.vector({d})", self.ns),
            None => format!("{}.vector", self.ns),
        }
    }

    /// The negative inner product operator (`<#>`), qualified.
    pub(crate) fn neg_ip(&self) -> String {
        format!("OPERATOR({}.<#>)", self.ns)
    }

    pub(crate) fn iterative(&self) -> bool {
        self.iterative
    }

    /// Finds (or installs) the extension, creates `vector_ann` and catches it up. `Ok(Err)`
    /// when pgvector cannot be used and `mode` allows going on without it.
    pub(crate) async fn open(
        client: &mut tokio_postgres::Client,
        mode: Mode,
    ) -> Result<std::result::Result<Ann, String>> {
        if mode == Mode::Off {
            return Ok(Err("turned off (pgvector=off)".into()));
        }
        let refuse = |why: String| -> Result<std::result::Result<Ann, String>> {
            if mode == Mode::On {
                Err(Error::Unavailable(format!(
                    "pgvector=on, but {why}; install pgvector on the server or use pgvector=auto"
                )))
            } else {
                Ok(Err(why))
            }
        };
        let mut found = installed(client).await?;
        if found.is_none() {
            let available = client
                .query_opt(
                    "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'",
                    &[],
                )
                .await
                .map_err(map_err)?
                .is_some();
            if !available {
                return refuse("the server has no pgvector extension".into());
            }
            // Into `public`, not the store's own schema: dropping that schema must not take
            // the extension (and every other schema's vector columns) with it.
            let tx = locked(client, "continuum:pgvector").await?;
            if let Err(e) = tx
                .batch_execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
                .await
            {
                let why = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string());
                drop(tx);
                return refuse(format!("pgvector could not be installed ({why})"));
            }
            tx.commit().await.map_err(map_err)?;
            found = installed(client).await?;
        }
        let Some((schema, version)) = found else {
            return refuse("pgvector is not installed".into());
        };
        let ann = Ann {
            ns: quote_ident(&schema),
            iterative: version_at_least(&version, 0, 8),
            version,
            schema,
            indexed: Mutex::new(BTreeSet::new()),
        };
        let tx = locked(client, "continuum:vector_ann").await?;
        // Derived data: a table of an older shape (without the memory id) is dropped and
        // filled again from `vectors` below.
        let old_shape = tx
            .query_opt(
                "SELECT 1 FROM information_schema.tables t
                 WHERE t.table_schema = current_schema() AND t.table_name = 'vector_ann'
                   AND NOT EXISTS (SELECT 1 FROM information_schema.columns c
                                   WHERE c.table_schema = t.table_schema
                                     AND c.table_name = 'vector_ann' AND c.column_name = 'id')",
                &[],
            )
            .await
            .map_err(map_err)?
            .is_some();
        if old_shape {
            tx.batch_execute("DROP TABLE vector_ann")
                .await
                .map_err(map_err)?;
        }
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS vector_ann (
                 rid       BIGINT  NOT NULL,
                 id        UUID    NOT NULL,
                 model     TEXT    NOT NULL,
                 tenant    TEXT    NOT NULL,
                 dim       INTEGER NOT NULL,
                 embedding {}  NOT NULL,
                 PRIMARY KEY (rid, model),
                 FOREIGN KEY (rid, model) REFERENCES vectors (rid, model) ON DELETE CASCADE
             );
             CREATE INDEX IF NOT EXISTS vector_ann_by_id ON vector_ann (id);",
            ann.ty(None)
        ))
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let copied = ann.backfill(client).await?;
        let indexes = client
            .query(
                "SELECT indexname FROM pg_indexes
                 WHERE schemaname = current_schema() AND tablename = 'vector_ann'",
                &[],
            )
            .await
            .map_err(map_err)?;
        {
            let mut known = ann.indexed.lock().unwrap_or_else(|p| p.into_inner());
            for r in indexes {
                let name: String = r.get(0);
                if let Some(d) = name
                    .strip_prefix("vector_ann_hnsw_")
                    .and_then(|d| d.parse().ok())
                {
                    known.insert(d);
                }
            }
        }
        // Dimensions written through this code have their index already (`put_vectors`
        // makes it); copied ones may not.
        for d in copied {
            ann.ensure_index(client, d).await?;
        }
        Ok(Ok(ann))
    }

    /// Copies into `vector_ann` the vectors it does not have yet; returns their dimensions.
    async fn backfill(&self, client: &tokio_postgres::Client) -> Result<BTreeSet<usize>> {
        let mut dims = BTreeSet::new();
        let insert = format!(
            "INSERT INTO vector_ann (rid, id, model, tenant, dim, embedding)
             SELECT u.rid, u.id, u.model, u.tenant, u.dim, u.e::{}
             FROM UNNEST($1::bigint[], $6::uuid[], $2::text[], $3::text[], $4::int[], $5::text[])
                  AS u(rid, id, model, tenant, dim, e)
             ON CONFLICT (rid, model) DO NOTHING",
            self.ty(None)
        );
        loop {
            let rows = client
                .query(
                    "SELECT v.rid, v.model, v.tenant, v.dim, v.vector, m.id
                     FROM vectors v JOIN memories m ON m.rid = v.rid
                     WHERE NOT EXISTS
                       (SELECT 1 FROM vector_ann a WHERE a.rid = v.rid AND a.model = v.model)
                     LIMIT $1",
                    &[&BACKFILL_PAGE],
                )
                .await
                .map_err(map_err)?;
            if rows.is_empty() {
                return Ok(dims);
            }
            let (mut rid, mut model, mut tenant, mut dim, mut e, mut id) = (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::<uuid::Uuid>::new(),
            );
            for r in &rows {
                let d: i32 = r.get(3);
                let v = continuum_core::embed::decode_vector(r.get::<_, &[u8]>(4), d.max(0) as _)?;
                rid.push(r.get::<_, i64>(0));
                id.push(r.get(5));
                model.push(r.get::<_, String>(1));
                tenant.push(r.get::<_, String>(2));
                dim.push(d);
                dims.insert(d.max(0) as usize);
                e.push(literal(&v));
            }
            client
                .execute(&insert, &[&rid, &model, &tenant, &dim, &e, &id])
                .await
                .map_err(map_err)?;
        }
    }

    /// Creates the HNSW index for vectors of `dim` unless it exists. Building it over rows
    /// already there is the slow part; later inserts maintain it.
    pub(crate) async fn ensure_index(
        &self,
        client: &mut tokio_postgres::Client,
        dim: usize,
    ) -> Result<()> {
        if dim == 0 || dim > MAX_INDEXED_DIM {
            return Ok(());
        }
        if self
            .indexed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&dim)
        {
            return Ok(());
        }
        // Two processes creating the same index at once would collide on its name: one at
        // a time, and IF NOT EXISTS for the second.
        let tx = locked(client, "continuum:vector_ann").await?;
        tx.batch_execute(&format!(
            "CREATE INDEX IF NOT EXISTS vector_ann_hnsw_{dim} ON vector_ann
                 USING hnsw ((embedding::{ty}) {ns}.vector_ip_ops) WHERE dim = {dim}",
            ty = self.ty(Some(dim)),
            ns = self.ns
        ))
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        // Fresh statistics, or the planner may sort a tenant's rows instead of walking the
        // index (a table never analysed looks nearly empty to it).
        client
            .batch_execute("ANALYZE vector_ann")
            .await
            .map_err(map_err)?;
        self.indexed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dim);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_pgvector_text() {
        assert_eq!(literal(&[0.5, -1.0, 0.25]), "[0.5,-1,0.25]");
        assert_eq!(literal(&[f32::NAN, 1e-7]), "[0,0.0000001]");
        assert_eq!(literal(&[]), "[]");
    }

    #[test]
    fn the_mode_comes_out_of_the_url() {
        let (u, m) = split_mode("postgres://h/db?sslmode=require&pgvector=off").unwrap();
        assert_eq!(
            (u.as_str(), m),
            ("postgres://h/db?sslmode=require", Some(Mode::Off))
        );
        let (u, m) = split_mode("postgres://h/db?pgvector=on").unwrap();
        assert_eq!((u.as_str(), m), ("postgres://h/db", Some(Mode::On)));
        assert_eq!(split_mode("postgres://h/db").unwrap().1, None);
        assert!(split_mode("postgres://h/db?pgvector=sometimes").is_err());
    }

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse("auto").unwrap(), Mode::Auto);
        assert_eq!(Mode::parse("off").unwrap(), Mode::Off);
        assert_eq!(Mode::parse("on").unwrap(), Mode::On);
        assert!(Mode::parse("maybe").is_err());
    }

    #[test]
    fn versions_compare() {
        assert!(version_at_least("0.8.0", 0, 8));
        assert!(version_at_least("1.0", 0, 8));
        assert!(!version_at_least("0.7.4", 0, 8));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("public"), "\"public\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
