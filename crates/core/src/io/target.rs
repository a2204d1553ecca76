//! Targets: write plus finish, never seek. Savers write through [`TargetWriter`].

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::io::{AsRawFd, IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An append-only byte sink. `finish` is idempotent and reports what `write` could not.
pub trait Target: Send {
    /// Appends all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Flushes and closes; later calls return the first call's result.
    fn finish(&mut self) -> io::Result<()>;
}

impl<T: Target + ?Sized> Target for Box<T> {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (**self).write_all(buf)
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
}

impl<T: Target + ?Sized> Target for &mut T {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (**self).write_all(buf)
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
}

/// Remembers the outcome of the first `finish`, so repeated calls agree.
#[derive(Debug, Default)]
struct Finished(Option<Result<(), (io::ErrorKind, String)>>);

impl Finished {
    fn run(&mut self, f: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let r = self
            .0
            .get_or_insert_with(|| f().map_err(|e| (e.kind(), e.to_string())));
        r.clone().map_err(|(k, m)| io::Error::new(k, m))
    }

    fn done(&self) -> bool {
        self.0.is_some()
    }
}

fn close_checked(fd: RawFd) -> io::Result<()> {
    // SAFETY: we own fd (taken out of a File) and close it exactly once.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn after_finish() -> io::Error {
    io::Error::other("write after finish")
}

/// Writes a new file; on finish it is flushed and closed. A file left unfinished is removed.
pub struct FileTarget {
    file: Option<File>,
    path: PathBuf,
    finished: Finished,
}

impl FileTarget {
    /// Creates (truncates) `path`.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path)?;
        Ok(FileTarget {
            file: Some(file),
            path,
            finished: Finished::default(),
        })
    }
}

impl Target for FileTarget {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.as_mut().ok_or_else(after_finish)?.write_all(buf)
    }
    fn finish(&mut self) -> io::Result<()> {
        let file = self.file.take();
        self.finished.run(|| match file {
            // close(2) is where some filesystems (NFS, quota) report lost writes.
            Some(f) => close_checked(f.into_raw_fd()),
            None => Ok(()),
        })
    }
}

impl Drop for FileTarget {
    fn drop(&mut self) {
        if !self.finished.done() {
            self.file = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Collects bytes in memory; the shared handle reads them after (or while) they are written.
#[derive(Clone, Default)]
pub struct MemoryTarget {
    bytes: Arc<Mutex<Vec<u8>>>,
    finished: Arc<Mutex<bool>>,
}

impl MemoryTarget {
    /// An empty target.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes the bytes out, leaving the target empty.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.bytes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether `finish` has been called.
    pub fn is_finished(&self) -> bool {
        *self.finished.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Target for MemoryTarget {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.is_finished() {
            return Err(after_finish());
        }
        self.bytes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        *self.finished.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(())
    }
}

/// A descriptor written with write(2): stdout or a pipe. EPIPE and short writes are errors.
pub struct DescriptorTarget {
    fd: RawFd,
    finished: Finished,
}

impl DescriptorTarget {
    /// Standard output.
    pub fn stdout() -> Self {
        DescriptorTarget {
            fd: io::stdout().as_raw_fd(),
            finished: Finished::default(),
        }
    }

    /// Any descriptor the caller keeps open for the target's lifetime.
    pub fn from_raw_fd(fd: RawFd) -> Self {
        DescriptorTarget {
            fd,
            finished: Finished::default(),
        }
    }
}

impl Target for DescriptorTarget {
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        if self.finished.done() {
            return Err(after_finish());
        }
        while !buf.is_empty() {
            // SAFETY: buf is valid for reads of its length; the fd is owned by the caller.
            let n = unsafe { libc::write(self.fd, buf.as_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0"));
            }
            buf = &buf[n as usize..];
        }
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        // Every write(2) already reported its error; the descriptor is the caller's to close.
        self.finished.run(|| Ok(()))
    }
}

/// Callbacks: `write(bytes)` and `finish()`.
pub struct CustomTarget<W, F> {
    write: W,
    finish: Option<F>,
    finished: Finished,
}

impl<W, F> CustomTarget<W, F>
where
    W: FnMut(&[u8]) -> io::Result<()> + Send,
    F: FnOnce() -> io::Result<()> + Send,
{
    /// A target from a write closure and a finish closure (run once).
    pub fn new(write: W, finish: F) -> Self {
        CustomTarget {
            write,
            finish: Some(finish),
            finished: Finished::default(),
        }
    }
}

impl<W, F> Target for CustomTarget<W, F>
where
    W: FnMut(&[u8]) -> io::Result<()> + Send,
    F: FnOnce() -> io::Result<()> + Send,
{
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.finished.done() {
            return Err(after_finish());
        }
        (self.write)(buf)
    }
    fn finish(&mut self) -> io::Result<()> {
        let f = self.finish.take();
        self.finished.run(|| f.map_or(Ok(()), |f| f()))
    }
}

/// `std::io::Write` over a target, buffered, for encoders that want a `Write`.
pub struct TargetWriter<'t> {
    target: &'t mut dyn Target,
    buf: Vec<u8>,
    written: u64,
}

/// Buffer size of [`TargetWriter`]: encoders write a few bytes at a time.
const WRITE_BUF: usize = 64 * 1024;

impl<'t> TargetWriter<'t> {
    /// Wraps a target.
    pub fn new(target: &'t mut dyn Target) -> Self {
        TargetWriter {
            target,
            buf: Vec::with_capacity(WRITE_BUF),
            written: 0,
        }
    }

    /// Bytes accepted so far (buffered or written).
    pub fn position(&self) -> u64 {
        self.written
    }

    /// Flushes the buffer and finishes the target.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        self.target.finish()
    }
}

impl Write for TargetWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > WRITE_BUF {
            self.flush()?;
        }
        if data.len() >= WRITE_BUF {
            self.target.write_all(data)?;
        } else {
            self.buf.extend_from_slice(data);
        }
        self.written += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let r = self.target.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_target_finish_is_idempotent_and_reports_errors() {
        let mut t = CustomTarget::new(|_b: &[u8]| Ok(()), || Err(io::Error::other("disk full")));
        assert!(t.finish().is_err());
        assert!(t.finish().is_err());
        assert!(t.write_all(b"x").is_err());
    }

    #[test]
    fn writer_buffers_then_delivers_everything() {
        let mem = MemoryTarget::new();
        let mut t = mem.clone();
        let mut w = TargetWriter::new(&mut t);
        for i in 0..100_000u32 {
            w.write_all(&i.to_le_bytes()).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(mem.bytes().len(), 400_000);
        assert!(mem.is_finished());
    }
}
