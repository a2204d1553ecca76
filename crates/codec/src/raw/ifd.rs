//! A bounded reader of TIFF image file directories, for the TIFF-structured RAWs (and the TIFF
//! blocks inside CR3 and RAF): entries, their values, and the tree of IFDs through next
//! pointers and SubIFDs. Hostile offsets and counts give `None` or fewer IFDs, never a panic
//! or a large allocation.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};

use crate::io::Source;

/// NewSubfileType: 0 for the main (raw) image, bit 0 for a reduced-resolution one.
pub const NEW_SUBFILE_TYPE: u16 = 0x00FE;
/// ImageWidth.
pub const WIDTH: u16 = 0x0100;
/// ImageLength.
pub const HEIGHT: u16 = 0x0101;
/// Compression (6 old-style JPEG, 7 JPEG).
pub const COMPRESSION: u16 = 0x0103;
/// PhotometricInterpretation.
pub const PHOTOMETRIC: u16 = 0x0106;
/// Make.
pub const MAKE: u16 = 0x010F;
/// StripOffsets.
pub const STRIP_OFFSETS: u16 = 0x0111;
/// Orientation.
pub const ORIENTATION: u16 = 0x0112;
/// StripByteCounts.
pub const STRIP_BYTE_COUNTS: u16 = 0x0117;
/// SubIFDs.
pub const SUB_IFDS: u16 = 0x014A;
/// JPEGInterchangeFormat: where PreviewImage / JpgFromRaw / ThumbnailImage start.
pub const JPEG_OFFSET: u16 = 0x0201;
/// JPEGInterchangeFormatLength.
pub const JPEG_LENGTH: u16 = 0x0202;
/// Panasonic RW2's JpgFromRaw, an UNDEFINED value holding a whole JPEG.
pub const RW2_JPG_FROM_RAW: u16 = 0x002E;
/// DNGVersion.
pub const DNG_VERSION: u16 = 0xC612;
/// DNG DefaultCropSize.
pub const DEFAULT_CROP_SIZE: u16 = 0xC620;
/// DNG ActiveArea (top, left, bottom, right).
pub const ACTIVE_AREA: u16 = 0xC68D;
/// ExifIFD.
pub const EXIF_IFD: u16 = 0x8769;
/// PhotometricInterpretation of colour filter array data.
pub const CFA: u32 = 32803;

/// Entries read from one IFD at most (cameras write fewer than 100).
const MAX_ENTRIES: usize = 1024;
/// IFDs visited in one file at most.
const MAX_IFDS: usize = 32;
/// Values read from one entry at most (SubIFD lists, crop sizes).
const MAX_VALUES: usize = 64;
/// Largest value read as bytes (a Make string).
const MAX_BYTES: usize = 4096;

/// Positioned reads, from a file or from memory.
pub trait ReadAt {
    /// `len` bytes at `offset`, or `None` when they are not all there.
    fn read_at(&mut self, offset: u64, len: usize) -> Option<Vec<u8>>;
}

impl ReadAt for &[u8] {
    fn read_at(&mut self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        self.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
    }
}

/// A seekable source read at offsets counted from `base`.
pub struct SourceAt<'s, 'a> {
    src: &'s mut Source<'a>,
    base: u64,
    len: u64,
}

impl<'s, 'a> SourceAt<'s, 'a> {
    /// Reads of `src` at offsets from `base`; `None` when it cannot seek.
    pub fn new(src: &'s mut Source<'a>, base: u64) -> Option<Self> {
        let len = src.len().filter(|_| src.is_seekable())?;
        Some(SourceAt { src, base, len })
    }
}

impl ReadAt for SourceAt<'_, '_> {
    fn read_at(&mut self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let start = self.base.checked_add(offset)?;
        if start.checked_add(len as u64)? > self.len {
            return None;
        }
        self.src.seek(SeekFrom::Start(start)).ok()?;
        let mut out = vec![0u8; len];
        self.src.read_exact(&mut out).ok()?;
        Some(out)
    }
}

/// One directory entry: its value in place when it fits four bytes, else where it is.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    field: [u8; 4],
}

