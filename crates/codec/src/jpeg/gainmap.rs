//! Gain maps (Ultra HDR, Adobe's hdrgm XMP, ISO 21496-1): a primary JPEG that signals a gain
//! map (hdrgm XMP with a GContainer directory, or an ISO 21496-1 APP2 version box) and an MPF
//! index whose second image is the gain map JPEG, carrying its own hdrgm XMP and/or ISO
//! 21496-1 metadata. HDR displays multiply the primary by the map.
//!
//! Reading finds the map and its metadata; writing assembles the same structure around a new
//! primary and map. The MPF index sits in the primary's header and holds the primary's byte
//! length (the map's offset follows from it), so the primary is encoded into memory first,
//! its index patched, then both are written to the target in order.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use super::{encode, mpf};
use crate::error::{Error, Result};
use crate::image::{BoxStream, Header};
use crate::io::target::MemoryTarget;
use crate::io::{Source, Target};
use crate::{Limits, SaveOptions};

/// ISO 21496-1 APP2 signature.
pub const ISO_SIG: &[u8] = b"urn:iso:std:iso:ts:21496:-1\0";
/// XMP APP1 signature.
const XMP_SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
/// ICC APP2 signature (then chunk number and count).
const ICC_SIG: &[u8] = b"ICC_PROFILE\0";
/// Bytes read from the start of the file to find the MPF index and the primary's segments.
const HEAD_LEN: usize = 1 << 17;
/// Largest gain map JPEG read (a full-resolution map of a 200 MP photo stays below this).
const MAX_MAP_BYTES: u64 = 256 << 20;
/// MP attribute of the primary image: baseline MP primary, no flags (as libultrahdr).
const PRIMARY_ATTR: u32 = 0x0003_0000;
/// MP attribute of the gain map: type undefined (as libultrahdr).
const MAP_ATTR: u32 = 0;

/// A source's gain map: the JPEG as stored and what the primary said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMap {
    /// The gain map JPEG, whole.
    pub jpeg: Vec<u8>,
    /// The primary's ISO 21496-1 APP2 payload after the signature (its version box).
    pub primary_iso: Option<Vec<u8>>,
}

/// The metadata segments of a gain map JPEG, carried unchanged to the output's map (the gain
/// curve does not depend on the geometry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapMeta {
    /// hdrgm XMP packet.
    pub xmp: Option<Arc<Vec<u8>>>,
    /// ICC profile (the colour space the map applies in).
    pub icc: Option<Arc<Vec<u8>>>,
    /// ISO 21496-1 payload after the signature.
    pub iso: Option<Vec<u8>>,
}

/// The gain map of the JPEG in `src` whose header is `main`, or `None` when the primary
/// signals none, the index lists none, or the source cannot seek. `src` is rewound either way.
pub fn find(src: &mut Source, main: &Header, limits: &Limits) -> Option<SourceMap> {
    let found = find_inner(src, main, limits);
    src.rewind().ok()?;
    found
}

fn find_inner(src: &mut Source, main: &Header, limits: &Limits) -> Option<SourceMap> {
    if !src.is_seekable() {
        return None;
    }
    src.rewind().ok()?;
    let head = src.sniff(HEAD_LEN).ok()?;
    let primary_iso = segments(&head)
        .find(|(m, b)| *m == 0xE2 && b.starts_with(ISO_SIG))
        .map(|(_, b)| b[ISO_SIG.len()..].to_vec());
    let xmp_signals = main
        .meta
        .xmp
        .as_deref()
        .is_some_and(|x| has(x, b"hdrgm:Version"));
    if !xmp_signals && primary_iso.is_none() {
        return None;
    }
    let len = src.len()?;
    let entry = mpf::entries(&head)?
        .into_iter()
        .skip(1)
        .find(|e| e.offset != 0 && e.data_format == 0)?;
    let end = entry.offset.checked_add(entry.size as u64)?;
    if end > len || entry.size as u64 > limits.memory_limit.min(MAX_MAP_BYTES) {
        return None;
    }
    src.seek(SeekFrom::Start(entry.offset)).ok()?;
    let mut jpeg = vec![0u8; entry.size as usize];
    src.read_exact(&mut jpeg).ok()?;
    let meta = map_meta(&jpeg);
    let xmp_map = meta.xmp.as_deref().is_some_and(|x| has(x, b"hdrgm:"));
    let iso_map = meta.iso.as_ref().is_some_and(|i| i.len() > 4);
    (xmp_map || iso_map).then_some(SourceMap { jpeg, primary_iso })
}

