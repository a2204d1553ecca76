//! A mount's start and end: startup errors, unmount with reads in flight, SIGTERM and daemon
//! mode.

use crate::common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::mount::{is_mounted, small_tree, Mount};
use common::*;

/// SIGTERM while a slow render is being read: the mount point is freed at once (lazy
/// unmount when busy), the reader finishes, the daemon exits 0.
#[test]
fn unmount_with_reads_in_flight_exits_cleanly() {
    let mut m = Mount::new(&corpus("photos"), &[]);
    let p = m.path("png/sunset_by_Aitzol_Berasategi.png");
    let reader = std::thread::spawn(move || fs::read(p).map(|b| b.len()));
    std::thread::sleep(Duration::from_millis(100));
    let mnt = m.dir.path().to_path_buf();
    let mut child = m.child.take().unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "daemon did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join().unwrap();
    assert!(status.success(), "daemon exit: {status:?}");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(mnt.to_str().unwrap()), "still mounted");
    // An idle mount: fusermount3 -u ends the daemon with status 0.
    let mut idle = Mount::new(&corpus("photos"), &[]);
    assert!(idle.stop(None).success());
    drop(m);
}

#[test]
fn startup_errors_are_clear() {
    let out = Command::new(thumbfs_bin())
        .args(["mount", "/nonexistent/dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir"));
    let mnt = tempfile::tempdir().unwrap();
    fs::write(mnt.path().join("x"), "").unwrap();
    let out = Command::new(thumbfs_bin())
        .arg("mount")
        .arg(corpus("photos"))
        .arg(mnt.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}

fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM and SIGINT unmount and exit 0; without `-f` the command returns once mounted and
/// the daemon exits on `fusermount3 -u`.
#[test]
fn signals_and_daemon_mode_unmount_cleanly() {
    let src = small_tree();
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut m = Mount::new(src.path(), &[]);
        assert!(fs::read(m.path("w32/a.jpg")).is_ok());
        let mnt = m.dir.path().to_path_buf();
        let st = m.stop(Some(sig));
        assert!(st.success(), "signal {sig}: {st:?}");
        assert!(!is_mounted(&mnt), "signal {sig}: still mounted");
    }
    // Daemon mode.
    let mnt = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let st = Command::new(thumbfs_bin())
        .arg("mount")
        .arg(src.path())
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(is_mounted(mnt.path()), "mounted when the command returns");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(fs::read(mnt.path().join("w32/b.png")).is_ok());
    let daemon = daemon_pid(mnt.path()).expect("daemon process");
    let st = Command::new("fusermount3")
        .arg("-u")
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success());
    wait_for(
        || !Path::new(&format!("/proc/{daemon}")).exists() || is_zombie(daemon),
        "daemon did not exit after fusermount3 -u",
    );
    assert!(!is_mounted(mnt.path()));
}

/// The pid of the `thumbfs mount` daemon serving `mnt` (found by its command line).
fn daemon_pid(mnt: &Path) -> Option<u32> {
    let want = mnt.to_str()?;
    fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        (args.first()?.ends_with(b"thumbfs") && args.contains(&want.as_bytes())).then_some(pid)
    })
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// SIGTERM while a reader holds a file open mid-read: the mountpoint is freed at once, the
/// daemon exits 0 shortly after, and a second mount on the same directory works.
#[test]
fn sigterm_with_a_file_open_frees_the_mountpoint_and_exits() {
    let src = small_tree();
    // Open files get render-timeout + 1 s of grace after the mount is detached.
    let mut m = Mount::new(src.path(), &["--render-timeout", "2"]);
    let p = m.path("png/a.png");
    let f = fs::File::open(&p).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), 16);
    let mnt = m.dir.path().to_path_buf();
    let t = Instant::now();
    let st = m.stop(Some(libc::SIGTERM));
    assert!(st.success(), "{st:?}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    assert!(!is_mounted(&mnt), "still mounted");
    // The open file answers (from the page cache or with an error) instead of hanging.
    let _ = f.read_at(&mut buf, 1 << 20);
    drop(f);
    assert!(!is_mounted(&mnt));
    let again = Mount::new(src.path(), &[]);
    assert!(fs::read(again.path("w32/a.jpg")).is_ok());
}
