//! PNG loader and saver over the png crate: rows are decoded and encoded strip by strip,
//! except interlaced files, whose passes need the whole image in memory.

use std::io::{self, BufRead, Seek, Write};
use std::sync::Arc;

use png::{BitDepth, ColorType, Transformations};

use crate::error::{Error, Result};
use crate::image::{BoxStream, Header, Image, ImageStream, Metadata, SampleFormat, Samples, Strip};
use crate::io::{Source, Target, TargetWriter};
use crate::{
    check_limits, exif, About, Codec, Limits, LoadOptions, Loaded, SaveOption, SaveOptions, Saver,
    SaverLimits,
};

/// IDAT chunk size for the saver (the png crate's default of 4 KiB adds needless chunk overhead).
const IDAT_SIZE: usize = 256 * 1024;
/// Keyword of the iTXt chunk that carries XMP.
const XMP_KEYWORD: &str = "XML:com.adobe.xmp";

fn decode_err(e: png::DecodingError) -> Error {
    match e {
        png::DecodingError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Error::decode("png", "file is truncated")
        }
        png::DecodingError::IoError(e) => Error::Read(e),
        other => Error::decode("png", other),
    }
}

fn encode_err(e: png::EncodingError) -> Error {
    match e {
        png::EncodingError::IoError(e) => Error::Write(e),
        other => Error::encode("png", other),
    }
}

/// Reads everything up to the first IDAT and builds the header for the expanded output.
fn open<R: BufRead + Seek>(src: R, limit: usize) -> Result<(png::Reader<R>, Header)> {
    let mut options = png::DecodeOptions::default();
    // Like libpng: a wrong zlib checksum means damaged pixels, so refuse the file.
    options.set_ignore_adler32(false);
    let mut dec = png::Decoder::new_with_options(src, options);
    dec.set_limits(png::Limits { bytes: limit });
    // Palette → RGB(A), tRNS → alpha, 1/2/4-bit grey → 8-bit; 16-bit stays 16-bit.
    dec.set_transformations(Transformations::EXPAND);
    let reader = dec.read_info().map_err(decode_err)?;
    let info = reader.info();
    // png 0.18 accepts a PLTE whose length is not a multiple of 3 and then panics building
    // the palette expansion (found by fuzzing); the PNG spec calls such a chunk an error.
    if info.palette.as_ref().is_some_and(|p| p.len() % 3 != 0) {
        return Err(Error::decode("png", "PLTE length is not a multiple of 3"));
    }
    if info.is_animated() {
        // The default image (IDAT) is what we decode; APNG frames after it are ignored.
        tracing::debug!("png: animated, decoding the default image only");
    }
    let (color, depth) = reader.output_color_type();
    let bands = color.samples() as u8;
    let format = match depth {
        BitDepth::Sixteen => SampleFormat::U16,
        _ => SampleFormat::U8,
    };
    let bit_depth = match info.color_type {
        ColorType::Indexed => 8,
        _ => info.bit_depth as u8,
    };
    let exif_bytes = info.exif_metadata.as_ref().and_then(|e| exif::normalize(e));
    let orientation = exif_bytes.as_deref().map_or(1, exif::orientation);
    let xmp = info
        .utf8_text
        .iter()
        .find(|t| t.keyword == XMP_KEYWORD)
        .and_then(|t| {
            let mut t = t.clone();
            // A corrupt compressed XMP packet is dropped rather than failing the image.
            t.decompress_text().ok()?;
            t.get_text().ok()
        })
        .map(|s| Arc::new(s.into_bytes()));
    let meta = Metadata {
        orientation,
        icc: info
            .icc_profile
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(|p| Arc::new(p.to_vec())),
        exif: exif_bytes.map(Arc::new),
        xmp,
    };
    let header = Header {
        width: info.width,
        height: info.height,
        bands,
        format,
        bit_depth,
        meta,
    };
    if !(1..=4).contains(&header.bands) {
        return Err(Error::decode("png", format!("{} samples per pixel", bands)));
    }
    Ok((reader, header))
}

