//! ThumbHash placeholders as an output format: one line of standard base64 (with padding)
//! of the hash, then `\n`. Saver only: nothing is ever loaded (or sniffed) as a ThumbHash.
//!
//! The hash is defined on images of at most 100x100, so the saver declares [`Saver::fit`] and
//! the planner shrinks to that box on load (a 20 MP JPEG is decoded at 1/8 scale).

use std::io::Write;

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, Image, SampleFormat, Samples};
use crate::io::{Source, Target, TargetWriter};
use crate::{About, Codec, Limits, LoadOptions, Loaded, SaveOptions, Saver, SaverLimits};

/// The largest side the ThumbHash encoder takes.
const MAX_SIDE: u32 = 100;

static ABOUT: About = About {
    name: "thumbhash",
    title: "ThumbHash",
    extensions: &[],
    serve_as: None,
    notes: "output only (a placeholder, never read)",
};

static SAVER: Saver = Saver {
    token: "thumbhash",
    aliases: &[],
    mime: "text/plain",
    accepts: &[SampleFormat::U8],
    options: &[],
    limits: SaverLimits {
        max_side: MAX_SIDE,
        max_bytes: u64::MAX,
        why: "ThumbHash encodes at most 100x100",
    },
    fit: Some((MAX_SIDE, MAX_SIDE)),
    icc: false,
    save,
    notes: "`thumbhash` crate (evanw's port); one line of base64, fitted to 100x100 first",
};

/// The ThumbHash placeholder output.
pub struct ThumbHash;

impl Codec for ThumbHash {
    fn about(&self) -> &About {
        &ABOUT
    }

    /// Never: a hash is not an image to read.
    fn sniff(&self, _: &[u8]) -> bool {
        false
    }

    fn probe(&self, _: &mut Source, _: &Limits) -> Result<Header> {
        Err(Error::Unsupported(
            "ThumbHash is an output format only".into(),
        ))
    }

    fn load<'a>(&self, _: Source<'a>, _: &LoadOptions) -> Result<Loaded<'a>> {
        Err(Error::Unsupported(
            "ThumbHash is an output format only".into(),
        ))
    }

    fn saver(&self) -> Option<&Saver> {
        Some(&SAVER)
    }
}

/// Expands 1-4 bands of 8-bit samples to RGBA (grey to RGB, opaque alpha when none).
fn to_rgba(samples: &[u8], bands: usize) -> Vec<u8> {
    let mut rgba = Vec::with_capacity(samples.len() / bands.max(1) * 4);
    for px in samples.chunks_exact(bands.max(1)) {
        let (rgb, a) = match bands {
            1 => ([px[0]; 3], 255),
            2 => ([px[0]; 3], px[1]),
            3 => ([px[0], px[1], px[2]], 255),
            _ => ([px[0], px[1], px[2]], px[3]),
        };
        rgba.extend_from_slice(&rgb);
        rgba.push(a);
    }
    rgba
}

/// The file's text for an RGBA image of at most 100x100.
fn encode(w: u32, h: u32, rgba: &[u8]) -> String {
    let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, rgba);
    let mut line = base64::engine::general_purpose::STANDARD.encode(hash);
    line.push('\n');
    line
}

fn save(stream: BoxStream, _: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let img = Image::collect(stream)?;
    let (w, h, bands) = (img.header.width, img.header.height, img.header.bands);
    // The planner fits the image and crate::save checks the limits; the encoder would panic.
    if w > MAX_SIDE || h > MAX_SIDE || w == 0 || h == 0 || !(1..=4).contains(&bands) {
        return Err(Error::encode(
            "thumbhash",
            format!("{w}x{h} with {bands} bands is not an image of 1x1 to 100x100"),
        ));
    }
    let Samples::U8(samples) = &img.samples else {
        return Err(Error::encode("thumbhash", "samples not cast to 8 bits"));
    };
    let text = encode(w, h, &to_rgba(samples, bands as usize));
    let mut out = TargetWriter::new(target);
    out.write_all(text.as_bytes()).map_err(Error::Write)?;
    out.finish().map_err(Error::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_and_alpha_expand_to_rgba() {
        assert_eq!(to_rgba(&[7], 1), [7, 7, 7, 255]);
        assert_eq!(to_rgba(&[7, 9], 2), [7, 7, 7, 9]);
        assert_eq!(to_rgba(&[1, 2, 3], 3), [1, 2, 3, 255]);
        assert_eq!(to_rgba(&[1, 2, 3, 4], 4), [1, 2, 3, 4]);
    }

    #[test]
    fn one_line_of_base64() {
        let text = encode(2, 1, &[255, 0, 0, 255, 0, 0, 255, 255]);
        assert!(text.ends_with('\n') && text.lines().count() == 1);
        let hash = base64::engine::general_purpose::STANDARD
            .decode(text.trim_end())
            .unwrap();
        assert!(thumbhash::thumb_hash_to_rgba(&hash).is_ok());
    }
}
