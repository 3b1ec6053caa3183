//! What a backup is: its id and its manifest, the plain JSON object written last beside the
//! data, so that a backup is complete exactly when its manifest exists.

use continuum_core::{Error, Result, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

pub const MANIFEST_FORMAT: &str = "continuum-backup";
/// The manifest and data format this release writes; it reads every version up to it.
/// Version 2 added incremental backups (`kind: incremental`, `parent_sha256`,
/// `from_position`) and the store's `node`.
pub const MANIFEST_VERSION: u32 = 2;
/// The manifest's object name inside a backup's folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The largest manifest read back (it lists tenants, so it grows with them).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// The first line inside the compressed data names the backup it belongs to, so that a data
/// object moved under another backup's manifest is refused.
pub const DATA_FORMAT: &str = "continuum-backup-data";
/// The largest first line of the data.
pub const MAX_DATA_HEADER_BYTES: usize = 4096;

/// How the store was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotKind {
    /// A copy of the whole SQLite file (`VACUUM INTO`): every tenant, key, audit entry and
    /// setting; restored by putting the file in place.
    SqliteFile,
    /// The tenants' exports (`continuum export` records, one tenant after another); restored
    /// by importing them, into either backend. Keys are not part of it.
    Logical,
    /// The synced events (memories created, superseded and forgotten, links, decisions) of
    /// every tenant since the parent backup's position: replayed onto the restored parent.
    Incremental,
}

impl SnapshotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::SqliteFile => "sqlite-file",
            SnapshotKind::Logical => "logical",
            SnapshotKind::Incremental => "incremental",
        }
    }
}

/// Size and SHA-256 (lower-case hex) of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub bytes: u64,
    pub sha256: String,
}

/// How the data object is encrypted: the scheme and how many recipients, never a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionInfo {
    /// `age-passphrase`, `age-x25519` or `none`.
    pub scheme: String,
    /// X25519 recipients the file key was wrapped for (0 for a passphrase or none).
    #[serde(default)]
    pub recipients: usize,
}

/// A tenant in a backup and its memories at the snapshot (for an incremental backup, the
/// tenant's events in it instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantCount {
    pub tenant: TenantId,
    pub memories: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events: u64,
    /// The event position this tenant's snapshot reflects, when it differs from the backup's
    /// (a logical backup reads each tenant in a transaction of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Everything known about a backup without opening it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub id: String,
    pub created_at: Timestamp,
    pub continuum_version: String,
    /// `sqlite` or `postgres`: the store that was backed up.
    pub backend: String,
    /// The store's schema version when it was backed up.
    pub schema_version: u32,
    pub kind: SnapshotKind,
    pub tenants: Vec<TenantCount>,
    /// The store-wide event position the snapshot reflects (for a logical backup of several
    /// tenants, the highest of the tenants' positions: each tenant is its own snapshot).
    pub position: u64,
    /// `zstd`.
    pub compression: String,
    pub encryption: EncryptionInfo,
    /// The data object's name inside the backup's folder.
    pub object: String,
    /// The snapshot before compression and encryption.
    pub plain: Digest,
    /// The data object as stored.
    pub stored: Digest,
    /// The backup this one builds on (incremental backups; none for a full one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The parent's stored SHA-256: the chain a restore walks, so a parent that is missing or
    /// was replaced is found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_sha256: Option<String>,
    /// For an incremental backup, the position its events start after (the parent's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_position: Option<u64>,
    /// The backed-up store's node id (incremental backups build only on their own store's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Manifest {
    /// Reads a manifest, refusing what this release cannot restore.
    pub fn parse(bytes: &[u8], expected_id: &str) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            Error::Conflict(format!(
                "the manifest of backup {expected_id} is not a valid manifest: {e}"
            ))
        })?;
        if m.format != MANIFEST_FORMAT {
            return Err(Error::Conflict(format!(
                "backup {expected_id}: the manifest's format is '{}', not '{MANIFEST_FORMAT}'",
                m.format
            )));
        }
        if m.version == 0 || m.version > MANIFEST_VERSION {
            return Err(Error::Conflict(format!(
                "backup {expected_id} has format version {}; this release reads versions 1 to {MANIFEST_VERSION} (upgrade Continuum to restore it)",
                m.version
            )));
        }
        if m.id != expected_id {
            return Err(Error::Conflict(format!(
                "the manifest in backup {expected_id}'s folder names backup {}",
                m.id
            )));
        }
        if m.compression != "zstd" {
            return Err(Error::Conflict(format!(
                "backup {expected_id} is compressed with '{}', which this release cannot read",
                m.compression
            )));
        }
        if m.object != data_object_name(m.encryption.scheme != "none") {
            return Err(Error::Conflict(format!(
                "backup {expected_id}: unexpected data object name '{}'",
                m.object
            )));
        }
        Ok(m)
    }

    /// Memories over all tenants.
    pub fn memories(&self) -> u64 {
        self.tenants.iter().map(|t| t.memories).sum()
    }
}

