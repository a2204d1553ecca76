//! PNM, PAM and PFM loaders and savers against ImageMagick.

use crate::common;

use std::process::Command;

use common::codec::*;
use common::*;
use thumbfs::codec::SaveOptions;
use thumbfs::spec::OutputFormat;
use thumbfs::{SampleFormat, Samples, Source};

#[test]
fn pnm_corpus_matches_imagemagick() {
    let files = corpus_files("pnm", &["pgm", "ppm", "pam"]);
    assert_eq!(files.len(), 9);
    for path in &files {
        let img = load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_matches_magick(path, &img);
    }
    let pfm = corpus("pnm/splines.pfm");
    let img = load(&pfm).unwrap();
    assert_eq!(img.header.format, SampleFormat::F32);
    assert_eq!(img.header.bands, 3);
    assert_floats_match(&pfm, &img);
    // Without seeking, PFM is read whole and flipped: same result.
    let (_, piped, _) = load_src(pipe(std::fs::read(&pfm).unwrap())).unwrap();
    assert_eq!(piped, img);
}

#[test]
fn pnm_variants_written_by_imagemagick() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], u8, SampleFormat)] = &[
        ("p6.ppm", &["-depth", "8"], 3, SampleFormat::U8),
        (
            "p3.ppm",
            &["-depth", "8", "-compress", "none"],
            3,
            SampleFormat::U8,
        ),
        ("p6_16.ppm", &["-depth", "16"], 3, SampleFormat::U16),
        (
            "p3_16.ppm",
            &["-depth", "16", "-compress", "none"],
            3,
            SampleFormat::U16,
        ),
        (
            "p5.pgm",
            &["-colorspace", "gray", "-depth", "8"],
            1,
            SampleFormat::U8,
        ),
        (
            "p2.pgm",
            &["-colorspace", "gray", "-depth", "8", "-compress", "none"],
            1,
            SampleFormat::U8,
        ),
        (
            "p5_16.pgm",
            &["-colorspace", "gray", "-depth", "16"],
            1,
            SampleFormat::U16,
        ),
        ("p4.pbm", &["-monochrome"], 1, SampleFormat::U8),
        (
            "p1.pbm",
            &["-monochrome", "-compress", "none"],
            1,
            SampleFormat::U8,
        ),
        (
            "p7.pam",
            &["-alpha", "set", "-depth", "8"],
            4,
            SampleFormat::U8,
        ),
        ("p7_16.pam", &["-depth", "16"], 3, SampleFormat::U16),
    ];
    for (name, args, bands, format) in cases {
        let path = dir.path().join(name);
        // An odd width exercises P4 row padding.
        run(Command::new("convert")
            .args(["rose:", "-crop", "61x45+0+0", "+repage"])
            .args(*args)
            .arg(&path));
        let img = load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (img.header.bands, img.header.format),
            (*bands, *format),
            "{name}"
        );
        assert_matches_magick(&path, &img);
        let (_, piped, _) = load_src(pipe(std::fs::read(&path).unwrap())).unwrap();
        assert_eq!(piped, img, "{name} through a pipe");
    }
    for (name, endian) in [("lsb.pfm", "LSB"), ("msb.pfm", "MSB")] {
        let path = dir.path().join(name);
        run(Command::new("convert")
            .args(["rose:", "-endian", endian])
            .arg(&path));
        let img = load(&path).unwrap();
        assert_floats_match(&path, &img);
    }
    let gpfm = dir.path().join("grey.pfm");
    run(Command::new("convert")
        .args(["rose:", "-colorspace", "gray"])
        .arg(&gpfm));
    let img = load(&gpfm).unwrap();
    assert_eq!(img.header.bands, 1);
    assert_floats_match(&gpfm, &img);
}

#[test]
fn pnm_headers_with_comments_and_odd_maxval() {
    let mut f = b"P5\n# a comment\n3 # width\n# another\n2\n1000\n".to_vec();
    for v in [0u16, 1, 500, 999, 1000, 2000] {
        f.extend_from_slice(&v.to_be_bytes());
    }
    let (_, img, _) = load_src(Source::memory(f)).unwrap();
    assert_eq!(img.header.bit_depth, 10);
    // Rescaled to full range, rounded; values above maxval clamp.
    assert_eq!(
        img.samples,
        Samples::U16(vec![0, 66, 32768, 65469, 65535, 65535])
    );

    let (_, img, _) = load_src(Source::memory(&b"P2 2 2 7 0 7\n# x\n3 4"[..])).unwrap();
    assert_eq!(img.samples, Samples::U8(vec![0, 255, 109, 146]));

    let (_, img, _) = load_src(Source::memory(&b"P1\n3 2\n010\n1 1 0"[..])).unwrap();
    assert_eq!(img.samples, Samples::U8(vec![255, 0, 255, 0, 0, 255]));

    let pam =
        b"P7\n# c\nWIDTH 2\nHEIGHT 1\nDEPTH 1\nMAXVAL 1\nTUPLTYPE BLACKANDWHITE\nENDHDR\n\x00\x01";
    let (_, img, _) = load_src(Source::memory(&pam[..])).unwrap();
    assert_eq!(img.samples, Samples::U8(vec![0, 255]));
}

