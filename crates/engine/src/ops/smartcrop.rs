//! Where `fill` cuts its window out of the resized image: a fixed gravity (the centre, an edge
//! or a corner), placed from the sizes alone, or a smart one chosen from the pixels, after
//! libvips' `vips_smartcrop` (8.14):
//!
//! - `attention`: the image is averaged down to a 32x32 grid; each cell scores its edges
//!   (Laplacian of the XYZ luminance, times 5), its closeness to a skin tone and its CIELAB a*
//!   (red-magenta saturation), the last two only where Y > 5; the score map is blurred by a
//!   Gaussian sized to the window and the window is centred on its maximum.
//! - `entropy`: slices are cut off the sides, 8 steps along the axis that needs the most, each
//!   time from the side whose histogram has less entropy.
//!
//! Both run on the resized image (a 256x256 fill looks at a 384x256 canvas, not the 20 MP
//! source), which the pipeline holds whole for this, and see it upright, as libvips (which
//! crops after rotating) does. Ties keep the first candidate, so the choice is deterministic.

use fast_image_resize::{images::ImageRef, CpuExtensions, PixelType, ResizeOptions, Resizer};

use super::{CropRect, Orient};
use crate::error::{Error, Result};
use crate::image::{Image, Samples};

/// Which part of the resized image `fill` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gravity {
    /// The centre (the default).
    #[default]
    Centre,
    /// Top edge, centred across.
    North,
    /// Bottom edge, centred across.
    South,
    /// Right edge, centred down.
    East,
    /// Left edge, centred down.
    West,
    /// Top-right corner.
    NorthEast,
    /// Top-left corner.
    NorthWest,
    /// Bottom-right corner.
    SouthEast,
    /// Bottom-left corner.
    SouthWest,
    /// The most salient part: edges, skin tones, saturated colour (libvips `attention`).
    Attention,
    /// The part with the most histogram entropy (libvips `entropy`).
    Entropy,
}

/// Every gravity with a token, in the order the grammar lists them.
const TOKENS: [(&str, Gravity); 10] = [
    ("attention", Gravity::Attention),
    ("entropy", Gravity::Entropy),
    ("n", Gravity::North),
    ("s", Gravity::South),
    ("e", Gravity::East),
    ("w", Gravity::West),
    ("ne", Gravity::NorthEast),
    ("nw", Gravity::NorthWest),
    ("se", Gravity::SouthEast),
    ("sw", Gravity::SouthWest),
];

impl Gravity {
    /// The gravity a spec token names (`attention`, `n`, `se`...); the centre has none.
    pub fn from_token(token: &str) -> Option<Gravity> {
        TOKENS.iter().find(|(t, _)| *t == token).map(|(_, g)| *g)
    }

    /// The spec token, `None` for the centre (the default, never spelled).
    pub fn token(self) -> Option<&'static str> {
        TOKENS.iter().find(|(_, g)| *g == self).map(|(t, _)| *t)
    }

    /// Every token, in the grammar's order.
    pub fn tokens() -> impl Iterator<Item = &'static str> {
        TOKENS.iter().map(|(t, _)| *t)
    }

    /// Whether the window depends on the pixels (the image must then be held whole).
    pub fn is_smart(self) -> bool {
        matches!(self, Gravity::Attention | Gravity::Entropy)
    }

    /// The top-left corner of a `bw x bh` window in a `tw x th` image for a fixed gravity;
    /// the smart ones are planned as the centre until [`smart_window`] moves them.
    pub fn place(self, tw: u32, th: u32, bw: u32, bh: u32) -> (u32, u32) {
        use Gravity as G;
        let (dx, dy) = (tw.saturating_sub(bw), th.saturating_sub(bh));
        let x = match self {
            G::West | G::NorthWest | G::SouthWest => 0,
            G::East | G::NorthEast | G::SouthEast => dx,
            _ => dx / 2,
        };
        let y = match self {
            G::North | G::NorthEast | G::NorthWest => 0,
            G::South | G::SouthEast | G::SouthWest => dy,
            _ => dy / 2,
        };
        (x, y)
    }
}

