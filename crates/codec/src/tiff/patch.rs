//! Palette TIFFs (and RGB with an unspecified extra sample) through a crate that refuses or
//! misreads them.
//!
//! The tiff crate decodes every compression and chunk layout but rejects
//! `PhotometricInterpretation = RGBPalette`. Rather than re-implement strip and tile
//! decompression, the reader under the decoder overlays the IFD entry's value with
//! `BlackIsZero`: the crate then hands back palette indices as grey samples, which
//! [`Palette::expand`] maps through the `ColorMap`.

use std::io::{self, Read, Seek, SeekFrom};

use ::tiff::tags::{ByteOrder, IfdPointer};

use crate::error::{Error, Result};

/// `PhotometricInterpretation`.
const PHOTOMETRIC: u16 = 262;
/// `BlackIsZero`: what the palette entry is rewritten to.
const BLACK_IS_ZERO: u16 = 1;
/// `ExtraSamples`.
const EXTRA_SAMPLES: u16 = 338;
/// `ExtraSamples` value of unassociated alpha: what an unspecified sample is rewritten to.
const UNASSOCIATED_ALPHA: u16 = 2;

/// A reader that replaces two bytes at a fixed file offset, wherever reads land.
pub struct Patched<R> {
    inner: R,
    pos: u64,
    patch: Option<(u64, [u8; 2])>,
}

impl<R: Read + Seek> Patched<R> {
    /// Wraps `inner` (at offset 0) without any patch.
    pub fn new(inner: R) -> Self {
        Patched {
            inner,
            pos: 0,
            patch: None,
        }
    }

    /// Removes the patch (before another page is parsed).
    pub fn clear_patch(&mut self) {
        self.patch = None;
    }

    /// Finds the `PhotometricInterpretation` entry of the IFD at `ifd` and makes it read as
    /// `BlackIsZero`.
    pub fn rewrite_photometric(&mut self, ifd: IfdPointer, order: ByteOrder) -> Result<()> {
        self.rewrite_entry(ifd, order, PHOTOMETRIC, BLACK_IS_ZERO)
    }

    /// Makes a single *unspecified* extra sample read as unassociated alpha: the crate would
    /// otherwise decode an RGB/CMYK image with one such sample as if it had none, with the
    /// wrong stride, where libvips reads the sample as alpha.
    pub fn rewrite_extra_sample(&mut self, ifd: IfdPointer, order: ByteOrder) -> Result<()> {
        self.rewrite_entry(ifd, order, EXTRA_SAMPLES, UNASSOCIATED_ALPHA)
    }

    /// Makes the first value of the IFD entry `tag` (a SHORT held in the entry) read as
    /// `value`.
    fn rewrite_entry(
        &mut self,
        ifd: IfdPointer,
        order: ByteOrder,
        tag: u16,
        value: u16,
    ) -> Result<()> {
        let back = self.pos;
        let found = self.find_entry_value(ifd.0, order, tag);
        self.inner
            .seek(SeekFrom::Start(back))
            .map_err(Error::Read)?;
        self.pos = back;
        let at = found
            .map_err(Error::Read)?
            .ok_or_else(|| Error::decode("tiff", format!("no entry for tag {tag}")))?;
        let bytes = match order {
            ByteOrder::LittleEndian => value.to_le_bytes(),
            ByteOrder::BigEndian => value.to_be_bytes(),
        };
        self.patch = Some((at, bytes));
        Ok(())
    }

    /// The file offset of `tag`'s inline value in the IFD at `ifd` (classic or BigTIFF).
    fn find_entry_value(
        &mut self,
        ifd: u64,
        order: ByteOrder,
        tag: u16,
    ) -> io::Result<Option<u64>> {
        let u16_of = |b: [u8; 2]| match order {
            ByteOrder::LittleEndian => u16::from_le_bytes(b),
            ByteOrder::BigEndian => u16::from_be_bytes(b),
        };
        let mut magic = [0u8; 4];
        self.inner.seek(SeekFrom::Start(0))?;
        self.inner.read_exact(&mut magic)?;
        let big = u16_of([magic[2], magic[3]]) == 43;
        self.inner.seek(SeekFrom::Start(ifd))?;
        let (count, entry_len, value_at) = if big {
            let mut c = [0u8; 8];
            self.inner.read_exact(&mut c)?;
            let n = match order {
                ByteOrder::LittleEndian => u64::from_le_bytes(c),
                ByteOrder::BigEndian => u64::from_be_bytes(c),
            };
            (n, 20u64, 12u64)
        } else {
            let mut c = [0u8; 2];
            self.inner.read_exact(&mut c)?;
            (u64::from(u16_of(c)), 12, 8)
        };
        let first = ifd + if big { 8 } else { 2 };
        // The crate has already parsed this IFD, so the count is sane; cap it anyway.
        for i in 0..count.min(4096) {
            let at = first + i * entry_len;
            let mut t = [0u8; 2];
            self.inner.seek(SeekFrom::Start(at))?;
            self.inner.read_exact(&mut t)?;
            if u16_of(t) == tag {
                return Ok(Some(at + value_at));
            }
        }
        Ok(None)
    }
}

impl<R: Read> Read for Patched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some((at, bytes)) = self.patch {
            for (i, b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= self.pos && p < self.pos + n as u64 {
                    buf[(p - self.pos) as usize] = *b;
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Patched<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

/// A TIFF `ColorMap` reduced to 8-bit RGB entries.
#[derive(Debug, Clone)]
pub struct Palette {
    rgb: Vec<[u8; 3]>,
}

impl Palette {
    /// Builds the palette from the tag's values: all reds, then greens, then blues (16-bit).
    pub fn from_colormap(map: &[u16], bits: u8) -> Result<Self> {
        let n = 1usize << bits;
        if map.len() != 3 * n {
            return Err(Error::decode(
                "tiff",
                format!(
                    "ColorMap has {} values, {bits}-bit palette needs {}",
                    map.len(),
                    3 * n
                ),
            ));
        }
        let to8 = |v: u16| ((u32::from(v) * 255 + 32767) / 65535) as u8;
        let rgb = (0..n)
            .map(|i| [to8(map[i]), to8(map[n + i]), to8(map[2 * n + i])])
            .collect();
        Ok(Palette { rgb })
    }

    /// Maps indices to interleaved RGB.
    pub fn expand(&self, indices: &[u8]) -> Result<Vec<u8>> {
        let mut out = crate::alloc::with_capacity(indices.len() * 3, "palette colours")?;
        for &i in indices {
            // Indices past a short palette cannot happen: the table has 2^bits entries.
            out.extend_from_slice(&self.rgb[i as usize]);
        }
        Ok(out)
    }
}
