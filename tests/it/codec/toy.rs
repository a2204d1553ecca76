//! A format added from outside the codec crate: one file (the `Toy` codec below) plus one
//! registration line (`with_first`), rendered through the CLI's convert path with a custom
//! registry, with nothing else touched.
//!
//! The toy format: `TOY1`, width and height as little-endian u16, then 8-bit grey samples.
//! Its saver takes `bits<N>` (1..8, default 8): keep the top N bits of every sample.

use std::sync::Arc;

use thumbfs::codec::{
    About, Codec, Format, Limits, LoadOptions, Loaded, Registry, SaveOption, SaveOptions, Saver,
    SaverLimits,
};
use thumbfs::error::{Error, Result};
use thumbfs::io::{Source, Target};
use thumbfs::{BoxStream, Header, Image, Metadata, RenderOptions, SampleFormat, Samples, Spec};

use crate::common::{corpus, magick_decode};

// ---- the codec: what a new format's file holds ----

const MAGIC: &[u8] = b"TOY1";

const BITS: SaveOption = SaveOption {
    token: "bits",
    name: "bit depth",
    range: Some((1, 8)),
    default: Some(8),
    without_format: false,
    conflicts: &[],
    help: "significant bits",
};

static ABOUT: About = About {
    name: "toy",
    title: "Toy",
    extensions: &["toy"],
    serve_as: None,
    notes: "test format: 8-bit grey",
};

static SAVER: Saver = Saver {
    token: "toy",
    aliases: &[],
    mime: "application/octet-stream",
    accepts: &[SampleFormat::U8],
    options: &[BITS],
    limits: SaverLimits {
        max_side: u16::MAX as u32,
        max_bytes: u64::MAX,
        why: "16-bit size fields",
    },
    fit: None,
    icc: false,
    save,
    notes: "8-bit grey, top `bits<N>` bits kept",
};

struct Toy;

fn header(w: u32, h: u32) -> Header {
    Header {
        width: w,
        height: h,
        bands: 1,
        format: SampleFormat::U8,
        bit_depth: 8,
        meta: Metadata::upright(),
    }
}

fn parse(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(Error::decode("toy", "no TOY1 header"));
    }
    let w = u16::from_le_bytes([bytes[4], bytes[5]]) as u32;
    let h = u16::from_le_bytes([bytes[6], bytes[7]]) as u32;
    Ok(header(w, h))
}

fn save(stream: BoxStream, opts: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let img = Image::collect(stream)?;
    let h = &img.header;
    let Samples::U8(data) = img.samples else {
        return Err(Error::encode("toy", "samples not cast to 8 bits"));
    };
    if h.bands != 1 {
        return Err(Error::encode("toy", "grey only"));
    }
    let bits = opts.value(&BITS).unwrap_or(8);
    let mask = !(0xFFu8.checked_shr(bits).unwrap_or(0));
    let mut out = MAGIC.to_vec();
    out.extend((h.width as u16).to_le_bytes());
    out.extend((h.height as u16).to_le_bytes());
    out.extend(data.iter().map(|s| s & mask));
    target.write_all(&out).map_err(Error::Write)?;
    target.finish().map_err(Error::Write)
}

impl Codec for Toy {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(MAGIC)
    }

    fn probe(&self, src: &mut Source, limits: &Limits) -> Result<Header> {
        parse(&src.read_to_memory(limits.memory_limit)?)
    }

    fn load<'a>(&self, mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        src.start_pixel_phase();
        let bytes = src.read_to_memory(opts.limits.memory_limit)?;
        let header = parse(&bytes)?;
        thumbfs::codec::check_limits(&header, opts.limits.max_pixels)?;
        let n = (header.width * header.height) as usize;
        let samples = bytes
            .get(8..8 + n)
            .ok_or_else(|| Error::decode("toy", "file is truncated"))?;
        let image = Image {
            header,
            samples: Samples::U8(samples.to_vec()),
        };
        Ok(Loaded::single(Box::new(image.into_stream(16)), 1))
    }

    fn saver(&self) -> Option<&Saver> {
        Some(&SAVER)
    }
}

// ---- the registration line, and renders through it ----

