//! FFmpeg 5.x (Debian bookworm: libavformat59, libavcodec59, libavutil57, libswscale6) opened
//! on first use (dlopen), as libheif is: building needs no FFmpeg headers, pkg-config or
//! libclang, and a machine without FFmpeg only loses video.
//!
//! The libraries are opened by their full soname (`libavformat.so.59`...): FFmpeg keeps the
//! layout of its public structs fixed within one major version and changes it between them
//! (6.1 put an `AVClass` first in `AVStream` and stream groups into `AVFormatContext`; 7.0
//! moved stream side data into `AVCodecParameters`), so the field offsets below hold for
//! exactly these sonames. They were printed with `offsetof` against FFmpeg 5.1's headers
//! (Debian's libav*-dev 7:5.1.x). Another major version needs its own table here.

#![allow(non_camel_case_types, non_snake_case)] // FFmpeg's own names

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::OnceLock;

/// The sonames, in load order (each library needs the ones before it).
const LIBS: [&str; 4] = [
    "libavutil.so.57",
    "libswscale.so.6",
    "libavcodec.so.59",
    "libavformat.so.59",
];

/// Opaque FFmpeg objects: only ever behind pointers FFmpeg allocated.
pub type AVFormatContext = c_void;
/// See [`AVFormatContext`].
pub type AVStream = c_void;
/// See [`AVFormatContext`].
pub type AVCodecParameters = c_void;
/// See [`AVFormatContext`].
pub type AVCodecContext = c_void;
/// See [`AVFormatContext`].
pub type AVCodec = c_void;
/// See [`AVFormatContext`].
pub type AVPacket = c_void;
/// See [`AVFormatContext`].
pub type AVFrame = c_void;
/// See [`AVFormatContext`].
pub type AVIOContext = c_void;
/// See [`AVFormatContext`].
pub type AVDictionary = c_void;
/// See [`AVFormatContext`].
pub type SwsContext = c_void;
/// See [`AVFormatContext`].
pub type AVPixFmtDescriptor = c_void;

/// Byte offsets of the fields read or written (FFmpeg 5.1, x86-64 and aarch64 alike: LP64,
/// natural alignment).
pub mod off {
    /// `AVFormatContext.pb`.
    pub const FMT_PB: usize = 32;
    /// `AVFormatContext.nb_streams` (unsigned int).
    pub const FMT_NB_STREAMS: usize = 44;
    /// `AVFormatContext.streams` (AVStream **).
    pub const FMT_STREAMS: usize = 48;
    /// `AVFormatContext.duration` (int64, AV_TIME_BASE units).
    pub const FMT_DURATION: usize = 72;
    /// `AVStream.time_base` (AVRational: two ints).
    pub const ST_TIME_BASE: usize = 16;
    /// `AVStream.start_time` (int64).
    pub const ST_START_TIME: usize = 24;
    /// `AVStream.duration` (int64).
    pub const ST_DURATION: usize = 32;
    /// `AVStream.discard` (enum AVDiscard).
    pub const ST_DISCARD: usize = 52;
    /// `AVStream.codecpar`.
    pub const ST_CODECPAR: usize = 208;
    /// `AVCodecParameters.width` (int).
    pub const PAR_WIDTH: usize = 56;
    /// `AVCodecParameters.height` (int).
    pub const PAR_HEIGHT: usize = 60;
    /// `AVPacket.stream_index` (int).
    pub const PKT_STREAM_INDEX: usize = 36;
    /// `AVFrame.data` (uint8_t *[8]).
    pub const FRAME_DATA: usize = 0;
    /// `AVFrame.linesize` (int[8]).
    pub const FRAME_LINESIZE: usize = 64;
    /// `AVFrame.width` (int).
    pub const FRAME_WIDTH: usize = 104;
    /// `AVFrame.height` (int).
    pub const FRAME_HEIGHT: usize = 108;
    /// `AVFrame.format` (int, enum AVPixelFormat).
    pub const FRAME_FORMAT: usize = 116;
    /// `AVFrame.pts` (int64).
    pub const FRAME_PTS: usize = 136;
    /// `AVFrame.color_range` (enum AVColorRange).
    pub const FRAME_COLOR_RANGE: usize = 320;
    /// `AVFrame.colorspace` (enum AVColorSpace).
    pub const FRAME_COLORSPACE: usize = 332;
    /// `AVFrame.best_effort_timestamp` (int64).
    pub const FRAME_BEST_EFFORT_TS: usize = 344;
    /// `AVIOContext.buffer` (unsigned char *), which FFmpeg may replace.
    pub const AVIO_BUFFER: usize = 8;
    /// `AVPixFmtDescriptor.flags` (uint64).
    pub const DESC_FLAGS: usize = 16;
    /// `AVPixFmtDescriptor.comp[0].depth` (int).
    pub const DESC_COMP0_DEPTH: usize = 24 + 16;
}

