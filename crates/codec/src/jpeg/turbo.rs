//! JPEG decoding with libjpeg-turbo (mozjpeg-sys), for loads that a resize follows and for
//! progressive files: libjpeg's reduced IDCTs at 1/2, 1/4 and 1/8 (SIMD), its fancy upsampling and
//! colour conversion, read as scanlines into strips. Its progressive Huffman decoding is
//! also ~2x zune-jpeg's, which is where progressive thumbnails spent their time.
//!
//! Errors unwind out of libjpeg (see encode.rs) and are caught around every call; warnings
//! (corrupt or truncated data) are errors, as in zune-jpeg's strict mode.

use std::io::{self, Read};
use std::mem;
use std::os::raw::{c_int, c_long};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use mozjpeg_sys as ffi;

use super::decode::Coding;
use super::encode::{error_mgr, unwound};
use super::scans::{dc_only_components, ScanFilter};
use crate::error::{Error, Result};
use crate::image::{Header, ImageStream, Samples, Strip};
use crate::io::Source;

/// Input buffer handed to libjpeg.
const IN_BUF: usize = 64 * 1024;

/// The DCT scale libjpeg-turbo applies for a box shrink of `shrink`: the largest of 8, 4, 2
/// dividing it (the planner's pre-shrink is such a power of two times a box factor).
pub fn dct_factor(shrink: u32) -> Option<u32> {
    [8, 4, 2].into_iter().find(|d| shrink.is_multiple_of(*d))
}

/// Source manager: libjpeg reads `buf`, refilled from the source. First field is libjpeg's
/// struct, so `cinfo.src` points at the whole.
#[repr(C)]
struct Src<'a> {
    mgr: ffi::jpeg_source_mgr,
    buf: Vec<u8>,
    source: Source<'a>,
    /// The source's own error, returned rather than libjpeg's message.
    failed: Option<io::Error>,
    /// Progressive files: AC scans libjpeg would decode for nothing are taken out here.
    filter: Option<(ScanFilter, Vec<u8>)>,
}

impl Src<'_> {
    /// SAFETY: `src` must be the `cinfo.src` that `TurboStream::new` set up (a `Src`).
    unsafe fn of<'b>(src: *mut ffi::jpeg_source_mgr) -> &'b mut Self {
        &mut *(src as *mut Self)
    }

    /// Refills the buffer; false at the end of the input or on a read error (kept).
    fn fill(&mut self) -> bool {
        let Some((filter, raw)) = &mut self.filter else {
            return match read_some(&mut self.source, &mut self.buf) {
                Ok(0) => false,
                Ok(n) => {
                    self.mgr.next_input_byte = self.buf.as_ptr();
                    self.mgr.bytes_in_buffer = n;
                    true
                }
                Err(e) => {
                    self.failed = Some(e);
                    false
                }
            };
        };
        self.buf.clear();
        // A dropped scan yields nothing: read on until there is something for libjpeg.
        while self.buf.is_empty() {
            match read_some(&mut self.source, raw) {
                Ok(0) => {
                    filter.flush(&mut self.buf);
                    break;
                }
                Ok(n) => filter.push(&raw[..n], &mut self.buf),
                Err(e) => {
                    self.failed = Some(e);
                    return false;
                }
            }
        }
        self.mgr.next_input_byte = self.buf.as_ptr();
        self.mgr.bytes_in_buffer = self.buf.len();
        !self.buf.is_empty()
    }
}

