//! libde265, the HEVC decoder libheif 1.15 uses, opened on first use (dlopen of the same
//! `libde265.so.0` libheif links, so one copy is loaded) for the direct thumbnail path
//! (`direct.rs`). libheif's plugin starts one worker thread and hands back only RGB
//! (converted in float, whole image); calling libde265 directly lets a thumbnail decode on
//! two threads (x265 writes WPP streams, whose CTU rows decode in parallel) and read the
//! YCbCr planes in place.
//!
//! The declarations are our own, from libde265 1.0.11's `de265.h` (Debian bookworm), so
//! building needs no libde265 headers. Every call runs inside the C++ exception guard that
//! libheif's calls use (`ffi::guarded`): libde265 is C++ and a `new` may throw.
//!
//! [`Decoder`] owns a decoder context and frees it (joining its threads) on every path;
//! [`Picture`] borrows the decoder's next output picture and releases it on drop.

#![allow(non_camel_case_types, non_snake_case)] // libde265's own names

use std::sync::OnceLock;

use super::ffi::{guarded, OnThrow};

/// The runtime library (Debian's libde265-0), the one libheif1 links.
const LIB: &str = "libde265.so.0";

/// Worker threads per decoder (libheif's plugin starts one): two, the cores of the machine
/// this was measured on; more would compete with the other renders of a mount.
pub const THREADS: libc::c_int = 2;

/// `de265_error` (a C enum: `int` in the ABI), wrapped so that a caught C++ exception has a
/// value of its own rather than `DE265_OK` (0).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct de265_error(pub libc::c_int);

/// `DE265_OK`.
pub const DE265_OK: de265_error = de265_error(0);

/// Stands for a C++ exception caught by the guard (libde265 has no such code).
const THREW: de265_error = de265_error(-1);

impl OnThrow for de265_error {
    fn on_throw() -> Self {
        THREW
    }
}

/// `de265_decoder_context` (a `void` in the header).
pub type de265_decoder_context = libc::c_void;

/// `struct de265_image`: opaque, owned by the decoder.
#[repr(C)]
pub struct de265_image {
    _data: [u8; 0],
}

/// `enum de265_chroma` (0, monochrome, is refused from `hvcC` before decoding).
pub mod chroma {
    /// `de265_chroma_420`.
    pub const C420: libc::c_int = 1;
    /// `de265_chroma_422`.
    pub const C422: libc::c_int = 2;
    /// `de265_chroma_444`.
    pub const C444: libc::c_int = 3;
}

/// Declares the functions (as `ffi.rs` does for libheif): a pointer table filled by `open`
/// and a guarded wrapper per function with libde265's C signature.
macro_rules! api {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;)*) => {
        /// Pointers to libde265's functions; C-unwind, as C++ exceptions may leave them.
        struct Api {
            $($name: unsafe extern "C-unwind" fn($($ty),*) -> $ret,)*
        }

        fn open() -> Result<Api, String> {
            // SAFETY: loading libde265 runs only its C++ static constructors; each symbol
            // gets the type de265.h (1.0.11) declares for it.
            unsafe {
                let lib = libloading::Library::new(LIB).map_err(|e| e.to_string())?;
                let api = Api {
                    $($name: *lib
                        .get(concat!(stringify!($name), "\0").as_bytes())
                        .map_err(|e| e.to_string())?,)*
                };
                // Never unloaded: the pointers must stay valid for the process.
                std::mem::forget(lib);
                Ok(api)
            }
        }

        $(
            /// libde265's function of this name (see de265.h), guarded.
            ///
            /// # Safety
            /// As for the C function; [`load`] must have succeeded.
            unsafe fn $name($($arg: $ty),*) -> $ret {
                let f = api().$name;
                // SAFETY: the caller upholds the C function's contract.
                guarded(stringify!($name), move || unsafe { f($($arg),*) })
            }
        )*
    };
}

api! {
    fn de265_new_decoder() -> *mut de265_decoder_context;
    fn de265_start_worker_threads(ctx: *mut de265_decoder_context, n: libc::c_int) -> de265_error;
    fn de265_free_decoder(ctx: *mut de265_decoder_context) -> de265_error;
    fn de265_push_NAL(
        ctx: *mut de265_decoder_context,
        data: *const libc::c_void,
        length: libc::c_int,
        pts: i64,
        user_data: *mut libc::c_void,
    ) -> de265_error;
    fn de265_flush_data(ctx: *mut de265_decoder_context) -> de265_error;
    fn de265_decode(ctx: *mut de265_decoder_context, more: *mut libc::c_int) -> de265_error;
    fn de265_get_next_picture(ctx: *mut de265_decoder_context) -> *const de265_image;
    fn de265_release_next_picture(ctx: *mut de265_decoder_context) -> ();
    fn de265_get_image_width(img: *const de265_image, channel: libc::c_int) -> libc::c_int;
    fn de265_get_image_height(img: *const de265_image, channel: libc::c_int) -> libc::c_int;
    fn de265_get_chroma_format(img: *const de265_image) -> libc::c_int;
    fn de265_get_bits_per_pixel(img: *const de265_image, channel: libc::c_int) -> libc::c_int;
    fn de265_get_image_plane(
        img: *const de265_image,
        channel: libc::c_int,
        out_stride: *mut libc::c_int,
    ) -> *const u8;
    fn de265_get_image_full_range_flag(img: *const de265_image) -> libc::c_int;
    fn de265_get_image_matrix_coefficients(img: *const de265_image) -> libc::c_int;
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// Opens libde265 once; the error says why it could not be.
pub fn load() -> Result<(), String> {
    API.get_or_init(open)
        .as_ref()
        .map(|_| ())
        .map_err(Clone::clone)
}

fn api() -> &'static Api {
    match API.get() {
        Some(Ok(api)) => api,
        // Unreachable: `Decoder::new` is the only way in and loads first.
        _ => panic!("libde265 used before heif::de265::load succeeded"),
    }
}

