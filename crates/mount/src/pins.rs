//! No-open mode's read pins. Without opens no handle holds an output while it is read, and
//! the kernel asks for a file's bytes in many requests (128 KiB or so each); an output that
//! the memory cache evicted, or never admitted (larger than `--cache-mem`), would be rendered
//! again for each request that arrives after the render ended: ten renders for a 10 MB PNG
//! read at a slow client's pace. A pin holds the output from one read of it to the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::render::{Outcome, Render};

/// How long an output stays pinned after its last read request (a slow reader's gap).
pub const IDLE: Duration = Duration::from_secs(5);
/// At most this many outputs pinned at once; beyond it the least recently read goes.
pub const MAX: usize = 64;

/// Outputs read lately, by inode.
#[derive(Default)]
pub struct ReadPins {
    pins: Mutex<HashMap<u64, (Arc<Render>, Instant)>>,
}

impl ReadPins {
    /// The output pinned for `ino`, else the one `get` gives, pinned from now on. Pins idle
    /// for longer than [`IDLE`], and failed renders, are let go first.
    pub fn get_or(&self, ino: u64, get: impl FnOnce() -> Arc<Render>) -> Arc<Render> {
        let now = Instant::now();
        {
            let mut pins = self.lock();
            pins.retain(|_, (r, t)| {
                now.duration_since(*t) < IDLE && !matches!(r.outcome(), Some(Outcome::Failed(..)))
            });
            if let Some((r, t)) = pins.get_mut(&ino) {
                *t = now;
                return r.clone();
            }
        }
        // Not under the lock: `get` takes the scheduler's.
        let render = get();
        let mut pins = self.lock();
        if pins.len() >= MAX && !pins.contains_key(&ino) {
            if let Some(oldest) = pins.iter().min_by_key(|(_, (_, t))| *t).map(|(i, _)| *i) {
                pins.remove(&oldest);
            }
        }
        pins.insert(ino, (render.clone(), now));
        render
    }

    /// How many outputs are pinned now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Arc<Render>, Instant)>> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_reused_and_bounded() {
        let pins = ReadPins::default();
        let first = pins.get_or(1, Render::new);
        let again = pins.get_or(1, || panic!("pinned: not fetched again"));
        assert!(Arc::ptr_eq(&first, &again));
        for ino in 2..=(MAX as u64 + 10) {
            pins.get_or(ino, Render::new);
        }
        assert_eq!(pins.len(), MAX);
        // Inode 1 was read least recently: gone.
        let fresh = pins.get_or(1, Render::new);
        assert!(!Arc::ptr_eq(&first, &fresh));
    }

    #[test]
    fn failed_renders_are_not_kept() {
        let pins = ReadPins::default();
        let r = pins.get_or(7, Render::new);
        r.finish(Outcome::Failed(libc::EIO, "gone".into()));
        let next = pins.get_or(7, Render::new);
        assert!(!Arc::ptr_eq(&r, &next), "a failure is asked for again");
    }
}
