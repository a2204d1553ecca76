//! HEIF (HEVC, the iPhone's HEIC) and AVIF through libheif, the reference C library, opened
//! from the system with dlopen on first use (Debian bookworm ships 1.15.1 with libde265 and
//! dav1d for decoding and aom for AV1 encoding); without libheif only these formats fail.
//! The C declarations are our own (`heif/sys.rs`, from libheif 1.15's header): building needs
//! no libheif development files.
//!
//! The decoder is whole-image: the file is read into memory (up to the memory limit), the
//! primary image's size is checked against `--max-pixels` from its `ispe` box before any
//! pixel is decoded, then libheif decodes it with its `irot`/`imir`/`clap` transforms applied
//! (the HEIF rule: EXIF orientation is informative and must not be applied again, so the
//! header says orientation 1, as libvips does). Grid (tiled) images, alpha and 8-12 bits are
//! libheif's to assemble; deeper than 8 bits comes out as 16-bit samples.
//!
//! A thumbnail (a resize follows, shrink >= 2, not `exact`) of a plain 8-bit HEVC image skips
//! libheif's decode: `heif/direct.rs` feeds the item to libde265 and shrinks the YCbCr
//! planes before converting (same picture within rounding; see there for what falls back).

use std::ffi::CStr;
use std::ptr;
use std::sync::{Arc, Once};

mod de265;
mod direct;
mod ffi;
mod items;
mod sys;

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, Image, Metadata, SampleFormat, Samples};
use crate::io::{Source, Target};
use crate::{
    check_limits, exif, About, Codec, Format, Limits, LoadOptions, Loaded, SaveOptions, Saver,
    SaverLimits, QUALITY,
};

/// Largest side libheif may decode (its own check, behind our pixel-count check).
const MAX_SIDE: i32 = 65535;

/// Which flavour of HEIF a file is, for messages.
#[derive(Clone, Copy)]
pub enum Kind {
    /// HEVC-coded HEIF.
    Heic,
    /// AV1-coded HEIF.
    Avif,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Heic => "heif",
            Kind::Avif => "avif",
        }
    }
}

/// The ISO-BMFF brands of an `ftyp` box at the start of `head`: (major, compatible...).
fn brands(head: &[u8]) -> Option<Vec<&[u8]>> {
    if head.len() < 16 || &head[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(head[..4].try_into().ok()?) as usize;
    let end = size.min(head.len());
    if size < 16 {
        return None;
    }
    let mut v = vec![&head[8..12]];
    let mut at = 16;
    while at + 4 <= end {
        v.push(&head[at..at + 4]);
        at += 4;
    }
    Some(v)
}

/// An AVIF file: `avif`/`avis` as major brand, or among the compatible brands of a generic
/// `mif1`/`msf1` file.
pub fn sniff_avif(head: &[u8]) -> bool {
    brands(head).is_some_and(|b| {
        matches!(b[0], b"avif" | b"avis")
            || (matches!(b[0], b"mif1" | b"msf1")
                && b.iter().any(|x| matches!(*x, b"avif" | b"avis")))
    })
}

/// A HEVC HEIF file (any HEIF that is not AVIF).
pub fn sniff_heic(head: &[u8]) -> bool {
    brands(head).is_some_and(|b| {
        matches!(
            b[0],
            b"heic"
                | b"heix"
                | b"hevc"
                | b"hevx"
                | b"heim"
                | b"heis"
                | b"hevm"
                | b"hevs"
                | b"mif1"
                | b"msf1"
        )
    }) && !sniff_avif(head)
}

/// Opens and initialises libheif once; why it could not be, if not.
pub(crate) fn init() -> std::result::Result<(), String> {
    ffi::load().map_err(|e| format!("libheif could not be opened: {e}"))?;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: a null parameter pointer is the documented default.
        let _ = unsafe { ffi::heif_init(ptr::null_mut()) };
    });
    Ok(())
}

