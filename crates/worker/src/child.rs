//! The render worker process (`thumbfs __worker`, started by the spawner): confined by
//! [`super::sandbox`], it takes jobs from its channel on fd 3, renders each with the same
//! pipeline as the CLI, and streams the output back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::frame::{Channel, Received};
use super::protocol::{FromWorker, Job, JobSource, ToWorker, CHUNK, OUT_OF_MEMORY};
use crate::io::source::{Connection, FileConnection};
use crate::io::target::CustomTarget;
use crate::io::Source;
use crate::pipeline::{self, RenderOptions};
use crate::spec::Spec;

/// The worker's channel, a descriptor the spawner puts there.
const CHANNEL_FD: i32 = 3;

/// Set once the worker serves jobs: from then on a failed allocation is reported.
static SERVING: AtomicBool = AtomicBool::new(false);

/// The system allocator, telling the daemon when an allocation fails (the address-space
/// limit was hit) just before Rust aborts, so that the reader learns "out of memory" rather
/// than "aborted". Installed as the global allocator by the binary.
pub struct NoticingAlloc;

impl NoticingAlloc {
    #[cold]
    fn failed(size: usize) {
        if SERVING.load(Ordering::Relaxed) {
            let mut msg = [0u8; 9];
            msg[0] = OUT_OF_MEMORY;
            msg[1..].copy_from_slice(&(size as u64).to_le_bytes());
            // SAFETY: a valid buffer; no allocation here, since allocating just failed.
            unsafe {
                libc::send(
                    CHANNEL_FD,
                    msg.as_ptr().cast(),
                    msg.len(),
                    libc::MSG_NOSIGNAL,
                );
            }
        }
    }
}

// SAFETY: every call is forwarded to System unchanged.
unsafe impl GlobalAlloc for NoticingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            Self::failed(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            Self::failed(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            Self::failed(new_size);
        }
        p
    }
}

/// Runs the worker; returns the exit code.
pub fn main() -> i32 {
    // SAFETY: fd 3 is the channel the spawner set up; nothing else owns it.
    let chan = Arc::new(unsafe { Channel::from_raw(CHANNEL_FD) });
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: allocator parameters, set before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Big buffers are mapped and unmapped, so a worker returns memory after a large render.
        // Not lower: at 1 MiB (with the 128 KiB trim threshold that a fixed mmap threshold
        // leaves) every thumbnail mapped, faulted in and unmapped its buffers again, ~600 page
        // faults a render and 4 % more CPU than in-process on bench W5. 32 MiB and twice that
        // to trim are where glibc's own dynamic thresholds stop (what the daemon uses).
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
    // SAFETY: plain prctls. Not dumpable: other processes of the same uid (other workers)
    // may not ptrace us. The name makes workers easy to find in ps and /proc.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"thumbfs-worker".as_ptr(), 0, 0, 0);
    }
    crate::codec::preload();
    if let Err(e) = super::sandbox::install_seccomp() {
        eprintln!("thumbfs worker: cannot install the seccomp filter: {e}");
        return 1;
    }
    // Inside the sandbox, as every job: what it warms is what jobs use.
    super::warm::warm_up();
    SERVING.store(true, Ordering::Relaxed);
    if chan.send(&FromWorker::Ready.encode(), None).is_err() {
        return 1;
    }
    loop {
        match chan.recv(None) {
            Ok(Received::Message(body, fd)) => match ToWorker::decode(&body) {
                Ok(ToWorker::Job(job)) => {
                    if serve(&chan, job, fd).is_err() {
                        return 1;
                    }
                }
                _ => return 1,
            },
            Ok(Received::TimedOut) => continue,
            Ok(Received::Closed) | Err(_) => return 0,
        }
    }
}

