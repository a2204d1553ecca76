//! MCU decoding: DC differences for every block; AC codes skipped by the multi-code tables
//! where the component's reduced IDCT is 1x1, and decoded (the 25 coefficients a 2x2 IDCT
//! reads) where it is 2x2. Each MCU leaves a record of coefficients behind, in scan order.

use super::entropy::{extend, peek};
use super::huffman::{Huffman, Skip, SKIP_EOB, ZRL};
use super::markers::NATURAL;

/// Why an MCU could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// A bit pattern that is no Huffman code.
    Code,
    /// The data ended inside the MCU.
    Overrun,
}

/// The slot (0..25) in a 2x2 record of each natural coefficient position, 255 if unused:
/// libjpeg's `jpeg_idct_2x2` reads rows and columns 0, 1, 3, 5 and 7.
pub const SLOT: [u8; 64] = {
    let idx = [0u8, 1, 255, 2, 255, 3, 255, 4];
    let mut t = [255u8; 64];
    let mut i = 0;
    while i < 64 {
        let (r, c) = (idx[i / 8], idx[i % 8]);
        if r != 255 && c != 255 {
            t[i] = r * 5 + c;
        }
        i += 1;
    }
    t
};

/// Coefficients kept for a block with a 2x2 IDCT.
pub const FULL: usize = 25;

/// One block of the MCU.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// Frame component index.
    pub comp: usize,
    /// DC and AC table indices into [`Plan`]'s tables.
    pub dc: usize,
    /// AC table index.
    pub ac: usize,
    /// Keeps the coefficients of a 2x2 IDCT (else only the DC).
    pub full: bool,
    /// Offset of its coefficients in the MCU record.
    pub at: usize,
    /// Block column and row within the component's part of the MCU.
    pub bx: usize,
    /// Block row.
    pub by: usize,
}

/// The decoding recipe of one scan.
pub struct Plan {
    /// The MCU's blocks in order.
    pub blocks: Vec<Block>,
    /// i16 values per MCU record.
    pub rec_len: usize,
    /// Frame components (DC predictors).
    pub ncomp: usize,
    /// DC tables by selector.
    pub dc: Vec<Option<Huffman>>,
    /// AC tables by selector.
    pub ac: Vec<Option<Huffman>>,
    /// Skip tables of the AC tables.
    pub skip: Vec<Option<Skip>>,
}

/// A block with its tables looked up.
struct Ready<'a> {
    dc: &'a Huffman,
    ac: &'a Huffman,
    skip: &'a Skip,
    comp: usize,
    full: bool,
    at: usize,
}

/// A [`Plan`] with its tables looked up, for one thread's run.
pub struct Decoder<'a> {
    blocks: Vec<Ready<'a>>,
    /// i16 values per MCU record.
    pub rec_len: usize,
    ncomp: usize,
}

impl Plan {
    /// The decoder of this plan; `None` if a table it names is missing.
    pub fn decoder(&self) -> Option<Decoder<'_>> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                Some(Ready {
                    dc: self.dc.get(b.dc)?.as_ref()?,
                    ac: self.ac.get(b.ac)?.as_ref()?,
                    skip: self.skip.get(b.ac)?.as_ref()?,
                    comp: b.comp,
                    full: b.full,
                    at: b.at,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Decoder {
            blocks,
            rec_len: self.rec_len,
            ncomp: self.ncomp,
        })
    }
}

