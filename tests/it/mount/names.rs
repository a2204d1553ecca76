//! Names in the mount: spec directories, shown names, errors for bad names, read-only.

use crate::common;

use std::fs;

use common::mount::{engine, sh, shown_names, tree_manifest, Mount};
use common::*;

#[test]
fn names_specs_errors_and_read_only() {
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    fs::copy(corpus("jpeg/video-001.jpeg"), s.join("photo.jpg")).unwrap();
    fs::copy(corpus("pngsuite/primary/basn2c08.png"), s.join("photo.png")).unwrap();
    fs::copy(
        corpus("webp/blue-purple-pink.lossless.webp"),
        s.join("pic.webp"),
    )
    .unwrap();
    fs::write(s.join("notes.txt"), "not an image").unwrap();
    fs::copy(
        corpus("pngsuite/corrupt/xcsn0g01.png"),
        s.join("broken.png"),
    )
    .unwrap();
    fs::create_dir(s.join("sub")).unwrap();
    fs::copy(corpus("jpeg/video-005.gray.jpeg"), s.join("sub/grey.jpg")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", s.join("escape.jpg")).unwrap();
    std::os::unix::fs::symlink("photo.jpg", s.join("inside.jpg")).unwrap();
    let before = tree_manifest(s);
    let m = Mount::new(s, &["--preset", "tiny=w32_png"]);
    // Root lists presets; any valid spec resolves; aliases share renders.
    assert_eq!(shown_names(&m, "", ""), [".thumbfs", "tiny"]);
    assert_eq!(
        shown_names(&m, "tiny", ""),
        [
            "broken.png",
            "inside.png",
            "photo.jpg.png",
            "photo.png",
            "pic.png",
            "sub"
        ]
    );
    assert_eq!(
        shown_names(&m, "webp_w40", ""),
        [
            "broken.webp",
            "inside.webp",
            "photo.jpg.webp",
            "photo.png.webp",
            "pic.webp",
            "sub"
        ]
    );
    assert_eq!(
        shown_names(&m, "q80", ""),
        [
            "broken.png",
            "inside.jpg",
            "photo.jpg",
            "photo.png",
            "pic.webp",
            "sub"
        ]
    );
    let a = fs::read(m.path("shrink2_q90/photo.jpg")).unwrap();
    let renders = m.stats()["renders"];
    let b = fs::read(m.path("q90_shrink2/photo.jpg")).unwrap();
    assert_eq!(a, b);
    assert_eq!(m.stats()["renders"], renders, "an alias reuses the render");
    assert_eq!(
        fs::read(m.path("q80/sub/grey.jpg")).unwrap(),
        engine(&s.join("sub/grey.jpg"), "q80").unwrap()
    );
    // ENOENT for bad specs and missing files; EIO for a broken image; others keep working.
    for bad in [
        "q900/photo.jpg",
        "nonsense/photo.jpg",
        "q80/missing.jpg",
        "q80/notes.txt",
        "q80/escape.jpg",
    ] {
        let e = fs::metadata(m.path(bad)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{bad}");
    }
    let e = fs::read(m.path("q80/broken.png")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    assert!(fs::read(m.path("q80/photo.png")).is_ok());
    let errors = fs::read_to_string(m.path(".thumbfs/errors")).unwrap();
    assert!(
        errors.lines().next().unwrap().contains("broken.png"),
        "{errors}"
    );
    assert!(fs::read_to_string(m.path(".thumbfs/README"))
        .unwrap()
        .contains("shrink<N>"));
    // Writes: EROFS.
    for script in [
        format!("touch '{}'", m.path("q80/new.jpg").display()),
        format!("mkdir '{}'", m.path("q80/d").display()),
        format!("rm '{}'", m.path("q80/photo.jpg").display()),
        format!("echo x >> '{}'", m.path("q80/photo.jpg").display()),
        format!(
            "mv '{}' '{}'",
            m.path("q80/photo.jpg").display(),
            m.path("q80/p2.jpg").display()
        ),
    ] {
        let out = sh(&script);
        assert!(!out.status.success(), "{script} succeeded");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Read-only"),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Attributes: source times and owner, read-only modes, blocks match size.
    use std::os::unix::fs::MetadataExt;
    let v = fs::metadata(m.path("q80/photo.jpg")).unwrap();
    let sm = fs::metadata(s.join("photo.jpg")).unwrap();
    assert_eq!(
        (v.mtime(), v.uid(), v.gid()),
        (sm.mtime(), sm.uid(), sm.gid())
    );
    assert_eq!(v.mode() & 0o777, sm.mode() & 0o444);
    assert_eq!(v.blocks(), v.len().div_ceil(512));
    assert_eq!(
        fs::metadata(m.path("q80/sub")).unwrap().mode() & 0o777,
        0o555
    );
    let ino = v.ino();
    assert_eq!(
        fs::metadata(m.path("q80/photo.jpg")).unwrap().ino(),
        ino,
        "stable inode"
    );
    drop(m);
    assert_eq!(tree_manifest(s), before);
}
