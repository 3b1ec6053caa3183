//! `continuum`: the command-line face of the engine. Each subcommand translates its flags into
//! one engine call and prints the result, human-readable or as JSON (`--json`).
//!
//! Exit codes scripts can trust: 0 success, 1 internal error, 2 invalid input or usage,
//! 3 not found, 4 store unavailable (locked, read-only, unreadable), 5 conflict, 6 not allowed.

mod app;
mod commands;
mod config;
mod output;
mod pipeline;

use std::process::ExitCode;

/// mimalloc rather than the system allocator: a recall allocates and frees hundreds of small
/// buffers, and glibc's malloc spent about a fifth of a recall's instructions on them. The
/// `mimalloc` feature (on by default) can be turned off to profile the heap.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `continuum list | head`: standard output closed early is the reader's choice, not an
    // error. `println!` panics on it; end quietly instead, as Unix tools do.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    let (cli, file) = match config::parse_with_file(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("error: {}", app::one_line(&err));
            return ExitCode::from(2);
        }
    };
    let json = cli.global.json;
    let telemetry = match cli.global.init_logging() {
        Ok(t) => t,
        Err(err) => {
            eprintln!("error: {}", app::one_line(&err));
            return ExitCode::from(2);
        }
    };
    // `serve` answers requests on every core, and so do the benchmarks that run a server in
    // the process; the other commands do one thing at a time and keep to one thread (their
    // background work runs on threads of its own).
    let runtime = if cli.command.uses_every_core() {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("continuum-serve")
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(commands::run(cli, file));
    drop(runtime);
    // Outside the runtime: the trace exporter's client blocks while it sends the last spans.
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let (code, kind) = app::classify(&err);
            if json {
                let body =
                    serde_json::json!({"error": {"code": kind, "message": app::one_line(&err)}});
                println!("{body}");
            }
            eprintln!("error: {}", app::one_line(&err));
            ExitCode::from(code)
        }
    }
}
