//! Which RAW container a file is, from its first bytes: the magic of the non-TIFF ones (CR3's
//! `ftyp crx `, RAF, ORF, RW2), CR2's marker after the TIFF header, and for the TIFF-based
//! ones that look like any TIFF (DNG, NEF, ARW, PEF) the IFD0 tags within the head.

use super::ifd::{self, Ifd};

/// The RAW containers told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Adobe DNG (TIFF with DNGVersion).
    Dng,
    /// Canon CR2 (TIFF with `CR\x02` at byte 8).
    Cr2,
    /// Canon CR3 (ISO-BMFF, major brand `crx `).
    Cr3,
    /// Nikon NEF / NRW.
    Nef,
    /// Sony ARW / SR2.
    Arw,
    /// Pentax / Ricoh PEF.
    Pef,
    /// Olympus / OM System ORF (`IIRO`, `IIRS`, `MMOR`).
    Orf,
    /// Panasonic / Leica RW2, RWL (`IIU\0`).
    Rw2,
    /// Fujifilm RAF.
    Raf,
}

/// IFD0 Make prefixes of the TIFF-based RAWs without a marker of their own.
const MAKERS: &[(&[u8], Kind)] = &[
    (b"NIKON", Kind::Nef),
    (b"Nikon", Kind::Nef),
    (b"SONY", Kind::Arw),
    (b"PENTAX", Kind::Pef),
    (b"RICOH", Kind::Pef),
];

/// Compression codes only camera raw data uses (Sony, NEF, Pentax, ...): with one of them,
/// a TIFF from a camera maker is its RAW rather than a developed TIFF.
const RAW_COMPRESSIONS: &[u32] = &[32767, 32769, 32770, 32867, 34713, 65000, 65535];

/// The RAW container `head` starts, if any.
pub fn kind(head: &[u8]) -> Option<Kind> {
    if head.starts_with(b"FUJIFILMCCD-RAW ") {
        return Some(Kind::Raf);
    }
    if head.get(4..12) == Some(b"ftypcrx ") {
        return Some(Kind::Cr3);
    }
    if [b"IIRO", b"IIRS", b"MMOR"]
        .iter()
        .any(|m| head.starts_with(*m))
    {
        return Some(Kind::Orf);
    }
    if head.starts_with(b"IIU\0") {
        return Some(Kind::Rw2);
    }
    if !(head.starts_with(b"II*\0") || head.starts_with(b"MM\0*")) {
        return None;
    }
    if head.get(8..11) == Some(b"CR\x02") {
        return Some(Kind::Cr2);
    }
    let mut at: &[u8] = head;
    let ifd0 = ifd::first(&mut at)?;
    if ifd0.has(ifd::DNG_VERSION) {
        return Some(Kind::Dng);
    }
    let make = ifd0.bytes(&mut at, ifd::MAKE)?;
    let maker = MAKERS
        .iter()
        .find(|(m, _)| make.starts_with(m))
        .map(|(_, k)| *k)?;
    raw_hint(&ifd0).then_some(maker)
}

/// Whether IFD0 says raw data rather than a developed picture: SubIFDs or a JPEG thumbnail
/// (NEF, ARW), a CFA, or a vendor compression (PEF keeps its raw data in IFD0).
fn raw_hint(ifd0: &Ifd) -> bool {
    ifd0.has(ifd::SUB_IFDS)
        || ifd0.has(ifd::JPEG_OFFSET)
        || ifd0.uint(ifd::PHOTOMETRIC) == Some(ifd::CFA)
        || ifd0
            .uint(ifd::COMPRESSION)
            .is_some_and(|c| RAW_COMPRESSIONS.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(kind(b"FUJIFILMCCD-RAW 0201"), Some(Kind::Raf));
        assert_eq!(
            kind(b"\0\0\0\x18ftypcrx \0\0\0\x01crx isom"),
            Some(Kind::Cr3)
        );
        assert_eq!(kind(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), None);
        assert_eq!(kind(b"IIRO\x08\0\0\0"), Some(Kind::Orf));
        assert_eq!(kind(b"IIU\0\x08\0\0\0"), Some(Kind::Rw2));
        assert_eq!(kind(b"II*\0\x10\0\0\0CR\x02\0\0\0\0\0"), Some(Kind::Cr2));
        // A plain TIFF whose IFD0 cannot be read from the head stays a TIFF.
        assert_eq!(kind(b"II*\0\x08\0\0\0"), None);
        assert_eq!(kind(b"II*\0\xFF\xFF\xFF\xFF"), None);
    }
}
