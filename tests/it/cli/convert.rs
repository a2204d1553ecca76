//! `thumbfs convert` and `thumbfs info`: the vips-like forms, pipes, exit codes and messages.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::codec::*;
use common::*;

const PHOTO: &str = "photos/sunset_by_Aitzol_Berasategi.jpg";

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
    thumbfs(&[
        "convert",
        "q90_shrink2_invert",
        photo.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
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
fn exit_codes_and_messages() {
    let photo = corpus(PHOTO);
    let p = photo.to_str().unwrap();
    let bad = thumbfs_output(&["convert", "q900", p, ".jpg"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("q900: quality must be 1..100"));
    let missing = thumbfs_output(&["convert", "q90", "/nonexistent/x.jpg", ".jpg"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/x.jpg"));
    let dir = tempfile::tempdir().unwrap();
    let trunc = cut_jpeg(dir.path());
    let out = thumbfs_output(&["convert", "q90", trunc.to_str().unwrap(), ".jpg"]);
    assert_eq!(out.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("cut.jpg"), "{msg}");
    assert_eq!(msg.lines().count(), 1, "one-line error: {msg}");
    let corrupt = corpus("pngsuite/corrupt/xcrn0g04.png");
    let out = thumbfs_output(&["convert", "w10", corrupt.to_str().unwrap(), ".png"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn failed_output_file_is_not_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.jpg");
    let trunc = cut_jpeg(dir.path());
    let r = thumbfs_output(&[
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
    let out = thumbfs(&[
        "info",
        corpus(PHOTO).to_str().unwrap(),
        corpus("exif-orientation/Portrait_6.jpg").to_str().unwrap(),
        corpus("pngsuite/16bit/basn6a16.png").to_str().unwrap(),
    ]);
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
    thumbfs(&[
        "thumbnail",
        photo.to_str().unwrap(),
        t.to_str().unwrap(),
        "128",
    ]);
    let id = Command::new("identify")
        .args(["-format", "%w %h"])
        .arg(&t)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&id.stdout), "128 85");
    let c = dir.path().join("c.png");
    thumbfs(&[
        "copy",
        t.to_str().unwrap(),
        &format!("{}[compression=9]", c.display()),
    ]);
    // The PNG holds exactly the decoded JPEG: within libjpeg-vs-zune IDCT rounding of djpeg.
    let a = djpeg(&t);
    let b = magick_decode(&c, 8);
    let p = psnr(&a.data, &b.data, 255);
    assert!(p >= 55.0, "copy to PNG: {p:.1} dB against djpeg");
}

#[test]
fn cli_converts_between_png_pnm_tiff_and_webp() {
    let dir = tempfile::tempdir().unwrap();
    let png = corpus("pngsuite/primary/basn6a08.png");
    let reference = load(&png).unwrap();
    // PNG → PAM file, PAM on stdin → PNG on stdout, TIFF → WebP (lossless) → PNG.
    let pam = dir.path().join("a.pam");
    thumbfs(&[
        "convert",
        "ppm",
        png.to_str().unwrap(),
        pam.to_str().unwrap(),
    ]);
    assert_eq!(
        parse_pnm(&std::fs::read(&pam).unwrap()).data,
        wide(&reference)
    );
    let out = dir.path().join("b.png");
    let piped = run(Command::new(thumbfs_bin())
        .args(["convert", "png", "-", ".png"])
        .stdin(std::fs::File::open(&pam).unwrap()));
    std::fs::write(&out, piped).unwrap();
    assert_matches_magick(&out, &reference);

    let tif = corpus("tiff/video-001.tiff");
    let webp = dir.path().join("c.webp");
    thumbfs(&[
        "convert",
        "webp_lossless",
        tif.to_str().unwrap(),
        webp.to_str().unwrap(),
    ]);
    let r = dwebp(&webp);
    let t = load(&tif).unwrap();
    assert_eq!(rgba(&r.data, r.bands, 255), rgba(&wide(&t), 3, 255));
}
