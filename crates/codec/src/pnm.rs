//! Netpbm family, hand-written (the formats are a few lines of header and a raw raster):
//! PBM/PGM/PPM in plain (P1..P3) and raw (P4..P6) form, PAM (P7) and PFM (Pf / PF).
//!
//! Raw rasters stream strip by strip; PFM stores rows bottom to top, so it streams by seeking
//! backwards when the source can seek and is read whole otherwise. Plain (ASCII) files are
//! read whole. Sample values with a maxval other than 255 / 65535 are rescaled to full range.

use std::io::{BufRead, Read, Seek, SeekFrom, Write};

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, Image, ImageStream, Metadata, SampleFormat, Samples, Strip};
use crate::io::{Source, Target, TargetWriter};
use crate::{
    check_limits, About, Codec, Limits, LoadOptions, Loaded, SaveOptions, Saver, SaverLimits,
};

/// Headers longer than this are refused (real ones are a few dozen bytes).
const MAX_HEADER: u64 = 64 * 1024;
/// Longest header token or PAM line.
const MAX_TOKEN: usize = 256;
/// Aim for strips of about this many bytes.
const STRIP_BYTES: usize = 1 << 20;

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::decode("pnm", msg)
}

/// How the raster is stored.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// P1: ASCII '0'/'1', 1 = black.
    PlainBit,
    /// P2 / P3: ASCII decimal samples.
    Plain,
    /// P4: packed bits, MSB first, rows padded to a byte, 1 = black.
    RawBit,
    /// P5 / P6 / P7: one or two big-endian bytes per sample.
    Raw,
    /// Pf / PF: 32-bit floats, rows bottom to top.
    Float { little: bool, scale: f32 },
}

/// A parsed header.
#[derive(Debug, Clone, Copy)]
struct Pnm {
    kind: Kind,
    width: u32,
    height: u32,
    bands: u8,
    maxval: u32,
}

impl Pnm {
    fn header(&self) -> Header {
        let (format, bit_depth) = match self.kind {
            Kind::Float { .. } => (SampleFormat::F32, 32),
            _ if self.maxval > 255 => (SampleFormat::U16, 32 - self.maxval.leading_zeros()),
            _ => (SampleFormat::U8, 32 - self.maxval.leading_zeros()),
        };
        Header {
            width: self.width,
            height: self.height,
            bands: self.bands,
            format,
            bit_depth: bit_depth as u8,
            meta: Metadata::upright(),
        }
    }

    /// Bytes of one stored row, checked.
    fn row_bytes(&self) -> Result<usize> {
        let w = self.width as u64;
        let n = match self.kind {
            Kind::RawBit => w.div_ceil(8),
            Kind::Float { .. } => w * self.bands as u64 * 4,
            _ => w * self.bands as u64 * if self.maxval > 255 { 2 } else { 1 },
        };
        usize::try_from(n).map_err(|_| bad("row size overflows"))
    }
}

fn peek(src: &mut Source) -> Result<Option<u8>> {
    Ok(src.fill_buf().map_err(Error::Read)?.first().copied())
}

fn next_byte(src: &mut Source) -> Result<Option<u8>> {
    let b = peek(src)?;
    if b.is_some() {
        src.consume(1);
    }
    if src.position() > MAX_HEADER {
        return Err(bad("header longer than 64 KiB"));
    }
    Ok(b)
}

/// Skips whitespace and `#` comments (to the end of the line).
fn skip_space(src: &mut Source) -> Result<()> {
    while let Some(b) = peek(src)? {
        if b == b'#' {
            while let Some(c) = next_byte(src)? {
                if c == b'\n' || c == b'\r' {
                    break;
                }
            }
        } else if b.is_ascii_whitespace() {
            next_byte(src)?;
        } else {
            break;
        }
    }
    Ok(())
}

fn token(src: &mut Source, what: &str) -> Result<String> {
    skip_space(src)?;
    let mut t = Vec::new();
    while let Some(b) = peek(src)? {
        if b.is_ascii_whitespace() || b == b'#' {
            break;
        }
        if t.len() >= MAX_TOKEN {
            return Err(bad(format!("{what} is too long")));
        }
        t.push(b);
        next_byte(src)?;
    }
    if t.is_empty() {
        return Err(bad(format!("file ends before the {what}")));
    }
    Ok(String::from_utf8_lossy(&t).into_owned())
}

