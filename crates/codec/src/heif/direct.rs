//! The direct thumbnail path for plain HEVC images: the primary `hvc1` item's data and its
//! `hvcC` parameter sets go straight to libde265 (`de265.rs`, two worker threads), and the
//! decoded YCbCr planes are box-shrunk by the planner's factor before one conversion to RGB
//! per output pixel. libheif's decode (one decoder thread, a float conversion of every pixel
//! to planar RGB, then interleaving: 14 % of a w256 and most of the page faults) is skipped.
//!
//! Same picture as libheif 1.15's path, which stays the path for everything else:
//! - the conversion is libheif's (`Op_YCbCr_to_RGB`: its coefficients from the `nclx`
//!   matrix, or from the stream's VUI without one; its limited-range scaling; chroma taken
//!   from the sample that covers each luma pixel). It is affine, so converting the block
//!   means instead of averaging converted pixels changes only rounding (and clipping of
//!   out-of-gamut pixels);
//! - `irot` and `imir` are applied in the order the item lists them, as libheif does, to the
//!   shrunk image; the blocks are laid from the stored corner that ends up top-left, so they
//!   cover the same pixels as the pipeline's shrink of libheif's upright image;
//! - anything else falls back: derived images (grid, overlay, identity), `clap`, alpha,
//!   monochrome, more than 8 bits, NAL length fields other than 4 bytes (libheif reads 4),
//!   the matrices libheif converts another way (0 GBR, 8 YCgCo, 12/13 from primaries), a
//!   picture whose size is not the header's, and any decoding problem (libheif then decodes
//!   the file, or reports the error).

use super::de265::{self, chroma, Decoder, Picture, Plane};
use super::items::{boxes, item_locations, item_types, take, Bx, Location};
use crate::image::{Header, Image, SampleFormat, Samples};
use std::collections::HashMap;

/// One of the item's transforms, in `ipma` order.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    /// `irot`: quarter turns anticlockwise.
    Rotate(u8),
    /// `imir`: mirror; `true` reverses each row (axis 1), `false` the row order (axis 0).
    Mirror(bool),
}

/// What libheif's conversion takes from an `nclx` colour description (the primaries only
/// matter for matrices 12 and 13, which fall back).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Nclx {
    matrix: u16,
    full_range: bool,
}

/// The primary item, when it is a plain `hvc1` image.
struct Item<'a> {
    /// The `hvcC` body.
    hvcc: &'a [u8],
    /// The item's data (length-prefixed NAL units), its extents joined.
    data: Vec<u8>,
    ops: Vec<Op>,
    nclx: Option<Nclx>,
}

/// A full box's body after its version and flags, with the version.
fn full(b: &[u8]) -> Option<(u8, &[u8])> {
    Some((*b.first()?, b.get(4..)?))
}

fn first<'a, 'b>(list: &'b [Bx<'a>], kind: &[u8; 4]) -> Option<&'b Bx<'a>> {
    list.iter().find(|b| &b.kind == kind)
}

/// Finds the primary item and checks that it can take the direct path.
fn parse(bytes: &[u8]) -> Result<Item<'_>, &'static str> {
    let top = boxes(bytes);
    let meta = first(&top, b"meta").ok_or("no meta box")?;
    let children = boxes(meta.body.get(4..).ok_or("short meta")?);
    let (version, pitm) = full(first(&children, b"pitm").ok_or("no pitm")?.body).ok_or("pitm")?;
    let mut at = 0;
    let primary = take(pitm, &mut at, if version == 0 { 2 } else { 4 }).ok_or("pitm")? as u32;

    let mut types = HashMap::new();
    item_types(first(&children, b"iinf").ok_or("no iinf")?.body, &mut types);
    if types.get(&primary) != Some(b"hvc1") {
        return Err("the primary item is not a plain hvc1 image");
    }
    let mut locations = HashMap::new();
    item_locations(
        first(&children, b"iloc").ok_or("no iloc")?.body,
        &mut locations,
    )
    .ok_or("iloc")?;
    let location = locations.get(&primary).ok_or("no location")?;
    let idat = first(&children, b"idat").map_or(&[][..], |b| b.body);
    let data = item_data(bytes, idat, location).ok_or("item data outside the file")?;

    let iprp = boxes(first(&children, b"iprp").ok_or("no iprp")?.body);
    let ipco = boxes(first(&iprp, b"ipco").ok_or("no ipco")?.body);
    if iprp.iter().filter(|b| &b.kind == b"ipma").count() != 1 {
        return Err("not one ipma box");
    }
    let indices =
        associations(first(&iprp, b"ipma").ok_or("no ipma")?.body, primary).ok_or("ipma")?;
    let (mut hvcc, mut nclx, mut ops) = (None, None, Vec::new());
    for i in indices {
        let p = ipco
            .get(usize::from(i) - 1)
            .ok_or("property index out of range")?;
        match &p.kind {
            b"hvcC" if hvcc.is_none() => hvcc = Some(p.body),
            // The last one counts, as libheif reads them.
            b"colr" if p.body.starts_with(b"nclx") => {
                let b = &p.body[4..];
                let mut at = 0;
                let (Some(_), Some(_), Some(matrix), Some(flags)) = (
                    take(b, &mut at, 2),
                    take(b, &mut at, 2),
                    take(b, &mut at, 2),
                    take(b, &mut at, 1),
                ) else {
                    return Err("short nclx");
                };
                nclx = Some(Nclx {
                    matrix: matrix as u16,
                    full_range: flags & 0x80 != 0,
                });
            }
            b"irot" => ops.push(Op::Rotate(p.body.first().ok_or("irot")? & 3)),
            b"imir" => ops.push(Op::Mirror(p.body.first().ok_or("imir")? & 1 == 1)),
            b"clap" => return Err("clean aperture (clap)"),
            _ => {}
        }
    }
    Ok(Item {
        hvcc: hvcc.ok_or("no hvcC")?,
        data,
        ops,
        nclx,
    })
}

