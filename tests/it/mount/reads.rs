//! The mount, for real: `thumbfs mount` on a temp dir, read with real programs.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mount::{engine, sh, tree_manifest, Mount};
use common::*;
use thumbfs::Spec;

/// Path relative to the corpus → shown name under a spec directory, from a listing.
fn shown_names(m: &Mount, spec: &str, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(m.dir.path().join(spec).join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

fn sh_ok(script: &str) -> String {
    let out = sh(script);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Every corpus image under four specs: the bytes read equal the engine's output, and the
/// size stat reports before the first read is exact. Broken images are EIO through the mount
/// and errors through the engine; the corpus is unchanged afterwards.
#[test]
fn every_corpus_file_matches_convert_and_sizes_are_exact() {
    let root = corpus("");
    let before = tree_manifest(&root);
    let m = Mount::new(&root, &[]);
    let dirs = [
        "jpeg",
        "exif-orientation",
        "photos",
        "pnm",
        "tiff",
        "webp",
        "pngsuite/primary",
        "pngsuite/16bit",
        "pngsuite/corrupt",
    ];
    let mut checked = 0;
    for spec in ["q90_shrink2", "w256", "w256_png", "invert"] {
        for dir in dirs {
            let listing = thumbfs::mount::names::Names::default();
            let format = spec.parse::<Spec>().unwrap().format;
            let store = thumbfs::store::LocalStore::new(&root).unwrap();
            let l = listing.list(&store, Path::new(dir), format).unwrap();
            let shown = shown_names(&m, spec, dir);
            let expected: Vec<String> = l
                .entries
                .iter()
                .map(|e| e.name.to_string_lossy().to_string())
                .collect();
            assert_eq!(shown, expected, "{spec}/{dir}");
            for e in l.entries.iter().filter(|e| !e.is_dir()) {
                let virt = m.path(&format!(
                    "{spec}/{}",
                    Path::new(dir).join(&e.name).display()
                ));
                let want = engine(&root.join(&e.rel), spec);
                match want {
                    Ok(bytes) => {
                        let size = fs::metadata(&virt)
                            .unwrap_or_else(|err| panic!("{}: {err}", virt.display()))
                            .len();
                        let got = fs::read(&virt).unwrap();
                        assert_eq!(size, got.len() as u64, "{}: st_size", virt.display());
                        assert!(
                            got == bytes,
                            "{}: bytes differ from convert",
                            virt.display()
                        );
                    }
                    Err(why) => {
                        let err = fs::read(&virt).unwrap_err();
                        assert_eq!(
                            err.raw_os_error(),
                            Some(libc::EIO),
                            "{}: {why}",
                            virt.display()
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 600, "only {checked} files checked");
    let errors = fs::read_to_string(m.path(".thumbfs/errors")).unwrap();
    assert!(
        errors.contains("pngsuite/corrupt/"),
        "errors list: {errors}"
    );
    drop(m);
    assert_eq!(
        tree_manifest(&root),
        before,
        "the backing directory changed"
    );
}

#[test]
fn real_programs_read_the_mount() {
    let m = Mount::new(&corpus("photos"), &[]);
    let f = m.path("w256/sunset_by_Aitzol_Berasategi.jpg");
    let want = engine(&corpus("photos/sunset_by_Aitzol_Berasategi.jpg"), "w256").unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = out.path();
    let mnt = m.dir.path().display().to_string();
    let fd = f.display().to_string();
    // cat, cp, dd, sha256sum
    sh_ok(&format!("cat '{fd}' > {}/cat.jpg", o.display()));
    sh_ok(&format!("cp '{fd}' {}/cp.jpg", o.display()));
    sh_ok(&format!(
        "dd if='{fd}' of={}/dd.jpg bs=1M status=none",
        o.display()
    ));
    for n in ["cat", "cp", "dd"] {
        assert_eq!(fs::read(o.join(format!("{n}.jpg"))).unwrap(), want, "{n}");
    }
    let sum = sh_ok(&format!("sha256sum '{fd}' {}/cat.jpg", o.display()));
    let sums: Vec<&str> = sum.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(sums[0], sums[1], "sha256sum");
    // tar: archive then extract and compare.
    sh_ok(&format!(
        "tar -C '{mnt}' -cf {o}/a.tar w256 && mkdir {o}/x && tar -C {o}/x -xf {o}/a.tar",
        o = o.display()
    ));
    assert_eq!(
        fs::read(o.join("x/w256/sunset_by_Aitzol_Berasategi.jpg")).unwrap(),
        want,
        "tar"
    );
    // rsync -a, then compare the trees.
    sh_ok(&format!(
        "rsync -a '{mnt}/w256/' {o}/r/ && diff -r '{mnt}/w256' {o}/r",
        o = o.display()
    ));
    // Python read and mmap.
    let py = format!(
        "import mmap,sys\nb=open('{fd}','rb').read()\nf=open('{fd}','rb')\nm=mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ)\nassert m[:]==b, 'mmap'\nsys.stdout.write(str(len(b)))"
    );
    let n = sh_ok(&format!("python3 -c \"{py}\""));
    assert_eq!(n, want.len().to_string());
    // ImageMagick and libvips on the virtual path.
    let id = sh_ok(&format!("identify -format '%w %h' '{fd}'"));
    assert_eq!(id, "256 171");
    sh_ok(&format!("vips copy '{fd}' {}/v.png", o.display()));
    // nginx with sendfile: Content-Length and body exact.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let conf = o.join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "daemon off; pid {o}/nginx.pid; error_log {o}/error.log;\n\
             events {{ worker_connections 16; }}\n\
             http {{ access_log off; sendfile on; client_body_temp_path {o}; proxy_temp_path {o};\n\
             fastcgi_temp_path {o}; uwsgi_temp_path {o}; scgi_temp_path {o};\n\
             server {{ listen 127.0.0.1:{port}; root {mnt}; }} }}\n",
            o = o.display()
        ),
    )
    .unwrap();
    let mut nginx = Command::new("nginx")
        .args(["-c", conf.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/w256/sunset_by_Aitzol_Berasategi.jpg");
    let mut body = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let r = Command::new("python3")
            .args(["-c", &format!("import urllib.request,sys\nr=urllib.request.urlopen('{url}')\nb=r.read()\nassert int(r.headers['Content-Length'])==len(b)\nsys.stdout.buffer.write(b)")])
            .output()
            .unwrap();
        if r.status.success() {
            body = r.stdout;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGTERM lets the master stop its workers (SIGKILL would orphan them).
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(nginx.id() as i32, libc::SIGTERM) };
    let _ = nginx.wait();
    assert_eq!(body, want, "nginx sendfile");
}

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

#[test]
fn concurrent_readers_share_one_render_and_small_cache_stays_correct() {
    let m = Mount::new(&corpus("photos"), &[]);
    let path = Arc::new(m.path("q85_shrink2/seeding_by_Clements_Engelhardt.jpg"));
    let want = Arc::new(
        engine(
            &corpus("photos/seeding_by_Clements_Engelhardt.jpg"),
            "q85_shrink2",
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (p, w) = (path.clone(), want.clone());
            std::thread::spawn(move || assert!(fs::read(&*p).unwrap() == *w))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(m.stats()["renders"], 1, "16 readers, one render");
    // Random-offset reads, also past EOF.
    let f = fs::File::open(&*path).unwrap();
    for &(off, len) in &[
        (0usize, 10usize),
        (1000, 5000),
        (want.len() - 3, 100),
        (want.len() + 10, 10),
    ] {
        let mut buf = vec![0u8; len];
        let n = f.read_at(&mut buf, off as u64).unwrap();
        let end = (off + len).min(want.len()).max(off.min(want.len()));
        assert_eq!(&buf[..n], &want[off.min(want.len())..end]);
    }
    drop(m);

    // 8 readers over 100 files with a cache far smaller than the working set.
    let src = tempfile::tempdir().unwrap();
    for i in 0..100 {
        let from = [
            "jpeg/video-001.jpeg",
            "pngsuite/primary/basn2c08.png",
            "webp/blue-purple-pink.lossless.webp",
            "jpeg/video-005.gray.jpeg",
        ][i % 4];
        let ext = Path::new(from)
            .extension()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        fs::copy(corpus(from), src.path().join(format!("f{i:03}.{ext}"))).unwrap();
    }
    let m = Mount::new(src.path(), &["--cache-mem", "16K"]);
    let spec = "w40_jpg";
    let names = shown_names(&m, spec, "");
    assert_eq!(names.len(), 100);
    let expected: Arc<BTreeMap<String, Vec<u8>>> = Arc::new(
        names
            .iter()
            .map(|n| {
                let stem = n.trim_end_matches(".jpg");
                let src_name = fs::read_dir(src.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                    .find(|s| s.starts_with(stem))
                    .unwrap();
                (n.clone(), engine(&src.path().join(src_name), spec).unwrap())
            })
            .collect(),
    );
    let dir = Arc::new(m.path(spec));
    let readers: Vec<_> = (0..8)
        .map(|r| {
            let (dir, expected) = (dir.clone(), expected.clone());
            std::thread::spawn(move || {
                for (i, (name, bytes)) in expected.iter().enumerate() {
                    if (i + r) % 2 == 0 {
                        let mut got = Vec::new();
                        fs::File::open(dir.join(name))
                            .unwrap()
                            .read_to_end(&mut got)
                            .unwrap();
                        assert!(got == *bytes, "{name}");
                    }
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
}

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

/// Every input format is listed, renamed when the output format changes, read back by
/// independent tools, and named by `thumbfs info`.
#[test]
fn every_format_is_served_and_info_names_it() {
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    let copy = |rel: &str, name: &str| fs::copy(corpus(rel), s.join(name)).unwrap();
    copy("jpeg/video-001.jpeg", "photo.jpg");
    copy("pngsuite/primary/basn6a08.png", "alpha.png");
    copy("webp/yellow_rose.lossy-with-alpha.webp", "rose.webp");
    copy("tiff/video-001-paletted.tiff", "paletted.tiff");
    copy("pnm/flower_small.rgb.depth8.ppm", "flower.ppm");
    copy("pnm/splines.pfm", "splines.pfm");
    let made = |args: &[&str], name: &str| {
        let out = Command::new("convert")
            .args(args)
            .arg(s.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    made(&["rose:", "-resize", "200%"], "anim.gif");
    made(&["rose:"], "sky.hdr");
    fs::write(
        s.join("drawing.svg"),
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80"><rect width="120" height="80" fill="#3366cc"/><circle cx="60" cy="40" r="30" fill="#ffcc00"/></svg>"##,
    )
    .unwrap();
    let formats = [
        ("photo.jpg", "jpeg"),
        ("alpha.png", "png"),
        ("rose.webp", "webp"),
        ("paletted.tiff", "tiff"),
        ("flower.ppm", "pnm"),
        ("splines.pfm", "pfm"),
        ("anim.gif", "gif"),
        ("sky.hdr", "hdr"),
        ("drawing.svg", "svg"),
    ];
    for (name, format) in formats {
        let out = Command::new(thumbfs_bin())
            .arg("info")
            .arg(s.join(name))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "info {name}");
        assert!(
            text.contains(&format!(": {format} ")),
            "info {name}: {text}"
        );
    }
    let before = tree_manifest(s);
    let m = Mount::new(s, &[]);
    // Same format where there is a saver; PNG for GIF, HDR and SVG.
    assert_eq!(
        shown_names(&m, "w24", ""),
        [
            "alpha.png",
            "anim.png",
            "drawing.png",
            "flower.ppm",
            "paletted.tiff",
            "photo.jpg",
            "rose.webp",
            "sky.png",
            "splines.pfm"
        ]
    );
    for (spec, ext) in [
        ("w24_tif_lzw", "tif"),
        ("w24_webp", "webp"),
        ("w24_jpg", "jpg"),
    ] {
        for (name, _) in formats {
            // A source already in the output format keeps its name (`.tiff` stays).
            let (stem, old_ext) = name.rsplit_once('.').unwrap();
            let same = thumbfs::spec::OutputFormat::from_extension(old_ext)
                == thumbfs::spec::OutputFormat::from_extension(ext);
            let shown = if same {
                m.path(&format!("{spec}/{name}"))
            } else {
                m.path(&format!("{spec}/{stem}.{ext}"))
            };
            let bytes = fs::read(&shown).unwrap_or_else(|e| panic!("{}: {e}", shown.display()));
            assert_eq!(bytes, engine(&s.join(name), spec).unwrap(), "{spec}/{name}");
            // ImageMagick reads every output as the right format and size.
            let out = Command::new("identify")
                .args(["-format", "%m %w"])
                .arg(&shown)
                .output()
                .unwrap();
            let id = String::from_utf8_lossy(&out.stdout).to_string();
            let magick = match ext {
                "tif" => "TIFF",
                "webp" => "WEBP",
                _ => "JPEG",
            };
            assert_eq!(id, format!("{magick} 24"), "{spec}/{name}");
        }
    }
    drop(m);
    assert_eq!(tree_manifest(s), before, "the backing directory changed");
}
