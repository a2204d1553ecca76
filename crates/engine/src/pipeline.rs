//! Source -> loader -> operations -> saver -> target, strip by strip.
//!
//! The loader runs on its own thread and hands strips to the operations and the saver through
//! a bounded queue, so decoding and encoding overlap. Strips are processed in order, so the
//! output is byte-identical whatever the thread count.

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use crate::codec::jpeg::preview::Preview;
use crate::codec::{
    self, cast, Animated, Animation, Frame, InputFormat, Limits, LoadOptions, Registry,
};
use crate::error::{Error, Result};
use crate::gainmap;
use crate::image::{BoxStream, Header, Image, ImageStream, Strip, STRIP_ROWS};
use crate::io::{Source, Target};
use crate::ops::{self, ColourTarget, Orient};
use crate::spec::{CropRect, OutputFormat, Spec};

/// Bumped whenever a build would encode different bytes for the same source and spec
/// (2: lossy WebP by default, TIFF saver; 3: JPEG thumbnails decoded at DCT scale; 4: one
/// cast rule before every saver, float TIFF through the sRGB curve; 5: full-size baseline
/// JPEGs decoded by libjpeg-turbo; 6: resize from a shrunk image's exact extent; 7: JPEG
/// thumbnails from MPF previews; 8: pixels converted to sRGB where their profile is dropped;
/// 9: JPEG outputs keep a JPEG source's gain map; 10: camera RAWs through their previews or
/// rawler, no longer as TIFFs; 11: JPEG XL thumbnails from the 1/8 LF image), so persistent
/// caches do not serve stale outputs.
pub const OUTPUT_REVISION: u32 = 12;

/// Limits and formats for one render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// The formats known: which codec loads the source, which saver writes the output.
    pub registry: Arc<Registry>,
    /// Refuse images with more pixels than this (checked from the header).
    pub max_pixels: u64,
    /// Refuse renders whose output or any planned intermediate (a resize, a fill canvas)
    /// has more pixels than this (checked from the plan, before decoding).
    pub max_output_pixels: u64,
    /// Largest input a loader may read into memory, and the most a whole-image step (a
    /// rotation or flip) may hold.
    pub memory_limit: u64,
    /// Most frames an animation may have to be rendered as one; a longer one gives its
    /// first frame (see [`animation_fits`]).
    pub max_frames: u32,
}

/// Default of [`RenderOptions::max_frames`] (`--max-frames`): a 40-second clip at 25 frames
/// per second; the pixel limits bound the work of large frames before this does.
pub const MAX_FRAMES: u32 = 1000;

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            registry: Registry::builtin().clone(),
            max_pixels: 200_000_000,
            max_output_pixels: 200_000_000,
            memory_limit: 1 << 30,
            max_frames: MAX_FRAMES,
        }
    }
}

/// What a finished render reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The source's format.
    pub input: InputFormat,
    /// The format written.
    pub output: OutputFormat,
    /// Header of the image as saved.
    pub header: Header,
    /// Stored size of the embedded preview the thumbnail was made from, if one was.
    pub preview: Option<(u32, u32)>,
    /// Size of the gain map written with the output, if one was (see [`crate::gainmap`]).
    pub gain_map: Option<(u32, u32)>,
    /// Frames written: 1 for a still (an animation's first frame included).
    pub frames: u32,
}

/// The output format for a source format and a spec.
pub fn output_format(input: InputFormat, spec: &Spec) -> OutputFormat {
    spec.format.unwrap_or_else(|| input.default_output())
}

/// The spec as rendered into `output`: a saver's [`crate::codec::Saver::fit`] box (a
/// placeholder hash) thumbnails into it when the spec gives no size, and caps a larger one.
/// With a `crop` (which applies to the thumbnail) the spec is kept; the saver's limits then
/// refuse an output over the box.
pub fn fit_output(spec: &Spec, output: OutputFormat) -> Cow<'_, Spec> {
    let Some((bw, bh)) = output.saver().and_then(|s| s.fit) else {
        return Cow::Borrowed(spec);
    };
    if spec.crop.is_some() {
        return Cow::Borrowed(spec);
    }
    let mut fitted = spec.clone();
    fitted.width = Some(spec.width.map_or(bw, |w| w.min(bw)));
    fitted.height = Some(spec.height.map_or(bh, |h| h.min(bh)));
    Cow::Owned(fitted)
}

