//! A local directory as a [`Store`]: every path is resolved beneath a directory fd of the
//! root, so no symlink, in the last component or in the middle of a path, leads outside it.
//!
//! The daemon usually runs as root and reads for everyone, so a path is never handed to the
//! kernel whole from `/`: a directory swapped for a symlink between two requests would
//! otherwise take later reads wherever it points. A path without symlinks is opened by one
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (Linux 5.6+); a path with one, or any
//! path on an older kernel, by a walk of its components with `O_NOFOLLOW` ([`walk`]).
//! Relative symlinks are followed while they stay beneath the root and lead only through
//! directories every user may search; absolute symlinks are refused (ENOENT) wherever they
//! point, as `RESOLVE_BENEATH` does.

use std::ffi::{CStr, OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use super::{Kind, Meta, Opened, Store};
use crate::SourceId;
use thumbfs_core::io::source::FileConnection;

/// A directory tree on this host.
pub struct LocalStore {
    root: PathBuf,
    /// The root, opened once: every path is resolved beneath this fd.
    dir: OwnedFd,
}

impl LocalStore {
    /// A store rooted at `root` (made canonical, for the mount point check and messages).
    pub fn new(root: &Path) -> io::Result<Self> {
        let root = fs::canonicalize(root)?;
        let dir = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(LocalStore { root, dir })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens `rel` beneath the root with `flags` (symlinks followed while they stay inside).
    fn resolve(&self, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        resolve_beneath(self.dir.as_fd(), rel, flags).map_err(escape_is_absent)
    }

    /// What `rel` is, symlinks followed beneath the root.
    fn stat_of(&self, rel: &Path) -> io::Result<Stat> {
        Ok(rustix::fs::fstat(self.resolve(rel, OFlags::PATH)?)?)
    }

    /// Opens regular file `rel` for reading. Non-blocking, so a FIFO put in a file's place
    /// cannot hang the thread that opens it (a regular file ignores the flag).
    fn open_file(&self, rel: &Path) -> io::Result<File> {
        let fd = self.resolve(rel, OFlags::RDONLY | OFlags::NONBLOCK)?;
        Ok(File::from(fd))
    }
}

/// Set once openat2 answered ENOSYS (a kernel older than 5.6): every later path walks.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `rel` beneath `root` with `flags`. A path without symlinks is one openat2 call;
/// one with a symlink (openat2 says ELOOP under `RESOLVE_NO_SYMLINKS`), or any path on a
/// kernel without openat2, is resolved by [`walk`], which checks what a link leads through.
fn resolve_beneath(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    // openat2 refuses O_PATH with flags O_PATH ignores (EINVAL), such as O_NOCTTY.
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    };
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
        // EAGAIN: a rename or mount raced the lookup; the kernel asks for a retry.
        for _ in 0..8 {
            match rustix::fs::openat2(root, rel, flags, Mode::empty(), how) {
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    break;
                }
                Err(Errno::LOOP) => break,
                r => return Ok(r?),
            }
        }
    }
    walk(root, rel, flags)
}

/// Symlinks followed in one resolution before giving up with ELOOP, as the kernel does.
const MAX_LINKS: usize = 40;

/// Resolves `rel` beneath `root` one component at a time with `O_NOFOLLOW`, by the rules of
/// `RESOLVE_BENEATH`: a relative symlink's target replaces it in the path still to walk,
/// `..` goes back up the directories opened so far and never above `root` (EXDEV), and an
/// absolute symlink is EXDEV. Intermediate directories are held open as `O_PATH` fds, so a
/// rename elsewhere cannot move the walk.
///
/// The kernel checks the reader's permissions only along the path it was given, against
/// the modes we report. A directory that a symlink leads into is not on that path: the
/// daemon, reading as root, would pass a 0700 directory the reader could never enter. So
/// once a link has been followed, every directory entered must be searchable by all users
/// (o+x), else the link leads nowhere (EXDEV). The file or directory at the end of the path
/// is not held to this: its own mode is what the kernel checks.
fn walk(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    // Components still to walk, the next one last.
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, rel.as_os_str())?;
    // Directories entered below the root, innermost last.
    let mut dirs: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        let here = dirs.last().map_or(root, |d| d.as_fd());
        if name == ".." {
            if dirs.pop().is_none() {
                return Err(Errno::XDEV.into());
            }
            continue;
        }
        let probe = rustix::fs::openat(
            here,
            name.as_os_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&probe)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::LOOP.into());
                }
                let target = rustix::fs::readlinkat(&probe, c"", Vec::new())?;
                push_components(&mut todo, OsStr::from_bytes(target.as_bytes()))?;
            }
            _ if todo.is_empty() => {
                // The last component: open it for real, still refusing a symlink swapped in
                // since the probe (ELOOP, or the link itself under O_PATH: not a file or dir).
                return Ok(rustix::fs::openat(
                    here,
                    name.as_os_str(),
                    flags | OFlags::NOFOLLOW,
                    Mode::empty(),
                )?);
            }
            FileType::Directory if links > 0 && st.st_mode & 0o001 == 0 => {
                return Err(Errno::XDEV.into());
            }
            FileType::Directory => dirs.push(probe),
            _ => return Err(Errno::NOTDIR.into()),
        }
    }
    // The path ended on a directory already entered (`.`, `a/..`).
    let here = dirs.last().map_or(root, |d| d.as_fd());
    Ok(rustix::fs::openat(here, c".", flags, Mode::empty())?)
}

