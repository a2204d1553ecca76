//! HEIC thumbnails through libde265 directly (crates/codec/src/heif/direct.rs) against the
//! same thumbnails through libheif's whole-image decode (`exact`) and `vips thumbnail`, on
//! files heif-enc makes at test time from corpus photos (the corpus holds no HEIC).
//!
//! The direct path shrinks the YCbCr planes and converts the block means with libheif's
//! coefficients, so it differs from `exact` by rounding only: the bar is 45 dB. Whatever it
//! does not handle (alpha, 10 bits, `clap`) must come out byte for byte as `exact`.

use crate::common;
use crate::pipeline::orientation::formats::add_heif_transforms;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::codec::*;
use common::mount::Mount;
use common::*;
use thumbfs::codec::LoadOptions;
use thumbfs::io::target::MemoryTarget;
use thumbfs::{RenderOptions, Source, Spec};

/// A corpus photo resized to exactly `size` (`WxH`) as PNG.
pub(super) fn photo_png(d: &Path, photo: &str, size: &str) -> PathBuf {
    let out = d.join(format!("{photo}-{size}.png"));
    run(Command::new("convert")
        .arg(corpus(&format!("photos/{photo}")))
        .args(["-resize", &format!("{size}!"), "-strip"])
        .arg(&out));
    out
}

/// `src` encoded by heif-enc with `args` as `d/name`.
pub(super) fn heif_enc(src: &Path, d: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = d.join(name);
    run(Command::new("heif-enc")
        .args(args)
        .arg(src)
        .arg("-o")
        .arg(&out));
    out
}

pub(super) fn render(path: &Path, spec: &str) -> Vec<u8> {
    let spec: Spec = spec.parse().unwrap();
    let mut target = MemoryTarget::new();
    thumbfs::render(
        Source::file(path).unwrap(),
        &spec,
        &mut target,
        &RenderOptions::default(),
    )
    .unwrap();
    target.take()
}

/// The shrink the loader applies to a thumbnail's request to shrink by `shrink` (the direct
/// path applies all of it, libheif's none), and the image's size.
pub(super) fn applied(path: &Path, shrink: u32, exact: bool) -> (u32, u32, u32) {
    let opts = LoadOptions {
        shrink,
        fit: Some((1, 1)),
        exact,
        ..Default::default()
    };
    let (img, applied) = load_with(path, opts).unwrap();
    (img.header.width, img.header.height, applied)
}

/// PSNR between two PNG files of the same size, at 8 bits.
pub(super) fn db(a: &Path, b: &Path) -> f64 {
    let (x, y) = (magick_decode(a, 8), magick_decode(b, 8));
    assert_eq!((x.width, x.height), (y.width, y.height), "{a:?} vs {b:?}");
    psnr(&x.data, &y.data, 255)
}

/// `spec` (a PNG spec) of `f` through the direct path and with `exact`, written to `d`:
/// their PSNR, and whether the bytes differ.
pub(super) fn direct_vs_exact(f: &Path, spec: &str, d: &Path) -> (f64, bool) {
    let name = f.file_name().unwrap().to_string_lossy();
    let (a, b) = (
        d.join(format!("{name}.{spec}.png")),
        d.join(format!("{name}.{spec}.exact.png")),
    );
    let (x, y) = (
        render(f, &format!("{spec}_png")),
        render(f, &format!("{spec}_exact_png")),
    );
    std::fs::write(&a, &x).unwrap();
    std::fs::write(&b, &y).unwrap();
    (db(&a, &b), x != y)
}

