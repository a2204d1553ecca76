//! The DC-only decoder of baseline files at 1/8 (crates/codec/src/jpeg/dc): bit for bit
//! djpeg's `-scale 1/8` on every baseline YCbCr and grey file of the corpus (and baseline,
//! grey and restart-marker twins of the camera photos), the two-thread paths equal to the
//! one-thread decode (restart markers or speculation), damaged files an error or an image but
//! never a panic, and w256 thumbnails through the CLI close to `vips thumbnail`.

use crate::common;

use common::codec::u8s;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use thumbfs::codec::jpeg::dc_decode;
use thumbfs::Image;

/// `jpegtran ARGS in` written to `dir/name`.
fn jpegtran(dir: &Path, name: &str, args: &[&str], input: &Path) -> PathBuf {
    let out = dir.join(name);
    run(Command::new("jpegtran")
        .args(args)
        .arg("-outfile")
        .arg(&out)
        .arg(input));
    out
}

/// Every baseline file to try: the corpus' JPEGs, baseline twins of the two camera photos
/// (4:2:0 and 4:2:2), a grey twin, and twins with restart markers (every MCU row, and every
/// 3 MCUs).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v = corpus_files("jpeg", &["jpg"]);
    v.extend(corpus_files("exif-orientation", &["jpg"]));
    for name in [
        "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi",
    ] {
        let photo = corpus(&format!("photos/{name}.jpg"));
        let base = jpegtran(dir, &format!("{name}.baseline.jpg"), &["-optimize"], &photo);
        v.push(jpegtran(
            dir,
            &format!("{name}.rst1.jpg"),
            &["-restart", "1"],
            &base,
        ));
        v.push(jpegtran(
            dir,
            &format!("{name}.rst3b.jpg"),
            &["-restart", "3B"],
            &base,
        ));
        v.push(jpegtran(
            dir,
            &format!("{name}.grey.jpg"),
            &["-grayscale"],
            &base,
        ));
        v.push(base);
    }
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Our 1/8 decode, one thread (`split_min` beyond any file) or two (`split_min` 0).
fn decode(bytes: &[u8], split_min: usize) -> thumbfs::Result<Option<Image>> {
    dc_decode(bytes, split_min)
}

/// Both the one- and two-thread decodes equal djpeg -scale 1/8 exactly, for every file the
/// decoder takes; and it takes the baseline 4:4:4, 4:2:0, 4:2:2, 4:4:0, grey and restart files.
#[test]
fn dc_decoder_matches_djpeg_at_one_eighth() {
    let dir = tempfile::tempdir().unwrap();
    let mut taken = Vec::new();
    for path in inputs(dir.path()) {
        let n = name(&path);
        let bytes = std::fs::read(&path).unwrap();
        let Some(ours) = decode(&bytes, usize::MAX).unwrap() else {
            eprintln!("{n}: not for the DC decoder");
            continue;
        };
        let theirs = parse_pnm(&run(Command::new("djpeg")
            .args(["-scale", "1/8"])
            .arg(&path)));
        assert_eq!(
            (
                ours.header.width,
                ours.header.height,
                ours.header.bands as u32
            ),
            (theirs.width, theirs.height, theirs.bands),
            "{n}"
        );
        let ours_px = u8s(&ours);
        let diff = ours_px
            .iter()
            .zip(&theirs.data)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(diff, 0, "{n}: {diff} samples differ from djpeg -scale 1/8");
        let parallel = decode(&bytes, 0).unwrap().unwrap();
        assert!(parallel == ours, "{n}: the two-thread decode differs");
        eprintln!("{n}: {}x{} identical to djpeg", theirs.width, theirs.height);
        taken.push(n);
    }
    for want in [
        "flower.png.im_q85_420.jpg",
        "flower.png.im_q85_422.jpg",
        "flower.png.im_q85_444.jpg",
        "flower.png.im_q85_440.jpg",
        "seeding_by_Clements_Engelhardt.baseline.jpg",
        "sunset_by_Aitzol_Berasategi.baseline.jpg",
        "sunset_by_Aitzol_Berasategi.grey.jpg",
        "sunset_by_Aitzol_Berasategi.rst1.jpg",
        "seeding_by_Clements_Engelhardt.rst3b.jpg",
    ] {
        assert!(
            taken.iter().any(|t| t == want),
            "{want} was not decoded: {taken:?}"
        );
    }
}

