//! Finished outputs behind one small API, in tiers asked in order: memory first
//! (`memory.rs`: an LRU bounded in bytes, plus the outputs still held open after eviction),
//! then the tiers behind it, each one [`Tier`] impl (`tier.rs`): the disk (`disk.rs`,
//! `--cache-dir`, surviving the mount), then the shared S3 tier (`remote.rs`, `--cache-url`).
//! Beside them: the failure memory (`failures.rs`) and the size index that outlives them all
//! (`index.rs`). Keys are in `key.rs`, the checksummed format of stored bytes in `trailer.rs`,
//! and each tier's writes run on its own background thread (`queue.rs`). Adding a tier is one
//! [`Tier`] impl plus one [`Cache::with_tier`] where the mount builds its cache (`scheduler()`
//! in lib.rs).
//!
//! No method that a FUSE request thread calls does I/O: [`Cache::lookup`], [`Cache::size`],
//! [`Cache::put`] and [`Cache::fail`] only touch in-memory maps and queue work. Disk reads and
//! shared-tier GETs happen in [`Cache::load`], called by render threads only; disk writes,
//! evictions, the size log and uploads run on the tiers' queue threads.
//!
//! # Lock order
//!
//! Always taken in this order, and never held across I/O:
//!
//! 1. the scheduler's in-flight map (`Scheduler::get` calls [`Cache::lookup`] under it);
//! 2. one cache lock at a time, each a leaf among the cache's locks (never held while taking
//!    another of them): memory, failures, the size index, `loaded`, the disk's file index,
//!    the shared tier's pause time, a queue's sender;
//! 3. a render's own lock ([`Render`]'s state: memory reads the length and outcome of the
//!    outputs it holds).
//!
//! The queue threads and render threads take only 2 and 3, in that order. One exception to
//! "never across I/O": the size log's lock is held while it appends, but only the disk
//! queue's thread ever takes it.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

mod disk;
mod failures;
mod index;
mod key;
mod memory;
mod queue;
mod remote;
mod tier;
mod trailer;

pub use key::{RenderKey, SourceId};
pub use remote::Remote;
pub use tier::{Occupancy, Origin, Tier};

use super::render::Render;
use disk::Disk;
use failures::Failures;
use index::SizeIndex;
use memory::Memory;
use remote::RemoteTier;

/// What the cache knows about a key, without I/O.
pub enum Lookup {
    /// A finished output (memory, or still held open by a reader).
    Ready(Arc<Render>),
    /// A failure that would happen again (a broken image).
    Failed(Arc<Render>),
    /// In the disk cache, or perhaps in the shared tier: [`Cache::load`] it on a worker
    /// (which renders after all when that finds nothing).
    OnDisk,
    /// Unknown: render it.
    Miss,
}

