//! TIFF saver over the tiff crate's encoder.
//!
//! The encoder needs `Write + Seek` (offsets are patched into the IFD), and a target never
//! seeks, so the file is assembled in memory, then written out. Uncompressed files are built
//! strip by strip as rows arrive; compressed ones are handed to the crate whole, because its
//! per-strip call does not compress (only `write_data` switches the compressor on).

use std::borrow::Cow;
use std::io::{self, Seek, SeekFrom, Write};

use ::tiff::encoder::colortype::{self, ColorType};
use ::tiff::encoder::{Compression, DeflateLevel, TiffEncoder, TiffValue};
use ::tiff::tags::{Predictor, Tag, Type};
use ::tiff::TiffError;

use crate::error::{Error, Result};
use crate::image::{BoxStream, SampleFormat, Samples};
use crate::io::Target;
use crate::{SaveOption, SaveOptions};

/// Rows per TIFF strip: small enough for readers that fetch strips, large enough to compress.
const ROWS_PER_STRIP: u32 = 64;

fn encode_err(e: TiffError) -> Error {
    match e {
        TiffError::IoError(e) => Error::Write(e),
        other => Error::encode("tiff", other),
    }
}

/// Bytes written with TIFF type UNDEFINED, as the ICC tag requires.
struct Undefined<'a>(&'a [u8]);

impl TiffValue for Undefined<'_> {
    const BYTE_LEN: u8 = 1;
    const FIELD_TYPE: Type = Type::UNDEFINED;

    fn count(&self) -> usize {
        self.0.len()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.0)
    }
}

/// Encodes the stream as a TIFF: 8 or 16 bits per sample as they come,
/// grey or RGB, alpha as an unassociated extra sample.
pub fn save(stream: BoxStream, opts: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let header = stream.header().clone();
    let wide = header.format != SampleFormat::U8;
    let mut file = InMemory::default();
    let compression = if opts.flag(&LZW) {
        Compression::Lzw
    } else if opts.flag(&DEFLATE) {
        Compression::Deflate(DeflateLevel::Balanced)
    } else {
        Compression::Uncompressed
    };
    let mut enc = TiffEncoder::new(&mut file)
        .map_err(encode_err)?
        .with_compression(compression);
    if compression != Compression::Uncompressed && !header.has_alpha() {
        // What libvips does for LZW and Deflate: it shrinks typical photos by a third.
        // Not with alpha: the crate differences samples with the colour type's stride,
        // ignoring extra samples, and would write garbage.
        enc = enc.with_predictor(Predictor::Horizontal);
    }
    let mut strips = stream;
    match (header.bands, wide) {
        (1 | 2, false) => write::<colortype::Gray8, u8>(&mut enc, &mut strips, opts, to_u8)?,
        (1 | 2, true) => write::<colortype::Gray16, u16>(&mut enc, &mut strips, opts, to_u16)?,
        (3 | 4, false) => write::<colortype::RGB8, u8>(&mut enc, &mut strips, opts, to_u8)?,
        (3 | 4, true) => write::<colortype::RGB16, u16>(&mut enc, &mut strips, opts, to_u16)?,
        (b, _) => return Err(Error::encode("tiff", format!("{b} bands"))),
    }
    let mut bytes = file.buf;
    if compression == Compression::Uncompressed {
        // The crate always writes Predictor = 1; libtiff only knows the tag when a codec that
        // uses it is active, so every reader of an uncompressed file (libvips, ImageMagick)
        // warned "Unknown field with tag 317".
        drop_entry(&mut bytes, PREDICTOR_TAG);
    }
    target.write_all(&bytes).map_err(Error::Write)?;
    target.finish().map_err(Error::Write)
}

/// A growing in-memory file for the encoder (`Write + Seek`, like `Cursor<Vec<u8>>`), whose
/// growth is fallible: a file too large for memory is a write error, not an abort.
#[derive(Default)]
struct InMemory {
    buf: Vec<u8>,
    pos: usize,
}

impl Write for InMemory {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let end = self
            .pos
            .checked_add(data.len())
            .ok_or(io::ErrorKind::OutOfMemory)?;
        if end > self.buf.len() {
            // Doubling, as Vec's own growth, so appends stay amortised O(1).
            let want = end.max(self.buf.len().saturating_mul(2)) - self.buf.len();
            if self.buf.try_reserve(want).is_err() {
                self.buf
                    .try_reserve_exact(end - self.buf.len())
                    .map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::OutOfMemory,
                            format!("out of memory: a TIFF file of {end} bytes"),
                        )
                    })?;
            }
            self.buf.resize(end, 0);
        }
        self.buf[self.pos..end].copy_from_slice(data);
        self.pos = end;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for InMemory {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => (self.buf.len() as u64).checked_add_signed(d),
            SeekFrom::Current(d) => (self.pos as u64).checked_add_signed(d),
        };
        let n = base
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        self.pos = n;
        Ok(n as u64)
    }
}

/// TIFF tag number of Predictor.
const PREDICTOR_TAG: u16 = 317;

