//! TIFF loader over the tiff crate, one strip or one row of tiles at a time.
//!
//! The crate needs `Read + Seek`: seekable sources are read in place, unseekable ones are
//! read into memory first (up to the memory limit). Handled: grey (1..16 bit), grey+alpha,
//! RGB and RGBA at 8/16 bits, 32-bit float, chunky or planar; palette (expanded to RGB, see
//! [`patch`]), 8-bit CMYK (naive conversion, as ImageMagick does without a profile) and
//! YCbCr (unsubsampled, or any subsampling inside JPEG-compressed chunks, see [`jpeg_chunks`]).
//! CCITT Group 3 (1-D) strips are decoded with the `fax` crate ([`fax3`]).
//! Not handled (clean errors): old-style JPEG, 2-D Group 3, Lab.

mod fax3;
mod jpeg_chunks;
mod patch;
mod raw;
pub mod save;

use fax3::Fax3Chunks;
use jpeg_chunks::JpegChunks;
use patch::{Palette, Patched};

use std::borrow::Cow;

use crate::cmyk::{naive_to_rgb, InkProfile};

use std::io::{Cursor, Read, Seek};
use std::sync::Arc;

use ::tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use ::tiff::tags::Tag;
use ::tiff::{ColorType, TiffError};

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, ImageStream, Metadata, SampleFormat, Samples, Strip};
use crate::io::Source;
use crate::{check_limits, About, Codec, LoadOptions, Loaded, Saver, SaverLimits};

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

/// How file samples become our pixels.
#[derive(Debug, Clone)]
enum Colour {
    /// Grey, grey+alpha, RGB, RGBA: samples are pixels.
    Direct,
    /// Palette indices (decoded as grey, see [`patch`]) to RGB.
    Palette(Arc<Palette>),
    /// CMYK (0 = no ink), an optional alpha after it; through the file's CMYK profile when
    /// it has one (set once the header is read).
    Cmyk(Option<InkProfile>),
    /// YCbCr without subsampling (JFIF coefficients).
    YCbCr,
}

/// What a pixel looks like in the file and in our output.
#[derive(Debug, Clone)]
struct Layout {
    /// Samples per pixel in the file.
    bands: u8,
    /// Bands of our output.
    out_bands: u8,
    /// Bits per sample in the file.
    bits: u8,
    format: SampleFormat,
    planar: bool,
    colour: Colour,
    /// Chunks are JPEG streams.
    jpeg: bool,
    /// The alpha band is associated (ExtraSamples = 1): colour samples are premultiplied
    /// and are divided by alpha on the way out, as libvips and ImageMagick do.
    associated: bool,
}

