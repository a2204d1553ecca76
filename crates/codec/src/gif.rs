//! GIF loader (gif crate): the first frame composed onto the logical screen, transparency kept.

use std::num::NonZeroU64;

use gif::{ColorOutput, DecodeOptions, MemoryLimit};

use crate::error::{Error, Result};
use crate::image::{Header, Image, Metadata, SampleFormat, Samples};
use crate::io::Source;
use crate::{check_limits, About, Codec, Limits, LoadOptions, Loaded};

fn decode_error(e: impl std::fmt::Display) -> Error {
    Error::decode("gif", e)
}

fn options(memory_limit: u64) -> DecodeOptions {
    let mut o = DecodeOptions::new();
    o.set_color_output(ColorOutput::RGBA);
    if let Some(limit) = NonZeroU64::new(memory_limit) {
        o.set_memory_limit(MemoryLimit::Bytes(limit));
    }
    o
}

fn header(width: u16, height: u16) -> Header {
    Header {
        width: width as u32,
        height: height as u32,
        bands: 4,
        format: SampleFormat::U8,
        bit_depth: 8,
        meta: Metadata::upright(),
    }
}

/// Reads the logical screen size only.
pub fn probe(src: &mut Source, limits: &Limits) -> Result<Header> {
    let dec = options(limits.memory_limit)
        .read_info(&mut *src)
        .map_err(decode_error)?;
    Ok(header(dec.width(), dec.height()))
}

/// Decodes the first frame (GIF frames are LZW streams with no row access, so whole).
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let mut dec = options(opts.limits.memory_limit)
        .read_info(src)
        .map_err(decode_error)?;
    let mut header = header(dec.width(), dec.height());
    check_limits(&header, opts.limits.max_pixels)?;
    let (w, h) = (header.width as usize, header.height as usize);
    let mut canvas = crate::alloc::filled(
        crate::alloc::len(&[w, h, 4], "the GIF canvas")?,
        0u8,
        "the GIF canvas",
    )?;
    let frame = dec
        .read_next_frame()
        .map_err(decode_error)?
        .ok_or_else(|| decode_error("no image frame"))?;
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    let (left, top) = (frame.left as usize, frame.top as usize);
    if frame.buffer.len() < fw * fh * 4 {
        return Err(decode_error("frame data shorter than its size"));
    }
    // Frames may sit anywhere on the screen, overhang it or lie wholly off it: clip. A frame
    // right of the screen copies nothing (and its row offset would point past the canvas).
    let n = fw.min(w.saturating_sub(left));
    let rows = if n == 0 {
        0
    } else {
        fh.min(h.saturating_sub(top))
    };
    for y in 0..rows {
        let src_row = &frame.buffer[y * fw * 4..(y * fw + n) * 4];
        let at = ((top + y) * w + left) * 4;
        canvas[at..at + n * 4].copy_from_slice(src_row);
    }
    let opaque = canvas.chunks_exact(4).all(|p| p[3] == 255);
    let samples = if opaque {
        header.bands = 3;
        let mut rgb = crate::alloc::with_capacity(canvas.len() / 4 * 3, "a GIF frame")?;
        rgb.extend(canvas.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
        rgb
    } else {
        canvas
    };
    let image = Image {
        header,
        samples: Samples::U8(samples),
    };
    Ok(Loaded::single(
        Box::new(image.into_stream(crate::image::STRIP_ROWS)),
        1,
    ))
}

static ABOUT: About = About {
    name: "gif",
    title: "GIF",
    extensions: &["gif"],
    serve_as: None,
    notes: "gif: first frame, transparency",
};

/// The GIF codec.
pub struct Gif;

impl Codec for Gif {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a")
    }

    fn probe(&self, src: &mut Source, limits: &Limits) -> Result<Header> {
        probe(src, limits)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }
}
