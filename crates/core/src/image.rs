//! Plain data types for images in flight: headers, metadata, sample buffers and strips.

use std::sync::Arc;

use crate::alloc;
use crate::error::Result;

/// The numeric type of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    /// 8-bit unsigned.
    U8,
    /// 16-bit unsigned (native endian in memory).
    U16,
    /// 32-bit float, linear light, nominal range 0..1 (PFM, HDR). Integer formats carry
    /// sRGB-encoded values, so conversions between the two apply the sRGB transfer curve.
    F32,
}

impl SampleFormat {
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            SampleFormat::U8 => 1,
            SampleFormat::U16 => 2,
            SampleFormat::F32 => 4,
        }
    }
}

/// Metadata carried from loader to saver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// EXIF orientation 1..8 (1 = upright, also used when absent).
    pub orientation: u8,
    /// Embedded ICC profile.
    pub icc: Option<Arc<Vec<u8>>>,
    /// Raw EXIF, starting at the TIFF header ("II*\0" / "MM\0*").
    pub exif: Option<Arc<Vec<u8>>>,
    /// Raw XMP packet.
    pub xmp: Option<Arc<Vec<u8>>>,
}

impl Metadata {
    /// Metadata with orientation 1 and nothing else.
    pub fn upright() -> Self {
        Metadata {
            orientation: 1,
            ..Default::default()
        }
    }
}

/// Everything known about an image before its pixels are decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Samples per pixel, 1..=4: grey, grey+alpha, RGB, RGBA.
    pub bands: u8,
    /// Sample type.
    pub format: SampleFormat,
    /// Significant bits per sample as stored in the file (1..16, or 32 for float).
    pub bit_depth: u8,
    /// Orientation, ICC, EXIF, XMP.
    pub meta: Metadata,
}

impl Header {
    /// True for grey+alpha and RGBA.
    pub fn has_alpha(&self) -> bool {
        self.bands == 2 || self.bands == 4
    }

    /// Samples in one row.
    pub fn row_samples(&self) -> usize {
        self.width as usize * self.bands as usize
    }

    /// Pixel count, checked.
    pub fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// Samples of one strip, interleaved by band, rows packed without padding.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    /// 8-bit samples.
    U8(Vec<u8>),
    /// 16-bit samples.
    U16(Vec<u16>),
    /// Float samples.
    F32(Vec<f32>),
}

impl Samples {
    /// A zeroed buffer of `len` samples of `format`, or an out-of-memory error.
    pub fn try_zeroed(format: SampleFormat, len: usize) -> Result<Self> {
        const WHAT: &str = "image samples";
        Ok(match format {
            SampleFormat::U8 => Samples::U8(alloc::filled(len, 0, WHAT)?),
            SampleFormat::U16 => Samples::U16(alloc::filled(len, 0, WHAT)?),
            SampleFormat::F32 => Samples::F32(alloc::filled(len, 0.0, WHAT)?),
        })
    }

    /// The sample type.
    pub fn format(&self) -> SampleFormat {
        match self {
            Samples::U8(_) => SampleFormat::U8,
            Samples::U16(_) => SampleFormat::U16,
            Samples::F32(_) => SampleFormat::F32,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::U8(v) => v.len(),
            Samples::U16(v) => v.len(),
            Samples::F32(v) => v.len(),
        }
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A band of consecutive full-width rows, the unit that flows through a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Strip {
    /// Index of the first row in the image.
    pub y: u32,
    /// Number of rows.
    pub height: u32,
    /// `height * width * bands` samples.
    pub samples: Samples,
}

/// A pull-based stream of strips, top to bottom: what loaders produce and operations transform.
pub trait ImageStream: Send {
    /// The header of the image this stream produces (final size and format).
    fn header(&self) -> &Header;
    /// The next strip, or `None` after the last row.
    fn next_strip(&mut self) -> Result<Option<Strip>>;
}

impl<S: ImageStream + ?Sized> ImageStream for Box<S> {
    fn header(&self) -> &Header {
        (**self).header()
    }
    fn next_strip(&mut self) -> Result<Option<Strip>> {
        (**self).next_strip()
    }
}

/// A boxed stream, the currency of the pipeline.
pub type BoxStream<'a> = Box<dyn ImageStream + 'a>;

/// A whole decoded image in memory (used by operations that need every row, and by tests).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Size, bands, format and metadata.
    pub header: Header,
    /// `height * width * bands` samples.
    pub samples: Samples,
}

impl Image {
    /// Drains a stream into memory.
    pub fn collect(mut stream: impl ImageStream) -> Result<Image> {
        let header = stream.header().clone();
        let total = alloc::len(
            &[header.row_samples(), header.height as usize],
            "a whole image",
        )?;
        let mut samples = Samples::try_zeroed(header.format, 0)?;
        reserve(&mut samples, total)?;
        while let Some(strip) = stream.next_strip()? {
            append(&mut samples, strip.samples)?;
        }
        if samples.len() != total {
            return Err(crate::Error::op(
                "collect",
                format!(
                    "stream produced {} samples, expected {total}",
                    samples.len()
                ),
            ));
        }
        Ok(Image { header, samples })
    }

