//! HEIC grid images (what phones write: `grid` items over 512x512 tiles) on the direct
//! libde265 path (crates/codec/src/heif/direct.rs): against libheif's assembly (`exact`) and
//! `vips thumbnail`. heif-enc 1.15 writes grids only for odd sizes (a 1x1 grid over a padded
//! tile), so the grids here are written by [`grid_file`] from tiles heif-enc encodes
//! separately from crops of corpus photos.

use super::heif_direct::{
    applied, bx, db, direct_vs_exact, fbx, heif_enc, hevc_of, photo_png, render,
};
use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// One coded tile: `hvcC` body, NAL units, its `ispe` size.
type Tile = (Vec<u8>, Vec<u8>, (u32, u32));

/// How to write a grid file (and how to damage it).
struct GridSpec<'a> {
    tiles: &'a [Tile],
    rows: u8,
    columns: u8,
    /// The grid's output size.
    size: (u32, u32),
    /// Property boxes of the grid item (irot, imir, colr), in order, essential.
    extra: &'a [Vec<u8>],
    /// The grid's `dimg` inputs; `None`: the tiles in order (items 1..=n).
    dimg: Option<Vec<u16>>,
}

/// A HEIC whose primary item (n + 1) is a grid over hvc1 tiles 1..=n, each with its own
/// `hvcC` and `ispe`; the grid's descriptor is in `idat`. ipma uses 16-bit indices.
fn grid_file(spec: &GridSpec, out: PathBuf) -> PathBuf {
    let n = spec.tiles.len() as u16;
    let grid = n + 1;
    let ispe = |(w, h): (u32, u32)| {
        let mut b = w.to_be_bytes().to_vec();
        b.extend_from_slice(&h.to_be_bytes());
        fbx(b"ispe", 0, &b)
    };
    let wide = spec.size.0 > 65535 || spec.size.1 > 65535;
    let mut desc = vec![0u8, u8::from(wide), spec.rows - 1, spec.columns - 1];
    if wide {
        desc.extend_from_slice(&spec.size.0.to_be_bytes());
        desc.extend_from_slice(&spec.size.1.to_be_bytes());
    } else {
        desc.extend_from_slice(&(spec.size.0 as u16).to_be_bytes());
        desc.extend_from_slice(&(spec.size.1 as u16).to_be_bytes());
    }
    let meta = |mdat_at: u32| {
        let mut hdlr = vec![0; 4];
        hdlr.extend_from_slice(b"pict");
        hdlr.extend_from_slice(&[0; 13]);
        let mut iinf = grid.to_be_bytes().to_vec();
        for id in 1..=grid {
            let mut e = vec![2, 0, 0, u8::from(id < grid)];
            e.extend_from_slice(&id.to_be_bytes());
            e.extend_from_slice(&[0, 0]);
            e.extend_from_slice(if id == grid { b"grid" } else { b"hvc1" });
            e.push(0);
            iinf.extend(bx(b"infe", &e));
        }
        // ipco: tile i's hvcC 2i-1 and ispe 2i, the grid's ispe 2n+1, then `extra`.
        let mut ipco = Vec::new();
        for (hvcc, _, size) in spec.tiles {
            ipco.extend(bx(b"hvcC", hvcc));
            ipco.extend(ispe(*size));
        }
        ipco.extend(ispe(spec.size));
        for e in spec.extra {
            ipco.extend_from_slice(e);
        }
        let mut ipma = u32::from(grid).to_be_bytes().to_vec();
        for id in 1..=grid {
            let props: Vec<u16> = if id < grid {
                vec![0x8000 | (2 * id - 1), 2 * id]
            } else {
                std::iter::once(2 * n + 1)
                    .chain((0..spec.extra.len() as u16).map(|i| 0x8000 | (2 * n + 2 + i)))
                    .collect()
            };
            ipma.extend_from_slice(&id.to_be_bytes());
            ipma.push(props.len() as u8);
            for p in props {
                ipma.extend_from_slice(&p.to_be_bytes());
            }
        }
        let mut iprp = bx(b"ipco", &ipco);
        // Flags 1: 16-bit property indices.
        let mut ipma_box = fbx(b"ipma", 0, &ipma);
        ipma_box[11] = 1;
        iprp.extend(ipma_box);
        let mut iloc = vec![0x44, 0x00];
        iloc.extend_from_slice(&grid.to_be_bytes());
        let mut at = mdat_at + 8;
        for (id, (_, data, _)) in (1..=n).zip(spec.tiles) {
            for v in [id, 0, 0, 1] {
                iloc.extend_from_slice(&v.to_be_bytes());
            }
            iloc.extend_from_slice(&at.to_be_bytes());
            iloc.extend_from_slice(&(data.len() as u32).to_be_bytes());
            at += data.len() as u32;
        }
        for v in [grid, 1, 0, 1] {
            iloc.extend_from_slice(&v.to_be_bytes());
        }
        iloc.extend_from_slice(&0u32.to_be_bytes());
        iloc.extend_from_slice(&(desc.len() as u32).to_be_bytes());
        let inputs = spec.dimg.clone().unwrap_or_else(|| (1..=n).collect());
        let mut dimg = grid.to_be_bytes().to_vec();
        dimg.extend_from_slice(&(inputs.len() as u16).to_be_bytes());
        for id in inputs {
            dimg.extend_from_slice(&id.to_be_bytes());
        }
        let mut body = fbx(b"hdlr", 0, &hdlr);
        body.extend(fbx(b"pitm", 0, &grid.to_be_bytes()));
        body.extend(fbx(b"iinf", 0, &iinf));
        body.extend(fbx(b"iref", 0, &bx(b"dimg", &dimg)));
        body.extend(bx(b"iprp", &iprp));
        body.extend(fbx(b"iloc", 1, &iloc));
        body.extend(bx(b"idat", &desc));
        fbx(b"meta", 0, &body)
    };
    let ftyp = bx(b"ftyp", b"heic\0\0\0\0mif1heicmiaf");
    let at = (ftyp.len() + meta(0).len()) as u32;
    let mut file = ftyp;
    file.extend(meta(at));
    let mdat: Vec<u8> = spec.tiles.iter().flat_map(|t| t.1.clone()).collect();
    file.extend(bx(b"mdat", &mdat));
    std::fs::write(&out, file).unwrap();
    out
}

