//! A tier's background thread: its slow work (disk writes, uploads, the size log) runs there
//! in the order it was queued, so no caller ever waits for the tier's I/O.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use super::lock;

/// Output bytes a queue holds at most: beyond this a slow disk or server loses writes (the
/// outputs stay in memory) rather than holding renders alive without bound.
pub const BACKLOG_LIMIT: u64 = 64 << 20;

/// How long dropping a queue waits for the work queued before: a hung cache disk or server
/// must not keep an unmounted daemon from exiting.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

/// One background thread running jobs in order.
pub struct Queue {
    tx: Mutex<Option<Sender<Job>>>,
    /// Told when the thread has run its whole queue and ended.
    ended: Mutex<Receiver<()>>,
    /// Output bytes held by queued jobs.
    backlog: std::sync::Arc<AtomicU64>,
}

impl Queue {
    /// Starts the thread, named `name`.
    pub fn start(name: &str) -> io::Result<Self> {
        let (tx, rx) = channel::<Job>();
        let (ended_tx, ended) = channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for job in rx {
                    job();
                }
                let _ = ended_tx.send(());
            })?;
        Ok(Queue {
            tx: Mutex::new(Some(tx)),
            ended: Mutex::new(ended),
            backlog: Default::default(),
        })
    }

    /// Queues `job`.
    pub fn push(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(tx) = lock(&self.tx).as_ref() {
            let _ = tx.send(Box::new(job));
        }
    }

    /// Queues `job`, which holds `bytes` of output until it ends, unless that would take the
    /// backlog over [`BACKLOG_LIMIT`]; returns whether it was queued.
    pub fn push_bounded(&self, bytes: u64, job: impl FnOnce() + Send + 'static) -> bool {
        let reserved = self
            .backlog
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
                (queued + bytes <= BACKLOG_LIMIT).then_some(queued + bytes)
            })
            .is_ok();
        if reserved {
            let backlog = self.backlog.clone();
            self.push(move || {
                job();
                backlog.fetch_sub(bytes, Ordering::Relaxed);
            });
        }
        reserved
    }

    /// Waits until every job queued so far has run.
    pub fn flush(&self) {
        let (tx, rx) = channel();
        self.push(move || {
            let _ = tx.send(());
        });
        let _ = rx.recv();
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // Closing the channel ends the thread once the queue has run.
        lock(&self.tx).take();
        let _ = lock(&self.ended).recv_timeout(DRAIN_WAIT);
    }
}
