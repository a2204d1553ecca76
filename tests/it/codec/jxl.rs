//! JPEG XL: files made by cjxl from a corpus photo, decoded by thumbfs and compared with djxl.

use crate::common;

use std::process::Command;

use common::codec::*;
use common::*;

#[test]
fn jxl_decodes_like_djxl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, deep) = sources(d);
    for (name, input, args, depth, min) in [
        ("photo.jxl", &rgb, vec!["-d", "1"], 8, 45.0),
        ("alpha.jxl", &rgba, vec!["-d", "1"], 8, 45.0),
        ("lossless.jxl", &rgb, vec!["-d", "0"], 8, 60.0),
        ("deep.jxl", &deep, vec!["-d", "0"], 16, 60.0),
    ] {
        let f = d.join(name);
        run(Command::new("cjxl")
            .arg(input)
            .arg(&f)
            .args(&args)
            .arg("--quiet"));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("djxl").arg(&f).arg(&reference).arg("--quiet"));
        let db = compare(&f, &reference, depth, min, d);
        eprintln!("{name}: {db:.1} dB vs djxl");
    }
}
