//! CCITT Group 3 (T.4, compression 3) strips, which the tiff crate does not wire up, decoded
//! with the `fax` crate it already uses for Group 4.

use std::io::{Read, Seek, SeekFrom};

use ::tiff::tags::Tag;

use super::TiffDecoder;
use crate::error::{Error, Result};
use crate::image::Samples;

/// `Compression` value of CCITT Group 3.
pub const FAX3: u16 = 3;
/// `T4Options` bit: 2-D coding, which `fax`'s Group 3 decoder does not read.
const T4_2D: u32 = 1;

/// Where each strip's code is, and how bits map to grey.
pub struct Fax3Chunks {
    offsets: Vec<u64>,
    counts: Vec<u64>,
    /// `PhotometricInterpretation` 0: a white pel is 255 (else white is 0).
    white_is_zero: bool,
    limit: u64,
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
        let offsets = dec.get_tag_u64_vec(Tag::StripOffsets).map_err(super::err)?;
        let counts = dec
            .get_tag_u64_vec(Tag::StripByteCounts)
            .map_err(super::err)?;
        if offsets.len() != counts.len() {
            return Err(Error::decode(
                "tiff",
                "strip offsets and byte counts differ in length",
            ));
        }
        let photometric = dec
            .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
            .map_err(super::err)?;
        Ok(Fax3Chunks {
            offsets,
            counts,
            white_is_zero: photometric != Some(1),
            limit,
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
        let i = index as usize;
        let (&at, &len) = self
            .offsets
            .get(i)
            .zip(self.counts.get(i))
            .ok_or_else(|| Error::decode("tiff", format!("no strip {index}")))?;
        if len > self.limit {
            return Err(Error::decode(
                "tiff",
                format!("strip {index} of {len} bytes"),
            ));
        }
        let width = u16::try_from(w)
            .map_err(|_| Error::Unsupported(format!("tiff: {w}-pixel-wide fax image")))?;
        let mut data = vec![0u8; len as usize];
        let r = dec.inner();
        r.seek(SeekFrom::Start(at)).map_err(Error::Read)?;
        r.read_exact(&mut data).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::decode("tiff", "file is truncated"),
            _ => Error::Read(e),
        })?;
        let (white, black) = if self.white_is_zero {
            (255, 0)
        } else {
            (0, 255)
        };
        let mut out = Vec::with_capacity(w as usize * h as usize);
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