/// Renders one job; an error is only a broken channel (render failures are reported).
fn serve(chan: &Arc<Channel>, job: Job, fd: Option<std::os::fd::OwnedFd>) -> io::Result<()> {
    let reply = |m: FromWorker| chan.send(&m.encode(), None);
    let spec: Spec = match job.spec.parse() {
        Ok(s) => s,
        Err(e) => {
            return reply(FromWorker::Failed {
                errno: libc::ENOENT,
                again: true,
                message: format!("{e}"),
            })
        }
    };
    let outbox = Outbox {
        chan: chan.clone(),
        pending: Arc::default(),
    };
    let conn: Box<dyn Connection> = match (&job.source, fd) {
        (JobSource::Fd, Some(fd)) => match FileConnection::new(File::from(fd)) {
            Ok(c) => Box::new(c),
            Err(e) => {
                return reply(FromWorker::Failed {
                    errno: libc::EIO,
                    again: false,
                    message: format!("read: {e}"),
                })
            }
        },
        (JobSource::Remote { len, seekable }, None) => Box::new(RemoteConnection {
            outbox: outbox.clone(),
            pos: 0,
            len: *len,
            seekable: *seekable,
        }),
        _ => return Err(io::Error::other("job without its source")),
    };
    let src = Source::new(conn, job.name.clone());
    let opts = RenderOptions {
        max_pixels: job.max_pixels,
        max_output_pixels: job.max_output_pixels,
        max_frames: job.max_frames,
        memory_limit: job.memory_limit,
        // A worker knows the built-in formats only (it is a fresh process).
        ..RenderOptions::default()
    };
    // The seekless target: the project's callback target over the outbox.
    let flusher = outbox.clone();
    let mut target = CustomTarget::new(move |b: &[u8]| outbox.add(b), move || flusher.flush());
    let msg = match pipeline::render(src, &spec, &mut target, &opts) {
        Ok(_) => FromWorker::Done,
        Err(e) => FromWorker::Failed {
            errno: e.errno(),
            again: e.fails_again(),
            message: e.to_string(),
        },
    };
    reply(msg)
}

/// Output not yet sent, shared by the target and a remote source: output leaves in
/// [`CHUNK`]-sized messages, and whatever is pending leaves before the worker waits for
/// source bytes, so a reader gets every byte made so far while the source is slow (as with
/// an in-process render).
#[derive(Clone)]
struct Outbox {
    chan: Arc<Channel>,
    pending: Arc<Mutex<Vec<u8>>>,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends what is pending.
    fn flush(&self) -> io::Result<()> {
        let mut pending = self.lock();
        if !pending.is_empty() {
            let data = std::mem::replace(&mut *pending, Vec::with_capacity(CHUNK));
            self.chan.send(&FromWorker::Data(data).encode(), None)?;
        }
        Ok(())
    }

    /// Adds output, sending every full chunk.
    fn add(&self, mut buf: &[u8]) -> io::Result<()> {
        let mut pending = self.lock();
        while !buf.is_empty() {
            let n = (CHUNK - pending.len()).min(buf.len());
            pending.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if pending.len() == CHUNK {
                let data = std::mem::replace(&mut *pending, Vec::with_capacity(CHUNK));
                self.chan.send(&FromWorker::Data(data).encode(), None)?;
            }
        }
        Ok(())
    }
}

/// A source read through the daemon, range by range (object-store sources: the worker may not
/// connect anywhere).
struct RemoteConnection {
    outbox: Outbox,
    pos: u64,
    len: Option<u64>,
    seekable: bool,
}

impl Connection for RemoteConnection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(CHUNK * 2) as u64;
        let ask = FromWorker::Read {
            offset: self.pos,
            len: want,
        };
        self.outbox.flush()?;
        let chan = &self.outbox.chan;
        chan.send(&ask.encode(), None)?;
        match chan.recv(None)? {
            Received::Message(body, _) => match ToWorker::decode(&body)? {
                ToWorker::Bytes(b) if b.len() as u64 <= want => {
                    buf[..b.len()].copy_from_slice(&b);
                    self.pos += b.len() as u64;
                    Ok(b.len())
                }
                ToWorker::ReadFailed(why) => Err(io::Error::other(why)),
                _ => Err(io::Error::other("unexpected answer to a read")),
            },
            _ => Err(io::Error::other("the daemon went away")),
        }
    }
    fn can_seek(&self) -> bool {
        self.seekable
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.pos = pos;
        Ok(())
    }
    fn len(&self) -> Option<u64> {
        self.len
    }
}
