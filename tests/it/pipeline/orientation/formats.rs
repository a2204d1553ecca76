//! Orientation, all 8 values, for every loader that carries it besides JPEG (jpeg.rs)
//! and WebP (webp.rs): PNG eXIf and TIFF tags written by exiftool, HEIF `irot`/`imir`
//! (added to a heif-enc file), AVIF `irot`/`imir` (avifenc, from its flags and from a JPEG's
//! EXIF), JPEG XL (cjxl, which carries a JPEG's EXIF orientation into the codestream). Our
//! upright output is compared with `vips autorot`, `convert -auto-orient` or the
//! untransformed decode turned by ImageMagick; EXIF carried into outputs must say 1 (JXL's
//! Exif and XMP boxes included).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A 240x180 photo (not square, so a wrong quarter turn changes the geometry), no metadata.
fn base(d: &Path) -> PathBuf {
    let out = d.join("base.png");
    run(Command::new("convert")
        .arg(corpus("exif-orientation/Landscape_1.jpg"))
        .args(["-resize", "240x", "-strip"])
        .arg(&out));
    out
}

/// `ours` and `reference` have the same geometry and at least `min_db` PSNR (8 bits); the dB.
fn same_picture(ours: &Path, reference: &Path, min_db: f64, what: &str) -> f64 {
    let (a, b) = (magick_decode(ours, 8), magick_decode(reference, 8));
    assert_eq!(
        (a.width, a.height, a.bands),
        (b.width, b.height, b.bands),
        "{what}: geometry differs from the reference"
    );
    let db = psnr(&a.data, &b.data, 255);
    assert!(db >= min_db, "{what}: {db:.1} dB against the reference");
    db
}

#[test]
fn png_exif_and_tiff_tag_all_eight_against_vips_and_magick() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = base(d);
    let base_tif = d.join("base.tif");
    run(Command::new("convert").arg(&base).arg(&base_tif));
    for n in 1..=8u32 {
        let png = d.join(format!("o{n}.png"));
        let tif = d.join(format!("o{n}.tif"));
        std::fs::copy(&base, &png).unwrap();
        std::fs::copy(&base_tif, &tif).unwrap();
        for f in [&png, &tif] {
            exiftool(
                &[
                    "-q",
                    "-overwrite_original",
                    "-n",
                    &format!("-Orientation={n}"),
                ],
                f,
            );
            assert_eq!(exif_orientation(f), n.to_string(), "{f:?}: exiftool");
        }
        for src in [&png, &tif] {
            let name = src.file_name().unwrap().to_str().unwrap();
            let ours = d.join(format!("ours_{name}.png"));
            thumbfs(&["convert", "png", p(src), p(&ours)]);
            let vips = d.join(format!("vips_{name}.png"));
            run(Command::new("vips").arg("autorot").arg(src).arg(&vips));
            let db = same_picture(&ours, &vips, 60.0, &format!("{name} vs vips autorot"));
            // ImageMagick 6 ignores a PNG's eXIf, so it is an anchor for TIFF only.
            if src == &tif {
                let magick = d.join(format!("magick_{name}.png"));
                run(Command::new("convert")
                    .arg(src)
                    .arg("-auto-orient")
                    .arg(&magick));
                same_picture(&ours, &magick, 60.0, &format!("{name} vs -auto-orient"));
            }
            eprintln!("{name}: {db:.1} dB vs vips autorot");
        }
        // The PNG's EXIF comes out in every format saying upright, readable without warnings.
        // With noautorotate the stored pixels keep their orientation, also a TIFF's (whose
        // tag becomes a minimal EXIF block), so viewers still show them upright.
        for fmt in ["png", "jpg", "webp"] {
            let out = d.join(format!("out{n}.{fmt}"));
            thumbfs(&["convert", fmt, p(&png), p(&out)]);
            assert_eq!(exif_orientation(&out), "1", "o{n}.png as {fmt}");
            magick_reads_cleanly(&out);
            for src in [&png, &tif] {
                let name = src.file_name().unwrap().to_str().unwrap();
                let kept = d.join(format!("kept_{name}.{fmt}"));
                let spec = match fmt {
                    "png" => "png_noautorotate".to_string(),
                    _ => format!("{fmt}_noautorotate_q95"),
                };
                thumbfs(&["convert", &spec, p(src), p(&kept)]);
                let want = if n == 1 { "" } else { &*n.to_string() };
                let got = exif_orientation(&kept);
                assert!(
                    got == n.to_string() || got == want,
                    "{name} as {fmt}, noautorotate: orientation {got:?}"
                );
                magick_reads_cleanly(&kept);
                // vips turns what we kept into the same upright picture.
                let upright = d.join(format!("kept_{name}.{fmt}.png"));
                run(Command::new("vips").arg("autorot").arg(&kept).arg(&upright));
                let ours = d.join(format!("ours_{name}.png"));
                // Lossy at q95 (WebP is always 4:2:0): a wrong turn would score far below 30 dB.
                let floor = if fmt == "png" { 60.0 } else { 30.0 };
                same_picture(
                    &upright,
                    &ours,
                    floor,
                    &format!("{name} as {fmt}, noautorotate"),
                );
            }
        }
    }
}

