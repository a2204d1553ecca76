//! PNG and PNM/PAM/PFM loaders and savers against ImageMagick, libvips and exiftool.

use crate::common;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use thumbfs::codec::{self, LoadOptions, SaveOptions};
use thumbfs::io::target::MemoryTarget;
use thumbfs::spec::OutputFormat;
use thumbfs::{Header, Image, SampleFormat, Samples, Source};

fn load_src(mut src: Source) -> thumbfs::Result<(Header, Image, u32)> {
    let fmt = codec::sniff(&mut src)?;
    let header = codec::probe(&mut src, fmt)?;
    let loaded = codec::load(src, fmt, &LoadOptions::default())?;
    let shrink = loaded.shrink;
    Ok((header, Image::collect(loaded.stream)?, shrink))
}

fn load(path: &Path) -> thumbfs::Result<Image> {
    let (header, img, shrink) = load_src(Source::file(path).unwrap())?;
    assert_eq!(shrink, 1);
    assert_eq!(header, img.header, "probe and load headers differ");
    Ok(img)
}

/// An unseekable source over bytes that hands out at most 1000 bytes per read, like a pipe.
fn pipe(data: Vec<u8>) -> Source<'static> {
    let mut at = 0;
    Source::custom(
        move |buf: &mut [u8]| {
            let n = buf.len().min(1000).min(data.len() - at);
            buf[..n].copy_from_slice(&data[at..at + n]);
            at += n;
            Ok(n)
        },
        None::<fn(u64) -> io::Result<()>>,
    )
}

fn save(img: Image, format: OutputFormat, opts: &SaveOptions) -> Vec<u8> {
    let mem = MemoryTarget::new();
    let mut t = mem.clone();
    codec::save(Box::new(img.into_stream(7)), format, opts, &mut t).unwrap();
    assert!(mem.is_finished());
    mem.take()
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Our samples widened to u16 (floats are not handled here).
fn wide(img: &Image) -> Vec<u16> {
    match &img.samples {
        Samples::U8(v) => v.iter().map(|&x| x as u16).collect(),
        Samples::U16(v) => v.clone(),
        Samples::F32(_) => panic!("float samples"),
    }
}

/// Any band layout as RGBA, so grey vs RGB choices of the reference do not matter.
fn rgba(data: &[u16], bands: u32, max: u16) -> Vec<u16> {
    data.chunks_exact(bands as usize)
        .flat_map(|p| match p.len() {
            1 => [p[0], p[0], p[0], max],
            2 => [p[0], p[0], p[0], p[1]],
            3 => [p[0], p[1], p[2], max],
            _ => [p[0], p[1], p[2], p[3]],
        })
        .collect()
}

/// Our decode equals ImageMagick's exactly, at the file's depth.
fn assert_matches_magick(path: &Path, img: &Image) {
    let depth = if img.header.format == SampleFormat::U16 {
        16
    } else {
        8
    };
    let reference = magick_decode(path, depth);
    assert_eq!(
        (reference.width, reference.height),
        (img.header.width, img.header.height),
        "{}",
        path.display()
    );
    let max = ((1u32 << depth) - 1) as u16;
    let ours = rgba(&wide(img), img.header.bands as u32, max);
    let theirs = rgba(&reference.data, reference.bands, max);
    let diff = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
    assert_eq!(diff, 0, "{}: {diff} samples differ", path.display());
}

fn pngsuite() -> Vec<PathBuf> {
    let mut v = corpus_files("pngsuite/primary", &["png"]);
    v.extend(corpus_files("pngsuite/16bit", &["png"]));
    v
}

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

/// EXIF with one IFD0 entry, orientation 6, big-endian.
fn exif_orientation_6() -> Vec<u8> {
    let mut e = b"MM\0*\0\0\0\x08\0\x01".to_vec();
    e.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
    e
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

// ---------------------------------------------------------------- PNM / PAM / PFM

/// ImageMagick's reading of a float file, as 0..65535.
fn magick_floats(path: &Path) -> Pixels {
    magick_decode(path, 16)
}

fn f32s(img: &Image) -> &[f32] {
    match &img.samples {
        Samples::F32(v) => v,
        other => panic!("expected floats, got {:?}", other.format()),
    }
}

/// Our floats against ImageMagick's 16-bit reading of the same file, within one step.
fn assert_floats_match(path: &Path, img: &Image) {
    let r = magick_floats(path);
    assert_eq!((r.width, r.height), (img.header.width, img.header.height));
    let ours: Vec<u16> = f32s(img)
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 65535.0).round() as u16)
        .collect();
    let ours = rgba(&ours, img.header.bands as u32, 65535);
    let theirs = rgba(&r.data, r.bands, 65535);
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .max()
        .unwrap();
    assert!(worst <= 1, "{}: off by {worst}", path.display());
}

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

