//! `thumbfs warm`: reads every file of some spec directories of a mount, on all cores, so the
//! mount's size index and caches hold them before the first real reader asks.
//!
//! It works through the mount like any reader, so it warms exactly what readers will get.
//! Resuming is free: a file rendered before an interruption is a cache hit the next time.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
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

/// A file that could not be read.
#[derive(Debug)]
pub struct Failure {
    /// The file.
    pub path: PathBuf,
    /// Why (EIO for a broken image).
    pub error: io::Error,
}

/// Every file under `dirs`, depth first, sorted by path so runs visit files in one order.
///
/// File types come from the directory listing, so listing never renders anything.
pub fn collect(dirs: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in dirs {
        if !fs::metadata(d).map_err(|e| annotate(d, e))?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a directory", d.display()),
            ));
        }
        walk(d, &mut out)?;
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
        let files = collect(&[d.path().to_path_buf()]).unwrap();
        assert_eq!(files, vec![d.path().join("a"), d.path().join("b/c/x")]);
        let calls = AtomicUsize::new(0);
        let r = warm(&files, 3, &AtomicBool::new(false), &|_, _| {
            calls.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!((r.done, r.bytes, r.failed.len()), (2, 6, 0));
        assert!(!r.interrupted);
        assert_eq!(calls.into_inner(), 2);
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