#[test]
fn direct_thumbnails_match_libheif_and_vips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Sizes that are not multiples of 8: partial blocks.
    let sunset = photo_png(d, "sunset_by_Aitzol_Berasategi.jpg", "1202x802");
    let seeding = photo_png(d, "seeding_by_Clements_Engelhardt.jpg", "998x666");
    let files = [
        heif_enc(&sunset, d, "sunset.heic", &["-q", "60"]),
        heif_enc(&seeding, d, "seeding.heic", &["-q", "50"]),
        heif_enc(&sunset, d, "c444.heic", &["-q", "60", "-p", "chroma=444"]),
        heif_enc(&sunset, d, "c422.heic", &["-q", "60", "-p", "chroma=422"]),
        // BT.709 coefficients, limited range, in the stream's VUI (heif-enc 1.15 writes no
        // nclx box by default).
        heif_enc(
            &seeding,
            d,
            "bt709-limited.heic",
            &["-q", "60", "--matrix_coefficients=1", "--full_range_flag=0"],
        ),
        // An nclx box (BT.709, limited range) that overrides the stream's VUI (BT.601, full).
        assemble(
            &[hevc_of(&sunset, d, "vui.heic")],
            (1202, 802),
            None,
            &[bx(b"colr", b"nclx\0\x01\0\x0d\0\x01\0")],
            d.join("nclx.heic"),
        ),
    ];
    // The nclx box is honoured (by libheif and so by the direct path): not the same picture.
    let (a, b) = (d.join("vui.png"), d.join("nclx.png"));
    std::fs::write(&a, render(&files[0], "w200_exact_png")).unwrap();
    std::fs::write(&b, render(&files[5], "w200_exact_png")).unwrap();
    let apart = db(&a, &b);
    assert!(apart < 35.0, "the nclx box changed nothing ({apart:.1} dB)");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        // The loader takes the direct path for a thumbnail, libheif's with `exact`.
        let (w, h, s) = applied(f, 8, false);
        assert_eq!(s, 8, "{name}: direct path not taken");
        let (fw, fh, s1) = applied(f, 8, true);
        assert_eq!(s1, 1, "{name}: exact must decode the whole image");
        // Nothing to shrink: libheif's path (a resize alone gains nothing from the planes).
        assert_eq!(applied(f, 1, false).2, 1, "{name}: shrink 1");
        assert_eq!((w, h), (fw.div_ceil(8), fh.div_ceil(8)), "{name}");
        // w200 shrinks by 2 first (1202 and 998 columns), w64 by 8.
        for spec in ["w200", "w64"] {
            let (psnr, differ) = direct_vs_exact(f, spec, d);
            eprintln!("{name} {spec}: {psnr:.1} dB vs exact");
            assert!(psnr >= 45.0, "{name} {spec}: {psnr:.1} dB vs exact");
            assert!(
                differ,
                "{name} {spec}: same bytes as exact (direct path not used?)"
            );
            // And against libvips' own thumbnail (libheif's decode, its own resampling).
            let ours = d.join(format!("{name}.{spec}.png"));
            let vips = d.join(format!("{name}.{spec}.vips.png"));
            let px = magick_decode(&ours, 8);
            run(Command::new("vips")
                .arg("thumbnail")
                .arg(f)
                .arg(&vips)
                .arg(px.width.to_string())
                .args(["--height", &px.height.to_string(), "--size", "force"]));
            let v = db(&ours, &vips);
            eprintln!("{name} {spec}: {v:.1} dB vs vips thumbnail");
            assert!(v >= 40.0, "{name} {spec}: {v:.1} dB vs vips thumbnail");
        }
    }
}

/// Every `irot`/`imir` combination (spliced into a heif-enc file, as the orientation tests
/// do): the blocks are laid from the corner that ends up top-left, so the direct path stays
/// within rounding of libheif's upright image.
#[test]
fn direct_thumbnails_apply_irot_and_imir_like_libheif() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 8k + 2 by 8k + 6: every corner starts a different block grid.
    let src = photo_png(d, "seeding_by_Clements_Engelhardt.jpg", "618x414");
    let plain = std::fs::read(heif_enc(&src, d, "plain.heic", &["-q", "70"])).unwrap();
    for r in 0..4u8 {
        for m in [None, Some(0u8), Some(1)] {
            let f = d.join(format!("r{r}m{m:?}.heic"));
            std::fs::write(&f, add_heif_transforms(&plain, Some(r), m)).unwrap();
            let (_, _, s) = applied(&f, 8, false);
            assert_eq!(s, 8, "{f:?}: direct path not taken");
            for spec in ["w96", "w40"] {
                let (psnr, differ) = direct_vs_exact(&f, spec, d);
                eprintln!("r{r}m{m:?} {spec}: {psnr:.1} dB vs exact");
                assert!(psnr >= 45.0, "r{r}m{m:?} {spec}: {psnr:.1} dB vs exact");
                assert!(differ, "r{r}m{m:?} {spec}: same bytes as exact");
            }
        }
    }
}

