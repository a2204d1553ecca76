//! Videos (MP4, MOV, M4V, MKV, WebM, AVI) as their poster frame, decoded by FFmpeg 5.x
//! (Debian bookworm's libavformat59/libavcodec59/libswscale6), opened at run time with our own
//! declarations (`video/ffi.rs`): building needs no FFmpeg headers, and without FFmpeg only
//! videos fail.
//!
//! The poster frame: the first frame at or after a target time that is not dark (black, or
//! the dim start of a fade-in), at most [`DULL_SPAN`] seconds of frames on; if all are dark, the
//! frame at the target. The target is 10 % of the duration, or 1 s for clips shorter than
//! 10 s (half the duration below 2 s; the first frame when the duration is unknown). The seek
//! is exact, as `ffmpeg -ss T -i clip -frames:v 1`: from the key frame before the target,
//! frames are decoded and dropped up to it. The container's display matrix becomes the EXIF
//! orientation, so the pipeline turns the picture upright (phones record sideways). Frames
//! are converted by swscale with their own YUV matrix and range to 8-bit RGB (10-bit video
//! included). Not applied: the sample aspect ratio (anamorphic video stays as coded), HDR tone
//! mapping (PQ/HLG video shows its coded values).
//!
//! Bounds: the stream's coded size is checked against `--max-pixels` before any decoding
//! (and FFmpeg's decoder gets the same limit), at most [`MAX_PACKETS`] packets are read, the
//! decoder is single-threaded, and the render timeout of the mount's workers covers the rest.

mod demux;
mod ffi;

use demux::{Decoder, Frame, Got, Input, Packet, Stream};

use crate::error::{Error, Result};
use crate::image::{Header, Image, Metadata, SampleFormat, Samples};
use crate::io::Source;
use crate::{check_limits, About, Codec, Format, Limits, LoadOptions, Loaded};

/// Packets read (of the video stream, after the seek) before giving up on finding a frame.
pub const MAX_PACKETS: u32 = 3000;

/// Seconds past the target over which dark frames are skipped.
pub const DULL_SPAN: f64 = 10.0;

/// Mean luma below which a frame counts as dark (black or fading in), on a 0..1 scale from
/// the format's black to its white.
const DARK: f64 = 0.08;

/// Opens the FFmpeg libraries once; why they could not be, if not.
pub(crate) fn init() -> std::result::Result<(), String> {
    ffi::load().map_err(|e| format!("FFmpeg 5.x could not be opened: {e}"))
}

/// ISO-BMFF brands of movies (MP4, QuickTime, M4V, 3GP, phone and camera variants); HEIF,
/// AVIF and other stills are recognised by their own codecs first.
const MOVIE_BRANDS: &[&[u8; 4]] = &[
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"mp71", b"avc1",
    b"hvc1", b"M4V ", b"M4VH", b"M4VP", b"qt  ", b"3gp4", b"3gp5", b"3gp6", b"3gp7", b"3g2a",
    b"3g2b", b"3g2c", b"MSNV", b"XAVC", b"mmp4", b"f4v ", b"dash", b"NDAS", b"CAEP",
];

/// Major brands that are not movies although they list movie brands as compatible: audio
/// (M4A...), and stills (HEIF, AVIF, Canon's CR3, JPEG 2000).
const NOT_MOVIES: &[&[u8; 4]] = &[
    b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ", b"mif1", b"msf1", b"heic", b"heix", b"avif",
    b"avis", b"crx ", b"jp2 ", b"jpx ",
];

/// Recognises a movie container from its first bytes.
pub fn sniff(head: &[u8]) -> bool {
    let at = |a: usize, b: usize| head.get(a..b);
    if at(4, 8) == Some(b"ftyp") {
        let size = head
            .get(..4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
        let end = size.min(head.len());
        let Some(major) = at(8, 12) else {
            return false;
        };
        if size < 16 || NOT_MOVIES.iter().any(|b| &b[..] == major) {
            return false;
        }
        let compatible = (16..end.saturating_sub(3))
            .step_by(4)
            .map(|i| &head[i..i + 4]);
        return std::iter::once(major)
            .chain(compatible)
            .any(|b| MOVIE_BRANDS.iter().any(|m| &m[..] == b));
    }
    // Matroska and WebM: the EBML header's ID.
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return true;
    }
    if at(0, 4) == Some(b"RIFF") && at(8, 12) == Some(b"AVI ") {
        return true;
    }
    // QuickTime movies older than the ftyp box start with their movie or data atom.
    matches!(at(4, 8), Some(b"moov" | b"mdat" | b"wide"))
        && head.get(..4).is_some_and(|s| s[0] == 0)
}

/// Runs `f` on the container behind `src`; an unseekable source (a pipe) is read into
/// memory first, up to the memory limit, as a container's index may be at its end.
fn with_input<T>(
    src: &mut Source,
    limits: &Limits,
    f: impl FnOnce(&mut Input) -> Result<T>,
) -> Result<T> {
    init().map_err(|e| Error::decode("video", e))?;
    if src.is_seekable() {
        return f(&mut Input::open(src)?);
    }
    let bytes = src.read_to_memory(limits.memory_limit)?;
    let mut mem = Source::memory(bytes);
    let mut input = Input::open(&mut mem)?;
    let out = f(&mut input);
    drop(input);
    out
}

