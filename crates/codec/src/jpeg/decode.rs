//! Row-band JPEG decoding: zune-jpeg's raw iMCU rows (planar, after the IDCT), then our own
//! chroma upsampling or box shrinking, then colour conversion, a few rows at a time.

use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::{JpegDecoder, RawImcuRowStatus};

use super::colour::{self, YccTables};
use super::turbo::{Plane, TurboStream};
use crate::cmyk::InkProfile;
use crate::error::{Error, Result};
use crate::image::{Header, ImageStream, Samples, Strip};
use crate::io::Source;

/// How the decoded components map to output samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// One luma component.
    Grey,
    /// YCbCr, converted to RGB.
    Ycc,
    /// Components are R, G, B already.
    Rgb,
    /// Adobe (inverted) CMYK.
    Cmyk,
    /// Adobe YCCK.
    Ycck,
}

impl Coding {
    /// The coding zune-jpeg detected for the file.
    pub fn from_colorspace(cs: Option<ColorSpace>, components: usize) -> Result<Self> {
        Ok(match (cs, components) {
            (_, 1) => Coding::Grey,
            (Some(ColorSpace::RGB), 3) => Coding::Rgb,
            (Some(ColorSpace::YCCK), 4) => Coding::Ycck,
            (_, 4) => Coding::Cmyk,
            (_, 3) => Coding::Ycc,
            (_, n) => {
                return Err(Error::decode(
                    "jpeg",
                    format!("{n} colour components are not supported"),
                ))
            }
        })
    }

    /// Output bands: grey stays grey, everything else becomes RGB.
    pub fn bands(self) -> u8 {
        if self == Coding::Grey {
            1
        } else {
            3
        }
    }
}

/// Rows of one component kept between iMCU rows (the upsampler needs a row of context).
struct Rows {
    width: usize,
    /// Logical height of the component.
    height: usize,
    /// Index of the first kept row.
    first: usize,
    data: Vec<u8>,
}

impl Rows {
    /// No rows yet of a component `width` x `height`.
    fn new(width: usize, height: usize) -> Self {
        Rows {
            width: width.max(1),
            height,
            first: 0,
            data: Vec::new(),
        }
    }

    fn end(&self) -> usize {
        self.first + self.data.len() / self.width
    }

    fn row(&self, i: usize) -> &[u8] {
        let at = (i - self.first) * self.width;
        &self.data[at..at + self.width]
    }

    /// Forgets rows before `keep`.
    fn drop_before(&mut self, keep: usize) {
        if keep > self.first {
            let n = (keep - self.first).min(self.data.len() / self.width);
            self.data.drain(..n * self.width);
            self.first += n;
        }
    }
}

/// Per-component geometry relative to the largest sampling factors.
#[derive(Clone, Copy)]
struct Sampling {
    /// Horizontal upsampling ratio (1 = full resolution).
    h: usize,
    /// Vertical upsampling ratio.
    v: usize,
}

/// What happens between planes and RGB rows.
enum Mode {
    /// Full resolution: upsample chroma (libjpeg's fancy filter where it applies).
    Full,
    /// Box-shrink every plane at its stored resolution by these factors, then convert.
    Shrink { factors: Vec<(usize, usize)> },
}

/// Where the component planes come from.
enum Planes<'a> {
    /// zune-jpeg's raw iMCU rows (every coding; scaled in the DCT for thumbnails).
    Zune(Box<JpegDecoder<Source<'a>>>),
    /// libjpeg-turbo's raw data mode: YCbCr and grey at full size, for exact shrinks (its
    /// Huffman decoding and IDCT cost less than zune-jpeg's, measured with callgrind).
    Turbo(Box<TurboStream<'a>>),
}

/// A strip stream over a JPEG decoder that has read its headers.
pub struct JpegStream<'a> {
    dec: Planes<'a>,
    header: Header,
    coding: Coding,
    sampling: Vec<Sampling>,
    mode: Mode,
    /// libjpeg's triangle ("fancy") chroma upsampling; off at 1/8 DCT scale, as libjpeg's.
    fancy: bool,
    rows: Vec<Rows>,
    planes: Vec<Vec<u8>>,
    strides: Vec<usize>,
    tables: YccTables,
    /// The CMYK profile's transform, for CMYK/YCCK files that carry one.
    ink: Option<InkProfile>,
    /// Next output row.
    next: usize,
    finished: bool,
    name: String,
}

