//! One render's output: an append-only buffer that readers consume while it grows.
//!
//! The render worker appends bytes through [`RenderTarget`] (the seekless target). Readers
//! never block a thread: they register a callback that runs as soon as the bytes they asked
//! for exist, or when the render ends (EOF or error).

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::io::Target;

/// How a render ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// All bytes are in the buffer.
    Done,
    /// The render failed: errno for readers and a message for the log.
    Failed(i32, String),
}

/// What a waiting reader is told.
pub type ReadResult = Result<Vec<u8>, i32>;

type ReadCallback = Box<dyn FnOnce(ReadResult) + Send>;
type DoneCallback = Box<dyn FnOnce(Result<u64, i32>) + Send>;

struct Waiter {
    offset: u64,
    len: usize,
    call: ReadCallback,
}

#[derive(Default)]
struct State {
    data: Vec<u8>,
    outcome: Option<Outcome>,
    readers: Vec<Waiter>,
    done_waiters: Vec<DoneCallback>,
    /// When the first byte arrived, counted from [`Render::started`].
    first_byte: Option<std::time::Duration>,
}

/// A render's shared output buffer and its waiting readers.
pub struct Render {
    state: Mutex<State>,
    /// When the render was queued, for the timeout watchdog.
    pub started: Instant,
}

impl Default for Render {
    fn default() -> Self {
        Render {
            state: Mutex::default(),
            started: Instant::now(),
        }
    }
}

fn slice(data: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let start = (offset.min(data.len() as u64)) as usize;
    let end = start.saturating_add(len).min(data.len());
    data[start..end].to_vec()
}

