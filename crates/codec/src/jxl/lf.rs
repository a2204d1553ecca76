//! Thumbnails from the LF image. A VarDCT frame stores the mean of every 8x8 block (its LF
//! coefficients, in XYB) in the LF groups, ahead of all HF data: decoding only those gives the
//! 1/8 image without HF entropy decoding, inverse DCTs or restoration filters, and converts
//! 1/64 of the pixels to the output colours. jxl-oxide has no API for it, so this takes
//! jxl-render's steps over jxl-frame's parsers: dequantise, chroma from luma, adaptive LF
//! smoothing, then the XYB-to-output transform that jxl-oxide's full render applies (same
//! target encoding, same rounding, same orientation). Frames it does not cover (modular, LF
//! frames, extra channels, patches, splines, noise, JPEG recompression, HDR, grey) return
//! `None` and are decoded whole.

use jxl_color::{
    ColorEncodingWithProfile, ColorTransform, ColourEncoding, EnumColourEncoding, NullCms,
    RenderingIntent,
};
use jxl_frame::data::LfGroup;
use jxl_frame::header::{Encoding, FrameType};
use jxl_frame::Frame;
use jxl_modular::Sample;
use jxl_oxide::{JxlImage, PixelFormat};

use super::decode_err;
use crate::error::Result;
use crate::image::{Header, Image, SampleFormat, Samples};

/// The LF image's box shrink: one sample per 8x8 block.
pub const SHRINK: u32 = 8;

/// A frame this module can decode, and the colours jxl-oxide would render it in.
struct Plan<'a> {
    frame: &'a Frame,
    target: ColorEncodingWithProfile,
}

/// The 1/8 image of the first keyframe, oriented and in `header`'s sample format (its size
/// `header`'s divided by 8, rounded up), or `None` when the frame is not one this covers.
pub fn render(image: &JxlImage, header: &Header) -> Result<Option<Image>> {
    let Some(plan) = plan(image) else {
        return Ok(None);
    };
    let mut xyb = lf_xyb(image, plan.frame)?;
    let meta = &image.image_header().metadata;
    // As jxl-render's own transform: NullCms handles linear transfer functions, no PQ input.
    let mut builder = ColorTransform::builder();
    builder.set_srgb_icc(false).from_pq(false);
    let transform = builder
        .build(
            &ColorEncodingWithProfile::new(EnumColourEncoding::xyb(RenderingIntent::Perceptual)),
            &plan.target,
            &meta.opsin_inverse_matrix,
            &meta.tone_mapping,
            &NullCms,
        )
        .map_err(decode_err)?;
    let [x, y, b] = &mut xyb.planes;
    let channels = transform
        .run(&mut [x.as_mut_slice(), y.as_mut_slice(), b.as_mut_slice()])
        .map_err(decode_err)?;
    if channels != 3 {
        return Ok(None);
    }
    Ok(Some(oriented(&xyb, meta.orientation, header)?))
}

/// Whether the first keyframe is a plain VarDCT XYB frame of colour only, and what jxl-oxide
/// renders it to (jxl-render's default: the header's encoding, or an ICC profile that maps
/// onto one; other profiles are left to the full render).
fn plan(image: &JxlImage) -> Option<Plan<'_>> {
    let meta = &image.image_header().metadata;
    if !meta.xyb_encoded
        || !meta.ec_info.is_empty()
        || image.hdr_type().is_some()
        || image.num_loaded_frames() != 1
        || !matches!(image.pixel_format(), PixelFormat::Rgb)
    {
        return None;
    }
    let frame: &Frame = image.frame_by_keyframe(0)?;
    let fh = frame.header();
    let flags = fh.flags;
    if fh.frame_type != FrameType::RegularFrame
        || fh.encoding != Encoding::VarDct
        || fh.do_ycbcr
        || fh.have_crop
        || fh.upsampling != 1
        || flags.use_lf_frame()
        || flags.patches()
        || flags.splines()
        || flags.noise()
    {
        return None;
    }
    if !aligned(
        meta.orientation,
        fh.color_sample_width(),
        fh.color_sample_height(),
    ) {
        return None;
    }
    let target = match &meta.colour_encoding {
        ColourEncoding::Enum(e) => ColorEncodingWithProfile::new(e.clone()),
        ColourEncoding::IccProfile(_) => {
            let parsed = ColorEncodingWithProfile::with_icc(image.original_icc()?).ok()?;
            // An empty profile: jxl-color recognised it as an enum encoding.
            if !parsed.icc_profile().is_empty() || parsed.is_grayscale() {
                return None;
            }
            parsed
        }
    };
    Some(Plan { frame, target })
}

/// Whether the orientation keeps the LF image's partial last column and row (a side that is
/// not a multiple of 8) at the right and bottom, where the resize after a box shrink expects
/// them; a flip that brings one to the left or top would shift the thumbnail by up to 7/8 of
/// an LF sample, so such files are decoded whole (camera and phone sizes are multiples of 8).
fn aligned(orientation: u32, width: u32, height: u32) -> bool {
    let (w, h) = (width.is_multiple_of(8), height.is_multiple_of(8));
    match orientation {
        2 => w,
        3 | 7 => w && h,
        4 | 6 => h,
        8 => w,
        _ => true,
    }
}