/// A box shrink by `s` at each plane's stored resolution when `fits` (and `s` > 1), the
/// header's size divided accordingly; else full resolution. Returns the mode and the shrink.
fn box_mode(s: usize, fits: bool, sampling: &[Sampling], header: &mut Header) -> (Mode, u32) {
    if s > 1 && fits {
        let factors = sampling.iter().map(|c| (s / c.h, s / c.v)).collect();
        header.width = header.width.div_ceil(s as u32);
        header.height = header.height.div_ceil(s as u32);
        (Mode::Shrink { factors }, s as u32)
    } else {
        (Mode::Full, 1)
    }
}

/// Whether a box shrink by `shrink` can run on every plane at its stored resolution: it is a
/// multiple of each plane's (horizontal, vertical) subsampling ratio.
pub fn shrinks_planes(shrink: usize, ratios: impl IntoIterator<Item = (usize, usize)>) -> bool {
    ratios
        .into_iter()
        .all(|(h, v)| h > 0 && v > 0 && shrink.is_multiple_of(h) && shrink.is_multiple_of(v))
}

/// The largest DCT-domain scale (8 or 4) that divides `shrink`, if the sampling allows one.
/// Not 2: the scalar 4x4 reduced IDCT costs more than zune's AVX2 8x8 one followed by our box
/// shrink (measured with callgrind on a 16 MP 4:2:0 file), so a shrink of 2 stays a box
/// shrink at the planes' stored resolution.
fn dct_factor(shrink: usize, sampling: &[Sampling]) -> Option<usize> {
    let simple = sampling
        .iter()
        .all(|c| matches!(c.h, 1 | 2 | 4) && matches!(c.v, 1 | 2 | 4));
    [8, 4]
        .into_iter()
        .find(|d| simple && shrink.is_multiple_of(*d))
}

impl<'a> JpegStream<'a> {
    /// Prepares decoding with a shrink of `shrink`. With `dct` (a resize follows, so the
    /// pixels need not equal a box average) a factor 4 or 8 of it is
    /// done in the DCT domain, each plane scaled so that subsampled chroma lands as close to
    /// the luma grid as it can. Otherwise a box shrink is applied when every plane allows it
    /// at its stored resolution, or nothing. Returns the stream and the shrink applied.
    pub fn new(
        mut dec: JpegDecoder<Source<'a>>,
        mut header: Header,
        coding: Coding,
        ink: Option<InkProfile>,
        shrink: u32,
        dct: bool,
        name: String,
    ) -> Result<(Self, u32)> {
        let mut raw = dec.raw_output();
        let n = raw.num_components().unwrap_or(0);
        let mut layout = raw
            .layout()
            .ok_or_else(|| Error::decode("jpeg", "no component layout"))?;
        if n == 0 || n > 4 {
            return Err(Error::decode("jpeg", format!("{n} components")));
        }
        let hmax = layout
            .iter()
            .map(|p| p.horizontal_sampling_factor)
            .max()
            .unwrap_or(1);
        let vmax = layout
            .iter()
            .map(|p| p.vertical_sampling_factor)
            .max()
            .unwrap_or(1);
        let mut sampling = Vec::with_capacity(n);
        for p in &layout[..n] {
            let (hs, vs) = (p.horizontal_sampling_factor, p.vertical_sampling_factor);
            if hs == 0 || vs == 0 || hmax % hs != 0 || vmax % vs != 0 {
                return Err(Error::decode(
                    "jpeg",
                    format!("unsupported sampling factors {hs}x{vs} (max {hmax}x{vmax})"),
                ));
            }
            sampling.push(Sampling {
                h: hmax / hs,
                v: vmax / vs,
            });
        }
        let s = shrink.max(1) as usize;
        let compatible = shrinks_planes(s, sampling.iter().map(|c| (c.h, c.v)));
        let dct = if dct { dct_factor(s, &sampling) } else { None };
        let (mode, applied) = if let Some(d) = dct {
            // Luma blocks shrink to 8/d. A subsampled plane keeps up to d times more, so that
            // it covers the luma grid: 4:2:0 chroma at 1/8 comes out 2x2 per block. When d
            // covers the subsampling in both directions, 4:2:2 chroma is decoded finer than
            // the grid vertically and box-shrunk onto it (libjpeg instead halves its
            // horizontal resolution: 4:2:2 at 1/8 would keep chroma at 1/16).
            let r = 8 / d;
            let onto_grid = sampling.iter().all(|c| d >= c.h.max(c.v));
            let blocks: Vec<usize> = sampling
                .iter()
                .map(|c| {
                    if onto_grid {
                        r * c.h.max(c.v)
                    } else {
                        (r * c.h.min(c.v)).min(8)
                    }
                })
                .collect();
            raw.set_block_sizes(&blocks)
                .map_err(|e| Error::decode("jpeg", e.to_string()))?;
            layout = raw
                .layout()
                .ok_or_else(|| Error::decode("jpeg", "no component layout"))?;
            header.width = header.width.div_ceil(d as u32);
            header.height = header.height.div_ceil(d as u32);
            if onto_grid {
                let factors = sampling
                    .iter()
                    .zip(&blocks)
                    .map(|(c, &k)| (k / (r * c.h), k / (r * c.v)))
                    .collect();
                (Mode::Shrink { factors }, d as u32)
            } else {
                for (c, &k) in sampling.iter_mut().zip(&blocks) {
                    // What is left of the upsampling after the plane's own scale.
                    c.h = r * c.h / k;
                    c.v = r * c.v / k;
                }
                (Mode::Full, d as u32)
            }
        } else {
            box_mode(s, compatible, &sampling, &mut header)
        };
        drop(raw);
        let layout = &layout[..n];
        let rows = layout
            .iter()
            .map(|p| Rows::new(p.width, p.height))
            .collect();
        let strides: Vec<usize> = layout.iter().map(|p| p.stride.max(1)).collect();
        let planes = layout
            .iter()
            .zip(&strides)
            .map(|(p, st)| {
                let n = crate::alloc::len(&[*st, p.vertical_sampling_factor, 8], "JPEG planes")?;
                crate::alloc::filled(n, 0u8, "JPEG planes")
            })
            .collect::<Result<_>>()?;
        Ok((
            JpegStream {
                dec: Planes::Zune(Box::new(dec)),
                header,
                coding,
                sampling,
                mode,
                fancy: dct != Some(8),
                rows,
                planes,
                strides,
                tables: YccTables::new(),
                ink,
                next: 0,
                finished: false,
                name,
            },
            applied,
        ))
    }

