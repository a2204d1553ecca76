//! JPEG saving with jpeg-encoder, which pulls rows in order: we hand it rows from the strip
//! stream as it asks, so a full-size image is never assembled.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use jpeg_encoder::{ChromaSubsamplingMethod, Encoder, ImageBuffer, JpegColorType};

use super::colour;
use crate::codec::{exif, SaveOptions};
use crate::error::{Error, Result};
use crate::image::{BoxStream, Samples};
use crate::io::{Target, TargetWriter};

/// Largest dimension the JPEG format can hold.
const MAX_SIDE: u32 = 65535;
/// XMP APP1 signature.
const XMP_SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// Encodes `stream` as a baseline JPEG into `target`, then finishes it.
pub fn save(stream: BoxStream, opts: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let header = stream.header().clone();
    if header.width > MAX_SIDE || header.height > MAX_SIDE {
        return Err(Error::encode(
            "jpeg",
            format!(
                "{}x{} is larger than JPEG's {MAX_SIDE}-pixel limit",
                header.width, header.height
            ),
        ));
    }
    let failure: Rc<RefCell<Option<Error>>> = Rc::default();
    let mut writer = Guarded {
        inner: TargetWriter::new(target),
        failure: failure.clone(),
    };
    let mut enc = Encoder::new(&mut writer, opts.quality.clamp(1, 100));
    enc.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    if !opts.strip {
        add_metadata(&mut enc, &header.meta);
    }
    let grey = header.bands <= 2;
    let rows = Rows {
        width: header.width as u16,
        height: header.height as u16,
        grey,
        state: RefCell::new(Pull {
            stream,
            strip: Vec::new(),
            strip_y: 0,
            strip_h: 0,
            failure: failure.clone(),
        }),
    };
    let result = enc.encode_image(rows);
    // The stream's own error, if any, explains an encoder failure better than the write error
    // we raised to stop it.
    if let Some(e) = failure.borrow_mut().take() {
        return Err(e);
    }
    result.map_err(|e| Error::encode("jpeg", e))?;
    writer.inner.finish().map_err(Error::Write)
}

fn add_metadata<W: jpeg_encoder::JfifWrite>(enc: &mut Encoder<W>, meta: &crate::image::Metadata) {
    if let Some(fixed) = exif::for_output(meta) {
        if enc.add_exif_metadata(&fixed).is_err() {
            tracing::debug!(
                "EXIF of {} bytes does not fit a JPEG segment; dropped",
                fixed.len()
            );
        }
    }
    if let Some(x) = &meta.xmp {
        let mut seg = XMP_SIG.to_vec();
        seg.extend_from_slice(x);
        if enc.add_app_segment(1, seg).is_err() {
            tracing::debug!(
                "XMP of {} bytes does not fit a JPEG segment; dropped",
                x.len()
            );
        }
    }
    if let Some(icc) = &meta.icc {
        if enc.add_icc_profile(icc).is_err() {
            tracing::debug!(
                "ICC profile of {} bytes is too large for JPEG; dropped",
                icc.len()
            );
        }
    }
}

/// The encoder's writer: fails as soon as the row source failed, which stops the encoder
/// (its row callback cannot return an error).
struct Guarded<'t> {
    inner: TargetWriter<'t>,
    failure: Rc<RefCell<Option<Error>>>,
}

