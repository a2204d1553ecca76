//! Starting renders: one per (source identity, canonical spec) however many readers ask
//! (single flight), run on a bounded pool of worker threads, with a timeout watchdog.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::{Cache, Lookup, RenderKey};
use super::render::{Outcome, Render, RenderTarget};
use super::stats::Stats;
use crate::pipeline::{self, RenderOptions};
use crate::spec::Spec;
use crate::store::{errno_of, Store};
use crate::Source;

/// Whether rendering the same bytes again would fail the same way.
fn deterministic(e: &crate::Error) -> bool {
    use crate::Error as E;
    !matches!(
        e,
        E::Read(_) | E::Write(_) | E::Cancelled(_) | E::OutOfMemory { .. }
    )
}

/// A file of a store: what a render reads.
#[derive(Clone)]
pub struct SourceRef {
    /// The store holding it.
    pub store: Arc<dyn Store>,
    /// Path relative to the store's root.
    pub rel: PathBuf,
}

/// A render to run.
struct Job {
    key: RenderKey,
    source: SourceRef,
    /// Path relative to the source root, for messages.
    shown: String,
    spec: Spec,
    render: Arc<Render>,
    /// Try the disk cache first (it had the output when the job was made).
    from_disk: bool,
}

/// Renders in flight, the cache of finished ones, and the worker pool.
pub struct Scheduler {
    /// Running or queued renders and disk loads, with the source path shown in messages.
    /// Never held across I/O; taken before the cache's lock.
    inflight: Mutex<HashMap<RenderKey, (Arc<Render>, String)>>,
    /// Finished outputs, failures and the size index.
    pub cache: Cache,
    /// Counters.
    pub stats: Arc<Stats>,
    jobs: Mutex<Sender<Job>>,
    timeout: Duration,
}

