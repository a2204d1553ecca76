//! SVG rendering at the requested size against librsvg (through libvips).

use crate::common;

use std::path::Path;
use std::process::Command;

use common::codec::*;
use common::*;
use thumbfs::codec::LoadOptions;

fn write_svg(dir: &Path) -> std::path::PathBuf {
    let svg = dir.join("drawing.svg");
    std::fs::write(
        &svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80" viewBox="0 0 60 40">
  <rect x="0" y="0" width="60" height="40" fill="#3366cc"/>
  <circle cx="30" cy="20" r="15" fill="#ffcc00" fill-opacity="0.8"/>
  <path d="M5 35 L55 5" stroke="#cc0000" stroke-width="3"/>
  <image href="/etc/hostname" width="10" height="10"/>
</svg>"##,
    )
    .unwrap();
    svg
}

/// SVG renders at its intrinsic size and directly at a requested size, close to librsvg.
#[test]
fn svg_renders_at_requested_size_close_to_librsvg() {
    let dir = tempfile::tempdir().unwrap();
    let svg = write_svg(dir.path());
    for (fit, scale) in [
        (None, "1"),
        (Some((60, 40)), "0.5"),
        (Some((240, 160)), "2"),
    ] {
        let (img, applied) = load_with(
            &svg,
            LoadOptions {
                fit,
                shrink: 4,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(applied, 4);
        let (w, h) = fit.unwrap_or((30, 20));
        assert_eq!((img.header.width, img.header.height), (w, h));
        if fit.is_none() {
            continue;
        }
        let png = dir.path().join("ref.png");
        run(Command::new("vips")
            .arg("svgload")
            .arg(&svg)
            .arg(&png)
            .args(["--scale", scale]));
        let reference = magick_decode(&png, 8);
        assert_eq!(reference.bands, 4);
        let p = psnr(&u8s(&img), &reference.data, 255);
        eprintln!("svg at {w}x{h}: {p:.1} dB");
        assert!(p >= 25.0, "{w}x{h}: {p:.1} dB");
    }
}
