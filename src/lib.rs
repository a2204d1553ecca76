//! thumbfs: a streaming image pipeline (sources, loaders, operations, savers, targets) and a
//! read-only FUSE filesystem that serves transformed images through it. This crate is the
//! command line; the layers below are crates of their own (README, "How it works"), re-exported
//! here under one roof for the binary and the tests.

#![warn(missing_docs)]

pub mod cli;
pub mod s3convert;
pub mod warm;

pub use thumbfs_codec as codec;
pub use thumbfs_core::{alloc, bounded, error, flight, id, image, io, simd};
pub use thumbfs_engine::{bounds, ops, pipeline, spec};
pub use thumbfs_mount as mount;
pub use thumbfs_store as store;
pub use thumbfs_store::s3;
pub use thumbfs_worker as worker;

pub use error::{Error, Result};
pub use image::{BoxStream, Header, Image, ImageStream, Metadata, SampleFormat, Samples, Strip};
pub use io::{Source, Target};
pub use pipeline::{render, RenderOptions};
pub use spec::Spec;