/// The LF image in XYB, unoriented: three planes of `width x height`.
struct Xyb {
    width: usize,
    height: usize,
    planes: [Vec<f32>; 3],
}

/// Parses the LF global section and every LF group (in parallel, on jxl-oxide's pool), then
/// dequantises, applies chroma from luma and the adaptive smoothing, as jxl-render does before
/// it uses these values as the blocks' DC.
fn lf_xyb(image: &JxlImage, frame: &Frame) -> Result<Xyb> {
    let fh = frame.header();
    let truncated = || decode_err("file is truncated (incomplete LF data)");
    let lf_global = frame
        .try_parse_lf_global::<i32>()
        .ok_or_else(truncated)?
        .map_err(decode_err)?;
    let vardct = lf_global
        .vardct
        .as_ref()
        .ok_or_else(|| decode_err("VarDCT frame without VarDCT LF data"))?;
    let ma = lf_global.gmodular.ma_config.as_ref();
    let width = fh.color_sample_width().div_ceil(8) as usize;
    let height = fh.color_sample_height().div_ceil(8) as usize;
    let n = crate::alloc::len(&[width, height], "JPEG XL LF image")?;
    let mut planes = [
        crate::alloc::filled(n, 0f32, "JPEG XL LF image")?,
        crate::alloc::filled(n, 0f32, "JPEG XL LF image")?,
        crate::alloc::filled(n, 0f32, "JPEG XL LF image")?,
    ];

    let mut groups: Vec<(u32, Option<Result<LfGroup<i32>>>)> =
        (0..fh.num_lf_groups()).map(|i| (i, None)).collect();
    image.pool().for_each_mut_slice(&mut groups, |(idx, out)| {
        *out = Some(
            match frame.try_parse_lf_group(Some(vardct), ma, None, *idx) {
                Some(Ok(g)) => Ok(g),
                Some(Err(e)) => Err(decode_err(e)),
                None => Err(truncated()),
            },
        );
    });

    let quant = &vardct.quantizer;
    let scale_inv = quant.global_scale as f64 * quant.quant_lf as f64;
    let dq = &lf_global.lf_dequant;
    let dim = fh.group_dim() as usize;
    let per_row = fh.lf_groups_per_row();
    for (idx, group) in groups {
        let group = group.ok_or_else(truncated)??;
        let coeff = group.lf_coeff.as_ref().ok_or_else(truncated)?;
        if coeff.partial {
            return Err(truncated());
        }
        let channels = coeff
            .lf_quant
            .image()
            .ok_or_else(truncated)?
            .image_channels();
        if channels.len() < 3 {
            return Err(decode_err("LF group with fewer than 3 channels"));
        }
        let left = (idx % per_row) as usize * dim;
        let top = (idx / per_row) as usize * dim;
        let precision = f64::from(1u32 << (9 - u32::from(coeff.extra_precision.min(3))));
        // The stored channel order is Y, X, B.
        let sources = [(1, dq.m_x_lf), (0, dq.m_y_lf), (2, dq.m_b_lf)];
        for (plane, (ch, m)) in planes.iter_mut().zip(sources) {
            let grid = &channels[ch];
            let scale = (m as f64 * precision / scale_inv) as f32;
            let (gw, gh) = (grid.width(), grid.height());
            if gw == 0 || gh == 0 {
                continue;
            }
            if left + gw > width || top + gh > height {
                return Err(decode_err("LF group larger than the frame"));
            }
            for (r, src) in grid.buf().chunks_exact(gw).take(gh).enumerate() {
                let row = &mut plane[(top + r) * width + left..][..gw];
                for (o, q) in row.iter_mut().zip(src) {
                    *o = q.to_i32() as f32 * scale;
                }
            }
        }
    }

    let [x, y, b] = &mut planes;
    let corr = &vardct.lf_chan_corr;
    let kx = corr.base_correlation_x
        + (corr.x_factor_lf as i32 - 128) as f32 / corr.colour_factor as f32;
    let kb = corr.base_correlation_b
        + (corr.b_factor_lf as i32 - 128) as f32 / corr.colour_factor as f32;
    for ((x, y), b) in x.iter_mut().zip(y.iter()).zip(b.iter_mut()) {
        *x += kx * y;
        *b += kb * y;
    }
    if !fh.flags.skip_adaptive_lf_smoothing() {
        let step = |m: f32| (512.0 * m as f64 / scale_inv) as f32;
        smooth(
            width,
            height,
            [x, y, b],
            [step(dq.m_x_lf), step(dq.m_y_lf), step(dq.m_b_lf)],
        );
    }
    Ok(Xyb {
        width,
        height,
        planes,
    })
}

