//! HEIC pixels are streamed straight from libheif's decoded plane (crates/codec/src/heif.rs,
//! `Decoded`): every strip, the last short one included, holds exactly the samples libheif
//! decoded, as heif-convert (the same libheif) writes them to PNG.

use crate::common;

use std::process::Command;

use common::*;

#[test]
fn heic_strips_are_libheifs_samples_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 333 rows: five 64-row strips and a short one; odd sizes for 4:2:0.
    let rgb = d.join("rgb.png");
    run(Command::new("convert")
        .arg(corpus("photos/seeding_by_Clements_Engelhardt.jpg"))
        .args(["-resize", "481x333!", "-strip"])
        .arg(&rgb));
    let rgba = d.join("rgba.png");
    run(Command::new("convert")
        .arg(&rgb)
        .args(["(", "+clone", "-fx", "0.2+0.8*j/h", ")"])
        .args(["-compose", "copy_opacity", "-composite"])
        .arg(&rgba));
    for (name, input) in [("photo.heic", &rgb), ("alpha.heic", &rgba)] {
        let f = d.join(name);
        run(Command::new("heif-enc")
            .args(["-q", "60"])
            .arg(input)
            .arg("-o")
            .arg(&f));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("heif-convert").arg(&f).arg(&reference));
        let ours = d.join(format!("{name}.png"));
        thumbfs(&["convert", "png", p(&f), p(&ours)]);
        let (a, b) = (magick_decode(&ours, 8), magick_decode(&reference, 8));
        assert_eq!((a.width, a.height, a.bands), (481, 333, b.bands), "{name}");
        assert_eq!((b.width, b.height), (481, 333), "{name}");
        assert!(a.data == b.data, "{name}: samples differ from libheif's");
    }
}
