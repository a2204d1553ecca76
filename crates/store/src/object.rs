//! An S3-compatible bucket (under a key prefix) as a [`Store`]: keys are the tree, `/` the
//! separator. Listings are cached for a TTL (least recently used first out, within a byte
//! budget), one fetch per directory however many ask at once; a source is read through [`ObjectConnection`],
//! ranged GETs pinned to the listed ETag, with a read-ahead thread sized for latency.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::mem::size_of;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xxhash_rust::xxh3::xxh3_64;

use super::{copy_error, Kind, Meta, Opened, Store};
use crate::bounded::{ByteLru, ENTRY_OVERHEAD};
use crate::flight::Flights;
use crate::s3::{Client, ObjectMeta, S3Config, S3Error, S3Url};
use crate::SourceId;
use thumbfs_core::io::source::Connection;

/// First read-ahead window: a header and the first rows arrive in one round trip.
const FIRST_WINDOW: u64 = 256 * 1024;
/// Window of the first seek away from where reading was (TIFF tiles): fetch little.
const SEEK_WINDOW: u64 = 64 * 1024;
/// Largest seek window: each seek that misses fetches twice the last one, so a loader that
/// walks a chain of directories spread over the object pays fewer round trips.
const MAX_SEEK_WINDOW: u64 = 1024 * 1024;
/// Largest window: sequential reads double up to this.
const MAX_WINDOW: u64 = 4 * 1024 * 1024;
/// The first seek also fetches, in parallel, this share of the object from its end (at most
/// MAX_WINDOW): writers that put directories after their data (pyramid TIFFs: each level's
/// tiles, then its directory, levels shrinking 4x) leave the later directories and the small
/// levels there, which a loader would otherwise reach one round trip at a time.
const TAIL_SHARE: u64 = 8;
/// Windows fetched ahead of the reader (memory per render: at most this many MAX_WINDOWs).
const AHEAD: usize = 2;
/// Seek windows remembered for loaders that jump back and forth: at most this many...
const RECENT: usize = 16;
/// ...holding at most this many bytes.
const RECENT_BYTES: usize = 4 * 1024 * 1024;

/// Bytes fetched by a format sniff and kept for the render that follows it: one GET brings
/// a header's first directory or segments, and the render starts without a round trip.
const HEAD_LEN: usize = 4096;
/// Sniffed heads kept (memory: at most HEADS x HEAD_LEN).
const HEADS: usize = 1024;

/// Memory for cached listings unless [`ObjectStore::with_list_cache`] says otherwise.
pub const DEFAULT_LIST_CACHE: usize = 64 << 20;

/// One directory level as listed, with its identity (a hash of what it holds).
struct DirListing {
    fetched: Instant,
    entries: Vec<(OsString, Meta, Option<String>)>,
    id: SourceId,
}

impl DirListing {
    /// Bytes held, for the cache's budget.
    fn cost(&self, prefix: &str) -> usize {
        let per = size_of::<(OsString, Meta, Option<String>)>() + 2 * size_of::<usize>();
        ENTRY_OVERHEAD
            + size_of::<Self>()
            + prefix.len()
            + self
                .entries
                .iter()
                .map(|(n, _, e)| per + n.len() + e.as_ref().map_or(0, String::len))
                .sum::<usize>()
    }
}

/// A listing shared by every caller of one fetch (an error is shared as its errno and text).
type Shared = Result<Arc<DirListing>, Arc<io::Error>>;

/// A bucket and prefix seen as a directory tree.
pub struct ObjectStore {
    client: Client,
    url: S3Url,
    ttl: Duration,
    /// Identity of this bucket in [`SourceId::dev`]: the same on every host.
    dev: u64,
    /// Listings by full prefix, least recently used first out beyond the budget.
    listings: Mutex<ByteLru<String, Arc<DirListing>>>,
    /// Fetches of listings in progress, by prefix.
    fetching: Flights<String, Shared>,
    /// The first bytes of object versions, from their format sniffs.
    heads: Mutex<HashMap<SourceId, Arc<[u8]>>>,
    uid: u32,
    gid: u32,
}

