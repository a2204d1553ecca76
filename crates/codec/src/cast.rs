//! The one cast step between the pipeline and a saver: samples become a type the saver
//! accepts, by one rule. Integers scale to the other width with rounding (as libvips casts
//! for an 8-bit-only format); floats are linear light, so colour bands go through the sRGB
//! curve in either direction while alpha (coverage, not light) scales linearly; values clip.

use crate::error::Result;
use crate::image::{
    linear_to_srgb, srgb_to_linear, BoxStream, Header, ImageStream, SampleFormat, Samples, Strip,
};

/// The sample type a saver accepting `accepts` gets for `from`: `from` itself when accepted,
/// otherwise the nearest accepted type (the widest integer no wider than needed, or float).
pub fn target_format(from: SampleFormat, accepts: &[SampleFormat]) -> SampleFormat {
    use SampleFormat::*;
    if accepts.contains(&from) || accepts.is_empty() {
        return from;
    }
    let preference: &[SampleFormat] = match from {
        U8 => &[U16, F32],
        U16 => &[U8, F32],
        F32 => &[U16, U8],
    };
    preference
        .iter()
        .copied()
        .find(|f| accepts.contains(f))
        .unwrap_or(accepts[0])
}

/// `stream` with its samples cast to a type in `accepts` (unchanged when already one).
pub fn to_accepted<'a>(stream: BoxStream<'a>, accepts: &[SampleFormat]) -> BoxStream<'a> {
    let from = stream.header().format;
    let to = target_format(from, accepts);
    if to == from {
        return stream;
    }
    let mut header = stream.header().clone();
    header.format = to;
    if to != SampleFormat::F32 && header.bit_depth > 16 {
        header.bit_depth = if to == SampleFormat::U8 { 8 } else { 16 };
    } else if to == SampleFormat::U8 {
        header.bit_depth = header.bit_depth.min(8);
    }
    Box::new(Cast {
        inner: stream,
        header,
    })
}

struct Cast<'a> {
    inner: BoxStream<'a>,
    header: Header,
}

impl ImageStream for Cast<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let Some(strip) = self.inner.next_strip()? else {
            return Ok(None);
        };
        let alpha = self.header.has_alpha();
        let samples = cast(strip.samples, self.header.format, self.header.bands, alpha)?;
        Ok(Some(Strip { samples, ..strip }))
    }
}

/// Casts samples of `bands`-sample pixels (the last band alpha when `alpha`) to `to`; fails
/// only when the new buffer cannot be allocated.
pub fn cast(samples: Samples, to: SampleFormat, bands: u8, alpha: bool) -> Result<Samples> {
    let b = bands.max(1) as usize;
    let is_alpha = |i: usize| alpha && i % b == b - 1;
    Ok(match (samples, to) {
        (s, t) if s.format() == t => s,
        (Samples::U16(v), SampleFormat::U8) => Samples::U8(map(&v, |_, x| u16_to_u8(x))?),
        (Samples::U8(v), SampleFormat::U16) => Samples::U16(map(&v, |_, x| u16::from(x) * 257)?),
        (Samples::F32(v), SampleFormat::U8) => {
            Samples::U8(map(&v, |i, x| quantise(x, is_alpha(i), 255.0) as u8)?)
        }
        (Samples::F32(v), SampleFormat::U16) => {
            Samples::U16(map(&v, |i, x| quantise(x, is_alpha(i), 65535.0) as u16)?)
        }
        (Samples::U8(v), SampleFormat::F32) => {
            Samples::F32(map(&v, |i, x| expand(f32::from(x) / 255.0, is_alpha(i)))?)
        }
        (Samples::U16(v), SampleFormat::F32) => {
            Samples::F32(map(&v, |i, x| expand(f32::from(x) / 65535.0, is_alpha(i)))?)
        }
        (s, _) => s,
    })
}

/// `f(index, sample)` for every sample, into a fallibly allocated vector.
fn map<T: Copy, U>(v: &[T], f: impl Fn(usize, T) -> U) -> Result<Vec<U>> {
    let mut out = crate::alloc::with_capacity(v.len(), "cast samples")?;
    out.extend(v.iter().enumerate().map(|(i, &x)| f(i, x)));
    Ok(out)
}

/// A 16-bit sample as 8 bits, rounded.
pub fn u16_to_u8(x: u16) -> u8 {
    ((u32::from(x) * 255 + 32767) / 65535) as u8
}

/// A linear float sample as an integer of scale `max`: sRGB curve for colour, linear alpha.
fn quantise(x: f32, alpha: bool, max: f32) -> f32 {
    let v = if alpha {
        if x.is_nan() {
            0.0
        } else {
            x.clamp(0.0, 1.0)
        }
    } else {
        linear_to_srgb(x)
    };
    (v * max).round()
}

/// An integer sample scaled to 0..1 as linear light (alpha stays as it is).
fn expand(v: f32, alpha: bool) -> f32 {
    if alpha {
        v
    } else {
        srgb_to_linear(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SampleFormat::*;

    #[test]
    fn picks_the_nearest_accepted_type() {
        assert_eq!(target_format(U16, &[U8]), U8);
        assert_eq!(target_format(F32, &[U8, U16]), U16);
        assert_eq!(target_format(U8, &[U8, U16]), U8);
        assert_eq!(target_format(U8, &[F32]), F32);
    }

    #[test]
    fn one_rule_for_every_cast() {
        // Rounded integer scaling.
        assert_eq!(
            cast(Samples::U16(vec![0, 128, 32896, 65535]), U8, 1, false).unwrap(),
            Samples::U8(vec![0, 0, 128, 255])
        );
        // Float colour through the sRGB curve, float alpha linear.
        let s = cast(
            Samples::F32(vec![srgb_to_linear(128.0 / 255.0), 0.5]),
            U8,
            2,
            true,
        )
        .unwrap();
        assert_eq!(s, Samples::U8(vec![128, 128]));
        // Integer to float and back is the identity.
        let all: Vec<u8> = (0..=255).collect();
        let f = cast(Samples::U8(all.clone()), F32, 1, false).unwrap();
        assert_eq!(cast(f, U8, 1, false).unwrap(), Samples::U8(all));
        assert_eq!(
            cast(Samples::F32(vec![f32::NAN, 7.0]), U8, 1, false).unwrap(),
            Samples::U8(vec![0, 255])
        );
    }
}
