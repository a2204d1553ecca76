//! Embedded MPF previews. The corpus has no camera file with an MPF index, so the tests build
//! them: a corpus photo, previews downscaled from it by ImageMagick, and a small MPF writer
//! below that inserts an APP2 `MPF\0` index after SOI and appends the previews.

use crate::common;

use common::*;
use std::process::Command;
use thumbfs::codec::jpeg::mpf;
use thumbfs::io::target::MemoryTarget;
use thumbfs::pipeline::Rendered;
use thumbfs::{RenderOptions, Source, Spec};

const PHOTO: &str = "photos/sunset_by_Aitzol_Berasategi.jpg"; // 4272x2848, 3:2

/// MP type codes used below.
const VGA: u32 = 0x01_0001;
const FULL_HD: u32 = 0x01_0002;
const DISPARITY: u32 = 0x02_0002;
const UNDEFINED: u32 = 0; // what Ultra HDR gives its gain map

/// `main` with an MPF index after SOI listing the primary image and `previews` (type code,
/// bytes, size written in the entry), the previews appended after it.
fn with_mpf(main: &[u8], previews: &[(u32, &[u8], u32)]) -> Vec<u8> {
    let n = 1 + previews.len() as u32;
    let mut t = Vec::new(); // TIFF-structured payload, little-endian
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    let entries_at = 8 + 2 + 3 * 12 + 4;
    for (tag, typ, count, value) in [
        (0xB000u16, 7u16, 4u32, u32::from_le_bytes(*b"0100")),
        (0xB001, 4, 1, n),
        (0xB002, 7, 16 * n, entries_at),
    ] {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&typ.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    let segment_len = 2 + 4 + t.len() + 16 * n as usize;
    let main_len = main.len() + 2 + segment_len;
    let tiff_at = 2 + 4 + 4; // SOI, marker and length, "MPF\0"
    let mut entry = |attr: u32, size: u32, offset: u32| {
        t.extend_from_slice(&attr.to_le_bytes());
        t.extend_from_slice(&size.to_le_bytes());
        t.extend_from_slice(&offset.to_le_bytes());
        t.extend_from_slice(&[0; 4]);
    };
    entry(0x2003_0000, main_len as u32, 0);
    let mut at = main_len;
    for (code, bytes, size) in previews {
        entry(*code, *size, (at - tiff_at) as u32);
        at += bytes.len();
    }
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE2];
    out.extend_from_slice(&(segment_len as u16).to_be_bytes());
    out.extend_from_slice(b"MPF\0");
    out.extend_from_slice(&t);
    out.extend_from_slice(&main[2..]);
    assert_eq!(out.len(), main_len);
    for (_, bytes, _) in previews {
        out.extend_from_slice(bytes);
    }
    out
}

/// The photo downscaled to `size` (ImageMagick's `-resize WxH!`), as a Q92 JPEG.
fn preview(size: &str) -> Vec<u8> {
    run(Command::new("convert").arg(corpus(PHOTO)).args([
        "-resize",
        &format!("{size}!"),
        "-quality",
        "92",
        "jpg:-",
    ]))
}

fn render(bytes: &[u8], spec: &str) -> (Vec<u8>, Rendered) {
    let spec: Spec = spec.parse().unwrap();
    let mut target = MemoryTarget::new();
    let r = thumbfs::render(
        Source::memory(bytes),
        &spec,
        &mut target,
        &RenderOptions::default(),
    )
    .unwrap();
    (target.take(), r)
}

fn decode_png(bytes: &[u8]) -> Pixels {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.png");
    std::fs::write(&p, bytes).unwrap();
    magick_rgb8(&p)
}

