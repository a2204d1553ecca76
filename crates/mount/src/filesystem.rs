//! The fuser `Filesystem`: paths to nodes, attributes with exact sizes, streaming reads.
//!
//! No FUSE thread waits for a render: lookups, stats and reads that need bytes not yet made
//! register a callback on the render and return; the render worker sends the reply.
//!
//! Nor for the store: a request is first answered from memory (cached listings and
//! metadata); one that needs store I/O (a stat, a listing, format sniffs, an open check) is
//! handed with its reply to a store worker ([`super::work`]), which answers it.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};

use lru::LruCache;

use super::cache::RenderKey;
use super::inode::{self, Inodes, Node, SpecDir};
use super::names::Names;
use super::options::Preset;
use super::pins::ReadPins;
use super::render::Render;
use super::scheduler::{Scheduler, SourceRef};
use super::stats::Stats;
use super::work::Pool;
use crate::spec::{OutputFormat, Spec};
use crate::store::{affected_by, errno_of, Meta, Store};

/// Entry lifetime in the kernel, and attribute lifetime of directories: short, because
/// sources can change and nothing watches them; a change is seen within this time.
const TTL: Duration = Duration::from_secs(1);
/// Attribute lifetime of a finished output: its inode stands for one source version, whose
/// output size never changes.
const FINISHED_TTL: Duration = Duration::from_secs(60);

/// Size of `.thumbfs/stats` in no-open mode: its JSON, padded with spaces (see
/// `Core::meta_bytes`).
const STATS_SIZE: usize = 1024;

/// How opens are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OpenMode {
    /// `no-open` with `--stat exact` (a lookup already waits for the whole render, so
    /// opens would add a round trip and stream nothing), `per-open` with `--stat estimate`.
    Auto,
    /// Every open and close reaches the daemon: reads of a file still rendering stream as
    /// its bytes are made (direct I/O), and a handle pins its output.
    PerOpen,
    /// Opens are answered ENOSYS once, so the kernel stops sending them: re-reads of
    /// finished outputs run at page-cache speed. Reads find the output by inode instead
    /// (a read pin, the cache, else rendering it again); needs `--stat exact`.
    NoOpen,
}

impl OpenMode {
    /// The mode a mount runs in: [`OpenMode::Auto`] resolved for `stat`.
    pub fn effective(self, stat: StatMode) -> OpenMode {
        match (self, stat) {
            (OpenMode::Auto, StatMode::Exact) => OpenMode::NoOpen,
            (OpenMode::Auto, StatMode::Estimate) => OpenMode::PerOpen,
            (mode, _) => mode,
        }
    }
}

/// How lookups report sizes of files never rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatMode {
    /// Render on first stat and report the true size (what every tool expects).
    Exact,
    /// Report the source size until the first open; exact from then on.
    Estimate,
}

/// Which spec directories resolve under the mount root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SpecPolicy {
    /// Any valid spec, listed or not.
    #[default]
    Any,
    /// Only the presets: every other name is ENOENT (a mount other people reach cannot be
    /// made to render at sizes nobody chose).
    Presets,
}

/// What an open file handle reads from.
enum Handle {
    /// A render's buffer (kept alive here even after cache eviction).
    Render(Arc<Render>),
    /// A snapshot of a `.thumbfs` file.
    Bytes(Arc<Vec<u8>>),
}

/// Store workers: enough that a few slow directories (each listed by one worker, the
/// others asking for it waiting on that one) leave room for everything else.
const STORE_THREADS: usize = 16;

/// Bounds on what the filesystem remembers by name, for a mount that lives for weeks.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Bytes of directory listings and sniffed formats ([`Names::new`]).
    pub names: usize,
    /// Spec directory names remembered (each a parsed spec).
    pub spec_dirs: usize,
    /// How long the kernel may remember a name found missing (`--negative-ttl`; zero: not
    /// at all, every lookup of it reaches the daemon).
    pub negative_ttl: Duration,
    /// Names found missing remembered for `thumbfs ctl forget` to invalidate in the kernel.
    pub negatives: usize,
    /// Whether JPEG thumbnails may come from embedded previews (`--previews`); off makes
    /// every thumbnail spec `exact`.
    pub previews: bool,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            names: super::names::DEFAULT_BUDGET,
            spec_dirs: 4096,
            negative_ttl: Duration::ZERO,
            negatives: 65536,
            previews: true,
        }
    }
}

