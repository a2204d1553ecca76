//! GIF loader (first frame) against ImageMagick.

use crate::common;

use std::process::Command;

use common::codec::*;
use common::*;
use thumbfs::codec::LoadOptions;

#[test]
fn gif_first_frame_matches_imagemagick() {
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("rose.gif");
    run(Command::new("convert")
        .args(["rose:", "-resize", "200%"])
        .arg(&gif));
    let (img, _) = load_with(&gif, LoadOptions::default()).unwrap();
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
    let (img, _) = load_with(&anim, LoadOptions::default()).unwrap();
    assert_eq!(img.header.bands, 4);
    let px = |x: usize, y: usize| -> Vec<u16> {
        let v = u8s(&img);
        v[(y * 40 + x) * 4..(y * 40 + x) * 4 + 4].to_vec()
    };
    assert_eq!(px(10, 10), vec![255, 0, 0, 255]);
    assert_eq!(px(30, 25)[3], 0, "transparent outside the rectangle");
}