// ---------------------------------------------------------------- WebP

fn dwebp(path: &Path) -> Pixels {
    parse_pnm(&run(Command::new("dwebp")
        .arg(path)
        .args(["-pam", "-o", "-"])))
}

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

// ---------------------------------------------------------------- TIFF

/// Corpus TIFFs we cannot decode: none (palette, JPEG and Group 3 are handled on our side).
const TIFF_UNSUPPORTED: &[&str] = &[];

#[test]
fn tiff_corpus_matches_imagemagick() {
    let files = corpus_files("tiff", &["tiff", "tif"]);
    assert_eq!(files.len(), 16);
    let mut decoded = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let r = std::panic::catch_unwind(|| load(path));
        match r {
            Err(_) => panic!("{name} panicked"),
            Ok(Err(e)) => {
                eprintln!("{name}: {e}");
                assert!(TIFF_UNSUPPORTED.contains(&name.as_str()), "{name}: {e}");
            }
            Ok(Ok(img)) => {
                assert!(!TIFF_UNSUPPORTED.contains(&name.as_str()), "{name} decoded");
                eprintln!(
                    "{name}: {}x{} {} bands {:?}",
                    img.header.width, img.header.height, img.header.bands, img.header.format
                );
                assert_matches_magick(path, &img);
                let (_, piped, _) = load_src(pipe(std::fs::read(path).unwrap())).unwrap();
                assert_eq!(piped, img, "{name} through a pipe");
                decoded += 1;
            }
        }
    }
    assert_eq!(decoded, files.len() - TIFF_UNSUPPORTED.len());
}

#[test]
fn tiff_variants_written_by_imagemagick() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], u8, SampleFormat)] = &[
        (
            "planar.tif",
            &["-interlace", "plane", "-depth", "8"],
            3,
            SampleFormat::U8,
        ),
        (
            "planar_alpha16.tif",
            &["-alpha", "set", "-interlace", "plane", "-depth", "16"],
            4,
            SampleFormat::U16,
        ),
        (
            "tiled_rgba16.tif",
            &[
                "-alpha",
                "set",
                "-depth",
                "16",
                "-define",
                "tiff:tile-geometry=32x16",
            ],
            4,
            SampleFormat::U16,
        ),
        (
            "grey4.tif",
            &["-colorspace", "gray", "-depth", "4"],
            1,
            SampleFormat::U8,
        ),
        (
            "grey2.tif",
            &["-colorspace", "gray", "-depth", "2"],
            1,
            SampleFormat::U8,
        ),
        (
            "grey_alpha.tif",
            &[
                "-colorspace",
                "gray",
                "-alpha",
                "set",
                "-depth",
                "8",
                "-compress",
                "lzw",
            ],
            2,
            SampleFormat::U8,
        ),
        (
            "palette8.tif",
            &["-type", "palette", "-depth", "8", "-compress", "lzw"],
            3,
            SampleFormat::U8,
        ),
        (
            "palette4.tif",
            &["-colors", "16", "-type", "palette", "-depth", "4"],
            3,
            SampleFormat::U8,
        ),
        (
            // Few colours: ImageMagick writes 16-bit map entries that are not multiples of
            // 257, which references round differently (vips truncates); many colours are exact.
            "palette8_tiled.tif",
            &[
                "-type",
                "palette",
                "-depth",
                "8",
                "-define",
                "tiff:tile-geometry=16x16",
            ],
            3,
            SampleFormat::U8,
        ),
        (
            "cmyk.tif",
            &["-colorspace", "cmyk", "-depth", "8", "-compress", "zip"],
            3,
            SampleFormat::U8,
        ),
        (
            "deflate_pred.tif",
            &[
                "-depth",
                "8",
                "-compress",
                "zip",
                "-define",
                "tiff:predictor=2",
            ],
            3,
            SampleFormat::U8,
        ),
    ];
    for (name, args, bands, format) in cases {
        let path = dir.path().join(name);
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
        if name.starts_with("cmyk") {
            // ImageMagick converts CMYK with the same formula at 16 bits: off by one at most.
            let r = magick_rgb8(&path);
            let ours = rgba(&wide(&img), 3, 255);
            let theirs = rgba(&r.data, r.bands, 255);
            let worst = ours.iter().zip(&theirs).map(|(a, b)| a.abs_diff(*b)).max();
            assert!(worst.is_some_and(|w| w <= 1), "{name}: off by {worst:?}");
        } else {
            assert_matches_magick(&path, &img);
        }
    }
    // Float TIFF (ImageMagick 6 cannot write one here): vips casts 8-bit values to floats
    // without scaling, so the floats must equal the PNG's samples exactly.
    let png = dir.path().join("rose.png");
    run(Command::new("convert").arg("rose:").arg(&png));
    let path = dir.path().join("float.tif");
    run(Command::new("vips")
        .arg("cast")
        .arg(&png)
        .arg(&path)
        .arg("float"));
    let img = load(&path).unwrap();
    assert_eq!(img.header.format, SampleFormat::F32);
    let want: Vec<f32> = wide(&load(&png).unwrap())
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_eq!(f32s(&img), &want[..]);
    // A page that does not exist is an error.
    let opts = LoadOptions {
        page: 3,
        ..LoadOptions::default()
    };
    let mut src = Source::file(&path).unwrap();
    let fmt = codec::sniff(&mut src).unwrap();
    assert!(codec::load(src, fmt, &opts).is_err());
}

