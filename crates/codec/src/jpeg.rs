//! JPEG: libjpeg-turbo (mozjpeg-sys) decodes YCbCr and grey files (full size, progressive,
//! scaled in the DCT before a resize, or as raw planes that box shrinks average at their
//! stored resolution); zune-jpeg's raw component rows serve the other codings and shrinks
//! the planes do not allow, band by band. libjpeg-turbo encodes strips as they come.

use std::sync::Arc;

use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use crate::cmyk::InkProfile;
use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, Metadata, SampleFormat};
use crate::io::{Source, Target};
use crate::{
    exif, About, Codec, Limits, LoadOptions, Loaded, SaveOptions, Saver, SaverLimits, QUALITY,
};

mod colour;
mod dc;
mod decode;
mod encode;
pub mod gainmap;
pub mod mpf;
pub mod preview;
mod scans;
mod turbo;
#[cfg(target_arch = "x86_64")]
mod ycc_avx2;

pub use decode::Coding;
pub use encode::to_u8;

fn options() -> DecoderOptions {
    // We enforce our own pixel limit; zune's default 16384-pixel cap would refuse large photos.
    DecoderOptions::default()
        .set_max_width(65535)
        .set_max_height(65535)
        .set_strict_mode(true)
        // zune's own AVX2 paths follow the crate-wide switch (THUMBFS_SIMD=off).
        .set_use_unsafe(crate::simd::enabled())
}

fn decode_error(e: impl std::fmt::Display) -> Error {
    Error::decode("jpeg", e.to_string())
}

/// The ICC profile of a CMYK file, kept for the conversion to sRGB.
type InkIcc = Arc<Vec<u8>>;

/// Header facts from a decoder that has read its headers. A CMYK file's ICC profile is
/// returned apart: it describes the inks, not the sRGB pixels we output.
fn header_of<T: zune_jpeg::zune_core::bytestream::ZByteReaderTrait>(
    dec: &JpegDecoder<T>,
) -> Result<(Header, Coding, Option<InkIcc>)> {
    let info = dec
        .info()
        .ok_or_else(|| Error::decode("jpeg", "no frame header"))?;
    let coding = Coding::from_colorspace(dec.input_colorspace(), info.components as usize)?;
    let exif_bytes = dec.exif().filter(|e| !e.is_empty()).cloned();
    let orientation = exif_bytes.as_deref().map_or(1, exif::orientation);
    let mut meta = Metadata {
        orientation,
        icc: dec.icc_profile().filter(|p| !p.is_empty()).map(Arc::new),
        exif: exif_bytes.map(Arc::new),
        xmp: dec.xmp().filter(|x| !x.is_empty()).cloned().map(Arc::new),
    };
    let ink_icc = if matches!(coding, Coding::Cmyk | Coding::Ycck) {
        meta.icc.take()
    } else {
        None
    };
    Ok((
        Header {
            width: info.width as u32,
            height: info.height as u32,
            bands: coding.bands(),
            format: SampleFormat::U8,
            bit_depth: 8,
            meta,
        },
        coding,
        ink_icc,
    ))
}

/// Reads the header only: size, colour coding, orientation, ICC, EXIF, XMP.
pub fn probe(src: &mut Source) -> Result<Header> {
    let mut dec = JpegDecoder::new_with_options(&mut *src, options());
    dec.decode_headers().map_err(decode_error)?;
    Ok(header_of(&dec)?.0)
}

