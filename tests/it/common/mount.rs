//! A real `thumbfs mount` for the fault, hostile-input and load tests: a foreground daemon with
//! its log in a file, its pid (for signals and /proc), and an unmount that always happens.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use thumbfs::io::target::MemoryTarget;
use thumbfs::{RenderOptions, Source, Spec};

use super::thumbfs_bin;

/// A foreground `thumbfs mount`; on drop it is unmounted (lazily if busy) and reaped.
pub struct Mount {
    /// The mount point.
    pub dir: tempfile::TempDir,
    /// The daemon's stderr (RUST_LOG=thumbfs=info).
    pub log: PathBuf,
    /// The daemon, until stopped.
    pub child: Option<Child>,
}

impl Mount {
    /// Mounts `src` with extra `opts` and waits until `.thumbfs/stats` answers.
    pub fn new(src: &Path, opts: &[&str]) -> Mount {
        Mount::with_env(src, opts, &[])
    }

    /// [`Mount::new`] with extra environment variables for the daemon.
    pub fn with_env(src: &Path, opts: &[&str], env: &[(&str, &str)]) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().with_extension("log");
        let child = Command::new(thumbfs_bin())
            .args(["mount", "-f"])
            .args(opts)
            .arg(src)
            .arg(dir.path())
            .env("RUST_LOG", "thumbfs=info")
            .envs(env.iter().copied())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut m = Mount {
            dir,
            log,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !m.path(".thumbfs/stats").exists() {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("mount exited with {st}: {}", m.log_text());
            }
            assert!(Instant::now() < deadline, "mount did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    /// A path under the mount point.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// True while the daemon has not exited.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// `.thumbfs/stats` as numbers by name (a flat JSON object of integers).
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let text = fs::read_to_string(self.path(".thumbfs/stats")).unwrap();
        text.trim()
            .trim_matches(|c| c == '{' || c == '}')
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once(':').unwrap();
                let k = k.trim().trim_matches('"').to_string();
                let v = v.trim().parse().unwrap_or_else(|e| panic!("{k}: {e}"));
                (k, v)
            })
            .collect()
    }

    /// Asserts that `.thumbfs/stats` is valid JSON for Python's parser (`stats()` reads it
    /// leniently).
    pub fn assert_stats_json(&self) {
        let out = Command::new("python3")
            .args(["-c", "import json,sys; json.load(open(sys.argv[1]))"])
            .arg(self.path(".thumbfs/stats"))
            .output()
            .unwrap();
        assert!(out.status.success(), "stats is not JSON");
    }

    /// `.thumbfs/errors`, one failure per line, newest first.
    pub fn errors(&self) -> Vec<String> {
        fs::read_to_string(self.path(".thumbfs/errors"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// What the daemon logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> u64 {
        proc_status_kib(self.pid(), field)
    }

    /// Waits until the stats say no render is running or queued.
    pub fn wait_idle(&self, limit: Duration) -> Duration {
        let t = Instant::now();
        while self.stats()["in_flight"] != 0 {
            assert!(
                t.elapsed() < limit,
                "renders still in flight after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed()
    }

    /// Sends `sig` (or runs `fusermount3 -u` when `None`) and waits for the daemon to exit.
    pub fn stop(&mut self, sig: Option<i32>) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        match sig {
            // SAFETY: signalling our own child by its pid.
            Some(s) => assert_eq!(unsafe { libc::kill(child.id() as i32, s) }, 0),
            None => {
                let st = Command::new("fusermount3")
                    .arg("-u")
                    .arg(self.dir.path())
                    .status()
                    .unwrap();
                assert!(st.success(), "fusermount3 -u failed");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                lazy_unmount(self.dir.path());
                panic!("daemon did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(self.dir.path())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if is_mounted(self.dir.path()) {
            lazy_unmount(self.dir.path());
        }
        let _ = fs::remove_file(&self.log);
    }
}

/// `umount -l`: detaches a busy or dead mount.
pub fn lazy_unmount(p: &Path) {
    let _ = Command::new("umount")
        .arg("-l")
        .arg(p)
        .stderr(Stdio::null())
        .status();
}

/// Unmounts lazily on drop, so a failed assertion leaves no mount behind.
pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            lazy_unmount(&self.0);
        }
    }
}

/// True when `p` is a mount point of this mount namespace.
pub fn is_mounted(p: &Path) -> bool {
    let want = p.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want))
}

/// A field of /proc/PID/status in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    proc_status_number(pid, field)
}

/// A numeric field of /proc/PID/status, without its unit (`Threads`, or a size in kB).
pub fn proc_status_number(pid: u32, field: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/{pid}/status"))
}

/// What `thumbfs convert` writes for a file and spec (the same engine, in process).
pub fn engine(path: &Path, spec: &str) -> Result<Vec<u8>, String> {
    let spec: Spec = spec.parse().unwrap();
    let src = Source::file(path).map_err(|e| e.to_string())?;
    let mut t = MemoryTarget::new();
    thumbfs::render(src, &spec, &mut t, &RenderOptions::default()).map_err(|e| e.to_string())?;
    Ok(t.take())
}

/// Runs the `thumbfs` binary: (exit code, stdout, stderr).
pub fn cli(args: &[&std::ffi::OsStr]) -> (Option<i32>, Vec<u8>, String) {
    let out = Command::new(thumbfs_bin()).args(args).output().unwrap();
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `sh -c script`.
pub fn sh(script: &str) -> std::process::Output {
    Command::new("sh").args(["-c", script]).output().unwrap()
}

/// (size, mtime in ns, content hash) of every file under `dir`, by path; directories too
/// (with their mtimes), so an added or removed entry shows.
pub fn tree_manifest(dir: &Path) -> BTreeMap<PathBuf, (u64, i64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = fs::symlink_metadata(&d).unwrap();
        out.insert(
            d.clone(),
            (0, m.mtime() * 1_000_000_000 + m.mtime_nsec(), 0),
        );
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                let h = xxhash_rust::xxh3::xxh3_64(&fs::read(&p).unwrap_or_default());
                out.insert(p, (m.size(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), h));
            }
        }
    }
    out
}

/// A source tree of three small images in three formats (`a.jpg`, `b.png`, `c.ppm`).
pub fn small_tree() -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("jpeg/video-001.jpeg", "a.jpg"),
        ("pngsuite/primary/basn2c08.png", "b.png"),
        ("pnm/flower_small.rgb.depth8.ppm", "c.ppm"),
    ] {
        fs::copy(super::corpus(from), src.path().join(to))
            .unwrap_or_else(|e| panic!("{from}: {e}"));
    }
    src
}

/// Path relative to the corpus → shown name under a spec directory, from a listing.
pub fn shown_names(m: &Mount, spec: &str, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(m.dir.path().join(spec).join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// Drops the kernel's clean page cache (1) or dentries and inodes (2), which sends FORGETs.
pub fn drop_caches(what: u8) {
    fs::write("/proc/sys/vm/drop_caches", format!("{what}\n")).unwrap();
}