fn check(kind: Kind, e: ffi::heif_error) -> Result<()> {
    if e.code == ffi::heif_error_code_heif_error_Ok {
        return Ok(());
    }
    let msg = if e.message.is_null() {
        format!("libheif error {}/{}", e.code, e.subcode)
    } else {
        // SAFETY: libheif's messages are static NUL-terminated strings.
        unsafe { CStr::from_ptr(e.message) }
            .to_string_lossy()
            .into_owned()
    };
    Err(Error::decode(kind.name(), msg))
}

/// A parsed file: the context and its primary image handle, freed on drop. The bytes it
/// reads from are borrowed by libheif (read without copy), so they live here too.
struct File {
    ctx: *mut ffi::heif_context,
    handle: *mut ffi::heif_image_handle,
    _bytes: Vec<u8>,
}

// SAFETY: a libheif context and its handles are used from one thread at a time (we own them
// exclusively); libheif keeps no thread-local state for them.
unsafe impl Send for File {}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: both pointers came from libheif and are released exactly once.
        unsafe {
            if !self.handle.is_null() {
                ffi::heif_image_handle_release(self.handle);
            }
            ffi::heif_context_free(self.ctx);
        }
    }
}

impl File {
    fn open(kind: Kind, bytes: Vec<u8>) -> Result<File> {
        init().map_err(|e| Error::decode(kind.name(), e))?;
        // Before libheif parses it: libheif 1.15 follows reference cycles forever.
        items::check(&bytes).map_err(|e| Error::decode(kind.name(), e))?;
        // SAFETY: plain allocation; checked for null below.
        let ctx = unsafe { ffi::heif_context_alloc() };
        if ctx.is_null() {
            return Err(Error::decode(kind.name(), "libheif: out of memory"));
        }
        let mut file = File {
            ctx,
            handle: ptr::null_mut(),
            _bytes: bytes,
        };
        // SAFETY: the bytes outlive the context (both owned by `file`, context freed first).
        unsafe {
            ffi::heif_context_set_maximum_image_size_limit(ctx, MAX_SIDE);
            check(
                kind,
                ffi::heif_context_read_from_memory_without_copy(
                    ctx,
                    file._bytes.as_ptr().cast(),
                    file._bytes.len(),
                    ptr::null(),
                ),
            )?;
            check(
                kind,
                ffi::heif_context_get_primary_image_handle(ctx, &mut file.handle),
            )?;
        }
        Ok(file)
    }

    /// The header, from the boxes only (nothing decoded).
    fn header(&self, kind: Kind) -> Result<Header> {
        let (width, height, bands, format, bit_depth) = geometry(kind, self.handle)?;
        let exif_bytes = self.exif()?;
        Ok(Header {
            width,
            height,
            bands,
            format,
            bit_depth,
            meta: Metadata {
                // libheif applies irot/imir itself; EXIF orientation must not be applied again.
                orientation: 1,
                icc: self.icc()?.map(Arc::new),
                exif: exif_bytes.map(Arc::new),
                xmp: self.metadata(b"mime\0")?.map(Arc::new),
            },
        })
    }

    fn icc(&self) -> Result<Option<Vec<u8>>> {
        // SAFETY: the size comes from libheif; the buffer is that large.
        unsafe {
            let n = ffi::heif_image_handle_get_raw_color_profile_size(self.handle);
            if n == 0 {
                return Ok(None);
            }
            let mut v = crate::alloc::filled(n, 0u8, "a HEIF ICC profile")?;
            let e =
                ffi::heif_image_handle_get_raw_color_profile(self.handle, v.as_mut_ptr().cast());
            Ok((e.code == ffi::heif_error_code_heif_error_Ok).then_some(v))
        }
    }

