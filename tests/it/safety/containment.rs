//! The root daemon is no way around file permissions: each case runs as user `nobody`
//! against a mount made by root. A directory swapped for a symlink after the kernel cached
//! it leads nowhere; the disk cache and `.thumbfs/errors` are private to the daemon's user;
//! `--specs presets` resolves the presets only.

use crate::common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::mount::{small_tree, Mount};
use common::*;

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// The attack of issue 22 as `nobody`, who may write in `SRC/shared`: make `shared/a/b`,
/// hold `MNT/w64/shared/a/b` open (the kernel keeps that inode and asks the daemon about
/// `shared/a/b/NAME` from then on), put a symlink to a 0700 directory of another user in
/// place of `shared/a`, then open `private.jpg` through the held directory. The daemon, as
/// root, must not follow the swapped-in link out of SRC.
#[test]
fn a_directory_swapped_for_a_symlink_leads_nowhere() {
    // "alice": a 0700 directory outside SRC, owned by root, with a readable subdirectory.
    let alice = tempfile::tempdir().unwrap();
    fs::create_dir(alice.path().join("b")).unwrap();
    chmod(&alice.path().join("b"), 0o755);
    let private = alice.path().join("b/private.jpg");
    fs::copy(corpus("jpeg/video-001.jpeg"), &private).unwrap();
    chmod(&private, 0o644);
    chmod(alice.path(), 0o700);
    let (ok, err) = cat_as_nobody(&private);
    assert!(!ok, "nobody must not read alice's photo directly: {err}");

    let src = small_tree();
    chmod(src.path(), 0o755);
    fs::create_dir(src.path().join("shared")).unwrap();
    chmod(&src.path().join("shared"), 0o777);
    let m = Mount::new(src.path(), &[]);
    let script = "import os,sys\n\
        src,mnt,alice=sys.argv[1:4]\n\
        shared=os.path.join(src,'shared')\n\
        os.makedirs(os.path.join(shared,'a','b'))\n\
        d=os.open(os.path.join(mnt,'w64','shared','a','b'),os.O_RDONLY|os.O_DIRECTORY)\n\
        os.rename(os.path.join(shared,'a'),os.path.join(shared,'old'))\n\
        os.symlink(alice,os.path.join(shared,'a'))\n\
        try:\n    f=os.open('private.jpg',os.O_RDONLY,dir_fd=d)\n    print('read',len(os.read(f,1<<20)))\n\
        except OSError as e:\n    print('refused',e.errno)\n";
    let out = Command::new("setpriv")
        .args(NOBODY)
        .args(["/usr/bin/python3", "-c", script])
        .arg(src.path())
        .arg(m.dir.path())
        .arg(alice.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.starts_with("refused"),
        "nobody read a thumbnail of alice's 0700 photo through the swapped link: {said}"
    );
    // A relative link inside SRC into a 0700 directory of SRC: the kernel checks only the
    // path it was given (shared/x, open to all), so the daemon must not pass the 0700 one.
    let inner = src.path().join("inner");
    fs::create_dir_all(inner.join("b")).unwrap();
    fs::copy(corpus("jpeg/video-001.jpeg"), inner.join("b/private.jpg")).unwrap();
    chmod(&inner.join("b/private.jpg"), 0o644);
    chmod(&inner, 0o700);
    let out = Command::new("setpriv")
        .args(NOBODY)
        .args(["ln", "-s", "../inner/b"])
        .arg(src.path().join("shared/x"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (ok, _) = cat_as_nobody(&m.path("w64/shared/x/private.jpg"));
    assert!(
        !ok,
        "nobody read a photo in a 0700 directory through a link of their own"
    );
    let (ok, err) = cat_as_nobody(&m.path("w64/inner/b/private.jpg"));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    // A relative link that stays inside SRC is still followed, in the middle of a path too.
    std::os::unix::fs::symlink("old", src.path().join("shared/rel")).unwrap();
    fs::copy(
        corpus("jpeg/video-001.jpeg"),
        src.path().join("shared/old/b/p.jpg"),
    )
    .unwrap();
    chmod(&src.path().join("shared/old/b/p.jpg"), 0o644);
    let (ok, err) = cat_as_nobody(&m.path("w64/shared/rel/b/p.jpg"));
    assert!(ok, "a relative link inside SRC: {err}");
    // An absolute one is refused even when it points inside SRC.
    std::os::unix::fs::symlink(src.path().join("shared/old"), src.path().join("shared/abs"))
        .unwrap();
    let e = fs::metadata(m.path("w64/shared/abs/b/p.jpg")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "absolute link");
}

/// Waits until `dir` holds a finished cache file (`*.out`).
fn wait_for_cache_file(dir: &Path) -> std::path::PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "out"));
        if let Some(p) = found {
            return p;
        }
        assert!(Instant::now() < deadline, "no cache file written");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `--cache-dir` is made 0700 with 0600 files, so a thumbnail of a 0600 photo cannot be read
