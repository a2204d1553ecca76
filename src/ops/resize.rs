//! Lanczos3 resampling with fast_image_resize; alpha is premultiplied around the filter so
//! transparent pixels do not bleed colour.

use fast_image_resize::{images::Image as FirImage, PixelType, ResizeOptions, Resizer};

use super::STRIP_ROWS;
use crate::error::{Error, Result};
use crate::image::{BoxStream, Image, SampleFormat, Samples};

fn pixel_type(format: SampleFormat, bands: u8) -> Option<PixelType> {
    use PixelType as P;
    Some(match (format, bands) {
        (SampleFormat::U8, 1) => P::U8,
        (SampleFormat::U8, 2) => P::U8x2,
        (SampleFormat::U8, 3) => P::U8x3,
        (SampleFormat::U8, 4) => P::U8x4,
        (SampleFormat::U16, 1) => P::U16,
        (SampleFormat::U16, 2) => P::U16x2,
        (SampleFormat::U16, 3) => P::U16x3,
        (SampleFormat::U16, 4) => P::U16x4,
        (SampleFormat::F32, 1) => P::F32,
        (SampleFormat::F32, 2) => P::F32x2,
        (SampleFormat::F32, 3) => P::F32x3,
        (SampleFormat::F32, 4) => P::F32x4,
        _ => return None,
    })
}

fn op_error(e: impl std::fmt::Display) -> Error {
    Error::op("resize", e)
}

/// Lanczos3 resample to exactly `width x height`. The input is collected first: the pipeline
/// box-shrinks before resizing, so it is at most about twice the output size per axis.
pub fn resize(input: BoxStream, width: u32, height: u32) -> Result<BoxStream> {
    let header = input.header().clone();
    if (header.width, header.height) == (width, height) {
        return Ok(input);
    }
    if width == 0 || height == 0 {
        return Err(op_error(format!("cannot resize to {width}x{height}")));
    }
    let pt = pixel_type(header.format, header.bands)
        .ok_or_else(|| op_error(format!("{} bands", header.bands)))?;
    let mut img = Image::collect(input)?;
    let out_len = crate::alloc::len(
        &[width as usize, height as usize, header.bands as usize],
        "the resize output",
    )?;
    let mut out = Samples::try_zeroed(header.format, out_len)?;
    {
        let src_bytes: &mut [u8] = match &mut img.samples {
            Samples::U8(v) => v.as_mut_slice(),
            Samples::U16(v) => bytemuck::cast_slice_mut(v.as_mut_slice()),
            Samples::F32(v) => bytemuck::cast_slice_mut(v.as_mut_slice()),
        };
        let dst_bytes: &mut [u8] = match &mut out {
            Samples::U8(v) => v.as_mut_slice(),
            Samples::U16(v) => bytemuck::cast_slice_mut(v.as_mut_slice()),
            Samples::F32(v) => bytemuck::cast_slice_mut(v.as_mut_slice()),
        };
        let src = FirImage::from_slice_u8(header.width, header.height, src_bytes, pt)
            .map_err(op_error)?;
        let mut dst = FirImage::from_slice_u8(width, height, dst_bytes, pt).map_err(op_error)?;
        let mut resizer = Resizer::new();
        if !crate::simd::enabled() {
            // SAFETY: no extensions at all is always supported by the CPU.
            unsafe { resizer.set_cpu_extensions(fast_image_resize::CpuExtensions::None) };
        }
        resizer
            .resize(&src, &mut dst, &ResizeOptions::new())
            .map_err(op_error)?;
    }
    let mut header = header;
    header.width = width;
    header.height = height;
    Ok(Box::new(
        Image {
            header,
            samples: out,
        }
        .into_stream(STRIP_ROWS),
    ))
}
