//! Animated WebP: frame durations read from the ANMF chunks (image-webp composes the
//! frames), and the saver through libwebp's animation encoder, frame by frame.

use std::ffi::CStr;
use std::io::Cursor;
use std::sync::Arc;

use image_webp::WebPDecoder;
use libwebp_sys as sys;

use crate::error::{Error, Result};
use crate::image::{Header, Image, Samples};
use crate::io::Target;
use crate::{Animated, Frames, SaveOptions};

/// Durations (ms) of the first `max` ANMF chunks of a RIFF WebP, in file order.
pub fn durations(bytes: &[u8], max: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut at = 12usize;
    while at + 8 <= bytes.len() && out.len() < max as usize {
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let body = at + 8;
        if &bytes[at..at + 4] == b"ANMF" && body + 15 <= bytes.len() {
            let d = &bytes[body + 12..body + 15];
            out.push(u32::from_le_bytes([d[0], d[1], d[2], 0]));
        }
        // Chunks are padded to an even size.
        at = body.saturating_add(size as usize + (size as usize & 1));
    }
    out
}

/// The frames after the first, composed by image-webp.
pub struct WebpFrames {
    pub dec: WebPDecoder<Cursor<Arc<[u8]>>>,
    pub header: Header,
    pub remaining: u32,
}

impl Frames for WebpFrames {
    fn next_frame(&mut self) -> Result<Option<Image>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let size = self.header.row_samples() * self.header.height as usize;
        let mut buf = crate::alloc::filled(size, 0u8, "a WebP frame")?;
        self.dec.read_frame(&mut buf).map_err(super::decode_err)?;
        Ok(Some(Image {
            header: self.header.clone(),
            samples: Samples::U8(buf),
        }))
    }
}

/// libwebp's animation encoder, deleted on drop.
struct Encoder(*mut sys::WebPAnimEncoder);

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: created by WebPAnimEncoderNewInternal, deleted once.
        unsafe { sys::WebPAnimEncoderDelete(self.0) }
    }
}

impl Encoder {
    fn error(&self, what: &str) -> Error {
        // SAFETY: the encoder is live; the string it returns lives as long as it.
        let msg = unsafe {
            let p = sys::WebPAnimEncoderGetError(self.0);
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        Error::encode("webp", format!("{what}: {msg}"))
    }
}

/// libwebp output bytes, freed on drop.
struct Data(sys::WebPData);

impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: bytes allocated by libwebp (or null).
        unsafe { sys::WebPDataClear(&mut self.0) }
    }
}

impl Data {
    fn bytes(&self) -> &[u8] {
        if self.0.bytes.is_null() {
            return &[];
        }
        // SAFETY: libwebp wrote `size` bytes at `bytes`.
        unsafe { std::slice::from_raw_parts(self.0.bytes, self.0.size) }
    }
}

/// RGB or RGBA samples for libwebp (grey widened).
fn widen(img: Image) -> Result<(Vec<u8>, bool)> {
    let Samples::U8(data) = img.samples else {
        return Err(Error::encode("webp", "samples not cast to 8 bits"));
    };
    let widened = |n: usize| crate::alloc::with_capacity::<u8>(n, "WebP pixels widened to RGB");
    Ok(match img.header.bands {
        1 => {
            let mut v = widened(data.len().saturating_mul(3))?;
            v.extend(data.iter().flat_map(|&g| [g, g, g]));
            (v, false)
        }
        2 => {
            let mut v = widened(data.len().saturating_mul(2))?;
            v.extend(data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]));
            (v, true)
        }
        3 => (data, false),
        4 => (data, true),
        b => return Err(Error::encode("webp", format!("{b} bands"))),
    })
}

