//! The transform grammar: `q90_shrink2`, `w256_webp`, ... as directory names and CLI arguments.
//!
//! Tokens are joined by `_` in any order; operations always run in one fixed order (see
//! [`Spec`]), so every transform has one canonical spelling, printed by `Display`.

use std::fmt;
use std::str::FromStr;

pub use crate::error::SpecError;

fn err(token: &str, rule: impl Into<String>) -> SpecError {
    SpecError {
        token: token.to_string(),
        rule: rule.into(),
    }
}

pub use crate::codec::{OutputFormat, TiffCompression};
pub use crate::ops::CropRect;
pub use crate::ops::Rotation;

/// Largest width or height any token may ask for.
pub const MAX_DIMENSION: u32 = 1 << 20;

/// A parsed transform. Operations run in this field order:
/// load (`page`), autorotate, `shrink`, thumbnail (`w`/`h`/`WxH`, `fill`, `up`), `crop`,
/// rotate, `flip`, `flop`, `grey`, `invert`; then save (`format`, `q`, `c`, `lossless`,
/// TIFF compression, `strip`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Spec {
    /// Page of a multi-page file (`page<N>`), 0-based.
    pub page: Option<u32>,
    /// `noautorotate`: keep stored pixels and the orientation tag.
    pub no_autorotate: bool,
    /// Integer box shrink (`shrink<N>`).
    pub shrink: Option<u32>,
    /// Thumbnail width bound (`w<N>` or the W of `<W>x<H>`).
    pub width: Option<u32>,
    /// Thumbnail height bound (`h<N>` or the H of `<W>x<H>`).
    pub height: Option<u32>,
    /// Fill the box exactly and centre-crop the overflow (`fill`).
    pub fill: bool,
    /// Allow enlarging (`up`).
    pub up: bool,
    /// Crop after resizing (`crop<W>x<H>+<X>+<Y>`).
    pub crop: Option<CropRect>,
    /// Right-angle rotation.
    pub rotate: Option<Rotation>,
    /// Mirror top-bottom.
    pub flip: bool,
    /// Mirror left-right.
    pub flop: bool,
    /// Convert to greyscale.
    pub grey: bool,
    /// Invert colour samples (alpha untouched).
    pub invert: bool,
    /// Output format; `None` keeps the source's (PNG if it has no saver).
    pub format: Option<OutputFormat>,
    /// Quality 1..100 for JPEG and lossy WebP.
    pub quality: Option<u8>,
    /// PNG compression level 0..9.
    pub compression: Option<u8>,
    /// Lossless WebP.
    pub lossless: bool,
    /// TIFF compression.
    pub tiff_compression: Option<TiffCompression>,
    /// Drop EXIF, XMP and ICC metadata.
    pub strip: bool,
}

pub use crate::codec::DEFAULT_QUALITY;

fn number(token: &str, digits: &str, what: &str, lo: u32, hi: u32) -> Result<u32, SpecError> {
    let range = format!("{what} must be {lo}..{hi}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(token, range));
    }
    // Leading zeros would give a second spelling of the same spec.
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(err(token, format!("{what} must not have leading zeros")));
    }
    match digits.parse::<u32>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(err(token, range)),
    }
}

fn parse_size(token: &str) -> Option<Result<(u32, u32), SpecError>> {
    let (w, h) = token.split_once('x')?;
    if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((|| {
        let w = number(token, w, "width", 1, MAX_DIMENSION)?;
        let h = number(token, h, "height", 1, MAX_DIMENSION)?;
        Ok((w, h))
    })())
}

fn parse_crop(token: &str, rest: &str) -> Result<CropRect, SpecError> {
    let bad = || {
        err(
            token,
            "crop must be crop<W>x<H>+<X>+<Y>, e.g. crop100x50+10+20",
        )
    };
    let (size, offs) = rest.split_once('+').ok_or_else(bad)?;
    let (x, y) = offs.split_once('+').ok_or_else(bad)?;
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    Ok(CropRect {
        width: number(token, w, "crop width", 1, MAX_DIMENSION)?,
        height: number(token, h, "crop height", 1, MAX_DIMENSION)?,
        x: number(token, x, "crop x", 0, MAX_DIMENSION)?,
        y: number(token, y, "crop y", 0, MAX_DIMENSION)?,
    })
}

fn set<T>(slot: &mut Option<T>, v: T, token: &str) -> Result<(), SpecError> {
    if slot.is_some() {
        return Err(err(token, "given twice or conflicts with an earlier token"));
    }
    *slot = Some(v);
    Ok(())
}

fn flag(slot: &mut bool, token: &str) -> Result<(), SpecError> {
    if *slot {
        return Err(err(token, "given twice"));
    }
    *slot = true;
    Ok(())
}

impl FromStr for Spec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let mut spec = Spec::default();
        if s.is_empty() {
            return Err(err(s, "empty spec"));
        }
        for token in s.split('_') {
            spec.add_token(token)?;
        }
        spec.validate(s)?;
        Ok(spec)
    }
}