/// The filesystem: the state shared by all FUSE threads and the store workers.
pub struct ThumbFs(Arc<Core>);

impl Deref for ThumbFs {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.0
    }
}

/// Why a request is not answered on the thread that has it.
enum Fail {
    /// Answer with this errno.
    Errno(Errno),
    /// It needs store I/O: hand it to a store worker.
    Wait,
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::Errno(e)
    }
}

/// The answer needs store I/O.
struct Wait;

impl From<Wait> for Fail {
    fn from(_: Wait) -> Self {
        Fail::Wait
    }
}

/// The filesystem state shared by all FUSE threads and the store workers.
pub struct Core {
    store: Arc<dyn Store>,
    root_meta: Meta,
    presets: Vec<Preset>,
    /// Whether names other than the presets resolve.
    spec_policy: SpecPolicy,
    inodes: Arc<Inodes>,
    names: Names,
    sched: Arc<Scheduler>,
    stat_mode: StatMode,
    open_mode: OpenMode,
    handles: Mutex<HashMap<u64, (u64, Handle)>>,
    next_fh: AtomicU64,
    /// Spec directories by name, least recently used first out (inodes keep their own).
    spec_dirs: Mutex<LruCache<String, Arc<SpecDir>>>,
    /// Where requests needing store I/O run.
    pool: Pool,
    /// In no-open mode, the `.thumbfs` file contents as of their last getattr: reads slice
    /// the same snapshot whose size the kernel was told.
    meta_snapshots: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
    /// In no-open mode, the outputs read lately: what an open handle would hold.
    read_pins: ReadPins,
    /// Entry lifetime of a name found missing (see [`Bounds::negative_ttl`]).
    negative_ttl: Duration,
    /// See [`Bounds::previews`].
    previews: bool,
    /// Names answered as missing with a lifetime, by parent inode: what the kernel may hold
    /// as negative entries (the oldest are dropped beyond the bound, and then only expire).
    negatives: Mutex<LruCache<(u64, OsString), ()>>,
}

fn errno(e: i32) -> Errno {
    Errno::from_i32(e)
}

fn io_errno(e: &std::io::Error) -> Errno {
    errno(errno_of(e))
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH
    }
}

fn attr_from(ino: u64, meta: &Meta, kind: FileType, size: u64) -> FileAttr {
    let read = (meta.mode & 0o444) as u16;
    let perm = match kind {
        // Directories are r-x wherever the source is readable.
        FileType::Directory => read | (read >> 2),
        _ => read,
    };
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: meta.atime,
        mtime: meta.mtime,
        ctime: meta.ctime,
        crtime: meta.mtime,
        kind,
        perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: meta.uid,
        gid: meta.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// The text of `.thumbfs/README`, its format and save tokens filled in from the codec registry.
fn readme() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        // The mount renders with the built-in registry (its workers re-create it).
        let r = crate::codec::Registry::builtin();
        include_str!("README.txt")
            .replace(
                "{FORMAT_TOKENS}",
                &format!("{:<19}", r.format_tokens().join(" ")),
            )
            .replace("{SAVE_OPTIONS}\n", &r.option_help())
            .replace("{INPUT_FORMATS}", &r.input_titles().join(", "))
            .replace("{DEFAULT_OUTPUTS}", &r.default_outputs())
    })
}

