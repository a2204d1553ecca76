//! EXIF orientation: the 16 files of `corpus/exif-orientation` come out upright through the
//! CLI, read back by ImageMagick; `noautorotate` keeps the stored pixels and the tag.

use crate::common;

use std::process::Command;

use common::*;

/// One of the 8 right-angle transforms of an RGB image (`k & 3` quarter turns clockwise,
/// then a mirror when `k & 4`).
fn transform(p: &Pixels, k: u32) -> Pixels {
    let (w, h, b) = (p.width as usize, p.height as usize, p.bands as usize);
    let turns = k & 3;
    let (ow, oh) = if turns % 2 == 1 { (h, w) } else { (w, h) };
    let mut data = vec![0u16; p.data.len()];
    for y in 0..oh {
        for x in 0..ow {
            let rx = if k & 4 != 0 { ow - 1 - x } else { x };
            // Where the rotated image's (rx, y) comes from in the input.
            let (sx, sy) = match turns {
                0 => (rx, y),
                1 => (y, h - 1 - rx),
                2 => (w - 1 - rx, h - 1 - y),
                _ => (w - 1 - y, rx),
            };
            let src = (sy * w + sx) * b;
            let dst = (y * ow + x) * b;
            data[dst..dst + b].copy_from_slice(&p.data[src..src + b]);
        }
    }
    Pixels {
        width: ow as u32,
        height: oh as u32,
        data,
        ..p.clone()
    }
}

fn db(a: &Pixels, b: &Pixels) -> f64 {
    if (a.width, a.height) != (b.width, b.height) {
        return 0.0;
    }
    psnr(&a.data, &b.data, 255)
}

#[test]
fn all_sixteen_files_come_out_upright() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["Landscape", "Portrait"] {
        let upright_ref = dir.path().join(format!("{kind}_ref.png"));
        thumbfs(&[
            "convert",
            "png",
            corpus(&format!("exif-orientation/{kind}_1.jpg"))
                .to_str()
                .unwrap(),
            upright_ref.to_str().unwrap(),
        ]);
        let reference = magick_rgb8(&upright_ref);
        for n in 1..=8 {
            let src = corpus(&format!("exif-orientation/{kind}_{n}.jpg"));
            let name = format!("{kind}_{n}");
            assert_eq!(exif_orientation(&src), n.to_string(), "{name}: corpus tag");

            // Default: rotated upright; JPEG output says orientation 1.
            let jpg = dir.path().join(format!("{name}.jpg"));
            thumbfs(&[
                "convert",
                "q95",
                src.to_str().unwrap(),
                jpg.to_str().unwrap(),
            ]);
            assert_eq!(exif_orientation(&jpg), "1", "{name}: output tag");
            let ours = magick_rgb8(&jpg);
            // Against ImageMagick's own -auto-orient of the same file: same picture.
            let magick = parse_pnm(
                &Command::new("convert")
                    .arg(&src)
                    .args(["-auto-orient", "-depth", "8", "ppm:-"])
                    .output()
                    .unwrap()
                    .stdout,
            );
            let vs_magick = db(&ours, &magick);
            assert!(
                vs_magick > 38.0,
                "{name}: {vs_magick:.1} dB vs convert -auto-orient"
            );
            // Against the orientation-1 file (a different encode of the same photo): the
            // identity is the best of the 8 transforms, by a clear margin.
            let scores: Vec<f64> = (0..8)
                .map(|k| db(&transform(&ours, k), &reference))
                .collect();
            let best_other = scores[1..].iter().cloned().fold(0.0, f64::max);
            eprintln!(
                "{name}: {vs_magick:.1} dB vs ImageMagick, {:.1} dB vs {kind}_1 (next best transform {best_other:.1} dB)",
                scores[0]
            );
            assert!(scores[0] > 20.0, "{name}: {:.1} dB vs {kind}_1", scores[0]);
            assert!(scores[0] > best_other + 5.0, "{name}: {scores:?}");

            // Thumbnail boxes apply to the upright image.
            let thumb = dir.path().join(format!("{name}_w100.png"));
            thumbfs(&[
                "convert",
                "w100",
                src.to_str().unwrap(),
                thumb.to_str().unwrap(),
            ]);
            let t = magick_rgb8(&thumb);
            assert_eq!(t.width, 100, "{name}");
            assert_eq!(t.height, 100 * reference.height / reference.width, "{name}");

            // noautorotate: stored pixels (as djpeg sees them, it ignores EXIF) and the tag.
            let raw = dir.path().join(format!("{name}_raw.jpg"));
            thumbfs(&[
                "convert",
                "noautorotate_q95",
                src.to_str().unwrap(),
                raw.to_str().unwrap(),
            ]);
            assert_eq!(exif_orientation(&raw), n.to_string(), "{name}: kept tag");
            let stored = djpeg(&src);
            let kept = djpeg(&raw);
            let d = psnr(&kept.data, &stored.data, 255);
            assert_eq!((kept.width, kept.height), (stored.width, stored.height));
            assert!(d > 38.0, "{name}: noautorotate {d:.1} dB vs stored pixels");
        }
    }
}