/// Reads a field of type `T` at byte offset `at` of an FFmpeg struct.
///
/// # Safety
/// `p` points to a live struct of the layout [`off`] describes, with a `T` at `at`.
pub unsafe fn get<T: Copy>(p: *const c_void, at: usize) -> T {
    // SAFETY: the caller vouches for the struct and the field.
    unsafe { p.cast::<u8>().add(at).cast::<T>().read_unaligned() }
}

/// Writes a field of type `T` at byte offset `at` of an FFmpeg struct.
///
/// # Safety
/// As for [`get`], and the struct is ours to change.
pub unsafe fn set<T: Copy>(p: *mut c_void, at: usize, value: T) {
    // SAFETY: the caller vouches for the struct and the field.
    unsafe { p.cast::<u8>().add(at).cast::<T>().write_unaligned(value) }
}

/// `AVMEDIA_TYPE_VIDEO`.
pub const AVMEDIA_TYPE_VIDEO: c_int = 0;
/// `AVDISCARD_ALL`: the demuxer drops the stream's packets.
pub const AVDISCARD_ALL: c_int = 48;
/// `AV_PKT_DATA_DISPLAYMATRIX`.
pub const AV_PKT_DATA_DISPLAYMATRIX: c_int = 5;
/// `AV_PIX_FMT_RGB24`.
pub const AV_PIX_FMT_RGB24: c_int = 2;
/// `AV_PIX_FMT_FLAG_HWACCEL`.
pub const AV_PIX_FMT_FLAG_HWACCEL: u64 = 1 << 3;
/// `AVERROR_EOF`.
pub const AVERROR_EOF: c_int = -541_478_725;
/// `AVERROR(EAGAIN)`.
pub const AVERROR_EAGAIN: c_int = -libc::EAGAIN;
/// `AV_NOPTS_VALUE`.
pub const AV_NOPTS_VALUE: i64 = i64::MIN;
/// `AV_TIME_BASE`: microseconds.
pub const AV_TIME_BASE: i64 = 1_000_000;
/// `AVSEEK_SIZE`: the seek callback is asked for the size.
pub const AVSEEK_SIZE: c_int = 0x10000;
/// `AVSEEK_FORCE`, or-ed into `whence`.
pub const AVSEEK_FORCE: c_int = 0x20000;
/// `AVSEEK_FLAG_BACKWARD`.
pub const AVSEEK_FLAG_BACKWARD: c_int = 1;
/// `AVCOL_RANGE_JPEG` (full range).
pub const AVCOL_RANGE_JPEG: c_int = 2;
/// `AV_LOG_QUIET`.
pub const AV_LOG_QUIET: c_int = -8;
/// `SWS_BICUBIC`.
pub const SWS_BICUBIC: c_int = 4;
/// `SWS_ACCURATE_RND`.
pub const SWS_ACCURATE_RND: c_int = 0x40000;
/// `SWS_FULL_CHR_H_INT`.
pub const SWS_FULL_CHR_H_INT: c_int = 0x2000;
/// `SWS_FULL_CHR_H_INP`.
pub const SWS_FULL_CHR_H_INP: c_int = 0x4000;
/// `SWS_CS_DEFAULT` (BT.601).
pub const SWS_CS_DEFAULT: c_int = 5;

