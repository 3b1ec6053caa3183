//! Semantic recall end to end, the way a user turns it on: the real all-MiniLM-L6-v2 files from
//! CONTINUUM_TEST_MODEL_DIR (`.ci/run` fetches them), the `continuum` binary and its flags.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn model_dir() -> Option<PathBuf> {
    match std::env::var("CONTINUUM_TEST_MODEL_DIR") {
        Ok(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => {
            eprintln!("skipping: CONTINUUM_TEST_MODEL_DIR is not set (a MiniLM model directory)");
            None
        }
    }
}

/// Runs `continuum` on a data dir; `model` adds `--embedder local --model-dir`.
fn run(dir: &Path, model: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_continuum"));
    cmd.arg("--data-dir").arg(dir);
    for var in [
        "CONTINUUM_DATA_DIR",
        "CONTINUUM_TENANT",
        "CONTINUUM_EMBEDDER",
        "CONTINUUM_MODEL_DIR",
        "CONTINUUM_EMBED_MODEL",
        "CONTINUUM_STORE",
    ] {
        cmd.env_remove(var);
    }
    if let Some(m) = model {
        cmd.args(["--embedder", "local", "--model-dir"]).arg(m);
    }
    let out = cmd.args(args).output().expect("run continuum");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok_json(r: (i32, String, String)) -> Value {
    assert_eq!(r.0, 0, "stdout: {}\nstderr: {}", r.1, r.2);
    serde_json::from_str(&r.1).unwrap_or_else(|e| panic!("{e}: {}", r.1))
}

const TARGET: &str = "My dog loves chasing tennis balls in the park every morning.";
const QUERY: &str = "Which pet enjoys playing fetch outside?";

fn remember_all(dir: &Path) {
    for text in [
        TARGET,
        "The quarterly budget review moved to Thursday afternoon.",
        "We deploy the billing service with Kubernetes on Hetzner.",
        "Grandma's apple pie recipe needs cinnamon and brown sugar.",
    ] {
        ok_json(run(dir, None, &["remember", "--json", text]));
    }
}

fn top(recall: &Value) -> Option<String> {
    recall["memories"][0]["content"].as_str().map(String::from)
}

#[test]
fn a_paraphrase_is_found_only_with_the_local_embedder() {
    let Some(model) = model_dir() else { return };
    let d = tempfile::tempdir().unwrap();
    remember_all(d.path());

    // Without an embedder: no shared keyword, so the dog memory is not recalled.
    let plain = ok_json(run(d.path(), None, &["recall", "--json", QUERY]));
    let contents: Vec<&str> = plain["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(!contents.contains(&TARGET), "{contents:?}");
    assert!(plain.get("semantic").is_none());

    // With the embedder but nothing embedded yet: recall still works and says what is missing.
    let (code, _, stderr) = run(d.path(), Some(&model), &["recall", QUERY]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("4 of 4 memories have no"), "{stderr}");

    let report = ok_json(run(d.path(), Some(&model), &["reindex", "--json"]));
    assert_eq!(report["embedded"], 4);
    assert_eq!(report["dim"], 384);
    let again = ok_json(run(d.path(), Some(&model), &["reindex", "--json"]));
    assert_eq!(again["embedded"], 0, "resumes: nothing left to embed");

    let r = ok_json(run(d.path(), Some(&model), &["recall", "--json", QUERY]));
    assert_eq!(top(&r).as_deref(), Some(TARGET), "{r:#}");
    let first = &r["memories"][0];
    assert_eq!(first["signals"]["lexical"], 0.0);
    assert!(
        first["signals"]["semantic"].as_f64().unwrap() > 0.9,
        "{first}"
    );
    assert_eq!(r["semantic"]["embedded"], 4);
    assert!(r["semantic"].get("error").is_none());

    let stats = ok_json(run(d.path(), None, &["stats", "--json"]));
    assert_eq!(stats["vectors"][0]["count"], 4);
    assert_eq!(stats["vectors"][0]["dim"], 384);
}

#[test]
fn switching_models_reembeds_and_never_mixes_vectors() {
    let Some(model) = model_dir() else { return };
    let d = tempfile::tempdir().unwrap();
    remember_all(d.path());
    ok_json(run(d.path(), Some(&model), &["reindex", "--json"]));
    // The same files under another model name count as another model: all re-embedded.
    let named = |args: &[&str]| {
        let mut all = vec!["--embed-model", "minilm-renamed"];
        all.extend_from_slice(args);
        run(d.path(), Some(&model), &all)
    };
    let r = ok_json(named(&["reindex", "--json"]));
    assert_eq!(r["embedded"], 4);
    let stats = ok_json(run(d.path(), None, &["stats", "--json"]));
    assert_eq!(stats["vectors"].as_array().unwrap().len(), 2, "{stats}");
    let r = ok_json(named(&["recall", "--json", QUERY]));
    assert_eq!(r["semantic"]["model"], "minilm-renamed");
    assert_eq!(r["semantic"]["embedded"], 4, "one model's vectors only");
    assert_eq!(top(&r).as_deref(), Some(TARGET));
    let pruned = ok_json(named(&["reindex", "--prune", "--json"]));
    assert_eq!(pruned["pruned"], 4);
    let stats = ok_json(run(d.path(), None, &["stats", "--json"]));
    assert_eq!(stats["vectors"].as_array().unwrap().len(), 1);
    assert_eq!(stats["vectors"][0]["model"], "minilm-renamed");
}

#[test]
fn embedder_flags_fail_clearly() {
    let d = tempfile::tempdir().unwrap();
    let (code, _, err) = run(d.path(), None, &["--embedder", "local", "recall", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--model-dir"), "{err}");
    let (code, _, err) = run(d.path(), None, &["--embedder", "magic", "recall", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("none, local or openai"), "{err}");
    let missing = d.path().join("no-model");
    let (code, _, err) = run(d.path(), Some(&missing), &["reindex"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, err) = run(d.path(), None, &["reindex"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs an embedder"), "{err}");
}

#[test]
fn reindex_builds_the_vector_graph_that_recall_then_uses() {
    let Some(model) = model_dir() else { return };
    let d = tempfile::tempdir().unwrap();
    remember_all(d.path());
    let small = ["--ann-min-vectors", "3"];
    let with = |args: &[&str]| -> Vec<String> {
        small.iter().chain(args).map(|s| s.to_string()).collect()
    };
    let run_with = |args: &[&str]| {
        let args = with(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(d.path(), Some(&model), &args)
    };

    let report = ok_json(run_with(&["reindex", "--json"]));
    assert_eq!(report["vector_index"]["search"], "hnsw", "{report:#}");
    assert_eq!(report["vector_index"]["graph_vectors"], 4);
    let snapshot = PathBuf::from(report["vector_index"]["snapshot"].as_str().unwrap());
    assert!(snapshot.exists(), "{}", snapshot.display());
    assert!(
        snapshot.starts_with(d.path().join("continuum.db-index")),
        "{}",
        snapshot.display()
    );

    // The next process (a one-shot recall) loads the saved graph and searches through it.
    let r = ok_json(run_with(&["recall", "--json", QUERY]));
    assert_eq!(r["semantic"]["search"], "hnsw", "{r:#}");
    assert_eq!(top(&r).as_deref(), Some(TARGET));
    // The default threshold (20,000) scans these four.
    let r = ok_json(run(d.path(), Some(&model), &["recall", "--json", QUERY]));
    assert_eq!(r["semantic"]["search"], "exact");
    let doctor = ok_json(run_with(&["doctor", "--json"]));
    let graph = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "vector graph")
        .unwrap_or_else(|| panic!("{doctor:#}"));
    assert!(
        graph["detail"].as_str().unwrap().contains("1 saved"),
        "{graph}"
    );

    // Forgetting deletes the saved graph with the memory.
    let id = r["memories"][0]["id"].as_str().unwrap().to_string();
    let (code, _, stderr) = run(d.path(), None, &["forget", &id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !snapshot.exists(),
        "the graph file outlived a forgotten memory"
    );
    let r = ok_json(run_with(&["recall", "--json", QUERY]));
    assert_ne!(top(&r).as_deref(), Some(TARGET));
}

#[test]
fn a_negated_paraphrase_of_a_belief_is_a_contradiction_only_with_the_local_embedder() {
    let Some(model) = model_dir() else { return };
    let d = tempfile::tempdir().unwrap();
    let add = |model: Option<&Path>, text: &str| {
        ok_json(run(
            d.path(),
            model,
            &["beliefs", "add", "--json", "--domain", "family", text],
        ))
    };
    add(None, "My sister enjoys living in Lisbon");
    // The words differ ("enjoys" / "like"): the word rules alone find nothing.
    let words = add(None, "My sister doesn't like living in Lisbon");
    assert_eq!(words["contradictions"], serde_json::json!([]), "{words}");
    // The model finds the same statement once the negation is set aside (cosine about 0.95).
    let meant = add(Some(&model), "My sister doesn't like living in Lisbon");
    let found = meant["contradictions"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{meant}");
    assert_eq!(found[0]["kind"], "negation");
    assert_eq!(found[0]["method"], "embedding");
    assert_eq!(
        found[0]["earlier_text"],
        "My sister enjoys living in Lisbon"
    );
    assert!(found[0]["similarity"].as_f64().unwrap() >= 0.9, "{meant}");
    // A negated statement about something else is no contradiction (cosine about 0.3).
    let other = add(
        Some(&model),
        "My brother does not like the weather in Berlin",
    );
    assert_eq!(other["contradictions"], serde_json::json!([]), "{other}");
}
