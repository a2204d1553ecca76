//! A local directory as a [`Store`]: symlinks are followed only while they stay inside it.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Kind, Meta, Opened, Store};
use crate::fs::cache::SourceId;
use crate::io::source::FileConnection;

/// A directory tree on this host.
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (made canonical, so symlink checks compare real paths).
    pub fn new(root: &Path) -> io::Result<Self> {
        let root = fs::canonicalize(root)?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(LocalStore { root })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Metadata of `path` with symlinks followed, but only when the target stays inside.
    fn inside(&self, path: &Path) -> io::Result<fs::Metadata> {
        let lmeta = fs::symlink_metadata(path)?;
        if !lmeta.file_type().is_symlink() {
            return Ok(lmeta);
        }
        let target = fs::canonicalize(path)?;
        if !target.starts_with(&self.root) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        fs::metadata(&target)
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH
    }
}

/// Our view of a file's metadata; other kinds (devices, sockets) are `None`.
pub fn meta_of(m: &fs::Metadata) -> Option<Meta> {
    let kind = if m.is_dir() {
        Kind::Dir
    } else if m.is_file() {
        Kind::File
    } else {
        return None;
    };
    Some(Meta {
        kind,
        len: if kind == Kind::File { m.len() } else { 0 },
        id: SourceId::of(m),
        mtime: time(m.mtime(), m.mtime_nsec()),
        atime: time(m.atime(), m.atime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

fn not_regular() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

impl Store for LocalStore {
    fn stat(&self, rel: &Path) -> io::Result<Meta> {
        meta_of(&self.inside(&self.root.join(rel))?).ok_or_else(not_regular)
    }

    fn list(&self, rel: &Path) -> io::Result<Vec<(OsString, Meta)>> {
        let mut out = Vec::new();
        for item in fs::read_dir(self.root.join(rel))? {
            let Ok(item) = item else { continue };
            let Ok(m) = self.inside(&item.path()) else {
                continue;
            };
            if let Some(meta) = meta_of(&m) {
                out.push((item.file_name(), meta));
            }
        }
        Ok(out)
    }

    fn open(&self, rel: &Path, id: &SourceId) -> io::Result<Opened> {
        let path = self.root.join(rel);
        if path.is_symlink() {
            self.inside(&path)?;
        }
        let file = File::open(&path)?;
        // Identity of the file we read, not of whatever the path names later: a source
        // deleted or renamed over mid-render still yields its whole, consistent output; only
        // a write into this very file spoils the bytes.
        let identity = |f: &File| f.metadata().map(|m| SourceId::of(&m)).ok();
        if identity(&file) != Some(*id) {
            return Err(io::Error::other("source changed before rendering"));
        }
        let check = file.try_clone()?;
        let id = *id;
        Ok(Opened {
            conn: Box::new(FileConnection::new(file)?),
            unchanged: Box::new(move || identity(&check) == Some(id)),
        })
    }

    fn check_readable(&self, rel: &Path) -> io::Result<()> {
        File::open(self.root.join(rel)).map(drop)
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
