//! A newcomer's set-up, for real: `thumbfs warm` on a mount, the mount helper forms that
//! `mount -t fuse.thumbfs` and `/etc/fstab` use, the systemd readiness protocol, completions
//! and the man page.

use crate::common;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mount::{engine, is_mounted, Mount, Unmount};
use common::*;

/// A tree of `n` copies of small corpus images in two folders, plus `broken.jpg` (a JPEG cut
/// in half) when asked.
fn tree(n: usize, broken: bool) -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("sub")).unwrap();
    let inputs = ["jpeg/video-001.jpeg", "exif-orientation/Portrait_6.jpg"];
    for i in 0..n {
        let to = if i % 2 == 0 {
            src.path().join(format!("p{i:03}.jpg"))
        } else {
            src.path().join(format!("sub/p{i:03}.jpg"))
        };
        fs::copy(corpus(inputs[i % 2]), to).unwrap();
    }
    if broken {
        let b = fs::read(corpus("jpeg/video-001.jpeg")).unwrap();
        fs::write(src.path().join("broken.jpg"), &b[..b.len() / 2]).unwrap();
    }
    src
}

fn warm(dirs: &[PathBuf]) -> std::process::Child {
    Command::new(thumbfs_bin())
        .arg("warm")
        .args(["--jobs", "2"])
        .args(dirs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Warm renders each file once, lists the broken one and exits 1; interrupted and run again it
/// resumes: over both runs no file is rendered twice, and every output is the CLI's.
#[test]
fn warm_renders_everything_once_lists_failures_and_resumes() {
    let src = tree(24, true);
    let m = Mount::new(src.path(), &["--cache-mem", "256M"]);
    let dirs = [m.path("w320_png"), m.path("q80")];
    let files = 2 * 25;

    // First run, stopped with SIGINT once some renders have started.
    let child = warm(&dirs);
    let t = Instant::now();
    while m.stats()["renders"] < 3 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let first = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{text}");
    let interrupted = text.contains("interrupted");
    let after_first = m.stats()["renders"];

    // Second run to the end.
    let second = warm(&dirs).wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&second.stderr);
    assert_eq!(
        second.status.code(),
        Some(1),
        "the broken file fails: {text}"
    );
    assert!(
        text.contains(&format!("warmed {} of {files} files", files - 2)),
        "{text}"
    );
    assert!(text.contains("2 failed"), "{text}");
    assert!(text.contains("w320_png/broken.png") && text.contains("q80/broken.jpg"));
    assert!(!text.contains("interrupted"), "{text}");
    let st = m.stats();
    assert_eq!(
        st["renders"], files as u64,
        "each file rendered exactly once over both runs ({after_first} in the first, \
         interrupted: {interrupted})"
    );
    // What warm left in the cache is what a reader gets.
    for (spec, name) in [("w320_png", "sub/p001.png"), ("q80", "p010.jpg")] {
        let src_name = Path::new(name).with_extension("jpg");
        assert!(
            fs::read(m.path(&format!("{spec}/{name}"))).unwrap()
                == engine(&src.path().join(src_name), spec).unwrap()
        );
    }
    assert_eq!(
        m.stats()["renders"],
        files as u64,
        "reads after warm are cache hits"
    );
    eprintln!("first run: {after_first} renders before SIGINT (interrupted: {interrupted})");
}

#[test]
fn warm_refuses_a_missing_directory() {
    let out = Command::new(thumbfs_bin())
        .args(["warm", "/nonexistent/thumbfs/w64"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/thumbfs/w64"));
}

/// A directory holding a `mount.fuse.thumbfs` link to this build (the name mount(8) looks
/// for in /sbin).
fn helper_bin() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(thumbfs_bin(), d.path().join("mount.fuse.thumbfs")).unwrap();
    d
}

/// `/usr/local/bin/thumbfs` pointing at this build while the test runs. mount(8) runs
/// helpers with a fixed PATH (`/usr/local/sbin:/usr/local/bin:/usr/sbin:...`), and fuse3's
/// mount.fuse3 runs the subtype (`thumbfs`) from it: an installed binary is the only way.
/// Whatever was there before is put back on drop.
struct Installed {
    path: PathBuf,
    saved: Option<PathBuf>,
}

impl Installed {
    fn new() -> Installed {
        let path = PathBuf::from("/usr/local/bin/thumbfs");
        let saved = fs::symlink_metadata(&path).ok().map(|_| {
            let aside = path.with_extension(format!("test-aside-{}", std::process::id()));
            fs::rename(&path, &aside).unwrap();
            aside
        });
        fs::create_dir_all("/usr/local/bin").unwrap();
        std::os::unix::fs::symlink(thumbfs_bin(), &path).unwrap();
        Installed { path, saved }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        if let Some(aside) = &self.saved {
            let _ = fs::rename(aside, &self.path);
        }
    }
}

/// Waits for the daemon that a mount helper left behind to finish mounting.
fn wait_mounted(mnt: &Path) {
    let t = Instant::now();
    while !mnt.join(".thumbfs/stats").exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "not mounted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks a helper-made mount: its presets, a thumbnail equal to the CLI's, the cache dir in
/// use; then `umount` frees it.
fn check_and_umount(mnt: &Path, src: &Path, preset: &str, spec: &str, cache: &Path) {
    wait_mounted(mnt);
    let names: Vec<String> = fs::read_dir(mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&preset.to_string()), "{names:?}");
    let shown = if spec.ends_with("_png") {
        "p000.png"
    } else {
        "p000.jpg"
    };
    let got = fs::read(mnt.join(preset).join(shown))
        .unwrap_or_else(|e| panic!("{}: {preset}/{shown}: {e}", mnt.display()));
    assert!(got == engine(&src.join("p000.jpg"), spec).unwrap());
    assert!(
        fs::read_dir(cache).unwrap().count() > 0,
        "cache_dir= was not used"
    );
    let st = Command::new("umount").arg(mnt).status().unwrap();
    assert!(st.success(), "umount failed");
    let t = Instant::now();
    while is_mounted(mnt) {
        assert!(t.elapsed() < Duration::from_secs(10), "still mounted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `mount -t fuse.thumbfs SRC MNT -o ...` (through fuse3's mount.fuse3), the helper called by
/// name, and a line of an fstab file (`mount --fstab FILE MNT`); each unmounted by `umount`.
#[test]
fn mount_helper_fstab_and_umount() {
    let src = tree(2, false);
    let bin = helper_bin();
    let _installed = Installed::new();
    let cache = tempfile::tempdir().unwrap();
    let mnt = tempfile::tempdir().unwrap();
    let guard = Unmount(mnt.path().to_path_buf());
    let opts = |preset: &str, spec: &str| {
        format!(
            "preset={preset}={spec},cache_dir={},cache_mem=32M,allow_other,nofail",
            cache.path().display()
        )
    };

    // mount(8) with the fuse.SUBTYPE convention.
    let out = Command::new("mount")
        .args(["-t", "fuse.thumbfs"])
        .arg(src.path())
        .arg(mnt.path())
        .args(["-o", &opts("thumb", "64x64")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount -t fuse.thumbfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_and_umount(mnt.path(), src.path(), "thumb", "64x64", cache.path());

    // The helper itself, as mount(8) runs /sbin/mount.fuse.thumbfs when it is installed.
    let out = Command::new(bin.path().join("mount.fuse.thumbfs"))
        .arg(src.path())
        .arg(mnt.path())
        .args(["-n", "-o", &opts("tiny", "w32_q60")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount.fuse.thumbfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_and_umount(mnt.path(), src.path(), "tiny", "w32_q60", cache.path());

    // An fstab line, mounted by its mount point alone.
    let fstab = cache.path().with_extension("fstab");
    fs::write(
        &fstab,
        format!(
            "# thumbfs test\n{} {} fuse.thumbfs {} 0 0\n",
            src.path().display(),
            mnt.path().display(),
            opts("small", "w48_png")
        ),
    )
    .unwrap();
    let out = Command::new("mount")
        .arg("--fstab")
        .arg(&fstab)
        .arg(mnt.path())
        .output()
        .unwrap();
    let _ = fs::remove_file(&fstab);
    assert!(
        out.status.success(),
        "mount --fstab: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_and_umount(mnt.path(), src.path(), "small", "w48_png", cache.path());

    // A bad option fails the mount command with one clear line, and nothing stays mounted.
    let out = Command::new("mount")
        .args(["-t", "fuse.thumbfs"])
        .arg(src.path())
        .arg(mnt.path())
        .args(["-o", "cache_mem=lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cache_mem=lots"));
    assert!(!is_mounted(mnt.path()));
    drop(guard);
}

/// systemd's `Type=notify`: READY=1 arrives once the mount answers, STOPPING=1 on SIGTERM,
/// and the daemon exits 0 with the mount point free.
#[test]
fn systemd_notify_ready_and_stopping() {
    let src = tree(2, false);
    let mnt = tempfile::tempdir().unwrap();
    let guard = Unmount(mnt.path().to_path_buf());
    let sockdir = tempfile::tempdir().unwrap();
    let sock_path = sockdir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = Command::new(thumbfs_bin())
        .args(["mount", "--foreground"])
        .arg(src.path())
        .arg(mnt.path())
        .env("NOTIFY_SOCKET", &sock_path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within 30 s");
    assert_eq!(&buf[..n], b"READY=1\n");
    assert!(is_mounted(mnt.path()), "READY=1 before the mount exists");
    assert!(fs::read(mnt.path().join("thumb/p000.jpg")).unwrap().len() > 100);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let n = sock.recv(&mut buf).expect("STOPPING=1 after SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "daemon did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert!(!is_mounted(mnt.path()));
    drop(guard);
}

/// The template unit in contrib/ is one systemd accepts (`systemd-analyze verify` of an
/// instance, with ExecStart pointed at this build) and uses the readiness protocol tested above.
#[test]
fn contrib_unit_verifies() {
    let unit =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/thumbfs@.service"))
            .unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("--foreground"));
    let dir = tempfile::tempdir().unwrap();
    let local = unit.replace("/usr/bin/thumbfs", thumbfs_bin().to_str().unwrap());
    fs::write(dir.path().join("thumbfs@.service"), local).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("thumbfs@photos.service"))
        .output()
        .expect("systemd-analyze (package systemd) runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("thumbfs@"),
        "systemd-analyze verify: {err}"
    );
}

/// Completions for three shells and a man page, generated from the same definitions.
#[test]
fn completions_and_man_page() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef thumbfs"),
        ("fish", "complete -c thumbfs"),
    ] {
        let out = run(Command::new(thumbfs_bin()).args(["completions", shell]));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains(marker), "{shell}");
        assert!(
            text.contains("warm") && text.contains("cache-dir"),
            "{shell}"
        );
    }
    let script = tempfile::NamedTempFile::new().unwrap();
    fs::write(
        script.path(),
        run(Command::new(thumbfs_bin()).args(["completions", "bash"])),
    )
    .unwrap();
    // bash accepts the script and registers the completion.
    let out = run(Command::new("bash").arg("-c").arg(format!(
        "source {} && complete -p thumbfs",
        script.path().display()
    )));
    assert!(String::from_utf8_lossy(&out).contains("thumbfs"));
    let man = run(Command::new(thumbfs_bin()).arg("man"));
    let page = tempfile::NamedTempFile::new().unwrap();
    fs::write(page.path(), &man).unwrap();
    // man renders it without warnings.
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page.path())
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .expect("man (package man-db) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("thumbfs") && text.contains("warm"), "{text}");
}
