//! Log lines to stderr in batches: `info` and below are appended to a buffer that a thread of
//! its own writes out every [`FLUSH_EVERY`] (or at once past [`FLUSH_AT`] bytes), so a busy
//! server makes one `write` per batch instead of one per request line. Warnings and errors
//! are written through at once. [`flush`] empties the buffer (at exit).

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this large is written out by the line that filled it.
pub const FLUSH_AT: usize = 64 * 1024;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static FLUSHER: OnceLock<()> = OnceLock::new();

/// Writes out whatever is buffered.
pub fn flush() {
    let pending = std::mem::take(&mut *BUFFER.lock().unwrap_or_else(|p| p.into_inner()));
    if !pending.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&pending);
        let _ = err.flush();
    }
}

fn start_flusher() {
    FLUSHER.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("continuum-log".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                }
            });
    });
}

/// The `MakeWriter` of the log layer.
#[derive(Clone, Copy, Default)]
pub struct BatchedStderr;

/// One event's writer: into the buffer, or straight to stderr.
pub enum LineWriter {
    Buffered,
    Direct(std::io::Stderr),
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            LineWriter::Direct(e) => e.write(data),
            LineWriter::Buffered => {
                let full = {
                    let mut b = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
                    b.extend_from_slice(data);
                    b.len() >= FLUSH_AT
                };
                if full {
                    flush();
                }
                Ok(data.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LineWriter::Direct(e) => e.flush(),
            LineWriter::Buffered => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        start_flusher();
        LineWriter::Buffered
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        if *meta.level() <= tracing::Level::WARN {
            // Warnings and errors go out at once, after anything buffered before them.
            flush();
            LineWriter::Direct(std::io::stderr())
        } else {
            self.make_writer()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_lines_wait_for_a_flush_and_keep_their_order() {
        let mut w = LineWriter::Buffered;
        w.write_all(b"one\n").unwrap();
        w.write_all(b"two\n").unwrap();
        let held = BUFFER.lock().unwrap().clone();
        assert!(held.ends_with(b"one\ntwo\n"), "{held:?}");
        flush();
        assert!(BUFFER.lock().unwrap().is_empty());
    }
}