/// Sizes and factors for one render, computed from the header before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Total integer box shrink (spec `shrink` times the thumbnail pre-shrink).
    pub box_shrink: u32,
    /// Lanczos3 target size in stored (not yet rotated) orientation, if resizing.
    pub resize: Option<(u32, u32)>,
    /// Source size in stored orientation: a shrunk image's exact extent is this over the
    /// factor applied, which the resize needs when the size is not a multiple of it.
    pub source: (u32, u32),
    /// The `fill` window on the upright image, placed by its gravity (a smart gravity is
    /// planned as the centre and moved once the resized image is seen).
    pub fill_crop: Option<CropRect>,
    /// Whether to apply the EXIF orientation.
    pub autorotate: bool,
    /// Upright size after the thumbnail step (before any crop), unclamped: the largest
    /// image held after loading, checked by [`crate::bounds::check_plan`].
    pub canvas: (u64, u64),
}

fn ceil_div(a: u32, b: u32) -> u32 {
    a.div_ceil(b)
}

/// Computes the plan: as if the image were first made upright, then shrunk, then fitted.
pub fn plan(header: &Header, spec: &Spec) -> Plan {
    let orientation = header.meta.orientation;
    let autorotate = !spec.no_autorotate && (2..=8).contains(&orientation);
    let swaps = autorotate && orientation >= 5;
    let s = spec.shrink.unwrap_or(1);
    // Size after the explicit shrink, in stored orientation.
    let (sw, sh) = (ceil_div(header.width, s), ceil_div(header.height, s));
    if !spec.has_thumbnail() {
        let (uw, uh) = if swaps { (sh, sw) } else { (sw, sh) };
        return Plan {
            box_shrink: s,
            resize: None,
            source: (header.width, header.height),
            fill_crop: None,
            autorotate,
            canvas: (uw as u64, uh as u64),
        };
    }
    // Upright size.
    let (uw, uh) = if swaps { (sh, sw) } else { (sw, sh) };
    let sx = spec.width.map(|w| w as f64 / uw as f64);
    let sy = spec.height.map(|h| h as f64 / uh as f64);
    let mut scale = match (sx, sy) {
        (Some(a), Some(b)) if spec.fill => a.max(b),
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => 1.0,
    };
    if !spec.up && scale > 1.0 {
        scale = 1.0;
    }
    // In u64: an enlargement may overflow u32 (`w1000000_up` of a 1-px-wide image); such a
    // plan is refused by the bounds check, so the clamped u32 sizes are never used.
    let fit = |n: u32| ((n as f64 * scale).round() as u64).max(1);
    let canvas = (fit(uw), fit(uh));
    let clamp = |n: u64| n.min(u32::MAX as u64) as u32;
    let (tw, th) = (clamp(canvas.0), clamp(canvas.1));
    let fill_crop = if spec.fill {
        let (bw, bh) = (
            spec.width.unwrap_or(tw).min(tw),
            spec.height.unwrap_or(th).min(th),
        );
        (bw < tw || bh < th).then(|| {
            let (x, y) = spec.gravity.place(tw, th, bw, bh);
            CropRect {
                x,
                y,
                width: bw,
                height: bh,
            }
        })
    } else {
        None
    };
    // Pre-shrink leaving at least 2x for Lanczos3 (as libvips): a power of two up to 8, which
    // a JPEG loader does in the DCT domain, times the integer box factor that still fits.
    let pre = if scale < 1.0 {
        let p = ((1.0 / scale) / 2.0).floor().max(1.0) as u32;
        let dct = [8, 4, 2, 1].into_iter().find(|&d| d <= p).unwrap_or(1);
        dct * (p / dct)
    } else {
        1
    };
    let (rw, rh) = if swaps { (th, tw) } else { (tw, th) };
    let resize = (rw != sw || rh != sh).then_some((rw, rh));
    Plan {
        box_shrink: s * pre,
        resize,
        source: (header.width, header.height),
        fill_crop,
        autorotate,
        canvas,
    }
}

