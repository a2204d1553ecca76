//! WebP: the loader (image-webp) decodes the whole (first) frame, as the crate offers no row
//! interface; the saver writes lossless WebP with image-webp and lossy WebP with libwebp
//! (the `webp` crate), adding metadata with our own [`mux`].

mod anim;
mod mux;

use std::io::{BufRead, Cursor, Seek};
use std::sync::Arc;

use image_webp::{ColorType, DecodingError, WebPDecoder, WebPEncoder};

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, Image, Metadata, SampleFormat, Samples};
use crate::io::{Source, Target, TargetWriter};
use crate::{
    check_limits, exif, About, Animation, Codec, Frames, Limits, LoadOptions, Loaded,
    SaveAnimation, SaveOption, SaveOptions, Saver, SaverLimits, QUALITY,
};

fn decode_err(e: DecodingError) -> Error {
    match e {
        DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::decode("webp", "file is truncated")
        }
        DecodingError::IoError(e) => Error::Read(e),
        other => Error::decode("webp", other),
    }
}

fn open<R: BufRead + Seek>(src: R) -> Result<(WebPDecoder<R>, Header)> {
    let mut dec = WebPDecoder::new(src).map_err(decode_err)?;
    let (width, height) = dec.dimensions();
    let bands = if dec.has_alpha() { 4 } else { 3 };
    let nonempty = |v: Option<Vec<u8>>| v.filter(|v| !v.is_empty());
    // Broken metadata chunks should not cost the picture.
    let icc = nonempty(dec.icc_profile().ok().flatten());
    let exif_bytes = nonempty(dec.exif_metadata().ok().flatten()).and_then(|e| exif::normalize(&e));
    let xmp = nonempty(dec.xmp_metadata().ok().flatten());
    let meta = Metadata {
        orientation: exif_bytes.as_deref().map_or(1, exif::orientation),
        icc: icc.map(Arc::new),
        exif: exif_bytes.map(Arc::new),
        xmp: xmp.map(Arc::new),
    };
    let header = Header {
        width,
        height,
        bands,
        format: SampleFormat::U8,
        bit_depth: 8,
        meta,
    };
    Ok((dec, header))
}

/// Reads the header only (RIFF chunks; no frame is decoded).
pub fn probe(src: &mut Source) -> Result<Header> {
    Ok(open(&mut *src)?.1)
}

/// Decodes the first frame into memory, then streams it; when [`LoadOptions::max_frames`]
/// allows more than one, an animation announces the rest (composed by image-webp).
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let bytes: Arc<[u8]> = src.read_to_memory(opts.limits.memory_limit)?.into();
    let (mut dec, header) = open(Cursor::new(bytes.clone()))?;
    check_limits(&header, opts.limits.max_pixels)?;
    let size = dec
        .output_buffer_size()
        .ok_or_else(|| Error::decode("webp", "image too large"))?;
    if size as u64 > opts.limits.memory_limit {
        return Err(Error::Unsupported(format!(
            "WebP needs {size} bytes, over the {}-byte memory limit",
            opts.limits.memory_limit
        )));
    }
    dec.set_memory_limit(usize::try_from(opts.limits.memory_limit).unwrap_or(usize::MAX));
    let delays = if dec.is_animated() && opts.max_frames > 1 {
        anim::durations(&bytes, opts.max_frames.saturating_add(1))
    } else {
        Vec::new()
    };
    let animated = delays.len() > 1;
    let mut buf = crate::alloc::filled(size, 0u8, "WebP pixels")?;
    if animated {
        dec.read_frame(&mut buf).map_err(decode_err)?;
    } else {
        dec.read_image(&mut buf).map_err(decode_err)?;
    }
    let expected = header.row_samples() * header.height as usize;
    if buf.len() != expected {
        return Err(Error::decode(
            "webp",
            format!("decoder gave {} bytes, expected {expected}", buf.len()),
        ));
    }
    let plays = match dec.loop_count() {
        image_webp::LoopCount::Forever => 0,
        image_webp::LoopCount::Times(n) => n.get() as u32,
    };
    let image = Image {
        header: header.clone(),
        samples: Samples::U8(buf),
    };
    // WebP has no reduced-resolution decode.
    let mut loaded = Loaded::single(Box::new(image.into_stream(crate::image::STRIP_ROWS)), 1);
    if animated {
        let remaining = delays.len() as u32 - 1;
        loaded.frames = Some(Animation {
            delays_ms: delays,
            plays,
            rest: Box::new(anim::WebpFrames {
                dec,
                header,
                remaining,
            }) as Box<dyn Frames>,
        });
    }
    Ok(loaded)
}

/// Encodes WebP: lossless when asked (`lossless`), otherwise lossy at `q<N>`.
/// Takes 8-bit samples, the only depth WebP has.
pub fn save(stream: BoxStream, opts: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let img = Image::collect(stream)?;
    let h = &img.header.clone();
    if h.width > 16383 || h.height > 16383 {
        return Err(Error::encode(
            "webp",
            format!("{}x{} exceeds WebP's 16383-pixel limit", h.width, h.height),
        ));
    }
    let Samples::U8(data) = img.samples else {
        return Err(Error::encode("webp", "samples not cast to 8 bits"));
    };
    if opts.flag(&LOSSLESS) {
        save_lossless(h, &data, opts, target)
    } else {
        save_lossy(h, data, opts, target)
    }
}