fn number(text: &str, what: &str) -> Result<u32> {
    text.parse::<u32>()
        .map_err(|_| bad(format!("bad {what} {text:?}")))
}

/// The single whitespace byte between a header and a raw raster.
fn end_of_header(src: &mut Source) -> Result<()> {
    match next_byte(src)? {
        Some(b) if b.is_ascii_whitespace() => Ok(()),
        Some(b) => Err(bad(format!(
            "expected whitespace after the header, found byte {b:#04x}"
        ))),
        None => Err(bad("file ends after the header")),
    }
}

fn check_maxval(maxval: u32) -> Result<u32> {
    if (1..=65535).contains(&maxval) {
        Ok(maxval)
    } else {
        Err(bad(format!("maxval {maxval} outside 1..65535")))
    }
}

/// One PAM header line, without its comment lines; `None` at end of input.
fn pam_line(src: &mut Source) -> Result<Option<String>> {
    loop {
        let mut line = Vec::new();
        let mut any = false;
        while let Some(b) = next_byte(src)? {
            any = true;
            if b == b'\n' {
                break;
            }
            if line.len() >= MAX_TOKEN {
                return Err(bad("PAM header line too long"));
            }
            line.push(b);
        }
        if !any {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&line).trim().to_string();
        if !text.is_empty() && !text.starts_with('#') {
            return Ok(Some(text));
        }
    }
}

fn parse_pam(src: &mut Source) -> Result<Pnm> {
    let (mut w, mut h, mut depth, mut maxval, mut tupltype) = (None, None, None, None, None);
    loop {
        let line = pam_line(src)?.ok_or_else(|| bad("PAM header has no ENDHDR"))?;
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let value = value.trim();
        match key {
            "ENDHDR" => break,
            "WIDTH" => w = Some(number(value, "width")?),
            "HEIGHT" => h = Some(number(value, "height")?),
            "DEPTH" => depth = Some(number(value, "depth")?),
            "MAXVAL" => maxval = Some(number(value, "maxval")?),
            // Several TUPLTYPE lines are concatenated, per the spec.
            "TUPLTYPE" => {
                let t: &mut String = tupltype.get_or_insert_with(String::new);
                if !t.is_empty() {
                    t.push(' ');
                }
                t.push_str(value);
            }
            other => return Err(bad(format!("unknown PAM header field {other:?}"))),
        }
    }
    let missing = |f: &str| bad(format!("PAM header lacks {f}"));
    let depth = depth.ok_or_else(|| missing("DEPTH"))?;
    if !(1..=4).contains(&depth) {
        return Err(Error::Unsupported(format!("PAM with DEPTH {depth}")));
    }
    if let Some(t) = &tupltype {
        let expect: &[u32] = match t.as_str() {
            "BLACKANDWHITE" | "GRAYSCALE" => &[1],
            "BLACKANDWHITE_ALPHA" | "GRAYSCALE_ALPHA" => &[2],
            "RGB" => &[3],
            "RGB_ALPHA" => &[4],
            // Unknown tuple types are read by depth, as libnetpbm does.
            _ => &[1, 2, 3, 4],
        };
        if !expect.contains(&depth) {
            return Err(bad(format!("TUPLTYPE {t} with DEPTH {depth}")));
        }
    }
    Ok(Pnm {
        kind: Kind::Raw,
        width: w.ok_or_else(|| missing("WIDTH"))?,
        height: h.ok_or_else(|| missing("HEIGHT"))?,
        bands: depth as u8,
        maxval: check_maxval(maxval.ok_or_else(|| missing("MAXVAL"))?)?,
    })
}

