//! JPEG saver: read back by djpeg, sampling as libvips chooses, metadata kept or stripped.

use crate::common;

use common::*;

/// Our encoder's output, decoded by djpeg, is close to what went in; quality and chroma
/// subsampling follow libvips (4:2:0 below Q90, 4:4:4 from Q90).
#[test]
fn saved_jpeg_decodes_with_djpeg_and_follows_vips_sampling() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus("jpeg/flower.png.im_q85_444.jpg");
    let original = djpeg(&input);
    for (q, sampling, min_db) in [(75, "2x2,1x1,1x1", 30.0), (95, "1x1,1x1,1x1", 38.0)] {
        let out = dir.path().join(format!("q{q}.jpg"));
        run(std::process::Command::new(thumbfs_bin())
            .args(["convert", &format!("q{q}")])
            .arg(&input)
            .arg(&out));
        let back = djpeg(&out);
        let p = psnr(&back.data, &original.data, 255);
        eprintln!("q{q}: {p:.1} dB");
        assert!(p >= min_db, "q{q}: {p:.1} dB");
        let info = String::from_utf8(run(std::process::Command::new("identify")
            .args(["-format", "%[jpeg:sampling-factor] %Q"])
            .arg(&out)))
        .unwrap();
        assert_eq!(info, format!("{sampling} {q}"), "q{q}");
    }
}

/// ICC profiles are copied byte for byte; `strip` removes ICC, EXIF and XMP.
#[test]
fn icc_exif_xmp_survive_and_strip_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let with_icc = dir.path().join("icc.jpg");
    run(std::process::Command::new("vips")
        .arg("icc_transform")
        .arg(corpus("exif-orientation/Landscape_1.jpg"))
        .arg(&with_icc)
        .args(["srgb", "--embedded"]));
    let icc = |p: &std::path::Path| exiftool(&["-b", "-ICC_Profile"], p);
    let tags = |p: &std::path::Path| {
        String::from_utf8(exiftool(
            &["-s", "-s", "-s", "-XMPToolkit", "-Orientation#"],
            p,
        ))
        .unwrap()
    };
    let original_icc = icc(&with_icc);
    assert!(original_icc.len() > 1000);
    let kept = dir.path().join("kept.jpg");
    run(std::process::Command::new(thumbfs_bin())
        .args(["convert", "q90"])
        .arg(&with_icc)
        .arg(&kept));
    assert_eq!(icc(&kept), original_icc, "ICC byte for byte");
    let original_tags = tags(&with_icc);
    assert!(!original_tags.is_empty());
    assert_eq!(tags(&kept), original_tags, "XMP and orientation kept");
    let stripped = dir.path().join("stripped.jpg");
    run(std::process::Command::new(thumbfs_bin())
        .args(["convert", "q90_strip"])
        .arg(&with_icc)
        .arg(&stripped));
    assert!(icc(&stripped).is_empty());
    assert_eq!(tags(&stripped), "");
}