/// Truncated files are errors; garbage and flipped bytes in the scan give an error or an
/// image, never a panic, and the two-thread decode agrees with the one-thread one on which
/// (and on the pixels) whatever the damage.
#[test]
fn damaged_files_fail_alike_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let photo = corpus("photos/sunset_by_Aitzol_Berasategi.jpg");
    let base = jpegtran(dir.path(), "base.jpg", &["-optimize"], &photo);
    let rst = jpegtran(dir.path(), "rst.jpg", &["-restart", "2"], &base);
    let small = corpus("jpeg/flower.png.im_q85_420.jpg");
    let mut rng = Rng(0x5eed_dc0d);
    for path in [base, rst, small] {
        let n = name(&path);
        let bytes = std::fs::read(&path).unwrap();
        for cut in [
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() * 9 / 10,
            bytes.len() - 3,
        ] {
            let one = decode(&bytes[..cut], usize::MAX);
            let two = decode(&bytes[..cut], 0);
            let e = one.as_ref().err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains("jpeg")),
                "{n} cut at {cut}: {e:?}"
            );
            assert!(two.is_err(), "{n} cut at {cut}: two threads decoded it");
        }
        for round in 0..24 {
            let mut bad = bytes.clone();
            let from = bytes.len() / 8 + rng.below(bytes.len() * 7 / 8 - 64);
            if round % 3 == 0 {
                for b in &mut bad[from..from + 64] {
                    *b = rng.next() as u8;
                }
            } else {
                bad[from] ^= 1 << rng.below(8);
            }
            let one = decode(&bad, usize::MAX);
            let two = decode(&bad, 0);
            match (&one, &two) {
                (Ok(a), Ok(b)) => assert!(a == b, "{n} round {round}: pixels differ"),
                (Err(_), Err(_)) => {}
                _ => panic!("{n} round {round}: {:?} vs {:?}", one.is_ok(), two.is_ok()),
            }
        }
    }
}

/// w256 of the baseline camera photos through the CLI (4:2:2 chroma now at djpeg's 1/8,
/// replicated across) stays >= 38 dB from `vips thumbnail`.
#[test]
fn w256_of_baseline_photos_is_close_to_vips() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi",
    ] {
        let base = jpegtran(
            dir.path(),
            &format!("{name}.jpg"),
            &["-optimize"],
            &corpus(&format!("photos/{name}.jpg")),
        );
        let ours = dir.path().join(format!("{name}.ours.png"));
        let theirs = dir.path().join(format!("{name}.vips.png"));
        thumbfs(&["convert", "w256_png", p(&base), p(&ours)]);
        run(Command::new("vips")
            .arg("thumbnail")
            .arg(&base)
            .arg(&theirs)
            .arg("256"));
        let (a, b) = (vips_decode(&ours), vips_decode(&theirs));
        assert_eq!((a.width, a.height), (b.width, b.height), "{name}");
        let db = psnr(&a.data, &b.data, 255);
        eprintln!("{name}: w256 {db:.1} dB from vips thumbnail");
        assert!(db >= 38.0, "{name}: {db:.1} dB");
    }
}

/// The loader's knob (THUMBFS_JPEG_SPLIT_MIN_BYTES) sends small files through the two-thread
/// paths: the CLI's thumbnails come out byte for byte as with one thread, restart markers or not.
#[test]
fn split_knob_gives_the_same_thumbnails() {
    let dir = tempfile::tempdir().unwrap();
    let flower = corpus("jpeg/flower.png.im_q85_420.jpg");
    let rst = jpegtran(dir.path(), "rst.jpg", &["-restart", "1"], &flower);
    for (i, input) in [flower, rst].iter().enumerate() {
        let outs: Vec<Vec<u8>> = ["0", "1000000000"]
            .iter()
            .map(|knob| {
                let out = dir.path().join(format!("{i}-{knob}.png"));
                run(Command::new(thumbfs_bin())
                    .env("THUMBFS_JPEG_SPLIT_MIN_BYTES", knob)
                    .args(["convert", "w64_png"])
                    .arg(input)
                    .arg(&out));
                std::fs::read(&out).unwrap()
            })
            .collect();
        assert!(
            outs[0] == outs[1],
            "{}: the knob changed the output",
            name(input)
        );
    }
}