/// Parses the header, leaving the source at the first raster byte.
fn parse(src: &mut Source) -> Result<Pnm> {
    let mut magic = [0u8; 2];
    src.read_exact(&mut magic)
        .map_err(|_| bad("file too short for a header"))?;
    if magic[0] != b'P' {
        return Err(bad("missing P signature"));
    }
    if magic[1] == b'7' {
        end_of_header(src)?;
        return parse_pam(src);
    }
    let (kind, bands) = match magic[1] {
        b'1' => (Kind::PlainBit, 1),
        b'2' => (Kind::Plain, 1),
        b'3' => (Kind::Plain, 3),
        b'4' => (Kind::RawBit, 1),
        b'5' => (Kind::Raw, 1),
        b'6' => (Kind::Raw, 3),
        b'f' => (
            Kind::Float {
                little: false,
                scale: 1.0,
            },
            1,
        ),
        b'F' => (
            Kind::Float {
                little: false,
                scale: 1.0,
            },
            3,
        ),
        m => return Err(bad(format!("unknown signature P{}", m as char))),
    };
    let width = number(&token(src, "width")?, "width")?;
    let height = number(&token(src, "height")?, "height")?;
    let (kind, maxval) = match kind {
        Kind::PlainBit | Kind::RawBit => (kind, 1),
        Kind::Float { .. } => {
            let t = token(src, "scale")?;
            let scale: f32 = t
                .parse()
                .ok()
                .filter(|s: &f32| s.is_finite() && *s != 0.0)
                .ok_or_else(|| bad(format!("bad PFM scale {t:?}")))?;
            let kind = Kind::Float {
                little: scale < 0.0,
                scale: scale.abs(),
            };
            (kind, 1)
        }
        _ => (
            kind,
            check_maxval(number(&token(src, "maxval")?, "maxval")?)?,
        ),
    };
    // Plain formats allow any whitespace run before the samples; raw ones exactly one byte.
    if kind != Kind::Plain && kind != Kind::PlainBit {
        end_of_header(src)?;
    }
    Ok(Pnm {
        kind,
        width,
        height,
        bands,
        maxval,
    })
}

/// Reads the header only.
pub fn probe(src: &mut Source) -> Result<Header> {
    let pnm = parse(src)?;
    let header = pnm.header();
    pnm.row_bytes()?;
    Ok(header)
}

/// Opens the pixel stream.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let pnm = parse(&mut src)?;
    let header = pnm.header();
    check_limits(&header, opts.limits.max_pixels)?;
    let row_bytes = pnm.row_bytes()?;
    let total = (row_bytes as u64)
        .checked_mul(pnm.height as u64)
        .ok_or_else(|| bad("image size overflows"))?;
    let strip_rows =
        (STRIP_BYTES / row_bytes.max(1)).clamp(1, crate::image::STRIP_ROWS as usize) as u32;
    let stream: BoxStream<'a> = match pnm.kind {
        Kind::Plain | Kind::PlainBit => {
            let text = src.read_to_memory(opts.limits.memory_limit)?;
            let samples = parse_plain(&pnm, &header, &text)?;
            Box::new(Image { header, samples }.into_stream(strip_rows))
        }
        Kind::Float { .. } if !src.is_seekable() => {
            if total > opts.limits.memory_limit {
                return Err(Error::Unsupported(format!(
                    "PFM from an unseekable source needs {total} bytes, over the memory limit"
                )));
            }
            let mut raw = crate::alloc::filled(total as usize, 0u8, "a PFM raster")?;
            read_raster(&mut src, &mut raw)?;
            let samples = Samples::F32(floats(&pnm, &bottom_up(&raw, row_bytes)?)?);
            Box::new(Image { header, samples }.into_stream(strip_rows))
        }
        _ => {
            let start = src.position();
            Box::new(RawRows {
                src,
                pnm,
                header,
                row_bytes,
                start,
                strip_rows,
                y: 0,
                buf: Vec::new(),
            })
        }
    };
    Ok(Loaded::single(stream, 1))
}

fn read_raster(src: &mut Source, buf: &mut [u8]) -> Result<()> {
    src.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad("file is truncated")
        } else {
            Error::Read(e)
        }
    })
}