/// An S3 error as an `io::Error` whose kind keeps its errno (ENOENT, EACCES, else EIO).
pub fn s3_io(e: S3Error) -> io::Error {
    let kind = match e.errno() {
        libc::ENOENT => io::ErrorKind::NotFound,
        libc::EACCES => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

fn time_ns(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH
    }
}

impl ObjectStore {
    /// A store over `url`, checking that the bucket answers with these credentials.
    pub fn connect(url: S3Url, cfg: &S3Config, ttl: Duration) -> Result<Self, S3Error> {
        let client = Client::new(cfg, &url.bucket)?;
        client.check_bucket()?;
        Ok(Self::with_client(client, url, ttl))
    }

    /// A store over `url` using `client` (no request made).
    pub fn with_client(client: Client, url: S3Url, ttl: Duration) -> Self {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        ObjectStore {
            dev: xxh3_64(format!("s3://{}", url.bucket).as_bytes()),
            client,
            url,
            ttl,
            listings: Mutex::new(ByteLru::new(DEFAULT_LIST_CACHE)),
            fetching: Flights::default(),
            heads: Mutex::default(),
            uid,
            gid,
        }
    }

    /// Keeps at most `bytes` of listings in memory (the least recently used go first).
    pub fn with_list_cache(self, bytes: usize) -> Self {
        ObjectStore {
            listings: Mutex::new(ByteLru::new(bytes)),
            ..self
        }
    }

    /// The client (request and byte counters).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The full key of `rel`, or of directory `rel` with a trailing `/`.
    fn key(&self, rel: &Path, dir: bool) -> String {
        let mut key = self.url.prefix.clone();
        let rel = rel.to_string_lossy();
        key.push_str(&rel);
        if dir && !rel.is_empty() {
            key.push('/');
        }
        key
    }

    /// The metadata of one object version, the same on every host.
    fn object_meta(&self, o: &ObjectMeta) -> Meta {
        let t = time_ns(o.last_modified_ns);
        Meta {
            kind: Kind::File,
            len: o.size,
            id: SourceId {
                dev: self.dev,
                ino: xxh3_64(format!("{}\n{}", o.key, o.etag).as_bytes()),
                size: o.size,
                mtime_ns: o.last_modified_ns,
            },
            mtime: t,
            atime: t,
            ctime: t,
            mode: 0o444,
            uid: self.uid,
            gid: self.gid,
        }
    }

    fn dir_meta(&self, id: SourceId) -> Meta {
        Meta {
            kind: Kind::Dir,
            len: 0,
            id,
            mtime: UNIX_EPOCH,
            atime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            mode: 0o555,
            uid: self.uid,
            gid: self.gid,
        }
    }

    /// The cached listing of `prefix` while younger than the TTL.
    fn fresh(&self, prefix: &str) -> Option<Arc<DirListing>> {
        let mut listings = self.listings.lock().unwrap_or_else(|e| e.into_inner());
        let l = listings.get(&prefix.to_string())?;
        (l.fetched.elapsed() < self.ttl).then(|| l.clone())
    }

    /// Directory `rel`, from the cache while younger than the TTL, else fetched (once
    /// however many callers ask at the same time).
    fn listing(&self, rel: &Path) -> io::Result<Arc<DirListing>> {
        let prefix = self.key(rel, true);
        if let Some(l) = self.fresh(&prefix) {
            return Ok(l);
        }
        let fetch = || match self.fresh(&prefix) {
            // Fetched by a flight that landed while this caller came in.
            Some(l) => Ok(l),
            None => self.fetch_listing(&prefix).map_err(Arc::new),
        };
        self.fetching
            .run(prefix.clone(), fetch)
            .map_err(|e| copy_error(&e))
    }

    /// Lists `prefix` from the server and caches it.
    fn fetch_listing(&self, prefix: &str) -> io::Result<Arc<DirListing>> {
        let prefix = prefix.to_string();
        let listed = self.client.list(&prefix).map_err(s3_io)?;
        let mut summary = String::new();
        let mut entries = Vec::new();
        // A server that answers with keys outside the prefix is ignored, never trusted.
        for p in &listed.prefixes {
            let Some(name) = p.strip_prefix(&prefix) else {
                continue;
            };
            let name = name.trim_end_matches('/');
            summary.push_str(&format!("d {name}\n"));
            let id = SourceId {
                dev: self.dev,
                ino: xxh3_64(p.as_bytes()),
                size: 0,
                mtime_ns: 0,
            };
            entries.push((OsString::from(name), self.dir_meta(id), None));
        }
        for o in &listed.objects {
            let Some(name) = o.key.strip_prefix(&prefix) else {
                continue;
            };
            summary.push_str(&format!("f {name} {} {}\n", o.etag, o.size));
            entries.push((
                OsString::from(name),
                self.object_meta(o),
                Some(o.etag.clone()),
            ));
        }
        let l = Arc::new(DirListing {
            fetched: Instant::now(),
            entries,
            id: SourceId {
                dev: self.dev,
                ino: xxh3_64(prefix.as_bytes()),
                size: summary.len() as u64,
                mtime_ns: xxh3_64(summary.as_bytes()) as i64,
            },
        });
        let cost = l.cost(&prefix);
        self.listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(prefix, l.clone(), cost);
        Ok(l)
    }

    /// The listed entry `rel` (not the root).
    fn entry(&self, rel: &Path) -> io::Result<(Meta, Option<String>)> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        let name = rel.file_name().ok_or_else(not_found)?;
        let l = self.listing(parent)?;
        l.entries
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, m, e)| (m.clone(), e.clone()))
            .ok_or_else(not_found)
    }
}

