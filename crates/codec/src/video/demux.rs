//! FFmpeg's objects with owners: a container read through our [`Source`] (an `AVIOContext`
//! with read and seek callbacks, so files and object-store sources read alike), the video
//! stream's decoder, and the swscale conversion of a decoded frame to RGB.

use std::ffi::{c_int, c_void, CStr, CString};
use std::io::{Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::ffi::{self, off};
use crate::error::{Error, Result};
use crate::io::Source;

/// Bytes of the I/O buffer FFmpeg reads through.
const AVIO_BUFFER: usize = 64 << 10;

/// An FFmpeg error code as text.
pub fn message(code: c_int) -> String {
    let mut buf = [0 as std::ffi::c_char; 128];
    // SAFETY: the buffer's length is passed; av_strerror always NUL-terminates.
    unsafe {
        ffi::av_strerror(code, buf.as_mut_ptr(), buf.len());
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

/// `Err` with FFmpeg's message when `code` is negative.
pub fn check(what: &str, code: c_int) -> Result<c_int> {
    if code < 0 {
        Err(Error::decode("video", format!("{what}: {}", message(code))))
    } else {
        Ok(code)
    }
}

/// An `AVDictionary` of options, freed on drop.
pub struct Options(*mut ffi::AVDictionary);

impl Options {
    /// Options from key/value pairs.
    pub fn new(pairs: &[(&str, String)]) -> Options {
        let mut d = Options(ptr::null_mut());
        for (k, v) in pairs {
            let (Ok(k), Ok(v)) = (CString::new(*k), CString::new(v.as_str())) else {
                continue;
            };
            // SAFETY: NUL-terminated strings, copied by FFmpeg (flags 0).
            unsafe { ffi::av_dict_set(&mut d.0, k.as_ptr(), v.as_ptr(), 0) };
        }
        d
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: null or a dictionary FFmpeg allocated (options it did not consume).
        unsafe { ffi::av_dict_free(&mut self.0) }
    }
}

/// The source FFmpeg's callbacks read: boxed, so its address stays put.
struct Reader<'s, 'a> {
    src: &'s mut Source<'a>,
    /// Total length, for `AVSEEK_SIZE` (when the source knows it).
    len: Option<u64>,
}

unsafe extern "C" fn read_packet(opaque: *mut c_void, buf: *mut u8, size: c_int) -> c_int {
    if size <= 0 {
        return 0;
    }
    // Unwinding into C is undefined: a panic becomes an I/O error.
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `opaque` is the boxed `Reader` the context was made with; `buf` holds
        // `size` bytes.
        let (r, out) = unsafe {
            (
                &mut *opaque.cast::<Reader>(),
                std::slice::from_raw_parts_mut(buf, size as usize),
            )
        };
        match r.src.read(out) {
            Ok(0) => ffi::AVERROR_EOF,
            Ok(n) => n as c_int,
            Err(_) => -libc::EIO,
        }
    }))
    .unwrap_or(-libc::EIO)
}

unsafe extern "C" fn seek(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `read_packet`.
        let r = unsafe { &mut *opaque.cast::<Reader>() };
        let whence = whence & !ffi::AVSEEK_FORCE;
        if whence == ffi::AVSEEK_SIZE {
            return r.len.map_or(-1, |n| n as i64);
        }
        let to = match whence {
            libc::SEEK_SET => SeekFrom::Start(offset.max(0) as u64),
            libc::SEEK_CUR => SeekFrom::Current(offset),
            libc::SEEK_END => match r.len {
                Some(n) => SeekFrom::Start((n as i64).saturating_add(offset).max(0) as u64),
                None => return -(libc::ESPIPE as i64),
            },
            _ => return -(libc::EINVAL as i64),
        };
        match r.src.seek(to) {
            Ok(p) => p as i64,
            Err(_) => -(libc::EIO as i64),
        }
    }))
    .unwrap_or(-(libc::EIO as i64))
}

/// An opened container: the format context, its I/O context and the source behind them.
pub struct Input<'s, 'a> {
    fmt: *mut ffi::AVFormatContext,
    avio: *mut ffi::AVIOContext,
    /// The callbacks' `opaque` (a leaked box), freed after the contexts.
    reader: *mut Reader<'s, 'a>,
}

