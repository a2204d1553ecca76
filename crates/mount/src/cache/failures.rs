//! Renders that failed for a reason in the bytes themselves (a broken image), by key, so a
//! stat does not decode the same broken file again; a fixed file has a new source identity
//! and is tried again. One leaf lock.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::key::RenderKey;
use super::lock;
use crate::render::Render;

/// Failed renders remembered.
const MAX_FAILURES: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");

/// The most recent failures that would happen again.
pub struct Failures {
    lru: Mutex<LruCache<RenderKey, Arc<Render>>>,
}

impl Failures {
    /// Remembers up to [`MAX_FAILURES`].
    pub fn new() -> Self {
        Failures {
            lru: Mutex::new(LruCache::new(MAX_FAILURES)),
        }
    }

    /// The failed render of `key`, if remembered.
    pub fn get(&self, key: &RenderKey) -> Option<Arc<Render>> {
        lock(&self.lru).get(key).cloned()
    }

    /// Remembers a failed render.
    pub fn put(&self, key: RenderKey, render: Arc<Render>) {
        lock(&self.lru).put(key, render);
    }
}
