//! Every integration test, as modules of one binary: one link instead of one per file.
//! Modules follow the project's areas; shared helpers live in `common` only.

mod common;

mod cache;
mod cli;
mod codec;
mod metrics;
mod mount;
mod ops;
mod pipeline;
mod s3;
mod safety;
