//! JPEG saving with libjpeg-turbo (mozjpeg-sys with mozjpeg's extras off: its JCP_FASTEST
//! profile is libjpeg-turbo's baseline coder with the standard tables, as libvips uses it).
//! Strips are written as scanlines as they come, and the compressed bytes go straight to the
//! target through our own destination manager, so a full-size image is never assembled.
//!
//! libjpeg reports errors through `error_exit`, which must not return: ours unwinds (the C is
//! built with `-fexceptions`, the functions are `C-unwind`), and every libjpeg call runs
//! inside `catch_unwind`, which turns that unwind into our typed error.

use std::io::{self, Write};
use std::mem;
use std::os::raw::{c_int, c_uint};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use mozjpeg_sys as ffi;

use crate::error::{Error, Result};
use crate::image::{BoxStream, Samples};
use crate::io::{Target, TargetWriter};
use crate::{exif, SaveOptions};

/// Largest dimension libjpeg accepts (`JPEG_MAX_DIMENSION`).
const MAX_SIDE: u32 = 65500;
/// XMP APP1 signature.
const XMP_SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
/// EXIF APP1 signature.
const EXIF_SIG: &[u8] = b"Exif\0\0";
/// ICC APP2 signature (then chunk number and count).
const ICC_SIG: &[u8] = b"ICC_PROFILE\0";
/// Largest payload of one marker segment.
const MAX_MARKER: usize = 65533;
/// Output buffer handed to libjpeg: as large as `TargetWriter`'s, so its writes pass through.
const OUT_BUF: usize = 64 * 1024;

/// Segments written beside an image's own metadata (a gain map's, an MPF index).
#[derive(Debug, Default)]
pub struct Extras<'a> {
    /// Replaces the image's XMP packet.
    pub xmp: Option<&'a [u8]>,
    /// APP2 payloads (signature included) written after the ICC profile, in order.
    pub app2: Vec<&'a [u8]>,
}

/// Encodes `stream` as a baseline JPEG into `target`, then finishes it.
pub fn save(stream: BoxStream, opts: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    save_with(stream, opts, &Extras::default(), target)
}

/// As [`save`], with `extras` written among the metadata (unless stripping).
pub fn save_with(
    mut stream: BoxStream,
    opts: &SaveOptions,
    extras: &Extras,
    target: &mut dyn Target,
) -> Result<()> {
    let header = stream.header().clone();
    if header.width == 0 || header.height == 0 {
        return Err(Error::encode("jpeg", "empty image"));
    }
    if header.width > MAX_SIDE || header.height > MAX_SIDE {
        return Err(Error::encode(
            "jpeg",
            format!(
                "{}x{} is larger than JPEG's {MAX_SIDE}-pixel limit",
                header.width, header.height
            ),
        ));
    }
    let bands = header.bands.max(1) as usize;
    // Grey (+ alpha) is written as one component; colour as RGB, the 4th band of RGBA
    // skipped by libjpeg-turbo itself. Other layouts are repacked row by row.
    let (space, in_bands) = match bands {
        1 | 2 => (ffi::J_COLOR_SPACE::JCS_GRAYSCALE, 1),
        3 => (ffi::J_COLOR_SPACE::JCS_RGB, 3),
        4 => (ffi::J_COLOR_SPACE::JCS_EXT_RGBX, 4),
        _ => (ffi::J_COLOR_SPACE::JCS_RGB, 3),
    };
    let repack = in_bands != bands;
    let mut enc = Encoder::new(TargetWriter::new(target));
    let width = header.width as usize;
    enc.call(|c| unsafe {
        c.image_width = header.width;
        c.image_height = header.height;
        c.in_color_space = space;
        c.input_components = in_bands as c_int;
        ffi::jpeg_c_set_int_param(
            c,
            ffi::J_INT_PARAM::JINT_COMPRESS_PROFILE,
            ffi::JINT_COMPRESS_PROFILE_VALUE::JCP_FASTEST as c_int,
        );
        ffi::jpeg_set_defaults(c);
        // Baseline tables (values clamped to 255), as libvips asks for.
        ffi::jpeg_set_quality(c, opts.quality() as c_int, 1);
        if opts.quality() >= 90 && c.num_components == 3 {
            // libvips: no chroma subsampling from Q90 on; below, libjpeg's default 4:2:0.
            let comps = std::slice::from_raw_parts_mut(c.comp_info, 3);
            for comp in comps {
                comp.h_samp_factor = 1;
                comp.v_samp_factor = 1;
            }
        }
        ffi::jpeg_start_compress(c, 1);
    })?;
    if !opts.strip {
        add_metadata(&mut enc, &header.meta, extras.xmp)?;
        for seg in &extras.app2 {
            enc.marker(ffi::jpeg_marker::APP0 as c_int + 2, seg)?;
        }
    }
    let row_len = width * bands;
    let mut packed = Vec::new();
    let mut rows: Vec<*const u8> = Vec::new();
    let mut done = 0usize;
    while done < header.height as usize {
        let strip = match stream.next_strip()? {
            Some(s) => s,
            None => return Err(Error::encode("jpeg", format!("stream ended at row {done}"))),
        };
        let samples = to_u8(strip.samples)?;
        let n = (strip.height as usize).min(header.height as usize - done);
        if samples.len() < n * row_len {
            return Err(Error::encode("jpeg", "strip shorter than its rows"));
        }
        let data: &[u8] = if repack {
            pack(&samples[..n * row_len], bands, in_bands, &mut packed)?;
            &packed
        } else {
            &samples[..n * row_len]
        };
        let stride = width * in_bands;
        rows.clear();
        crate::alloc::reserve(&mut rows, n, "JPEG row pointers")?;
        rows.extend(data.chunks_exact(stride).map(|r| r.as_ptr()));
        let mut at = 0;
        while at < rows.len() {
            let left = (rows.len() - at) as ffi::JDIMENSION;
            let ptrs = rows[at..].as_ptr();
            // SAFETY: `ptrs` holds `left` rows of `stride` bytes that outlive the call.
            let wrote = enc.call(|c| unsafe { ffi::jpeg_write_scanlines(c, ptrs, left) })?;
            if wrote == 0 {
                return Err(Error::encode("jpeg", "libjpeg accepted no rows"));
            }
            at += wrote as usize;
        }
        done += n;
    }
    enc.call(|c| unsafe { ffi::jpeg_finish_compress(c) })?;
    enc.into_writer().finish().map_err(Error::Write)
}

