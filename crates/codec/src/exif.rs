//! The EXIF facts thumbfs acts on: the orientation (read, and reset after rotating) and the
//! Adobe RGB marking of profile-less camera files.

use crate::image::Metadata;

/// EXIF tag number of Orientation.
const ORIENTATION: u16 = 0x0112;

/// The APP1 signature some writers (libvips, older cwebp, HEIF's Exif item) keep in front of
/// the TIFF header in containers whose EXIF should start at it.
const APP1_PREFIX: &[u8] = b"Exif\0\0";

/// Raw EXIF from a container, as it must be carried: starting at the TIFF header. Strips an
/// `Exif\0\0` prefix; `None` (dropped) when what is left is not TIFF-structured, since a
/// saver would otherwise write a chunk readers reject ("incorrect byte-order specifier").
pub fn normalize(raw: &[u8]) -> Option<Vec<u8>> {
    let body = raw.strip_prefix(APP1_PREFIX).unwrap_or(raw);
    (body.starts_with(b"II*\0") || body.starts_with(b"MM\0*")).then(|| body.to_vec())
}

/// The orientation (1..8) recorded in raw EXIF starting at its TIFF header; 1 when absent or
/// out of range.
pub fn orientation(exif: &[u8]) -> u8 {
    let Ok(parsed) = ::exif::Reader::new().read_raw(exif.to_vec()) else {
        return 1;
    };
    parsed
        .get_field(::exif::Tag::Orientation, ::exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .filter(|o| (1..=8).contains(o))
        .map_or(1, |o| o as u8)
}

/// Whether EXIF marks the pixels as Adobe RGB (1998) without an ICC profile, as cameras set
/// to Adobe RGB write it (DCF 2.0's optional colour space): ColorSpace "uncalibrated"
/// (0xFFFF) and InteroperabilityIndex "R03".
pub fn adobe_rgb(exif: &[u8]) -> bool {
    let Ok(parsed) = ::exif::Reader::new().read_raw(exif.to_vec()) else {
        return false;
    };
    let uncalibrated = parsed
        .get_field(::exif::Tag::ColorSpace, ::exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        == Some(0xFFFF);
    let r03 = parsed
        .get_field(::exif::Tag::InteroperabilityIndex, ::exif::In::PRIMARY)
        .is_some_and(|f| match &f.value {
            ::exif::Value::Ascii(v) => v.first().is_some_and(|s| s.starts_with(b"R03")),
            _ => false,
        });
    uncalibrated && r03
}

/// A copy of `exif` whose IFD0 orientation tag says `value`. EXIF without the tag, or that
/// cannot be parsed, is returned unchanged (no viewer will rotate it then).
pub fn set_orientation(exif: &[u8], value: u8) -> Vec<u8> {
    let mut out = exif.to_vec();
    if let Some(at) = orientation_offset(exif) {
        let v = value as u16;
        let bytes = if exif.starts_with(b"II") {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        out[at..at + 2].copy_from_slice(&bytes);
    }
    out
}

/// The EXIF a saver writes for `meta`: its own, orientation tag set to what the pixels still
/// need; or, when the source had none but its pixels are still stored turned (a TIFF's
/// Orientation tag under `noautorotate`), a minimal block carrying only the orientation, so
/// the output is shown upright as the source was.
pub fn for_output(meta: &Metadata) -> Option<Vec<u8>> {
    let o = meta.orientation.clamp(1, 8);
    match &meta.exif {
        Some(e) => Some(set_orientation(e, o)),
        None if o != 1 => Some(minimal(o)),
        None => None,
    }
}

/// A big-endian EXIF block whose IFD0 holds one entry: orientation `o`.
fn minimal(o: u8) -> Vec<u8> {
    let mut e = b"MM\0*".to_vec();
    e.extend_from_slice(&8u32.to_be_bytes());
    e.extend_from_slice(&1u16.to_be_bytes());
    e.extend_from_slice(&ORIENTATION.to_be_bytes());
    // Type 3 (SHORT), count 1, the value left-justified in the 4-byte field.
    e.extend_from_slice(&3u16.to_be_bytes());
    e.extend_from_slice(&1u32.to_be_bytes());
    e.extend_from_slice(&u16::from(o).to_be_bytes());
    e.extend_from_slice(&[0, 0]);
    // No next IFD.
    e.extend_from_slice(&0u32.to_be_bytes());
    e
}

/// Offset of the orientation value inside `exif`, when IFD0 has a well-formed SHORT entry.
fn orientation_offset(exif: &[u8]) -> Option<usize> {
    let little = match exif.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = exif.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = exif.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    for i in 0..count {
        let entry = ifd.checked_add(2 + 12 * i)?;
        if u16_at(entry)? == ORIENTATION {
            // Type 3 = SHORT, count 1: the value sits in the first two bytes of the field.
            if u16_at(entry + 2)? == 3 && u32_at(entry + 4)? == 1 {
                let at = entry + 8;
                exif.get(at..at + 2)?;
                return Some(at);
            }
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal big- or little-endian EXIF block with one IFD0 entry: orientation = `o`.
    fn exif_with(o: u16, little: bool) -> Vec<u8> {
        let w16 = |v: u16| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let w32 = |v: u32| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let mut e = Vec::new();
        e.extend_from_slice(if little { b"II*\0" } else { b"MM\0*" });
        e.extend_from_slice(&w32(8));
        e.extend_from_slice(&w16(1));
        e.extend_from_slice(&w16(ORIENTATION));
        e.extend_from_slice(&w16(3));
        e.extend_from_slice(&w32(1));
        e.extend_from_slice(&w16(o));
        e.extend_from_slice(&[0, 0]);
        e.extend_from_slice(&w32(0));
        e
    }

    #[test]
    fn reads_and_resets_orientation_in_both_byte_orders() {
        for little in [true, false] {
            let e = exif_with(6, little);
            assert_eq!(orientation(&e), 6);
            let reset = set_orientation(&e, 1);
            assert_eq!(orientation(&reset), 1);
            assert_eq!(reset.len(), e.len());
        }
    }

    #[test]
    fn normalize_strips_the_app1_prefix_and_drops_garbage() {
        let e = exif_with(6, false);
        let mut prefixed = APP1_PREFIX.to_vec();
        prefixed.extend_from_slice(&e);
        assert_eq!(normalize(&prefixed).as_deref(), Some(&e[..]));
        assert_eq!(normalize(&e).as_deref(), Some(&e[..]));
        assert_eq!(normalize(b"Exif\0\0junk"), None);
        assert_eq!(normalize(b""), None);
    }

    #[test]
    fn output_exif_is_the_source_reset_or_a_minimal_block_for_stored_turned_pixels() {
        let mut meta = Metadata::upright();
        assert_eq!(for_output(&meta), None);
        meta.orientation = 6;
        let made = for_output(&meta).unwrap();
        assert_eq!(made, exif_with(6, false));
        assert_eq!(orientation(&made), 6);
        meta.exif = Some(std::sync::Arc::new(exif_with(6, true)));
        meta.orientation = 1;
        assert_eq!(orientation(&for_output(&meta).unwrap()), 1);
    }

    /// Little-endian EXIF: IFD0 -> Exif IFD (ColorSpace = `space`) -> Interop IFD (`index`).
    fn exif_colour(space: u16, index: &[u8; 4]) -> Vec<u8> {
        let entry = |tag: u16, kind: u16, count: u32, value: [u8; 4]| {
            let mut e = tag.to_le_bytes().to_vec();
            e.extend_from_slice(&kind.to_le_bytes());
            e.extend_from_slice(&count.to_le_bytes());
            e.extend_from_slice(&value);
            e
        };
        let ifd = |entries: Vec<Vec<u8>>| {
            let mut v = (entries.len() as u16).to_le_bytes().to_vec();
            entries.iter().for_each(|e| v.extend_from_slice(e));
            v.extend_from_slice(&0u32.to_le_bytes());
            v
        };
        // IFD0 at 8 (18 bytes), Exif IFD at 26 (30 bytes), Interop IFD at 56.
        let mut e = b"II*\0".to_vec();
        e.extend_from_slice(&8u32.to_le_bytes());
        e.extend(ifd(vec![entry(0x8769, 4, 1, 26u32.to_le_bytes())]));
        let [a, b] = space.to_le_bytes();
        e.extend(ifd(vec![
            entry(0xA001, 3, 1, [a, b, 0, 0]),
            entry(0xA005, 4, 1, 56u32.to_le_bytes()),
        ]));
        e.extend(ifd(vec![entry(0x0001, 2, 4, *index)]));
        e
    }

    #[test]
    fn adobe_rgb_needs_uncalibrated_and_r03() {
        assert!(adobe_rgb(&exif_colour(0xFFFF, b"R03\0")));
        assert!(!adobe_rgb(&exif_colour(1, b"R03\0")));
        assert!(!adobe_rgb(&exif_colour(0xFFFF, b"R98\0")));
        assert!(!adobe_rgb(&exif_with(1, true)));
        assert!(!adobe_rgb(b"nonsense"));
    }

    #[test]
    fn garbage_is_orientation_one_and_left_alone() {
        assert_eq!(orientation(b"nonsense"), 1);
        assert_eq!(set_orientation(b"nonsense", 1), b"nonsense");
        assert_eq!(set_orientation(b"II*\0\xff\xff\xff\xff", 1).len(), 8);
    }
}