impl Write for Guarded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failure.borrow().is_some() {
            return Err(io::Error::other("input failed"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Pull<'s> {
    stream: BoxStream<'s>,
    /// Current strip as 8-bit samples.
    strip: Vec<u8>,
    strip_y: usize,
    strip_h: usize,
    failure: Rc<RefCell<Option<Error>>>,
}

impl Pull<'_> {
    /// Makes the current strip cover row `y` (rows are asked for in order).
    fn seek_row(&mut self, y: usize) -> bool {
        while y >= self.strip_y + self.strip_h {
            if self.failure.borrow().is_some() {
                return false;
            }
            match self.stream.next_strip() {
                Ok(Some(s)) => {
                    self.strip_y = s.y as usize;
                    self.strip_h = s.height as usize;
                    self.strip = to_u8(s.samples);
                }
                Ok(None) => {
                    *self.failure.borrow_mut() =
                        Some(Error::encode("jpeg", format!("stream ended at row {y}")));
                    return false;
                }
                Err(e) => {
                    *self.failure.borrow_mut() = Some(e);
                    return false;
                }
            }
        }
        true
    }
}

/// 8-bit samples: `codec::save` has already cast them (the one cast rule); this unwraps.
pub fn to_u8(samples: Samples) -> Vec<u8> {
    match crate::codec::cast::cast(samples, crate::image::SampleFormat::U8, 1, false) {
        Samples::U8(v) => v,
        _ => Vec::new(),
    }
}

struct Rows<'s> {
    width: u16,
    height: u16,
    grey: bool,
    state: RefCell<Pull<'s>>,
}

impl ImageBuffer for Rows<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        if self.grey {
            JpegColorType::Luma
        } else {
            JpegColorType::Ycbcr
        }
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let mut st = self.state.borrow_mut();
        let w = self.width as usize;
        if !st.seek_row(y as usize) {
            // Keep the encoder's buffers consistent; the writer stops it at its next write.
            let n = if self.grey { 1 } else { 3 };
            for b in buffers.iter_mut().take(n) {
                b.extend(std::iter::repeat_n(0, w));
            }
            return;
        }
        let bands = st.strip.len() / (st.strip_h * w).max(1);
        let at = (y as usize - st.strip_y) * w * bands;
        let row = &st.strip[at..at + w * bands];
        if self.grey {
            buffers[0].extend(row.iter().step_by(bands));
            return;
        }
        let [yb, cb, cr, _] = buffers;
        rgb_row_to_ycc(row, bands, yb, cb, cr);
    }
}

/// The encoder's own RGB -> YCbCr arithmetic (16 fraction bits), written into pre-sized
/// buffers so the loop vectorises.
fn rgb_row_to_ycc(row: &[u8], bands: usize, yb: &mut Vec<u8>, cb: &mut Vec<u8>, cr: &mut Vec<u8>) {
    let n = row.len() / bands;
    let at = yb.len();
    yb.resize(at + n, 0);
    cb.resize(at + n, 0);
    cr.resize(at + n, 0);
    let (yo, uo, vo) = (&mut yb[at..], &mut cb[at..], &mut cr[at..]);
    if colour::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked above).
        unsafe { ycc_avx2(row, bands, yo, uo, vo) }
    } else {
        ycc_generic(row, bands, yo, uo, vo)
    }
}

colour::avx2_dispatch!(
    ycc_generic,
    ycc_avx2,
    (row: &[u8], bands: usize, yo: &mut [u8], uo: &mut [u8], vo: &mut [u8])
);

#[inline(always)]
fn ycc_generic(row: &[u8], bands: usize, yo: &mut [u8], uo: &mut [u8], vo: &mut [u8]) {
    #[inline(always)]
    fn convert(px: &[u8]) -> (u8, u8, u8) {
        let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
        let y = 19595 * r + 38470 * g + 7471 * b;
        let u = -11059 * r - 21709 * g + 32768 * b + (128 << 16);
        let v = 32768 * r - 27439 * g - 5329 * b + (128 << 16);
        (
            ((y + 0x7FFF) >> 16) as u8,
            ((u + 0x7FFF) >> 16) as u8,
            ((v + 0x7FFF) >> 16) as u8,
        )
    }
    if bands == 3 {
        for (((px, y), u), v) in row.chunks_exact(3).zip(yo).zip(uo).zip(vo) {
            (*y, *u, *v) = convert(px);
        }
    } else {
        for (((px, y), u), v) in row.chunks_exact(bands).zip(yo).zip(uo).zip(vo) {
            (*y, *u, *v) = convert(px);
        }
    }
}
