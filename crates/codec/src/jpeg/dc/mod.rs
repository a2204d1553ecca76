//! A DC-only baseline JPEG decoder for 1/8-scale loads, giving libjpeg-turbo's 1/8 output
//! (`djpeg -scale 1/8`) bit for bit with a fraction of its work.
//!
//! At 1/8 libjpeg reconstructs a block that shrinks to one sample from its DC coefficient
//! alone, yet it decodes every AC symbol one lookup at a time. Here the AC codes of such
//! blocks are skipped with tables that pass over several whole codes per lookup
//! (huffman.rs); only the chroma of 4:2:0 files, which libjpeg scales to 2x2 blocks, keeps
//! the few coefficients its 2x2 IDCT reads. Both cores decode one scan: at restart markers
//! when the file has them (split.rs), else speculatively from the middle (speculate.rs).
//!
//! Anything else (progressive or arithmetic coding, several scans, 12-bit samples, sampling
//! factors that libjpeg would scale 4x or upsample fractionally) goes to libjpeg as before.

mod decode;
mod entropy;
mod huffman;
mod markers;
mod planes;
mod speculate;
mod split;

use decode::{Block, Plan, FULL};
use huffman::{Huffman, Skip};
use planes::{CompLayout, Layout, Plane};

use super::decode::Coding;
use crate::error::{Error, Result};
use crate::image::{Header, ImageStream, Samples, Strip};

/// Scans at least this long are decoded on two threads (a test knob lowers it:
/// THUMBFS_JPEG_SPLIT_MIN_BYTES); below, a second thread costs more than it saves.
const SPLIT_MIN_BYTES: usize = 512 * 1024;