/// A big-endian integer of `n` bytes at `at`.
fn be(b: &[u8], at: usize, n: usize) -> u64 {
    b[at..at + n]
        .iter()
        .fold(0, |v, &x| (v << 8) | u64::from(x))
}

fn put_be(b: &mut [u8], at: usize, n: usize, v: u64) {
    for i in 0..n {
        b[at + i] = (v >> (8 * (n - 1 - i))) as u8;
    }
}

/// The child boxes in `b[start..end]`: (type, offset, size).
fn boxes(b: &[u8], start: usize, end: usize) -> Vec<([u8; 4], usize, usize)> {
    let mut v = Vec::new();
    let mut at = start;
    while at + 8 <= end {
        let size = be(b, at, 4) as usize;
        assert!(size >= 8 && at + size <= end, "box size {size} at {at}");
        v.push((b[at + 4..at + 8].try_into().unwrap(), at, size));
        at += size;
    }
    v
}

fn child(list: &[([u8; 4], usize, usize)], kind: &[u8; 4]) -> (usize, usize) {
    list.iter()
        .find(|(t, _, _)| t == kind)
        .map(|&(_, at, size)| (at, size))
        .unwrap_or_else(|| panic!("no {} box", String::from_utf8_lossy(kind)))
}

/// A HEIF file written by heif-enc with `irot` (quarter turns anticlockwise) and/or `imir`
/// (0: top-bottom, 1: left-right, as libheif and libavif read the axis) added to the primary
/// item, in that order, as essential properties. heif-enc 1.15 cannot write them, and no
/// other tool here can, so the boxes are spliced in: new properties at the end of `ipco`,
/// their associations in `ipma`, the sizes of the enclosing boxes and the `iloc` offsets into
/// `mdat` (after `meta`) moved by the bytes added.
pub(crate) fn add_heif_transforms(file: &[u8], irot: Option<u8>, imir: Option<u8>) -> Vec<u8> {
    let top = boxes(file, 0, file.len());
    let (meta, meta_size) = child(&top, b"meta");
    let inner = boxes(file, meta + 12, meta + meta_size);
    let (pitm, _) = child(&inner, b"pitm");
    let primary = if file[pitm + 8] == 0 {
        be(file, pitm + 12, 2)
    } else {
        be(file, pitm + 12, 4)
    };
    let (iprp, iprp_size) = child(&inner, b"iprp");
    let props = boxes(file, iprp + 8, iprp + iprp_size);
    let (ipco, ipco_size) = child(&props, b"ipco");
    let (ipma, ipma_size) = child(&props, b"ipma");
    assert!(ipco < ipma, "ipco after ipma");
    let count = boxes(file, ipco + 8, ipco + ipco_size).len();

    let mut added = Vec::new();
    let mut indices = Vec::new();
    for (kind, value) in [(b"irot", irot), (b"imir", imir)] {
        if let Some(v) = value {
            added.extend_from_slice(&9u32.to_be_bytes());
            added.extend_from_slice(kind);
            added.push(v);
            indices.push(count + 1 + indices.len());
        }
    }

    // ipma with the new associations on the primary item (essential: a reader that does not
    // know them must not show the image untransformed).
    let (version, flags) = (file[ipma + 8], be(file, ipma + 9, 3));
    let id_len = if version < 1 { 2 } else { 4 };
    let wide = flags & 1 == 1;
    let mut new_ipma = file[ipma..ipma + 16].to_vec();
    let entries = be(file, ipma + 12, 4);
    let mut at = ipma + 16;
    let mut found = false;
    for _ in 0..entries {
        let id = be(file, at, id_len);
        let n = file[at + id_len] as usize;
        let len = id_len + 1 + n * if wide { 2 } else { 1 };
        let mut entry = file[at..at + len].to_vec();
        if id == primary {
            found = true;
            entry[id_len] = (n + indices.len()) as u8;
            for &i in &indices {
                if wide {
                    entry.extend_from_slice(&(0x8000 | i as u16).to_be_bytes());
                } else {
                    entry.push(0x80 | i as u8);
                }
            }
        }
        new_ipma.extend_from_slice(&entry);
        at += len;
    }
    assert!(found, "primary item has no ipma entry");
    let ipma_growth = new_ipma.len() - ipma_size;
    let ipma_len = new_ipma.len() as u64;
    put_be(&mut new_ipma, 0, 4, ipma_len);
    let delta = added.len() + ipma_growth;

    let mut out = Vec::with_capacity(file.len() + delta);
    out.extend_from_slice(&file[..ipco + ipco_size]);
    out.extend_from_slice(&added);
    out.extend_from_slice(&file[ipco + ipco_size..ipma]);
    out.extend_from_slice(&new_ipma);
    out.extend_from_slice(&file[ipma + ipma_size..]);
    put_be(&mut out, meta, 4, (meta_size + delta) as u64);
    put_be(&mut out, iprp, 4, (iprp_size + delta) as u64);
    put_be(&mut out, ipco, 4, (ipco_size + added.len()) as u64);

    // iloc (before iprp, so at the same offset in `out`): file offsets past meta move.
    let (iloc, _) = child(&inner, b"iloc");
    assert!(iloc < iprp, "iloc after iprp");
    let meta_end = (meta + meta_size) as u64;
    let version = out[iloc + 8];
    let (off_len, len_len) = (
        (out[iloc + 12] >> 4) as usize,
        (out[iloc + 12] & 15) as usize,
    );
    let base_len = (out[iloc + 13] >> 4) as usize;
    let index_len = if version >= 1 {
        (out[iloc + 13] & 15) as usize
    } else {
        0
    };
    let id_len = if version < 2 { 2 } else { 4 };
    let mut at = iloc + 14;
    let items = be(&out, at, id_len);
    at += id_len;
    for _ in 0..items {
        at += id_len;
        let method = if version >= 1 {
            at += 2;
            be(&out, at - 2, 2) & 15
        } else {
            0
        };
        at += 2; // data_reference_index
        let base_at = at;
        let base_off = be(&out, at, base_len);
        at += base_len;
        let extents = be(&out, at, 2);
        at += 2;
        for _ in 0..extents {
            at += index_len;
            let off = be(&out, at, off_len);
            if method == 0 && base_len == 0 && off >= meta_end {
                put_be(&mut out, at, off_len, off + delta as u64);
            }
            at += off_len + len_len;
        }
        if method == 0 && base_len > 0 && base_off >= meta_end {
            put_be(&mut out, base_at, base_len, base_off + delta as u64);
        }
    }
    out
}

