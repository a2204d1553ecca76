//! A minimal WebP muxer: puts ICC, EXIF and XMP chunks around libwebp's bitstream.
//!
//! libwebp's simple encoder returns a finished RIFF file without metadata; the extended
//! format (`VP8X`) wants the chunks in a fixed order: VP8X, ICCP, ALPH, VP8, EXIF, XMP.

use crate::error::{Error, Result};

/// VP8X feature flags.
const FLAG_ICC: u8 = 0x20;
const FLAG_ALPHA: u8 = 0x10;
const FLAG_EXIF: u8 = 0x08;
const FLAG_XMP: u8 = 0x04;

/// Metadata to add.
#[derive(Debug, Default)]
pub struct Extras<'a> {
    /// ICC profile.
    pub icc: Option<&'a [u8]>,
    /// EXIF (TIFF-structured, no `Exif\0\0` prefix).
    pub exif: Option<&'a [u8]>,
    /// XMP packet.
    pub xmp: Option<&'a [u8]>,
}

/// One chunk of a RIFF file.
struct Chunk<'a> {
    fourcc: [u8; 4],
    data: &'a [u8],
}

fn chunks(file: &[u8]) -> Result<Vec<Chunk<'_>>> {
    let bad = |why: &str| Error::encode("webp", format!("libwebp output: {why}"));
    if file.len() < 12 || &file[..4] != b"RIFF" || &file[8..12] != b"WEBP" {
        return Err(bad("not a RIFF WEBP file"));
    }
    let mut out = Vec::new();
    let mut at = 12;
    while at + 8 <= file.len() {
        let fourcc: [u8; 4] = file[at..at + 4].try_into().unwrap();
        let len = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
        let data = file
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| bad("chunk runs past the end"))?;
        out.push(Chunk { fourcc, data });
        at += 8 + len + (len & 1);
    }
    Ok(out)
}

fn push_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() & 1 == 1 {
        out.push(0);
    }
}

/// Rewrites a simple or extended WebP file of a `width` x `height` still image with the
/// given metadata. Without metadata the file is returned as it is.
pub fn add_metadata(file: &[u8], width: u32, height: u32, extras: &Extras) -> Result<Vec<u8>> {
    if extras.icc.is_none() && extras.exif.is_none() && extras.xmp.is_none() {
        return crate::alloc::collect(file.iter().copied(), "the WebP file");
    }
    let parts = chunks(file)?;
    let find = |f: &[u8; 4]| parts.iter().find(|c| &c.fourcc == f).map(|c| c.data);
    let image = find(b"VP8 ")
        .map(|d| (b"VP8 ", d))
        .or_else(|| find(b"VP8L").map(|d| (b"VP8L", d)))
        .ok_or_else(|| Error::encode("webp", "libwebp output has no image chunk"))?;
    let alpha = find(b"ALPH");
    let mut flags = 0;
    if extras.icc.is_some() {
        flags |= FLAG_ICC;
    }
    if alpha.is_some() {
        flags |= FLAG_ALPHA;
    }
    if extras.exif.is_some() {
        flags |= FLAG_EXIF;
    }
    if extras.xmp.is_some() {
        flags |= FLAG_XMP;
    }
    let mut vp8x = [0u8; 10];
    vp8x[0] = flags;
    vp8x[4..7].copy_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x[7..10].copy_from_slice(&(height - 1).to_le_bytes()[..3]);
    // The encoded image is as large as the output: room for it and the metadata, fallibly,
    // so the pushes below do not grow.
    let room = [extras.icc, extras.exif, extras.xmp]
        .iter()
        .flatten()
        .map(|m| m.len() + 9)
        .sum::<usize>()
        + file.len()
        + 64;
    let mut body = crate::alloc::with_capacity(room, "the WebP file")?;
    body.extend_from_slice(b"WEBP");
    push_chunk(&mut body, b"VP8X", &vp8x);
    if let Some(icc) = extras.icc {
        push_chunk(&mut body, b"ICCP", icc);
    }
    if let Some(a) = alpha {
        push_chunk(&mut body, b"ALPH", a);
    }
    push_chunk(&mut body, image.0, image.1);
    if let Some(exif) = extras.exif {
        push_chunk(&mut body, b"EXIF", exif);
    }
    if let Some(xmp) = extras.xmp {
        push_chunk(&mut body, b"XMP ", xmp);
    }
    let mut out = crate::alloc::with_capacity(body.len() + 8, "the WebP file")?;
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}
