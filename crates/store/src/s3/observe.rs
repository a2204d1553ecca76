//! Who is told about each S3 request sent (the mount's `/metrics`): one observer per process,
//! so this crate knows nothing of the metrics it feeds.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Told about every attempt of every request, retries included.
pub trait Observer: Send + Sync {
    /// One attempt of `operation` (`get`, `head`, `put`, `list`, `delete`, `create_bucket`)
    /// ended with HTTP `status` (0: no response, a transport error) after `elapsed`.
    fn request(&self, operation: &'static str, status: u16, elapsed: Duration);
}

static OBSERVER: OnceLock<Arc<dyn Observer>> = OnceLock::new();

thread_local! {
    /// The status of the attempt running on this thread: set where the response is read,
    /// read where the attempt is timed (both on the requesting thread, one after the other).
    static STATUS: Cell<u16> = const { Cell::new(0) };
}

/// Sets the process's observer; false if one was already set (it stays).
pub fn set_observer(observer: Arc<dyn Observer>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Notes the HTTP status of the attempt running on this thread.
pub(super) fn note_status(status: u16) {
    STATUS.with(|s| s.set(status));
}

/// Times `attempt` and tells the observer, if any, how it went.
pub(super) fn timed<T>(operation: &'static str, attempt: impl FnOnce() -> T) -> T {
    let Some(o) = OBSERVER.get() else {
        return attempt();
    };
    note_status(0);
    let start = std::time::Instant::now();
    let out = attempt();
    o.request(operation, STATUS.with(Cell::get), start.elapsed());
    out
}
