//! HEIC, AVIF and JPEG XL: files made at test time by the reference encoders (heif-enc,
//! avifenc, cjxl) from a corpus photo, decoded by thumbfs and compared with the reference
//! decoders (heif-convert, avifdec, djxl); through the CLI and a real mount (renamed
//! extensions), and hostile variants (truncated, bit-flipped, dimension bomb) giving EIO with
//! the daemon still up.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::mount::{engine, proc_status_number, Mount};
use common::*;

/// Test inputs: an RGB and an RGBA PNG cut from a corpus photo (even sizes, as 4:2:0 wants).
fn sources(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let rgb = d.join("rgb.png");
    run(Command::new("convert")
        .arg(corpus("photos/sunset_by_Aitzol_Berasategi.jpg"))
        .args(["-resize", "480x320!", "-strip"])
        .arg(&rgb));
    let rgba = d.join("rgba.png");
    run(Command::new("convert")
        .arg(&rgb)
        .args([
            "(",
            "+clone",
            "-fx",
            "0.2+0.8*i/w",
            ")",
            "-compose",
            "copy_opacity",
            "-composite",
        ])
        .arg(&rgba));
    let deep = d.join("rgb16.png");
    run(Command::new("convert")
        .arg(&rgb)
        .args(["-depth", "16"])
        .arg(&deep));
    (rgb, rgba, deep)
}

/// Our decode (as PNG through the CLI) against a reference PNG, at `depth` bits.
fn compare(ours_src: &Path, reference: &Path, depth: u32, min_db: f64, d: &Path) -> f64 {
    let ours = d.join(format!(
        "{}.ours.png",
        ours_src.file_name().unwrap().to_str().unwrap()
    ));
    thumbfs(&["convert", "png", p(ours_src), p(&ours)]);
    let (a, b) = (magick_decode(&ours, depth), magick_decode(reference, depth));
    assert_eq!(
        (a.width, a.height, a.bands),
        (b.width, b.height, b.bands),
        "{ours_src:?}: geometry differs from the reference decoder"
    );
    let db = psnr(&a.data, &b.data, a.maxval.max(b.maxval));
    assert!(
        db >= min_db,
        "{ours_src:?}: {db:.1} dB against the reference decoder"
    );
    db
}

#[test]
fn heic_decodes_like_heif_convert() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, deep) = sources(d);
    for (name, input, args, depth) in [
        ("photo.heic", &rgb, vec!["-q", "80"], 8),
        ("alpha.heic", &rgba, vec!["-q", "80"], 8),
        ("deep.heic", &deep, vec!["-q", "80", "-b", "10"], 16),
    ] {
        let f = d.join(name);
        run(Command::new("heif-enc")
            .args(&args)
            .arg(input)
            .arg("-o")
            .arg(&f));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("heif-convert").arg(&f).arg(&reference));
        let db = compare(&f, &reference, depth, 45.0, d);
        eprintln!("{name}: {db:.1} dB vs heif-convert");
    }
}

#[test]
fn avif_decodes_like_avifdec() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, deep) = sources(d);
    for (name, input, args, depth, min) in [
        ("photo.avif", &rgb, vec!["-s", "8"], 8, 45.0),
        ("alpha.avif", &rgba, vec!["-s", "8"], 8, 45.0),
        ("deep.avif", &deep, vec!["-s", "8", "-d", "10"], 16, 45.0),
        ("twelve.avif", &deep, vec!["-s", "8", "-d", "12"], 16, 45.0),
        ("grid.avif", &rgb, vec!["-s", "8", "-g", "2x2"], 8, 45.0),
        ("lossless.avif", &rgb, vec!["-s", "8", "-l"], 8, 60.0),
    ] {
        let f = d.join(name);
        run(Command::new("avifenc").args(&args).arg(input).arg(&f));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("avifdec").arg(&f).arg(&reference));
        let db = compare(&f, &reference, depth, min, d);
        eprintln!("{name}: {db:.1} dB vs avifdec");
    }
}

#[test]
fn avif_transforms_are_applied() {
    // irot 1 = 90 degrees anticlockwise, imir 1 = left-right mirror; the reference is the
    // source PNG transformed by ImageMagick.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, _, _) = sources(d);
    for (name, args, magick) in [
        ("rot.avif", vec!["--irot", "1"], vec!["-rotate", "-90"]),
        ("mir.avif", vec!["--imir", "1"], vec!["-flop"]),
    ] {
        let f = d.join(name);
        run(Command::new("avifenc")
            .args(["-s", "8", "-l"])
            .args(&args)
            .arg(&rgb)
            .arg(&f));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("convert")
            .arg(&rgb)
            .args(&magick)
            .arg(&reference));
        let db = compare(&f, &reference, 8, 60.0, d);
        eprintln!("{name}: {db:.1} dB vs the transformed source");
    }
}

#[test]
fn jxl_decodes_like_djxl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, deep) = sources(d);
    for (name, input, args, depth, min) in [
        ("photo.jxl", &rgb, vec!["-d", "1"], 8, 45.0),
        ("alpha.jxl", &rgba, vec!["-d", "1"], 8, 45.0),
        ("lossless.jxl", &rgb, vec!["-d", "0"], 8, 60.0),
        ("deep.jxl", &deep, vec!["-d", "0"], 16, 60.0),
    ] {
        let f = d.join(name);
        run(Command::new("cjxl")
            .arg(input)
            .arg(&f)
            .args(&args)
            .arg("--quiet"));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("djxl").arg(&f).arg(&reference).arg("--quiet"));
        let db = compare(&f, &reference, depth, min, d);
        eprintln!("{name}: {db:.1} dB vs djxl");
    }
}

