//! Pixel operations as strip-stream adapters: each takes a stream and returns a stream.

use crate::error::{Error, Result};
use crate::image::BoxStream;
use crate::spec::{CropRect, Rotation};

/// Integer box average by `factor` (>= 1); output `ceil(w/f) x ceil(h/f)`.
pub fn shrink(input: BoxStream, factor: u32) -> Result<BoxStream> {
    let _ = (input, factor);
    Err(Error::op("shrink", "not built yet"))
}

/// Lanczos3 resample to exactly `width x height`, alpha premultiplied around it.
pub fn resize(input: BoxStream, width: u32, height: u32) -> Result<BoxStream> {
    let _ = (input, width, height);
    Err(Error::op("resize", "not built yet"))
}

/// Applies EXIF orientation 1..8 so the image is upright; the output says orientation 1.
pub fn autorotate(input: BoxStream) -> Result<BoxStream> {
    let _ = input;
    Err(Error::op("autorotate", "not built yet"))
}

/// Right-angle rotation, clockwise.
pub fn rotate(input: BoxStream, rotation: Rotation) -> Result<BoxStream> {
    let _ = (input, rotation);
    Err(Error::op("rotate", "not built yet"))
}

/// Mirror top-bottom.
pub fn flip(input: BoxStream) -> Result<BoxStream> {
    let _ = input;
    Err(Error::op("flip", "not built yet"))
}

/// Mirror left-right.
pub fn flop(input: BoxStream) -> Result<BoxStream> {
    let _ = input;
    Err(Error::op("flop", "not built yet"))
}

/// Cut out a rectangle; fails if it does not lie inside the image.
pub fn crop(input: BoxStream, rect: CropRect) -> Result<BoxStream> {
    let _ = (input, rect);
    Err(Error::op("crop", "not built yet"))
}

/// Convert to greyscale (Rec. 709 luma on sRGB), keeping alpha.
pub fn grey(input: BoxStream) -> Result<BoxStream> {
    let _ = input;
    Err(Error::op("grey", "not built yet"))
}

/// Invert colour samples (max - v); alpha untouched.
pub fn invert(input: BoxStream) -> Result<BoxStream> {
    let _ = input;
    Err(Error::op("invert", "not built yet"))
}