/// `src` cut into `rows` x `columns` tiles of `tw`x`th` (row-major; `src` at least that
/// large), each encoded by heif-enc at `q`.
fn tiles_of(
    src: &Path,
    rows: u32,
    columns: u32,
    (tw, th): (u32, u32),
    q: &str,
    d: &Path,
) -> Vec<Tile> {
    let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
    (0..rows * columns)
        .map(|i| {
            let tile = d.join(format!("{stem}-t{i}.png"));
            let (x, y) = ((i % columns) * tw, (i / columns) * th);
            run(Command::new("convert")
                .arg(src)
                .args(["-crop", &format!("{tw}x{th}+{x}+{y}"), "+repage"])
                .arg(&tile));
            let f = heif_enc(&tile, d, &format!("{stem}-t{i}.heic"), &["-q", q]);
            let (hvcc, data) = hevc_of_file(&f);
            (hvcc, data, (tw, th))
        })
        .collect()
}

/// The `hvcC` body and mdat of a heif-enc file (one plain image).
fn hevc_of_file(f: &Path) -> (Vec<u8>, Vec<u8>) {
    let b = std::fs::read(f).unwrap();
    let body = |kind: &[u8; 4]| {
        let at = b.windows(4).position(|w| w == kind).unwrap() - 4;
        let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        b[at + 8..at + size].to_vec()
    };
    assert!(
        !b.windows(4).any(|w| w == b"grid"),
        "{f:?}: heif-enc wrote a grid"
    );
    (body(b"hvcC"), body(b"mdat"))
}

/// `ours` (a PNG) against `vips thumbnail` of `f` at the same size.
fn vs_vips(f: &Path, ours: &Path) -> f64 {
    let px = magick_decode(ours, 8);
    let vips = ours.with_extension("vips.png");
    run(Command::new("vips")
        .arg("thumbnail")
        .arg(f)
        .arg(&vips)
        .arg(px.width.to_string())
        .args(["--height", &px.height.to_string(), "--size", "force"]));
    db(ours, &vips)
}

