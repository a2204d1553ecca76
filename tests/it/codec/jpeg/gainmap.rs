//! Gain maps (Ultra HDR / ISO 21496-1) kept through a render, checked with libultrahdr.
//!
//! The ISO 21496-1 test file is made by libultrahdr itself (the reference encoder, through
//! libvips 8.18's `uhdrsave`: scripts/test.sh installs the pyvips wheel that bundles both into
//! target/uhdr-venv) from a corpus photo with its highlights boosted up to 4x in linear light,
//! with a quarter-size map. The XMP-flavoured file (Android's original Ultra HDR layout: hdrgm
//! XMP with a GContainer directory in the primary, hdrgm XMP in the map, no ISO segments) is
//! built here from the specification by a small writer, out of the libultrahdr file's two
//! images; libultrahdr reading it back with the same gain curve checks the writer.
//!
//! Outputs are read by independent programs: libultrahdr (`uhdrload`: the map and its curve),
//! exiftool (the MPF index, XMP, `-b -MPImage2` to extract the map), djpeg and ImageMagick (the
//! pixels).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::mount::Mount;
use crate::common::{corpus, djpeg, exiftool, p, parse_pnm, psnr, run, thumbfs};
use thumbfs::codec::jpeg::mpf;
use thumbfs::io::target::MemoryTarget;
use thumbfs::pipeline::Rendered;
use thumbfs::{RenderOptions, Source, Spec};

/// The Python with libvips 8.18 and libultrahdr (scripts/test.sh sets the variable; the
/// default is where it installs them).
fn uhdr_python() -> PathBuf {
    let p = std::env::var_os("THUMBFS_TEST_UHDR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/uhdr-venv/bin/python")
        });
    assert!(
        p.exists(),
        "{}: missing; scripts/test.sh installs pyvips-binary 8.18 into target/uhdr-venv",
        p.display()
    );
    p
}

/// Runs a Python snippet with pyvips imported and `sys.argv[1:]` = `args`.
fn py(script: &str, args: &[&str]) -> String {
    let out = run(Command::new(uhdr_python())
        .arg("-c")
        .arg(format!("import sys, pyvips\n{script}"))
        .args(args));
    String::from_utf8(out).unwrap()
}

/// The gain map as libultrahdr decodes it: the map's size and its curve, one `name value`
/// per line (`uhdrload` fails on a file whose map it cannot find or parse).
fn uhdr_info(path: &Path) -> (u32, u32, Vec<(String, String)>) {
    let out = py(
        "im = pyvips.Image.uhdrload(sys.argv[1])
g = im.get_gainmap()
print(g.width, g.height)
for f in sorted(im.get_fields()):
    if f.startswith('gainmap-') and f not in ('gainmap-data', 'gainmap-scale-factor'):
        v = im.get(f)
        print(f, ' '.join('%.4f' % x for x in (v if isinstance(v, list) else [v])))",
        &[p(path)],
    );
    let mut lines = out.lines();
    let size: Vec<u32> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    let curve = lines
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    (size[0], size[1], curve)
}

/// Source: 2136x1424 (half the corpus photo), map 534x356.
const W: u32 = 2136;
const H: u32 = 1424;

/// The libultrahdr-made ISO 21496-1 file, made once per test binary.
fn iso_source() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        py(
            "im = pyvips.Image.new_from_file(sys.argv[1]).resize(0.5)
lin = im.colourspace('scrgb')
y = lin.colourspace('b-w')
hdr = (lin * (1 + 3 * y)).copy(interpretation='scrgb')
hdr.uhdrsave(sys.argv[2], Q=90, gainmap_scale_factor=4)",
            &[
                p(&corpus("photos/sunset_by_Aitzol_Berasategi.jpg")),
                p(&d.path().join("iso.jpg")),
            ],
        );
        d
    });
    Box::leak(dir.path().join("iso.jpg").into_boxed_path())
}

fn render_src(src: Source, spec: &str) -> (Vec<u8>, Rendered) {
    let spec: Spec = spec.parse().unwrap();
    let mut target = MemoryTarget::new();
    let r = thumbfs::render(src, &spec, &mut target, &RenderOptions::default()).unwrap();
    (target.take(), r)
}

fn render(bytes: &[u8], spec: &str) -> (Vec<u8>, Rendered) {
    render_src(Source::memory(bytes), spec)
}