/// Copies grey (+ alpha) or many-band rows into `in_bands` samples per pixel.
fn pack(src: &[u8], bands: usize, in_bands: usize, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    crate::alloc::reserve(
        out,
        src.len() / bands.max(1) * in_bands,
        "a packed JPEG strip",
    )?;
    for px in src.chunks_exact(bands) {
        out.extend_from_slice(&px[..in_bands]);
    }
    Ok(())
}

/// EXIF (orientation made to match the pixels; a minimal block when only the orientation is
/// left to say), XMP and ICC segments; one too large for JPEG is dropped with a debug message.
fn add_metadata(
    enc: &mut Encoder,
    meta: &crate::image::Metadata,
    xmp: Option<&[u8]>,
) -> Result<()> {
    if let Some(fixed) = exif::for_output(meta) {
        let mut seg = EXIF_SIG.to_vec();
        seg.extend_from_slice(&fixed);
        if seg.len() <= MAX_MARKER {
            enc.marker(ffi::jpeg_marker::APP0 as c_int + 1, &seg)?;
        } else {
            tracing::debug!(
                "EXIF of {} bytes does not fit a JPEG segment; dropped",
                fixed.len()
            );
        }
    }
    if let Some(x) = xmp.or(meta.xmp.as_deref().map(|x| x.as_slice())) {
        let mut seg = XMP_SIG.to_vec();
        seg.extend_from_slice(x);
        if seg.len() <= MAX_MARKER {
            enc.marker(ffi::jpeg_marker::APP0 as c_int + 1, &seg)?;
        } else {
            tracing::debug!(
                "XMP of {} bytes does not fit a JPEG segment; dropped",
                x.len()
            );
        }
    }
    if let Some(icc) = &meta.icc {
        let per = MAX_MARKER - ICC_SIG.len() - 2;
        let count = icc.len().div_ceil(per);
        if count == 0 || count > 255 {
            tracing::debug!(
                "ICC profile of {} bytes is too large for JPEG; dropped",
                icc.len()
            );
        } else {
            let mut seg = Vec::with_capacity(MAX_MARKER);
            for (i, chunk) in icc.chunks(per).enumerate() {
                seg.clear();
                seg.extend_from_slice(ICC_SIG);
                seg.extend_from_slice(&[i as u8 + 1, count as u8]);
                seg.extend_from_slice(chunk);
                enc.marker(ffi::jpeg_marker::APP0 as c_int + 2, &seg)?;
            }
        }
    }
    Ok(())
}