/// Adaptive LF smoothing (JPEG XL, ISO/IEC 18181-1 G.2.2), as jxl-render 0.12's scalar
/// version computes it: each inner sample moves towards a weighted mean of its 3x3
/// neighbourhood unless one channel's change would exceed its quantisation step.
fn smooth(width: usize, height: usize, planes: [&mut Vec<f32>; 3], steps: [f32; 3]) {
    const SELF: f32 = 0.052262735;
    const SIDE: f32 = 0.2034514;
    const DIAG: f32 = 0.03348292;
    if width <= 2 || height <= 2 {
        return;
    }
    // Sums of the rows above and below, from the unsmoothed values.
    let updown: Vec<Vec<f32>> = planes
        .iter()
        .map(|p| {
            p.chunks_exact(width)
                .zip(p[2 * width..].chunks_exact(width))
                .flat_map(|(u, d)| u.iter().zip(d).map(|(u, d)| u + d))
                .collect()
        })
        .collect();
    let [px, py, pb] = planes;
    for r in 1..height - 1 {
        let at = r * width;
        let ud = [
            &updown[0][(r - 1) * width..][..width],
            &updown[1][(r - 1) * width..][..width],
            &updown[2][(r - 1) * width..][..width],
        ];
        let rows = [
            &mut px[at..at + width],
            &mut py[at..at + width],
            &mut pb[at..at + width],
        ];
        let [rx, ry, rb] = rows;
        let mut prev = [rx[0], ry[0], rb[0]];
        for i in 1..width - 1 {
            let cur = [rx[i], ry[i], rb[i]];
            let next = [rx[i + 1], ry[i + 1], rb[i + 1]];
            let mut wa = [0f32; 3];
            let mut gap = 0.5f32;
            for c in 0..3 {
                let side = prev[c] + next[c] + ud[c][i];
                let diag = ud[c][i - 1] + ud[c][i + 1];
                wa[c] = cur[c] * SELF + side * SIDE + diag * DIAG;
                gap = gap.max((wa[c] - cur[c]).abs() / steps[c]);
            }
            let scale = (3.0 - 4.0 * gap).max(0.0);
            rx[i] = (wa[0] - cur[0]) * scale + cur[0];
            ry[i] = (wa[1] - cur[1]) * scale + cur[1];
            rb[i] = (wa[2] - cur[2]) * scale + cur[2];
            prev = cur;
        }
    }
}

/// Interleaves the output planes into `header`'s sample format with the codestream's
/// orientation applied, as jxl-oxide's image stream does (same mapping, same rounding).
fn oriented(xyb: &Xyb, orientation: u32, header: &Header) -> Result<Image> {
    let (w, h) = (xyb.width, xyb.height);
    let (ow, oh) = if orientation >= 5 { (h, w) } else { (w, h) };
    let want = (
        header.width.div_ceil(SHRINK),
        header.height.div_ceil(SHRINK),
    );
    if (ow as u32, oh as u32) != want {
        return Err(decode_err(format!(
            "LF image is {ow}x{oh}, the header said {}x{} (1/8: rounded up)",
            header.width, header.height
        )));
    }
    let source = |x: usize, y: usize| -> usize {
        let (sx, sy) = match orientation {
            2 => (ow - x - 1, y),
            3 => (ow - x - 1, oh - y - 1),
            4 => (x, oh - y - 1),
            5 => (y, x),
            6 => (y, ow - x - 1),
            7 => (oh - y - 1, ow - x - 1),
            8 => (oh - y - 1, x),
            _ => (x, y),
        };
        sy * w + sx
    };
    let n = crate::alloc::len(&[ow, oh, 3], "JPEG XL LF image")?;
    let out = Header {
        width: ow as u32,
        height: oh as u32,
        ..header.clone()
    };
    let samples = match header.format {
        SampleFormat::U16 => {
            let mut v = crate::alloc::filled(n, 0u16, "JPEG XL LF image")?;
            fill(&mut v, ow, oh, &xyb.planes, source, |f| {
                (f * 65535.0 + 0.5).clamp(0.0, 65535.0) as u16
            });
            Samples::U16(v)
        }
        _ => {
            let mut v = crate::alloc::filled(n, 0u8, "JPEG XL LF image")?;
            fill(&mut v, ow, oh, &xyb.planes, source, |f| {
                (f * 255.0 + 0.5).clamp(0.0, 255.0) as u8
            });
            Samples::U8(v)
        }
    };
    Ok(Image {
        header: out,
        samples,
    })
}

fn fill<T>(
    out: &mut [T],
    ow: usize,
    oh: usize,
    planes: &[Vec<f32>; 3],
    source: impl Fn(usize, usize) -> usize,
    convert: impl Fn(f32) -> T,
) {
    let mut px = out.chunks_exact_mut(3);
    for y in 0..oh {
        for x in 0..ow {
            let i = source(x, y);
            if let Some(p) = px.next() {
                for (o, plane) in p.iter_mut().zip(planes) {
                    *o = convert(plane[i]);
                }
            }
        }
    }
}