/// Encodes an animation: each frame handed to libwebp as it comes (libwebp keeps only the
/// encoded frames), lossy at `q<N>` or `lossless`, single-threaded so bytes are reproducible.
pub fn save(mut anim: Animated, opts: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let (w, h) = (anim.header.width, anim.header.height);
    if w > 16383 || h > 16383 {
        return Err(Error::encode(
            "webp",
            format!("{w}x{h} exceeds WebP's 16383-pixel limit"),
        ));
    }
    let mut config = webp::WebPConfig::new()
        .map_err(|()| Error::encode("webp", "libwebp refused its default configuration"))?;
    config.quality = f32::from(opts.quality());
    config.thread_level = 0;
    if opts.flag(&super::LOSSLESS) {
        config.lossless = 1;
        config.quality = 75.0;
    }
    let mux_abi = sys::WebPGetMuxABIVersion();
    let mut eo = std::mem::MaybeUninit::<sys::WebPAnimEncoderOptions>::uninit();
    // SAFETY: the init function fills the whole struct (checked by its return value).
    let mut eo = unsafe {
        if sys::WebPAnimEncoderOptionsInitInternal(eo.as_mut_ptr(), mux_abi) == 0 {
            return Err(Error::encode("webp", "libwebp: animation options"));
        }
        eo.assume_init()
    };
    eo.anim_params.loop_count = anim.plays.min(65_535) as i32;
    // SAFETY: sizes checked above; options initialised.
    let enc = Encoder(unsafe { sys::WebPAnimEncoderNewInternal(w as i32, h as i32, &eo, mux_abi) });
    if enc.0.is_null() {
        return Err(Error::encode("webp", "libwebp: no animation encoder"));
    }
    let mut timestamp: i64 = 0;
    while let Some(frame) = (anim.next)()? {
        let img = Image::collect(frame.stream)?;
        if (img.header.width, img.header.height) != (w, h) {
            return Err(Error::encode("webp", "frames differ in size"));
        }
        let (px, alpha) = widen(img)?;
        let mut pic =
            sys::WebPPicture::new().map_err(|()| Error::encode("webp", "libwebp: picture init"))?;
        pic.use_argb = 1;
        pic.width = w as i32;
        pic.height = h as i32;
        // SAFETY: `px` holds w*h pixels of 3 or 4 bytes; the picture copies them and is freed
        // right after libwebp has encoded it.
        let ok = unsafe {
            let imported = if alpha {
                sys::WebPPictureImportRGBA(&mut pic, px.as_ptr(), (w * 4) as i32)
            } else {
                sys::WebPPictureImportRGB(&mut pic, px.as_ptr(), (w * 3) as i32)
            };
            let added = imported != 0
                && sys::WebPAnimEncoderAdd(enc.0, &mut pic, timestamp as i32, &config) != 0;
            sys::WebPPictureFree(&mut pic);
            added
        };
        if !ok {
            return Err(enc.error("adding a frame"));
        }
        timestamp += frame.delay_ms as i64;
        if timestamp > i32::MAX as i64 {
            return Err(Error::encode(
                "webp",
                "animation longer than libwebp's timestamps",
            ));
        }
    }
    let mut data = Data(sys::WebPData {
        bytes: std::ptr::null(),
        size: 0,
    });
    // SAFETY: the null frame ends the animation at `timestamp` (the last frame's duration).
    let ok = unsafe {
        sys::WebPAnimEncoderAdd(
            enc.0,
            std::ptr::null_mut(),
            timestamp as i32,
            std::ptr::null(),
        ) != 0
            && sys::WebPAnimEncoderAssemble(enc.0, &mut data.0) != 0
    };
    if !ok {
        return Err(enc.error("assembling"));
    }
    let bytes = with_metadata(&data, &anim.header, opts)?;
    let out = bytes.as_ref().map_or(data.bytes(), |b| b.bytes());
    target.write_all(out).map_err(Error::Write)?;
    target.finish().map_err(Error::Write)
}

/// The assembled file with ICC, EXIF and XMP chunks added through libwebp's mux (`None`:
/// nothing to add).
fn with_metadata(data: &Data, h: &Header, opts: &SaveOptions) -> Result<Option<Data>> {
    if opts.strip {
        return Ok(None);
    }
    let exif = crate::exif::for_output(&h.meta);
    let chunks: Vec<(&CStr, &[u8])> = [
        (c"ICCP", h.meta.icc.as_deref().map(|v| v.as_slice())),
        (c"EXIF", exif.as_deref()),
        (c"XMP ", h.meta.xmp.as_deref().map(|v| v.as_slice())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    if chunks.is_empty() {
        return Ok(None);
    }
    // SAFETY: the mux copies the input (copy_data = 1) and each chunk; it is deleted on
    // every path; the assembled bytes belong to the returned `Data`.
    unsafe {
        let mux = sys::WebPMuxCreateInternal(&data.0, 1, sys::WebPGetMuxABIVersion());
        if mux.is_null() {
            return Err(Error::encode("webp", "libwebp: mux"));
        }
        let mut ok = true;
        for (key, bytes) in chunks {
            let chunk = sys::WebPData {
                bytes: bytes.as_ptr(),
                size: bytes.len(),
            };
            ok &= sys::WebPMuxSetChunk(mux, key.as_ptr(), &chunk, 1)
                == sys::WebPMuxError::WEBP_MUX_OK;
        }
        let mut out = Data(sys::WebPData {
            bytes: std::ptr::null(),
            size: 0,
        });
        ok = ok && sys::WebPMuxAssemble(mux, &mut out.0) == sys::WebPMuxError::WEBP_MUX_OK;
        sys::WebPMuxDelete(mux);
        if !ok {
            return Err(Error::encode("webp", "libwebp: adding metadata"));
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_come_from_anmf_chunks() {
        let mut f = b"RIFF\0\0\0\0WEBPANIM\x06\0\0\0\0\0\0\0\0\0".to_vec();
        for d in [100u32, 70_000] {
            f.extend(b"ANMF\x10\0\0\0");
            f.extend([0u8; 12]);
            f.extend(&d.to_le_bytes()[..3]);
            f.push(0);
        }
        assert_eq!(durations(&f, 10), [100, 70_000]);
        assert_eq!(durations(&f, 1), [100]);
        assert_eq!(durations(&f[..f.len() - 10], 10), [100]);
    }
}
