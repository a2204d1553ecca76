//! The disk tier (`--cache-dir`): one file `<hash>.out` per output (bytes plus
//! [trailer](super::trailer)), created 0600 in a 0700 directory, written under a temporary name
//! and renamed when complete, the least recently written removed beyond `--cache-disk`. Writes
//! and removals run on its queue thread; reads in [`Tier::load`] on render threads. Its index
//! of files is its one leaf lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

use super::key::RenderKey;
use super::lock;
use super::queue::Queue;
use super::tier::{Occupancy, Origin, Tier};
use super::trailer::{trailer, unseal, TRAILER};
use crate::render::Render;

/// The disk tier.
pub struct Disk {
    inner: Arc<Inner>,
    queue: Arc<Queue>,
}

/// What the queue's jobs share with the tier.
struct Inner {
    dir: PathBuf,
    files: Mutex<Files>,
    /// Set after the first write failure so we log once.
    failed: AtomicBool,
}

/// Disk cache files (hash -> bytes on disk), least recently written first.
struct Files {
    lru: LruCache<u64, u64>,
    bytes: u64,
    limit: u64,
}

impl Files {
    /// Forgets `hash`; whether it was known.
    fn forget(&mut self, hash: u64) -> bool {
        let n = self.lru.pop(&hash);
        if let Some(n) = n {
            self.bytes -= n;
        }
        n.is_some()
    }
}

impl Disk {
    /// The tier in `dir` (created private if missing), holding up to `limit` bytes: reads
    /// what is there and starts the writer thread.
    pub fn open(dir: PathBuf, limit: u64) -> io::Result<Self> {
        let mut files = Files {
            lru: LruCache::unbounded(),
            bytes: 0,
            limit,
        };
        scan(&dir, &mut files)?;
        Ok(Disk {
            inner: Arc::new(Inner {
                dir,
                files: Mutex::new(files),
                failed: AtomicBool::new(false),
            }),
            queue: Arc::new(Queue::start("cache-writer")?),
        })
    }

    /// The writer thread's queue, which the size log shares.
    pub fn queue(&self) -> Arc<Queue> {
        self.queue.clone()
    }
}

impl Tier for Disk {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn occupancy(&self) -> Option<Occupancy> {
        let files = self.inner.files();
        Some(Occupancy {
            bytes: files.bytes,
            entries: files.lru.len() as u64,
        })
    }

    fn holds(&self, key: &RenderKey) -> bool {
        self.inner.files().lru.contains(&key.hash())
    }

    fn load(&self, key: &RenderKey) -> Option<Vec<u8>> {
        let hash = key.hash();
        if !self.holds(key) {
            return None;
        }
        let path = file_path(&self.inner.dir, hash);
        let mut data = Vec::new();
        File::open(&path).ok()?.read_to_end(&mut data).ok()?;
        let found = unseal(data);
        if found.is_none() {
            tracing::warn!("disk cache file {} is damaged; removed", path.display());
            if self.inner.files().forget(hash) {
                self.queue.push(move || {
                    let _ = fs::remove_file(path);
                });
            }
        }
        found
    }

    fn store(&self, key: &RenderKey, render: &Arc<Render>, size: u64, _: Origin) {
        let hash = key.hash();
        let total = size + TRAILER as u64;
        {
            let files = self.inner.files();
            if files.lru.contains(&hash) || total > files.limit {
                return;
            }
        }
        let (inner, render) = (self.inner.clone(), render.clone());
        if !self
            .queue
            .push_bounded(total, move || inner.write(hash, &render))
        {
            tracing::debug!("disk cache writer behind; not storing {hash:016x}");
        }
    }

    fn flush(&self) {
        self.queue.flush();
    }
}

impl Inner {
    fn files(&self) -> MutexGuard<'_, Files> {
        lock(&self.files)
    }

    /// Writes to a temp name, then renames: a crash never leaves a complete-looking file.
    /// Then records the file and evicts the oldest ones over the limit.
    fn write(&self, hash: u64, render: &Render) {
        let data = render.bytes();
        let path = file_path(&self.dir, hash);
        let tmp = path.with_extension("tmp");
        let result = (|| -> io::Result<()> {
            let mut f = private_file(&tmp, false)?;
            f.write_all(&data)?;
            f.write_all(&trailer(&data))?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "disk cache {}: cannot write: {e}; serving from memory only",
                    self.dir.display()
                );
            }
            return;
        }
        let total = (data.len() + TRAILER) as u64;
        let victims = {
            let mut files = self.files();
            if let Some(old) = files.lru.put(hash, total) {
                files.bytes -= old;
            }
            files.bytes += total;
            let mut victims = Vec::new();
            while files.bytes > files.limit {
                match files.lru.pop_lru() {
                    Some((h, n)) => {
                        files.bytes -= n;
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
}

fn file_path(dir: &Path, hash: u64) -> PathBuf {
    dir.join(format!("{hash:016x}.out"))
}

/// Reads the cache directory at start-up: the files present, oldest first.
fn scan(dir: &Path, into: &mut Files) -> io::Result<()> {
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
        into.lru.put(h, n);
        into.bytes += n;
    }
    Ok(())
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
pub(super) fn private_file(path: &Path, append: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .mode(0o600)
        .open(path)
}
