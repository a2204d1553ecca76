//! MPF (CIPA DC-007 Multi-Picture Format): the APP2 `MPF\0` index that camera JPEGs use to
//! list the images appended after the primary one (large-thumbnail previews, panorama or
//! disparity frames, gain maps). Bounded: hostile offsets and counts give `None` or fewer
//! entries, never a panic or a large allocation.

/// Most MP entries read from one index (cameras write two or three).
const MAX_ENTRIES: usize = 64;

/// MP type code of a large-thumbnail preview, VGA class.
pub const LARGE_THUMBNAIL_VGA: u32 = 0x01_0001;
/// MP type code of a large-thumbnail preview, full-HD class.
pub const LARGE_THUMBNAIL_FULL_HD: u32 = 0x01_0002;

/// One MP entry: an image stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpEntry {
    /// The 24-bit MP type code (0x010001 VGA preview, 0x020002 disparity, 0x030000 primary...).
    pub type_code: u32,
    /// The image data format (bits 24-26 of the attribute): 0 is JPEG.
    pub data_format: u8,
    /// Length of the image in bytes.
    pub size: u32,
    /// Absolute offset of the image in the file (0 for the primary image).
    pub offset: u64,
}

impl MpEntry {
    /// Whether the entry is a JPEG large-thumbnail preview (never a gain map, depth or
    /// disparity image, whose type codes differ).
    pub fn is_preview(&self) -> bool {
        self.data_format == 0
            && matches!(
                self.type_code,
                LARGE_THUMBNAIL_VGA | LARGE_THUMBNAIL_FULL_HD
            )
    }
}

/// Finds the MPF segment in the marker segments before the first SOS of `head` (the file's
/// first bytes) and returns its entries; `None` when there is no readable index.
pub fn entries(head: &[u8]) -> Option<Vec<MpEntry>> {
    let (tiff_at, tiff) = find_segment(head)?;
    parse_index(tiff, tiff_at as u64)
}

/// The MPF payload after `MPF\0` and its absolute offset in the file.
fn find_segment(head: &[u8]) -> Option<(usize, &[u8])> {
    if head.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2usize;
    loop {
        // Fill bytes before a marker are allowed.
        while head.get(at)? == &0xFF && head.get(at + 1)? == &0xFF {
            at += 1;
        }
        if head.get(at)? != &0xFF {
            return None;
        }
        let marker = *head.get(at + 1)?;
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            at += 2;
            continue;
        }
        let len = u16::from_be_bytes([*head.get(at + 2)?, *head.get(at + 3)?]) as usize;
        if len < 2 {
            return None;
        }
        let body = head.get(at + 4..at + 2 + len)?;
        if marker == 0xE2 && body.starts_with(b"MPF\0") {
            return Some((at + 8, &body[4..]));
        }
        at += 2 + len;
    }
}

/// Reads the MP Index IFD of a TIFF-structured payload starting at file offset `base`.
fn parse_index(t: &[u8], base: u64) -> Option<Vec<MpEntry>> {
    let le = match t.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let b = t.get(o..o.checked_add(2)?)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let b = t.get(o..o.checked_add(4)?)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    let mut list: Option<(usize, usize)> = None;
    // An IFD entry is 12 bytes; entries past the payload end stop the walk.
    for i in 0..count.min(256) {
        let e = ifd.checked_add(2 + 12 * i)?;
        let tag = u16_at(e)?;
        if tag == 0xB002 {
            let len = u32_at(e + 4)? as usize;
            let off = u32_at(e + 8)? as usize;
            list = Some((off, len));
            break;
        }
    }
    let (off, len) = list?;
    let n = (len / 16).min(MAX_ENTRIES);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let e = off.checked_add(16 * i)?;
        let (Some(attr), Some(size), Some(rel)) = (u32_at(e), u32_at(e + 4), u32_at(e + 8)) else {
            break;
        };
        out.push(MpEntry {
            type_code: attr & 0x00FF_FFFF,
            data_format: ((attr >> 24) & 0x7) as u8,
            size,
            // Offsets count from the TIFF header; the primary image's is 0.
            offset: if rel == 0 { 0 } else { base + rel as u64 },
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_inputs_give_none_or_bounded_entries() {
        assert_eq!(entries(&[]), None);
        assert_eq!(entries(&[0xFF, 0xD8, 0xFF, 0xE2, 0x00, 0x00]), None);
        // An MPF segment whose IFD offset points far away.
        let mut f = vec![0xFF, 0xD8, 0xFF, 0xE2, 0x00, 0x10];
        f.extend_from_slice(b"MPF\0II*\0\xFF\xFF\xFF\xFF\0\0");
        assert_eq!(entries(&f), None);
    }
}
