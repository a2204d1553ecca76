//! JPEG XL thumbnails from the 1/8 LF image (crates/codec/src/jxl/lf.rs) against the same
//! thumbnails from the whole decoded image (`exact`), on files cjxl makes at test time from
//! corpus photos.
//!
//! The bar is 40 dB between the two w256 thumbnails, the one issue 24 sets for thumbnails
//! made from embedded previews: thumbfs' and libvips' own w256 thumbnails of these photos
//! are 40.8-41.1 dB apart (bench/REPORT.md). What differs is where the average is taken
//! (the LF image holds block means in XYB, the full path averages sRGB samples) and the
//! restoration filters, which only touch detail far below a 1/8 sample.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::codec::*;
use common::*;
use thumbfs::codec::LoadOptions;
use thumbfs::io::target::MemoryTarget;
use thumbfs::{RenderOptions, Source, Spec};

/// `src` encoded by cjxl with `args`.
fn cjxl(src: &Path, dst: PathBuf, args: &[&str]) -> PathBuf {
    run(Command::new("cjxl")
        .arg(src)
        .arg(&dst)
        .args(args)
        .arg("--quiet"));
    dst
}

/// A corpus photo resized to `size` (`WxH`), as PNG at `depth` bits.
fn photo_png(d: &Path, photo: &str, size: &str, depth: u32) -> PathBuf {
    let out = d.join(format!("{photo}-{size}-{depth}.png"));
    run(Command::new("convert")
        .arg(corpus(&format!("photos/{photo}")))
        .args(["-resize", &format!("{size}!"), "-strip"])
        .args(["-depth", &depth.to_string()])
        .arg(&out));
    out
}

/// What the loader gives a thumbnail's request to shrink by 8: (width, height, applied).
fn shrink8(path: &Path, exact: bool) -> (u32, u32, u32) {
    let opts = LoadOptions {
        shrink: 8,
        fit: Some((1, 1)),
        exact,
        ..Default::default()
    };
    let (img, applied) = load_with(path, opts).unwrap();
    (img.header.width, img.header.height, applied)
}

fn render(path: &Path, spec: &str) -> Vec<u8> {
    let spec: Spec = spec.parse().unwrap();
    let mut target = MemoryTarget::new();
    thumbfs::render(
        Source::file(path).unwrap(),
        &spec,
        &mut target,
        &RenderOptions::default(),
    )
    .unwrap();
    target.take()
}

/// PSNR between `spec` and `spec` + `exact` (PNG output), decoded by ImageMagick at `depth`.
fn lf_vs_exact(path: &Path, size: &str, depth: u32) -> f64 {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("lf.png"), d.path().join("exact.png"));
    std::fs::write(&a, render(path, &format!("{size}_png"))).unwrap();
    std::fs::write(&b, render(path, &format!("{size}_exact_png"))).unwrap();
    let (a, b) = (magick_decode(&a, depth), magick_decode(&b, depth));
    assert_eq!((a.width, a.height), (b.width, b.height), "{path:?}");
    psnr(&a.data, &b.data, a.maxval)
}

/// VarDCT files (sizes that are and are not multiples of 8, two distances, 8 and 16 bits):
/// the loader hands back the 1/8 image for a thumbnail, the whole one with `exact`, and the
/// two thumbnails are within 40 dB: w256 of the full-size photo as bench/REPORT.md makes it,
/// and the same 16x or more reduction of smaller copies (the planner shrinks by 8 before
/// the resize only where that leaves at least 2x for Lanczos3).
#[test]
fn lf_thumbnails_match_the_full_decode() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    const SUNSET: &str = "sunset_by_Aitzol_Berasategi.jpg";
    const SEEDING: &str = "seeding_by_Clements_Engelhardt.jpg";
    for (photo, size, depth, distance, spec) in [
        (SUNSET, "4272x2848", 8, "1", "w256"),
        (SEEDING, "1999x1125", 8, "2.5", "w120"),
        (SUNSET, "1203x2001", 16, "1", "h120"),
    ] {
        let png = photo_png(d, photo, size, depth);
        let f = cjxl(&png, d.join(format!("{size}.jxl")), &["-d", distance]);
        let (w, h) = size.split_once('x').unwrap();
        let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
        assert_eq!(
            shrink8(&f, false),
            (w.div_ceil(8), h.div_ceil(8), 8),
            "{f:?}"
        );
        assert_eq!(shrink8(&f, true), (w, h, 1), "{f:?}: exact");
        let db = lf_vs_exact(&f, spec, depth);
        eprintln!("{photo} {size} {depth}-bit -d {distance} {spec}: {db:.1} dB");
        assert!(
            db >= 40.0,
            "{f:?}: LF thumbnail {db:.1} dB from the full one"
        );
    }
}

/// Lossless (modular), alpha, a request below 8x and a plain shrink (no resize to follow)
/// take the whole image, so they give exactly `exact`'s output.
#[test]
fn lf_falls_back_to_the_full_decode() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, _) = sources(d);
    let lossless = cjxl(&rgb, d.join("lossless.jxl"), &["-d", "0"]);
    let alpha = cjxl(&rgba, d.join("alpha.jxl"), &["-d", "1"]);
    let lossy = cjxl(&rgb, d.join("lossy.jxl"), &["-d", "1"]);
    for f in [&lossless, &alpha] {
        assert_eq!(shrink8(f, false), (480, 320, 1), "{f:?}");
        assert_eq!(render(f, "w32_png"), render(f, "w32_exact_png"), "{f:?}");
    }
    assert_eq!(shrink8(&lossy, false), (60, 40, 8));
    let opts = LoadOptions {
        shrink: 8,
        ..Default::default()
    };
    assert_eq!(load_with(&lossy, opts).unwrap().1, 1, "no resize follows");
    // 480 / 128 leaves a box shrink of 1: below 8x, the whole image.
    assert_eq!(render(&lossy, "w128_png"), render(&lossy, "w128_exact_png"));
}

/// The codestream's orientation, from the EXIF of the corpus' Landscape_N photos (600x450
/// upright): the 1/8 image is oriented as the full render is. A flip that would bring the
/// partial last row or column (450 is not a multiple of 8) to the top or left decodes whole.
#[test]
fn lf_thumbnails_are_oriented() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for n in 1..=8u32 {
        let jpg = corpus(&format!("exif-orientation/Landscape_{n}.jpg"));
        let f = cjxl(
            &jpg,
            d.join(format!("{n}.jxl")),
            &["-d", "1", "--lossless_jpeg=0"],
        );
        let lf = matches!(n, 1 | 2 | 5 | 6);
        let want = if lf { (75, 57, 8) } else { (600, 450, 1) };
        assert_eq!(shrink8(&f, false), want, "orientation {n}");
        let db = lf_vs_exact(&f, "w32", 8);
        eprintln!("orientation {n}: {db:.1} dB");
        assert!(
            db >= 40.0,
            "orientation {n}: {db:.1} dB from the full decode"
        );
    }
}
