//! Finished outputs behind one small API: an in-memory LRU bounded in bytes, the outputs
//! still held open after eviction, the failure memory, an optional disk cache that survives
//! the mount, and the size index that outlives them all.
//!
//! No method that a FUSE request thread calls does I/O: [`Cache::lookup`], [`Cache::size`],
//! [`Cache::put`] and [`Cache::fail`] only touch in-memory maps under one short lock
//! (`state`, never held across I/O or while taking another lock). Disk reads happen in
//! [`Cache::load`], called by render workers only; disk writes, evictions and the size log go
//! to a writer thread. The optional shared tier (`--cache-url`, [`Remote`]) sits behind the
//! disk: its GETs also happen in [`Cache::load`] and its PUTs on a thread of their own.
//! Lock order (crates/mount/src/README.txt): scheduler in-flight map, then `state`,
//! then a render's own lock.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use lru::LruCache;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

use super::render::{Outcome, Render};
use crate::s3::{Client, S3Error};

pub use thumbfs_core::SourceId;

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
        xxh3_64(self.text().as_bytes())
    }

    /// The same as [`RenderKey::hash`] on 128 bits: names objects in the shared tier, where
    /// many hosts' outputs meet and 64 bits would make a collision plausible.
    pub fn hash128(&self) -> u128 {
        xxh3_128(self.text().as_bytes())
    }

    fn text(&self) -> String {
        let s = &self.source;
        format!(
            "{}|{}|{}|{}|{}|{}.{}",
            s.dev,
            s.ino,
            s.size,
            s.mtime_ns,
            self.spec,
            env!("CARGO_PKG_VERSION"),
            crate::pipeline::OUTPUT_REVISION
        )
    }
}

/// The shared cache tier (`--cache-url s3://BUCKET/PREFIX`): finished outputs as objects
/// `PREFIX<hash128>.out`, each written with one PUT and carrying the same length and checksum
/// trailer as disk cache files, so a damaged or truncated object is detected and replaced.
#[derive(Clone, Debug)]
pub struct Remote {
    client: Client,
    prefix: String,
}

impl Remote {
    /// Outputs under `prefix` (empty, or ending in `/`) of the client's bucket.
    pub fn new(client: Client, prefix: &str) -> Self {
        Remote {
            client,
            prefix: prefix.to_string(),
        }
    }

    /// The object key holding `key`'s output.
    pub fn object(&self, key: &RenderKey) -> String {
        format!("{}{:032x}.out", self.prefix, key.hash128())
    }
}

/// Trailer after the output bytes in a disk cache file: length and checksum.
const TRAILER: usize = 16;
/// Size index lines kept before the log is rewritten.
const SIZE_LOG_LIMIT: usize = 100_000;
/// Failed renders remembered.
const MAX_FAILURES: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");
/// Output bytes queued for the disk writer at most: beyond this a slow disk loses writes
/// (the outputs stay in memory) rather than holding renders alive without bound.
const WRITE_BACKLOG: u64 = 64 << 20;

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

/// Finished outputs in memory and on disk, the size index and the failure memory.
pub struct Cache {
    shared: Arc<Shared>,
    writer: Option<Writer>,
    remote: Option<RemoteTier>,
}

/// The shared tier and the thread that uploads to it.
struct RemoteTier {
    remote: Remote,
    writer: Writer<RemoteOp>,
    /// Output bytes queued for upload.
    backlog: Arc<AtomicU64>,
    /// Reads skip the tier until then, after it failed: a down or hung server costs one
    /// timeout per [`REMOTE_PAUSE`], not one per render.
    paused_until: Mutex<Option<Instant>>,
}

/// How long reads skip the shared tier after a failure other than a missing object.
const REMOTE_PAUSE: Duration = Duration::from_secs(10);

struct Writer<Op = WriteOp> {
    tx: Mutex<Option<Sender<Op>>>,
    /// Told when the writer thread has written its whole queue and ended.
    ended: Mutex<Receiver<()>>,
}

/// How long dropping the cache waits for queued disk writes: a hung cache disk must not
/// keep an unmounted daemon from exiting.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

