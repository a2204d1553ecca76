//! pnm loader and saver (placeholder until the codec lands).

use crate::codec::{LoadOptions, Loaded, SaveOptions};
use crate::error::{Error, Result};
use crate::image::{BoxStream, Header};
use crate::io::{Source, Target};

/// Reads the header only.
pub fn probe(_src: &mut Source) -> Result<Header> {
    Err(Error::Unsupported("pnm loading".into()))
}

/// Opens the pixel stream.
pub fn load<'a>(_src: Source<'a>, _opts: &LoadOptions) -> Result<Loaded<'a>> {
    Err(Error::Unsupported("pnm loading".into()))
}

/// Encodes a stream as PNM (or PFM when `float`).
pub fn save(
    _stream: BoxStream,
    _opts: &SaveOptions,
    _target: &mut dyn Target,
    _float: bool,
) -> Result<()> {
    Err(Error::Unsupported("pnm saving".into()))
}