/// One read into `buf`, retried when interrupted.
fn read_some(source: &mut Source, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match source.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Raises a libjpeg error with `code` (unwinds).
fn fail(cinfo: &mut ffi::jpeg_decompress_struct, code: ffi::J_MESSAGE_CODE) {
    // SAFETY: `err` is our error manager; error_exit does not return.
    unsafe {
        let err = &mut *cinfo.common.err;
        err.msg_code = code as c_int;
        if let Some(exit) = err.error_exit {
            exit(&mut cinfo.common);
        }
    }
}

extern "C-unwind" fn init_source(_cinfo: &mut ffi::jpeg_decompress_struct) {}

extern "C-unwind" fn fill_input_buffer(cinfo: &mut ffi::jpeg_decompress_struct) -> ffi::boolean {
    // SAFETY: installed by TurboStream::new with a Src behind `src`.
    let s = unsafe { Src::of(cinfo.src) };
    if !s.fill() {
        // The end of the file before the end of the image: an error, not libjpeg's
        // inserted EOI and grey rows.
        fail(cinfo, ffi::JERR_INPUT_EOF);
    }
    1
}

extern "C-unwind" fn skip_input_data(cinfo: &mut ffi::jpeg_decompress_struct, n: c_long) {
    // SAFETY: as above.
    let s = unsafe { Src::of(cinfo.src) };
    let mut n = n.max(0) as usize;
    while n > s.mgr.bytes_in_buffer {
        n -= s.mgr.bytes_in_buffer;
        if !s.fill() {
            fail(cinfo, ffi::JERR_INPUT_EOF);
            return;
        }
    }
    // SAFETY: n <= bytes_in_buffer, so the pointer stays inside the buffer.
    s.mgr.next_input_byte = unsafe { s.mgr.next_input_byte.add(n) };
    s.mgr.bytes_in_buffer -= n;
}

extern "C-unwind" fn resync_to_restart(
    cinfo: &mut ffi::jpeg_decompress_struct,
    desired: c_int,
) -> ffi::boolean {
    // SAFETY: libjpeg's own resynchronisation, given the state it called us with.
    unsafe { ffi::jpeg_resync_to_restart(cinfo, desired) }
}

extern "C-unwind" fn term_source(_cinfo: &mut ffi::jpeg_decompress_struct) {}

/// A strip stream over libjpeg-turbo decoding at 1/`scale`.
pub struct TurboStream<'a> {
    cinfo: Box<ffi::jpeg_decompress_struct>,
    _err: Box<ffi::jpeg_error_mgr>,
    src: Box<Src<'a>>,
    header: Header,
    /// Output rows made so far (`usize::MAX` once decoding failed).
    next: usize,
    /// libjpeg's output is box-shrunk by this factor once more (1: not at all).
    boxed: usize,
    /// libjpeg's output width and height.
    in_size: (usize, usize),
    /// libjpeg rows read so far.
    in_next: usize,
    /// libjpeg rows before the 2x2 box.
    scratch: Vec<u8>,
    rows: Vec<*mut u8>,
    /// Raw-data mode ([`TurboStream::planes`]): the last iMCU row of every component.
    planes: Option<PlaneRows>,
}

/// A component's id and its horizontal and vertical sampling factors, as the header says.
type Sampled = (u8, u8, u8);

/// A component's plane in raw-data mode.
#[derive(Debug, Clone, Copy)]
pub struct Plane {
    /// Horizontal upsampling ratio to full resolution (1: full).
    pub h: usize,
    /// Vertical upsampling ratio.
    pub v: usize,
    /// Samples per row, as libjpeg sizes the downsampled component.
    pub width: usize,
    /// Rows of the component.
    pub height: usize,
    /// Bytes per buffer row (whole blocks).
    stride: usize,
    /// Rows per iMCU row (v_samp_factor * 8).
    rows: usize,
}

/// Buffers of one iMCU row per component, and the rows delivered so far.
struct PlaneRows {
    geometry: Vec<Plane>,
    bufs: Vec<Vec<u8>>,
    done: Vec<usize>,
}

// SAFETY: the raw pointers point into the boxes this stream owns (libjpeg state, the source
// manager, the caller's row buffers during a call); nothing is shared with another thread.
unsafe impl Send for TurboStream<'_> {}

