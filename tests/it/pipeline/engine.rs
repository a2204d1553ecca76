//! End-to-end tests of the engine and the command line, checked against libvips.

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

fn thumbfs(args: &[&str]) -> std::process::Output {
    Command::new(thumbfs_bin()).args(args).output().unwrap()
}

fn ok(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "thumbfs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `sh -c script` and returns stdout.
fn sh(script: &str) -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", script])
        .env("THUMBFS", thumbfs_bin())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

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

/// The corpus photo cut in half: its entropy-coded data ends mid-image.
fn cut_jpeg(dir: &Path) -> std::path::PathBuf {
    let bytes = std::fs::read(corpus(PHOTO)).unwrap();
    let cut = dir.join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    cut
}

#[test]
fn vips_pipe_form_matches_convert_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jpg");
    let photo = corpus(PHOTO);
    let piped = sh(&format!(
        "cat '{}' | \"$THUMBFS\" invert 'stdin[shrink=2]' '.jpg[Q=90]' | cat",
        photo.display()
    ));
    ok(thumbfs(&[
        "convert",
        "q90_shrink2_invert",
        photo.to_str().unwrap(),
        out.to_str().unwrap(),
    ]));
    let converted = std::fs::read(&out).unwrap();
    assert!(piped.len() > 10_000, "output too small: {}", piped.len());
    assert_eq!(piped, converted);
    // And it is a real JPEG of the right size, per ImageMagick.
    let id = Command::new("identify")
        .args(["-format", "%w %h %m"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&id.stdout), "2136 1424 JPEG");
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
        ok(out)
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
    ok(thumbfs(&[
        "convert",
        "shrink2_ppm",
        png.to_str().unwrap(),
        ours.to_str().unwrap(),
    ]));
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
    ok(thumbfs(&[
        "convert",
        "shrink2_ppm",
        photo.to_str().unwrap(),
        ours.to_str().unwrap(),
    ]));
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
    ok(thumbfs(&[
        "convert",
        "w256_ppm",
        photo.to_str().unwrap(),
        ours.to_str().unwrap(),
    ]));
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

#[test]
fn exit_codes_and_messages() {
    let photo = corpus(PHOTO);
    let p = photo.to_str().unwrap();
    let bad = thumbfs(&["convert", "q900", p, ".jpg"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("q900: quality must be 1..100"));
    let missing = thumbfs(&["convert", "q90", "/nonexistent/x.jpg", ".jpg"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/x.jpg"));
    let dir = tempfile::tempdir().unwrap();
    let trunc = cut_jpeg(dir.path());
    let out = thumbfs(&["convert", "q90", trunc.to_str().unwrap(), ".jpg"]);
    assert_eq!(out.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("cut.jpg"), "{msg}");
    assert_eq!(msg.lines().count(), 1, "one-line error: {msg}");
    let corrupt = corpus("pngsuite/corrupt/xcrn0g04.png");
    let out = thumbfs(&["convert", "w10", corrupt.to_str().unwrap(), ".png"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn failed_output_file_is_not_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.jpg");
    let trunc = cut_jpeg(dir.path());
    let r = thumbfs(&[
        "convert",
        "q90",
        trunc.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(!out.exists());
}

#[test]
fn info_reads_headers() {
    let out = ok(thumbfs(&[
        "info",
        corpus(PHOTO).to_str().unwrap(),
        corpus("exif-orientation/Portrait_6.jpg").to_str().unwrap(),
        corpus("pngsuite/16bit/basn6a16.png").to_str().unwrap(),
    ]));
    let s = String::from_utf8_lossy(&out);
    assert!(
        s.contains("jpeg 4272x2848 bands=3 depth=8 orientation=1"),
        "{s}"
    );
    assert!(s.contains("orientation=6"), "{s}");
    assert!(s.contains("png 32x32 bands=4 depth=16"), "{s}");
}

#[test]
fn thumbnail_and_copy_forms() {
    let dir = tempfile::tempdir().unwrap();
    let photo = corpus(PHOTO);
    let t = dir.path().join("t.jpg");
    ok(thumbfs(&[
        "thumbnail",
        photo.to_str().unwrap(),
        t.to_str().unwrap(),
        "128",
    ]));
    let id = Command::new("identify")
        .args(["-format", "%w %h"])
        .arg(&t)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&id.stdout), "128 85");
    let c = dir.path().join("c.png");
    ok(thumbfs(&[
        "copy",
        t.to_str().unwrap(),
        &format!("{}[compression=9]", c.display()),
    ]));
    // The PNG holds exactly the decoded JPEG: within libjpeg-vs-zune IDCT rounding of djpeg.
    let a = djpeg(&t);
    let b = magick_decode(&c, 8);
    let p = psnr(&a.data, &b.data, 255);
    assert!(p >= 55.0, "copy to PNG: {p:.1} dB against djpeg");
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