/// Finished outputs in memory and in the tiers behind it, the size index and the failure
/// memory.
pub struct Cache {
    memory: Memory,
    failures: Failures,
    /// Dropped before the tiers: it may hold the disk's queue, which drains when the last
    /// holder goes.
    sizes: SizeIndex,
    /// Outputs [`Cache::load`]ed from a tier since their last [`Cache::put`]: not sent to
    /// shared tiers again.
    loaded: Mutex<HashSet<u64>>,
    /// Behind memory, fastest first; dropped in this order, each waiting (boundedly) for its
    /// queued writes.
    tiers: Vec<Box<dyn Tier>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cache {
    /// A cache of `mem_limit` bytes in memory and, with `disk`, up to `disk_limit` bytes there.
    pub fn new(mem_limit: u64, disk: Option<(PathBuf, u64)>) -> io::Result<Self> {
        let mut cache = Cache {
            memory: Memory::new(mem_limit),
            failures: Failures::new(),
            sizes: SizeIndex::new(),
            loaded: Mutex::new(HashSet::new()),
            tiers: Vec::new(),
        };
        if let Some((dir, limit)) = disk {
            let disk = Disk::open(dir.clone(), limit)?;
            cache.sizes = SizeIndex::persistent(&dir, disk.queue());
            cache = cache.with_tier(Box::new(disk));
        }
        Ok(cache)
    }

    /// Adds the shared tier behind memory and disk: loads try it after the disk, finished
    /// renders are uploaded to it by a thread of their own (a slow server delays nothing
    /// else; at most 64 MiB wait for it, beyond that uploads are skipped).
    pub fn with_remote(self, remote: Remote) -> io::Result<Self> {
        Ok(self.with_tier(Box::new(RemoteTier::start(remote)?)))
    }

    /// Adds `tier` behind the ones already there.
    pub fn with_tier(mut self, tier: Box<dyn Tier>) -> Self {
        self.tiers.push(tier);
        self
    }

    /// What is known about `key` without I/O; a memory hit counts as recently used.
    pub fn lookup(&self, key: &RenderKey) -> Lookup {
        if let Some(r) = self.memory.get(key) {
            return Lookup::Ready(r);
        }
        if let Some(r) = self.failures.get(key) {
            return Lookup::Failed(r);
        }
        if self.tiers.iter().any(|t| t.holds(key)) {
            return Lookup::OnDisk;
        }
        Lookup::Miss
    }

    /// Reads and verifies an output from the tiers behind memory, in order (blocking I/O:
    /// render workers only). A damaged copy is a miss (a disk file is removed; the render
    /// that follows replaces it), as is an unreachable server.
    pub fn load(&self, key: &RenderKey) -> Option<Vec<u8>> {
        self.load_from(key).map(|(bytes, _)| bytes)
    }

    /// [`Cache::load`], with the name of the tier that had it.
    pub fn load_from(&self, key: &RenderKey) -> Option<(Vec<u8>, &'static str)> {
        let found = self
            .tiers
            .iter()
            .find_map(|t| t.load(key).map(|b| (b, t.name())))?;
        lock(&self.loaded).insert(key.hash());
        Some(found)
    }

    /// The exact size of an output rendered before, if known.
    pub fn size(&self, key: &RenderKey) -> Option<u64> {
        self.sizes.get(key.hash())
    }

    /// Remembers a finished output: size index, memory, the open-outputs map, and (through
    /// their queue threads) the tiers behind memory.
    pub fn put(&self, key: RenderKey, render: Arc<Render>) {
        let Some(size) = render.finished_size() else {
            return;
        };
        let hash = key.hash();
        let origin = if lock(&self.loaded).remove(&hash) {
            Origin::Loaded
        } else {
            Origin::Rendered
        };
        self.sizes.insert(hash, size);
        self.memory.insert(key.clone(), render.clone());
        for t in &self.tiers {
            t.store(&key, &render, size, origin);
        }
    }

    /// Remembers a failure that would happen again with the same bytes.
    pub fn fail(&self, key: RenderKey, render: Arc<Render>) {
        self.failures.put(key, render);
    }

    /// What memory holds, and its evictions: outputs evicted from memory or never admitted
    /// (larger than the whole budget), each of which allows at most one more render of its
    /// key (how single flight is checked).
    pub fn occupancy(&self) -> (Occupancy, u64) {
        self.memory.occupancy()
    }

    /// Bytes and entries held by each tier behind memory that keeps count, by tier name.
    pub fn tier_occupancy(&self) -> Vec<(&'static str, Occupancy)> {
        self.tiers
            .iter()
            .filter_map(|t| t.occupancy().map(|o| (t.name(), o)))
            .collect()
    }

    /// Waits until every write and upload queued so far is done (tests, shutdown).
    pub fn flush(&self) {
        for t in &self.tiers {
            t.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::trailer::TRAILER;
    use super::*;
    use crate::render::Outcome;
    use std::fs::{self, OpenOptions};

    fn key(n: u64) -> RenderKey {
        RenderKey {
            source: SourceId {
                dev: 1,
                ino: n,
                size: 10,
                mtime_ns: 5,
            },
            spec: "w256".into(),
        }
    }

    fn finished(bytes: &[u8]) -> Arc<Render> {
        let r = Render::new();
        r.append(bytes).unwrap();
        r.finish(Outcome::Done);
        r
    }

    fn ready(c: &Cache, k: &RenderKey) -> Option<Vec<u8>> {
        match c.lookup(k) {
            Lookup::Ready(r) => Some(r.bytes()),
            _ => None,
        }
    }

    #[test]
    fn memory_is_bounded_in_bytes_and_sizes_outlive_it() {
        let c = Cache::new(10, None).unwrap();
        c.put(key(1), finished(b"123456"));
        c.put(key(2), finished(b"abcdef"));
        let (Occupancy { bytes, .. }, evictions) = c.occupancy();
        assert!(bytes <= 10);
        assert!(ready(&c, &key(1)).is_none(), "oldest evicted");
        assert_eq!(evictions, 1);
        c.put(key(3), finished(b"far too large to keep"));
        assert_eq!(c.occupancy().1, 2, "never admitted counts too");
        assert_eq!(c.size(&key(1)), Some(6));
        assert_eq!(ready(&c, &key(2)).unwrap(), b"abcdef");
    }

    #[test]
    fn evicted_outputs_still_held_open_are_reused() {
        let c = Cache::new(0, None).unwrap();
        let held = finished(b"held");
        c.put(key(1), held.clone());
        assert_eq!(ready(&c, &key(1)).unwrap(), b"held");
        drop(held);
        assert!(matches!(c.lookup(&key(1)), Lookup::Miss));
    }

    #[test]
    fn disk_cache_survives_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let d = Some((dir.path().to_path_buf(), 1 << 20));
        {
            let c = Cache::new(0, d.clone()).unwrap();
            c.put(key(1), finished(b"hello"));
            c.put(key(2), finished(b"world"));
            // Dropping the cache waits for the writer thread.
        }
        let c = Cache::new(0, d.clone()).unwrap();
        assert_eq!(c.size(&key(1)), Some(5));
        assert!(matches!(c.lookup(&key(1)), Lookup::OnDisk));
        assert_eq!(c.load(&key(1)).unwrap(), b"hello");
        // Truncate the second file: detected, removed, a miss.
        let p = dir.path().join(format!("{:016x}.out", key(2).hash()));
        let len = fs::metadata(&p).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let c = Cache::new(0, d).unwrap();
        assert!(c.load(&key(2)).is_none());
        c.flush();
        assert!(!p.exists());
        assert!(matches!(c.lookup(&key(2)), Lookup::Miss));
    }

    #[test]
    fn disk_cache_evicts_oldest_beyond_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let limit = 2 * (4 + TRAILER as u64);
        let c = Cache::new(0, Some((dir.path().to_path_buf(), limit))).unwrap();
        for n in 1..=3 {
            c.put(key(n), finished(b"abcd"));
            c.flush();
        }
        assert!(matches!(c.lookup(&key(1)), Lookup::Miss), "oldest removed");
        assert!(matches!(c.lookup(&key(3)), Lookup::OnDisk));
        let n = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("out".as_ref()))
            .count();
        assert_eq!(n, 2);
    }