/// The XMP, ICC and ISO 21496-1 segments of a gain map JPEG.
pub fn map_meta(jpeg: &[u8]) -> MapMeta {
    let mut meta = MapMeta::default();
    let mut icc: Vec<(u8, &[u8])> = Vec::new();
    for (marker, body) in segments(jpeg) {
        if marker == 0xE1 && body.starts_with(XMP_SIG) && meta.xmp.is_none() {
            meta.xmp = Some(Arc::new(body[XMP_SIG.len()..].to_vec()));
        } else if marker == 0xE2 && body.starts_with(ISO_SIG) && meta.iso.is_none() {
            meta.iso = Some(body[ISO_SIG.len()..].to_vec());
        } else if marker == 0xE2 && body.len() > ICC_SIG.len() + 2 && body.starts_with(ICC_SIG) {
            icc.push((body[ICC_SIG.len()], &body[ICC_SIG.len() + 2..]));
        }
    }
    if !icc.is_empty() {
        icc.sort_by_key(|(n, _)| *n);
        meta.icc = Some(Arc::new(
            icc.iter().flat_map(|(_, b)| b.iter().copied()).collect(),
        ));
    }
    meta
}

/// Encodes `map` (the gain map's pixels, already transformed) as the output's gain map JPEG
/// with `meta`, at `quality`.
pub fn encode_map(map: BoxStream, meta: &MapMeta, quality: u8) -> Result<Vec<u8>> {
    let opts = SaveOptions {
        strip: false,
        values: vec![("q", quality as u32)],
    };
    let iso = meta.iso.as_ref().map(|i| [ISO_SIG, i].concat());
    let extras = encode::Extras {
        xmp: None,
        app2: iso.iter().map(|s| s.as_slice()).collect(),
    };
    let mut out = MemoryTarget::new();
    encode::save_with(map, &opts, &extras, &mut out)?;
    Ok(out.take())
}

/// Writes an Ultra HDR JPEG: the primary encoded from `stream` (its XMP's GContainer length
/// set to the map's, `primary_iso` and an MPF index added), then `map`, a finished JPEG.
pub fn save(
    stream: BoxStream,
    opts: &SaveOptions,
    map: &[u8],
    primary_iso: Option<&[u8]>,
    target: &mut dyn Target,
) -> Result<()> {
    let map_len =
        u32::try_from(map.len()).map_err(|_| Error::encode("jpeg", "gain map too large"))?;
    let xmp = stream
        .header()
        .meta
        .xmp
        .as_deref()
        .map(|x| set_container_length(x, map_len));
    let iso = primary_iso.map(|i| [ISO_SIG, i].concat());
    let placeholder = mpf_payload(0, 0, 0);
    let mut app2: Vec<&[u8]> = iso.iter().map(|s| s.as_slice()).collect();
    app2.push(&placeholder);
    let extras = encode::Extras {
        xmp: xmp.as_deref(),
        app2,
    };
    let mut mem = MemoryTarget::new();
    encode::save_with(stream, opts, &extras, &mut mem)?;
    let mut primary = mem.take();
    let at = segment_offsets(&primary)
        .find(|&(m, body_at, _)| m == 0xE2 && primary[body_at..].starts_with(b"MPF\0"))
        .map(|(_, body_at, _)| body_at)
        .ok_or_else(|| Error::encode("jpeg", "MPF segment not written"))?;
    let tiff_at = at + 4;
    let total = u32::try_from(primary.len())
        .map_err(|_| Error::encode("jpeg", "primary image too large for MPF"))?;
    let payload = mpf_payload(total, map_len, total - tiff_at as u32);
    primary[at..at + payload.len()].copy_from_slice(&payload);
    target.write_all(&primary).map_err(Error::Write)?;
    target.write_all(map).map_err(Error::Write)?;
    target.finish().map_err(Error::Write)
}

/// The MPF APP2 payload (`MPF\0`, a big-endian TIFF header, the MP Index IFD with version,
/// count and entry list, two MP entries): always 86 bytes, so a placeholder can be patched.
fn mpf_payload(primary_len: u32, map_len: u32, map_offset: u32) -> Vec<u8> {
    let mut p = b"MPF\0MM\0*".to_vec();
    p.extend_from_slice(&8u32.to_be_bytes());
    p.extend_from_slice(&3u16.to_be_bytes());
    let entries_at: u32 = 8 + 2 + 3 * 12 + 4;
    for (tag, typ, count, value) in [
        (0xB000u16, 7u16, 4u32, u32::from_be_bytes(*b"0100")),
        (0xB001, 4, 1, 2),
        (0xB002, 7, 32, entries_at),
    ] {
        p.extend_from_slice(&tag.to_be_bytes());
        p.extend_from_slice(&typ.to_be_bytes());
        p.extend_from_slice(&count.to_be_bytes());
        p.extend_from_slice(&value.to_be_bytes());
    }
    p.extend_from_slice(&0u32.to_be_bytes());
    for (attr, size, offset) in [
        (PRIMARY_ATTR, primary_len, 0),
        (MAP_ATTR, map_len, map_offset),
    ] {
        p.extend_from_slice(&attr.to_be_bytes());
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&offset.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
    }
    p
}

