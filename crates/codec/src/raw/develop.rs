//! Development of the raw sensor data with rawler (dnglab's library): scaling to the black and
//! white levels, demosaic (PPG for Bayer, bilinear for X-Trans), the active-area and default
//! crops, white balance from the camera's coefficients, the camera-to-XYZ matrix (D65) to
//! linear sRGB, and the sRGB curve. Bounded by the pixel and memory limits before rawler
//! allocates the image.

use std::sync::Arc;

use rawler::decoders::RawDecodeParams;
use rawler::imgop::develop::{Intermediate, RawDevelop};
use rawler::rawsource::RawSource;

use crate::error::{Error, Result};
use crate::image::{Header, Image, Metadata, SampleFormat, Samples};
use crate::Limits;

/// Bytes per sensor pixel rawler holds at its peak while developing (the raw samples, their
/// float copy, and two 3-band float images), which `memory_limit` must cover.
const BYTES_PER_PIXEL: u64 = 40;

fn raw_error(e: impl std::fmt::Display) -> Error {
    Error::decode("raw", e.to_string())
}

/// The file's raw image size and developed size, from its metadata alone (no decoding).
pub fn size(file: Arc<Vec<u8>>) -> Result<(u32, u32)> {
    let src = RawSource::new_from_shared_vec(file);
    let decoder = rawler::get_decoder(&src).map_err(raw_error)?;
    let raw = decoder
        .raw_image(&src, &RawDecodeParams::default(), true)
        .map_err(raw_error)?;
    let d = raw
        .crop_area
        .or(raw.active_area)
        .map_or((raw.width, raw.height), |r| (r.d.w, r.d.h));
    Ok((to_u32(d.0)?, to_u32(d.1)?))
}

/// A sample rawler already put through the sRGB curve, as 8 bits.
fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn to_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| raw_error("raw size out of range"))
}

/// Develops the whole file into an 8-bit sRGB image (grey for a monochrome sensor) with the
/// metadata `meta`.
pub fn develop(file: Arc<Vec<u8>>, meta: &Metadata, limits: &Limits) -> Result<Image> {
    let src = RawSource::new_from_shared_vec(file);
    let decoder = rawler::get_decoder(&src).map_err(raw_error)?;
    let params = RawDecodeParams::default();
    let dims = decoder.raw_image(&src, &params, true).map_err(raw_error)?;
    let pixels = (dims.width as u64).saturating_mul(dims.height as u64);
    if pixels > limits.max_pixels {
        return Err(Error::TooLarge {
            width: dims.width as u64,
            height: dims.height as u64,
            limit: limits.max_pixels,
        });
    }
    if pixels.saturating_mul(BYTES_PER_PIXEL) > limits.memory_limit {
        return Err(Error::Limit(format!(
            "developing a {}x{} raw image needs about {} bytes, over the {}-byte memory limit",
            dims.width,
            dims.height,
            pixels * BYTES_PER_PIXEL,
            limits.memory_limit
        )));
    }
    let raw = decoder.raw_image(&src, &params, false).map_err(raw_error)?;
    let developed = RawDevelop::default()
        .develop_intermediate(&raw)
        .map_err(raw_error)?;
    let (bands, dim, samples): (u8, _, Vec<u8>) = match developed {
        Intermediate::Monochrome(p) => (1, p.dim(), p.data.iter().map(|&v| to_u8(v)).collect()),
        Intermediate::ThreeColor(p) => (
            3,
            p.dim(),
            p.data.iter().flatten().map(|&v| to_u8(v)).collect(),
        ),
        Intermediate::FourColor(_) => return Err(raw_error("four-colour output")),
    };
    Ok(Image {
        header: Header {
            width: to_u32(dim.w)?,
            height: to_u32(dim.h)?,
            bands,
            format: SampleFormat::U8,
            bit_depth: 8,
            meta: meta.clone(),
        },
        samples: Samples::U8(samples),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TIFF whose second entry claims 2^32 - 1 doubles (34 GB) in a 49-byte file.
    fn forged_count() -> Vec<u8> {
        let mut f = b"II*\0".to_vec();
        f.extend(8u32.to_le_bytes());
        f.extend(2u16.to_le_bytes());
        // Make: ASCII, 11 bytes at offset 38, after the IFD.
        f.extend([0x0F, 0x01, 2, 0]);
        f.extend(11u32.to_le_bytes());
        f.extend(38u32.to_le_bytes());
        // ImageWidth as DOUBLE with a forged count.
        f.extend([0x00, 0x01, 12, 0]);
        f.extend(u32::MAX.to_le_bytes());
        f.extend(8u32.to_le_bytes());
        f.extend(0u32.to_le_bytes());
        f.extend(b"NIKON CORP\0");
        f
    }

    /// Found by `scripts/fuzz.sh raw`: rawler allocated the claimed count before reading it,
    /// and the failed allocation aborted the process. The vendored patch refuses it.
    #[test]
    fn a_forged_entry_count_is_an_error_not_an_abort() {
        assert!(size(Arc::new(forged_count())).is_err());
    }
}