/// The top-left corner, in the upright image, of the `window` (upright width and height) a
/// smart `gravity` keeps of `img`, which is stored so that `orient` makes it upright.
pub fn smart_window(
    img: &Image,
    gravity: Gravity,
    orient: Orient,
    window: (u32, u32),
) -> Result<(u32, u32)> {
    let h = &img.header;
    let upright = if orient.swaps() {
        (h.height, h.width)
    } else {
        (h.width, h.height)
    };
    if window.0 == 0 || window.1 == 0 || window.0 > upright.0 || window.1 > upright.1 {
        return Err(Error::op(
            "smartcrop",
            format!(
                "a {}x{} window does not fit the {}x{} image",
                window.0, window.1, upright.0, upright.1
            ),
        ));
    }
    let pixels = Pixels::new(img)?;
    Ok(match gravity {
        Gravity::Attention => attention(&pixels, orient, upright, window)?,
        Gravity::Entropy => entropy(&pixels, orient, upright, window),
        fixed => fixed.place(upright.0, upright.1, window.0, window.1),
    })
}

/// An image read as sRGB-encoded colour, 0..1, alpha premultiplied (as libvips premultiplies
/// before looking, so content under transparency does not count); grey is R = G = B. Pixels
/// are converted as they are read, so nothing but the image itself is held at its size.
struct Pixels<'a> {
    width: usize,
    height: usize,
    bands: usize,
    alpha: bool,
    samples: &'a Samples,
}