fn layout<R: Read + Seek>(dec: &mut Decoder<R>, palette: Option<Arc<Palette>>) -> Result<Layout> {
    let color = dec.colortype().map_err(err)?;
    let jpeg = dec
        .find_tag_unsigned::<u16>(Tag::Compression)
        .map_err(err)?
        == Some(jpeg_chunks::JPEG);
    let (bands, bits, colour) = match (color, palette) {
        (ColorType::Gray(b), Some(p)) => (1, b, Colour::Palette(p)),
        (ColorType::Gray(b), None) => (1, b, Colour::Direct),
        (ColorType::GrayA(b), _) => (2, b, Colour::Direct),
        (
            ColorType::Multiband {
                bit_depth,
                num_samples: 2,
            },
            _,
        ) => (2, bit_depth, Colour::Direct),
        (ColorType::RGB(b), _) => (3, b, Colour::Direct),
        (ColorType::RGBA(b), _) => (4, b, Colour::Direct),
        (ColorType::CMYK(8), _) => (4, 8, Colour::Cmyk(None)),
        (ColorType::CMYKA(8), _) => (5, 8, Colour::Cmyk(None)),
        // Our JPEG decoder converts YCbCr itself.
        (ColorType::YCbCr(8), _) if jpeg => (3, 8, Colour::Direct),
        (ColorType::YCbCr(8), _) => (3, 8, Colour::YCbCr),
        (other, _) => {
            return Err(Error::Unsupported(format!(
            "tiff colour type {other:?} (Lab, extra bands and 16-bit CMYK/YCbCr are not decoded)"
        )))
        }
    };
    // Samples the colour type does not explain (extra samples other than the one alpha) are
    // refused, never decoded with the wrong stride.
    let samples = dec
        .find_tag_unsigned::<u16>(Tag::SamplesPerPixel)
        .map_err(err)?
        .unwrap_or(1);
    if u16::from(bands) != samples && !matches!(colour, Colour::Palette(_)) {
        return Err(Error::Unsupported(format!(
            "tiff with {samples} samples per pixel for {bands} bands"
        )));
    }
    let out_bands = match colour {
        Colour::Direct | Colour::YCbCr => bands,
        Colour::Palette(_) => 3,
        Colour::Cmyk(_) => bands - 1,
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
    if !matches!(colour, Colour::Direct) && format != SampleFormat::U8 {
        return Err(Error::Unsupported(format!(
            "tiff palette/CMYK/YCbCr with {bits}-bit samples"
        )));
    }
    let planar = dec
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(err)?
        == Some(2);
    // ExtraSamples: 1 = associated alpha, 2 = unassociated, 0 = unspecified (taken as
    // unassociated, as libvips does).
    let associated = matches!(colour, Colour::Direct)
        && matches!(out_bands, 2 | 4)
        && dec
            .find_tag_unsigned_vec::<u16>(Tag::ExtraSamples)
            .ok()
            .flatten()
            .and_then(|v| v.first().copied())
            == Some(1);
    Ok(Layout {
        bands,
        out_bands,
        bits,
        format,
        planar: planar && bands > 1,
        colour,
        jpeg,
        associated,
    })
}

/// `PhotometricInterpretation` value of palette images.
const RGB_PALETTE: u16 = 3;

/// The decoder over `src`, positioned on page `page`.
type TiffDecoder<R> = Decoder<Patched<R>>;

fn seek_page<R: Read + Seek>(dec: &mut TiffDecoder<R>, page: u32) -> Result<()> {
    dec.seek_to_image(page as usize).map_err(|e| match e {
        TiffError::FormatError(_) | TiffError::UsageError(_) => {
            Error::decode("tiff", format!("no page {page}"))
        }
        e => err(e),
    })
}

fn open<R: Read + Seek>(
    src: R,
    page: u32,
    limit: usize,
) -> Result<(TiffDecoder<R>, Header, Layout)> {
    let mut limits = Limits::default();
    limits.decoding_buffer_size = limit;
    limits.intermediate_buffer_size = limit;
    let mut dec = Decoder::new(Patched::new(src))
        .map_err(err)?
        .with_limits(limits);
    let (header, lay) = describe(&mut dec, page)?;
    Ok((dec, header, lay))
}

/// Makes `page` current and reads its header and sample layout.
fn describe<R: Read + Seek>(dec: &mut TiffDecoder<R>, page: u32) -> Result<(Header, Layout)> {
    dec.inner().clear_patch();
    // Also re-parses page 0 after another page was looked at.
    seek_page(dec, page)?;
    let mut palette = None;
    if dec
        .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
        .map_err(err)?
        == Some(RGB_PALETTE)
    {
        let bits = dec
            .find_tag_unsigned::<u8>(Tag::BitsPerSample)
            .map_err(err)?
            .unwrap_or(1);
        if !matches!(bits, 1 | 2 | 4 | 8) {
            return Err(Error::Unsupported(format!("tiff {bits}-bit palette")));
        }
        let map = dec.get_tag_u16_vec(Tag::ColorMap).map_err(err)?;
        palette = Some(Arc::new(Palette::from_colormap(&map, bits)?));
        let ifd = dec
            .ifd_pointer()
            .ok_or_else(|| Error::decode("tiff", "no current IFD"))?;
        let order = dec.byte_order();
        dec.inner().rewrite_photometric(ifd, order)?;
        // Parse the IFD again, now seeing grey indices.
        seek_page(dec, page)?;
    }
    if palette.is_none() && lone_unspecified_extra_sample(dec)? {
        let ifd = dec
            .ifd_pointer()
            .ok_or_else(|| Error::decode("tiff", "no current IFD"))?;
        let order = dec.byte_order();
        dec.inner().rewrite_extra_sample(ifd, order)?;
        seek_page(dec, page)?;
    }
    let (width, height) = dec.dimensions().map_err(err)?;
    let mut lay = layout(dec, palette)?;
    let bytes = |dec: &mut TiffDecoder<R>, tag: u16| -> Option<Arc<Vec<u8>>> {
        // Unreadable metadata should not cost the picture.
        dec.get_tag_u8_vec(Tag::Unknown(tag))
            .ok()
            .filter(|v| !v.is_empty())
            .map(Arc::new)
    };
    let mut icc = dec
        .get_tag_u8_vec(Tag::IccProfile)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Arc::new);
    if let Colour::Cmyk(ink) = &mut lay.colour {
        // The profile describes the inks; our output is sRGB.
        *ink = icc.take().and_then(|p| InkProfile::from_icc(&p));
    }
    let xmp = bytes(dec, 700);
    let orientation = dec
        .find_tag_unsigned::<u16>(Tag::Orientation)
        .ok()
        .flatten()
        .filter(|o| (1..=8).contains(o))
        .map_or(1, |o| o as u8);
    let header = Header {
        width,
        height,
        bands: lay.out_bands,
        format: lay.format,
        bit_depth: if matches!(lay.colour, Colour::Direct) {
            lay.bits
        } else {
            8
        },
        meta: Metadata {
            orientation,
            icc,
            exif: None,
            xmp,
        },
    };
    Ok((header, lay))
}