impl Drop for Input<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: the contexts are ours and freed once, the format context (which reads
        // through the I/O context) first; FFmpeg may have replaced the I/O buffer, so the
        // current one is freed.
        unsafe {
            if !self.fmt.is_null() {
                ffi::avformat_close_input(&mut self.fmt);
            }
            if !self.avio.is_null() {
                ffi::av_freep(self.avio.cast::<u8>().add(off::AVIO_BUFFER).cast());
                ffi::avio_context_free(&mut self.avio);
            }
            drop(Box::from_raw(self.reader));
        }
    }
}

/// The video stream chosen in a container.
pub struct Stream {
    /// Its index among the container's streams.
    pub index: c_int,
    /// The `AVStream`, owned by the format context.
    pub st: *mut ffi::AVStream,
    /// Its decoder, found by FFmpeg.
    pub codec: *const ffi::AVCodec,
}

impl<'s, 'a> Input<'s, 'a> {
    /// Opens the container behind `src` (which must be seekable) and reads its header only:
    /// no frame is decoded (no `avformat_find_stream_info`).
    pub fn open(src: &'s mut Source<'a>) -> Result<Input<'s, 'a>> {
        let len = src.len();
        let mut input = Input {
            fmt: ptr::null_mut(),
            avio: ptr::null_mut(),
            reader: Box::into_raw(Box::new(Reader { src, len })),
        };
        // SAFETY: FFmpeg allocations checked for null; the reader outlives both contexts
        // (it is dropped after them, with `input`).
        unsafe {
            let buf = ffi::av_malloc(AVIO_BUFFER).cast::<u8>();
            if buf.is_null() {
                return Err(Error::decode("video", "out of memory"));
            }
            let opaque = input.reader.cast::<c_void>();
            input.avio = ffi::avio_alloc_context(
                buf,
                AVIO_BUFFER as c_int,
                0,
                opaque,
                Some(read_packet),
                None,
                Some(seek),
            );
            if input.avio.is_null() {
                let mut buf = buf.cast::<c_void>();
                ffi::av_freep((&mut buf as *mut *mut c_void).cast());
                return Err(Error::decode("video", "out of memory"));
            }
            input.fmt = ffi::avformat_alloc_context();
            if input.fmt.is_null() {
                return Err(Error::decode("video", "out of memory"));
            }
            ffi::set(input.fmt, off::FMT_PB, input.avio);
            // Probing reads at most 1 MiB of the file to name the container.
            let mut opts = Options::new(&[("probesize", (1u32 << 20).to_string())]);
            let r =
                ffi::avformat_open_input(&mut input.fmt, c"".as_ptr(), ptr::null(), &mut opts.0);
            if r < 0 {
                // avformat_open_input frees the context on failure.
                input.fmt = ptr::null_mut();
                check("cannot open the container", r)?;
            }
        }
        Ok(input)
    }

    /// The best video stream (FFmpeg's choice: the default one, or the largest), with every
    /// other stream discarded by the demuxer.
    pub fn video_stream(&mut self) -> Result<Stream> {
        let mut codec: *const ffi::AVCodec = ptr::null();
        // SAFETY: an open context; `codec` receives a static AVCodec.
        let index = unsafe {
            ffi::av_find_best_stream(self.fmt, ffi::AVMEDIA_TYPE_VIDEO, -1, -1, &mut codec, 0)
        };
        check("no video stream FFmpeg can decode", index)?;
        // SAFETY: `index` is below nb_streams (FFmpeg's answer), streams[] holds that many.
        let st = unsafe {
            let n: u32 = ffi::get(self.fmt, off::FMT_NB_STREAMS);
            let streams: *const *mut ffi::AVStream = ffi::get(self.fmt, off::FMT_STREAMS);
            for i in 0..n as usize {
                if i != index as usize {
                    ffi::set(*streams.add(i), off::ST_DISCARD, ffi::AVDISCARD_ALL);
                }
            }
            *streams.add(index as usize)
        };
        if codec.is_null() {
            return Err(Error::decode("video", "no decoder for the video stream"));
        }
        Ok(Stream { index, st, codec })
    }