/// The property indices (1-based, 0 dropped) associated with `item` in an `ipma` body, in
/// order.
fn associations(b: &[u8], item: u32) -> Option<Vec<u16>> {
    let (version, flags) = (*b.first()?, *b.get(3)?);
    let mut at = 4;
    let id_len = if version < 1 { 2 } else { 4 };
    let wide = flags & 1 == 1;
    for _ in 0..take(b, &mut at, 4)? {
        let id = take(b, &mut at, id_len)? as u32;
        let n = take(b, &mut at, 1)?;
        let mut v = Vec::new();
        for _ in 0..n {
            // The top bit says essential; the rest is the index.
            let index = if wide {
                take(b, &mut at, 2)? & 0x7FFF
            } else {
                take(b, &mut at, 1)? & 0x7F
            };
            if index > 0 {
                v.push(index as u16);
            }
        }
        if id == item {
            return Some(v);
        }
    }
    None
}

/// The item's extents joined (construction method 0: file offsets; 1: `idat` offsets).
fn item_data(bytes: &[u8], idat: &[u8], (method, extents): &Location) -> Option<Vec<u8>> {
    let src = if *method == 0 { bytes } else { idat };
    let mut out = Vec::new();
    for &(offset, len) in extents {
        let from = usize::try_from(offset).ok()?;
        let to = match len {
            0 => src.len(),
            n => from.checked_add(usize::try_from(n).ok()?)?,
        };
        out.extend_from_slice(src.get(from..to)?);
    }
    Some(out)
}

/// The NAL units of an `hvcC` box (parameter sets, SEI) after checking that the stream is
/// 8-bit with chroma and 4-byte NAL lengths.
fn parameter_sets(hvcc: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let h = hvcc.get(..23).ok_or("short hvcC")?;
    if h[16] & 3 == 0 {
        return Err("monochrome");
    }
    if h[17] & 7 != 0 || h[18] & 7 != 0 {
        return Err("more than 8 bits");
    }
    if h[21] & 3 != 3 {
        return Err("NAL lengths other than 4 bytes");
    }
    let mut at = 23;
    let mut nals = Vec::new();
    for _ in 0..h[22] {
        take(hvcc, &mut at, 1).ok_or("hvcC")?;
        for _ in 0..take(hvcc, &mut at, 2).ok_or("hvcC")? {
            let n = take(hvcc, &mut at, 2).ok_or("hvcC")? as usize;
            nals.push(hvcc.get(at..at + n).ok_or("hvcC")?);
            at += n;
        }
    }
    Ok(nals)
}

/// libheif 1.15's YCbCr to RGB coefficients (`nclx.cc`): (r_cr, g_cb, g_cr, b_cb), in f32 as
/// it computes them; `None` for the matrices it converts another way.
fn coefficients(matrix: u16) -> Option<[f32; 4]> {
    let (kr, kb): (f32, f32) = match matrix {
        0 | 8 | 12 | 13 => return None,
        1 => (0.2126, 0.0722),
        4 => (0.30, 0.11),
        5 | 6 => (0.299, 0.114),
        7 => (0.212, 0.087),
        9 | 10 => (0.2627, 0.0593),
        // Unspecified and the rest: libheif's defaults (BT.601).
        _ => return Some([1.402, -0.344136, -0.714136, 1.772]),
    };
    Some([
        2.0 * (-kr + 1.0),
        2.0 * kb * (-kb + 1.0) / (kb + kr - 1.0),
        2.0 * kr * (-kr + 1.0) / (kb + kr - 1.0),
        2.0 * (-kb + 1.0),
    ])
}