fn registry() -> Arc<Registry> {
    Arc::new(Registry::builtin().as_ref().clone().with_first(&Toy))
}

fn opts() -> RenderOptions {
    RenderOptions {
        registry: registry(),
        ..RenderOptions::default()
    }
}

fn convert(spec: &str, input: &std::path::Path, output: &std::path::Path) {
    let reg = registry();
    let spec = if spec.is_empty() {
        Spec::identity()
    } else {
        Spec::parse_with(&reg, spec).unwrap()
    };
    thumbfs::cli::convert(
        spec,
        input.to_str().unwrap(),
        output.to_str().unwrap(),
        &opts(),
    )
    .unwrap();
}

#[test]
fn a_registered_toy_format_loads_and_saves_through_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    // PNG in, toy out, with the toy saver's own option.
    let png = corpus("pngsuite/primary/basn0g08.png");
    let toy = dir.path().join("grey.toy");
    convert("bits4_toy", &png, &toy);
    let bytes = std::fs::read(&toy).unwrap();
    let reference = magick_decode(&png, 8);
    assert_eq!(&bytes[..4], MAGIC);
    let (w, h) = (reference.width as u16, reference.height as u16);
    assert_eq!(bytes[4..8], [w.to_le_bytes(), h.to_le_bytes()].concat()[..]);
    // ImageMagick may expand grey to RGB: the first band is the grey value.
    let b = reference.bands as usize;
    let expect: Vec<u8> = reference
        .data
        .iter()
        .step_by(b)
        .map(|&s| s as u8 & 0xF0)
        .collect();
    assert_eq!(&bytes[8..], &expect[..]);

    // Toy in, PNG out, flipped by the ordinary operations.
    let out = dir.path().join("back.png");
    convert("flip", &toy, &out);
    let back = magick_decode(&out, 8);
    assert_eq!((back.width, back.height), (w.into(), h.into()));
    let rows: Vec<&[u8]> = expect.chunks(w as usize).rev().collect();
    let flipped: Vec<u16> = rows.concat().iter().map(|&s| s.into()).collect();
    let got: Vec<u16> = back
        .data
        .iter()
        .step_by(back.bands as usize)
        .copied()
        .collect();
    assert_eq!(got, flipped);

    // Without a format token a toy source stays toy (its own saver), default bits 8.
    let same = dir.path().join("same.toy");
    let rendered = thumbfs::render(
        Source::file(&toy).unwrap(),
        &Spec::identity(),
        &mut thumbfs::io::target::FileTarget::create(&same).unwrap(),
        &opts(),
    )
    .unwrap();
    assert_eq!(rendered.input, rendered.output);
    assert_eq!(rendered.output.token(), "toy");
    assert_eq!(std::fs::read(&same).unwrap(), bytes);
}

#[test]
fn the_spec_grammar_comes_from_the_registry() {
    let reg = registry();
    // Canonical spelling and the saver's own range and format rules.
    assert_eq!(
        Spec::parse_with(&reg, "toy_bits3").unwrap().to_string(),
        "bits3_toy"
    );
    let e = |s: &str| Spec::parse_with(&reg, s).unwrap_err().to_string();
    assert_eq!(e("bits9_toy"), "bits9: bit depth must be 1..8");
    assert_eq!(
        e("bits3_png"),
        "bits3: bit depth applies to toy output, not png"
    );
    assert_eq!(
        e("bits3"),
        "bits3: bit depth applies to toy output (add the toy token)"
    );
    // The built-in registry knows nothing of it.
    assert!("toy".parse::<Spec>().is_err());
    assert!("bits3".parse::<Spec>().is_err());
    assert_eq!(thumbfs::codec::detect(b"TOY1\x01\0\x01\0\0"), None);
    assert_eq!(
        reg.detect(b"TOY1\x01\0\x01\0\0").map(Format::name),
        Some("toy")
    );
    // Its help lines and README row come from the same schema.
    assert!(reg
        .option_help()
        .contains("bits<N>             significant bits 1..8 for toy (default 8)"));
    assert!(reg
        .markdown_table()
        .contains("| Toy (.toy) | test format: 8-bit grey | `toy` (8-bit): "));
}
