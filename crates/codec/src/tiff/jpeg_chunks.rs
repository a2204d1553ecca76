//! JPEG-compressed TIFF chunks (compression 7), decoded with our own JPEG loader.
//!
//! The tiff crate's `jpeg` feature would pull a second zune-jpeg that cannot coexist with
//! the pinned one, so chunks are read raw, the shared `JPEGTables` are spliced in front
//! (tables without their EOI, then the chunk without its SOI), and the result is decoded
//! like any JPEG: YCbCr comes out as RGB, whatever the chroma subsampling.

use std::io::{Read, Seek};

use ::tiff::tags::Tag;

use super::raw::RawChunks;
use super::TiffDecoder;
use crate::error::{Error, Result};
use crate::image::{Image, Samples};
use crate::io::Source;
use crate::{InputFormat, LoadOptions};

/// `Compression` value of new-style JPEG.
pub const JPEG: u16 = 7;

/// Where each chunk's JPEG stream is, and the tables they share.
pub struct JpegChunks {
    raw: RawChunks,
    tables: Option<Vec<u8>>,
}

impl JpegChunks {
    /// Reads the chunk tables of the current page.
    pub fn new<R: Read + Seek>(dec: &mut TiffDecoder<R>, tiled: bool, limit: u64) -> Result<Self> {
        let raw = RawChunks::new(dec, tiled, limit)?;
        let tables = dec
            .get_tag_u8_vec(Tag::JPEGTables)
            .ok()
            .filter(|t| t.len() >= 4);
        Ok(JpegChunks { raw, tables })
    }

    /// Decodes chunk `index` and returns its top-left `w` x `h` pixels (edge tiles are
    /// coded at full tile size).
    pub fn decode<R: Read + Seek>(
        &self,
        dec: &mut TiffDecoder<R>,
        index: u32,
        w: u32,
        h: u32,
        bands: usize,
    ) -> Result<Samples> {
        let data = self.raw.read(dec, index, 4)?;
        let stream = match &self.tables {
            Some(t) if data.starts_with(&[0xFF, 0xD8]) => {
                let mut s = crate::alloc::with_capacity(t.len() + data.len(), "a TIFF JPEG chunk")?;
                // Tables end with EOI; the chunk starts with SOI.
                let t = t.strip_suffix(&[0xFF, 0xD9]).unwrap_or(t);
                s.extend_from_slice(t);
                s.extend_from_slice(&data[2..]);
                s
            }
            _ => data,
        };
        let loaded = crate::load(
            Source::memory(stream),
            InputFormat::Jpeg,
            &LoadOptions::default(),
        )
        .map_err(|e| Error::decode("tiff", format!("JPEG chunk {index}: {e}")))?;
        let img = Image::collect(loaded.stream)?;
        let (cw, ch) = (img.header.width, img.header.height);
        if cw < w || ch < h || img.header.bands as usize != bands {
            return Err(Error::decode(
                "tiff",
                format!(
                    "JPEG chunk {index} is {cw}x{ch} with {} bands, expected {w}x{h} with {bands}",
                    img.header.bands
                ),
            ));
        }
        let Samples::U8(v) = img.samples else {
            return Err(Error::decode("tiff", "JPEG chunk is not 8-bit"));
        };
        if cw == w && ch == h {
            return Ok(Samples::U8(v));
        }
        let (row_in, row_out) = (cw as usize * bands, w as usize * bands);
        let mut out = crate::alloc::with_capacity(
            crate::alloc::len(&[row_out, h as usize], "a TIFF JPEG chunk")?,
            "a TIFF JPEG chunk",
        )?;
        for row in v.chunks_exact(row_in).take(h as usize) {
            out.extend_from_slice(&row[..row_out]);
        }
        Ok(Samples::U8(out))
    }
}
