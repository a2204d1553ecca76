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

/// Why a render failed (the `cause` label of the error metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The image itself: broken, unsupported, too large (fails again with the same bytes).
    Image,
    /// Reading the source or writing the output failed, or the source changed meanwhile.
    Io,
    /// Ran past `--render-timeout`.
    Timeout,
    /// The render worker process crashed or was killed.
    Crash,
    /// The render worker ran out of memory.
    OutOfMemory,
    /// No render worker could be started.
    Worker,
}

impl Cause {
    /// Every cause, in the order of [`Stats::errors_by_cause`].
    pub const ALL: [Cause; 6] = [
        Cause::Image,
        Cause::Io,
        Cause::Timeout,
        Cause::Crash,
        Cause::OutOfMemory,
        Cause::Worker,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Cause::Image => "image",
            Cause::Io => "io",
            Cause::Timeout => "timeout",
            Cause::Crash => "crash",
            Cause::OutOfMemory => "out_of_memory",
            Cause::Worker => "worker",
        }
    }
}

/// Daemon-wide counters.
#[derive(Default)]
pub struct Stats {
    /// Renders started.
    pub renders: AtomicU64,
    /// Opens or stats answered from a finished output in memory or on disk: the sum of
    /// the per-tier hits below.
    pub cache_hits: AtomicU64,
    /// Hits in memory.
    pub memory_hits: AtomicU64,
    /// Hits loaded from `--cache-dir`.
    pub disk_hits: AtomicU64,
    /// Hits loaded from `--cache-url`.
    pub remote_hits: AtomicU64,
    /// Renders and loads waiting for a render thread (part of `in_flight`).
    pub queued: AtomicU64,
    /// Failed renders by [`Cause`], in the order of [`Cause::ALL`].
    pub errors_by_cause: [AtomicU64; Cause::ALL.len()],
    /// Render and first-byte times by output format.
    pub timings: crate::metrics::Timings,
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

    /// Takes one from a gauge.
    pub fn drop_one(gauge: &AtomicU64) {
        gauge.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a hit in the tier named `tier` (`memory`, `disk`, `remote`).
    pub fn hit(&self, tier: &str) {
        Stats::bump(&self.cache_hits);
        match tier {
            "memory" => Stats::bump(&self.memory_hits),
            "disk" => Stats::bump(&self.disk_hits),
            "remote" => Stats::bump(&self.remote_hits),
            _ => {}
        }
    }

    /// Records a failed render and why it failed.
    pub fn failed(&self, path: &str, spec: &str, cause: &str, why: Cause) {
        Stats::bump(&self.errors);
        if let Some(i) = Cause::ALL.iter().position(|c| *c == why) {
            Stats::bump(&self.errors_by_cause[i]);
        }
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