/// The header of the poster frame, from the container alone: the coded size, 8-bit RGB, and
/// the display matrix's turn as an EXIF orientation.
fn header(stream: &Stream) -> Result<Header> {
    // SAFETY: the stream belongs to the input that is open while this runs.
    let ((w, h), turn) = unsafe { (demux::coded_size(stream), demux::rotation(stream)) };
    if w <= 0 || h <= 0 {
        return Err(Error::decode(
            "video",
            format!("the container gives no picture size ({w}x{h})"),
        ));
    }
    Ok(Header {
        width: w as u32,
        height: h as u32,
        bands: 3,
        format: SampleFormat::U8,
        bit_depth: 8,
        meta: Metadata {
            orientation: match turn {
                90 => 6,
                180 => 3,
                270 => 8,
                _ => 1,
            },
            ..Metadata::upright()
        },
    })
}

/// When to take the poster frame, in seconds from the start.
pub fn target_time(duration: Option<f64>) -> f64 {
    match duration {
        Some(d) if d >= 10.0 => d * 0.1,
        Some(d) if d > 0.0 => d.min(2.0) / 2.0,
        _ => 0.0,
    }
}

/// Whether a decoded frame is dark (mean luma below [`DARK`]), judged from its luma plane
/// (every 4th sample of every 4th row); RGB and paletted frames are never called dark.
fn is_dark(frame: &Frame) -> bool {
    let (w, h, fmt) = frame.geometry();
    // SAFETY: a decoded frame: its format's descriptor, its first plane of `h` rows of
    // `linesize` bytes.
    unsafe {
        let desc = ffi::av_pix_fmt_desc_get(fmt);
        if desc.is_null() || w <= 0 || h <= 0 {
            return false;
        }
        let flags: u64 = ffi::get(desc, ffi::off::DESC_FLAGS);
        // RGB (1 << 5), paletted (1 << 1), bitstream (1 << 2), hardware (1 << 3).
        if flags & (1 << 5 | 1 << 1 | 1 << 2 | 1 << 3) != 0 {
            return false;
        }
        let depth: i32 = ffi::get(desc, ffi::off::DESC_COMP0_DEPTH);
        let data: *const u8 = ffi::get(frame.0, ffi::off::FRAME_DATA);
        let stride: i32 = ffi::get(frame.0, ffi::off::FRAME_LINESIZE);
        if data.is_null() || stride <= 0 || !(8..=16).contains(&depth) {
            return false;
        }
        let wide = depth > 8;
        let (mut sum, mut n) = (0f64, 0u64);
        for y in (0..h as usize).step_by(4) {
            let row = data.add(y * stride as usize);
            for x in (0..w as usize).step_by(4) {
                sum += if wide {
                    row.add(2 * x).cast::<u16>().read_unaligned() as f64
                } else {
                    *row.add(x) as f64
                };
                n += 1;
            }
        }
        let scale = (1u32 << (depth - 8)) as f64;
        let full: i32 = ffi::get(frame.0, ffi::off::FRAME_COLOR_RANGE);
        let (black, white) = if full == ffi::AVCOL_RANGE_JPEG {
            (0.0, 255.0 * scale)
        } else {
            (16.0 * scale, 235.0 * scale)
        };
        let mean = sum / n.max(1) as f64;
        (mean - black) / (white - black) < DARK
    }
}

/// Decodes the poster frame (see the module's notes) to RGB at the header's size.
fn poster(input: &mut Input, limits: &Limits) -> Result<Image> {
    let stream = input.video_stream()?;
    let header = header(&stream)?;
    check_limits(&header, limits.max_pixels)?;
    let mut dec = Decoder::open(&stream, limits.max_pixels)?;
    // SAFETY: the stream of the open input.
    let (tb, start) = unsafe { (demux::time_base(&stream), demux::start_time(&stream)) };
    let ticks = |s: f64| if tb > 0.0 { (s / tb).round() as i64 } else { 0 };
    let at = target_time(input.duration(&stream));
    let target = start.saturating_add(ticks(at));
    let give_up = target.saturating_add(ticks(DULL_SPAN));
    if at > 0.0 && input.seek(&stream, target) {
        dec.flush();
    }
    let mut pkt = Packet::new()?;
    let (mut frame, mut kept) = (Frame::new()?, Frame::new()?);
    // `kept`: the frame at the target (the answer if every later one is dark too), or until
    // the target is reached, the latest frame (the answer if the target is past the end).
    let mut kept_is_candidate = false;
    let mut have_kept = false;
    let mut packets = 0u32;
    let mut draining = false;
    loop {
        if !draining {
            if input.read(&mut pkt)? {
                if pkt.stream_index() != stream.index {
                    continue;
                }
                packets += 1;
                if packets > MAX_PACKETS {
                    return Err(Error::decode(
                        "video",
                        format!("no frame at {at:.2} s within {MAX_PACKETS} packets"),
                    ));
                }
                dec.send(Some(&pkt))?;
            } else {
                draining = true;
                dec.send(None)?;
            }
        }
        loop {
            match dec.receive(&mut frame)? {
                Got::Again => break,
                Got::End => {
                    if !have_kept {
                        return Err(Error::decode("video", "no frame could be decoded"));
                    }
                    return image(&kept, &header);
                }
                Got::Frame => {}
            }
            let t = frame.time();
            if t.is_some_and(|t| t < target) {
                std::mem::swap(&mut frame, &mut kept);
                have_kept = true;
                continue;
            }
            if !is_dark(&frame) {
                return image(&frame, &header);
            }
            if !kept_is_candidate {
                std::mem::swap(&mut frame, &mut kept);
                kept_is_candidate = true;
                have_kept = true;
            }
            if t.is_none_or(|t| t >= give_up) {
                return image(&kept, &header);
            }
        }
        if draining {
            // Drained without `End` (not expected): what was kept, if anything.
            if !have_kept {
                return Err(Error::decode("video", "no frame could be decoded"));
            }
            return image(&kept, &header);
        }
    }
}

