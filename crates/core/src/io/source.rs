//! Sources: read plus an optional seek, with libvips' header/pixel phases for unseekable input.
//!
//! A [`Source`] wraps a [`Connection`] (file, memory, descriptor or closures). Seekable
//! connections are read at any offset. For unseekable ones (pipes, closures without seek) every
//! byte read during the *header phase* is kept, so a loader can rewind and open the source again
//! with better options. [`Source::start_pixel_phase`] switches to the *pixel phase*: kept
//! bytes are served once more, then dropped, and reads go straight to the connection.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::os::unix::io::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Bytes kept behind the read position of an unseekable source in the pixel phase.
const PIXEL_TAIL: usize = 4096;

/// Size of the read-ahead buffer that backs [`BufRead`].
const BUF_SIZE: usize = 64 * 1024;

/// The raw byte channel under a [`Source`]: a read callback plus an optional seek.
pub trait Connection: Send {
    /// Reads up to `buf.len()` bytes at the current position; 0 means end of input.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Whether [`Connection::seek_to`] works.
    fn can_seek(&self) -> bool {
        false
    }
    /// Moves to absolute offset `pos`. Only called when `can_seek()`.
    fn seek_to(&mut self, _pos: u64) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "source cannot seek",
        ))
    }
    /// Total length in bytes, when known without reading.
    fn len(&self) -> Option<u64> {
        None
    }
    /// True when the length is known to be zero.
    fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
    /// The open file underneath, when there is one that another process could read with
    /// pread (a render worker is handed it rather than the bytes).
    fn file_descriptor(&self) -> Option<RawFd> {
        None
    }
}

impl<C: Connection + ?Sized> Connection for Box<C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read(buf)
    }
    fn can_seek(&self) -> bool {
        (**self).can_seek()
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        (**self).seek_to(pos)
    }
    fn len(&self) -> Option<u64> {
        (**self).len()
    }
    fn file_descriptor(&self) -> Option<RawFd> {
        (**self).file_descriptor()
    }
}

/// A file read with positioned reads (`pread`), so it never shares a file offset.
pub struct FileConnection {
    file: File,
    pos: u64,
    len: u64,
}

impl FileConnection {
    /// Wraps an open file.
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileConnection { file, pos: 0, len })
    }
}

impl Connection for FileConnection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = loop {
            match self.file.read_at(buf, self.pos) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
    fn can_seek(&self) -> bool {
        true
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.pos = pos;
        Ok(())
    }
    fn len(&self) -> Option<u64> {
        Some(self.len)
    }
    fn file_descriptor(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }
}

/// Bytes in memory, borrowed or owned.
pub struct MemoryConnection<B> {
    bytes: B,
    pos: usize,
}

impl<B: AsRef<[u8]> + Send> Connection for MemoryConnection<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let data = self.bytes.as_ref();
        let start = self.pos.min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        self.pos = start + n;
        Ok(n)
    }
    fn can_seek(&self) -> bool {
        true
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.pos = usize::try_from(pos).unwrap_or(usize::MAX);
        Ok(())
    }
    fn len(&self) -> Option<u64> {
        Some(self.bytes.as_ref().len() as u64)
    }
}

/// A descriptor read with read(2): stdin or a pipe. Never seeks, even if the fd could.
pub struct DescriptorConnection {
    fd: RawFd,
    _owned: Option<OwnedFd>,
}

impl Connection for DescriptorConnection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: buf is a valid writable slice for its length; fd stays open while we live.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Callbacks: a read closure and an optional seek closure.
pub struct CustomConnection<R, S> {
    read: R,
    seek: Option<S>,
}

impl<R, S> Connection for CustomConnection<R, S>
where
    R: FnMut(&mut [u8]) -> io::Result<usize> + Send,
    S: FnMut(u64) -> io::Result<()> + Send,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (self.read)(buf)
    }
    fn can_seek(&self) -> bool {
        self.seek.is_some()
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        match &mut self.seek {
            Some(seek) => seek(pos),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "source cannot seek",
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Pixels,
}

/// A byte source for loaders: `Read + BufRead + Seek`, rewindable during the header phase.
///
/// One window of bytes `[win_start, win_start + win.len())` serves both cases: for a seekable
/// connection it is a read-ahead buffer refilled at any offset; for an unseekable one it holds
/// every byte read so far during the header phase, and is replaced chunk by chunk afterwards.
pub struct Source<'a> {
    conn: Box<dyn Connection + 'a>,
    name: String,
    seekable: bool,
    phase: Phase,
    /// Logical read position.
    pos: u64,
    win: Vec<u8>,
    win_start: u64,
    /// Where the connection is (for unseekable: always `win_start + win.len()`).
    conn_pos: u64,
}

impl<'a> Source<'a> {
    /// A source over any connection.
    pub fn new(conn: impl Connection + 'a, name: impl Into<String>) -> Self {
        let seekable = conn.can_seek();
        Source {
            conn: Box::new(conn),
            name: name.into(),
            seekable,
            phase: Phase::Header,
            pos: 0,
            win: Vec::new(),
            win_start: 0,
            conn_pos: 0,
        }
    }