/// Whether the current page is RGB or CMYK with exactly one extra sample, marked
/// unspecified (ExtraSamples = 0): libvips reads it as alpha, and so do we.
fn lone_unspecified_extra_sample<R: Read + Seek>(dec: &mut TiffDecoder<R>) -> Result<bool> {
    let photometric = dec
        .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
        .map_err(err)?;
    let samples = dec
        .find_tag_unsigned::<u16>(Tag::SamplesPerPixel)
        .map_err(err)?
        .unwrap_or(1);
    let colour = match photometric {
        Some(2) => 3,
        Some(5) => 4,
        _ => return Ok(false),
    };
    let extra = dec
        .find_tag_unsigned_vec::<u16>(Tag::ExtraSamples)
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(samples == colour + 1 && extra == [0])
}

/// `NewSubfileType` bit 0: a reduced-resolution version of another image in the file.
const REDUCED_RESOLUTION: u32 = 1;
/// Pages looked at for pyramid levels.
const MAX_LEVELS: u32 = 32;

/// The pyramid level (page, factor) to load instead of page 0 for a box shrink of `shrink`:
/// the reduced-resolution page with the largest factor that divides `shrink` and whose size
/// is the full size divided by it, rounded up as our shrink rounds. When a resize follows
/// (`fit`), any factor up to `shrink` will do and a level rounded down (libvips) is as good.
fn pick_level<R: Read + Seek>(
    dec: &mut TiffDecoder<R>,
    full: &Header,
    shrink: u32,
    fit: bool,
) -> Option<(u32, u32)> {
    let mut best: Option<(u32, u32)> = None;
    let mut page = 1;
    while page < MAX_LEVELS && dec.more_images() {
        // A broken later page must not cost page 0: stop looking and use what was found.
        if seek_page(dec, page).is_err() {
            break;
        }
        let reduced = dec
            .find_tag_unsigned::<u32>(Tag::NewSubfileType)
            .ok()
            .flatten()
            .is_some_and(|t| t & REDUCED_RESOLUTION != 0);
        let Ok((w, h)) = dec.dimensions() else {
            break;
        };
        if reduced && w > 0 && h > 0 {
            let f = (full.width as f64 / w as f64).round() as u32;
            let fits = |n: u32, m: u32| m == n.div_ceil(f) || (fit && m == n / f);
            let usable = if fit {
                f <= shrink
            } else {
                shrink.is_multiple_of(f)
            };
            if f >= 2
                && usable
                && fits(full.width, w)
                && fits(full.height, h)
                && best.is_none_or(|(_, b)| f > b)
            {
                best = Some((page, f));
            }
        }
        page += 1;
    }
    best
}

/// Reads the header (first IFD) only.
pub fn probe(src: &mut Source, limits: &crate::Limits) -> Result<Header> {
    let limit = usize::try_from(limits.memory_limit).unwrap_or(usize::MAX);
    Ok(open(&mut *src, 0, limit)?.1)
}