    /// The first metadata block of type `kind` (NUL-terminated), raw.
    fn metadata(&self, kind: &[u8]) -> Result<Option<Vec<u8>>> {
        // SAFETY: `kind` is NUL-terminated; buffers are sized by libheif's answers.
        unsafe {
            let mut id: ffi::heif_item_id = 0;
            let n = ffi::heif_image_handle_get_list_of_metadata_block_IDs(
                self.handle,
                kind.as_ptr().cast(),
                &mut id,
                1,
            );
            if n < 1 {
                return Ok(None);
            }
            let size = ffi::heif_image_handle_get_metadata_size(self.handle, id);
            if size == 0 || size > 16 << 20 {
                return Ok(None);
            }
            let mut v = crate::alloc::filled(size, 0u8, "HEIF metadata")?;
            let e = ffi::heif_image_handle_get_metadata(self.handle, id, v.as_mut_ptr().cast());
            Ok((e.code == ffi::heif_error_code_heif_error_Ok).then_some(v))
        }
    }

    /// EXIF starting at its TIFF header: HEIF's Exif item starts with a 4-byte offset to it.
    fn exif(&self) -> Result<Option<Vec<u8>>> {
        let Some(raw) = self.metadata(b"Exif\0")? else {
            return Ok(None);
        };
        let exif = || {
            let skip = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?) as usize;
            exif::normalize(raw.get(4usize.checked_add(skip)?..)?)
        };
        Ok(exif())
    }

    /// The embedded thumbnail to decode instead of the primary image when a resize to
    /// `fit` follows, as libvips' thumbnail does: the smallest one still larger than `fit` in
    /// both directions (never enlarged), with the primary's aspect ratio (libvips also skips
    /// broken thumbnails), alpha and sample type. `None`: decode the primary image.
    fn thumbnail_for(&self, kind: Kind, fit: (u32, u32), primary: &Header) -> Option<Thumbnail> {
        // SAFETY: valid handle; the ID buffer has the length we pass.
        let ids = unsafe {
            let n = ffi::heif_image_handle_get_number_of_thumbnails(self.handle);
            if n <= 0 {
                return None;
            }
            let mut ids = vec![0 as ffi::heif_item_id; n.min(64) as usize];
            let got = ffi::heif_image_handle_get_list_of_thumbnail_IDs(
                self.handle,
                ids.as_mut_ptr(),
                ids.len() as i32,
            );
            ids.truncate(got.max(0) as usize);
            ids
        };
        let mut best: Option<(Thumbnail, u64)> = None;
        for id in ids {
            let mut handle = ptr::null_mut();
            // SAFETY: valid main handle; the thumbnail handle is owned by `Thumbnail`.
            let e = unsafe { ffi::heif_image_handle_get_thumbnail(self.handle, id, &mut handle) };
            if e.code != ffi::heif_error_code_heif_error_Ok || handle.is_null() {
                continue;
            }
            let thumb = Thumbnail(handle);
            let Ok((w, h, bands, format, _)) = geometry(kind, thumb.0) else {
                continue;
            };
            let (pw, ph) = (u64::from(primary.width), u64::from(primary.height));
            // Aspect ratios agree to within one thumbnail pixel (encoders round to even sizes).
            let aspect_ok = (u64::from(w) * ph).abs_diff(u64::from(h) * pw) <= pw.max(ph) * 2;
            let usable = w > fit.0
                && h > fit.1
                && w < primary.width
                && bands == primary.bands
                && format == primary.format
                && aspect_ok;
            let pixels = u64::from(w) * u64::from(h);
            if usable && best.as_ref().is_none_or(|(_, p)| pixels < *p) {
                best = Some((thumb, pixels));
            }
        }
        best.map(|(t, _)| t)
    }

    /// Decodes the primary image to interleaved RGB(A), 8 or 16 bits as `header` says.
    fn decode(&self, kind: Kind, header: &Header) -> Result<Decoded> {
        decode(kind, self.handle, header)
    }
}

/// An embedded thumbnail's image handle, released on drop.
struct Thumbnail(*mut ffi::heif_image_handle);

