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
//! - a `grid` primary image whose tiles are all such images of one size (phones write 512x512
//!   tiles): tiles decode two at a time on two threads and add their samples to the blocks
//!   of the whole output (blocks straddle tile edges; samples past the output size are
//!   dropped), so it is the picture of the same samples as one image. Each tile converts
//!   with its own colour description, the grid's `nclx` unused, as in libheif 1.15;
//! - anything else falls back: other derived images (overlay, identity), `clap`, alpha,
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

/// One coded image: its `hvcC` body and where its data (length-prefixed NAL units) lies.
struct Coded<'a> {
    /// The `hvcC` body.
    hvcc: &'a [u8],
    location: Location,
    /// Its own `nclx` (a grid tile's; a plain image's is the item's).
    nclx: Option<Nclx>,
}

/// A grid of coded tiles (`grid`), row-major, each `tile` large, cropped to `size`.
struct Grid<'a> {
    tiles: Vec<Coded<'a>>,
    columns: usize,
    tile: (usize, usize),
    size: (usize, usize),
}

/// The primary item, when it is a plain `hvc1` image or a grid of them.
struct Item<'a> {
    /// The `idat` body (data of construction method 1).
    idat: &'a [u8],
    /// A plain image, or the grid's tiles.
    image: Result<Coded<'a>, Grid<'a>>,
    ops: Vec<Op>,
    nclx: Option<Nclx>,
}

/// The properties of one item that the direct path reads.
#[derive(Default)]
struct Props<'a> {
    hvcc: Option<&'a [u8]>,
    nclx: Option<Nclx>,
    ops: Vec<Op>,
    /// `ispe`: width, height.
    ispe: Option<(u32, u32)>,
}

/// A full box's body after its version and flags, with the version.
fn full(b: &[u8]) -> Option<(u8, &[u8])> {
    Some((*b.first()?, b.get(4..)?))
}

fn first<'a, 'b>(list: &'b [Bx<'a>], kind: &[u8; 4]) -> Option<&'b Bx<'a>> {
    list.iter().find(|b| &b.kind == kind)
}

/// The properties of `item` (`ipco` boxes, the one `ipma` body); `clap` is refused.
fn props<'a>(ipco: &[Bx<'a>], ipma: &[u8], item: u32) -> Result<Props<'a>, &'static str> {
    let mut out = Props::default();
    for i in associations(ipma, item).ok_or("ipma")? {
        let p = ipco
            .get(usize::from(i) - 1)
            .ok_or("property index out of range")?;
        match &p.kind {
            b"hvcC" if out.hvcc.is_none() => out.hvcc = Some(p.body),
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
                out.nclx = Some(Nclx {
                    matrix: matrix as u16,
                    full_range: flags & 0x80 != 0,
                });
            }
            b"ispe" if out.ispe.is_none() => {
                let (_, b) = full(p.body).ok_or("ispe")?;
                let mut at = 0;
                let w = take(b, &mut at, 4).ok_or("ispe")?;
                let h = take(b, &mut at, 4).ok_or("ispe")?;
                out.ispe = Some((w as u32, h as u32));
            }
            b"irot" => out.ops.push(Op::Rotate(p.body.first().ok_or("irot")? & 3)),
            b"imir" => out
                .ops
                .push(Op::Mirror(p.body.first().ok_or("imir")? & 1 == 1)),
            b"clap" => return Err("clean aperture (clap)"),
            _ => {}
        }
    }
    Ok(out)
}

/// The `dimg` inputs of `item` (its one `dimg` reference), in order.
fn inputs(iref: &[u8], item: u32) -> Result<Vec<u32>, &'static str> {
    let (version, refs) = full(iref).ok_or("iref")?;
    let id_len = if version == 0 { 2 } else { 4 };
    let mut found = None;
    for r in boxes(refs).iter().filter(|r| &r.kind == b"dimg") {
        let ids = super::items::read_ids(r.body, id_len);
        if ids.first() == Some(&item) {
            if found.is_some() {
                return Err("more than one dimg reference from the grid");
            }
            // The count must match what the box holds (read_ids stops at its end).
            let mut at = id_len;
            let count = take(r.body, &mut at, 2).ok_or("dimg")? as usize;
            if ids.len() - 1 != count {
                return Err("dimg reference shorter than its count");
            }
            found = Some(ids[1..].to_vec());
        }
    }
    found.ok_or("grid without dimg inputs")
}