    /// The container's duration in seconds, when it says.
    pub fn duration(&self, stream: &Stream) -> Option<f64> {
        // SAFETY: an open context and one of its streams.
        let (whole, own, tb) = unsafe {
            (
                ffi::get::<i64>(self.fmt, off::FMT_DURATION),
                ffi::get::<i64>(stream.st, off::ST_DURATION),
                time_base(stream),
            )
        };
        if whole > 0 && whole != ffi::AV_NOPTS_VALUE {
            return Some(whole as f64 / ffi::AV_TIME_BASE as f64);
        }
        (own > 0 && own != ffi::AV_NOPTS_VALUE && tb > 0.0).then_some(own as f64 * tb)
    }

    /// Seeks to the key frame at or before `ts` (stream time base); false when the container
    /// cannot seek (then reading goes on from where it is).
    pub fn seek(&mut self, stream: &Stream, ts: i64) -> bool {
        // SAFETY: an open context and one of its streams.
        unsafe { ffi::av_seek_frame(self.fmt, stream.index, ts, ffi::AVSEEK_FLAG_BACKWARD) >= 0 }
    }

    /// Reads the next packet into `pkt`; false at the end of the file (or a read error, which
    /// the caller treats as the end).
    pub fn read(&mut self, pkt: &mut Packet) -> Result<bool> {
        // SAFETY: an open context and an allocated packet, unreferenced before reuse.
        let r = unsafe {
            ffi::av_packet_unref(pkt.0);
            ffi::av_read_frame(self.fmt, pkt.0)
        };
        if r == ffi::AVERROR_EOF {
            return Ok(false);
        }
        check("cannot read a packet", r)?;
        Ok(true)
    }
}

/// The stream's time base in seconds per tick.
///
/// # Safety
/// `stream.st` is a live stream.
pub unsafe fn time_base(stream: &Stream) -> f64 {
    // SAFETY: the caller's promise.
    let (num, den): (c_int, c_int) = unsafe {
        (
            ffi::get(stream.st, off::ST_TIME_BASE),
            ffi::get(stream.st, off::ST_TIME_BASE + 4),
        )
    };
    if den > 0 && num > 0 {
        num as f64 / den as f64
    } else {
        0.0
    }
}

/// The stream's start time in its own ticks (0 when unknown).
///
/// # Safety
/// `stream.st` is a live stream.
pub unsafe fn start_time(stream: &Stream) -> i64 {
    // SAFETY: the caller's promise.
    let t: i64 = unsafe { ffi::get(stream.st, off::ST_START_TIME) };
    if t == ffi::AV_NOPTS_VALUE {
        0
    } else {
        t
    }
}

/// The coded size the container declares for the stream (0 when it does not).
///
/// # Safety
/// `stream.st` is a live stream.
pub unsafe fn coded_size(stream: &Stream) -> (i32, i32) {
    // SAFETY: the caller's promise; codecpar is always allocated with the stream.
    unsafe {
        let par: *const ffi::AVCodecParameters = ffi::get(stream.st, off::ST_CODECPAR);
        (
            ffi::get(par, off::PAR_WIDTH),
            ffi::get(par, off::PAR_HEIGHT),
        )
    }
}

/// The display matrix's rotation as the clockwise turn (0, 90, 180, 270) that makes the
/// picture upright, as `ffmpeg`'s autorotate computes it.
///
/// # Safety
/// `stream.st` is a live stream.
pub unsafe fn rotation(stream: &Stream) -> u32 {
    let mut size = 0usize;
    // SAFETY: the caller's promise; the side data holds `size` bytes.
    let m = unsafe {
        ffi::av_stream_get_side_data(stream.st, ffi::AV_PKT_DATA_DISPLAYMATRIX, &mut size)
    };
    if m.is_null() || size < 9 * 4 {
        return 0;
    }
    // SAFETY: nine int32s, checked above.
    let ccw = unsafe { ffi::av_display_rotation_get(m.cast::<i32>()) };
    if !ccw.is_finite() {
        return 0;
    }
    let cw = (-ccw).round() as i64;
    // Nearest right angle, in 0..360.
    ((cw.rem_euclid(360) + 45) / 90 % 4 * 90) as u32
}

/// An `AVPacket`, freed on drop.
pub struct Packet(pub *mut ffi::AVPacket);

impl Packet {
    /// A fresh packet.
    pub fn new() -> Result<Packet> {
        // SAFETY: plain allocation, checked.
        let p = unsafe { ffi::av_packet_alloc() };
        if p.is_null() {
            return Err(Error::decode("video", "out of memory"));
        }
        Ok(Packet(p))
    }

