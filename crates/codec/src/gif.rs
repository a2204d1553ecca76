//! GIF (gif crate): the loader composes frames onto the logical screen (disposal and
//! transparency as browsers and libvips do) and yields an animation frame by frame; the saver
//! ([`save`]) writes stills and animations, quantised per frame ([`quantise`]).

mod quantise;
mod save;

use std::io::Cursor;
use std::num::NonZeroU64;
use std::sync::Arc;

use gif::{ColorOutput, DecodeOptions, DisposalMethod, MemoryLimit, Repeat};

use crate::error::{Error, Result};
use crate::image::{Header, Image, Metadata, SampleFormat, Samples};
use crate::io::Source;
use crate::{
    check_limits, About, Animation, Codec, Frames, Limits, LoadOptions, Loaded, SaveAnimation,
    Saver, SaverLimits,
};

fn decode_error(e: impl std::fmt::Display) -> Error {
    Error::decode("gif", e)
}

fn options(memory_limit: u64) -> DecodeOptions {
    let mut o = DecodeOptions::new();
    o.set_color_output(ColorOutput::RGBA);
    if let Some(limit) = NonZeroU64::new(memory_limit) {
        o.set_memory_limit(MemoryLimit::Bytes(limit));
    }
    o
}

fn header(width: u16, height: u16, bands: u8) -> Header {
    Header {
        width: width as u32,
        height: height as u32,
        bands,
        format: SampleFormat::U8,
        bit_depth: 8,
        meta: Metadata::upright(),
    }
}

/// Reads the logical screen size only.
pub fn probe(src: &mut Source, limits: &Limits) -> Result<Header> {
    let dec = options(limits.memory_limit)
        .read_info(&mut *src)
        .map_err(decode_error)?;
    Ok(header(dec.width(), dec.height(), 4))
}

/// What a pass over the blocks (no LZW decoding) finds: per frame its delay and whether it
/// clears its rectangle afterwards, and the loop count.
struct Scan {
    delays_ms: Vec<u32>,
    clears: bool,
    plays: u32,
}

/// Reads frame headers only, up to `max_frames + 1` frames (one more tells that there are
/// more than `max_frames`), the first broken one or the first over `max_pixels`.
fn scan(bytes: &Arc<[u8]>, max_frames: u32, limits: &Limits) -> Result<Scan> {
    let mut o = options(limits.memory_limit);
    o.skip_frame_decoding(true);
    let mut dec = o
        .read_info(Cursor::new(bytes.clone()))
        .map_err(decode_error)?;
    let mut delays_ms = Vec::new();
    let mut clears = false;
    let mut last_clears = false;
    while delays_ms.len() <= max_frames as usize {
        // A file cut short (or broken) after some frames animates the whole ones, as
        // browsers show them; the first frame's own errors come from decoding it.
        let Ok(Some(f)) = dec.read_next_frame() else {
            break;
        };
        // A frame over the pixel limit ends the animation before it.
        if f.width as u64 * f.height as u64 > limits.max_pixels {
            break;
        }
        // Clearing after the last frame shows nothing.
        clears |= last_clears;
        last_clears = f.dispose == DisposalMethod::Background;
        delays_ms.push(f.delay as u32 * 10);
    }
    // Netscape's count is of repetitions after the first play (0: forever); none: once.
    let plays = match dec.repeat() {
        Repeat::Infinite => 0,
        Repeat::Finite(n) => n as u32 + 1,
    };
    Ok(Scan {
        delays_ms,
        clears,
        plays,
    })
}

/// Composes frames onto the logical screen one at a time.
struct Composer {
    dec: gif::Decoder<Cursor<Arc<[u8]>>>,
    header: Header,
    canvas: Vec<u8>,
    /// The canvas before the last frame, when that frame restores it afterwards.
    saved: Option<Vec<u8>>,
    /// What the last frame does once shown: its disposal and clipped rectangle.
    dispose: (DisposalMethod, Rect),
    /// Frames still to give (an animation stops at the count it announced).
    remaining: u32,
}

#[derive(Clone, Copy, Default)]
struct Rect {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

impl Composer {
    fn new(bytes: Arc<[u8]>, limits: &Limits, remaining: u32) -> Result<Self> {
        let dec = options(limits.memory_limit)
            .read_info(Cursor::new(bytes))
            .map_err(decode_error)?;
        let header = header(dec.width(), dec.height(), 4);
        check_limits(&header, limits.max_pixels)?;
        let (w, h) = (header.width as usize, header.height as usize);
        let canvas = crate::alloc::filled(
            crate::alloc::len(&[w, h, 4], "the GIF canvas")?,
            0u8,
            "the GIF canvas",
        )?;
        Ok(Composer {
            dec,
            header,
            canvas,
            saved: None,
            dispose: (DisposalMethod::Keep, Rect::default()),
            remaining,
        })
    }