/// Alpha, 10 bits, a clean aperture and monochrome are libheif's (grids: heif_grid.rs):
/// the same bytes as `exact`, and the loader applies no shrink.
#[test]
fn files_the_direct_path_does_not_handle_decode_as_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (rgb, rgba, _) = sources(d);
    // A true 16-bit PNG (`sources`' 16-bit copy of 8-bit pixels is written back as 8-bit
    // by ImageMagick, and heif-enc then makes an 8-bit file).
    let deep = d.join("rgb48.png");
    run(Command::new("convert")
        .arg(&rgb)
        .args(["-depth", "16"])
        .arg(format!("PNG48:{}", p(&deep))));
    let files = [
        heif_enc(&rgba, d, "alpha.heic", &["-q", "60"]),
        heif_enc(&deep, d, "deep.heic", &["-q", "60", "-b", "10"]),
        clap_heic(&rgb, 480, 320, d),
        // Monochrome: heif-enc writes grey PNGs as 4:0:0.
        heif_enc(
            &{
                let g = d.join("grey.png");
                run(Command::new("convert")
                    .arg(&rgb)
                    .args(["-colorspace", "gray"])
                    .arg(&g));
                g
            },
            d,
            "grey.heic",
            &["-q", "60"],
        ),
    ];
    // What makes each one a fallback, checked so that the test cannot pass vacuously.
    assert_eq!(hvcc_format(&files[1]), (1, 10), "deep.heic is not 10-bit");
    assert!(std::fs::read(&files[2])
        .unwrap()
        .windows(4)
        .any(|w| w == b"clap"));
    assert_eq!(hvcc_format(&files[3]).0, 0, "grey.heic is not monochrome");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let (_, _, s) = applied(f, 4, false);
        assert_eq!(s, 1, "{name}: took the direct path");
        for spec in ["w100", "w40"] {
            assert!(
                render(f, &format!("{spec}_png")) == render(f, &format!("{spec}_exact_png")),
                "{name} {spec}: differs from exact"
            );
        }
        // And it still decodes like libheif: against heif-convert's full image, reduced.
        let reference = d.join(format!("{name}.ref.png"));
        run(Command::new("heif-convert").arg(f).arg(&reference));
        let ours = d.join(format!("{name}.w100.png"));
        std::fs::write(&ours, render(f, "w100_png")).unwrap();
        let px = magick_decode(&ours, 8);
        let theirs = d.join(format!("{name}.w100.vips.png"));
        run(Command::new("vips")
            .arg("thumbnail")
            .arg(&reference)
            .arg(&theirs)
            .arg(px.width.to_string())
            .args(["--height", &px.height.to_string(), "--size", "force"]));
        let v = db(&ours, &theirs);
        eprintln!("{name}: {v:.1} dB vs vips thumbnail of heif-convert's image");
        assert!(v >= 35.0, "{name}: {v:.1} dB");
    }
}