    /// The index of the stream it belongs to.
    pub fn stream_index(&self) -> c_int {
        // SAFETY: an allocated packet.
        unsafe { ffi::get(self.0, off::PKT_STREAM_INDEX) }
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        // SAFETY: ours, freed once.
        unsafe { ffi::av_packet_free(&mut self.0) }
    }
}

/// An `AVFrame`, freed on drop.
pub struct Frame(pub *mut ffi::AVFrame);

impl Frame {
    /// A fresh frame.
    pub fn new() -> Result<Frame> {
        // SAFETY: plain allocation, checked.
        let p = unsafe { ffi::av_frame_alloc() };
        if p.is_null() {
            return Err(Error::decode("video", "out of memory"));
        }
        Ok(Frame(p))
    }

    /// Width, height and pixel format.
    pub fn geometry(&self) -> (c_int, c_int, c_int) {
        // SAFETY: an allocated frame.
        unsafe {
            (
                ffi::get(self.0, off::FRAME_WIDTH),
                ffi::get(self.0, off::FRAME_HEIGHT),
                ffi::get(self.0, off::FRAME_FORMAT),
            )
        }
    }

    /// Its presentation time in stream ticks: FFmpeg's best guess, else the pts.
    pub fn time(&self) -> Option<i64> {
        // SAFETY: an allocated frame.
        let (best, pts): (i64, i64) = unsafe {
            (
                ffi::get(self.0, off::FRAME_BEST_EFFORT_TS),
                ffi::get(self.0, off::FRAME_PTS),
            )
        };
        [best, pts].into_iter().find(|t| *t != ffi::AV_NOPTS_VALUE)
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        // SAFETY: ours, freed once.
        unsafe { ffi::av_frame_free(&mut self.0) }
    }
}

/// The video stream's decoder.
pub struct Decoder(*mut ffi::AVCodecContext);

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: ours, freed once.
        unsafe { ffi::avcodec_free_context(&mut self.0) }
    }
}

/// What [`Decoder::receive`] got.
pub enum Got {
    /// A frame is in the given [`Frame`].
    Frame,
    /// The decoder wants another packet.
    Again,
    /// The decoder is drained.
    End,
}

impl Decoder {
    /// Opens the stream's decoder, refusing pictures over `max_pixels` (FFmpeg's own check,
    /// made on every frame's size), single-threaded: a render worker is one render.
    pub fn open(stream: &Stream, max_pixels: u64) -> Result<Decoder> {
        // SAFETY: FFmpeg allocations checked; codecpar is the stream's own.
        unsafe {
            let d = Decoder(ffi::avcodec_alloc_context3(stream.codec));
            if d.0.is_null() {
                return Err(Error::decode("video", "out of memory"));
            }
            let par: *const ffi::AVCodecParameters = ffi::get(stream.st, off::ST_CODECPAR);
            check(
                "bad codec parameters",
                ffi::avcodec_parameters_to_context(d.0, par),
            )?;
            let mut opts = Options::new(&[
                ("threads", "1".into()),
                ("max_pixels", max_pixels.min(i32::MAX as u64).to_string()),
            ]);
            check(
                "cannot open the decoder",
                ffi::avcodec_open2(d.0, stream.codec, &mut opts.0),
            )?;
            Ok(d)
        }
    }

    /// Sends a packet (`None`: the end of the stream, to drain). A packet the decoder
    /// rejects as damaged is skipped, as players do.
    pub fn send(&mut self, pkt: Option<&Packet>) -> Result<()> {
        let p = pkt.map_or(ptr::null_mut(), |p| p.0);
        // SAFETY: an open decoder; a packet or null.
        let r = unsafe { ffi::avcodec_send_packet(self.0, p) };
        if r == ffi::AVERROR_EOF || r == ffi::AVERROR_EAGAIN || r >= 0 {
            return Ok(());
        }
        if r == -libc::ENOMEM {
            return check("decoding", r).map(|_| ());
        }
        tracing::debug!("video: a packet was rejected: {}", message(r));
        Ok(())
    }

    /// Receives the next frame into `frame`.
    pub fn receive(&mut self, frame: &mut Frame) -> Result<Got> {
        // SAFETY: an open decoder and an allocated frame.
        let r = unsafe { ffi::avcodec_receive_frame(self.0, frame.0) };
        match r {
            r if r >= 0 => Ok(Got::Frame),
            ffi::AVERROR_EAGAIN => Ok(Got::Again),
            ffi::AVERROR_EOF => Ok(Got::End),
            r => check("decoding", r).map(|_| Got::End),
        }
    }

