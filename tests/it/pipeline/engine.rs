//! The engine end to end, checked against libvips: shrink, resize, thread counts, custom
//! sources and targets, generic and SIMD paths.

use crate::common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use thumbfs::codec::{self, LoadOptions};
use thumbfs::io::target::CustomTarget;
use thumbfs::{Image, RenderOptions, Source, Spec};

const PHOTO: &str = "photos/sunset_by_Aitzol_Berasategi.jpg";

/// A mid-sized PNG made from a corpus photo by libvips (so PNG decoding is exact on both sides).
fn photo_png(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("photo.png");
    let st = Command::new("vips")
        .arg("resize")
        .arg(corpus(PHOTO))
        .arg(&out)
        .arg("0.25")
        .status()
        .unwrap();
    assert!(st.success());
    out
}

#[test]
fn output_is_identical_for_any_thread_count() {
    let photo = corpus(PHOTO);
    let run = |threads: &str| {
        let out = Command::new(thumbfs_bin())
            .args(["convert", "w300_q85", photo.to_str().unwrap(), ".jpg"])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        succeeded(out)
    };
    let one = run("1");
    assert_eq!(one, run("2"));
    assert_eq!(one, run("7"));
}

#[test]
fn shrink2_matches_vips_shrink_on_png() {
    let dir = tempfile::tempdir().unwrap();
    let png = photo_png(dir.path());
    let ours = dir.path().join("ours.ppm");
    let theirs = dir.path().join("theirs.ppm");
    thumbfs(&[
        "convert",
        "shrink2_ppm",
        png.to_str().unwrap(),
        ours.to_str().unwrap(),
    ]);
    let st = Command::new("vips")
        .arg("shrink")
        .arg(&png)
        .arg(&theirs)
        .args(["2", "2"])
        .status()
        .unwrap();
    assert!(st.success());
    let a = parse_pnm(&std::fs::read(&ours).unwrap());
    let b = parse_pnm(&std::fs::read(&theirs).unwrap());
    // Compare the area covered by full 2x2 boxes in both (edge rounding rules differ).
    let (w, h) = (a.width.min(b.width), a.height.min(b.height));
    let mut worst = 0i32;
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let i = ((y * a.width + x) * 3 + c) as usize;
                let j = ((y * b.width + x) * 3 + c) as usize;
                worst = worst.max((a.data[i] as i32 - b.data[j] as i32).abs());
            }
        }
    }
    assert!(worst <= 1, "max difference {worst} from vips shrink");
}

#[test]
fn shrink2_of_jpeg_is_close_to_vips_shrink() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.ppm");
    let theirs = dir.path().join("theirs.ppm");
    let photo = corpus(PHOTO);
    thumbfs(&[
        "convert",
        "shrink2_ppm",
        photo.to_str().unwrap(),
        ours.to_str().unwrap(),
    ]);
    let st = Command::new("vips")
        .arg("shrink")
        .arg(&photo)
        .arg(&theirs)
        .args(["2", "2"])
        .status()
        .unwrap();
    assert!(st.success());
    let a = parse_pnm(&std::fs::read(&ours).unwrap());
    let b = parse_pnm(&std::fs::read(&theirs).unwrap());
    assert_eq!((a.width, a.height), (b.width, b.height));
    // Different JPEG decoders and chroma handling (we shrink chroma at its stored resolution).
    let p = psnr(&a.data, &b.data, 255);
    assert!(p >= 40.0, "PSNR {p:.1} dB against vips shrink");
}

#[test]
fn w256_thumbnail_is_close_to_vipsthumbnail() {
    let dir = tempfile::tempdir().unwrap();
    let photo = corpus(PHOTO);
    let ours = dir.path().join("ours.ppm");
    thumbfs(&[
        "convert",
        "w256_ppm",
        photo.to_str().unwrap(),
        ours.to_str().unwrap(),
    ]);
    let st = Command::new("vipsthumbnail")
        .arg(&photo)
        .args(["-s", "256", "-o"])
        .arg(dir.path().join("theirs.ppm"))
        .status()
        .unwrap();
    assert!(st.success());
    let a = parse_pnm(&std::fs::read(&ours).unwrap());
    let b = parse_pnm(&std::fs::read(dir.path().join("theirs.ppm")).unwrap());
    assert_eq!((a.width, a.height), (256, 171));
    assert_eq!((a.width, a.height), (b.width, b.height));
    let p = psnr(&a.data, &b.data, 255);
    assert!(p >= 30.0, "PSNR {p:.1} dB against vipsthumbnail");
}