impl<'a> TurboStream<'a> {
    /// Creates the decompressor over `src` (rewound to byte 0) and reads the header:
    /// the stream not yet started, and each component's (id, h, v) sampling factors.
    /// `filter` installs the scan filter that lets a 1/8 decode skip AC scans (scans.rs).
    fn open(
        src: Source<'a>,
        header: &Header,
        coding: Coding,
        filter: bool,
    ) -> Result<(Self, Vec<Sampled>)> {
        let mut err = error_mgr(true);
        let mut src = Box::new(Src {
            mgr: ffi::jpeg_source_mgr {
                next_input_byte: ptr::null(),
                bytes_in_buffer: 0,
                init_source: Some(init_source),
                fill_input_buffer: Some(fill_input_buffer),
                skip_input_data: Some(skip_input_data),
                resync_to_restart: Some(resync_to_restart),
                term_source: Some(term_source),
            },
            buf: vec![0; IN_BUF],
            source: src,
            failed: None,
            filter: filter.then(|| (ScanFilter::new(), vec![0; IN_BUF])),
        });
        // SAFETY: a zeroed struct is what jpeg_CreateDecompress expects (it keeps `err`).
        let mut cinfo: Box<ffi::jpeg_decompress_struct> = Box::new(unsafe { mem::zeroed() });
        cinfo.common.err = &mut *err;
        let created = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            ffi::jpeg_CreateDecompress(
                &mut *cinfo,
                ffi::JPEG_LIB_VERSION,
                mem::size_of::<ffi::jpeg_decompress_struct>(),
            )
        }));
        if created.is_err() {
            cinfo.common.mem = ptr::null_mut();
        }
        cinfo.src = &mut src.mgr;
        let mut s = TurboStream {
            cinfo,
            _err: err,
            src,
            header: header.clone(),
            next: 0,
            boxed: 1,
            in_size: (0, 0),
            in_next: 0,
            scratch: Vec::new(),
            rows: Vec::new(),
            planes: None,
        };
        let space = match coding {
            Coding::Grey => ffi::J_COLOR_SPACE::JCS_GRAYSCALE,
            Coding::Ycc => ffi::J_COLOR_SPACE::JCS_YCbCr,
            _ => return Err(Error::decode("jpeg", "libjpeg path is for YCbCr and grey")),
        };
        let comps = s.call(|c| unsafe {
            ffi::jpeg_read_header(c, 1);
            // zune-jpeg decided the colour coding; libjpeg follows it, so both paths read a
            // file alike.
            c.jpeg_color_space = space;
            let comps = std::slice::from_raw_parts(c.comp_info, c.num_components.max(0) as usize);
            comps
                .iter()
                .map(|p| {
                    let f = |v: c_int| v.clamp(0, 255) as u8;
                    (f(p.component_id), f(p.h_samp_factor), f(p.v_samp_factor))
                })
                .collect::<Vec<_>>()
        })?;
        Ok((s, comps))
    }

    /// Starts decoding `src` (rewound to byte 0) at 1/`scale`: with `exact`, a box average of
    /// the full-size decode; else scaled in the DCT (`scale` 1, 2, 4 or 8). `header` is what
    /// zune-jpeg read from the same bytes; its size is replaced by the scaled one.
    /// `progressive` lets a 1/8 decode skip the AC scans it does not need (scans.rs).
    pub fn new(
        src: Source<'a>,
        mut header: Header,
        coding: Coding,
        scale: u32,
        exact: bool,
        progressive: bool,
    ) -> Result<Self> {
        // Only a 1/8 decode can leave scans out (see scans.rs).
        let filter = progressive && scale == 8 && !exact;
        let (mut s, comps) = Self::open(src, &header, coding, filter)?;
        let out_space = match coding {
            Coding::Grey => ffi::J_COLOR_SPACE::JCS_GRAYSCALE,
            _ => ffi::J_COLOR_SPACE::JCS_RGB,
        };
        let hmax = comps.iter().map(|p| p.1).max().unwrap_or(1);
        let vmax = comps.iter().map(|p| p.2).max().unwrap_or(1);
        let asymmetric = comps
            .iter()
            .any(|&(_, h, v)| h > 0 && v > 0 && hmax / h != vmax / v);
        // libjpeg scales a component's blocks by one factor in both directions, so 4:2:2
        // (4:4:0) chroma at 1/4 or 1/8 keeps half the luma's horizontal (vertical)
        // resolution: 35-41 dB from the box-averaged full decode on a detailed picture.
        // At 1/4 (and 1/2) decoding at twice the size and box-shrinking 2x2 keeps the chroma
        // on the luma grid. At 1/8, the thumbnail case, we take libjpeg's own decode as
        // libvips does (>= 38 dB from `vips thumbnail`, tests/it/pipeline/scaled.rs): a
        // progressive file then needs none of its AC scans, a third of the instructions.
        let lib_scale = if exact {
            1
        } else if asymmetric && (2..8).contains(&scale) {
            scale / 2
        } else {
            scale
        };
        s.boxed = (scale / lib_scale) as usize;
        let dc_only = dc_only_components(&comps, lib_scale);
        let filtering = !dc_only.is_empty() && s.src.filter.is_some();
        if let Some((filter, _)) = &mut s.src.filter {
            // Scans that went by while the header was read were kept: correct, just slower.
            filter.drop_ac_of(&dc_only);
        }
        let (w, h) = s.call(|c| unsafe {
            c.out_color_space = out_space;
            c.scale_num = 1;
            c.scale_denom = lib_scale;
            c.dct_method = ffi::J_DCT_METHOD::JDCT_ISLOW;
            c.do_fancy_upsampling = 1;
            if filtering {
                // Smoothing guesses missing low AC coefficients, which a 1x1 IDCT never reads;
                // without the dropped scans it would think them missing and run for nothing.
                c.do_block_smoothing = 0;
            }
            ffi::jpeg_start_decompress(c);
            (c.output_width, c.output_height)
        })?;
        let b = s.boxed as u32;
        let (ow, oh) = (w.div_ceil(b), h.div_ceil(b));
        if (ow, oh) != (header.width.div_ceil(scale), header.height.div_ceil(scale))
            || s.cinfo.output_components != header.bands as c_int
        {
            return Err(Error::decode(
                "jpeg",
                format!(
                    "libjpeg decodes {w}x{h} where {}x{} at 1/{scale} was expected",
                    header.width, header.height
                ),
            ));
        }
        s.in_size = (w as usize, h as usize);
        header.width = ow;
        header.height = oh;
        s.header = header;
        Ok(s)
    }

    /// Starts a full-size decode whose output is the components' planes at their stored
    /// resolution, after the IDCT (libjpeg's raw data mode: no upsampling, no colour
    /// conversion), read an iMCU row at a time with [`TurboStream::read_planes`]. For exact
    /// shrinks, which box the planes before converting (decode.rs).
    pub fn planes(src: Source<'a>, header: &Header, coding: Coding) -> Result<(Self, Vec<Plane>)> {
        let (mut s, comps) = Self::open(src, header, coding, false)?;
        let ncomp = comps.len();
        if ncomp != header.bands as usize {
            return Err(Error::decode("jpeg", format!("{ncomp} components")));
        }
        let hmax = comps.iter().map(|p| p.1).max().unwrap_or(1).max(1) as usize;
        let vmax = comps.iter().map(|p| p.2).max().unwrap_or(1).max(1) as usize;
        let blocks = s.call(|c| unsafe {
            c.raw_data_out = 1;
            c.dct_method = ffi::J_DCT_METHOD::JDCT_ISLOW;
            ffi::jpeg_start_decompress(c);
            let info = std::slice::from_raw_parts(c.comp_info, c.num_components.max(0) as usize);
            info.iter()
                .map(|p| p.width_in_blocks as usize)
                .collect::<Vec<_>>()
        })?;
        let (w, h) = (header.width as usize, header.height as usize);
        let mut planes = Vec::with_capacity(ncomp);
        for (&(_, hs, vs), &wb) in comps.iter().zip(&blocks) {
            let (hs, vs) = (hs as usize, vs as usize);
            if hs == 0 || vs == 0 || !hmax.is_multiple_of(hs) || !vmax.is_multiple_of(vs) {
                return Err(Error::decode(
                    "jpeg",
                    format!("unsupported sampling factors {hs}x{vs} (max {hmax}x{vmax})"),
                ));
            }
            // jdiv_round_up(image_width * h_samp, max_h_samp), as libjpeg sizes the plane.
            let width = (w * hs).div_ceil(hmax);
            let plane = Plane {
                h: hmax / hs,
                v: vmax / vs,
                width,
                height: (h * vs).div_ceil(vmax),
                stride: (wb * 8).max(width),
                rows: vs * 8,
            };
            planes.push(plane);
        }
        s.planes = Some(PlaneRows {
            done: vec![0; ncomp],
            bufs: planes
                .iter()
                .map(|p| {
                    let n = crate::alloc::len(&[p.stride, p.rows], "JPEG planes")?;
                    crate::alloc::filled(n, 0u8, "JPEG planes")
                })
                .collect::<Result<_>>()?,
            geometry: planes.clone(),
        });
        Ok((s, planes))
    }

    /// Decodes the next iMCU row in raw mode: per component, the rows it added (fewer in the
    /// last, none once the image is done), readable with [`TurboStream::plane_row`].
    pub fn read_planes(&mut self) -> Result<Vec<usize>> {
        let Some(mut p) = self.planes.take() else {
            return Err(Error::decode("jpeg", "not a raw-data decode"));
        };
        let r = self.read_planes_into(&mut p);
        self.planes = Some(p);
        r
    }

    fn read_planes_into(&mut self, p: &mut PlaneRows) -> Result<Vec<usize>> {
        let left: Vec<usize> = p
            .geometry
            .iter()
            .zip(&p.done)
            .map(|(g, &d)| g.height - d.min(g.height))
            .collect();
        if left.iter().all(|&n| n == 0) {
            return Ok(vec![0; left.len()]);
        }
        // Row pointers per component: v * 8 rows of `stride` bytes each.
        let mut ptrs: Vec<Vec<*mut u8>> = p
            .bufs
            .iter_mut()
            .zip(&p.geometry)
            .map(|(b, g)| {
                b.chunks_exact_mut(g.stride)
                    .map(|r| r.as_mut_ptr())
                    .collect()
            })
            .collect();
        let mut image: Vec<*mut *mut u8> = ptrs.iter_mut().map(|v| v.as_mut_ptr()).collect();
        let lines = p.geometry.iter().map(|g| g.rows * g.v).max().unwrap_or(8) as ffi::JDIMENSION;
        // SAFETY: `image` holds, per component, v * 8 row pointers into its buffer of
        // `stride` >= width_in_blocks * 8 bytes per row, alive for the call; `lines` is
        // max_v_samp_factor * 8, what libjpeg asks for at full size.
        let got =
            self.call(|c| unsafe { ffi::jpeg_read_raw_data(c, image.as_mut_ptr().cast(), lines) })?;
        if got == 0 {
            self.next = usize::MAX;
            return Err(Error::decode("jpeg", "image data ended early"));
        }
        let added: Vec<usize> = p
            .geometry
            .iter()
            .zip(&left)
            .map(|(g, &l)| g.rows.min(l))
            .collect();
        for (d, a) in p.done.iter_mut().zip(&added) {
            *d += a;
        }
        Ok(added)
    }

    /// Row `r` of component `c`'s last iMCU row (its first `width` samples).
    pub fn plane_row(&self, c: usize, r: usize) -> &[u8] {
        match &self.planes {
            Some(p) => {
                let g = &p.geometry[c];
                &p.bufs[c][r * g.stride..r * g.stride + g.width]
            }
            None => &[],
        }
    }

    /// Runs a libjpeg call, turning its error (an unwind) into ours.
    fn call<R>(&mut self, f: impl FnOnce(&mut ffi::jpeg_decompress_struct) -> R) -> Result<R> {
        if self.cinfo.common.mem.is_null() {
            return Err(Error::decode("jpeg", "libjpeg could not start"));
        }
        let cinfo = &mut *self.cinfo;
        match panic::catch_unwind(AssertUnwindSafe(|| f(cinfo))) {
            Ok(r) => Ok(r),
            Err(payload) => {
                // Stop here: libjpeg's state is undefined after an error.
                self.next = usize::MAX;
                if let Some(e) = self.src.failed.take() {
                    return Err(Error::Read(e));
                }
                Err(Error::decode("jpeg", unwound(payload)))
            }
        }
    }
}