/// Finds the primary item and checks that it can take the direct path.
fn parse<'a>(bytes: &'a [u8]) -> Result<Item<'a>, &'static str> {
    let top = boxes(bytes);
    let meta = first(&top, b"meta").ok_or("no meta box")?;
    let children = boxes(meta.body.get(4..).ok_or("short meta")?);
    let (version, pitm) = full(first(&children, b"pitm").ok_or("no pitm")?.body).ok_or("pitm")?;
    let mut at = 0;
    let primary = take(pitm, &mut at, if version == 0 { 2 } else { 4 }).ok_or("pitm")? as u32;

    let mut types = HashMap::new();
    item_types(first(&children, b"iinf").ok_or("no iinf")?.body, &mut types);
    let mut locations = HashMap::new();
    item_locations(
        first(&children, b"iloc").ok_or("no iloc")?.body,
        &mut locations,
    )
    .ok_or("iloc")?;
    let idat = first(&children, b"idat").map_or(&[][..], |b| b.body);

    let iprp = boxes(first(&children, b"iprp").ok_or("no iprp")?.body);
    let ipco = boxes(first(&iprp, b"ipco").ok_or("no ipco")?.body);
    if iprp.iter().filter(|b| &b.kind == b"ipma").count() != 1 {
        return Err("not one ipma box");
    }
    let ipma = first(&iprp, b"ipma").ok_or("no ipma")?.body;
    let main = props(&ipco, ipma, primary)?;
    let coded = |id: u32, p: &Props<'a>| -> Result<Coded<'a>, &'static str> {
        Ok(Coded {
            hvcc: p.hvcc.ok_or("no hvcC")?,
            location: locations.get(&id).ok_or("no location")?.clone(),
            nclx: p.nclx,
        })
    };
    let image = match types.get(&primary) {
        Some(b"hvc1") => Ok(coded(primary, &main)?),
        Some(b"grid") => {
            if children.iter().filter(|b| &b.kind == b"iref").count() != 1 {
                return Err("not one iref box");
            }
            let ids = inputs(first(&children, b"iref").ok_or("no iref")?.body, primary)?;
            let desc = item_data(bytes, idat, locations.get(&primary).ok_or("no location")?)
                .ok_or("grid data outside the file")?;
            let (rows, columns, size) = grid_descriptor(&desc).ok_or("grid descriptor")?;
            if ids.len() != rows * columns {
                return Err("the grid's tile count is not rows times columns");
            }
            let mut tiles = Vec::with_capacity(ids.len());
            let mut tile = None;
            for &id in &ids {
                if types.get(&id) != Some(b"hvc1") {
                    return Err("a grid tile is not a plain hvc1 image");
                }
                let p = props(&ipco, ipma, id)?;
                if !p.ops.is_empty() {
                    return Err("a grid tile with its own transforms");
                }
                let ispe = p.ispe.ok_or("a grid tile without ispe")?;
                if *tile.get_or_insert(ispe) != ispe {
                    return Err("grid tiles of different sizes");
                }
                tiles.push(coded(id, &p)?);
            }
            let (tw, th) = tile.ok_or("a grid without tiles")?;
            let (tw, th) = (tw as usize, th as usize);
            // libheif places tiles by their ispe; they must cover the output.
            if tw == 0 || th == 0 || tw * columns < size.0 || th * rows < size.1 {
                return Err("grid tiles do not cover the output");
            }
            Err(Grid {
                tiles,
                columns,
                tile: (tw, th),
                size,
            })
        }
        _ => return Err("the primary item is not a plain hvc1 image or a grid"),
    };
    Ok(Item {
        idat,
        image,
        ops: main.ops,
        nclx: main.nclx,
    })
}

