//! Compressed chunks read as bytes, for the codings we decode ourselves (JPEG, Group 3).

use std::io::{Read, Seek, SeekFrom};

use ::tiff::tags::Tag;

use super::TiffDecoder;
use crate::error::{Error, Result};

/// Where each strip or tile of the current page is stored.
pub struct RawChunks {
    offsets: Vec<u64>,
    counts: Vec<u64>,
    /// Largest chunk we agree to read.
    limit: u64,
}

impl RawChunks {
    /// Reads the chunk tables of the current page.
    pub fn new<R: Read + Seek>(dec: &mut TiffDecoder<R>, tiled: bool, limit: u64) -> Result<Self> {
        let (off_tag, count_tag) = if tiled {
            (Tag::TileOffsets, Tag::TileByteCounts)
        } else {
            (Tag::StripOffsets, Tag::StripByteCounts)
        };
        let offsets = dec.get_tag_u64_vec(off_tag).map_err(super::err)?;
        let counts = dec.get_tag_u64_vec(count_tag).map_err(super::err)?;
        if offsets.len() != counts.len() {
            return Err(Error::decode(
                "tiff",
                "chunk offsets and byte counts differ in length",
            ));
        }
        Ok(RawChunks {
            offsets,
            counts,
            limit,
        })
    }

    /// The stored bytes of chunk `index`, at least `min_len` of them.
    pub fn read<R: Read + Seek>(
        &self,
        dec: &mut TiffDecoder<R>,
        index: u32,
        min_len: u64,
    ) -> Result<Vec<u8>> {
        let i = index as usize;
        let (&at, &len) = self
            .offsets
            .get(i)
            .zip(self.counts.get(i))
            .ok_or_else(|| Error::decode("tiff", format!("no chunk {index}")))?;
        if len > self.limit || len < min_len {
            return Err(Error::decode(
                "tiff",
                format!("chunk {index} of {len} bytes"),
            ));
        }
        let mut data = crate::alloc::filled(len as usize, 0u8, "a TIFF chunk")?;
        let r = dec.inner();
        r.seek(SeekFrom::Start(at)).map_err(Error::Read)?;
        r.read_exact(&mut data).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::decode("tiff", "file is truncated"),
            _ => Error::Read(e),
        })?;
        Ok(data)
    }
}