/// 8-bit samples: `codec::save` has already cast them (the one cast rule); this unwraps.
pub fn to_u8(samples: Samples) -> Result<Vec<u8>> {
    Ok(
        match crate::cast::cast(samples, crate::image::SampleFormat::U8, 1, false)? {
            Samples::U8(v) => v,
            _ => Vec::new(),
        },
    )
}

/// The payload our `error_exit` unwinds with: libjpeg's formatted message.
struct LibjpegError(pub String);

/// libjpeg's message for the error in `cinfo`.
fn message(cinfo: &mut ffi::jpeg_common_struct) -> String {
    // SAFETY: `err` is the error manager libjpeg was created with.
    unsafe {
        let mut buf = [0u8; 200];
        if let Some(fmt) = (*cinfo.err).format_message {
            // The binding types the buffer as a shared 80-byte array; libjpeg writes up to
            // JMSG_LENGTH_MAX (200) bytes into it, so call it through a pointer type.
            type Fmt = unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, *mut u8);
            let fmt: Fmt = mem::transmute(fmt);
            fmt(cinfo, buf.as_mut_ptr());
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    }
}

/// libjpeg's fatal-error hook: must not return, so it unwinds to the `catch_unwind` around
/// the call (`resume_unwind` skips the panic hook: nothing is printed).
extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    let msg = message(cinfo);
    panic::resume_unwind(Box::new(LibjpegError(msg)));
}

/// Warnings are not printed (the encoder raises none that matter).
extern "C-unwind" fn emit_message(_cinfo: &mut ffi::jpeg_common_struct, _level: c_int) {}

/// Decoding is strict, as zune-jpeg's strict mode: a warning (corrupt data, premature end of
/// the file) is an error, not grey rows.
extern "C-unwind" fn emit_message_strict(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    if level < 0 {
        error_exit(cinfo);
    }
}

/// A fresh error manager with our hooks; `strict` makes warnings fatal.
pub(super) fn error_mgr(strict: bool) -> Box<ffi::jpeg_error_mgr> {
    // SAFETY: jpeg_std_error fills every field of the zeroed struct.
    unsafe {
        let mut err: Box<ffi::jpeg_error_mgr> = Box::new(mem::zeroed());
        ffi::jpeg_std_error(&mut err);
        err.error_exit = Some(error_exit);
        err.emit_message = Some(if strict {
            emit_message_strict
        } else {
            emit_message
        });
        err
    }
}

/// Turns what a libjpeg call unwound with into an error message.
pub(super) fn unwound(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(e) = payload.downcast_ref::<LibjpegError>() {
        e.0.clone()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "libjpeg failed".to_string()
    }
}

/// Destination manager: libjpeg fills `buf`, we pass it on to the target writer. The first
/// field is libjpeg's struct, so `cinfo.dest` points at the whole.
#[repr(C)]
struct Dest<'t> {
    mgr: ffi::jpeg_destination_mgr,
    buf: Vec<u8>,
    writer: Option<TargetWriter<'t>>,
    /// The target's own error, kept so that it is returned rather than libjpeg's message.
    failed: Option<io::Error>,
}

impl Dest<'_> {
    /// SAFETY: `dest` must be the `cinfo.dest` that `Encoder::new` set up (a `Dest`).
    unsafe fn of<'a>(dest: *mut ffi::jpeg_destination_mgr) -> &'a mut Self {
        &mut *(dest as *mut Self)
    }

    fn reset(&mut self) {
        self.mgr.next_output_byte = self.buf.as_mut_ptr();
        self.mgr.free_in_buffer = self.buf.len();
    }

    /// Writes the first `n` bytes of the buffer; false (error kept) when the target failed.
    fn flush(&mut self, n: usize) -> bool {
        let w = self.writer.as_mut().expect("writer present while encoding");
        match w.write_all(&self.buf[..n]) {
            Ok(()) => true,
            Err(e) => {
                self.failed = Some(e);
                false
            }
        }
    }
}

extern "C-unwind" fn init_destination(cinfo: &mut ffi::jpeg_compress_struct) {
    // SAFETY: installed by Encoder::new with a Dest behind `dest`.
    unsafe { Dest::of(cinfo.dest) }.reset();
}