/// `xmp` with the GContainer GainMap item's `Item:Length` (attribute or element) set to
/// `len`; unchanged when it has no such item.
pub fn set_container_length(xmp: &[u8], len: u32) -> Vec<u8> {
    let Some(sem) = search(xmp, b"GainMap", 0) else {
        return xmp.to_vec();
    };
    // The item runs from the last `Container:Item` before the semantic to the next one (or the
    // directory's end).
    let start = rfind(&xmp[..sem], b"Container:Item").unwrap_or(0);
    let end = search(xmp, b"Container:Item", sem)
        .or_else(|| search(xmp, b"</Container:Directory", sem))
        .unwrap_or(xmp.len());
    let item = &xmp[start..end];
    let (digits_at, digits_len) = if let Some(a) = search(item, b"Item:Length=\"", 0) {
        let d = a + b"Item:Length=\"".len();
        (
            d,
            item[d..].iter().take_while(|c| c.is_ascii_digit()).count(),
        )
    } else if let Some(a) = search(item, b"<Item:Length>", 0) {
        let d = a + b"<Item:Length>".len();
        (
            d,
            item[d..].iter().take_while(|c| c.is_ascii_digit()).count(),
        )
    } else {
        return xmp.to_vec();
    };
    let at = start + digits_at;
    [
        &xmp[..at],
        len.to_string().as_bytes(),
        &xmp[at + digits_len..],
    ]
    .concat()
}

/// `xmp` without what announces a gain map (the `hdrgm:Version` attribute and the GContainer
/// directory), for an output that does not carry the map; `None` when it announces none.
pub fn without_announcement(xmp: &[u8]) -> Option<Vec<u8>> {
    let v = search(xmp, b"hdrgm:Version=\"", 0)?;
    let end = search(xmp, b"\"", v + b"hdrgm:Version=\"".len())? + 1;
    // The attribute and the whitespace before it.
    let start = v - xmp[..v]
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    let mut out = [&xmp[..start], &xmp[end..]].concat();
    if let Some(a) = search(&out, b"<Container:Directory", 0) {
        let close = b"</Container:Directory>";
        if let Some(b) = search(&out, close, a) {
            out.drain(a..b + close.len());
        }
    }
    Some(out)
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    search(hay, needle, 0).is_some()
}

fn search(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// The marker segments before the first SOS: (marker, payload).
fn segments(jpeg: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    segment_offsets(jpeg).map(move |(m, at, len)| (m, &jpeg[at..at + len]))
}

/// The marker segments before the first SOS: (marker, payload offset, payload length).
/// Stops at anything malformed.
fn segment_offsets(jpeg: &[u8]) -> impl Iterator<Item = (u8, usize, usize)> + '_ {
    let mut at = if jpeg.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        jpeg.len()
    };
    std::iter::from_fn(move || loop {
        while jpeg.get(at) == Some(&0xFF) && jpeg.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if jpeg.get(at) != Some(&0xFF) {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            at += 2;
            continue;
        }
        let len = u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]) as usize;
        if len < 2 || at + 2 + len > jpeg.len() {
            at = jpeg.len();
            return None;
        }
        let body = at + 4;
        at += 2 + len;
        return Some((marker, body, len - 2));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_length_is_rewritten() {
        let x = br#"<Container:Directory><rdf:Seq><rdf:li><Container:Item Item:Semantic="Primary" Item:Mime="image/jpeg"/></rdf:li><rdf:li><Container:Item Item:Semantic="GainMap" Item:Mime="image/jpeg" Item:Length="66171"/></rdf:li></rdf:Seq></Container:Directory>"#;
        let y = set_container_length(x, 812);
        assert_eq!(
            String::from_utf8(y).unwrap(),
            String::from_utf8_lossy(x).replace("66171", "812")
        );
        let e = b"<Container:Item><Item:Semantic>GainMap</Item:Semantic><Item:Length>9</Item:Length></Container:Item>";
        let y = set_container_length(e, 1234);
        assert!(String::from_utf8(y).unwrap().contains("<Item:Length>1234<"));
        assert_eq!(set_container_length(b"<x/>", 5), b"<x/>");
    }

    #[test]
    fn the_announcement_is_removed() {
        let x = br#"<rdf:Description xmlns:hdrgm="h" hdrgm:Version="1.0"><Container:Directory><rdf:Seq/></Container:Directory></rdf:Description>"#;
        assert_eq!(
            without_announcement(x).unwrap(),
            br#"<rdf:Description xmlns:hdrgm="h"></rdf:Description>"#
        );
        assert_eq!(without_announcement(b"<x/>"), None);
    }

    #[test]
    fn mpf_payload_reads_back() {
        let p = mpf_payload(1000, 200, 950);
        assert_eq!(p.len(), 86);
        let mut f = vec![0xFF, 0xD8, 0xFF, 0xE2, 0, 88];
        f.extend_from_slice(&p);
        let e = mpf::entries(&f).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].size, e[0].offset), (1000, 0));
        assert_eq!((e[1].size, e[1].offset), (200, 950 + 10));
    }

    #[test]
    fn segments_stop_at_bad_lengths() {
        assert_eq!(segments(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]).count(), 0);
        assert_eq!(segments(&[]).count(), 0);
    }
}
