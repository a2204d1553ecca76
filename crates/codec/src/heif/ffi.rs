//! libheif opened on first use (dlopen) instead of linked. Linked, its static constructor
//! runs libde265's table set-up in every process at start, most of a whole `thumbfs convert`
//! start-up (measured with callgrind), paid for every JPEG too. The types and
//! constants are our own (`sys.rs`, from libheif 1.15's header), so building needs no libheif
//! headers or pkg-config; only the functions used are looked up here, and nothing links
//! libheif.
//!
//! Every call runs inside a C++ frame that catches exceptions (`guard.cpp`): libheif lets some
//! escape its C API, and one reaching a Rust frame would abort the process. A call that threw
//! returns [`OnThrow::on_throw`] instead (an error, null, 0) and logs the function's name.

#![allow(non_snake_case)] // libheif's own names

pub use super::sys::*;

use std::sync::OnceLock;

/// The runtime library (Debian's libheif1; its development package links the same soname).
const LIB: &str = "libheif.so.1";

unsafe extern "C" {
    /// Runs `call(data)`; 0 when it returned, 1 when it threw a C++ exception (guard.cpp).
    fn thumbfs_heif_guard(
        call: unsafe extern "C-unwind" fn(*mut libc::c_void),
        data: *mut libc::c_void,
    ) -> libc::c_int;
}

/// What a libheif function returns in place of the C++ exception it threw.
pub trait OnThrow {
    /// The stand-in value: an error for `heif_error`, null, 0 or nothing.
    fn on_throw() -> Self;
}

impl OnThrow for heif_error {
    fn on_throw() -> Self {
        heif_error {
            code: heif_error_code_heif_error_Decoder_plugin_error,
            subcode: heif_suberror_code_heif_suberror_Unspecified,
            message: c"libheif failed with a C++ exception (caught)".as_ptr(),
        }
    }
}

impl OnThrow for () {
    fn on_throw() -> Self {}
}

impl OnThrow for libc::c_int {
    fn on_throw() -> Self {
        0
    }
}

impl OnThrow for usize {
    fn on_throw() -> Self {
        0
    }
}

impl<T> OnThrow for *mut T {
    fn on_throw() -> Self {
        std::ptr::null_mut()
    }
}

impl<T> OnThrow for *const T {
    fn on_throw() -> Self {
        std::ptr::null()
    }
}

/// Runs `call` (one libheif call) inside the C++ guard.
///
/// `call` must not panic: a Rust panic caught by C++ aborts as surely as the reverse.
pub(super) fn guarded<F: FnOnce() -> R, R: OnThrow>(name: &str, call: F) -> R {
    /// The C-unwind trampoline the guard calls: a C++ exception may unwind through it.
    unsafe extern "C-unwind" fn run<F: FnOnce() -> R, R>(data: *mut libc::c_void) {
        // SAFETY: `data` is `slot` below, alive and not otherwise borrowed during the call.
        let slot = unsafe { &mut *data.cast::<(Option<F>, Option<R>)>() };
        if let Some(call) = slot.0.take() {
            slot.1 = Some(call());
        }
    }
    let mut slot: (Option<F>, Option<R>) = (Some(call), None);
    // SAFETY: `run::<F, R>` reads `slot` with exactly this type.
    let threw = unsafe { thumbfs_heif_guard(run::<F, R>, (&raw mut slot).cast()) };
    match slot.1 {
        Some(value) if threw == 0 => value,
        _ => {
            // `name` says the library: heif_* (libheif) or de265_* (libde265, `de265.rs`).
            tracing::warn!("{name} threw a C++ exception; treated as a failure");
            R::on_throw()
        }
    }
}

