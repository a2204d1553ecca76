//! One module per format: loaders and savers against independent decoders and encoders.

mod alpha;
mod cmyk;
mod gif;
mod heif;
mod jpeg;
mod png;
