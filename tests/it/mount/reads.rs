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

use common::mount::{engine, sh, shown_names, tree_manifest, Mount};
use common::*;
use thumbfs::Spec;

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

/// Both open modes serve the engine's bytes, and `.thumbfs/stats` stays fresh and whole in
/// no-open mode (page cache, snapshot per getattr). no-open with `--stat estimate` is refused.
#[test]
fn no_open_mode_serves_the_engines_bytes() {
    let src = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("jpeg/video-001.jpeg", "a.jpg"),
        ("pngsuite/primary/basn2c08.png", "b.png"),
    ] {
        fs::copy(corpus(from), src.path().join(to)).unwrap();
    }
    let m = Mount::new(src.path(), &["--open-mode", "no-open"]);
    for spec in ["w48", "w40_webp", "png"] {
        for name in ["a", "b"] {
            let ext = match spec {
                "w40_webp" => "webp",
                "png" => "png",
                _ if name == "a" => "jpg",
                _ => "png",
            };
            let from = src.path().join(if name == "a" { "a.jpg" } else { "b.png" });
            let want = engine(&from, spec).unwrap();
            for _ in 0..3 {
                let got = fs::read(m.path(&format!("{spec}/{name}.{ext}"))).unwrap();
                assert!(got == want, "{spec}/{name}");
            }
        }
    }
    let renders = m.stats()["renders"];
    assert_eq!(renders, 6, "one render per output");
    // One size for every snapshot, so a reader never joins two of them.
    let stats = fs::read(m.path(".thumbfs/stats")).unwrap();
    assert_eq!(stats.len(), 1024);
    assert!(stats.ends_with(b" \n"));
    m.assert_stats_json();
    assert_eq!(
        m.stats()["renders"],
        renders,
        "stats re-read, still parseable"
    );

    let mnt = tempfile::tempdir().unwrap();
    let out = Command::new(common::thumbfs_bin())
        .args([
            "mount",
            "-f",
            "--open-mode",
            "no-open",
            "--stat",
            "estimate",
        ])
        .arg(src.path())
        .arg(mnt.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --stat exact"));
}
