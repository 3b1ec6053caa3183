//! `continuum.toml`: precedence (flag > environment > file > default), errors naming the file
//! and line, `config show` with secrets redacted, and `config init` followed by a start.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn run(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_continuum"));
    cmd.arg("--data-dir").arg(data_dir).args(args);
    for var in [
        "CONTINUUM_DATA_DIR",
        "CONTINUUM_TENANT",
        "CONTINUUM_CONFIG",
        "CONTINUUM_BUSY_TIMEOUT_MS",
        "CONTINUUM_BIND",
        "CONTINUUM_STORE",
        "CONTINUUM_EMBED_API_KEY",
        "CONTINUUM_LOG_LEVEL",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `config show --json` as (value, source) by key.
fn show(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["config", "show"]);
    let v: Value = serde_json::from_str(&ok(run(data_dir, &all, env))).unwrap();
    let mut by_key = serde_json::Map::new();
    for row in v["settings"].as_array().unwrap() {
        by_key.insert(
            row["key"].as_str().unwrap().to_string(),
            serde_json::json!([row["value"], row["source"]]),
        );
    }
    Value::Object(by_key)
}

#[test]
fn each_layer_overrides_the_one_below() {
    let d = tempfile::tempdir().unwrap();
    let s = show(d.path(), &[], &[]);
    assert_eq!(
        s["store.busy_timeout_ms"],
        serde_json::json!(["5000", "default"])
    );
    assert_eq!(
        s["server.bind"],
        serde_json::json!(["127.0.0.1:8420", "default"])
    );

    std::fs::write(
        d.path().join("continuum.toml"),
        "[store]\nbusy_timeout_ms = 700\ntenant = \"from-file\"\n\n[server]\nbind = \"127.0.0.1:7001\"\n",
    )
    .unwrap();
    let s = show(d.path(), &[], &[]);
    assert_eq!(
        s["store.busy_timeout_ms"],
        serde_json::json!(["700", "file"])
    );
    assert_eq!(
        s["server.bind"],
        serde_json::json!(["127.0.0.1:7001", "file"])
    );

    let env = [
        ("CONTINUUM_BUSY_TIMEOUT_MS", "800"),
        ("CONTINUUM_BIND", "127.0.0.1:7002"),
    ];
    let s = show(d.path(), &[], &env);
    assert_eq!(
        s["store.busy_timeout_ms"],
        serde_json::json!(["800", "env"])
    );
    assert_eq!(
        s["server.bind"],
        serde_json::json!(["127.0.0.1:7002", "env"])
    );

    let s = show(d.path(), &["--busy-timeout-ms", "900"], &env);
    assert_eq!(
        s["store.busy_timeout_ms"],
        serde_json::json!(["900", "flag"])
    );

    // The effective value is the one the command uses: the tenant of a write.
    ok(run(
        d.path(),
        &["remember", "kept in the file's tenant"],
        &[],
    ));
    ok(run(
        d.path(),
        &["remember", "kept in the environment's tenant"],
        &[("CONTINUUM_TENANT", "from-env")],
    ));
    ok(run(
        d.path(),
        &[
            "--tenant",
            "from-flag",
            "remember",
            "kept in the flag's tenant",
        ],
        &[("CONTINUUM_TENANT", "from-env")],
    ));
    for tenant in ["from-file", "from-env", "from-flag"] {
        let stats: Value = serde_json::from_str(&ok(run(
            d.path(),
            &["--tenant", tenant, "--json", "stats"],
            &[],
        )))
        .unwrap();
        assert_eq!(stats["memories"], 1, "{tenant}: {stats}");
    }
}

#[test]
fn a_bad_file_stops_the_start_naming_file_line_and_key() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("bad.toml");
    for (text, expected) in [
        (
            "[store]\nbusy_timeout_ms = 10\n\n[server]\nbnid = \"x\"\n",
            ":5: unknown setting server.bnid",
        ),
        (
            "[recall]\nann_min_vectors = \"many\"\n",
            ":2: recall.ann_min_vectors must be a non-negative integer, not a string",
        ),
        ("[log]\nformat = \"yaml\"\n", ":2: log.format: "),
        (
            "[limits]\nrate = \"fast\"\n",
            ":2: limits.rate must be a number",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let out = run(
            d.path(),
            &["--config", path.to_str().unwrap(), "stats"],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}{expected}", path.display())),
            "{text}: {err}"
        );
    }
    // Nothing was created or written by the refused starts.
    assert!(!d.path().join("continuum.db").exists());
    let missing = run(d.path(), &["--config", "/nonexistent/c.toml", "stats"], &[]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn config_show_redacts_secrets() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("continuum.toml"),
        "[store]\nurl = \"postgres://app:hunter2@db.invalid/mem\"\n",
    )
    .unwrap();
    let env = [("CONTINUUM_EMBED_API_KEY", "sk-very-secret")];
    for json in [true, false] {
        let mut args = vec![];
        if json {
            args.push("--json");
        }
        args.extend(["config", "show"]);
        let out = ok(run(d.path(), &args, &env));
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("sk-very-secret"), "{out}");
        assert!(out.contains("postgres://app:****@db.invalid/mem"), "{out}");
    }
}

#[test]
fn config_init_writes_a_file_a_server_starts_with() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("conf").join("continuum.toml");
    let p = path.to_str().unwrap();
    ok(run(d.path(), &["--config", p, "config", "init"], &[]));
    let again = run(d.path(), &["--config", p, "config", "init"], &[]);
    assert_eq!(again.status.code(), Some(5), "refuses to overwrite");
    ok(run(
        d.path(),
        &["--config", p, "config", "init", "--force"],
        &[],
    ));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# bind = \"127.0.0.1:8420\""), "{text}");
    std::fs::write(
        &path,
        text.replace("# bind = \"127.0.0.1:8420\"", "bind = \"127.0.0.1:0\"")
            .replace("# format = \"pretty\"", "format = \"json\""),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(d.path())
        .args(["--config", p, "serve"])
        .env_remove("CONTINUUM_BIND")
        .env_remove("CONTINUUM_LOG_FORMAT")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let msg = v["message"].as_str().unwrap();
    assert!(msg.starts_with("listening on http://127.0.0.1:"), "{msg}");
    assert!(!msg.ends_with(":8420"), "{msg}");
}