/// Renders `src` through `spec` into `target`, then finishes the target.
/// Panics in codecs are caught here and reported as [`Error::Panic`].
pub fn render(
    src: Source,
    spec: &Spec,
    target: &mut dyn Target,
    opts: &RenderOptions,
) -> Result<Rendered> {
    catch_unwind(AssertUnwindSafe(|| render_inner(src, spec, target, opts)))
        .unwrap_or_else(|p| Err(panic_error("render", p)))
}

fn panic_error(stage: &'static str, payload: Box<dyn std::any::Any + Send>) -> Error {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    Error::Panic { stage, message }
}

fn render_inner(
    mut src: Source,
    spec: &Spec,
    target: &mut dyn Target,
    opts: &RenderOptions,
) -> Result<Rendered> {
    let limits = Limits {
        max_pixels: opts.max_pixels,
        memory_limit: opts.memory_limit,
    };
    let input = opts.registry.sniff(&mut src)?;
    let header = codec::probe_with(&mut src, input, &limits)?;
    codec::check_limits(&header, opts.max_pixels)?;
    let output = output_format(input, spec);
    let spec = &*fit_output(spec, output);
    let plan = plan(&header, spec);
    crate::bounds::check_plan(
        &header,
        &plan,
        spec,
        output,
        opts.max_output_pixels,
        opts.memory_limit,
    )?;
    let load_opts = LoadOptions {
        shrink: plan.box_shrink,
        page: spec.page.unwrap_or(0),
        limits,
        fit: plan.resize,
        max_frames: if animates(spec, output) {
            opts.max_frames.max(1)
        } else {
            1
        },
        exact: spec.exact,
    };
    let save_opts = spec.save_options();
    // The map is rendered first: the output's header points at it.
    let map = gainmap::wanted(input, output, spec)
        .then(|| gainmap::render(&mut src, &header, &plan, spec, &save_opts, &limits))
        .flatten();
    let preview = preview(&mut src, input, &header, &plan, spec, &limits);
    let used = preview.as_ref().map(|p| p.stored);
    let mut loaded = match preview {
        Some(_) => None,
        None => Some(codec::load(src, input, &load_opts)?),
    };
    if let Some(anim) = loaded.as_mut().and_then(|l| l.frames.take()) {
        if let Some(l) = loaded.take() {
            return render_animation(
                l.stream, l.shrink, anim, input, output, &plan, spec, opts, target,
            );
        }
    }
    std::thread::scope(|scope| {
        // A preview stands in for the loader having applied the whole box shrink; the
        // resize takes it to the planned size.
        let (stream, applied) = match preview {
            Some(p) => (
                Box::new(p.image.into_stream(STRIP_ROWS)) as BoxStream,
                plan.box_shrink,
            ),
            None => {
                let loaded =
                    loaded.ok_or_else(|| Error::op("load", "no image loaded and no preview"))?;
                (spawn_stream(scope, loaded.stream), loaded.shrink)
            }
        };
        let stream = apply_ops(stream, applied, &plan, spec, output)?;
        let header = stream.header().clone();
        let gain_map = map.as_ref().map(|m| m.size);
        match map {
            Some(m) => {
                codec::check_saver(
                    output,
                    header.width as u64,
                    header.height as u64,
                    header.bands,
                    header.format,
                )?;
                let stream = codec::cast::to_accepted(stream, &[crate::image::SampleFormat::U8]);
                codec::jpeg::gainmap::save(
                    stream,
                    &save_opts,
                    &m.jpeg,
                    m.primary_iso.as_deref(),
                    target,
                )?
            }
            None => codec::save(gainmap::unannounced(stream), output, &save_opts, target)?,
        }
        Ok(Rendered {
            input,
            output,
            header,
            preview: used,
            gain_map,
            frames: 1,
        })
    })
}

