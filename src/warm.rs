//! `thumbfs warm`: reads every file of some spec directories of a mount, on all cores, so the
//! mount's size index and caches hold them before the first real reader asks.
//!
//! It works through the mount like any reader, so it warms exactly what readers will get.
//! Resuming is free: a file rendered before an interruption is a cache hit the next time.
//! With `--shard I/N`, N hosts sharing a `--cache-url` each read one N-th of the files.

use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one warm pass did.
#[derive(Debug, Default)]
pub struct WarmReport {
    /// Files found under the spec directories.
    pub total: usize,
    /// Files read to the end.
    pub done: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Files that could not be read, by path.
    pub failed: Vec<Failure>,
    /// True when `stop` was set before every file was read.
    pub interrupted: bool,
    /// Wall time of the pass.
    pub elapsed: Duration,
}

/// One of N shards of a warm pass (`--shard I/N`): the files whose path relative to the mount
/// hashes to I modulo N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// I, below `count`.
    pub index: u64,
    /// N, at least 1.
    pub count: u64,
}

/// A `--shard` argument that is not `I/N` with I < N (clap names the argument in front).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not two numbers around a slash.
    #[error("expected I/N (shard I of N, counted from 0), e.g. 0/3")]
    Syntax,
    /// N is 0.
    #[error("N must be at least 1")]
    NoShards,
    /// I is N or more.
    #[error("I must be below N (the shards of {count} are 0 to {last})")]
    OutOfRange {
        /// N.
        count: u64,
        /// N - 1.
        last: u64,
    },
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(arg: &str) -> Result<Shard, ShardError> {
        let (i, n) = arg.split_once('/').ok_or(ShardError::Syntax)?;
        let num = |s: &str| {
            // u64's parser takes a leading '+'; a shard number is digits only.
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ShardError::Syntax);
            }
            s.parse::<u64>().map_err(|_| ShardError::Syntax)
        };
        let (index, count) = (num(i)?, num(n)?);
        if count == 0 {
            return Err(ShardError::NoShards);
        }
        if index >= count {
            return Err(ShardError::OutOfRange {
                count,
                last: count - 1,
            });
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The shard `rel` (a path relative to the mount root) belongs to, out of `count`: xxh3
    /// of its bytes modulo `count`. Fixed across versions and hosts (a unit test pins it), so
    /// every host agrees on which files are whose.
    pub fn of(rel: &Path, count: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(rel.as_os_str().as_bytes()) % count.max(1)
    }

    /// True when `rel` (relative to the mount root) is this shard's.
    pub fn holds(&self, rel: &Path) -> bool {
        Shard::of(rel, self.count) == self.index
    }
}

/// The root of the filesystem holding `path`: its highest ancestor on the same device (a
/// mount point is where `st_dev` changes). `path` is made absolute and free of symlinks first.
pub fn mount_root(path: &Path) -> io::Result<PathBuf> {
    let mut p = fs::canonicalize(path).map_err(|e| annotate(path, e))?;
    let dev = fs::metadata(&p).map_err(|e| annotate(&p, e))?.dev();
    while let Some(parent) = p.parent() {
        if fs::metadata(parent).map_err(|e| annotate(parent, e))?.dev() != dev {
            break;
        }
        p = parent.to_path_buf();
    }
    Ok(p)
}

/// A file that could not be read.
#[derive(Debug)]
pub struct Failure {
    /// The file.
    pub path: PathBuf,
    /// Why (EIO for a broken image).
    pub error: io::Error,
}

