//! WebP EXIF orientation 1-8 (files written by libvips, whose EXIF chunk keeps the `Exif\0\0`
//! prefix, and by exiftool), and the eXIf chunk copied into a PNG output (valid TIFF
//! structure, orientation 1 after autorotation).

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The orientation `thumbfs info` reports.
fn info_orientation(path: &Path) -> String {
    let out = String::from_utf8(thumbfs(&["info", p(path)])).unwrap();
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("orientation="))
        .unwrap_or_else(|| panic!("no orientation in {out}"))
        .to_string()
}

/// The eXIf chunk's payload of a PNG file.
fn exif_chunk(png: &[u8]) -> Option<Vec<u8>> {
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        if &png[at + 4..at + 8] == b"eXIf" {
            return Some(png[at + 8..at + 8 + len].to_vec());
        }
        at += 12 + len;
    }
    None
}

/// ImageMagick reads `path` without a warning on stderr.
fn magick_reads_cleanly(path: &Path) {
    let out = Command::new("identify").arg(path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "identify {path:?}: {err}");
    assert!(
        !err.contains("byte-order") && !err.contains("eXIf"),
        "ImageMagick warns on {path:?}: {err}"
    );
}

#[test]
fn webp_orientation_two_to_eight_is_applied_and_png_exif_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // exiftool variants: one stored image, the tag set to each value.
    let base = d.join("base.webp");
    run(Command::new("convert")
        .arg(corpus("exif-orientation/Landscape_1.jpg"))
        .args(["-resize", "300x", "-quality", "95"])
        .arg(&base));
    for n in 1..=8u32 {
        // libvips writes the EXIF chunk with the APP1 "Exif\0\0" prefix (the bug's trigger).
        let vips_made = d.join(format!("vips_{n}.webp"));
        run(Command::new("vips")
            .arg("copy")
            .arg(corpus(&format!("exif-orientation/Landscape_{n}.jpg")))
            .arg(format!("{}[Q=95]", p(&vips_made))));
        let tool_made = d.join(format!("tool_{n}.webp"));
        std::fs::copy(&base, &tool_made).unwrap();
        exiftool(
            &[
                "-q",
                "-overwrite_original",
                "-n",
                &format!("-Orientation={n}"),
            ],
            &tool_made,
        );
        for src in [&vips_made, &tool_made] {
            assert_eq!(exif_orientation(src), n.to_string(), "{src:?}");
            assert_eq!(info_orientation(src), n.to_string(), "{src:?}");
            let ours = d.join(format!("ours_{n}.png"));
            thumbfs(&["convert", "png", p(src), p(&ours)]);
            let reference = d.join(format!("ref_{n}.png"));
            run(Command::new("vips").arg("autorot").arg(src).arg(&reference));
            let (a, b) = (magick_rgb8(&ours), magick_rgb8(&reference));
            assert_eq!(
                (a.width, a.height),
                (b.width, b.height),
                "{src:?}: size differs from vips autorot"
            );
            let db = psnr(&a.data, &b.data, 255);
            assert!(db > 45.0, "{src:?}: {db:.1} dB against vips autorot");
            // The EXIF carried into the PNG starts at the TIFF header, says upright, and
            // ImageMagick reads it without complaint.
            let chunk = exif_chunk(&std::fs::read(&ours).unwrap())
                .unwrap_or_else(|| panic!("{src:?}: EXIF not carried into the PNG"));
            assert!(
                chunk.starts_with(b"MM\0*") || chunk.starts_with(b"II*\0"),
                "{src:?}: eXIf starts with {:?}",
                &chunk[..chunk.len().min(8)]
            );
            assert_eq!(exif_orientation(&ours), "1", "{src:?}");
            magick_reads_cleanly(&ours);
            // noautorotate keeps the tag, still valid.
            let kept = d.join(format!("kept_{n}.png"));
            thumbfs(&["convert", "png_noautorotate", p(src), p(&kept)]);
            assert_eq!(exif_orientation(&kept), n.to_string(), "{src:?}");
            magick_reads_cleanly(&kept);
        }
    }
}