struct Shared {
    state: Mutex<State>,
    /// The disk cache directory, when there is one.
    dir: Option<PathBuf>,
    /// Output bytes queued for the writer.
    backlog: AtomicU64,
}

struct State {
    mem: LruCache<RenderKey, Arc<Render>>,
    mem_bytes: u64,
    mem_limit: u64,
    /// Outputs dropped from memory, or too large to be kept there at all.
    evictions: u64,
    /// Finished outputs still held by open handles (maybe evicted from memory): reused.
    alive: HashMap<RenderKey, Weak<Render>>,
    /// Renders that failed for a reason in the bytes themselves (by source identity, so a
    /// fixed file is tried again).
    failures: LruCache<RenderKey, Arc<Render>>,
    /// Exact output sizes by key hash.
    sizes: HashMap<u64, u64>,
    /// Outputs [`Cache::load`]ed from a tier since their last [`Cache::put`]: not uploaded
    /// to the shared tier again.
    loaded: HashSet<u64>,
    /// Disk cache files (hash -> bytes on disk), least recently written first.
    files: LruCache<u64, u64>,
    disk_bytes: u64,
    disk_limit: u64,
}

/// Work for the upload thread.
enum RemoteOp {
    /// Object key, the output, bytes counted in the backlog.
    Store(String, Arc<Render>, u64),
    Flush(Sender<()>),
}

enum WriteOp {
    Store(u64, Arc<Render>, u64),
    Size(u64, u64),
    Remove(Vec<u64>),
    Flush(Sender<()>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cache {
    /// A cache of `mem_limit` bytes in memory and, with `disk`, up to `disk_limit` bytes there.
    pub fn new(mem_limit: u64, disk: Option<(PathBuf, u64)>) -> io::Result<Self> {
        let mut state = State {
            mem: LruCache::unbounded(),
            mem_bytes: 0,
            mem_limit,
            evictions: 0,
            alive: HashMap::new(),
            failures: LruCache::new(MAX_FAILURES),
            sizes: HashMap::new(),
            loaded: HashSet::new(),
            files: LruCache::unbounded(),
            disk_bytes: 0,
            disk_limit: 0,
        };
        let Some((dir, limit)) = disk else {
            return Ok(Cache {
                shared: Arc::new(Shared {
                    state: Mutex::new(state),
                    dir: None,
                    backlog: AtomicU64::new(0),
                }),
                writer: None,
                remote: None,
            });
        };
        let log = scan_disk(&dir, &mut state)?;
        state.disk_limit = limit;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            dir: Some(dir.clone()),
            backlog: AtomicU64::new(0),
        });
        let (tx, rx) = channel();
        let (ended_tx, ended) = channel();
        let mut w = DiskWriter {
            shared: shared.clone(),
            dir,
            size_log: log.0,
            size_log_lines: log.1,
            failed: false,
        };
        std::thread::Builder::new()
            .name("cache-writer".into())
            .spawn(move || {
                for op in rx {
                    w.apply(op);
                }
                let _ = ended_tx.send(());
            })?;
        Ok(Cache {
            shared,
            writer: Some(Writer {
                tx: Mutex::new(Some(tx)),
                ended: Mutex::new(ended),
            }),
            remote: None,
        })
    }

