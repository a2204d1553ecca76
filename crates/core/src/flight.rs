//! Single flight: callers asking for the same key at the same time share one run of the work
//! (one listing of a directory, however many lookups wait for it).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex};

/// One run's result: `None` while it runs, `Some(None)` if it panicked.
struct Flight<V> {
    done: Mutex<Option<Option<V>>>,
    cv: Condvar,
}

/// Runs in progress by key.
pub struct Flights<K, V> {
    running: Mutex<HashMap<K, Arc<Flight<V>>>>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Flights {
            running: Mutex::default(),
        }
    }
}

/// Ends the leader's flight even if its work panics, so followers never wait for ever.
struct Landing<'a, K: Hash + Eq + Clone, V: Clone> {
    flights: &'a Flights<K, V>,
    key: K,
    flight: Arc<Flight<V>>,
    value: Option<V>,
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Landing<'_, K, V> {
    fn drop(&mut self) {
        self.flights
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
        *self.flight.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.value.take());
        self.flight.cv.notify_all();
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    /// The result of `work` for `key`: run here, or the one another caller is running now
    /// (this thread then waits for it; if that run panicked, `work` runs here).
    pub fn run(&self, key: K, work: impl FnOnce() -> V) -> V {
        let (flight, leader) = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            match running.get(&key) {
                Some(f) => (f.clone(), false),
                None => {
                    let f = Arc::new(Flight {
                        done: Mutex::new(None),
                        cv: Condvar::new(),
                    });
                    running.insert(key.clone(), f.clone());
                    (f, true)
                }
            }
        };
        if leader {
            let mut landing = Landing {
                flights: self,
                key,
                flight,
                value: None,
            };
            let v = work();
            landing.value = Some(v.clone());
            return v;
        }
        let mut done = flight.done.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &*done {
                Some(Some(v)) => return v.clone(),
                Some(None) => {
                    drop(done);
                    return work();
                }
                None => done = flight.cv.wait(done).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    #[test]
    fn concurrent_callers_share_one_run() {
        let flights: Flights<&str, usize> = Flights::default();
        let runs = AtomicUsize::new(0);
        let (started, finish) = (Barrier::new(2), Barrier::new(5));
        std::thread::scope(|s| {
            let leader = s.spawn(|| {
                flights.run("k", || {
                    started.wait();
                    finish.wait();
                    runs.fetch_add(1, Ordering::SeqCst) + 7
                })
            });
            started.wait();
            let followers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        finish.wait();
                        flights.run("k", || runs.fetch_add(1, Ordering::SeqCst) + 100)
                    })
                })
                .collect();
            assert_eq!(leader.join().unwrap(), 7);
            for f in followers {
                let v = f.join().unwrap();
                // A follower that arrived after the run ended starts its own.
                assert!(v == 7 || v >= 100);
            }
        });
        assert_eq!(flights.run("k", || 42), 42, "a finished run is not cached");
    }
}
