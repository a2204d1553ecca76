//! Finished outputs: an in-memory LRU bounded in bytes, an optional disk cache that survives
//! the mount, and the size index that outlives both.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lru::LruCache;
use xxhash_rust::xxh3::xxh3_64;

use super::render::Render;

/// Identity of a source file: a change to any field means new content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds.
    pub mtime_ns: i64,
}

impl SourceId {
    /// The identity of a file from its metadata.
    pub fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        SourceId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
        }
    }
}

/// What identifies one output: the source's identity and the canonical spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenderKey {
    /// Source identity.
    pub source: SourceId,
    /// Canonical spelling of the spec (aliases share it).
    pub spec: String,
}

impl RenderKey {
    /// A stable 64-bit hash (file names in the disk cache): also covers our version and
    /// [`OUTPUT_REVISION`](crate::pipeline::OUTPUT_REVISION), so a build that encodes
    /// differently never serves an older build's output.
    pub fn hash(&self) -> u64 {
        let s = &self.source;
        let text = format!(
            "{}|{}|{}|{}|{}|{}.{}",
            s.dev,
            s.ino,
            s.size,
            s.mtime_ns,
            self.spec,
            env!("CARGO_PKG_VERSION"),
            crate::pipeline::OUTPUT_REVISION
        );
        xxh3_64(text.as_bytes())
    }
}

/// Trailer after the output bytes in a disk cache file: length and checksum.
const TRAILER: usize = 16;
/// Size index lines kept before the log is rewritten.
const SIZE_LOG_LIMIT: usize = 100_000;

/// Memory and disk caches plus the size index.
pub struct Cache {
    mem: LruCache<RenderKey, Arc<Render>>,
    mem_bytes: u64,
    mem_limit: u64,
    /// Outputs dropped from memory, or too large to be kept there at all.
    evictions: u64,
    sizes: HashMap<u64, u64>,
    disk: Option<Disk>,
}

struct Disk {
    dir: PathBuf,
    limit: u64,
    /// (hash, bytes) of files present, oldest first.
    files: Vec<(u64, u64)>,
    bytes: u64,
    size_log: Option<File>,
    size_log_lines: usize,
    /// Set after the first write failure so we log once.
    failed: AtomicBool,
}

impl Cache {
    /// A cache of `mem_limit` bytes in memory and, with `disk`, up to `disk_limit` bytes there.
    pub fn new(mem_limit: u64, disk: Option<(PathBuf, u64)>) -> io::Result<Self> {
        let mut cache = Cache {
            mem: LruCache::unbounded(),
            mem_bytes: 0,
            mem_limit,
            evictions: 0,
            sizes: HashMap::new(),
            disk: None,
        };
        if let Some((dir, limit)) = disk {
            cache.disk = Some(cache.open_disk(dir, limit)?);
        }
        Ok(cache)
    }

    fn open_disk(&mut self, dir: PathBuf, limit: u64) -> io::Result<Disk> {
        fs::create_dir_all(&dir)?;
        let mut files = Vec::new();
        let mut bytes = 0;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                // A render interrupted by a crash: never complete, never served.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some(hash) = name
                .strip_suffix(".out")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            else {
                continue;
            };
            let meta = entry.metadata()?;
            let mtime = meta.modified().ok();
            files.push((mtime, hash, meta.len()));
            bytes += meta.len();
        }
        files.sort();
        let files = files.into_iter().map(|(_, h, n)| (h, n)).collect();
        let log_path = dir.join("sizes.log");
        let mut lines = 0;
        if let Ok(text) = fs::read_to_string(&log_path) {
            for line in text.lines() {
                let mut it = line.split_whitespace();
                if let (Some(h), Some(n)) = (it.next(), it.next()) {
                    if let (Ok(h), Ok(n)) = (u64::from_str_radix(h, 16), n.parse()) {
                        self.sizes.insert(h, n);
                        lines += 1;
                    }
                }
            }
        }
        let size_log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .ok();
        Ok(Disk {
            dir,
            limit,
            files,
            bytes,
            size_log,
            size_log_lines: lines,
            failed: AtomicBool::new(false),
        })
    }

    /// A finished output from memory, else from disk (verified), else `None`.
    pub fn get(&mut self, key: &RenderKey) -> Option<Arc<Render>> {
        if let Some(r) = self.mem.get(key) {
            return Some(r.clone());
        }
        let bytes = self.disk.as_mut()?.load(key.hash())?;
        let r = Render::from_bytes(bytes);
        self.insert_mem(key.clone(), r.clone());
        Some(r)
    }

    /// The exact size of an output rendered before, if known.
    pub fn size(&self, key: &RenderKey) -> Option<u64> {
        self.sizes.get(&key.hash()).copied()
    }

    /// Remembers a finished output: size index, memory, and disk when configured.
    pub fn put(&mut self, key: RenderKey, render: Arc<Render>) {
        let Some(size) = render.finished_size() else {
            return;
        };
        let hash = key.hash();
        if self.sizes.insert(hash, size) != Some(size) {
            if let Some(d) = self.disk.as_mut() {
                d.log_size(hash, size);
            }
        }
        if let Some(d) = self.disk.as_mut() {
            d.store(hash, &render.bytes());
        }
        self.insert_mem(key, render);
    }

    fn insert_mem(&mut self, key: RenderKey, render: Arc<Render>) {
        let n = render.len();
        if n > self.mem_limit {
            self.evictions += 1;
            return;
        }
        if let Some(old) = self.mem.put(key, render) {
            self.mem_bytes -= old.len();
        }
        self.mem_bytes += n;
        while self.mem_bytes > self.mem_limit {
            match self.mem.pop_lru() {
                Some((_, r)) => {
                    self.mem_bytes -= r.len();
                    self.evictions += 1;
                }
                None => break,
            }
        }
    }

    /// Bytes held in memory.
    pub fn mem_bytes(&self) -> u64 {
        self.mem_bytes
    }

    /// Entries held in memory.
    pub fn mem_entries(&self) -> usize {
        self.mem.len()
    }

    /// Outputs evicted from memory or never admitted (larger than the whole budget): each
    /// allows at most one more render of its key, which is how single flight is checked.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}