impl Drop for Thumbnail {
    fn drop(&mut self) {
        // SAFETY: obtained from heif_image_handle_get_thumbnail, released once.
        unsafe { ffi::heif_image_handle_release(self.0) }
    }
}

/// Size, bands, sample type and bit depth of an image handle (from its boxes).
fn geometry(
    kind: Kind,
    h: *mut ffi::heif_image_handle,
) -> Result<(u32, u32, u8, SampleFormat, u8)> {
    // SAFETY: `h` is a valid handle for the duration of the call.
    let (w, ht, alpha, bits) = unsafe {
        (
            ffi::heif_image_handle_get_width(h),
            ffi::heif_image_handle_get_height(h),
            ffi::heif_image_handle_has_alpha_channel(h) != 0,
            ffi::heif_image_handle_get_luma_bits_per_pixel(h),
        )
    };
    if w <= 0 || ht <= 0 {
        return Err(Error::decode(kind.name(), format!("image size {w}x{ht}")));
    }
    let bits = bits.clamp(8, 16) as u8;
    let format = if bits > 8 {
        SampleFormat::U16
    } else {
        SampleFormat::U8
    };
    Ok((w as u32, ht as u32, if alpha { 4 } else { 3 }, format, bits))
}

/// Decodes the image of `handle` to interleaved RGB(A), 8 or 16 bits as `header` says (its
/// size must be the handle's), and streams it straight from libheif's plane: no second
/// whole-image copy (12 MP: 36 MB fewer pages to fault in and fill).
fn decode(kind: Kind, handle: *mut ffi::heif_image_handle, header: &Header) -> Result<Decoded> {
    let wide = header.format == SampleFormat::U16;
    let chroma = match (header.bands, wide) {
        (3, false) => ffi::heif_chroma_heif_chroma_interleaved_RGB,
        (4, false) => ffi::heif_chroma_heif_chroma_interleaved_RGBA,
        (3, true) => ffi::heif_chroma_heif_chroma_interleaved_RRGGBB_LE,
        _ => ffi::heif_chroma_heif_chroma_interleaved_RRGGBBAA_LE,
    };
    let mut img: *mut ffi::heif_image = ptr::null_mut();
    // SAFETY: valid handle; `img` is owned by `Decoded` below on every path.
    let e = unsafe {
        ffi::heif_decode_image(
            handle,
            &mut img,
            ffi::heif_colorspace_heif_colorspace_RGB,
            chroma,
            ptr::null(),
        )
    };
    let mut out = Decoded {
        img,
        plane: ptr::null(),
        stride: 0,
        bits: 8,
        header: header.clone(),
        y: 0,
    };
    check(kind, e)?;
    let ch = ffi::heif_channel_heif_channel_interleaved;
    let mut stride = 0;
    // SAFETY: `img` is a decoded image; the plane pointer is valid while it lives.
    let (w, h, bits, plane) = unsafe {
        (
            ffi::heif_image_get_width(img, ch),
            ffi::heif_image_get_height(img, ch),
            ffi::heif_image_get_bits_per_pixel_range(img, ch),
            ffi::heif_image_get_plane_readonly(img, ch, &mut stride),
        )
    };
    if plane.is_null() || (w as u32, h as u32) != (header.width, header.height) {
        return Err(Error::decode(
            kind.name(),
            format!(
                "decoded {w}x{h}, the header said {}x{}",
                header.width, header.height
            ),
        ));
    }
    let row_bytes = header.row_samples() * if wide { 2 } else { 1 };
    if stride < 0 || (stride as usize) < row_bytes {
        return Err(Error::decode(kind.name(), "plane stride too small"));
    }
    out.plane = plane;
    out.stride = stride as usize;
    out.bits = bits;
    Ok(out)
}

/// A decoded libheif image, streamed from its interleaved plane and released on drop.
struct Decoded {
    img: *mut ffi::heif_image,
    /// Its interleaved plane: `stride * height` readable bytes while `img` lives.
    plane: *const u8,
    stride: usize,
    /// Significant bits per sample (16-bit samples are stretched to the full scale).
    bits: i32,
    header: Header,
    /// Next row to stream.
    y: u32,
}

