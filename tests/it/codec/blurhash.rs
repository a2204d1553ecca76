//! BlurHash placeholders (`blurhash` output), decoded by the reference implementation (Wolt's
//! npm `blurhash` package, installed by scripts/test.sh) and compared with an ImageMagick
//! downscale of the source to the decoded size.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::mount::Mount;
use crate::common::{corpus, p, psnr, run, thumbfs};

/// The reference decoder's module (scripts/test.sh sets the variable; the default is where it
/// installs it).
fn reference_js() -> PathBuf {
    std::env::var_os("THUMBFS_TEST_BLURHASH_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/blurhash-npm/node_modules/blurhash/dist/index.js")
        })
}

/// Width of the decoded placeholder (its height follows the source's aspect).
const DECODE_WIDTH: u32 = 32;

/// Checks that `text` is one line holding a hash the reference calls valid, and decodes it
/// with the reference `decode` to `w x h` RGBA.
fn decode(text: &[u8], w: u32, h: u32) -> Vec<u8> {
    let text = std::str::from_utf8(text).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "not one line: {text:?}"
    );
    let js = reference_js();
    assert!(js.exists(), "{} missing: run scripts/test.sh", js.display());
    let script = format!(
        "const bh = require({:?});
         const [hash, w, h] = [process.argv[1], +process.argv[2], +process.argv[3]];
         const v = bh.isBlurhashValid(hash);
         if (!v.result) throw new Error(v.errorReason);
         console.log(Array.from(bh.decode(hash, w, h)).join(' '));",
        js.display().to_string()
    );
    let out = run(Command::new("node")
        .args(["-e", &script])
        .arg(text.trim_end())
        .args([w.to_string(), h.to_string()]));
    let rgba: Vec<u8> = String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(rgba.len(), (w * h * 4) as usize);
    rgba
}

/// The source, upright, downscaled by ImageMagick to exactly `w x h` in linear light (as a
/// BlurHash averages), blurred by a Gaussian of sigma 2 px (at 32 px wide, about what 4 cosine
/// terms across can hold: the detail no BlurHash keeps is not counted against it), 8-bit sRGB.
fn magick_rgb(src: &Path, w: u32, h: u32) -> Vec<u8> {
    run(Command::new("convert")
        .arg(src)
        .args(["-auto-orient", "-colorspace", "RGB"])
        .args([
            "-resize",
            &format!("{w}x{h}!"),
            "-blur",
            "0x2",
            "-colorspace",
            "sRGB",
        ])
        .args(["-depth", "8", "rgb:-"]))
}

/// The decoded size for an upright `w x h` source.
fn decode_size(src: &Path) -> (u32, u32) {
    let out =
        run(Command::new("convert")
            .arg(src)
            .args(["-auto-orient", "-format", "%w %h", "info:"]));
    let s = String::from_utf8(out).unwrap();
    let v: Vec<f64> = s.split(' ').map(|n| n.trim().parse().unwrap()).collect();
    let h = (DECODE_WIDTH as f64 * v[1] / v[0]).round().max(1.0) as u32;
    (DECODE_WIDTH, h)
}

/// PSNR of a decoded hash's colour against `reference` RGB.
fn compare(rgba: &[u8], reference: &[u8]) -> f64 {
    let rgb: Vec<u16> = rgba
        .chunks_exact(4)
        .flat_map(|px| px[..3].iter().map(|&s| s as u16))
        .collect();
    let reference: Vec<u16> = reference.iter().map(|&s| s as u16).collect();
    assert_eq!(rgb.len(), reference.len());
    psnr(&rgb, &reference, 255)
}

/// [`compare`] of a hash of `src` against `other`'s blurred downscale (`src` itself for a
/// score).
fn score(text: &[u8], src: &Path, other: &Path) -> f64 {
    let (w, h) = decode_size(src);
    compare(&decode(text, w, h), &magick_rgb(other, w, h))
}

/// Measured: the photos' hashes score 17.1-19.0 dB against their own blurred downscales and
/// 10.3-13.1 dB against another photo's; 15.5 dB sits between.
const MIN_DB: f64 = 15.5;

