//! Forgetting and erasing reach the store's file: the words of what was forgotten are in no
//! file of the data directory afterwards (the full-text index included), before and after
//! VACUUM, while what was kept is still stored and found.

mod common;

use common::cli;
use serde_json::Value;
use std::path::Path;

/// Whether any file in `dir` holds `word` (case-insensitive), and which.
fn files_holding(dir: &Path, word: &str) -> Vec<String> {
    let needle = word.to_lowercase();
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            String::from_utf8_lossy(&bytes)
                .to_lowercase()
                .contains(&needle)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn forgotten_and_erased_words_leave_the_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(
        d,
        &[
            "--tenant",
            "victim",
            "learn",
            "--user",
            "Zanzibarquux lives on Flobberwick street",
            "--assistant",
            "Noted, Zanzibarquux",
        ],
    );
    cli(
        d,
        &[
            "--tenant",
            "other",
            "remember",
            "Plinkerdoodle keeps the ledger",
        ],
    );
    let v: Value = serde_json::from_str(&cli(
        d,
        &[
            "--tenant",
            "other",
            "--json",
            "remember",
            "Quibblewump knows the vault code",
        ],
    ))
    .unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    for w in [
        "Zanzibarquux",
        "Flobberwick",
        "Quibblewump",
        "Plinkerdoodle",
    ] {
        assert!(!files_holding(d, w).is_empty(), "{w} was stored");
    }
    cli(d, &["--tenant", "other", "forget", &id]);
    cli(d, &["tenants", "erase", "victim", "--yes"]);
    for w in ["Zanzibarquux", "Flobberwick", "Quibblewump"] {
        assert_eq!(
            files_holding(d, w),
            Vec::<String>::new(),
            "{w} is still in the store's files"
        );
    }
    assert!(
        !files_holding(d, "Plinkerdoodle").is_empty(),
        "what was not forgotten stays"
    );
    // Still found where it should be, and not where it should not.
    let hits: Value = serde_json::from_str(&cli(
        d,
        &["--tenant", "other", "--json", "search", "Plinkerdoodle"],
    ))
    .unwrap();
    assert_eq!(
        hits["hits"]
            .as_array()
            .map(Vec::len)
            .or(hits.as_array().map(Vec::len)),
        Some(1),
        "{hits}"
    );
    // And after `continuum vacuum` (SQLite's VACUUM and a WAL checkpoint) too.
    let v: Value = serde_json::from_str(&cli(d, &["--json", "vacuum"])).unwrap();
    assert!(v["tables"].as_u64().unwrap() >= 10, "{v}");
    assert!(
        v["bytes_after"].as_u64() <= v["bytes_before"].as_u64(),
        "{v}"
    );
    let audit = cli(d, &["--json", "audit", "tail"]);
    assert!(audit.contains("\"store.vacuumed\""), "{audit}");
    for w in ["Zanzibarquux", "Flobberwick", "Quibblewump"] {
        assert_eq!(
            files_holding(d, w),
            Vec::<String>::new(),
            "{w} after VACUUM"
        );
    }
}