impl ThumbFs {
    /// A filesystem serving `store` with these presets and scheduler.
    pub fn new(
        store: Arc<dyn Store>,
        presets: Vec<Preset>,
        sched: Arc<Scheduler>,
        stat_mode: StatMode,
        open_mode: OpenMode,
        bounds: Bounds,
        spec_policy: SpecPolicy,
    ) -> std::io::Result<Self> {
        let root_meta = store.stat(Path::new(""))?;
        let spec_dirs = NonZeroUsize::new(bounds.spec_dirs).unwrap_or(NonZeroUsize::MIN);
        let negatives = NonZeroUsize::new(bounds.negatives).unwrap_or(NonZeroUsize::MIN);
        Ok(ThumbFs(Arc::new(Core {
            store,
            root_meta,
            presets,
            spec_policy,
            inodes: Arc::default(),
            names: Names::new(bounds.names),
            sched,
            stat_mode,
            open_mode: open_mode.effective(stat_mode),
            handles: Mutex::default(),
            next_fh: AtomicU64::new(1),
            spec_dirs: Mutex::new(LruCache::new(spec_dirs)),
            pool: Pool::new(STORE_THREADS),
            meta_snapshots: Mutex::default(),
            read_pins: ReadPins::default(),
            negative_ttl: bounds.negative_ttl,
            previews: bounds.previews,
            negatives: Mutex::new(LruCache::new(negatives)),
        })))
    }

    /// The shared state, for the control socket ([`super::control`]).
    pub fn core(&self) -> Arc<Core> {
        self.0.clone()
    }

    /// Runs `job` with the shared state on a store worker.
    fn later(&self, job: impl FnOnce(&Core) + Send + 'static) {
        let core = self.0.clone();
        self.pool.run(move || job(&core));
    }
}

impl Core {
    /// What `rel` is: from memory, else (with `io`) from the store.
    fn stat(&self, rel: &Path, io: bool) -> Result<std::io::Result<Meta>, Wait> {
        match self.store.stat_cached(rel) {
            Some(r) => Ok(r),
            None if io => Ok(self.store.stat(rel)),
            None => Err(Wait),
        }
    }

    /// The listing of directory `rel` through `format`: from memory, else (with `io`) built.
    fn listing(
        &self,
        rel: &Path,
        format: Option<OutputFormat>,
        io: bool,
    ) -> Result<Arc<super::names::Listing>, Fail> {
        let dir = self.stat(rel, io)?.map_err(|e| io_errno(&e))?;
        if !dir.is_dir() {
            return Err(Errno::ENOTDIR.into());
        }
        if let Some(l) = self.names.cached(rel, &dir, format) {
            return Ok(l);
        }
        if !io {
            return Err(Fail::Wait);
        }
        self.names
            .list_of(&*self.store, rel, &dir, format)
            .map_err(|e| io_errno(&e).into())
    }

    fn stats(&self) -> &Stats {
        &self.sched.stats
    }

    /// The text of `.thumbfs/stats`.
    pub fn stats_json(&self) -> String {
        let (held, evictions) = self.sched.cache.occupancy();
        self.stats().json(
            held.bytes,
            held.entries as usize,
            evictions,
            self.inodes.len(),
        )
    }

    /// Drops what is remembered about source path `rel` (`""`: the whole mount) so that the
    /// next lookup asks the source: the store's and the spec directories' listings of the
    /// directories it affects, and the kernel's negative entries and directory attributes
    /// there (through `notifier`). Returns how many negative entries were invalidated.
    pub fn forget(&self, rel: &Path, notifier: &fuser::Notifier) -> usize {
        self.store.forget(rel);
        self.names.forget(rel);
        let mut gone = Vec::new();
        {
            let mut negatives = self.negatives.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<(u64, OsString)> = negatives.iter().map(|(k, _)| k.clone()).collect();
            for key in keys {
                let drop = match self.inodes.get(key.0) {
                    Some(Node::Dir { rel: dir, .. }) => affected_by(&dir, rel),
                    Some(_) => rel.as_os_str().is_empty(),
                    // The kernel forgot the directory, and its entries with it.
                    None => {
                        negatives.pop(&key);
                        false
                    }
                };
                if drop {
                    negatives.pop(&key);
                    gone.push(key);
                }
            }
        }
        for (parent, name) in &gone {
            if let Err(e) = notifier.inval_entry(INodeNo(*parent), name) {
                tracing::debug!("invalidating entry {name:?} of inode {parent}: {e}");
            }
        }
        for ino in self.inodes.dirs_affected_by(rel) {
            if let Err(e) = notifier.inval_inode(INodeNo(ino), 0, 0) {
                tracing::debug!("invalidating inode {ino}: {e}");
            }
        }
        gone.len()
    }