/// An RGB image held as pixels, for the transforms.
struct Small {
    width: usize,
    height: usize,
    px: Vec<[u8; 3]>,
}

impl Small {
    /// libheif's `rotate_ccw` by `quarters` quarter turns.
    fn rotate(self, quarters: u8) -> Small {
        let (w, h) = (self.width, self.height);
        let at = |x: usize, y: usize| self.px[y * w + x];
        match quarters & 3 {
            0 => self,
            2 => Small {
                px: (0..h)
                    .flat_map(|y| (0..w).map(move |x| (x, y)))
                    .map(|(x, y)| at(w - 1 - x, h - 1 - y))
                    .collect(),
                ..self
            },
            q => Small {
                width: h,
                height: w,
                px: (0..w)
                    .flat_map(|y| (0..h).map(move |x| (x, y)))
                    .map(|(x, y)| {
                        if q == 1 {
                            at(w - 1 - y, x)
                        } else {
                            at(y, h - 1 - x)
                        }
                    })
                    .collect(),
            },
        }
    }

    /// libheif's `mirror_inplace`: `horizontal` reverses each row, else the row order.
    fn mirror(mut self, horizontal: bool) -> Small {
        if horizontal {
            self.px
                .chunks_exact_mut(self.width)
                .for_each(|r| r.reverse());
        } else {
            let w = self.width;
            let rows: Vec<_> = self.px.chunks_exact(w).rev().flatten().copied().collect();
            self.px = rows;
        }
        self
    }

    fn apply(self, ops: &[Op]) -> Small {
        ops.iter().fold(self, |img, op| match *op {
            Op::Rotate(q) => img.rotate(q),
            Op::Mirror(h) => img.mirror(h),
        })
    }
}

/// Which stored corner ends up top-left after `ops`: (from the right, from the bottom).
fn origin_corner(ops: &[Op]) -> (bool, bool) {
    let labels = Small {
        width: 2,
        height: 2,
        px: (0..4u8).map(|i| [i, 0, 0]).collect(),
    }
    .apply(ops);
    let corner = labels.px[0][0];
    (corner & 1 == 1, corner & 2 == 2)
}

/// The sum over luma columns `x0..x1` of the (column-summed) chroma samples covering them
/// (each chroma column covers `1 << shift` luma columns).
fn chroma_sum(cols: &[u32], x0: usize, x1: usize, shift: u32) -> u64 {
    let sum = |s: &[u32]| s.iter().map(|&v| u64::from(v)).sum::<u64>();
    if shift == 0 {
        return sum(&cols[x0..x1]);
    }
    let (mut a, mut b, mut s) = (x0, x1, 0u64);
    if a & 1 == 1 && a < b {
        s += u64::from(cols[a >> 1]);
        a += 1;
    }
    if b & 1 == 1 && a < b {
        s += u64::from(cols[(b - 1) >> 1]);
        b -= 1;
    }
    if a < b {
        s += 2 * sum(&cols[a / 2..b / 2]);
    }
    s
}

/// Adds `weight` times each sample of `row` to `acc` (column sums of a block row).
fn add_row(acc: &mut [u32], row: &[u8], weight: u32) {
    for (a, &v) in acc.iter_mut().zip(row) {
        *a += u32::from(v) * weight;
    }
}

