//! Mirrors and right-angle rotations, and EXIF autorotation built from them.
//!
//! Every transform is one of the eight EXIF orientations ([`Orient`]), expressed as where an
//! output pixel comes from. A chain of them (autorotate, rotate, flip, flop) composes into one,
//! so the input is collected once; the output is then emitted strip by strip. flop streams.

use super::{CropRect, Sample};
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

/// One of the eight right-angle transforms, named by the EXIF orientation code it undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Orient(u8);

impl Orient {
    /// Leaves the image as it is.
    pub const IDENTITY: Orient = Orient(1);
    /// Mirror left-right.
    pub const FLOP: Orient = Orient(2);
    /// Mirror top-bottom.
    pub const FLIP: Orient = Orient(4);

    /// The transform that makes an image stored with EXIF orientation `o` upright (identity
    /// for codes outside 1..8).
    pub fn exif(o: u8) -> Orient {
        if (1..=8).contains(&o) {
            Orient(o)
        } else {
            Orient::IDENTITY
        }
    }

    /// A clockwise rotation.
    pub fn rotation(r: Rotation) -> Orient {
        Orient(match r {
            Rotation::R90 => 6,
            Rotation::R180 => 3,
            Rotation::R270 => 8,
        })
    }

    /// The EXIF orientation code (1..8).
    pub fn code(self) -> u8 {
        self.0
    }

    /// Whether the transform swaps width and height.
    pub fn swaps(self) -> bool {
        self.0 >= 5
    }

    /// Whether the transform needs the whole image (all but identity and flop stream).
    pub fn collects(self) -> bool {
        self != Orient::IDENTITY && self != Orient::FLOP
    }

    /// `self` followed by `next`, as one transform.
    pub fn then(self, next: Orient) -> Orient {
        // Found by comparing where every pixel of a 3x2 image lands: its pixels are distinct
        // and it is not square, so exactly one of the eight codes matches.
        let (w, h) = (3, 2);
        let (mw, mh) = if self.swaps() { (h, w) } else { (w, h) };
        let (ow, oh) = if next.swaps() { (mh, mw) } else { (mw, mh) };
        let composite = |x, y| {
            let (mx, my) = source_of(next.0, x, y, mw, mh);
            source_of(self.0, mx, my, w, h)
        };
        (1..=8)
            .map(Orient)
            .find(|c| {
                (0..oh).all(|y| (0..ow).all(|x| source_of(c.0, x, y, w, h) == composite(x, y)))
            })
            .unwrap_or(Orient::IDENTITY)
    }

    /// The rectangle of a `w x h` input that becomes `rect` of the output. `rect` must lie
    /// inside the output.
    pub fn source_rect(self, rect: CropRect, w: u32, h: u32) -> CropRect {
        let (w, h) = (w as usize, h as usize);
        let (x0, y0) = source_of(self.0, rect.x as usize, rect.y as usize, w, h);
        let (x1, y1) = source_of(
            self.0,
            (rect.x + rect.width - 1) as usize,
            (rect.y + rect.height - 1) as usize,
            w,
            h,
        );
        let (left, top) = (x0.min(x1) as u32, y0.min(y1) as u32);
        CropRect {
            x: left,
            y: top,
            width: x0.max(x1) as u32 - left + 1,
            height: y0.max(y1) as u32 - top + 1,
        }
    }
}

/// Applies EXIF orientation 1..8 so the image is upright; the output says orientation 1 (and
/// savers rewrite the EXIF tag to match).
pub fn autorotate(input: BoxStream) -> Result<BoxStream> {
    let o = input.header().meta.orientation;
    upright(orient(input, Orient::exif(o))?)
}

/// Relabels a stream as upright (orientation 1), after its EXIF orientation was applied.
pub fn upright(input: BoxStream) -> Result<BoxStream> {
    if input.header().meta.orientation == 1 {
        return Ok(input);
    }
    let mut header = input.header().clone();
    header.meta.orientation = 1;
    Ok(Box::new(Relabel { header, input }))
}

/// Right-angle rotation, clockwise.
pub fn rotate(input: BoxStream, rotation: Rotation) -> Result<BoxStream> {
    orient(input, Orient::rotation(rotation))
}

/// Mirror top-bottom.
pub fn flip(input: BoxStream) -> Result<BoxStream> {
    orient(input, Orient::FLIP)
}