/// A grid item's data: rows, columns and the output size (16- or 32-bit fields, flag 1).
fn grid_descriptor(d: &[u8]) -> Option<(usize, usize, (usize, usize))> {
    let (&version, &flags) = (d.first()?, d.get(1)?);
    if version != 0 {
        return None;
    }
    let mut at = 2;
    let rows = take(d, &mut at, 1)? as usize + 1;
    let columns = take(d, &mut at, 1)? as usize + 1;
    let field = if flags & 1 == 1 { 4 } else { 2 };
    let w = take(d, &mut at, field)? as usize;
    let h = take(d, &mut at, field)? as usize;
    (w > 0 && h > 0).then_some((rows, columns, (w, h)))
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

/// The picture's three 8-bit planes and the chroma subsampling shifts (x, y), checked: the
/// chroma planes cover the luma plane.
fn planes<'p>(pic: &'p Picture) -> Result<(Plane<'p>, Plane<'p>, Plane<'p>, u32, u32), String> {
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
    Ok((y, cb, cr, shift_x, shift_y))
}

/// The colour description libheif converts a picture with: the item's `nclx` box, or
/// without one the stream's own (as libheif's plugin sets it).
fn colour(nclx: Option<Nclx>, pic: &Picture) -> Nclx {
    nclx.unwrap_or_else(|| {
        let (matrix, full_range) = pic.colour();
        Nclx {
            matrix: matrix.clamp(0, 255) as u16,
            full_range,
        }
    })
}

/// libheif's YCbCr to RGB conversion, applied to block means.
#[derive(Clone, Copy)]
struct Convert {
    full_range: bool,
    /// r_cr, g_cb, g_cr, b_cb.
    c: [f32; 4],
}

impl Convert {
    fn new(nclx: Nclx) -> Result<Convert, String> {
        Ok(Convert {
            full_range: nclx.full_range,
            c: coefficients(nclx.matrix).ok_or(format!("matrix coefficients {}", nclx.matrix))?,
        })
    }

    /// The RGB pixel of a block whose `n` pixels sum to `s` (Y, Cb, Cr).
    fn px(&self, s: [u64; 3], n: usize) -> [u8; 3] {
        let [r_cr, g_cb, g_cr, b_cb] = self.c;
        let n = n as f32;
        let (mut yv, mut u, mut v) = (
            s[0] as f32 / n,
            s[1] as f32 / n - 128.0,
            s[2] as f32 / n - 128.0,
        );
        if !self.full_range {
            yv = (yv - 16.0) * 1.1689;
            u *= 1.1429;
            v *= 1.1429;
        }
        let q = |x: f32| (x + 0.5).floor().clamp(0.0, 255.0) as u8;
        [
            q(yv + r_cr * v),
            q(yv + g_cb * u + g_cr * v),
            q(yv + b_cb * u),
        ]
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
    let (y, cb, cr, shift_x, shift_y) = planes(pic)?;
    let (w, h) = (y.width, y.height);
    let conv = Convert::new(colour(nclx, pic))?;

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
            px.push(conv.px(*s, (x1 - x0) * (y1 - y0)));
        }
    }
    Ok(Small {
        width: nx,
        height: ny,
        px,
    })
}