/// Opens a row-band stream; applies `opts.shrink` on load when the sampling allows it.
/// With a resize to follow, a YCbCr or grey file whose shrink has a factor 2, 4 or 8 is
/// decoded by libjpeg-turbo scaled in the DCT (as libvips' shrink-on-load), and so is every
/// full-size YCbCr or grey file; box shrinks that every plane allows box libjpeg's raw
/// planes; the rest (CMYK/YCCK/RGB coding, other shrinks) go through zune-jpeg's raw iMCU
/// rows, or a box of libjpeg's full-size decode for progressive files.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    let name = src.name().to_string();
    let (header, coding, ink_icc, progressive, asymmetric, ratios) = {
        let mut dec = JpegDecoder::new_with_options(&mut src, options());
        dec.decode_headers().map_err(decode_error)?;
        let (header, coding, ink_icc) = header_of(&dec)?;
        let progressive = dec.info().is_some_and(|i| !i.sof.is_sequential_dct());
        let n = dec.info().map_or(0, |i| i.components as usize);
        // Each plane's subsampling ratio (full size over stored), for box shrinks of planes.
        let ratios: Vec<(usize, usize)> = dec.raw_output().layout().map_or(Vec::new(), |l| {
            let l = &l[..n.min(l.len())];
            let hmax = l
                .iter()
                .map(|p| p.horizontal_sampling_factor)
                .max()
                .unwrap_or(1);
            let vmax = l
                .iter()
                .map(|p| p.vertical_sampling_factor)
                .max()
                .unwrap_or(1);
            l.iter()
                .map(|p| {
                    let (h, v) = (p.horizontal_sampling_factor, p.vertical_sampling_factor);
                    (
                        hmax.checked_div(h).unwrap_or(0),
                        vmax.checked_div(v).unwrap_or(0),
                    )
                })
                .collect()
        });
        // Chroma subsampled in one direction only (4:2:2, 4:4:0): ratios that differ.
        let asymmetric = ratios.iter().any(|&(h, v)| h > 0 && v > 0 && h != v);
        (header, coding, ink_icc, progressive, asymmetric, ratios)
    };
    crate::check_limits(&header, opts.limits.max_pixels)?;
    // The header phase kept every byte read, so this works on pipes too.
    src.rewind().map_err(Error::Read)?;
    src.start_pixel_phase();
    // With a resize to follow, the shrink may be done in the DCT domain (not a box average).
    let dct = opts.fit.is_some();
    // libjpeg decodes 4:2:2 at 1/2 as a full decode plus a 2x2 box (see turbo.rs); for a
    // baseline file zune's box shrink of the stored planes is faster (measured on 12 MP
    // photos); a progressive one still gains from libjpeg's Huffman decoding.
    let scaled =
        turbo::dct_factor(opts.shrink).filter(|&d| dct && !(asymmetric && d == 2 && !progressive));
    // Progressive files decode with libjpeg at full size too (its progressive Huffman
    // decoding is faster than zune's), an exact shrink being a box average of that decode. So
    // do baseline files at full size (libjpeg-turbo's SIMD colour conversion and upsampling win
    // there, measured with callgrind); an exact shrink of a baseline file stays with zune,
    // which boxes the stored planes before colour conversion and so does less work.
    // A box shrink that every plane allows at its stored resolution (exact shrinks; 4:2:2 at
    // 1/2, where libjpeg's 1/2 would halve the chroma once more) boxes libjpeg's raw planes,
    // then converts: its Huffman decoding and IDCT cost less than zune-jpeg's, and nothing
    // is upsampled or converted at full size (callgrind, q90_shrink2_invert of a 16 MP 4:2:0
    // photo: baseline 566 -> 486 M, progressive 1106 -> 994 M).
    let boxed = opts.shrink > 1
        && (scaled.is_none() || (asymmetric && scaled == Some(2)))
        && !ratios.is_empty()
        && decode::shrinks_planes(opts.shrink as usize, ratios.iter().copied());
    if boxed && matches!(coding, Coding::Ycc | Coding::Grey) {
        let (dec, planes) = turbo::TurboStream::planes(src, &header, coding)?;
        let (stream, applied) =
            decode::JpegStream::from_turbo(dec, &planes, header, coding, opts.shrink, name)?;
        return Ok(Loaded::single(Box::new(stream), applied));
    }
    let turbo = match scaled {
        Some(d) => Some((d, false)),
        None if progressive => Some((opts.shrink.max(1), true)),
        None if opts.shrink <= 1 => Some((1, true)),
        None => None,
    };
    if let Some((d, exact)) = turbo.filter(|_| matches!(coding, Coding::Ycc | Coding::Grey)) {
        // A 1/8 load of a baseline file needs only what 1x1 (and 4:2:0 chroma's 2x2) IDCTs
        // read: our DC decoder gives libjpeg's output for much less work (dc/mod.rs).
        let mut src = src;
        // Held in memory whole: only sources of known length within the memory limit (a
        // pipe cannot be read back for libjpeg if the DC decoder turns the file down).
        let fits = src.len().is_some_and(|l| l <= opts.limits.memory_limit);
        if d == 8 && !exact && !progressive && !opts.exact && fits {
            let bytes = src.read_to_memory(opts.limits.memory_limit)?;
            if let Some(stream) =
                dc::DcStream::new(&bytes, header.clone(), coding, dc::split_min())?
            {
                return Ok(Loaded::single(Box::new(stream), d));
            }
            src = Source::memory(bytes);
            src.set_name(name.clone());
            src.start_pixel_phase();
        }
        let stream = turbo::TurboStream::new(src, header, coding, d, exact, progressive)?;
        return Ok(Loaded::single(Box::new(stream), d));
    }
    let mut dec = JpegDecoder::new_with_options(src, options());
    dec.decode_headers().map_err(decode_error)?;
    let ink = ink_icc.and_then(|icc| InkProfile::from_icc(&icc));
    let (stream, shrink) =
        decode::JpegStream::new(dec, header, coding, ink, opts.shrink, dct, name)?;
    Ok(Loaded::single(Box::new(stream), shrink))
}

