//! Thumbnails from a RAW's embedded JPEGs (PreviewImage, JpgFromRaw, DNG preview IFDs, CR3's
//! PRVW and THMB): the smallest one that is at least the size a thumbnail needs, with the
//! guards of the MPF previews (`crate::jpeg::preview`): DCT-coded, the aspect ratio of the
//! picture within one preview pixel, an orientation that does not contradict the RAW's, and
//! a clean decode; any doubt means the next candidate, then development.

use super::detect;
use super::ifd::{ReadAt, SourceAt};
use super::layout::{self, Layout};
use crate::image::{Header, Metadata};
use crate::io::Source;
use crate::jpeg::preview::Preview;
use crate::{Limits, SNIFF_LEN};

/// Bytes read from the start of an embedded JPEG to reach its frame header (EXIF is at most
/// 64 KiB per segment).
const HEAD_LEN: u64 = 1 << 18;

/// Embedded JPEGs looked at, at most (cameras write two or three).
const MAX_CANDIDATES: usize = 8;

/// An embedded JPEG whose header reads cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// File offset.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Stored width.
    pub width: u32,
    /// Stored height.
    pub height: u32,
    /// The orientation its own EXIF gives, if it has EXIF.
    pub orientation: Option<u8>,
}

/// The embedded JPEGs of `layout` that are DCT-coded and whose headers read, smallest first.
pub fn candidates(r: &mut dyn ReadAt, layout: &Layout, limits: &Limits) -> Vec<Candidate> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for &(offset, len) in &layout.jpegs {
        if seen.contains(&offset) || seen.len() >= MAX_CANDIDATES {
            continue;
        }
        seen.push(offset);
        if len < 4 || len > limits.memory_limit {
            continue;
        }
        let Some(head) = r.read_at(offset, len.min(HEAD_LEN) as usize) else {
            continue;
        };
        if !dct_frame(&head) {
            continue;
        }
        let Ok(h) = crate::jpeg::probe(&mut Source::memory(head)) else {
            continue;
        };
        out.push(Candidate {
            offset,
            len,
            width: h.width,
            height: h.height,
            orientation: h.meta.exif.is_some().then_some(h.meta.orientation),
        });
    }
    out.sort_by_key(|c| (c.width as u64 * c.height as u64, c.offset));
    out
}

/// Whether the JPEG's first frame header is a DCT one (baseline, extended, progressive):
/// CR2's and DNG's lossless JPEG raw data is not a picture.
fn dct_frame(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut at = 2usize;
    while let (Some(&0xFF), Some(&m)) = (b.get(at), b.get(at + 1)) {
        match m {
            0xFF => at += 1,
            0xC0..=0xC2 => return true,
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDA | 0xD9 => return false,
            _ => {
                let (Some(&hi), Some(&lo)) = (b.get(at + 2), b.get(at + 3)) else {
                    return false;
                };
                at += 2 + u16::from_be_bytes([hi, lo]) as usize;
            }
        }
    }
    false
}

/// The guards a candidate's header must pass against the RAW's header `main`.
pub fn fits(main: &Header, c: &Candidate) -> bool {
    let (mw, mh) = (main.width as u64, main.height as u64);
    let (pw, ph) = (c.width as u64, c.height as u64);
    let cross = (pw * mh).abs_diff(ph * mw);
    cross <= mw.min(mh) && c.orientation.is_none_or(|o| o == main.meta.orientation)
}

/// The smallest usable embedded JPEG of the RAW in `src` whose stored size is at least
/// `min`, decoded (DCT-scaled down to `min`); `None` when there is none. `src` is rewound
/// either way.
pub fn load(src: &mut Source, main: &Header, min: (u32, u32), limits: &Limits) -> Option<Preview> {
    let found = find(src, main, min, limits);
    src.rewind().ok()?;
    found
}

fn find(src: &mut Source, main: &Header, min: (u32, u32), limits: &Limits) -> Option<Preview> {
    src.rewind().ok()?;
    let kind = detect::kind(&src.sniff(SNIFF_LEN).ok()?)?;
    let mut r = SourceAt::new(src, 0)?;
    let layout = layout::read(kind, &mut r)?;
    candidates(&mut r, &layout, limits)
        .into_iter()
        .filter(|c| c.width >= min.0 && c.height >= min.1 && fits(main, c))
        .find_map(|c| decode(&mut r, &c, main, min, limits))
}

/// Decodes a whole candidate (a decode error means no preview), scaled in the DCT while it
/// stays at least `min`; the RAW's orientation, the preview's own colour profile.
pub fn decode(
    r: &mut dyn ReadAt,
    c: &Candidate,
    main: &Header,
    min: (u32, u32),
    limits: &Limits,
) -> Option<Preview> {
    let bytes = r.read_at(c.offset, usize::try_from(c.len).ok()?)?;
    let mut image = crate::jpeg::preview::decode_scaled(
        Source::memory(bytes),
        (c.width, c.height),
        min,
        limits,
    )?;
    image.header.meta = Metadata {
        icc: image.header.meta.icc.take(),
        ..main.meta.clone()
    };
    Some(Preview {
        image,
        stored: (c.width, c.height),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dct_frames_are_pictures() {
        assert!(dct_frame(b"\xFF\xD8\xFF\xE0\0\x04ab\xFF\xC0\0\x11"));
        assert!(dct_frame(b"\xFF\xD8\xFF\xC2"));
        // Lossless (CR2 raw data), a truncated segment, no SOI.
        assert!(!dct_frame(b"\xFF\xD8\xFF\xC3\0\x11"));
        assert!(!dct_frame(b"\xFF\xD8\xFF\xE1\xFF\xFF"));
        assert!(!dct_frame(b"\0\0"));
    }
}