    /// Turns the image into a stream of strips of at most `rows` rows.
    pub fn into_stream(self, rows: u32) -> ImageStrips {
        ImageStrips {
            image: self,
            y: 0,
            rows: rows.max(1),
        }
    }
}

/// Rows per strip wherever an image held whole is streamed on (a loader that decodes at once,
/// an operation that needs the whole image): one value, so strips look alike to every stage.
pub const STRIP_ROWS: u32 = 64;

fn reserve(s: &mut Samples, n: usize) -> Result<()> {
    const WHAT: &str = "a whole image";
    match s {
        Samples::U8(v) => alloc::reserve(v, n, WHAT),
        Samples::U16(v) => alloc::reserve(v, n, WHAT),
        Samples::F32(v) => alloc::reserve(v, n, WHAT),
    }
}

fn append(dst: &mut Samples, src: Samples) -> Result<()> {
    match (dst, src) {
        (Samples::U8(d), Samples::U8(s)) => d.extend_from_slice(&s),
        (Samples::U16(d), Samples::U16(s)) => d.extend_from_slice(&s),
        (Samples::F32(d), Samples::F32(s)) => d.extend_from_slice(&s),
        _ => {
            return Err(crate::Error::op(
                "collect",
                "strip sample format differs from its stream's header",
            ))
        }
    }
    Ok(())
}

/// Streams an in-memory image strip by strip.
pub struct ImageStrips {
    image: Image,
    y: u32,
    rows: u32,
}

impl ImageStream for ImageStrips {
    fn header(&self) -> &Header {
        &self.image.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let h = self.image.header.height;
        if self.y >= h {
            return Ok(None);
        }
        let n = self.rows.min(h - self.y);
        let rs = self.image.header.row_samples();
        let (a, b) = (self.y as usize * rs, (self.y + n) as usize * rs);
        let samples = match &self.image.samples {
            Samples::U8(v) => Samples::U8(v[a..b].to_vec()),
            Samples::U16(v) => Samples::U16(v[a..b].to_vec()),
            Samples::F32(v) => Samples::F32(v[a..b].to_vec()),
        };
        let strip = Strip {
            y: self.y,
            height: n,
            samples,
        };
        self.y += n;
        Ok(Some(strip))
    }
}

/// Linear light to the sRGB-encoded 0..1 scale (IEC 61966-2-1), clipped.
pub fn linear_to_srgb(v: f32) -> f32 {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

/// sRGB-encoded 0..1 to linear light.
pub fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.040_45 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// A float sample (linear light) as an 8-bit sRGB value.
pub fn f32_to_u8(v: f32) -> u8 {
    (linear_to_srgb(v) * 255.0).round() as u8
}

/// A float sample (linear light) as a 16-bit sRGB value.
pub fn f32_to_u16(v: f32) -> u16 {
    (linear_to_srgb(v) * 65535.0).round() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_curve_round_trips() {
        for i in 0..=255u8 {
            let lin = srgb_to_linear(i as f32 / 255.0);
            assert_eq!(f32_to_u8(lin), i);
        }
        assert_eq!(f32_to_u8(2.0), 255);
        assert_eq!(f32_to_u8(f32::NAN), 0);
    }
}