/// The picture box-shrunk by `factor` in YCbCr and converted to RGB: blocks laid from the
/// corner given by `from_right`/`from_bottom`; partial blocks average the pixels they hold.
fn shrink(
    pic: &Picture,
    factor: usize,
    corner: (bool, bool),
    nclx: Option<Nclx>,
) -> Result<Small, String> {
    let (shift_x, shift_y) = match pic.chroma() {
        chroma::C420 => (1, 1),
        chroma::C422 => (1, 0),
        chroma::C444 => (0, 0),
        c => return Err(format!("chroma format {c}")),
    };
    if (0..3).any(|c| pic.bits(c) != 8) {
        return Err("more than 8 bits".into());
    }
    let planes: Option<Vec<Plane>> = (0..3).map(|c| pic.plane(c)).collect();
    let [y, cb, cr]: [Plane; 3] = planes
        .ok_or("no image plane")?
        .try_into()
        .map_err(|_| "planes")?;
    let (w, h) = (y.width, y.height);
    for c in [&cb, &cr] {
        if c.width < ((w - 1) >> shift_x) + 1 || c.height < ((h - 1) >> shift_y) + 1 {
            return Err("chroma plane smaller than the luma plane needs".into());
        }
    }
    // Without an nclx box, the stream's own (as libheif's plugin sets it).
    let nclx = nclx.unwrap_or_else(|| {
        let (matrix, full_range) = pic.colour();
        Nclx {
            matrix: matrix.clamp(0, 255) as u16,
            full_range,
        }
    });
    let [r_cr, g_cb, g_cr, b_cb] =
        coefficients(nclx.matrix).ok_or(format!("matrix coefficients {}", nclx.matrix))?;

    let f = factor;
    let (nx, ny) = (w.div_ceil(f), h.div_ceil(f));
    let pad = |n: usize, from_end: bool| if from_end { (f - n % f) % f } else { 0 };
    let (ox, oy) = (pad(w, corner.0), pad(h, corner.1));
    let span = |b: usize, o: usize, n: usize| ((b * f).saturating_sub(o), ((b + 1) * f - o).min(n));
    let cols: Vec<(usize, usize)> = (0..nx).map(|b| span(b, ox, w)).collect();
    let len = crate::alloc::len(&[nx, ny], "HEIF thumbnail").map_err(|e| e.to_string())?;
    let mut px = crate::alloc::with_capacity(len, "HEIF thumbnail").map_err(|e| e.to_string())?;
    // Column sums over the rows of one block row (vectorised adds; at most 255 times the
    // picture's height, which libde265 holds to 16 bits), then sums of those per block.
    let cw = cb.width.min(cr.width);
    let (mut col_y, mut col_cb, mut col_cr) = (vec![0u32; w], vec![0u32; cw], vec![0u32; cw]);
    let mut sums = vec![[0u64; 3]; nx];
    for by in 0..ny {
        let (y0, y1) = span(by, oy, h);
        col_y.fill(0);
        col_cb.fill(0);
        col_cr.fill(0);
        for row in y0..y1 {
            add_row(&mut col_y, y.row(row), 1);
        }
        // Each chroma row, weighted by the luma rows of this block row it covers.
        for cy in (y0 >> shift_y)..=((y1 - 1) >> shift_y) {
            let first = (cy << shift_y).max(y0);
            let last = ((cy + 1) << shift_y).min(y1);
            let weight = (last - first) as u32;
            add_row(&mut col_cb, cb.row(cy), weight);
            add_row(&mut col_cr, cr.row(cy), weight);
        }
        for (s, &(x0, x1)) in sums.iter_mut().zip(&cols) {
            *s = [
                chroma_sum(&col_y, x0, x1, 0),
                chroma_sum(&col_cb, x0, x1, shift_x),
                chroma_sum(&col_cr, x0, x1, shift_x),
            ];
        }
        for (s, &(x0, x1)) in sums.iter().zip(&cols) {
            let n = ((x1 - x0) * (y1 - y0)) as f32;
            let (mut yv, mut u, mut v) = (
                s[0] as f32 / n,
                s[1] as f32 / n - 128.0,
                s[2] as f32 / n - 128.0,
            );
            if !nclx.full_range {
                yv = (yv - 16.0) * 1.1689;
                u *= 1.1429;
                v *= 1.1429;
            }
            let q = |x: f32| (x + 0.5).floor().clamp(0.0, 255.0) as u8;
            px.push([
                q(yv + r_cr * v),
                q(yv + g_cb * u + g_cr * v),
                q(yv + b_cb * u),
            ]);
        }
    }
    Ok(Small {
        width: nx,
        height: ny,
        px,
    })
}

