//! SVG loader (resvg, no text): rendered straight at the size the pipeline asks for, so a
//! thumbnail is drawn at thumbnail size instead of rasterised large and shrunk.

use resvg::{tiny_skia, usvg};

use crate::error::{Error, Result};
use crate::image::{Header, Image, Metadata, SampleFormat, Samples};
use crate::io::Source;
use crate::{check_limits, About, Codec, Limits, LoadOptions, Loaded};

/// SVG documents are parsed whole; refuse absurd ones before parsing.
const MAX_DOCUMENT: u64 = 64 << 20;

fn bad(e: impl std::fmt::Display) -> Error {
    Error::decode("svg", e)
}

fn parse(src: &mut Source, limit: u64) -> Result<usvg::Tree> {
    let data = src.read_to_memory(limit.min(MAX_DOCUMENT))?;
    let mut opt = usvg::Options::default();
    // External references (files, other documents) could reach outside the served tree.
    opt.image_href_resolver.resolve_string = Box::new(|_, _| None);
    usvg::Tree::from_data(&data, &opt).map_err(bad)
}

fn header(width: u32, height: u32) -> Header {
    Header {
        width,
        height,
        bands: 4,
        format: SampleFormat::U8,
        bit_depth: 8,
        meta: Metadata::upright(),
    }
}

/// Intrinsic size of a tree, whole pixels.
fn intrinsic(tree: &usvg::Tree) -> Result<(u32, u32)> {
    let s = tree.size();
    let (w, h) = (s.width().ceil(), s.height().ceil());
    if !(w >= 1.0 && h >= 1.0 && w < 1e7 && h < 1e7) {
        return Err(bad(format!("unusable document size {w}x{h}")));
    }
    Ok((w as u32, h as u32))
}

/// Parses the document for its intrinsic size.
pub fn probe(src: &mut Source) -> Result<Header> {
    let tree = parse(src, MAX_DOCUMENT)?;
    let (w, h) = intrinsic(&tree)?;
    Ok(header(w, h))
}

/// Renders at `opts.fit` when given, else at the intrinsic size divided by `opts.shrink`
/// (the whole shrink is applied here, by drawing smaller).
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let tree = parse(&mut src, opts.limits.memory_limit)?;
    let (iw, ih) = intrinsic(&tree)?;
    let s = opts.shrink.max(1);
    let (w, h) = opts.fit.unwrap_or((iw.div_ceil(s), ih.div_ceil(s)));
    let mut header = header(w, h);
    check_limits(&header, opts.limits.max_pixels)?;
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| bad(format!("cannot draw at {w}x{h}")))?;
    let size = tree.size();
    let transform =
        tiny_skia::Transform::from_scale(w as f32 / size.width(), h as f32 / size.height());
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    // tiny-skia keeps premultiplied alpha; our pipeline carries straight alpha.
    let mut data = pixmap.take();
    for px in data.chunks_exact_mut(4) {
        let a = px[3] as u32;
        if a != 0 && a != 255 {
            for c in &mut px[..3] {
                *c = ((*c as u32 * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
    header.meta = Metadata::upright();
    let image = Image {
        header,
        samples: Samples::U8(data),
    };
    Ok(Loaded::single(
        Box::new(image.into_stream(crate::image::STRIP_ROWS)),
        s,
    ))
}

/// Whether the head looks like an SVG document (the loosest test: sniffed last).
fn looks_like_svg(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with("<svg") || (t.starts_with("<?xml") && text.contains("<svg"))
}

static ABOUT: About = About {
    name: "svg",
    title: "SVG",
    extensions: &["svg"],
    serve_as: None,
    notes: "resvg (no text), drawn directly at the requested size",
};

/// The SVG codec.
pub struct Svg;

impl Codec for Svg {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        looks_like_svg(head)
    }

    fn probe(&self, src: &mut Source, _: &Limits) -> Result<Header> {
        probe(src)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }
}