    /// A spec directory by its name under the root: a preset, or any valid spec.
    fn spec_dir(&self, name: &str) -> Result<Arc<SpecDir>, String> {
        if let Some(d) = self
            .spec_dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(d.clone());
        }
        let preset = self.presets.iter().find(|p| p.name == name);
        if preset.is_none() && self.spec_policy == SpecPolicy::Presets {
            return Err("not a preset (--specs presets)".into());
        }
        let text = preset.map_or(name, |p| p.spec.as_str());
        let mut spec: Spec = text
            .parse()
            .map_err(|e: crate::spec::SpecError| e.to_string())?;
        // `--previews off`: the canonical spec (the render key, the workers' spec) says so.
        spec.exact |= !self.previews && spec.has_thumbnail();
        let dir = Arc::new(SpecDir {
            name: name.to_string(),
            canonical: spec.to_string(),
            spec,
        });
        self.spec_dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(name.to_string(), dir.clone());
        Ok(dir)
    }

    fn meta_bytes(&self, ino: u64) -> Vec<u8> {
        match ino {
            inode::META_README => readme().as_bytes().to_vec(),
            inode::META_STATS if self.open_mode == OpenMode::NoOpen => {
                // One size for every snapshot: a reader's read that finds the end of the
                // file (its attributes asked again, so maybe a newer, longer snapshot) then
                // adds nothing from that snapshot to what it read of the older one.
                let mut text = self.stats_json();
                let pad = STATS_SIZE.saturating_sub(text.len());
                // Before the closing newline.
                text.insert_str(text.len().saturating_sub(1), &" ".repeat(pad));
                text.into_bytes()
            }
            inode::META_STATS => self.stats_json().into_bytes(),
            inode::META_ERRORS => self.stats().errors_text().into_bytes(),
            _ => Vec::new(),
        }
    }

    fn dir_attr(&self, ino: u64) -> FileAttr {
        attr_from(ino, &self.root_meta, FileType::Directory, 0)
    }

    /// Attributes of a node, or the work needed to learn its size; without `io`, only from
    /// memory.
    fn resolve_attr(&self, ino: u64, node: &Node, io: bool) -> Result<AttrOrWait, Fail> {
        match node {
            Node::Root => Ok(AttrOrWait::Attr(self.dir_attr(ino))),
            Node::Meta(m) if *m == inode::META_DIR => Ok(AttrOrWait::Attr(self.dir_attr(ino))),
            Node::Meta(m) => {
                let bytes = self.meta_bytes(*m);
                let mut a = attr_from(ino, &self.root_meta, FileType::RegularFile, 0);
                a.size = bytes.len() as u64;
                a.blocks = a.size.div_ceil(512);
                a.perm = 0o444;
                if *m == inode::META_ERRORS {
                    // It names files (and causes) in directories other users may not list.
                    a.perm = 0o400;
                    // SAFETY: getuid and getgid have no preconditions.
                    (a.uid, a.gid) = unsafe { (libc::getuid(), libc::getgid()) };
                }
                if self.open_mode == OpenMode::NoOpen {
                    // Served from the page cache: a new mtime makes the kernel drop the old
                    // pages (auto_inval_data), and reads slice this very snapshot.
                    a.mtime = SystemTime::now();
                    self.meta_snapshots
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(ino, Arc::new(bytes));
                }
                Ok(AttrOrWait::Estimate(a))
            }
            Node::Dir { rel, .. } => {
                let meta = self
                    .stat(rel, io)?
                    .ok()
                    .filter(|m| m.is_dir())
                    .ok_or(Errno::ENOENT)?;
                Ok(AttrOrWait::Attr(attr_from(
                    ino,
                    &meta,
                    FileType::Directory,
                    0,
                )))
            }
            Node::File { spec, rel, source } => {
                let meta = self
                    .stat(rel, io)?
                    .ok()
                    .filter(|m| m.is_file())
                    .ok_or(Errno::ENOENT)?;
                let key = RenderKey {
                    source: *source,
                    spec: spec.canonical.clone(),
                };
                if let Some(size) = self.sched.known_size(&key) {
                    let mut a = attr_from(ino, &meta, FileType::RegularFile, size);
                    // The version this inode serves, even if the file changed since.
                    a.mtime = time(
                        source.mtime_ns.div_euclid(1_000_000_000),
                        source.mtime_ns.rem_euclid(1_000_000_000),
                    );
                    return Ok(AttrOrWait::Attr(a));
                }
                if meta.id != *source {
                    // An older version, never rendered: it cannot be made any more. The next
                    // lookup of the name gives the new version's inode.
                    return Err(Errno::ENOENT.into());
                }
                if self.stat_mode == StatMode::Estimate && !self.is_open(ino) {
                    let mut a = attr_from(ino, &meta, FileType::RegularFile, meta.len);
                    a.blocks = meta.len.div_ceil(512);
                    return Ok(AttrOrWait::Estimate(a));
                }
                let render = self.sched.get(&key, self.source(rel), &spec.spec);
                Ok(AttrOrWait::Wait(
                    render,
                    attr_from(ino, &meta, FileType::RegularFile, 0),
                ))
            }
        }
    }

    fn is_open(&self, ino: u64) -> bool {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|(i, _)| *i == ino)
    }

    /// Finds a child of `parent` by name; without `io`, only from memory.
    fn child(&self, parent: &Node, name: &OsStr, io: bool) -> Result<Node, Fail> {
        let name_str = name.to_str();
        match parent {
            Node::Root => {
                let n = name_str.ok_or(Errno::ENOENT)?;
                if n == ".thumbfs" {
                    return Ok(Node::Meta(inode::META_DIR));
                }
                match self.spec_dir(n) {
                    Ok(spec) => Ok(Node::Dir {
                        spec,
                        rel: PathBuf::new(),
                    }),
                    Err(why) => {
                        tracing::debug!("lookup {n:?}: not a spec: {why}");
                        Err(Errno::ENOENT.into())
                    }
                }
            }
            Node::Meta(m) if *m == inode::META_DIR => match name_str {
                Some("README") => Ok(Node::Meta(inode::META_README)),
                Some("stats") => Ok(Node::Meta(inode::META_STATS)),
                Some("errors") => Ok(Node::Meta(inode::META_ERRORS)),
                _ => Err(Errno::ENOENT.into()),
            },
            Node::Dir { spec, rel } => {
                let listing = self.listing(rel, spec.spec.format, io)?;
                let entry = listing.find(name).ok_or_else(|| {
                    tracing::debug!(
                        "lookup {}/{:?}: no such image",
                        spec.name,
                        Path::new(rel).join(name)
                    );
                    Errno::ENOENT
                })?;
                Ok(if entry.is_dir() {
                    Node::Dir {
                        spec: spec.clone(),
                        rel: entry.rel.clone(),
                    }
                } else {
                    // A fresh stat: the listing is cached by directory identity, which does
                    // not change when a file is rewritten in place.
                    let meta = self
                        .stat(&entry.rel, io)?
                        .ok()
                        .filter(|m| m.is_file())
                        .ok_or(Errno::ENOENT)?;
                    Node::File {
                        spec: spec.clone(),
                        rel: entry.rel.clone(),
                        source: meta.id,
                    }
                })
            }
            _ => Err(Errno::ENOTDIR.into()),
        }
    }

    /// Answers a lookup, or gives the reply back when that needs store I/O and `io` is off.
    fn lookup_in(
        &self,
        parent: u64,
        pnode: &Node,
        name: &OsStr,
        io: bool,
        reply: ReplyEntry,
    ) -> Option<ReplyEntry> {
        let node = match self.child(pnode, name, io) {
            Ok(n) => n,
            Err(Fail::Wait) => return Some(reply),
            Err(Fail::Errno(Errno::ENOENT)) if !self.negative_ttl.is_zero() => {
                // Inode 0 with an entry lifetime: the kernel keeps the miss that long.
                self.negatives
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .put((parent, name.to_os_string()), ());
                let attr = attr_from(0, &self.root_meta, FileType::RegularFile, 0);
                reply.entry_with_ttls(&Duration::ZERO, &self.negative_ttl, &attr, Generation(0));
                return None;
            }
            Err(Fail::Errno(e)) => {
                reply.error(e);
                return None;
            }
        };
        // Counted now, given back if the reply is an error (the kernel counts entries only).
        let ino = self.inodes.lookup(node.clone());
        let attr = match self.resolve_attr(ino, &node, io) {
            Err(Fail::Wait) => {
                self.inodes.forget(ino, 1);
                return Some(reply);
            }
            Err(Fail::Errno(e)) => Err(e),
            Ok(a) => Ok(a),
        };
        let inodes = self.inodes.clone();
        with_attr(attr, move |r| match r {
            Ok((a, ttl)) => reply.entry_with_ttls(&ttl, &TTL, &a, Generation(0)),
            Err(e) => {
                inodes.forget(ino, 1);
                reply.error(e)
            }
        });
        None
    }

    /// Answers a getattr, or gives the reply back when that needs store I/O and `io` is off.
    fn getattr_of(&self, ino: u64, node: &Node, io: bool, reply: ReplyAttr) -> Option<ReplyAttr> {
        let attr = match self.resolve_attr(ino, node, io) {
            Err(Fail::Wait) => return Some(reply),
            Err(Fail::Errno(e)) => Err(e),
            Ok(a) => Ok(a),
        };
        with_attr(attr, move |r| match r {
            Ok((a, ttl)) => reply.attr(&ttl, &a),
            Err(e) => reply.error(e),
        });
        None
    }

    /// Answers a readdir, or gives the reply back when that needs store I/O and `io` is off.
    fn readdir_of(
        &self,
        ino: u64,
        node: &Node,
        offset: u64,
        io: bool,
        mut reply: ReplyDirectory,
    ) -> Option<ReplyDirectory> {
        let mut entries: Vec<(u64, FileType, OsString)> = vec![
            (ino, FileType::Directory, ".".into()),
            (inode::ROOT, FileType::Directory, "..".into()),
        ];
        match node {
            Node::Root => {
                entries.push((inode::META_DIR, FileType::Directory, ".thumbfs".into()));
                for Preset { name, .. } in &self.presets {
                    if let Ok(spec) = self.spec_dir(name) {
                        let i = self.inodes.listed(&Node::Dir {
                            spec,
                            rel: PathBuf::new(),
                        });
                        entries.push((i, FileType::Directory, name.into()));
                    }
                }
            }
            Node::Meta(m) if *m == inode::META_DIR => {
                for (i, n) in [
                    (inode::META_README, "README"),
                    (inode::META_STATS, "stats"),
                    (inode::META_ERRORS, "errors"),
                ] {
                    entries.push((i, FileType::RegularFile, n.into()));
                }
            }
            Node::Dir { spec, rel } => {
                let listing = match self.listing(rel, spec.spec.format, io) {
                    Ok(l) => l,
                    Err(Fail::Wait) => return Some(reply),
                    Err(Fail::Errno(e)) => {
                        reply.error(e);
                        return None;
                    }
                };
                for e in &listing.entries {
                    let (node, kind) = if e.is_dir() {
                        (
                            Node::Dir {
                                spec: spec.clone(),
                                rel: e.rel.clone(),
                            },
                            FileType::Directory,
                        )
                    } else {
                        (
                            Node::File {
                                spec: spec.clone(),
                                rel: e.rel.clone(),
                                source: e.meta.id,
                            },
                            FileType::RegularFile,
                        )
                    };
                    entries.push((self.inodes.listed(&node), kind, e.name.clone()));
                }
            }
            _ => {
                reply.error(Errno::ENOTDIR);
                return None;
            }
        }
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
        None
    }

    /// Opens a transformed image, or gives the reply back when the source's read check
    /// needs store I/O and `io` is off.
    fn open_file(&self, ino: u64, node: Node, io: bool, reply: ReplyOpen) -> Option<ReplyOpen> {
        let Node::File { spec, rel, source } = node else {
            reply.error(Errno::EISDIR);
            return None;
        };
        // Opening needs read permission on the source, like any file.
        let readable = match self.store.check_readable_cached(&rel) {
            Some(r) => r,
            None if io => self.store.check_readable(&rel),
            None => return Some(reply),
        };
        if let Err(e) = readable {
            reply.error(io_errno(&e));
            return None;
        }
        let key = RenderKey {
            source,
            spec: spec.canonical.clone(),
        };
        // An inode serves one source version (a changed file is a new inode), so its
        // cached pages always hold this output: keep them. If that version is gone and
        // not cached, the render fails with EIO on read.
        let render = self.sched.get(&key, self.source(&rel), &spec.spec);
        let flags = if render.finished_size().is_none() {
            // Still rendering: reads arrive as the caller sizes them and wait for bytes.
            FopenFlags::FOPEN_DIRECT_IO
        } else {
            FopenFlags::FOPEN_KEEP_CACHE
        };
        let fh = self.new_fh(ino, Handle::Render(render));
        reply.opened(FileHandle(fh), flags);
        None
    }

    /// What a read without a handle (no-open mode) reads: the output of the inode's source
    /// version (pinned by a recent read, from memory, else rendered again: outputs are
    /// deterministic; if the source changed since, that render fails with EIO), or a
    /// `.thumbfs` snapshot.
    fn by_inode(&self, ino: u64) -> Result<Arc<Render>, Option<Arc<Vec<u8>>>> {
        match self.inodes.get(ino) {
            Some(Node::File { spec, rel, source }) => {
                let key = RenderKey {
                    source,
                    spec: spec.canonical.clone(),
                };
                Ok(self
                    .read_pins
                    .get_or(ino, || self.sched.get(&key, self.source(&rel), &spec.spec)))
            }
            Some(Node::Meta(m)) if m != inode::META_DIR => {
                let snap = self
                    .meta_snapshots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&ino)
                    .cloned();
                Err(Some(snap.unwrap_or_else(|| Arc::new(self.meta_bytes(m)))))
            }
            _ => Err(None),
        }
    }

    /// What a render of `rel` reads.
    fn source(&self, rel: &Path) -> SourceRef {
        SourceRef {
            store: self.store.clone(),
            rel: rel.to_path_buf(),
        }
    }

    fn new_fh(&self, ino: u64, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, (ino, h));
        fh
    }
}