/// The primary image of `bytes` decoded by libde265 and shrunk by `factor` (>= 2), upright
/// as libheif would hand it over shrunk: `header` (libheif's) with the shrunk size. `Err`
/// says why the direct path does not apply or failed; the caller then takes libheif's.
pub fn thumbnail(bytes: &[u8], header: &Header, factor: u32) -> Result<Image, String> {
    if header.bands != 3 || header.format != SampleFormat::U8 || factor < 2 {
        return Err("alpha, more than 8 bits or no shrink".into());
    }
    let item = parse(bytes)?;
    let nals = parameter_sets(item.hvcc)?;
    let mut dec = Decoder::new(de265::THREADS)?;
    for nal in nals {
        dec.push_nal(nal)?;
    }
    // The item's NAL units behind 4-byte lengths, as libheif's plugin reads them.
    let mut rest = &item.data[..];
    while !rest.is_empty() {
        let n = rest
            .get(..4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or("truncated NAL length")?;
        let nal = rest.get(4..4 + n).ok_or("NAL unit past the item's data")?;
        dec.push_nal(nal)?;
        rest = &rest[4 + n..];
    }
    dec.flush()?;
    let corner = origin_corner(&item.ops);
    let factor = factor as usize;
    // libheif's loop: decode until done or stuck, keeping the last picture.
    let mut small = None;
    while let Ok(more) = dec.decode() {
        if let Some(pic) = dec.next_picture() {
            small = Some(shrink(&pic, factor, corner, item.nclx)?);
        }
        if !more {
            break;
        }
    }
    drop(dec);
    let small = small.ok_or("libde265 decoded no picture")?.apply(&item.ops);
    let (w, h) = (header.width as usize, header.height as usize);
    if (small.width, small.height) != (w.div_ceil(factor), h.div_ceil(factor)) {
        return Err(format!(
            "decoded picture shrinks to {}x{}, the header's {w}x{h} to {}x{}",
            small.width,
            small.height,
            w.div_ceil(factor),
            h.div_ceil(factor)
        ));
    }
    let samples = small.px.into_iter().flatten().collect();
    Ok(Image {
        header: Header {
            width: small.width as u32,
            height: small.height as u32,
            ..header.clone()
        },
        samples: Samples::U8(samples),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_follow_libheif() {
        // 3x2: 0 1 2 / 3 4 5.
        let img = || Small {
            width: 3,
            height: 2,
            px: (0..6u8).map(|i| [i, 0, 0]).collect(),
        };
        let ids = |s: Small| (s.width, s.px.iter().map(|p| p[0]).collect::<Vec<_>>());
        // Anticlockwise quarter turn: the right column becomes the top row.
        assert_eq!(ids(img().rotate(1)), (2, vec![2, 5, 1, 4, 0, 3]));
        assert_eq!(ids(img().rotate(2)), (3, vec![5, 4, 3, 2, 1, 0]));
        assert_eq!(ids(img().rotate(3)), (2, vec![3, 0, 4, 1, 5, 2]));
        assert_eq!(ids(img().mirror(true)), (3, vec![2, 1, 0, 5, 4, 3]));
        assert_eq!(ids(img().mirror(false)), (3, vec![3, 4, 5, 0, 1, 2]));
        assert_eq!(origin_corner(&[]), (false, false));
        assert_eq!(origin_corner(&[Op::Rotate(1)]), (true, false));
        assert_eq!(origin_corner(&[Op::Rotate(3)]), (false, true));
        assert_eq!(
            origin_corner(&[Op::Rotate(1), Op::Mirror(true)]),
            (true, true)
        );
    }

    #[test]
    fn chroma_sums_weight_each_sample_by_the_columns_it_covers() {
        let row = [10u32, 20, 30, 40];
        // Columns 0..8 map to samples 0,0,1,1,2,2,3,3.
        let naive = |x0: usize, x1: usize| (x0..x1).map(|x| u64::from(row[x >> 1])).sum::<u64>();
        for x0 in 0..8 {
            for x1 in x0..=8 {
                assert_eq!(chroma_sum(&row, x0, x1, 1), naive(x0, x1), "{x0}..{x1}");
            }
        }
        assert_eq!(chroma_sum(&row, 1, 3, 0), 50);
    }

    #[test]
    fn coefficients_are_libheifs() {
        // BT.601 from Kr/Kb equals libheif's defaults to float precision.
        let c = coefficients(6).unwrap();
        for (a, b) in c.iter().zip([1.402f32, -0.344136, -0.714136, 1.772]) {
            assert!((a - b).abs() < 1e-5, "{c:?}");
        }
        assert_eq!(coefficients(2), Some([1.402, -0.344136, -0.714136, 1.772]));
        assert!(coefficients(0).is_none() && coefficients(8).is_none());
    }

    #[test]
    fn hostile_boxes_never_panic() {
        let mut f = b"\0\0\0\x10ftypheic\0\0\0\0".to_vec();
        f.extend_from_slice(b"\0\0\0\x0cmeta\0\0\0\0");
        for n in 0..f.len() {
            assert!(parse(&f[..n]).is_err());
        }
        assert!(parameter_sets(&[0; 22]).is_err());
        let mut h = [0u8; 24];
        h[16] = 1;
        h[21] = 3;
        h[22] = 1; // one array, cut short
        assert!(parameter_sets(&h).is_err());
        assert_eq!(
            associations(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 7, 1, 0x83], 7),
            Some(vec![3])
        );
        assert_eq!(associations(&[0, 0, 0, 0, 0, 0, 0, 9], 7), None);
    }
}