/// Declares the functions: a table of pointers filled by `open`, and a wrapper per function
/// with libheif's C signature (from heif.h 1.15) that runs the call inside the guard.
macro_rules! api {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        /// Pointers to libheif's functions; C-unwind, as C++ exceptions may leave them.
        struct Api {
            $($name: unsafe extern "C-unwind" fn($($ty),*) $(-> $ret)?,)*
        }

        fn open() -> Result<Api, String> {
            // SAFETY: loading runs libheif's constructors (its plugin registration), which is
            // what linking it did; each symbol gets the type heif.h (1.15) declares for it.
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
            /// libheif's function of this name (see its header), guarded.
            ///
            /// # Safety
            /// As for the C function; [`load`] must have succeeded.
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                // Looked up outside the guard: `api()` may panic.
                let f = api().$name;
                // SAFETY: the caller upholds the C function's contract.
                guarded(stringify!($name), move || unsafe { f($($arg),*) })
            }
        )*
    };
}

api! {
    fn heif_context_add_exif_metadata(
        arg1: *mut heif_context,
        image_handle: *const heif_image_handle,
        data: *const libc::c_void,
        size: libc::c_int,
    ) -> heif_error;
    fn heif_context_alloc() -> *mut heif_context;
    fn heif_context_encode_image(
        arg1: *mut heif_context,
        image: *const heif_image,
        encoder: *mut heif_encoder,
        options: *const heif_encoding_options,
        out_image_handle: *mut *mut heif_image_handle,
    ) -> heif_error;
    fn heif_context_free(arg1: *mut heif_context);
    fn heif_context_get_encoder_for_format(
        context: *mut heif_context,
        format: heif_compression_format,
        arg1: *mut *mut heif_encoder,
    ) -> heif_error;
    fn heif_context_get_primary_image_handle(
        ctx: *mut heif_context,
        arg1: *mut *mut heif_image_handle,
    ) -> heif_error;
    fn heif_context_read_from_memory_without_copy(
        arg1: *mut heif_context,
        mem: *const libc::c_void,
        size: usize,
        arg2: *const heif_reading_options,
    ) -> heif_error;
    fn heif_context_set_maximum_image_size_limit(
        ctx: *mut heif_context,
        maximum_width: libc::c_int,
    );
    fn heif_context_write(
        arg1: *mut heif_context,
        writer: *mut heif_writer,
        userdata: *mut libc::c_void,
    ) -> heif_error;
    fn heif_decode_image(
        in_handle: *const heif_image_handle,
        out_img: *mut *mut heif_image,
        colorspace: heif_colorspace,
        chroma: heif_chroma,
        options: *const heif_decoding_options,
    ) -> heif_error;
    fn heif_encoder_release(arg1: *mut heif_encoder);
    fn heif_encoder_set_lossy_quality(arg1: *mut heif_encoder, quality: libc::c_int) -> heif_error;
    fn heif_encoder_set_parameter_integer(
        arg1: *mut heif_encoder,
        parameter_name: *const libc::c_char,
        value: libc::c_int,
    ) -> heif_error;
    fn heif_encoder_set_parameter_string(
        arg1: *mut heif_encoder,
        parameter_name: *const libc::c_char,
        value: *const libc::c_char,
    ) -> heif_error;
    fn heif_image_add_plane(
        image: *mut heif_image,
        channel: heif_channel,
        width: libc::c_int,
        height: libc::c_int,
        bit_depth: libc::c_int,
    ) -> heif_error;
    fn heif_image_create(
        width: libc::c_int,
        height: libc::c_int,
        colorspace: heif_colorspace,
        chroma: heif_chroma,
        out_image: *mut *mut heif_image,
    ) -> heif_error;
    fn heif_image_get_bits_per_pixel_range(
        arg1: *const heif_image,
        channel: heif_channel,
    ) -> libc::c_int;
    fn heif_image_get_height(arg1: *const heif_image, channel: heif_channel) -> libc::c_int;
    fn heif_image_get_plane(
        arg1: *mut heif_image,
        channel: heif_channel,
        out_stride: *mut libc::c_int,
    ) -> *mut u8;
    fn heif_image_get_plane_readonly(
        arg1: *const heif_image,
        channel: heif_channel,
        out_stride: *mut libc::c_int,
    ) -> *const u8;
    fn heif_image_get_width(arg1: *const heif_image, channel: heif_channel) -> libc::c_int;
    fn heif_image_handle_get_height(handle: *const heif_image_handle) -> libc::c_int;
    fn heif_image_handle_get_list_of_metadata_block_IDs(
        handle: *const heif_image_handle,
        type_filter: *const libc::c_char,
        ids: *mut heif_item_id,
        count: libc::c_int,
    ) -> libc::c_int;
    fn heif_image_handle_get_list_of_thumbnail_IDs(
        handle: *const heif_image_handle,
        ids: *mut heif_item_id,
        count: libc::c_int,
    ) -> libc::c_int;
    fn heif_image_handle_get_luma_bits_per_pixel(arg1: *const heif_image_handle) -> libc::c_int;
    fn heif_image_handle_get_metadata(
        handle: *const heif_image_handle,
        metadata_id: heif_item_id,
        out_data: *mut libc::c_void,
    ) -> heif_error;
    fn heif_image_handle_get_metadata_size(
        handle: *const heif_image_handle,
        metadata_id: heif_item_id,
    ) -> usize;
    fn heif_image_handle_get_number_of_thumbnails(handle: *const heif_image_handle) -> libc::c_int;
    fn heif_image_handle_get_raw_color_profile(
        handle: *const heif_image_handle,
        out_data: *mut libc::c_void,
    ) -> heif_error;
    fn heif_image_handle_get_raw_color_profile_size(handle: *const heif_image_handle) -> usize;
    fn heif_image_handle_get_thumbnail(
        main_image_handle: *const heif_image_handle,
        thumbnail_id: heif_item_id,
        out_thumbnail_handle: *mut *mut heif_image_handle,
    ) -> heif_error;
    fn heif_image_handle_get_width(handle: *const heif_image_handle) -> libc::c_int;
    fn heif_image_handle_has_alpha_channel(arg1: *const heif_image_handle) -> libc::c_int;
    fn heif_image_handle_release(arg1: *const heif_image_handle);
    fn heif_image_release(arg1: *const heif_image);
    fn heif_image_set_raw_color_profile(
        image: *mut heif_image,
        profile_type_fourcc_string: *const libc::c_char,
        profile_data: *const libc::c_void,
        profile_size: usize,
    ) -> heif_error;
    fn heif_init(arg1: *mut heif_init_params) -> heif_error;
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// Opens libheif once; the error says why it could not be (missing library or symbol).
pub fn load() -> Result<(), String> {
    API.get_or_init(open)
        .as_ref()
        .map(|_| ())
        .map_err(Clone::clone)
}

fn api() -> &'static Api {
    match API.get() {
        Some(Ok(api)) => api,
        _ => panic!("libheif used before heif::ffi::load succeeded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C-unwind" {
        /// Throws a std::runtime_error (guard.cpp).
        fn thumbfs_heif_guard_test_throw(data: *mut libc::c_void);
    }

    #[test]
    fn a_cpp_exception_stops_at_the_guard() {
        // Through a C-unwind function and the Rust trampoline, as a libheif call would.
        let throws = thumbfs_heif_guard_test_throw;
        let e: heif_error = guarded("test", move || {
            // SAFETY: takes no data.
            unsafe { throws(std::ptr::null_mut()) };
            heif_error {
                code: heif_error_code_heif_error_Ok,
                subcode: 0,
                message: std::ptr::null(),
            }
        });
        assert_eq!(e.code, heif_error_code_heif_error_Decoder_plugin_error);
        let p: *mut u8 = guarded("test", move || {
            // SAFETY: as above.
            unsafe { throws(std::ptr::null_mut()) };
            std::ptr::NonNull::dangling().as_ptr()
        });
        assert!(p.is_null());
        // Calls that return pass their value through.
        assert_eq!(guarded("test", || 7 as libc::c_int), 7);
    }
}
