//! What a format module implements ([`Codec`], optionally a [`Saver`]) and what passes between
//! it and the pipeline. See doc/codec-design.md.

use crate::error::Result;
use crate::image::{BoxStream, Header, Image, SampleFormat};
use crate::io::{Source, Target};
use crate::Format;

/// A format thumbfs can load (and maybe save): one implementation per format, registered by
/// one line in [`crate::BUILTIN`] (or in a custom [`crate::Registry`]).
pub trait Codec: Send + Sync + 'static {
    /// Names, extensions and notes.
    fn about(&self) -> &About;

    /// Recognises the format from the first [`crate::SNIFF_LEN`] bytes (never by extension).
    fn sniff(&self, head: &[u8]) -> bool;

    /// Reads the header only, reading no more than `limits` allows.
    fn probe(&self, src: &mut Source, limits: &Limits) -> Result<Header>;

    /// Opens the pixel stream (checking `opts.limits` before any allocation).
    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>>;

    /// The saver, when thumbfs writes this format.
    fn saver(&self) -> Option<&Saver> {
        None
    }

    /// Writes an animation, when the format carries one (GIF, WebP); `None`: an animated
    /// source is saved as its first frame through [`Codec::saver`].
    fn save_animation(&self) -> Option<SaveAnimation> {
        None
    }
}

/// Encodes the frames of an [`Animated`] into a target, then finishes the target.
pub type SaveAnimation = fn(Animated<'_>, &SaveOptions, &mut dyn Target) -> Result<()>;

/// The static description of a codec.
pub struct About {
    /// Short lowercase name for messages and `info`; unique in a registry.
    pub name: &'static str,
    /// What the README's format table calls it.
    pub title: &'static str,
    /// Typical extensions of source files (documentation: sources are recognised by content);
    /// none for an output-only format.
    pub extensions: &'static [&'static str],
    /// Output when a spec names none; `None`: its own saver's format, else [`Format::FALLBACK`].
    pub serve_as: Option<Format>,
    /// What is decoded, how, and with which library (the README's table).
    pub notes: &'static str,
}

/// The saving half of a codec.
pub struct Saver {
    /// The spec token, also the extension given to outputs.
    pub token: &'static str,
    /// Other extensions that name this output format (`thumbfs convert in.jpg out.jpeg`).
    pub aliases: &'static [&'static str],
    /// The media type of its output (`Content-Type` of an upload to an object store).
    pub mime: &'static str,
    /// Sample types the saver takes; [`crate::save`] casts anything else to one of them first.
    pub accepts: &'static [SampleFormat],
    /// The spec tokens this saver understands, with their ranges and defaults.
    pub options: &'static [SaveOption],
    /// Largest image the format (or its library) can hold, checked when a render is planned.
    pub limits: SaverLimits,
    /// Box the image must fit for this format (a placeholder hash): the planner thumbnails
    /// into it, or caps a larger size the spec gives; `None`: any size within `limits`.
    pub fit: Option<(u32, u32)>,
    /// Whether the format embeds an ICC profile: when it cannot, the pipeline converts
    /// profiled pixels to sRGB before saving.
    pub icc: bool,
    /// Encodes a stream into a target, then finishes the target.
    pub save: fn(BoxStream, &SaveOptions, &mut dyn Target) -> Result<()>,
    /// How it saves, with which library (the README's table).
    pub notes: &'static str,
}

/// One spec token a saver understands: `<token><N>` with a range, or a bare word.
#[derive(Debug, PartialEq, Eq)]
pub struct SaveOption {
    /// The token (`q`, `lossless`), or its prefix when it takes a number.
    pub token: &'static str,
    /// What it sets, for messages (`quality`).
    pub name: &'static str,
    /// `Some((lo, hi))`: a number in this range follows the token; `None`: a bare word.
    pub range: Option<(u32, u32)>,
    /// Value the saver uses when the spec gives none (`None`: the saver's own behaviour).
    pub default: Option<u32>,
    /// Whether it may be given without the format token (then outputs without it ignore it).
    pub without_format: bool,
    /// Tokens it cannot be combined with.
    pub conflicts: &'static [&'static str],
    /// One line for the READMEs and `--help`.
    pub help: &'static str,
}

impl SaveOption {
    /// How the grammar writes it: `q<N>` or `lossless`.
    pub fn spelling(&self) -> String {
        match self.range {
            Some(_) => format!("{}<N>", self.token),
            None => self.token.to_string(),
        }
    }
}

/// `q<N>`: quality of the lossy savers, libvips' default included.
pub const QUALITY: SaveOption = SaveOption {
    token: "q",
    name: "quality",
    range: Some((1, 100)),
    default: Some(75),
    without_format: true,
    conflicts: &[],
    help: "quality",
};

/// Save settings a spec gave: values by token, plus `strip`. What a spec leaves out, the saver
/// takes from its [`SaveOption::default`] (the one place defaults live).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SaveOptions {
    /// Drop EXIF, XMP and ICC.
    pub strip: bool,
    /// Given settings: option token and value (1 for a bare word).
    pub values: Vec<(&'static str, u32)>,
}

impl SaveOptions {
    /// These options with `token` set to `value` (1 for a bare word).
    pub fn with(mut self, token: &'static str, value: u32) -> Self {
        self.values.retain(|(t, _)| *t != token);
        self.values.push((token, value));
        self
    }

    /// The value of `opt`: as given, else its default.
    pub fn value(&self, opt: &SaveOption) -> Option<u32> {
        self.values
            .iter()
            .find(|(t, _)| *t == opt.token)
            .map(|(_, v)| *v)
            .or(opt.default)
    }

