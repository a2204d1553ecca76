//! Lanczos3 resampling with fast_image_resize, streamed over bands of output rows; alpha is
//! premultiplied around the filter so transparent pixels do not bleed colour.
//!
//! Each output band is resized from the input rows its filter reaches (the band's rows mapped
//! back to the input, plus the filter's support on either side), held in a buffer that drops
//! rows as the band moves down. fast_image_resize is told where the band lies through a
//! fractional source crop, so every output row gets the same filter centre and weights as in a
//! whole-image resize (up to rounding in the last bits of the f64 centres). Memory is then the
//! input width times the band plus the support, never the whole image.

use fast_image_resize::{images::ImageRef, CpuExtensions, PixelType, ResizeOptions, Resizer};

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, ImageStream, SampleFormat, Samples, Strip};

/// Bytes of input rows one band may hold (and of output rows it may emit): the band's rows are
/// cut to fit. Larger bands cost memory, smaller ones cost a recomputation of the horizontal
/// filter weights per band.
const BAND_BYTES: usize = 8 << 20;

/// Lanczos3 reaches 3 input pixels on each side, scaled up by the shrink factor.
const LANCZOS_SUPPORT: f64 = 3.0;

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

/// Lanczos3 resample to exactly `width x height`, band by band.
pub fn resize(input: BoxStream, width: u32, height: u32) -> Result<BoxStream> {
    let h = input.header();
    let extent = (h.width as f64, h.height as f64);
    resize_banded(input, extent, width, height, None)
}

/// Lanczos3 resample of the input's top-left `extent` (fractional input pixels, at most its
/// size) to exactly `width x height`. A shrink-on-load of a size that is not a multiple of
/// its factor leaves a last column or row that stands for only part of a pixel: the extent
/// says how much, so the picture is not stretched over it.
pub fn resize_extent(
    input: BoxStream,
    extent: (f64, f64),
    width: u32,
    height: u32,
) -> Result<BoxStream> {
    resize_banded(input, extent, width, height, None)
}

/// As [`resize_extent`], with a fixed number of output rows per band (tests) instead of the
/// byte budget.
pub(crate) fn resize_banded(
    input: BoxStream,
    extent: (f64, f64),
    width: u32,
    height: u32,
    band_rows: Option<usize>,
) -> Result<BoxStream> {
    let header = input.header().clone();
    let (w, h) = (header.width as f64, header.height as f64);
    // An extent of a pixel or less, or past the image, is no extent: use the whole image.
    let valid = |e: f64, n: f64| e.is_finite() && e > n - 1.0 && e <= n;
    let extent = (
        if valid(extent.0, w) { extent.0 } else { w },
        if valid(extent.1, h) { extent.1 } else { h },
    );
    if (header.width, header.height) == (width, height) && extent == (w, h) {
        return Ok(input);
    }
    if width == 0 || height == 0 {
        return Err(op_error(format!("cannot resize to {width}x{height}")));
    }
    let pt = pixel_type(header.format, header.bands)
        .ok_or_else(|| op_error(format!("{} bands", header.bands)))?;
    Ok(Box::new(BandResize::new(
        input, header, extent, width, height, pt, band_rows,
    )))
}

struct BandResize<'a> {
    input: BoxStream<'a>,
    /// The output header.
    header: Header,
    pt: PixelType,
    in_width: u32,
    in_height: usize,
    /// Input columns the output spans (at most `in_width`; fractional after a shrink).
    extent_width: f64,
    in_row_bytes: usize,
    /// Input rows per output row (the filter's step).
    scale: f64,
    /// Input rows the filter reaches on each side of a centre.
    radius: f64,
    /// Output rows per band.
    band_rows: usize,
    /// Input rows `[buf_y, buf_y + buf.len() / in_row_bytes)`, packed, native-endian bytes.
    buf: Vec<u8>,
    buf_y: usize,
    /// Next output row.
    out_y: usize,
    resizer: Resizer,
}

