//! One module per format: loaders and savers against independent decoders and encoders.

mod alpha;
mod animation;
mod avif;
mod blurhash;
mod cmyk;
mod gif;
mod hdr;
mod heif;
mod heif_direct;
mod heif_grid;
mod heif_stream;
mod jpeg;
mod jxl;
mod jxl_lf;
mod png;
mod pnm;
mod raw;
mod svg;
mod thumbhash;
mod tiff;
mod toy;
mod video;
mod webp;