impl TurboStream<'_> {
    /// Reads `count` libjpeg rows of `row_len` bytes into `buf`.
    fn read_rows(&mut self, buf: &mut [u8], row_len: usize, count: usize) -> Result<()> {
        self.rows.clear();
        self.rows.extend(
            buf.chunks_exact_mut(row_len)
                .take(count)
                .map(|r| r.as_mut_ptr()),
        );
        let mut got = 0usize;
        while got < count {
            let ptrs = self.rows[got..].as_mut_ptr();
            let want = (count - got) as ffi::JDIMENSION;
            // SAFETY: `ptrs` holds `want` rows of `row_len` bytes in `buf`, alive for the call.
            let k = self.call(|c| unsafe { ffi::jpeg_read_scanlines(c, ptrs, want) })?;
            if k == 0 {
                let at = self.in_next + got;
                self.next = usize::MAX;
                return Err(Error::decode(
                    "jpeg",
                    format!("image data ended at row {at}"),
                ));
            }
            got += k as usize;
        }
        self.in_next += count;
        Ok(())
    }
}

/// One output row of a `b` x `b` box average of the interleaved rows in `rows` (fewer rows
/// at the bottom edge, fewer columns at the right edge: the average of what there is).
fn box_row(
    rows: &[u8],
    in_len: usize,
    b: usize,
    bands: usize,
    sums: &mut Vec<u32>,
    out: &mut [u8],
) {
    let nrows = (rows.len() / in_len) as u32;
    if b == 2 && nrows == 2 && in_len.div_ceil(2 * bands) * bands == out.len() {
        // The common cases (4:2:2 thumbnails decode at twice the size; exact shrinks of
        // progressive files by 2): four pixels and a shift, the band count a constant so the
        // loop vectorises. The general loop below costs 44 instructions a sample.
        let (r0, r1) = rows.split_at(in_len);
        match bands {
            1 => box2(r0, r1, out, box2_rows::<1>, box2_rows_avx2::<1>),
            3 => box2(r0, r1, out, box2_rows::<3>, box2_rows_avx2::<3>),
            4 => box2(r0, r1, out, box2_rows::<4>, box2_rows_avx2::<4>),
            _ => box2_rows_dyn(r0, r1, bands, out),
        }
        return;
    }
    sums.clear();
    sums.resize(in_len, 0);
    for r in rows.chunks_exact(in_len) {
        for (s, &v) in sums.iter_mut().zip(r) {
            *s += v as u32;
        }
    }
    let w_in = in_len / bands;
    for (x, o) in out.chunks_exact_mut(bands).enumerate() {
        let x0 = x * b;
        let x1 = (x0 + b).min(w_in);
        let n = nrows * (x1 - x0) as u32;
        for (band, v) in o.iter_mut().enumerate() {
            let sum: u32 = (x0..x1).map(|c| sums[c * bands + band]).sum();
            *v = ((sum + n / 2) / n) as u8;
        }
    }
}

