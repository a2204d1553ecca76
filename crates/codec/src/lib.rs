//! Loaders and savers, one module per format, chosen by magic bytes (never by extension).

#![warn(missing_docs)]

// The lower crates' modules under the names the code has always used (`crate::error`, ...);
// the crate graph, not these names, keeps the layers apart.
use thumbfs_core::{alloc, error, image, io, simd};

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, SampleFormat};
use crate::io::{Source, Target};

pub mod cast;
mod output;

pub use output::{OutputFormat, TiffCompression};
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
    /// HEIF with HEVC (HEIC).
    Heic,
    /// AVIF (HEIF with AV1).
    Avif,
    /// JPEG XL.
    Jxl,
}

/// The saving half of a codec table entry.
pub struct Saver {
    /// The output format, as the spec names it.
    pub format: OutputFormat,
    /// The spec token, also the extension given to outputs.
    pub token: &'static str,
    /// Other extensions that name this output format (`thumbfs convert in.jpg out.jpeg`).
    pub aliases: &'static [&'static str],
    /// Sample types the saver takes; [`save`] casts anything else to one of them first.
    pub accepts: &'static [SampleFormat],
    /// Whether `q<N>` applies.
    pub quality: bool,
    /// Largest image the format (or its library) can hold, checked when a render is planned.
    pub limits: SaverLimits,
    /// Encodes a stream into a target, then finishes the target.
    pub save: fn(BoxStream, &SaveOptions, &mut dyn Target) -> Result<()>,
    /// How it saves, with which library (the README's table).
    pub notes: &'static str,
}

/// A saver's own size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaverLimits {
    /// Largest width or height.
    pub max_side: u32,
    /// Largest total of sample bytes (width x height x bands x bytes per sample).
    pub max_bytes: u64,
    /// Where the limit comes from, for the error message.
    pub why: &'static str,
}

impl SaverLimits {
    /// No limit beyond the 32-bit sizes every header has.
    pub const NONE: SaverLimits = SaverLimits {
        max_side: u32::MAX,
        max_bytes: u64::MAX,
        why: "",
    };
}

/// One row of the codec table: everything thumbfs knows about a format.
pub struct Codec {
    /// The format loaded.
    pub input: InputFormat,
    /// Short lowercase name for messages and `info`.
    pub name: &'static str,
    /// What the README's format table calls it.
    pub title: &'static str,
    /// Typical extensions of source files (documentation: sources are recognised by content).
    pub extensions: &'static [&'static str],
    /// Output when a spec names none; `None`: its own saver's format, else the fallback.
    pub serve_as: Option<OutputFormat>,
    /// Recognises the format from the first [`SNIFF_LEN`] bytes.
    pub sniff: fn(&[u8]) -> bool,
    /// Reads the header only.
    pub probe: fn(&mut Source) -> Result<Header>,
    /// Opens the pixel stream (checking the pixel limit before any allocation).
    pub load: for<'a> fn(Source<'a>, &LoadOptions) -> Result<Loaded<'a>>,
    /// The saver, when thumbfs writes this format.
    pub saver: Option<Saver>,
    /// What is decoded, how, and with which library (the README's table).
    pub notes: &'static str,
}

use SampleFormat::{F32, U16, U8};

