//! 16-bit and float alpha: round trips through PNG and TIFF keep every 16-bit sample; TIFF
//! alpha follows ExtraSamples (associated / unassociated / unspecified) as libvips reads it;
//! float TIFF colour is linear light (libvips' scRGB) and comes out through the sRGB curve
//! with alpha scaled linearly, as ImageMagick converts linear RGB to sRGB.
//! TIFF associated alpha is un-premultiplied as libvips does.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A 240x180 RGBA photo with true 16-bit samples: colour resized in 16 bits, alpha a
/// diagonal ramp from 5% to 100% (no pixel fully transparent, so colour is defined).
fn rgba16(d: &Path) -> PathBuf {
    let out = d.join("rgba16.png");
    run(Command::new("convert")
        .arg(corpus("exif-orientation/Landscape_1.jpg"))
        .args([
            "-depth",
            "16",
            "-resize",
            "240x",
            "(",
            "+clone",
            "-fx",
            "0.05+0.95*(i/w)*(j/h)",
            ")",
            "-compose",
            "copy_opacity",
            "-composite",
            "-strip",
            "-define",
            "png:bit-depth=16",
        ])
        .arg(&out));
    let px = magick_decode(&out, 16);
    assert_eq!((px.bands, px.maxval), (4, 65535));
    assert!(
        px.data.iter().any(|&v| v % 257 != 0),
        "the test image has no samples beyond 8 bits"
    );
    out
}

/// A TIFF of `src` written by ImageMagick with `-define tiff:alpha=<kind>` and more options.
fn magick_tiff(src: &Path, out: &Path, kind: &str, extra: &[&str]) {
    run(Command::new("convert")
        .arg(src)
        .args(extra)
        .args(["-define", &format!("tiff:alpha={kind}")])
        .arg(out));
}

#[test]
fn sixteen_bit_rgba_round_trips_through_png_and_tiff_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = rgba16(d);
    let truth = magick_decode(&src, 16);
    let unassoc = d.join("unassoc16.tif");
    magick_tiff(&src, &unassoc, "unassociated", &[]);
    for input in [&src, &unassoc] {
        let name = input.file_name().unwrap().to_str().unwrap();
        for fmt in ["png", "tif"] {
            let out = d.join(format!("{name}.{fmt}"));
            thumbfs(&["convert", fmt, p(input), p(&out)]);
            magick_reads_cleanly(&out);
            let got = magick_decode(&out, 16);
            assert_eq!((got.width, got.height, got.bands), (240, 180, 4), "{name}");
            assert!(got.data == truth.data, "{name} -> {fmt}: samples changed");
            // And back into the other format.
            let back = d.join(format!("{name}.{fmt}.back.png"));
            thumbfs(&["convert", "png", p(&out), p(&back)]);
            assert!(
                magick_decode(&back, 16).data == truth.data,
                "{name} -> {fmt} -> png"
            );
        }
    }
}

#[test]
fn sixteen_bit_tiff_alpha_follows_extrasamples_like_vips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = rgba16(d);
    let truth = magick_decode(&src, 16);
    for kind in ["associated", "unassociated", "unspecified"] {
        let tif = d.join(format!("{kind}.tif"));
        magick_tiff(&src, &tif, kind, &[]);
        let tag = String::from_utf8(exiftool(&["-s3", "-n", "-ExtraSamples"], &tif)).unwrap();
        let want = match kind {
            "associated" => "1",
            "unassociated" => "2",
            _ => "0",
        };
        assert_eq!(tag.trim(), want, "{kind}: ExtraSamples");
        let ours = d.join(format!("{kind}.ours.png"));
        thumbfs(&["convert", "png", p(&tif), p(&ours)]);
        let vips = d.join(format!("{kind}.vips.png"));
        run(Command::new("vips").arg("copy").arg(&tif).arg(&vips));
        let (a, b) = (magick_decode(&ours, 16), magick_decode(&vips, 16));
        assert_eq!((a.width, a.height, a.bands), (b.width, b.height, b.bands));
        let db = psnr(&a.data, &b.data, 65535);
        assert!(db >= 60.0, "{kind}: {db:.1} dB against vips");
        // Alpha itself is untouched, and colour is back to the straight original (exactly
        // when stored straight; premultiplying to 16 bits and back loses a little).
        let alpha =
            |p: &Pixels| -> Vec<u16> { p.data.iter().skip(3).step_by(4).copied().collect() };
        assert!(alpha(&a) == alpha(&truth), "{kind}: alpha changed");
        let vs_truth = psnr(&a.data, &truth.data, 65535);
        let floor = if kind == "associated" {
            50.0
        } else {
            f64::INFINITY
        };
        assert!(
            vs_truth >= floor,
            "{kind}: {vs_truth:.1} dB against the original"
        );
        eprintln!("{kind}: {db:.1} dB vs vips, {vs_truth:.1} dB vs the original");
    }
}