    /// The [`QUALITY`] to use, given or default.
    pub fn quality(&self) -> u8 {
        self.value(&QUALITY).map_or(75, |q| q.clamp(1, 100) as u8)
    }

    /// Whether the bare word `opt` was given.
    pub fn flag(&self, opt: &SaveOption) -> bool {
        self.value(opt).is_some_and(|v| v != 0)
    }
}

/// A saver's own size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaverLimits {
    /// Largest width or height.
    pub max_side: u32,
    /// Largest total of sample bytes (width x height x bands x bytes per sample).
    pub max_bytes: u64,
    /// Where the limit comes from, for the error message.
    pub why: &'static str,
}

impl SaverLimits {
    /// No limit beyond the 32-bit sizes every header has.
    pub const NONE: SaverLimits = SaverLimits {
        max_side: u32::MAX,
        max_bytes: u64::MAX,
        why: "",
    };
}

/// Resource limits every loader and prober honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Refuse images with more pixels than this.
    pub max_pixels: u64,
    /// Largest input (or library allocation) a codec may hold in memory (unseekable TIFF,
    /// whole-image formats).
    pub memory_limit: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 200_000_000,
            memory_limit: 1 << 30,
        }
    }
}

/// What a loader may do beyond plain decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Requested integer box shrink. A loader may apply any divisor of it (shrink-on-load) and
    /// reports what it applied in [`Loaded::shrink`]; the pipeline does the rest.
    pub shrink: u32,
    /// Page of a multi-page file.
    pub page: u32,
    /// Pixel and memory limits.
    pub limits: Limits,
    /// For vector formats: render to fit this box directly.
    pub fit: Option<(u32, u32)>,
    /// Most frames of an animation wanted: 1 for a still; a loader announces at most one
    /// more (which tells that there are more than this), and decodes none beyond the first
    /// until asked.
    pub max_frames: u32,
    /// Decode the primary image itself: nothing stands in for it (an embedded preview such as
    /// a RAW's full-size JPEG, or a reduced image such as JPEG XL's 1/8 LF image); the spec's
    /// `exact`, which `--previews off` sets too.
    pub exact: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            shrink: 1,
            page: 0,
            limits: Limits::default(),
            fit: None,
            max_frames: 1,
            exact: false,
        }
    }
}

/// A loader's output: the primary image as a strip stream, the part of the requested shrink
/// it applied, and room for what else a file holds.
pub struct Loaded<'a> {
    /// Decoded strips of the primary image (the first frame); its header gives the (possibly
    /// shrunk) size.
    pub stream: BoxStream<'a>,
    /// Box shrink factor already applied: a divisor of [`LoadOptions::shrink`], or when
    /// [`LoadOptions::fit`] is set (a resize follows) any factor up to it.
    pub shrink: u32,
    /// The rest of an animation of more than one frame (GIF, WebP), decoded on demand.
    pub frames: Option<Animation<'a>>,
    /// Auxiliary images (gain maps, embedded previews). No loader fills it yet.
    pub aux: Vec<Aux<'a>>,
}

impl<'a> Loaded<'a> {
    /// One image, `shrink` applied.
    pub fn single(stream: BoxStream<'a>, shrink: u32) -> Self {
        Loaded {
            stream,
            shrink,
            frames: None,
            aux: Vec::new(),
        }
    }
}

/// An animation as a loader found it: what its header says, known before any frame after
/// the first is decoded (so bounds can be checked first), and the frames after the first.
pub struct Animation<'a> {
    /// How long each frame shows, in milliseconds, the first included (as stored: GIF's
    /// centiseconds times ten, 0 kept as 0).
    pub delays_ms: Vec<u32>,
    /// How many times the animation plays; 0: forever.
    pub plays: u32,
    /// The frames after the first, in order.
    pub rest: Box<dyn Frames + 'a>,
}

impl Animation<'_> {
    /// Number of frames, the first included.
    pub fn count(&self) -> u32 {
        self.delays_ms.len() as u32
    }
}

/// The frames of an animation after the first, each a whole canvas (disposal and blending
/// already composed, as libvips gives them) with the first frame's header.
pub trait Frames: Send {
    /// The next frame, or `None` after the last.
    fn next_frame(&mut self) -> Result<Option<Image>>;
}

/// One frame of an animation as a saver receives it.
pub struct Frame<'a> {
    /// The frame's strips, every frame at the same size and sample layout.
    pub stream: BoxStream<'a>,
    /// How long it shows, in milliseconds.
    pub delay_ms: u32,
}

/// What an animation saver writes: the output header (every frame's), the play count, and
/// the frames, produced one at a time (each one decoded and put through the spec's
/// operations when the saver asks for it).
pub struct Animated<'a> {
    /// Size, bands and metadata of every frame.
    pub header: Header,
    /// Number of frames.
    pub count: u32,
    /// How many times the animation plays; 0: forever.
    pub plays: u32,
    /// Produces the next frame, `None` after the last.
    pub next: Box<dyn FnMut() -> Result<Option<Frame<'a>>> + 'a>,
}

/// An image stored beside the primary one.
pub struct Aux<'a> {
    /// What it is.
    pub kind: AuxKind,
    /// Its strips, at its own size.
    pub stream: BoxStream<'a>,
}

/// Kinds of auxiliary images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuxKind {
    /// An HDR gain map (ISO 21496-1, Ultra HDR, Apple's).
    GainMap,
    /// A smaller embedded preview or thumbnail.
    Preview,
}