/// One image file directory.
#[derive(Debug, Clone)]
pub struct Ifd {
    le: bool,
    entries: Vec<Entry>,
    /// Offset of the next IFD in the chain (0: none).
    pub next: u32,
}

fn type_size(typ: u16) -> Option<usize> {
    Some(match typ {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => return None,
    })
}

/// The byte order of a TIFF header (`II` or `MM`), whatever its magic number (ORF and RW2
/// have their own), and the offset of IFD0.
pub fn header(r: &mut dyn ReadAt) -> Option<(bool, u32)> {
    let h = r.read_at(0, 8)?;
    let le = match &h[..2] {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    Some((le, u32_of(le, &h[4..8])))
}

/// IFD0 of the TIFF structure `r` starts with.
pub fn first(r: &mut dyn ReadAt) -> Option<Ifd> {
    let (le, at) = header(r)?;
    Ifd::read(r, le, at)
}

/// Every IFD reachable from IFD0: the chain of next pointers and the SubIFDs of each, each
/// once, at most [`MAX_IFDS`].
pub fn walk(r: &mut dyn ReadAt) -> Vec<Ifd> {
    let Some((le, at)) = header(r) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut todo = vec![at];
    while let Some(at) = todo.pop() {
        if at == 0 || out.len() >= MAX_IFDS || !seen.insert(at) {
            continue;
        }
        let Some(ifd) = Ifd::read(r, le, at) else {
            continue;
        };
        todo.push(ifd.next);
        // SubIFDs before the next one: depth first keeps a file's own order.
        let subs = ifd.uints(r, SUB_IFDS).unwrap_or_default();
        todo.extend(subs.into_iter().rev());
        out.push(ifd);
    }
    out
}

/// Whether every entry of every IFD reachable from IFD0 (and their EXIF IFDs) claims no more
/// bytes than a file of `len` bytes has: rawler allocates what entries claim before reading.
pub fn sound(r: &mut dyn ReadAt, len: u64) -> bool {
    let mut ifds = walk(r);
    let exif: Vec<u32> = ifds.iter().filter_map(|d| d.uint(EXIF_IFD)).collect();
    let le = header(r).is_some_and(|h| h.0);
    ifds.extend(exif.into_iter().filter_map(|at| Ifd::read(r, le, at)));
    !ifds.is_empty()
        && ifds.iter().all(|d| {
            d.entries.iter().all(|e| {
                let size = type_size(e.typ).unwrap_or(1) as u64;
                size * e.count as u64 <= len
            })
        })
}

fn u16_of(le: bool, b: &[u8]) -> u16 {
    let a = [b[0], b[1]];
    if le {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    }
}

fn u32_of(le: bool, b: &[u8]) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    }
}

impl Ifd {
    /// Reads the IFD at `at`; entries past what can be read end it.
    pub fn read(r: &mut dyn ReadAt, le: bool, at: u32) -> Option<Ifd> {
        let n = u16_of(le, &r.read_at(at as u64, 2)?) as usize;
        let n = n.min(MAX_ENTRIES);
        let body = r.read_at(at as u64 + 2, n * 12 + 4)?;
        let entries = body[..n * 12]
            .chunks_exact(12)
            .map(|e| Entry {
                tag: u16_of(le, &e[0..2]),
                typ: u16_of(le, &e[2..4]),
                count: u32_of(le, &e[4..8]),
                field: [e[8], e[9], e[10], e[11]],
            })
            .collect();
        Some(Ifd {
            le,
            entries,
            next: u32_of(le, &body[n * 12..]),
        })
    }

    fn entry(&self, tag: u16) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    /// Whether the IFD has `tag`.
    pub fn has(&self, tag: u16) -> bool {
        self.entry(tag).is_some()
    }

    /// Where the value of `tag` is and how long it is, in bytes (`None` for an unknown type);
    /// a value of up to four bytes is in the entry itself (`Err` gives its bytes).
    fn span(&self, tag: u16) -> Option<std::result::Result<(u64, usize), [u8; 4]>> {
        let e = self.entry(tag)?;
        let len = type_size(e.typ)?.checked_mul(e.count as usize)?;
        Some(if len <= 4 {
            Err(e.field)
        } else {
            Ok((u32_of(self.le, &e.field) as u64, len))
        })
    }