    /// Drops what the decoder holds, after a seek.
    pub fn flush(&mut self) {
        // SAFETY: an open decoder.
        unsafe { ffi::avcodec_flush_buffers(self.0) }
    }
}

/// Converts a decoded frame to 8-bit RGB of `size` (the container's: a frame of another size,
/// after a mid-stream change, is scaled to it), with the frame's own YUV matrix and range
/// (BT.601 when it names none, as swscale and `ffmpeg` default to).
pub fn to_rgb(frame: &Frame, size: (u32, u32)) -> Result<Vec<u8>> {
    let (w, h, fmt) = frame.geometry();
    let (out_w, out_h) = (size.0 as c_int, size.1 as c_int);
    if w <= 0 || h <= 0 || out_w <= 0 || out_h <= 0 {
        return Err(Error::decode("video", format!("decoded frame of {w}x{h}")));
    }
    // SAFETY: a pixel format of a decoded frame; descriptor checked for null.
    let desc = unsafe { ffi::av_pix_fmt_desc_get(fmt) };
    if desc.is_null()
        // SAFETY: a live descriptor.
        || unsafe { ffi::get::<u64>(desc, off::DESC_FLAGS) } & ffi::AV_PIX_FMT_FLAG_HWACCEL != 0
    {
        return Err(Error::decode("video", format!("pixel format {fmt}")));
    }
    let row = out_w as usize * 3;
    let mut rgb = crate::alloc::filled(
        crate::alloc::len(&[row, out_h as usize], "a video frame")?,
        0u8,
        "a video frame",
    )?;
    struct Sws(*mut ffi::SwsContext);
    impl Drop for Sws {
        fn drop(&mut self) {
            // SAFETY: ours, freed once (null is allowed).
            unsafe { ffi::sws_freeContext(self.0) }
        }
    }
    // SAFETY: sizes and formats of a decoded frame; planes and strides are the frame's own,
    // the destination holds `row * h` bytes.
    unsafe {
        let flags = ffi::SWS_BICUBIC
            | ffi::SWS_ACCURATE_RND
            | ffi::SWS_FULL_CHR_H_INT
            | ffi::SWS_FULL_CHR_H_INP;
        let sws = Sws(ffi::sws_getContext(
            w,
            h,
            fmt,
            out_w,
            out_h,
            ffi::AV_PIX_FMT_RGB24,
            flags,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null(),
        ));
        if sws.0.is_null() {
            return Err(Error::decode(
                "video",
                format!("swscale cannot convert pixel format {fmt}"),
            ));
        }
        let cs: c_int = ffi::get(frame.0, off::FRAME_COLORSPACE);
        let full: c_int = ffi::get(frame.0, off::FRAME_COLOR_RANGE);
        let cs = match cs {
            // BT.709, FCC, BT.601 (625), SMPTE 240M, BT.2020: swscale's own numbering.
            1 | 4 | 5 | 7 | 9 | 10 => cs,
            // BT.601 (525) is swscale's 5.
            6 => 5,
            _ => ffi::SWS_CS_DEFAULT,
        };
        let coeffs = ffi::sws_getCoefficients(cs);
        let dst_coeffs = ffi::sws_getCoefficients(ffi::SWS_CS_DEFAULT);
        ffi::sws_setColorspaceDetails(
            sws.0,
            coeffs,
            (full == ffi::AVCOL_RANGE_JPEG) as c_int,
            dst_coeffs,
            1,
            0,
            1 << 16,
            1 << 16,
        );
        let data: [*const u8; 8] = ffi::get(frame.0, off::FRAME_DATA);
        let lines: [c_int; 8] = ffi::get(frame.0, off::FRAME_LINESIZE);
        let dst = [
            rgb.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        ];
        let dst_lines = [row as c_int, 0, 0, 0];
        let n = ffi::sws_scale(
            sws.0,
            data.as_ptr(),
            lines.as_ptr(),
            0,
            h,
            dst.as_ptr(),
            dst_lines.as_ptr(),
        );
        if n != out_h {
            return Err(Error::decode(
                "video",
                format!("swscale wrote {n} of {out_h} rows"),
            ));
        }
    }
    Ok(rgb)
}