#[test]
fn float_tiff_alpha_is_linear_and_unpremultiplied() {
    // libvips 8.14 (the CLI here) mis-scales float alpha (saves it as 0, and unpremultiplies
    // float colour by a 0..255 alpha); libvips 8.18 reads these files as we do (scRGB, alpha
    // 0..1, straight colour). The anchor is ImageMagick: told the samples are linear RGB, it
    // converts them to sRGB through the curve and leaves alpha linear.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = rgba16(d);
    let truth = magick_decode(&src, 16);
    for kind in ["associated", "unassociated"] {
        let tif = d.join(format!("float_{kind}.tif"));
        magick_tiff(
            &src,
            &tif,
            kind,
            &["-define", "quantum:format=floating-point", "-depth", "32"],
        );
        let info = String::from_utf8(thumbfs(&["info", p(&tif)])).unwrap();
        assert!(info.contains("bands=4 depth=32"), "{kind}: {info}");
        let reference = d.join(format!("float_{kind}.ref.png"));
        run(Command::new("convert")
            .arg(&tif)
            .args([
                "-set",
                "colorspace",
                "RGB",
                "-colorspace",
                "sRGB",
                "-depth",
                "16",
            ])
            .arg(&reference));
        let want = magick_decode(&reference, 16);
        for fmt in ["png", "tif"] {
            let ours = d.join(format!("float_{kind}.ours.{fmt}"));
            thumbfs(&["convert", fmt, p(&tif), p(&ours)]);
            magick_reads_cleanly(&ours);
            let got = magick_decode(&ours, 16);
            assert_eq!((got.width, got.height, got.bands), (240, 180, 4));
            let db = psnr(&got.data, &want.data, 65535);
            assert!(
                db >= 60.0,
                "float {kind} -> {fmt}: {db:.1} dB against ImageMagick"
            );
            // Float alpha (k/65535 exactly) comes back as the same 16-bit alpha.
            let alpha =
                |p: &Pixels| -> Vec<u16> { p.data.iter().skip(3).step_by(4).copied().collect() };
            let worst = alpha(&got)
                .iter()
                .zip(alpha(&truth))
                .map(|(&x, y)| x.abs_diff(y))
                .max()
                .unwrap();
            assert!(worst <= 1, "float {kind} -> {fmt}: alpha off by {worst}");
            eprintln!("float {kind} -> {fmt}: {db:.1} dB vs ImageMagick, alpha within {worst}");
        }
    }
}

/// 8-bit RGBA samples of a PNG as decoded by ImageMagick.
fn rgba8(path: &Path) -> Pixels {
    parse_pnm(&run(Command::new("convert")
        .arg(path)
        .args(["-alpha", "on", "-depth", "8", "pam:-"])))
}

#[test]
fn tiff_associated_alpha_is_unpremultiplied_as_vips_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A photo with alpha rising left to right (0 at the left edge).
    let rgba = d.join("rgba.png");
    run(Command::new("convert")
        .arg(corpus("exif-orientation/Landscape_1.jpg"))
        .args([
            "-resize",
            "240x",
            "(",
            "+clone",
            "-fx",
            "i/w",
            ")",
            "-compose",
            "copy_opacity",
            "-composite",
        ])
        .arg(&rgba));
    for (kind, depth) in [("associated", 8), ("unassociated", 8), ("associated", 16)] {
        let tif = d.join(format!("{kind}{depth}.tif"));
        run(Command::new("convert")
            .arg(&rgba)
            .args(["-depth", &depth.to_string()])
            .args(["-define", &format!("tiff:alpha={kind}")])
            .arg(&tif));
        let tag = String::from_utf8(exiftool(&["-s3", "-ExtraSamples"], &tif)).unwrap();
        assert!(
            tag.trim().eq_ignore_ascii_case(&format!("{kind} alpha")),
            "{tif:?}: ExtraSamples {tag}"
        );
        let ours = d.join(format!("ours_{kind}{depth}.png"));
        thumbfs(&["convert", "png", p(&tif), p(&ours)]);
        let reference = d.join(format!("vips_{kind}{depth}.png"));
        run(Command::new("vips").arg("copy").arg(&tif).arg(&reference));
        let (a, b) = (rgba8(&ours), rgba8(&reference));
        assert_eq!((a.width, a.height, a.bands), (b.width, b.height, 4));
        let db = psnr(&a.data, &b.data, 255);
        assert!(db > 50.0, "{tif:?}: {db:.1} dB against vips");
        // Against the straight-alpha original, where alpha leaves enough precision.
        let orig = rgba8(&rgba);
        let pick = |p: &Pixels| -> Vec<u16> {
            p.data
                .chunks_exact(4)
                .zip(orig.data.chunks_exact(4))
                .filter(|(_, o)| o[3] >= 128)
                .flat_map(|(px, _)| px.iter().copied())
                .collect()
        };
        let db = psnr(&pick(&a), &pick(&orig), 255);
        assert!(db > 45.0, "{tif:?}: {db:.1} dB against the original");
    }
}
