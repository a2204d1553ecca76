//! Loaders and savers, one module per format, chosen by magic bytes (never by extension).

#![warn(missing_docs)]

// The lower crates' modules under the names the code has always used (`crate::error`, ...);
// the crate graph, not these names, keeps the layers apart.
use thumbfs_core::{alloc, error, image, io, simd};

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, SampleFormat};
use crate::io::{Source, Target};

pub mod cast;
mod contract;
mod format;
mod registry;

pub use contract::{
    About, Animated, Animation, Aux, AuxKind, Codec, Frame, Frames, Limits, LoadOptions, Loaded,
    SaveAnimation, SaveOption, SaveOptions, Saver, SaverLimits, QUALITY,
};
pub use format::{Format, InputFormat, OutputFormat};
pub use registry::{option_of, Registry};

pub mod blurhash;
pub mod cmyk;
pub mod exif;
#[cfg(feature = "fault-injection")]
mod fault;
pub mod gif;
pub mod hdr;
pub mod heif;
pub mod jpeg;
pub mod jxl;
pub mod png;
pub mod pnm;
pub mod raw;
pub mod svg;
pub mod thumbhash;
pub mod tiff;
pub mod video;
pub mod webp;

/// The built-in codecs, one line per format, in sniffing order (SVG last: its test is the
/// loosest). Adding a format: its module, and its line here.
pub static BUILTIN: &[&dyn Codec] = &[
    &jpeg::Jpeg,
    &png::Png,
    &webp::Webp,
    // Before TIFF: DNG, CR2, NEF, ARW and PEF are TIFF files.
    &raw::Raw,
    &tiff::Tiff,
    &heif::Heic,
    &heif::Avif,
    &jxl::Jxl,
    &gif::Gif,
    &hdr::Hdr,
    &pnm::PnmCodec,
    &pnm::PfmCodec,
    &video::Video,
    &svg::Svg,
    &thumbhash::ThumbHash,
    &blurhash::BlurHash,
];

/// How many leading bytes [`detect`] needs: a RAW that is a TIFF (DNG, NEF, ARW, PEF) is told
/// from other TIFFs by IFD0's tags and its Make string, which cameras write within the first
/// few hundred bytes.
pub const SNIFF_LEN: usize = 4096;

/// Identifies a built-in format from the first bytes of a file.
pub fn detect(head: &[u8]) -> Option<Format> {
    Registry::builtin().detect(head)
}

/// Detects the built-in format of a source without consuming it.
pub fn sniff(src: &mut Source) -> Result<Format> {
    Registry::builtin().sniff(src)
}

/// The `thumbfs --help` epilogue of the built-in registry.
pub fn help_text() -> String {
    Registry::builtin().help_text()
}

/// Opens, before a render worker is sandboxed, what codecs would otherwise open on first use
/// (libheif and its plugins, FFmpeg), since a sandboxed worker can open no file.
pub fn preload() {
    let _ = heif::init();
    let _ = video::init();
}

/// Reads only the header within the default [`Limits`]; the source is rewound afterwards.
pub fn probe(src: &mut Source, format: Format) -> Result<Header> {
    probe_with(src, format, &Limits::default())
}

/// Reads only the header (within `limits`); the source is rewound afterwards, ready to be
/// loaded.
pub fn probe_with(src: &mut Source, format: Format, limits: &Limits) -> Result<Header> {
    let header = format.codec().probe(src, limits)?;
    src.rewind().map_err(Error::Read)?;
    Ok(header)
}

/// Opens the pixel stream. Checks the pixel limit before any allocation.
pub fn load<'a>(src: Source<'a>, format: Format, opts: &LoadOptions) -> Result<Loaded<'a>> {
    format.codec().load(src, opts)
}

fn saver_of(format: Format) -> Result<&'static Saver> {
    format
        .saver()
        .ok_or_else(|| Error::Unsupported(format!("no saver for {}", format.name())))
}

/// Encodes a stream into a target, then finishes the target. Samples are first cast to a
/// type the saver takes (the one cast rule, [`cast`]).
pub fn save(
    stream: BoxStream,
    format: Format,
    opts: &SaveOptions,
    target: &mut dyn Target,
) -> Result<()> {
    let saver = saver_of(format)?;
    let h = stream.header();
    // Planned sizes were checked already; this catches a loader whose output differs.
    check_saver(format, h.width as u64, h.height as u64, h.bands, h.format)?;
    (saver.save)(cast::to_accepted(stream, saver.accepts), opts, target)
}

/// Encodes an animation through the animation saver of `format` (frames already cast to a
/// type its [`Saver::accepts`]), then finishes the target.
pub fn save_animation(
    anim: Animated,
    format: Format,
    opts: &SaveOptions,
    target: &mut dyn Target,
) -> Result<()> {
    let save = format.codec().save_animation().ok_or_else(|| {
        Error::Unsupported(format!("{} output carries no animation", format.name()))
    })?;
    let h = &anim.header;
    check_saver(format, h.width as u64, h.height as u64, h.bands, h.format)?;
    save(anim, opts, target)
}

/// Checks a `w x h` image of `bands` samples of `format` against the limits of the saver of
/// `output` (after the cast the saver needs).
pub fn check_saver(output: Format, w: u64, h: u64, bands: u8, format: SampleFormat) -> Result<()> {
    let saver = saver_of(output)?;
    let lim = saver.limits;
    let title = output.about().title;
    if w > lim.max_side as u64 || h > lim.max_side as u64 {
        return Err(Error::Limit(format!(
            "{title} output is limited to {} px per side ({}): {w}x{h} asked",
            lim.max_side, lim.why
        )));
    }
    let bytes = w
        .saturating_mul(h)
        .saturating_mul(bands as u64)
        .saturating_mul(cast::target_format(format, saver.accepts).bytes() as u64);
    if bytes > lim.max_bytes {
        return Err(Error::Limit(format!(
            "{title} output is limited to {} bytes of samples ({}): {w}x{h} needs {bytes}",
            lim.max_bytes, lim.why
        )));
    }
    Ok(())
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
    fn readme_tables_come_from_the_registry() {
        let readme = include_str!("../../../README.md");
        let r = Registry::builtin();
        for table in [r.markdown_table(), r.markdown_tokens()] {
            assert!(
                readme.contains(&table),
                "README.md differs from the registry's table:\n{table}"
            );
        }
    }

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
