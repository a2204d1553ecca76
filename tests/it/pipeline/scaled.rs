//! DCT-domain scaled JPEG decoding (shrink-on-load before a resize): against our own full
//! decode box-averaged, against `djpeg -scale`, and the thumbnail path against `vips thumbnail`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use thumbfs::codec::{self, LoadOptions};
use thumbfs::{Image, Samples, Source};

/// Decodes with our loader; `dct` says a resize follows, which lets the loader scale in the DCT.
fn decode(path: &Path, shrink: u32, dct: bool) -> (Image, u32) {
    let mut src = Source::file(path).unwrap();
    let fmt = codec::sniff(&mut src).unwrap();
    codec::probe(&mut src, fmt).unwrap();
    let opts = LoadOptions {
        shrink,
        fit: dct.then_some((1, 1)),
        ..Default::default()
    };
    let loaded = codec::load(src, fmt, &opts).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let applied = loaded.shrink;
    (Image::collect(loaded.stream).unwrap(), applied)
}

fn bytes(img: &Image) -> &[u8] {
    match &img.samples {
        Samples::U8(v) => v,
        _ => panic!("jpeg decodes to 8 bits"),
    }
}

fn widen(v: &[u8]) -> Vec<u16> {
    v.iter().map(|&x| x as u16).collect()
}

/// Box average by `d`, edge boxes averaging the pixels they hold (sizes round up, as libjpeg's).
fn box_average(img: &Image, d: usize) -> Vec<u16> {
    let (w, h) = (img.header.width as usize, img.header.height as usize);
    let b = img.header.bands as usize;
    let (ow, oh) = (w.div_ceil(d), h.div_ceil(d));
    let px = bytes(img);
    let mut out = Vec::with_capacity(ow * oh * b);
    for oy in 0..oh {
        for ox in 0..ow {
            for c in 0..b {
                let (mut sum, mut n) = (0u32, 0u32);
                for y in oy * d..((oy + 1) * d).min(h) {
                    for x in ox * d..((ox + 1) * d).min(w) {
                        sum += px[(y * w + x) * b + c] as u32;
                        n += 1;
                    }
                }
                out.push(((sum + n / 2) / n) as u16);
            }
        }
    }
    out
}

/// Photo-sized test files: every subsampling, grey, progressive, non-interleaved, restart
/// intervals, camera photos; variants made losslessly with jpegtran in `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "jpeg/flower.png.im_q85_444.jpg",
        "jpeg/flower.png.im_q85_444_1x2.jpg",
        "jpeg/flower.png.im_q85_422.jpg",
        "jpeg/flower.png.im_q85_420.jpg",
        "jpeg/flower.png.im_q85_440.jpg",
        "jpeg/flower.png.im_q85_420_progr.jpg",
        "jpeg/flower.png.im_q85_420_R13B.jpg",
        "jpeg/flower_small.q85_420_non_interleaved.jpg",
        "photos/sunset_by_Aitzol_Berasategi.jpg",
    ]
    .iter()
    .map(|f| corpus(f))
    .collect();
    for (name, src, args) in [
        (
            "grey.jpg",
            "jpeg/flower.png.im_q85_444.jpg",
            &["-grayscale"][..],
        ),
        (
            "grey-progressive.jpg",
            "jpeg/flower.png.im_q85_420.jpg",
            &["-grayscale", "-progressive"][..],
        ),
        (
            "restart-444-progressive.jpg",
            "jpeg/flower.png.im_q85_444.jpg",
            &["-restart", "2", "-progressive"][..],
        ),
        (
            "restart-422-rows.jpg",
            "jpeg/flower.png.im_q85_422.jpg",
            &["-restart", "1"][..],
        ),
        (
            "baseline-420.jpg",
            "photos/seeding_by_Clements_Engelhardt.jpg",
            &["-optimize"][..],
        ),
    ] {
        let out = dir.join(name);
        run(Command::new("jpegtran")
            .args(args)
            .arg("-outfile")
            .arg(&out)
            .arg(corpus(src)));
        v.push(out);
    }
    v
}

