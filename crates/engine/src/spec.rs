//! The transform grammar: `q90_shrink2`, `w256_webp`, ... as directory names and CLI arguments.
//!
//! Tokens are joined by `_` in any order; operations always run in one fixed order (see
//! [`Spec`]), so every transform has one canonical spelling, printed by `Display`. The format
//! and save tokens come from a codec [`Registry`] ([`Spec::parse_with`]); `parse()` uses the
//! built-in one.

use std::fmt;
use std::str::FromStr;

pub use crate::error::SpecError;

fn err(token: &str, rule: impl Into<String>) -> SpecError {
    SpecError {
        token: token.to_string(),
        rule: rule.into(),
    }
}

pub use crate::codec::OutputFormat;
use crate::codec::{option_of, Registry, SaveOption, SaveOptions};
pub use crate::ops::CropRect;
pub use crate::ops::Gravity;
pub use crate::ops::Rotation;

/// Largest width or height any token may ask for.
pub const MAX_DIMENSION: u32 = 1 << 20;

/// A parsed transform. Operations run in this field order:
/// load (`page`, `still`), autorotate, `shrink`, thumbnail (`w`/`h`/`WxH`, `fill`, `up`), `crop`,
/// rotate, `flip`, `flop`, `srgb`, `grey`, `invert`; then save (`format`, the saver's options in
/// `save`, `strip`, `sdr`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Spec {
    /// Page of a multi-page file (`page<N>`), 0-based.
    pub page: Option<u32>,
    /// `still`: an animation's first frame only.
    pub still: bool,
    /// `noautorotate`: keep stored pixels and the orientation tag.
    pub no_autorotate: bool,
    /// Integer box shrink (`shrink<N>`).
    pub shrink: Option<u32>,
    /// Thumbnail width bound (`w<N>` or the W of `<W>x<H>`).
    pub width: Option<u32>,
    /// Thumbnail height bound (`h<N>` or the H of `<W>x<H>`).
    pub height: Option<u32>,
    /// Fill the box exactly and crop the overflow (`fill`).
    pub fill: bool,
    /// Which part `fill` keeps (`attention`, `entropy`, `n`, `se`...; the centre by default).
    pub gravity: Gravity,
    /// Allow enlarging (`up`).
    pub up: bool,
    /// Thumbnail from the whole primary image, never from an embedded preview or a reduced
    /// image such as JPEG XL's 1/8 LF image (`exact`).
    pub exact: bool,
    /// Crop after resizing (`crop<W>x<H>+<X>+<Y>`).
    pub crop: Option<CropRect>,
    /// Right-angle rotation.
    pub rotate: Option<Rotation>,
    /// Mirror top-bottom.
    pub flip: bool,
    /// Mirror left-right.
    pub flop: bool,
    /// Convert to sRGB and tag the output so (`srgb`; untagged under `strip`).
    pub srgb: bool,
    /// Convert to greyscale.
    pub grey: bool,
    /// Invert colour samples (alpha untouched).
    pub invert: bool,
    /// Output format; `None` keeps the source's (PNG if it has no saver).
    pub format: Option<OutputFormat>,
    /// The savers' own options (`q90`, `c9`, `lossless`, `lzw`...), in the registry's order
    /// of options (the canonical spelling's); each saver takes its defaults from its schema.
    pub save: Vec<SaveSetting>,
    /// Drop EXIF, XMP and ICC metadata (pixels in another profile are converted to sRGB).
    pub strip: bool,
    /// Drop a gain map: the output is the base (SDR) image only (`sdr`).
    pub sdr: bool,
}

/// One saver option as a spec gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SaveSetting {
    /// The option's token (`q`, `lossless`).
    pub token: &'static str,
    /// The number after it; `None` for a bare word.
    pub value: Option<u32>,
}

impl fmt::Display for SaveSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(v) => write!(f, "{}{v}", self.token),
            None => f.write_str(self.token),
        }
    }
}

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
        Spec::parse_with(Registry::builtin(), s)
    }
}

/// The registry option a setting belongs to, and its place in the canonical order.
fn option_index(registry: &Registry, token: &str) -> Option<(usize, &'static SaveOption)> {
    registry
        .save_options()
        .into_iter()
        .enumerate()
        .find(|(_, o)| o.token == token)
}

impl Spec {
    /// Parses a spec whose format and save tokens are those of `registry`.
    pub fn parse_with(registry: &Registry, s: &str) -> Result<Spec, SpecError> {
        let mut spec = Spec::default();
        if s.is_empty() {
            return Err(err(s, "empty spec"));
        }
        for token in s.split('_') {
            spec.add_token_with(registry, token)?;
        }
        spec.validate_with(registry)?;
        Ok(spec)
    }

