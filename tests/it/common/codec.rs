//! Helpers for codec tests: loading and saving through thumbfs, and comparing with the
//! reference decoders.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use thumbfs::codec::{self, LoadOptions, SaveOptions};
use thumbfs::io::target::MemoryTarget;
use thumbfs::spec::OutputFormat;
use thumbfs::{Header, Image, SampleFormat, Samples, Source};

use super::{corpus, corpus_files, magick_decode, p, parse_pnm, psnr, run, thumbfs, Pixels};

/// Sniffs, probes and loads a source at full size: (probed header, image, shrink applied).
pub fn load_src(mut src: Source) -> thumbfs::Result<(Header, Image, u32)> {
    let fmt = codec::sniff(&mut src)?;
    let header = codec::probe(&mut src, fmt)?;
    let loaded = codec::load(src, fmt, &LoadOptions::default())?;
    let shrink = loaded.shrink;
    Ok((header, Image::collect(loaded.stream)?, shrink))
}

/// Loads a file at full size; the probed header must equal the loaded one.
pub fn load(path: &Path) -> thumbfs::Result<Image> {
    let (header, img, shrink) = load_src(Source::file(path).unwrap())?;
    assert_eq!(shrink, 1);
    assert_eq!(header, img.header, "probe and load headers differ");
    Ok(img)
}

/// An unseekable source over bytes that hands out at most 1000 bytes per read, like a pipe.
pub fn pipe(data: Vec<u8>) -> Source<'static> {
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

/// Saves `img` in `format` to memory; the target must be finished.
pub fn save(img: Image, format: OutputFormat, opts: &SaveOptions) -> Vec<u8> {
    let mem = MemoryTarget::new();
    let mut t = mem.clone();
    codec::save(Box::new(img.into_stream(7)), format, opts, &mut t).unwrap();
    assert!(mem.is_finished());
    mem.take()
}

/// Our samples widened to u16 (floats are not handled here).
pub fn wide(img: &Image) -> Vec<u16> {
    match &img.samples {
        Samples::U8(v) => v.iter().map(|&x| x as u16).collect(),
        Samples::U16(v) => v.clone(),
        Samples::F32(_) => panic!("float samples"),
    }
}

/// Any band layout as RGBA, so grey vs RGB choices of the reference do not matter.
pub fn rgba(data: &[u16], bands: u32, max: u16) -> Vec<u16> {
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
pub fn assert_matches_magick(path: &Path, img: &Image) {
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

/// The PngSuite files, primary and 16-bit.
pub fn pngsuite() -> Vec<PathBuf> {
    let mut v = corpus_files("pngsuite/primary", &["png"]);
    v.extend(corpus_files("pngsuite/16bit", &["png"]));
    v
}

/// EXIF with one IFD0 entry, orientation 6, big-endian.
pub fn exif_orientation_6() -> Vec<u8> {
    let mut e = b"MM\0*\0\0\0\x08\0\x01".to_vec();
    e.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
    e
}

/// ImageMagick's reading of a float file, as 0..65535.
pub fn magick_floats(path: &Path) -> Pixels {
    magick_decode(path, 16)
}

/// The float samples of `img`.
pub fn f32s(img: &Image) -> &[f32] {
    match &img.samples {
        Samples::F32(v) => v,
        other => panic!("expected floats, got {:?}", other.format()),
    }
}

/// Our floats against ImageMagick's 16-bit reading of the same file, within one step.
pub fn assert_floats_match(path: &Path, img: &Image) {
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

/// Decodes a WebP with libwebp's dwebp to PAM.
pub fn dwebp(path: &Path) -> Pixels {
    parse_pnm(&run(Command::new("dwebp")
        .arg(path)
        .args(["-pam", "-o", "-"])))
}

/// Loads a file with `opts`: (image, shrink applied).
pub fn load_with(path: &Path, opts: LoadOptions) -> thumbfs::Result<(Image, u32)> {
    let mut src = Source::file(path).unwrap();
    let fmt = codec::sniff(&mut src)?;
    codec::probe(&mut src, fmt)?;
    let loaded = codec::load(src, fmt, &opts)?;
    let applied = loaded.shrink;
    Ok((Image::collect(loaded.stream)?, applied))
}

/// The 8-bit samples of `img`, widened.
pub fn u8s(img: &Image) -> Vec<u16> {
    match &img.samples {
        Samples::U8(v) => v.iter().map(|&x| x as u16).collect(),
        other => panic!("expected 8-bit samples, got {:?}", other.format()),
    }
}

/// Test inputs: an RGB and an RGBA PNG cut from a corpus photo (even sizes, as 4:2:0 wants).
pub fn sources(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let rgb = d.join("rgb.png");
    run(Command::new("convert")
        .arg(corpus("photos/sunset_by_Aitzol_Berasategi.jpg"))
        .args(["-resize", "480x320!", "-strip"])
        .arg(&rgb));
    let rgba = d.join("rgba.png");
    run(Command::new("convert")
        .arg(&rgb)
        .args([
            "(",
            "+clone",
            "-fx",
            "0.2+0.8*i/w",
            ")",
            "-compose",
            "copy_opacity",
            "-composite",
        ])
        .arg(&rgba));
    let deep = d.join("rgb16.png");
    run(Command::new("convert")
        .arg(&rgb)
        .args(["-depth", "16"])
        .arg(&deep));
    (rgb, rgba, deep)
}

/// Our decode (as PNG through the CLI) against a reference PNG, at `depth` bits.
pub fn compare(ours_src: &Path, reference: &Path, depth: u32, min_db: f64, d: &Path) -> f64 {
    let ours = d.join(format!(
        "{}.ours.png",
        ours_src.file_name().unwrap().to_str().unwrap()
    ));
    thumbfs(&["convert", "png", p(ours_src), p(&ours)]);
    let (a, b) = (magick_decode(&ours, depth), magick_decode(reference, depth));
    assert_eq!(
        (a.width, a.height, a.bands),
        (b.width, b.height, b.bands),
        "{ours_src:?}: geometry differs from the reference decoder"
    );
    let db = psnr(&a.data, &b.data, a.maxval.max(b.maxval));
    assert!(
        db >= min_db,
        "{ours_src:?}: {db:.1} dB against the reference decoder"
    );
    db
}
