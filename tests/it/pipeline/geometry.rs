//! Exact geometry through shrink-on-load: detailed photos whose sizes are not multiples of
//! the pre-shrink factor (JPEG DCT scaling, the box pre-shrink, pyramid TIFF levels),
//! thumbnailed and compared with a full-decode Lanczos3 downsample by ImageMagick, and with
//! libvips' own thumbnail scored against the same reference.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Makes the test sources in `d`: (path, widths to render) for each.
fn sources(d: &Path) -> Vec<(PathBuf, Vec<u32>)> {
    // 4217x2817: /8 leaves a last column of 1 source pixel and a row of 1.
    let sunset = d.join("sunset4217.jpg");
    run(Command::new("convert")
        .arg(corpus("photos/sunset_by_Aitzol_Berasategi.jpg"))
        .args(["-crop", "4217x2817+0+0", "+repage", "-quality", "95"])
        .arg(&sunset));
    // 2001x1333 PNG: the box pre-shrink (4 at w200, 8 at w100) leaves partial edges.
    let png = d.join("seed2001.png");
    run(Command::new("convert")
        .arg(corpus("photos/seeding_by_Clements_Engelhardt.jpg"))
        .args(["-crop", "2001x1333+1000+500", "+repage"])
        .arg(&png));
    // A tiled pyramid TIFF of the odd-sized photo: libvips' levels round down.
    let pyramid = d.join("pyramid.tif");
    run(Command::new("vips")
        .arg("tiffsave")
        .arg(&sunset)
        .arg(&pyramid)
        .args(["--pyramid", "--tile", "--compression", "deflate"]));
    vec![
        (sunset, vec![256, 400]),
        // 5312x2988: 2988 / 8 = 373.5 rows.
        (
            corpus("photos/seeding_by_Clements_Engelhardt.jpg"),
            vec![256, 300],
        ),
        // Progressive 2268x1512: 2268 / 8 = 283.5 columns at w128.
        (
            corpus("jpeg/flower.png.im_q85_420_progr.jpg"),
            vec![128, 200],
        ),
        (png, vec![100, 200]),
        (pyramid, vec![256, 400]),
    ]
}

/// PSNR of `candidate` against `reference` (8-bit RGB, same size).
fn score(reference: &Pixels, candidate: &Path) -> f64 {
    let got = magick_rgb8(candidate);
    assert_eq!(
        (got.width, got.height),
        (reference.width, reference.height),
        "{candidate:?}: size differs from the reference"
    );
    psnr(&got.data, &reference.data, 255)
}

#[test]
fn thumbnails_of_odd_sizes_match_a_full_decode_lanczos3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (src, widths) in sources(d) {
        for w in widths {
            let name = src.file_name().unwrap().to_string_lossy();
            // The reference: ImageMagick decodes in full and resamples once (page 0 only).
            let reference = d.join(format!("ref-{name}-{w}.png"));
            run(Command::new("convert")
                .arg(format!("{}[0]", src.display()))
                .args(["-filter", "Lanczos", "-resize", &format!("{w}x")])
                .arg(&reference));
            let reference = magick_rgb8(&reference);
            let ours = d.join(format!("ours-{name}-{w}.png"));
            std::fs::write(
                &ours,
                common::mount::engine(&src, &format!("w{w}_png")).unwrap(),
            )
            .unwrap();
            let vips = d.join(format!("vips-{name}-{w}.png"));
            run(Command::new("vips")
                .arg("thumbnail")
                .arg(&src)
                .arg(&vips)
                .arg(w.to_string()));
            let (ours_db, vips_db) = (score(&reference, &ours), score(&reference, &vips));
            eprintln!("{name} w{w}: thumbfs {ours_db:.1} dB, libvips {vips_db:.1} dB");
            assert!(ours_db >= 40.0, "{name} w{w}: {ours_db:.1} dB");
            assert!(
                ours_db >= vips_db - 1.0,
                "{name} w{w}: {ours_db:.1} dB, libvips {vips_db:.1} dB"
            );
        }
    }
}