/// Mirror left-right, strip by strip.
pub fn flop(input: BoxStream) -> Result<BoxStream> {
    orient(input, Orient::FLOP)
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

/// Applies `t`: identity passes through, flop streams, the others collect the input once and
/// emit the output strip by strip (the input plus one output strip are held).
pub fn orient(input: BoxStream, t: Orient) -> Result<BoxStream> {
    if t == Orient::IDENTITY {
        return Ok(input);
    }
    if t == Orient::FLOP {
        return Ok(Box::new(Flop { input }));
    }
    let img = Image::collect(input)?;
    let mut header = img.header.clone();
    if t.swaps() {
        std::mem::swap(&mut header.width, &mut header.height);
    }
    Ok(Box::new(Oriented {
        header,
        t,
        width: img.header.width as usize,
        height: img.header.height as usize,
        samples: img.samples,
        y: 0,
    }))
}

/// Emits a held image transformed by `t`, [`STRIP_ROWS`] output rows at a time.
struct Oriented {
    header: Header,
    t: Orient,
    /// Input size.
    width: usize,
    height: usize,
    samples: Samples,
    /// Next output row.
    y: u32,
}

impl Oriented {
    /// Output rows `y0..y1`: each is a line through the input with a constant step.
    fn rows<T: Copy>(&self, v: &[T], y0: u32, y1: u32) -> Result<Vec<T>> {
        let (w, h, b) = (self.width, self.height, self.header.bands as usize);
        let ow = self.header.width as usize;
        let n = crate::alloc::len(&[(y1 - y0) as usize, ow, b], "a rotated strip")?;
        let mut out = crate::alloc::with_capacity(n, "a rotated strip")?;
        let index = |x, y| {
            let (sx, sy) = source_of(self.t.0, x, y, w, h);
            (sy * w + sx) * b
        };
        for y in y0 as usize..y1 as usize {
            let start = index(0, y) as isize;
            let step = if ow > 1 {
                index(1, y) as isize - start
            } else {
                0
            };
            for x in 0..ow as isize {
                let at = (start + x * step) as usize;
                out.extend_from_slice(&v[at..at + b]);
            }
        }
        Ok(out)
    }
}

impl ImageStream for Oriented {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let y0 = self.y;
        if y0 >= self.header.height {
            return Ok(None);
        }
        let y1 = (y0 + STRIP_ROWS).min(self.header.height);
        let samples = match &self.samples {
            Samples::U8(v) => Samples::U8(self.rows(v, y0, y1)?),
            Samples::U16(v) => Samples::U16(self.rows(v, y0, y1)?),
            Samples::F32(v) => Samples::F32(self.rows(v, y0, y1)?),
        };
        self.y = y1;
        Ok(Some(Strip {
            y: y0,
            height: y1 - y0,
            samples,
        }))
    }
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

    /// A `w x h` two-band u16 image whose samples are distinct.
    fn numbered(w: u32, h: u32) -> BoxStream<'static> {
        let n = (w * h * 2) as u16;
        Box::new(
            Image {
                header: Header {
                    width: w,
                    height: h,
                    bands: 2,
                    format: SampleFormat::U16,
                    bit_depth: 16,
                    meta: Metadata::upright(),
                },
                samples: Samples::U16((0..n).collect()),
            }
            .into_stream(3),
        )
    }

    fn collected(s: BoxStream) -> Image {
        Image::collect(s).unwrap()
    }

    #[test]
    fn composed_transforms_equal_the_chain() {
        for a in 1..=8 {
            for b in 1..=8 {
                let (a, b) = (Orient(a), Orient(b));
                let chain = orient(orient(numbered(7, 5), a).unwrap(), b).unwrap();
                let once = orient(numbered(7, 5), a.then(b)).unwrap();
                assert_eq!(collected(chain), collected(once), "{a:?} then {b:?}");
            }
        }
    }

    #[test]
    fn cropping_the_source_rect_equals_cropping_the_output() {
        let rect = CropRect {
            x: 1,
            y: 2,
            width: 3,
            height: 2,
        };
        for t in (1..=8).map(Orient) {
            let out = orient(numbered(6, 5), t).unwrap();
            let (ow, oh) = (out.header().width, out.header().height);
            let after = super::super::crop(out, rect).unwrap();
            let src = t.source_rect(rect, 6, 5);
            let before = orient(super::super::crop(numbered(6, 5), src).unwrap(), t).unwrap();
            assert_eq!((ow, oh), if t.swaps() { (5, 6) } else { (6, 5) });
            assert_eq!(collected(after), collected(before), "{t:?}");
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