/// The libvips pattern through the public API: header from an unseekable custom source,
/// rewind, then decode with shrink-on-load; output through a custom target.
#[test]
fn custom_unseekable_source_and_custom_target() {
    let bytes = std::fs::read(corpus(PHOTO)).unwrap();
    let served = Arc::new(Mutex::new(0usize));
    let mut at = 0usize;
    let count = served.clone();
    let data = bytes.clone();
    let mut src = Source::custom(
        move |buf: &mut [u8]| {
            let n = buf.len().min(4096).min(data.len() - at);
            buf[..n].copy_from_slice(&data[at..at + n]);
            at += n;
            *count.lock().unwrap() += n;
            Ok(n)
        },
        None::<fn(u64) -> std::io::Result<()>>,
    );
    assert!(!src.is_seekable());
    let format = codec::sniff(&mut src).unwrap();
    let header = codec::probe(&mut src, format).unwrap();
    assert_eq!((header.width, header.height), (4272, 2848));
    // Only the header was pulled from the "pipe" so far.
    assert!(*served.lock().unwrap() < bytes.len() / 2);
    let loaded = codec::load(
        src,
        format,
        &LoadOptions {
            shrink: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let applied = loaded.shrink;
    let img = Image::collect(loaded.stream).unwrap();
    assert_eq!(img.header.width, 4272u32.div_ceil(applied));

    // Same render through a custom target written as closures.
    let out = Arc::new(Mutex::new(Vec::new()));
    let finished = Arc::new(Mutex::new(0));
    let (o, f) = (out.clone(), finished.clone());
    let mut target = CustomTarget::new(
        move |b: &[u8]| {
            o.lock().unwrap().extend_from_slice(b);
            Ok(())
        },
        move || {
            *f.lock().unwrap() += 1;
            Ok(())
        },
    );
    let spec: Spec = "shrink2_q90_invert".parse().unwrap();
    thumbfs::render(
        Source::memory(&bytes[..]),
        &spec,
        &mut target,
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!(*finished.lock().unwrap(), 1);
    let mut child = Command::new(thumbfs_bin())
        .args(["convert", "q90_shrink2_invert", "-", ".jpg"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = std::thread::spawn(move || stdin.write_all(&bytes));
    let mut cli = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut cli).unwrap();
    feed.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        *out.lock().unwrap(),
        cli,
        "library and CLI give the same bytes"
    );
}

/// The generic code paths (what a CPU without AVX2, or an ARM one, runs; forced here with
/// THUMBFS_SIMD=off) give the same bytes as the SIMD ones: output depends on the image and
/// the spec only, not on the machine.
#[test]
fn generic_and_simd_paths_give_identical_bytes() {
    let photo = corpus("photos/sunset_by_Aitzol_Berasategi.jpg");
    let cases: [(&Path, &str, &str); 5] = [
        (&photo, "w256", "-"),
        (&photo, "q90_shrink2_invert", "-"),
        (&photo, "w640_grey", ".png"),
        (&photo, "shrink3_webp", "-"),
        (&photo, "w300_tif", "-"),
    ];
    for (input, spec, out) in cases {
        let render = |simd: &str| {
            run(Command::new(thumbfs_bin())
                .args(["convert", spec])
                .arg(input)
                .arg(out)
                .env("THUMBFS_SIMD", simd))
        };
        let (fast, generic) = (render("on"), render("off"));
        assert!(
            fast == generic,
            "{spec}: THUMBFS_SIMD=off changes the output"
        );
    }
}
