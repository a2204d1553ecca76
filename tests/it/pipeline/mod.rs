//! The engine from source to output: rendering, shrink-on-load, orientation.

mod engine;
mod geometry;
pub(crate) mod orientation;
mod scaled;
