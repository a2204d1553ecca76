//! A JPEG source's gain map through a render: the map gets the primary's geometry (the same
//! source region, resized to keep the source's map-to-primary ratio, then the same right-angle
//! transform) and is encoded before the primary, so the Ultra HDR output can be assembled.
//!
//! The map is kept only where it still describes the output: a JPEG output (the one format
//! here that carries it) of unchanged colours. `grey` and `invert` drop it, as the map holds
//! the HDR-to-SDR ratio of the original colours, and an HDR display would multiply the new
//! colours by it (brightening what were highlights of the original, re-colouring a grey
//! image with a colour map). `sdr` and `strip` drop it too (`strip`: like libvips' `keep`,
//! the map's metadata is metadata).

use fast_image_resize::{images::ImageRef, CpuExtensions, PixelType, ResizeOptions, Resizer};

use crate::codec::jpeg::gainmap::{self, SourceMap};
use crate::codec::{InputFormat, Limits, LoadOptions, OutputFormat, SaveOptions};
use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, Image, ImageStream, Metadata, Samples, Strip, STRIP_ROWS};
use crate::io::Source;
use crate::ops::{self, Orient};
use crate::pipeline::{orientation, upright_crop, Plan};
use crate::spec::Spec;

/// Lowest quality a map is encoded at: a map is small (a quarter of the primary's sides, one
/// band), and its errors are multiplied into every highlight. libvips encodes it at the
/// primary's quality; at Q85 a thumbnail's map was 33.8 dB from a full-precision resize.
const MIN_QUALITY: u8 = 90;

/// The output's gain map, encoded, and what the primary needs to point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputMap {
    /// The map JPEG, whole.
    pub jpeg: Vec<u8>,
    /// Its size.
    pub size: (u32, u32),
    /// The primary's ISO 21496-1 version box, copied from the source.
    pub primary_iso: Option<Vec<u8>>,
}

/// Whether a render of `input` into `output` through `spec` keeps a gain map.
pub fn wanted(input: InputFormat, output: OutputFormat, spec: &Spec) -> bool {
    input == InputFormat::Jpeg
        && output == OutputFormat::Jpeg
        && !(spec.sdr || spec.strip || spec.grey || spec.invert)
        && spec.page.unwrap_or(0) == 0
}

/// The source's gain map, rendered with the geometry of `plan` and `spec`; `None` when there
/// is none, or it cannot be rendered (the output is then the base image alone, and the reason
/// is logged).
pub fn render(
    src: &mut Source,
    header: &Header,
    plan: &Plan,
    spec: &Spec,
    save: &SaveOptions,
    limits: &Limits,
) -> Option<OutputMap> {
    let found = gainmap::find(src, header, limits)?;
    match render_found(&found, header, plan, spec, save, limits) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!("{}: gain map dropped: {e}", src.name());
            None
        }
    }
}

