//! thumbfs-core: what every layer shares. Image types and strips ([`image`]), the one error type
//! ([`error`]), sources and targets ([`io`]), fallible allocation ([`alloc`]), runtime SIMD
//! dispatch ([`simd`]), a source's identity ([`id`]) and two concurrency helpers
//! ([`bounded`], [`flight`]).

#![warn(missing_docs)]

pub mod alloc;
pub mod bounded;
pub mod error;
pub mod flight;
pub mod id;
pub mod image;
pub mod io;
pub mod simd;

pub use error::{Error, Result, SpecError};
pub use id::SourceId;
pub use image::{BoxStream, Header, Image, ImageStream, Metadata, SampleFormat, Samples, Strip};
pub use io::{Source, Target};