/// Whether `spec` keeps an animation into `output`: the format carries one, and no `still`
/// or `page<N>` asks for one frame.
pub fn animates(spec: &Spec, output: OutputFormat) -> bool {
    !spec.still && spec.page.is_none() && output.codec().save_animation().is_some()
}

/// Whether an animation of `count` frames, each `input` before and `output` after the spec,
/// is rendered as one: at most `max_frames` frames, and the frames' pixels summed within
/// `max_pixels` (decoded) and `max_output_pixels` (written). `Err` names the bound exceeded.
pub fn animation_fits(
    count: u32,
    input: &Header,
    output: &Header,
    opts: &RenderOptions,
) -> std::result::Result<(), String> {
    let sum = |h: &Header| h.pixels().saturating_mul(count as u64);
    if count > opts.max_frames {
        Err(format!("more than --max-frames {} frames", opts.max_frames))
    } else if sum(input) > opts.max_pixels {
        Err(format!(
            "{count} frames of {}x{} exceed --max-pixels {}",
            input.width, input.height, opts.max_pixels
        ))
    } else if sum(output) > opts.max_output_pixels {
        Err(format!(
            "{count} frames of {}x{} exceed --max-output-pixels {}",
            output.width, output.height, opts.max_output_pixels
        ))
    } else {
        Ok(())
    }
}

/// Renders an animation frame by frame: each frame decoded, put through the spec's
/// operations and handed to the animation saver when it asks for the next. One beyond the
/// bounds ([`animation_fits`]) is saved as its first frame, which is already decoded.
#[allow(clippy::too_many_arguments)]
fn render_animation(
    first: BoxStream,
    applied: u32,
    anim: Animation,
    input: InputFormat,
    output: OutputFormat,
    plan: &Plan,
    spec: &Spec,
    opts: &RenderOptions,
    target: &mut dyn Target,
) -> Result<Rendered> {
    let source = first.header().clone();
    let save_opts = spec.save_options();
    let accepts = output.saver().map_or(&[][..], |s| s.accepts);
    let first = cast::to_accepted(apply_ops(first, applied, plan, spec, output)?, accepts);
    let header = first.header().clone();
    let count = anim.count();
    if let Err(why) = animation_fits(count, &source, &header, opts) {
        tracing::info!("animation saved as its first frame: {why}");
        codec::save(first, output, &save_opts, target)?;
        return Ok(Rendered {
            input,
            output,
            header,
            preview: None,
            gain_map: None,
            frames: 1,
        });
    }
    let Animation {
        delays_ms,
        plays,
        mut rest,
    } = anim;
    let mut delays = delays_ms.into_iter();
    let mut first = Some(first);
    let next = move || -> Result<Option<Frame>> {
        let Some(delay_ms) = delays.next() else {
            return Ok(None);
        };
        if let Some(stream) = first.take() {
            return Ok(Some(Frame { stream, delay_ms }));
        }
        let Some(image) = rest.next_frame()? else {
            return Ok(None);
        };
        let stream = apply_ops(
            Box::new(image.into_stream(STRIP_ROWS)),
            applied,
            plan,
            spec,
            output,
        )?;
        Ok(Some(Frame {
            stream: cast::to_accepted(stream, accepts),
            delay_ms,
        }))
    };
    let animated = Animated {
        header: header.clone(),
        count,
        plays,
        next: Box::new(next),
    };
    codec::save_animation(animated, output, &save_opts, target)?;
    Ok(Rendered {
        input,
        output,
        header,
        preview: None,
        gain_map: None,
        frames: count,
    })
}