    /// Draws the next frame; `false` after the last one.
    fn step(&mut self) -> Result<bool> {
        if self.remaining == 0 {
            return Ok(false);
        }
        let w = self.header.width as usize;
        let h = self.header.height as usize;
        // The previous frame's disposal, now that it has been shown.
        match self.dispose {
            (DisposalMethod::Background, r) => {
                for y in r.y..r.y + r.h {
                    self.canvas[(y * w + r.x) * 4..(y * w + r.x + r.w) * 4].fill(0);
                }
            }
            (DisposalMethod::Previous, _) => {
                if let Some(saved) = self.saved.take() {
                    self.canvas = saved;
                }
            }
            _ => {}
        }
        let Some(frame) = self.dec.read_next_frame().map_err(decode_error)? else {
            return Ok(false);
        };
        self.remaining -= 1;
        let (fw, fh) = (frame.width as usize, frame.height as usize);
        let (left, top) = (frame.left as usize, frame.top as usize);
        if frame.buffer.len() < fw * fh * 4 {
            return Err(decode_error("frame data shorter than its size"));
        }
        // Frames may sit anywhere on the screen, overhang it or lie wholly off it: clip. A
        // frame right of the screen copies nothing (and its row offset would point past it).
        let n = fw.min(w.saturating_sub(left));
        let rows = if n == 0 {
            0
        } else {
            fh.min(h.saturating_sub(top))
        };
        let rect = Rect {
            x: left.min(w),
            y: top.min(h),
            w: n,
            h: rows,
        };
        if frame.dispose == DisposalMethod::Previous {
            let mut copy = crate::alloc::with_capacity(self.canvas.len(), "a GIF canvas copy")?;
            copy.extend_from_slice(&self.canvas);
            self.saved = Some(copy);
        }
        self.dispose = (frame.dispose, rect);
        // Transparent pixels (alpha 0) leave what is beneath.
        for y in 0..rows {
            let src = &frame.buffer[y * fw * 4..(y * fw + n) * 4];
            let at = ((top + y) * w + left) * 4;
            let dst = &mut self.canvas[at..at + n * 4];
            for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                if s[3] != 0 {
                    d.copy_from_slice(s);
                }
            }
        }
        Ok(true)
    }

    /// The canvas as an image of `bands` (3: alpha dropped, 4: kept).
    fn image(&self, bands: u8) -> Result<Image> {
        let samples = if bands == 3 {
            let mut rgb = crate::alloc::with_capacity(self.canvas.len() / 4 * 3, "a GIF frame")?;
            rgb.extend(self.canvas.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
            rgb
        } else {
            let mut rgba = crate::alloc::with_capacity(self.canvas.len(), "a GIF frame")?;
            rgba.extend_from_slice(&self.canvas);
            rgba
        };
        Ok(Image {
            header: Header {
                bands,
                ..self.header.clone()
            },
            samples: Samples::U8(samples),
        })
    }

    fn opaque(&self) -> bool {
        self.canvas.chunks_exact(4).all(|p| p[3] == 255)
    }
}

/// The frames after the first, at the first frame's bands.
struct GifFrames {
    composer: Composer,
    bands: u8,
}

impl Frames for GifFrames {
    fn next_frame(&mut self) -> Result<Option<Image>> {
        if !self.composer.step()? {
            return Ok(None);
        }
        self.composer.image(self.bands).map(Some)
    }
}

/// Decodes the first frame (GIF frames are LZW streams with no row access, so whole) and,
/// when [`LoadOptions::max_frames`] allows more than one, announces the rest.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let bytes: Arc<[u8]> = src.read_to_memory(opts.limits.memory_limit)?.into();
    let scan = if opts.max_frames > 1 {
        Some(scan(&bytes, opts.max_frames, &opts.limits)?)
    } else {
        None
    };
    let count = scan.as_ref().map_or(1, |s| s.delays_ms.len() as u32);
    let mut composer = Composer::new(bytes, &opts.limits, count.max(1))?;
    if !composer.step()? {
        return Err(decode_error("no image frame"));
    }
    // Every frame of an animation has the first one's bands: alpha only when some canvas can
    // show through (the first frame has holes, or a frame clears its rectangle).
    let animated = scan.filter(|s| s.delays_ms.len() > 1);
    let clears = animated.as_ref().is_some_and(|s| s.clears);
    let bands = if composer.opaque() && !clears { 3 } else { 4 };
    let first = composer.image(bands)?;
    let stream = Box::new(first.into_stream(crate::image::STRIP_ROWS));
    let mut loaded = Loaded::single(stream, 1);
    loaded.frames = animated.map(|s| Animation {
        delays_ms: s.delays_ms,
        plays: s.plays,
        rest: Box::new(GifFrames { composer, bands }) as Box<dyn Frames>,
    });
    Ok(loaded)
}

static ABOUT: About = About {
    name: "gif",
    title: "GIF",
    extensions: &["gif"],
    serve_as: None,
    notes: "gif: every frame composed (disposal, transparency), delays and loop count",
};

static SAVER: Saver = Saver {
    token: "gif",
    aliases: &[],
    mime: "image/gif",
    accepts: &[SampleFormat::U8],
    options: &[],
    limits: SaverLimits {
        max_side: 65_535,
        max_bytes: u64::MAX,
        why: "GIF's 16-bit size fields",
    },
    fit: None,
    icc: false,
    save: save::still,
    notes: "gif: a 256-colour palette per frame (NeuQuant from `color_quant` refined by k-means, no dithering; exact when a frame has 256 colours or fewer), 1-bit transparency; animations keep delays and loop count, opaque ones store only the changed rectangle",
};

/// The GIF codec.
pub struct Gif;

impl Codec for Gif {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a")
    }

    fn probe(&self, src: &mut Source, limits: &Limits) -> Result<Header> {
        probe(src, limits)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }

    fn saver(&self) -> Option<&Saver> {
        Some(&SAVER)
    }

    fn save_animation(&self) -> Option<SaveAnimation> {
        Some(save::animation)
    }
}
