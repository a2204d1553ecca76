//! AVIF: files made by avifenc from a corpus photo, decoded by thumbfs and compared with
//! avifdec; transforms applied; our saver's output read back by avifdec.

use crate::common;

use std::process::Command;

use common::codec::*;
use common::*;

#[test]
fn avif_decodes_like_avifdec() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, deep) = sources(d);
    for (name, input, args, depth, min) in [
        ("photo.avif", &rgb, vec!["-s", "8"], 8, 45.0),
        ("alpha.avif", &rgba, vec!["-s", "8"], 8, 45.0),
        ("deep.avif", &deep, vec!["-s", "8", "-d", "10"], 16, 45.0),
        ("twelve.avif", &deep, vec!["-s", "8", "-d", "12"], 16, 45.0),
        ("grid.avif", &rgb, vec!["-s", "8", "-g", "2x2"], 8, 45.0),
        ("lossless.avif", &rgb, vec!["-s", "8", "-l"], 8, 60.0),
    ] {
        let f = d.join(name);
        run(Command::new("avifenc").args(&args).arg(input).arg(&f));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("avifdec").arg(&f).arg(&reference));
        let db = compare(&f, &reference, depth, min, d);
        eprintln!("{name}: {db:.1} dB vs avifdec");
    }
}

#[test]
fn avif_transforms_are_applied() {
    // irot 1 = 90 degrees anticlockwise, imir 1 = left-right mirror; the reference is the
    // source PNG transformed by ImageMagick.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, _, _) = sources(d);
    for (name, args, magick) in [
        ("rot.avif", vec!["--irot", "1"], vec!["-rotate", "-90"]),
        ("mir.avif", vec!["--imir", "1"], vec!["-flop"]),
    ] {
        let f = d.join(name);
        run(Command::new("avifenc")
            .args(["-s", "8", "-l"])
            .args(&args)
            .arg(&rgb)
            .arg(&f));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("convert")
            .arg(&rgb)
            .args(&magick)
            .arg(&reference));
        let db = compare(&f, &reference, 8, 60.0, d);
        eprintln!("{name}: {db:.1} dB vs the transformed source");
    }
}

#[test]
fn avif_saver_output_reads_back_in_avifdec() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, _) = sources(d);
    for src in [&rgb, &rgba] {
        let out = d.join("out.avif");
        thumbfs(&["convert", "q80_avif", p(src), p(&out)]);
        let again = d.join("again.avif");
        thumbfs(&["convert", "q80_avif", p(src), p(&again)]);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&again).unwrap(),
            "AVIF output is not reproducible"
        );
        let back = d.join("back.png");
        run(Command::new("avifdec").arg(&out).arg(&back));
        let (a, b) = (magick_decode(&back, 8), magick_decode(src, 8));
        assert_eq!((a.width, a.height, a.bands), (b.width, b.height, b.bands));
        let db = psnr(&a.data, &b.data, 255);
        assert!(db > 30.0, "{src:?}: q80 AVIF at {db:.1} dB from its source");
    }
}
