//! The daemon's side of one render in a worker: send the job and its source, then pump the
//! output into the render's buffer as it arrives, answer the worker's source reads, and notice
//! when the render is abandoned (timed out) or the worker dies.

use std::io;
use std::os::fd::RawFd;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use super::frame::Received;
use super::protocol::{FromWorker, Job, ToWorker, CHUNK};
use super::spawner::Spawned;
use crate::io::Connection;

/// How often a waiting pump checks whether its render was abandoned.
const TICK: Duration = Duration::from_millis(200);

/// Where a worker's output goes.
pub trait Sink {
    /// Appends output bytes; an error abandons the render.
    fn append(&self, data: &[u8]) -> io::Result<()>;
    /// Why the render was given up from outside (e.g. the timeout), if it was.
    fn abandoned(&self) -> Option<String>;
}

/// How a render in a worker failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The render itself failed (a broken image, a refused spec); the worker is fine.
    Render {
        /// errno for readers.
        errno: i32,
        /// Whether the same bytes would fail again.
        again: bool,
        /// The cause.
        message: String,
    },
    /// The worker was gone before the job reached it (ended while idle): nothing ran, so
    /// the render may start again in its replacement.
    Gone,
    /// The worker died; `oom` when it said an allocation failed just before.
    Lost {
        /// It reported a failed allocation.
        oom: bool,
    },
    /// The render was given up from outside; the worker must be killed.
    Abandoned(String),
    /// The worker broke the protocol or sent more than allowed; it must be killed.
    Runaway(String),
}

impl Failure {
    /// Whether the worker can take another job.
    pub fn worker_usable(&self) -> bool {
        matches!(self, Failure::Render { .. })
    }
}

/// Where the worker's source comes from.
pub enum SourceFeed<'a> {
    /// A descriptor passed to the worker (local files).
    Fd(RawFd),
    /// Ranges read here on the worker's request (object stores).
    Remote(&'a mut dyn Connection),
}

/// Runs `job` on `worker`, pumping its output into `sink` (at most `max_output` bytes).
///
/// A remote source's reads are answered on a thread of their own: the worker's decoder
/// thread asks for source bytes while its encoder thread keeps sending output, and that
/// output must reach readers while a slow source holds the read back.
pub fn render(
    worker: &Spawned,
    job: Job,
    feed: SourceFeed,
    sink: &dyn Sink,
    max_output: u64,
) -> Result<(), Failure> {
    let (fd, remote) = match feed {
        SourceFeed::Fd(fd) => (Some(fd), None),
        SourceFeed::Remote(c) => (None, Some(c)),
    };
    if let Err(e) = worker.chan.send(&ToWorker::Job(job).encode(), fd) {
        return Err(if e.raw_os_error() == Some(libc::EPIPE) {
            Failure::Gone
        } else {
            lost(e)
        });
    }
    let Some(conn) = remote else {
        return pump(worker, sink, max_output, None);
    };
    let (asks, asked) = std::sync::mpsc::channel::<(u64, u64)>();
    std::thread::scope(|s| {
        s.spawn(move || answer_reads(worker, conn, &asked));
        // Returning drops `asks`, which ends the reader after the read it is in.
        pump(worker, sink, max_output, Some(asks))
    })
}

fn lost(e: io::Error) -> Failure {
    Failure::Runaway(format!("worker channel: {e}"))
}

/// Receives the worker's messages until the render ends: output into `sink`, source reads
/// handed to `asks` (None: the source is a descriptor, so a read is a protocol error).
fn pump(
    worker: &Spawned,
    sink: &dyn Sink,
    max_output: u64,
    asks: Option<Sender<(u64, u64)>>,
) -> Result<(), Failure> {
    let mut total = 0u64;
    let mut oom = false;
    loop {
        let body = match worker.chan.recv_within(TICK) {
            Ok(Received::Message(body, _)) => body,
            Ok(Received::TimedOut) => {
                if let Some(why) = sink.abandoned() {
                    return Err(Failure::Abandoned(why));
                }
                continue;
            }
            Ok(Received::Closed) => return Err(Failure::Lost { oom }),
            Err(e) => return Err(lost(e)),
        };
        match FromWorker::decode(&body).map_err(lost)? {
            FromWorker::Data(b) => {
                total += b.len() as u64;
                if total > max_output {
                    return Err(Failure::Runaway(format!("output over {max_output} bytes")));
                }
                if let Err(e) = sink.append(&b) {
                    return Err(Failure::Abandoned(e.to_string()));
                }
            }
            FromWorker::Read { offset, len } => {
                let Some(asks) = &asks else {
                    return Err(Failure::Runaway("a read without a remote source".into()));
                };
                // The reader only stops when the channel broke, which the next receive says.
                let _ = asks.send((offset, len));
            }
            FromWorker::Done => return Ok(()),
            FromWorker::Failed {
                errno,
                again,
                message,
            } => {
                return Err(Failure::Render {
                    errno,
                    again,
                    message,
                })
            }
            FromWorker::OutOfMemory(_) => oom = true,
            FromWorker::Ready => return Err(Failure::Runaway("unexpected message".into())),
        }
    }
}

/// Answers the worker's source reads, one at a time (the worker waits for each), until the
/// pump stops asking or the channel breaks.
fn answer_reads(worker: &Spawned, conn: &mut dyn Connection, asked: &Receiver<(u64, u64)>) {
    while let Ok((offset, len)) = asked.recv() {
        let answer = match read_range(conn, offset, len) {
            Ok(b) => ToWorker::Bytes(b),
            Err(e) => ToWorker::ReadFailed(e.to_string()),
        };
        if worker.chan.send(&answer.encode(), None).is_err() {
            return;
        }
    }
}

fn read_range(conn: &mut dyn Connection, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    if conn.can_seek() {
        conn.seek_to(offset)?;
    }
    let mut buf = vec![0u8; len.min(2 * CHUNK as u64) as usize];
    let mut got = 0;
    while got < buf.len() {
        let n = conn.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}