/// Grids of 2x2 (exactly covered), 3x2 with the last column and row cropped by the output
/// size (tiles whose sizes are no multiple of the shrink, so blocks straddle tile edges),
/// the same with irot and imir, and heif-enc's own 1x1 grid of an odd-sized image: the
/// direct path runs and stays within rounding of libheif's assembly.
#[test]
fn grid_thumbnails_match_libheif_and_vips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let seeding = photo_png(d, "seeding_by_Clements_Engelhardt.jpg", "640x428");
    let sunset = photo_png(d, "sunset_by_Aitzol_Berasategi.jpg", "750x340");
    let quarters = tiles_of(&seeding, 2, 2, (320, 214), "60", d);
    let six = tiles_of(&sunset, 2, 3, (250, 170), "60", d);
    let grid = |tiles: &[Tile], rows, columns, size, extra: &[Vec<u8>], name: &str| {
        grid_file(
            &GridSpec {
                tiles,
                rows,
                columns,
                size,
                extra,
                dimg: None,
            },
            d.join(name),
        )
    };
    let files = [
        grid(&quarters, 2, 2, (640, 428), &[], "2x2.heic"),
        grid(&six, 2, 3, (700, 300), &[], "3x2.heic"),
        grid(&six, 2, 3, (700, 300), &[bx(b"irot", &[1])], "3x2-r1.heic"),
        grid(
            &six,
            2,
            3,
            (701, 299),
            &[bx(b"irot", &[3]), bx(b"imir", &[1])],
            "3x2-r3m1.heic",
        ),
        heif_enc(
            &photo_png(d, "seeding_by_Clements_Engelhardt.jpg", "401x267"),
            d,
            "odd-grid.heic",
            &["-q", "60"],
        ),
    ];
    assert!(std::fs::read(&files[4])
        .unwrap()
        .windows(4)
        .any(|w| w == b"grid"));
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let (w, h, s) = applied(f, 4, false);
        assert_eq!(s, 4, "{name}: direct path not taken");
        let (fw, fh, _) = applied(f, 4, true);
        assert_eq!((w, h), (fw.div_ceil(4), fh.div_ceil(4)), "{name}");
        // Rotated files are 300 wide: w60 still shrinks them by 2 first.
        for spec in ["w60", "w40"] {
            let (psnr, differ) = direct_vs_exact(f, spec, d);
            eprintln!("{name} {spec}: {psnr:.1} dB vs exact");
            assert!(psnr >= 45.0, "{name} {spec}: {psnr:.1} dB vs exact");
            assert!(differ, "{name} {spec}: same bytes as exact");
            let v = vs_vips(f, &d.join(format!("{name}.{spec}.png")));
            eprintln!("{name} {spec}: {v:.1} dB vs vips thumbnail");
            assert!(v >= 40.0, "{name} {spec}: {v:.1} dB vs vips thumbnail");
        }
    }
}

/// A 1x1 grid over a plain image's own stream gives the very bytes of the plain image: the
/// grid's block sums and conversion are the single image's.
#[test]
fn a_one_tile_grid_is_the_plain_image() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = photo_png(d, "sunset_by_Aitzol_Berasategi.jpg", "602x402");
    let plain = heif_enc(&src, d, "plain.heic", &["-q", "60"]);
    let (hvcc, data) = hevc_of(&src, d, "again.heic");
    let tile = [(hvcc, data, (602, 402))];
    for (size, extra, r) in [
        ((602, 402), vec![], None),
        ((602, 402), vec![bx(b"irot", &[1])], Some(1)),
    ] {
        let f = grid_file(
            &GridSpec {
                tiles: &tile,
                rows: 1,
                columns: 1,
                size,
                extra: &extra,
                dimg: None,
            },
            d.join(format!("one-{r:?}.heic")),
        );
        let p = match r {
            None => plain.clone(),
            Some(r) => {
                let t = d.join(format!("plain-r{r}.heic"));
                std::fs::write(
                    &t,
                    crate::pipeline::orientation::formats::add_heif_transforms(
                        &std::fs::read(&plain).unwrap(),
                        Some(r),
                        None,
                    ),
                )
                .unwrap();
                t
            }
        };
        assert_eq!(applied(&f, 8, false).2, 8);
        for spec in ["w64_png", "w150_png"] {
            assert!(
                render(&f, spec) == render(&p, spec),
                "{spec} {r:?}: grid differs from the plain image"
            );
        }
    }
}