/// Runs the AVX2 or the generic build of a 2x2 box row.
fn box2(
    r0: &[u8],
    r1: &[u8],
    out: &mut [u8],
    generic: fn(&[u8], &[u8], &mut [u8]),
    avx2: unsafe fn(&[u8], &[u8], &mut [u8]),
) {
    if crate::simd::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked above).
        unsafe { avx2(r0, r1, out) }
    } else {
        generic(r0, r1, out)
    }
}

/// One row of a 2x2 box over two interleaved rows of `B` bands; an odd last column averages
/// its two samples.
#[inline(always)]
fn box2_rows<const B: usize>(r0: &[u8], r1: &[u8], out: &mut [u8]) {
    let pairs = (r0.len().min(r1.len()) / B / 2).min(out.len() / B);
    let (main, tail) = out.split_at_mut(pairs * B);
    // Indexed over slices cut to length, so the bounds checks go and the loop vectorises
    // (the zipped chunk iterators did not inline).
    let (a, c) = (&r0[..2 * pairs * B], &r1[..2 * pairs * B]);
    for x in 0..pairs {
        let (s, d) = (2 * x * B, x * B);
        for i in 0..B {
            let sum = a[s + i] as u16 + a[s + B + i] as u16 + c[s + i] as u16 + c[s + B + i] as u16;
            main[d + i] = ((sum + 2) >> 2) as u8;
        }
    }
    let at = 2 * pairs * B;
    if tail.len() >= B && r0.len() >= at + B && r1.len() >= at + B {
        for i in 0..B {
            tail[i] = ((r0[at + i] as u16 + r1[at + i] as u16 + 1) >> 1) as u8;
        }
    }
}

