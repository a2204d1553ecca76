//! The messages between the daemon, the spawner and the render workers.

use std::io;

use super::frame::{Dec, Enc};

/// Output bytes per [`FromWorker::Data`] message.
pub const CHUNK: usize = 32 * 1024;

/// Where a worker reads its source from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSource {
    /// The descriptor attached to the job message (a local file, read with pread).
    Fd,
    /// Byte ranges asked of the daemon ([`FromWorker::Read`]), e.g. for an object-store source.
    Remote {
        /// Total length, when known.
        len: Option<u64>,
        /// Whether the worker may read at any offset.
        seekable: bool,
    },
}

/// One render for a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The source's path, for messages.
    pub name: String,
    /// The canonical spec.
    pub spec: String,
    /// `--max-pixels`.
    pub max_pixels: u64,
    /// `--max-output-pixels`.
    pub max_output_pixels: u64,
    /// `--max-frames`.
    pub max_frames: u32,
    /// The largest input a loader may read into memory.
    pub memory_limit: u64,
    /// How the source arrives.
    pub source: JobSource,
}

/// Daemon to worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToWorker {
    /// Render this (tag 1).
    Job(Job),
    /// The answer to a [`FromWorker::Read`]: empty at end of input (tag 2).
    Bytes(Vec<u8>),
    /// The read failed (tag 3).
    ReadFailed(String),
}

/// Worker to daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromWorker {
    /// Started and sandboxed; waiting for jobs (tag 1).
    Ready,
    /// Output bytes, in order (tag 2).
    Data(Vec<u8>),
    /// Asks for up to `len` source bytes at `offset` (tag 3).
    Read {
        /// Absolute offset.
        offset: u64,
        /// Most bytes wanted.
        len: u64,
    },
    /// The render finished; every output byte was sent (tag 4).
    Done,
    /// The render failed (tag 5).
    Failed {
        /// errno for readers.
        errno: i32,
        /// Whether the same bytes would fail again (a broken image, not I/O).
        again: bool,
        /// The cause, for the log and `.thumbfs/errors`.
        message: String,
    },
    /// An allocation of this many bytes failed; the process aborts next (tag 16). Sent by the
    /// allocator itself, see [`super::child`].
    OutOfMemory(u64),
}

/// Tag of [`FromWorker::OutOfMemory`], also written by the allocator without [`Enc`].
pub const OUT_OF_MEMORY: u8 = 16;

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unknown {what} message"),
    )
}

impl ToWorker {
    /// The message body.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ToWorker::Job(j) => {
                let e = Enc::new(1)
                    .str(&j.name)
                    .str(&j.spec)
                    .u64(j.max_pixels)
                    .u64(j.max_output_pixels)
                    .u64(j.max_frames.into())
                    .u64(j.memory_limit);
                match j.source {
                    JobSource::Fd => e.u64(0),
                    JobSource::Remote { len, seekable } => e
                        .u64(1 + u64::from(seekable))
                        .u64(len.map_or(u64::MAX, |l| l.min(u64::MAX - 1))),
                }
                .done()
            }
            ToWorker::Bytes(b) => Enc::new(2).bytes(b).done(),
            ToWorker::ReadFailed(m) => Enc::new(3).str(m).done(),
        }
    }

    /// Parses a message body.
    pub fn decode(body: &[u8]) -> io::Result<ToWorker> {
        let (tag, mut d) = Dec::new(body)?;
        Ok(match tag {
            1 => {
                let name = d.str()?;
                let spec = d.str()?;
                let max_pixels = d.u64()?;
                let max_output_pixels = d.u64()?;
                let max_frames = u32::try_from(d.u64()?).map_err(|_| bad("max_frames"))?;
                let memory_limit = d.u64()?;
                let source = match d.u64()? {
                    0 => JobSource::Fd,
                    k @ (1 | 2) => {
                        let len = d.u64()?;
                        JobSource::Remote {
                            len: (len != u64::MAX).then_some(len),
                            seekable: k == 2,
                        }
                    }
                    _ => return Err(bad("source")),
                };
                ToWorker::Job(Job {
                    name,
                    spec,
                    max_pixels,
                    max_output_pixels,
                    max_frames,
                    memory_limit,
                    source,
                })
            }
            2 => ToWorker::Bytes(d.bytes()?.to_vec()),
            3 => ToWorker::ReadFailed(d.str()?),
            _ => return Err(bad("daemon")),
        })
    }
}

impl FromWorker {
    /// The message body.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            FromWorker::Ready => Enc::new(1).done(),
            FromWorker::Data(b) => Enc::new(2).bytes(b).done(),
            FromWorker::Read { offset, len } => Enc::new(3).u64(*offset).u64(*len).done(),
            FromWorker::Done => Enc::new(4).done(),
            FromWorker::Failed {
                errno,
                again,
                message,
            } => Enc::new(5)
                .i32(*errno)
                .u64(u64::from(*again))
                .str(message)
                .done(),
            FromWorker::OutOfMemory(n) => Enc::new(OUT_OF_MEMORY).u64(*n).done(),
        }
    }

    /// Parses a message body.
    pub fn decode(body: &[u8]) -> io::Result<FromWorker> {
        let (tag, mut d) = Dec::new(body)?;
        Ok(match tag {
            1 => FromWorker::Ready,
            2 => FromWorker::Data(d.bytes()?.to_vec()),
            3 => FromWorker::Read {
                offset: d.u64()?,
                len: d.u64()?,
            },
            4 => FromWorker::Done,
            5 => FromWorker::Failed {
                errno: d.i32()?,
                again: d.u64()? != 0,
                message: d.str()?,
            },
            OUT_OF_MEMORY => FromWorker::OutOfMemory(d.u64()?),
            _ => return Err(bad("worker")),
        })
    }
}

