//! The marker segments of a baseline JPEG held in memory, every length checked. Anything this
//! decoder does not handle (progressive or arithmetic coding, 12-bit samples, several scans,
//! DNL, damaged headers) makes [`parse`] answer `None`, and libjpeg decodes the file instead,
//! so header errors stay libjpeg's.

/// A natural-order index for each zigzag position, with 16 extra entries of 63 for runs past
/// the end of a block (as libjpeg's `jpeg_natural_order`, so corrupt runs land alike).
pub const NATURAL: [u8; 80] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63,
];

/// One component of the frame header.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    /// Horizontal sampling factor, 1..=4.
    pub h: usize,
    /// Vertical sampling factor, 1..=4.
    pub v: usize,
    /// Quantisation table selector.
    pub tq: usize,
}

/// A Huffman table as a DHT segment gives it.
#[derive(Debug, Clone)]
pub struct HuffSpec {
    /// Number of codes of each length 1..=16.
    pub counts: [u8; 16],
    /// Symbols in code order.
    pub symbols: Vec<u8>,
}

/// One component of the scan, in scan (MCU) order.
#[derive(Debug, Clone, Copy)]
pub struct ScanComponent {
    /// Index into the frame's components.
    pub comp: usize,
    /// DC table selector.
    pub td: usize,
    /// AC table selector.
    pub ta: usize,
}

/// What the decoder needs from the headers of a one-scan baseline file.
#[derive(Debug, Clone)]
pub struct Headers {
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Frame components in frame order (Y, Cb, Cr).
    pub comps: Vec<Component>,
    /// Quantisation tables in natural order.
    pub quant: [Option<[u16; 64]>; 4],
    /// DC Huffman tables.
    pub dc: [Option<HuffSpec>; 4],
    /// AC Huffman tables.
    pub ac: [Option<HuffSpec>; 4],
    /// MCUs per restart interval (0: none).
    pub restart: usize,
    /// The scan's components.
    pub scan: Vec<ScanComponent>,
    /// Offset of the entropy-coded data.
    pub data: usize,
}

/// A big-endian u16 at `i`, if there.
fn be16(b: &[u8], i: usize) -> Option<usize> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize)
}

/// Reads the headers up to the first scan; `None` when the file is not for this decoder.
pub fn parse(b: &[u8]) -> Option<Headers> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut h = Headers {
        width: 0,
        height: 0,
        comps: Vec::new(),
        quant: [None; 4],
        dc: Default::default(),
        ac: Default::default(),
        restart: 0,
        scan: Vec::new(),
        data: 0,
    };
    let mut ids = Vec::new();
    let mut i = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if *b.get(i)? != 0xFF {
            return None;
        }
        while *b.get(i + 1)? == 0xFF {
            i += 1;
        }
        let m = b[i + 1];
        if matches!(m, 0x01 | 0xD0..=0xD9) {
            return None;
        }
        let len = be16(b, i + 2)?;
        let body = b.get(i + 4..(i + 2).checked_add(len)?)?;
        if len < 2 {
            return None;
        }
        match m {
            0xC0 | 0xC1 => {
                if !h.comps.is_empty() || body.len() < 6 || body[0] != 8 {
                    return None;
                }
                h.height = be16(body, 1)?;
                h.width = be16(body, 3)?;
                let n = body[5] as usize;
                if h.height == 0 || h.width == 0 || !(n == 1 || n == 3) || body.len() != 6 + 3 * n {
                    return None;
                }
                for c in body[6..].chunks_exact(3) {
                    let (hs, vs, tq) = ((c[1] >> 4) as usize, (c[1] & 15) as usize, c[2] as usize);
                    if !(1..=4).contains(&hs) || !(1..=4).contains(&vs) || tq > 3 {
                        return None;
                    }
                    if ids.contains(&c[0]) {
                        return None;
                    }
                    ids.push(c[0]);
                    h.comps.push(Component { h: hs, v: vs, tq });
                }
            }
            // Other frame types: progressive, lossless, hierarchical, arithmetic.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xC4 => {
                let mut s = body;
                while !s.is_empty() {
                    let (tc, th) = (s[0] >> 4, (s[0] & 15) as usize);
                    let counts: [u8; 16] = s.get(1..17)?.try_into().ok()?;
                    let n: usize = counts.iter().map(|&c| c as usize).sum();
                    if tc > 1 || th > 3 || n > 256 {
                        return None;
                    }
                    let symbols = s.get(17..17 + n)?.to_vec();
                    let spec = Some(HuffSpec { counts, symbols });
                    if tc == 0 {
                        h.dc[th] = spec;
                    } else {
                        h.ac[th] = spec;
                    }
                    s = &s[17 + n..];
                }
            }
            0xDB => {
                let mut s = body;
                while !s.is_empty() {
                    let (pq, tq) = (s[0] >> 4, (s[0] & 15) as usize);
                    if pq > 1 || tq > 3 {
                        return None;
                    }
                    let size = if pq == 0 { 64 } else { 128 };
                    let vals = s.get(1..1 + size)?;
                    let mut t = [0u16; 64];
                    for k in 0..64 {
                        t[NATURAL[k] as usize] = if pq == 0 {
                            vals[k] as u16
                        } else {
                            u16::from_be_bytes([vals[2 * k], vals[2 * k + 1]])
                        };
                    }
                    h.quant[tq] = Some(t);
                    s = &s[1 + size..];
                }
            }
            0xDD => h.restart = be16(body, 0)?,
            0xDA => {
                let n = *body.first()? as usize;
                if h.comps.is_empty() || n != h.comps.len() || body.len() != 4 + 2 * n {
                    return None;
                }
                for c in body[1..1 + 2 * n].chunks_exact(2) {
                    let comp = ids.iter().position(|&id| id == c[0])?;
                    let (td, ta) = ((c[1] >> 4) as usize, (c[1] & 15) as usize);
                    if td > 3 || ta > 3 || h.scan.iter().any(|s| s.comp == comp) {
                        return None;
                    }
                    h.dc[td].as_ref()?;
                    h.ac[ta].as_ref()?;
                    h.quant[h.comps[comp].tq].as_ref()?;
                    h.scan.push(ScanComponent { comp, td, ta });
                }
                let tail = &body[1 + 2 * n..];
                if tail != [0, 63, 0] {
                    return None;
                }
                h.data = i + 2 + len;
                return Some(h);
            }
            _ => {}
        }
        i += 2 + len;
    }
}
