//! Camera RAW files (DNG, CR2, CR3, NEF, ARW, PEF, ORF, RW2, RAF): thumbnails from the
//! smallest embedded JPEG that covers them ([`preview`], chosen by the pipeline), the full
//! picture from the camera's full-size JPEG when there is one, else (and always for `exact`)
//! developed from the raw data by rawler ([`develop`]).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::image::{Header, Image, Metadata, SampleFormat, STRIP_ROWS};
use crate::io::Source;
use crate::{About, Codec, Format, Limits, LoadOptions, Loaded, SNIFF_LEN};

mod detect;
pub mod develop;
pub mod ifd;
pub mod layout;
pub mod preview;

pub use detect::{kind, Kind};

/// What probing a RAW file finds: its header and its usable embedded JPEGs.
struct Probed {
    header: Header,
    candidates: Vec<preview::Candidate>,
}

fn seekable<'s, 'a>(src: &'s mut Source<'a>) -> Result<ifd::SourceAt<'s, 'a>> {
    ifd::SourceAt::new(src, 0).ok_or_else(|| {
        Error::Unsupported("RAW files are read at offsets: the source must be seekable".into())
    })
}

fn probe_inner(src: &mut Source, limits: &Limits) -> Result<Probed> {
    src.rewind().map_err(Error::Read)?;
    let head = src.sniff(SNIFF_LEN).map_err(Error::Read)?;
    let kind = detect::kind(&head).ok_or(Error::UnknownFormat)?;
    let mut r = seekable(src)?;
    let layout = layout::read(kind, &mut r)
        .ok_or_else(|| Error::decode("raw", format!("unreadable {kind:?} structure")))?;
    let candidates = preview::candidates(&mut r, &layout, limits);
    let largest = candidates.last();
    let size = match layout.dng_size.or(largest.map(|c| (c.width, c.height))) {
        Some(s) => s,
        // No embedded JPEG: the size rawler develops, from the whole file.
        None => develop::size(whole(src, limits)?)?,
    };
    let orientation = layout
        .orientation
        .or(largest.and_then(|c| c.orientation))
        .unwrap_or(1);
    let header = Header {
        width: size.0,
        height: size.1,
        bands: 3,
        format: SampleFormat::U8,
        bit_depth: 8,
        meta: Metadata {
            orientation,
            ..Metadata::default()
        },
    };
    src.rewind().map_err(Error::Read)?;
    Ok(Probed { header, candidates })
}

/// The whole file, for rawler; a CR3 whose boxes, or a TIFF-based RAW whose IFD entries, claim
/// more than the file holds is refused first (rawler allocates what they say).
fn whole(src: &mut Source, limits: &Limits) -> Result<Arc<Vec<u8>>> {
    src.rewind().map_err(Error::Read)?;
    let bytes = src.read_to_memory(limits.memory_limit)?;
    let len = bytes.len() as u64;
    let sound = match detect::kind(&bytes) {
        Some(Kind::Cr3) => layout::cr3_sound(&mut bytes.as_slice(), len),
        Some(Kind::Raf) | None => true,
        Some(_) => ifd::sound(&mut bytes.as_slice(), len),
    };
    if !sound {
        return Err(Error::decode(
            "raw",
            "boxes or IFD entries claim more than the file holds",
        ));
    }
    Ok(Arc::new(bytes))
}

/// Reads the header: the developed size of a DNG, else the size of the largest embedded
/// JPEG (the camera's own full-size picture), else what rawler would develop; the RAW's
/// own orientation.
pub fn probe(src: &mut Source, limits: &Limits) -> Result<Header> {
    Ok(probe_inner(src, limits)?.header)
}

/// The whole picture: the embedded JPEG of exactly the header's size unless the load is
/// `exact`, else the development of the raw data.
pub fn load<'a>(mut src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
    let limits = opts.limits;
    let p = probe_inner(&mut src, &limits)?;
    let h = &p.header;
    crate::check_limits(h, limits.max_pixels)?;
    let full = p
        .candidates
        .iter()
        .find(|c| (c.width, c.height) == (h.width, h.height));
    if let Some(c) = full.filter(|_| !opts.exact) {
        // Whole: the pipeline shrinks it as it would a loader's full-size output.
        let mut r = seekable(&mut src)?;
        if let Some(p) = preview::decode(&mut r, c, h, (h.width, h.height), &limits) {
            return Ok(Loaded::single(Box::new(p.image.into_stream(STRIP_ROWS)), 1));
        }
    }
    let image = develop::develop(whole(&mut src, &limits)?, &h.meta, &limits)?;
    let size = (image.header.width, image.header.height);
    if opts.fit.is_none() && size != (h.width, h.height) {
        return Err(Error::decode(
            "raw",
            format!(
                "developed {}x{}, the file says {}x{}",
                size.0, size.1, h.width, h.height
            ),
        ));
    }
    Ok(Loaded::single(
        Box::new(Image::into_stream(image, STRIP_ROWS)),
        1,
    ))
}

static ABOUT: About = About {
    name: "raw",
    title: "Camera RAW",
    extensions: &[
        "dng", "cr2", "cr3", "nef", "nrw", "arw", "sr2", "pef", "orf", "rw2", "rwl", "raf",
    ],
    serve_as: Some(Format::Jpeg),
    notes: "thumbnails from the smallest embedded JPEG that covers them (PreviewImage, JpgFromRaw, DNG preview IFDs, CR3 PRVW/THMB; MPF's guards), else and for `exact` developed by rawler (dnglab's library: demosaic, white balance, colour matrix, sRGB; 8-bit); the RAW's own orientation",
};

/// The camera RAW codec.
pub struct Raw;

impl Codec for Raw {
    fn about(&self) -> &About {
        &ABOUT
    }

    fn sniff(&self, head: &[u8]) -> bool {
        detect::kind(head).is_some()
    }

    fn probe(&self, src: &mut Source, limits: &Limits) -> Result<Header> {
        probe(src, limits)
    }

    fn load<'a>(&self, src: Source<'a>, opts: &LoadOptions) -> Result<Loaded<'a>> {
        load(src, opts)
    }
}
