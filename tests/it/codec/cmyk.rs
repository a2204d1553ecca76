//! CMYK with an embedded profile is converted through it (moxcms), close to what lcms gives
//! through ImageMagick, and clearly unlike the naive formula; the ink profile is not carried
//! into the (sRGB) output.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Ghostscript's profiles (Debian package libgs-common, installed by scripts/test.sh).
const GS_ICC: &str = "/usr/share/color/icc/ghostscript";

fn ppm(cmd: &mut Command) -> Pixels {
    parse_pnm(&run(cmd.args(["-depth", "8", "ppm:-"])))
}

fn db(a: &Pixels, b: &Pixels) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    psnr(&a.data, &b.data, 255)
}

/// Writes a CMYK file with ImageMagick: sRGB rose through the SWOP profile.
fn cmyk_file(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    run(Command::new("convert")
        .args(["rose:", "-resize", "300%", "-profile"])
        .arg(format!("{GS_ICC}/default_rgb.icc"))
        .arg("-profile")
        .arg(format!("{GS_ICC}/default_cmyk.icc"))
        .args(args)
        .arg(&path));
    path
}

#[test]
fn cmyk_with_a_profile_goes_through_it() {
    assert!(
        Path::new(GS_ICC).join("default_cmyk.icc").exists(),
        "{GS_ICC}/default_cmyk.icc missing: scripts/test.sh installs libgs-common"
    );
    let dir = tempfile::tempdir().unwrap();
    for path in [
        cmyk_file(dir.path(), "cmyk.jpg", &["-quality", "95"]),
        cmyk_file(dir.path(), "cmyk.tif", &["-compress", "lzw"]),
    ] {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let out = dir.path().join(format!("{name}.png"));
        run(Command::new(thumbfs_bin())
            .args(["convert", "png"])
            .arg(&path)
            .arg(&out));
        let ours = magick_rgb8(&out);
        // lcms through the embedded profile to sRGB.
        let managed = ppm(Command::new("convert")
            .arg(&path)
            .arg("-profile")
            .arg(format!("{GS_ICC}/default_rgb.icc")));
        // The naive formula (ImageMagick ignores the profile for -colorspace).
        let naive =
            ppm(Command::new("convert")
                .arg(&path)
                .args(["+profile", "*", "-colorspace", "sRGB"]));
        let (vs_managed, vs_naive) = (db(&ours, &managed), db(&ours, &naive));
        eprintln!("{name}: {vs_managed:.1} dB vs lcms, {vs_naive:.1} dB vs naive");
        assert!(vs_managed > 30.0, "{name}: {vs_managed:.1} dB vs lcms");
        assert!(
            vs_managed > vs_naive + 3.0,
            "{name}: {vs_managed:.1} dB vs lcms, {vs_naive:.1} dB vs naive"
        );
        // The CMYK profile does not describe the RGB output.
        let icc = exiftool(&["-b", "-ICC_Profile"], &out);
        assert!(
            icc.is_empty(),
            "{name}: the ink profile was copied to the output"
        );
    }
}