// SAFETY: the image is owned here alone and only read after decoding; libheif keeps no
// thread-local state for it.
unsafe impl Send for Decoded {}

impl Drop for Decoded {
    fn drop(&mut self) {
        if !self.img.is_null() {
            // SAFETY: released once, after the last read of its plane.
            unsafe { ffi::heif_image_release(self.img) }
        }
    }
}

impl Decoded {
    /// Rows `y..y + n` as samples.
    fn rows(&self, y: u32, n: u32) -> Result<Samples> {
        let row_samples = self.header.row_samples();
        let wide = self.header.format == SampleFormat::U16;
        let row_bytes = row_samples * if wide { 2 } else { 1 };
        let len = crate::alloc::len(&[row_samples, n as usize], "HEIF pixels")?;
        // SAFETY: `decode` checked the plane for `stride * height` bytes, rows within height.
        let data = unsafe {
            std::slice::from_raw_parts(
                self.plane.add(y as usize * self.stride),
                self.stride * (n as usize - 1) + row_bytes,
            )
        };
        let rows = data.chunks(self.stride).map(|r| &r[..row_bytes]);
        Ok(if wide {
            // Samples hold `bits` significant bits: stretch to the 16-bit scale.
            let max = ((1u32 << self.bits.clamp(9, 16)) - 1) as f32;
            let mut v = crate::alloc::with_capacity(len, "HEIF pixels")?;
            for r in rows {
                v.extend(r.chunks_exact(2).map(|c| {
                    let s = u16::from_le_bytes([c[0], c[1]]) as f32;
                    (s * 65535.0 / max).round().min(65535.0) as u16
                }));
            }
            Samples::U16(v)
        } else {
            let mut v = crate::alloc::with_capacity(len, "HEIF pixels")?;
            for r in rows {
                v.extend_from_slice(r);
            }
            Samples::U8(v)
        })
    }
}

impl crate::image::ImageStream for Decoded {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<crate::image::Strip>> {
        let y = self.y;
        if y >= self.header.height {
            return Ok(None);
        }
        let n = crate::image::STRIP_ROWS.min(self.header.height - y);
        let samples = self.rows(y, n)?;
        self.y += n;
        Ok(Some(crate::image::Strip {
            y,
            height: n,
            samples,
        }))
    }
}

fn read_all(src: &mut Source, limit: u64) -> Result<Vec<u8>> {
    src.read_to_memory(limit)
}

/// Reads the header (boxes only; no image data decoded).
pub fn probe(src: &mut Source, kind: Kind, limits: &Limits) -> Result<Header> {
    let bytes = read_all(src, limits.memory_limit)?;
    File::open(kind, bytes)?.header(kind)
}

