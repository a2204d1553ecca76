//! Camera RAW files. No public CR2/NEF/ARW/RW2/ORF/CR3/RAF sample can be fetched here, so the
//! tests build minimal containers from their published structure (a small TIFF and ISO-BMFF
//! writer below) carrying real JPEG previews of a corpus photo; DNGs are written by PyPI's
//! pidng from a mosaic of the photo (tests/it/codec/raw_dng.py), with a preview IFD added here.
//! Previews are checked against exiftool's extraction thumbnailed by libvips, development
//! against LibRaw's dcraw_emu.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::mount::{engine, Mount};
use common::*;
use thumbfs::codec::{self, InputFormat};
use thumbfs::io::target::MemoryTarget;
use thumbfs::pipeline::Rendered;
use thumbfs::{RenderOptions, Source, Spec};

const PHOTO: &str = "photos/sunset_by_Aitzol_Berasategi.jpg"; // 4272x2848, 3:2

/// The photo downscaled to `size` (`-resize WxH!`) as a Q92 JPEG.
fn jpeg(size: &str) -> Vec<u8> {
    run(Command::new("convert").arg(corpus(PHOTO)).args([
        "-resize",
        &format!("{size}!"),
        "-quality",
        "92",
        "jpg:-",
    ]))
}

/// A TIFF entry value, as the writer lays it out.
enum V {
    Short(u16),
    Long(u32),
    Ascii(&'static str),
    /// Offsets of IFDs (by index): SubIFDs.
    Ifds(Vec<usize>),
    /// LONG offset of a blob (by index).
    BlobAt(usize),
    /// LONG length of a blob.
    BlobLen(usize),
    /// An UNDEFINED value that is the blob itself (RW2's JpgFromRaw).
    Undef(usize),
}

/// A little-endian TIFF-structured file: `header` (its bytes 4..8 get IFD0's offset), the
/// blobs, then the IFDs; `chain` lists the IFDs linked by next pointers, from IFD0.
struct TiffFile {
    header: Vec<u8>,
    blobs: Vec<Vec<u8>>,
    ifds: Vec<Vec<(u16, V)>>,
    chain: Vec<usize>,
}

impl TiffFile {
    fn build(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        // IFD sizes, with their out-of-line values right after each.
        let extra = |e: &[(u16, V)]| -> usize {
            e.iter()
                .map(|(_, v)| match v {
                    V::Ascii(s) if s.len() + 1 > 4 => (s.len() + 2) & !1,
                    V::Ifds(l) if l.len() > 1 => 4 * l.len(),
                    _ => 0,
                })
                .sum()
        };
        // IFDs first, as cameras write them (detection reads IFD0 from the head), then blobs.
        let mut ifd_at = Vec::new();
        let mut at = out.len();
        for e in &self.ifds {
            ifd_at.push(at as u32);
            at += 2 + 12 * e.len() + 4 + extra(e);
        }
        let mut blob_at = Vec::new();
        for b in &self.blobs {
            blob_at.push(at as u32);
            at += (b.len() + 1) & !1;
        }
        for (i, e) in self.ifds.iter().enumerate() {
            let mut e: Vec<&(u16, V)> = e.iter().collect();
            e.sort_by_key(|(t, _)| *t);
            let mut data = Vec::new();
            let data_at = ifd_at[i] as usize + 2 + 12 * e.len() + 4;
            out.extend_from_slice(&(e.len() as u16).to_le_bytes());
            for (tag, v) in e {
                let (typ, count, field): (u16, u32, [u8; 4]) = match v {
                    V::Short(s) => (3, 1, [s.to_le_bytes()[0], s.to_le_bytes()[1], 0, 0]),
                    V::Long(l) => (4, 1, l.to_le_bytes()),
                    V::Ascii(s) => {
                        let mut b = s.as_bytes().to_vec();
                        b.push(0);
                        let n = b.len() as u32;
                        if b.len() <= 4 {
                            b.resize(4, 0);
                            (2, n, b[..4].try_into().unwrap())
                        } else {
                            let off = (data_at + data.len()) as u32;
                            data.extend_from_slice(&b);
                            if data.len() % 2 == 1 {
                                data.push(0);
                            }
                            (2, n, off.to_le_bytes())
                        }
                    }
                    V::Ifds(l) if l.len() == 1 => (4, 1, ifd_at[l[0]].to_le_bytes()),
                    V::Ifds(l) => {
                        let off = (data_at + data.len()) as u32;
                        for &k in l {
                            data.extend_from_slice(&ifd_at[k].to_le_bytes());
                        }
                        (4, l.len() as u32, off.to_le_bytes())
                    }
                    V::BlobAt(k) => (4, 1, blob_at[*k].to_le_bytes()),
                    V::BlobLen(k) => (4, 1, (self.blobs[*k].len() as u32).to_le_bytes()),
                    V::Undef(k) => (7, self.blobs[*k].len() as u32, blob_at[*k].to_le_bytes()),
                };
                out.extend_from_slice(&tag.to_le_bytes());
                out.extend_from_slice(&typ.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(&field);
            }
            let next = self
                .chain
                .iter()
                .position(|&c| c == i)
                .and_then(|p| self.chain.get(p + 1))
                .map_or(0, |&n| ifd_at[n]);
            out.extend_from_slice(&next.to_le_bytes());
            out.extend_from_slice(&data);
        }
        for b in &self.blobs {
            out.extend_from_slice(b);
            if out.len() % 2 == 1 {
                out.push(0);
            }
        }
        out[4..8].copy_from_slice(&ifd_at[self.chain[0]].to_le_bytes());
        out
    }
}

/// The JPEGs every container carries: full size, preview, thumbnail (all 3:2 within a pixel).
struct Jpegs {
    full: Vec<u8>,
    preview: Vec<u8>,
    thumb: Vec<u8>,
}

fn jpegs() -> Jpegs {
    Jpegs {
        full: jpeg("1800x1200"),
        preview: jpeg("900x600"),
        thumb: jpeg("160x107"),
    }
}

/// Stand-in raw data (never developed: rawler refuses these containers).
fn junk() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// A lossless-JPEG stub: SOI then an SOF3 header, as CR2's raw IFD holds.
fn lossless() -> Vec<u8> {
    b"\xFF\xD8\xFF\xC3\x00\x0B\x0E\x00\x10\x00\x10\x01\x01\x11\x00\xFF\xD9".to_vec()
}

const CFA: u32 = 32803;

/// CR2: IFD0 is the full-size JPEG as one old-style-JPEG strip, IFD1 the thumbnail by
/// JPEGInterchangeFormat, IFD3 the lossless raw data; `CR\x02\0` at byte 8.
fn cr2(j: &Jpegs, orientation: u16) -> Vec<u8> {
    let mut header = b"II*\0\0\0\0\0CR\x02\0\0\0\0\0".to_vec();
    header.truncate(16);
    TiffFile {
        header,
        blobs: vec![j.full.clone(), j.thumb.clone(), lossless()],
        ifds: vec![
            vec![
                (0x100, V::Long(1800)),
                (0x101, V::Long(1200)),
                (0x103, V::Short(6)),
                (0x10F, V::Ascii("Canon")),
                (0x110, V::Ascii("Canon EOS test")),
                (0x111, V::BlobAt(0)),
                (0x112, V::Short(orientation)),
                (0x117, V::BlobLen(0)),
            ],
            vec![(0x201, V::BlobAt(1)), (0x202, V::BlobLen(1))],
            vec![
                (0x103, V::Short(6)),
                (0x111, V::BlobAt(2)),
                (0x117, V::BlobLen(2)),
            ],
        ],
        chain: vec![0, 1, 2],
    }
    .build()
}

/// NEF: IFD0 a reduced image with the preview by JPEGInterchangeFormat; SubIFD 1 the
/// JpgFromRaw, SubIFD 2 the raw CFA data.
fn nef(j: &Jpegs, orientation: u16) -> Vec<u8> {
    TiffFile {
        header: b"II*\0\0\0\0\0".to_vec(),
        blobs: vec![j.full.clone(), j.preview.clone(), junk()],
        ifds: vec![
            vec![
                (0xFE, V::Long(1)),
                (0x10F, V::Ascii("NIKON CORPORATION")),
                (0x110, V::Ascii("NIKON D-TEST")),
                (0x112, V::Short(orientation)),
                (0x14A, V::Ifds(vec![1, 2])),
                (0x201, V::BlobAt(1)),
                (0x202, V::BlobLen(1)),
            ],
            vec![
                (0xFE, V::Long(1)),
                (0x103, V::Short(6)),
                (0x201, V::BlobAt(0)),
                (0x202, V::BlobLen(0)),
            ],
            vec![
                (0xFE, V::Long(0)),
                (0x100, V::Long(64)),
                (0x101, V::Long(32)),
                (0x103, V::Short(34713)),
                (0x106, V::Short(CFA as u16)),
                (0x111, V::BlobAt(2)),
                (0x117, V::BlobLen(2)),
            ],
        ],
        chain: vec![0],
    }
    .build()
}

/// ARW: IFD0 the PreviewImage by JPEGInterchangeFormat and a SubIFD of Sony-compressed raw.
fn arw(j: &Jpegs) -> Vec<u8> {
    TiffFile {
        header: b"II*\0\0\0\0\0".to_vec(),
        blobs: vec![j.preview.clone(), junk()],
        ifds: vec![
            vec![
                (0xFE, V::Long(1)),
                (0x10F, V::Ascii("SONY")),
                (0x110, V::Ascii("ILCE-TEST")),
                (0x112, V::Short(1)),
                (0x14A, V::Ifds(vec![1])),
                (0x201, V::BlobAt(0)),
                (0x202, V::BlobLen(0)),
            ],
            vec![
                (0xFE, V::Long(0)),
                (0x103, V::Short(32767)),
                (0x106, V::Short(CFA as u16)),
                (0x111, V::BlobAt(1)),
                (0x117, V::BlobLen(1)),
            ],
        ],
        chain: vec![0],
    }
    .build()
}

/// RW2: `IIU\0`, IFD0 with the JpgFromRaw as an UNDEFINED value (tag 0x2E).
fn rw2(j: &Jpegs) -> Vec<u8> {
    TiffFile {
        header: b"IIU\0\0\0\0\0".to_vec(),
        blobs: vec![j.full.clone()],
        ifds: vec![vec![
            (0x10F, V::Ascii("Panasonic")),
            (0x112, V::Short(1)),
            (0x2E, V::Undef(0)),
        ]],
        chain: vec![0],
    }
    .build()
}

/// ORF: `IIRO`, IFD0 then IFD1 with a preview by JPEGInterchangeFormat.
fn orf(j: &Jpegs) -> Vec<u8> {
    TiffFile {
        header: b"IIRO\0\0\0\0".to_vec(),
        blobs: vec![j.preview.clone()],
        ifds: vec![
            vec![(0x10F, V::Ascii("OLYMPUS")), (0x112, V::Short(1))],
            vec![(0x201, V::BlobAt(0)), (0x202, V::BlobLen(0))],
        ],
        chain: vec![0, 1],
    }
    .build()
}

fn bmff(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((8 + body.len()) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(typ);
    b.extend_from_slice(body);
    b
}

fn uuid(id: &str, body: &[u8]) -> Vec<u8> {
    let mut b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    b.extend_from_slice(body);
    bmff(b"uuid", &b)
}

/// CR3 (Laurent Clévy's "Describing the Canon Raw v3 file format"): ftyp `crx `; moov's Canon
/// uuid box with CMT1 (TIFF IFD0: Make, Orientation) and THMB; the preview uuid box with
/// PRVW; an mdat. THMB: 4 zero bytes, width, height, JPEG size, 4 bytes, JPEG. PRVW: 4 zero
/// bytes, 1, width, height, 1, JPEG size, JPEG.
fn cr3(j: &Jpegs, orientation: u16) -> Vec<u8> {
    let cmt1 = TiffFile {
        header: b"II*\0\0\0\0\0".to_vec(),
        blobs: vec![],
        ifds: vec![vec![
            (0x10F, V::Ascii("Canon")),
            (0x112, V::Short(orientation)),
        ]],
        chain: vec![0],
    }
    .build();
    let mut thmb = vec![0u8; 4];
    thmb.extend_from_slice(&160u16.to_be_bytes());
    thmb.extend_from_slice(&107u16.to_be_bytes());
    thmb.extend_from_slice(&(j.thumb.len() as u32).to_be_bytes());
    thmb.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    thmb.extend_from_slice(&j.thumb);
    let mut prvw = vec![0u8; 4];
    for v in [1u16, 900, 600, 1] {
        prvw.extend_from_slice(&v.to_be_bytes());
    }
    prvw.extend_from_slice(&(j.preview.len() as u32).to_be_bytes());
    prvw.extend_from_slice(&j.preview);
    let canon = [
        bmff(b"CNCV", b"CanonCR3_001/00.09.00/00.00.00"),
        bmff(b"CMT1", &cmt1),
        bmff(b"THMB", &thmb),
    ]
    .concat();
    let moov = bmff(b"moov", &uuid("85c0b687820f11e08111f4ce462b6a48", &canon));
    let mut pv = vec![0u8; 8];
    pv.extend_from_slice(&bmff(b"PRVW", &prvw));
    [
        bmff(b"ftyp", b"crx \0\0\0\x01crx isom"),
        moov,
        uuid("eaf42b5e1c984b88b9fbb7dc406e4d16", &pv),
        bmff(b"mdat", &junk()),
    ]
    .concat()
}

/// RAF: the 16-byte magic, format version and camera model, then at byte 84 the big-endian
/// offset and length of the embedded JPEG (which carries the EXIF); `exif_orientation` set in
/// that JPEG's EXIF when given.
fn raf(j: &Jpegs, exif_orientation: Option<u8>, dir: &Path) -> Vec<u8> {
    let mut jpg = j.full.clone();
    if let Some(o) = exif_orientation {
        let p = dir.join("raf-preview.jpg");
        std::fs::write(&p, &jpg).unwrap();
        exiftool(&[&format!("-Orientation#={o}"), "-overwrite_original"], &p);
        jpg = std::fs::read(&p).unwrap();
    }
    let mut f = b"FUJIFILMCCD-RAW 0201FF129502".to_vec();
    f.extend_from_slice(b"X-TEST");
    f.resize(84, 0);
    let at = 160u32;
    f.extend_from_slice(&at.to_be_bytes());
    f.extend_from_slice(&(jpg.len() as u32).to_be_bytes());
    f.resize(at as usize, 0);
    f.extend_from_slice(&jpg);
    f.extend_from_slice(&junk());
    f
}

fn render(bytes: &[u8], spec: &str) -> thumbfs::Result<(Vec<u8>, Rendered)> {
    let spec: Spec = spec.parse().unwrap();
    let mut target = MemoryTarget::new();
    let r = thumbfs::render(
        Source::memory(bytes),
        &spec,
        &mut target,
        &RenderOptions::default(),
    )?;
    Ok((target.take(), r))
}

fn decode_png(bytes: &[u8]) -> Pixels {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.png");
    std::fs::write(&p, bytes).unwrap();
    magick_rgb8(&p)
}

/// `vips thumbnail` of `jpg` to `width`, decoded.
fn vips_thumb(jpg: &Path, width: u32) -> Pixels {
    let out = jpg.with_extension("thumb.png");
    run(Command::new("vips")
        .arg("thumbnail")
        .arg(jpg)
        .arg(&out)
        .arg(width.to_string()));
    magick_rgb8(&out)
}

/// The embedded JPEG exiftool extracts (`-b -TAG`) from `file` that is `want`, by the tag
/// names exiftool gives RAW previews.
fn extracted(file: &Path, want: &[u8], dir: &Path) -> PathBuf {
    for tag in ["PreviewImage", "JpgFromRaw", "ThumbnailImage", "OtherImage"] {
        let b = exiftool(&["-b", &format!("-{tag}")], file);
        if b == want {
            let p = dir.join(format!("{tag}.jpg"));
            std::fs::write(&p, &b).unwrap();
            return p;
        }
    }
    panic!(
        "{}: exiftool extracts no such embedded JPEG",
        file.display()
    );
}

/// A container case: extension, file, the embedded JPEG a w256 uses, the header's size.
type Case<'a> = (&'static str, Vec<u8>, &'a Vec<u8>, (u32, u32));

/// Every container: recognised as RAW (not TIFF), sized by its largest JPEG, and a w256
/// thumbnail from the smallest JPEG covering 512x342, within 40 dB of libvips' thumbnail of
/// what exiftool extracts; a full-size conversion from the full-size JPEG; `exact` refused,
/// since these containers have no raw data rawler can develop.
#[test]
fn raw_previews_match_exiftool_extractions() {
    let dir = tempfile::tempdir().unwrap();
    let j = jpegs();
    let cases: Vec<Case> = vec![
        ("cr2", cr2(&j, 1), &j.full, (1800, 1200)),
        ("nef", nef(&j, 1), &j.preview, (1800, 1200)),
        ("arw", arw(&j), &j.preview, (900, 600)),
        ("rw2", rw2(&j), &j.full, (1800, 1200)),
        ("orf", orf(&j), &j.preview, (900, 600)),
        ("cr3", cr3(&j, 1), &j.preview, (900, 600)),
        ("raf", raf(&j, None, dir.path()), &j.full, (1800, 1200)),
    ];
    for (ext, file, used, size) in &cases {
        let path = dir.path().join(format!("photo.{ext}"));
        std::fs::write(&path, file).unwrap();
        let mut src = Source::memory(file.as_slice());
        let format = codec::sniff(&mut src).unwrap();
        assert_eq!(format, InputFormat::Raw, "{ext}");
        let h = codec::probe(&mut src, format).unwrap();
        assert_eq!((h.width, h.height), *size, "{ext}: header");

        let (out, r) = render(file, "w256_png").unwrap();
        let stored = thumbfs::codec::jpeg::probe(&mut Source::memory(used.as_slice())).unwrap();
        assert_eq!(r.preview, Some((stored.width, stored.height)), "{ext}");
        assert_eq!((r.header.width, r.header.height), (256, 171), "{ext}");
        let reference = vips_thumb(&extracted(&path, used, dir.path()), 256);
        let p = psnr(&decode_png(&out).data, &reference.data, 255);
        eprintln!("{ext}: w256 from {:?}, {p:.1} dB from vips", r.preview);
        assert!(p >= 40.0, "{ext}: {p:.1} dB from vips' thumbnail");

        let (_, full) = render(file, "png").unwrap();
        assert_eq!((full.header.width, full.header.height), *size, "{ext}");
        let e = render(file, "w256_exact_png").unwrap_err();
        eprintln!("{ext} exact: {e}");
    }
}

/// Orientation comes from the RAW's own EXIF: NEF's and CR3's IFD0, and for RAF the EXIF of
/// its JPEG; the preview is turned as the RAW says.
#[test]
fn raw_orientation_from_its_own_exif() {
    let dir = tempfile::tempdir().unwrap();
    let j = jpegs();
    let upright = decode_png(&render(&nef(&j, 1), "w256_png").unwrap().0);
    for (what, file) in [
        ("nef", nef(&j, 6)),
        ("cr3", cr3(&j, 6)),
        ("raf", raf(&j, Some(6), dir.path())),
    ] {
        let h = codec::probe(&mut Source::memory(file.as_slice()), InputFormat::Raw).unwrap();
        assert_eq!(h.meta.orientation, 6, "{what}");
        let (out, r) = render(&file, "w256_png").unwrap();
        assert_eq!((r.header.width, r.header.height), (256, 384), "{what}");
        // Turned back by ImageMagick, it is the upright thumbnail at the same width (256 wide
        // now holds the picture's height, so compare at the upright one's size).
        let p = dir.path().join("turned.png");
        std::fs::write(&p, &out).unwrap();
        let back = parse_pnm(&run(Command::new("convert").arg(&p).args([
            "-rotate", "-90", "-resize", "256x171!", "-depth", "8", "ppm:-",
        ])));
        let db = psnr(&back.data, &upright.data, 255);
        assert!(db >= 30.0, "{what}: {db:.1} dB from the upright thumbnail");
    }
}

/// The pidng venv's Python (scripts/test.sh installs it).
fn python() -> PathBuf {
    let p = std::env::var_os("THUMBFS_TEST_RAW_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/raw-venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{}: missing; scripts/test.sh installs pidng into target/raw-venv",
        p.display()
    );
    p
}

/// A 1200x800 DNG of the photo (linear light, RGGB, 12-bit) by pidng.
fn pidng_dng(dir: &Path, orientation: u16) -> Vec<u8> {
    let ppm = dir.join("linear.ppm");
    run(Command::new("convert")
        .arg(corpus(PHOTO))
        .args([
            "-resize",
            "1200x800!",
            "-colorspace",
            "RGB",
            "-set",
            "colorspace",
            "sRGB",
            "-depth",
            "16",
        ])
        .arg(&ppm));
    let out = dir.join("pidng.dng");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/codec/raw_dng.py");
    run(Command::new(python())
        .arg(script)
        .arg(&ppm)
        .arg(&out)
        .arg(orientation.to_string()));
    std::fs::read(&out).unwrap()
}

/// `dng` with a preview IFD (NewSubfileType 1, one JPEG strip) added as IFD0's SubIFD: IFD0
/// (at byte 8, as pidng and cameras write it) gets the SubIFDs entry, everything after it moves
/// 12 bytes on (offsets adjusted), and the JPEG and the preview IFD are appended.
fn with_preview(dng: &[u8], jpg: &[u8], (w, h): (u32, u32)) -> Vec<u8> {
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!(&dng[..4], b"II*\0");
    let ifd0 = u32_at(dng, 4) as usize;
    let n = u16_at(dng, ifd0) as usize;
    let table_end = ifd0 + 2 + 12 * n + 4;
    assert!(dng.len() > table_end, "IFD0 comes before the data");
    let moved = |o: u32| if o as usize >= table_end { o + 12 } else { o };
    let size = |typ: u16| match typ {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        5 | 10 | 12 => 8,
        _ => 4,
    };
    let mut entries: Vec<[u8; 12]> = (0..n)
        .map(|i| {
            let mut e: [u8; 12] = dng[ifd0 + 2 + 12 * i..][..12].try_into().unwrap();
            let (tag, typ, count) = (u16_at(&e, 0), u16_at(&e, 2), u32_at(&e, 4));
            let offset_value = matches!(tag, 0x111 | 0x144) && count == 1;
            if size(typ) * count as usize > 4 || offset_value {
                let v = moved(u32_at(&e, 8));
                e[8..12].copy_from_slice(&v.to_le_bytes());
            }
            e
        })
        .collect();
    let entry = |tag: u16, typ: u16, value: u32| {
        let mut e = [0u8; 12];
        e[..2].copy_from_slice(&tag.to_le_bytes());
        e[2..4].copy_from_slice(&typ.to_le_bytes());
        e[4..8].copy_from_slice(&1u32.to_le_bytes());
        if typ == 3 {
            e[8..10].copy_from_slice(&(value as u16).to_le_bytes());
        } else {
            e[8..12].copy_from_slice(&value.to_le_bytes());
        }
        e
    };
    let mut tail = dng[table_end..].to_vec();
    if (table_end + 12 + tail.len()) % 2 == 1 {
        tail.push(0);
    }
    let jpg_at = (table_end + 12 + tail.len()) as u32;
    let len = jpg.len() as u32;
    let mut jpg = jpg.to_vec();
    if jpg.len() % 2 == 1 {
        jpg.push(0);
    }
    let preview_at = jpg_at + jpg.len() as u32;
    entries.push(entry(0x14A, 4, preview_at));
    entries.sort_by_key(|e| u16::from_le_bytes([e[0], e[1]]));
    let mut out = dng[..ifd0].to_vec();
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in &entries {
        out.extend_from_slice(e);
    }
    let next = u32_at(dng, ifd0 + 2 + 12 * n);
    out.extend_from_slice(&(if next == 0 { 0 } else { moved(next) }).to_le_bytes());
    out.extend_from_slice(&tail);
    assert_eq!(out.len() as u32, jpg_at);
    out.extend_from_slice(&jpg);
    let preview = [
        entry(0xFE, 4, 1),
        entry(0x100, 4, w),
        entry(0x101, 4, h),
        entry(0x103, 3, 7),
        entry(0x106, 3, 6),
        entry(0x111, 4, jpg_at),
        entry(0x115, 3, 3),
        entry(0x116, 4, h),
        entry(0x117, 4, len),
    ];
    out.extend_from_slice(&(preview.len() as u16).to_le_bytes());
    for e in &preview {
        out.extend_from_slice(e);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}

/// `dcraw_emu` (LibRaw) development of `dng`: camera white balance, sRGB primaries and curve,
/// PPG demosaic as rawler's, no auto-brightening; thumbnailed by libvips to `width`.
fn dcraw_thumb(dng: &Path, width: u32) -> Pixels {
    let tiff = dng.with_extension("dcraw.tiff");
    run(Command::new("dcraw_emu")
        .args([
            "-w", "-W", "-o", "1", "-g", "2.4", "12.92", "-q", "2", "-T", "-Z",
        ])
        .arg(&tiff)
        .arg(dng));
    vips_thumb(&tiff, width)
}

/// A DNG: w256 from its 600x400 preview (as exiftool extracts it); `exact`, and a size no
/// preview covers, developed by rawler, within 40 dB of LibRaw's development (the sensor data
/// is a mosaic of the photo in linear light with an sRGB colour matrix, so both should give the
/// photo back; demosaic and rounding differ, which full-size comparisons put at 38 dB).
#[test]
fn dng_preview_and_development() {
    let dir = tempfile::tempdir().unwrap();
    let preview = jpeg("600x400");
    let dng = with_preview(&pidng_dng(dir.path(), 1), &preview, (600, 400));
    let path = dir.path().join("photo.dng");
    std::fs::write(&path, &dng).unwrap();
    let h = codec::probe(&mut Source::memory(dng.as_slice()), InputFormat::Raw).unwrap();
    assert_eq!((h.width, h.height), (1200, 800));

    let (fast, r) = render(&dng, "w256_png").unwrap();
    assert_eq!(r.preview, Some((600, 400)));
    let reference = vips_thumb(&extracted(&path, &preview, dir.path()), 256);
    let p = psnr(&decode_png(&fast).data, &reference.data, 255);
    assert!(p >= 40.0, "preview: {p:.1} dB from vips' thumbnail of it");

    let (exact, rx) = render(&dng, "w256_exact_png").unwrap();
    assert_eq!(rx.preview, None);
    assert_eq!((rx.header.width, rx.header.height), (256, 171));
    let libraw = dcraw_thumb(&path, 256);
    let d = psnr(&decode_png(&exact).data, &libraw.data, 255);
    let between = psnr(&decode_png(&exact).data, &decode_png(&fast).data, 255);
    eprintln!("development {d:.1} dB from dcraw_emu's; {between:.1} dB from the preview's");
    assert!(d >= 40.0, "development {d:.1} dB from dcraw_emu's");

    // 600 < 2 x 400: no preview covers w400, so it is developed, as `exact` is.
    let (w400, r) = render(&dng, "w400_png").unwrap();
    assert_eq!(r.preview, None);
    assert_eq!(w400, render(&dng, "w400_exact_png").unwrap().0);
    // A full-size conversion is the development at the DNG's size.
    let (_, full) = render(&dng, "jpg").unwrap();
    assert_eq!((full.header.width, full.header.height), (1200, 800));
}

/// Truncated files, preview offsets out of range, huge dimensions and box sizes: an error or
/// a fallback, never a panic.
#[test]
fn hostile_raw_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let j = jpegs();
    let nef_ok = nef(&j, 1);
    let dng = with_preview(&pidng_dng(dir.path(), 1), &jpeg("600x400"), (600, 400));
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, f) in [
        ("nef", nef_ok.clone()),
        ("cr3", cr3(&j, 1)),
        ("raf", raf(&j, None, dir.path())),
        ("dng", dng.clone()),
        ("rw2", rw2(&j)),
    ] {
        for cut in [f.len() / 2, f.len() / 10, 700, 64] {
            cases.push((format!("{name} cut at {cut}"), f[..cut].to_vec()));
        }
    }
    // Every JPEGInterchangeFormat offset pointing past the end.
    let mut past = nef_ok.clone();
    let pat = [0x01u8, 0x02, 4, 0, 1, 0, 0, 0];
    let mut at = 0;
    while let Some(i) = past[at..].windows(8).position(|w| w == pat) {
        let o = at + i + 8;
        past[o..o + 4].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        at = o;
    }
    cases.push(("nef offsets past the end".into(), past));
    // The DNG's raw size made 100000 x 100000 (ImageWidth/ImageLength in the first IFD).
    let mut huge = dng.clone();
    for tag in [0x100u16, 0x101] {
        let mut e = tag.to_le_bytes().to_vec();
        e.extend_from_slice(&4u16.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
        let i = huge.windows(8).position(|w| w == e.as_slice()).unwrap();
        huge[i + 8..i + 12].copy_from_slice(&100_000u32.to_le_bytes());
    }
    cases.push(("dng 100000x100000".into(), huge.clone()));
    // A CR3 whose moov claims 4 GiB, and one whose PRVW length runs past its box.
    let mut cr3_big = cr3(&j, 1);
    let m = cr3_big.windows(4).position(|w| w == b"moov").unwrap();
    cr3_big[m - 4..m].copy_from_slice(&u32::MAX.to_be_bytes());
    cases.push(("cr3 moov size".into(), cr3_big));
    let mut cr3_len = cr3(&j, 1);
    let p = cr3_len.windows(4).position(|w| w == b"PRVW").unwrap();
    cr3_len[p + 4 + 12..p + 4 + 16].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    cases.push(("cr3 PRVW length".into(), cr3_len));

    for (what, file) in &cases {
        for spec in ["w256_png", "w256_exact_png", "png"] {
            let r = std::panic::catch_unwind(|| render(file, spec));
            match r {
                Err(_) => panic!("{what} {spec}: panicked"),
                Ok(Err(thumbfs::Error::Panic { stage, message })) => {
                    panic!("{what} {spec}: panic in {stage}: {message}")
                }
                Ok(Err(_)) | Ok(Ok(_)) => {}
            }
        }
    }
    assert!(matches!(
        render(&huge, "w256_exact_png"),
        Err(thumbfs::Error::TooLarge { .. })
    ));
}

/// `thumbfs convert` of a NEF: a w256 JPEG from its preview; `--previews off` (and `exact`)
/// need development, which these containers cannot give: a clear error, exit status 1.
#[test]
fn raw_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("photo.nef");
    std::fs::write(&src, nef(&jpegs(), 1)).unwrap();
    let out = dir.path().join("out.jpg");
    thumbfs(&["convert", "w256", p(&src), p(&out)]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        engine(&src, "w256").unwrap(),
        "the CLI writes what the engine renders"
    );
    assert_eq!(identify_size(&out), "256x171");
    let off = thumbfs_output(&["convert", "--previews", "off", "w256", p(&src), p(&out)]);
    assert!(!off.status.success());
    let err = String::from_utf8_lossy(&off.stderr);
    assert!(err.contains("raw"), "{err}");
}

fn identify_size(path: &Path) -> String {
    String::from_utf8(run(Command::new("identify")
        .args(["-format", "%wx%h"])
        .arg(path)))
    .unwrap()
}

/// Through a real mount: under `w256/` a NEF and a DNG are `.jpg` files whose stat size is
/// exactly what reads give, equal to the engine's bytes; a truncated CR3 gives EIO and the
/// daemon goes on serving.
#[test]
fn raw_through_a_mount() {
    let src = tempfile::tempdir().unwrap();
    let j = jpegs();
    std::fs::write(src.path().join("a.nef"), nef(&j, 6)).unwrap();
    let dng = with_preview(&pidng_dng(src.path(), 1), &jpeg("600x400"), (600, 400));
    std::fs::remove_file(src.path().join("pidng.dng")).unwrap();
    std::fs::remove_file(src.path().join("linear.ppm")).unwrap();
    std::fs::write(src.path().join("b.dng"), &dng).unwrap();
    let cr3 = cr3(&j, 1);
    std::fs::write(src.path().join("c.cr3"), &cr3[..200]).unwrap();
    let mut m = Mount::new(src.path(), &[]);
    let mut names: Vec<String> = std::fs::read_dir(m.path("w256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a.jpg", "b.jpg", "c.jpg"]);
    for (name, source) in [("a.jpg", "a.nef"), ("b.jpg", "b.dng")] {
        let p = m.path(&format!("w256/{name}"));
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            bytes.len() as u64,
            "{name}"
        );
        assert_eq!(
            bytes,
            engine(&src.path().join(source), "w256").unwrap(),
            "{name}"
        );
    }
    assert_eq!(identify_size(&m.path("w256/a.jpg")), "256x384");
    let e = std::fs::read(m.path("w256/c.jpg")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert!(m.alive());
    assert!(std::fs::read(m.path("shrink2/b.jpg")).is_ok());
}