    /// Opens a file for positioned reads.
    pub fn file(path: impl AsRef<Path>) -> io::Result<Source<'static>> {
        let path = path.as_ref();
        let file = File::open(path)?;
        Ok(Source::new(
            FileConnection::new(file)?,
            path.display().to_string(),
        ))
    }

    /// Bytes in memory: `&[u8]`, `Vec<u8>`, `Arc<[u8]>`, ...
    pub fn memory<B: AsRef<[u8]> + Send + 'a>(bytes: B) -> Self {
        Source::new(MemoryConnection { bytes, pos: 0 }, "memory")
    }

    /// Standard input, treated as an unseekable pipe.
    pub fn stdin() -> Source<'static> {
        Source::new(
            DescriptorConnection {
                fd: io::stdin().as_raw_fd(),
                _owned: None,
            },
            "stdin",
        )
    }

    /// An owned descriptor (a pipe, a socket), treated as unseekable.
    pub fn descriptor(fd: OwnedFd, name: impl Into<String>) -> Source<'static> {
        let raw = fd.as_raw_fd();
        Source::new(
            DescriptorConnection {
                fd: raw,
                _owned: Some(fd),
            },
            name,
        )
    }

    /// Closures: `read(buf) -> n`, and optionally `seek(absolute_offset)`. Without seek the
    /// source behaves exactly like a pipe.
    pub fn custom<R, S>(read: R, seek: Option<S>) -> Self
    where
        R: FnMut(&mut [u8]) -> io::Result<usize> + Send + 'a,
        S: FnMut(u64) -> io::Result<()> + Send + 'a,
    {
        Source::new(CustomConnection { read, seek }, "custom")
    }

    /// A name for messages (the path for files).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the source (used to report virtual paths).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Whether arbitrary seeks work.
    pub fn is_seekable(&self) -> bool {
        self.seekable
    }

    /// Total length, when the connection knows it.
    pub fn len(&self) -> Option<u64> {
        self.conn.len()
    }

    /// True when the length is known to be zero.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Whether the source is still in the header phase.
    pub fn in_header_phase(&self) -> bool {
        self.phase == Phase::Header
    }

    /// Current read position.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Back to byte 0, for a second open. Fails on an unseekable source once pixel reads
    /// have moved past the kept header bytes.
    pub fn rewind(&mut self) -> io::Result<()> {
        self.seek(SeekFrom::Start(0)).map(|_| ())
    }

    /// Switches to the pixel phase: kept header bytes are served once more, then dropped.
    pub fn start_pixel_phase(&mut self) {
        self.phase = Phase::Pixels;
    }

    /// Returns up to `n` bytes from the current position without consuming them.
    pub fn sniff(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let start = self.pos;
        let mut out = Vec::with_capacity(n);
        (&mut *self).take(n as u64).read_to_end(&mut out)?;
        self.seek(SeekFrom::Start(start))?;
        Ok(out)
    }

    /// Reads the rest of the input into memory, failing past `limit` bytes.
    pub fn read_to_memory(&mut self, limit: u64) -> crate::Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut *self)
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(crate::Error::Read)?;
        if out.len() as u64 > limit {
            return Err(crate::Error::Unsupported(format!(
                "input larger than the {limit}-byte limit for loading into memory"
            )));
        }
        Ok(out)
    }

    fn win_end(&self) -> u64 {
        self.win_start + self.win.len() as u64
    }

    fn conn_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(n) => {
                    self.conn_pos += n as u64;
                    return Ok(n);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn back_error(&self) -> io::Error {
        io::Error::other(format!(
            "cannot seek back to byte {} of an unseekable source: bytes before {} were dropped when decoding began",
            self.pos, self.win_start
        ))
    }

    /// Makes the window cover `pos` (or ends it at EOF).
    fn refill(&mut self) -> io::Result<()> {
        if self.seekable {
            if self.conn_pos != self.pos {
                self.conn.seek_to(self.pos)?;
                self.conn_pos = self.pos;
            }
            self.win.resize(BUF_SIZE, 0);
            let mut win = std::mem::take(&mut self.win);
            let n = self.conn_read(&mut win);
            self.win = win;
            self.win.truncate(*n.as_ref().unwrap_or(&0));
            self.win_start = self.pos;
            return n.map(|_| ());
        }
        if self.pos < self.win_start {
            return Err(self.back_error());
        }
        if self.phase == Phase::Pixels {
            if self.win_end() == self.conn_pos && self.pos <= self.conn_pos {
                // Drop what is behind us but a short tail: decoders peek by reading ahead and
                // stepping back a few bytes, also across a refill.
                let drop = self.win.len().saturating_sub(PIXEL_TAIL);
                self.win.drain(..drop);
                self.win_start += drop as u64;
            } else {
                // Skip forward by reading and discarding.
                self.win.clear();
                let mut scratch = [0u8; 8192];
                while self.conn_pos < self.pos {
                    let want = (self.pos - self.conn_pos).min(scratch.len() as u64) as usize;
                    if self.conn_read(&mut scratch[..want])? == 0 {
                        break;
                    }
                }
                self.win_start = self.conn_pos;
            }
        }
        // Header phase: keep appending so the source can be rewound.
        while self.win_end() <= self.pos {
            let old = self.win.len();
            self.win.resize(old + BUF_SIZE, 0);
            let mut win = std::mem::take(&mut self.win);
            let r = self.conn_read(&mut win[old..]);
            self.win = win;
            let n = match r {
                Ok(n) => n,
                Err(e) => {
                    self.win.truncate(old);
                    return Err(e);
                }
            };
            self.win.truncate(old + n);
            if n == 0 {
                break;
            }
        }
        Ok(())
    }
}

