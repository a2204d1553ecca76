//! Pixel operations as strip-stream adapters: each takes a stream and returns a stream.
//!
//! Streaming ones (shrink, resize, crop, flop, colour conversion, grey, invert) hold a few rows or a band; the
//! right-angle rotations, composed into one, collect their (already shrunk and cropped) input
//! once, and a smart `fill` gravity looks at the whole resized image before it crops.

use crate::error::{Error, Result};
use crate::image::{SampleFormat, Samples};

mod colour;
mod crop;
mod icc;
mod orient;
mod resize;
mod shrink;
mod smartcrop;

pub use colour::{grey, invert};
pub use crop::{check_fits, crop, CropRect};
pub use icc::{adobe_rgb_icc, srgb_icc, to_output as colour_manage, ColourTarget};
pub use orient::{autorotate, flip, flop, orient, rotate, upright, Orient, Rotation};
pub use resize::{resize, resize_extent};
pub use shrink::shrink;
pub use smartcrop::{smart_window, Gravity};

/// A sample type the generic operations work on.
pub(crate) trait Sample: Copy + Default + Send + 'static {
    /// Wider type for sums.
    type Acc: Copy + Default + std::ops::AddAssign + Send;
    /// Widens for summing.
    fn acc(self) -> Self::Acc;
    /// Rounded mean of `n` summed samples.
    fn mean(sum: Self::Acc, n: u32) -> Self;
    /// Takes the vector out of a strip's samples.
    fn unwrap(s: Samples) -> Result<Vec<Self>>;
    /// Wraps a vector as samples.
    fn wrap(v: Vec<Self>) -> Samples;
}

impl Sample for u8 {
    type Acc = u64;
    fn acc(self) -> u64 {
        self as u64
    }
    fn mean(sum: u64, n: u32) -> u8 {
        ((sum + n as u64 / 2) / n as u64) as u8
    }
    fn unwrap(s: Samples) -> Result<Vec<u8>> {
        match s {
            Samples::U8(v) => Ok(v),
            other => Err(mismatch(other.format())),
        }
    }
    fn wrap(v: Vec<u8>) -> Samples {
        Samples::U8(v)
    }
}

impl Sample for u16 {
    type Acc = u64;
    fn acc(self) -> u64 {
        self as u64
    }
    fn mean(sum: u64, n: u32) -> u16 {
        ((sum + n as u64 / 2) / n as u64) as u16
    }
    fn unwrap(s: Samples) -> Result<Vec<u16>> {
        match s {
            Samples::U16(v) => Ok(v),
            other => Err(mismatch(other.format())),
        }
    }
    fn wrap(v: Vec<u16>) -> Samples {
        Samples::U16(v)
    }
}

impl Sample for f32 {
    type Acc = f64;
    fn acc(self) -> f64 {
        self as f64
    }
    fn mean(sum: f64, n: u32) -> f32 {
        (sum / n as f64) as f32
    }
    fn unwrap(s: Samples) -> Result<Vec<f32>> {
        match s {
            Samples::F32(v) => Ok(v),
            other => Err(mismatch(other.format())),
        }
    }
    fn wrap(v: Vec<f32>) -> Samples {
        Samples::F32(v)
    }
}

fn mismatch(got: SampleFormat) -> Error {
    Error::op(
        "stream",
        format!("strip holds {got:?} samples, unlike its header"),
    )
}