/// Opens the pixel stream of page `opts.page`.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let reader: Box<dyn ReadSeek + 'a> = if src.is_seekable() {
        Box::new(src)
    } else {
        // TIFF data can sit anywhere in the file: without seeking, buffer it all.
        Box::new(Cursor::new(src.read_to_memory(opts.limits.memory_limit)?))
    };
    let limit = usize::try_from(opts.limits.memory_limit).unwrap_or(usize::MAX);
    let (mut dec, mut header, mut lay) = open(reader, opts.page, limit)?;
    check_limits(&header, opts.limits.max_pixels)?;
    let mut applied = 1;
    if opts.page == 0 && opts.shrink > 1 {
        match pick_level(&mut dec, &header, opts.shrink, opts.fit.is_some()) {
            Some((page, f)) => {
                let meta = header.meta.clone();
                (header, lay) = describe(&mut dec, page)?;
                // Levels rarely repeat the metadata; page 0's applies to the whole pyramid.
                header.meta = meta;
                applied = f;
            }
            None => {
                describe(&mut dec, 0)?;
            }
        }
    }
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
    let jpeg = if lay.jpeg {
        if lay.planar {
            return Err(Error::Unsupported(
                "tiff: planar JPEG-compressed data".into(),
            ));
        }
        Some(JpegChunks::new(&mut dec, tiled, opts.limits.memory_limit)?)
    } else {
        None
    };
    let compression = dec
        .find_tag_unsigned::<u16>(Tag::Compression)
        .map_err(err)?;
    let fax = if compression == Some(fax3::FAX3) && lay.bits == 1 && !tiled {
        Some(Fax3Chunks::new(&mut dec, opts.limits.memory_limit)?)
    } else {
        None
    };
    let stream: BoxStream<'a> = Box::new(TiffRows {
        dec,
        jpeg,
        fax,
        header,
        lay,
        chunk_w: cw,
        chunk_h: ch,
        across,
        per_plane,
        row: 0,
    });
    Ok(Loaded::single(stream, applied))
}

/// Strips, or rows of tiles, in order.
struct TiffRows<'a> {
    dec: TiffDecoder<Box<dyn ReadSeek + 'a>>,
    /// Set for JPEG-compressed files, which the crate cannot decode here.
    jpeg: Option<JpegChunks>,
    /// Set for CCITT Group 3 files, which the crate does not decode.
    fax: Option<Fax3Chunks>,
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
        if let Some(j) = &self.jpeg {
            return j.decode(&mut self.dec, index, w, h, bands);
        }
        if let Some(f) = &self.fax {
            return f.decode(&mut self.dec, index, w, h);
        }
        let data = self.dec.read_chunk(index).map_err(err)?;
        let n = w as usize * h as usize * bands;
        let samples = match data {
            DecodingResult::U8(v) if self.lay.bits < 8 => {
                // Palette indices are indices, not levels to stretch.
                let scale = !matches!(self.lay.colour, Colour::Palette(_));
                unpack_bits(&v, w, h, self.lay.bits, scale)?
            }
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

/// Packed 1/2/4-bit rows (each padded to a byte) to one byte per sample, scaled to 0..255
/// when `scale`.
fn unpack_bits(v: &[u8], w: u32, h: u32, bits: u8, scale: bool) -> Result<Samples> {
    let w = w as usize;
    let row_bytes = (w * bits as usize).div_ceil(8);
    let max = (1u16 << bits) - 1;
    let n = crate::alloc::len(&[w, h as usize], "a TIFF chunk")?;
    let mut out = crate::alloc::with_capacity(n, "a TIFF chunk")?;
    for row in v.chunks_exact(row_bytes.max(1)).take(h as usize) {
        for x in 0..w {
            let bit = x * bits as usize;
            let byte = row[bit / 8];
            let shift = 8 - bits as usize - bit % 8;
            let s = (byte >> shift) as u16 & max;
            out.push(if scale { s * 255 / max } else { s } as u8);
        }
    }
    Ok(Samples::U8(out))
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
        let n = crate::alloc::len(&[width as usize, rows as usize, bands], "a TIFF strip")?;
        let mut out = Samples::try_zeroed(self.header.format, n)?;
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
        let samples = match (&self.lay.colour, out) {
            (Colour::Direct, mut out) => {
                if self.lay.associated {
                    unpremultiply(&mut out, bands);
                }
                out
            }
            (Colour::Palette(p), Samples::U8(v)) => Samples::U8(p.expand(&v)?),
            (Colour::Cmyk(ink), Samples::U8(v)) => {
                Samples::U8(cmyk_to_rgb(&v, bands, ink.as_ref())?)
            }
            (Colour::YCbCr, Samples::U8(v)) => Samples::U8(ycbcr_to_rgb(v)),
            _ => {
                return Err(Error::decode(
                    "tiff",
                    "colour conversion of non-8-bit samples",
                ))
            }
        };
        let strip = Strip {
            y,
            height: rows,
            samples,
        };
        self.row += 1;
        Ok(Some(strip))
    }
}

