//! Colour management (issue 26): wide-gamut sources are converted to sRGB where their profile is
//! dropped (`strip`, formats without profiles) or on `srgb`, and kept otherwise; EXIF-only
//! Adobe RGB (R03) sources are treated as Adobe RGB. Checked against libvips' own conversion
//! (`vips thumbnail --export-profile srgb`, lcms underneath), through the CLI and a mount.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::mount::Mount;
use crate::common::*;

/// Debian's icc-profiles-free Adobe RGB (1998) compatible profile (scripts/test.sh installs it).
const ADOBE: &str = "/usr/share/color/icc/compatibleWithAdobeRGB1998.icc";

fn vips(args: &[&str]) {
    run(Command::new("vips").args(args));
}

/// A corpus photo at 1600 px, lossless, sRGB: the pixels every fixture starts from.
fn base(dir: &Path) -> PathBuf {
    let out = dir.join("base.png");
    let src = corpus("photos/seeding_by_Clements_Engelhardt.jpg");
    vips(&["thumbnail", p(&src), p(&out), "1600"]);
    out
}

/// `base` converted to Display P3 (libvips' built-in `p3` profile, embedded) as `name`.
fn p3(dir: &Path, base: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let target = format!("{}[Q=95]", p(&out));
    vips(&[
        "icc_transform",
        p(base),
        &target,
        "p3",
        "--input-profile",
        "srgb",
    ]);
    out
}

/// `base` converted to Adobe RGB (1998), profile embedded.
fn adobe(dir: &Path, base: &Path) -> PathBuf {
    let out = dir.join("adobe.jpg");
    let target = format!("{}[Q=95]", p(&out));
    vips(&[
        "icc_transform",
        p(base),
        &target,
        ADOBE,
        "--input-profile",
        "srgb",
    ]);
    out
}

/// Adobe RGB numbers with no profile, marked only in EXIF as a camera does (ColorSpace
/// uncalibrated, InteroperabilityIndex R03).
fn r03(dir: &Path, adobe: &Path) -> PathBuf {
    let out = dir.join("r03.jpg");
    vips(&["copy", p(adobe), &format!("{}[Q=95,strip]", p(&out))]);
    exiftool(
        &[
            "-q",
            "-overwrite_original",
            "-n",
            "-EXIF:ColorSpace=65535",
            "-InteropIndex=R03",
        ],
        &out,
    );
    assert!(icc_of(&out).is_empty());
    out
}