/// Decodes a file at 1/8 with the DC-only decoder alone, on two threads from `split_min`
/// bytes of scan data: the image, or `None` when the file is not for that decoder. For
/// tests, which run its parallel paths on small files this way.
#[doc(hidden)]
pub fn dc_decode(bytes: &[u8], split_min: usize) -> Result<Option<crate::image::Image>> {
    let mut src = Source::memory(bytes);
    let mut dec = JpegDecoder::new_with_options(&mut src, options());
    dec.decode_headers().map_err(decode_error)?;
    let (header, coding, _) = header_of(&dec)?;
    let progressive = dec.info().is_some_and(|i| !i.sof.is_sequential_dct());
    if progressive {
        return Ok(None);
    }
    match dc::DcStream::new(bytes, header, coding, split_min)? {
        Some(s) => Ok(Some(crate::image::Image::collect(s)?)),
        None => Ok(None),
    }
}

/// Encodes a stream: quality 1..100, 4:2:0 below Q90 and 4:4:4 from Q90 (as libvips), with
/// EXIF (orientation made to match the pixels), XMP and ICC unless stripping.
pub fn save(stream: BoxStream, opts: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    encode::save(stream, opts, target)
}

static ABOUT: About = About {
    name: "jpeg",
    title: "JPEG",
    extensions: &["jpg", "jpeg", "jpe", "jfif"],
    serve_as: None,
    notes: "band by band; baseline, progressive, every subsampling, grey, RGB, CMYK/YCCK (through the embedded CMYK profile with moxcms, else the naive formula); YCbCr and grey files at full size, progressive ones and, before a resize, scaled in the DCT (1/2, 1/4, 1/8; at 1/8 4:2:2 chroma as libjpeg and libvips keep it, and progressive files without the AC scans it does not need) with libjpeg-turbo (mozjpeg-sys), baseline 1/8 with our DC-only decoder (libjpeg's 1/8 pixels bit for bit; AC codes skipped several per lookup; two threads from 512 KiB of scan data, at restart markers or speculatively); box shrinks that every plane allows (exact shrinks; 4:2:2 at 1/2) from libjpeg's raw planes, averaged at their stored resolution, then converted; other codings and shrinks with zune-jpeg's raw rows (the patched copy in `vendor/`)",
};

static SAVER: Saver = Saver {
    token: "jpg",
    aliases: &["jpeg", "jpe", "jfif"],
    mime: "image/jpeg",
    accepts: &[SampleFormat::U8],
    options: &[QUALITY],
    limits: SaverLimits { max_side: 65_500, max_bytes: u64::MAX, why: "libjpeg's JPEG_MAX_DIMENSION" },
    fit: None,
    icc: true,
    save,
    notes: "libjpeg-turbo (mozjpeg-sys, mozjpeg's extras off), strips written as scanlines; 4:2:0 below `q90`, 4:4:4 from `q90` (as libvips); ICC, EXIF, XMP",
};

/// The JPEG codec.
pub struct Jpeg;

impl Codec for Jpeg {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(&[0xFF, 0xD8, 0xFF])
    }

    fn probe(&self, src: &mut Source, _: &Limits) -> Result<Header> {
        probe(src)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }

    fn saver(&self) -> Option<&Saver> {
        Some(&SAVER)
    }
}