/// Adds the components of `path` to `todo` (next one last); absolute paths are EXDEV.
fn push_components(todo: &mut Vec<OsString>, path: &OsStr) -> io::Result<()> {
    let bytes = path.as_bytes();
    if bytes.first() == Some(&b'/') {
        return Err(Errno::XDEV.into());
    }
    for part in bytes.split(|&b| b == b'/').rev() {
        if !part.is_empty() && part != b"." {
            todo.push(OsStr::from_bytes(part).to_os_string());
        }
    }
    Ok(())
}

/// A path that would leave the root (EXDEV from openat2 or the walk) does not exist here.
fn escape_is_absent(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::EXDEV) {
        io::Error::from_raw_os_error(libc::ENOENT)
    } else {
        e
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH
    }
}

/// The identity of a file from its `stat`.
// The field types of `struct stat` differ between architectures; the casts are no-ops on some.
#[allow(clippy::unnecessary_cast)]
fn id_of(m: &Stat) -> SourceId {
    SourceId {
        dev: m.st_dev as u64,
        ino: m.st_ino as u64,
        size: m.st_size as u64,
        mtime_ns: (m.st_mtime as i64).saturating_mul(1_000_000_000) + m.st_mtime_nsec as i64,
    }
}

/// Our view of a file's metadata; other kinds (devices, sockets, symlinks) are `None`.
#[allow(clippy::unnecessary_cast)]
fn meta_of(m: &Stat) -> Option<Meta> {
    let kind = match FileType::from_raw_mode(m.st_mode) {
        FileType::Directory => Kind::Dir,
        FileType::RegularFile => Kind::File,
        _ => return None,
    };
    Some(Meta {
        kind,
        len: if kind == Kind::File {
            m.st_size as u64
        } else {
            0
        },
        id: id_of(m),
        mtime: time(m.st_mtime as i64, m.st_mtime_nsec as i64),
        atime: time(m.st_atime as i64, m.st_atime_nsec as i64),
        ctime: time(m.st_ctime as i64, m.st_ctime_nsec as i64),
        mode: m.st_mode as u32 & 0o7777,
        uid: m.st_uid as u32,
        gid: m.st_gid as u32,
    })
}

fn not_regular() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

impl Store for LocalStore {
    fn stat(&self, rel: &Path) -> io::Result<Meta> {
        meta_of(&self.stat_of(rel)?).ok_or_else(not_regular)
    }

