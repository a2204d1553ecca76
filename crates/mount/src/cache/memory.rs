//! Finished outputs in memory: an LRU bounded in bytes, and the outputs still held by open
//! handles after eviction (reused rather than rendered again). One leaf lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use lru::LruCache;

use super::key::RenderKey;
use super::lock;
use super::tier::Occupancy;
use crate::render::{Outcome, Render};

/// The memory tier.
pub struct Memory {
    state: Mutex<State>,
}

struct State {
    lru: LruCache<RenderKey, Arc<Render>>,
    bytes: u64,
    limit: u64,
    /// Outputs dropped from memory, or too large to be kept there at all.
    evictions: u64,
    /// Finished outputs still held by open handles (maybe evicted from memory): reused.
    alive: HashMap<RenderKey, Weak<Render>>,
}

impl Memory {
    /// Up to `limit` output bytes.
    pub fn new(limit: u64) -> Self {
        Memory {
            state: Mutex::new(State {
                lru: LruCache::unbounded(),
                bytes: 0,
                limit,
                evictions: 0,
                alive: HashMap::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The finished output for `key`, held in memory or by an open handle; a memory hit
    /// counts as recently used.
    pub fn get(&self, key: &RenderKey) -> Option<Arc<Render>> {
        let mut st = self.state();
        if let Some(r) = st.lru.get(key) {
            return Some(r.clone());
        }
        st.alive
            .get(key)
            .and_then(Weak::upgrade)
            .filter(|r| r.outcome() == Some(Outcome::Done))
    }

    /// Keeps a finished output, evicting the least recently used beyond the limit.
    pub fn insert(&self, key: RenderKey, render: Arc<Render>) {
        let mut st = self.state();
        st.alive.retain(|_, w| w.strong_count() > 0);
        st.alive.insert(key.clone(), Arc::downgrade(&render));
        let n = render.len();
        if n > st.limit {
            st.evictions += 1;
            return;
        }
        if let Some(old) = st.lru.put(key, render) {
            st.bytes -= old.len();
        }
        st.bytes += n;
        while st.bytes > st.limit {
            match st.lru.pop_lru() {
                Some((_, r)) => {
                    st.bytes -= r.len();
                    st.evictions += 1;
                }
                None => break,
            }
        }
    }

    /// What is held, and the evictions (outputs evicted or never admitted, being larger
    /// than the whole budget).
    pub fn occupancy(&self) -> (Occupancy, u64) {
        let st = self.state();
        let held = Occupancy {
            bytes: st.bytes,
            entries: st.lru.len() as u64,
        };
        (held, st.evictions)
    }
}
