//! Starting renders: one per (source identity, canonical spec) however many readers ask
//! (single flight), run on a bounded pool of render threads, with a timeout watchdog. Each
//! thread renders in its own sandboxed worker process ([`crate::worker`]) unless isolation is
//! off (`--isolation none`).
//!
//! Lock order: the in-flight map first (the cache is looked up under it), then the cache's
//! locks (see [`crate::cache`]), then a render's own lock; none is held across I/O.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::{Cache, Lookup, RenderKey};
use super::render::{Outcome, Render, RenderTarget};
use super::stats::{Cause, Stats};
use crate::io::Connection;
use crate::pipeline::{self, RenderOptions};
use crate::spec::Spec;
use crate::store::{errno_of, Opened, Store};
use crate::worker::{self, protocol, Failure, SourceFeed, Spawned, Spawner};
use thumbfs_core::Source;

/// A failed render.
struct Failed {
    /// What the reader gets.
    errno: i32,
    /// The log line and `.thumbfs/errors` entry.
    message: String,
    /// Whether the same bytes would fail again (then the failure is remembered).
    again: bool,
    /// Why, for the metrics.
    cause: Cause,
}

impl Failed {
    fn new(errno: i32, message: impl Into<String>, again: bool, cause: Cause) -> Failed {
        Failed {
            errno,
            message: message.into(),
            again,
            cause,
        }
    }
}

/// The cause of a render's own error: the image when the same bytes would fail again, else
/// reading or writing.
fn cause(again: bool) -> Cause {
    if again {
        Cause::Image
    } else {
        Cause::Io
    }
}

/// The output format's token (`jpg`, `png`, ...): the spec's, else recognised from the
/// output's first bytes (a spec without a format keeps the source's).
fn output_format(spec: &Spec, render: &Render) -> &'static str {
    if let Some(f) = spec.format {
        return f.token();
    }
    let head = render.head(crate::codec::SNIFF_LEN);
    crate::codec::detect(&head).map_or("other", |f| f.token())
}

/// Where renders run.
#[derive(Clone)]
pub enum Renderer {
    /// In sandboxed worker processes started by this spawner (the default).
    Workers(Arc<Spawner>),
    /// On the render threads themselves (`--isolation none`).
    InProcess,
}

/// A render thread's worker process: started ahead of its first job, replaced after one dies.
struct Slot {
    spawner: Arc<Spawner>,
    worker: Option<Spawned>,
}

impl Slot {
    /// The worker, started now if there is none.
    fn ensure(&mut self) -> Result<&Spawned, String> {
        if self.worker.is_none() {
            let w = self
                .spawner
                .spawn()
                .map_err(|e| format!("no render worker: {e}"))?;
            self.worker = Some(w);
        }
        Ok(self.worker.as_ref().expect("just set"))
    }
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
    /// Whether renders run in worker processes (changes the timeout's message).
    isolated: bool,
}

impl Scheduler {
    /// Starts `threads` render threads (each with its worker process, if `renderer` says so)
    /// and the timeout watchdog.
    pub fn new(
        cache: Cache,
        threads: usize,
        opts: RenderOptions,
        timeout: Duration,
        renderer: Renderer,
    ) -> Arc<Self> {
        let (tx, rx) = channel::<Job>();
        let sched = Arc::new(Scheduler {
            inflight: Mutex::default(),
            cache,
            stats: Arc::default(),
            jobs: Mutex::new(tx),
            timeout,
            isolated: matches!(renderer, Renderer::Workers(_)),
        });
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            let weak = Arc::downgrade(&sched);
            let opts = opts.clone();
            let mut slot = match &renderer {
                Renderer::Workers(s) => Some(Slot {
                    spawner: s.clone(),
                    worker: None,
                }),
                Renderer::InProcess => None,
            };
            std::thread::Builder::new()
                .name(format!("render-{i}"))
                .spawn(move || {
                    // Started before the first job, so that it does not wait for one.
                    if let Some(s) = slot.as_mut() {
                        if let Err(e) = s.ensure() {
                            tracing::warn!("{e}");
                        }
                    }
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = job else { return };
                        let Some(sched) = weak.upgrade() else { return };
                        sched.run(job, &opts, slot.as_mut());
                    }
                })
                .expect("spawning a render thread");
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
                self.stats.hit("memory");
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
        Stats::bump(&self.stats.queued);
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
            Stats::drop_one(&self.stats.queued);
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