fn render_found(
    found: &SourceMap,
    header: &Header,
    plan: &Plan,
    spec: &Spec,
    save: &SaveOptions,
    limits: &Limits,
) -> Result<OutputMap> {
    let mut probe_src = Source::memory(found.jpeg.as_slice());
    let mh = crate::codec::jpeg::probe(&mut probe_src)?;
    crate::codec::check_limits(&mh, limits.max_pixels)?;
    let (region, out) = output_region(plan, spec, header.meta.orientation)?;
    let (w, h) = (plan.source.0 as f64, plan.source.1 as f64);
    let (rx, ry) = (mh.width as f64 / w, mh.height as f64 / h);
    let map_region = [
        region[0] * rx,
        region[1] * ry,
        region[2] * rx,
        region[3] * ry,
    ];
    let size = (
        ((out.0 as f64 * rx).round() as u32).max(1),
        ((out.1 as f64 * ry).round() as u32).max(1),
    );
    // Shrink in the DCT while at least 4x is left for Lanczos3 (the primary leaves 2x): a map
    // is small, and its detail is the photo's. Measured on a 534x356 map to 64x43: libjpeg's
    // 1/4 then Lanczos3 is 32 dB from a full decode's Lanczos3, 1/2 then Lanczos3 57 dB.
    let fold = ((map_region[2] - map_region[0]) / size.0 as f64)
        .min((map_region[3] - map_region[1]) / size.1 as f64)
        / 4.0;
    let shrink = [8u32, 4, 2, 1]
        .into_iter()
        .find(|&d| d as f64 <= fold)
        .unwrap_or(1);
    let opts = LoadOptions {
        shrink,
        limits: *limits,
        fit: Some(size),
        ..Default::default()
    };
    let loaded = crate::codec::jpeg::load(Source::memory(found.jpeg.as_slice()), &opts)?;
    let applied = loaded.shrink.max(1) as f64;
    let image = Image::collect(loaded.stream)?;
    let r = map_region.map(|v| v / applied);
    let mut resized = resample(&image, [r[0], r[1], r[2] - r[0], r[3] - r[1]], size)?;
    let meta = gainmap::map_meta(&found.jpeg);
    resized.header.meta = Metadata {
        orientation: 1,
        icc: meta.icc.clone(),
        exif: None,
        xmp: meta.xmp.clone(),
    };
    let t = orientation(plan, spec, header.meta.orientation);
    let stream = ops::orient(Box::new(resized.into_stream(STRIP_ROWS)), t)?;
    let size = (stream.header().width, stream.header().height);
    let quality = save.quality().max(MIN_QUALITY);
    Ok(OutputMap {
        jpeg: gainmap::encode_map(stream, &meta, quality)?,
        size,
        primary_iso: found.primary_iso.clone(),
    })
}

/// `stream` with an XMP that no longer announces a gain map, when it did: the output carries
/// none.
pub fn unannounced(stream: BoxStream<'_>) -> BoxStream<'_> {
    let Some(xmp) = stream.header().meta.xmp.as_deref() else {
        return stream;
    };
    let Some(clean) = gainmap::without_announcement(xmp) else {
        return stream;
    };
    let mut header = stream.header().clone();
    header.meta.xmp = Some(std::sync::Arc::new(clean));
    Box::new(Retagged {
        input: stream,
        header,
    })
}

/// A stream under another header (same pixels, other metadata).
struct Retagged<'a> {
    input: BoxStream<'a>,
    header: Header,
}

impl ImageStream for Retagged<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        self.input.next_strip()
    }
}

/// The part of the source (stored orientation, source pixels: x0, y0, x1, y1) that the
/// output shows, and the output's size in stored orientation (before the right-angle
/// transform). `stored` is the source's EXIF orientation.
pub fn output_region(plan: &Plan, spec: &Spec, stored: u8) -> Result<([f64; 4], (u32, u32))> {
    let (w, h) = plan.source;
    let s = plan.box_shrink.max(1);
    let (rw, rh) = plan.resize.unwrap_or((w.div_ceil(s), h.div_ceil(s)));
    // Output pixels per source pixel: a resize spans the whole source; a box shrink alone
    // covers `s` source pixels per output pixel (the last one fewer).
    let (sx, sy) = match plan.resize {
        Some((rw, rh)) => (w as f64 / rw as f64, h as f64 / rh as f64),
        None => (s as f64, s as f64),
    };
    let rect = match upright_crop(plan, spec)? {
        Some(rect) => {
            let a = if plan.autorotate {
                Orient::exif(stored)
            } else {
                Orient::IDENTITY
            };
            a.source_rect(rect, rw, rh)
        }
        None => crate::spec::CropRect {
            x: 0,
            y: 0,
            width: rw,
            height: rh,
        },
    };
    let x0 = rect.x as f64 * sx;
    let y0 = rect.y as f64 * sy;
    let x1 = ((rect.x + rect.width) as f64 * sx).min(w as f64);
    let y1 = ((rect.y + rect.height) as f64 * sy).min(h as f64);
    Ok(([x0, y0, x1, y1], (rect.width, rect.height)))
}

