//! ThumbHash placeholders (`thumbhash` output), decoded by the reference implementation (the
//! npm `thumbhash` package, installed by scripts/test.sh) and compared with an ImageMagick
//! downscale of the source to the decoded size.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::mount::Mount;
use crate::common::{corpus, p, psnr, run, thumbfs};

/// The reference decoder's module (scripts/test.sh sets the variable; the default is where it
/// installs it).
fn reference_js() -> PathBuf {
    std::env::var_os("THUMBFS_TEST_THUMBHASH_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/thumbhash-npm/node_modules/thumbhash/thumbhash.js")
        })
}

/// A hash as the reference decodes it: size, RGBA rows and its average colour (0..1).
struct Decoded {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
    average: [f64; 4],
}

/// Decodes one line of base64 with the reference `thumbHashToRGBA` and
/// `thumbHashToAverageRGBA`.
fn decode(text: &[u8]) -> Decoded {
    let text = std::str::from_utf8(text).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "not one line: {text:?}"
    );
    let js = reference_js();
    assert!(js.exists(), "{} missing: run scripts/test.sh", js.display());
    let script = format!(
        "import * as th from {:?};
         const hash = Buffer.from(process.argv[1], 'base64');
         const {{ w, h, rgba }} = th.thumbHashToRGBA(hash);
         const a = th.thumbHashToAverageRGBA(hash);
         console.log([w, h, a.r, a.g, a.b, a.a].join(' '));
         console.log(Array.from(rgba).join(' '));",
        format!("file://{}", js.display())
    );
    let out = run(Command::new("node")
        .args(["--input-type=module", "-e", &script])
        .arg(text.trim_end()));
    let out = String::from_utf8(out).unwrap();
    let mut lines = out.lines();
    let head: Vec<f64> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    let rgba = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    Decoded {
        width: head[0] as u32,
        height: head[1] as u32,
        rgba,
        average: [head[2], head[3], head[4], head[5]],
    }
}

/// The source downscaled by ImageMagick to `w`x`h` (exactly), 8-bit RGBA.
fn magick_rgba(src: &Path, w: u32, h: u32) -> Vec<u8> {
    run(Command::new("convert")
        .arg(src)
        .args(["-auto-orient", "-alpha", "on"])
        .args(["-resize", &format!("{w}x{h}!"), "-depth", "8", "rgba:-"]))
}

/// Channel `c` of RGBA bytes, widened.
fn channel(rgba: &[u8], c: usize) -> Vec<u16> {
    rgba.chunks_exact(4).map(|px| px[c] as u16).collect()
}

/// Colour premultiplied by alpha (what a placeholder shows over any background), widened.
fn premultiplied(rgba: &[u8]) -> Vec<u16> {
    rgba.chunks_exact(4)
        .flat_map(|px| {
            px[..3]
                .iter()
                .map(move |&s| (s as u32 * px[3] as u32 / 255) as u16)
        })
        .collect()
}

/// The alpha-weighted mean of each colour channel and the mean alpha, 0..255 (how a ThumbHash
/// averages).
fn mean(rgba: &[u8]) -> [f64; 4] {
    let (mut sum, mut weight) = ([0.0f64; 4], 0.0);
    for px in rgba.chunks_exact(4) {
        let a = px[3] as f64 / 255.0;
        for c in 0..3 {
            sum[c] += px[c] as f64 * a;
        }
        sum[3] += px[3] as f64;
        weight += a;
    }
    let n = (rgba.len() / 4) as f64;
    [
        sum[0] / weight,
        sum[1] / weight,
        sum[2] / weight,
        sum[3] / n,
    ]
}

/// PSNR of the premultiplied colour of `d` against `reference`, and the largest difference of
/// a channel's mean (0..255) between the hash's average and `reference`'s.
fn compare(d: &Decoded, reference: &[u8]) -> (f64, f64) {
    assert_eq!(reference.len(), d.rgba.len());
    let db = psnr(&premultiplied(&d.rgba), &premultiplied(reference), 255);
    let m = mean(reference);
    let worst = (0..4)
        .map(|c| (d.average[c] * 255.0 - m[c]).abs())
        .fold(0.0, f64::max);
    (db, worst)
}