fn not_found() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

impl Store for ObjectStore {
    fn stat(&self, rel: &Path) -> io::Result<Meta> {
        if rel.as_os_str().is_empty() {
            return Ok(self.dir_meta(self.listing(rel)?.id));
        }
        let (meta, _) = self.entry(rel)?;
        if meta.is_dir() {
            // A directory's identity is what it holds, so a cached view of it ends when
            // its listing changes.
            return Ok(self.dir_meta(self.listing(rel)?.id));
        }
        Ok(meta)
    }

    fn stat_cached(&self, rel: &Path) -> Option<io::Result<Meta>> {
        let dir = |rel: &Path| Some(Ok(self.dir_meta(self.fresh(&self.key(rel, true))?.id)));
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return dir(rel);
        };
        let l = self.fresh(&self.key(parent, true))?;
        match l.entries.iter().find(|(n, _, _)| n == name) {
            None => Some(Err(not_found())),
            Some((_, meta, _)) if meta.is_dir() => dir(rel),
            Some((_, meta, _)) => Some(Ok(meta.clone())),
        }
    }

    fn check_readable_cached(&self, _rel: &Path) -> Option<io::Result<()>> {
        // Objects are readable by the mount's credentials or fail when read.
        Some(Ok(()))
    }

    fn list(&self, rel: &Path) -> io::Result<Vec<(OsString, Meta)>> {
        Ok(self
            .listing(rel)?
            .entries
            .iter()
            .map(|(n, m, _)| (n.clone(), m.clone()))
            .collect())
    }

    fn open(&self, rel: &Path, id: &SourceId) -> io::Result<Opened> {
        let (meta, etag) = self.entry(rel)?;
        let etag = etag.ok_or_else(|| io::Error::from_raw_os_error(libc::EISDIR))?;
        if meta.id != *id {
            return Err(io::Error::other("source changed before rendering"));
        }
        let mut conn =
            ObjectConnection::new(self.client.clone(), self.key(rel, false), etag, meta.len);
        if let Some(head) = self.heads.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            conn.head = head.to_vec();
        }
        // Every GET is pinned to the ETag: a replaced object fails the read, never mixes.
        Ok(Opened {
            conn: Box::new(conn),
            unchanged: Box::new(|| true),
        })
    }

    fn head(&self, rel: &Path, id: &SourceId, n: usize) -> io::Result<Vec<u8>> {
        let (meta, etag) = self.entry(rel)?;
        if meta.id != *id {
            return Err(io::Error::other("source changed"));
        }
        // A little more than asked, in the same round trip, for the render that follows.
        let mut head = self
            .client
            .get_range(
                &self.key(rel, false),
                0,
                n.max(HEAD_LEN) as u64,
                etag.as_deref(),
            )
            .map_err(s3_io)?;
        if !head.is_empty() {
            let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
            if heads.len() >= HEADS {
                // Any one: a head is only a round trip saved.
                let old = *heads.keys().next().expect("not empty");
                heads.remove(&old);
            }
            heads.insert(*id, head.as_slice().into());
        }
        head.truncate(n);
        Ok(head)
    }

    fn forget(&self, rel: &Path) {
        let prefix = &self.url.prefix;
        self.listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key| {
                let dir = key.strip_prefix(prefix.as_str()).unwrap_or(key);
                !crate::affected_by(Path::new(dir.trim_end_matches('/')), rel)
            });
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.url.to_string()
    }
}

