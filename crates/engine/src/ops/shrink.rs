//! Integer box shrink: each output pixel is the rounded mean of an f x f block; blocks cut by
//! the right or bottom edge average the pixels that exist, so the output is ceil(w/f) x
//! ceil(h/f) (the size libjpeg's scaled decoding gives, which our JPEG shrink-on-load matches).

use super::Sample;
use crate::error::Result;
use crate::image::{BoxStream, Header, ImageStream, SampleFormat, Strip};

/// Box average by `factor` (>= 1); output `ceil(w/f) x ceil(h/f)`.
pub fn shrink(input: BoxStream, factor: u32) -> Result<BoxStream> {
    if factor <= 1 {
        return Ok(input);
    }
    Ok(match input.header().format {
        SampleFormat::U8 => Box::new(Shrink::<u8>::new(input, factor)?),
        SampleFormat::U16 => Box::new(Shrink::<u16>::new(input, factor)?),
        SampleFormat::F32 => Box::new(Shrink::<f32>::new(input, factor)?),
    })
}

struct Shrink<'a, T: Sample> {
    input: BoxStream<'a>,
    header: Header,
    f: usize,
    in_width: usize,
    in_height: usize,
    bands: usize,
    /// Current input strip and the next row to read from it.
    strip: Vec<T>,
    strip_rows: usize,
    strip_next: usize,
    /// Input rows consumed so far.
    in_y: usize,
    sums: Vec<T::Acc>,
}

impl<'a, T: Sample> Shrink<'a, T> {
    fn new(input: BoxStream<'a>, factor: u32) -> Result<Self> {
        let mut header = input.header().clone();
        let (w, h) = (header.width as usize, header.height as usize);
        header.width = header.width.div_ceil(factor);
        header.height = header.height.div_ceil(factor);
        let bands = header.bands as usize;
        let out_len = header.width as usize * bands;
        Ok(Shrink {
            input,
            header,
            f: factor as usize,
            in_width: w,
            in_height: h,
            bands,
            strip: Vec::new(),
            strip_rows: 0,
            strip_next: 0,
            in_y: 0,
            sums: crate::alloc::filled(out_len, T::Acc::default(), "shrink sums")?,
        })
    }

    /// Adds the next input row into the column sums.
    fn add_row(&mut self) -> Result<bool> {
        if self.strip_next >= self.strip_rows {
            match self.input.next_strip()? {
                Some(s) => {
                    self.strip_rows = s.height as usize;
                    self.strip = T::unwrap(s.samples)?;
                    self.strip_next = 0;
                }
                None => return Ok(false),
            }
        }
        let row_len = self.in_width * self.bands;
        let row = &self.strip[self.strip_next * row_len..(self.strip_next + 1) * row_len];
        let (f, b) = (self.f, self.bands);
        for (out, block) in self.sums.chunks_exact_mut(b).zip(row.chunks(f * b)) {
            for px in block.chunks_exact(b) {
                for (s, &v) in out.iter_mut().zip(px) {
                    *s += v.acc();
                }
            }
        }
        self.strip_next += 1;
        self.in_y += 1;
        Ok(true)
    }
}

impl<T: Sample> ImageStream for Shrink<'_, T> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let out_h = self.header.height as usize;
        let out_y = self.in_y.div_ceil(self.f);
        if out_y >= out_h {
            return Ok(None);
        }
        let out_w = self.header.width as usize;
        let rows = (64 * 1024 / (out_w * self.bands).max(1))
            .clamp(1, 64)
            .min(out_h - out_y);
        let mut out = crate::alloc::with_capacity(rows * out_w * self.bands, "a shrunk strip")?;
        for _ in 0..rows {
            let start = self.in_y;
            let want = self.f.min(self.in_height - start);
            self.sums.fill(T::Acc::default());
            for _ in 0..want {
                if !self.add_row()? {
                    return Err(crate::error::Error::op("shrink", "input ended early"));
                }
            }
            let n_rows = want as u32;
            for (ox, px) in self.sums.chunks_exact(self.bands).enumerate() {
                let cols = self.f.min(self.in_width - ox * self.f) as u32;
                for &s in px {
                    out.push(T::mean(s, cols * n_rows));
                }
            }
        }
        Ok(Some(Strip {
            y: out_y as u32,
            height: rows as u32,
            samples: T::wrap(out),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Image, Metadata, Samples};

    fn image(w: u32, h: u32, bands: u8, v: Vec<u8>) -> Image {
        Image {
            header: Header {
                width: w,
                height: h,
                bands,
                format: SampleFormat::U8,
                bit_depth: 8,
                meta: Metadata::upright(),
            },
            samples: Samples::U8(v),
        }
    }

    #[test]
    fn edges_average_what_exists() {
        // 3x3 grey, shrink 2 -> 2x2.
        let img = image(3, 3, 1, vec![0, 2, 10, 4, 6, 20, 100, 100, 50]);
        let out = Image::collect(shrink(Box::new(img.into_stream(1)), 2).unwrap()).unwrap();
        assert_eq!((out.header.width, out.header.height), (2, 2));
        assert_eq!(out.samples, Samples::U8(vec![3, 15, 100, 50]));
    }

    #[test]
    fn bands_are_kept_apart() {
        let img = image(2, 1, 2, vec![10, 200, 20, 100]);
        let out = Image::collect(shrink(Box::new(img.into_stream(4)), 2).unwrap()).unwrap();
        assert_eq!(out.samples, Samples::U8(vec![15, 150]));
    }
}
