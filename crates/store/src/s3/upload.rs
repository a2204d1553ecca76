//! An S3 object as a [`Target`]: parts leave while the encoder is still filling the next.
//!
//! The first [`PART_SIZE`] bytes start a multipart upload on a background thread; each later
//! full part is queued to it (one queued, one in flight: the encoder waits rather than
//! buffering the image), and `finish` sends the rest and completes the upload. An output
//! smaller than one part goes as a single PUT. Any error, and a drop without `finish`, aborts
//! the upload: no object, partial or whole, appears unless `finish` succeeded.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use thumbfs_core::io::Target;

use super::{Client, S3Error};
use crate::object::s3_io;

/// Smallest part S3 accepts (all parts but the last); also the size of every part sent.
pub const PART_SIZE: usize = 5 << 20;
/// Most parts an upload can have: 50 GB of output at [`PART_SIZE`].
const MAX_PARTS: usize = 10_000;

/// Writes one object, `key`, streamed in parts (see the module doc).
pub struct S3Target {
    client: Client,
    key: String,
    headers: Vec<(String, String)>,
    part_size: usize,
    buf: Vec<u8>,
    uploader: Option<Uploader>,
    finished: Option<Result<(), (io::ErrorKind, String)>>,
}

/// The background thread that owns the multipart upload.
struct Uploader {
    parts: Option<SyncSender<Vec<u8>>>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Upload, S3Error>>>,
    sent: usize,
}

/// A multipart upload whose parts have all been sent.
struct Upload {
    id: String,
    etags: Vec<String>,
}

impl S3Target {
    /// A target for `key`; `headers` (`Content-Type`, `x-amz-meta-*`) go with the object.
    pub fn new(client: Client, key: impl Into<String>, headers: Vec<(String, String)>) -> Self {
        S3Target {
            client,
            key: key.into(),
            headers,
            part_size: PART_SIZE,
            buf: Vec::new(),
            uploader: None,
            finished: None,
        }
    }

    /// Hands the buffered part to the uploader, starting it on the first part.
    fn send_part(&mut self) -> Result<(), S3Error> {
        let part = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        let up = match &mut self.uploader {
            Some(u) => u,
            None => self.uploader.insert(Uploader::start(
                self.client.clone(),
                self.key.clone(),
                self.headers.clone(),
            )),
        };
        if up.sent >= MAX_PARTS {
            return Err(S3Error::Protocol {
                key: self.key.clone(),
                cause: format!("output over {MAX_PARTS} parts of {} bytes", self.part_size),
            });
        }
        up.sent += 1;
        if up.parts.as_ref().is_some_and(|tx| tx.send(part).is_ok()) {
            return Ok(());
        }
        // The thread stopped taking parts: it failed (and aborted the upload).
        let e = up.join().err();
        Err(e.unwrap_or_else(|| self.stopped()))
    }

    fn stopped(&self) -> S3Error {
        S3Error::Transport {
            key: self.key.clone(),
            cause: "upload thread stopped".into(),
        }
    }

    fn finish_inner(&mut self) -> Result<(), S3Error> {
        let Some(mut up) = self.uploader.take() else {
            let body = std::mem::take(&mut self.buf);
            return self.client.put_with(&self.key, &body, &self.headers);
        };
        if !self.buf.is_empty() {
            self.uploader = Some(up);
            self.send_part()?;
            up = self.uploader.take().ok_or_else(|| self.stopped())?;
        }
        let upload = up.join()?;
        let done = self
            .client
            .complete_multipart(&self.key, &upload.id, &upload.etags);
        if done.is_err() {
            let _ = self.client.abort_multipart(&self.key, &upload.id);
        }
        done
    }

    /// The error `write_all` reports once the uploader has failed, if it has.
    fn check_uploader(&mut self) -> Result<(), S3Error> {
        match &mut self.uploader {
            Some(up) if up.thread.as_ref().is_some_and(|t| t.is_finished()) => {
                let e = up.join().err();
                self.uploader = None;
                Err(e.unwrap_or_else(|| self.stopped()))
            }
            _ => Ok(()),
        }
    }
}

