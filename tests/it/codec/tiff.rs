//! TIFF loader and saver against ImageMagick and libvips: variants, JPEG-in-TIFF, tiles and
//! pyramids.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::codec::*;
use common::*;
use thumbfs::codec::{self, LoadOptions, SaveOptions};
use thumbfs::io::target::MemoryTarget;
use thumbfs::spec::OutputFormat;
use thumbfs::{Image, SampleFormat, Source};

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