/// Every format, in sniffing order (SVG last: its test is the loosest).
pub static CODECS: &[Codec] = &[
    Codec {
        input: InputFormat::Jpeg,
        name: "jpeg",
        title: "JPEG",
        extensions: &["jpg", "jpeg", "jpe", "jfif"],
        serve_as: None,
        sniff: |h| h.starts_with(&[0xFF, 0xD8, 0xFF]),
        probe: jpeg::probe,
        load: jpeg::load,
        saver: Some(Saver {
            format: OutputFormat::Jpeg,
            limits: SaverLimits { max_side: 65_500, max_bytes: u64::MAX, why: "libjpeg's JPEG_MAX_DIMENSION" },
            token: "jpg",
            aliases: &["jpeg", "jpe", "jfif"],
            accepts: &[U8],
            quality: true,
            save: jpeg::save,
            notes: "libjpeg-turbo (mozjpeg-sys, mozjpeg's extras off), strips written as scanlines; ICC, EXIF, XMP",
        }),
        notes: "band by band; baseline, progressive, every subsampling, grey, RGB, CMYK/YCCK (through the embedded CMYK profile with moxcms, else the naive formula); YCbCr and grey files at full size, progressive ones and, before a resize, scaled in the DCT (1/2, 1/4, 1/8; progressive 1/8 without the AC scans it does not need) with libjpeg-turbo (mozjpeg-sys); exact shrinks of baseline files and other codings with zune-jpeg's raw rows (the patched copy in `vendor/`), shrunk at the planes' stored resolution",
    },
    Codec {
        input: InputFormat::Png,
        name: "png",
        title: "PNG",
        extensions: &["png"],
        serve_as: None,
        sniff: |h| h.starts_with(b"\x89PNG\r\n\x1a\n"),
        probe: png::probe,
        load: png::load,
        saver: Some(Saver {
            format: OutputFormat::Png,
            limits: SaverLimits { max_side: i32::MAX as u32, max_bytes: u64::MAX, why: "the PNG specification" },
            token: "png",
            aliases: &[],
            accepts: &[U8, U16],
            quality: false,
            save: png::save,
            notes: "png StreamWriter; fast deflate by default, `c<N>`; ICC, EXIF, XMP",
        }),
        notes: "png, row by row (interlaced whole); palette, 1-16 bit, alpha, tRNS; eXIf, iCCP, iTXt XMP",
    },
    Codec {
        input: InputFormat::Webp,
        name: "webp",
        title: "WebP",
        extensions: &["webp"],
        serve_as: None,
        sniff: |h| h.len() >= 12 && &h[..4] == b"RIFF" && &h[8..12] == b"WEBP",
        probe: webp::probe,
        load: webp::load,
        saver: Some(Saver {
            format: OutputFormat::Webp,
            limits: SaverLimits { max_side: 16_383, max_bytes: u64::MAX, why: "WebP's 14-bit size fields" },
            token: "webp",
            aliases: &[],
            accepts: &[U8],
            quality: true,
            save: webp::save,
            notes: "lossy (libwebp via the `webp` crate, single-threaded so bytes are reproducible) or `lossless` (image-webp); ICC, EXIF, XMP",
        }),
        notes: "image-webp: lossy, lossless, alpha, first frame, whole image; ICC, EXIF (an `Exif\\0\\0` prefix is dropped), XMP",
    },
    Codec {
        input: InputFormat::Tiff,
        name: "tiff",
        title: "TIFF",
        extensions: &["tif", "tiff"],
        serve_as: None,
        sniff: |h| {
            h.starts_with(b"II*\0")
                || h.starts_with(b"MM\0*")
                || h.starts_with(b"II+\0")
                || h.starts_with(b"MM\0+")
        },
        probe: tiff::probe,
        load: tiff::load,
        saver: Some(Saver {
            format: OutputFormat::Tiff,
            limits: SaverLimits { max_side: u32::MAX, max_bytes: (1 << 32) - (64 << 20), why: "classic TIFF's 32-bit offsets, less room for tags" },
            token: "tif",
            aliases: &["tiff"],
            accepts: &[U8, U16],
            quality: false,
            save: tiff::save::save,
            notes: "assembled in memory, then written; uncompressed/`lzw`/`deflate`; unassociated alpha; ICC, XMP",
        }),
        notes: "tiff: strips and tiles on demand; 1-16 bit, float, grey/RGB(A) with associated alpha un-premultiplied (an unspecified extra sample is alpha, as libvips reads it), palette, 8-bit CMYK (embedded profile or naive formula) and YCbCr, LZW/Deflate/PackBits/CCITT G3 (1-D, via the `fax` crate) and G4, JPEG (chunks decoded by our JPEG loader); pages; pyramids (the smallest usable reduced-resolution page serves shrink-on-load). Not: old-style JPEG, 2-D G3, Lab",
    },
    Codec {
        input: InputFormat::Heic,
        name: "heic",
        title: "HEIC / HEIF",
        extensions: &["heic", "heif", "hif"],
        // Photo formats come out as JPEG, as a camera roll's viewer expects.
        serve_as: Some(OutputFormat::Jpeg),
        sniff: heif::sniff_heic,
        probe: heif::probe_heic,
        load: heif::load_heic,
        saver: None,
        notes: "libheif 1.15 (Debian bookworm's libheif1, with libde265), opened on first use, with libheif-sys 1.14.4's declarations, the newest bindings that accept libheif < 1.16; whole image, primary image with its irot/imir/clap transforms, grid, alpha, 8-12 bit, ICC, EXIF, XMP; for a resize, the smallest embedded thumbnail larger than the target (as libvips' thumbnail)",
    },
    Codec {
        input: InputFormat::Avif,
        name: "avif",
        title: "AVIF",
        extensions: &["avif"],
        // Photo formats come out as JPEG, as a camera roll's viewer expects.
        serve_as: Some(OutputFormat::Jpeg),
        sniff: heif::sniff_avif,
        probe: heif::probe_avif,
        load: heif::load_avif,
        saver: Some(Saver {
            format: OutputFormat::Avif,
            limits: SaverLimits { max_side: 32_768, max_bytes: u64::MAX, why: "libheif reads no larger image" },
            token: "avif",
            aliases: &[],
            accepts: &[U8],
            quality: true,
            save: heif::save_avif,
            notes: "libheif with Debian's aom, speed 8, one thread (reproducible bytes), 8-bit 4:2:0, alpha, ICC, EXIF",
        }),
        notes: "libheif (with dav1d), as HEIC: transforms, grid, alpha, 8-12 bit, ICC, EXIF",
    },
    Codec {
        input: InputFormat::Jxl,
        name: "jxl",
        title: "JPEG XL",
        extensions: &["jxl"],
        // Photo formats come out as JPEG, as a camera roll's viewer expects.
        serve_as: Some(OutputFormat::Jpeg),
        sniff: jxl::sniff,
        probe: jxl::probe,
        load: jxl::load,
        saver: None,
        notes: "jxl-oxide (pure Rust); whole image, lossy and lossless, alpha, 8-16 bit, ICC, orientation, EXIF and XMP boxes (also Brotli-compressed). Not: reduced-size decode (jxl-oxide 0.12 renders full resolution only)",
    },
    Codec {
        input: InputFormat::Gif,
        name: "gif",
        title: "GIF",
        extensions: &["gif"],
        serve_as: None,
        sniff: |h| h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a"),
        probe: gif::probe,
        load: gif::load,
        saver: None,
        notes: "gif: first frame, transparency",
    },
    Codec {
        input: InputFormat::Hdr,
        name: "hdr",
        title: "Radiance HDR",
        extensions: &["hdr"],
        serve_as: None,
        sniff: |h| h.starts_with(b"#?RADIANCE") || h.starts_with(b"#?RGBE"),
        probe: hdr::probe,
        load: hdr::load,
        saver: None,
        notes: "hand-written, streamed, linear float (tone-mapped to PNG by default; `pfm` keeps floats)",
    },
    Codec {
        input: InputFormat::Pnm,
        name: "pnm",
        title: "PBM / PGM / PPM / PAM",
        extensions: &["pbm", "pgm", "ppm", "pnm", "pam"],
        serve_as: None,
        sniff: |h| h.len() >= 3 && h[0] == b'P' && (b'1'..=b'7').contains(&h[1]) && h[2].is_ascii_whitespace(),
        probe: pnm::probe,
        load: pnm::load,
        saver: Some(Saver {
            format: OutputFormat::Pnm,
            limits: SaverLimits::NONE,
            token: "ppm",
            aliases: &["pgm", "pbm", "pnm", "pam"],
            accepts: &[U8, U16],
            quality: false,
            save: |s, o, t| pnm::save(s, o, t, false),
            notes: "PGM, PPM or PAM by band count",
        }),
        notes: "hand-written, streamed; plain and binary, 1-16 bit",
    },
    Codec {
        input: InputFormat::Pfm,
        name: "pfm",
        title: "PFM",
        extensions: &["pfm"],
        serve_as: None,
        sniff: |h| h.len() >= 3 && h[0] == b'P' && matches!(h[1], b'f' | b'F') && h[2].is_ascii_whitespace(),
        probe: pnm::probe,
        load: pnm::load,
        saver: Some(Saver {
            format: OutputFormat::Pfm,
            limits: SaverLimits::NONE,
            token: "pfm",
            aliases: &[],
            accepts: &[F32],
            quality: false,
            save: |s, o, t| pnm::save(s, o, t, true),
            notes: "little-endian float",
        }),
        notes: "hand-written, streamed; linear float",
    },
    Codec {
        input: InputFormat::Svg,
        name: "svg",
        title: "SVG",
        extensions: &["svg"],
        serve_as: None,
        sniff: looks_like_svg,
        probe: svg::probe,
        load: svg::load,
        saver: None,
        notes: "resvg (no text), drawn directly at the requested size",
    },
];

