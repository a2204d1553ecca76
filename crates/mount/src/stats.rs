//! Counters for `.thumbfs/stats` and the recent failures for `.thumbfs/errors`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Failures kept for `.thumbfs/errors`.
const MAX_ERRORS: usize = 200;

/// One failed render.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Seconds since the epoch.
    pub time: u64,
    /// Source path relative to the root.
    pub path: String,
    /// Canonical spec.
    pub spec: String,
    /// The error message.
    pub cause: String,
}

/// Daemon-wide counters.
#[derive(Default)]
pub struct Stats {
    /// Renders started.
    pub renders: AtomicU64,
    /// Opens or stats answered from a finished output in memory or on disk.
    pub cache_hits: AtomicU64,
    /// Bytes returned by read().
    pub bytes_served: AtomicU64,
    /// Failed renders.
    pub errors: AtomicU64,
    /// Renders running or queued now.
    pub in_flight: AtomicU64,
    /// Render worker processes replaced after a crash, a timeout or running out of memory.
    pub worker_restarts: AtomicU64,
    failures: Mutex<VecDeque<Failure>>,
}

impl Stats {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a failed render.
    pub fn failed(&self, path: &str, spec: &str, cause: &str) {
        Stats::bump(&self.errors);
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.push_front(Failure {
            time,
            path: path.to_string(),
            spec: spec.to_string(),
            cause: cause.to_string(),
        });
        f.truncate(MAX_ERRORS);
    }

    /// The counters as a JSON object, with cache occupancy, evictions and inodes held added by
    /// the caller.
    pub fn json(
        &self,
        mem_bytes: u64,
        mem_entries: usize,
        evictions: u64,
        inodes: usize,
    ) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{{\"renders\": {}, \"cache_hits\": {}, \"bytes_served\": {}, \"errors\": {}, \
             \"in_flight\": {}, \"cache_mem_bytes\": {}, \"cache_mem_entries\": {}, \
             \"cache_evictions\": {}, \"inodes\": {}, \"worker_restarts\": {}}}\n",
            g(&self.renders),
            g(&self.cache_hits),
            g(&self.bytes_served),
            g(&self.errors),
            g(&self.in_flight),
            mem_bytes,
            mem_entries,
            evictions,
            inodes,
            g(&self.worker_restarts)
        )
    }

    /// Recent failures, newest first, one per line: time, path, spec, cause (tab-separated).
    pub fn errors_text(&self) -> String {
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.iter()
            .map(|e| {
                format!(
                    "{}\t{}\t{}\t{}\n",
                    e.time,
                    e.path,
                    e.spec,
                    e.cause.replace(['\n', '\t'], " ")
                )
            })
            .collect()
    }
}
