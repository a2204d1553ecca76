//! png loader and saver (placeholder until the codec lands).

use crate::codec::{LoadOptions, Loaded, SaveOptions};
use crate::error::{Error, Result};
use crate::image::{BoxStream, Header};
use crate::io::{Source, Target};

/// Reads the header only.
pub fn probe(_src: &mut Source) -> Result<Header> {
    Err(Error::Unsupported("png loading".into()))
}

/// Opens the pixel stream.
pub fn load<'a>(_src: Source<'a>, _opts: &LoadOptions) -> Result<Loaded<'a>> {
    Err(Error::Unsupported("png loading".into()))
}

/// Encodes a stream.
pub fn save(_stream: BoxStream, _opts: &SaveOptions, _target: &mut dyn Target) -> Result<()> {
    Err(Error::Unsupported("png saving".into()))
}