/// Decodes P1 / P2 / P3 text.
fn parse_plain(pnm: &Pnm, header: &Header, text: &[u8]) -> Result<Samples> {
    let n = crate::alloc::len(
        &[header.row_samples(), header.height as usize],
        "PNM samples",
    )?;
    // Every sample takes at least one byte of text: a short file claiming a huge size
    // fails on its missing samples, not on a buffer sized by its header.
    let mut vals: Vec<u32> = crate::alloc::with_capacity(n.min(text.len()), "PNM samples")?;
    let mut i = 0;
    while vals.len() < n {
        match text.get(i) {
            None => {
                return Err(bad(format!(
                    "file ends after {} of {n} samples",
                    vals.len()
                )))
            }
            Some(b'#') => {
                while i < text.len() && text[i] != b'\n' && text[i] != b'\r' {
                    i += 1;
                }
            }
            Some(b) if b.is_ascii_whitespace() => i += 1,
            // P1 samples are single digits, possibly not separated.
            Some(&b) if pnm.kind == Kind::PlainBit => {
                match b {
                    b'0' => vals.push(255),
                    b'1' => vals.push(0),
                    _ => return Err(bad(format!("bad PBM sample byte {b:#04x}"))),
                }
                i += 1;
            }
            Some(b) if b.is_ascii_digit() => {
                let mut v: u32 = 0;
                while let Some(d) = text.get(i).filter(|d| d.is_ascii_digit()) {
                    v = v.saturating_mul(10).saturating_add((d - b'0') as u32);
                    i += 1;
                }
                vals.push(v);
            }
            Some(&b) => return Err(bad(format!("bad sample byte {b:#04x}"))),
        }
    }
    Ok(match (pnm.kind, header.format) {
        (Kind::PlainBit, _) => Samples::U8(collect(vals.iter().map(|&v| v as u8))?),
        (_, SampleFormat::U8) => {
            let lut = lut8(pnm.maxval);
            Samples::U8(collect(vals.iter().map(|&v| lut[v.min(255) as usize]))?)
        }
        _ => Samples::U16(collect(vals.iter().map(|&v| scale16(v, pnm.maxval)))?),
    })
}

/// Rescales 0..=maxval (≤ 255) to 0..=255, clamping larger values.
fn lut8(maxval: u32) -> [u8; 256] {
    let mut lut = [0u8; 256];
    for (v, out) in lut.iter_mut().enumerate() {
        let v = (v as u32).min(maxval);
        *out = ((v * 255 + maxval / 2) / maxval) as u8;
    }
    lut
}

/// Rescales 0..=maxval to 0..=65535, clamping larger values.
fn scale16(v: u32, maxval: u32) -> u16 {
    if maxval == 65535 {
        return v.min(65535) as u16;
    }
    let v = v.min(maxval) as u64;
    ((v * 65535 + maxval as u64 / 2) / maxval as u64) as u16
}

/// Samples, fallibly collected (the buffers are sized by the header).
fn collect<T>(iter: impl ExactSizeIterator<Item = T>) -> Result<Vec<T>> {
    crate::alloc::collect(iter, "PNM samples")
}

/// PFM rows are stored bottom to top: `raw` with its rows of `row_bytes` in reverse order.
fn bottom_up(raw: &[u8], row_bytes: usize) -> Result<Vec<u8>> {
    let mut out = crate::alloc::with_capacity(raw.len(), "a PFM raster")?;
    for row in raw.chunks_exact(row_bytes.max(1)).rev() {
        out.extend_from_slice(row);
    }
    Ok(out)
}

fn floats(pnm: &Pnm, raw: &[u8]) -> Result<Vec<f32>> {
    let (little, scale) = match pnm.kind {
        Kind::Float { little, scale } => (little, scale),
        _ => (true, 1.0),
    };
    collect(raw.chunks_exact(4).map(|c| {
        let b = [c[0], c[1], c[2], c[3]];
        let v = if little {
            f32::from_le_bytes(b)
        } else {
            f32::from_be_bytes(b)
        };
        // |scale| multiplies samples, as ImageMagick reads it; it is 1 in practice.
        v * scale
    }))
}

/// Raw rasters (P4..P7) and seekable PFM, a strip at a time.
struct RawRows<'a> {
    src: Source<'a>,
    pnm: Pnm,
    header: Header,
    row_bytes: usize,
    /// Offset of the first raster byte.
    start: u64,
    strip_rows: u32,
    y: u32,
    buf: Vec<u8>,
}