impl<'a> BandResize<'a> {
    fn new(
        input: BoxStream<'a>,
        in_header: Header,
        extent: (f64, f64),
        width: u32,
        height: u32,
        pt: PixelType,
        band_rows: Option<usize>,
    ) -> Self {
        let in_row_bytes = in_header.row_samples() * in_header.format.bytes();
        let out_row_bytes = width as usize * pt.size();
        let scale = extent.1 / height as f64;
        let radius = LANCZOS_SUPPORT * scale.max(1.0);
        let band_rows = band_rows.unwrap_or_else(|| {
            // Input rows that fit the budget, less the support, mapped to output rows; and no
            // more output rows than fit the budget either.
            let in_rows = (BAND_BYTES / in_row_bytes.max(1)) as f64 - 2.0 * radius - 2.0;
            let by_input = (in_rows / scale).floor().max(0.0) as usize;
            let by_output = BAND_BYTES / out_row_bytes.max(1);
            by_input.min(by_output).max(16)
        });
        let mut resizer = Resizer::new();
        if !crate::simd::enabled() {
            // SAFETY: no extensions at all is always supported by the CPU.
            unsafe { resizer.set_cpu_extensions(CpuExtensions::None) };
        }
        let mut header = in_header.clone();
        header.width = width;
        header.height = height;
        BandResize {
            input,
            header,
            pt,
            in_width: in_header.width,
            in_height: in_header.height as usize,
            extent_width: extent.0,
            in_row_bytes,
            scale,
            radius,
            band_rows: band_rows.max(1),
            buf: Vec::new(),
            buf_y: 0,
            out_y: 0,
            resizer,
        }
    }

    fn buf_end(&self) -> usize {
        self.buf_y + self.buf.len() / self.in_row_bytes
    }

    /// Input rows `[first, end)` that output rows `[y0, y1)` read: the filter window around
    /// each row's centre, widened by a row for rounding, clamped to the image.
    fn input_rows(&self, y0: usize, y1: usize) -> (usize, usize) {
        let top = (y0 as f64 + 0.5) * self.scale - self.radius;
        let bottom = (y1 as f64 - 0.5) * self.scale + self.radius;
        let first = (top.floor() - 1.0).max(0.0) as usize;
        let end = ((bottom.ceil() + 1.0).max(0.0) as usize).min(self.in_height);
        (first.min(self.in_height), end)
    }

    /// Makes the buffer hold input rows `[first, end)`: drops rows above, reads rows below.
    fn hold(&mut self, first: usize, end: usize) -> Result<()> {
        if first > self.buf_y {
            let drop = (first - self.buf_y).min(self.buf.len() / self.in_row_bytes);
            self.buf.drain(..drop * self.in_row_bytes);
            self.buf_y += drop;
        }
        while self.buf_end() < end {
            let strip = self
                .input
                .next_strip()?
                .ok_or_else(|| op_error("input ended early"))?;
            let bytes: &[u8] = match &strip.samples {
                Samples::U8(v) => v,
                Samples::U16(v) => bytemuck::cast_slice(v),
                Samples::F32(v) => bytemuck::cast_slice(v),
            };
            if strip.samples.format() != self.header.format
                || bytes.len() != strip.height as usize * self.in_row_bytes
            {
                return Err(op_error("strip does not match its stream's header"));
            }
            // Rows wholly above the band (a strip that starts before `first`) are skipped.
            let skip = first
                .saturating_sub(self.buf_end())
                .min(strip.height as usize);
            if skip > 0 {
                self.buf_y += skip;
            }
            let rows = &bytes[skip * self.in_row_bytes..];
            crate::alloc::reserve(&mut self.buf, rows.len(), "the resize's input rows")?;
            self.buf.extend_from_slice(rows);
        }
        Ok(())
    }
}

