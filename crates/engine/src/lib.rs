//! thumbfs-engine: the transform grammar ([`spec`]), the operations ([`ops`]), the limits a
//! render is planned against ([`bounds`]) and the pipeline that wires a loader, the
//! operations and a saver strip by strip ([`pipeline`]).

#![warn(missing_docs)]

// The lower crates' modules under the names the code has always used (`crate::error`, ...);
// the crate graph, not these names, keeps the layers apart.
use thumbfs_codec as codec;
use thumbfs_core::{alloc, error, image, io, simd};

pub mod bounds;
pub mod gainmap;
pub mod ops;
pub mod pipeline;
pub mod spec;

pub use pipeline::{render, RenderOptions};
pub use spec::Spec;