impl Read for Source<'_> {
    /// Inlined into the decoders (zune-jpeg refills its bit reader 4 bytes at a time, 400,000
    /// reads for a 1.5 MB file): a read the window covers is a copy, the rest goes out of line.
    #[inline]
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(off) = self.pos.checked_sub(self.win_start) {
            let off = usize::try_from(off).unwrap_or(usize::MAX);
            if let Some(avail) = self.win.get(off..).filter(|a| a.len() >= out.len()) {
                out.copy_from_slice(&avail[..out.len()]);
                self.pos += out.len() as u64;
                return Ok(out.len());
            }
        }
        self.read_slow(out)
    }
}

impl Source<'_> {
    /// [`Read::read`] when the window does not cover the whole request.
    #[inline(never)]
    fn read_slow(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // Large reads outside the window bypass it when nothing needs keeping.
        let outside = self.pos < self.win_start || self.pos >= self.win_end();
        if outside && out.len() >= BUF_SIZE {
            if self.seekable {
                if self.conn_pos != self.pos {
                    self.conn.seek_to(self.pos)?;
                    self.conn_pos = self.pos;
                }
                let n = self.conn_read(out)?;
                self.pos += n as u64;
                return Ok(n);
            }
            if self.phase == Phase::Pixels && self.pos == self.conn_pos {
                self.win.clear();
                let n = self.conn_read(out)?;
                self.pos += n as u64;
                self.win_start = self.conn_pos;
                return Ok(n);
            }
        }
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Source<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos < self.win_start || self.pos >= self.win_end() {
            self.refill()?;
        }
        if self.pos < self.win_start {
            return Err(self.back_error());
        }
        let off = ((self.pos - self.win_start) as usize).min(self.win.len());
        Ok(&self.win[off..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt as u64;
    }
}

impl Seek for Source<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => {
                let len = self.conn.len().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::Unsupported, "source length is unknown")
                })?;
                len.checked_add_signed(d)
            }
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before byte 0"))?;
        if !self.seekable && target < self.win_start {
            let old = std::mem::replace(&mut self.pos, target);
            let err = self.back_error();
            self.pos = old;
            return Err(err);
        }
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_of(data: Vec<u8>) -> Source<'static> {
        let mut at = 0;
        Source::custom(
            move |buf: &mut [u8]| {
                // Short reads, like a pipe.
                let n = buf.len().min(7).min(data.len() - at);
                buf[..n].copy_from_slice(&data[at..at + n]);
                at += n;
                Ok(n)
            },
            None::<fn(u64) -> io::Result<()>>,
        )
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn header_phase_rewinds_then_pixel_phase_streams() {
        let data = bytes(300_000);
        let mut s = pipe_of(data.clone());
        assert!(!s.is_seekable());
        assert_eq!(s.sniff(4).unwrap(), &data[..4]);
        let mut head = vec![0; 1000];
        s.read_exact(&mut head).unwrap();
        s.rewind().unwrap();
        s.start_pixel_phase();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        // The kept header is gone now: seeking back is an error, not a wrong read.
        assert!(s.seek(SeekFrom::Start(0)).is_err());
    }

    #[test]
    fn unseekable_forward_seek_skips() {
        let data = bytes(200_000);
        let mut s = pipe_of(data.clone());
        s.start_pixel_phase();
        s.seek(SeekFrom::Start(150_000)).unwrap();
        let mut b = [0u8; 10];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, &data[150_000..150_010]);
    }

    #[test]
    fn memory_source_seeks_anywhere() {
        let data = bytes(100_000);
        let mut s = Source::memory(&data[..]);
        s.seek(SeekFrom::End(-5)).unwrap();
        let mut b = Vec::new();
        s.read_to_end(&mut b).unwrap();
        assert_eq!(b, &data[data.len() - 5..]);
        s.start_pixel_phase();
        s.rewind().unwrap();
        let mut big = vec![0; 70_000];
        s.read_exact(&mut big).unwrap();
        assert_eq!(big, &data[..70_000]);
    }

    #[test]
    fn read_to_memory_enforces_limit() {
        let mut s = pipe_of(bytes(1000));
        assert!(s.read_to_memory(999).is_err());
        let mut s = pipe_of(bytes(1000));
        assert_eq!(s.read_to_memory(1000).unwrap().len(), 1000);
    }
}