impl InputFormat {
    /// This format's row of the codec table.
    pub fn codec(self) -> &'static Codec {
        CODECS
            .iter()
            .find(|c| c.input == self)
            .expect("every input format has a codec table row")
    }

    /// Short lowercase name for messages and `info`.
    pub fn name(self) -> &'static str {
        self.codec().name
    }

    /// The output format used when a spec names none: the same format, or the fallback when
    /// we have no saver for it.
    pub fn default_output(self) -> OutputFormat {
        let c = self.codec();
        c.serve_as.unwrap_or_else(|| {
            c.saver
                .as_ref()
                .map_or(OutputFormat::FALLBACK, |s| s.format)
        })
    }

    /// Whether a loader for this format is built in.
    pub fn is_supported(self) -> bool {
        true
    }
}

/// The table row of the codec that saves `format`.
pub fn saver(format: OutputFormat) -> &'static Saver {
    CODECS
        .iter()
        .filter_map(|c| c.saver.as_ref())
        .find(|s| s.format == format)
        .expect("every output format has a saver in the codec table")
}

/// How many leading bytes [`detect`] needs.
pub const SNIFF_LEN: usize = 64;

/// Identifies a format from the first bytes of a file.
pub fn detect(head: &[u8]) -> Option<InputFormat> {
    CODECS.iter().find(|c| (c.sniff)(head)).map(|c| c.input)
}

