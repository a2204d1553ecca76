//! TIFF loader over the tiff crate, one strip or one row of tiles at a time.
//!
//! The crate needs `Read + Seek`: seekable sources are read in place, unseekable ones are
//! read into memory first (up to the memory limit). Handled: grey (1..16 bit), grey+alpha,
//! RGB and RGBA at 8/16 bits, 32-bit float, chunky or planar. Not handled (clean errors):
//! palette, CMYK, YCbCr and JPEG-compressed files.

use std::io::{Cursor, Read, Seek};
use std::sync::Arc;

use ::tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use ::tiff::tags::Tag;
use ::tiff::{ColorType, TiffError};

use crate::codec::{check_limits, LoadOptions, Loaded};
use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, ImageStream, Metadata, SampleFormat, Samples, Strip};
use crate::io::Source;

/// `Read + Seek` as one object-safe trait.
trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

fn err(e: TiffError) -> Error {
    match e {
        TiffError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::decode("tiff", "file is truncated")
        }
        TiffError::IoError(e) => Error::Read(e),
        TiffError::UnsupportedError(e) => Error::Unsupported(format!("tiff: {e}")),
        other => Error::decode("tiff", other),
    }
}

/// What a pixel looks like in the file and in our output.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Samples per pixel in the file (= our bands).
    bands: u8,
    /// Bits per sample in the file.
    bits: u8,
    format: SampleFormat,
    planar: bool,
}

fn layout<R: Read + Seek>(dec: &mut Decoder<R>) -> Result<Layout> {
    let color = dec.colortype().map_err(err)?;
    let (bands, bits) = match color {
        ColorType::Gray(b) => (1, b),
        ColorType::GrayA(b) => (2, b),
        ColorType::Multiband {
            bit_depth,
            num_samples: 2,
        } => (2, bit_depth),
        ColorType::RGB(b) => (3, b),
        ColorType::RGBA(b) => (4, b),
        other => {
            return Err(Error::Unsupported(format!(
                "tiff colour type {other:?} (palette, CMYK, YCbCr, Lab and extra bands are not decoded)"
            )))
        }
    };
    // One value per sample; the crate has already checked they agree.
    let float = dec
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .map_err(err)?
        .and_then(|v| v.first().copied())
        .unwrap_or(1)
        == 3;
    let format = match (bits, float) {
        (1 | 2 | 4 | 8, false) => SampleFormat::U8,
        (16, false) => SampleFormat::U16,
        (32, true) => SampleFormat::F32,
        _ => {
            return Err(Error::Unsupported(format!(
                "tiff with {bits}-bit {} samples",
                if float { "float" } else { "integer" }
            )))
        }
    };
    if bits < 8 && bands != 1 {
        return Err(Error::Unsupported(format!(
            "tiff with {bits}-bit samples and {bands} bands"
        )));
    }
    let planar = dec
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(err)?
        == Some(2);
    Ok(Layout {
        bands,
        bits,
        format,
        planar: planar && bands > 1,
    })
}

fn open<R: Read + Seek>(src: R, page: u32, limit: usize) -> Result<(Decoder<R>, Header, Layout)> {
    let mut limits = Limits::default();
    limits.decoding_buffer_size = limit;
    limits.intermediate_buffer_size = limit;
    let mut dec = Decoder::new(src).map_err(err)?.with_limits(limits);
    if page > 0 {
        dec.seek_to_image(page as usize).map_err(|e| match e {
            TiffError::FormatError(_) | TiffError::UsageError(_) => {
                Error::decode("tiff", format!("no page {page}"))
            }
            e => err(e),
        })?;
    }
    let (width, height) = dec.dimensions().map_err(err)?;
    let lay = layout(&mut dec)?;
    let bytes = |dec: &mut Decoder<R>, tag: u16| -> Option<Arc<Vec<u8>>> {
        // Unreadable metadata should not cost the picture.
        dec.get_tag_u8_vec(Tag::Unknown(tag))
            .ok()
            .filter(|v| !v.is_empty())
            .map(Arc::new)
    };
    let icc = dec
        .get_tag_u8_vec(Tag::IccProfile)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Arc::new);
    let xmp = bytes(&mut dec, 700);
    let orientation = dec
        .find_tag_unsigned::<u16>(Tag::Orientation)
        .ok()
        .flatten()
        .filter(|o| (1..=8).contains(o))
        .map_or(1, |o| o as u8);
    let header = Header {
        width,
        height,
        bands: lay.bands,
        format: lay.format,
        bit_depth: lay.bits,
        meta: Metadata {
            orientation,
            icc,
            exif: None,
            xmp,
        },
    };
    Ok((dec, header, lay))
}

/// Reads the header (first IFD) only.
pub fn probe(src: &mut Source) -> Result<Header> {
    Ok(open(&mut *src, 0, 1 << 30)?.1)
}