/// Decodes one coded image (`hvcC` parameter sets, then the length-prefixed NAL units of
/// `data`) with `threads` libde265 workers, handing each output picture to `each`, as
/// libheif's loop does: until done or stuck. Returns how many pictures came out.
fn decode(
    hvcc: &[u8],
    data: &[u8],
    threads: libc::c_int,
    mut each: impl FnMut(&Picture) -> Result<(), String>,
) -> Result<usize, String> {
    let nals = parameter_sets(hvcc)?;
    let mut dec = Decoder::new(threads)?;
    for nal in nals {
        dec.push_nal(nal)?;
    }
    // The item's NAL units behind 4-byte lengths, as libheif's plugin reads them.
    let mut rest = data;
    while !rest.is_empty() {
        let n = rest
            .get(..4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or("truncated NAL length")?;
        let nal = rest
            .get(4..4usize.saturating_add(n))
            .ok_or("NAL unit past the item's data")?;
        dec.push_nal(nal)?;
        rest = &rest[4 + n..];
    }
    dec.flush()?;
    let mut count = 0;
    while let Ok(more) = dec.decode() {
        if let Some(pic) = dec.next_picture() {
            each(&pic)?;
            count += 1;
        }
        if !more {
            break;
        }
    }
    Ok(count)
}

/// The box-shrink blocks over a `w`x`h` image: `factor` square, laid from the corner that
/// ends up top-left (offsets `ox`, `oy` of the first block before the image).
struct Layout {
    w: usize,
    h: usize,
    f: usize,
    ox: usize,
    oy: usize,
    nx: usize,
    ny: usize,
}

impl Layout {
    fn new((w, h): (usize, usize), f: usize, corner: (bool, bool)) -> Layout {
        let pad = |n: usize, from_end: bool| if from_end { (f - n % f) % f } else { 0 };
        Layout {
            w,
            h,
            f,
            ox: pad(w, corner.0),
            oy: pad(h, corner.1),
            nx: w.div_ceil(f),
            ny: h.div_ceil(f),
        }
    }

    /// The columns (`x`) or rows of block `b`, inside the image.
    fn span(&self, b: usize, x: bool) -> (usize, usize) {
        let (o, n) = if x {
            (self.ox, self.w)
        } else {
            (self.oy, self.h)
        };
        (
            (b * self.f).saturating_sub(o),
            ((b + 1) * self.f - o).min(n),
        )
    }

    /// The blocks (first, last) that pixels `from..to` (`to > from`) of a row or column
    /// fall in.
    fn blocks(&self, from: usize, to: usize, x: bool) -> (usize, usize) {
        let o = if x { self.ox } else { self.oy };
        ((from + o) / self.f, (to - 1 + o) / self.f)
    }
}

/// Largest shrink of a grid: block sums are held in 32 bits (255 times 1024 squared fits).
const MAX_GRID_FACTOR: usize = 1024;

/// Adds the samples of tile `pic`, placed at `(tx, ty)` of the output, to the block sums
/// `sums` (row-major over the layout), leaving out what lies past the output's edges. The
/// tile's own sums are made first, so the lock is held only to add them.
fn accumulate(
    pic: &Picture,
    (tx, ty): (usize, usize),
    tile: (usize, usize),
    l: &Layout,
    sums: &std::sync::Mutex<Vec<[u32; 3]>>,
) -> Result<(), String> {
    let (y, cb, cr, shift_x, shift_y) = planes(pic)?;
    if (y.width, y.height) != tile {
        return Err(format!(
            "a tile decodes to {}x{}, its ispe says {}x{}",
            y.width, y.height, tile.0, tile.1
        ));
    }
    // The part of the tile inside the output (tiles start inside it).
    let (lw, lh) = (y.width.min(l.w - tx), y.height.min(l.h - ty));
    let (bx0, bx1) = l.blocks(tx, tx + lw, true);
    let (by0, by1) = l.blocks(ty, ty + lh, false);
    // Block columns in the tile's coordinates.
    let cols: Vec<(usize, usize)> = (bx0..=bx1)
        .map(|b| {
            let (a, e) = l.span(b, true);
            (a.max(tx) - tx, e.min(tx + lw) - tx)
        })
        .collect();
    let cw = ((lw - 1) >> shift_x) + 1;
    let (mut col_y, mut col_cb, mut col_cr) = (vec![0u32; lw], vec![0u32; cw], vec![0u32; cw]);
    let mut local = Vec::with_capacity(cols.len() * (by1 - by0 + 1));
    for by in by0..=by1 {
        let (a, e) = l.span(by, false);
        let (y0, y1) = (a.max(ty) - ty, e.min(ty + lh) - ty);
        col_y.fill(0);
        col_cb.fill(0);
        col_cr.fill(0);
        for row in y0..y1 {
            add_row(&mut col_y, y.row(row), 1);
        }
        for cy in (y0 >> shift_y)..=((y1 - 1) >> shift_y) {
            let first = (cy << shift_y).max(y0);
            let last = ((cy + 1) << shift_y).min(y1);
            let weight = (last - first) as u32;
            add_row(&mut col_cb, cb.row(cy), weight);
            add_row(&mut col_cr, cr.row(cy), weight);
        }
        for &(x0, x1) in &cols {
            // At most factor squared times 255: fits (MAX_GRID_FACTOR).
            local.push([
                chroma_sum(&col_y, x0, x1, 0) as u32,
                chroma_sum(&col_cb, x0, x1, shift_x) as u32,
                chroma_sum(&col_cr, x0, x1, shift_x) as u32,
            ]);
        }
    }
    let mut sums = sums.lock().map_err(|_| "block sums poisoned")?;
    for (by, row) in (by0..=by1).zip(local.chunks_exact(cols.len())) {
        let at = by * l.nx + bx0;
        for (s, v) in sums[at..at + cols.len()].iter_mut().zip(row) {
            for c in 0..3 {
                s[c] += v[c];
            }
        }
    }
    Ok(())
}

/// A grid's tiles decoded one by one (two at a time on two threads, each decoder without
/// worker threads: tiles are small, so whole tiles in parallel beat rows within one), their
/// samples summed into the blocks of the whole output (blocks straddle tile edges), then
/// converted as [`shrink`] does: the same picture as the single image of the same samples.
fn shrink_grid(
    bytes: &[u8],
    idat: &[u8],
    grid: &Grid,
    factor: usize,
    corner: (bool, bool),
) -> Result<Small, String> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    if factor > MAX_GRID_FACTOR {
        return Err(format!("shrink {factor} of a grid"));
    }
    let mut format = None;
    for t in &grid.tiles {
        parameter_sets(t.hvcc)?;
        if *format.get_or_insert(t.hvcc[16] & 3) != t.hvcc[16] & 3 {
            return Err("grid tiles of different chroma formats".into());
        }
    }
    let l = Layout::new(grid.size, factor, corner);
    let n = crate::alloc::len(&[l.nx, l.ny], "HEIF thumbnail").map_err(|e| e.to_string())?;
    let mut sums = crate::alloc::with_capacity(n, "HEIF thumbnail").map_err(|e| e.to_string())?;
    sums.resize(n, [0u32; 3]);
    let sums = Mutex::new(sums);
    // Tiles that start inside the output (the rest are cropped away whole).
    let (tw, th) = grid.tile;
    let tiles: Vec<(usize, (usize, usize))> = (0..grid.tiles.len())
        .map(|i| (i, ((i % grid.columns) * tw, (i / grid.columns) * th)))
        .filter(|&(_, (x, y))| x < l.w && y < l.h)
        .collect();
    // Each tile's colour description: libheif converts tiles one by one.
    let colours = Mutex::new(Vec::new());
    let (next, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
    let error = Mutex::new(None);
    let workers = if tiles.len() > 1 { 2 } else { 1 };
    let threads = if workers > 1 { 0 } else { de265::THREADS };
    let work = || {
        while !failed.load(Ordering::Relaxed) {
            let Some(&(i, at)) = tiles.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let tile = &grid.tiles[i];
            let result = item_data(bytes, idat, &tile.location)
                .ok_or_else(|| "tile data outside the file".to_string())
                .and_then(|data| {
                    decode(tile.hvcc, &data, threads, |pic| {
                        // libheif 1.15 converts each tile with the tile's colour description
                        // (its nclx, else its stream's) and ignores the grid's (measured:
                        // heif_grid.rs), so the same here.
                        let c = colour(tile.nclx, pic);
                        if let Ok(mut cs) = colours.lock() {
                            cs.push(c);
                        }
                        accumulate(pic, at, grid.tile, &l, &sums)
                    })
                })
                .and_then(|pictures| match pictures {
                    1 => Ok(()),
                    n => Err(format!("a tile decoded to {n} pictures")),
                });
            if let Err(e) = result {
                failed.store(true, Ordering::Relaxed);
                if let Ok(mut slot) = error.lock() {
                    slot.get_or_insert(e);
                }
            }
        }
    };
    std::thread::scope(|s| {
        let helper = (workers > 1).then(|| s.spawn(work));
        work();
        if helper.is_some_and(|h| h.join().is_err()) {
            failed.store(true, Ordering::Relaxed);
        }
    });
    if failed.load(Ordering::Relaxed) {
        let e = error.into_inner().ok().flatten();
        return Err(e.unwrap_or_else(|| "a tile's decode failed".into()));
    }
    let colours = colours.into_inner().map_err(|_| "poisoned")?;
    let c = *colours.first().ok_or("no tile decoded")?;
    if colours.iter().any(|&x| x != c) {
        return Err("grid tiles with different colour descriptions".into());
    }
    let conv = Convert::new(c)?;
    let sums = sums.into_inner().map_err(|_| "poisoned")?;
    let len = crate::alloc::len(&[l.nx, l.ny], "HEIF thumbnail").map_err(|e| e.to_string())?;
    let mut px = crate::alloc::with_capacity(len, "HEIF thumbnail").map_err(|e| e.to_string())?;
    for by in 0..l.ny {
        let (y0, y1) = l.span(by, false);
        for bx in 0..l.nx {
            let (x0, x1) = l.span(bx, true);
            let s = sums[by * l.nx + bx].map(u64::from);
            px.push(conv.px(s, (x1 - x0) * (y1 - y0)));
        }
    }
    Ok(Small {
        width: l.nx,
        height: l.ny,
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
    let corner = origin_corner(&item.ops);
    let factor = factor as usize;
    let small = match &item.image {
        Ok(coded) => {
            let data =
                item_data(bytes, item.idat, &coded.location).ok_or("item data outside the file")?;
            // libheif keeps the last picture.
            let mut small = None;
            decode(coded.hvcc, &data, de265::THREADS, |pic| {
                small = Some(shrink(pic, factor, corner, item.nclx)?);
                Ok(())
            })?;
            small.ok_or("libde265 decoded no picture")?
        }
        Err(grid) => shrink_grid(bytes, item.idat, grid, factor, corner)?,
    }
    .apply(&item.ops);
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
    fn grid_descriptors_and_inputs() {
        // 16-bit fields: 2 rows, 3 columns, 700x300; 32-bit with flag 1.
        assert_eq!(
            grid_descriptor(&[0, 0, 1, 2, 0x02, 0xBC, 0x01, 0x2C]),
            Some((2, 3, (700, 300)))
        );
        assert_eq!(
            grid_descriptor(&[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 9]),
            Some((1, 1, (65536, 9)))
        );
        let d = [0, 0, 1, 2, 0x02, 0xBC, 0x01, 0x2C];
        for n in 0..d.len() {
            assert_eq!(grid_descriptor(&d[..n]), None);
        }
        assert_eq!(
            grid_descriptor(&[1, 0, 0, 0, 0, 1, 0, 1]),
            None,
            "version 1"
        );
        assert_eq!(grid_descriptor(&[0, 0, 0, 0, 0, 0, 0, 1]), None, "width 0");
        // iref v0: dimg from 5 to 1, 2; a count of 3 with two IDs is refused.
        let iref = |count: u8| {
            let mut b = vec![0, 0, 0, 0, 0, 0, 0, 16, b'd', b'i', b'm', b'g'];
            b.extend_from_slice(&[0, 5, 0, count, 0, 1, 0, 2]);
            b
        };
        assert_eq!(inputs(&iref(2), 5), Ok(vec![1, 2]));
        assert!(inputs(&iref(3), 5).is_err());
        assert!(inputs(&iref(2), 4).is_err());
        let r = iref(2);
        for n in 0..r.len() {
            let _ = inputs(&r[..n], 5);
        }
    }

    #[test]
    fn layout_blocks_cover_the_image() {
        // 701 columns in blocks of 8 laid from the right: the first block holds 5.
        let l = Layout::new((701, 10), 8, (true, false));
        assert_eq!((l.nx, l.ox), (88, 3));
        assert_eq!(l.span(0, true), (0, 5));
        assert_eq!(l.span(87, true), (693, 701));
        assert_eq!(l.blocks(250, 500, true), (31, 62));
        assert_eq!(l.blocks(0, 701, true), (0, 87));
        assert_eq!(l.blocks(0, 10, false), (0, 1));
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
