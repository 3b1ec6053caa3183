//! Bulk learning on both cores: a background thread prepares the next batch of turns
//! (validation, extraction, hashing) while the caller applies the current one to the store.

use continuum_core::memory::Turn;
use continuum_engine::{Engine, PreparedTurns};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

/// A batch of turns, each with the identity of an imported turn (none for a plain learn).
pub type KeyedTurns = Vec<(Turn, Option<String>)>;

/// Prepares each batch the iterator yields, at most two ahead of the consumer. An `Err` from
/// the iterator is passed through and ends the stream.
pub fn prepare_ahead<I>(
    engine: &Engine,
    batches: I,
) -> (Receiver<anyhow::Result<PreparedTurns>>, JoinHandle<()>)
where
    I: Iterator<Item = anyhow::Result<KeyedTurns>> + Send + 'static,
{
    let (tx, rx) = sync_channel(2);
    let engine = engine.clone();
    let handle = std::thread::spawn(move || {
        for batch in batches {
            let prepared =
                batch.and_then(|turns| engine.prepare_keyed_turns(turns).map_err(Into::into));
            let stop = prepared.is_err();
            if tx.send(prepared).is_err() || stop {
                break;
            }
        }
    });
    (rx, handle)
}
