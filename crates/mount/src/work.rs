//! The store workers: FUSE requests that need store I/O (stats, directory listings, format
//! sniffs, open checks) are handed here with their reply, so a FUSE thread never waits on a
//! disk or a network and answers requests served from memory meanwhile.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of threads running jobs in the order given.
pub struct Pool {
    jobs: Sender<Job>,
}

impl Pool {
    /// Starts `threads` workers named `store-N`.
    pub fn new(threads: usize) -> Pool {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            std::thread::Builder::new()
                .name(format!("store-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { return };
                    // A panicking job drops its reply (the kernel gets EIO); the worker stays.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                })
                .expect("spawning a store worker");
        }
        Pool { jobs: tx }
    }

    /// Runs `job` on a worker (here, if the pool is gone).
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        if let Err(e) = self.jobs.send(Box::new(job)) {
            (e.0)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_workers_and_a_panic_spares_the_pool() {
        let pool = Pool::new(1);
        pool.run(|| panic!("job panics"));
        let (tx, rx) = channel();
        pool.run(move || {
            tx.send(std::thread::current().name().map(str::to_string))
                .unwrap()
        });
        assert_eq!(rx.recv().unwrap().as_deref(), Some("store-0"));
    }
}
