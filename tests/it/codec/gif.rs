//! GIF, Radiance HDR and SVG loaders against ImageMagick and libvips.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;
use thumbfs::codec::{self, LoadOptions};
use thumbfs::{Image, Samples, Source};

fn load(path: &Path, opts: LoadOptions) -> thumbfs::Result<(Image, u32)> {
    let mut src = Source::file(path).unwrap();
    let fmt = codec::sniff(&mut src)?;
    codec::probe(&mut src, fmt)?;
    let loaded = codec::load(src, fmt, &opts)?;
    let applied = loaded.shrink;
    Ok((Image::collect(loaded.stream)?, applied))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn u8s(img: &Image) -> Vec<u16> {
    match &img.samples {
        Samples::U8(v) => v.iter().map(|&x| x as u16).collect(),
        other => panic!("expected 8-bit samples, got {:?}", other.format()),
    }
}

#[test]
fn gif_first_frame_matches_imagemagick() {
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("rose.gif");
    run(Command::new("convert")
        .args(["rose:", "-resize", "200%"])
        .arg(&gif));
    let (img, _) = load(&gif, LoadOptions::default()).unwrap();
    let reference = magick_rgb8(&gif);
    assert_eq!((img.header.width, img.header.height), (140, 92));
    assert_eq!(img.header.bands, 3, "an opaque GIF becomes RGB");
    assert_eq!(u8s(&img), reference.data);

    // Transparency and a frame smaller than the screen: the second frame of an animation is
    // not shown, the first keeps its alpha.
    let anim = dir.path().join("anim.gif");
    run(Command::new("convert")
        .args([
            "-size",
            "40x30",
            "xc:none",
            "-fill",
            "red",
            "-draw",
            "rectangle 5,5 20,20",
        ])
        .args(["(", "-size", "40x30", "xc:blue", ")"])
        .arg(&anim));
    let (img, _) = load(&anim, LoadOptions::default()).unwrap();
    assert_eq!(img.header.bands, 4);
    let px = |x: usize, y: usize| -> Vec<u16> {
        let v = u8s(&img);
        v[(y * 40 + x) * 4..(y * 40 + x) * 4 + 4].to_vec()
    };
    assert_eq!(px(10, 10), vec![255, 0, 0, 255]);
    assert_eq!(px(30, 25)[3], 0, "transparent outside the rectangle");
}

/// Radiance values decode to the same linear floats libvips reads.
#[test]
fn hdr_matches_libvips_floats() {
    let dir = tempfile::tempdir().unwrap();
    let hdr = dir.path().join("rose.hdr");
    run(Command::new("convert").arg("rose:").arg(&hdr));
    let (img, _) = load(&hdr, LoadOptions::default()).unwrap();
    assert_eq!(
        (img.header.width, img.header.height, img.header.bands),
        (70, 46, 3)
    );
    let Samples::F32(ours) = &img.samples else {
        panic!("hdr decodes to float")
    };
    // Reference: libvips' hdrload, written as PFM (ImageMagick would apply a gamma on output).
    let pfm = dir.path().join("rose.pfm");
    run(Command::new("vips").arg("copy").arg(&hdr).arg(&pfm));
    let reference = read_pfm(&std::fs::read(&pfm).unwrap());
    assert_eq!(reference.len(), ours.len());
    let max_err = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1e-3))
        .fold(0f32, f32::max);
    assert!(max_err < 1e-4, "relative error {max_err}");
}

/// Parses a PFM as libvips 8.14 writes it: comment lines allowed, and rows top to bottom
/// (the PFM convention is bottom to top; this vips version does not flip).
fn read_pfm(bytes: &[u8]) -> Vec<f32> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if bytes[pos] == b'#' {
            while bytes[pos] != b'\n' {
                pos += 1;
            }
            continue;
        }
        let start = pos;
        while !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..pos]).to_string());
    }
    pos += 1;
    let bands = if fields[0] == "PF" { 3 } else { 1 };
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let little = fields[3].starts_with('-');
    let floats: Vec<f32> = bytes[pos..]
        .chunks_exact(4)
        .map(|c| {
            let b = [c[0], c[1], c[2], c[3]];
            if little {
                f32::from_le_bytes(b)
            } else {
                f32::from_be_bytes(b)
            }
        })
        .collect();
    assert_eq!(floats.len(), w * h * bands);
    floats
}

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
        let (img, applied) = load(
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