/// ImageMagick's operations for `irot` then `imir`.
fn magick_transform(irot: u8, imir: Option<u8>) -> Vec<String> {
    let mut v = vec!["-rotate".to_string(), format!("{}", -90 * i32::from(irot))];
    match imir {
        Some(0) => v.push("-flip".into()),
        Some(_) => v.push("-flop".into()),
        None => {}
    }
    v
}

/// Every combination of a quarter-turn count and an optional mirror (12, covering the 8
/// distinct orientations, some twice).
fn transforms() -> Vec<(u8, Option<u8>)> {
    (0..4u8)
        .flat_map(|r| [(r, None), (r, Some(0)), (r, Some(1))])
        .collect()
}

#[test]
fn heic_irot_imir_all_combinations_against_magick_and_vips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = base(d);
    let heic = d.join("plain.heic");
    run(Command::new("heif-enc")
        .args(["-q", "90"])
        .arg(&base)
        .arg("-o")
        .arg(&heic));
    // The stored picture as the reference decoder sees it.
    let stored = d.join("stored.png");
    run(Command::new("heif-convert").arg(&heic).arg(&stored));
    let bytes = std::fs::read(&heic).unwrap();
    for (irot, imir) in transforms() {
        let name = format!("r{irot}m{imir:?}");
        let f = d.join(format!("{name}.heic"));
        std::fs::write(&f, add_heif_transforms(&bytes, Some(irot), imir)).unwrap();
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("convert")
            .arg(&stored)
            .args(magick_transform(irot, imir))
            .arg(&reference));
        let ours = d.join(format!("{name}.ours.png"));
        thumbfs(&["convert", "png", p(&f), p(&ours)]);
        let db = same_picture(&ours, &reference, 60.0, &format!("{name}.heic"));
        // libvips (through libheif) agrees.
        let vips = d.join(format!("{name}.vips.png"));
        run(Command::new("vips").arg("autorot").arg(&f).arg(&vips));
        same_picture(&ours, &vips, 60.0, &format!("{name}.heic vs vips"));
        eprintln!("{name}.heic: {db:.1} dB vs the stored picture turned by ImageMagick");
    }
}

