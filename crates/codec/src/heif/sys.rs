//! libheif's C declarations that thumbfs uses, written from libheif 1.15.1's public header
//! (`libheif/heif.h`, Debian bookworm's libheif-dev) in bindgen's naming (`enum heif_chroma`'s
//! `heif_chroma_interleaved_RGB` is `heif_chroma_heif_chroma_interleaved_RGB`), so that building
//! needs neither libheif's headers nor pkg-config: the library is opened only at run time.
//!
//! Only what the code names is declared. Handles and option structs are opaque: thumbfs
//! passes them as pointers and reads no field.
//!
//! SAFETY: the versioned option structs (`heif_reading_options`, `heif_decoding_options`,
//! `heif_encoding_options`, `heif_init_params`) grow with libheif's versions, so thumbfs never
//! allocates one (nor builds one on the stack): it passes null (libheif's defaults), and any
//! future use must take them from libheif's own `*_alloc` functions.

#![allow(non_camel_case_types, non_upper_case_globals)] // libheif's own names

use std::marker::{PhantomData, PhantomPinned};

/// Declares opaque C types: never built or moved by Rust, only pointed to.
macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            pub struct $name {
                _data: [u8; 0],
                // Not Send, Sync or Unpin: libheif owns it.
                _marker: PhantomData<(*mut u8, PhantomPinned)>,
            }
        )*
    };
}

opaque! {
    /// `struct heif_context`: a file being read or written.
    heif_context;
    /// `struct heif_image_handle`: an image of a file, not yet decoded.
    heif_image_handle;
    /// `struct heif_image`: decoded (or to-be-encoded) planes.
    heif_image;
    /// `struct heif_encoder`: an encoder plugin instance.
    heif_encoder;
    /// `struct heif_reading_options` (versioned; only ever null here).
    heif_reading_options;
    /// `struct heif_decoding_options` (versioned; only ever null here).
    heif_decoding_options;
    /// `struct heif_encoding_options` (versioned; only ever null here).
    heif_encoding_options;
    /// `struct heif_init_params` (versioned; only ever null here).
    heif_init_params;
}

/// `typedef uint32_t heif_item_id`.
pub type heif_item_id = u32;

/// `enum heif_error_code` (C enums with no negative value are `unsigned int` in the ABI).
pub type heif_error_code = libc::c_uint;
/// `heif_error_Ok`.
pub const heif_error_code_heif_error_Ok: heif_error_code = 0;
/// `heif_error_Memory_allocation_error`.
pub const heif_error_code_heif_error_Memory_allocation_error: heif_error_code = 6;
/// `heif_error_Decoder_plugin_error`.
pub const heif_error_code_heif_error_Decoder_plugin_error: heif_error_code = 7;

/// `enum heif_suberror_code`.
pub type heif_suberror_code = libc::c_uint;
/// `heif_suberror_Unspecified`.
pub const heif_suberror_code_heif_suberror_Unspecified: heif_suberror_code = 0;

/// `struct heif_error`, returned by value by most functions.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct heif_error {
    /// Main category; `heif_error_Ok` for success.
    pub code: heif_error_code,
    /// Detail.
    pub subcode: heif_suberror_code,
    /// Never null from libheif; static or owned by the context.
    pub message: *const libc::c_char,
}

/// `enum heif_compression_format`.
pub type heif_compression_format = libc::c_uint;
/// `heif_compression_AV1`.
pub const heif_compression_format_heif_compression_AV1: heif_compression_format = 4;

/// `enum heif_chroma`.
pub type heif_chroma = libc::c_uint;
/// `heif_chroma_interleaved_RGB`: 8-bit RGB.
pub const heif_chroma_heif_chroma_interleaved_RGB: heif_chroma = 10;
/// `heif_chroma_interleaved_RGBA`: 8-bit RGBA.
pub const heif_chroma_heif_chroma_interleaved_RGBA: heif_chroma = 11;
/// `heif_chroma_interleaved_RRGGBB_LE`: 16-bit little-endian RGB.
pub const heif_chroma_heif_chroma_interleaved_RRGGBB_LE: heif_chroma = 14;
/// `heif_chroma_interleaved_RRGGBBAA_LE`: 16-bit little-endian RGBA.
pub const heif_chroma_heif_chroma_interleaved_RRGGBBAA_LE: heif_chroma = 15;

/// `enum heif_colorspace`.
pub type heif_colorspace = libc::c_uint;
/// `heif_colorspace_RGB`.
pub const heif_colorspace_heif_colorspace_RGB: heif_colorspace = 1;

/// `enum heif_channel`.
pub type heif_channel = libc::c_uint;
/// `heif_channel_interleaved`: the single plane of an interleaved image.
pub const heif_channel_heif_channel_interleaved: heif_channel = 10;

/// `struct heif_writer` (version 1), built by thumbfs: its layout is fixed by
/// `writer_api_version`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct heif_writer {
    /// The version of this struct: 1.
    pub writer_api_version: libc::c_int,
    /// Called with the encoded file's bytes.
    pub write: Option<
        unsafe extern "C" fn(
            ctx: *mut heif_context,
            data: *const libc::c_void,
            size: usize,
            userdata: *mut libc::c_void,
        ) -> heif_error,
    >,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_header() {
        // As bindgen measured them from heif.h on LP64 (x86_64, aarch64).
        assert_eq!(std::mem::size_of::<heif_error>(), 16);
        assert_eq!(std::mem::offset_of!(heif_error, message), 8);
        assert_eq!(std::mem::size_of::<heif_writer>(), 16);
        assert_eq!(std::mem::offset_of!(heif_writer, write), 8);
    }
}