    /// Adds the shared tier behind memory and disk: loads try it after the disk, finished
    /// renders are uploaded to it by a thread of their own (a slow server delays nothing
    /// else; at most 64 MiB wait for it, beyond that uploads are skipped).
    pub fn with_remote(mut self, remote: Remote) -> io::Result<Self> {
        let (tx, rx) = channel::<RemoteOp>();
        let (ended_tx, ended) = channel();
        let backlog = Arc::new(AtomicU64::new(0));
        let (r, queued) = (remote.clone(), backlog.clone());
        std::thread::Builder::new()
            .name("cache-upload".into())
            .spawn(move || {
                let mut warned = false;
                for op in rx {
                    match op {
                        RemoteOp::Store(key, render, total) => {
                            let mut data = render.bytes();
                            drop(render);
                            let sum = xxh3_64(&data);
                            data.extend_from_slice(&(data.len() as u64).to_le_bytes());
                            data.extend_from_slice(&sum.to_le_bytes());
                            if let Err(e) = r.client.put(&key, &data) {
                                if !std::mem::replace(&mut warned, true) {
                                    tracing::warn!("shared cache: {e}; outputs stay local");
                                } else {
                                    tracing::debug!("shared cache: {e}");
                                }
                            }
                            queued.fetch_sub(total, Ordering::Relaxed);
                        }
                        RemoteOp::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
                let _ = ended_tx.send(());
            })?;
        self.remote = Some(RemoteTier {
            remote,
            writer: Writer {
                tx: Mutex::new(Some(tx)),
                ended: Mutex::new(ended),
            },
            backlog,
            paused_until: Mutex::new(None),
        });
        Ok(self)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    fn send(&self, op: WriteOp) {
        if let Some(w) = &self.writer {
            if let Some(tx) = lock(&w.tx).as_ref() {
                let _ = tx.send(op);
            }
        }
    }

    /// What is known about `key` without I/O; a memory hit counts as recently used.
    pub fn lookup(&self, key: &RenderKey) -> Lookup {
        let mut st = self.state();
        if let Some(r) = st.mem.get(key) {
            return Lookup::Ready(r.clone());
        }
        if let Some(r) = st.alive.get(key).and_then(Weak::upgrade) {
            if r.outcome() == Some(Outcome::Done) {
                return Lookup::Ready(r);
            }
        }
        if let Some(r) = st.failures.get(key) {
            return Lookup::Failed(r.clone());
        }
        if st.files.contains(&key.hash()) || self.remote.is_some() {
            return Lookup::OnDisk;
        }
        Lookup::Miss
    }

    /// Reads and verifies an output from the disk cache, then the shared tier (blocking I/O:
    /// render workers only). A damaged file is removed and a damaged object ignored (the
    /// render that follows replaces it); both count as a miss, as does an unreachable server.
    pub fn load(&self, key: &RenderKey) -> Option<Vec<u8>> {
        let hash = key.hash();
        let found = self.load_disk(key).or_else(|| self.load_remote(key))?;
        self.state().loaded.insert(hash);
        Some(found)
    }

    fn load_disk(&self, key: &RenderKey) -> Option<Vec<u8>> {
        let dir = self.shared.dir.as_ref()?;
        let hash = key.hash();
        if !self.state().files.contains(&hash) {
            return None;
        }
        let path = file_path(dir, hash);
        let mut data = Vec::new();
        File::open(&path).ok()?.read_to_end(&mut data).ok()?;
        match verify(&data) {
            Some(n) => {
                data.truncate(n);
                Some(data)
            }
            None => {
                tracing::warn!("disk cache file {} is damaged; removed", path.display());
                let forgotten = {
                    let mut st = self.state();
                    st.files.pop(&hash).inspect(|n| st.disk_bytes -= n)
                };
                if forgotten.is_some() {
                    self.send(WriteOp::Remove(vec![hash]));
                }
                None
            }
        }
    }

    fn load_remote(&self, key: &RenderKey) -> Option<Vec<u8>> {
        let tier = self.remote.as_ref()?;
        if lock(&tier.paused_until).is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let r = &tier.remote;
        let object = r.object(key);
        match r.client.get(&object) {
            Ok((_, mut data)) => match verify(&data) {
                Some(n) => {
                    data.truncate(n);
                    Some(data)
                }
                None => {
                    tracing::warn!(
                        "shared cache object {object} is damaged ({} bytes); re-rendering",
                        data.len()
                    );
                    None
                }
            },
            Err(S3Error::NotFound { .. }) => None,
            Err(e) => {
                tracing::warn!(
                    "shared cache: {e}; rendering locally, not reading it for {} s",
                    REMOTE_PAUSE.as_secs()
                );
                *lock(&tier.paused_until) = Some(Instant::now() + REMOTE_PAUSE);
                None
            }
        }
    }

    /// The exact size of an output rendered before, if known.
    pub fn size(&self, key: &RenderKey) -> Option<u64> {
        self.state().sizes.get(&key.hash()).copied()
    }

    /// Remembers a finished output: size index, memory, the open-outputs map, and (through
    /// the writer thread) the disk when configured and not there yet.
    pub fn put(&self, key: RenderKey, render: Arc<Render>) {
        let Some(size) = render.finished_size() else {
            return;
        };
        let hash = key.hash();
        let mut ops = Vec::new();
        let mut upload = None;
        {
            let mut st = self.state();
            // Rendered here (not loaded from a tier): share it.
            if !st.loaded.remove(&hash) {
                if let Some(t) = &self.remote {
                    let total = size + TRAILER as u64;
                    if t.backlog.load(Ordering::Relaxed) + total <= WRITE_BACKLOG {
                        t.backlog.fetch_add(total, Ordering::Relaxed);
                        upload = Some(RemoteOp::Store(
                            t.remote.object(&key),
                            render.clone(),
                            total,
                        ));
                    } else {
                        tracing::debug!("shared cache uploads behind; not storing {hash:016x}");
                    }
                }
            }
            if st.sizes.insert(hash, size) != Some(size) {
                ops.push(WriteOp::Size(hash, size));
            }
            st.alive.retain(|_, w| w.strong_count() > 0);
            st.alive.insert(key.clone(), Arc::downgrade(&render));
            if self.writer.is_some() && !st.files.contains(&hash) {
                let total = size + TRAILER as u64;
                let queued = self.shared.backlog.load(Ordering::Relaxed);
                if total <= st.disk_limit && queued + total <= WRITE_BACKLOG {
                    self.shared.backlog.fetch_add(total, Ordering::Relaxed);
                    ops.push(WriteOp::Store(hash, render.clone(), total));
                } else if total <= st.disk_limit {
                    tracing::debug!("disk cache writer behind; not storing {hash:016x}");
                }
            }
            st.insert_mem(key, render);
        }
        for op in ops {
            self.send(op);
        }
        if let (Some(op), Some(t)) = (upload, &self.remote) {
            if let Some(tx) = lock(&t.writer.tx).as_ref() {
                let _ = tx.send(op);
            }
        }
    }

    /// Remembers a failure that would happen again with the same bytes.
    pub fn fail(&self, key: RenderKey, render: Arc<Render>) {
        self.state().failures.put(key, render);
    }

    /// Bytes held in memory, entries held in memory, and evictions: outputs evicted from
    /// memory or never admitted (larger than the whole budget), each of which allows at most
    /// one more render of its key (how single flight is checked).
    pub fn occupancy(&self) -> (u64, usize, u64) {
        let st = self.state();
        (st.mem_bytes, st.mem.len(), st.evictions)
    }

    /// Waits until every disk write and upload queued so far is done (tests, shutdown).
    pub fn flush(&self) {
        let (tx, rx) = channel();
        self.send(WriteOp::Flush(tx));
        let _ = rx.recv();
        if let Some(t) = &self.remote {
            let (tx, rx) = channel();
            if let Some(s) = lock(&t.writer.tx).as_ref() {
                let _ = s.send(RemoteOp::Flush(tx));
            }
            let _ = rx.recv();
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        if let Some(w) = self.writer.as_mut() {
            // Closing the channel ends the writer once the queue is written.
            lock(&w.tx).take();
            let _ = lock(&w.ended).recv_timeout(DRAIN_WAIT);
        }
        if let Some(t) = self.remote.as_mut() {
            lock(&t.writer.tx).take();
            let _ = lock(&t.writer.ended).recv_timeout(DRAIN_WAIT);
        }
    }
}

impl State {
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
}

fn file_path(dir: &Path, hash: u64) -> PathBuf {
    dir.join(format!("{hash:016x}.out"))
}

/// Reads the disk cache directory at start-up: files present (oldest first) and the size
/// log. Returns the size log opened for appending and its line count.
fn scan_disk(dir: &Path, st: &mut State) -> io::Result<(Option<File>, usize)> {
    use std::os::unix::fs::PermissionsExt;
    make_private_dir(dir)?;
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") {
            // A write interrupted by a crash: never complete, never served.
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
        // Written by an older thumbfs with the umask's mode: made private like new ones.
        if meta.permissions().mode() & 0o077 != 0 {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600));
        }
        files.push((meta.modified().ok(), hash, meta.len()));
    }
    files.sort();
    for (_, h, n) in files {
        st.files.put(h, n);
        st.disk_bytes += n;
    }
    let log_path = dir.join("sizes.log");
    let mut lines = 0;
    if let Ok(text) = fs::read_to_string(&log_path) {
        for line in text.lines() {
            let mut it = line.split_whitespace();
            if let (Some(h), Some(n)) = (it.next(), it.next()) {
                if let (Ok(h), Ok(n)) = (u64::from_str_radix(h, 16), n.parse()) {
                    st.sizes.insert(h, n);
                    lines += 1;
                }
            }
        }
    }
    let log = private_file(&log_path, true).ok();
    Ok((log, lines))
}

/// Creates the cache directory readable by the daemon's user only (outputs of 0600 photos
/// must not become readable by everyone), and warns when an existing one is more open.
fn make_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "cache directory {} has mode {mode:03o}: other users may read cached outputs \
             (chmod 700 it)",
            dir.display()
        );
    }
    Ok(())
}

