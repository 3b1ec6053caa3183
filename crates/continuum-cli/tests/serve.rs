//! `continuum serve` beside other processes writing to the same data directory: the server
//! reuses verified keys and its index while nothing is committed, and sees at once what
//! another process commits (a learned turn, a revoked key).

mod common;

use common::{cli, request, serve};

fn learn(data_dir: &std::path::Path, user: &str, assistant: &str) {
    cli(
        data_dir,
        &[
            "--tenant",
            "acme",
            "learn",
            "--user",
            user,
            "--assistant",
            assistant,
        ],
    );
}

fn recall(url: &str, key: &str, message: &str) -> (u16, String) {
    request(
        url,
        "POST",
        "/v1/recall",
        &format!("X-API-Key: {key}\r\n"),
        &format!(r#"{{"message": "{message}", "max_concepts": 10}}"#),
    )
}

#[test]
fn the_server_sees_what_other_processes_commit_at_once() {
    let d = tempfile::tempdir().unwrap();
    let key = cli(
        d.path(),
        &["--tenant", "acme", "keys", "create", "--scope", "write"],
    );
    let key = key.trim();
    learn(
        d.path(),
        "Our staging cluster runs in Frankfurt.",
        "Noted: staging is in Frankfurt.",
    );
    let (_server, url) = serve(d.path());

    // Asked twice: the second answer comes from the verified key and the built index.
    for _ in 0..2 {
        let (status, body) = recall(&url, key, "Where does the quarantine pipeline run?");
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("Reykjavik"), "{body}");
    }

    // Another process learns a turn; the next recall has it.
    learn(
        d.path(),
        "The quarantine pipeline moved to Reykjavik last week.",
        "Understood, the quarantine pipeline now runs in Reykjavik.",
    );
    let (status, body) = recall(&url, key, "Where does the quarantine pipeline run?");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Reykjavik"),
        "the other process's turn: {body}"
    );

    // Another process revokes the key; the next request is refused.
    cli(d.path(), &["keys", "revoke", key]);
    let (status, body) = recall(&url, key, "Where does the quarantine pipeline run?");
    assert_eq!(status, 401, "a key revoked by another process: {body}");
}