/// libvips' 256-px thumbnail of `src` in sRGB (`extra`: an import profile).
fn reference(src: &Path, extra: &[&str]) -> Pixels {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ref.png");
    let mut args = vec!["thumbnail", p(src), p(&out), "256"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--export-profile", "srgb"]);
    vips(&args);
    vips_decode(&out)
}

/// The embedded ICC profile's bytes (empty without one).
fn icc_of(path: &Path) -> Vec<u8> {
    exiftool(&["-b", "-ICC_Profile"], path)
}

fn description(path: &Path) -> String {
    let out = exiftool(&["-s3", "-ProfileDescription"], path);
    String::from_utf8_lossy(&out).trim().to_string()
}

fn db(ours: &Path, reference: &Pixels) -> f64 {
    let ours = vips_decode(ours);
    assert_eq!(
        (ours.width, ours.height, ours.bands),
        (reference.width, reference.height, reference.bands)
    );
    psnr(&ours.data, &reference.data, 255)
}

fn convert(spec: &str, src: &Path, out: &Path) {
    thumbfs(&["convert", spec, p(src), p(out)]);
}

#[test]
fn p3_strip_srgb_and_profileless_formats_match_libvips_in_srgb() {
    let d = tempfile::tempdir().unwrap();
    let base = base(d.path());
    let src = p3(d.path(), &base, "p3.jpg");
    let reference = reference(&src, &[]);
    let o = |n: &str| d.path().join(n);

    // Kept as P3 (the default): the numbers differ from sRGB ones.
    convert("w256_png", &src, &o("keep.png"));
    let unconverted = db(&o("keep.png"), &reference);
    assert!(
        unconverted < 38.0,
        "P3 numbers as sRGB: {unconverted:.1} dB"
    );

    for (spec, out, tag) in [
        ("w256_strip_png", "strip.png", ""),
        ("w256_srgb_png", "srgb.png", "sRGB IEC61966-2.1"),
        ("w256_srgb_strip_png", "srgb_strip.png", ""),
        ("w256_ppm", "plain.ppm", ""),
        ("w256_srgb_q95", "srgb.jpg", "sRGB IEC61966-2.1"),
    ] {
        convert(spec, &src, &o(out));
        let got = db(&o(out), &reference);
        assert!(
            got >= 40.0,
            "{spec}: {got:.1} dB from vips --export-profile srgb"
        );
        if !out.ends_with(".ppm") {
            assert_eq!(description(&o(out)), tag, "{spec}");
        }
    }
}

#[test]
fn the_default_keeps_the_profile_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let base = base(d.path());
    let src = p3(d.path(), &base, "p3.jpg");
    let icc = icc_of(&src);
    assert!(icc.len() > 128);
    for (spec, out) in [
        ("w256", "k.jpg"),
        ("w256_png", "k.png"),
        ("w256_webp", "k.webp"),
    ] {
        let out = d.path().join(out);
        convert(spec, &src, &out);
        assert_eq!(icc_of(&out), icc, "{spec}");
    }
}

#[test]
fn sixteen_bit_alpha_converts_colour_and_leaves_alpha() {
    let d = tempfile::tempdir().unwrap();
    let o = |n: &str| d.path().join(n);
    let base = base(d.path());
    // 16-bit P3 RGB, and a varying 16-bit alpha (the green band).
    vips(&[
        "icc_transform",
        p(&base),
        p(&o("rgb.v")),
        "p3",
        "--input-profile",
        "srgb",
        "--depth",
        "16",
    ]);
    vips(&["extract_band", p(&base), p(&o("g.v")), "1"]);
    vips(&["linear", p(&o("g.v")), p(&o("a.v")), "257", "0"]);
    vips(&["cast", p(&o("a.v")), p(&o("a16.v")), "ushort"]);
    vips(&[
        "bandjoin",
        &format!("{} {}", p(&o("rgb.v")), p(&o("a16.v"))),
        p(&o("p3.png")),
    ]);
    let src = o("p3.png");
    convert("w256_strip_png", &src, &o("out.png"));
    let ours = magick_decode(&o("out.png"), 16);
    assert_eq!((ours.bands, ours.maxval), (4, 65535));
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("ref.png");
    vips(&[
        "thumbnail",
        p(&src),
        p(&r),
        "256",
        "--export-profile",
        "srgb",
    ]);
    let theirs = magick_decode(&r, 16);
    assert_eq!((theirs.width, theirs.height), (ours.width, ours.height));
    let band = |px: &Pixels, b: usize| -> Vec<u16> {
        px.data.iter().skip(b).step_by(4).copied().collect()
    };
    let colour = |px: &Pixels| -> Vec<u16> {
        px.data
            .chunks_exact(4)
            .flat_map(|c| c[..3].to_vec())
            .collect()
    };
    let got = psnr(&colour(&ours), &colour(&theirs), 65535);
    assert!(got >= 40.0, "16-bit colour: {got:.1} dB");
    // Alpha went through the resize only: the same as libvips' resized alpha.
    let a = psnr(&band(&ours, 3), &band(&theirs, 3), 65535);
    assert!(a >= 40.0, "alpha: {a:.1} dB");
    // And unconverted, the colour would be further off.
    convert("w256_png", &src, &o("keep.png"));
    let kept = magick_decode(&o("keep.png"), 16);
    assert!(psnr(&colour(&kept), &colour(&theirs), 65535) < 38.0);
}

