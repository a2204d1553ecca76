//! Where each RAW container keeps its embedded JPEGs and its orientation: IFD tags in the
//! TIFF-based ones, the header of RAF, the Canon boxes of CR3. Only offsets are read here;
//! whether a JPEG is usable is decided by [`super::preview`].

use super::detect::Kind;
use super::ifd::{self, Ifd, ReadAt};

/// Most boxes read at one level of a CR3 file.
const MAX_BOXES: usize = 64;
/// Largest CR3 metadata box (CMT1) read into memory.
const MAX_META_BOX: u64 = 1 << 20;

/// CR3's box of Canon metadata boxes (CMT1..4, THMB) inside `moov`.
const CANON_UUID: [u8; 16] = *b"\x85\xc0\xb6\x87\x82\x0f\x11\xe0\x81\x11\xf4\xce\x46\x2b\x6a\x48";
/// CR3's top-level box holding the PRVW preview.
const PREVIEW_UUID: [u8; 16] = *b"\xea\xf4\x2b\x5e\x1c\x98\x4b\x88\xb9\xfb\xb7\xdc\x40\x6e\x4d\x16";

/// What a RAW container says about its previews and its picture.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Embedded JPEG streams: file offset and length.
    pub jpegs: Vec<(u64, u64)>,
    /// The RAW's own EXIF orientation (IFD0, CR3's CMT1); `None` where it lives in the
    /// embedded JPEG's EXIF (RAF).
    pub orientation: Option<u8>,
    /// A DNG's developed size: DefaultCropSize, else ActiveArea, else the raw IFD's size.
    pub dng_size: Option<(u32, u32)>,
}

/// Reads the layout of a `kind` file through `r` (offsets from the file's start).
pub fn read(kind: Kind, r: &mut dyn ReadAt) -> Option<Layout> {
    match kind {
        Kind::Raf => raf(r),
        Kind::Cr3 => cr3(r),
        _ => Some(tiff(kind, r)),
    }
}

fn tiff(kind: Kind, r: &mut dyn ReadAt) -> Layout {
    let ifds = ifd::walk(r);
    let mut out = Layout {
        orientation: ifds
            .first()
            .and_then(|i| i.uint(ifd::ORIENTATION))
            .map(valid),
        ..Layout::default()
    };
    for d in &ifds {
        out.jpegs.extend(jpegs_of(d, r));
    }
    if kind == Kind::Dng {
        out.dng_size = ifds.iter().find(|d| is_raw(d)).and_then(|d| dng_size(d, r));
    }
    out
}

/// The JPEGs one IFD points at: JPEGInterchangeFormat (PreviewImage, JpgFromRaw), a
/// JPEG-compressed single strip (CR2's IFD0, DNG preview IFDs), RW2's JpgFromRaw.
fn jpegs_of(d: &Ifd, r: &mut dyn ReadAt) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    if let (Some(o), Some(n)) = (d.uint(ifd::JPEG_OFFSET), d.uint(ifd::JPEG_LENGTH)) {
        v.push((o as u64, n as u64));
    }
    if matches!(d.uint(ifd::COMPRESSION), Some(6 | 7)) && !is_raw(d) {
        v.extend(d.single_strip(r));
    }
    v.extend(d.blob(ifd::RW2_JPG_FROM_RAW));
    v
}

/// A raw image IFD: main image (NewSubfileType 0) holding CFA or linear raw data.
fn is_raw(d: &Ifd) -> bool {
    d.uint(ifd::NEW_SUBFILE_TYPE).unwrap_or(0) == 0
        && matches!(d.uint(ifd::PHOTOMETRIC), Some(ifd::CFA | 34892))
}

fn dng_size(d: &Ifd, r: &mut dyn ReadAt) -> Option<(u32, u32)> {
    if let Some([w, h]) = d.uints(r, ifd::DEFAULT_CROP_SIZE).as_deref() {
        return Some((*w, *h));
    }
    if let Some([t, l, b, rt]) = d.uints(r, ifd::ACTIVE_AREA).as_deref() {
        return Some((rt.checked_sub(*l)?, b.checked_sub(*t)?));
    }
    Some((d.uint(ifd::WIDTH)?, d.uint(ifd::HEIGHT)?))
}

fn valid(o: u32) -> u8 {
    if (1..=8).contains(&o) {
        o as u8
    } else {
        1
    }
}

/// RAF: big-endian offset and length of the embedded JPEG at bytes 84 and 88; the RAW's
/// EXIF (orientation) is that JPEG's.
fn raf(r: &mut dyn ReadAt) -> Option<Layout> {
    let h = r.read_at(84, 8)?;
    let at = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as u64;
    Some(Layout {
        jpegs: vec![(at, len)],
        ..Layout::default()
    })
}

/// One ISO-BMFF box: its type, where its payload starts, and where it ends.
struct Bmff {
    typ: [u8; 4],
    body: u64,
    end: u64,
}

/// The boxes between `start` and `end`, at most [`MAX_BOXES`].
fn boxes(r: &mut dyn ReadAt, start: u64, end: u64) -> Vec<Bmff> {
    let mut out = Vec::new();
    let mut at = start;
    while at.saturating_add(8) <= end && out.len() < MAX_BOXES {
        let Some(h) = r.read_at(at, 8) else { break };
        let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        let typ = [h[4], h[5], h[6], h[7]];
        let (body, size) = match size {
            1 => {
                let Some(l) = r.read_at(at + 8, 8) else { break };
                (at + 16, u64::from_be_bytes(l.try_into().unwrap_or([0; 8])))
            }
            0 => (at + 8, end - at),
            s => (at + 8, s),
        };
        let Some(box_end) = at.checked_add(size).filter(|&e| e <= end && size >= 8) else {
            break;
        };
        out.push(Bmff {
            typ,
            body,
            end: box_end,
        });
        at = box_end;
    }
    out
}