/// Every file under `dirs`, depth first, sorted by path so runs visit files in one order;
/// with a `shard`, only that shard's files (hashed by path relative to the mount root, so the
/// same file is the same shard's on every host whatever the mount point is called).
///
/// File types come from the directory listing, so listing never renders anything.
pub fn collect(dirs: &[PathBuf], shard: Option<Shard>) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in dirs {
        if !fs::metadata(d).map_err(|e| annotate(d, e))?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a directory", d.display()),
            ));
        }
        let Some(shard) = shard else {
            walk(d, &mut out)?;
            continue;
        };
        // Only directories are resolved: a stat of a file in a mount may render it.
        let dir = fs::canonicalize(d).map_err(|e| annotate(d, e))?;
        let root = mount_root(&dir)?;
        let mut files = Vec::new();
        walk(&dir, &mut files)?;
        out.extend(
            files
                .into_iter()
                .filter(|f| f.strip_prefix(&root).is_ok_and(|rel| shard.holds(rel))),
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for e in fs::read_dir(dir).map_err(|e| annotate(dir, e))? {
        let e = e.map_err(|e| annotate(dir, e))?;
        let t = e.file_type().map_err(|err| annotate(&e.path(), err))?;
        if t.is_dir() {
            walk(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

fn annotate(p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

/// Reads every file in `files` to the end with `jobs` threads, until done or `stop` is set.
/// `progress(done_or_failed, bytes)` is called after each file.
pub fn warm(
    files: &[PathBuf],
    jobs: usize,
    stop: &AtomicBool,
    progress: &(dyn Fn(usize, u64) + Sync),
) -> WarmReport {
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                let mut buf = vec![0u8; 256 << 10];
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    match read_all(path, &mut buf) {
                        Ok(n) => {
                            bytes.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(error) => {
                            failed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(Failure {
                                    path: path.clone(),
                                    error,
                                })
                        }
                    }
                    let n = finished.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(n, bytes.load(Ordering::Relaxed));
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    failed.sort_by(|a, b| a.path.cmp(&b.path));
    let attempted = finished.into_inner();
    WarmReport {
        total: files.len(),
        done: attempted - failed.len(),
        bytes: bytes.into_inner(),
        interrupted: attempted < files.len(),
        failed,
        elapsed: start.elapsed(),
    }
}

/// Reads `path` to the end, discarding the bytes; the count read.
fn read_all(path: &Path, buf: &mut [u8]) -> io::Result<u64> {
    let mut f = fs::File::open(path)?;
    let mut n = 0u64;
    loop {
        match f.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl WarmReport {
    /// One-paragraph summary for the terminal: counts, rate, and each failure by path.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        let mut s = format!(
            "warmed {} of {} files ({:.1} MB) in {:.1} s, {:.1} files/s; {} failed",
            self.done,
            self.total,
            self.bytes as f64 / 1e6,
            secs,
            (self.done + self.failed.len()) as f64 / secs,
            self.failed.len()
        );
        if self.interrupted {
            s.push_str("\ninterrupted: run the same command again to resume (finished files are cache hits)");
        }
        for f in &self.failed {
            s.push_str(&format!("\nfailed: {}: {}", f.path.display(), f.error));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_sorted_files_and_reads_them_all() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("b/c")).unwrap();
        fs::write(d.path().join("b/c/x"), b"12345").unwrap();
        fs::write(d.path().join("a"), b"1").unwrap();
        let files = collect(&[d.path().to_path_buf()], None).unwrap();
        assert_eq!(files, vec![d.path().join("a"), d.path().join("b/c/x")]);
        let calls = AtomicUsize::new(0);
        let r = warm(&files, 3, &AtomicBool::new(false), &|_, _| {
            calls.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!((r.done, r.bytes, r.failed.len()), (2, 6, 0));
        assert!(!r.interrupted);
        assert_eq!(calls.into_inner(), 2);
    }

    /// The hash that assigns files to shards: changing it would make hosts running different
    /// versions warm overlapping sets and leave files to nobody.
    #[test]
    fn shard_hash_is_pinned() {
        let rel = Path::new("w256/2024/beach/IMG_0001.jpg");
        assert_eq!(
            xxhash_rust::xxh3::xxh3_64(rel.as_os_str().as_bytes()),
            PINNED
        );
        let shards: Vec<u64> = [1, 2, 3, 7].map(|n| Shard::of(rel, n)).into();
        assert_eq!(shards, [0, 0, 1, 0]);
        let s: Shard = "0/7".parse().unwrap();
        assert!(s.holds(rel));
    }
    const PINNED: u64 = 953249170243880650;

    #[test]
    fn shard_arguments_are_checked() {
        assert_eq!("0/1".parse(), Ok(Shard { index: 0, count: 1 }));
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["", "1", "a/2", "1/", "/2", "+1/2", "-1/2", "1/2/3", " 1/2"] {
            assert_eq!(bad.parse::<Shard>(), Err(ShardError::Syntax), "{bad:?}");
        }
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::NoShards));
        let e = "2/2".parse::<Shard>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "I must be below N (the shards of 2 are 0 to 1)"
        );
    }

    #[test]
    fn mount_root_is_where_the_device_changes() {
        let pid = std::process::id();
        assert_eq!(
            mount_root(Path::new(&format!("/proc/{pid}/fd"))).unwrap(),
            Path::new("/proc")
        );
    }

    #[test]
    fn shards_split_a_tree_by_relative_path() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..20 {
            fs::write(d.path().join(format!("f{i}")), b"x").unwrap();
        }
        let dirs = [d.path().to_path_buf()];
        let all = collect(&dirs, None).unwrap();
        let root = mount_root(d.path()).unwrap();
        let mut union = Vec::new();
        for index in 0..3 {
            let part = collect(&dirs, Some(Shard { index, count: 3 })).unwrap();
            for f in &part {
                let rel = fs::canonicalize(f).unwrap();
                assert_eq!(Shard::of(rel.strip_prefix(&root).unwrap(), 3), index);
            }
            union.extend(part.iter().map(|f| fs::canonicalize(f).unwrap()));
        }
        union.sort();
        let all: Vec<_> = all.iter().map(|f| fs::canonicalize(f).unwrap()).collect();
        assert_eq!(union, all, "the shards are disjoint and cover the tree");
    }

    #[test]
    fn stop_leaves_the_rest_and_says_interrupted() {
        let files = vec![PathBuf::from("/nonexistent/a"); 4];
        let r = warm(&files, 2, &AtomicBool::new(true), &|_, _| {});
        assert_eq!(r.done, 0);
        assert!(r.interrupted);
        let missing = warm(&files[..1], 1, &AtomicBool::new(false), &|_, _| {});
        assert_eq!(missing.failed.len(), 1);
        assert!(missing.summary().contains("failed: /nonexistent/a"));
    }
}
