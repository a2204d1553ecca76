//! One module per format: loaders and savers against independent decoders and encoders.

mod alpha;
mod avif;
mod cmyk;
mod gif;
mod hdr;
mod heif;
mod heif_stream;
mod jpeg;
mod jxl;
mod jxl_lf;
mod png;
mod pnm;
mod svg;
mod thumbhash;
mod tiff;
mod toy;
mod webp;