impl ImageStream for RawRows<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let h = self.header.height;
        if self.y >= h {
            return Ok(None);
        }
        let n = self.strip_rows.min(h - self.y);
        crate::alloc::resize(
            &mut self.buf,
            crate::alloc::len(&[self.row_bytes, n as usize], "PNM rows")?,
            0,
            "PNM rows",
        )?;
        let p = &self.pnm;
        let samples = match p.kind {
            Kind::Float { .. } => {
                // File row r holds image row h-1-r: read the block, then flip it.
                let first = (h - self.y - n) as u64;
                let at = self.start + first * self.row_bytes as u64;
                self.src.seek(SeekFrom::Start(at)).map_err(Error::Read)?;
                read_raster(&mut self.src, &mut self.buf)?;
                Samples::F32(floats(p, &bottom_up(&self.buf, self.row_bytes)?)?)
            }
            Kind::RawBit => {
                read_raster(&mut self.src, &mut self.buf)?;
                let w = p.width as usize;
                let mut out = crate::alloc::with_capacity(w * n as usize, "PNM samples")?;
                for row in self.buf.chunks_exact(self.row_bytes) {
                    out.extend((0..w).map(|x| {
                        if row[x / 8] & (0x80 >> (x % 8)) != 0 {
                            0
                        } else {
                            255
                        }
                    }));
                }
                Samples::U8(out)
            }
            _ => {
                read_raster(&mut self.src, &mut self.buf)?;
                if p.maxval > 255 {
                    Samples::U16(collect(self.buf.chunks_exact(2).map(|c| {
                        scale16(u16::from_be_bytes([c[0], c[1]]) as u32, p.maxval)
                    }))?)
                } else if p.maxval == 255 {
                    Samples::U8(collect(self.buf.iter().copied())?)
                } else {
                    let lut = lut8(p.maxval);
                    Samples::U8(collect(self.buf.iter().map(|&v| lut[v as usize]))?)
                }
            }
        };
        let strip = Strip {
            y: self.y,
            height: n,
            samples,
        };
        self.y += n;
        Ok(Some(strip))
    }
}

fn write_err(e: std::io::Error) -> Error {
    Error::Write(e)
}

/// Encodes a stream as PGM / PPM / PAM (8 or 16 bit), or as PFM when `float`.
pub fn save(
    mut stream: BoxStream,
    opts: &SaveOptions,
    target: &mut dyn Target,
    float: bool,
) -> Result<()> {
    // Netpbm formats carry no metadata, so `strip` changes nothing.
    let _ = opts;
    let header = stream.header().clone();
    if !(1..=4).contains(&header.bands) {
        return Err(Error::encode("pnm", format!("{} bands", header.bands)));
    }
    if float {
        return save_pfm(stream, target);
    }
    let (w, h, b) = (header.width, header.height, header.bands);
    let maxval = if header.format == SampleFormat::U8 {
        255
    } else {
        65535
    };
    let mut out = TargetWriter::new(target);
    let head = match b {
        1 => format!("P5\n{w} {h}\n{maxval}\n"),
        3 => format!("P6\n{w} {h}\n{maxval}\n"),
        _ => format!(
            "P7\nWIDTH {w}\nHEIGHT {h}\nDEPTH {b}\nMAXVAL {maxval}\nTUPLTYPE {}\nENDHDR\n",
            if b == 2 {
                "GRAYSCALE_ALPHA"
            } else {
                "RGB_ALPHA"
            }
        ),
    };
    out.write_all(head.as_bytes()).map_err(write_err)?;
    let mut y = 0;
    let mut bytes = Vec::new();
    while let Some(strip) = stream.next_strip()? {
        check_strip(&header, &strip, y)?;
        bytes.clear();
        let n = strip.samples.len() * strip.samples.format().bytes();
        crate::alloc::reserve(&mut bytes, n, "a PNM strip")?;
        match &strip.samples {
            Samples::U8(v) => bytes.extend_from_slice(v),
            Samples::U16(v) => bytes.extend(v.iter().flat_map(|s| s.to_be_bytes())),
            Samples::F32(_) => {
                return Err(Error::encode("pnm", "float samples not cast to integers"))
            }
        }
        out.write_all(&bytes).map_err(write_err)?;
        y += strip.height;
    }
    if y != h {
        return Err(Error::encode(
            "pnm",
            format!("stream ended after {y} of {h} rows"),
        ));
    }
    out.finish().map_err(write_err)
}

