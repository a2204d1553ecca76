//! Loaders and savers, one module per format, chosen by magic bytes (never by extension).

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header};
use crate::io::{Source, Target};
use crate::spec::{OutputFormat, Spec, TiffCompression};

pub mod cmyk;
pub mod exif;
pub mod gif;
pub mod hdr;
pub mod jpeg;
pub mod png;
pub mod pnm;
pub mod svg;
pub mod tiff;
pub mod webp;

/// A format we can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy, lossless, animated: first frame).
    Webp,
    /// TIFF and BigTIFF.
    Tiff,
    /// PBM/PGM/PPM (P1..P6) and PAM (P7).
    Pnm,
    /// Portable float map (Pf / PF).
    Pfm,
    /// GIF (first frame).
    Gif,
    /// Radiance RGBE.
    Hdr,
    /// SVG.
    Svg,
}

impl InputFormat {
    /// Short lowercase name for messages and `info`.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Jpeg => "jpeg",
            InputFormat::Png => "png",
            InputFormat::Webp => "webp",
            InputFormat::Tiff => "tiff",
            InputFormat::Pnm => "pnm",
            InputFormat::Pfm => "pfm",
            InputFormat::Gif => "gif",
            InputFormat::Hdr => "hdr",
            InputFormat::Svg => "svg",
        }
    }

    /// The output format used when a spec names none: the same format, or PNG when we
    /// have no saver for it.
    pub fn default_output(self) -> OutputFormat {
        match self {
            InputFormat::Jpeg => OutputFormat::Jpeg,
            InputFormat::Png => OutputFormat::Png,
            InputFormat::Webp => OutputFormat::Webp,
            InputFormat::Tiff => OutputFormat::Tiff,
            InputFormat::Pnm => OutputFormat::Pnm,
            InputFormat::Pfm => OutputFormat::Pfm,
            InputFormat::Gif | InputFormat::Hdr | InputFormat::Svg => OutputFormat::Png,
        }
    }

    /// Whether a loader for this format is built in.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            InputFormat::Jpeg
                | InputFormat::Png
                | InputFormat::Pnm
                | InputFormat::Pfm
                | InputFormat::Gif
                | InputFormat::Hdr
                | InputFormat::Svg
                | InputFormat::Webp
                | InputFormat::Tiff
        )
    }
}

/// How many leading bytes [`detect`] needs.
pub const SNIFF_LEN: usize = 64;

/// Identifies a format from the first bytes of a file.
pub fn detect(head: &[u8]) -> Option<InputFormat> {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Some(InputFormat::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Some(InputFormat::Png);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some(InputFormat::Webp);
    }
    if starts(b"II*\0") || starts(b"MM\0*") || starts(b"II+\0") || starts(b"MM\0+") {
        return Some(InputFormat::Tiff);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Some(InputFormat::Gif);
    }
    if starts(b"#?RADIANCE") || starts(b"#?RGBE") {
        return Some(InputFormat::Hdr);
    }
    if head.len() >= 3 && head[0] == b'P' && head[2].is_ascii_whitespace() {
        match head[1] {
            b'1'..=b'7' => return Some(InputFormat::Pnm),
            b'f' | b'F' => return Some(InputFormat::Pfm),
            _ => {}
        }
    }
    if looks_like_svg(head) {
        return Some(InputFormat::Svg);
    }
    None
}

fn looks_like_svg(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with("<svg") || (t.starts_with("<?xml") && text.contains("<svg"))
}

/// What a loader may do beyond plain decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Requested integer box shrink. A loader may apply any divisor of it (shrink-on-load) and
    /// reports what it applied in [`Loaded::shrink`]; the pipeline does the rest.
    pub shrink: u32,
    /// Page of a multi-page file.
    pub page: u32,
    /// Refuse images with more pixels than this.
    pub max_pixels: u64,
    /// Largest input a loader may read into memory (unseekable TIFF, whole-image formats).
    pub memory_limit: u64,
    /// For vector formats: render to fit this box directly.
    pub fit: Option<(u32, u32)>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            shrink: 1,
            page: 0,
            max_pixels: 200_000_000,
            memory_limit: 1 << 30,
            fit: None,
        }
    }
}

/// A loader's output: a strip stream plus the part of the requested shrink it applied.
pub struct Loaded<'a> {
    /// Decoded strips; its header gives the (possibly shrunk) size.
    pub stream: BoxStream<'a>,
    /// Box shrink factor already applied: a divisor of [`LoadOptions::shrink`], or when
    /// [`LoadOptions::fit`] is set (a resize follows) any factor up to it.
    pub shrink: u32,
}