/// The reference encoder's hash of the pixels thumbfs hashes (its own 100x100 fit, the plan
/// the `blurhash` saver's fit box gives), with the same component counts.
fn reference_encode(src: &Path, dir: &Path) -> String {
    let fitted = dir.join("fitted.ppm");
    thumbfs(&["convert", "100x100_ppm", p(src), p(&fitted)]);
    let script = format!(
        "const bh = require({:?});
         const d = require('fs').readFileSync(process.argv[1]);
         const m = d.toString('latin1').match(/^P6\\s+(\\d+)\\s+(\\d+)\\s+255\\s/);
         const [w, h, at] = [+m[1], +m[2], m[0].length];
         const px = new Uint8ClampedArray(w * h * 4);
         for (let i = 0; i < w * h; i++) {{
           px.set(d.subarray(at + 3 * i, at + 3 * i + 3), 4 * i);
           px[4 * i + 3] = 255;
         }}
         const [cx, cy] = w > h ? [4, 3] : w < h ? [3, 4] : [4, 4];
         console.log(bh.encode(px, w, h, cx, cy));",
        reference_js().display().to_string()
    );
    let out = run(Command::new("node").args(["-e", &script]).arg(&fitted));
    String::from_utf8(out).unwrap().trim_end().to_string()
}

/// The value of base83 digits.
fn base83(digits: &str) -> u32 {
    const CHARS: &[u8] =
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
    digits.bytes().fold(0, |n, c| {
        n * 83 + CHARS.iter().position(|&x| x == c).unwrap() as u32
    })
}

/// Our hash against the reference encoder's: every character but the DC colour's equal, and
/// the DC colour (8 bits per channel) within one level: the crate rounds linear-to-sRGB after
/// adding 0.5 (so half the values land one level up), the reference rounds once.
fn assert_encodes_as_the_reference(ours: &str, reference: &str) {
    assert_eq!(ours.len(), reference.len(), "{ours} vs {reference}");
    assert_eq!(ours[..2], reference[..2], "{ours} vs {reference}");
    assert_eq!(ours[6..], reference[6..], "{ours} vs {reference}");
    let (a, b) = (base83(&ours[2..6]), base83(&reference[2..6]));
    for shift in [16, 8, 0] {
        let (x, y) = ((a >> shift) & 255, (b >> shift) & 255);
        assert!(
            x.abs_diff(y) <= 1,
            "DC {a:06x} vs {b:06x}: {ours} vs {reference}"
        );
    }
}

#[test]
fn photos_through_the_cli_match_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let seeding = corpus("photos/seeding_by_Clements_Engelhardt.jpg");
    let sunset = corpus("photos/sunset_by_Aitzol_Berasategi.jpg");
    for (src, other) in [(&seeding, &sunset), (&sunset, &seeding)] {
        let text = thumbfs(&["convert", "blurhash", p(src), "-"]);
        let line = std::str::from_utf8(&text).unwrap().trim_end();
        // Landscape: 4x3 components, 28 characters, the size flag (4-1) + (3-1)*9 = 21 'L'.
        assert_eq!((line.len(), &line[..1]), (28, "L"), "{line}");
        assert_encodes_as_the_reference(line, &reference_encode(src, dir.path()));
        let db = score(&text, src, src);
        let other_db = score(&text, src, other);
        eprintln!(
            "{}: {line} {db:.1} dB; against the other photo {other_db:.1} dB",
            src.display()
        );
        assert!(db >= MIN_DB, "{db:.1} dB");
        assert!(other_db < MIN_DB, "{other_db:.1} dB against another photo");
        // Deterministic, and a size beyond the 100x100 the hash is computed on is capped.
        assert_eq!(thumbfs(&["convert", "w800_blurhash", p(src), "-"]), text);
    }
}

#[test]
fn a_portrait_photo_is_hashed_upright_with_3x4_terms() {
    // Stored landscape with EXIF orientation 6: the hash is of the upright (portrait) photo.
    let dir = tempfile::tempdir().unwrap();
    let src = corpus("exif-orientation/Portrait_6.jpg");
    let text = thumbfs(&["convert", "blurhash", p(&src), "-"]);
    let line = std::str::from_utf8(&text).unwrap().trim_end();
    // 3x4 components: the size flag (3-1) + (4-1)*9 = 29 is base83 'T'.
    assert_eq!(&line[..1], "T", "{line}");
    assert_encodes_as_the_reference(line, &reference_encode(&src, dir.path()));
    let db = score(&text, &src, &src);
    eprintln!("portrait: {line} {db:.1} dB");
    assert!(db >= MIN_DB, "{db:.1} dB");
}

#[test]
fn mount_serves_the_cli_bytes() {
    let src = tempfile::tempdir().unwrap();
    let photo = corpus("photos/sunset_by_Aitzol_Berasategi.jpg");
    std::fs::copy(&photo, src.path().join("photo.jpg")).unwrap();
    let m = Mount::new(src.path(), &[]);
    let names: Vec<String> = std::fs::read_dir(m.path("blurhash"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["photo.blurhash"]);
    let served = std::fs::read(m.path("blurhash/photo.blurhash")).unwrap();
    assert_eq!(served, thumbfs(&["convert", "blurhash", p(&photo), "-"]));
    assert!(score(&served, &photo, &photo) >= MIN_DB);
}
