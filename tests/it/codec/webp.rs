//! WebP loader and saver against dwebp (libwebp) and exiftool.

use crate::common;

use std::process::Command;
use std::sync::Arc;

use common::codec::*;
use common::*;
use thumbfs::codec::SaveOptions;
use thumbfs::spec::OutputFormat;
use thumbfs::Samples;

#[test]
fn webp_corpus_matches_dwebp() {
    let files = corpus_files("webp", &["webp"]);
    assert_eq!(files.len(), 15);
    for path in &files {
        let img = load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r = dwebp(path);
        assert_eq!((r.width, r.height), (img.header.width, img.header.height));
        let ours = rgba(&wide(&img), img.header.bands as u32, 255);
        let theirs = rgba(&r.data, r.bands, 255);
        let name = path.file_name().unwrap().to_string_lossy();
        let db = psnr(&ours, &theirs, 255);
        eprintln!("{name}: {db:.1} dB");
        if name.contains("lossless") {
            assert!(db.is_infinite(), "{name}: lossless differs ({db:.1} dB)");
        } else {
            // Lossy: image-webp's upsampling and rounding differ slightly from libwebp's.
            assert!(db > 40.0, "{name}: {db:.1} dB");
        }
    }
}

#[test]
fn webp_lossless_save_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.webp");
    for rel in [
        "pngsuite/primary/basn6a08.png",
        "pngsuite/primary/basn2c08.png",
        "pngsuite/primary/basn0g08.png",
        "pngsuite/primary/basn4a08.png",
        "webp/yellow_rose.lossy-with-alpha.webp",
    ] {
        let img = load(&corpus(rel)).unwrap();
        let opts = SaveOptions::default().with("lossless", 1);
        std::fs::write(&out, save(img.clone(), OutputFormat::Webp, &opts)).unwrap();
        let r = dwebp(&out);
        let ours = rgba(&wide(&img), img.header.bands as u32, 255);
        assert_eq!(rgba(&r.data, r.bands, 255), ours, "{rel}");
        let back = load(&out).unwrap();
        assert_eq!(rgba(&wide(&back), back.header.bands as u32, 255), ours);
    }
    // ICC survives.
    let (_, icc) = sample_icc(dir.path());
    let mut img = load(&corpus("pngsuite/primary/basn2c08.png")).unwrap();
    img.header.meta.icc = Some(Arc::new(icc.clone()));
    std::fs::write(&out, save(img, OutputFormat::Webp, &SaveOptions::default())).unwrap();
    assert_eq!(exiftool(&["-b", "-ICC_Profile"], &out), icc);
}

#[test]
fn webp_lossy_save_is_close_carries_metadata_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.webp");
    let (_, icc) = sample_icc(dir.path());
    let xmp = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>".to_vec();
    for (rel, q, min_db) in [
        ("tiff/video-001.tiff", 75, 30.0),
        ("tiff/video-001.tiff", 95, 36.0),
        ("pngsuite/primary/basn6a08.png", 90, 30.0),
        ("pngsuite/primary/basn0g08.png", 75, 30.0),
        ("pngsuite/16bit/basn2c16.png", 90, 30.0),
    ] {
        let mut img = load(&corpus(rel)).unwrap();
        img.header.meta.icc = Some(Arc::new(icc.clone()));
        img.header.meta.exif = Some(Arc::new(exif_orientation_6()));
        // Upright pixels: the written EXIF must say 1.
        img.header.meta.orientation = 1;
        img.header.meta.xmp = Some(Arc::new(xmp.clone()));
        let opts = SaveOptions::default().with("q", q);
        let bytes = save(img.clone(), OutputFormat::Webp, &opts);
        assert_eq!(
            bytes,
            save(img.clone(), OutputFormat::Webp, &opts),
            "{rel}: not deterministic"
        );
        std::fs::write(&out, &bytes).unwrap();
        let info = String::from_utf8_lossy(&run(Command::new("webpinfo").arg(&out))).into_owned();
        assert!(
            info.contains("Format: Lossy") && info.contains("No error detected"),
            "{info}"
        );
        // libwebp's own decoder against our pixels (8-bit view).
        let r = dwebp(&out);
        let ours8: Vec<u16> = match &img.samples {
            Samples::U16(v) => v
                .iter()
                .map(|&x| ((x as u32 * 255 + 32767) / 65535) as u16)
                .collect(),
            _ => wide(&img),
        };
        let db = psnr(
            &rgba(&ours8, img.header.bands as u32, 255),
            &rgba(&r.data, r.bands, 255),
            255,
        );
        eprintln!("{rel} q{q}: {db:.1} dB, {} bytes", bytes.len());
        assert!(db > min_db, "{rel} q{q}: {db:.1} dB");
        assert_eq!(exiftool(&["-b", "-ICC_Profile"], &out), icc, "{rel}");
        assert_eq!(exiftool(&["-s3", "-n", "-Orientation"], &out), b"1\n");
        assert_eq!(exiftool(&["-b", "-XMP"], &out), xmp);
        // Our loader reads it back with the metadata.
        let back = load(&out).unwrap();
        assert_eq!(back.header.meta.icc.as_deref(), Some(&icc));
        // Strip drops everything.
        let stripped = SaveOptions {
            strip: true,
            ..opts.clone()
        };
        std::fs::write(&out, save(img, OutputFormat::Webp, &stripped)).unwrap();
        let tags = String::from_utf8_lossy(&exiftool(&["-a", "-G1"], &out)).into_owned();
        assert!(
            !tags.contains("ICC") && !tags.contains("Orientation") && !tags.contains("XMP"),
            "{tags}"
        );
    }
    // Quality matters: q30 is smaller than q95.
    let img = load(&corpus("tiff/video-001.tiff")).unwrap();
    let size = |q: u8| {
        let o = SaveOptions::default().with("q", q.into());
        save(img.clone(), OutputFormat::Webp, &o).len()
    };
    assert!(size(30) < size(95));
}