/// Removes the entry `tag` from the first IFD of a classic TIFF in place: the later entries
/// and the next-IFD offset move up by 12 bytes, leaving 12 unreferenced bytes behind. A file
/// without the entry, or not laid out as expected, is left as it is.
fn drop_entry(file: &mut [u8], tag: u16) {
    let little = match file.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return,
    };
    let u16_at = |f: &[u8], at: usize| -> Option<u16> {
        let b: [u8; 2] = f.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let Some(ifd) = file.get(4..8).map(|b| {
        let b: [u8; 4] = b.try_into().unwrap_or_default();
        (if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }) as usize
    }) else {
        return;
    };
    let Some(count) = u16_at(file, ifd) else {
        return;
    };
    let entries = ifd + 2;
    // The whole IFD, next-IFD offset included, must lie inside the file.
    let end = entries + 12 * count as usize + 4;
    if end > file.len() {
        return;
    }
    let Some(i) = (0..count as usize).find(|i| u16_at(file, entries + 12 * i) == Some(tag)) else {
        return;
    };
    let at = entries + 12 * i;
    file.copy_within(at + 12..end, at);
    let n = if little {
        (count - 1).to_le_bytes()
    } else {
        (count - 1).to_be_bytes()
    };
    file[ifd..ifd + 2].copy_from_slice(&n);
}

/// 8-bit samples (`codec::save` cast them already).
fn to_u8(s: &Samples) -> Result<Vec<u8>> {
    match s {
        Samples::U8(v) => crate::alloc::collect(v.iter().copied(), "a TIFF strip"),
        _ => Err(Error::encode("tiff", "samples not cast to 8 bits")),
    }
}

/// 16-bit samples (`codec::save` cast them already).
fn to_u16(s: &Samples) -> Result<Vec<u16>> {
    match s {
        Samples::U16(v) => crate::alloc::collect(v.iter().copied(), "a TIFF strip"),
        _ => Err(Error::encode("tiff", "samples not cast to 16 bits")),
    }
}

fn write<C, T>(
    enc: &mut TiffEncoder<&mut InMemory>,
    strips: &mut BoxStream,
    opts: &SaveOptions,
    convert: fn(&Samples) -> Result<Vec<T>>,
) -> Result<()>
where
    C: ColorType<Inner = T>,
    [T]: TiffValue,
{
    let h = strips.header().clone();
    let compressed = opts.flag(&LZW) || opts.flag(&DEFLATE);
    let mut image = enc.new_image::<C>(h.width, h.height).map_err(encode_err)?;
    image.rows_per_strip(ROWS_PER_STRIP).map_err(encode_err)?;
    if h.bands == 2 || h.bands == 4 {
        image
            .extra_samples(&[::tiff::tags::ExtraSamples::UnassociatedAlpha])
            .map_err(encode_err)?;
    }
    let meta = &h.meta;
    if meta.orientation != 1 {
        // Only with noautorotate: the pixels are still stored sideways.
        image
            .encoder()
            .write_tag(Tag::Orientation, u16::from(meta.orientation))
            .map_err(encode_err)?;
    }
    if !opts.strip {
        if let Some(icc) = &meta.icc {
            image
                .encoder()
                .write_tag(Tag::IccProfile, Undefined(icc))
                .map_err(encode_err)?;
        }
        if let Some(xmp) = &meta.xmp {
            image
                .encoder()
                .write_tag(Tag::Unknown(700), &xmp[..])
                .map_err(encode_err)?;
        }
    }
    let row = h.row_samples();
    let mut rows: Vec<T> = Vec::new();
    let (mut y, mut received) = (0u32, 0u32);
    if compressed {
        let mut all = crate::alloc::with_capacity(
            crate::alloc::len(&[row, h.height as usize], "the TIFF image")?,
            "the TIFF image",
        )?;
        while let Some(strip) = strips.next_strip()? {
            if strip.y != received || strip.samples.len() != row * strip.height as usize {
                return Err(Error::encode("tiff", "strips out of order"));
            }
            received += strip.height;
            all.extend(convert(&strip.samples)?);
        }
        if received != h.height {
            return Err(Error::encode(
                "tiff",
                format!("stream ended at row {received}"),
            ));
        }
        return image.write_data(&all).map_err(encode_err);
    }
    while y < h.height {
        let want = ROWS_PER_STRIP.min(h.height - y);
        let take = want as usize * row;
        while rows.len() < take {
            let strip = strips
                .next_strip()?
                .ok_or_else(|| Error::encode("tiff", format!("stream ended at row {received}")))?;
            if strip.y != received || strip.samples.len() != row * strip.height as usize {
                return Err(Error::encode("tiff", "strips out of order"));
            }
            received += strip.height;
            crate::alloc::reserve(&mut rows, strip.samples.len(), "TIFF rows")?;
            rows.extend(convert(&strip.samples)?);
        }
        // Stream strips rarely align with TIFF strips: keep the overhang for the next one.
        let mut rest = crate::alloc::with_capacity(rows.len() - take, "TIFF rows")?;
        rest.extend(rows.drain(take..));
        image.write_strip(&rows).map_err(encode_err)?;
        rows = rest;
        y += want;
    }
    image.finish().map_err(encode_err)
}

/// `lzw`: LZW compression.
pub const LZW: SaveOption = SaveOption {
    token: "lzw",
    name: "LZW compression",
    range: None,
    default: None,
    without_format: false,
    conflicts: &["deflate"],
    help: "LZW compression",
};

/// `deflate`: Deflate compression.
pub const DEFLATE: SaveOption = SaveOption {
    token: "deflate",
    name: "Deflate compression",
    range: None,
    default: None,
    without_format: false,
    conflicts: &[],
    help: "Deflate compression",
};