/// The output format tokens, in table order (`jpg png webp ...`).
pub fn format_tokens() -> Vec<&'static str> {
    CODECS
        .iter()
        .filter_map(|c| c.saver.as_ref().map(|s| s.token))
        .collect()
}

/// The tokens of output formats that take `q<N>`.
pub fn quality_tokens() -> Vec<&'static str> {
    CODECS
        .iter()
        .filter_map(|c| c.saver.as_ref().filter(|s| s.quality).map(|s| s.token))
        .collect()
}

/// The titles of every loadable format, for help texts.
pub fn input_titles() -> Vec<&'static str> {
    CODECS.iter().map(|c| c.title).collect()
}

/// The README's format table (Markdown), generated from [`CODECS`].
pub fn markdown_table() -> String {
    let mut t = String::from("| format | load | save: token (sample types) |\n|---|---|---|\n");
    for c in CODECS {
        let save = match &c.saver {
            Some(s) => {
                let takes: Vec<&str> = s
                    .accepts
                    .iter()
                    .map(|f| match f {
                        U8 => "8-bit",
                        U16 => "16-bit",
                        F32 => "float",
                    })
                    .collect();
                format!("`{}` ({}): {}", s.token, takes.join(", "), s.notes)
            }
            None => format!("(served as {})", c.input.default_output().token()),
        };
        let exts: Vec<String> = c.extensions.iter().map(|e| format!(".{e}")).collect();
        t.push_str(&format!(
            "| {} ({}) | {} | {save} |\n",
            c.title,
            exts.join(" "),
            c.notes
        ));
    }
    t
}