/// Damaged grids (too few or too many inputs, a missing tile, a tile of another size, a
/// truncated tile, an output larger than the tiles cover) fall back to libheif or fail,
/// cleanly: no panic, and never the direct path's shrink with a wrong picture.
#[test]
fn damaged_grids_fall_back_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sunset = photo_png(d, "sunset_by_Aitzol_Berasategi.jpg", "512x256");
    let tiles = tiles_of(&sunset, 2, 2, (256, 128), "60", d);
    let mut odd = tiles.clone();
    let other = photo_png(d, "seeding_by_Clements_Engelhardt.jpg", "248x128");
    let (hvcc, data) = hevc_of(&other, d, "other.heic");
    odd[3] = (hvcc, data, (248, 128));
    let mut cut = tiles.clone();
    let n = cut[1].1.len();
    cut[1].1.truncate(n / 3);
    /// Name, tiles, output size, dimg inputs.
    type Case<'a> = (&'a str, &'a [Tile], (u32, u32), Option<Vec<u16>>);
    let cases: Vec<Case> = vec![
        ("three-inputs", &tiles, (512, 256), Some(vec![1, 2, 3])),
        ("five-inputs", &tiles, (512, 256), Some(vec![1, 2, 3, 4, 4])),
        ("missing-tile", &tiles, (512, 256), Some(vec![1, 2, 3, 9])),
        ("self-input", &tiles, (512, 256), Some(vec![1, 2, 3, 5])),
        ("other-size", &odd, (504, 256), None),
        ("truncated", &cut, (512, 256), None),
        ("too-large", &tiles, (520, 256), None),
    ];
    for (name, t, size, dimg) in cases {
        let f = grid_file(
            &GridSpec {
                tiles: t,
                rows: 2,
                columns: 2,
                size,
                extra: &[],
                dimg,
            },
            d.join(format!("{name}.heic")),
        );
        let out = d.join(format!("{name}.jpg"));
        let o = thumbfs_output(&["convert", "w64", p(&f), p(&out)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{name}: {err}");
        eprintln!("{name}: success {}", o.status.success());
        if name != "truncated" {
            // The direct path refused it: libheif decoded it, or nothing did.
            if let Ok((_, s)) = crate::common::codec::load_with(
                &f,
                thumbfs::codec::LoadOptions {
                    shrink: 4,
                    fit: Some((1, 1)),
                    ..Default::default()
                },
            ) {
                assert_eq!(s, 1, "{name}: took the direct path");
            }
        }
        if o.status.success() {
            assert_eq!(djpeg(&out).width, 64, "{name}");
        }
    }
}

/// Colour: libheif 1.15 converts each tile with the tile's own description (heif-enc's
/// streams say BT.601, full range, in their VUI) and ignores the grid's `nclx`; the direct
/// path does the same, whether the grid's agrees or not. If libheif starts honouring the
/// grid's, the first assertion fails and the direct path must follow.
#[test]
fn grid_colour_is_the_tiles_as_in_libheif() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = photo_png(d, "seeding_by_Clements_Engelhardt.jpg", "640x428");
    let tiles = tiles_of(&src, 2, 2, (320, 214), "60", d);
    let with = |nclx: &[u8], name: &str| {
        grid_file(
            &GridSpec {
                tiles: &tiles,
                rows: 2,
                columns: 2,
                size: (640, 428),
                extra: &[bx(b"colr", nclx)],
                dimg: None,
            },
            d.join(name),
        )
    };
    let agree = with(b"nclx\0\x01\0\x0d\0\x06\x80", "agree.heic");
    let differ = with(b"nclx\0\x01\0\x0d\0\x01\0", "differ.heic");
    assert!(
        render(&agree, "w60_exact_png") == render(&differ, "w60_exact_png"),
        "libheif now honours a grid's nclx"
    );
    for f in [&agree, &differ] {
        assert_eq!(applied(f, 4, false).2, 4, "{f:?}: not direct");
        let (psnr, changed) = direct_vs_exact(f, "w60", d);
        eprintln!("{f:?}: {psnr:.1} dB vs exact");
        assert!(psnr >= 45.0 && changed, "{f:?}: {psnr:.1} dB");
    }
}