/// Decodes the primary image into memory, then streams it.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions, kind: Kind) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let bytes = read_all(&mut src, opts.limits.memory_limit)?;
    // libheif sizes grid and overlay canvases from their own data, not from `ispe`.
    items::check_canvases(&bytes, opts.limits.max_pixels)
        .map_err(|e| Error::decode(kind.name(), e))?;
    let file = File::open(kind, bytes)?;
    let header = file.header(kind)?;
    check_limits(&header, opts.limits.max_pixels)?;
    let need = header.pixels() * header.bands as u64 * header.format.bytes() as u64;
    if need > opts.limits.memory_limit {
        return Err(Error::Unsupported(format!(
            "{} needs {need} bytes, over the {}-byte memory limit",
            kind.name(),
            opts.limits.memory_limit
        )));
    }
    // `exact`: from the primary image only, never a stored thumbnail.
    if let Some(fit) = opts.fit.filter(|_| !opts.exact) {
        if let Some(thumb) = file.thumbnail_for(kind, fit, &header) {
            let (width, height, ..) = geometry(kind, thumb.0)?;
            // Metadata stays the primary image's (thumbnails carry none).
            let small = Header {
                width,
                height,
                ..header.clone()
            };
            // A thumbnail that fails to decode costs only the shortcut.
            if let Ok(decoded) = decode(kind, thumb.0, &small) {
                tracing::debug!(
                    "{}: embedded {width}x{height} thumbnail for a {}x{} target",
                    kind.name(),
                    fit.0,
                    fit.1
                );
                // The whole pre-shrink is done: the resize to `fit` takes it from here.
                return Ok(Loaded::single(Box::new(decoded), opts.shrink.max(1)));
            }
        }
    }
    // A thumbnail of a plain HEVC image: libde265 directly, shrunk before converting.
    if matches!(kind, Kind::Heic) && !opts.exact && opts.fit.is_some() && opts.shrink >= 2 {
        match direct::thumbnail(&file._bytes, &header, opts.shrink) {
            Ok(small) => {
                let stream = small.into_stream(crate::image::STRIP_ROWS);
                return Ok(Loaded::single(Box::new(stream), opts.shrink));
            }
            Err(why) => tracing::debug!("heif: libheif decodes the whole image: {why}"),
        }
    }
    Ok(Loaded::single(Box::new(file.decode(kind, &header)?), 1))
}

/// AV1 encoder speed (aom's cpu-used, 0 slowest .. 9 fastest): 8 keeps a 256-pixel
/// thumbnail's encode in a few tens of milliseconds.
const AVIF_SPEED: i32 = 8;