/// [`box2_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn box2_rows_avx2<const B: usize>(r0: &[u8], r1: &[u8], out: &mut [u8]) {
    box2_rows::<B>(r0, r1, out)
}

/// Off x86_64 never chosen (`has_avx2` is false): the generic code.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn box2_rows_avx2<const B: usize>(r0: &[u8], r1: &[u8], out: &mut [u8]) {
    box2_rows::<B>(r0, r1, out)
}

/// [`box2_rows`] for any band count.
fn box2_rows_dyn(r0: &[u8], r1: &[u8], bands: usize, out: &mut [u8]) {
    for (x, o) in out.chunks_exact_mut(bands).enumerate() {
        let at = 2 * x * bands;
        let both = at + 2 * bands <= r0.len();
        for (i, v) in o.iter_mut().enumerate() {
            let (a, c) = (r0[at + i] as u16, r1[at + i] as u16);
            *v = if both {
                ((a + r0[at + bands + i] as u16 + c + r1[at + bands + i] as u16 + 2) >> 2) as u8
            } else {
                ((a + c + 1) >> 1) as u8
            };
        }
    }
}

/// Output rows per strip: about 64 KiB, at least one row.
fn strip_rows(row_bytes: usize) -> usize {
    (65536 / row_bytes.max(1)).clamp(1, 256)
}