/// Reads the header only (chunks before the first IDAT; no pixel data is inflated).
pub fn probe(src: &mut Source, limits: &Limits) -> Result<Header> {
    // The memory limit bounds the png crate's own buffers (rows, ICC, text).
    let limit = usize::try_from(limits.memory_limit).unwrap_or(usize::MAX);
    let (_, header) = open(&mut *src, limit)?;
    Ok(header)
}

/// Opens the pixel stream.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    src.start_pixel_phase();
    let limit = usize::try_from(opts.limits.memory_limit).unwrap_or(usize::MAX);
    let (mut reader, header) = open(src, limit)?;
    check_limits(&header, opts.limits.max_pixels)?;
    let stream: BoxStream<'a> = if reader.info().interlaced {
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| Error::decode("png", "image too large to buffer"))?;
        if size as u64 > opts.limits.memory_limit {
            return Err(Error::Unsupported(format!(
                "interlaced PNG needs {size} bytes, over the {}-byte memory limit",
                opts.limits.memory_limit
            )));
        }
        let mut buf = crate::alloc::filled(size, 0u8, "an interlaced PNG")?;
        reader.next_frame(&mut buf).map_err(decode_err)?;
        let samples = to_samples(header.format, buf)?;
        Box::new(Image { header, samples }.into_stream(crate::image::STRIP_ROWS))
    } else {
        Box::new(PngRows {
            reader,
            header,
            y: 0,
        })
    };
    // PNG has no reduced-resolution decode.
    Ok(Loaded::single(stream, 1))
}

/// Big-endian PNG bytes to native samples (8-bit ones are moved, not copied).
fn to_samples(format: SampleFormat, bytes: Vec<u8>) -> Result<Samples> {
    Ok(match format {
        SampleFormat::U16 => {
            let mut v = crate::alloc::with_capacity(bytes.len() / 2, "16-bit PNG samples")?;
            v.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]])),
            );
            Samples::U16(v)
        }
        _ => Samples::U8(bytes),
    })
}

/// Non-interlaced rows, decoded on demand.
struct PngRows<'a> {
    reader: png::Reader<Source<'a>>,
    header: Header,
    y: u32,
}

impl ImageStream for PngRows<'_> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let h = self.header.height;
        if self.y >= h {
            return Ok(None);
        }
        let n = crate::image::STRIP_ROWS.min(h - self.y);
        let row_bytes = self.header.row_samples() * self.header.format.bytes();
        let mut bytes = crate::alloc::with_capacity(
            crate::alloc::len(&[row_bytes, n as usize], "PNG rows")?,
            "PNG rows",
        )?;
        for i in 0..n {
            let row = self.reader.next_row().map_err(decode_err)?.ok_or_else(|| {
                Error::decode("png", format!("image data ends at row {}", self.y + i))
            })?;
            let data = row.data();
            if data.len() != row_bytes {
                return Err(Error::decode(
                    "png",
                    format!("row of {} bytes, expected {row_bytes}", data.len()),
                ));
            }
            bytes.extend_from_slice(data);
        }
        let strip = Strip {
            y: self.y,
            height: n,
            samples: to_samples(self.header.format, bytes)?,
        };
        self.y += n;
        if self.y == h {
            // Reads the end of the zlib stream, where the checksum is verified.
            self.reader.finish().map_err(decode_err)?;
        }
        Ok(Some(strip))
    }
}