impl Scheduler {
    /// Starts `threads` render workers and the timeout watchdog.
    pub fn new(cache: Cache, threads: usize, opts: RenderOptions, timeout: Duration) -> Arc<Self> {
        let (tx, rx) = channel::<Job>();
        let sched = Arc::new(Scheduler {
            inflight: Mutex::default(),
            cache,
            stats: Arc::default(),
            jobs: Mutex::new(tx),
            timeout,
        });
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            let weak = Arc::downgrade(&sched);
            let opts = opts.clone();
            std::thread::Builder::new()
                .name(format!("render-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { return };
                    let Some(sched) = weak.upgrade() else { return };
                    sched.run(job, &opts);
                })
                .expect("spawning a render worker");
        }
        let weak = Arc::downgrade(&sched);
        std::thread::Builder::new()
            .name("render-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(250));
                let Some(sched) = weak.upgrade() else { return };
                sched.expire();
            })
            .expect("spawning the watchdog");
        sched
    }

    fn lock_inflight(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<RenderKey, (Arc<Render>, String)>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The output for `key`: finished from the cache, the one already running, or a new
    /// render queued now.
    pub fn get(&self, key: &RenderKey, source: SourceRef, spec: &Spec) -> Arc<Render> {
        let shown = source.rel.to_string_lossy().into_owned();
        let shown = shown.as_str();
        let mut inflight = self.lock_inflight();
        if let Some((r, _)) = inflight.get(key) {
            return r.clone();
        }
        let from_disk = match self.cache.lookup(key) {
            Lookup::Ready(r) => {
                Stats::bump(&self.stats.cache_hits);
                return r;
            }
            // A broken image fails the same way again: don't decode it on every stat.
            Lookup::Failed(r) => return r,
            Lookup::OnDisk => true,
            Lookup::Miss => false,
        };
        let render = Render::new();
        inflight.insert(key.clone(), (render.clone(), shown.to_string()));
        drop(inflight);
        // A disk load counts as a hit once it proves intact (in run), else as a render.
        if !from_disk {
            Stats::bump(&self.stats.renders);
        }
        Stats::bump(&self.stats.in_flight);
        let job = Job {
            key: key.clone(),
            source,
            shown: shown.to_string(),
            spec: spec.clone(),
            render: render.clone(),
            from_disk,
        };
        if let Err(e) = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
        {
            self.end(
                &e.0.render,
                Outcome::Failed(libc::EIO, "render pool stopped".into()),
                || {},
            );
            self.lock_inflight().remove(key);
        }
        render
    }

    /// Ends a render (unless the watchdog already did): `in_flight` drops and `record` runs
    /// before any waiting reader hears the outcome, so a reader that got its reply never
    /// sees the render still counted. Returns whether this call ended it.
    fn end(&self, render: &Render, outcome: Outcome, record: impl FnOnce()) -> bool {
        render.finish_with(outcome, || {
            self.stats
                .in_flight
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            record();
        })
    }

    /// The size if known without rendering (size index or a finished output). In-memory
    /// maps only: cheap enough for every getattr.
    pub fn known_size(&self, key: &RenderKey) -> Option<u64> {
        if let Some((r, _)) = self.lock_inflight().get(key) {
            return r.finished_size();
        }
        self.cache.size(key)
    }

    fn run(&self, job: Job, opts: &RenderOptions) {
        let Job {
            key,
            source,
            shown,
            spec,
            render,
            from_disk,
        } = job;
        if from_disk && render.outcome().is_none() {
            if let Some(bytes) = self.cache.load(&key) {
                Stats::bump(&self.stats.cache_hits);
                render.fill(bytes);
                self.end(&render, Outcome::Done, || {});
                self.cache.put(key.clone(), render.clone());
                self.lock_inflight().remove(&key);
                return;
            }
            // Gone or damaged since the lookup: render it after all.
            Stats::bump(&self.stats.renders);
        }
        // Errors carry whether the same bytes would fail again (a broken image) or not (I/O).
        let result = (|| -> Result<(), (i32, String, bool)> {
            if render.outcome().is_some() {
                return Err((libc::EIO, "timed out in the queue".into(), false));
            }
            let io = |e: std::io::Error| (errno_of(&e), e.to_string(), false);
            let opened = source.store.open(&source.rel, &key.source).map_err(io)?;
            let src = Source::new(opened.conn, shown.clone());
            let mut target = RenderTarget(render.clone());
            pipeline::render(src, &spec, &mut target, opts)
                .map_err(|e| (e.errno(), e.to_string(), deterministic(&e)))?;
            // Written to while we read it: the bytes may mix old and new content.
            if !(opened.unchanged)() {
                return Err((libc::EIO, "source changed while rendering".into(), false));
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                if self.end(&render, Outcome::Done, || {}) {
                    self.cache.put(key.clone(), render.clone());
                }
            }
            Err((errno, msg, again)) => {
                // Unless the watchdog already failed it (and logged and recorded it).
                let record = || {
                    tracing::warn!("{shown} [{}]: {msg}", key.spec);
                    self.stats.failed(&shown, &key.spec, &msg);
                };
                if self.end(&render, Outcome::Failed(errno, msg.clone()), record) && again {
                    self.cache.fail(key.clone(), render.clone());
                }
            }
        }
        self.lock_inflight().remove(&key);
    }

    /// Fails renders that ran past the timeout, logging and recording them now (readers get
    /// EIO now); their workers stop at the next write.
    fn expire(&self) {
        let late: Vec<(RenderKey, Arc<Render>, String)> = self
            .lock_inflight()
            .iter()
            .filter(|(_, (r, _))| r.outcome().is_none() && r.started.elapsed() > self.timeout)
            .map(|(k, (r, shown))| (k.clone(), r.clone(), shown.clone()))
            .collect();
        for (key, r, shown) in late {
            let msg = format!("render timed out after {} s", self.timeout.as_secs_f32());
            self.end(&r, Outcome::Failed(libc::EIO, msg.clone()), || {
                tracing::warn!("{shown} [{}]: {msg}", key.spec);
                self.stats.failed(&shown, &key.spec, &msg);
            });
        }
    }
}