/// Divides the colour samples of each pixel by its alpha (the last band). Integers truncate,
/// as libvips 8.14 and ImageMagick do; a zero alpha leaves colour at zero.
fn unpremultiply(s: &mut Samples, bands: usize) {
    fn int<T: Copy + Into<u32> + TryFrom<u32>>(v: &mut [T], bands: usize, max: u32) {
        for px in v.chunks_exact_mut(bands) {
            let (colour, alpha) = px.split_at_mut(bands - 1);
            let a: u32 = alpha[0].into();
            if a == 0 || a == max {
                continue;
            }
            for c in colour {
                let x = ((*c).into() * max / a).min(max);
                *c = T::try_from(x).unwrap_or(*c);
            }
        }
    }
    match s {
        Samples::U8(v) => int(v, bands, 255),
        Samples::U16(v) => int(v, bands, 65535),
        Samples::F32(v) => {
            for px in v.chunks_exact_mut(bands) {
                let (colour, alpha) = px.split_at_mut(bands - 1);
                let a = alpha[0];
                if a > 0.0 && a != 1.0 {
                    colour.iter_mut().for_each(|c| *c /= a);
                }
            }
        }
    }
}

/// CMYK(+alpha) with 0 = no ink to RGB(+alpha), through the profile when there is one.
fn cmyk_to_rgb(v: &[u8], bands: usize, ink: Option<&InkProfile>) -> Result<Vec<u8>> {
    let pixels = v.len() / bands;
    let inks: Cow<[u8]> = if bands == 4 {
        Cow::Borrowed(v)
    } else {
        let mut owned = crate::alloc::with_capacity(pixels.saturating_mul(4), "CMYK inks")?;
        owned.extend(v.chunks_exact(bands).flat_map(|p| [p[0], p[1], p[2], p[3]]));
        Cow::Owned(owned)
    };
    let mut rgb = crate::alloc::filled(pixels.saturating_mul(3), 0u8, "CMYK to RGB")?;
    if !ink.is_some_and(|p| p.to_rgb(&inks, &mut rgb)) {
        naive_to_rgb(&inks, &mut rgb);
    }
    if bands == 4 {
        return Ok(rgb);
    }
    let mut out = crate::alloc::with_capacity(pixels.saturating_mul(4), "CMYK to RGB")?;
    out.extend(
        rgb.chunks_exact(3)
            .zip(v.chunks_exact(bands))
            .flat_map(|(c, p)| [c[0], c[1], c[2], p[4]]),
    );
    Ok(out)
}

/// Full-range YCbCr (JFIF / TIFF default coefficients) to RGB, in place.
fn ycbcr_to_rgb(mut v: Vec<u8>) -> Vec<u8> {
    for px in v.chunks_exact_mut(3) {
        let y = f32::from(px[0]);
        let cb = f32::from(px[1]) - 128.0;
        let cr = f32::from(px[2]) - 128.0;
        let c = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        px[0] = c(y + 1.402 * cr);
        px[1] = c(y - 0.344_136 * cb - 0.714_136 * cr);
        px[2] = c(y + 1.772 * cb);
    }
    v
}

static ABOUT: About = About {
    name: "tiff",
    title: "TIFF",
    extensions: &["tif", "tiff"],
    serve_as: None,
    notes: "tiff: strips and tiles on demand; 1-16 bit, float, grey/RGB(A) with associated alpha un-premultiplied (an unspecified extra sample is alpha, as libvips reads it), palette, 8-bit CMYK (embedded profile or naive formula) and YCbCr, LZW/Deflate/PackBits/CCITT G3 (1-D, via the `fax` crate) and G4, JPEG (chunks decoded by our JPEG loader); pages; pyramids (the smallest usable reduced-resolution page serves shrink-on-load). Not: old-style JPEG, 2-D G3, Lab",
};

static SAVER: Saver = Saver {
    token: "tif",
    aliases: &["tiff"],
    mime: "image/tiff",
    accepts: &[SampleFormat::U8, SampleFormat::U16],
    options: &[save::LZW, save::DEFLATE],
    limits: SaverLimits {
        max_side: u32::MAX,
        max_bytes: (1 << 32) - (64 << 20),
        why: "classic TIFF's 32-bit offsets, less room for tags",
    },
    fit: None,
    icc: true,
    save: save::save,
    notes: "assembled in memory, then written; uncompressed/`lzw`/`deflate`; unassociated alpha; ICC, XMP",
};

/// The TIFF codec.
pub struct Tiff;

impl Codec for Tiff {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(b"II*\0")
            || head.starts_with(b"MM\0*")
            || head.starts_with(b"II+\0")
            || head.starts_with(b"MM\0+")
    }

    fn probe(&self, src: &mut Source, limits: &crate::Limits) -> Result<Header> {
        probe(src, limits)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }

    fn saver(&self) -> Option<&Saver> {
        Some(&SAVER)
    }
}