/// The scan size from which two threads decode (THUMBFS_JPEG_SPLIT_MIN_BYTES, a test knob).
pub fn split_min() -> usize {
    std::env::var("THUMBFS_JPEG_SPLIT_MIN_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SPLIT_MIN_BYTES)
}

/// A decoded 1/8-scale image, handed out in strips.
pub struct DcStream {
    header: Header,
    coding: Coding,
    planes: Vec<Plane>,
    next: usize,
    tables: super::colour::YccTables,
}

impl DcStream {
    /// Decodes `file` at 1/8 if it is a one-scan baseline file this decoder handles; `None`
    /// sends it to libjpeg. `header` is what zune-jpeg read (its size becomes the scaled one);
    /// scans of `split_min` bytes or more are decoded on two threads.
    pub fn new(
        file: &[u8],
        mut header: Header,
        coding: Coding,
        split_min: usize,
    ) -> Result<Option<Self>> {
        let Some(h) = markers::parse(file) else {
            return Ok(None);
        };
        let ncomp = match coding {
            Coding::Grey => 1,
            Coding::Ycc => 3,
            _ => return Ok(None),
        };
        if h.comps.len() != ncomp
            || (h.width, h.height) != (header.width as usize, header.height as usize)
        {
            return Ok(None);
        }
        let Some((plan, layout, n)) = plan_of(&h)? else {
            return Ok(None);
        };
        let scan = entropy::unstuff(file, h.data, h.restart > 0)?;
        let mut records = crate::alloc::filled(n * plan.rec_len, 0i16, "JPEG coefficients")?;
        let parallel = scan.intervals.last().map_or(0, |i| i.1) >= split_min;
        if h.restart > 0 {
            split::decode(&plan, &scan, h.restart, n, &mut records, parallel)?;
        } else {
            speculate::decode(&plan, &scan, n, &mut records, parallel)?;
        }
        drop(scan);
        let quant: Vec<[u16; 64]> = h
            .comps
            .iter()
            .map(|c| h.quant[c.tq].unwrap_or([0; 64]))
            .collect();
        let planes = planes::build(&plan, &layout, &records, &quant)?;
        header.width = h.width.div_ceil(8) as u32;
        header.height = h.height.div_ceil(8) as u32;
        Ok(Some(DcStream {
            header,
            coding,
            planes,
            next: 0,
            tables: super::colour::YccTables::new(),
        }))
    }
}

/// The decoding plan, plane layout and MCU count, or `None` for sampling libjpeg would not
/// scale to 1x1 or 2x2 blocks with whole upsampling factors.
fn plan_of(h: &markers::Headers) -> Result<Option<(Plan, Layout, usize)>> {
    let hmax = h.comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = h.comps.iter().map(|c| c.v).max().unwrap_or(1);
    let mut comps = Vec::new();
    for c in &h.comps {
        // libjpeg's choice of each component's IDCT size (jdmaster.c) at 1/8.
        let mut ssize = 1;
        while ssize < 8 && hmax % (c.h * ssize * 2) == 0 && vmax % (c.v * ssize * 2) == 0 {
            ssize *= 2;
        }
        if ssize > 2 || hmax % (c.h * ssize) != 0 || vmax % (c.v * ssize) != 0 {
            return Ok(None);
        }
        comps.push(CompLayout {
            h: c.h,
            v: c.v,
            ssize,
            hexp: hmax / (c.h * ssize),
            vexp: vmax / (c.v * ssize),
        });
    }
    let single = h.scan.len() == 1;
    let (mcus_x, mcus_y) = if single {
        // A one-component scan has one block per MCU over the component's own size.
        let c = &h.comps[h.scan[0].comp];
        let w = (h.width * c.h).div_ceil(hmax);
        let ht = (h.height * c.v).div_ceil(vmax);
        comps[h.scan[0].comp].h = 1;
        comps[h.scan[0].comp].v = 1;
        (w.div_ceil(8), ht.div_ceil(8))
    } else {
        (h.width.div_ceil(8 * hmax), h.height.div_ceil(8 * vmax))
    };
    let mut blocks = Vec::new();
    let mut at = 0;
    for s in &h.scan {
        let c = comps[s.comp];
        for by in 0..c.v {
            for bx in 0..c.h {
                let full = c.ssize == 2;
                blocks.push(Block {
                    comp: s.comp,
                    dc: s.td,
                    ac: s.ta,
                    full,
                    at,
                    bx,
                    by,
                });
                at += if full { FULL } else { 1 };
            }
        }
    }
    // libjpeg's limit (D_MAX_BLOCKS_IN_MCU); the MCU-size bound of entropy::PAD relies on it.
    if blocks.len() > 10 {
        return Ok(None);
    }
    let bad = |_| Error::decode("jpeg", "bad Huffman table");
    let mut dc = Vec::new();
    let mut ac = Vec::new();
    let mut skip = Vec::new();
    for i in 0..4 {
        let used_dc = h.scan.iter().any(|s| s.td == i);
        let used_ac = h.scan.iter().any(|s| s.ta == i);
        dc.push(match (&h.dc[i], used_dc) {
            (Some(t), true) => Some(Huffman::new(t, true).map_err(bad)?),
            _ => None,
        });
        let a = match (&h.ac[i], used_ac) {
            (Some(t), true) => Some(Huffman::new(t, false).map_err(bad)?),
            _ => None,
        };
        skip.push(a.as_ref().map(Skip::new));
        ac.push(a);
    }
    let n = mcus_x
        .checked_mul(mcus_y)
        .ok_or_else(|| Error::decode("jpeg", "image too large"))?;
    let plan = Plan {
        blocks,
        rec_len: at,
        ncomp: h.comps.len(),
        dc,
        ac,
        skip,
    };
    Ok(Some((plan, Layout { mcus_x, comps }, n)))
}

/// Output rows per strip: about 64 KiB, at least one row.
fn strip_rows(row_bytes: usize) -> usize {
    (65536 / row_bytes.max(1)).clamp(1, 256)
}

/// One component's samples for output row `y`, upsampled by replication into `buf`.
fn comp_row<'a>(p: &'a Plane, y: usize, width: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
    let row = &p.samples[(y / p.vexp) * p.width..][..p.width];
    if p.hexp == 1 {
        return &row[..width];
    }
    buf.clear();
    buf.extend((0..width).map(|x| row[x / p.hexp]));
    buf
}

impl ImageStream for DcStream {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let (width, height) = (self.header.width as usize, self.header.height as usize);
        if self.next >= height {
            return Ok(None);
        }
        let row_len = self.header.row_samples();
        let n = strip_rows(row_len).min(height - self.next);
        let mut out = crate::alloc::filled(n * row_len, 0u8, "JPEG rows")?;
        let (mut b0, mut b1, mut b2) = (Vec::new(), Vec::new(), Vec::new());
        for (i, o) in out.chunks_exact_mut(row_len).enumerate() {
            let y = self.next + i;
            match self.coding {
                Coding::Grey => o.copy_from_slice(comp_row(&self.planes[0], y, width, &mut b0)),
                _ => {
                    let yy = comp_row(&self.planes[0], y, width, &mut b0);
                    let cb = comp_row(&self.planes[1], y, width, &mut b1);
                    let cr = comp_row(&self.planes[2], y, width, &mut b2);
                    self.tables.row_to_rgb(yy, cb, cr, o);
                }
            }
        }
        let y = self.next as u32;
        self.next += n;
        Ok(Some(Strip {
            y,
            height: n as u32,
            samples: Samples::U8(out),
        }))
    }
}