#[test]
fn bad_pnm_headers_are_clean_errors() {
    let cases: &[&[u8]] = &[
        b"P6\n3 2\n255\n\x01\x02",           // truncated raster
        b"P6\n3 2\n0\n",                     // maxval 0
        b"P6\n3 2\n70000\n",                 // maxval too large
        b"P6\n4294967295 4294967295\n255\n", // over the pixel limit
        b"P6\n99999999999 2\n255\n",         // not a u32
        b"P6\n0 2\n255\n",                   // zero width
        b"P5\n3",                            // header ends
        b"P7\nWIDTH 2\nHEIGHT 2\nDEPTH 5\nMAXVAL 255\nENDHDR\n",
        b"P7\nWIDTH 2\nHEIGHT 2\nDEPTH 3\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n",
        b"P7\nWIDTH 2\nHEIGHT 2\nDEPTH 3\nMAXVAL 255\n",
        b"PF\n2 2\nnan\n",
        b"P3\n2 1\n255\n1 2 3 4 5",
        b"P2\n2 1\n255\n1 x",
    ];
    for case in cases {
        let r = std::panic::catch_unwind(|| load_src(Source::memory(*case)).map(|_| ()));
        match r {
            Ok(Err(e)) => eprintln!("{:?}: {e}", String::from_utf8_lossy(case)),
            Ok(Ok(())) => panic!("{:?} decoded", String::from_utf8_lossy(case)),
            Err(_) => panic!("{:?} panicked", String::from_utf8_lossy(case)),
        }
    }
}

#[test]
fn pnm_save_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = corpus_files("pnm", &["pgm", "ppm", "pam"]);
    files.push(corpus("pngsuite/primary/basn4a08.png"));
    for path in &files {
        let img = load(path).unwrap();
        let bytes = save(img.clone(), OutputFormat::Pnm, &SaveOptions::default());
        let magic = &bytes[..2];
        let expected: &[u8] = match img.header.bands {
            1 => b"P5",
            3 => b"P6",
            _ => b"P7",
        };
        assert_eq!(magic, expected, "{}", path.display());
        let out = dir.path().join("out.pnm");
        std::fs::write(&out, &bytes).unwrap();
        assert_matches_magick(&out, &img);
        let reread = parse_pnm(&bytes);
        assert_eq!(reread.data, wide(&img), "{}", path.display());
        assert_eq!(load(&out).unwrap().samples, img.samples);
    }
}

#[test]
fn pfm_save_is_linear_bottom_up_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "pnm/flower_small.rgb.depth8.ppm",
        "pnm/flower_small.g.depth8.pgm",
    ] {
        let img = load(&corpus(rel)).unwrap();
        let bytes = save(img.clone(), OutputFormat::Pfm, &SaveOptions::default());
        let magic: &[u8] = if img.header.bands == 1 { b"Pf" } else { b"PF" };
        assert_eq!(&bytes[..2], magic);
        let out = dir.path().join("out.pfm");
        std::fs::write(&out, &bytes).unwrap();
        // ImageMagick reads our file as the linear-light version of the original pixels.
        let r = magick_floats(&out);
        let want: Vec<u16> = wide(&img)
            .iter()
            .map(|&v| (thumbfs::image::srgb_to_linear(v as f32 / 255.0) * 65535.0).round() as u16)
            .collect();
        let worst = want
            .iter()
            .zip(rgba(&r.data, r.bands, 65535).chunks_exact(4).flat_map(|p| {
                if img.header.bands == 1 {
                    p[..1].to_vec()
                } else {
                    p[..3].to_vec()
                }
            }))
            .map(|(&a, b)| (a as i32 - b as i32).abs())
            .max()
            .unwrap();
        assert!(worst <= 1, "{rel}: off by {worst}");
        // And back to 8-bit sRGB exactly.
        let back = load(&out).unwrap();
        let again: Vec<u8> = f32s(&back)
            .iter()
            .map(|&v| thumbfs::image::f32_to_u8(v))
            .collect();
        assert_eq!(Samples::U8(again), img.samples, "{rel}");
    }
    // Float input saved as PFM keeps its values bit for bit.
    let pfm = corpus("pnm/splines.pfm");
    let img = load(&pfm).unwrap();
    let bytes = save(img.clone(), OutputFormat::Pfm, &SaveOptions::default());
    let (_, back, _) = load_src(Source::memory(bytes)).unwrap();
    assert_eq!(back.samples, img.samples);
}
