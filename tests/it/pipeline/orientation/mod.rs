//! Orientation from every place a format keeps it, applied so that outputs come out upright.

pub(crate) mod formats;
mod jpeg;
mod webp;