impl<'a> Pixels<'a> {
    fn new(img: &'a Image) -> Result<Pixels<'a>> {
        let h = &img.header;
        let bands = h.bands as usize;
        if !(1..=4).contains(&bands) {
            return Err(Error::op(
                "smartcrop",
                format!("{bands} bands: expected 1 to 4"),
            ));
        }
        Ok(Pixels {
            width: h.width as usize,
            height: h.height as usize,
            bands,
            alpha: h.has_alpha(),
            samples: &img.samples,
        })
    }

    /// Pixel `i` (row-major).
    fn at(&self, i: usize) -> [f32; 3] {
        let b = self.bands;
        let s = |k: usize| -> f32 {
            match self.samples {
                Samples::U8(v) => v[i * b + k] as f32 / 255.0,
                Samples::U16(v) => v[i * b + k] as f32 / 65535.0,
                // Float images hold linear light (alpha as it is); the scores are defined on
                // sRGB-encoded values.
                Samples::F32(v) if self.alpha && k == b - 1 => v[i * b + k].clamp(0.0, 1.0),
                Samples::F32(v) => crate::image::linear_to_srgb(v[i * b + k]),
            }
        };
        let a = if self.alpha { s(b - 1) } else { 1.0 };
        if b < 3 {
            [s(0) * a; 3]
        } else {
            [s(0) * a, s(1) * a, s(2) * a]
        }
    }
}

/// The side of the grid `attention` scores on (libvips' precision for placing the window).
const GRID: usize = 32;

/// The image resampled to a GRID x GRID grid of stored cells as libvips' `resize` does it
/// for a large reduction: a box average by the whole factor that leaves at least 2x (partial
/// blocks at the ends averaged over what they hold), then Lanczos3 for the rest.
fn grid(px: &Pixels) -> Result<Vec<[f32; 3]>> {
    let k = |len: usize| (len / GRID / 2).max(1);
    let (kx, ky) = (k(px.width), k(px.height));
    let (bw, bh) = (px.width.div_ceil(kx), px.height.div_ceil(ky));
    let mut boxed = vec![0.0f32; bw * bh * 3];
    for by in 0..bh {
        let rows = by * ky..((by + 1) * ky).min(px.height);
        for bx in 0..bw {
            let cols = bx * kx..((bx + 1) * kx).min(px.width);
            let mut acc = [0.0f64; 3];
            for y in rows.clone() {
                for i in y * px.width + cols.start..y * px.width + cols.end {
                    let p = px.at(i);
                    for c in 0..3 {
                        acc[c] += p[c] as f64;
                    }
                }
            }
            let n = (rows.len() * cols.len()) as f64;
            for c in 0..3 {
                boxed[(by * bw + bx) * 3 + c] = (acc[c] / n) as f32;
            }
        }
    }
    let mut out = vec![0.0f32; GRID * GRID * 3];
    let src = ImageRef::new(
        bw as u32,
        bh as u32,
        bytemuck::cast_slice(&boxed),
        PixelType::F32x3,
    )
    .map_err(op_error)?;
    let mut dst = fast_image_resize::images::Image::from_slice_u8(
        GRID as u32,
        GRID as u32,
        bytemuck::cast_slice_mut(&mut out),
        PixelType::F32x3,
    )
    .map_err(op_error)?;
    let mut resizer = Resizer::new();
    if !crate::simd::enabled() {
        // SAFETY: no extensions at all is always supported by the CPU.
        unsafe { resizer.set_cpu_extensions(CpuExtensions::None) };
    }
    resizer
        .resize(&src, &mut dst, &ResizeOptions::new())
        .map_err(op_error)?;
    Ok(out.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
}

fn op_error(e: impl std::fmt::Display) -> Error {
    Error::op("smartcrop", e)
}

/// The stored grid cell that lands at upright cell (x, y).
fn stored_cell(orient: Orient, x: usize, y: usize) -> usize {
    let r = orient.source_rect(
        CropRect {
            x: x as u32,
            y: y as u32,
            width: 1,
            height: 1,
        },
        GRID as u32,
        GRID as u32,
    );
    r.y as usize * GRID + r.x as usize
}

/// sRGB-encoded 0..1 to CIE XYZ (D65) with Y in 0..100, as libvips' `XYZ` space.
fn xyz(rgb: [f32; 3]) -> [f64; 3] {
    let lin = rgb.map(|v| crate::image::srgb_to_linear(v.clamp(0.0, 1.0)) as f64);
    let m = [
        [0.4124, 0.3576, 0.1805],
        [0.2126, 0.7152, 0.0722],
        [0.0193, 0.1192, 0.9505],
    ];
    m.map(|row| 100.0 * (row[0] * lin[0] + row[1] * lin[1] + row[2] * lin[2]))
}

/// CIELAB a* of an XYZ colour (D65 white).
fn lab_a(xyz: [f64; 3]) -> f64 {
    let f = |t: f64| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    500.0 * (f(xyz[0] / 95.047) - f(xyz[1] / 100.0))
}

/// Skin tone direction in normalised XYZ (libvips, from smartcrop.js).
const SKIN: [f64; 3] = [0.78, 0.57, 0.44];

/// The upright window centred on the attention maximum (see the module doc).
fn attention(
    px: &Pixels,
    orient: Orient,
    upright: (u32, u32),
    window: (u32, u32),
) -> Result<(u32, u32)> {
    let stored = grid(px)?;
    let cells: Vec<[f64; 3]> = (0..GRID * GRID)
        .map(|i| xyz(stored[stored_cell(orient, i % GRID, i / GRID)]))
        .collect();
    let y_at = |x: isize, y: isize| {
        let (x, y) = (x.clamp(0, GRID as isize - 1), y.clamp(0, GRID as isize - 1));
        cells[y as usize * GRID + x as usize][1]
    };
    let mut score = vec![0.0f64; GRID * GRID];
    for y in 0..GRID as isize {
        for x in 0..GRID as isize {
            let c = cells[y as usize * GRID + x as usize];
            // Borders repeat the edge cell, as libvips extends an image before convolving.
            let lap =
                4.0 * c[1] - y_at(x - 1, y) - y_at(x + 1, y) - y_at(x, y - 1) - y_at(x, y + 1);
            let edges = (5.0 * lap).abs();
            let (skin, sat) = if c[1] > 5.0 {
                let norm = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
                let d = (0..3)
                    .map(|k| (c[k] / norm - SKIN[k]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                (100.0 - 100.0 * d, lab_a(c))
            } else {
                (0.0, 0.0)
            };
            score[y as usize * GRID + x as usize] = edges + skin + sat;
        }
    }
    let (sx, sy) = (
        GRID as f64 / upright.0 as f64,
        GRID as f64 / upright.1 as f64,
    );
    let sigma =
        (((window.0 as f64 * sx).powi(2) + (window.1 as f64 * sy).powi(2)).sqrt() / 10.0).max(1.0);
    let blurred = gaussian_blur(&score, sigma);
    let mut best = 0;
    for (i, &v) in blurred.iter().enumerate() {
        if v > blurred[best] {
            best = i;
        }
    }
    let (bx, by) = (best % GRID, best / GRID);
    let centre = |pos: usize, scale: f64, full: u32, win: u32| {
        let at = (pos as f64 / scale) as i64 - (win / 2) as i64;
        at.clamp(0, (full - win) as i64) as u32
    };
    Ok((
        centre(bx, sx, upright.0, window.0),
        centre(by, sy, upright.1, window.1),
    ))
}

/// A separable Gaussian over the grid, its mask as libvips' `gaussblur` builds it: cut where
/// the curve falls below 0.2, weights rounded to twentieths, borders extended.
fn gaussian_blur(map: &[f64], sigma: f64) -> Vec<f64> {
    let sig2 = 2.0 * sigma * sigma;
    let max_x = (8.0 * sigma) as usize;
    let reach = (0..max_x)
        .find(|&x| (-((x * x) as f64) / sig2).exp() < 0.2)
        .unwrap_or(max_x)
        .saturating_sub(1);
    let mask: Vec<f64> = (0..=2 * reach)
        .map(|i| {
            let d = i as f64 - reach as f64;
            (20.0 * (-(d * d) / sig2).exp()).round()
        })
        .collect();
    let total: f64 = mask.iter().sum::<f64>().max(1.0);
    let pass = |src: &[f64], horizontal: bool| {
        let mut out = vec![0.0f64; GRID * GRID];
        for y in 0..GRID {
            for x in 0..GRID {
                let mut acc = 0.0;
                for (k, w) in mask.iter().enumerate() {
                    let o = k as isize - reach as isize;
                    let (sx, sy) = if horizontal {
                        ((x as isize + o).clamp(0, GRID as isize - 1) as usize, y)
                    } else {
                        (x, (y as isize + o).clamp(0, GRID as isize - 1) as usize)
                    };
                    acc += w * src[sy * GRID + sx];
                }
                out[y * GRID + x] = acc / total;
            }
        }
        out
    };
    pass(&pass(map, true), false)
}

/// The upright window left after trimming low-entropy slices (see the module doc).
fn entropy(px: &Pixels, orient: Orient, upright: (u32, u32), window: (u32, u32)) -> (u32, u32) {
    let (mut left, mut top) = (0u32, 0u32);
    let (mut width, mut height) = upright;
    let steps = |excess: u32| excess.div_ceil(8);
    let max_slice = steps(width - window.0).max(steps(height - window.1));
    let score = |x: u32, y: u32, w: u32, h: u32| {
        let r = orient.source_rect(
            CropRect {
                x,
                y,
                width: w,
                height: h,
            },
            px.width as u32,
            px.height as u32,
        );
        region_entropy(px, r)
    };
    while width > window.0 || height > window.1 {
        let slice_w = (width - window.0).min(max_slice);
        let slice_h = (height - window.1).min(max_slice);
        if slice_w > 0 {
            let l = score(left, top, slice_w, height);
            let r = score(left + width - slice_w, top, slice_w, height);
            width -= slice_w;
            if l < r {
                left += slice_w;
            }
        }
        if slice_h > 0 {
            let t = score(left, top, width, slice_h);
            let b = score(left, top + height - slice_h, width, slice_h);
            height -= slice_h;
            if t < b {
                top += slice_h;
            }
        }
    }
    (left, top)
}

/// Entropy in bits of the 8-bit histograms of a stored region's bands, pooled as libvips'
/// `hist_entropy` pools a multi-band histogram.
fn region_entropy(px: &Pixels, r: CropRect) -> f64 {
    let mut hist = [[0u32; 256]; 3];
    for y in r.y as usize..(r.y + r.height) as usize {
        for i in y * px.width + r.x as usize..y * px.width + (r.x + r.width) as usize {
            let p = px.at(i);
            for c in 0..3 {
                hist[c][(p[c] * 255.0).round().clamp(0.0, 255.0) as usize] += 1;
            }
        }
    }
    let total = (r.width as f64) * (r.height as f64) * 3.0;
    -hist
        .iter()
        .flatten()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f64 / total;
            p * p.log2()
        })
        .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Header, Metadata, SampleFormat};

    fn rgb(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Image {
        let mut v = Vec::new();
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&f(x, y));
            }
        }
        Image {
            header: Header {
                width: w,
                height: h,
                bands: 3,
                format: SampleFormat::U8,
                bit_depth: 8,
                meta: Metadata::upright(),
            },
            samples: Samples::U8(v),
        }
    }

    /// Flat grey with a noisy red square at (x0, y0)..(x0 + 40, y0 + 40).
    fn square_at(w: u32, h: u32, x0: u32, y0: u32) -> Image {
        rgb(w, h, |x, y| {
            if (x0..x0 + 40).contains(&x) && (y0..y0 + 40).contains(&y) {
                let n = ((x * 7 + y * 13) % 5 * 40) as u8;
                [200, n, 30]
            } else {
                [128, 128, 128]
            }
        })
    }

    #[test]
    fn tokens_round_trip() {
        for t in Gravity::tokens() {
            assert_eq!(Gravity::from_token(t).and_then(Gravity::token), Some(t));
        }
        assert_eq!(Gravity::Centre.token(), None);
        assert_eq!(Gravity::from_token("centre"), None);
    }

    #[test]
    fn fixed_gravities_hug_their_edges() {
        assert_eq!(Gravity::Centre.place(300, 100, 100, 100), (100, 0));
        assert_eq!(Gravity::West.place(300, 100, 100, 100), (0, 0));
        assert_eq!(Gravity::East.place(300, 100, 100, 100), (200, 0));
        assert_eq!(Gravity::North.place(100, 300, 100, 100), (0, 0));
        assert_eq!(Gravity::South.place(100, 300, 100, 100), (0, 200));
        assert_eq!(Gravity::SouthEast.place(300, 301, 100, 100), (200, 201));
        assert_eq!(Gravity::NorthWest.place(300, 301, 100, 100), (0, 0));
        assert_eq!(Gravity::Attention.place(300, 100, 100, 100), (100, 0));
    }

    #[test]
    fn smart_gravities_find_the_subject() {
        // A 300x100 canvas, 100x100 window, the subject near the right edge.
        let img = square_at(300, 100, 240, 30);
        for g in [Gravity::Attention, Gravity::Entropy] {
            let (x, y) = smart_window(&img, g, Orient::IDENTITY, (100, 100)).unwrap();
            assert_eq!(y, 0, "{g:?}");
            assert!(x + 100 >= 280 && x <= 240, "{g:?}: window at {x}");
        }
        // And near the left edge.
        let img = square_at(300, 100, 10, 30);
        for g in [Gravity::Attention, Gravity::Entropy] {
            let (x, _) = smart_window(&img, g, Orient::IDENTITY, (100, 100)).unwrap();
            assert!(x <= 10, "{g:?}: window at {x}");
        }
    }

    #[test]
    fn smart_gravities_look_at_the_upright_image() {
        // Stored 100x300 with orientation 6 (90 clockwise to display): upright 300x100, the
        // stored top (y < 100) becomes the upright right-hand third.
        let img = square_at(100, 300, 30, 20);
        let rot = Orient::exif(6);
        for g in [Gravity::Attention, Gravity::Entropy] {
            let (x, y) = smart_window(&img, g, rot, (100, 100)).unwrap();
            assert_eq!(y, 0, "{g:?}");
            assert!(x >= 180, "{g:?}: window at {x}");
        }
    }

    #[test]
    fn a_window_larger_than_the_image_is_an_error() {
        let img = square_at(100, 100, 0, 0);
        assert!(smart_window(&img, Gravity::Attention, Orient::IDENTITY, (101, 50)).is_err());
    }

    #[test]
    fn the_grid_of_a_flat_image_is_flat() {
        for (w, h) in [(384, 256), (31, 7), (1000, 64)] {
            let img = rgb(w, h, |_, _| [200, 100, 50]);
            let g = grid(&Pixels::new(&img).unwrap()).unwrap();
            assert_eq!(g.len(), GRID * GRID);
            for c in g {
                for (got, want) in c.iter().zip([200.0, 100.0, 50.0]) {
                    assert!((got * 255.0 - want).abs() < 0.01, "{w}x{h}: {c:?}");
                }
            }
        }
    }
}
