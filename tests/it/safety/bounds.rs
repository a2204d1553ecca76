//! Output bombs: specs that ask for huge outputs or intermediates (`w200000_up`,
//! `100000x100000_fill_up`, `w65000_up_webp`, ...) of a real 12-megapixel photo. Each is
//! refused when the render is planned, through the mount (EIO for stat and read, the limit
//! named in `.thumbfs/errors`) and through the CLI (exit 1, one line naming the limit); the
//! daemon stays up, serves a normal thumbnail afterwards, and its peak RSS stays small,
//! because nothing was allocated for the refused renders. No timing asserts.

use crate::common;

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use common::mount::{cli, Mount};
use common::*;

/// 4272x2848, progressive 4:2:2.
const PHOTO: &str = "sunset_by_Aitzol_Berasategi.jpg";

/// (spec, what the refusal says).
const BOMBS: &[(&str, &str)] = &[
    // 200000x133333: over JPEG's limit (and 26.7 gigapixels).
    ("w200000_up", "JPEG output is limited to 65500 px per side"),
    ("h200000_up", "JPEG output is limited to 65500 px per side"),
    (
        "100000x100000_fill_up",
        "JPEG output is limited to 65500 px per side",
    ),
    (
        "w65000_up_webp",
        "WebP output is limited to 16383 px per side",
    ),
    (
        "w16384_up_webp",
        "WebP output is limited to 16383 px per side",
    ),
    (
        "60000x60000_up_png",
        "output 60000x40000 exceeds --max-output-pixels 200000000",
    ),
    // The output (13000x13000) fits; the canvas the fill crops it from does not.
    (
        "13000x13000_fill_up_png",
        "resize to 19500x13000 exceeds --max-output-pixels 200000000",
    ),
    (
        "w20000_up_rot90_ppm",
        "exceeds --max-output-pixels 200000000",
    ),
    (
        "w40000_up_avif",
        "AVIF output is limited to 32768 px per side",
    ),
    // 60000x40000 RGB: 7.2 GB of samples, beyond classic TIFF's 32-bit offsets.
    ("w60000_up_tif", "TIFF output is limited to"),
    (
        "crop1000000x1000000+0+0",
        "does not fit inside the 4272x2848 image",
    ),
];

/// The name a source file has under `spec` (the extension follows the output format).
fn shown(spec: &str) -> String {
    let s: thumbfs::Spec = spec.parse().unwrap();
    match s.format {
        Some(f) => PHOTO.replace(".jpg", &format!(".{}", f.token())),
        None => PHOTO.to_string(),
    }
}

/// `thumbfs convert SPEC PHOTO -` with extra options: must exit 1 with one line naming `cause`.
fn cli_refuses(photo: &Path, spec: &str, extra: &[&str], cause: &str) {
    let mut args: Vec<&OsStr> = vec![OsStr::new("convert")];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([OsStr::new(spec), photo.as_os_str(), OsStr::new("-")]);
    let (code, out, err) = cli(&args);
    assert_eq!(code, Some(1), "{spec}: exit code; stderr: {err}");
    assert!(out.is_empty(), "{spec}: wrote {} bytes", out.len());
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "{spec}: one line: {line}");
    assert!(line.contains(cause), "{spec}: {line}");
    assert!(line.contains(PHOTO), "{spec}: names the file: {line}");
}

/// stat and read of `MNT/spec/name` both fail with EIO, and the newest error names `cause`.
fn mount_refuses(m: &mut Mount, spec: &str, cause: &str) {
    let p = m.path(&format!("{spec}/{}", shown(spec)));
    let e = fs::metadata(&p).expect_err(spec);
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{spec}: stat: {e}");
    assert!(
        m.alive(),
        "{spec}: the daemon died on stat: {}",
        m.log_text()
    );
    let e = fs::read(&p).expect_err(spec);
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{spec}: read: {e}");
    let newest = m.errors().into_iter().next().unwrap_or_default();
    assert!(
        newest.contains(PHOTO) && newest.contains(cause),
        "{spec}: newest error: {newest}"
    );
    assert!(m.alive(), "{spec}: the daemon died: {}", m.log_text());
}

/// A normal thumbnail still comes out: a JPEG 256 px wide.
fn still_serving(m: &mut Mount) {
    let got = fs::read(m.path(&format!("w256/{PHOTO}"))).expect("w256 after the bombs");
    assert!(got.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
    let info = cli(&[
        OsStr::new("info"),
        m.path(&format!("w256/{PHOTO}")).as_os_str(),
    ]);
    assert!(info.2.is_empty() && info.0 == Some(0), "{info:?}");
    assert!(
        String::from_utf8_lossy(&info.1).contains(" 256x171 "),
        "{}",
        String::from_utf8_lossy(&info.1)
    );
}

#[test]
fn output_bombs_are_refused_when_planned() {
    let src = corpus("photos");
    let photo = src.join(PHOTO);
    for (spec, cause) in BOMBS {
        cli_refuses(&photo, spec, &[], cause);
    }
    let mut m = Mount::new(&src, &[]);
    for (spec, cause) in BOMBS {
        mount_refuses(&mut m, spec, cause);
    }
    assert_eq!(m.stats()["errors"], BOMBS.len() as u64, "{:?}", m.errors());
    // Refused by the plan, not by a worker's memory limit: no worker died for them.
    assert_eq!(m.stats()["worker_restarts"], 0, "{:?}", m.errors());
    still_serving(&mut m);
    // Nothing was allocated for the refused renders: the peak is one thumbnail's worth.
    let peak = m.status_kib("VmHWM");
    assert!(peak < 1 << 20, "daemon peak RSS {peak} KiB");
}

#[test]
fn max_output_pixels_is_an_option_and_an_o_option() {
    let src = corpus("photos");
    let photo = src.join(PHOTO);
    let cause = "output 2000x1333 exceeds --max-output-pixels 1000000";
    cli_refuses(&photo, "w2000", &["--max-output-pixels", "1000000"], cause);
    // The CLI's input limit too.
    cli_refuses(
        &photo,
        "w256",
        &["--max-pixels", "1000000"],
        "exceeds the limit of 1000000 pixels",
    );
    let mut m = Mount::new(&src, &["-o", "max_output_pixels=1000000"]);
    mount_refuses(&mut m, "w2000", cause);
    // Within the limit: served.
    let got = fs::read(m.path(&format!("w1000/{PHOTO}"))).unwrap();
    assert!(got.starts_with(&[0xFF, 0xD8, 0xFF]));
    drop(m);
    let mut m = Mount::new(&src, &["--max-output-pixels", "1000000"]);
    mount_refuses(&mut m, "w2000", cause);
    still_serving(&mut m);
}
