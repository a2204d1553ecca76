//! JPEG XL through jxl-oxide (pure Rust). Whole-image: the file is read into memory, the
//! image header (size, orientation, colour encoding) is parsed and checked against
//! `--max-pixels` before any frame is decoded, then the first keyframe is rendered with its
//! orientation applied (so the header says orientation 1). Lossy (XYB) images render to
//! sRGB; images with an embedded ICC profile keep it. Deeper than 8 bits comes out as
//! 16-bit samples. EXIF and XMP come from the container's boxes.
//!
//! Thumbnails that shrink 8x or more come from the 1/8 LF image where the frame has one
//! ([`lf`]); jxl-oxide 0.12 itself renders keyframes at full resolution only.

mod lf;

use std::sync::Arc;

use jxl_oxide::{AllocTracker, AuxBoxData, InitializeResult, JxlImage, PixelFormat};

use crate::error::{Error, Result};
use crate::image::{Header, Image, Metadata, SampleFormat, Samples};
use crate::io::Source;
use crate::{check_limits, exif, About, Codec, Format, Limits, LoadOptions, Loaded};

/// A bare codestream (`FF 0A`) or the ISO-BMFF container's signature box.
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(&[0xFF, 0x0A]) || head.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n")
}

fn decode_err(e: impl std::fmt::Display) -> Error {
    Error::decode("jxl", e)
}

/// Parses `bytes` up to the image header and frame table; decodes no pixels.
fn open(bytes: &[u8], memory_limit: u64) -> Result<JxlImage> {
    let limit = usize::try_from(memory_limit).unwrap_or(usize::MAX);
    let mut uninit = JxlImage::builder()
        .alloc_tracker(AllocTracker::with_limit(limit))
        .build_uninit();
    uninit.feed_bytes(bytes).map_err(decode_err)?;
    let mut image = match uninit.try_init().map_err(decode_err)? {
        InitializeResult::Initialized(image) => image,
        InitializeResult::NeedMoreData(_) => {
            return Err(decode_err("file is truncated (no complete image header)"))
        }
    };
    image.finalize().map_err(decode_err)?;
    Ok(image)
}

fn header_of(image: &JxlImage) -> Result<Header> {
    let (bands, grey_ok) = match image.pixel_format() {
        PixelFormat::Gray => (1, true),
        PixelFormat::Graya => (2, true),
        PixelFormat::Rgb => (3, true),
        PixelFormat::Rgba => (4, true),
        _ => (0, false),
    };
    if !grey_ok {
        return Err(Error::Unsupported("jxl: CMYK images".into()));
    }
    let bits = image.image_header().metadata.bit_depth.bits_per_sample();
    let wide = bits > 8;
    Ok(Header {
        width: image.width(),
        height: image.height(),
        bands,
        format: if wide {
            SampleFormat::U16
        } else {
            SampleFormat::U8
        },
        bit_depth: bits.clamp(1, 16) as u8,
        meta: Metadata {
            // jxl-oxide applies the orientation while rendering.
            orientation: 1,
            icc: image.original_icc().map(|_| Arc::new(image.rendered_icc())),
            exif: exif_of(image).map(Arc::new),
            xmp: match image.aux_boxes().first_xml() {
                AuxBoxData::Data(x) if !x.is_empty() => Some(Arc::new(x.to_vec())),
                _ => None,
            },
        },
    })
}

/// The container's first `Exif` box (plain or Brotli-compressed `brob`, which jxl-oxide
/// expands), from its TIFF header on. Its orientation tag is left to the savers, which reset
/// it: the codestream's orientation is applied while rendering.
fn exif_of(image: &JxlImage) -> Option<Vec<u8>> {
    match image.aux_boxes().first_exif() {
        Ok(AuxBoxData::Data(raw)) => {
            let at = raw.tiff_header_offset() as usize;
            exif::normalize(raw.payload().get(at..)?)
        }
        // Unreadable metadata should not cost the picture.
        _ => None,
    }
}

/// Reads the header only.
pub fn probe(src: &mut Source, limits: &Limits) -> Result<Header> {
    let bytes = src.read_to_memory(limits.memory_limit)?;
    header_of(&open(&bytes, limits.memory_limit)?)
}

/// Decodes the first keyframe into memory, then streams it. A thumbnail (a resize follows)
/// that shrinks 8x or more takes the 1/8 LF image instead, unless the spec says `exact`.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let bytes = src.read_to_memory(opts.limits.memory_limit)?;
    let image = open(&bytes, opts.limits.memory_limit)?;
    let header = header_of(&image)?;
    check_limits(&header, opts.limits.max_pixels)?;
    if image.num_loaded_keyframes() == 0 {
        return Err(decode_err("file is truncated (no complete frame)"));
    }
    if !opts.exact && opts.fit.is_some() && opts.shrink >= lf::SHRINK {
        if let Some(small) = lf::render(&image, &header)? {
            let stream = small.into_stream(crate::image::STRIP_ROWS);
            return Ok(Loaded::single(Box::new(stream), lf::SHRINK));
        }
    }
    let render = image.render_frame(0).map_err(decode_err)?;
    let mut stream = render.stream();
    let (w, h, c) = (stream.width(), stream.height(), stream.channels());
    if (w, h, c) != (header.width, header.height, u32::from(header.bands)) {
        return Err(decode_err(format!(
            "rendered {w}x{h}x{c}, the header said {}x{}x{}",
            header.width, header.height, header.bands
        )));
    }
    let n = crate::alloc::len(
        &[header.row_samples(), header.height as usize],
        "JPEG XL pixels",
    )?;
    let samples = if header.format == SampleFormat::U16 {
        let mut v = crate::alloc::filled(n, 0u16, "JPEG XL pixels")?;
        let got = stream.write_to_buffer(&mut v);
        if got != n {
            return Err(decode_err(format!("rendered {got} of {n} samples")));
        }
        Samples::U16(v)
    } else {
        let mut v = crate::alloc::filled(n, 0u8, "JPEG XL pixels")?;
        let got = stream.write_to_buffer(&mut v);
        if got != n {
            return Err(decode_err(format!("rendered {got} of {n} samples")));
        }
        Samples::U8(v)
    };
    Ok(Loaded::single(
        Box::new(Image { header, samples }.into_stream(crate::image::STRIP_ROWS)),
        1,
    ))
}

// Photo formats come out as JPEG, as a camera roll's viewer expects.
static ABOUT: About = About {
    name: "jxl",
    title: "JPEG XL",
    extensions: &["jxl"],
    serve_as: Some(Format::Jpeg),
    notes: "jxl-oxide (pure Rust); whole image, lossy and lossless, alpha, 8-16 bit, ICC, orientation, EXIF and XMP boxes (also Brotli-compressed). Thumbnails shrinking 8x or more from the 1/8 LF image of VarDCT frames (`exact`: the whole image)",
};

/// The JPEG XL codec.
pub struct Jxl;

impl Codec for Jxl {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        sniff(head)
    }

    fn probe(&self, src: &mut Source, limits: &Limits) -> Result<Header> {
        probe(src, limits)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }
}