/// from the cache by another user; an existing directory open to others is warned about.
#[test]
fn the_disk_cache_is_private_to_the_daemon() {
    // The cache's parent is open to all, so only the cache's own modes stand in the way.
    let base = tempfile::tempdir().unwrap();
    chmod(base.path(), 0o755);
    let cache = base.path().join("cache");
    let src = small_tree();
    chmod(src.path(), 0o755);
    chmod(&src.path().join("a.jpg"), 0o600);
    let m = Mount::new(src.path(), &["--cache-dir", cache.to_str().unwrap()]);
    assert!(!fs::read(m.path("w64/a.jpg")).unwrap().is_empty());
    let out = wait_for_cache_file(&cache);
    assert_eq!(
        fs::metadata(&cache).unwrap().mode() & 0o777,
        0o700,
        "cache dir"
    );
    for e in fs::read_dir(&cache).unwrap() {
        let p = e.unwrap().path();
        let mode = fs::metadata(&p).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    let (ok, _) = cat_as_nobody(&out);
    assert!(!ok, "nobody read a cached output");
    let (ok, err) = cat_as_nobody(&m.path("w64/a.jpg"));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    assert!(!m.log_text().contains("chmod 700"), "no warning yet");
    drop(m);

    // An existing directory left open by hand: served, with a warning saying what to do.
    chmod(&cache, 0o755);
    let m = Mount::new(src.path(), &["--cache-dir", cache.to_str().unwrap()]);
    let log = m.log_text();
    assert!(
        log.contains("WARN") && log.contains("chmod 700") && log.contains(cache.to_str().unwrap()),
        "{log}"
    );
    assert!(!fs::read(m.path("w64/a.jpg")).unwrap().is_empty());
}

/// `.thumbfs/errors` names files in directories other users may not list: 0400, owned by
/// the daemon's user, in both open modes. README and stats stay readable by all.
#[test]
fn the_error_list_is_readable_by_the_daemons_user_only() {
    let src = tempfile::tempdir().unwrap();
    chmod(src.path(), 0o755);
    fs::create_dir(src.path().join("hidden")).unwrap();
    fs::copy(
        corpus("pngsuite/corrupt/xcsn0g01.png"),
        src.path().join("hidden/broken-secret.png"),
    )
    .unwrap();
    chmod(&src.path().join("hidden"), 0o700);
    for mode in ["per-open", "no-open"] {
        let m = Mount::new(src.path(), &["--open-mode", mode]);
        assert!(fs::read(m.path("w64/hidden/broken-secret.png")).is_err());
        let errors = m.errors();
        assert!(
            errors.iter().any(|l| l.contains("broken-secret.png")),
            "{errors:?}"
        );
        let meta = fs::metadata(m.path(".thumbfs/errors")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o400, "{mode}");
        // SAFETY: getuid has no preconditions.
        assert_eq!(meta.uid(), unsafe { libc::getuid() });
        let (ok, err) = cat_as_nobody(&m.path(".thumbfs/errors"));
        assert!(!ok && err.contains("Permission denied"), "{mode}: {err}");
        for public in [".thumbfs/stats", ".thumbfs/README"] {
            let (ok, err) = cat_as_nobody(&m.path(public));
            assert!(ok, "{mode}: {public}: {err}");
        }
    }
}

/// `--specs presets` (also `-o specs=presets`): the presets resolve, any other spec is ENOENT.
#[test]
fn specs_presets_resolves_the_presets_only() {
    let src = small_tree();
    for (opts, preset) in [
        (&["--specs", "presets", "--preset", "tiny=w32"][..], "tiny"),
        (&["-o", "specs=presets"][..], "thumb"),
    ] {
        let m = Mount::new(src.path(), opts);
        assert!(
            !fs::read(m.path(&format!("{preset}/a.jpg")))
                .unwrap()
                .is_empty(),
            "{opts:?}"
        );
        for other in ["w64", "w64/a.jpg", "webp/b.webp", "256x256/a.jpg"] {
            let e = fs::metadata(m.path(other)).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{opts:?}: {other}");
        }
    }
    // The default stays `any`.
    let m = Mount::new(src.path(), &[]);
    assert!(!fs::read(m.path("w64/a.jpg")).unwrap().is_empty());
}
