//! Thumbnails from a camera's own smaller JPEG: the smallest MPF large-thumbnail preview that
//! is at least the size a thumbnail needs, decoded whole before it is used, so that any
//! doubt (type, aspect ratio, orientation, colour, a decode error) falls back to the primary
//! image.

use std::io::{Read, Seek, SeekFrom};

use super::mpf;
use crate::image::{Header, Image};
use crate::io::Source;
use crate::{Limits, LoadOptions};

/// Bytes read from the start of the file to find the MPF index (EXIF is at most 64 KiB).
const HEAD_LEN: usize = 1 << 17;

/// Preview candidates tried at most (cameras write one or two).
const MAX_CANDIDATES: usize = 4;

/// A decoded preview and its stored size.
pub struct Preview {
    /// The pixels (DCT-scaled), with the primary image's metadata.
    pub image: Image,
    /// Width and height as stored in the file.
    pub stored: (u32, u32),
}

/// The smallest usable preview of the JPEG in `src` whose stored size is at least `min`,
/// decoded (with DCT scaling down to `min`) and carrying the primary image's metadata;
/// `None` when there is none or any guard fails. `src` is rewound to byte 0 either way.
pub fn load(src: &mut Source, main: &Header, min: (u32, u32), limits: &Limits) -> Option<Preview> {
    let found = find(src, main, min, limits);
    src.rewind().ok()?;
    found
}

fn find(src: &mut Source, main: &Header, min: (u32, u32), limits: &Limits) -> Option<Preview> {
    if !src.is_seekable() {
        return None;
    }
    src.rewind().ok()?;
    let head = src.sniff(HEAD_LEN).ok()?;
    let entries = mpf::entries(&head)?;
    let len = src.len()?;
    let mut found = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e.is_preview())
        .take(MAX_CANDIDATES)
    {
        let end = e.offset.checked_add(e.size as u64)?;
        if e.offset == 0 || end > len || e.size as u64 > limits.memory_limit || gain_map(main, e) {
            continue;
        }
        let Some(bytes) = read_at(src, e.offset, e.size as usize) else {
            continue;
        };
        let Ok(h) = super::probe(&mut Source::memory(bytes.as_slice())) else {
            continue;
        };
        if h.width >= min.0 && h.height >= min.1 && fits(main, &h) {
            found.push((h.pixels(), bytes));
        }
    }
    found.sort_by_key(|(p, _)| *p);
    found
        .into_iter()
        .find_map(|(_, bytes)| decode(bytes, main, min, limits))
}

/// Whether the primary image's XMP (Ultra HDR's GContainer) lists a gain map of this length.
fn gain_map(main: &Header, e: &mpf::MpEntry) -> bool {
    main.meta.xmp.as_deref().is_some_and(|x| {
        let x = String::from_utf8_lossy(x);
        x.contains("GainMap") && x.contains(&format!("Length=\"{}\"", e.size))
    })
}

/// The preview's guards from its header: same bands, same aspect ratio within one preview
/// pixel, an orientation and colour profile that do not contradict the primary image's.
fn fits(main: &Header, p: &Header) -> bool {
    let (mw, mh) = (main.width as u64, main.height as u64);
    let (pw, ph) = (p.width as u64, p.height as u64);
    let cross = (pw * mh).abs_diff(ph * mw);
    let orientation = p.meta.exif.is_none() || p.meta.orientation == main.meta.orientation;
    let icc = p.meta.icc.is_none() || p.meta.icc == main.meta.icc;
    let hdr = p
        .meta
        .xmp
        .as_deref()
        .is_some_and(|x| String::from_utf8_lossy(x).contains("hdrgm"));
    p.bands == main.bands
        && p.format == main.format
        && cross <= mw.min(mh)
        && orientation
        && icc
        && !hdr
}

fn read_at(src: &mut Source, offset: u64, size: usize) -> Option<Vec<u8>> {
    src.seek(SeekFrom::Start(offset)).ok()?;
    let mut bytes = vec![0u8; size];
    src.read_exact(&mut bytes).ok()?;
    Some(bytes)
}

/// Decodes a whole embedded JPEG of `size` (a decode error is `None`), scaled in the DCT
/// while it stays at least `min`. Shared by the MPF and RAW previews.
pub(crate) fn decode_scaled(
    src: Source,
    size: (u32, u32),
    min: (u32, u32),
    limits: &Limits,
) -> Option<Image> {
    let d = [8u32, 4, 2, 1]
        .into_iter()
        .find(|&d| size.0 / d >= min.0 && size.1 / d >= min.1)
        .unwrap_or(1);
    let opts = LoadOptions {
        shrink: d,
        limits: *limits,
        fit: Some(min),
        ..Default::default()
    };
    let loaded = super::load(src, &opts).ok()?;
    Image::collect(loaded.stream).ok()
}

/// Decodes the whole preview (a decode error means no preview), scaled in the DCT while it
/// stays at least `min`.
fn decode(bytes: Vec<u8>, main: &Header, min: (u32, u32), limits: &Limits) -> Option<Preview> {
    let mut src = Source::memory(bytes);
    let ph = super::probe(&mut src).ok()?;
    src.rewind().ok()?;
    let mut image = decode_scaled(src, (ph.width, ph.height), min, limits)?;
    image.header.meta = main.meta.clone();
    Some(Preview {
        image,
        stored: (ph.width, ph.height),
    })
}