/// A thumbnail's embedded preview (an MPF one of a JPEG, see [`codec::jpeg::preview`]; a
/// RAW's, see [`codec::raw::preview`]), unless the spec says `exact`: its stored size must be
/// at least twice the planned resize, as the pre-shrink leaves for Lanczos3.
fn preview(
    src: &mut Source,
    input: InputFormat,
    header: &Header,
    plan: &Plan,
    spec: &Spec,
    limits: &Limits,
) -> Option<Preview> {
    let (w, h) = plan.resize?;
    if spec.exact || spec.page.is_some_and(|p| p > 0) {
        return None;
    }
    let min = (w.saturating_mul(2), h.saturating_mul(2));
    if input == InputFormat::Jpeg {
        codec::jpeg::preview::load(src, header, min, limits)
    } else if input == InputFormat::Raw {
        codec::raw::preview::load(src, header, min, limits)
    } else {
        None
    }
}

/// Applies everything after loading, in the spec's fixed order.
fn apply_ops<'a>(
    mut s: BoxStream<'a>,
    applied: u32,
    plan: &Plan,
    spec: &Spec,
    output: OutputFormat,
) -> Result<BoxStream<'a>> {
    // With a resize to follow, a loader may apply any factor up to the box shrink (pyramid
    // levels); the resize absorbs the remainder.
    let exact = plan.resize.is_none();
    if applied == 0
        || applied > plan.box_shrink
        || (exact && !plan.box_shrink.is_multiple_of(applied))
    {
        return Err(Error::op(
            "shrink",
            format!(
                "loader applied shrink {applied}, which does not fit {}",
                plan.box_shrink
            ),
        ));
    }
    let rest = plan.box_shrink / applied;
    if rest > 1 {
        s = ops::shrink(s, rest)?;
    }
    if let Some((w, h)) = plan.resize {
        let hd = s.header();
        let extent = shrunk_extent(plan.source, applied * rest, (hd.width, hd.height));
        if (hd.width, hd.height) != (w, h) || extent != (w as f64, h as f64) {
            s = ops::resize_extent(s, extent, w, h)?;
        }
    }
    // One crop on the stored image and one right-angle transform: the transform collects
    // only the cropped region, once.
    let stored = s.header().meta.orientation;
    let a = if plan.autorotate {
        Orient::exif(stored)
    } else {
        Orient::IDENTITY
    };
    let mut fill = plan.fill_crop;
    if let Some(f) = fill.as_mut().filter(|_| spec.gravity.is_smart()) {
        // The resized image is small (the plan held it to the memory limit): look at all of
        // it, then stream it on.
        let img = Image::collect(s)?;
        (f.x, f.y) = ops::smart_window(&img, spec.gravity, a, (f.width, f.height))?;
        s = Box::new(img.into_stream(STRIP_ROWS));
    }
    if let Some(rect) = combine_crops(fill, spec.crop)? {
        let h = s.header();
        let (w, hh) = (h.width, h.height);
        let (uw, uh) = if a.swaps() { (hh, w) } else { (w, hh) };
        ops::check_fits(rect, uw, uh)?;
        s = ops::crop(s, a.source_rect(rect, w, hh))?;
    }
    s = ops::orient(s, orientation(plan, spec, stored))?;
    if plan.autorotate {
        s = ops::upright(s)?;
    }
    // On the final size, as libvips' thumbnail does: the fewest pixels to convert. An RGB
    // profile cannot describe a `grey` result, so greyscale is taken from sRGB values.
    s = ops::colour_manage(
        s,
        ColourTarget {
            srgb: spec.srgb,
            keeps_profile: !spec.strip && !spec.grey && output.saver().is_some_and(|v| v.icc),
        },
    )?;
    if spec.grey {
        s = ops::grey(s)?;
    }
    if spec.invert {
        s = ops::invert(s)?;
    }
    Ok(s)
}