/// Attributes now, an estimate, or a render to wait for (with the attributes minus size).
enum AttrOrWait {
    Attr(FileAttr),
    Estimate(FileAttr),
    Wait(Arc<Render>, FileAttr),
}

/// Sends attributes through `send` now or when the render ends (on the render's thread).
fn with_attr(
    result: Result<AttrOrWait, Errno>,
    send: impl FnOnce(Result<(FileAttr, Duration), Errno>) + Send + 'static,
) {
    match result {
        Err(e) => send(Err(e)),
        Ok(AttrOrWait::Attr(a)) => {
            let ttl = if a.kind == FileType::RegularFile {
                FINISHED_TTL
            } else {
                TTL
            };
            send(Ok((a, ttl)))
        }
        Ok(AttrOrWait::Estimate(a)) => send(Ok((a, Duration::ZERO))),
        Ok(AttrOrWait::Wait(render, mut a)) => render.when_done(move |r| match r {
            Ok(size) => {
                a.size = size;
                a.blocks = size.div_ceil(512);
                send(Ok((a, FINISHED_TTL)))
            }
            Err(e) => send(Err(errno(e))),
        }),
    }
}

impl Filesystem for ThumbFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        for cap in [
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP,
            // Cached pages go when a getattr reports a new mtime or size (.thumbfs files).
            InitFlags::FUSE_AUTO_INVAL_DATA,
        ] {
            if config.add_capabilities(cap).is_err() {
                tracing::debug!("kernel lacks {cap:?}");
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(pnode) = self.inodes.get(parent.0) else {
            return reply.error(Errno::ENOENT);
        };
        if let Some(reply) = self.lookup_in(parent.0, &pnode, name, false, reply) {
            let name = name.to_os_string();
            self.later(move |core| {
                core.lookup_in(parent.0, &pnode, &name, true, reply);
            });
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some(node) = self.inodes.get(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        if let Some(reply) = self.getattr_of(ino.0, &node, false, reply) {
            self.later(move |core| {
                core.getattr_of(ino.0, &node, true, reply);
            });
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        if self.open_mode == OpenMode::NoOpen {
            // The kernel takes this as "opens always succeed" and stops sending them for this
            // connection (the read-only mount and default_permissions still check access).
            return reply.error(Errno::ENOSYS);
        }
        let node = match self.inodes.get(ino.0) {
            Some(n) => n,
            None => return reply.error(Errno::ENOENT),
        };
        match node {
            Node::Meta(m) if m != inode::META_DIR => {
                let fh = self.new_fh(ino.0, Handle::Bytes(Arc::new(self.meta_bytes(m))));
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
            }
            node @ Node::File { .. } => {
                if let Some(reply) = self.open_file(ino.0, node.clone(), false, reply) {
                    self.later(move |core| {
                        core.open_file(ino.0, node, true, reply);
                    });
                }
            }
            Node::Dir { .. } | Node::Root | Node::Meta(_) => reply.error(Errno::EISDIR),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let handle = if fh.0 == 0 && self.open_mode == OpenMode::NoOpen {
            self.by_inode(ino.0)
        } else {
            let h = self.handles.lock().unwrap_or_else(|e| e.into_inner());
            match h.get(&fh.0) {
                Some((_, Handle::Render(r))) => Ok(r.clone()),
                Some((_, Handle::Bytes(b))) => Err(Some(b.clone())),
                None => Err(None),
            }
        };
        match handle {
            Ok(render) => {
                let stats = self.sched.stats.clone();
                render.read(offset, size as usize, move |r| match r {
                    Ok(bytes) => {
                        stats
                            .bytes_served
                            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        reply.data(&bytes)
                    }
                    Err(e) => reply.error(errno(e)),
                });
            }
            Err(Some(bytes)) => {
                let start = (offset as usize).min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                reply.data(&bytes[start..end]);
            }
            Err(None) => reply.error(Errno::EBADF),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.inodes.get(ino.0) {
            Some(Node::File { .. }) => reply.error(Errno::ENOTDIR),
            Some(Node::Meta(m)) if m != inode::META_DIR => reply.error(Errno::ENOTDIR),
            Some(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let Some(node) = self.inodes.get(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        if let Some(reply) = self.readdir_of(ino.0, &node, offset, false, reply) {
            self.later(move |core| {
                core.readdir_of(ino.0, &node, offset, true, reply);
            });
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if mask.contains(AccessFlags::W_OK) {
            return reply.error(Errno::EROFS);
        }
        match self.inodes.get(ino.0) {
            Some(_) => reply.ok(),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    /// No ioctl means anything here. Answered at once and without a log line: Python's
    /// `open()` asks TCGETS (isatty) of every file, and fuser's default logs each one as "not
    /// implemented" and answers ENOSYS, which the kernel does not remember either.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }
}