/// The small, high-detail Q50 test pictures of Go's image package (150x103): every
/// subsampling, progressive, separate DC scans, grey. Compared with djpeg only: at this size
/// the box average of the full decode is no reference (partial edge blocks hold the
/// encoder's padding, and 1/8 of 4:2:2 keeps chroma at 1/16 as libjpeg does).
fn small_files() -> Vec<PathBuf> {
    [
        "video-001.q50.444.jpeg",
        "video-001.q50.422.jpeg",
        "video-001.q50.420.jpeg",
        "video-001.q50.440.jpeg",
        "video-001.q50.411.jpeg",
        "video-001.q50.410.jpeg",
        "video-001.q50.420.progressive.jpeg",
        "video-001.q50.422.progressive.jpeg",
        "video-001.separate.dc.progression.progressive.jpeg",
        "video-005.gray.q50.jpeg",
        "video-005.gray.q50.2x2.progressive.jpeg",
    ]
    .iter()
    .map(|f| corpus(&format!("jpeg/{f}")))
    .collect()
}

/// Shrink-on-load before a resize at 1/2 (box), 1/4 and 1/8 (DCT) is within 45 dB of the
/// full decode box-averaged (baseline files at 1/8 through the DC-only decoder, which gives
/// libjpeg's own 1/8; it is held to `djpeg -scale 1/8` bit for bit in codec/jpeg/dc.rs).
#[test]
fn scaled_decode_matches_box_averaged_full_decode() {
    let dir = tempfile::tempdir().unwrap();
    let mut low = Vec::new();
    for path in files(dir.path()) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (full, _) = decode(&path, 1, false);
        // 1/8 of chroma subsampled in one direction follows libjpeg (chroma at 1/16 that
        // way, as libvips' shrink-on-load): djpeg is its reference, in the tests below.
        let eighth = !one_direction(&name);
        for d in [2u32, 4, 8].into_iter().filter(|&d| d < 8 || eighth) {
            // 1/2 is a box shrink at stored resolution (cheaper than the 4x4 reduced IDCT).
            let (img, applied) = decode(&path, d, true);
            assert_eq!(applied, d, "{name}: DCT scale applied");
            let (w, h) = (full.header.width, full.header.height);
            assert_eq!(
                (img.header.width, img.header.height),
                (w.div_ceil(d), h.div_ceil(d)),
                "{name} 1/{d}"
            );
            let p = psnr(&widen(bytes(&img)), &box_average(&full, d as usize), 255);
            eprintln!("{name} 1/{d}: {p:.1} dB");
            if p < 45.0 {
                low.push(format!("{name} 1/{d}: {p:.1} dB"));
            }
        }
    }
    assert!(
        low.is_empty(),
        "below 45 dB against the box average: {low:?}"
    );
}

/// Files whose chroma is subsampled in one direction only (4:2:2, 4:4:0, 4:1:1), by name.
fn one_direction(name: &str) -> bool {
    ["422", "440", "411", "410", "sunset", "1x2"]
        .iter()
        .any(|s| name.contains(s))
}

/// Scaled decodes against libjpeg-turbo's own scaled IDCT (`djpeg -scale`), which uses the
/// same arithmetic: 4:4:4, 4:2:0 and grey files come out bit-identical. Files whose chroma
/// is subsampled in one direction only (4:2:2, 4:4:0, 4:1:1) are compared at 1/8 only: at
/// 1/4 we box-shrink finer-decoded chroma onto the output grid while libjpeg keeps half its
/// resolution, and the box-average test above is their reference. Sizes must agree.
#[test]
fn scaled_decode_matches_djpeg_scale() {
    let dir = tempfile::tempdir().unwrap();
    let mut low = Vec::new();
    for path in files(dir.path()).into_iter().chain(small_files()) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let scales: &[u32] = if one_direction(&name) { &[8] } else { &[4, 8] };
        // Not 1/2: thumbfs shrinks by 2 with a box, not libjpeg's 4x4 reduced IDCT.
        for &d in scales {
            let (img, _) = decode(&path, d, true);
            let reference = parse_pnm(&run(Command::new("djpeg")
                .args(["-scale", &format!("1/{d}")])
                .arg(&path)));
            assert_eq!(
                (img.header.width, img.header.height),
                (reference.width, reference.height),
                "{name} 1/{d}: size"
            );
            let p = psnr(&widen(bytes(&img)), &reference.data, 255);
            eprintln!("{name} 1/{d} vs djpeg: {p:.1} dB");
            if p < 45.0 {
                low.push(format!("{name} 1/{d}: {p:.1} dB"));
            }
        }
    }
    assert!(low.is_empty(), "below 45 dB against djpeg -scale: {low:?}");
}

