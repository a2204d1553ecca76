//! Huffman decoding tables: a 12-bit lookup for one symbol, libjpeg's canonical slow path for
//! longer codes, and for blocks whose AC values are never used a table that skips a run of
//! several whole AC codes (code and extra bits) in one lookup.

use super::entropy::extend;
use super::markers::HuffSpec;

/// [`Huffman::whole`] kind of a run of 16 zeros.
pub const ZRL: i32 = 1;
/// [`Huffman::whole`] kind of an end of block.
pub const EOB: i32 = 2;

/// Bits looked up at once.
pub const LOOKUP: u32 = 12;

/// A table that cannot be decoded with (libjpeg refuses it too).
#[derive(Debug)]
pub struct BadTable;

/// One DC or AC table.
pub struct Huffman {
    /// By the next 12 bits: `length << 8 | symbol`; 0 for a longer (or invalid) code.
    fast: Box<[u16; 1 << LOOKUP]>,
    /// By the next 12 bits, where a code and its extra bits fit in them: for a DC table
    /// `difference << 8 | bits`; for an AC table `value << 16 | run << 8 | kind << 6 | bits`
    /// (kind: 0 a coefficient, [`ZRL`], [`EOB`]). 0: decode the slow way.
    pub whole: Box<[i32; 1 << LOOKUP]>,
    /// libjpeg's `maxcode` by length (-1: no code of that length).
    maxcode: [i32; 17],
    /// libjpeg's `valoffset` by length.
    valoffset: [i32; 17],
    /// Symbols in code order, padded to 256.
    symbols: [u8; 256],
}

impl Huffman {
    /// Builds the tables as libjpeg's `jpeg_make_d_derived_tbl` does, refusing what it
    /// refuses (too many symbols, overfull code lengths, DC symbols above 15).
    pub fn new(spec: &HuffSpec, dc: bool) -> Result<Self, BadTable> {
        let mut sizes = Vec::with_capacity(256);
        for (l, &n) in spec.counts.iter().enumerate() {
            sizes.extend(std::iter::repeat_n(l as u32 + 1, n as usize));
        }
        if sizes.len() > 256 || sizes.len() > spec.symbols.len() {
            return Err(BadTable);
        }
        if dc && spec.symbols[..sizes.len()].iter().any(|&s| s > 15) {
            return Err(BadTable);
        }
        let mut codes = Vec::with_capacity(sizes.len());
        let mut code = 0u32;
        let mut si = sizes.first().copied().unwrap_or(1);
        let mut p = 0;
        while p < sizes.len() {
            while p < sizes.len() && sizes[p] == si {
                codes.push(code);
                code += 1;
                p += 1;
            }
            if code >= 1 << si {
                return Err(BadTable);
            }
            code <<= 1;
            si += 1;
        }
        let mut t = Huffman {
            fast: Box::new([0; 1 << LOOKUP]),
            whole: Box::new([0; 1 << LOOKUP]),
            maxcode: [-1; 17],
            valoffset: [0; 17],
            symbols: [0; 256],
        };
        t.symbols[..sizes.len()].copy_from_slice(&spec.symbols[..sizes.len()]);
        let mut p = 0usize;
        for l in 1..=16 {
            let n = spec.counts[l - 1] as usize;
            if n > 0 {
                t.valoffset[l] = p as i32 - codes[p] as i32;
                p += n;
                t.maxcode[l] = codes[p - 1] as i32;
            }
        }
        for (i, (&len, &code)) in sizes.iter().zip(&codes).enumerate() {
            if len <= LOOKUP {
                let shift = LOOKUP - len;
                let first = (code << shift) as usize;
                let entry = (len as u16) << 8 | spec.symbols[i] as u16;
                t.fast[first..first + (1 << shift)].fill(entry);
            }
        }
        for w in 0..1usize << LOOKUP {
            let e = t.fast[w];
            let (len, sym) = ((e >> 8) as u32, (e & 255) as u32);
            let (r, s) = if dc { (0, sym) } else { (sym >> 4, sym & 15) };
            if e == 0 || len + s > LOOKUP {
                continue;
            }
            let n = len + s;
            let value = if s == 0 {
                0
            } else {
                extend(((w >> (LOOKUP - n)) & ((1 << s) - 1)) as u32, s)
            };
            t.whole[w] = if dc {
                value << 8 | n as i32
            } else {
                let kind = match (s, r) {
                    (0, 15) => ZRL,
                    (0, _) => EOB,
                    _ => 0,
                };
                value << 16 | (r as i32) << 8 | kind << 6 | n as i32
            };
        }
        Ok(t)
    }