#[test]
fn tiff_save_round_trips_through_imagemagick() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.tif");
    for rel in [
        "pngsuite/primary/basn6a08.png",
        "pngsuite/primary/basn2c08.png",
        "pngsuite/primary/basn0g08.png",
        "pngsuite/primary/basn4a08.png",
        "pngsuite/primary/basn0g01.png",
        "pngsuite/16bit/basn2c16.png",
        "pngsuite/16bit/basn6a16.png",
        "pngsuite/16bit/basn4a16.png",
        "tiff/video-001-paletted.tiff",
    ] {
        let img = load(&corpus(rel)).unwrap();
        for compression in [None, Some("lzw"), Some("deflate")] {
            let opts = match compression {
                Some(c) => SaveOptions::default().with(c, 1),
                None => SaveOptions::default(),
            };
            let bytes = save(img.clone(), OutputFormat::Tiff, &opts);
            std::fs::write(&out, &bytes).unwrap();
            // ImageMagick reads what we wrote, sample for sample, at our depth...
            assert_matches_magick(&out, &img);
            // ... and so do we, from a pipe too.
            let back = load(&out).unwrap();
            assert_eq!(back.samples, img.samples, "{rel} {compression:?}");
            let (_, piped, _) = load_src(pipe(bytes)).unwrap();
            assert_eq!(piped.samples, img.samples);
        }
    }
    // Compression works: a photo-like image shrinks.
    let img = load(&corpus("tiff/video-001.tiff")).unwrap();
    let plain = save(img.clone(), OutputFormat::Tiff, &SaveOptions::default()).len();
    for c in ["lzw", "deflate"] {
        let opts = SaveOptions::default().with(c, 1);
        let n = save(img.clone(), OutputFormat::Tiff, &opts).len();
        assert!(n * 10 < plain * 8, "{c}: {n} vs {plain} bytes uncompressed");
    }
    // ICC and XMP survive byte for byte; strip removes them.
    let (_, icc) = sample_icc(dir.path());
    let mut img = load(&corpus("pngsuite/primary/basn2c08.png")).unwrap();
    img.header.meta.icc = Some(Arc::new(icc.clone()));
    std::fs::write(
        &out,
        save(img.clone(), OutputFormat::Tiff, &SaveOptions::default()),
    )
    .unwrap();
    assert_eq!(exiftool(&["-b", "-ICC_Profile"], &out), icc);
    assert_eq!(load(&out).unwrap().header.meta.icc.as_deref(), Some(&icc));
    let strip = SaveOptions {
        strip: true,
        ..SaveOptions::default()
    };
    std::fs::write(&out, save(img, OutputFormat::Tiff, &strip)).unwrap();
    assert!(exiftool(&["-b", "-ICC_Profile"], &out).is_empty());
    assert!(load(&out).unwrap().header.meta.icc.is_none());
}