/// `read_packet` of `avio_alloc_context`.
pub type ReadPacket = unsafe extern "C" fn(*mut c_void, *mut u8, c_int) -> c_int;
/// `seek` of `avio_alloc_context`.
pub type Seek = unsafe extern "C" fn(*mut c_void, i64, c_int) -> i64;
/// `write_packet` of `avio_alloc_context` (never given: read-only).
pub type WritePacket = unsafe extern "C" fn(*mut c_void, *mut u8, c_int) -> c_int;

/// Declares the functions: a table of pointers filled by `open`, and a wrapper per function
/// with its C signature from FFmpeg 5.1's headers.
macro_rules! api {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        struct Api {
            $($name: unsafe extern "C" fn($($ty),*) $(-> $ret)?,)*
        }

        fn open() -> Result<Api, String> {
            // SAFETY: loading runs the libraries' constructors, which linking them would;
            // each symbol gets the type FFmpeg 5.1's headers declare for it.
            unsafe {
                let mut libs = Vec::new();
                for name in LIBS {
                    libs.push(libloading::Library::new(name).map_err(|e| e.to_string())?);
                }
                let api = Api {
                    $($name: find(&libs, concat!(stringify!($name), "\0"))?,)*
                };
                // Never unloaded: the pointers must stay valid for the process.
                std::mem::forget(libs);
                Ok(api)
            }
        }

        $(
            /// FFmpeg's function of this name (see its header).
            ///
            /// # Safety
            /// As for the C function; [`load`] must have succeeded.
            // Some are only called through the table, before `load` has returned.
            #[allow(clippy::too_many_arguments, dead_code)]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: the caller upholds the C function's contract.
                unsafe { (api().$name)($($arg),*) }
            }
        )*
    };
}

