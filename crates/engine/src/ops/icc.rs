//! Colour management before saving: pixels in a profile other than sRGB are converted to sRGB
//! (moxcms), strip by strip, when the profile would not reach the output (`strip`, a format
//! that cannot carry one) or when the spec says `srgb`; otherwise the profile travels with them.
//!
//! A source without a profile whose EXIF marks it Adobe RGB (1998) (ColorSpace uncalibrated,
//! InteroperabilityIndex R03) is treated as carrying one: converted where it would be dropped,
//! tagged with an Adobe RGB profile where the output can carry it.

use std::sync::{Arc, OnceLock};

use moxcms::{
    ColorProfile, DataColorSpace, Layout, RenderingIntent, Transform16BitExecutor,
    Transform8BitExecutor, TransformF32Executor, TransformOptions,
};

use crate::codec::exif;
use crate::error::{Error, Result};
use crate::image::{
    linear_to_srgb, srgb_to_linear, BoxStream, Header, ImageStream, SampleFormat, Samples, Strip,
};

/// What becomes of the source's colour profile in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColourTarget {
    /// The spec says `srgb`: convert, and tag the output sRGB where a profile can go.
    pub srgb: bool,
    /// A profile reaches the output: the format carries one and the spec does not `strip`.
    pub keeps_profile: bool,
}

/// Colour-manages `input` for `target`: converts, retags or leaves it (see the module docs).
/// Profiles that are not RGB, or that moxcms cannot read, are left as loaded.
pub fn to_output(input: BoxStream, target: ColourTarget) -> Result<BoxStream> {
    let meta = &input.header().meta;
    let hinted = meta.icc.is_none() && meta.exif.as_deref().is_some_and(|e| exif::adobe_rgb(e));
    let source = if hinted {
        adobe_rgb_icc()
    } else {
        meta.icc.clone()
    };
    let srgb_tag = srgb_icc().filter(|_| target.srgb && target.keeps_profile);
    let Some(icc) = source else {
        return Ok(match srgb_tag {
            Some(tag) => retag(input, Some(tag)),
            None => input,
        });
    };
    if target.keeps_profile && !target.srgb {
        return Ok(if hinted {
            retag(input, Some(icc))
        } else {
            input
        });
    }
    match Converter::new(&icc, input.header()) {
        Some(c) if c.identity => Ok(retag(input, srgb_tag)),
        Some(c) => {
            let mut header = input.header().clone();
            header.meta.icc = srgb_tag;
            Ok(Box::new(Convert {
                input,
                header,
                exec: c.exec,
            }))
        }
        None => Ok(input),
    }
}

/// A compact sRGB profile (moxcms' own, ICC v4), built once (`None` if moxcms could not
/// encode it: then nothing is tagged).
pub fn srgb_icc() -> Option<Arc<Vec<u8>>> {
    static ICC: OnceLock<Option<Arc<Vec<u8>>>> = OnceLock::new();
    ICC.get_or_init(|| encoded(ColorProfile::new_srgb()))
        .clone()
}

/// An Adobe RGB (1998) profile (moxcms' own: the specification's primaries, D65 white and
/// gamma 563/256), built once.
pub fn adobe_rgb_icc() -> Option<Arc<Vec<u8>>> {
    static ICC: OnceLock<Option<Arc<Vec<u8>>>> = OnceLock::new();
    ICC.get_or_init(|| encoded(ColorProfile::new_adobe_rgb()))
        .clone()
}

fn encoded(profile: ColorProfile) -> Option<Arc<Vec<u8>>> {
    profile
        .encode()
        .ok()
        .filter(|b| !b.is_empty())
        .map(Arc::new)
}

/// `input` with its header's profile replaced by `icc`.
fn retag(input: BoxStream, icc: Option<Arc<Vec<u8>>>) -> BoxStream {
    let mut header = input.header().clone();
    header.meta.icc = icc;
    Box::new(Retag { input, header })
}

struct Retag<'a> {
    input: BoxStream<'a>,
    header: Header,
}

impl ImageStream for Retag<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        self.input.next_strip()
    }
}

/// A transform to sRGB for one sample type.
enum Exec {
    U8(Arc<Transform8BitExecutor>),
    U16(Arc<Transform16BitExecutor>),
    F32(Arc<TransformF32Executor>, usize),
}

struct Converter {
    exec: Exec,
    /// Converting would move no 8-bit sample by more than one step: the profile is sRGB.
    identity: bool,
}