/// `base` as a JPEG (quality 95) whose EXIF says orientation `n`, written by exiftool with
/// any `extra` tag arguments: `e{n}.jpg` in `d`.
fn jpeg_with_orientation(base: &Path, d: &Path, n: u32, extra: &[String]) -> PathBuf {
    let jpg = d.join(format!("e{n}.jpg"));
    run(Command::new("convert")
        .arg(base)
        .args(["-quality", "95"])
        .arg(&jpg));
    let orientation = format!("-Orientation={n}");
    let mut args = vec!["-q", "-overwrite_original", "-n", &orientation];
    args.extend(extra.iter().map(String::as_str));
    exiftool(&args, &jpg);
    jpg
}

/// Our upright PNG of `src` (`ours`) and a w200 JPEG of it both carry EXIF orientation 1 and
/// read without warnings in ImageMagick: viewers must not turn them again.
fn outputs_say_upright(src: &Path, ours: &Path, d: &Path) {
    let name = src.file_name().unwrap().to_string_lossy();
    assert_eq!(exif_orientation(ours), "1", "{name} as PNG");
    magick_reads_cleanly(ours);
    let out = d.join(format!("{name}.out.jpg"));
    thumbfs(&["convert", "w200", p(src), p(&out)]);
    assert_eq!(exif_orientation(&out), "1", "{name} as JPEG");
    magick_reads_cleanly(&out);
}

#[test]
fn heic_exif_orientation_is_informative_and_output_says_upright() {
    // HEIF's rule: only irot/imir transform; an EXIF orientation is not applied again
    // (heif-convert, vips and ImageMagick all show the stored pixels). The EXIF we copy
    // into the JPEG output must then say 1, or viewers would turn it.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = base(d);
    for n in [3u32, 6, 8] {
        let jpg = jpeg_with_orientation(&base, d, n, &[]);
        let heic = d.join(format!("e{n}.heic"));
        run(Command::new("heif-enc")
            .args(["-q", "90"])
            .arg(&jpg)
            .arg("-o")
            .arg(&heic));
        assert_eq!(exif_orientation(&heic), n.to_string(), "heif-enc kept EXIF");
        let reference = d.join(format!("e{n}.ref.png"));
        run(Command::new("heif-convert").arg(&heic).arg(&reference));
        let vips = d.join(format!("e{n}.vips.png"));
        run(Command::new("vips").arg("autorot").arg(&heic).arg(&vips));
        let ours = d.join(format!("e{n}.ours.png"));
        thumbfs(&["convert", "png", p(&heic), p(&ours)]);
        same_picture(
            &ours,
            &reference,
            60.0,
            &format!("e{n}.heic vs heif-convert"),
        );
        same_picture(&ours, &vips, 60.0, &format!("e{n}.heic vs vips autorot"));
        outputs_say_upright(&heic, &ours, d);
    }
}