/// Bytes [from, to) of `key` as of `etag`; none at all means the object is shorter than listed.
fn fetch(client: &Client, key: &str, etag: &str, from: u64, to: u64) -> io::Result<Vec<u8>> {
    let bytes = client.get_range(key, from, to, Some(etag)).map_err(s3_io)?;
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("s3 key {key:?}: object shorter than listed"),
        ));
    }
    Ok(bytes)
}

/// Windows fetched by a background thread, in order, from `next`.
struct ReadAhead {
    /// Offset of the next window the thread delivers.
    next: u64,
    rx: Receiver<io::Result<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A seekable [`Connection`] over ranged GETs of one object version.
///
/// Memory: the head (FIRST_WINDOW), the tail (at most MAX_WINDOW plus two seek windows), the
/// current window, RECENT_BYTES of seek windows and the read-ahead's windows (AHEAD queued,
/// two being fetched).
pub struct ObjectConnection {
    client: Client,
    key: Arc<str>,
    etag: Arc<str>,
    len: u64,
    pos: u64,
    /// The window last fetched and where it starts.
    window: Vec<u8>,
    window_at: u64,
    /// Whether `window` came from the read-ahead: read once, so not remembered.
    streamed: bool,
    /// The first window (or the sniffed head), kept: loaders read the header, then seek
    /// back to decode.
    head: Vec<u8>,
    /// The end of the object from `tail_at`, fetched with the first seek (`tail_at` is the
    /// object's length before, or if that fetch failed).
    tail: Vec<u8>,
    tail_at: u64,
    /// The tail while a thread fetches it: the seek that asked for it goes on meanwhile.
    tail_rx: Option<Receiver<io::Result<Vec<u8>>>>,
    /// Seeks that missed so far: the next seek window is SEEK_WINDOW doubled this often.
    seeks: u32,
    /// Seek windows, oldest first.
    recent: Vec<(u64, Vec<u8>)>,
    ahead: Option<ReadAhead>,
}

impl ObjectConnection {
    /// Reads `key` as of `etag` (`len` bytes long).
    pub fn new(client: Client, key: String, etag: String, len: u64) -> Self {
        ObjectConnection {
            client,
            key: key.into(),
            etag: etag.into(),
            len,
            pos: 0,
            window: Vec::new(),
            window_at: 0,
            streamed: false,
            head: Vec::new(),
            tail: Vec::new(),
            tail_at: len,
            tail_rx: None,
            seeks: 0,
            recent: Vec::new(),
            ahead: None,
        }
    }

    fn get(&self, from: u64, to: u64) -> io::Result<Vec<u8>> {
        fetch(&self.client, &self.key, &self.etag, from, to)
    }