/// The part of a `size` image shrunk by `factor` from `source` that stands for the source, in
/// its own (fractional) pixels. A box or DCT shrink rounds sizes up, so when the source is not
/// a multiple of the factor the last column or row stands for fewer source pixels: the
/// extent is then `source / factor` (4217 / 8 = 527.125 of 528 columns), not the size.
/// Any other size (an embedded thumbnail, a pyramid level rounded down) is taken whole.
fn shrunk_extent(source: (u32, u32), factor: u32, size: (u32, u32)) -> (f64, f64) {
    let f = factor.max(1);
    let axis = |n: u32, m: u32| {
        if n.div_ceil(f) == m {
            n as f64 / f as f64
        } else {
            m as f64
        }
    };
    (axis(source.0, size.0), axis(source.1, size.1))
}

/// The one right-angle transform a render applies: the EXIF orientation `stored` (when the
/// plan autorotates), then the spec's rotate, flip and flop, in that order.
pub fn orientation(plan: &Plan, spec: &Spec, stored: u8) -> Orient {
    let mut t = if plan.autorotate {
        Orient::exif(stored)
    } else {
        Orient::IDENTITY
    };
    if let Some(r) = spec.rotate {
        t = t.then(Orient::rotation(r));
    }
    if spec.flip {
        t = t.then(Orient::FLIP);
    }
    if spec.flop {
        t = t.then(Orient::FLOP);
    }
    t
}

/// The fill crop and the spec crop as one rectangle of the upright image. The spec crop is
/// relative to the fill window and must fit inside it.
pub fn upright_crop(plan: &Plan, spec: &Spec) -> Result<Option<CropRect>> {
    combine_crops(plan.fill_crop, spec.crop)
}

/// A fill window and a spec crop relative to it as one rectangle (see [`upright_crop`]).
fn combine_crops(fill: Option<CropRect>, crop: Option<CropRect>) -> Result<Option<CropRect>> {
    Ok(match (fill, crop) {
        (Some(f), Some(c)) => {
            ops::check_fits(c, f.width, f.height)?;
            Some(CropRect {
                x: f.x + c.x,
                y: f.y + c.y,
                ..c
            })
        }
        (f, c) => c.or(f),
    })
}

/// Strips in flight between the decode thread and the rest.
const QUEUE_DEPTH: usize = 4;

/// Runs `stream` on a scoped thread, handing its strips over through a bounded queue.
pub fn spawn_stream<'scope, 'env: 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    mut stream: BoxStream<'env>,
) -> BoxStream<'scope> {
    let header = stream.header().clone();
    let (tx, rx) = sync_channel::<Result<Strip>>(QUEUE_DEPTH);
    scope.spawn(move || {
        loop {
            let next = catch_unwind(AssertUnwindSafe(|| stream.next_strip()))
                .unwrap_or_else(|p| Err(panic_error("load", p)));
            let stop = !matches!(next, Ok(Some(_)));
            let item = match next {
                Ok(Some(strip)) => Ok(strip),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            // A closed queue means the consumer gave up (an encoder error): stop decoding.
            if tx.send(item).is_err() || stop {
                break;
            }
        }
    });
    Box::new(QueuedStream {
        header,
        rx,
        done: false,
    })
}

struct QueuedStream {
    header: Header,
    rx: Receiver<Result<Strip>>,
    done: bool,
}

impl ImageStream for QueuedStream {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        if self.done {
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(Ok(strip)) => Ok(Some(strip)),
            Ok(Err(e)) => {
                self.done = true;
                Err(e)
            }
            Err(_) => {
                self.done = true;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Metadata, SampleFormat};

    fn header(w: u32, h: u32, orientation: u8) -> Header {
        Header {
            width: w,
            height: h,
            bands: 3,
            format: SampleFormat::U8,
            bit_depth: 8,
            meta: Metadata {
                orientation,
                ..Default::default()
            },
        }
    }

    #[test]
    fn shrunk_extent_is_the_source_over_the_factor() {
        // libjpeg's 1/8 of 4217x2817 is 528x353: 527.125 x 352.125 of it is the picture.
        assert_eq!(
            super::shrunk_extent((4217, 2817), 8, (528, 353)),
            (527.125, 352.125)
        );
        // Multiples are whole; a size not rounded up (an embedded thumbnail) is taken whole.
        assert_eq!(
            super::shrunk_extent((4096, 2816), 8, (512, 352)),
            (512.0, 352.0)
        );
        assert_eq!(
            super::shrunk_extent((4217, 2817), 8, (320, 214)),
            (320.0, 214.0)
        );
    }

