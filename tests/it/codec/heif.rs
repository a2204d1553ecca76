//! HEIC: files made by heif-enc from a corpus photo, decoded by thumbfs and compared with
//! heif-convert; the embedded thumbnail used only when it is large enough.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::codec::*;
use common::*;

#[test]
fn heic_decodes_like_heif_convert() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, deep) = sources(d);
    for (name, input, args, depth) in [
        ("photo.heic", &rgb, vec!["-q", "80"], 8),
        ("alpha.heic", &rgba, vec!["-q", "80"], 8),
        ("deep.heic", &deep, vec!["-q", "80", "-b", "10"], 16),
    ] {
        let f = d.join(name);
        run(Command::new("heif-enc")
            .args(&args)
            .arg(input)
            .arg("-o")
            .arg(&f));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("heif-convert").arg(&f).arg(&reference));
        let db = compare(&f, &reference, depth, 45.0, d);
        eprintln!("{name}: {db:.1} dB vs heif-convert");
    }
}

/// `vips thumbnail` of `src` forced to exactly `w`x`h` (PNG), for comparing paths that round
/// a side differently.
fn vips_resized(src: &Path, out: &Path, w: u32, h: u32) {
    run(Command::new("vips")
        .arg("thumbnail")
        .arg(src)
        .arg(out)
        .arg(w.to_string())
        .args(["--height", &h.to_string(), "--size", "force"]));
}

fn db8(a: &Path, b: &Path) -> f64 {
    let (x, y) = (magick_decode(a, 8), magick_decode(b, 8));
    assert_eq!((x.width, x.height), (y.width, y.height), "{a:?} vs {b:?}");
    psnr(&x.data, &y.data, 255)
}

#[test]
fn heic_thumbnail_uses_the_embedded_thumbnail_only_when_it_is_larger_than_the_target() {
    // heif-enc -t 320 stores a 320x212 thumbnail (scaled nearest-neighbour by libheif, so
    // its pixels differ clearly from a Lanczos reduction of the primary image). libvips'
    // thumbnail uses it when it is larger than the target in both directions.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = d.join("big.png");
    run(Command::new("convert")
        .arg(corpus("photos/sunset_by_Aitzol_Berasategi.jpg"))
        .args(["-resize", "800x", "-strip"])
        .arg(&big));
    let heic = d.join("photo.heic");
    run(Command::new("heif-enc")
        .args(["-q", "85", "-t", "320"])
        .arg(&big)
        .arg("-o")
        .arg(&heic));
    // The two candidate sources, decoded by libvips: the embedded thumbnail and the primary.
    let thumb = d.join("thumb.png");
    run(Command::new("vips")
        .arg("copy")
        .arg(format!("{}[thumbnail]", p(&heic)))
        .arg(&thumb));
    let primary = d.join("primary.png");
    run(Command::new("vips").arg("copy").arg(&heic).arg(&primary));
    let full = magick_decode(&primary, 8);
    assert_eq!(full.width, 800);
    assert_eq!(
        magick_decode(&thumb, 8).width,
        320,
        "heif-enc wrote no thumbnail"
    );

    // `exact` makes it from the primary image even where the thumbnail would do.
    for (width, exact, uses_thumb) in [
        (256u32, false, true),
        (100, false, true),
        (320, false, false),
        (400, false, false),
        (256, true, false),
    ] {
        let spec = format!("w{width}{}_png", if exact { "_exact" } else { "" });
        let ours = d.join(format!("{spec}.png"));
        thumbfs(&["convert", &spec, p(&heic), p(&ours)]);
        let again = d.join(format!("{spec}.again.png"));
        thumbfs(&["convert", &spec, p(&heic), p(&again)]);
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            std::fs::read(&again).unwrap(),
            "w{width}: output not reproducible"
        );
        let px = magick_decode(&ours, 8);
        // Our size always comes from the primary image, thumbnail or not.
        assert_eq!(px.width, width);
        let height = full.height as f64 * width as f64 / full.width as f64;
        assert_eq!(px.height, height.round() as u32);
        let via_thumb = d.join(format!("w{width}.via_thumb.png"));
        vips_resized(&thumb, &via_thumb, px.width, px.height);
        let via_primary = d.join(format!("w{width}.via_primary.png"));
        vips_resized(&primary, &via_primary, px.width, px.height);
        let (t, pr) = (db8(&ours, &via_thumb), db8(&ours, &via_primary));
        eprintln!("w{width}: {t:.1} dB vs the thumbnail path, {pr:.1} dB vs the primary path");
        let (chosen, other) = if uses_thumb { (t, pr) } else { (pr, t) };
        assert!(
            chosen >= 38.0 && chosen > other + 5.0,
            "w{width}: expected the {} path: {t:.1} dB via thumbnail, {pr:.1} dB via primary",
            if uses_thumb { "thumbnail" } else { "primary" }
        );
        // And against libvips' own thumbnail where both round the height alike.
        let vips = d.join(format!("w{width}.vips.png"));
        run(Command::new("vips")
            .arg("thumbnail")
            .arg(&heic)
            .arg(&vips)
            .arg(width.to_string()));
        let v = magick_decode(&vips, 8);
        if (v.width, v.height) == (px.width, px.height) {
            let db = psnr(&px.data, &v.data, 255);
            eprintln!("w{width}: {db:.1} dB vs vips thumbnail");
            assert!(db >= 38.0, "w{width}: {db:.1} dB against vips thumbnail");
        }
    }
}
