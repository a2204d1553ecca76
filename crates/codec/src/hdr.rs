//! Radiance RGBE (.hdr) loader, hand-written: header, then flat or run-length scanlines,
//! decoded row by row into linear float RGB.

use std::io::{BufRead, Read};

use crate::error::{Error, Result};
use crate::image::{Header, ImageStream, Metadata, SampleFormat, Samples, Strip};
use crate::io::Source;
use crate::{check_limits, About, Codec, Limits, LoadOptions, Loaded};

/// Longest header line we accept; real headers are a few short lines.
const MAX_LINE: u64 = 4096;
/// Header lines before the resolution line.
const MAX_LINES: usize = 512;

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::decode("hdr", msg)
}

fn read_line(src: &mut Source) -> Result<String> {
    let mut line = Vec::new();
    src.by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .map_err(Error::Read)?;
    if line.last() != Some(&b'\n') {
        return Err(bad("header line too long or file ends in the header"));
    }
    line.pop();
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Parses the header up to and including the resolution line; returns width and height.
fn read_header(src: &mut Source) -> Result<(u32, u32)> {
    let magic = read_line(src)?;
    if !magic.starts_with("#?") {
        return Err(bad("missing #? signature"));
    }
    for _ in 0..MAX_LINES {
        let line = read_line(src)?;
        if line.is_empty() {
            let res = read_line(src)?;
            return parse_resolution(&res);
        }
        if let Some(fmt) = line.strip_prefix("FORMAT=") {
            if fmt.trim() != "32-bit_rle_rgbe" {
                return Err(Error::Unsupported(format!("hdr pixel format {fmt}")));
            }
        }
    }
    Err(bad("header has no end"))
}

fn parse_resolution(line: &str) -> Result<(u32, u32)> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    match parts.as_slice() {
        ["-Y", h, "+X", w] => {
            let h: u32 = h
                .parse()
                .map_err(|_| bad(format!("bad height in {line:?}")))?;
            let w: u32 = w
                .parse()
                .map_err(|_| bad(format!("bad width in {line:?}")))?;
            Ok((w, h))
        }
        _ => Err(Error::Unsupported(format!(
            "hdr orientation {line:?} (only -Y H +X W)"
        ))),
    }
}

fn header(width: u32, height: u32) -> Header {
    Header {
        width,
        height,
        bands: 3,
        format: SampleFormat::F32,
        bit_depth: 32,
        meta: Metadata::upright(),
    }
}

/// Reads the text header only.
pub fn probe(src: &mut Source) -> Result<Header> {
    let (w, h) = read_header(src)?;
    Ok(header(w, h))
}

/// Streams scanlines as linear float RGB.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let (w, h) = read_header(&mut src)?;
    let header = header(w, h);
    check_limits(&header, opts.limits.max_pixels)?;
    Ok(Loaded::single(
        Box::new(HdrStream {
            src,
            header,
            y: 0,
            rgbe: crate::alloc::filled(w as usize * 4, 0, "an HDR scanline")?,
        }),
        1,
    ))
}

struct HdrStream<'a> {
    src: Source<'a>,
    header: Header,
    y: u32,
    rgbe: Vec<u8>,
}

