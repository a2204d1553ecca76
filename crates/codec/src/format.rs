//! [`Format`]: a cheap handle on a registered codec, used as input and as output format.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::{gif, hdr, heif, jpeg, jxl, png, pnm, raw, svg, tiff, webp};
use crate::{About, Codec, Saver};

/// A format: a handle on its codec. Equal when the codecs' names are.
#[derive(Clone, Copy)]
pub struct Format(pub &'static dyn Codec);

/// A format as read (the codec that loads it).
pub type InputFormat = Format;
/// A format as written (the codec's [`Saver`]).
pub type OutputFormat = Format;

/// The built-in formats by name, spelled as the enum variants they replace; new formats need
/// no such constant (the registry finds them by token).
#[allow(non_upper_case_globals)]
impl Format {
    /// JPEG / JFIF / EXIF.
    pub const Jpeg: Format = Format(&jpeg::Jpeg);
    /// PNG.
    pub const Png: Format = Format(&png::Png);
    /// WebP.
    pub const Webp: Format = Format(&webp::Webp);
    /// TIFF and BigTIFF.
    pub const Tiff: Format = Format(&tiff::Tiff);
    /// PBM/PGM/PPM (P1..P6) and PAM (P7).
    pub const Pnm: Format = Format(&pnm::PnmCodec);
    /// Portable float map (Pf / PF).
    pub const Pfm: Format = Format(&pnm::PfmCodec);
    /// GIF.
    pub const Gif: Format = Format(&gif::Gif);
    /// Radiance RGBE.
    pub const Hdr: Format = Format(&hdr::Hdr);
    /// SVG.
    pub const Svg: Format = Format(&svg::Svg);
    /// HEIF with HEVC (HEIC).
    pub const Heic: Format = Format(&heif::Heic);
    /// AVIF (HEIF with AV1).
    pub const Avif: Format = Format(&heif::Avif);
    /// JPEG XL.
    pub const Jxl: Format = Format(&jxl::Jxl);
    /// Camera RAW (DNG, CR2, CR3, NEF, ARW, PEF, ORF, RW2, RAF).
    pub const Raw: Format = Format(&raw::Raw);
}

impl Format {
    /// The output of sources whose format has no saver.
    pub const FALLBACK: Format = Format::Png;

    /// The codec.
    pub fn codec(self) -> &'static dyn Codec {
        self.0
    }

    /// Names, extensions and notes.
    pub fn about(self) -> &'static About {
        self.0.about()
    }

    /// Short lowercase name for messages and `info`.
    pub fn name(self) -> &'static str {
        self.about().name
    }

    /// The saver, when thumbfs writes this format.
    pub fn saver(self) -> Option<&'static Saver> {
        self.0.saver()
    }

    /// The spec token, also the usual file extension of outputs (the name if it has no saver).
    pub fn token(self) -> &'static str {
        self.saver().map_or(self.name(), |s| s.token)
    }

    /// The output format used when a spec names none: the same format, or the fallback when
    /// there is no saver for it.
    pub fn default_output(self) -> Format {
        self.about().serve_as.unwrap_or(if self.saver().is_some() {
            self
        } else {
            Format::FALLBACK
        })
    }

    /// Parses an output format token or file extension of a built-in format (case-insensitive;
    /// `jpeg`, `tiff`, `pgm`... too). See [`crate::Registry::output`].
    pub fn from_extension(ext: &str) -> Option<Format> {
        crate::Registry::builtin().output(ext)
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Format {}

impl Hash for Format {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state)
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