/// Which sources come out in which format when a spec names none (`HEIC / HEIF, AVIF: jpg`).
pub fn default_outputs() -> String {
    let mut v: Vec<String> = CODECS
        .iter()
        .filter_map(|c| c.serve_as.map(|f| format!("{} as {}", c.title, f.token())))
        .collect();
    v.push(format!(
        "other formats without a saver as {}",
        OutputFormat::FALLBACK.token()
    ));
    v.join(", ")
}

/// The `thumbfs --help` epilogue: formats and format tokens, from [`CODECS`].
pub fn help_text() -> String {
    format!(
        "Formats read (recognised by content): {}.\nOutput format tokens: {} (default: the \
         source's format; {}).",
        input_titles().join(", "),
        format_tokens().join(" "),
        default_outputs()
    )
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

/// Quality when a spec gives none (libvips' default too).
pub const DEFAULT_QUALITY: u8 = 75;

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            quality: DEFAULT_QUALITY,
            compression: None,
            lossless: false,
            tiff_compression: None,
            strip: false,
        }
    }
}

/// Detects the format of a source without consuming it.
pub fn sniff(src: &mut Source) -> Result<InputFormat> {
    let head = src.sniff(SNIFF_LEN).map_err(Error::Read)?;
    #[cfg(feature = "fault-injection")]
    fault::strike(&head)?;
    detect(&head).ok_or(Error::UnknownFormat)
}

/// Opens, before a render worker is sandboxed, what codecs would otherwise open on first use
/// (libheif and its plugins), since a sandboxed worker can open no file.
pub fn preload() {
    let _ = heif::init();
}

/// Reads only the header; the source is rewound afterwards, ready to be loaded.
pub fn probe(src: &mut Source, format: InputFormat) -> Result<Header> {
    let header = (format.codec().probe)(src)?;
    src.rewind().map_err(Error::Read)?;
    Ok(header)
}

/// Opens the pixel stream. Checks the pixel limit before any allocation.
pub fn load<'a>(src: Source<'a>, format: InputFormat, opts: &LoadOptions) -> Result<Loaded<'a>> {
    (format.codec().load)(src, opts)
}

/// Encodes a stream into a target, then finishes the target. Samples are first cast to a
/// type the saver takes (the one cast rule, [`cast`]).
pub fn save(
    stream: BoxStream,
    format: OutputFormat,
    opts: &SaveOptions,
    target: &mut dyn Target,
) -> Result<()> {
    let saver = saver(format);
    let h = stream.header();
    // Planned sizes were checked already; this catches a loader whose output differs.
    check_saver(format, h.width as u64, h.height as u64, h.bands, h.format)?;
    (saver.save)(cast::to_accepted(stream, saver.accepts), opts, target)
}

/// Checks a `w x h` image of `bands` samples of `format` against the limits of the saver of
/// `output` (after the cast the saver needs).
pub fn check_saver(
    output: OutputFormat,
    w: u64,
    h: u64,
    bands: u8,
    format: SampleFormat,
) -> Result<()> {
    let saver = saver(output);
    let lim = saver.limits;
    let title = CODECS
        .iter()
        .find(|c| c.saver.as_ref().is_some_and(|s| s.format == output))
        .map_or(saver.token, |c| c.title);
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
    fn readme_format_table_is_the_codec_table() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's format table differs from codec::markdown_table():\n{}",
            markdown_table()
        );
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