/// Daemon to spawner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToSpawner {
    /// Start a worker; the answer carries its channel (tag 1).
    Spawn,
    /// SIGKILL this worker, reap it and say how it ended (tag 2).
    Kill(i32),
    /// Reap this worker, which is ending by itself, and say how it ended (tag 3).
    Wait(i32),
    /// Unmount the mount point (the daemon may no longer be allowed to) (tag 4).
    Unmount(String),
}

/// How a worker ended, from the spawner's wait status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// In the words readers see in `.thumbfs/errors`, e.g. "decoder crashed (SIGSEGV)".
    pub how: String,
    /// Whether the same job would end it the same way (a crash, an abort), as opposed to an
    /// end from outside (SIGKILL from an admin or the kernel's OOM killer).
    pub again: bool,
}

/// Spawner to daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromSpawner {
    /// A worker started, with this pid; its channel is attached (tag 1).
    Spawned(i32),
    /// How a worker ended (tag 2).
    Ended(Ending),
    /// Done (tag 3).
    Ok,
    /// Failed, with the reason (tag 4).
    Failed(String),
}

impl ToSpawner {
    /// The message body.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ToSpawner::Spawn => Enc::new(1).done(),
            ToSpawner::Kill(p) => Enc::new(2).i32(*p).done(),
            ToSpawner::Wait(p) => Enc::new(3).i32(*p).done(),
            ToSpawner::Unmount(m) => Enc::new(4).str(m).done(),
        }
    }

    /// Parses a message body.
    pub fn decode(body: &[u8]) -> io::Result<ToSpawner> {
        let (tag, mut d) = Dec::new(body)?;
        Ok(match tag {
            1 => ToSpawner::Spawn,
            2 => ToSpawner::Kill(d.i32()?),
            3 => ToSpawner::Wait(d.i32()?),
            4 => ToSpawner::Unmount(d.str()?),
            _ => return Err(bad("spawner request")),
        })
    }
}

impl FromSpawner {
    /// The message body.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            FromSpawner::Spawned(p) => Enc::new(1).i32(*p).done(),
            FromSpawner::Ended(e) => Enc::new(2).str(&e.how).u64(u64::from(e.again)).done(),
            FromSpawner::Ok => Enc::new(3).done(),
            FromSpawner::Failed(s) => Enc::new(4).str(s).done(),
        }
    }

    /// Parses a message body.
    pub fn decode(body: &[u8]) -> io::Result<FromSpawner> {
        let (tag, mut d) = Dec::new(body)?;
        Ok(match tag {
            1 => FromSpawner::Spawned(d.i32()?),
            2 => FromSpawner::Ended(Ending {
                how: d.str()?,
                again: d.u64()? != 0,
            }),
            3 => FromSpawner::Ok,
            4 => FromSpawner::Failed(d.str()?),
            _ => return Err(bad("spawner answer")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_survives_a_round_trip() {
        let jobs = [
            JobSource::Fd,
            JobSource::Remote {
                len: Some(12),
                seekable: true,
            },
            JobSource::Remote {
                len: None,
                seekable: false,
            },
        ];
        for source in jobs {
            let m = ToWorker::Job(Job {
                name: "a/b.jpg".into(),
                spec: "w256".into(),
                max_pixels: 7,
                max_output_pixels: 8,
                max_frames: 10,
                memory_limit: 9,
                source,
            });
            assert_eq!(ToWorker::decode(&m.encode()).unwrap(), m);
        }
        for m in [
            ToWorker::Bytes(vec![1, 2]),
            ToWorker::ReadFailed("x".into()),
        ] {
            assert_eq!(ToWorker::decode(&m.encode()).unwrap(), m);
        }
        for m in [
            FromWorker::Ready,
            FromWorker::Data(vec![3; 10]),
            FromWorker::Read { offset: 5, len: 6 },
            FromWorker::Done,
            FromWorker::Failed {
                errno: 5,
                again: true,
                message: "load jpeg: bad".into(),
            },
            FromWorker::OutOfMemory(1 << 40),
        ] {
            assert_eq!(FromWorker::decode(&m.encode()).unwrap(), m);
        }
        for m in [
            ToSpawner::Spawn,
            ToSpawner::Kill(3),
            ToSpawner::Wait(4),
            ToSpawner::Unmount("/mnt".into()),
        ] {
            assert_eq!(ToSpawner::decode(&m.encode()).unwrap(), m);
        }
        for m in [
            FromSpawner::Spawned(9),
            FromSpawner::Ended(Ending {
                how: "decoder crashed (SIGSEGV)".into(),
                again: true,
            }),
            FromSpawner::Ok,
            FromSpawner::Failed("no".into()),
        ] {
            assert_eq!(FromSpawner::decode(&m.encode()).unwrap(), m);
        }
        assert!(FromWorker::decode(&[99]).is_err());
        assert!(ToWorker::decode(&[1, 0]).is_err());
    }
}