/// Saver settings taken from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveOptions {
    /// JPEG / lossy WebP quality 1..100.
    pub quality: u8,
    /// PNG compression 0..9; `None` is the fast deflate mode.
    pub compression: Option<u8>,
    /// Lossless WebP.
    pub lossless: bool,
    /// TIFF compression; `None` is uncompressed.
    pub tiff_compression: Option<TiffCompression>,
    /// Drop EXIF, XMP and ICC.
    pub strip: bool,
}

impl SaveOptions {
    /// The save settings a spec asks for.
    pub fn from_spec(spec: &Spec) -> Self {
        SaveOptions {
            quality: spec.quality_or_default(),
            compression: spec.compression,
            lossless: spec.lossless,
            tiff_compression: spec.tiff_compression,
            strip: spec.strip,
        }
    }
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions::from_spec(&Spec::identity())
    }
}

/// Detects the format of a source without consuming it.
pub fn sniff(src: &mut Source) -> Result<InputFormat> {
    let head = src.sniff(SNIFF_LEN).map_err(Error::Read)?;
    detect(&head).ok_or(Error::UnknownFormat)
}

/// Reads only the header; the source is rewound afterwards, ready to be loaded.
pub fn probe(src: &mut Source, format: InputFormat) -> Result<Header> {
    let header = match format {
        InputFormat::Jpeg => jpeg::probe(src),
        InputFormat::Png => png::probe(src),
        InputFormat::Pnm | InputFormat::Pfm => pnm::probe(src),
        InputFormat::Gif => gif::probe(src),
        InputFormat::Hdr => hdr::probe(src),
        InputFormat::Svg => svg::probe(src),
        InputFormat::Webp => webp::probe(src),
        InputFormat::Tiff => tiff::probe(src),
    }?;
    src.rewind().map_err(Error::Read)?;
    Ok(header)
}

/// Opens the pixel stream. Checks the pixel limit before any allocation.
pub fn load<'a>(src: Source<'a>, format: InputFormat, opts: &LoadOptions) -> Result<Loaded<'a>> {
    match format {
        InputFormat::Jpeg => jpeg::load(src, opts),
        InputFormat::Png => png::load(src, opts),
        InputFormat::Pnm | InputFormat::Pfm => pnm::load(src, opts),
        InputFormat::Gif => gif::load(src, opts),
        InputFormat::Hdr => hdr::load(src, opts),
        InputFormat::Svg => svg::load(src, opts),
        InputFormat::Webp => webp::load(src, opts),
        InputFormat::Tiff => tiff::load(src, opts),
    }
}

/// Encodes a stream into a target, then finishes the target.
pub fn save(
    stream: BoxStream,
    format: OutputFormat,
    opts: &SaveOptions,
    target: &mut dyn Target,
) -> Result<()> {
    match format {
        OutputFormat::Jpeg => jpeg::save(stream, opts, target),
        OutputFormat::Png => png::save(stream, opts, target),
        OutputFormat::Pnm => pnm::save(stream, opts, target, false),
        OutputFormat::Pfm => pnm::save(stream, opts, target, true),
        OutputFormat::Webp => webp::save(stream, opts, target),
        OutputFormat::Tiff => tiff::save::save(stream, opts, target),
    }
}

/// Refuses headers over the pixel limit or with a zero dimension.
pub fn check_limits(header: &Header, max_pixels: u64) -> Result<()> {
    if header.width == 0 || header.height == 0 {
        return Err(Error::Unsupported(format!(
            "zero-sized image ({}x{})",
            header.width, header.height
        )));
    }
    if header.pixels() > max_pixels {
        return Err(Error::TooLarge {
            width: header.width as u64,
            height: header.height as u64,
            limit: max_pixels,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_pick_formats() {
        assert_eq!(detect(b"\xFF\xD8\xFF\xE0"), Some(InputFormat::Jpeg));
        assert_eq!(detect(b"P6\n3 2\n255\n"), Some(InputFormat::Pnm));
        assert_eq!(detect(b"Pf\n3 2\n-1\n"), Some(InputFormat::Pfm));
        assert_eq!(detect(b"RIFF\0\0\0\0WEBPVP8 "), Some(InputFormat::Webp));
        assert_eq!(detect(b"<?xml version='1.0'?><svg"), Some(InputFormat::Svg));
        assert_eq!(detect(b"hello"), None);
    }
}