    /// The save settings this spec asks for (what it leaves out, the saver's schema fills in).
    pub fn save_options(&self) -> SaveOptions {
        SaveOptions {
            strip: self.strip,
            values: self
                .save
                .iter()
                .map(|s| (s.token, s.value.unwrap_or(1)))
                .collect(),
        }
    }

    /// Applies one token of the built-in registry's grammar (see [`Spec::add_token_with`]).
    pub fn add_token(&mut self, token: &str) -> Result<(), SpecError> {
        self.add_token_with(Registry::builtin(), token)
    }

    /// Applies one token to the spec (used by the path grammar and the CLI's bracket options).
    pub fn add_token_with(&mut self, registry: &Registry, token: &str) -> Result<(), SpecError> {
        let t = token;
        if t.is_empty() {
            return Err(err(t, "empty token (doubled or trailing '_')"));
        }
        if let Some(f) = registry.output_token(t) {
            return set(&mut self.format, f, t);
        }
        if let Some(g) = Gravity::from_token(t) {
            if self.gravity != Gravity::Centre {
                return Err(err(t, "a second fill gravity (give one)"));
            }
            self.gravity = g;
            return Ok(());
        }
        match t {
            "fill" => return flag(&mut self.fill, t),
            "up" => return flag(&mut self.up, t),
            "exact" => return flag(&mut self.exact, t),
            "still" => return flag(&mut self.still, t),
            "invert" => return flag(&mut self.invert, t),
            "flip" => return flag(&mut self.flip, t),
            "flop" => return flag(&mut self.flop, t),
            "grey" => return flag(&mut self.grey, t),
            "srgb" => return flag(&mut self.srgb, t),
            "strip" => return flag(&mut self.strip, t),
            "sdr" => return flag(&mut self.sdr, t),
            "noautorotate" => return flag(&mut self.no_autorotate, t),
            "rot90" => return set(&mut self.rotate, Rotation::R90, t),
            "rot180" => return set(&mut self.rotate, Rotation::R180, t),
            "rot270" => return set(&mut self.rotate, Rotation::R270, t),
            _ => {}
        }
        if let Some((i, o)) = option_index(registry, t).filter(|(_, o)| o.range.is_none()) {
            return self.add_setting(registry, i, o, None, t);
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
        if let Some((i, o)) = option_index(registry, head) {
            if let Some((lo, hi)) = o.range {
                let n = number(t, digits, o.name, lo, hi)?;
                return self.add_setting(registry, i, o, Some(n), t);
            }
        }
        match head {
            "w" => {
                let n = number(t, digits, "width", 1, MAX_DIMENSION)?;
                set(&mut self.width, n, t)
            }
            "h" => {
                let n = number(t, digits, "height", 1, MAX_DIMENSION)?;
                set(&mut self.height, n, t)
            }
            _ => {
                let options: Vec<String> = registry
                    .save_options()
                    .iter()
                    .map(|o| o.spelling())
                    .collect();
                Err(err(
                    t,
                    format!(
                        "unknown token (see the grammar: shrink<N> w<N> h<N> <W>x<H> fill \
                         [{}] up exact crop<W>x<H>+<X>+<Y> invert flip flop rot90 rot180 rot270 \
                         noautorotate srgb grey strip sdr page<N> still {} {})",
                        Gravity::tokens().collect::<Vec<_>>().join("|"),
                        options.join(" "),
                        registry.format_tokens().join(" ")
                    ),
                ))
            }
        }
    }

    /// Inserts a save setting at its place in the canonical order (`index` in the registry's
    /// option list).
    fn add_setting(
        &mut self,
        registry: &Registry,
        index: usize,
        option: &'static SaveOption,
        value: Option<u32>,
        t: &str,
    ) -> Result<(), SpecError> {
        if self.save.iter().any(|s| s.token == option.token) {
            return Err(err(t, "given twice or conflicts with an earlier token"));
        }
        let at = self
            .save
            .iter()
            .position(|s| option_index(registry, s.token).is_some_and(|(j, _)| j > index))
            .unwrap_or(self.save.len());
        self.save.insert(
            at,
            SaveSetting {
                token: option.token,
                value,
            },
        );
        Ok(())
    }

    /// Cross-token rules of the built-in registry (see [`Spec::validate_with`]).
    pub fn validate(&self) -> Result<(), SpecError> {
        self.validate_with(Registry::builtin())
    }

    /// Cross-token rules, checked once every token is in: save options against the output
    /// format's saver, and conflicts between them.
    pub fn validate_with(&self, registry: &Registry) -> Result<(), SpecError> {
        if self.fill && (self.width.is_none() || self.height.is_none()) {
            return Err(err("fill", "needs both a width and a height (<W>x<H>)"));
        }
        if let (Some(g), false) = (self.gravity.token(), self.fill) {
            return Err(err(
                g,
                "a fill gravity: needs fill (<W>x<H>_fill_<gravity>)",
            ));
        }
        if self.up && self.width.is_none() && self.height.is_none() {
            return Err(err("up", "needs a size (w<N>, h<N> or <W>x<H>)"));
        }
        if self.exact && !self.has_thumbnail() {
            return Err(err("exact", "needs a size (w<N>, h<N> or <W>x<H>)"));
        }
        for set in &self.save {
            let spelled = set.to_string();
            let Some((_, def)) = option_index(registry, set.token) else {
                return Err(err(&spelled, "not an option of this registry's savers"));
            };
            let takers = registry.takers(set.token);
            match self.format {
                Some(f) => {
                    let Some(own) = option_of(f, set.token) else {
                        return Err(err(
                            &spelled,
                            format!(
                                "{} applies to {} output, not {}",
                                def.name,
                                takers.join(", "),
                                f.token()
                            ),
                        ));
                    };
                    // Savers sharing a token may differ in range.
                    if let (Some((lo, hi)), Some(v)) = (own.range, set.value) {
                        number(&spelled, &v.to_string(), own.name, lo, hi)?;
                    }
                }
                None if !def.without_format => {
                    return Err(err(
                        &spelled,
                        format!(
                            "{} applies to {} output (add the {} token)",
                            def.name,
                            takers.join(", "),
                            takers.join(" or ")
                        ),
                    ));
                }
                None => {}
            }
        }
        for set in &self.save {
            let def = option_index(registry, set.token).map(|(_, o)| o);
            for c in def.map_or(&[][..], |o| o.conflicts) {
                if let Some(other) = self.save.iter().find(|s| s.token == *c) {
                    return Err(err(&other.to_string(), format!("conflicts with {set}")));
                }
            }
        }
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
}

impl fmt::Display for Spec {
    /// The canonical spelling: tokens in the fixed operation order. Empty for the identity.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t: Vec<String> = Vec::new();
        if let Some(p) = self.page {
            t.push(format!("page{p}"));
        }
        if self.still {
            t.push("still".into());
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
        if let Some(g) = self.gravity.token() {
            t.push(g.into());
        }
        if self.up {
            t.push("up".into());
        }
        if self.exact {
            t.push("exact".into());
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
            (self.srgb, "srgb"),
            (self.grey, "grey"),
            (self.invert, "invert"),
            (self.strip, "strip"),
            (self.sdr, "sdr"),
        ] {
            if on {
                t.push(name.into());
            }
        }
        t.extend(self.save.iter().map(|s| s.to_string()));
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
        assert_eq!(p("jpg_strip_srgb_w64").to_string(), "w64_srgb_strip_jpg");
    }

    #[test]
    fn canonical_spelling_round_trips() {
        for s in [
            "page2_still_noautorotate_shrink3_200x100_fill_up_crop10x20+3+4_rot270_flip_flop_srgb_grey_invert_strip_sdr_q80_jpg",
            "w256_c9_png",
            "h64_lossless_webp",
            "w256_srgb_webp",
            "deflate_tif",
            "pfm",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn fill_gravities_parse_and_round_trip() {
        for g in Gravity::tokens() {
            let s = format!("256x256_fill_{g}");
            let spec = p(&s);
            assert_eq!(spec.gravity.token(), Some(g));
            assert_eq!(spec.to_string(), s);
            // Any order, one canonical spelling.
            assert_eq!(p(&format!("{g}_fill_jpg_256x256")).to_string(), s + "_jpg");
        }
        assert_eq!(p("256x256_fill").gravity, Gravity::Centre);
        assert_eq!(
            p("100x50_fill_attention_crop10x10+0+0_q80_jpg").to_string(),
            "100x50_fill_attention_crop10x10+0+0_q80_jpg"
        );
    }

    #[test]
    fn fill_gravity_errors_are_clear() {
        assert!(e("256x256_attention").starts_with("attention: a fill gravity: needs fill"));
        assert!(e("w256_ne").starts_with("ne: a fill gravity: needs fill"));
        assert!(e("256x256_fill_n_s").starts_with("s: a second fill gravity"));
        assert!(e("256x256_fill_n_n").starts_with("n: a second fill gravity"));
        let unknown = e("256x256_fill_north");
        assert!(unknown.starts_with("north: unknown token"), "{unknown}");
        assert!(
            unknown.contains("fill [attention|entropy|n|s|e|w|ne|nw|se|sw]"),
            "{unknown}"
        );
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
        assert!(e("lossless").starts_with("lossless: lossless compression applies to webp"));
        assert!(e("lzw_deflate_tif").starts_with("deflate: conflicts with lzw"));
        assert!(e("q90_lossless_webp").starts_with("q90: conflicts with lossless"));
        assert!(e("c10_png").starts_with("c10: compression level must be 0..9"));
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
        assert_eq!(OutputFormat::from_extension("gif"), Some(OutputFormat::Gif));
        // Aliases are file extensions, not spec tokens: one spelling per spec.
        assert!("jpeg".parse::<Spec>().is_err());
    }
}