impl Target for S3Target {
    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.finished.is_some() {
            return Err(io::Error::other("write after finish"));
        }
        self.check_uploader().map_err(|e| self.fail(e))?;
        while !data.is_empty() {
            let room = self.part_size - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == self.part_size {
                self.send_part().map_err(|e| self.fail(e))?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.finished.is_none() {
            let r = self.finish_inner().map_err(|e| {
                let e = s3_io(e);
                (e.kind(), e.to_string())
            });
            self.finished = Some(r);
        }
        match self.finished.clone() {
            Some(Err((k, m))) => Err(io::Error::new(k, m)),
            _ => Ok(()),
        }
    }
}

impl S3Target {
    /// Records a failure: the target is done (the upload is aborted) and later calls say so.
    fn fail(&mut self, e: S3Error) -> io::Error {
        if let Some(mut up) = self.uploader.take() {
            up.cancel();
        }
        let e = s3_io(e);
        self.finished = Some(Err((e.kind(), e.to_string())));
        e
    }
}

impl Drop for S3Target {
    /// Unfinished (an encoder error, a panic): abort, so no parts are left behind. Waits for
    /// the abort, so a process exiting on the error does not leave the upload open.
    fn drop(&mut self) {
        if let Some(mut up) = self.uploader.take() {
            up.cancel();
        }
    }
}

impl Uploader {
    fn start(client: Client, key: String, headers: Vec<(String, String)>) -> Uploader {
        // One part queued while one is in flight: encoding and uploading overlap, memory stays
        // at three parts (filling, queued, sending).
        let (tx, rx) = sync_channel::<Vec<u8>>(1);
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("s3-upload".into())
            .spawn(move || upload(&client, &key, &headers, &rx, &stop));
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("s3 upload thread: {e}");
                None
            }
        };
        Uploader {
            parts: Some(tx),
            cancel,
            thread,
            sent: 0,
        }
    }

    /// Closes the queue and waits for the thread's outcome (every part sent, or its error).
    fn join(&mut self) -> Result<Upload, S3Error> {
        self.parts = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(S3Error::Transport {
                key: String::new(),
                cause: "upload thread failed".into(),
            }),
        }
    }

    /// Stops at the next part and aborts the upload; waits until it is aborted.
    fn cancel(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        // The thread aborts on seeing `cancel`; an Ok here means it had already sent all.
        let _ = self.join();
    }
}

/// The thread: creates the upload at the first part, sends each part in order; on an error
/// or a cancel, aborts the upload and returns the error.
fn upload(
    client: &Client,
    key: &str,
    headers: &[(String, String)],
    parts: &Receiver<Vec<u8>>,
    cancel: &AtomicBool,
) -> Result<Upload, S3Error> {
    let Ok(first) = parts.recv() else {
        return Err(cancelled(key));
    };
    let id = client.create_multipart(key, headers)?;
    let mut etags = Vec::new();
    let mut next = Some(first);
    let outcome = loop {
        if cancel.load(Ordering::Relaxed) {
            break Err(cancelled(key));
        }
        let Some(part) = next.take() else {
            break Ok(());
        };
        let n = etags.len() as u16 + 1;
        match client.upload_part(key, &id, n, &part) {
            Ok(etag) => etags.push(etag),
            Err(e) => break Err(e),
        }
        drop(part);
        next = parts.recv().ok();
    };
    // A queue closed by a drop (not by finish) also ends here with Ok: `cancel` says which.
    let outcome = outcome.and_then(|()| {
        if cancel.load(Ordering::Relaxed) {
            Err(cancelled(key))
        } else {
            Ok(())
        }
    });
    match outcome {
        Ok(()) => Ok(Upload { id, etags }),
        Err(e) => {
            if let Err(a) = client.abort_multipart(key, &id) {
                tracing::warn!("{a} (aborting the upload after: {e})");
            }
            Err(e)
        }
    }
}

fn cancelled(key: &str) -> S3Error {
    S3Error::Transport {
        key: key.to_string(),
        cause: "upload cancelled".into(),
    }
}
