//! Every input format served through the mount; HEIC, AVIF and JPEG XL under renamed
//! extensions, and hostile variants of them giving EIO with the daemon still up.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::codec::*;
use common::mount::{engine, proc_status_number, shown_names, tree_manifest, Mount};
use common::*;

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
    // Same format where there is a saver (GIF too, still or animated); PNG for HDR and SVG.
    assert_eq!(
        shown_names(&m, "w24", ""),
        [
            "alpha.png",
            "anim.gif",
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

fn cat(path: &Path) -> Result<Vec<u8>, String> {
    let out = Command::new("cat").arg(path).output().unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn mount_serves_new_formats_as_jpeg_and_refuses_hostile_files() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&work).unwrap();
    let (rgb, _, _) = sources(&work);
    // One folder per format, so `photo.<ext>` is served as `photo.jpg` without a clash.
    for ext in ["heic", "avif", "jxl"] {
        std::fs::create_dir_all(src.join(ext)).unwrap();
    }
    run(Command::new("heif-enc")
        .args(["-q", "80"])
        .arg(&rgb)
        .arg("-o")
        .arg(src.join("heic/photo.heic")));
    run(Command::new("avifenc")
        .args(["-s", "8"])
        .arg(&rgb)
        .arg(src.join("avif/photo.avif")));
    run(Command::new("cjxl")
        .arg(&rgb)
        .arg(src.join("jxl/photo.jxl"))
        .arg("--quiet"));
    // Hostile variants of each: the first half of the file, and bytes flipped in its second
    // half.
    for ext in ["heic", "avif", "jxl"] {
        let good = std::fs::read(src.join(format!("{ext}/photo.{ext}"))).unwrap();
        std::fs::write(
            src.join(format!("{ext}/trunc.{ext}")),
            &good[..good.len() / 2],
        )
        .unwrap();
        let mut flipped = good.clone();
        for i in (good.len() / 2..good.len()).step_by(61) {
            flipped[i] ^= 0x5A;
        }
        std::fs::write(src.join(format!("{ext}/flip.{ext}")), &flipped).unwrap();
    }
    // The fuzzer's grid that lists itself among its tiles: libheif 1.15 alone recurses into
    // it, starting tile threads until the system has none left, then throws.
    // And its 32x21 image whose overlay canvas says 20763x63852: libheif allocated 3.9 GB.
    let saved = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/heic");
    for (name, to) in [
        ("grid-reference-cycle.err", "cycle.heic"),
        ("overlay-canvas-larger-than-ispe.err", "canvas.heic"),
    ] {
        std::fs::copy(saved.join(name), src.join("heic").join(to)).unwrap();
    }
    // Dimension bombs: valid 3000x3000 files, over a --max-pixels of 4 M, refused from
    // their headers.
    let bomb_png = work.join("bomb.png");
    run(Command::new("convert")
        .args(["-size", "3000x3000", "xc:grey"])
        .arg(&bomb_png));
    run(Command::new("cjxl")
        .arg(&bomb_png)
        .arg(src.join("jxl/bomb.jxl"))
        .args(["-e", "1", "--quiet"]));
    run(Command::new("avifenc")
        .args(["-s", "10"])
        .arg(&bomb_png)
        .arg(src.join("avif/bomb.avif")));
    run(Command::new("heif-enc")
        .args(["-q", "10"])
        .arg(&bomb_png)
        .arg("-o")
        .arg(src.join("heic/bomb.heic")));

    let mut m = Mount::new(&src, &["--max-pixels", "4000000"]);
    for ext in ["heic", "avif", "jxl"] {
        let listing: Vec<String> = std::fs::read_dir(m.path(&format!("w256/{ext}")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            listing.contains(&"photo.jpg".to_string()),
            "{ext}: photo.{ext} not listed as photo.jpg under w256/: {listing:?}"
        );
        let served = m.path(&format!("w256/{ext}/photo.jpg"));
        let bytes = cat(&served).unwrap_or_else(|e| panic!("{served:?}: {e}"));
        assert!(
            bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
            "{served:?} is not a JPEG"
        );
        let cli = engine(&src.join(format!("{ext}/photo.{ext}")), "w256").unwrap();
        assert_eq!(bytes, cli, "{ext}: mount and CLI bytes differ");
        let out = work.join(format!("{ext}.jpg"));
        std::fs::write(&out, &bytes).unwrap();
        let px = djpeg(&out);
        assert_eq!((px.width, px.height), (256, 171), "{ext}");
        // A half file is refused with EIO.
        let e = cat(&m.path(&format!("w256/{ext}/trunc.jpg"))).expect_err("a half file decoded");
        assert!(e.contains("Input/output error"), "trunc.{ext}: {e}");
        // Flipped bytes in coded data may still decode into some picture; otherwise EIO.
        if let Err(e) = cat(&m.path(&format!("w256/{ext}/flip.jpg"))) {
            assert!(e.contains("Input/output error"), "flip.{ext}: {e}");
        }
        let e = cat(&m.path(&format!("w256/{ext}/bomb.jpg"))).expect_err("a bomb decoded");
        assert!(e.contains("Input/output error"), "bomb.{ext}: {e}");
        assert!(m.alive(), "the daemon died on {ext}: {}", m.log_text());
    }
    for name in ["cycle", "canvas"] {
        let e = cat(&m.path(&format!("w256/heic/{name}.jpg"))).expect_err("decoded");
        assert!(e.contains("Input/output error"), "{name}.heic: {e}");
    }
    assert!(m.alive(), "the daemon died on cycle.heic: {}", m.log_text());
    let threads = proc_status_number(m.pid(), "Threads");
    // FUSE workers and the render pool; libheif's runaway recursion started thousands.
    assert!(threads < 64, "{threads} daemon threads after cycle.heic");
    let errors = m.errors();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("cycle.heic") && l.contains("reference cycle")),
        "cycle.heic: no error naming the cycle in {errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("canvas.heic") && l.contains("20763x63852")),
        "canvas.heic: no error naming the canvas in {errors:?}"
    );
    let peak = m.status_kib("VmHWM");
    assert!(
        peak < 1 << 20,
        "daemon peak RSS {peak} KiB after canvas.heic"
    );
    for ext in ["heic", "avif", "jxl"] {
        assert!(
            errors
                .iter()
                .any(|l| l.contains(&format!("bomb.{ext}")) && l.contains("3000")),
            "bomb.{ext}: no error naming its size in {errors:?}"
        );
    }
}
