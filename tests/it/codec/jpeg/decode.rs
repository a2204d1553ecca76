//! JPEG loader against djpeg (libjpeg-turbo) and libvips.

use crate::common;

use common::*;
use thumbfs::codec::{self, LoadOptions};
use thumbfs::{Image, Samples, Source};

/// Decodes with our loader at `shrink`, returns the image and the shrink applied.
fn ours(path: &std::path::Path, shrink: u32) -> thumbfs::Result<(Image, u32)> {
    let mut src = Source::file(path).unwrap();
    let fmt = codec::sniff(&mut src)?;
    codec::probe(&mut src, fmt)?;
    let opts = LoadOptions {
        shrink,
        ..Default::default()
    };
    let loaded = codec::load(src, fmt, &opts)?;
    let applied = loaded.shrink;
    Ok((Image::collect(loaded.stream)?, applied))
}

fn samples_u16(img: &Image) -> Vec<u16> {
    match &img.samples {
        Samples::U8(v) => v.iter().map(|&x| x as u16).collect(),
        _ => panic!("jpeg decodes to 8 bits"),
    }
}

/// Every JPEG in the corpus against djpeg, RGB or grey. (`progressive.truncated` holds only the
/// first scans followed by EOI: a valid, coarser image, as djpeg agrees.)
#[test]
fn corpus_matches_djpeg() {
    for path in corpus_files("jpeg", &["jpg", "jpeg"]) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (img, _) = ours(&path, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference = djpeg(&path);
        assert_eq!(
            (img.header.width, img.header.height),
            (reference.width, reference.height),
            "{name}"
        );
        let mine = samples_u16(&img);
        // djpeg writes CMYK files as PAM with 4 bands; compare only grey/RGB files directly.
        if reference.bands != img.header.bands as u32 {
            continue;
        }
        let p = psnr(&mine, &reference.data, 255);
        eprintln!("{name}: {p:.1} dB");
        // libjpeg smooths blocks whose AC scans never arrived; zune leaves them blocky.
        let bound = if name.contains("truncated") {
            50.0
        } else {
            60.0
        };
        assert!(p >= bound, "{name}: {p:.1} dB against djpeg");
    }
}

/// Shrink-on-load (luma and chroma box-shrunk at their stored resolution) against libvips'
/// box shrink of its own full-size decode.
#[test]
fn shrink_on_load_matches_vips_shrink() {
    let dir = tempfile::tempdir().unwrap();
    for (file, s) in [
        ("jpeg/video-001.q50.420.jpeg", 2),
        ("jpeg/video-001.q50.420.progressive.jpeg", 4),
        ("jpeg/video-001.q50.422.jpeg", 2),
        ("jpeg/video-001.q50.444.jpeg", 4),
        ("jpeg/video-005.gray.q50.jpeg", 2),
        ("photos/sunset_by_Aitzol_Berasategi.jpg", 8),
    ] {
        let path = corpus(file);
        let (img, applied) = ours(&path, s).unwrap();
        assert_eq!(applied, s, "{file}: shrink applied on load");
        let out = dir.path().join("shrunk.pnm");
        let status = std::process::Command::new("vips")
            .arg("shrink")
            .arg(&path)
            .arg(&out)
            .args([s.to_string(), s.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let reference = parse_pnm(&std::fs::read(&out).unwrap());
        assert_eq!(
            (img.header.width, img.header.height),
            (reference.width, reference.height),
            "{file}"
        );
        let p = psnr(&samples_u16(&img), &reference.data, 255);
        eprintln!("{file} shrink {s}: {p:.1} dB");
        assert!(p >= 38.0, "{file}: shrink {s}: {p:.1} dB");
    }
}

#[test]
fn odd_shrink_of_subsampled_file_is_left_to_the_pipeline() {
    let (img, applied) = ours(&corpus("jpeg/video-001.q50.420.jpeg"), 3).unwrap();
    assert_eq!(applied, 1);
    assert_eq!(img.header.width, 150);
}

/// A file cut short inside its entropy-coded data is an error naming the cause, for baseline
/// (row streaming) and progressive (buffered) files alike.
#[test]
fn file_cut_short_is_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "photos/sunset_by_Aitzol_Berasategi.jpg",
        "jpeg/video-001.progressive.jpeg",
    ] {
        let bytes = std::fs::read(corpus(file)).unwrap();
        let cut = dir.path().join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = ours(&cut, 1).unwrap_err().to_string();
        assert!(err.contains("jpeg"), "{file}: {err}");
    }
}

#[test]
fn probe_reads_orientation_and_header_only() {
    for o in 1..=8u8 {
        let mut src = Source::file(corpus(&format!("exif-orientation/Landscape_{o}.jpg"))).unwrap();
        let h = codec::probe(&mut src, codec::InputFormat::Jpeg).unwrap();
        assert_eq!(h.meta.orientation, o);
        assert!(h.meta.exif.is_some());
    }
}