    /// The [`Huffman::whole`] entry for the next 32 bits.
    #[inline(always)]
    pub fn whole(&self, bits: u32) -> i32 {
        self.whole[(bits >> (32 - LOOKUP)) as usize]
    }

    /// Decodes one symbol from `bits` (the next 32 bits, first bit highest): its code
    /// length and the symbol, or `None` for a bit pattern that is no code.
    #[inline(always)]
    pub fn decode(&self, bits: u32) -> Option<(u32, u8)> {
        let e = self.fast[(bits >> (32 - LOOKUP)) as usize];
        if e != 0 {
            return Some(((e >> 8) as u32, e as u8));
        }
        self.slow(bits)
    }

    /// Codes longer than the lookup (libjpeg's `jpeg_huff_decode`, from length 13: a shorter
    /// code would have been in the lookup table).
    #[cold]
    fn slow(&self, bits: u32) -> Option<(u32, u8)> {
        for l in LOOKUP as usize + 1..=16 {
            let code = (bits >> (32 - l)) as i32;
            if code <= self.maxcode[l] {
                let i = (code + self.valoffset[l]) as usize;
                return Some((l as u32, *self.symbols.get(i)?));
            }
        }
        None
    }
}

/// An entry's flag: the run ends with an end-of-block code.
pub const SKIP_EOB: u16 = 0x8000;

/// AC codes skipped per 12-bit lookup, for blocks where only the DC coefficient is used.
/// Entry: bits consumed (low 4 bits; 0: decode one code the slow way), coefficient positions
/// advanced (bits 4..11; an end-of-block counts one, so that `k + advance <= 64` says the whole
/// run belongs to this block), and [`SKIP_EOB`].
pub struct Skip {
    table: Box<[u16; 1 << LOOKUP]>,
}

impl Skip {
    /// Builds the skip table of an AC table.
    pub fn new(ac: &Huffman) -> Self {
        let mut table = Box::new([0u16; 1 << LOOKUP]);
        for (w, entry) in table.iter_mut().enumerate() {
            let (mut pos, mut adv, mut eob) = (0u32, 0u32, false);
            while pos < LOOKUP {
                let rem = LOOKUP - pos;
                let e = ac.fast[(w << pos) & ((1 << LOOKUP) - 1)];
                let len = (e >> 8) as u32;
                if e == 0 || len > rem {
                    break;
                }
                let (r, s) = ((e as u8 >> 4) as u32, (e & 15) as u32);
                if s == 0 && r != 15 {
                    // End of block (libjpeg takes any r other than 15 with s = 0 as one).
                    if adv + 1 > 64 {
                        break;
                    }
                    pos += len;
                    adv += 1;
                    eob = true;
                    break;
                }
                let step = if s == 0 { 16 } else { r + 1 };
                if len + s > rem || adv + step > 64 {
                    break;
                }
                pos += len + s;
                adv += step;
            }
            if pos > 0 {
                *entry = pos as u16 | (adv as u16) << 4 | if eob { SKIP_EOB } else { 0 };
            }
        }
        Skip { table }
    }