/// The writer's index reads back as written, and a w256 thumbnail comes from the smallest
/// preview of the right shape (the VGA one is 640x424, not 3:2) within 40 dB of the main
/// image's; `exact` and outputs larger than half the preview use the main image.
#[test]
fn thumbnail_from_full_hd_preview() {
    let main = std::fs::read(corpus(PHOTO)).unwrap();
    let (vga, hd) = (preview("640x424"), preview("1620x1080"));
    let file = with_mpf(
        &main,
        &[
            (VGA, &vga, vga.len() as u32),
            (FULL_HD, &hd, hd.len() as u32),
        ],
    );
    let e = mpf::entries(&file).unwrap();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].offset, 0);
    assert!(e[1].is_preview() && e[2].is_preview() && !e[0].is_preview());
    assert_eq!(&file[e[2].offset as usize..][..e[2].size as usize], &hd[..]);

    let start = std::time::Instant::now();
    let (fast, r) = render(&file, "w256_png");
    let t_fast = start.elapsed();
    let start = std::time::Instant::now();
    let (exact, rx) = render(&file, "w256_exact_png");
    let t_exact = start.elapsed();
    assert_eq!(r.preview, Some((1620, 1080)), "the full-HD preview is used");
    assert_eq!(rx.preview, None);
    assert_eq!((r.header.width, r.header.height), (256, 171));
    assert_eq!((rx.header.width, rx.header.height), (256, 171));
    let (a, b) = (decode_png(&fast), decode_png(&exact));
    let p = psnr(&a.data, &b.data, 255);
    eprintln!("preview {t_fast:?}, main {t_exact:?}, {p:.1} dB");
    assert!(
        p >= 40.0,
        "preview-made thumbnail {p:.1} dB from the main image's"
    );

    // 1620/2 < 1000: too small for w1000, so the main image.
    let (big, r) = render(&file, "w1000_png");
    assert_eq!(r.preview, None);
    assert_eq!(big, render(&file, "w1000_exact_png").0);
    // Without a thumbnail there is nothing to stand in for.
    assert_eq!(render(&file, "shrink8_png").1.preview, None);
}

/// Every guard that fails gives exactly the main image's output: a gain-map or disparity
/// type, a wrong aspect ratio, a preview that does not decode, hostile index values.
#[test]
fn failed_guards_fall_back_to_the_main_image() {
    let main = std::fs::read(corpus(PHOTO)).unwrap();
    let hd = preview("1620x1080");
    let narrow = preview("1620x1070");
    let n = hd.len() as u32;
    let files = vec![
        ("gain map type", with_mpf(&main, &[(UNDEFINED, &hd, n)])),
        ("disparity type", with_mpf(&main, &[(DISPARITY, &hd, n)])),
        (
            "wrong aspect",
            with_mpf(&main, &[(FULL_HD, &narrow, narrow.len() as u32)]),
        ),
        // Half of the preview: its headers read, its scan is cut short.
        ("corrupt", with_mpf(&main, &[(FULL_HD, &hd, n / 2)])),
        ("huge size", with_mpf(&main, &[(FULL_HD, &hd, u32::MAX)])),
    ];
    let good = with_mpf(&main, &[(FULL_HD, &hd, n)]);
    assert_eq!(render(&good, "w256_png").1.preview, Some((1620, 1080)));
    for (what, file) in &files {
        let (out, r) = render(file, "w256_png");
        assert_eq!(r.preview, None, "{what}: preview used");
        assert!(
            out == render(file, "w256_exact_png").0,
            "{what}: output differs from the main image's"
        );
    }
    // Hostile index values render without error: an entry offset past the end and an IFD
    // offset out of the segment fall back; a huge MPEntry count reads the entries present.
    let entries_at = 10 + 8 + 2 + 3 * 12 + 4;
    let mut past_end = good.clone();
    past_end[entries_at + 16 + 8..][..4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let mut bad_ifd = good.clone();
    bad_ifd[10 + 4..][..4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    let mut huge_count = good.clone();
    huge_count[10 + 8 + 2 + 2 * 12 + 4..][..4].copy_from_slice(&u32::MAX.to_le_bytes());
    for (what, file) in [("offset past the end", &past_end), ("ifd offset", &bad_ifd)] {
        let (out, r) = render(file, "w256_png");
        assert_eq!(r.preview, None, "{what}: preview used");
        assert!(out == render(file, "w256_exact_png").0, "{what}: differs");
    }
    assert_eq!(
        render(&huge_count, "w256_png").1.preview,
        Some((1620, 1080))
    );
}

/// `thumbfs convert --previews off` gives `exact`'s bytes; the default uses the preview.
#[test]
fn convert_previews_off_is_exact() {
    let main = std::fs::read(corpus(PHOTO)).unwrap();
    let hd = preview("1620x1080");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("mpf.jpg");
    std::fs::write(&src, with_mpf(&main, &[(FULL_HD, &hd, hd.len() as u32)])).unwrap();
    let convert = |args: &[&str]| {
        run(Command::new(thumbfs_bin())
            .arg("convert")
            .args(args)
            .arg(&src)
            .arg(".png"))
    };
    let off = convert(&["--previews", "off", "w256"]);
    assert_eq!(off, convert(&["w256_exact"]));
    assert_ne!(off, convert(&["w256"]), "the default uses the preview");
}
