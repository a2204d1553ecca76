//! scripts/package.sh: the Debian package built from this build's binary, unpacked into a
//! scratch root (`dpkg -x`) and checked file by file: the stripped binary mounts through the
//! `mount.fuse.thumbfs` link, the template unit verifies, the man page renders.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::mount::{engine, Unmount};
use common::{corpus, thumbfs_bin};

/// The epoch the packages are built at: every file's mtime.
const EPOCH: &str = "1700000000";

/// Runs `scripts/package.sh` on this build's binary into `out`; the .deb's path.
fn package(out: &Path) -> PathBuf {
    let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package.sh"))
        .arg(thumbfs_bin())
        .arg(out)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        // xz, the default, takes ~10 s of CPU for the 20 MB binary.
        .env("DEB_COMPRESSION", "gzip")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "package.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
}

/// Runs a command, asserts success, returns its stdout as text.
fn text(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn debian_package_holds_a_working_install() {
    let out = tempfile::tempdir().unwrap();
    let deb = package(&out.path().join("a"));
    let name = deb.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(&format!("thumbfs_{}_", env!("CARGO_PKG_VERSION")))
            && name.ends_with(".deb"),
        "{name}"
    );
    // Reproducible: built again elsewhere, the same bytes.
    let again = package(&out.path().join("b"));
    assert!(
        fs::read(&deb).unwrap() == fs::read(&again).unwrap(),
        "not reproducible"
    );

    let info = text(Command::new("dpkg-deb").arg("-I").arg(&deb));
    assert!(info.contains("Package: thumbfs"), "{info}");
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends: {info}"));
    for dep in ["fuse3", "libheif1", "libc6"] {
        assert!(depends.split(", ").any(|d| d.starts_with(dep)), "{depends}");
    }
    // Owned by root, every mtime the epoch, in sorted order.
    let listing = text(
        Command::new("dpkg-deb")
            .arg("-c")
            .arg(&deb)
            .env("TZ", "UTC"),
    );
    let paths: Vec<&str> = listing
        .lines()
        .map(|l| {
            assert!(
                l.contains(" root/root ") && l.contains(" 2023-11-14 22:13 "),
                "{l}"
            );
            l.split(" ./").nth(1).unwrap().split(" -> ").next().unwrap()
        })
        .collect();
    for want in [
        "usr/bin/thumbfs",
        "usr/sbin/mount.fuse.thumbfs",
        "usr/lib/systemd/system/thumbfs@.service",
        "usr/share/man/man1/thumbfs.1.gz",
        "usr/share/bash-completion/completions/thumbfs",
        "usr/share/zsh/vendor-completions/_thumbfs",
        "usr/share/fish/vendor_completions.d/thumbfs.fish",
        "usr/share/doc/thumbfs/examples/photos.conf",
        "usr/share/doc/thumbfs/copyright",
    ] {
        assert!(paths.contains(&want), "{want} missing: {listing}");
    }

    let root = out.path().join("root");
    text(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));
    let bin = root.join("usr/bin/thumbfs");
    assert_eq!(
        fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert!(text(Command::new(&bin).arg("--version")).contains(env!("CARGO_PKG_VERSION")));
    let sections = text(Command::new("readelf").arg("-S").arg(&bin));
    assert!(!sections.contains(".symtab"), "not stripped");
    assert!(fs::metadata(&bin).unwrap().len() < fs::metadata(thumbfs_bin()).unwrap().len());
    let link = root.join("usr/sbin/mount.fuse.thumbfs");
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("../bin/thumbfs"));

    // The helper link mounts, as mount(8) runs it, with the packaged (stripped) binary.
    let src = tempfile::tempdir().unwrap();
    fs::copy(corpus("jpeg/video-001.jpeg"), src.path().join("a.jpg")).unwrap();
    let mnt = tempfile::tempdir().unwrap();
    let guard = Unmount(mnt.path().to_path_buf());
    text(Command::new(&link).arg(src.path()).arg(mnt.path()).args([
        "-n",
        "-o",
        "preset=thumb=64x64",
    ]));
    let t = Instant::now();
    while !mnt.path().join(".thumbfs/stats").exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "not mounted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = fs::read(mnt.path().join("thumb/a.jpg")).unwrap();
    assert!(got == engine(&src.path().join("a.jpg"), "64x64").unwrap());
    assert!(Command::new("umount")
        .arg(mnt.path())
        .status()
        .unwrap()
        .success());
    drop(guard);

    // The template unit verifies as an instance, ExecStart pointed at the unpacked binary.
    let unit = fs::read_to_string(root.join("usr/lib/systemd/system/thumbfs@.service")).unwrap();
    assert!(unit.contains("EnvironmentFile=/etc/thumbfs/%i.conf") && unit.contains("Type=notify"));
    let units = tempfile::tempdir().unwrap();
    fs::write(
        units.path().join("thumbfs@.service"),
        unit.replace("/usr/bin/thumbfs", bin.to_str().unwrap()),
    )
    .unwrap();
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.path().join("thumbfs@photos.service"))
        .output()
        .expect("systemd-analyze (package systemd) runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && !err.contains("thumbfs@"),
        "systemd-analyze verify: {err}"
    );
    // The example configuration sets what the unit uses.
    let conf = text(Command::new("sh").arg("-c").arg(format!(
        ". '{}' && printf '%s|%s|%s' \"$SRC\" \"$MNT\" \"$OPTIONS\"",
        root.join("usr/share/doc/thumbfs/examples/photos.conf").display()
    )));
    let v: Vec<&str> = conf.split('|').collect();
    assert!(v.len() == 3 && v.iter().all(|s| !s.is_empty()), "{conf}");

    // The man page renders (gzipped, as installed) without warnings.
    let o = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(root.join("usr/share/man/man1/thumbfs.1.gz"))
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .expect("man (package man-db) runs");
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(page.contains("thumbfs") && page.contains("warm"), "{page}");
    // The completions are the binary's own, for each shell's vendor directory.
    let bash = root.join("usr/share/bash-completion/completions/thumbfs");
    let reg = text(Command::new("bash").arg("-c").arg(format!(
        "source '{}' && complete -p thumbfs",
        bash.display()
    )));
    assert!(reg.contains("thumbfs"), "{reg}");
    let zsh = fs::read_to_string(root.join("usr/share/zsh/vendor-completions/_thumbfs")).unwrap();
    assert!(zsh.starts_with("#compdef thumbfs"));
    let fish =
        fs::read_to_string(root.join("usr/share/fish/vendor_completions.d/thumbfs.fish")).unwrap();
    assert!(fish.contains("complete -c thumbfs"));
}
