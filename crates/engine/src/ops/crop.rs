//! Cutting out a rectangle, row band by row band.

use super::Sample;
use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, ImageStream, SampleFormat, Strip};

/// A crop rectangle in the image after resizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CropRect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Fails unless `rect` is non-empty and lies inside a `width x height` image.
pub fn check_fits(rect: CropRect, width: u32, height: u32) -> Result<()> {
    let fits = rect.width > 0
        && rect.height > 0
        && rect.x.checked_add(rect.width).is_some_and(|r| r <= width)
        && rect.y.checked_add(rect.height).is_some_and(|b| b <= height);
    if !fits {
        return Err(Error::op(
            "crop",
            format!(
                "{}x{}+{}+{} does not fit inside the {width}x{height} image",
                rect.width, rect.height, rect.x, rect.y
            ),
        ));
    }
    Ok(())
}

/// Cut out a rectangle; fails if it does not lie inside the image.
pub fn crop(input: BoxStream, rect: CropRect) -> Result<BoxStream> {
    let h = input.header();
    check_fits(rect, h.width, h.height)?;
    if (rect.x, rect.y, rect.width, rect.height) == (0, 0, h.width, h.height) {
        return Ok(input);
    }
    Ok(match h.format {
        SampleFormat::U8 => Box::new(Crop::<u8>::new(input, rect)),
        SampleFormat::U16 => Box::new(Crop::<u16>::new(input, rect)),
        SampleFormat::F32 => Box::new(Crop::<f32>::new(input, rect)),
    })
}

struct Crop<'a, T> {
    input: BoxStream<'a>,
    header: Header,
    rect: CropRect,
    in_width: usize,
    done: bool,
    _t: std::marker::PhantomData<T>,
}

impl<'a, T: Sample> Crop<'a, T> {
    fn new(input: BoxStream<'a>, rect: CropRect) -> Self {
        let mut header = input.header().clone();
        let in_width = header.width as usize;
        header.width = rect.width;
        header.height = rect.height;
        Crop {
            input,
            header,
            rect,
            in_width,
            done: false,
            _t: std::marker::PhantomData,
        }
    }
}

impl<T: Sample> ImageStream for Crop<'_, T> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let (top, bottom) = (self.rect.y, self.rect.y + self.rect.height);
        while !self.done {
            let Some(s) = self.input.next_strip()? else {
                break;
            };
            let (sy, sh) = (s.y, s.height);
            if sy + sh <= top {
                continue;
            }
            if sy >= bottom {
                // Rows below the rectangle are never needed: stop pulling.
                self.done = true;
                break;
            }
            let b = self.header.bands as usize;
            let v = T::unwrap(s.samples)?;
            let (r0, r1) = (top.max(sy), bottom.min(sy + sh));
            let (x0, x1) = (
                self.rect.x as usize * b,
                (self.rect.x + self.rect.width) as usize * b,
            );
            let row_len = self.in_width * b;
            let mut out =
                crate::alloc::with_capacity((r1 - r0) as usize * (x1 - x0), "a cropped strip")?;
            for r in r0..r1 {
                let at = (r - sy) as usize * row_len;
                out.extend_from_slice(&v[at + x0..at + x1]);
            }
            if r1 == bottom {
                self.done = true;
            }
            return Ok(Some(Strip {
                y: r0 - top,
                height: r1 - r0,
                samples: T::wrap(out),
            }));
        }
        Ok(None)
    }
}