/// Opens the pixel stream of page `opts.page`.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.decode();
    let reader: Box<dyn ReadSeek + 'a> = if src.is_seekable() {
        Box::new(src)
    } else {
        // TIFF data can sit anywhere in the file: without seeking, buffer it all.
        Box::new(Cursor::new(src.read_to_memory(opts.memory_limit)?))
    };
    let limit = usize::try_from(opts.memory_limit).unwrap_or(usize::MAX);
    let (dec, header, lay) = open(reader, opts.page, limit)?;
    check_limits(&header, opts.max_pixels)?;
    let (cw, ch) = dec.chunk_dimensions();
    if cw == 0 || ch == 0 {
        return Err(Error::decode("tiff", "zero-sized strips or tiles"));
    }
    let tiled = dec.get_chunk_type() == ChunkType::Tile;
    let across = if tiled { header.width.div_ceil(cw) } else { 1 };
    let down = header.height.div_ceil(ch);
    let per_plane = across
        .checked_mul(down)
        .ok_or_else(|| Error::decode("tiff", "too many chunks"))?;
    let stream: BoxStream<'a> = Box::new(TiffRows {
        dec,
        header,
        lay,
        chunk_w: cw,
        chunk_h: ch,
        across,
        per_plane,
        row: 0,
    });
    // TIFF pyramids are separate pages; no shrink here.
    Ok(Loaded { stream, shrink: 1 })
}

/// Strips, or rows of tiles, in order.
struct TiffRows<'a> {
    dec: Decoder<Box<dyn ReadSeek + 'a>>,
    header: Header,
    lay: Layout,
    chunk_w: u32,
    chunk_h: u32,
    across: u32,
    per_plane: u32,
    /// Index of the next strip / tile row.
    row: u32,
}

impl TiffRows<'_> {
    /// One chunk (one plane of it when planar) as samples, `w * h * bands_in_chunk` of them.
    fn chunk(&mut self, index: u32, w: u32, h: u32, bands: usize) -> Result<Samples> {
        let data = self.dec.read_chunk(index).map_err(err)?;
        let n = w as usize * h as usize * bands;
        let samples = match data {
            DecodingResult::U8(v) if self.lay.bits < 8 => unpack_bits(&v, w, h, self.lay.bits),
            DecodingResult::U8(v) => Samples::U8(v),
            DecodingResult::U16(v) => Samples::U16(v),
            DecodingResult::F32(v) => Samples::F32(v),
            _ => return Err(Error::Unsupported("tiff sample type".into())),
        };
        if samples.len() != n {
            return Err(Error::decode(
                "tiff",
                format!("chunk {index} has {} samples, expected {n}", samples.len()),
            ));
        }
        Ok(samples)
    }
}

/// Packed 1/2/4-bit grey rows (each padded to a byte) to 8-bit, scaled to 0..255.
fn unpack_bits(v: &[u8], w: u32, h: u32, bits: u8) -> Samples {
    let w = w as usize;
    let row_bytes = (w * bits as usize).div_ceil(8);
    let max = (1u16 << bits) - 1;
    let mut out = Vec::with_capacity(w * h as usize);
    for row in v.chunks_exact(row_bytes.max(1)).take(h as usize) {
        for x in 0..w {
            let bit = x * bits as usize;
            let byte = row[bit / 8];
            let shift = 8 - bits as usize - bit % 8;
            let s = (byte >> shift) as u16 & max;
            out.push((s * 255 / max) as u8);
        }
    }
    Samples::U8(out)
}

/// Copies `src` (a `w`-pixel-wide block of `sb` samples per pixel, band `sband` onwards)
/// into band `dband` of `dst` (`dw` wide, `db` per pixel) at column `x0`.
#[allow(clippy::too_many_arguments)]
fn place<T: Copy>(
    dst: &mut [T],
    dw: usize,
    db: usize,
    dband: usize,
    x0: usize,
    src: &[T],
    w: usize,
    h: usize,
    sb: usize,
) {
    for y in 0..h {
        let s = &src[y * w * sb..(y + 1) * w * sb];
        let d = &mut dst[(y * dw + x0) * db..(y * dw + x0 + w) * db];
        if sb == db {
            d.copy_from_slice(s);
        } else {
            for (dp, &sp) in d.chunks_exact_mut(db).zip(s.iter()) {
                dp[dband] = sp;
            }
        }
    }
}

impl ImageStream for TiffRows<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let (width, height) = (self.header.width, self.header.height);
        let y = self.row * self.chunk_h;
        if y >= height {
            return Ok(None);
        }
        let rows = self.chunk_h.min(height - y);
        let bands = self.lay.bands as usize;
        let planes = if self.lay.planar { bands } else { 1 };
        let per_chunk = bands / planes;
        let mut out = Samples::zeroed(self.header.format, width as usize * rows as usize * bands);
        for tx in 0..self.across {
            let x0 = tx * self.chunk_w;
            let w = self.chunk_w.min(width - x0);
            for p in 0..planes {
                let index = p as u32 * self.per_plane + self.row * self.across + tx;
                let chunk = self.chunk(index, w, rows, per_chunk)?;
                let (w, h, dw) = (w as usize, rows as usize, width as usize);
                match (&mut out, &chunk) {
                    (Samples::U8(d), Samples::U8(s)) => {
                        place(d, dw, bands, p, x0 as usize, s, w, h, per_chunk)
                    }
                    (Samples::U16(d), Samples::U16(s)) => {
                        place(d, dw, bands, p, x0 as usize, s, w, h, per_chunk)
                    }
                    (Samples::F32(d), Samples::F32(s)) => {
                        place(d, dw, bands, p, x0 as usize, s, w, h, per_chunk)
                    }
                    _ => {
                        return Err(Error::decode(
                            "tiff",
                            "chunk sample type differs from the header",
                        ))
                    }
                }
            }
        }
        let strip = Strip {
            y,
            height: rows,
            samples: out,
        };
        self.row += 1;
        Ok(Some(strip))
    }
}
