//! PNG loader and saver against ImageMagick and exiftool.

use crate::common;

use std::process::Command;
use std::sync::Arc;

use common::codec::*;
use common::*;
use thumbfs::codec::SaveOptions;
use thumbfs::spec::OutputFormat;
use thumbfs::{Header, Image, SampleFormat, Samples, Source};

#[test]
fn pngsuite_matches_imagemagick() {
    let files = pngsuite();
    assert!(files.len() > 90, "corpus has {} files", files.len());
    for path in &files {
        let img = load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy();
        // Colour type from the PngSuite name: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA;
        // tRNS ("t" prefix) adds alpha.
        let ctype = name.as_bytes()[4] - b'0';
        let trns = name.starts_with("tb") || name.starts_with("tp1") || name.starts_with("tm3");
        let expected_bands = match ctype {
            0 => 1,
            2 | 3 => 3,
            4 => 2,
            _ => 4,
        } + u8::from(trns && (ctype == 0 || ctype == 2 || ctype == 3));
        assert_eq!(img.header.bands, expected_bands, "{name}");
        assert_eq!(
            img.header.format == SampleFormat::U16,
            name.contains("16"),
            "{name}"
        );
        assert_matches_magick(path, &img);
    }
}

#[test]
fn corrupt_pngs_fail_cleanly() {
    let files = corpus_files("pngsuite/corrupt", &["png"]);
    assert!(files.len() >= 14);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        // Whatever stage catches it, the answer is an error (not a panic, not an image).
        let r = std::panic::catch_unwind(|| load_src(Source::memory(bytes)).map(|_| ()));
        match r {
            Ok(Err(e)) => eprintln!("{}: {e}", path.display()),
            Ok(Ok(())) => panic!("{} decoded", path.display()),
            Err(_) => panic!("{} panicked", path.display()),
        }
    }
}

#[test]
fn png_streams_from_an_unseekable_source() {
    for name in [
        "primary/basn6a08.png",
        "primary/basi3p04.png",
        "16bit/basn2c16.png",
    ] {
        let path = corpus(&format!("pngsuite/{name}"));
        let (_, img, _) = load_src(pipe(std::fs::read(&path).unwrap())).unwrap();
        assert_eq!(img, load(&path).unwrap(), "{name}");
    }
}

#[test]
fn png_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = pngsuite();
    files.retain(|p| {
        let n = p.file_name().unwrap().to_string_lossy();
        n.starts_with("bas") || n.starts_with("tb") || n.starts_with("s0")
    });
    for (i, path) in files.iter().enumerate() {
        let img = load(path).unwrap();
        // Every compression setting gives the same pixels.
        let opts = match [None, Some(0), Some(1), Some(6), Some(9)][i % 5] {
            Some(c) => SaveOptions::default().with("c", c),
            None => SaveOptions::default(),
        };
        let bytes = save(img.clone(), OutputFormat::Png, &opts);
        let out = dir.path().join("out.png");
        std::fs::write(&out, &bytes).unwrap();
        assert_matches_magick(&out, &img);
        let back = load(&out).unwrap();
        assert_eq!(back.samples, img.samples, "{}", path.display());
        assert_eq!(back.header.bands, img.header.bands);
    }
}

#[test]
fn png_metadata_survives_and_strip_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (icc_path, icc) = sample_icc(dir.path());
    let icc_path = icc_path.display();
    let input = dir.path().join("in.png");
    run(Command::new("convert").arg("rose:").arg(&input));
    exiftool(
        &[
            "-q",
            "-overwrite_original",
            &format!("-icc_profile<={icc_path}"),
        ],
        &input,
    );
    let img = load(&input).unwrap();
    assert_eq!(img.header.meta.icc.as_deref(), Some(&icc));
    assert_matches_magick(&input, &img);

    let mut with_exif = img.clone();
    with_exif.header.meta.exif = Some(Arc::new(exif_orientation_6()));
    // The pipeline rotated the pixels upright, so the saved EXIF must say 1.
    with_exif.header.meta.orientation = 1;
    with_exif.header.meta.xmp = Some(Arc::new(
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description xmlns:dc='http://purl.org/dc/elements/1.1/'><dc:format>image/png</dc:format></rdf:Description></rdf:RDF></x:xmpmeta>".to_vec(),
    ));
    let out = dir.path().join("out.png");
    std::fs::write(
        &out,
        save(
            with_exif.clone(),
            OutputFormat::Png,
            &SaveOptions::default(),
        ),
    )
    .unwrap();
    assert_eq!(exiftool(&["-b", "-ICC_Profile"], &out), icc);
    assert_eq!(exiftool(&["-s3", "-n", "-Orientation"], &out), b"1\n");
    assert_eq!(exiftool(&["-s3", "-Format"], &out), b"image/png\n");
    let back = load(&out).unwrap();
    assert_eq!(back.header.meta.icc.as_deref(), Some(&icc));
    assert_eq!(back.header.meta.orientation, 1);
    assert_eq!(back.header.meta.xmp, with_exif.header.meta.xmp);
    assert_eq!(back.samples, img.samples);

    // Orientation 6 kept when the pixels were not rotated.
    let mut kept = with_exif.clone();
    kept.header.meta.orientation = 6;
    std::fs::write(&out, save(kept, OutputFormat::Png, &SaveOptions::default())).unwrap();
    assert_eq!(load(&out).unwrap().header.meta.orientation, 6);

    let strip = SaveOptions {
        strip: true,
        ..SaveOptions::default()
    };
    std::fs::write(&out, save(with_exif, OutputFormat::Png, &strip)).unwrap();
    assert!(exiftool(&["-b", "-ICC_Profile"], &out).is_empty());
    let back = load(&out).unwrap();
    assert_eq!(back.header.meta.icc, None);
    assert_eq!(back.header.meta.exif, None);
    assert_eq!(back.header.meta.xmp, None);
    assert_eq!(back.samples, img.samples);
}

#[test]
fn png_sixteen_bit_and_float_save() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("grad16.png");
    run(Command::new("convert")
        .args(["-size", "97x61", "gradient:red-blue", "-depth", "16"])
        .arg(&input));
    let img = load(&input).unwrap();
    assert_eq!(img.header.format, SampleFormat::U16);
    assert_matches_magick(&input, &img);
    let out = dir.path().join("out.png");
    std::fs::write(
        &out,
        save(img.clone(), OutputFormat::Png, &SaveOptions::default()),
    )
    .unwrap();
    assert_matches_magick(&out, &img);

    // Float (linear light) becomes 16-bit sRGB.
    let h = Header {
        width: 3,
        height: 1,
        bands: 1,
        format: SampleFormat::F32,
        bit_depth: 32,
        meta: thumbfs::Metadata::upright(),
    };
    let f = Image {
        header: h,
        samples: Samples::F32(vec![0.0, 0.2140411, 1.5]),
    };
    std::fs::write(&out, save(f, OutputFormat::Png, &SaveOptions::default())).unwrap();
    let back = load(&out).unwrap();
    match back.samples {
        Samples::U16(v) => {
            assert_eq!(v[0], 0);
            assert!((v[1] as i32 - 32768).abs() <= 2, "{}", v[1]);
            assert_eq!(v[2], 65535);
        }
        other => panic!("{:?}", other.format()),
    }
}