/// Encodes AVIF with libheif's AV1 encoder (aom in Debian) at `q<N>`, 8-bit 4:2:0,
/// single-threaded so the bytes are reproducible. Grey is widened to RGB.
pub fn save_avif(stream: BoxStream, opts: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let img = Image::collect(stream)?;
    let h = img.header.clone();
    let Samples::U8(data) = img.samples else {
        return Err(Error::encode("avif", "samples not cast to 8 bits"));
    };
    let alpha = h.has_alpha();
    let (w, ht) = (h.width as i32, h.height as i32);
    if h.width > 65535 || h.height > 65535 {
        return Err(Error::encode(
            "avif",
            format!("{}x{} is too large", h.width, h.height),
        ));
    }
    let out_bands = if alpha { 4 } else { 3 };
    init().map_err(|e| Error::encode("avif", e))?;
    let enc_err = |e: ffi::heif_error| -> Result<()> {
        check(Kind::Avif, e).map_err(|e| match e {
            Error::Decode { message, .. } => Error::encode("avif", message),
            other => other,
        })
    };
    struct Guard {
        ctx: *mut ffi::heif_context,
        enc: *mut ffi::heif_encoder,
        img: *mut ffi::heif_image,
        handle: *mut ffi::heif_image_handle,
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            // SAFETY: each pointer is null or owned here, released once.
            unsafe {
                if !self.handle.is_null() {
                    ffi::heif_image_handle_release(self.handle);
                }
                if !self.img.is_null() {
                    ffi::heif_image_release(self.img);
                }
                if !self.enc.is_null() {
                    ffi::heif_encoder_release(self.enc);
                }
                if !self.ctx.is_null() {
                    ffi::heif_context_free(self.ctx);
                }
            }
        }
    }
    let mut g = Guard {
        // SAFETY: plain allocation, checked below.
        ctx: unsafe { ffi::heif_context_alloc() },
        enc: ptr::null_mut(),
        img: ptr::null_mut(),
        handle: ptr::null_mut(),
    };
    if g.ctx.is_null() {
        return Err(Error::encode("avif", "libheif: out of memory"));
    }
    // SAFETY: every call gets live pointers owned by `g`; plane writes stay within
    // `stride * height` bytes.
    unsafe {
        enc_err(ffi::heif_context_get_encoder_for_format(
            g.ctx,
            ffi::heif_compression_format_heif_compression_AV1,
            &mut g.enc,
        ))?;
        enc_err(ffi::heif_encoder_set_lossy_quality(
            g.enc,
            i32::from(opts.quality()),
        ))?;
        for (name, value) in [(&b"speed\0"[..], AVIF_SPEED), (b"threads\0", 1)] {
            // Parameters an encoder build lacks are skipped, not fatal.
            let _ = ffi::heif_encoder_set_parameter_integer(g.enc, name.as_ptr().cast(), value);
        }
        let _ = ffi::heif_encoder_set_parameter_string(g.enc, c"chroma".as_ptr(), c"420".as_ptr());
        let chroma = if alpha {
            ffi::heif_chroma_heif_chroma_interleaved_RGBA
        } else {
            ffi::heif_chroma_heif_chroma_interleaved_RGB
        };
        enc_err(ffi::heif_image_create(
            w,
            ht,
            ffi::heif_colorspace_heif_colorspace_RGB,
            chroma,
            &mut g.img,
        ))?;
        let ch = ffi::heif_channel_heif_channel_interleaved;
        enc_err(ffi::heif_image_add_plane(g.img, ch, w, ht, 8))?;
        let mut stride = 0;
        let plane = ffi::heif_image_get_plane(g.img, ch, &mut stride);
        if plane.is_null() || (stride as usize) < h.width as usize * out_bands {
            return Err(Error::encode("avif", "libheif gave no image plane"));
        }
        let bands = h.bands as usize;
        for (y, row) in data.chunks_exact(h.row_samples()).enumerate() {
            let dst = std::slice::from_raw_parts_mut(
                plane.add(y * stride as usize),
                h.width as usize * out_bands,
            );
            for (d, s) in dst.chunks_exact_mut(out_bands).zip(row.chunks_exact(bands)) {
                match bands {
                    1 => d.copy_from_slice(&[s[0]; 3]),
                    2 => d.copy_from_slice(&[s[0], s[0], s[0], s[1]]),
                    _ => d.copy_from_slice(&s[..out_bands]),
                }
            }
        }
        if !opts.strip {
            if let Some(icc) = &h.meta.icc {
                let _ = ffi::heif_image_set_raw_color_profile(
                    g.img,
                    c"prof".as_ptr(),
                    icc.as_ptr().cast(),
                    icc.len(),
                );
            }
        }
        enc_err(ffi::heif_context_encode_image(
            g.ctx,
            g.img,
            g.enc,
            ptr::null(),
            &mut g.handle,
        ))?;
        if !opts.strip {
            if let Some(e) = &h.meta.exif {
                let e = exif::set_orientation(e, h.meta.orientation.clamp(1, 8));
                let _ = ffi::heif_context_add_exif_metadata(
                    g.ctx,
                    g.handle,
                    e.as_ptr().cast(),
                    e.len() as i32,
                );
            }
        }
        let mut out: Vec<u8> = Vec::new();
        let mut writer = ffi::heif_writer {
            writer_api_version: 1,
            write: Some(write_vec),
        };
        enc_err(ffi::heif_context_write(
            g.ctx,
            &mut writer,
            (&mut out as *mut Vec<u8>).cast(),
        ))?;
        drop(g);
        target.write_all(&out).map_err(Error::Write)?;
    }
    target.finish().map_err(Error::Write)
}

unsafe extern "C" fn write_vec(
    _ctx: *mut ffi::heif_context,
    data: *const libc::c_void,
    size: usize,
    userdata: *mut libc::c_void,
) -> ffi::heif_error {
    // SAFETY: `userdata` is the `Vec<u8>` passed to heif_context_write; `data` holds `size`
    // bytes.
    unsafe {
        let out = &mut *(userdata as *mut Vec<u8>);
        if out.try_reserve(size).is_err() {
            // libheif turns this into an encoder error; the render fails, the process lives.
            return ffi::heif_error {
                code: ffi::heif_error_code_heif_error_Memory_allocation_error,
                subcode: ffi::heif_suberror_code_heif_suberror_Unspecified,
                message: c"out of memory for the encoded HEIF file".as_ptr(),
            };
        }
        out.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), size));
    }
    ffi::heif_error {
        code: ffi::heif_error_code_heif_error_Ok,
        subcode: 0,
        message: c"ok".as_ptr(),
    }
}