impl ImageStream for BandResize<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let out_h = self.header.height as usize;
        if self.out_y >= out_h {
            return Ok(None);
        }
        let y0 = self.out_y;
        let y1 = (y0 + self.band_rows).min(out_h);
        let (first, end) = self.input_rows(y0, y1);
        self.hold(first, end)?;
        let rows = (end - first) as u32;
        let start = (first - self.buf_y) * self.in_row_bytes;
        let src = ImageRef::new(
            self.in_width,
            rows,
            &self.buf[start..start + rows as usize * self.in_row_bytes],
            self.pt,
        )
        .map_err(op_error)?;
        // Where the band's rows fall in the input, relative to the buffer's first row; clamped
        // against rounding so the crop stays inside the rows held.
        let top = (y0 as f64 * self.scale - first as f64).max(0.0);
        let crop_h = ((y1 - y0) as f64 * self.scale).min(rows as f64 - top);
        let options = ResizeOptions::new().crop(0.0, top, self.extent_width, crop_h);
        let n = y1 - y0;
        let len = crate::alloc::len(&[n, self.header.row_samples()], "a resize band")?;
        let mut out = Samples::try_zeroed(self.header.format, len)?;
        {
            let dst_bytes: &mut [u8] = match &mut out {
                Samples::U8(v) => v.as_mut_slice(),
                Samples::U16(v) => bytemuck::cast_slice_mut(v.as_mut_slice()),
                Samples::F32(v) => bytemuck::cast_slice_mut(v.as_mut_slice()),
            };
            let mut dst = fast_image_resize::images::Image::from_slice_u8(
                self.header.width,
                n as u32,
                dst_bytes,
                self.pt,
            )
            .map_err(op_error)?;
            self.resizer
                .resize(&src, &mut dst, &options)
                .map_err(op_error)?;
        }
        self.out_y = y1;
        Ok(Some(Strip {
            y: y0 as u32,
            height: n as u32,
            samples: out,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Image, Metadata};

    /// The whole-image resize this module did before it streamed: the reference.
    fn whole(img: &Image, width: u32, height: u32) -> Samples {
        let extent = (img.header.width as f64, img.header.height as f64);
        whole_extent(img, extent, width, height)
    }

    /// As [`whole`], from the top-left `extent` of the image.
    fn whole_extent(img: &Image, extent: (f64, f64), width: u32, height: u32) -> Samples {
        let h = &img.header;
        let pt = pixel_type(h.format, h.bands).unwrap();
        let src_bytes: &[u8] = match &img.samples {
            Samples::U8(v) => v,
            Samples::U16(v) => bytemuck::cast_slice(v),
            Samples::F32(v) => bytemuck::cast_slice(v),
        };
        let mut out =
            Samples::try_zeroed(h.format, (width * height) as usize * h.bands as usize).unwrap();
        let dst_bytes: &mut [u8] = match &mut out {
            Samples::U8(v) => v.as_mut_slice(),
            Samples::U16(v) => bytemuck::cast_slice_mut(v.as_mut_slice()),
            Samples::F32(v) => bytemuck::cast_slice_mut(v.as_mut_slice()),
        };
        let src = ImageRef::new(h.width, h.height, src_bytes, pt).unwrap();
        let mut dst =
            fast_image_resize::images::Image::from_slice_u8(width, height, dst_bytes, pt).unwrap();
        Resizer::new()
            .resize(
                &src,
                &mut dst,
                &ResizeOptions::new().crop(0.0, 0.0, extent.0, extent.1),
            )
            .unwrap();
        out
    }

    /// A deterministic busy test image: gradients, a hard edge and pseudo-random noise.
    fn test_image(w: u32, h: u32, bands: u8, format: SampleFormat) -> Image {
        let mut state = 0x9e37_79b9_u32;
        let mut vals = Vec::new();
        for y in 0..h {
            for x in 0..w {
                for b in 0..bands as u32 {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    let edge = if (x / 7 + y / 5) % 2 == 0 { 0.8 } else { 0.1 };
                    let v = (x as f64 / w as f64 * 0.3
                        + y as f64 / h as f64 * 0.2
                        + edge * 0.4
                        + (state % 100) as f64 / 1000.0)
                        * (1.0 - 0.1 * b as f64);
                    vals.push(v.clamp(0.0, 1.0));
                }
            }
        }
        let samples = match format {
            SampleFormat::U8 => Samples::U8(vals.iter().map(|v| (v * 255.0) as u8).collect()),
            SampleFormat::U16 => Samples::U16(vals.iter().map(|v| (v * 65535.0) as u16).collect()),
            SampleFormat::F32 => Samples::F32(vals.iter().map(|&v| v as f32).collect()),
        };
        Image {
            header: Header {
                width: w,
                height: h,
                bands,
                format,
                bit_depth: (format.bytes() * 8) as u8,
                meta: Metadata::upright(),
            },
            samples,
        }
    }

    /// PSNR in dB over the samples' nominal range, and the number of differing samples.
    fn compare(a: &Samples, b: &Samples) -> (f64, usize) {
        let pairs: Vec<(f64, f64)> = match (a, b) {
            (Samples::U8(a), Samples::U8(b)) => a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64 / 255.0, y as f64 / 255.0))
                .collect(),
            (Samples::U16(a), Samples::U16(b)) => a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64 / 65535.0, y as f64 / 65535.0))
                .collect(),
            (Samples::F32(a), Samples::F32(b)) => a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64, y as f64))
                .collect(),
            _ => panic!("formats differ"),
        };
        assert_eq!(a.len(), b.len());
        let differing = pairs.iter().filter(|(x, y)| x != y).count();
        let mse = pairs.iter().map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / pairs.len() as f64;
        (10.0 * (1.0 / mse).log10(), differing)
    }

    fn check(w: u32, h: u32, bands: u8, format: SampleFormat, to: (u32, u32), band: usize) {
        let img = test_image(w, h, bands, format);
        let want = whole(&img, to.0, to.1);
        // Input strips of an odd height, so bands and strips never line up.
        let stream = Box::new(img.into_stream(7));
        let got = Image::collect(
            resize_banded(stream, (w as f64, h as f64), to.0, to.1, Some(band)).unwrap(),
        )
        .unwrap();
        assert_eq!((got.header.width, got.header.height), to);
        let (psnr, differing) = compare(&got.samples, &want);
        assert!(
            psnr >= 60.0,
            "{w}x{h}x{bands} {format:?} -> {to:?}, bands of {band}: {psnr:.1} dB, \
             {differing} of {} samples differ",
            want.len()
        );
    }

    #[test]
    fn bands_match_the_whole_image_resize() {
        for band in [1, 5, 16, 1000] {
            for to in [(97, 61), (40, 23), (300, 200), (211, 330), (150, 100)] {
                check(150, 100, 3, SampleFormat::U8, to, band);
            }
        }
    }

    #[test]
    fn every_sample_format_and_alpha_streams() {
        for format in [SampleFormat::U8, SampleFormat::U16, SampleFormat::F32] {
            for bands in 1..=4 {
                check(120, 90, bands, format, (50, 37), 9);
                check(120, 90, bands, format, (251, 199), 9);
            }
        }
    }

    #[test]
    fn u8_downscales_are_identical_to_the_whole_image_resize() {
        // The usual case: 8-bit RGB shrunk by a thumbnail's remaining factor (1-3x). Enlarging
        // can differ by one level in a few samples (the vertical weights' fixed-point precision
        // follows the largest weight among a band's rows); the PSNR tests above cover it.
        for to in [(256, 171), (512, 300), (600, 400)] {
            let img = test_image(700, 467, 3, SampleFormat::U8);
            let want = whole(&img, to.0, to.1);
            let got = Image::collect(
                resize_banded(
                    Box::new(img.into_stream(16)),
                    (700.0, 467.0),
                    to.0,
                    to.1,
                    Some(32),
                )
                .unwrap(),
            )
            .unwrap();
            let (_, differing) = compare(&got.samples, &want);
            assert_eq!(differing, 0, "-> {to:?}");
        }
    }

    #[test]
    fn a_fractional_extent_streams_as_the_whole_image_crop() {
        // 150x100 shrunk by 8 from 1197x797: 149.625 x 99.625 of the 150x100 pixels.
        let extent = (1197.0 / 8.0, 797.0 / 8.0);
        for band in [1, 7, 1000] {
            for to in [(60, 40), (97, 65)] {
                let img = test_image(150, 100, 3, SampleFormat::U8);
                let want = whole_extent(&img, extent, to.0, to.1);
                let stream = Box::new(img.into_stream(7));
                let got =
                    Image::collect(resize_banded(stream, extent, to.0, to.1, Some(band)).unwrap())
                        .unwrap();
                let (psnr, _) = compare(&got.samples, &want);
                assert!(psnr >= 60.0, "-> {to:?}, bands of {band}: {psnr:.1} dB");
                // And it differs from resizing all 150x100 pixels (the stretch it corrects).
                let img = test_image(150, 100, 3, SampleFormat::U8);
                assert_ne!(whole(&img, to.0, to.1), want);
            }
        }
    }
}