    /// A box shrink by `shrink` of libjpeg's raw planes ([`TurboStream::planes`]), each plane
    /// boxed at its stored resolution, then converted; `shrink` must be a multiple of every
    /// plane's subsampling ([`shrinks_planes`]). Returns the stream and the shrink applied.
    pub fn from_turbo(
        dec: TurboStream<'a>,
        planes: &[Plane],
        mut header: Header,
        coding: Coding,
        shrink: u32,
        name: String,
    ) -> Result<(Self, u32)> {
        let s = shrink.max(1) as usize;
        let sampling: Vec<Sampling> = planes.iter().map(|p| Sampling { h: p.h, v: p.v }).collect();
        let fits = shrinks_planes(s, planes.iter().map(|p| (p.h, p.v)));
        let (mode, applied) = box_mode(s, fits, &sampling, &mut header);
        let rows = planes
            .iter()
            .map(|p| Rows::new(p.width, p.height))
            .collect();
        Ok((
            JpegStream {
                dec: Planes::Turbo(Box::new(dec)),
                header,
                coding,
                sampling,
                mode,
                fancy: true,
                rows,
                planes: Vec::new(),
                strides: Vec::new(),
                tables: YccTables::new(),
                ink: None,
                next: 0,
                finished: false,
                name,
            },
            applied,
        ))
    }

    /// Decodes one more iMCU row into the row caches; false when the decoder is done.
    fn decode_more(&mut self) -> Result<bool> {
        if self.finished {
            return Ok(false);
        }
        let dec = match &mut self.dec {
            Planes::Zune(dec) => dec,
            Planes::Turbo(t) => {
                let added = t.read_planes()?;
                if added.iter().all(|&n| n == 0) {
                    self.finished = true;
                    return Ok(false);
                }
                for (c, rows) in self.rows.iter_mut().enumerate() {
                    crate::alloc::reserve(&mut rows.data, added[c] * rows.width, "JPEG row cache")?;
                    for r in 0..added[c] {
                        rows.data
                            .extend_from_slice(&t.plane_row(c, r)[..rows.width]);
                    }
                }
                return Ok(true);
            }
        };
        let mut raw = dec.raw_output();
        let mut planes: Vec<&mut [u8]> = self.planes.iter_mut().map(|p| p.as_mut_slice()).collect();
        let status = raw
            .decode_next_imcu_row(&mut planes, &self.strides)
            .map_err(|e| Error::decode("jpeg", e.to_string()))?;
        match status {
            RawImcuRowStatus::RowReady { rows_written } => {
                for (c, rows) in self.rows.iter_mut().enumerate() {
                    let stride = self.strides[c];
                    crate::alloc::reserve(
                        &mut rows.data,
                        rows_written[c] * rows.width,
                        "JPEG row cache",
                    )?;
                    for r in 0..rows_written[c] {
                        let at = r * stride;
                        rows.data
                            .extend_from_slice(&self.planes[c][at..at + rows.width]);
                    }
                }
                Ok(true)
            }
            RawImcuRowStatus::NeedMoreInput => Err(Error::decode(
                "jpeg",
                "file is truncated: compressed data ends before the last row",
            )),
            _ => {
                self.finished = true;
                Ok(false)
            }
        }
    }