/// The frame as an RGB image of the header's size.
fn image(frame: &Frame, header: &Header) -> Result<Image> {
    let (w, h, _) = frame.geometry();
    if (w as u32, h as u32) != (header.width, header.height) {
        tracing::debug!(
            "video: a {w}x{h} frame scaled to the container's {}x{}",
            header.width,
            header.height
        );
    }
    let rgb = demux::to_rgb(frame, (header.width, header.height))?;
    Ok(Image {
        header: header.clone(),
        samples: Samples::U8(rgb),
    })
}

static VIDEO: About = About {
    name: "video",
    title: "Video (poster frame)",
    extensions: &["mp4", "mov", "m4v", "mkv", "webm", "avi"],
    serve_as: Some(Format::Jpeg),
    notes: "poster frame through FFmpeg 5.x (Debian bookworm's libavformat59, libavcodec59, libswscale6), opened on first use (declared from its 5.1 headers: no build-time FFmpeg); the first frame that is not dark from 10 % of the duration (1 s for clips under 10 s), exact seek, the display matrix's rotation, 8-bit RGB by swscale with the stream's matrix and range",
};

/// Videos, as their poster frame.
pub struct Video;

impl Codec for Video {
    fn about(&self) -> &About {
        &VIDEO
    }

    fn sniff(&self, head: &[u8]) -> bool {
        sniff(head)
    }

    fn probe(&self, src: &mut Source, limits: &Limits) -> Result<Header> {
        with_input(src, limits, |input| header(&input.video_stream()?))
    }

    fn load<'a>(&self, mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        src.start_pixel_phase();
        let image = with_input(&mut src, &opts.limits, |input| poster(input, &opts.limits))?;
        let stream = Box::new(image.into_stream(crate::image::STRIP_ROWS));
        Ok(Loaded::single(stream, 1))
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
    fn brands_and_magic_bytes_pick_movies() {
        assert!(sniff(&ftyp(b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"])));
        assert!(sniff(&ftyp(b"qt  ", &[b"qt  "])));
        assert!(sniff(&ftyp(b"M4V ", &[b"M4V ", b"M4A ", b"mp42", b"isom"])));
        assert!(sniff(&ftyp(b"abcd", &[b"mp42"])));
        // Stills and audio in the same container are not movies.
        assert!(!sniff(&ftyp(b"heic", &[b"mif1", b"heic"])));
        assert!(!sniff(&ftyp(b"mif1", &[b"mif1", b"avif", b"isom"])));
        assert!(!sniff(&ftyp(
            b"avis",
            &[b"avis", b"msf1", b"iso8", b"mp41"]
        )));
        assert!(!sniff(&ftyp(b"M4A ", &[b"M4A ", b"mp42", b"isom"])));
        assert!(!sniff(&ftyp(b"crx ", &[b"crx ", b"isom"])));
        assert!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 0x01, 0, 0, 0]));
        assert!(sniff(b"RIFF\x10\0\0\0AVI LIST"));
        assert!(!sniff(b"RIFF\x10\0\0\0WEBPVP8 "));
        assert!(sniff(b"\0\0\0\x08wide\0\0\0\x10mdat"));
        assert!(!sniff(b"\0\0\0\x08ftyp"));
        // HEIF and AVIF keep their files: they sniff first, and video refuses their brands.
        assert!(crate::heif::sniff_heic(&ftyp(b"heic", &[b"mif1", b"heic"])));
    }

    #[test]
    fn the_target_is_a_tenth_or_one_second() {
        assert_eq!(target_time(Some(60.0)), 6.0);
        assert_eq!(target_time(Some(10.0)), 1.0);
        assert_eq!(target_time(Some(4.0)), 1.0);
        assert_eq!(target_time(Some(1.0)), 0.5);
        assert_eq!(target_time(None), 0.0);
    }
}