impl ImageStream for TurboStream<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let height = self.header.height as usize;
        if self.next == usize::MAX {
            return Err(Error::decode("jpeg", "decoding already failed"));
        }
        if self.next >= height {
            return Ok(None);
        }
        let row_len = self.header.row_samples();
        // With a box, the rows read per strip stay near 4 MiB whatever the factor.
        let in_len = self.in_size.0 * self.header.bands as usize;
        let in_rows = (4 << 20) / (self.boxed * in_len).max(1);
        let n = strip_rows(row_len)
            .min(in_rows.max(1))
            .min(height - self.next);
        let mut out = crate::alloc::filled(n * row_len, 0u8, "JPEG rows")?;
        if self.boxed > 1 {
            let b = self.boxed;
            let bands = self.header.bands as usize;
            let in_len = self.in_size.0 * bands;
            let k = (b * n).min(self.in_size.1 - self.in_next);
            let mut scratch = mem::take(&mut self.scratch);
            crate::alloc::resize(&mut scratch, k * in_len, 0, "JPEG rows")?;
            let read = self.read_rows(&mut scratch, in_len, k);
            self.scratch = scratch;
            read?;
            // Room for a whole input row, so `box_row` never grows it.
            let mut sums = crate::alloc::with_capacity(in_len, "JPEG row sums")?;
            for (i, o) in out.chunks_exact_mut(row_len).enumerate() {
                let rows = &self.scratch[b * i * in_len..(b * (i + 1)).min(k) * in_len];
                box_row(rows, in_len, b, bands, &mut sums, o);
            }
        } else {
            self.read_rows(&mut out, row_len, n)?;
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

impl Drop for TurboStream<'_> {
    fn drop(&mut self) {
        if !self.cinfo.common.mem.is_null() {
            // SAFETY: created by jpeg_CreateDecompress; destroy frees its memory, also after
            // an error or an unfinished decode (libjpeg's prescribed cleanup).
            let cinfo = &mut *self.cinfo;
            let _ = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
                ffi::jpeg_destroy_decompress(cinfo)
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{box2_rows, box2_rows_dyn, box_row};

    /// The generic builds (what a CPU without AVX2 runs) equal the dispatched one.
    #[test]
    fn box2_builds_agree() {
        for w in [1usize, 2, 15, 16, 17, 64, 101] {
            for bands in [1usize, 3, 4] {
                let in_len = w * bands;
                let rows: Vec<u8> = (0..2 * in_len).map(|i| (i * 53 % 253) as u8).collect();
                let (r0, r1) = rows.split_at(in_len);
                let n = w.div_ceil(2) * bands;
                let (mut a, mut b, mut c) = (vec![0u8; n], vec![0u8; n], vec![0u8; n]);
                box_row(&rows, in_len, 2, bands, &mut Vec::new(), &mut a);
                match bands {
                    1 => box2_rows::<1>(r0, r1, &mut b),
                    3 => box2_rows::<3>(r0, r1, &mut b),
                    _ => box2_rows::<4>(r0, r1, &mut b),
                }
                box2_rows_dyn(r0, r1, bands, &mut c);
                assert_eq!(a, b, "{w} x {bands}");
                assert_eq!(a, c, "{w} x {bands}");
            }
        }
    }

    /// The 2x2 fast path and the general loop agree with a plain average, even and odd widths.
    #[test]
    fn box_rows_average_what_there_is() {
        for (w, bands, b, nrows) in [
            (6usize, 3, 2, 2),
            (5, 3, 2, 2),
            (6, 1, 2, 1),
            (7, 3, 4, 3),
            (33, 1, 2, 2),
            (35, 3, 2, 2),
            (9, 4, 2, 2),
            (7, 2, 2, 2),
        ] {
            let in_len = w * bands;
            let rows: Vec<u8> = (0..in_len * nrows).map(|i| (i * 37 % 251) as u8).collect();
            let ow = w.div_ceil(b);
            let mut out = vec![0u8; ow * bands];
            box_row(&rows, in_len, b, bands, &mut Vec::new(), &mut out);
            for x in 0..ow {
                for c in 0..bands {
                    let (mut sum, mut n) = (0u32, 0u32);
                    for r in 0..nrows {
                        for xx in x * b..((x + 1) * b).min(w) {
                            sum += rows[r * in_len + xx * bands + c] as u32;
                            n += 1;
                        }
                    }
                    assert_eq!(out[x * bands + c], ((sum + n / 2) / n) as u8, "{w} {b} {x}");
                }
            }
        }
    }
}