/// Lanczos3 of the fractional `crop` (x, y, width, height) of `image` to `size`.
fn resample(image: &Image, crop: [f64; 4], size: (u32, u32)) -> Result<Image> {
    let op = |e: &dyn std::fmt::Display| Error::op("gain map", e.to_string());
    let hd = &image.header;
    let pt = match hd.bands {
        1 => PixelType::U8,
        3 => PixelType::U8x3,
        b => return Err(op(&format!("{b} bands"))),
    };
    let Samples::U8(data) = &image.samples else {
        return Err(op(&"not 8-bit"));
    };
    let src = ImageRef::new(hd.width, hd.height, data, pt).map_err(|e| op(&e))?;
    let mut dst = fast_image_resize::images::Image::new(size.0, size.1, pt);
    let mut resizer = Resizer::new();
    if !crate::simd::enabled() {
        // SAFETY: no extensions at all is always supported by the CPU.
        unsafe { resizer.set_cpu_extensions(CpuExtensions::None) };
    }
    let (x, y) = (crop[0].max(0.0), crop[1].max(0.0));
    let cw = crop[2].min(hd.width as f64 - x).max(f64::MIN_POSITIVE);
    let ch = crop[3].min(hd.height as f64 - y).max(f64::MIN_POSITIVE);
    resizer
        .resize(&src, &mut dst, &ResizeOptions::new().crop(x, y, cw, ch))
        .map_err(|e| op(&e))?;
    let mut header = hd.clone();
    header.width = size.0;
    header.height = size.1;
    Ok(Image {
        header,
        samples: Samples::U8(dst.into_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::plan;

    fn header(w: u32, h: u32, orientation: u8) -> Header {
        Header {
            width: w,
            height: h,
            bands: 3,
            format: crate::image::SampleFormat::U8,
            bit_depth: 8,
            meta: Metadata {
                orientation,
                ..Default::default()
            },
        }
    }

    fn region(w: u32, h: u32, o: u8, spec: &str) -> ([f64; 4], (u32, u32)) {
        let spec: Spec = spec.parse().unwrap();
        let p = plan(&header(w, h, o), &spec);
        output_region(&p, &spec, o).unwrap()
    }

    #[test]
    fn the_region_follows_resize_crop_and_orientation() {
        assert_eq!(
            region(4000, 3000, 1, "w400"),
            ([0.0, 0.0, 4000.0, 3000.0], (400, 300))
        );
        // fill: 300x300 of 400x300 from the centre.
        assert_eq!(
            region(4000, 3000, 1, "300x300_fill"),
            ([500.0, 0.0, 3500.0, 3000.0], (300, 300))
        );
        // A box shrink's last pixel stands for less: the region stops at the source's edge.
        assert_eq!(
            region(10, 10, 1, "shrink4"),
            ([0.0, 0.0, 10.0, 10.0], (3, 3))
        );
        // Orientation 6 (stored landscape shown portrait): an upright crop of the top rows is
        // a crop of the stored left columns.
        assert_eq!(
            region(400, 300, 6, "crop300x100+0+0"),
            ([0.0, 0.0, 100.0, 300.0], (100, 300))
        );
    }

    #[test]
    fn only_unchanged_colours_in_jpeg_keep_the_map() {
        let w = |s: &str| {
            let spec: Spec = s.parse().unwrap();
            let out = crate::pipeline::output_format(InputFormat::Jpeg, &spec);
            wanted(InputFormat::Jpeg, out, &spec)
        };
        assert!(w("w256") && w("rot90_flip_crop10x10+0+0") && w("q90_jpg"));
        assert!(!w("w256_sdr") && !w("w256_png") && !w("grey") && !w("invert") && !w("strip"));
    }
}
