//! Mirrors and right-angle rotations, and EXIF autorotation built from them.
//!
//! Every transform is one of the eight EXIF orientations, expressed as where an output pixel
//! comes from. flop streams; the others need the whole image.

use super::Sample;
use crate::error::Result;
use crate::image::{
    BoxStream, Header, Image, ImageStream, SampleFormat, Samples, Strip, STRIP_ROWS,
};

/// Right-angle rotation, clockwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rotation {
    /// 90 degrees clockwise.
    R90,
    /// 180 degrees.
    R180,
    /// 270 degrees clockwise (90 anticlockwise).
    R270,
}

/// Applies EXIF orientation 1..8 so the image is upright; the output says orientation 1 (and
/// savers rewrite the EXIF tag to match).
pub fn autorotate(input: BoxStream) -> Result<BoxStream> {
    let o = input.header().meta.orientation;
    let mut out = if (2..=8).contains(&o) {
        orient(input, o)?
    } else {
        input
    };
    if out.header().meta.orientation != 1 {
        out = Box::new(Relabel {
            header: {
                let mut h = out.header().clone();
                h.meta.orientation = 1;
                h
            },
            input: out,
        });
    }
    Ok(out)
}

/// Right-angle rotation, clockwise.
pub fn rotate(input: BoxStream, rotation: Rotation) -> Result<BoxStream> {
    orient(
        input,
        match rotation {
            Rotation::R90 => 6,
            Rotation::R180 => 3,
            Rotation::R270 => 8,
        },
    )
}

/// Mirror top-bottom.
pub fn flip(input: BoxStream) -> Result<BoxStream> {
    orient(input, 4)
}

/// Mirror left-right, strip by strip.
pub fn flop(input: BoxStream) -> Result<BoxStream> {
    Ok(Box::new(Flop { input }))
}

/// Where output pixel (x, y) of an image transformed by EXIF orientation `o` comes from, for a
/// source of `w x h`.
fn source_of(o: u8, x: usize, y: usize, w: usize, h: usize) -> (usize, usize) {
    match o {
        2 => (w - 1 - x, y),
        3 => (w - 1 - x, h - 1 - y),
        4 => (x, h - 1 - y),
        5 => (y, x),
        6 => (y, h - 1 - x),
        7 => (w - 1 - y, h - 1 - x),
        8 => (w - 1 - y, x),
        _ => (x, y),
    }
}

/// Collects the image and emits it transformed by EXIF orientation `o`.
fn orient(input: BoxStream, o: u8) -> Result<BoxStream> {
    let img = Image::collect(input)?;
    let mut header = img.header.clone();
    let (w, h) = (header.width as usize, header.height as usize);
    if o >= 5 {
        std::mem::swap(&mut header.width, &mut header.height);
    }
    let bands = header.bands as usize;
    let (ow, oh) = (header.width as usize, header.height as usize);
    fn apply<T: Copy>(
        v: &[T],
        o: u8,
        w: usize,
        h: usize,
        ow: usize,
        oh: usize,
        b: usize,
    ) -> Result<Vec<T>> {
        let mut out = crate::alloc::with_capacity(v.len(), "a rotated image")?;
        for y in 0..oh {
            for x in 0..ow {
                let (sx, sy) = source_of(o, x, y, w, h);
                let at = (sy * w + sx) * b;
                out.extend_from_slice(&v[at..at + b]);
            }
        }
        Ok(out)
    }
    let samples = match &img.samples {
        Samples::U8(v) => Samples::U8(apply(v, o, w, h, ow, oh, bands)?),
        Samples::U16(v) => Samples::U16(apply(v, o, w, h, ow, oh, bands)?),
        Samples::F32(v) => Samples::F32(apply(v, o, w, h, ow, oh, bands)?),
    };
    Ok(Box::new(Image { header, samples }.into_stream(STRIP_ROWS)))
}

struct Flop<'a> {
    input: BoxStream<'a>,
}

fn flop_rows<T: Sample>(v: Vec<T>, w: usize, b: usize) -> Result<Vec<T>> {
    let mut out = crate::alloc::with_capacity(v.len(), "a mirrored strip")?;
    for row in v.chunks_exact(w * b) {
        for px in row.chunks_exact(b).rev() {
            out.extend_from_slice(px);
        }
    }
    Ok(out)
}

impl ImageStream for Flop<'_> {
    fn header(&self) -> &Header {
        self.input.header()
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let h = self.input.header();
        let (w, b) = (h.width as usize, h.bands as usize);
        let format = h.format;
        let Some(s) = self.input.next_strip()? else {
            return Ok(None);
        };
        let samples = match format {
            SampleFormat::U8 => u8::wrap(flop_rows(u8::unwrap(s.samples)?, w, b)?),
            SampleFormat::U16 => u16::wrap(flop_rows(u16::unwrap(s.samples)?, w, b)?),
            SampleFormat::F32 => f32::wrap(flop_rows(f32::unwrap(s.samples)?, w, b)?),
        };
        Ok(Some(Strip { samples, ..s }))
    }
}

/// Passes strips through under a different header (metadata changes only).
struct Relabel<'a> {
    input: BoxStream<'a>,
    header: Header,
}

impl ImageStream for Relabel<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        self.input.next_strip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Metadata;

    /// A 3x2 image whose pixels are their own index.
    fn sample(o: u8) -> BoxStream<'static> {
        Box::new(
            Image {
                header: Header {
                    width: 3,
                    height: 2,
                    bands: 1,
                    format: SampleFormat::U8,
                    bit_depth: 8,
                    meta: Metadata {
                        orientation: o,
                        ..Default::default()
                    },
                },
                samples: Samples::U8(vec![0, 1, 2, 3, 4, 5]),
            }
            .into_stream(1),
        )
    }

    fn pixels(s: BoxStream) -> (u32, u32, Vec<u8>) {
        let img = Image::collect(s).unwrap();
        let Samples::U8(v) = img.samples else {
            panic!()
        };
        (img.header.width, img.header.height, v)
    }

    #[test]
    fn exif_orientations_make_the_image_upright() {
        // Stored pixels  0 1 2 / 3 4 5 ; expected upright results per EXIF orientation.
        let expected: [(u32, u32, Vec<u8>); 8] = [
            (3, 2, vec![0, 1, 2, 3, 4, 5]),
            (3, 2, vec![2, 1, 0, 5, 4, 3]),
            (3, 2, vec![5, 4, 3, 2, 1, 0]),
            (3, 2, vec![3, 4, 5, 0, 1, 2]),
            (2, 3, vec![0, 3, 1, 4, 2, 5]),
            (2, 3, vec![3, 0, 4, 1, 5, 2]),
            (2, 3, vec![5, 2, 4, 1, 3, 0]),
            (2, 3, vec![2, 5, 1, 4, 0, 3]),
        ];
        for (i, want) in expected.into_iter().enumerate() {
            let o = i as u8 + 1;
            let out = autorotate(sample(o)).unwrap();
            assert_eq!(out.header().meta.orientation, 1);
            assert_eq!(pixels(out), want, "orientation {o}");
        }
    }

    #[test]
    fn flop_streams_and_mirrors() {
        assert_eq!(pixels(flop(sample(1)).unwrap()).2, vec![2, 1, 0, 5, 4, 3]);
        assert_eq!(pixels(flip(sample(1)).unwrap()).2, vec![3, 4, 5, 0, 1, 2]);
        assert_eq!(
            pixels(rotate(sample(1), Rotation::R90).unwrap()),
            (2, 3, vec![3, 0, 4, 1, 5, 2])
        );
    }
}