/// Relative colorimetric, as libvips' `icc_transform` and `thumbnail` default to.
fn options() -> TransformOptions {
    TransformOptions {
        rendering_intent: RenderingIntent::RelativeColorimetric,
        ..TransformOptions::default()
    }
}

impl Converter {
    /// The transform from `icc` to sRGB for `header`'s samples, when `icc` parses, describes
    /// RGB and the image has RGB bands.
    fn new(icc: &[u8], header: &Header) -> Option<Converter> {
        let profile = ColorProfile::new_from_slice(icc).ok()?;
        if profile.color_space != DataColorSpace::Rgb || header.bands < 3 {
            return None;
        }
        let layout = if header.has_alpha() {
            Layout::Rgba
        } else {
            Layout::Rgb
        };
        let srgb = ColorProfile::new_srgb();
        let probe = profile
            .create_transform_8bit(Layout::Rgb, &srgb, Layout::Rgb, options())
            .ok()?;
        let identity = moves_nothing(probe.as_ref())?;
        // Building a transform costs more than converting a thumbnail: reuse the probe's.
        let exec = match header.format {
            SampleFormat::U8 if layout == Layout::Rgb => Exec::U8(probe),
            SampleFormat::U8 => Exec::U8(
                profile
                    .create_transform_8bit(layout, &srgb, layout, options())
                    .ok()?,
            ),
            SampleFormat::U16 => Exec::U16(
                profile
                    .create_transform_16bit(layout, &srgb, layout, options())
                    .ok()?,
            ),
            SampleFormat::F32 => Exec::F32(
                profile
                    .create_transform_f32(layout, &srgb, layout, options())
                    .ok()?,
                header.bands as usize,
            ),
        };
        Some(Converter { exec, identity })
    }
}

/// Whether `t` maps a 9-level grid of RGB colours onto itself within one step.
fn moves_nothing(t: &Transform8BitExecutor) -> Option<bool> {
    let levels = [0u8, 32, 64, 96, 128, 160, 192, 224, 255];
    let mut grid = Vec::with_capacity(levels.len().pow(3) * 3);
    for r in levels {
        for g in levels {
            for b in levels {
                grid.extend_from_slice(&[r, g, b]);
            }
        }
    }
    let mut out = vec![0u8; grid.len()];
    t.transform(&grid, &mut out).ok()?;
    Some(grid.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1))
}

struct Convert<'a> {
    input: BoxStream<'a>,
    header: Header,
    exec: Exec,
}

fn cms_error(e: moxcms::CmsError) -> Error {
    Error::op("srgb", format!("colour conversion failed: {e}"))
}

