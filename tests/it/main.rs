//! Every integration test, as modules of one binary: one link instead of one per file.

mod common;

mod alpha;
mod bounds;
mod cmyk;
mod codecs;
mod containment;
mod engine;
mod faults;
mod fidelity;
mod formats;
mod fuzz_regressions;
mod hostile;
mod hot;
mod jpeg;
mod listing;
mod memory;
mod metrics;
mod mount;
mod mount_cache;
mod newformats;
mod ops;
mod orientation;
mod orientations;
mod s3_cache;
mod s3_client;
mod s3_store;
mod sandbox;
mod scaled;
mod setup;
mod stress;
mod turbo;
