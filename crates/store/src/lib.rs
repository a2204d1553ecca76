//! Where sources live, behind one trait: a local directory ([`local`]) or an S3-compatible
//! object store ([`object`]). The mount and the CLI get one through [`open()`] and
//! [`open_file`] (from a path or a URL) and talk only to [`Store`] and
//! [`Source`](thumbfs_core::io::Source).
//!
//! Paths are relative to the store's root (`""` is the root). A store never writes.

#![warn(missing_docs)]

// The lower crates' modules under the names the code has always used (`crate::error`, ...);
// the crate graph, not these names, keeps the layers apart.
pub use thumbfs_core::SourceId;
use thumbfs_core::{bounded, flight};

pub mod s3;

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use thumbfs_core::io::source::Connection;

pub mod local;
pub mod object;
pub mod open;

pub use local::LocalStore;
pub use object::ObjectStore;
pub use open::{open, open_file, OpenError, OpenOptions, Scheme};

/// File or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory (an object-store prefix).
    Dir,
    /// A regular file (an object).
    File,
}

/// What the filesystem needs to know of an entry.
#[derive(Debug, Clone)]
pub struct Meta {
    /// File or directory.
    pub kind: Kind,
    /// Length in bytes (0 for directories).
    pub len: u64,
    /// Identity of this version: a change to the content gives a new one.
    pub id: SourceId,
    /// Modification time.
    pub mtime: SystemTime,
    /// Access time.
    pub atime: SystemTime,
    /// Status change time.
    pub ctime: SystemTime,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl Meta {
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == Kind::File
    }
}

/// An opened source version: the byte channel, and a check that the version read is still
/// the one asked for (a local file written to while we read it may mix old and new bytes).
pub struct Opened {
    /// The seekable channel the loader reads.
    pub conn: Box<dyn Connection>,
    /// True while the version read is still `id` (checked after a render).
    pub unchanged: Box<dyn Fn() -> bool + Send>,
}

/// A backing store of images: list a directory, stat an entry, open a version.
pub trait Store: Send + Sync {
    /// What `rel` is (a local store follows symlinks that stay inside its root).
    fn stat(&self, rel: &Path) -> io::Result<Meta>;
    /// The entries of directory `rel`, in no particular order.
    fn list(&self, rel: &Path) -> io::Result<Vec<(OsString, Meta)>>;
    /// Opens version `id` of file `rel`; fails if that version is gone.
    fn open(&self, rel: &Path, id: &SourceId) -> io::Result<Opened>;
    /// Up to `n` first bytes of version `id` of `rel` (format sniffing).
    fn head(&self, rel: &Path, id: &SourceId, n: usize) -> io::Result<Vec<u8>> {
        let mut opened = self.open(rel, id)?;
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match opened.conn.read(&mut buf[got..])? {
                0 => break,
                k => got += k,
            }
        }
        buf.truncate(got);
        Ok(buf)
    }
    /// What `rel` is, if that is known without I/O (`None`: ask [`Store::stat`] on a worker).
    fn stat_cached(&self, _rel: &Path) -> Option<io::Result<Meta>> {
        None
    }
    /// Whether the caller may read `rel` (an open of the mount checks it like a file open).
    fn check_readable(&self, _rel: &Path) -> io::Result<()> {
        Ok(())
    }
    /// [`Store::check_readable`] if it needs no I/O (`None`: ask it on a worker).
    fn check_readable_cached(&self, _rel: &Path) -> Option<io::Result<()>> {
        None
    }
    /// True when each access costs a network round trip (sniffing then runs in parallel).
    fn is_remote(&self) -> bool {
        false
    }
    /// The canonical directory a local store serves (the mount point must not be inside it).
    fn local_root(&self) -> Option<&Path> {
        None
    }
    /// How the store is named in messages (`/srv/photos`, `s3://bucket/prefix/`).
    fn describe(&self) -> String;
    /// Drops what is cached about `rel` (`""`: everything), so that the next request asks
    /// the source again (`thumbfs ctl MNT forget`). Stores that cache nothing do nothing.
    fn forget(&self, _rel: &Path) {}
}

/// Whether what is cached about directory `dir` may be stale once `rel` changed: `dir` is
/// `rel`, lies under it, or is one of its ancestors (whose listings show `rel`'s first new
/// component).
pub fn affected_by(dir: &Path, rel: &Path) -> bool {
    dir.starts_with(rel) || rel.starts_with(dir)
}

/// A copy of an error shared by several callers, keeping what [`errno_of`] reads.
pub fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// The errno for a store error: its OS code, else by kind, else EIO.
pub fn errno_of(e: &io::Error) -> i32 {
    if let Some(code) = e.raw_os_error() {
        return code;
    }
    match e.kind() {
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::PermissionDenied => libc::EACCES,
        io::ErrorKind::NotADirectory => libc::ENOTDIR,
        io::ErrorKind::IsADirectory => libc::EISDIR,
        _ => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::affected_by;
    use std::path::Path;

    #[test]
    fn a_change_affects_its_directory_those_below_and_those_above() {
        let a = |dir: &str, rel: &str| affected_by(Path::new(dir), Path::new(rel));
        assert!(a("x/y", "x/y/new.jpg"), "its directory");
        assert!(a("", "x/y/new.jpg") && a("x", "x/y/new.jpg"), "above");
        assert!(a("x/y/z", "x/y"), "below");
        assert!(a("anything", ""), "the whole source");
        assert!(!a("x/yz", "x/y") && !a("w", "x/y/new.jpg"), "elsewhere");
    }
}