    /// Output rows that can be made from the rows decoded so far, starting at `self.next`.
    fn ready_rows(&self) -> usize {
        let height = self.header.height as usize;
        let mut y = self.next;
        while y < height && self.can_make(y) {
            y += 1;
        }
        y - self.next
    }

    fn can_make(&self, y: usize) -> bool {
        self.rows
            .iter()
            .enumerate()
            .all(|(c, r)| self.needed(c, y).1 < r.end())
    }

    /// The inclusive range of component `c` rows that output row `y` reads.
    fn needed(&self, c: usize, y: usize) -> (usize, usize) {
        let r = &self.rows[c];
        let last = r.height.saturating_sub(1);
        match &self.mode {
            Mode::Shrink { factors } => {
                let by = factors[c].1;
                let lo = (y * by).min(last);
                (lo, ((y + 1) * by - 1).min(last))
            }
            Mode::Full => {
                let v = self.sampling[c].v;
                let cy = (y / v).min(last);
                if v == 2 {
                    let far = if y.is_multiple_of(2) {
                        cy.saturating_sub(1)
                    } else {
                        (cy + 1).min(last)
                    };
                    (cy.min(far), cy.max(far))
                } else {
                    (cy, cy)
                }
            }
        }
    }

    /// Makes output row `y` into `out` (width * bands samples). `scratch` holds a row of
    /// `width` per component and `sums` room for the widest plane row, so nothing here grows.
    fn make_row(
        &self,
        y: usize,
        scratch: &mut [Vec<u8>],
        sums: &mut Vec<u32>,
        out: &mut [u8],
    ) -> Result<()> {
        let width = self.header.width as usize;
        for (c, buf) in scratch.iter_mut().enumerate().take(self.rows.len()) {
            crate::alloc::resize(buf, width, 0, "a JPEG row")?;
            match &self.mode {
                Mode::Shrink { factors } => self.shrink_row(c, y, factors[c], sums, buf),
                Mode::Full => self.upsample_row(c, y, buf),
            }
        }
        match self.coding {
            Coding::Grey => out.copy_from_slice(&scratch[0][..width]),
            Coding::Ycc => self
                .tables
                .row_to_rgb(&scratch[0], &scratch[1], &scratch[2], out),
            Coding::Rgb => colour::interleave3(&scratch[0], &scratch[1], &scratch[2], out),
            Coding::Cmyk | Coding::Ycck if self.ink.is_some() => {
                self.inks_to_rgb(scratch, width, out)?
            }
            Coding::Cmyk => {
                colour::cmyk_row_to_rgb(&scratch[0], &scratch[1], &scratch[2], &scratch[3], out)
            }
            Coding::Ycck => {
                self.tables
                    .ycck_row_to_rgb(&scratch[0], &scratch[1], &scratch[2], &scratch[3], out)
            }
        }
        Ok(())
    }

    /// Adobe CMYK/YCCK (stored inverted: 255 = no ink) through the ICC profile.
    fn inks_to_rgb(&self, scratch: &[Vec<u8>], width: usize, out: &mut [u8]) -> Result<()> {
        let mut inks = crate::alloc::filled(width * 4, 0u8, "a CMYK row")?;
        if self.coding == Coding::Ycck {
            // YCC -> RGB gives libjpeg's 255 - C for the stored (inverted) C: the ink itself.
            let mut cmy = crate::alloc::filled(width * 3, 0u8, "a CMYK row")?;
            self.tables
                .row_to_rgb(&scratch[0], &scratch[1], &scratch[2], &mut cmy);
            for ((px, c), &k) in inks
                .chunks_exact_mut(4)
                .zip(cmy.chunks_exact(3))
                .zip(&scratch[3])
            {
                px.copy_from_slice(&[c[0], c[1], c[2], 255 - k]);
            }
        } else {
            for (x, px) in inks.chunks_exact_mut(4).enumerate() {
                for (i, plane) in scratch.iter().take(4).enumerate() {
                    px[i] = 255 - plane[x];
                }
            }
        }
        let ink = self.ink.as_ref().expect("checked by the caller");
        if !ink.to_rgb(&inks, out) {
            crate::cmyk::naive_to_rgb(&inks, out);
        }
        Ok(())
    }