/// The data object's name: `data.age` when encrypted, `data.zst` when not.
pub fn data_object_name(encrypted: bool) -> &'static str {
    if encrypted { "data.age" } else { "data.zst" }
}

/// The first line of the plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataHeader {
    pub format: String,
    pub version: u32,
    pub id: String,
    pub kind: SnapshotKind,
}

/// A new backup id: the UTC time to the second and 24 random bits, e.g.
/// `20261206T143000Z-3fa9c1`. Ids sort by time.
pub fn new_id(at: Timestamp) -> String {
    let t = chrono::DateTime::from_timestamp_millis(at.millis()).unwrap_or_default();
    format!(
        "{}-{:06x}",
        t.format("%Y%m%dT%H%M%SZ"),
        fastrand::u32(..) & 0x00ff_ffff
    )
}

/// Checks an id given by a user or found at a destination (it becomes part of object names).
pub fn check_id(id: &str) -> Result<()> {
    if id_time(id).is_none() {
        return Err(Error::InvalidInput(format!(
            "'{}' is not a backup id (expected e.g. 20261206T143000Z-3fa9c1; `backup list` shows them)",
            id.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

/// The time an id was made, when it is a well-formed id.
pub fn id_time(id: &str) -> Option<Timestamp> {
    let (time, rand) = id.split_once('-')?;
    if time.len() != 16 || rand.len() != 6 {
        return None;
    }
    if !rand
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let t = chrono::NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%SZ").ok()?;
    Some(Timestamp(t.and_utc().timestamp_millis()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_paths() {
        let at = Timestamp(1_796_560_200_000);
        let id = new_id(at);
        assert_eq!(id.len(), 23, "{id}");
        assert!(id.starts_with("20261206T"), "{id}");
        assert_eq!(id_time(&id), Some(at));
        check_id(&id).unwrap();
        for bad in [
            "../../etc",
            "20261206T143000Z-3fa9c",
            "20261206T143000Z-3FA9C1",
            "20261306T143000Z-3fa9c1",
            "20261206T143000Z-3fa9c1/x",
            "",
        ] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_manifest_from_a_newer_release_or_another_folder_is_refused() {
        let m = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            id: "20261206T143000Z-3fa9c1".into(),
            created_at: Timestamp(0),
            continuum_version: "0.1.0".into(),
            backend: "sqlite".into(),
            schema_version: 10,
            kind: SnapshotKind::SqliteFile,
            tenants: vec![],
            position: 0,
            compression: "zstd".into(),
            encryption: EncryptionInfo {
                scheme: "age-passphrase".into(),
                recipients: 0,
            },
            object: "data.age".into(),
            plain: Digest {
                bytes: 0,
                sha256: String::new(),
            },
            stored: Digest {
                bytes: 0,
                sha256: String::new(),
            },
            parent: None,
            parent_sha256: None,
            from_position: None,
            node: None,
        };
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&bytes, &m.id).unwrap(), m);
        let e = Manifest::parse(&bytes, "20261206T143000Z-000000").unwrap_err();
        assert!(e.to_string().contains("names backup"), "{e}");
        let mut newer = m.clone();
        newer.version = MANIFEST_VERSION + 1;
        let e = Manifest::parse(&serde_json::to_vec(&newer).unwrap(), &m.id).unwrap_err();
        assert!(e.to_string().contains("upgrade"), "{e}");
        assert!(Manifest::parse(b"{", &m.id).is_err());
    }
}