impl Decoder<'_> {
    /// Frame components (DC predictors).
    pub fn ncomp(&self) -> usize {
        self.ncomp
    }

    /// Decodes the MCU at bit `pos`, writing its record into `rec` (`rec_len` values) and
    /// updating the DC predictors; returns the bit position after it. The caller has
    /// checked that `pos` is within the data (one MCU cannot reach past the padding).
    #[inline(always)]
    pub fn mcu(
        &self,
        data: &[u8],
        mut pos: usize,
        rec: &mut [i16],
        preds: &mut [i32],
    ) -> Result<usize, Bad> {
        for b in &self.blocks {
            let bits = peek(data, pos);
            let e = b.dc.whole(bits);
            let diff = if e != 0 {
                pos += (e & 255) as usize;
                e >> 8
            } else {
                let (len, s) = b.dc.decode(bits).ok_or(Bad::Code)?;
                pos += len as usize;
                let s = s as u32;
                if s != 0 {
                    let v = extend(peek(data, pos) >> (32 - s), s);
                    pos += s as usize;
                    v
                } else {
                    0
                }
            };
            let Some(p) = preds.get_mut(b.comp) else {
                return Err(Bad::Code);
            };
            *p = p.wrapping_add(diff);
            if b.full {
                let Some(Ok(out)) = rec
                    .get_mut(b.at..b.at + FULL)
                    .map(<&mut [i16; FULL]>::try_from)
                else {
                    return Err(Bad::Code);
                };
                // A fixed-size store (a slice fill was a memset call per block).
                *out = [0; FULL];
                out[0] = *p as i16;
                pos = full_ac(b.ac, data, pos, out)?;
            } else {
                let Some(out) = rec.get_mut(b.at) else {
                    return Err(Bad::Code);
                };
                *out = *p as i16;
                pos = skip_ac(b.ac, b.skip, data, pos)?;
            }
        }
        Ok(pos)
    }
}

/// Skips the AC codes of one block, several per lookup where they fit in 12 bits.
#[inline(always)]
fn skip_ac(ac: &Huffman, skip: &Skip, data: &[u8], mut pos: usize) -> Result<usize, Bad> {
    let mut k = 1u32;
    while k < 64 {
        let bits = peek(data, pos);
        let e = skip.get(bits);
        let adv = ((e >> 4) & 0x7F) as u32;
        if e & 15 != 0 && k + adv <= 64 {
            pos += (e & 15) as usize;
            if e & SKIP_EOB != 0 {
                break;
            }
            k += adv;
            continue;
        }
        // The run would cross the end of the block, or the next code is long.
        let (len, sym) = ac.decode(bits).ok_or(Bad::Code)?;
        let (r, s) = ((sym >> 4) as u32, (sym & 15) as usize);
        pos += len as usize + s;
        if s != 0 {
            k += r + 1;
        } else if r == 15 {
            k += 16;
        } else {
            break;
        }
    }
    Ok(pos)
}

/// Decodes the AC coefficients of one block, keeping those a 2x2 IDCT reads. A run past
/// position 63 stores at 63, as libjpeg's padded natural-order table does.
#[inline(always)]
fn full_ac(ac: &Huffman, data: &[u8], mut pos: usize, out: &mut [i16]) -> Result<usize, Bad> {
    let mut k = 1usize;
    while k < 64 {
        let bits = peek(data, pos);
        let e = ac.whole(bits);
        if e != 0 {
            pos += (e & 63) as usize;
            match (e >> 6) & 3 {
                0 => {
                    k += ((e >> 8) & 15) as usize;
                    let slot = SLOT[NATURAL[k] as usize];
                    if let Some(o) = out.get_mut(slot as usize) {
                        *o = (e >> 16) as i16;
                    }
                    k += 1;
                }
                ZRL => k += 16,
                _ => break,
            }
            continue;
        }
        let (len, sym) = ac.decode(bits).ok_or(Bad::Code)?;
        pos += len as usize;
        let (r, s) = ((sym >> 4) as usize, (sym & 15) as u32);
        if s != 0 {
            k += r;
            let v = extend(peek(data, pos) >> (32 - s), s);
            pos += s as usize;
            let slot = SLOT[NATURAL[k] as usize];
            if let Some(o) = out.get_mut(slot as usize) {
                *o = v as i16;
            }
            k += 1;
        } else if r == 15 {
            k += 16;
        } else {
            break;
        }
    }
    Ok(pos)
}

/// Decodes `out.len() / rec_len` MCUs of one interval from bit `pos`, the data ending at
/// bit `end`; returns the position after the last.
pub fn run(
    dec: &Decoder,
    data: &[u8],
    mut pos: usize,
    end: usize,
    out: &mut [i16],
    preds: &mut [i32],
) -> Result<usize, Bad> {
    for rec in out.chunks_exact_mut(dec.rec_len) {
        if pos > end {
            return Err(Bad::Overrun);
        }
        pos = dec.mcu(data, pos, rec, preds)?;
    }
    if pos > end {
        return Err(Bad::Overrun);
    }
    Ok(pos)
}