/// A decoder context with its worker threads, freed on drop.
pub struct Decoder(*mut de265_decoder_context);

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: created by de265_new_decoder, freed once; no picture outlives `self`
        // (`Picture` borrows it).
        unsafe {
            let _ = de265_free_decoder(self.0);
        }
    }
}

impl Decoder {
    /// A new decoder running `threads` worker threads.
    pub fn new(threads: libc::c_int) -> Result<Decoder, String> {
        load().map_err(|e| format!("libde265 could not be opened: {e}"))?;
        // SAFETY: plain constructor, checked for null.
        let ctx = unsafe { de265_new_decoder() };
        if ctx.is_null() {
            return Err("libde265: no decoder".into());
        }
        let dec = Decoder(ctx);
        // SAFETY: live context.
        let e = unsafe { de265_start_worker_threads(dec.0, threads) };
        if e != DE265_OK {
            return Err(format!("libde265: worker threads not started ({})", e.0));
        }
        Ok(dec)
    }

    /// Queues one NAL unit (without length prefix or start code).
    pub fn push_nal(&mut self, nal: &[u8]) -> Result<(), String> {
        let len = libc::c_int::try_from(nal.len()).map_err(|_| "NAL unit too large")?;
        // SAFETY: libde265 copies the bytes before returning.
        let e =
            unsafe { de265_push_NAL(self.0, nal.as_ptr().cast(), len, 0, std::ptr::null_mut()) };
        if e != DE265_OK {
            return Err(format!("libde265 refused a NAL unit ({})", e.0));
        }
        Ok(())
    }

    /// Marks the end of the input (all queued NAL units are decoded).
    pub fn flush(&mut self) -> Result<(), String> {
        // SAFETY: live context.
        let e = unsafe { de265_flush_data(self.0) };
        if e != DE265_OK {
            return Err(format!("libde265: flush failed ({})", e.0));
        }
        Ok(())
    }

    /// One decoding step: whether to call again, or the error that stopped decoding.
    pub fn decode(&mut self) -> Result<bool, de265_error> {
        let mut more: libc::c_int = 0;
        // SAFETY: live context; `more` is written before return.
        let e = unsafe { de265_decode(self.0, &mut more) };
        if e != DE265_OK {
            return Err(e);
        }
        Ok(more != 0)
    }

    /// The next decoded picture, if one is ready; released when the `Picture` drops.
    pub fn next_picture(&mut self) -> Option<Picture<'_>> {
        // SAFETY: live context; the picture stays valid until released.
        let img = unsafe { de265_get_next_picture(self.0) };
        (!img.is_null()).then_some(Picture { dec: self, img })
    }
}

/// A decoded picture, valid until it is released (on drop).
pub struct Picture<'a> {
    dec: &'a mut Decoder,
    img: *const de265_image,
}

impl Drop for Picture<'_> {
    fn drop(&mut self) {
        // SAFETY: `img` is the decoder's next picture, released once.
        unsafe { de265_release_next_picture(self.dec.0) }
    }
}

/// One plane of a picture: `height` rows of `width` samples, `stride` bytes apart.
pub struct Plane<'a> {
    /// Samples per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// `stride * (height - 1) + width` bytes.
    pub data: &'a [u8],
}

impl Plane<'_> {
    /// Row `y` (`y < height`).
    pub fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.stride..y * self.stride + self.width]
    }
}

impl Picture<'_> {
    /// `enum de265_chroma` of the picture.
    pub fn chroma(&self) -> libc::c_int {
        // SAFETY: live picture.
        unsafe { de265_get_chroma_format(self.img) }
    }

    /// Bits per sample of `channel` (0 luma, 1 Cb, 2 Cr).
    pub fn bits(&self, channel: libc::c_int) -> libc::c_int {
        // SAFETY: live picture; channels 0..=2 exist.
        unsafe { de265_get_bits_per_pixel(self.img, channel) }
    }

    /// The VUI's matrix coefficients and full-range flag, as libheif's plugin reads them
    /// (2, unspecified, and limited range without a VUI).
    pub fn colour(&self) -> (libc::c_int, bool) {
        // SAFETY: live picture.
        unsafe {
            (
                de265_get_image_matrix_coefficients(self.img),
                de265_get_image_full_range_flag(self.img) != 0,
            )
        }
    }

    /// An 8-bit plane (conformance window applied, as libde265 hands it to libheif), or
    /// `None` if libde265 gives none or the sizes make no sense.
    pub fn plane(&self, channel: libc::c_int) -> Option<Plane<'_>> {
        let mut stride: libc::c_int = 0;
        // SAFETY: live picture; the plane holds `stride * height` bytes (the confwin pointer
        // stays inside the allocated plane for `height` rows of `width` samples).
        unsafe {
            let w = de265_get_image_width(self.img, channel);
            let h = de265_get_image_height(self.img, channel);
            let p = de265_get_image_plane(self.img, channel, &mut stride);
            if p.is_null() || w <= 0 || h <= 0 || stride < w {
                return None;
            }
            let (w, h, stride) = (w as usize, h as usize, stride as usize);
            let len = stride.checked_mul(h - 1)?.checked_add(w)?;
            Some(Plane {
                width: w,
                height: h,
                stride,
                data: std::slice::from_raw_parts(p, len),
            })
        }
    }
}