impl Render {
    /// A new, empty render.
    pub fn new() -> Arc<Self> {
        Arc::new(Render::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking callback must not poison every later read.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The outcome, once known.
    pub fn outcome(&self) -> Option<Outcome> {
        self.lock().outcome.clone()
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.lock().data.len() as u64
    }

    /// True when nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long after the render was queued its first byte was written, once it was.
    pub fn first_byte(&self) -> Option<std::time::Duration> {
        self.lock().first_byte
    }

    /// The first `n` bytes written (fewer if there are fewer).
    pub fn head(&self, n: usize) -> Vec<u8> {
        let st = self.lock();
        st.data[..n.min(st.data.len())].to_vec()
    }

    /// Total size and a copy-free view are only meaningful when done; this returns the size.
    pub fn finished_size(&self) -> Option<u64> {
        let st = self.lock();
        matches!(st.outcome, Some(Outcome::Done)).then_some(st.data.len() as u64)
    }

    /// Calls `call` with bytes `[offset, offset+len)` as soon as they exist, fewer at EOF, or
    /// the render's errno if it fails. Runs on the caller's thread when possible, otherwise on
    /// the render worker's.
    pub fn read(&self, offset: u64, len: usize, call: impl FnOnce(ReadResult) + Send + 'static) {
        let mut st = self.lock();
        let want = offset.saturating_add(len as u64);
        let ready = match &st.outcome {
            Some(Outcome::Failed(errno, _)) => Some(Err(*errno)),
            Some(Outcome::Done) => Some(Ok(slice(&st.data, offset, len))),
            None if st.data.len() as u64 >= want => Some(Ok(slice(&st.data, offset, len))),
            None => None,
        };
        match ready {
            Some(r) => {
                drop(st);
                call(r);
            }
            None => st.readers.push(Waiter {
                offset,
                len,
                call: Box::new(call),
            }),
        }
    }

    /// Calls `call` with the final size (or errno) once the render ends.
    pub fn when_done(&self, call: impl FnOnce(Result<u64, i32>) + Send + 'static) {
        let mut st = self.lock();
        match &st.outcome {
            Some(Outcome::Done) => {
                let n = st.data.len() as u64;
                drop(st);
                call(Ok(n));
            }
            Some(Outcome::Failed(errno, _)) => {
                let e = *errno;
                drop(st);
                call(Err(e));
            }
            None => st.done_waiters.push(Box::new(call)),
        }
    }

    /// Appends bytes and wakes readers whose range is now complete.
    pub fn append(&self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.lock();
        if let Some(Outcome::Failed(_, why)) = &st.outcome {
            // Timed out or abandoned: stop the encoder.
            return Err(io::Error::other(why.clone()));
        }
        if st.first_byte.is_none() && !buf.is_empty() {
            st.first_byte = Some(self.started.elapsed());
        }
        st.data.extend_from_slice(buf);
        let have = st.data.len() as u64;
        let (ready, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut st.readers)
            .into_iter()
            .partition(|w| w.offset.saturating_add(w.len as u64) <= have);
        st.readers = waiting;
        let replies: Vec<(ReadCallback, Vec<u8>)> = ready
            .into_iter()
            .map(|w| (w.call, slice(&st.data, w.offset, w.len)))
            .collect();
        drop(st);
        for (call, bytes) in replies {
            call(Ok(bytes));
        }
        Ok(())
    }

    /// Appends a whole output read from the disk cache, moving it in when nothing was
    /// written yet (no copy of a large file).
    pub fn fill(&self, bytes: Vec<u8>) {
        let mut st = self.lock();
        if st.data.is_empty() && st.outcome.is_none() && st.readers.is_empty() {
            st.data = bytes;
            return;
        }
        drop(st);
        // Readers already waiting are answered by append.
        let _ = self.append(&bytes);
    }

    /// Ends the render (first call wins: returns whether this one did) and answers everyone
    /// still waiting.
    pub fn finish(&self, outcome: Outcome) -> bool {
        self.finish_with(outcome, || {})
    }

    /// [`Render::finish`], running `first` only if this call wins, before anyone can learn the
    /// outcome: a reader told EIO then finds the failure already logged and listed.
    pub fn finish_with(&self, outcome: Outcome, first: impl FnOnce()) -> bool {
        let mut st = self.lock();
        if st.outcome.is_some() {
            return false;
        }
        first();
        match outcome {
            // The buffer grew by doubling; the cache budgets lengths, so hand back the spare
            // capacity (an mremap or an in-place split, not a copy).
            Outcome::Done => st.data.shrink_to_fit(),
            // Nobody will read a failed render's bytes.
            Outcome::Failed(..) => st.data = Vec::new(),
        }
        st.outcome = Some(outcome.clone());
        let readers = std::mem::take(&mut st.readers);
        let done = std::mem::take(&mut st.done_waiters);
        let size = st.data.len() as u64;
        let replies: Vec<(ReadCallback, ReadResult)> = readers
            .into_iter()
            .map(|w| {
                let r = match &outcome {
                    Outcome::Done => Ok(slice(&st.data, w.offset, w.len)),
                    Outcome::Failed(e, _) => Err(*e),
                };
                (w.call, r)
            })
            .collect();
        drop(st);
        for (call, r) in replies {
            call(r);
        }
        for call in done {
            call(match &outcome {
                Outcome::Done => Ok(size),
                Outcome::Failed(e, _) => Err(*e),
            });
        }
        true
    }

    /// The whole output of a finished render (for the disk cache).
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().data.clone()
    }
}

/// The seekless target a render worker writes into.
pub struct RenderTarget(pub Arc<Render>);

impl Target for RenderTarget {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.append(buf)
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A render worker's output goes straight into the buffer; a render failed from outside
/// (the timeout) is abandoned.
impl crate::worker::Sink for Render {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        Render::append(self, data)
    }
    fn abandoned(&self) -> Option<String> {
        match self.outcome() {
            Some(Outcome::Failed(_, why)) => Some(why),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn readers_are_answered_when_their_bytes_exist() {
        let r = Render::new();
        let (tx, rx) = channel();
        let t = tx.clone();
        r.read(2, 3, move |res| t.send(res).unwrap());
        r.append(b"ab").unwrap();
        assert!(rx.try_recv().is_err(), "not enough bytes yet");
        r.append(b"cdef").unwrap();
        assert_eq!(rx.try_recv().unwrap(), Ok(b"cde".to_vec()));
        let t = tx.clone();
        r.read(4, 10, move |res| t.send(res).unwrap());
        r.finish(Outcome::Done);
        assert_eq!(rx.try_recv().unwrap(), Ok(b"ef".to_vec()));
        r.read(100, 10, move |res| tx.send(res).unwrap());
        assert_eq!(rx.try_recv().unwrap(), Ok(Vec::new()), "past EOF: no bytes");
    }

    #[test]
    fn failure_reaches_waiters_and_stops_the_writer() {
        let r = Render::new();
        let (tx, rx) = channel();
        r.read(0, 10, move |res| tx.send(res).unwrap());
        r.finish(Outcome::Failed(libc::EIO, "bad".into()));
        assert_eq!(rx.try_recv().unwrap(), Err(libc::EIO));
        assert!(r.append(b"x").is_err());
    }

    #[test]
    fn the_winning_finish_records_before_waiters_hear() {
        let r = Render::new();
        let (tx, rx) = channel();
        let t = tx.clone();
        r.read(0, 1, move |res| t.send(format!("reader {res:?}")).unwrap());
        let t = tx.clone();
        assert!(
            r.finish_with(Outcome::Failed(libc::EIO, "bad".into()), move || {
                t.send("recorded".into()).unwrap()
            })
        );
        assert!(!r.finish_with(Outcome::Done, move || tx.send("again".into()).unwrap()));
        let order: Vec<String> = rx.try_iter().collect();
        assert_eq!(order, ["recorded", "reader Err(5)"]);
    }
}