/// The (marker, payload) segments of a JPEG before its first SOS.
fn segments(jpeg: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 2;
    while jpeg[at] == 0xFF && jpeg[at + 1] != 0xDA {
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        out.push((jpeg[at + 1], jpeg[at + 4..at + 2 + len].to_vec()));
        at += 2 + len;
    }
    out
}

/// `jpeg` without its APP segments whose payload starts with one of `sigs`.
fn without(jpeg: &[u8], sigs: &[&[u8]]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut at = 2;
    while jpeg[at + 1] != 0xDA {
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        let body = &jpeg[at + 4..at + 2 + len];
        if !sigs.iter().any(|s| body.starts_with(s)) {
            out.extend_from_slice(&jpeg[at..at + 2 + len]);
        }
        at += 2 + len;
    }
    out.extend_from_slice(&jpeg[at..]);
    out
}

const ISO: &[u8] = b"urn:iso:std:iso:ts:21496:-1\0";
const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// An APP segment.
fn app(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
    s.extend_from_slice(body);
    s
}

/// Ultra HDR as Android first wrote it (Ultra HDR image format v1.0): the primary with an XMP
/// APP1 (`hdrgm:Version`, a GContainer directory whose GainMap item has the map's length) and
/// an MPF APP2 (CIPA DC-007: a big-endian TIFF header, the MP Index IFD, two MP entries whose
/// offsets count from the TIFF header), then the map, whose XMP carries the curve.
fn xmp_ultra_hdr(primary: &[u8], map: &[u8], curve: &str) -> Vec<u8> {
    let map_xmp = format!(
        r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" hdrgm:Version="1.0" {curve}/></rdf:RDF></x:xmpmeta>"#
    );
    let map = [
        &map[..2],
        &app(0xE1, &[XMP, map_xmp.as_bytes()].concat()),
        &map[2..],
    ]
    .concat();
    let primary_xmp = format!(
        r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:Container="http://ns.google.com/photos/1.0/container/" xmlns:Item="http://ns.google.com/photos/1.0/container/item/" xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" hdrgm:Version="1.0"><Container:Directory><rdf:Seq><rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="Primary" Item:Mime="image/jpeg"/></rdf:li><rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="GainMap" Item:Mime="image/jpeg" Item:Length="{}"/></rdf:li></rdf:Seq></Container:Directory></rdf:Description></rdf:RDF></x:xmpmeta>"#,
        map.len()
    );
    let xmp_seg = app(0xE1, &[XMP, primary_xmp.as_bytes()].concat());
    let mpf_len = 2 + 4 + 8 + 2 + 3 * 12 + 4 + 32;
    let primary_len = primary.len() + xmp_seg.len() + 2 + mpf_len;
    let tiff_at = 2 + xmp_seg.len() + 8;
    let mut t = b"MPF\0MM\0*".to_vec();
    t.extend_from_slice(&8u32.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes());
    for (tag, typ, count, value) in [
        (0xB000u16, 7u16, 4u32, u32::from_be_bytes(*b"0100")),
        (0xB001, 4, 1, 2),
        (0xB002, 7, 32, 50),
    ] {
        for v in [
            &tag.to_be_bytes()[..],
            &typ.to_be_bytes(),
            &count.to_be_bytes(),
            &value.to_be_bytes(),
        ] {
            t.extend_from_slice(v);
        }
    }
    t.extend_from_slice(&0u32.to_be_bytes());
    for (attr, size, off) in [
        (0x0003_0000u32, primary_len as u32, 0u32),
        (0, map.len() as u32, (primary_len - tiff_at) as u32),
    ] {
        for v in [attr, size, off, 0] {
            t.extend_from_slice(&v.to_be_bytes());
        }
    }
    let out = [&primary[..2], &xmp_seg, &app(0xE2, &t), &primary[2..], &map].concat();
    assert_eq!(out.len(), primary_len + map.len());
    out
}

/// The source's two images and its curve as hdrgm XMP attributes (log2 of the boosts).
fn split(file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let e = mpf::entries(file).unwrap();
    let at = e[1].offset as usize;
    (
        file[..at].to_vec(),
        file[at..at + e[1].size as usize].to_vec(),
    )
}