api! {
    fn avutil_version() -> c_uint;
    fn av_log_set_level(level: c_int);
    fn av_malloc(size: usize) -> *mut c_void;
    fn av_freep(ptr: *mut c_void);
    fn av_strerror(errnum: c_int, errbuf: *mut c_char, errbuf_size: usize) -> c_int;
    fn av_dict_set(
        pm: *mut *mut AVDictionary,
        key: *const c_char,
        value: *const c_char,
        flags: c_int,
    ) -> c_int;
    fn av_dict_free(m: *mut *mut AVDictionary);
    fn av_frame_alloc() -> *mut AVFrame;
    fn av_frame_free(frame: *mut *mut AVFrame);
    fn av_display_rotation_get(matrix: *const i32) -> f64;
    fn av_pix_fmt_desc_get(pix_fmt: c_int) -> *const AVPixFmtDescriptor;
    fn sws_getContext(
        src_w: c_int,
        src_h: c_int,
        src_format: c_int,
        dst_w: c_int,
        dst_h: c_int,
        dst_format: c_int,
        flags: c_int,
        src_filter: *mut c_void,
        dst_filter: *mut c_void,
        param: *const f64,
    ) -> *mut SwsContext;
    fn sws_setColorspaceDetails(
        c: *mut SwsContext,
        inv_table: *const c_int,
        src_range: c_int,
        table: *const c_int,
        dst_range: c_int,
        brightness: c_int,
        contrast: c_int,
        saturation: c_int,
    ) -> c_int;
    fn sws_getCoefficients(colorspace: c_int) -> *const c_int;
    fn sws_scale(
        c: *mut SwsContext,
        src_slice: *const *const u8,
        src_stride: *const c_int,
        src_slice_y: c_int,
        src_slice_h: c_int,
        dst: *const *mut u8,
        dst_stride: *const c_int,
    ) -> c_int;
    fn sws_freeContext(c: *mut SwsContext);
    fn avcodec_alloc_context3(codec: *const AVCodec) -> *mut AVCodecContext;
    fn avcodec_parameters_to_context(
        codec: *mut AVCodecContext,
        par: *const AVCodecParameters,
    ) -> c_int;
    fn avcodec_open2(
        avctx: *mut AVCodecContext,
        codec: *const AVCodec,
        options: *mut *mut AVDictionary,
    ) -> c_int;
    fn avcodec_free_context(avctx: *mut *mut AVCodecContext);
    fn avcodec_send_packet(avctx: *mut AVCodecContext, avpkt: *const AVPacket) -> c_int;
    fn avcodec_receive_frame(avctx: *mut AVCodecContext, frame: *mut AVFrame) -> c_int;
    fn avcodec_flush_buffers(avctx: *mut AVCodecContext);
    fn av_packet_alloc() -> *mut AVPacket;
    fn av_packet_free(pkt: *mut *mut AVPacket);
    fn av_packet_unref(pkt: *mut AVPacket);
    fn avformat_alloc_context() -> *mut AVFormatContext;
    fn avformat_open_input(
        ps: *mut *mut AVFormatContext,
        url: *const c_char,
        fmt: *const c_void,
        options: *mut *mut AVDictionary,
    ) -> c_int;
    fn avformat_close_input(s: *mut *mut AVFormatContext);
    fn av_find_best_stream(
        ic: *mut AVFormatContext,
        kind: c_int,
        wanted_stream_nb: c_int,
        related_stream: c_int,
        decoder_ret: *mut *const AVCodec,
        flags: c_int,
    ) -> c_int;
    fn av_read_frame(s: *mut AVFormatContext, pkt: *mut AVPacket) -> c_int;
    fn av_seek_frame(
        s: *mut AVFormatContext,
        stream_index: c_int,
        timestamp: i64,
        flags: c_int,
    ) -> c_int;
    fn av_stream_get_side_data(stream: *const AVStream, kind: c_int, size: *mut usize) -> *mut u8;
    fn avio_alloc_context(
        buffer: *mut u8,
        buffer_size: c_int,
        write_flag: c_int,
        opaque: *mut c_void,
        read_packet: Option<ReadPacket>,
        write_packet: Option<WritePacket>,
        seek: Option<Seek>,
    ) -> *mut AVIOContext;
    fn avio_context_free(s: *mut *mut AVIOContext);
}

/// The symbol `sym` (NUL-terminated) from the first of `libs` that has it, as a `T`.
///
/// # Safety
/// `T` is the symbol's type.
unsafe fn find<T: Copy>(libs: &[libloading::Library], sym: &str) -> Result<T, String> {
    for lib in libs {
        // SAFETY: the caller's promise.
        if let Ok(f) = unsafe { lib.get::<T>(sym.as_bytes()) } {
            return Ok(*f);
        }
    }
    Err(format!(
        "{} not found in FFmpeg",
        sym.trim_end_matches('\0')
    ))
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// Opens the libraries (once); why they could not be, if not.
pub fn load() -> Result<(), String> {
    match API.get_or_init(|| {
        let api = open()?;
        // SAFETY: plain calls into the library just opened.
        unsafe {
            let major = (api.avutil_version)() >> 16;
            if major != 57 {
                return Err(format!("libavutil.so.57 reports major version {major}"));
            }
            // FFmpeg's own log lines would flood stderr on a damaged file: errors are ours.
            (api.av_log_set_level)(AV_LOG_QUIET);
        }
        Ok(api)
    }) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.clone()),
    }
}

fn api() -> &'static Api {
    match API.get() {
        Some(Ok(api)) => api,
        // Every caller runs `load` first (video::init); reaching this is a bug.
        _ => panic!("FFmpeg called before it was loaded"),
    }
}