    fn list(&self, rel: &Path) -> io::Result<Vec<(OsString, Meta)>> {
        let dir = self.resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut out = Vec::new();
        for item in rustix::fs::Dir::read_from(&dir)? {
            let Ok(item) = item else { continue };
            let name: &CStr = item.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            // Stat relative to the directory already resolved; only a symlink needs a
            // resolution from the root (its target may climb out of this directory).
            let Ok(mut st) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let name = OsStr::from_bytes(name.to_bytes()).to_os_string();
            if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                match self.stat_of(&rel.join(&name)) {
                    Ok(target) => st = target,
                    Err(_) => continue,
                }
            }
            if let Some(meta) = meta_of(&st) {
                out.push((name, meta));
            }
        }
        Ok(out)
    }

    fn open(&self, rel: &Path, id: &SourceId) -> io::Result<Opened> {
        let file = self.open_file(rel)?;
        // Identity of the file we read, not of whatever the path names later: a source
        // deleted or renamed over mid-render still yields its whole, consistent output; only
        // a write into this very file spoils the bytes.
        let identity = |f: &File| rustix::fs::fstat(f).map(|m| id_of(&m)).ok();
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
        self.open_file(rel).map(drop)
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A tree with a file, a subdirectory, relative links inside and links leading out.
    fn tree() -> (tempfile::TempDir, tempfile::TempDir) {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.jpg"), b"secret").unwrap();
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        fs::write(r.join("a/b/f.jpg"), b"inside").unwrap();
        symlink("a/b", r.join("ab")).unwrap();
        symlink("../b/f.jpg", r.join("a/b/up.jpg")).unwrap();
        symlink("../../..", r.join("a/b/climb")).unwrap();
        symlink(outside.path(), r.join("out")).unwrap();
        symlink(r.join("a"), r.join("abs_inside")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        fs::create_dir(r.join("locked")).unwrap();
        fs::write(r.join("locked/f.jpg"), b"locked").unwrap();
        fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("locked", r.join("to_locked")).unwrap();
        symlink("locked/f.jpg", r.join("through_locked.jpg")).unwrap();
        symlink("../locked", r.join("a/up_locked")).unwrap();
        (d, outside)
    }

    fn check(resolve: impl Fn(&str) -> io::Result<OwnedFd>) {
        let read = |p: &str| -> io::Result<Vec<u8>> {
            let mut v = Vec::new();
            io::Read::read_to_end(&mut File::from(resolve(p)?), &mut v)?;
            Ok(v)
        };
        assert_eq!(read("a/b/f.jpg").unwrap(), b"inside");
        assert_eq!(
            read("ab/f.jpg").unwrap(),
            b"inside",
            "relative link mid-path"
        );
        assert_eq!(read("a/b/up.jpg").unwrap(), b"inside");
        assert_eq!(read("a/../a/./b/f.jpg").unwrap(), b"inside");
        // The kernel checked the literal path; a link's own way must be open to all.
        assert_eq!(read("locked/f.jpg").unwrap(), b"locked");
        assert!(
            resolve("to_locked").is_ok(),
            "the end of a path keeps its own mode"
        );
        let errno = |p: &str| resolve(p).unwrap_err().raw_os_error();
        assert_eq!(
            errno("out/secret.jpg"),
            Some(libc::EXDEV),
            "absolute, outside"
        );
        assert_eq!(
            errno("abs_inside/b/f.jpg"),
            Some(libc::EXDEV),
            "absolute, inside"
        );
        assert_eq!(errno("a/b/climb/x"), Some(libc::EXDEV), "climbs out");
        assert_eq!(errno("../x"), Some(libc::EXDEV));
        assert_eq!(errno("loop"), Some(libc::ELOOP));
        assert_eq!(
            errno("to_locked/f.jpg"),
            Some(libc::EXDEV),
            "link into 0750"
        );
        assert_eq!(errno("through_locked.jpg"), Some(libc::EXDEV));
        assert_eq!(errno("a/up_locked/f.jpg"), Some(libc::EXDEV));
        assert_eq!(errno("a/b/f.jpg/x"), Some(libc::ENOTDIR));
        assert_eq!(errno("a/none"), Some(libc::ENOENT));
    }

    #[test]
    fn openat2_and_the_walk_follow_the_same_rules() {
        let (d, _outside) = tree();
        let store = LocalStore::new(d.path()).unwrap();
        let root = store.dir.as_fd();
        check(|p| resolve_beneath(root, Path::new(p), OFlags::RDONLY));
        check(|p| walk(root, Path::new(p), OFlags::RDONLY));
    }

    #[test]
    fn listings_show_links_inside_and_hide_links_out() {
        let (d, _outside) = tree();
        let store = LocalStore::new(d.path()).unwrap();
        let mut names: Vec<_> = store
            .list(Path::new(""))
            .unwrap()
            .into_iter()
            .map(|(n, m)| (n.into_string().unwrap(), m.kind))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            names,
            [
                ("a".to_string(), Kind::Dir),
                ("ab".to_string(), Kind::Dir),
                ("locked".to_string(), Kind::Dir),
                ("to_locked".to_string(), Kind::Dir),
            ]
        );
        let sub = store.list(Path::new("ab")).unwrap();
        assert_eq!(sub.len(), 2, "f.jpg and up.jpg: {sub:?}");
        assert_eq!(
            store.stat(Path::new("out")).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
        let f = store.stat(Path::new("a/b/up.jpg")).unwrap();
        assert!(store.open(Path::new("ab/f.jpg"), &f.id).is_ok());
    }
}