#[test]
fn jpeg_compressed_tiffs_match_imagemagick() {
    let dir = tempfile::tempdir().unwrap();
    let colour = corpus("jpeg/video-001.jpeg");
    let grey = corpus("jpeg/video-005.gray.jpeg");
    let cases: Vec<(&str, Command)> = vec![
        ("strips.tif", {
            let mut c = Command::new("vips");
            c.arg("tiffsave")
                .arg(&colour)
                .arg(dir.path().join("strips.tif"));
            c.args(["--compression", "jpeg", "--Q", "90"]);
            c
        }),
        ("tiles.tif", {
            let mut c = Command::new("vips");
            c.arg("tiffsave")
                .arg(&colour)
                .arg(dir.path().join("tiles.tif"));
            c.args([
                "--compression",
                "jpeg",
                "--tile",
                "--tile-width",
                "64",
                "--tile-height",
                "64",
            ]);
            c
        }),
        ("pyramid.tif", {
            let mut c = Command::new("vips");
            c.arg("tiffsave")
                .arg(&colour)
                .arg(dir.path().join("pyramid.tif"));
            c.args([
                "--compression",
                "jpeg",
                "--tile",
                "--pyramid",
                "--tile-width",
                "64",
                "--tile-height",
                "64",
            ]);
            c
        }),
        ("magick.tif", {
            let mut c = Command::new("convert");
            c.arg(&colour)
                .args(["-compress", "jpeg"])
                .arg(dir.path().join("magick.tif"));
            c
        }),
        ("grey.tif", {
            let mut c = Command::new("convert");
            c.arg(&grey)
                .args(["-compress", "jpeg"])
                .arg(dir.path().join("grey.tif"));
            c
        }),
    ];
    for (name, mut cmd) in cases {
        run(&mut cmd);
        let path = dir.path().join(name);
        let img = load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = magick_rgb8(&path);
        assert_eq!(
            (img.header.width, img.header.height),
            (r.width, r.height),
            "{name}"
        );
        let ours = rgba(&wide(&img), img.header.bands as u32, 255);
        let db = psnr(&ours, &rgba(&r.data, r.bands, 255), 255);
        eprintln!("{name}: {db:.1} dB vs ImageMagick");
        // Both decode the same JPEG data; IDCT and upsampling differ in the last bit.
        assert!(db > 45.0, "{name}: {db:.1} dB");
    }
}

/// A seekable custom source over a file that counts the bytes handed out.
fn counting_source(path: &Path) -> (Source<'static>, Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Seek, SeekFrom};
    use std::sync::atomic::Ordering;
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let file = Arc::new(std::sync::Mutex::new(std::fs::File::open(path).unwrap()));
    let (f1, f2, c) = (file.clone(), file, count.clone());
    let src = Source::custom(
        move |buf: &mut [u8]| {
            let n = f1.lock().unwrap().read(buf)?;
            c.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        },
        Some(move |to: u64| f2.lock().unwrap().seek(SeekFrom::Start(to)).map(|_| ())),
    );
    (src, count)
}

/// Renders through the pipeline from a counting source: (decoded output, bytes read).
fn render_counting(path: &Path, spec: &str) -> (Image, u64) {
    let (src, count) = counting_source(path);
    let mem = MemoryTarget::new();
    let mut t = mem.clone();
    let spec: thumbfs::spec::Spec = spec.parse().unwrap();
    thumbfs::pipeline::render(src, &spec, &mut t, &Default::default()).unwrap();
    let out = load_src(Source::memory(mem.take())).unwrap().1;
    (out, count.load(std::sync::atomic::Ordering::Relaxed))
}