    /// Where the bytes from `pos` that we do not hold (or fetch already) end: the tail, or
    /// the object's end.
    fn gap_end(&self, pos: u64) -> u64 {
        if pos < self.tail_at {
            self.tail_at
        } else {
            self.len
        }
    }

    /// Starts fetching the object from `at` to its end as the tail.
    fn fetch_tail(&mut self, at: u64) {
        let (tx, rx) = sync_channel(1);
        let (client, key, etag, len) = (
            self.client.clone(),
            self.key.clone(),
            self.etag.clone(),
            self.len,
        );
        let spawned = std::thread::Builder::new()
            .name("s3-tail".into())
            .spawn(move || {
                let _ = tx.send(fetch(&client, &key, &etag, at, len));
            });
        if spawned.is_ok() {
            self.tail_at = at;
            self.tail_rx = Some(rx);
        }
    }

    /// Waits for the tail being fetched. It is a guess: if it failed, reads fetch those bytes
    /// as they go (and meet the error again if it was not the guess's own).
    fn land_tail(&mut self) {
        if let Some(rx) = self.tail_rx.take() {
            match rx.recv() {
                Ok(Ok(bytes)) => self.tail = bytes,
                _ => self.tail_at = self.len,
            }
        }
    }

    /// Starts fetching windows from `from` on, growing from `first`, up to the tail.
    fn read_ahead(&mut self, from: u64, first: u64) {
        let (tx, rx) = sync_channel(AHEAD);
        let stop = Arc::new(AtomicBool::new(false));
        let (client, key, etag, end) = (
            self.client.clone(),
            self.key.clone(),
            self.etag.clone(),
            self.gap_end(from),
        );
        let halt = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("s3-read-ahead".into())
            .spawn(move || {
                let (mut at, mut size) = (from, first);
                while at < end && !halt.load(Ordering::Relaxed) {
                    // Two windows per round trip: the next one is asked for beside this one,
                    // so a 1-2 MB photo arrives one round trip after its head, not two.
                    let mid = (at + size).min(end);
                    let next = (size * 2).min(MAX_WINDOW);
                    let to = (mid + next).min(end);
                    let (got, more) = std::thread::scope(|s| {
                        let second =
                            (mid < to).then(|| s.spawn(|| fetch(&client, &key, &etag, mid, to)));
                        let got = fetch(&client, &key, &etag, at, mid);
                        let more = second.map(|h| {
                            h.join()
                                .unwrap_or_else(|_| Err(io::Error::other("read-ahead panicked")))
                        });
                        (got, more)
                    });
                    let whole = got.as_ref().is_ok_and(|b| b.len() as u64 == mid - at);
                    for got in std::iter::once(got).chain(more.filter(|_| whole)) {
                        let failed = got.is_err();
                        at += got.as_ref().map_or(0, |b| b.len() as u64);
                        if tx.send(got).is_err() || failed {
                            return;
                        }
                    }
                    size = (next * 2).min(MAX_WINDOW);
                }
            });
        if spawned.is_ok() {
            self.ahead = Some(ReadAhead {
                next: from,
                rx,
                stop,
            });
        }
    }

    /// Makes the window hold `self.pos`.
    fn fill(&mut self) -> io::Result<()> {
        let sequential = self.pos == self.window_at + self.window.len() as u64
            || self.pos == self.head.len() as u64;
        if let Some(a) = &mut self.ahead {
            if a.next == self.pos {
                // A closed channel: the thread stopped where the tail began and the tail
                // failed; a new read-ahead goes on from here.
                if let Ok(got) = a.rx.recv() {
                    let bytes = got?;
                    let at = a.next;
                    a.next += bytes.len() as u64;
                    self.set_window(at, bytes, true);
                    return Ok(());
                }
            }
        }
        self.ahead = None;
        if let Some(i) = self
            .recent
            .iter()
            .position(|(at, b)| self.pos >= *at && self.pos < at + b.len() as u64)
        {
            // Seeking back into a window fetched before (TIFF directories, then tiles).
            let (at, bytes) = self.recent.remove(i);
            self.set_window(at, bytes, false);
            return Ok(());
        }
        if sequential && self.pos != 0 {
            // Reading front to back: a thread streams growing windows ahead of the decoder.
            let last = if self.pos == self.head.len() as u64 {
                // After the head (a short one from the sniff too): as after a first window.
                (self.head.len() as u64).max(FIRST_WINDOW)
            } else {
                self.window.len() as u64
            };
            let first = (last * 2).clamp(SEEK_WINDOW * 2, MAX_WINDOW);
            self.read_ahead(self.pos, first);
            if self.ahead.is_some() {
                return self.fill();
            }
        }
        if self.pos == 0 {
            self.head = self.get(0, FIRST_WINDOW.min(self.len))?;
            return Ok(());
        }
        self.seek()
    }