impl HdrStream<'_> {
    fn byte(&mut self) -> Result<u8> {
        let mut b = [0u8];
        self.src
            .read_exact(&mut b)
            .map_err(|_| bad(format!("file ends in scanline {}", self.y)))?;
        Ok(b[0])
    }

    /// Reads one scanline of RGBE quads into `self.rgbe`.
    fn scanline(&mut self) -> Result<()> {
        let w = self.header.width as usize;
        let mut first = [0u8; 4];
        self.src
            .read_exact(&mut first)
            .map_err(|_| bad(format!("file ends in scanline {}", self.y)))?;
        let new_rle =
            (8..0x8000).contains(&w) && first[0] == 2 && first[1] == 2 && first[2] & 0x80 == 0;
        if !new_rle {
            return self.flat(first);
        }
        if ((first[2] as usize) << 8 | first[3] as usize) != w {
            return Err(bad(format!("scanline {} length mismatch", self.y)));
        }
        // Four planes, each run-length coded separately.
        for c in 0..4 {
            let mut x = 0;
            while x < w {
                let n = self.byte()? as usize;
                if n > 128 {
                    let run = n - 128;
                    if x + run > w {
                        return Err(bad(format!("run overflows scanline {}", self.y)));
                    }
                    let v = self.byte()?;
                    for i in x..x + run {
                        self.rgbe[i * 4 + c] = v;
                    }
                    x += run;
                } else {
                    if n == 0 || x + n > w {
                        return Err(bad(format!("bad literal in scanline {}", self.y)));
                    }
                    for i in x..x + n {
                        self.rgbe[i * 4 + c] = self.byte()?;
                    }
                    x += n;
                }
            }
        }
        Ok(())
    }

    /// Flat quads, with old-style runs (1,1,1,n repeats the previous pixel).
    fn flat(&mut self, first: [u8; 4]) -> Result<()> {
        let w = self.header.width as usize;
        let (mut i, mut shift, mut pending) = (0usize, 0u32, Some(first));
        while i < w {
            let q = match pending.take() {
                Some(q) => q,
                None => {
                    let mut q = [0u8; 4];
                    self.src
                        .read_exact(&mut q)
                        .map_err(|_| bad(format!("file ends in scanline {}", self.y)))?;
                    q
                }
            };
            if q[0] == 1 && q[1] == 1 && q[2] == 1 {
                let count = (q[3] as usize).checked_shl(shift).unwrap_or(usize::MAX);
                if i == 0 || count > w - i {
                    return Err(bad(format!("bad repeat in scanline {}", self.y)));
                }
                for k in i..i + count {
                    self.rgbe.copy_within((i - 1) * 4..i * 4, k * 4);
                }
                i += count;
                shift += 8;
            } else {
                self.rgbe[i * 4..i * 4 + 4].copy_from_slice(&q);
                i += 1;
                shift = 0;
            }
        }
        Ok(())
    }
}

/// RGBE to linear float, as Radiance and libvips do: (m + 0.5) * 2^(e - 136).
fn rgbe_to_f32(q: &[u8], out: &mut [f32]) {
    if q[3] == 0 {
        out.fill(0.0);
        return;
    }
    let f = (q[3] as f32 - 136.0).exp2();
    for c in 0..3 {
        out[c] = (q[c] as f32 + 0.5) * f;
    }
}

impl ImageStream for HdrStream<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        if self.y >= self.header.height {
            return Ok(None);
        }
        let w = self.header.width as usize;
        let n = (16u32).min(self.header.height - self.y);
        let mut out = crate::alloc::filled(w * 3 * n as usize, 0f32, "HDR rows")?;
        for row in out.chunks_exact_mut(w * 3) {
            self.scanline()?;
            for (q, px) in self.rgbe.chunks_exact(4).zip(row.chunks_exact_mut(3)) {
                rgbe_to_f32(q, px);
            }
            self.y += 1;
        }
        Ok(Some(Strip {
            y: self.y - n,
            height: n,
            samples: Samples::F32(out),
        }))
    }
}

static ABOUT: About = About {
    name: "hdr",
    title: "Radiance HDR",
    extensions: &["hdr"],
    serve_as: None,
    notes:
        "hand-written, streamed, linear float (tone-mapped to PNG by default; `pfm` keeps floats)",
};

/// The Radiance HDR codec.
pub struct Hdr;

impl Codec for Hdr {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(b"#?RADIANCE") || head.starts_with(b"#?RGBE")
    }

    fn probe(&self, src: &mut Source, _: &Limits) -> Result<Header> {
        probe(src)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }
}