/// The EXIF to write: orientation reset to what the pixels now need.
fn exif_out(h: &Header) -> Option<Vec<u8>> {
    exif::for_output(&h.meta)
}

fn save_lossy(
    h: &Header,
    data: Vec<u8>,
    opts: &SaveOptions,
    target: &mut dyn Target,
) -> Result<()> {
    // libwebp takes RGB or RGBA; grey is widened.
    let widened = |n: usize| crate::alloc::with_capacity::<u8>(n, "WebP pixels widened to RGB");
    let (pixels, layout) = match h.bands {
        1 => {
            let mut v = widened(data.len().saturating_mul(3))?;
            v.extend(data.iter().flat_map(|&g| [g, g, g]));
            (v, webp::PixelLayout::Rgb)
        }
        2 => {
            let mut v = widened(data.len().saturating_mul(2))?;
            v.extend(data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]));
            (v, webp::PixelLayout::Rgba)
        }
        3 => (data, webp::PixelLayout::Rgb),
        4 => (data, webp::PixelLayout::Rgba),
        b => return Err(Error::encode("webp", format!("{b} bands"))),
    };
    let enc = webp::Encoder::new(&pixels, layout, h.width, h.height);
    let mut config = webp::WebPConfig::new()
        .map_err(|()| Error::encode("webp", "libwebp refused its default configuration"))?;
    config.quality = f32::from(opts.quality());
    // Single-threaded: the same input must always give the same bytes.
    config.thread_level = 0;
    let file = enc
        .encode_advanced(&config)
        .map_err(|e| Error::encode("webp", format!("libwebp: {e:?}")))?;
    let exif = exif_out(h);
    let extras = if opts.strip {
        mux::Extras::default()
    } else {
        mux::Extras {
            icc: h.meta.icc.as_deref().map(|v| v.as_slice()),
            exif: exif.as_deref(),
            xmp: h.meta.xmp.as_deref().map(|v| v.as_slice()),
        }
    };
    let bytes = mux::add_metadata(&file, h.width, h.height, &extras)?;
    target.write_all(&bytes).map_err(Error::Write)?;
    target.finish().map_err(Error::Write)
}

fn save_lossless(
    h: &Header,
    data: &[u8],
    opts: &SaveOptions,
    target: &mut dyn Target,
) -> Result<()> {
    let color = match h.bands {
        1 => ColorType::L8,
        2 => ColorType::La8,
        3 => ColorType::Rgb8,
        4 => ColorType::Rgba8,
        b => return Err(Error::encode("webp", format!("{b} bands"))),
    };
    let mut out = TargetWriter::new(target);
    {
        let mut enc = WebPEncoder::new(&mut out);
        let meta = &h.meta;
        if !opts.strip {
            if let Some(icc) = &meta.icc {
                enc.set_icc_profile(icc.to_vec());
            }
            if let Some(e) = exif_out(h) {
                enc.set_exif_metadata(e);
            }
            if let Some(x) = &meta.xmp {
                enc.set_xmp_metadata(x.to_vec());
            }
        }
        enc.encode(data, h.width, h.height, color)
            .map_err(|e| match e {
                image_webp::EncodingError::IoError(e) => Error::Write(e),
                other => Error::encode("webp", other),
            })?;
    }
    out.finish().map_err(Error::Write)
}

/// `lossless`: lossless WebP (image-webp) instead of lossy (libwebp).
pub const LOSSLESS: SaveOption = SaveOption {
    token: "lossless",
    name: "lossless compression",
    range: None,
    default: None,
    without_format: false,
    conflicts: &["q"],
    help: "lossless compression",
};

static ABOUT: About = About {
    name: "webp",
    title: "WebP",
    extensions: &["webp"],
    serve_as: None,
    notes: "image-webp: lossy, lossless, alpha, animation (frames composed), whole image; ICC, EXIF (an `Exif\\0\\0` prefix is dropped), XMP",
};

static SAVER: Saver = Saver {
    token: "webp",
    aliases: &[],
    mime: "image/webp",
    accepts: &[SampleFormat::U8],
    options: &[QUALITY, LOSSLESS],
    limits: SaverLimits {
        max_side: 16_383,
        max_bytes: u64::MAX,
        why: "WebP's 14-bit size fields",
    },
    fit: None,
    icc: true,
    save,
    notes: "lossy (libwebp via the `webp` crate, single-threaded so bytes are reproducible) or `lossless` (image-webp); animations through libwebp's animation encoder; ICC, EXIF, XMP",
};

/// The WebP codec.
pub struct Webp;

impl Codec for Webp {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP"
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

    fn save_animation(&self) -> Option<SaveAnimation> {
        Some(anim::save)
    }
}