    /// A tier kept in a map, recording what it was asked to store.
    #[derive(Default)]
    struct MapTier {
        held: Mutex<std::collections::HashMap<RenderKey, Vec<u8>>>,
        stored: Mutex<Vec<(u64, Origin)>>,
    }

    impl Tier for Arc<MapTier> {
        fn name(&self) -> &'static str {
            "map"
        }
        fn holds(&self, key: &RenderKey) -> bool {
            lock(&self.held).contains_key(key)
        }
        fn load(&self, key: &RenderKey) -> Option<Vec<u8>> {
            lock(&self.held).get(key).cloned()
        }
        fn store(&self, key: &RenderKey, render: &Arc<Render>, size: u64, origin: Origin) {
            lock(&self.stored).push((size, origin));
            lock(&self.held).insert(key.clone(), render.bytes());
        }
        fn flush(&self) {}
    }

    #[test]
    fn a_tier_is_one_impl_plus_one_registration() {
        let tier = Arc::new(MapTier::default());
        let c = Cache::new(0, None)
            .unwrap()
            .with_tier(Box::new(tier.clone()));
        assert!(matches!(c.lookup(&key(1)), Lookup::Miss));
        c.put(key(1), finished(b"tiered"));
        assert!(
            matches!(c.lookup(&key(1)), Lookup::OnDisk),
            "held behind memory"
        );
        let bytes = c.load(&key(1)).unwrap();
        assert_eq!(bytes, b"tiered");
        // What was loaded from a tier is stored again as such (a shared tier skips it).
        let again = Render::new();
        again.fill(bytes);
        again.finish(Outcome::Done);
        c.put(key(1), again);
        c.put(key(1), finished(b"tiered"));
        assert_eq!(
            *lock(&tier.stored),
            [
                (6, Origin::Rendered),
                (6, Origin::Loaded),
                (6, Origin::Rendered)
            ]
        );
    }
}
