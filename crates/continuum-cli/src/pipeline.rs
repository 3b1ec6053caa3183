//! Bulk learning on both cores: a background thread prepares the next batch of turns
//! (validation, extraction, hashing) while the caller applies the current one to the store.

use continuum_core::memory::Turn;
use continuum_engine::{Engine, PreparedTurns};
use std::thread::JoinHandle;
use tokio::sync::mpsc::Receiver;

/// A batch of turns, each with the identity of an imported turn (none for a plain learn).
pub type KeyedTurns = Vec<(Turn, Option<String>)>;

/// Prepares each batch the iterator yields, at most two ahead of the consumer. An `Err` from
/// the iterator is passed through and ends the stream. The consumer awaits batches (it must
/// not block its thread: the iterator may itself wait on the caller's runtime, for store
/// reads, and on a single-threaded runtime only the awaiting thread drives its I/O).
pub fn prepare_ahead<I>(
    engine: &Engine,
    batches: I,
) -> (Receiver<anyhow::Result<PreparedTurns>>, JoinHandle<()>)
where
    I: Iterator<Item = anyhow::Result<KeyedTurns>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let engine = engine.clone();
    let handle = std::thread::spawn(move || {
        for batch in batches {
            let prepared =
                batch.and_then(|turns| engine.prepare_keyed_turns(turns).map_err(Into::into));
            let stop = prepared.is_err();
            if tx.blocking_send(prepared).is_err() || stop {
                break;
            }
        }
    });
    (rx, handle)
}