    fn run(&self, job: Job, opts: &RenderOptions, slot: Option<&mut Slot>) {
        let Job {
            key,
            source,
            shown,
            spec,
            render,
            from_disk,
        } = job;
        Stats::drop_one(&self.stats.queued);
        let begun = std::time::Instant::now();
        if from_disk && render.outcome().is_none() {
            if let Some((bytes, tier)) = self.cache.load_from(&key) {
                self.stats.hit(tier);
                render.fill(bytes);
                self.end(&render, Outcome::Done, || {});
                self.cache.put(key.clone(), render.clone());
                self.lock_inflight().remove(&key);
                return;
            }
            // Gone or damaged since the lookup: render it after all.
            Stats::bump(&self.stats.renders);
        }
        // Errors carry whether the same bytes would fail again (a broken image) or not (I/O),
        // and the cause for the metrics.
        let result = (|| -> Result<(), Failed> {
            if render.outcome().is_some() {
                return Err(Failed::new(
                    libc::EIO,
                    "timed out in the queue",
                    false,
                    Cause::Timeout,
                ));
            }
            let io = |e: std::io::Error| Failed::new(errno_of(&e), e.to_string(), false, Cause::Io);
            let Opened {
                mut conn,
                unchanged,
            } = source.store.open(&source.rel, &key.source).map_err(io)?;
            match slot {
                Some(slot) => self.in_worker(slot, &mut conn, &shown, &spec, &render, opts)?,
                None => {
                    let src = Source::new(conn, shown.clone());
                    let mut target = RenderTarget(render.clone());
                    pipeline::render(src, &spec, &mut target, opts).map_err(|e| {
                        Failed::new(
                            e.errno(),
                            e.to_string(),
                            e.fails_again(),
                            cause(e.fails_again()),
                        )
                    })?;
                }
            }
            // Written to while we read it: the bytes may mix old and new content.
            if !unchanged() {
                return Err(Failed::new(
                    libc::EIO,
                    "source changed while rendering",
                    false,
                    Cause::Io,
                ));
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                // Timed before any reader hears it is done (end runs this under the
                // render's lock: nothing in it may take that lock again).
                let (format, took, first) = (
                    output_format(&spec, &render),
                    begun.elapsed(),
                    render.first_byte(),
                );
                let record = || self.stats.timings.observe(format, took, first);
                if self.end(&render, Outcome::Done, record) {
                    self.cache.put(key.clone(), render.clone());
                }
            }
            Err(Failed {
                errno,
                message: msg,
                again,
                cause: why,
            }) => {
                // Unless the watchdog already failed it (and logged and recorded it).
                let record = || {
                    tracing::warn!("{shown} [{}]: {msg}", key.spec);
                    self.stats.failed(&shown, &key.spec, &msg, why);
                };
                if self.end(&render, Outcome::Failed(errno, msg.clone()), record) && again {
                    self.cache.fail(key.clone(), render.clone());
                }
            }
        }
        self.lock_inflight().remove(&key);
    }

    /// Renders in the slot's worker process, pumping its output into `render`. A worker that
    /// dies, times out or misbehaves is killed, reaped and replaced; the render fails with
    /// the cause ("decoder crashed (SIGSEGV)", "out of memory ...").
    fn in_worker(
        &self,
        slot: &mut Slot,
        conn: &mut Box<dyn Connection>,
        shown: &str,
        spec: &Spec,
        render: &Arc<Render>,
        opts: &RenderOptions,
    ) -> Result<(), Failed> {
        // A worker that ended while idle (killed from outside) is only found out when the
        // job is sent: start the render once more, in its replacement.
        let mut retried = false;
        loop {
            let failure = match self.try_in_worker(slot, conn, shown, spec, render, opts)? {
                None => return Ok(()),
                Some(f) => f,
            };
            // The worker is done for: learn how it ended (killing it unless it is dying by
            // itself), start the next one now.
            let pid = slot.worker.take().map_or(0, |w| w.pid);
            let ended = match failure {
                Failure::Lost { .. } | Failure::Gone => slot.spawner.wait(pid),
                _ => slot.spawner.reap(pid),
            };
            Stats::bump(&self.stats.worker_restarts);
            if let Err(e) = slot.ensure() {
                tracing::warn!("{e}");
            }
            if failure == Failure::Gone && !retried {
                tracing::warn!(
                    "{shown}: idle render worker had ended ({}); replaced",
                    ended.how
                );
                retried = true;
                continue;
            }
            let mib = slot.spawner.config.memory >> 20;
            return Err(match failure {
                // The same bytes would crash or exhaust it again: remember the failure.
                Failure::Lost { oom: true } => Failed::new(
                    libc::EIO,
                    format!("out of memory (worker limit {mib} MiB)"),
                    true,
                    Cause::OutOfMemory,
                ),
                // A crash would come again; a kill from outside (an admin, the OOM killer)
                // says nothing about the bytes.
                Failure::Lost { oom: false } => {
                    Failed::new(libc::EIO, ended.how, ended.again, Cause::Crash)
                }
                Failure::Gone => Failed::new(libc::EIO, ended.how, false, Cause::Crash),
                Failure::Abandoned(why) => Failed::new(libc::EIO, why, false, Cause::Timeout),
                Failure::Runaway(why) => Failed::new(
                    libc::EIO,
                    format!("worker killed: {why}"),
                    false,
                    Cause::Crash,
                ),
                Failure::Render { .. } => unreachable!("returned by try_in_worker"),
            });
        }
    }

    /// One attempt of [`Self::in_worker`]: `None` when the render succeeded, the failure
    /// when the worker is done for; a failed render is the error.
    fn try_in_worker(
        &self,
        slot: &mut Slot,
        conn: &mut Box<dyn Connection>,
        shown: &str,
        spec: &Spec,
        render: &Arc<Render>,
        opts: &RenderOptions,
    ) -> Result<Option<Failure>, Failed> {
        let worker = slot
            .ensure()
            .map_err(|e| Failed::new(libc::EIO, e, false, Cause::Worker))?;
        let fd = conn.file_descriptor();
        let job = protocol::Job {
            name: shown.to_string(),
            spec: spec.to_string(),
            max_pixels: opts.max_pixels,
            max_output_pixels: opts.max_output_pixels,
            max_frames: opts.max_frames,
            memory_limit: opts.memory_limit,
            source: match fd {
                Some(_) => protocol::JobSource::Fd,
                None => protocol::JobSource::Remote {
                    len: conn.len(),
                    seekable: conn.can_seek(),
                },
            },
        };
        let feed = match fd {
            Some(fd) => SourceFeed::Fd(fd),
            None => SourceFeed::Remote(&mut **conn),
        };
        // No honest encoder writes more than 16 bytes per pixel plus metadata.
        let pixels = opts.max_pixels.max(opts.max_output_pixels);
        let max_output = pixels.saturating_mul(16).saturating_add(64 << 20);
        match worker::handle::render(worker, job, feed, &**render, max_output) {
            Ok(()) => Ok(None),
            Err(Failure::Render {
                errno,
                again,
                message,
            }) => Err(Failed::new(errno, message, again, cause(again))),
            Err(f) => Ok(Some(f)),
        }
    }

    /// The message of a render that ran past the timeout.
    fn timeout_message(&self) -> String {
        let secs = self.timeout.as_secs_f32();
        if self.isolated {
            format!("render timed out after {secs} s; worker killed")
        } else {
            format!("render timed out after {secs} s")
        }
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
            let msg = self.timeout_message();
            self.end(&r, Outcome::Failed(libc::EIO, msg.clone()), || {
                tracing::warn!("{shown} [{}]: {msg}", key.spec);
                self.stats.failed(&shown, &key.spec, &msg, Cause::Timeout);
            });
        }
    }
}