extern "C-unwind" fn empty_output_buffer(cinfo: &mut ffi::jpeg_compress_struct) -> ffi::boolean {
    // SAFETY: as above.
    let d = unsafe { Dest::of(cinfo.dest) };
    // libjpeg calls this with the whole buffer full, whatever free_in_buffer says.
    if !d.flush(d.buf.len()) {
        fail_write(cinfo);
    }
    d.reset();
    1
}

extern "C-unwind" fn term_destination(cinfo: &mut ffi::jpeg_compress_struct) {
    // SAFETY: as above.
    let d = unsafe { Dest::of(cinfo.dest) };
    let n = d.buf.len() - d.mgr.free_in_buffer;
    if !d.flush(n) {
        fail_write(cinfo);
    }
    d.reset();
}

/// Raises libjpeg's write error (which unwinds).
fn fail_write(cinfo: &mut ffi::jpeg_compress_struct) {
    // SAFETY: `err` is our error manager; error_exit does not return.
    unsafe {
        let err = &mut *cinfo.common.err;
        err.msg_code = ffi::JERR_FILE_WRITE as c_int;
        if let Some(exit) = err.error_exit {
            exit(&mut cinfo.common);
        }
    }
}

/// One libjpeg compressor, destroyed on drop (also after an error unwound out of it).
struct Encoder<'t> {
    cinfo: Box<ffi::jpeg_compress_struct>,
    _err: Box<ffi::jpeg_error_mgr>,
    dest: Box<Dest<'t>>,
}

impl<'t> Encoder<'t> {
    fn new(writer: TargetWriter<'t>) -> Self {
        let mut err = error_mgr(false);
        let mut dest = Box::new(Dest {
            mgr: ffi::jpeg_destination_mgr {
                next_output_byte: ptr::null_mut(),
                free_in_buffer: 0,
                init_destination: Some(init_destination),
                empty_output_buffer: Some(empty_output_buffer),
                term_destination: Some(term_destination),
            },
            buf: vec![0; OUT_BUF],
            writer: Some(writer),
            failed: None,
        });
        // SAFETY: a zeroed struct is what jpeg_CreateCompress expects (it keeps `err`).
        let mut cinfo: Box<ffi::jpeg_compress_struct> = Box::new(unsafe { mem::zeroed() });
        cinfo.common.err = &mut *err;
        // SAFETY: creation only allocates; its failure (out of memory) unwinds through
        // error_exit, which is caught here.
        let created = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            ffi::jpeg_CreateCompress(
                &mut *cinfo,
                ffi::JPEG_LIB_VERSION,
                mem::size_of::<ffi::jpeg_compress_struct>(),
            )
        }));
        if created.is_err() {
            // Nothing to destroy; leave `mem` null so drop skips it.
            cinfo.common.mem = ptr::null_mut();
        }
        cinfo.dest = &mut dest.mgr;
        Encoder {
            cinfo,
            _err: err,
            dest,
        }
    }

    /// Runs a libjpeg call, turning its error (an unwind) into ours. A failed write to the
    /// target is returned as that write error.
    fn call<R>(&mut self, f: impl FnOnce(&mut ffi::jpeg_compress_struct) -> R) -> Result<R> {
        if self.cinfo.common.mem.is_null() {
            return Err(Error::encode("jpeg", "libjpeg could not start"));
        }
        let cinfo = &mut *self.cinfo;
        match panic::catch_unwind(AssertUnwindSafe(|| f(cinfo))) {
            Ok(r) => Ok(r),
            Err(payload) => {
                if let Some(e) = self.dest.failed.take() {
                    return Err(Error::Write(e));
                }
                Err(Error::encode("jpeg", unwound(payload)))
            }
        }
    }

    /// Writes one marker segment (between start_compress and the first scanline).
    fn marker(&mut self, code: c_int, data: &[u8]) -> Result<()> {
        self.call(|c| unsafe {
            ffi::jpeg_write_marker(c, code, data.as_ptr(), data.len() as c_uint)
        })
    }

    /// The target writer, after `jpeg_finish_compress` flushed everything into it.
    fn into_writer(mut self) -> TargetWriter<'t> {
        self.dest.writer.take().expect("writer taken once")
    }
}

impl Drop for Encoder<'_> {
    fn drop(&mut self) {
        if !self.cinfo.common.mem.is_null() {
            // SAFETY: created by jpeg_CreateCompress; destroy only frees its memory (it
            // cannot fail), and is what libjpeg prescribes after an error too.
            let cinfo = &mut *self.cinfo;
            let _ = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
                ffi::jpeg_destroy_compress(cinfo)
            }));
        }
    }
}