/// Opens a cache file for writing, mode 0600 when it is created.
fn private_file(path: &Path, append: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .mode(0o600)
        .open(path)
}

/// The writer thread's state: all disk cache writes and removals happen here.
struct DiskWriter {
    shared: Arc<Shared>,
    dir: PathBuf,
    size_log: Option<File>,
    size_log_lines: usize,
    /// Set after the first write failure so we log once.
    failed: bool,
}

impl DiskWriter {
    fn apply(&mut self, op: WriteOp) {
        match op {
            WriteOp::Store(hash, render, total) => {
                self.store(hash, &render);
                drop(render);
                self.shared.backlog.fetch_sub(total, Ordering::Relaxed);
            }
            WriteOp::Size(hash, size) => self.log_size(hash, size),
            WriteOp::Remove(hashes) => {
                for h in hashes {
                    let _ = fs::remove_file(file_path(&self.dir, h));
                }
            }
            WriteOp::Flush(done) => {
                let _ = done.send(());
            }
        }
    }

    fn warn_once(&mut self, what: &str, e: &io::Error) {
        if !std::mem::replace(&mut self.failed, true) {
            tracing::warn!(
                "disk cache {}: {what}: {e}; serving from memory only",
                self.dir.display()
            );
        }
    }

    /// Writes to a temp name, then renames: a crash never leaves a complete-looking file.
    /// Then records the file and evicts the oldest ones over the limit.
    fn store(&mut self, hash: u64, render: &Render) {
        let data = render.bytes();
        let path = file_path(&self.dir, hash);
        let tmp = path.with_extension("tmp");
        let result = (|| -> io::Result<()> {
            let mut f = private_file(&tmp, false)?;
            f.write_all(&data)?;
            f.write_all(&(data.len() as u64).to_le_bytes())?;
            f.write_all(&xxh3_64(&data).to_le_bytes())?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            self.warn_once("cannot write", &e);
            return;
        }
        let total = (data.len() + TRAILER) as u64;
        let victims = {
            let mut st = lock(&self.shared.state);
            if let Some(old) = st.files.put(hash, total) {
                st.disk_bytes -= old;
            }
            st.disk_bytes += total;
            let mut victims = Vec::new();
            while st.disk_bytes > st.disk_limit {
                match st.files.pop_lru() {
                    Some((h, n)) => {
                        st.disk_bytes -= n;
                        victims.push(h);
                    }
                    None => break,
                }
            }
            victims
        };
        for h in victims {
            let _ = fs::remove_file(file_path(&self.dir, h));
        }
    }

    fn log_size(&mut self, hash: u64, size: u64) {
        let log_path = self.dir.join("sizes.log");
        if self.size_log_lines >= SIZE_LOG_LIMIT {
            // Start over rather than grow without bound; sizes are re-learned on demand.
            let _ = fs::remove_file(&log_path);
            self.size_log = private_file(&log_path, true).ok();
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
    use crate::render::Outcome;

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
        let (bytes, _, evictions) = c.occupancy();
        assert!(bytes <= 10);
        assert!(ready(&c, &key(1)).is_none(), "oldest evicted");
        assert_eq!(evictions, 1);
        c.put(key(3), finished(b"far too large to keep"));
        assert_eq!(c.occupancy().2, 2, "never admitted counts too");
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
}