#[test]
fn tiled_tiff_reads_each_tile_once_and_a_pyramid_only_its_small_level() {
    let dir = tempfile::tempdir().unwrap();
    let photo = corpus_files("photos", &["jpg", "jpeg"]).remove(0);
    let base = dir.path().join("base.v");
    run(Command::new("vips")
        .arg("thumbnail")
        .arg(&photo)
        .arg(&base)
        .arg("2048"));
    let flat = dir.path().join("flat.tif");
    let pyramid = dir.path().join("pyramid.tif");
    for (out, extra) in [(&flat, &[][..]), (&pyramid, &["--pyramid"][..])] {
        run(Command::new("vips")
            .arg("tiffsave")
            .arg(&base)
            .arg(out)
            .args(["--tile", "--tile-width", "128", "--tile-height", "128"])
            .args(["--compression", "deflate"])
            .args(extra));
    }
    let flat_len = std::fs::metadata(&flat).unwrap().len();
    let pyr_len = std::fs::metadata(&pyramid).unwrap().len();

    // No pyramid: every tile is needed, and each is read once (plus the source's read-ahead
    // past each tile, which the next seek discards: a few percent).
    let (thumb_flat, read) = render_counting(&flat, "w256_png");
    eprintln!("flat: read {read} of {flat_len} bytes");
    assert!(
        read >= flat_len * 9 / 10 && read <= flat_len + flat_len / 10,
        "{read}"
    );

    // Pyramid: a thumbnail reads the IFDs and one small level (1/16 of the pixels), not the
    // full-size tiles; the source's 64 KiB read-ahead after each seek is most of the rest.
    let (thumb_pyr, read) = render_counting(&pyramid, "w256_png");
    eprintln!("pyramid w256: read {read} of {pyr_len} bytes");
    assert!(read * 4 < pyr_len, "read {read} of {pyr_len}");
    assert_eq!(
        (thumb_pyr.header.width, thumb_pyr.header.height),
        (thumb_flat.header.width, thumb_flat.header.height)
    );
    let db = psnr(&wide(&thumb_pyr), &wide(&thumb_flat), 255);
    eprintln!("pyramid vs full-size thumbnail: {db:.1} dB");
    assert!(db > 32.0, "{db:.1} dB");

    // An exact box shrink uses the 2x level only when its size is exactly ours.
    let (half, read) = render_counting(&pyramid, "shrink2_png");
    let full = load(&flat).unwrap();
    assert_eq!(half.header.width, full.header.width.div_ceil(2));
    assert_eq!(half.header.height, full.header.height.div_ceil(2));
    eprintln!("pyramid shrink2: read {read} of {pyr_len} bytes");
    assert!(read * 2 < pyr_len, "shrink2 read {read} of {pyr_len}");
    let db = psnr(
        &wide(&half),
        &wide(&render_counting(&flat, "shrink2_png").0),
        255,
    );
    assert!(db > 32.0, "pyramid shrink2 vs box shrink: {db:.1} dB");
}

// ---------------------------------------------------------------- through the CLI

fn thumbfs(args: &[&str], stdin: Option<&Path>) -> Vec<u8> {
    let mut cmd = Command::new(thumbfs_bin());
    cmd.args(args);
    if let Some(p) = stdin {
        cmd.stdin(std::fs::File::open(p).unwrap());
    }
    run(&mut cmd)
}

#[test]
fn cli_converts_between_png_pnm_tiff_and_webp() {
    let dir = tempfile::tempdir().unwrap();
    let png = corpus("pngsuite/primary/basn6a08.png");
    let reference = load(&png).unwrap();
    // PNG → PAM file, PAM on stdin → PNG on stdout, TIFF → WebP (lossless) → PNG.
    let pam = dir.path().join("a.pam");
    thumbfs(
        &[
            "convert",
            "ppm",
            png.to_str().unwrap(),
            pam.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        parse_pnm(&std::fs::read(&pam).unwrap()).data,
        wide(&reference)
    );
    let out = dir.path().join("b.png");
    std::fs::write(&out, thumbfs(&["convert", "png", "-", ".png"], Some(&pam))).unwrap();
    assert_matches_magick(&out, &reference);

    let tif = corpus("tiff/video-001.tiff");
    let webp = dir.path().join("c.webp");
    thumbfs(
        &[
            "convert",
            "webp_lossless",
            tif.to_str().unwrap(),
            webp.to_str().unwrap(),
        ],
        None,
    );
    let r = dwebp(&webp);
    let t = load(&tif).unwrap();
    assert_eq!(rgba(&r.data, r.bands, 255), rgba(&wide(&t), 3, 255));
}
