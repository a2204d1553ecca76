//! thumbfs: a streaming image pipeline (sources, loaders, operations, savers, targets) and a
//! read-only FUSE filesystem that serves transformed images through it.

#![warn(missing_docs)]

pub mod alloc;
pub mod bounded;
pub mod bounds;
pub mod cli;
pub mod codec;
pub mod error;
pub mod flight;
pub mod fs;
pub mod image;
pub mod io;
pub mod ops;
pub mod pipeline;
pub mod s3;
pub mod simd;
pub mod spec;
pub mod store;
pub mod warm;
pub mod worker;

pub use error::{Error, Result};
pub use image::{BoxStream, Header, Image, ImageStream, Metadata, SampleFormat, Samples, Strip};
pub use io::{Source, Target};
pub use pipeline::{render, RenderOptions};
pub use spec::Spec;