/// Damaged files: an error, never a panic, from the CLI and through a mount (its render
/// worker), which lives on and still serves the intact file.
#[test]
fn damaged_heic_fails_cleanly_on_the_direct_path() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let png = photo_png(dir.path(), "sunset_by_Aitzol_Berasategi.jpg", "802x538");
    let good = std::fs::read(heif_enc(&png, &src, "good.heic", &["-q", "60"])).unwrap();
    // Cut inside the image data (mdat is last).
    std::fs::write(src.join("trunc.heic"), &good[..good.len() * 2 / 3]).unwrap();
    // The slice data scrambled behind an intact NAL length (the boxes stay valid, so this
    // reaches libde265 on the direct path): it conceals or gives up; either way no panic.
    let mut noise = good.clone();
    let at = good.windows(4).position(|w| w == b"mdat").unwrap() + 4;
    let len = u32::from_be_bytes(good[at..at + 4].try_into().unwrap()) as usize;
    let mut rng = Rng(11);
    for b in &mut noise[at + 4 + 16..(at + 4 + len).min(good.len())] {
        *b = rng.next() as u8;
    }
    std::fs::write(src.join("noise.heic"), &noise).unwrap();
    // The parameter sets scrambled.
    let mut params = good.clone();
    let at = good.windows(4).position(|w| w == b"hvcC").unwrap();
    for b in &mut params[at + 30..at + 90] {
        *b ^= 0x5A;
    }
    std::fs::write(src.join("params.heic"), &params).unwrap();

    for name in ["trunc", "noise", "params"] {
        let f = src.join(format!("{name}.heic"));
        let out = dir.path().join(format!("{name}.jpg"));
        let o = thumbfs_output(&["convert", "w64", p(&f), p(&out)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{name}: {err}");
        if o.status.success() {
            // A concealed picture is still a valid thumbnail.
            assert_eq!(djpeg(&out).width, 64, "{name}");
        }
    }
    let mut m = Mount::new(&src, &[]);
    let bytes = std::fs::read(m.path("w64/good.jpg")).unwrap();
    assert_eq!(
        bytes,
        render(&src.join("good.heic"), "w64"),
        "mount and engine differ"
    );
    for name in ["trunc", "noise", "params"] {
        match std::fs::read(m.path(&format!("w64/{name}.jpg"))) {
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{name}: {e}"),
            Ok(b) => assert!(b.starts_with(&[0xFF, 0xD8]), "{name}: not a JPEG"),
        }
        assert!(m.alive(), "the daemon died on {name}: {}", m.log_text());
    }
    assert!(!m.log_text().contains("panicked"), "{}", m.log_text());
}

/// The chroma format and luma bits an `hvcC` box in `f` declares.
fn hvcc_format(f: &Path) -> (u8, u8) {
    let b = std::fs::read(f).unwrap();
    let at = b.windows(4).position(|w| w == b"hvcC").unwrap() + 4;
    (b[at + 16] & 3, 8 + (b[at + 17] & 7))
}

/// An ISO-BMFF box.
pub(super) fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// A full box (version 0 unless given, flags 0).
pub(super) fn fbx(kind: &[u8; 4], version: u8, body: &[u8]) -> Vec<u8> {
    let mut b = vec![version, 0, 0, 0];
    b.extend_from_slice(body);
    bx(kind, &b)
}

/// The body of the first box of type `kind` at the top level of `data` or inside `meta`
/// and `iprp` (enough for heif-enc's files).
pub(super) fn find(data: &[u8], kind: &[u8; 4]) -> Vec<u8> {
    let at = data.windows(4).position(|w| w == kind).unwrap() - 4;
    let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    data[at + 8..at + size].to_vec()
}

/// The `hvcC` body and the NAL units (its mdat: heif-enc's holds the one image's data and
/// nothing else) of `png` encoded by heif-enc.
pub(super) fn hevc_of(png: &Path, d: &Path, name: &str) -> (Vec<u8>, Vec<u8>) {
    let f = std::fs::read(heif_enc(png, d, name, &["-q", "60"])).unwrap();
    (find(&f, b"hvcC"), find(&f, b"mdat"))
}

/// A HEIC written from scratch (heif-enc 1.15 writes no grid and no `clap`): `images` (hvcC
/// body, NAL units) become hvc1 items 1..=n, each `size` large; with `grid` (its size) a 2x2
/// grid item n+1 over them is the primary image, else item 1; `extra` property boxes are
/// associated with the primary (as essential). ftyp, meta (hdlr, pitm, iinf, iref, iprp,
/// iloc v1 with the grid's data in idat), mdat with the images' NAL units.
fn assemble(
    images: &[(Vec<u8>, Vec<u8>)],
    size: (u32, u32),
    grid: Option<(u32, u32)>,
    extra: &[Vec<u8>],
    out: PathBuf,
) -> PathBuf {
    let n = images.len() as u16;
    let primary = if grid.is_some() { n + 1 } else { 1 };
    let items = if grid.is_some() { n + 1 } else { n };
    let ispe = |(w, h): (u32, u32)| {
        let mut b = w.to_be_bytes().to_vec();
        b.extend_from_slice(&h.to_be_bytes());
        fbx(b"ispe", 0, &b)
    };
    let grid_data: Vec<u8> = grid.map_or(Vec::new(), |(w, h)| {
        [0u8, 0, 1, 1]
            .into_iter()
            .chain((w as u16).to_be_bytes())
            .chain((h as u16).to_be_bytes())
            .collect()
    });
    let meta = |mdat_at: u32| {
        let mut hdlr = vec![0; 4];
        hdlr.extend_from_slice(b"pict");
        hdlr.extend_from_slice(&[0; 13]);
        let mut iinf = items.to_be_bytes().to_vec();
        for id in 1..=items {
            // Version 2; a grid's tiles are hidden (flag 1): not images of their own.
            let hidden = u8::from(grid.is_some() && id <= n);
            let mut e = vec![2, 0, 0, hidden];
            e.extend_from_slice(&id.to_be_bytes());
            e.extend_from_slice(&[0, 0]);
            e.extend_from_slice(if id > n { b"grid" } else { b"hvc1" });
            e.push(0);
            iinf.extend(bx(b"infe", &e));
        }
        // ipco: hvcC 1..=n, the images' ispe n+1, the grid's ispe n+2, then `extra`.
        let mut ipco = Vec::new();
        for (hvcc, _) in images {
            ipco.extend(bx(b"hvcC", hvcc));
        }
        ipco.extend(ispe(size));
        ipco.extend(grid.map_or(Vec::new(), ispe));
        let first_extra = n as u8 + 2 + u8::from(grid.is_some());
        for e in extra {
            ipco.extend_from_slice(e);
        }
        let extras = (0..extra.len() as u8).map(|i| 0x80 | (first_extra + i));
        let mut ipma = u32::from(items).to_be_bytes().to_vec();
        for id in 1..=items {
            let mut props = if id > n {
                vec![n as u8 + 2]
            } else {
                vec![0x80 | id as u8, n as u8 + 1]
            };
            if id == primary {
                props.extend(extras.clone());
            }
            ipma.extend_from_slice(&id.to_be_bytes());
            ipma.push(props.len() as u8);
            ipma.extend(props);
        }
        let mut iprp = bx(b"ipco", &ipco);
        iprp.extend(fbx(b"ipma", 0, &ipma));
        let mut iloc = vec![0x44, 0x00];
        iloc.extend_from_slice(&items.to_be_bytes());
        let mut at = mdat_at + 8;
        for (id, (_, data)) in (1..=n).zip(images) {
            for v in [id, 0, 0, 1] {
                iloc.extend_from_slice(&v.to_be_bytes());
            }
            iloc.extend_from_slice(&at.to_be_bytes());
            iloc.extend_from_slice(&(data.len() as u32).to_be_bytes());
            at += data.len() as u32;
        }
        if grid.is_some() {
            for v in [n + 1, 1, 0, 1] {
                iloc.extend_from_slice(&v.to_be_bytes());
            }
            iloc.extend_from_slice(&0u32.to_be_bytes());
            iloc.extend_from_slice(&(grid_data.len() as u32).to_be_bytes());
        }
        let mut body = fbx(b"hdlr", 0, &hdlr);
        body.extend(fbx(b"pitm", 0, &primary.to_be_bytes()));
        body.extend(fbx(b"iinf", 0, &iinf));
        if grid.is_some() {
            let mut dimg = (n + 1).to_be_bytes().to_vec();
            dimg.extend_from_slice(&n.to_be_bytes());
            for id in 1..=n {
                dimg.extend_from_slice(&id.to_be_bytes());
            }
            body.extend(fbx(b"iref", 0, &bx(b"dimg", &dimg)));
        }
        body.extend(bx(b"iprp", &iprp));
        body.extend(fbx(b"iloc", 1, &iloc));
        if grid.is_some() {
            body.extend(bx(b"idat", &grid_data));
        }
        fbx(b"meta", 0, &body)
    };
    let ftyp = bx(b"ftyp", b"heic\0\0\0\0mif1heicmiaf");
    let at = (ftyp.len() + meta(0).len()) as u32;
    let mut file = ftyp;
    file.extend(meta(at));
    let mdat: Vec<u8> = images.iter().flat_map(|(_, d)| d.clone()).collect();
    file.extend(bx(b"mdat", &mdat));
    std::fs::write(&out, file).unwrap();
    out
}

/// `src` (`w`x`h`) as one image with a `clap` cropping 40 columns and 30 rows off centre.
fn clap_heic(src: &Path, w: u32, h: u32, d: &Path) -> PathBuf {
    let mut clap = Vec::new();
    for v in [w as i32 - 40, 1, h as i32 - 30, 1, -10, 1, 6, 1] {
        clap.extend_from_slice(&v.to_be_bytes());
    }
    let image = hevc_of(src, d, "clap-src.heic");
    assemble(
        &[image],
        (w, h),
        None,
        &[bx(b"clap", &clap)],
        d.join("clap.heic"),
    )
}