#[test]
fn adobe_rgb_profiles_and_exif_r03_convert_like_libvips() {
    let d = tempfile::tempdir().unwrap();
    let o = |n: &str| d.path().join(n);
    let base = base(d.path());
    let adobe = adobe(d.path(), &base);
    let reference = reference(&adobe, &[]);
    convert("w256_strip_png", &adobe, &o("a.png"));
    let got = db(&o("a.png"), &reference);
    assert!(got >= 40.0, "Adobe RGB profile, strip: {got:.1} dB");

    // EXIF-only Adobe RGB: libvips told the profile by hand is the reference.
    let r03 = r03(d.path(), &adobe);
    let reference = reference_r03(&r03);
    for spec in ["w256_strip_png", "w256_ppm", "w256_srgb_png"] {
        let out = o(&format!("r.{}", spec.rsplit('_').next().unwrap()));
        convert(spec, &r03, &out);
        let got = db(&out, &reference);
        assert!(got >= 40.0, "R03 {spec}: {got:.1} dB");
    }
    // Where a profile can go, the pixels stay Adobe RGB and an Adobe RGB profile says so:
    // libvips converting with it (lcms reading moxcms' profile) agrees.
    convert("w256_png", &r03, &o("tagged.png"));
    assert_eq!(description(&o("tagged.png")), "Adobe RGB 1998");
    assert!(db(&o("tagged.png"), &reference) < 38.0);
    vips(&[
        "icc_transform",
        p(&o("tagged.png")),
        p(&o("tagged_srgb.png")),
        "srgb",
        "--embedded",
    ]);
    let got = db(&o("tagged_srgb.png"), &reference);
    assert!(got >= 40.0, "tagged R03 read by libvips: {got:.1} dB");
}

fn reference_r03(src: &Path) -> Pixels {
    reference(src, &["--import-profile", ADOBE])
}

#[test]
fn a_mount_serves_converted_and_tagged_outputs() {
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let base = base(work.path());
    let p3 = p3(src.path(), &base, "p3.jpg");
    let adobe = adobe(work.path(), &base);
    let r03 = r03(src.path(), &adobe);
    let p3_ref = reference(&p3, &[]);
    let r03_ref = reference_r03(&r03);
    let m = Mount::new(src.path(), &[]);
    let copy = |rel: &str| {
        let out = work.path().join(rel.replace('/', "-"));
        fs::write(&out, fs::read(m.path(rel)).unwrap()).unwrap();
        out
    };
    for (rel, reference) in [
        ("w256_strip_png/p3.png", &p3_ref),
        ("w256_ppm/p3.ppm", &p3_ref),
        ("w256_srgb_png/r03.png", &r03_ref),
        ("w256_ppm/r03.ppm", &r03_ref),
    ] {
        let got = db(&copy(rel), reference);
        assert!(got >= 40.0, "{rel}: {got:.1} dB");
    }
    assert_eq!(icc_of(&copy("w256/p3.jpg")), icc_of(&p3));
    assert_eq!(description(&copy("w256/r03.jpg")), "Adobe RGB 1998");
}

#[test]
fn grey_is_taken_from_srgb_values_and_carries_no_rgb_profile() {
    let d = tempfile::tempdir().unwrap();
    let o = |n: &str| d.path().join(n);
    let base = base(d.path());
    let src = p3(d.path(), &base, "p3.jpg");
    convert("w256_grey_png", &src, &o("grey.png"));
    assert!(icc_of(&o("grey.png")).is_empty());
    // The same as greying the converted thumbnail: resize, convert, grey.
    convert("w256_strip_png", &src, &o("srgb.png"));
    convert("grey_png", &o("srgb.png"), &o("regrey.png"));
    assert_eq!(vips_decode(&o("grey.png")), vips_decode(&o("regrey.png")));
}
