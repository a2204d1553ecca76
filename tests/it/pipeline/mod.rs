//! The engine from source to output: rendering, shrink-on-load, orientation.

mod engine;
mod geometry;
mod orientation;
mod scaled;