    /// Fetches a window at `self.pos`, a seek away from what was read; the first seek also
    /// fetches the object's tail.
    fn seek(&mut self) -> io::Result<()> {
        let pos = self.pos;
        let size = (SEEK_WINDOW << self.seeks.min(16)).min(MAX_SEEK_WINDOW);
        let first = self.seeks == 0;
        self.seeks += 1;
        let gap_end = self.gap_end(pos);
        let mut end = (pos + size).min(gap_end);
        if gap_end - end < size {
            // Less than a window would be left before bytes we hold: take it in this round
            // trip rather than in another.
            end = gap_end;
        }
        if !first {
            let bytes = self.get(pos, end)?;
            self.set_window(pos, bytes, false);
            return Ok(());
        }
        let share = (self.len / TAIL_SHARE).clamp(SEEK_WINDOW, MAX_WINDOW);
        let tail_at = self.len.saturating_sub(share);
        if end >= tail_at {
            // The window reaches the tail: one GET to the end, kept as the tail.
            let from = pos.min(tail_at);
            self.tail = self.get(from, self.len)?;
            self.tail_at = from;
            return Ok(());
        }
        self.fetch_tail(tail_at);
        let bytes = self.get(pos, end)?;
        self.set_window(pos, bytes, false);
        Ok(())
    }

    /// Makes `bytes` (from `at`) the window, remembering the one it replaces unless that was
    /// streamed.
    fn set_window(&mut self, at: u64, bytes: Vec<u8>, streamed: bool) {
        let old = std::mem::replace(&mut self.window, bytes);
        if !self.streamed {
            self.keep(old, self.window_at);
        }
        self.window_at = at;
        self.streamed = streamed;
    }

    /// Remembers a seek window a loader may come back to, dropping the oldest beyond the
    /// bounds.
    fn keep(&mut self, bytes: Vec<u8>, at: u64) {
        if bytes.is_empty() || bytes.len() > RECENT_BYTES {
            return;
        }
        let mut held: usize = self.recent.iter().map(|(_, b)| b.len()).sum();
        while self.recent.len() >= RECENT || held + bytes.len() > RECENT_BYTES {
            held -= self.recent.remove(0).1.len();
        }
        self.recent.push((at, bytes));
    }
}

impl Connection for ObjectConnection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos >= self.tail_at && self.pos >= self.head.len() as u64 {
                self.land_tail();
            }
            let (bytes, at) = if self.pos < self.head.len() as u64 {
                (&self.head, 0)
            } else if self.pos >= self.tail_at && self.pos < self.tail_at + self.tail.len() as u64 {
                (&self.tail, self.tail_at)
            } else {
                (&self.window, self.window_at)
            };
            if self.pos >= at && self.pos < at + bytes.len() as u64 {
                let off = (self.pos - at) as usize;
                let n = buf.len().min(bytes.len() - off);
                buf[..n].copy_from_slice(&bytes[off..off + n]);
                self.pos += n as u64;
                return Ok(n);
            }
            self.fill()?;
        }
    }
    fn can_seek(&self) -> bool {
        true
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.pos = pos;
        Ok(())
    }
    fn len(&self) -> Option<u64> {
        Some(self.len)
    }
}
