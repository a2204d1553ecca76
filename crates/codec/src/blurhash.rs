//! BlurHash placeholders as an output format: one line, the hash in BlurHash's own base83
//! text, then `\n`. Saver only: nothing is ever loaded (or sniffed) as a BlurHash.
//!
//! The hash keeps a few cosine terms, so it needs few pixels: the saver declares
//! [`Saver::fit`] of 100x100 (as ThumbHash), and the planner shrinks to that box on load (a 20
//! MP JPEG is decoded at 1/8 scale). Four components along the longer side, three along the
//! shorter (four each for a square), as BlurHash suggests for photos.

use std::io::Write;

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, Image, SampleFormat, Samples};
use crate::io::{Source, Target, TargetWriter};
use crate::{About, Codec, Limits, LoadOptions, Loaded, SaveOptions, Saver, SaverLimits};

/// The box the image is fitted to before hashing.
const MAX_SIDE: u32 = 100;

static ABOUT: About = About {
    name: "blurhash",
    title: "BlurHash",
    extensions: &[],
    serve_as: None,
    notes: "output only (a placeholder, never read)",
};

static SAVER: Saver = Saver {
    token: "blurhash",
    aliases: &[],
    mime: "text/plain",
    accepts: &[SampleFormat::U8],
    options: &[],
    limits: SaverLimits {
        max_side: MAX_SIDE,
        max_bytes: u64::MAX,
        why: "BlurHash is computed on at most 100x100",
    },
    fit: Some((MAX_SIDE, MAX_SIDE)),
    icc: false,
    save,
    notes: "`blurhash` crate (pure Rust port of Wolt's); one line of base83, 4x3 components \
            (3x4 portrait), fitted to 100x100 first, alpha dropped",
};

/// The BlurHash placeholder output.
pub struct BlurHash;

impl Codec for BlurHash {
    fn about(&self) -> &About {
        &ABOUT
    }

    /// Never: a hash is not an image to read.
    fn sniff(&self, _: &[u8]) -> bool {
        false
    }

    fn probe(&self, _: &mut Source, _: &Limits) -> Result<Header> {
        Err(Error::Unsupported(
            "BlurHash is an output format only".into(),
        ))
    }

    fn load<'a>(&self, _: Source<'a>, _: &LoadOptions) -> Result<Loaded<'a>> {
        Err(Error::Unsupported(
            "BlurHash is an output format only".into(),
        ))
    }

    fn saver(&self) -> Option<&Saver> {
        Some(&SAVER)
    }
}

/// Expands 1-4 bands of 8-bit samples to RGBA, grey to RGB; the hash reads no alpha, so it is
/// set opaque (colour under transparency counts as it is).
fn to_rgba(samples: &[u8], bands: usize) -> Vec<u8> {
    let mut rgba = Vec::with_capacity(samples.len() / bands.max(1) * 4);
    for px in samples.chunks_exact(bands.max(1)) {
        let rgb = if bands < 3 {
            [px[0]; 3]
        } else {
            [px[0], px[1], px[2]]
        };
        rgba.extend_from_slice(&rgb);
        rgba.push(255);
    }
    rgba
}

/// Cosine components across and down for a `w x h` image: 4 along the longer side, 3 along
/// the shorter, 4x4 for a square.
fn components(w: u32, h: u32) -> (u32, u32) {
    match w.cmp(&h) {
        std::cmp::Ordering::Greater => (4, 3),
        std::cmp::Ordering::Less => (3, 4),
        std::cmp::Ordering::Equal => (4, 4),
    }
}

/// The file's text for an RGBA image.
fn encode(w: u32, h: u32, rgba: &[u8]) -> Result<String> {
    let (cx, cy) = components(w, h);
    let mut line = blurhash::encode(cx, cy, w, h, rgba)
        .map_err(|e| Error::encode("blurhash", e.to_string()))?;
    line.push('\n');
    Ok(line)
}

fn save(stream: BoxStream, _: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let img = Image::collect(stream)?;
    let (w, h, bands) = (img.header.width, img.header.height, img.header.bands);
    // The planner fits the image and crate::save checks the limits; the encoder indexes by
    // the size it is given.
    if w > MAX_SIDE || h > MAX_SIDE || w == 0 || h == 0 || !(1..=4).contains(&bands) {
        return Err(Error::encode(
            "blurhash",
            format!("{w}x{h} with {bands} bands is not an image of 1x1 to 100x100"),
        ));
    }
    let Samples::U8(samples) = &img.samples else {
        return Err(Error::encode("blurhash", "samples not cast to 8 bits"));
    };
    let text = encode(w, h, &to_rgba(samples, bands as usize))?;
    let mut out = TargetWriter::new(target);
    out.write_all(text.as_bytes()).map_err(Error::Write)?;
    out.finish().map_err(Error::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_and_alpha_expand_to_opaque_rgba() {
        assert_eq!(to_rgba(&[7], 1), [7, 7, 7, 255]);
        assert_eq!(to_rgba(&[7, 9], 2), [7, 7, 7, 255]);
        assert_eq!(to_rgba(&[1, 2, 3, 4], 4), [1, 2, 3, 255]);
    }

    #[test]
    fn one_line_with_the_components_in_its_first_character() {
        let text = encode(3, 2, &[200; 24]).unwrap();
        assert!(text.ends_with('\n') && text.lines().count() == 1);
        // 4x3 components: 1 + 1 + 4 + 2 * 11 characters; the size flag (4-1) + (3-1)*9 = 21
        // is base83 'L'.
        assert_eq!(text.trim_end().len(), 28);
        assert!(text.starts_with('L'), "{text}");
        assert!(blurhash::decode(text.trim_end(), 3, 2, 1.0).is_ok());
        assert_eq!(components(2, 3), (3, 4));
        assert_eq!(components(5, 5), (4, 4));
    }
}