    /// Offset and length of an out-of-line value (RW2's JpgFromRaw).
    pub fn blob(&self, tag: u16) -> Option<(u64, u64)> {
        match self.span(tag)? {
            Ok((at, len)) => Some((at, len as u64)),
            Err(_) => None,
        }
    }

    /// The value bytes of `tag` (at most [`MAX_BYTES`]).
    pub fn bytes(&self, r: &mut dyn ReadAt, tag: u16) -> Option<Vec<u8>> {
        let len = type_size(self.entry(tag)?.typ)?;
        match self.span(tag)? {
            Err(field) => Some(field[..len * self.entry(tag)?.count as usize].to_vec()),
            Ok((at, n)) => r.read_at(at, n.min(MAX_BYTES)),
        }
    }

    /// The first value of an in-entry BYTE, SHORT or LONG `tag`.
    pub fn uint(&self, tag: u16) -> Option<u32> {
        let e = self.entry(tag)?;
        match (e.typ, self.span(tag)?) {
            (1, Err(f)) => Some(f[0] as u32),
            (3, Err(f)) => Some(u16_of(self.le, &f) as u32),
            (4 | 13, Err(f)) => Some(u32_of(self.le, &f)),
            _ => None,
        }
    }

    /// The values of a BYTE, SHORT, LONG or IFD `tag` (at most [`MAX_VALUES`]); RATIONALs
    /// rounded to whole numbers.
    pub fn uints(&self, r: &mut dyn ReadAt, tag: u16) -> Option<Vec<u32>> {
        let e = *self.entry(tag)?;
        let size = type_size(e.typ)?;
        let n = (e.count as usize).min(MAX_VALUES);
        let bytes = match self.span(tag)? {
            Err(f) => f.to_vec(),
            Ok((at, _)) => r.read_at(at, n * size)?,
        };
        let le = self.le;
        let v = (0..n)
            .filter_map(|i| {
                let b = bytes.get(i * size..(i + 1) * size)?;
                match e.typ {
                    1 => Some(b[0] as u32),
                    3 => Some(u16_of(le, b) as u32),
                    4 | 13 => Some(u32_of(le, b)),
                    5 => {
                        let (num, den) = (u32_of(le, &b[..4]), u32_of(le, &b[4..]));
                        (den != 0).then(|| (num as f64 / den as f64).round() as u32)
                    }
                    _ => None,
                }
            })
            .collect();
        Some(v)
    }

    /// A single strip's offset and length (`None` for several strips or tiles).
    pub fn single_strip(&self, r: &mut dyn ReadAt) -> Option<(u64, u64)> {
        let offsets = self.uints(r, STRIP_OFFSETS)?;
        let counts = self.uints(r, STRIP_BYTE_COUNTS)?;
        match (offsets.as_slice(), counts.as_slice()) {
            ([o], [c]) => Some((*o as u64, *c as u64)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_directories_are_bounded() {
        // IFD0 pointing at itself through its next pointer: read once.
        let mut t = b"II*\0\x08\0\0\0\x01\0".to_vec();
        t.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
        t.extend_from_slice(&8u32.to_le_bytes());
        let ifds = walk(&mut t.as_slice());
        assert_eq!(ifds.len(), 1);
        assert_eq!(ifds[0].uint(ORIENTATION), Some(6));
        // A count far past the data: no IFD, no allocation of it.
        let t = b"II*\0\x08\0\0\0\xFF\xFF".to_vec();
        assert!(walk(&mut t.as_slice()).is_empty());
        assert!(first(&mut &b"XX*\0"[..]).is_none());
        // An entry claiming 4 G bytes of a 30-byte file is not sound.
        let mut t = b"II*\0\x08\0\0\0\x01\0".to_vec();
        t.extend_from_slice(&[0x0F, 0x01, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF, 8, 0, 0, 0]);
        t.extend_from_slice(&0u32.to_le_bytes());
        assert!(!sound(&mut t.as_slice(), t.len() as u64));
        t[14..18].copy_from_slice(&4u32.to_le_bytes());
        assert!(sound(&mut t.as_slice(), t.len() as u64));
    }
}
