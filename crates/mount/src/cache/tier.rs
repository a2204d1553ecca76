//! The contract of a cache tier behind memory (the disk, the shared S3 tier): a place that
//! finished outputs are stored to in the background and loaded from by render threads.
//! Adding a tier is one impl of [`Tier`] plus one [`Cache::with_tier`](super::Cache::with_tier).

use std::sync::Arc;

use super::key::RenderKey;
use crate::render::Render;

/// Where an output being stored came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Rendered on this host.
    Rendered,
    /// Loaded from a tier (this one or another) since it was last stored: a shared tier
    /// need not receive it again.
    Loaded,
}

/// What a cache part holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Bytes of outputs held.
    pub bytes: u64,
    /// Outputs held.
    pub entries: u64,
}

/// A cache tier behind memory, asked in the order it was added (faster tiers first).
///
/// [`Tier::holds`] and [`Tier::store`] are called on FUSE request threads and under the
/// scheduler's in-flight lock: they touch in-memory state only, never do I/O and take no lock
/// but the tier's own leaf locks (see the lock order in [`super`]). I/O happens in
/// [`Tier::load`] (render threads only) and on the tier's own background thread.
pub trait Tier: Send + Sync {
    /// The tier's name in metrics labels (`disk`, `remote`).
    fn name(&self) -> &'static str;

    /// Bytes and entries held now, if the tier keeps count (metrics).
    fn occupancy(&self) -> Option<Occupancy> {
        None
    }

    /// Whether `key` may be held here, from memory alone: a yes sends the request to a render
    /// thread, which [`Tier::load`]s it (and renders after all on a miss).
    fn holds(&self, key: &RenderKey) -> bool;

    /// Reads and verifies `key`'s output (blocking I/O: render threads only). A missing,
    /// damaged or unreachable copy is a miss.
    fn load(&self, key: &RenderKey) -> Option<Vec<u8>>;

    /// Queues a finished output of `size` bytes for storing, or skips it (full backlog, or
    /// nothing to do for this `origin`). Never blocks on I/O.
    fn store(&self, key: &RenderKey, render: &Arc<Render>, size: u64, origin: Origin);

    /// Waits until everything queued so far is stored (tests, shutdown).
    fn flush(&self);
}
