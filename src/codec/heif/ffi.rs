//! libheif opened on first use (dlopen) instead of linked. Linked, its static constructor
//! runs libde265's table set-up in every process at start: 24.7 M instructions, 80 % of a
//! whole `thumbfs convert` start-up, paid for every JPEG too (callgrind). The types and
//! constants are libheif-sys' as they are; only the functions used are looked up here, so the
//! linker (`--as-needed`) leaves libheif out of the binary's needed libraries.

#![allow(non_snake_case)] // libheif's own names

pub use libheif_sys::*;

use std::sync::OnceLock;

/// The runtime library (Debian's libheif1; its development package links the same soname).
const LIB: &str = "libheif.so.1";

/// Declares the functions: a table of pointers filled by `open`, and a wrapper per function
/// with libheif-sys' signature (local items shadow the glob import's extern ones).
macro_rules! api {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        /// Pointers to libheif's functions.
        struct Api {
            $($name: unsafe extern "C" fn($($ty),*) $(-> $ret)?,)*
        }

        fn open() -> Result<Api, String> {
            // SAFETY: loading runs libheif's constructors (its plugin registration), which is
            // what linking it did; each symbol gets the type libheif-sys declares for it.
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
            /// libheif's function of this name (see its header).
            ///
            /// # Safety
            /// As for the C function; [`load`] must have succeeded.
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: the caller upholds the C function's contract.
                unsafe { (api().$name)($($arg),*) }
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