impl ImageStream for Convert<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let Some(strip) = self.input.next_strip()? else {
            return Ok(None);
        };
        const WHAT: &str = "a colour-converted strip";
        let samples = match (&self.exec, strip.samples) {
            (Exec::U8(t), Samples::U8(v)) => {
                let mut out = crate::alloc::filled(v.len(), 0u8, WHAT)?;
                t.transform(&v, &mut out).map_err(cms_error)?;
                Samples::U8(out)
            }
            (Exec::U16(t), Samples::U16(v)) => {
                let mut out = crate::alloc::filled(v.len(), 0u16, WHAT)?;
                t.transform(&v, &mut out).map_err(cms_error)?;
                Samples::U16(out)
            }
            (Exec::F32(t, bands), Samples::F32(mut v)) => {
                // Float samples are linear light, read as sRGB-encoded by every cast: encode
                // them so for the profile's curve, and back after.
                let colour = 3.min(*bands);
                for px in v.chunks_exact_mut(*bands) {
                    px[..colour]
                        .iter_mut()
                        .for_each(|c| *c = linear_to_srgb(*c));
                }
                let mut out = crate::alloc::filled(v.len(), 0f32, WHAT)?;
                t.transform(&v, &mut out).map_err(cms_error)?;
                for px in out.chunks_exact_mut(*bands) {
                    px[..colour]
                        .iter_mut()
                        .for_each(|c| *c = srgb_to_linear(c.clamp(0.0, 1.0)));
                }
                Samples::F32(out)
            }
            (_, other) => {
                return Err(Error::op(
                    "srgb",
                    format!(
                        "strip holds {:?} samples, unlike its header",
                        other.format()
                    ),
                ))
            }
        };
        Ok(Some(Strip { samples, ..strip }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Image, Metadata};

    fn image(format: SampleFormat, bands: u8, icc: Option<Arc<Vec<u8>>>) -> Image {
        let (w, h) = (5u32, 3u32);
        let n = (w * h) as usize * bands as usize;
        let samples = match format {
            SampleFormat::U8 => Samples::U8((0..n).map(|i| (i * 37 % 256) as u8).collect()),
            SampleFormat::U16 => Samples::U16((0..n).map(|i| (i * 9973 % 65536) as u16).collect()),
            SampleFormat::F32 => Samples::F32((0..n).map(|i| (i % 17) as f32 / 16.0).collect()),
        };
        Image {
            header: Header {
                width: w,
                height: h,
                bands,
                format,
                bit_depth: if format == SampleFormat::U16 { 16 } else { 8 },
                meta: Metadata {
                    icc,
                    ..Metadata::upright()
                },
            },
            samples,
        }
    }

    fn p3() -> Arc<Vec<u8>> {
        Arc::new(ColorProfile::new_display_p3().encode().unwrap())
    }

    const STRIP: ColourTarget = ColourTarget {
        srgb: false,
        keeps_profile: false,
    };

    fn run(img: Image, target: ColourTarget) -> Image {
        let s = to_output(Box::new(img.into_stream(2)), target).unwrap();
        Image::collect(s).unwrap()
    }

    #[test]
    fn p3_is_converted_when_dropped_and_alpha_is_untouched() {
        for format in [SampleFormat::U8, SampleFormat::U16, SampleFormat::F32] {
            let src = image(format, 4, Some(p3()));
            let out = run(src.clone(), STRIP);
            assert_eq!(out.header.meta.icc, None);
            assert_ne!(out.samples, src.samples, "{format:?}");
            let alpha = |s: &Samples| -> Vec<f64> {
                match s {
                    Samples::U8(v) => v.iter().skip(3).step_by(4).map(|&x| x as f64).collect(),
                    Samples::U16(v) => v.iter().skip(3).step_by(4).map(|&x| x as f64).collect(),
                    Samples::F32(v) => v.iter().skip(3).step_by(4).map(|&x| x as f64).collect(),
                }
            };
            assert_eq!(alpha(&out.samples), alpha(&src.samples), "{format:?}");
        }
    }

    #[test]
    fn p3_red_becomes_out_of_gamut_srgb_red() {
        let mut src = image(SampleFormat::U8, 3, Some(p3()));
        src.samples = Samples::U8([255u8, 0, 0].repeat(15));
        let Samples::U8(v) = run(src, STRIP).samples else {
            panic!()
        };
        // P3's red is beyond sRGB's: clipped to full red.
        assert_eq!(&v[..3], &[255, 0, 0]);
        let mut src = image(SampleFormat::U8, 3, Some(p3()));
        src.samples = Samples::U8([128u8, 64, 32].repeat(15));
        let Samples::U8(v) = run(src, STRIP).samples else {
            panic!()
        };
        // A P3 orange is a more saturated sRGB one.
        assert!(v[0] > 128 && v[2] < 32, "{:?}", &v[..3]);
    }

    #[test]
    fn a_kept_profile_is_left_alone_and_srgb_retags() {
        let keep = ColourTarget {
            srgb: false,
            keeps_profile: true,
        };
        let src = image(SampleFormat::U8, 3, Some(p3()));
        assert_eq!(run(src.clone(), keep), src);
        let out = run(
            src.clone(),
            ColourTarget {
                srgb: true,
                keeps_profile: true,
            },
        );
        assert_eq!(out.header.meta.icc, srgb_icc());
        assert_ne!(out.samples, src.samples);
        // No profile: `srgb` tags only.
        let plain = image(SampleFormat::U8, 3, None);
        let out = run(
            plain.clone(),
            ColourTarget {
                srgb: true,
                keeps_profile: true,
            },
        );
        assert_eq!(
            (out.samples, out.header.meta.icc),
            (plain.samples, srgb_icc())
        );
    }

    #[test]
    fn srgb_profiles_and_unusable_ones_change_no_pixel() {
        let src = image(SampleFormat::U8, 3, srgb_icc());
        assert_eq!(run(src.clone(), STRIP).samples, src.samples);
        let grey = image(SampleFormat::U8, 1, Some(p3()));
        assert_eq!(run(grey.clone(), STRIP), grey);
        let junk = image(SampleFormat::U8, 3, Some(Arc::new(b"junk".to_vec())));
        assert_eq!(run(junk.clone(), STRIP), junk);
    }

    #[test]
    fn built_profiles_parse_back() {
        for icc in [srgb_icc(), adobe_rgb_icc()] {
            let p = ColorProfile::new_from_slice(&icc.unwrap()).unwrap();
            assert_eq!(p.color_space, DataColorSpace::Rgb);
        }
    }
}