fn check_strip(header: &Header, strip: &Strip, y: u32) -> Result<()> {
    if strip.y != y || strip.samples.len() != header.row_samples() * strip.height as usize {
        return Err(Error::encode(
            "pnm",
            format!(
                "strip at row {} with {} samples does not continue row {y}",
                strip.y,
                strip.samples.len()
            ),
        ));
    }
    Ok(())
}

/// PFM: grey → Pf, colour → PF, alpha dropped (PFM has none), little endian, rows bottom to
/// top, so the whole image is collected first.
fn save_pfm(stream: BoxStream, target: &mut dyn Target) -> Result<()> {
    let img = Image::collect(stream)?;
    let header = &img.header;
    let (w, h, b) = (header.width, header.height, header.bands as usize);
    let out_bands = if b <= 2 { 1 } else { 3 };
    let Samples::F32(linear) = &img.samples else {
        return Err(Error::encode("pfm", "samples not cast to float"));
    };
    let mut out = TargetWriter::new(target);
    let magic = if out_bands == 1 { "Pf" } else { "PF" };
    out.write_all(format!("{magic}\n{w} {h}\n-1.0\n").as_bytes())
        .map_err(write_err)?;
    let row_samples = w as usize * b;
    let mut bytes = crate::alloc::with_capacity(w as usize * out_bands * 4, "a PFM row")?;
    for row in linear.chunks_exact(row_samples.max(1)).rev() {
        bytes.clear();
        for px in row.chunks_exact(b) {
            for &s in &px[..out_bands] {
                bytes.extend_from_slice(&s.to_le_bytes());
            }
        }
        out.write_all(&bytes).map_err(write_err)?;
    }
    out.finish().map_err(write_err)
}

static PNM: About = About {
    name: "pnm",
    title: "PBM / PGM / PPM / PAM",
    extensions: &["pbm", "pgm", "ppm", "pnm", "pam"],
    serve_as: None,
    notes: "hand-written, streamed; plain and binary, 1-16 bit",
};

static PNM_SAVER: Saver = Saver {
    token: "ppm",
    aliases: &["pgm", "pbm", "pnm", "pam"],
    mime: "image/x-portable-anymap",
    accepts: &[SampleFormat::U8, SampleFormat::U16],
    options: &[],
    limits: SaverLimits::NONE,
    fit: None,
    icc: false,
    save: |s, o, t| save(s, o, t, false),
    notes: "PGM, PPM or PAM by band count",
};

/// The PBM/PGM/PPM/PAM codec.
pub struct PnmCodec;

impl Codec for PnmCodec {
    fn about(&self) -> &About {
        &PNM
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.len() >= 3
            && head[0] == b'P'
            && (b'1'..=b'7').contains(&head[1])
            && head[2].is_ascii_whitespace()
    }

    fn probe(&self, src: &mut Source, _: &Limits) -> Result<Header> {
        probe(src)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }

    fn saver(&self) -> Option<&Saver> {
        Some(&PNM_SAVER)
    }
}

static PFM: About = About {
    name: "pfm",
    title: "PFM",
    extensions: &["pfm"],
    serve_as: None,
    notes: "hand-written, streamed; linear float",
};

static PFM_SAVER: Saver = Saver {
    token: "pfm",
    aliases: &[],
    mime: "image/x-portable-floatmap",
    accepts: &[SampleFormat::F32],
    options: &[],
    limits: SaverLimits::NONE,
    fit: None,
    icc: false,
    save: |s, o, t| save(s, o, t, true),
    notes: "little-endian float",
};

/// The PFM codec.
pub struct PfmCodec;

impl Codec for PfmCodec {
    fn about(&self) -> &About {
        &PFM
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.len() >= 3
            && head[0] == b'P'
            && matches!(head[1], b'f' | b'F')
            && head[2].is_ascii_whitespace()
    }

    fn probe(&self, src: &mut Source, _: &Limits) -> Result<Header> {
        probe(src)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }

    fn saver(&self) -> Option<&Saver> {
        Some(&PFM_SAVER)
    }
}