/// The XMP-flavoured file, from the ISO one's images and curve.
fn xmp_source(dir: &Path) -> PathBuf {
    let iso = std::fs::read(iso_source()).unwrap();
    let (primary, map) = split(&iso);
    let (_, _, curve) = uhdr_info(iso_source());
    let get = |k: &str| -> f64 {
        let v = &curve.iter().find(|(n, _)| n == k).unwrap().1;
        v.split(' ').next().unwrap().parse().unwrap()
    };
    let attrs = format!(
        r#"hdrgm:GainMapMin="{}" hdrgm:GainMapMax="{}" hdrgm:Gamma="{}" hdrgm:OffsetSDR="{}" hdrgm:OffsetHDR="{}" hdrgm:HDRCapacityMin="{}" hdrgm:HDRCapacityMax="{}" hdrgm:BaseRenditionIsHDR="False""#,
        get("gainmap-min-content-boost").log2(),
        get("gainmap-max-content-boost").log2(),
        get("gainmap-gamma"),
        get("gainmap-offset-sdr"),
        get("gainmap-offset-hdr"),
        get("gainmap-hdr-capacity-min").log2(),
        get("gainmap-hdr-capacity-max").log2(),
    );
    let file = xmp_ultra_hdr(
        &without(&without(&primary, &[ISO]), &[b"MPF\0"]),
        &without(&map, &[ISO]),
        &attrs,
    );
    let path = dir.join("xmp.jpg");
    std::fs::write(&path, file).unwrap();
    path
}

/// exiftool's MPF entries of `path`: (length, start) per image.
fn mp_images(path: &Path) -> Vec<(u64, u64)> {
    let out = exiftool(
        &[
            "-a",
            "-s",
            "-s",
            "-s",
            "-n",
            "-MPImageLength",
            "-MPImageStart",
        ],
        path,
    );
    let v: Vec<u64> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    // All lengths, then all starts.
    let n = v.len() / 2;
    (0..n).map(|i| (v[i], v[n + i])).collect()
}

/// Grey pixels of a JPEG by ImageMagick, after `ops` (e.g. a crop and resize of a reference).
fn magick_grey(src: &Path, ops: &[&str]) -> crate::common::Pixels {
    parse_pnm(&run(Command::new("convert").arg(src).args(ops).args([
        "-colorspace",
        "Gray",
        "-depth",
        "8",
        "pgm:-",
    ])))
}

/// Ours (a DCT-scaled decode leaving 4x, Lanczos3, a Q90 re-encode) against a full decode
/// and ImageMagick's Lanczos: measured 39.5-39.7 dB on resizes (the Q90 re-encode alone of the
/// reference costs 39.6 dB), 71 dB on a crop. 35 dB is an RMS error of 1.8 % of the map's
/// range, which spans its log2 boost range (2 stops here): about 2.5 % of brightness in the
/// HDR rendition, where the JPEG error of the primary is of the same order.
const MAP_MIN_DB: f64 = 35.0;

/// One spec's render of `src`, checked every way: libultrahdr finds the map with the source's
/// curve at `map` size; exiftool's MPF index locates both images exactly and extracts the
/// map; the map matches the source's map put through `reference` ops by ImageMagick; the
/// primary's pixels are the `sdr` output's.
fn check(src: &Path, spec: &str, map: (u32, u32), reference: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(src).unwrap();
    let (out, r) = render(&bytes, spec);
    assert_eq!(r.gain_map, Some(map), "{spec}");
    let path = dir.path().join("out.jpg");
    std::fs::write(&path, &out).unwrap();

    let (gw, gh, curve) = uhdr_info(&path);
    assert_eq!((gw, gh), map, "{spec}: libultrahdr's map size");
    assert_eq!(
        curve,
        uhdr_info(src).2,
        "{spec}: the gain curve is the source's"
    );

    let mp = mp_images(&path);
    assert_eq!(mp.len(), 2, "{spec}: {mp:?}");
    let primary_len = out.len() as u64 - mp[1].0;
    assert_eq!(mp[0], (primary_len, 0), "{spec}: primary entry");
    assert_eq!(mp[1].1, primary_len, "{spec}: the map's offset");
    let extracted = exiftool(&["-b", "-MPImage2"], &path);
    assert_eq!(extracted, &out[primary_len as usize..], "{spec}");
    assert!(out[..primary_len as usize].ends_with(&[0xFF, 0xD9]));

    let map_path = dir.path().join("map.jpg");
    std::fs::write(&map_path, &extracted).unwrap();
    let source_map = dir.path().join("source_map.jpg");
    std::fs::write(&source_map, exiftool(&["-b", "-MPImage2"], src)).unwrap();
    let ours = magick_grey(&map_path, &[]);
    let want = magick_grey(&source_map, reference);
    assert_eq!((want.width, want.height), map, "{spec}: reference size");
    let db = psnr(&ours.data, &want.data, 255);
    eprintln!("{spec}: map {}x{} {db:.1} dB", map.0, map.1);
    assert!(
        db >= MAP_MIN_DB,
        "{spec}: map {db:.1} dB from the reference"
    );

    let (sdr, rs) = render(&bytes, &format!("{spec}_sdr"));
    assert_eq!(rs.gain_map, None);
    assert!(mpf::entries(&sdr).is_none(), "{spec}_sdr has no MPF index");
    let sdr_path = dir.path().join("sdr.jpg");
    std::fs::write(&sdr_path, &sdr).unwrap();
    std::fs::write(&path, &out[..primary_len as usize]).unwrap();
    assert_eq!(
        djpeg(&path),
        djpeg(&sdr_path),
        "{spec}: primary is the sdr output"
    );
    out
}

