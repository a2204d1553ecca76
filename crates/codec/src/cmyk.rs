//! CMYK to sRGB through the image's own ICC profile (moxcms), when it has a CMYK one.
//!
//! Without a profile, loaders fall back to the naive formula `(255 - c) * (255 - k) / 255`,
//! which is what browsers and djpeg show; with one, inks are converted as the printer meant.

use std::sync::Arc;

use moxcms::{ColorProfile, DataColorSpace, Layout, TransformExecutor, TransformOptions};

/// A ready CMYK -> sRGB transform.
#[derive(Clone)]
pub struct InkProfile {
    transform: Arc<dyn TransformExecutor<u8> + Send + Sync>,
}

impl std::fmt::Debug for InkProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InkProfile")
    }
}

impl InkProfile {
    /// The transform for `icc`, if it parses and describes CMYK.
    pub fn from_icc(icc: &[u8]) -> Option<Self> {
        let profile = ColorProfile::new_from_slice(icc).ok()?;
        if profile.color_space != DataColorSpace::Cmyk {
            return None;
        }
        let transform = profile
            .create_transform_8bit(
                Layout::Rgba,
                &ColorProfile::new_srgb(),
                Layout::Rgb,
                TransformOptions::default(),
            )
            .ok()?;
        Some(InkProfile { transform })
    }

    /// Converts interleaved inks (0 = none, 255 = full) to interleaved RGB. Returns false if
    /// the transform refused the data (the caller then uses the naive formula).
    pub fn to_rgb(&self, inks: &[u8], rgb: &mut [u8]) -> bool {
        self.transform.transform(inks, rgb).is_ok()
    }
}

/// The naive conversion of interleaved inks (0 = none) to RGB.
pub fn naive_to_rgb(inks: &[u8], rgb: &mut [u8]) {
    for (px, out) in inks.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
        let k = 255 - u32::from(px[3]);
        for i in 0..3 {
            out[i] = (((255 - u32::from(px[i])) * k + 127) / 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_conversion_is_the_textbook_formula() {
        let inks = [0u8, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 128, 255, 51];
        let mut rgb = [0u8; 12];
        naive_to_rgb(&inks, &mut rgb);
        assert_eq!(rgb, [255, 255, 255, 0, 0, 0, 0, 255, 255, 204, 102, 0]);
    }

    #[test]
    fn an_rgb_profile_is_not_an_ink_profile() {
        assert!(InkProfile::from_icc(b"not a profile").is_none());
    }
}