    fn upsample_row(&self, c: usize, y: usize, out: &mut [u8]) {
        let s = self.sampling[c];
        let rows = &self.rows[c];
        let (lo, hi) = self.needed(c, y);
        let cy = (y / s.v).min(rows.height.saturating_sub(1));
        let near = rows.row(cy);
        let far = rows.row(if cy == lo { hi } else { lo });
        match (s.h, s.v) {
            (1, 1) => out.copy_from_slice(&near[..out.len()]),
            (h, _) if !self.fancy => colour::replicate(near, h, out),
            (2, 1) => colour::h2_fancy(near, out),
            (2, 2) => colour::h2v2_fancy(near, far, out),
            (1, 2) => colour::v2_fancy(near, far, y.is_multiple_of(2), out),
            (h, _) => colour::replicate(near, h, out),
        }
    }

    fn shrink_row(
        &self,
        c: usize,
        y: usize,
        (bx, _): (usize, usize),
        sums: &mut Vec<u32>,
        out: &mut [u8],
    ) {
        let rows = &self.rows[c];
        let (lo, hi) = self.needed(c, y);
        let w = rows.width;
        if bx == 1 && lo == hi {
            out.copy_from_slice(&rows.row(lo)[..out.len()]);
            return;
        }
        if bx == 2 && hi == lo + 1 {
            // The common 2x2 case (luma of shrink 2, chroma of shrink 4): shifts, no division.
            let (r0, r1) = (rows.row(lo), rows.row(hi));
            colour::shrink_2x2(r0, r1, out);
            return;
        }
        if bx == 1 && hi == lo + 1 {
            // Chroma of 4:2:2 at shrink 2 (full rows, half as many): a vertical pair, where
            // the general path below would divide once per sample.
            let (r0, r1) = (rows.row(lo), rows.row(hi));
            for ((o, &a), &b) in out.iter_mut().zip(r0).zip(r1) {
                *o = ((a as u16 + b as u16 + 1) >> 1) as u8;
            }
            return;
        }
        sums.clear();
        sums.resize(w, 0);
        for r in lo..=hi {
            colour::accumulate(sums, rows.row(r));
        }
        let nrows = (hi - lo + 1) as u32;
        for (o, group) in out.iter_mut().zip(sums.chunks(bx)) {
            let n = nrows * group.len() as u32;
            *o = ((group.iter().sum::<u32>() + n / 2) / n) as u8;
        }
    }
}

/// Output rows per strip: about 64 KiB, at least one row.
fn strip_rows(row_bytes: usize) -> usize {
    (65536 / row_bytes.max(1)).clamp(1, 256)
}

impl ImageStream for JpegStream<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let height = self.header.height as usize;
        if self.next >= height {
            return Ok(None);
        }
        let row_len = self.header.row_samples();
        let want = strip_rows(row_len).min(height - self.next);
        // Rows needed grow with y, so the strip is ready when its last row is.
        while !self.can_make(self.next + want - 1) {
            if !self.decode_more()? {
                break;
            }
        }
        let n = if self.can_make(self.next + want - 1) {
            want
        } else {
            self.ready_rows().min(want)
        };
        if n == 0 {
            return Err(Error::decode(
                "jpeg",
                format!("{}: image data ended at row {}", self.name, self.next),
            ));
        }
        let mut out = crate::alloc::filled(n * row_len, 0u8, "JPEG rows")?;
        let mut scratch = vec![Vec::new(); self.rows.len()];
        let widest = self.rows.iter().map(|r| r.width).max().unwrap_or(0);
        let mut sums = crate::alloc::with_capacity(widest, "JPEG row sums")?;
        for (i, row) in out.chunks_exact_mut(row_len).enumerate() {
            self.make_row(self.next + i, &mut scratch, &mut sums, row)?;
        }
        let y = self.next as u32;
        self.next += n;
        // Keep only rows that later output rows still read.
        if self.next < height {
            for c in 0..self.rows.len() {
                let (lo, _) = self.needed(c, self.next);
                self.rows[c].drop_before(lo);
            }
        }
        Ok(Some(Strip {
            y,
            height: n as u32,
            samples: Samples::U8(out),
        }))
    }
}