impl Spec {
    /// The save settings this spec asks for.
    pub fn save_options(&self) -> crate::codec::SaveOptions {
        crate::codec::SaveOptions {
            quality: self.quality_or_default(),
            compression: self.compression,
            lossless: self.lossless,
            tiff_compression: self.tiff_compression,
            strip: self.strip,
        }
    }

    /// Applies one token to the spec (used by the path grammar and the CLI's bracket options).
    pub fn add_token(&mut self, token: &str) -> Result<(), SpecError> {
        let t = token;
        if t.is_empty() {
            return Err(err(t, "empty token (doubled or trailing '_')"));
        }
        if let Some(f) = OutputFormat::from_extension(t).filter(|f| f.token() == t) {
            return set(&mut self.format, f, t);
        }
        match t {
            "fill" => return flag(&mut self.fill, t),
            "up" => return flag(&mut self.up, t),
            "invert" => return flag(&mut self.invert, t),
            "flip" => return flag(&mut self.flip, t),
            "flop" => return flag(&mut self.flop, t),
            "grey" => return flag(&mut self.grey, t),
            "strip" => return flag(&mut self.strip, t),
            "lossless" => return flag(&mut self.lossless, t),
            "noautorotate" => return flag(&mut self.no_autorotate, t),
            "rot90" => return set(&mut self.rotate, Rotation::R90, t),
            "rot180" => return set(&mut self.rotate, Rotation::R180, t),
            "rot270" => return set(&mut self.rotate, Rotation::R270, t),
            "lzw" => return set(&mut self.tiff_compression, TiffCompression::Lzw, t),
            "deflate" => return set(&mut self.tiff_compression, TiffCompression::Deflate, t),
            _ => {}
        }
        if let Some(r) = parse_size(t) {
            let (w, h) = r?;
            set(&mut self.width, w, t)?;
            return set(&mut self.height, h, t);
        }
        if let Some(rest) = t.strip_prefix("crop") {
            return set(&mut self.crop, parse_crop(t, rest)?, t);
        }
        if let Some(rest) = t.strip_prefix("shrink") {
            let n = number(t, rest, "shrink factor", 1, 1 << 16)?;
            return set(&mut self.shrink, n, t);
        }
        if let Some(rest) = t.strip_prefix("page") {
            let n = number(t, rest, "page", 0, 1 << 16)?;
            return set(&mut self.page, n, t);
        }
        let (head, digits) = t.split_at(t.find(|c: char| c.is_ascii_digit()).unwrap_or(t.len()));
        match head {
            "q" => {
                let n = number(t, digits, "quality", 1, 100)?;
                set(&mut self.quality, n as u8, t)
            }
            "c" => {
                let n = number(t, digits, "compression", 0, 9)?;
                set(&mut self.compression, n as u8, t)
            }
            "w" => {
                let n = number(t, digits, "width", 1, MAX_DIMENSION)?;
                set(&mut self.width, n, t)
            }
            "h" => {
                let n = number(t, digits, "height", 1, MAX_DIMENSION)?;
                set(&mut self.height, n, t)
            }
            _ => Err(err(
                t,
                format!(
                    "unknown token (see the grammar: q<N> shrink<N> w<N> h<N> <W>x<H> fill up \
                     crop<W>x<H>+<X>+<Y> invert flip flop rot90 rot180 rot270 noautorotate \
                     grey strip c<N> lossless lzw deflate page<N> {})",
                    crate::codec::format_tokens().join(" ")
                ),
            )),
        }
    }

    /// Cross-token rules, checked once every token is in.
    pub fn validate(&self, whole: &str) -> Result<(), SpecError> {
        if self.fill && (self.width.is_none() || self.height.is_none()) {
            return Err(err("fill", "needs both a width and a height (<W>x<H>)"));
        }
        if self.up && self.width.is_none() && self.height.is_none() {
            return Err(err("up", "needs a size (w<N>, h<N> or <W>x<H>)"));
        }
        if let (Some(q), Some(f)) = (self.quality, self.format) {
            if !f.takes_quality() {
                return Err(err(
                    &format!("q{q}"),
                    format!(
                        "quality applies to {} output, not {}",
                        crate::codec::quality_tokens().join(", "),
                        f.token()
                    ),
                ));
            }
        }
        if let Some(c) = self.compression {
            if self.format.is_some_and(|f| f != OutputFormat::Png) {
                return Err(err(
                    &format!("c{c}"),
                    "compression level applies to png output",
                ));
            }
        }
        if self.lossless {
            if self.format != Some(OutputFormat::Webp) {
                return Err(err(
                    "lossless",
                    "applies to webp output (add the webp token)",
                ));
            }
            if let Some(q) = self.quality {
                return Err(err(&format!("q{q}"), "conflicts with lossless"));
            }
        }
        if let Some(tc) = self.tiff_compression {
            if self.format != Some(OutputFormat::Tiff) {
                let t = match tc {
                    TiffCompression::Lzw => "lzw",
                    TiffCompression::Deflate => "deflate",
                };
                return Err(err(t, "applies to tif output (add the tif token)"));
            }
        }
        let _ = whole;
        Ok(())
    }

