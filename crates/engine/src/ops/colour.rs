//! Per-pixel colour operations that stream: greyscale and invert.

use super::Sample;
use crate::error::Result;
use crate::image::{BoxStream, Header, ImageStream, SampleFormat, Samples, Strip};

/// Convert to greyscale with Rec. 709 luma weights applied to the stored (sRGB-encoded)
/// values, keeping alpha: RGB becomes 1 band, RGBA 2.
pub fn grey(input: BoxStream) -> Result<BoxStream> {
    let bands = input.header().bands;
    if bands <= 2 {
        return Ok(input);
    }
    let mut header = input.header().clone();
    header.bands = if bands == 4 { 2 } else { 1 };
    Ok(Box::new(Map {
        input,
        header,
        f: Box::new(move |s| grey_samples(s, bands as usize)),
    }))
}

/// Invert colour samples (max - v); alpha untouched.
pub fn invert(input: BoxStream) -> Result<BoxStream> {
    let header = input.header().clone();
    let bands = header.bands as usize;
    let alpha = header.has_alpha();
    Ok(Box::new(Map {
        input,
        header,
        f: Box::new(move |s| invert_samples(s, bands, alpha)),
    }))
}

type MapFn = Box<dyn FnMut(Samples) -> Result<Samples> + Send>;

struct Map<'a> {
    input: BoxStream<'a>,
    header: Header,
    f: MapFn,
}

impl ImageStream for Map<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        match self.input.next_strip()? {
            Some(s) => Ok(Some(Strip {
                samples: (self.f)(s.samples)?,
                ..s
            })),
            None => Ok(None),
        }
    }
}

fn grey_samples(s: Samples, bands: usize) -> Result<Samples> {
    // 16-bit fixed-point Rec. 709 weights summing to 65536.
    const WR: u64 = 13933;
    const WG: u64 = 46871;
    const WB: u64 = 4732;
    fn ints<T: Sample + Into<u64> + TryFrom<u64>>(v: Vec<T>, bands: usize) -> Result<Vec<T>> {
        let n = v.len() / bands * if bands == 4 { 2 } else { 1 };
        let mut out = crate::alloc::with_capacity(n, "a grey strip")?;
        for px in v.chunks_exact(bands) {
            let (r, g, b): (u64, u64, u64) = (px[0].into(), px[1].into(), px[2].into());
            let y = (WR * r + WG * g + WB * b + 32768) >> 16;
            out.push(T::try_from(y).unwrap_or_default());
            if bands == 4 {
                out.push(px[3]);
            }
        }
        Ok(out)
    }
    Ok(match s.format() {
        SampleFormat::U8 => Samples::U8(ints(u8::unwrap(s)?, bands)?),
        SampleFormat::U16 => Samples::U16(ints(u16::unwrap(s)?, bands)?),
        SampleFormat::F32 => {
            let v = f32::unwrap(s)?;
            let n = v.len() / bands * if bands == 4 { 2 } else { 1 };
            let mut out = crate::alloc::with_capacity(n, "a grey strip")?;
            for px in v.chunks_exact(bands) {
                out.push(0.2126 * px[0] + 0.7152 * px[1] + 0.0722 * px[2]);
                if bands == 4 {
                    out.push(px[3]);
                }
            }
            Samples::F32(out)
        }
    })
}

fn invert_samples(s: Samples, bands: usize, alpha: bool) -> Result<Samples> {
    let colour = if alpha { bands - 1 } else { bands };
    Ok(match s {
        Samples::U8(mut v) if !alpha => {
            // No alpha: one flat loop the compiler vectorises.
            v.iter_mut().for_each(|c| *c = !*c);
            Samples::U8(v)
        }
        Samples::U8(mut v) => {
            for px in v.chunks_exact_mut(bands) {
                for c in &mut px[..colour] {
                    *c = 255 - *c;
                }
            }
            Samples::U8(v)
        }
        Samples::U16(mut v) => {
            for px in v.chunks_exact_mut(bands) {
                for c in &mut px[..colour] {
                    *c = 65535 - *c;
                }
            }
            Samples::U16(v)
        }
        Samples::F32(mut v) => {
            for px in v.chunks_exact_mut(bands) {
                for c in &mut px[..colour] {
                    *c = 1.0 - *c;
                }
            }
            Samples::F32(v)
        }
    })
}
