//! Bounds before pixels: every size a render will hold is checked when it is planned, from the
//! header and the spec alone, so an output bomb (`w200000_up`) fails at once with a message
//! naming the limit instead of allocating gigabytes first.

use crate::codec;
use crate::error::{Error, Result};
use crate::image::Header;
use crate::pipeline::{orientation, Plan};
use crate::spec::{OutputFormat, Rotation, Spec};

/// Checks the sizes `plan` will produce for `header` and `spec`: the resize canvas, the
/// crops, the output, against `max_output_pixels` and the saver of `output`; and the image a
/// right-angle transform collects against `memory_limit` (bytes).
pub fn check_plan(
    header: &Header,
    plan: &Plan,
    spec: &Spec,
    output: OutputFormat,
    max_output_pixels: u64,
    memory_limit: u64,
) -> Result<()> {
    let (cw, ch) = plan.canvas;
    // The canvas (resize output) is the largest image after loading; crops only cut it.
    let (mut w, mut h) = (cw, ch);
    if let Some(r) = plan.fill_crop {
        (w, h) = (r.width as u64, r.height as u64);
    }
    if let Some(r) = spec.crop {
        let fits = r.x as u64 + r.width as u64 <= w && r.y as u64 + r.height as u64 <= h;
        if !fits {
            return Err(Error::op(
                "crop",
                format!(
                    "{}x{}+{}+{} does not fit inside the {w}x{h} image",
                    r.width, r.height, r.x, r.y
                ),
            ));
        }
        (w, h) = (r.width as u64, r.height as u64);
    }
    // The cropped region is what a rotation or flip holds whole (see `ops::orient`).
    let held = (w, h);
    if matches!(spec.rotate, Some(Rotation::R90 | Rotation::R270)) {
        (w, h) = (h, w);
    }
    // The format's own limit first: no option can lift it, so it is the cause to name.
    let bands = if spec.grey && header.bands > 2 {
        header.bands - 2
    } else {
        header.bands
    };
    codec::check_saver(output, w, h, bands, header.format)?;
    let over = |pw: u64, ph: u64| pw.saturating_mul(ph) > max_output_pixels;
    if over(cw, ch) {
        let what = if (cw, ch) == (w, h) || (cw, ch) == (h, w) {
            "output"
        } else {
            "resize to"
        };
        return Err(Error::Limit(format!(
            "{what} {cw}x{ch} exceeds --max-output-pixels {max_output_pixels}"
        )));
    }
    if over(w, h) {
        return Err(Error::Limit(format!(
            "output {w}x{h} exceeds --max-output-pixels {max_output_pixels}"
        )));
    }
    if spec.gravity.is_smart() && plan.fill_crop.is_some() {
        // A smart fill gravity looks at the whole resized canvas before it crops.
        let sample = header.format.bytes() as u64;
        let bytes = cw
            .saturating_mul(ch)
            .saturating_mul(header.bands as u64)
            .saturating_mul(sample);
        if bytes > memory_limit {
            return Err(Error::Limit(format!(
                "choosing the {} window holds the {cw}x{ch} canvas ({} bands of {sample} \
                 bytes), {bytes} bytes, over the render memory limit of {memory_limit} bytes",
                spec.gravity.token().unwrap_or("fill"),
                header.bands
            )));
        }
    }
    if orientation(plan, spec, header.meta.orientation).collects() {
        let (hw, hh) = held;
        let sample = header.format.bytes() as u64;
        let bytes = hw
            .saturating_mul(hh)
            .saturating_mul(header.bands as u64)
            .saturating_mul(sample);
        if bytes > memory_limit {
            return Err(Error::Limit(format!(
                "rotating or flipping {hw}x{hh} ({} bands of {sample} bytes) holds {bytes} bytes, \
                 over the render memory limit of {memory_limit} bytes",
                header.bands
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Metadata, SampleFormat};
    use crate::pipeline::plan;

    fn photo(w: u32, h: u32) -> Header {
        Header {
            width: w,
            height: h,
            bands: 3,
            format: SampleFormat::U8,
            bit_depth: 8,
            meta: Metadata::upright(),
        }
    }

    fn check(h: &Header, spec: &str) -> Result<()> {
        let spec: Spec = spec.parse().unwrap();
        let out = spec.format.unwrap_or(OutputFormat::Jpeg);
        check_plan(h, &plan(h, &spec), &spec, out, 200_000_000, 1 << 30)
    }

    #[test]
    fn output_bombs_are_refused_with_the_limit_named() {
        let h = photo(4000, 3000);
        let e = check(&h, "w60000_up").unwrap_err().to_string();
        assert_eq!(
            e,
            "output 60000x45000 exceeds --max-output-pixels 200000000"
        );
        let e = check(&h, "w200000_up").unwrap_err().to_string();
        assert_eq!(
            e,
            "JPEG output is limited to 65500 px per side (libjpeg's JPEG_MAX_DIMENSION): \
             200000x150000 asked"
        );
        let e = check(&h, "13000x13000_fill_up").unwrap_err().to_string();
        assert_eq!(
            e,
            "resize to 17333x13000 exceeds --max-output-pixels 200000000"
        );
        let e = check(&h, "w65000_up_webp").unwrap_err().to_string();
        assert!(
            e.starts_with("WebP output is limited to 16383 px per side"),
            "{e}"
        );
        let e = check(&h, "w16384_up_webp").unwrap_err().to_string();
        assert!(e.contains("16383"), "{e}");
        let e = check(&photo(65000, 100), "w66000_up")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("JPEG output is limited to 65500 px per side"),
            "{e}"
        );
        let e = check(&h, "crop100x100+3950+0").unwrap_err().to_string();
        assert!(e.contains("does not fit inside the 4000x3000 image"), "{e}");
    }

    #[test]
    fn ordinary_renders_pass() {
        let h = photo(4000, 3000);
        for s in [
            "w256",
            "256x256_fill",
            "w12000_up",
            "png",
            "w12000_up_webp",
            "rot90_crop10x10+0+0",
        ] {
            check(&h, s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    #[test]
    fn a_rotation_is_held_to_the_memory_limit() {
        let mut h = photo(16000, 12000);
        h.format = SampleFormat::U16;
        // 16000x12000x3x2 = 1152000000 bytes > 1 GiB; the spec crop shrinks what is held.
        let e = check(&h, "rot90_png").unwrap_err().to_string();
        assert_eq!(
            e,
            "rotating or flipping 16000x12000 (3 bands of 2 bytes) holds 1152000000 bytes, \
             over the render memory limit of 1073741824 bytes"
        );
        assert!(check(&h, "flip_png").is_err());
        h.meta.orientation = 6;
        assert!(check(&h, "png").is_err());
        check(&h, "noautorotate_png").unwrap();
        check(&h, "rot90_crop1000x1000+0+0_png").unwrap();
        // flop streams, and flop twice over a right angle cancels out.
        h.meta.orientation = 1;
        check(&h, "flop_png").unwrap();
    }

    #[test]
    fn a_smart_gravity_is_held_to_the_memory_limit() {
        let h = photo(4000, 3000);
        let s: Spec = "20000x1000_fill_up_attention_png".parse().unwrap();
        let e = check_plan(
            &h,
            &plan(&h, &s),
            &s,
            OutputFormat::Png,
            u64::MAX,
            100 << 20,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "choosing the attention window holds the 20000x15000 canvas (3 bands of 1 bytes), \
             900000000 bytes, over the render memory limit of 104857600 bytes"
        );
        // A fixed gravity streams.
        let s: Spec = "20000x1000_fill_up_n_png".parse().unwrap();
        check_plan(
            &h,
            &plan(&h, &s),
            &s,
            OutputFormat::Png,
            u64::MAX,
            100 << 20,
        )
        .unwrap();
        check(&h, "256x256_fill_entropy").unwrap();
    }

    #[test]
    fn a_spec_crop_outside_the_fill_window_is_refused() {
        let h = photo(400, 200);
        // The fill window is 100x100 of a 200x100 canvas: 150 fits the canvas, not the window.
        let e = check(&h, "100x100_fill_crop10x10+95+0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not fit inside the 100x100 image"), "{e}");
    }

    #[test]
    fn tiff_is_held_to_classic_offsets() {
        let h = photo(40_000, 40_000);
        let s: Spec = "tif".parse().unwrap();
        let e = check_plan(
            &h,
            &plan(&h, &s),
            &s,
            OutputFormat::Tiff,
            u64::MAX,
            u64::MAX,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("TIFF output is limited to"), "{e}");
    }
}