/// The payload of a `uuid` box after its UUID, when the UUID is `id`.
fn uuid_body(r: &mut dyn ReadAt, b: &Bmff, id: &[u8; 16]) -> Option<u64> {
    (&b.typ == b"uuid" && r.read_at(b.body, 16)?.as_slice() == id).then_some(b.body + 16)
}

/// CR3: THMB (160x120) in moov's Canon box, PRVW (1620x1080) in the preview box, both with
/// the JPEG at byte 16 of the payload and its length at byte 8 (THMB) or 12 (PRVW), as
/// documented by Laurent Clévy's "Describing the Canon Raw v3 file format"; orientation from
/// CMT1, a TIFF IFD0.
fn cr3(r: &mut dyn ReadAt) -> Option<Layout> {
    let mut out = Layout::default();
    for top in boxes(r, 0, u64::MAX) {
        if &top.typ == b"moov" {
            for m in boxes(r, top.body, top.end) {
                let Some(body) = uuid_body(r, &m, &CANON_UUID) else {
                    continue;
                };
                for c in boxes(r, body, m.end) {
                    match &c.typ {
                        b"THMB" => out.jpegs.extend(sized_jpeg(r, &c, 8)),
                        b"CMT1" if c.end - c.body <= MAX_META_BOX => {
                            let tiff = r.read_at(c.body, (c.end - c.body) as usize);
                            out.orientation = tiff
                                .and_then(|t| ifd::first(&mut t.as_slice()))
                                .and_then(|d| d.uint(ifd::ORIENTATION))
                                .map(valid);
                        }
                        _ => {}
                    }
                }
            }
        } else if let Some(body) = uuid_body(r, &top, &PREVIEW_UUID) {
            // An 8-byte field precedes the PRVW box.
            for c in boxes(r, body + 8, top.end) {
                if &c.typ == b"PRVW" {
                    out.jpegs.extend(sized_jpeg(r, &c, 12));
                }
            }
        }
    }
    Some(out)
}

/// Whether the boxes of a CR3 file of `len` bytes nest and tile exactly, and the sample
/// tables' entry counts fit their boxes: rawler trusts these sizes and counts for its
/// allocations, so a file failing this is never handed to it.
pub fn cr3_sound(r: &mut dyn ReadAt, len: u64) -> bool {
    sound_level(r, 0, len, 0)
}

fn sound_level(r: &mut dyn ReadAt, start: u64, end: u64, depth: u32) -> bool {
    if depth > 8 {
        return false;
    }
    let list = boxes(r, start, end);
    if list.len() >= MAX_BOXES || list.last().map_or(start, |b| b.end) != end {
        return false;
    }
    list.iter().all(|b| {
        let body = b.end - b.body;
        // (count field offset in the payload, bytes per entry) of the sample tables.
        let table = match &b.typ {
            b"stsz" => Some((8, 4)),
            b"stco" => Some((4, 4)),
            b"co64" | b"stts" => Some((4, 8)),
            b"stsc" => Some((4, 12)),
            _ => None,
        };
        match &b.typ {
            b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"dinf" => {
                sound_level(r, b.body, b.end, depth + 1)
            }
            _ => table.is_none_or(|(at, size)| {
                r.read_at(b.body + at, 4).is_some_and(|c| {
                    let n = u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
                    n * size <= body
                })
            }),
        }
    })
}

/// The JPEG of a THMB or PRVW box: its length at `len_at` in the payload, its data at 16.
fn sized_jpeg(r: &mut dyn ReadAt, b: &Bmff, len_at: u64) -> Option<(u64, u64)> {
    let l = r.read_at(b.body + len_at, 4)?;
    let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as u64;
    let at = b.body + 16;
    (at.checked_add(len)? <= b.end).then_some((at, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_boxes_end_the_walk() {
        // A box claiming more than the file, and one of size 3: nothing read, no panic.
        let mut f = b"\0\0\0\x18ftypcrx \0\0\0\x01crx isom".to_vec();
        f.extend_from_slice(b"\xFF\xFF\xFF\xFFmoov");
        assert_eq!(read(Kind::Cr3, &mut f.as_slice()), Some(Layout::default()));
        assert!(!cr3_sound(&mut f.as_slice(), f.len() as u64));
        let f = b"\0\0\0\x03moov".to_vec();
        assert_eq!(read(Kind::Cr3, &mut f.as_slice()), Some(Layout::default()));
        assert!(!cr3_sound(&mut f.as_slice(), f.len() as u64));
        // A sample table claiming more entries than its box holds.
        let mut f = b"\0\0\0\x08ftyp".to_vec();
        f.extend_from_slice(b"\0\0\0\x18moov\0\0\0\x10co64\0\0\0\0\xFF\xFF\xFF\xFF");
        assert!(!cr3_sound(&mut f.as_slice(), f.len() as u64));
        f.truncate(28);
        f.extend_from_slice(b"\0\0\0\0");
        assert!(cr3_sound(&mut f.as_slice(), f.len() as u64));
        assert_eq!(read(Kind::Raf, &mut &b"FUJIFILM"[..]), None);
    }
}
