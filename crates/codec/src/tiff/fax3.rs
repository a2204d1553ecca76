//! CCITT Group 3 (T.4, compression 3) strips, which the tiff crate does not wire up, decoded
//! with the `fax` crate it already uses for Group 4.

use std::io::{Read, Seek};

use ::tiff::tags::Tag;

use super::raw::RawChunks;
use super::TiffDecoder;
use crate::error::{Error, Result};
use crate::image::Samples;

/// `Compression` value of CCITT Group 3.
pub const FAX3: u16 = 3;
/// `T4Options` bit: 2-D coding, which `fax`'s Group 3 decoder does not read.
const T4_2D: u32 = 1;

/// Where each strip's code is, and how bits map to grey.
pub struct Fax3Chunks {
    raw: RawChunks,
    /// `PhotometricInterpretation` 0: a white pel is 255 (else white is 0).
    white_is_zero: bool,
}

impl Fax3Chunks {
    /// Reads the strip tables of the current page.
    pub fn new<R: Read + Seek>(dec: &mut TiffDecoder<R>, limit: u64) -> Result<Self> {
        let options = dec
            .find_tag_unsigned::<u32>(Tag::Unknown(292))
            .map_err(super::err)?
            .unwrap_or(0);
        if options & T4_2D != 0 {
            return Err(Error::Unsupported("tiff: 2-D Group 3 fax coding".into()));
        }
        let raw = RawChunks::new(dec, false, limit)?;
        let photometric = dec
            .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
            .map_err(super::err)?;
        Ok(Fax3Chunks {
            raw,
            white_is_zero: photometric != Some(1),
        })
    }

    /// Decodes strip `index`: `w` x `h` pels as 0/255 grey.
    pub fn decode<R: Read + Seek>(
        &self,
        dec: &mut TiffDecoder<R>,
        index: u32,
        w: u32,
        h: u32,
    ) -> Result<Samples> {
        let width = u16::try_from(w)
            .map_err(|_| Error::Unsupported(format!("tiff: {w}-pixel-wide fax image")))?;
        let data = self.raw.read(dec, index, 0)?;
        let (white, black) = if self.white_is_zero {
            (255, 0)
        } else {
            (0, 255)
        };
        let mut out = crate::alloc::with_capacity(
            crate::alloc::len(&[w as usize, h as usize], "a fax strip")?,
            "a fax strip",
        )?;
        let mut lines = 0u32;
        // Strips usually end without the RTC marker, which the decoder reports as an
        // error after the last line: what counts is getting every line.
        let _ = fax::decoder::decode_g3(data.into_iter(), |transitions| {
            if lines < h {
                out.extend(fax::decoder::pels(transitions, width).map(|c| match c {
                    fax::Color::White => white,
                    fax::Color::Black => black,
                }));
                lines += 1;
            }
        });
        if lines < h {
            return Err(Error::decode(
                "tiff",
                format!("fax strip {index} has {lines} of {h} lines"),
            ));
        }
        Ok(Samples::U8(out))
    }
}