#[test]
fn avif_saver_output_reads_back_in_avifdec() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, _) = sources(d);
    for src in [&rgb, &rgba] {
        let out = d.join("out.avif");
        thumbfs(&["convert", "q80_avif", p(src), p(&out)]);
        let again = d.join("again.avif");
        thumbfs(&["convert", "q80_avif", p(src), p(&again)]);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&again).unwrap(),
            "AVIF output is not reproducible"
        );
        let back = d.join("back.png");
        run(Command::new("avifdec").arg(&out).arg(&back));
        let (a, b) = (magick_decode(&back, 8), magick_decode(src, 8));
        assert_eq!((a.width, a.height, a.bands), (b.width, b.height, b.bands));
        let db = psnr(&a.data, &b.data, 255);
        assert!(db > 30.0, "{src:?}: q80 AVIF at {db:.1} dB from its source");
    }
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

/// `vips thumbnail` of `src` forced to exactly `w`x`h` (PNG), for comparing paths that round
/// a side differently.
fn vips_resized(src: &Path, out: &Path, w: u32, h: u32) {
    run(Command::new("vips")
        .arg("thumbnail")
        .arg(src)
        .arg(out)
        .arg(w.to_string())
        .args(["--height", &h.to_string(), "--size", "force"]));
}

fn db8(a: &Path, b: &Path) -> f64 {
    let (x, y) = (magick_decode(a, 8), magick_decode(b, 8));
    assert_eq!((x.width, x.height), (y.width, y.height), "{a:?} vs {b:?}");
    psnr(&x.data, &y.data, 255)
}

#[test]
fn heic_thumbnail_uses_the_embedded_thumbnail_only_when_it_is_larger_than_the_target() {
    // heif-enc -t 320 stores a 320x212 thumbnail (scaled nearest-neighbour by libheif, so
    // its pixels differ clearly from a Lanczos reduction of the primary image). libvips'
    // thumbnail uses it when it is larger than the target in both directions.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = d.join("big.png");
    run(Command::new("convert")
        .arg(corpus("photos/sunset_by_Aitzol_Berasategi.jpg"))
        .args(["-resize", "800x", "-strip"])
        .arg(&big));
    let heic = d.join("photo.heic");
    run(Command::new("heif-enc")
        .args(["-q", "85", "-t", "320"])
        .arg(&big)
        .arg("-o")
        .arg(&heic));
    // The two candidate sources, decoded by libvips: the embedded thumbnail and the primary.
    let thumb = d.join("thumb.png");
    run(Command::new("vips")
        .arg("copy")
        .arg(format!("{}[thumbnail]", p(&heic)))
        .arg(&thumb));
    let primary = d.join("primary.png");
    run(Command::new("vips").arg("copy").arg(&heic).arg(&primary));
    let full = magick_decode(&primary, 8);
    assert_eq!(full.width, 800);
    assert_eq!(
        magick_decode(&thumb, 8).width,
        320,
        "heif-enc wrote no thumbnail"
    );

    for (width, uses_thumb) in [(256u32, true), (100, true), (320, false), (400, false)] {
        let ours = d.join(format!("w{width}.png"));
        thumbfs(&["convert", &format!("w{width}_png"), p(&heic), p(&ours)]);
        let again = d.join(format!("w{width}.again.png"));
        thumbfs(&["convert", &format!("w{width}_png"), p(&heic), p(&again)]);
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            std::fs::read(&again).unwrap(),
            "w{width}: output not reproducible"
        );
        let px = magick_decode(&ours, 8);
        // Our size always comes from the primary image, thumbnail or not.
        assert_eq!(px.width, width);
        let height = full.height as f64 * width as f64 / full.width as f64;
        assert_eq!(px.height, height.round() as u32);
        let via_thumb = d.join(format!("w{width}.via_thumb.png"));
        vips_resized(&thumb, &via_thumb, px.width, px.height);
        let via_primary = d.join(format!("w{width}.via_primary.png"));
        vips_resized(&primary, &via_primary, px.width, px.height);
        let (t, pr) = (db8(&ours, &via_thumb), db8(&ours, &via_primary));
        eprintln!("w{width}: {t:.1} dB vs the thumbnail path, {pr:.1} dB vs the primary path");
        let (chosen, other) = if uses_thumb { (t, pr) } else { (pr, t) };
        assert!(
            chosen >= 38.0 && chosen > other + 5.0,
            "w{width}: expected the {} path: {t:.1} dB via thumbnail, {pr:.1} dB via primary",
            if uses_thumb { "thumbnail" } else { "primary" }
        );
        // And against libvips' own thumbnail where both round the height alike.
        let vips = d.join(format!("w{width}.vips.png"));
        run(Command::new("vips")
            .arg("thumbnail")
            .arg(&heic)
            .arg(&vips)
            .arg(width.to_string()));
        let v = magick_decode(&vips, 8);
        if (v.width, v.height) == (px.width, px.height) {
            let db = psnr(&px.data, &v.data, 255);
            eprintln!("w{width}: {db:.1} dB vs vips thumbnail");
            assert!(db >= 38.0, "w{width}: {db:.1} dB against vips thumbnail");
        }
    }
}
