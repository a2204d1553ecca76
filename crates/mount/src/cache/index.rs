//! The size index: exact output sizes by key hash, which outlive the cached bytes (a stat of
//! an evicted output needs no render). With a cache directory it also outlives the mount, as
//! `sizes.log` there: one `<hash> <size>` line per size learned, appended by the disk tier's
//! queue and started over when it grows too long. One leaf lock.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::disk::private_file;
use super::lock;
use super::queue::Queue;

/// Size index lines kept before the log is rewritten.
const SIZE_LOG_LIMIT: usize = 100_000;

/// Exact output sizes by [`RenderKey::hash`](super::RenderKey::hash).
pub struct SizeIndex {
    sizes: Mutex<HashMap<u64, u64>>,
    /// Where new sizes are appended, and the thread that does it.
    log: Option<(Arc<Mutex<SizeLog>>, Arc<Queue>)>,
}

impl SizeIndex {
    /// An index in memory only.
    pub fn new() -> Self {
        SizeIndex {
            sizes: Mutex::new(HashMap::new()),
            log: None,
        }
    }

    /// The index kept in `dir/sizes.log`: read now, appended to on `queue`.
    pub fn persistent(dir: &Path, queue: Arc<Queue>) -> Self {
        let path = dir.join("sizes.log");
        let mut sizes = HashMap::new();
        let mut lines = 0;
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                let mut it = line.split_whitespace();
                if let (Some(h), Some(n)) = (it.next(), it.next()) {
                    if let (Ok(h), Ok(n)) = (u64::from_str_radix(h, 16), n.parse()) {
                        sizes.insert(h, n);
                        lines += 1;
                    }
                }
            }
        }
        let log = SizeLog {
            file: private_file(&path, true).ok(),
            path,
            lines,
            failed: false,
        };
        SizeIndex {
            sizes: Mutex::new(sizes),
            log: Some((Arc::new(Mutex::new(log)), queue)),
        }
    }

    /// The size of the output hashed `hash`, if known.
    pub fn get(&self, hash: u64) -> Option<u64> {
        lock(&self.sizes).get(&hash).copied()
    }

    /// Records a size, and queues it for the log when it is new.
    pub fn insert(&self, hash: u64, size: u64) {
        if lock(&self.sizes).insert(hash, size) == Some(size) {
            return;
        }
        if let Some((log, queue)) = &self.log {
            let log = log.clone();
            queue.push(move || lock(&log).append(hash, size));
        }
    }
}

/// The log file; used on the queue's thread only.
struct SizeLog {
    path: PathBuf,
    file: Option<File>,
    lines: usize,
    /// Set after the first write failure so we log once.
    failed: bool,
}

impl SizeLog {
    fn append(&mut self, hash: u64, size: u64) {
        if self.lines >= SIZE_LOG_LIMIT {
            // Start over rather than grow without bound; sizes are re-learned on demand.
            let _ = fs::remove_file(&self.path);
            self.file = private_file(&self.path, true).ok();
            self.lines = 0;
        }
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = writeln!(f, "{hash:016x} {size}") {
                self.warn_once(&e);
            }
            self.lines += 1;
        }
    }

    fn warn_once(&mut self, e: &io::Error) {
        if !std::mem::replace(&mut self.failed, true) {
            tracing::warn!(
                "disk cache {}: cannot record sizes: {e}; serving from memory only",
                self.path.parent().unwrap_or(&self.path).display()
            );
        }
    }
}
