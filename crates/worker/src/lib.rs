//! Render workers: decode, operations and encode run in pre-started, sandboxed processes, so
//! that a decoder that crashes, runs out of memory, hangs or is exploited takes down one
//! render, not the mount.
//!
//! The daemon starts a [`spawner::Spawner`] while still root; it forks workers on request
//! ([`child`]), confined by [`sandbox`]. Daemon and workers talk over `SOCK_SEQPACKET` pairs
//! ([`frame`]) in the messages of [`protocol`]; [`handle`] runs one render from the daemon's
//! side.

#![warn(missing_docs)]

// The lower crates' modules under the names the code has always used (`crate::error`, ...);
// the crate graph, not these names, keeps the layers apart.
use thumbfs_codec as codec;
use thumbfs_core::io;
use thumbfs_engine::{pipeline, spec};

pub mod child;
pub mod frame;
pub mod handle;
pub mod protocol;
pub mod sandbox;
pub mod spawner;
mod warm;

pub use child::NoticingAlloc;
pub use handle::{Failure, Sink, SourceFeed};
pub use sandbox::{SandboxConfig, WorkerIds};
pub use spawner::{Spawned, Spawner};