/// Encodes a stream of 8- or 16-bit samples at that depth.
pub fn save(mut stream: BoxStream, opts: &SaveOptions, target: &mut dyn Target) -> Result<()> {
    let header = stream.header().clone();
    let color = match header.bands {
        1 => ColorType::Grayscale,
        2 => ColorType::GrayscaleAlpha,
        3 => ColorType::Rgb,
        4 => ColorType::Rgba,
        b => return Err(Error::encode("png", format!("{b} bands"))),
    };
    let depth = match header.format {
        SampleFormat::U8 => BitDepth::Eight,
        SampleFormat::U16 | SampleFormat::F32 => BitDepth::Sixteen,
    };
    let mut info = png::Info::with_size(header.width, header.height);
    info.color_type = color;
    info.bit_depth = depth;
    let meta = &header.meta;
    if !opts.strip {
        info.icc_profile = meta.icc.as_ref().map(|p| p.as_slice().to_vec().into());
        info.exif_metadata = exif::for_output(meta).map(Into::into);
    }
    let mut out = TargetWriter::new(target);
    {
        let mut enc = png::Encoder::with_info(&mut out, info).map_err(encode_err)?;
        match opts.value(&COMPRESSION) {
            None => enc.set_compression(png::Compression::Fast),
            Some(0) => enc.set_deflate_compression(png::DeflateCompression::NoCompression),
            Some(level) => {
                enc.set_deflate_compression(png::DeflateCompression::Level(level.min(9) as u8));
                enc.set_filter(png::Filter::Adaptive);
            }
        }
        if !opts.strip {
            if let Some(xmp) = &meta.xmp {
                let text = String::from_utf8_lossy(xmp).into_owned();
                enc.add_itxt_chunk(XMP_KEYWORD.to_string(), text)
                    .map_err(encode_err)?;
            }
        }
        let mut writer = enc.write_header().map_err(encode_err)?;
        let mut rows = writer
            .stream_writer_with_size(IDAT_SIZE)
            .map_err(encode_err)?;
        let row_samples = header.row_samples();
        let mut bytes = Vec::new();
        let mut y = 0u32;
        while let Some(strip) = stream.next_strip()? {
            if strip.y != y || strip.samples.len() != row_samples * strip.height as usize {
                return Err(Error::encode(
                    "png",
                    format!(
                        "strip at row {} with {} samples does not continue row {y}",
                        strip.y,
                        strip.samples.len()
                    ),
                ));
            }
            bytes.clear();
            let n = strip.samples.len() * strip.samples.format().bytes();
            crate::alloc::reserve(&mut bytes, n, "a PNG strip")?;
            match &strip.samples {
                Samples::U8(v) => bytes.extend_from_slice(v),
                Samples::U16(v) => bytes.extend(v.iter().flat_map(|s| s.to_be_bytes())),
                Samples::F32(_) => {
                    return Err(Error::encode("png", "float samples not cast to integers"))
                }
            }
            rows.write_all(&bytes).map_err(|e| match e.kind() {
                io::ErrorKind::Other | io::ErrorKind::InvalidInput => Error::encode("png", e),
                _ => Error::Write(e),
            })?;
            y += strip.height;
        }
        if y != header.height {
            return Err(Error::encode(
                "png",
                format!("stream ended after {y} of {} rows", header.height),
            ));
        }
        rows.finish().map_err(encode_err)?;
        writer.finish().map_err(encode_err)?;
    }
    out.finish().map_err(Error::Write)
}

/// `c<N>`: the deflate level; without it, the png crate's fast mode.
pub const COMPRESSION: SaveOption = SaveOption {
    token: "c",
    name: "compression level",
    range: Some((0, 9)),
    default: None,
    without_format: true,
    conflicts: &[],
    help: "deflate level",
};

static ABOUT: About = About {
    name: "png",
    title: "PNG",
    extensions: &["png"],
    serve_as: None,
    notes:
        "png, row by row (interlaced whole); palette, 1-16 bit, alpha, tRNS; eXIf, iCCP, iTXt XMP",
};

static SAVER: Saver = Saver {
    token: "png",
    aliases: &[],
    mime: "image/png",
    accepts: &[SampleFormat::U8, SampleFormat::U16],
    options: &[COMPRESSION],
    limits: SaverLimits {
        max_side: i32::MAX as u32,
        max_bytes: u64::MAX,
        why: "the PNG specification",
    },
    fit: None,
    icc: true,
    save,
    notes: "png StreamWriter; fast deflate by default, `c<N>`; ICC, EXIF, XMP",
};

/// The PNG codec.
pub struct Png;

impl Codec for Png {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(b"\x89PNG\r\n\x1a\n")
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
}