impl Disk {
    fn path(&self, hash: u64) -> PathBuf {
        self.dir.join(format!("{hash:016x}.out"))
    }

    fn warn_once(&self, what: &str, e: &io::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "disk cache {}: {what}: {e}; serving from memory only",
                self.dir.display()
            );
        }
    }

    /// Reads and verifies a cache file; a damaged one is removed and reported as a miss.
    fn load(&mut self, hash: u64) -> Option<Vec<u8>> {
        let path = self.path(hash);
        let mut data = Vec::new();
        File::open(&path).ok()?.read_to_end(&mut data).ok()?;
        match verify(&data) {
            Some(n) => {
                data.truncate(n);
                Some(data)
            }
            None => {
                tracing::warn!("disk cache file {} is damaged; removed", path.display());
                let _ = fs::remove_file(&path);
                self.forget(hash);
                None
            }
        }
    }

    fn forget(&mut self, hash: u64) {
        if let Some(i) = self.files.iter().position(|(h, _)| *h == hash) {
            self.bytes -= self.files[i].1;
            self.files.remove(i);
        }
    }

    /// Writes to a temp name, then renames: a crash never leaves a complete-looking file.
    fn store(&mut self, hash: u64, data: &[u8]) {
        let total = (data.len() + TRAILER) as u64;
        if total > self.limit || self.files.iter().any(|(h, _)| *h == hash) {
            return;
        }
        let path = self.path(hash);
        let tmp = path.with_extension("tmp");
        let result = (|| -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.write_all(&(data.len() as u64).to_le_bytes())?;
            f.write_all(&xxh3_64(data).to_le_bytes())?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            self.warn_once("cannot write", &e);
            return;
        }
        self.files.push((hash, total));
        self.bytes += total;
        while self.bytes > self.limit && !self.files.is_empty() {
            let (h, n) = self.files.remove(0);
            let _ = fs::remove_file(self.path(h));
            self.bytes -= n;
        }
    }

    fn log_size(&mut self, hash: u64, size: u64) {
        if self.size_log_lines >= SIZE_LOG_LIMIT {
            // Start over rather than grow without bound; sizes are re-learned on demand.
            let _ = fs::remove_file(self.dir.join("sizes.log"));
            self.size_log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("sizes.log"))
                .ok();
            self.size_log_lines = 0;
        }
        if let Some(f) = self.size_log.as_mut() {
            if let Err(e) = writeln!(f, "{hash:016x} {size}") {
                self.warn_once("cannot record sizes", &e);
            }
            self.size_log_lines += 1;
        }
    }
}

/// Checks the trailer; returns the payload length when intact.
fn verify(data: &[u8]) -> Option<usize> {
    let n = data.len().checked_sub(TRAILER)?;
    let len = u64::from_le_bytes(data[n..n + 8].try_into().ok()?);
    let sum = u64::from_le_bytes(data[n + 8..].try_into().ok()?);
    (len == n as u64 && xxh3_64(&data[..n]) == sum).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::render::Outcome;

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

    #[test]
    fn memory_is_bounded_in_bytes_and_sizes_outlive_it() {
        let mut c = Cache::new(10, None).unwrap();
        c.put(key(1), finished(b"123456"));
        c.put(key(2), finished(b"abcdef"));
        assert!(c.mem_bytes() <= 10);
        assert!(c.get(&key(1)).is_none(), "oldest evicted");
        assert_eq!(c.evictions(), 1);
        c.put(key(3), finished(b"far too large to keep"));
        assert_eq!(c.evictions(), 2, "never admitted counts too");
        assert_eq!(c.size(&key(1)), Some(6));
        assert!(c.get(&key(2)).is_some());
    }

    #[test]
    fn disk_cache_survives_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let d = Some((dir.path().to_path_buf(), 1 << 20));
        {
            let mut c = Cache::new(0, d.clone()).unwrap();
            c.put(key(1), finished(b"hello"));
            c.put(key(2), finished(b"world"));
        }
        let mut c = Cache::new(0, d.clone()).unwrap();
        assert_eq!(c.size(&key(1)), Some(5));
        assert_eq!(c.get(&key(1)).unwrap().bytes(), b"hello");
        // Truncate the second file: detected, removed, a miss.
        let p = dir.path().join(format!("{:016x}.out", key(2).hash()));
        let len = fs::metadata(&p).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut c = Cache::new(0, d).unwrap();
        assert!(c.get(&key(2)).is_none());
        assert!(!p.exists());
    }
}