#[test]
fn avif_irot_imir_all_combinations_and_exif_orientation_all_eight() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = base(d);
    // From avifenc's flags, lossless: against the source turned by ImageMagick.
    for (irot, imir) in transforms() {
        let name = format!("r{irot}m{imir:?}");
        let f = d.join(format!("{name}.avif"));
        let mut cmd = Command::new("avifenc");
        cmd.args(["-s", "8", "-l", "--irot", &irot.to_string()]);
        if let Some(m) = imir {
            cmd.args(["--imir", &m.to_string()]);
        }
        run(cmd.arg(&base).arg(&f));
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("convert")
            .arg(&base)
            .args(magick_transform(irot, imir))
            .arg(&reference));
        let ours = d.join(format!("{name}.ours.png"));
        thumbfs(&["convert", "png", p(&f), p(&ours)]);
        same_picture(&ours, &reference, 60.0, &format!("{name}.avif"));
    }
    // From a JPEG whose EXIF says 1..8: avifenc turns the tag into irot/imir and keeps the
    // EXIF (still saying n). Upright output matches `convert -auto-orient` of the JPEG, and
    // the EXIF we carry says 1.
    for n in 1..=8u32 {
        let jpg = jpeg_with_orientation(&base, d, n, &[]);
        let avif = d.join(format!("e{n}.avif"));
        run(Command::new("avifenc")
            .args(["-s", "8", "-l"])
            .arg(&jpg)
            .arg(&avif));
        assert_eq!(exif_orientation(&avif), n.to_string(), "avifenc kept EXIF");
        let reference = d.join(format!("e{n}.ref.png"));
        run(Command::new("convert")
            .arg(&jpg)
            .arg("-auto-orient")
            .arg(&reference));
        let ours = d.join(format!("e{n}.ours.png"));
        thumbfs(&["convert", "png", p(&avif), p(&ours)]);
        let db = same_picture(&ours, &reference, 45.0, &format!("e{n}.avif"));
        let vips = d.join(format!("e{n}.vips.png"));
        run(Command::new("vips").arg("autorot").arg(&avif).arg(&vips));
        same_picture(&ours, &vips, 60.0, &format!("e{n}.avif vs vips autorot"));
        eprintln!("e{n}.avif: {db:.1} dB vs convert -auto-orient of its JPEG");
        outputs_say_upright(&avif, &ours, d);
    }
}