    #[test]
    fn a_fit_box_thumbnails_and_caps() {
        let fitted = |spec: &str| {
            let spec: Spec = spec.parse().unwrap();
            let out = spec.format.unwrap();
            let s = fit_output(&spec, out).into_owned();
            (s.width, s.height)
        };
        assert_eq!(fitted("thumbhash"), (Some(100), Some(100)));
        assert_eq!(fitted("w800_thumbhash"), (Some(100), Some(100)));
        assert_eq!(fitted("w50_thumbhash"), (Some(50), Some(100)));
        assert_eq!(fitted("w800_png"), (Some(800), None));
        assert_eq!(fitted("crop10x10+0+0_thumbhash"), (None, None));
        // A 20 MP photo's hash: 1/8 in the DCT (as for a w256 thumbnail), then a box of 3.
        let spec: Spec = "thumbhash".parse().unwrap();
        let p = plan(
            &header(5472, 3648, 1),
            &fit_output(&spec, spec.format.unwrap()),
        );
        assert_eq!((p.box_shrink, p.resize), (24, Some((100, 67))));
    }

    #[test]
    fn thumbnail_plan_preshrinks_leaving_2x() {
        let p = plan(&header(6000, 4000, 1), &"w256".parse().unwrap());
        assert_eq!(p.resize, Some((256, 171)));
        // 6000/256 = 23.4x: 8 (11 rounded down to a multiple of 8), Lanczos the remaining 2.9x.
        assert_eq!(p.box_shrink, 8);
        // 24000/256 = 93.75x: 8 x box 5, Lanczos the remaining 2.3x.
        let p = plan(&header(24000, 16000, 1), &"w256".parse().unwrap());
        assert_eq!(p.box_shrink, 40);
        // 6000/1024 = 5.9x: 2, Lanczos the remaining 2.9x.
        let p = plan(&header(6000, 4000, 1), &"w1024".parse().unwrap());
        assert_eq!(p.box_shrink, 2);
    }

    #[test]
    fn thumbnail_box_applies_to_upright_image() {
        // Stored landscape, displayed portrait (orientation 6).
        let p = plan(&header(4000, 3000, 6), &"w300".parse().unwrap());
        assert!(p.autorotate);
        assert_eq!(p.resize, Some((400, 300)));
    }

    #[test]
    fn no_enlarging_without_up() {
        let p = plan(&header(100, 50, 1), &"w400".parse().unwrap());
        assert_eq!(p.resize, None);
        let p = plan(&header(100, 50, 1), &"w400_up".parse().unwrap());
        assert_eq!(p.resize, Some((400, 200)));
    }

    #[test]
    fn fill_gravity_places_the_window() {
        let window = |spec: &str| {
            let r = plan(&header(400, 200, 1), &spec.parse().unwrap())
                .fill_crop
                .unwrap();
            (r.x, r.y, r.width, r.height)
        };
        assert_eq!(window("100x100_fill_w"), (0, 0, 100, 100));
        assert_eq!(window("100x100_fill_e"), (100, 0, 100, 100));
        assert_eq!(window("100x100_fill_n"), (50, 0, 100, 100));
        assert_eq!(window("100x100_fill_se"), (100, 0, 100, 100));
        // Smart gravities are planned as the centre; the window moves once pixels are seen.
        assert_eq!(window("100x100_fill_attention"), (50, 0, 100, 100));
    }

    #[test]
    fn fill_crops_the_centre() {
        let p = plan(&header(400, 200, 1), &"100x100_fill".parse().unwrap());
        assert_eq!(p.resize, Some((200, 100)));
        assert_eq!(
            p.fill_crop,
            Some(CropRect {
                x: 50,
                y: 0,
                width: 100,
                height: 100
            })
        );
    }
}