/// The ISO 21496-1 file from libultrahdr, through resize, fill, rotate, crop and flip.
#[test]
fn iso_map_follows_the_geometry() {
    let src = iso_source();
    let (w, h, _) = uhdr_info(src);
    assert_eq!((w, h), (W / 4, H / 4));
    // 256x171: a quarter is 64x42.75, rounded.
    check(
        src,
        "w256",
        (64, 43),
        &["-filter", "Lanczos", "-resize", "64x43!"],
    );
    // 300x200 canvas, the centre 200 columns: source columns 356..1780, map 89..445.
    let fill = [
        "-crop",
        "356x356+89+0",
        "+repage",
        "-filter",
        "Lanczos",
        "-resize",
        "50x50!",
    ];
    check(src, "200x200_fill", (50, 50), &fill);
    let rot = ["-filter", "Lanczos", "-resize", "75x50!", "-rotate", "90"];
    check(src, "w300_rot90", (50, 75), &rot);
    // No resize: the map is cut at a quarter of the crop, then flipped.
    let crop = ["-crop", "100x75+25+15", "+repage", "-flip"];
    check(src, "crop400x300+100+60_flip", (100, 75), &crop);
    // The output's ISO segments: the primary's version box and the map's curve, as the
    // source's.
    let (out, _) = render(&std::fs::read(src).unwrap(), "w256");
    let (primary, map) = split(&out);
    let (sp, sm) = split(&std::fs::read(src).unwrap());
    let iso = |j: &[u8]| {
        segments(j)
            .into_iter()
            .find(|(m, b)| *m == 0xE2 && b.starts_with(ISO))
    };
    assert_eq!(iso(&primary), iso(&sp));
    assert_eq!(iso(&map), iso(&sm));
    assert!(iso(&map).unwrap().1.len() > ISO.len() + 4);
}

/// A source shown rotated (EXIF orientation 6, set by exiftool, which keeps the MPF images):
/// the map turns with the primary.
#[test]
fn map_turns_with_the_exif_orientation() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("o6.jpg");
    run(Command::new("exiftool")
        .args(["-q", "-n", "-Orientation=6", "-o"])
        .arg(&src)
        .arg(iso_source()));
    assert_eq!(mp_images(&src).len(), 2, "exiftool kept the map");
    // Upright 1424x2136 -> 256x384; stored 384x256, map 96x64, turned to 64x96.
    let rot = ["-filter", "Lanczos", "-resize", "96x64!", "-rotate", "90"];
    check(&src, "w256", (64, 96), &rot);
}