/// Progressive files at 1/8 leave out the AC scans of components whose blocks become one
/// pixel (crates/codec/src/jpeg/scans.rs): the pixels must still be exactly libjpeg-turbo's own 1/8
/// decode of the whole file (`djpeg -scale 1/8`: same IDCT, upsampling and colour arithmetic),
/// for 4:2:0 (luma scans dropped, chroma kept), 4:4:4, 4:2:2 and grey (all AC scans
/// dropped), restart intervals and separate DC scans.
#[test]
fn progressive_eighth_without_ac_scans_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths: Vec<PathBuf> = files(dir.path())
        .into_iter()
        .chain(small_files())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.contains("progr")
        })
        .collect();
    // 16 MP 4:2:0 and 12 MP 4:2:2 camera photos, progressive as published.
    paths.push(corpus("photos/seeding_by_Clements_Engelhardt.jpg"));
    paths.push(corpus("photos/sunset_by_Aitzol_Berasategi.jpg"));
    assert!(paths.len() >= 8, "{paths:?}");
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (img, applied) = decode(&path, 8, true);
        assert_eq!(applied, 8, "{name}");
        let reference = parse_pnm(&run(Command::new("djpeg")
            .args(["-scale", "1/8"])
            .arg(&path)));
        assert_eq!(
            (img.header.width, img.header.height),
            (reference.width, reference.height),
            "{name}: size"
        );
        let ours = widen(bytes(&img));
        let differ = ours
            .iter()
            .zip(&reference.data)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differ, 0,
            "{name}: {differ} samples differ from djpeg -scale 1/8"
        );
    }
}

/// The whole thumbnail path (DCT scale, box, Lanczos3) against `vips thumbnail`.
#[test]
fn thumbnails_match_vips_thumbnail() {
    let dir = tempfile::tempdir().unwrap();
    for (file, size) in [
        ("photos/sunset_by_Aitzol_Berasategi.jpg", 256),
        ("photos/seeding_by_Clements_Engelhardt.jpg", 256),
        ("photos/seeding_by_Clements_Engelhardt.jpg", 1024),
        ("photos/seeding_by_Clements_Engelhardt.jpg", 64),
        ("photos/sunset_by_Aitzol_Berasategi.jpg", 700),
    ] {
        let path = corpus(file);
        let ours = dir.path().join("ours.ppm");
        run(Command::new(thumbfs_bin())
            .arg("convert")
            .arg(format!("w{size}_ppm"))
            .arg(&path)
            .arg(&ours));
        let theirs = dir.path().join("theirs.ppm");
        run(Command::new("vips")
            .arg("thumbnail")
            .arg(&path)
            .arg(&theirs)
            .arg(size.to_string()));
        let (a, b) = (
            parse_pnm(&std::fs::read(&ours).unwrap()),
            parse_pnm(&std::fs::read(&theirs).unwrap()),
        );
        assert_eq!((a.width, a.height), (b.width, b.height), "{file} w{size}");
        let p = psnr(&a.data, &b.data, 255);
        eprintln!("{file} w{size} vs vips thumbnail: {p:.1} dB");
        assert!(
            p >= 38.0,
            "{file} w{size}: {p:.1} dB against vips thumbnail"
        );
    }
}

/// An exact `shrinkN` request (no resize) stays a box average: the DCT path is not used.
#[test]
fn exact_shrink_is_not_dct_scaled() {
    let path = corpus("jpeg/flower.png.im_q85_444.jpg");
    let (full, _) = decode(&path, 1, false);
    let (img, applied) = decode(&path, 4, false);
    assert_eq!(applied, 4);
    let (dct, _) = decode(&path, 4, true);
    assert_ne!(bytes(&img), bytes(&dct), "exact shrink took the DCT path");
    let p = psnr(&widen(bytes(&img)), &box_average(&full, 4), 255);
    eprintln!("exact shrink 4 vs box average: {p:.1} dB");
    // Not bit-exact: the exact shrink averages YCbCr at stored resolution, then converts.
    assert!(p >= 50.0, "exact shrink: {p:.1} dB from the box average");
}
