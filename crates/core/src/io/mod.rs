//! Where bytes come from and go to: sources (read + optional seek) and targets (write + finish).

pub mod source;
pub mod target;

pub use source::{Connection, Source};
pub use target::{Target, TargetWriter};