/// Android's XMP layout, built here: the GContainer length is rewritten for the new map, the
/// map keeps its hdrgm curve, and libultrahdr reads the output with the source's curve.
#[test]
fn xmp_map_gets_its_new_length() {
    let dir = tempfile::tempdir().unwrap();
    let src = xmp_source(dir.path());
    // The writer's file reads as the ISO one does in libultrahdr (to the 4 decimals printed).
    assert_eq!(uhdr_info(&src), uhdr_info(iso_source()));
    let out = check(
        &src,
        "w256",
        (64, 43),
        &["-filter", "Lanczos", "-resize", "64x43!"],
    );
    let path = dir.path().join("out.jpg");
    std::fs::write(&path, &out).unwrap();
    let (_, map) = split(&out);
    let tags = String::from_utf8(exiftool(
        &[
            "-s",
            "-s",
            "-s",
            "-XMP-hdrgm:Version",
            "-XMP-Container:DirectoryItemLength",
        ],
        &path,
    ))
    .unwrap();
    assert_eq!(tags, format!("1.0\n{}\n", map.len()));
    assert!(
        !out.windows(ISO.len()).any(|w| w == ISO),
        "no ISO segment added"
    );
    let map_path = dir.path().join("map.jpg");
    std::fs::write(&map_path, &map).unwrap();
    let curve = exiftool(&["-s", "-s", "-s", "-XMP-hdrgm:GainMapMax"], &map_path);
    let source_map = split(&std::fs::read(&src).unwrap()).1;
    std::fs::write(&map_path, &source_map).unwrap();
    assert_eq!(
        curve,
        exiftool(&["-s", "-s", "-s", "-XMP-hdrgm:GainMapMax"], &map_path)
    );
    // Without the map (sdr, or another format) the XMP no longer announces one.
    for spec in ["w256_sdr", "w256_png"] {
        let (dropped, _) = render(&std::fs::read(&src).unwrap(), spec);
        std::fs::write(&path, &dropped).unwrap();
        let tags = exiftool(&["-s", "-XMP-hdrgm:all", "-XMP-Container:all"], &path);
        assert!(
            tags.is_empty(),
            "{spec}: {}",
            String::from_utf8_lossy(&tags)
        );
    }
}

/// What drops the map: `sdr`, `strip`, colour changes, other formats, a source that cannot
/// seek (the map is at its end); each gives the base image alone, with no MPF index.
#[test]
fn the_map_is_dropped_where_it_no_longer_applies() {
    let bytes = std::fs::read(iso_source()).unwrap();
    for spec in ["w256_sdr", "w256_strip", "w256_grey", "w256_invert"] {
        let (out, r) = render(&bytes, spec);
        assert_eq!(r.gain_map, None, "{spec}");
        assert!(mpf::entries(&out).is_none(), "{spec}");
        assert!(!out.windows(ISO.len()).any(|w| w == ISO), "{spec}");
    }
    for spec in ["w256_png", "w256_webp"] {
        assert_eq!(render(&bytes, spec).1.gain_map, None, "{spec}");
    }
    let (piped, r) = render_src(crate::common::codec::pipe(bytes.clone()), "w256");
    assert_eq!(r.gain_map, None);
    assert!(mpf::entries(&piped).is_none());
    // A map that does not decode is dropped, not an error: its first segment (the ISO
    // curve, so it is found) kept, the rest zeros.
    let (primary, map) = split(&bytes);
    assert_eq!(&map[2..4], &[0xFF, 0xE2]);
    let first = 4 + u16::from_be_bytes([map[4], map[5]]) as usize;
    let mut broken = [primary, map[..first].to_vec()].concat();
    broken.resize(bytes.len(), 0);
    let (_, r) = render(&broken, "w256");
    assert_eq!(r.gain_map, None);
}

/// The CLI and a real mount serve the same Ultra HDR bytes, which libultrahdr reads.
#[test]
fn cli_and_mount_keep_the_map() {
    let src = tempfile::tempdir().unwrap();
    let photo = src.path().join("photo.jpg");
    std::fs::copy(iso_source(), &photo).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli.jpg");
    thumbfs(&["convert", "w256", p(&photo), p(&out)]);
    assert_eq!(uhdr_info(&out).0, 64);
    let sdr = thumbfs(&["convert", "w256_sdr", p(&photo), ".jpg"]);
    assert!(mpf::entries(&sdr).is_none());

    let m = Mount::new(src.path(), &[]);
    let served = m.path("w256/photo.jpg");
    let bytes = std::fs::read(&served).unwrap();
    assert_eq!(bytes, std::fs::read(&out).unwrap());
    assert_eq!(
        std::fs::metadata(&served).unwrap().len(),
        bytes.len() as u64
    );
    let (gw, gh, _) = uhdr_info(&served);
    assert_eq!((gw, gh), (64, 43));
    assert!(mpf::entries(&std::fs::read(m.path("w256_sdr/photo.jpg")).unwrap()).is_none());
}