#[test]
fn jxl_orientation_all_eight_against_vips_djxl_and_magick() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = base(d);
    for n in 1..=8u32 {
        let jpg = jpeg_with_orientation(&base, d, n, &[format!("-XMP-dc:Title=jxl {n}")]);
        let magick = d.join(format!("e{n}.magick.png"));
        run(Command::new("convert")
            .arg(&jpg)
            .arg("-auto-orient")
            .arg(&magick));
        // cjxl puts the EXIF orientation into the codestream: a lossless JPEG transcode and
        // a lossless re-encode of the pixels.
        for (kind, args, vs_magick) in [
            ("transcode", ["-j", "1", "-d", "0"], 38.0),
            ("pixels", ["-j", "0", "-d", "0"], 60.0),
        ] {
            let jxl = d.join(format!("e{n}.{kind}.jxl"));
            run(Command::new("cjxl")
                .arg(&jpg)
                .arg(&jxl)
                .args(args)
                .arg("--quiet"));
            let name = format!("e{n}.{kind}.jxl");
            let ours = d.join(format!("{name}.ours.png"));
            thumbfs(&["convert", "png", p(&jxl), p(&ours)]);
            let djxl = d.join(format!("{name}.djxl.png"));
            run(Command::new("djxl").arg(&jxl).arg(&djxl).arg("--quiet"));
            let db = same_picture(&ours, &djxl, 45.0, &format!("{name} vs djxl"));
            let vips = d.join(format!("{name}.vips.png"));
            run(Command::new("vips").arg("autorot").arg(&jxl).arg(&vips));
            same_picture(&ours, &vips, 45.0, &format!("{name} vs vips autorot"));
            // A transcode reconstructs the DCT coefficients; libjpeg's IDCT differs a little.
            same_picture(
                &ours,
                &magick,
                vs_magick,
                &format!("{name} vs -auto-orient"),
            );
            eprintln!("{name}: {db:.1} dB vs djxl");
            // A transcode keeps the JPEG's Exif (a Brotli-compressed `brob` box) and XMP
            // boxes, which we carry, the EXIF saying upright; cjxl 0.7's re-encode drops
            // both, so nothing may claim a turn there either.
            let out = d.join(format!("{name}.out.jpg"));
            thumbfs(&["convert", "w200", p(&jxl), p(&out)]);
            magick_reads_cleanly(&out);
            let title = exiftool(&["-s3", "-XMP-dc:Title"], &out);
            let title = String::from_utf8_lossy(&title).trim().to_string();
            if kind == "transcode" {
                assert_eq!(exif_orientation(&out), "1", "{name} as JPEG");
                assert_eq!(title, format!("jxl {n}"), "{name}: XMP");
            } else {
                let o = exif_orientation(&out);
                assert!(o.is_empty() || o == "1", "{name} as JPEG: orientation {o}");
            }
        }
    }
}

/// EXIF orientation, a crop, a quarter turn and mirrors compose into one transform on the
/// cropped region (ops/orient.rs): every orientation with several chains comes out pixel for
/// pixel as ImageMagick's `-auto-orient -crop -rotate -flip -flop`, applied in the spec's order.
#[test]
fn autorotate_crop_rotate_and_mirrors_compose_as_magick_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base_tif = d.join("base.tif");
    run(Command::new("convert").arg(base(d)).arg(&base_tif));
    // (spec, ImageMagick operations after -auto-orient); crops fit both upright geometries.
    let chains: [(&str, &[&str]); 4] = [
        (
            "crop70x50+13+21_rot90_flip",
            &["-crop", "70x50+13+21", "+repage", "-rotate", "90", "-flip"],
        ),
        (
            "crop101x33+0+140_rot270_flop",
            &[
                "-crop",
                "101x33+0+140",
                "+repage",
                "-rotate",
                "270",
                "-flop",
            ],
        ),
        (
            "crop37x61+130+5_rot180_flip_flop",
            &[
                "-crop",
                "37x61+130+5",
                "+repage",
                "-rotate",
                "180",
                "-flip",
                "-flop",
            ],
        ),
        ("rot90_flip", &["-rotate", "90", "-flip"]),
    ];
    for n in 1..=8u32 {
        let tif = d.join(format!("o{n}.tif"));
        std::fs::copy(&base_tif, &tif).unwrap();
        exiftool(
            &[
                "-q",
                "-overwrite_original",
                "-n",
                &format!("-Orientation={n}"),
            ],
            &tif,
        );
        for (spec, ops) in chains {
            let ours = d.join(format!("ours{n}_{spec}.png"));
            thumbfs(&["convert", &format!("png_{spec}"), p(&tif), p(&ours)]);
            let magick = d.join(format!("magick{n}_{spec}.png"));
            run(Command::new("convert")
                .arg(&tif)
                // +repage: IM 6 leaves a page offset after transposing, which -crop would use.
                .args(["-auto-orient", "+repage"])
                .args(ops)
                .arg(&magick));
            let (a, b) = (magick_decode(&ours, 8), magick_decode(&magick, 8));
            assert_eq!(
                (a.width, a.height, a.bands),
                (b.width, b.height, b.bands),
                "orientation {n}, {spec}: geometry"
            );
            assert!(a.data == b.data, "orientation {n}, {spec}: pixels differ");
        }
    }
}
