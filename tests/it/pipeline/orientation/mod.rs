//! Orientation from every place a format keeps it, applied so that outputs come out upright.

mod formats;
mod jpeg;
mod webp;