// Photo formats come out as JPEG, as a camera roll's viewer expects.
static HEIC: About = About {
    name: "heic",
    title: "HEIC / HEIF",
    extensions: &["heic", "heif", "hif"],
    serve_as: Some(Format::Jpeg),
    notes: "libheif 1.15 (Debian bookworm's libheif1, with libde265), opened on first use (declared from its 1.15 header: no build-time libheif); whole image, primary image with its irot/imir/clap transforms, grid, alpha, 8-12 bit, ICC, EXIF, XMP; for a resize, the smallest embedded thumbnail larger than the target (as libvips' thumbnail; not with `exact`); thumbnails of plain 8-bit HEVC images and of grids of them (phones' tiled photos; no alpha or clap) decoded by libde265 directly on 2 threads (a grid: two tiles at a time) and box-shrunk in YCbCr before libheif's conversion to RGB (`exact`: libheif's whole-image decode)",
};

/// The HEIC codec (HEIF with HEVC).
pub struct Heic;

impl Codec for Heic {
    fn about(&self) -> &About {
        &HEIC
    }

    fn sniff(&self, head: &[u8]) -> bool {
        sniff_heic(head)
    }

    fn probe(&self, src: &mut Source, limits: &Limits) -> Result<Header> {
        probe(src, Kind::Heic, limits)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts, Kind::Heic)
    }
}

static AVIF: About = About {
    name: "avif",
    title: "AVIF",
    extensions: &["avif"],
    serve_as: Some(Format::Jpeg),
    notes: "libheif (with dav1d), as HEIC: transforms, grid, alpha, 8-12 bit, ICC, EXIF",
};

static AVIF_SAVER: Saver = Saver {
    token: "avif",
    aliases: &[],
    mime: "image/avif",
    accepts: &[SampleFormat::U8],
    options: &[QUALITY],
    limits: SaverLimits {
        max_side: 32_768,
        max_bytes: u64::MAX,
        why: "libheif reads no larger image",
    },
    fit: None,
    icc: true,
    save: save_avif,
    notes: "libheif with Debian's aom, speed 8, one thread (reproducible bytes), 8-bit 4:2:0, alpha, ICC, EXIF",
};

/// The AVIF codec (HEIF with AV1).
pub struct Avif;

impl Codec for Avif {
    fn about(&self) -> &About {
        &AVIF
    }

    fn sniff(&self, head: &[u8]) -> bool {
        sniff_avif(head)
    }

    fn probe(&self, src: &mut Source, limits: &Limits) -> Result<Header> {
        probe(src, Kind::Avif, limits)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts, Kind::Avif)
    }

    fn saver(&self) -> Option<&Saver> {
        Some(&AVIF_SAVER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compat: &[&[u8; 4]]) -> Vec<u8> {
        let mut v = ((16 + 4 * compat.len()) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(b"ftyp");
        v.extend_from_slice(major);
        v.extend_from_slice(&[0; 4]);
        for c in compat {
            v.extend_from_slice(*c);
        }
        v
    }

    #[test]
    fn brands_tell_heic_from_avif() {
        assert!(sniff_heic(&ftyp(b"heic", &[b"mif1", b"heic"])));
        assert!(sniff_avif(&ftyp(b"avif", &[b"mif1", b"miaf"])));
        assert!(sniff_avif(&ftyp(b"mif1", &[b"mif1", b"avif"])));
        assert!(!sniff_heic(&ftyp(b"mif1", &[b"mif1", b"avif"])));
        assert!(!sniff_heic(&ftyp(b"isom", &[b"mp41"])));
        assert!(!sniff_avif(b"\0\0\0\x08ftyp"));
    }
}