    /// The identity transform: decode and re-encode in the same format.
    pub fn identity() -> Self {
        Spec::default()
    }

    /// Whether the spec resizes (thumbnail box given).
    pub fn has_thumbnail(&self) -> bool {
        self.width.is_some() || self.height.is_some()
    }

    /// JPEG / WebP quality to use.
    pub fn quality_or_default(&self) -> u8 {
        self.quality.unwrap_or(DEFAULT_QUALITY)
    }
}

impl fmt::Display for Spec {
    /// The canonical spelling: tokens in the fixed operation order. Empty for the identity.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t: Vec<String> = Vec::new();
        if let Some(p) = self.page {
            t.push(format!("page{p}"));
        }
        if self.no_autorotate {
            t.push("noautorotate".into());
        }
        if let Some(s) = self.shrink {
            t.push(format!("shrink{s}"));
        }
        match (self.width, self.height) {
            (Some(w), Some(h)) => t.push(format!("{w}x{h}")),
            (Some(w), None) => t.push(format!("w{w}")),
            (None, Some(h)) => t.push(format!("h{h}")),
            (None, None) => {}
        }
        if self.fill {
            t.push("fill".into());
        }
        if self.up {
            t.push("up".into());
        }
        if let Some(c) = self.crop {
            t.push(format!("crop{}x{}+{}+{}", c.width, c.height, c.x, c.y));
        }
        match self.rotate {
            Some(Rotation::R90) => t.push("rot90".into()),
            Some(Rotation::R180) => t.push("rot180".into()),
            Some(Rotation::R270) => t.push("rot270".into()),
            None => {}
        }
        for (on, name) in [
            (self.flip, "flip"),
            (self.flop, "flop"),
            (self.grey, "grey"),
            (self.invert, "invert"),
            (self.strip, "strip"),
        ] {
            if on {
                t.push(name.into());
            }
        }
        if let Some(q) = self.quality {
            t.push(format!("q{q}"));
        }
        if let Some(c) = self.compression {
            t.push(format!("c{c}"));
        }
        if self.lossless {
            t.push("lossless".into());
        }
        match self.tiff_compression {
            Some(TiffCompression::Lzw) => t.push("lzw".into()),
            Some(TiffCompression::Deflate) => t.push("deflate".into()),
            None => {}
        }
        if let Some(fmt) = self.format {
            t.push(fmt.token().into());
        }
        f.write_str(&t.join("_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Spec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn e(s: &str) -> String {
        s.parse::<Spec>().unwrap_err().to_string()
    }

    #[test]
    fn token_order_does_not_matter() {
        assert_eq!(p("q90_shrink2"), p("shrink2_q90"));
        assert_eq!(p("shrink2_q90").to_string(), "shrink2_q90");
        assert_eq!(p("webp_w256").to_string(), "w256_webp");
        assert_eq!(p("invert_q90_shrink2").to_string(), "shrink2_invert_q90");
    }

    #[test]
    fn canonical_spelling_round_trips() {
        for s in [
            "page2_noautorotate_shrink3_200x100_fill_up_crop10x20+3+4_rot270_flip_flop_grey_invert_strip_q80_jpg",
            "w256_c9_png",
            "h64_lossless_webp",
            "deflate_tif",
            "pfm",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn errors_name_token_and_rule() {
        assert_eq!(e("q900"), "q900: quality must be 1..100");
        assert_eq!(e("q0"), "q0: quality must be 1..100");
        assert!(e("q90_q80").starts_with("q80: given twice"));
        assert!(e("w10_20x20").starts_with("20x20: given twice"));
        assert!(e("bogus").starts_with("bogus: unknown token"));
        assert!(e("fill_w100").starts_with("fill: needs both"));
        assert!(e("q90_png").starts_with("q90: quality applies to jpg, webp"));
        assert!(e("c3_jpg").starts_with("c3: compression level applies to png"));
        assert!(e("shrink0").starts_with("shrink0: shrink factor must be"));
        assert!(e("w0").starts_with("w0: width must be"));
        assert!(e("w0256").starts_with("w0256: width must not have leading zeros"));
        assert!(e("rot90_rot180").starts_with("rot180: given twice"));
        assert!(e("q90__w2").starts_with(": empty token"));
        assert!(e("jpg_png").starts_with("png: given twice"));
        assert!(e("lossless").starts_with("lossless: applies to webp"));
        assert!(e("crop10x10").starts_with("crop10x10: crop must be"));
        assert_eq!(e(""), ": empty spec");
    }

    #[test]
    fn extensions_map_to_formats() {
        assert_eq!(
            OutputFormat::from_extension("JPEG"),
            Some(OutputFormat::Jpeg)
        );
        assert_eq!(OutputFormat::from_extension("pgm"), Some(OutputFormat::Pnm));
        assert_eq!(OutputFormat::from_extension("gif"), None);
        // Aliases are file extensions, not spec tokens: one spelling per spec.
        assert!("jpeg".parse::<Spec>().is_err());
    }
}