    /// The entry for the next 32 bits.
    #[inline(always)]
    pub fn get(&self, bits: u32) -> u16 {
        self.table[(bits >> (32 - LOOKUP)) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of the typical shape: EOB "00" (2 bits), 0x01 "01", 0x02 "100", ZRL 0xF0
    /// "101", 0x11 "110", and one 14-bit code 0x0A after a run of ones.
    fn spec() -> HuffSpec {
        let mut counts = [0u8; 16];
        counts[1] = 2; // 00, 01
        counts[2] = 3; // 100, 101, 110
        counts[13] = 1; // 11100000000000
        HuffSpec {
            counts,
            symbols: vec![0x00, 0x01, 0x02, 0xF0, 0x11, 0x0A],
        }
    }

    /// Decodes `bits` (a string of 0/1, first bit first) code by code as libjpeg does,
    /// returning (bits consumed, positions advanced, ended by EOB) for the codes of one block.
    fn reference(t: &Huffman, bits: &str, mut k: u32) -> (u32, u32, bool) {
        let v: Vec<u8> = bits.bytes().map(|b| b - b'0').collect();
        let mut pos = 0usize;
        let start = k;
        let peek = |pos: usize| -> u32 {
            (0..32).fold(0u32, |a, i| a << 1 | *v.get(pos + i).unwrap_or(&0) as u32)
        };
        while k < 64 {
            let (len, sym) = t.decode(peek(pos)).unwrap();
            pos += len as usize;
            let (r, s) = ((sym >> 4) as u32, (sym & 15) as u32);
            if s != 0 {
                pos += s as usize;
                k += r + 1;
            } else if r == 15 {
                k += 16;
            } else {
                return (pos as u32, k - start, true);
            }
        }
        (pos as u32, k - start, false)
    }

    #[test]
    fn single_symbols_and_long_codes() {
        let t = Huffman::new(&spec(), false).unwrap();
        assert_eq!(t.decode(0b00 << 30), Some((2, 0x00)));
        assert_eq!(t.decode(0b110 << 29), Some((3, 0x11)));
        assert_eq!(t.decode(0b11_1000_0000_0000 << 18), Some((14, 0x0A)));
        // All ones is no code.
        assert_eq!(t.decode(u32::MAX), None);
    }

    /// Code and extra bits in one entry: "01" + "1" is 0x01 with value 1, "110" + "0" is
    /// run 1 of value -1, "00" the end of block, "101" a run of 16 zeros.
    #[test]
    fn whole_entries_carry_run_value_and_length() {
        let t = Huffman::new(&spec(), false).unwrap();
        assert_eq!(t.whole(0b011 << 29), 1 << 16 | 3);
        assert_eq!(t.whole(0b1100 << 28), -1 << 16 | 1 << 8 | 4);
        assert_eq!(t.whole(0b00 << 30), EOB << 6 | 2);
        assert_eq!(t.whole(0b101 << 29), 15 << 8 | ZRL << 6 | 3);
        assert_eq!(t.whole(u32::MAX), 0);
        let mut counts = [0u8; 16];
        counts[1] = 2;
        let dc = Huffman::new(
            &HuffSpec {
                counts,
                symbols: vec![0, 3],
            },
            true,
        )
        .unwrap();
        // "01" + "010": a difference of 3 bits, 0b010 = -5.
        assert_eq!(dc.whole(0b01010 << 27), -5 << 8 | 5);
        assert_eq!(dc.whole(0b00 << 30), 2);
    }

    #[test]
    fn overfull_and_bad_dc_tables_are_refused() {
        let mut counts = [0u8; 16];
        counts[0] = 2; // "0" and "1": the all-ones code, which libjpeg refuses
        let s = HuffSpec {
            counts,
            symbols: vec![0, 1],
        };
        assert!(Huffman::new(&s, false).is_err());
        let mut counts = [0u8; 16];
        counts[1] = 1;
        let s = HuffSpec {
            counts,
            symbols: vec![16],
        };
        assert!(Huffman::new(&s, true).is_err());
        assert!(Huffman::new(&s, false).is_ok());
    }

    /// Every multi-code entry consumes exactly what code-by-code decoding consumes for the
    /// same codes, and never runs past the end of a block.
    #[test]
    fn skip_entries_match_code_by_code_decoding() {
        let t = Huffman::new(&spec(), false).unwrap();
        let skip = Skip::new(&t);
        let mut multi = 0;
        for w in 0..1u32 << LOOKUP {
            let e = skip.get(w << 20);
            let (n, adv) = ((e & 15) as u32, ((e >> 4) & 0x7FF) as u32);
            if n == 0 {
                continue;
            }
            let eob = e & SKIP_EOB != 0;
            let bits: String = (0..n)
                .map(|i| if w >> (11 - i) & 1 == 1 { '1' } else { '0' })
                .collect();
            // Decoding just these n bits from a position where the whole run fits gives the
            // same length, advance and end.
            let k = 64 - adv;
            let (pos, got, ended) = reference(&t, &format!("{bits}{}", "0".repeat(64)), k);
            if eob {
                assert!(ended, "{bits}");
                assert_eq!((pos, got + 1), (n, adv), "{bits}");
            } else {
                assert_eq!(got, adv, "{bits}");
                // With k = 64 - adv the block ends after exactly this run.
                assert_eq!(pos, n, "{bits}");
            }
            if n > 5 {
                multi += 1;
            }
        }
        assert!(multi > 100, "few multi-code entries: {multi}");
        // "01 1" "01 0" "00": two one-valued coefficients then EOB, in 8 bits.
        let e = skip.get(0b0110_1000 << 24);
        assert_eq!((e & 15, (e >> 4) & 0x7FF, e & SKIP_EOB != 0), (8, 3, true));
    }
}
