//! Radiance HDR loader against libvips' floats.

use crate::common;

use std::process::Command;

use common::codec::*;
use common::*;
use thumbfs::codec::LoadOptions;
use thumbfs::Samples;

/// Radiance values decode to the same linear floats libvips reads.
#[test]
fn hdr_matches_libvips_floats() {
    let dir = tempfile::tempdir().unwrap();
    let hdr = dir.path().join("rose.hdr");
    run(Command::new("convert").arg("rose:").arg(&hdr));
    let (img, _) = load_with(&hdr, LoadOptions::default()).unwrap();
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
