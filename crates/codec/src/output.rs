//! The output formats a saver exists for, as the spec names them.

/// An output format a saver exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// JPEG (`jpg`).
    Jpeg,
    /// PNG (`png`).
    Png,
    /// WebP (`webp`).
    Webp,
    /// TIFF (`tif`).
    Tiff,
    /// PNM family: PGM, PPM or PAM by band count (`ppm`).
    Pnm,
    /// Portable float map (`pfm`).
    Pfm,
    /// AVIF (`avif`).
    Avif,
}

impl OutputFormat {
    /// The output of sources whose format has no saver.
    pub const FALLBACK: OutputFormat = OutputFormat::Png;

    /// The spec token, also the usual file extension (from the codec table).
    pub fn token(self) -> &'static str {
        crate::saver(self).token
    }

    /// Parses a format token or a file extension (case-insensitive; `jpeg`, `tiff`, `pgm`... too).
    pub fn from_extension(ext: &str) -> Option<Self> {
        let ext = ext.to_ascii_lowercase();
        crate::CODECS
            .iter()
            .filter_map(|c| c.saver.as_ref())
            .find(|s| s.token == ext || s.aliases.contains(&ext.as_str()))
            .map(|s| s.format)
    }

    /// Whether the `q` token means something for this format.
    pub fn takes_quality(self) -> bool {
        crate::saver(self).quality
    }
}

/// Compression for TIFF output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TiffCompression {
    /// LZW (`lzw`).
    Lzw,
    /// Deflate (`deflate`).
    Deflate,
}