/// [`compare`] against the ImageMagick downscale of `src`.
fn score(src: &Path, d: &Decoded) -> (f64, f64) {
    compare(d, &magick_rgba(src, d.width, d.height))
}

/// A ThumbHash keeps a few low-frequency DCT terms, quantised to 4-6 bits: photos come back
/// as soft gradients. Measured: the two corpus photos score 18.8 and 20.0 dB against their own
/// downscale, 10.3 and 11.2 dB against each other's; 16 dB sits between, with margin.
const MIN_DB: f64 = 16.0;
/// The average (the DC terms: L in steps of 1/63, P and Q in steps of 2/63 of full range, so
/// up to 4 levels from quantisation alone); measured 3.9-4.7 levels on the photos.
const MAX_MEAN_LEVELS: f64 = 8.0;

#[test]
fn photo_through_the_cli_matches_the_reference_decode() {
    let dir = tempfile::tempdir().unwrap();
    let src = corpus("photos/sunset_by_Aitzol_Berasategi.jpg");
    let out = dir.path().join("photo.thumbhash");
    thumbfs(&["convert", "thumbhash", p(&src), p(&out)]);
    let text = std::fs::read(&out).unwrap();
    let d = decode(&text);
    let (db, worst) = score(&src, &d);
    eprintln!(
        "photo: {}x{} {db:.1} dB, mean within {worst:.2}",
        d.width, d.height
    );
    assert!(db >= MIN_DB, "{db:.1} dB");
    assert!(worst <= MAX_MEAN_LEVELS, "average off by {worst:.2} levels");
    // Deterministic: the same bytes again, and from stdout via the extension.
    let again = thumbfs(&["convert", "thumbhash", p(&src), "-"]);
    assert_eq!(again, text);
    // A size beyond the 100x100 the hash takes is capped, not refused.
    let big = thumbfs(&["convert", "w800_thumbhash", p(&src), "-"]);
    assert_eq!(big, text);
}

#[test]
fn png_with_alpha_keeps_its_transparency() {
    // Made by ImageMagick (PngSuite's files carry gAMA 1.0, which ImageMagick converts on
    // reading and thumbfs does not); 150x90, so the fit to 100x100 runs on an alpha image.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("alpha.png");
    run(Command::new("convert")
        .args([
            "-size",
            "150x90",
            "radial-gradient:rgba(255,160,0,1)-rgba(0,40,255,0)",
        ])
        .arg(&src));
    let text = thumbfs(&["convert", "thumbhash", p(&src), "-"]);
    let d = decode(&text);
    let (db, worst) = score(&src, &d);
    let reference = magick_rgba(&src, d.width, d.height);
    let alpha_db = psnr(&channel(&d.rgba, 3), &channel(&reference, 3), 255);
    eprintln!("alpha: {db:.1} dB colour, {alpha_db:.1} dB alpha, mean within {worst:.2}");
    assert!(d.average[3] < 0.9, "alpha lost: average {:?}", d.average);
    assert!(
        db >= MIN_DB && alpha_db >= MIN_DB,
        "{db:.1} / {alpha_db:.1} dB"
    );
    assert!(worst <= MAX_MEAN_LEVELS, "average off by {worst:.2} levels");
}

#[test]
fn mount_serves_the_cli_bytes() {
    let src = tempfile::tempdir().unwrap();
    let photo = corpus("photos/seeding_by_Clements_Engelhardt.jpg");
    std::fs::copy(&photo, src.path().join("photo.jpg")).unwrap();
    let m = Mount::new(src.path(), &[]);
    let names: Vec<String> = std::fs::read_dir(m.path("thumbhash"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["photo.thumbhash"]);
    let served = std::fs::read(m.path("thumbhash/photo.thumbhash")).unwrap();
    assert_eq!(served, thumbfs(&["convert", "thumbhash", p(&photo), "-"]));
    let (db, worst) = score(&photo, &decode(&served));
    eprintln!("mount: {db:.1} dB, mean within {worst:.2}");
    assert!(db >= MIN_DB && worst <= MAX_MEAN_LEVELS);
}
