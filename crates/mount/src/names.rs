//! What a spec directory shows of a source directory: subdirectories and images (recognised by
//! magic bytes), each image under its output name.
//!
//! The output name swaps the extension when the spec changes the format (`photo.jpg` under
//! `png/` is `photo.png`); when two sources would map to one name, both keep their full name
//! plus the new extension (`photo.jpg.png`, `photo.gif.png`).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::mem::size_of;
use std::num::NonZeroUsize;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::cache::SourceId;
use crate::bounded::{ByteLru, ENTRY_OVERHEAD};
use crate::codec::{self, InputFormat};
use crate::flight::Flights;
use crate::spec::OutputFormat;
use crate::store::{copy_error, Meta, Store};

/// Sniffs at once against a remote store (each is a round trip).
const PARALLEL_SNIFFS: usize = 16;

/// One visible entry of a spec directory.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name shown in the spec directory.
    pub name: OsString,
    /// Path relative to the source root.
    pub rel: PathBuf,
    /// Source metadata (symlinks followed).
    pub meta: Meta,
    /// The image format, `None` for a directory.
    pub format: Option<InputFormat>,
}

impl Entry {
    /// True for a subdirectory.
    pub fn is_dir(&self) -> bool {
        self.format.is_none()
    }
}

/// A directory's entries in name order, with a name index.
#[derive(Debug, Default)]
pub struct Listing {
    /// Entries sorted by output name.
    pub entries: Vec<Entry>,
    by_name: HashMap<OsString, usize>,
}

impl Listing {
    /// Finds an entry by its shown name.
    pub fn find(&self, name: &OsStr) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// Bytes held, for the cache's budget.
    fn cost(&self) -> usize {
        let per = size_of::<Entry>() + size_of::<(OsString, usize)>() + 4 * size_of::<usize>();
        ENTRY_OVERHEAD
            + size_of::<Self>()
            + self
                .entries
                .iter()
                .map(|e| per + 2 * e.name.len() + e.rel.as_os_str().len())
                .sum::<usize>()
    }
}

/// A directory (relative path and identity) seen through one output format.
type ListingKey = (PathBuf, SourceId, Option<OutputFormat>);

/// A listing shared by every caller of one build (an error as its errno and text).
type Shared = Result<Arc<Listing>, Arc<std::io::Error>>;

/// Memory for listings (and a share of it for formats) unless [`Names::new`] says otherwise.
pub const DEFAULT_BUDGET: usize = 64 << 20;

/// What one remembered format costs.
const FORMAT_COST: usize =
    ENTRY_OVERHEAD + size_of::<SourceId>() + size_of::<Option<InputFormat>>();

/// Remembers formats (by source identity) and listings (by directory identity), the least
/// recently used going first beyond a memory budget.
pub struct Names {
    formats: Mutex<LruCache<SourceId, Option<InputFormat>>>,
    listings: Mutex<ByteLru<ListingKey, Arc<Listing>>>,
    /// Builds in progress: one per directory and format, however many lookups wait.
    building: Flights<ListingKey, Shared>,
}

impl Default for Names {
    fn default() -> Self {
        Names::new(DEFAULT_BUDGET)
    }
}

impl Names {
    /// Keeps at most `budget` bytes of listings, and as many formats as `budget / 8` bytes
    /// hold.
    pub fn new(budget: usize) -> Self {
        let formats = NonZeroUsize::new(budget / 8 / FORMAT_COST).unwrap_or(NonZeroUsize::MIN);
        Names {
            formats: Mutex::new(LruCache::new(formats)),
            listings: Mutex::new(ByteLru::new(budget)),
            building: Flights::default(),
        }
    }

    /// Lists directory `rel` of `store` as seen through a spec whose output format is
    /// `format` (`None`: keep each image's own format where a saver exists).
    pub fn list(
        &self,
        store: &dyn Store,
        rel: &Path,
        format: Option<OutputFormat>,
    ) -> std::io::Result<Arc<Listing>> {
        let dir_meta = store.stat(rel)?;
        self.list_of(store, rel, &dir_meta, format)
    }

    /// The listing of directory `rel` (whose metadata is `dir`) if it is in memory.
    pub fn cached(
        &self,
        rel: &Path,
        dir: &Meta,
        format: Option<OutputFormat>,
    ) -> Option<Arc<Listing>> {
        let key = (rel.to_path_buf(), dir.id, format);
        self.listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
    }

    /// Drops the listings of directories that `rel` changing may make stale (see
    /// [`crate::store::affected_by`]; `""`: all of them).
    pub fn forget(&self, rel: &Path) {
        self.listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(dir, _, _)| !crate::store::affected_by(dir, rel));
    }

    /// [`Names::list`] of a directory already stat'ed as `dir`: from memory, else built
    /// (once however many callers ask at the same time).
    pub fn list_of(
        &self,
        store: &dyn Store,
        rel: &Path,
        dir: &Meta,
        format: Option<OutputFormat>,
    ) -> std::io::Result<Arc<Listing>> {
        if !dir.is_dir() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        if let Some(l) = self.cached(rel, dir, format) {
            return Ok(l);
        }
        let key = (rel.to_path_buf(), dir.id, format);
        let build = || -> Shared {
            // Built by a flight that landed while this caller came in.
            if let Some(l) = self.cached(rel, dir, format) {
                return Ok(l);
            }
            let listing = Arc::new(self.build(store, rel, format).map_err(Arc::new)?);
            let cost = listing.cost();
            self.listings.lock().unwrap_or_else(|e| e.into_inner()).put(
                key.clone(),
                listing.clone(),
                cost,
            );
            Ok(listing)
        };
        self.building
            .run(key.clone(), build)
            .map_err(|e| copy_error(&e))
    }

    fn build(
        &self,
        store: &dyn Store,
        rel: &Path,
        format: Option<OutputFormat>,
    ) -> std::io::Result<Listing> {
        let items: Vec<(OsString, Meta)> = store
            .list(rel)?
            .into_iter()
            .filter(|(name, _)| usable_name(name))
            .collect();
        let formats = self.formats_of(store, rel, &items);
        let mut found: Vec<(OsString, Entry, Option<&'static str>)> = Vec::new();
        for ((name, meta), input) in items.into_iter().zip(formats) {
            let entry_rel = rel.join(&name);
            if meta.is_dir() {
                found.push((
                    name.clone(),
                    Entry {
                        name,
                        rel: entry_rel,
                        meta,
                        format: None,
                    },
                    None,
                ));
            } else if let Some(input) = input {
                let out = format.unwrap_or_else(|| input.default_output());
                found.push((
                    name.clone(),
                    Entry {
                        name,
                        rel: entry_rel,
                        meta,
                        format: Some(input),
                    },
                    Some(out.token()),
                ));
            }
        }
        // Proposed names, then resolve collisions by keeping the full original name.
        let proposed: Vec<OsString> = found
            .iter()
            .map(|(name, _, ext)| match ext {
                Some(ext) => renamed(name, ext),
                None => name.clone(),
            })
            .collect();
        let mut count: HashMap<&OsString, usize> = HashMap::new();
        for p in &proposed {
            *count.entry(p).or_default() += 1;
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(found.len());
        for ((orig, mut entry, ext), p) in found.iter().cloned().zip(&proposed) {
            entry.name = match ext {
                Some(ext) if count[p] > 1 && *p != orig => {
                    let mut full = orig.clone().into_vec();
                    full.push(b'.');
                    full.extend_from_slice(ext.as_bytes());
                    OsString::from_vec(full)
                }
                _ => p.clone(),
            };
            entries.push(entry);
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        Ok(Listing { entries, by_name })
    }

    /// The formats of the files among `items` (in order; `None` for directories and
    /// non-images), sniffing those not yet known, in parallel on a remote store.
    fn formats_of(
        &self,
        store: &dyn Store,
        rel: &Path,
        items: &[(OsString, Meta)],
    ) -> Vec<Option<InputFormat>> {
        let mut out: Vec<Option<Option<InputFormat>>> = {
            let mut known = self.formats.lock().unwrap_or_else(|e| e.into_inner());
            items
                .iter()
                .map(|(_, m)| {
                    if m.is_dir() {
                        Some(None)
                    } else {
                        known.get(&m.id).copied()
                    }
                })
                .collect()
        };
        let todo: Vec<usize> = (0..items.len()).filter(|&i| out[i].is_none()).collect();
        let sniff = |i: usize| {
            let (name, meta) = &items[i];
            self.sniff(store, &rel.join(name), meta)
        };
        let found: Vec<Option<InputFormat>> = if store.is_remote() && todo.len() > 1 {
            let chunk = todo.len().div_ceil(PARALLEL_SNIFFS);
            std::thread::scope(|s| {
                let handles: Vec<_> = todo
                    .chunks(chunk)
                    .map(|part| s.spawn(move || part.iter().map(|&i| sniff(i)).collect::<Vec<_>>()))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        } else {
            todo.iter().map(|&i| sniff(i)).collect()
        };
        for (&i, f) in todo.iter().zip(found) {
            out[i] = Some(f);
        }
        out.into_iter().map(Option::flatten).collect()
    }

    /// The image format of one file by its magic bytes, remembered per source identity.
    pub fn format_of(&self, store: &dyn Store, rel: &Path, meta: &Meta) -> Option<InputFormat> {
        if let Some(f) = self
            .formats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&meta.id)
        {
            return *f;
        }
        self.sniff(store, rel, meta)
    }

    fn sniff(&self, store: &dyn Store, rel: &Path, meta: &Meta) -> Option<InputFormat> {
        let head = match store.head(rel, &meta.id, codec::SNIFF_LEN) {
            Ok(h) => h,
            Err(e) => {
                // Not remembered: a transient failure must not hide the file for good.
                tracing::debug!("{}: sniffing: {e}", rel.display());
                return None;
            }
        };
        let format = codec::detect(&head);
        self.formats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(meta.id, format);
        format
    }
}

/// Names a directory entry can have: an object key may hold empty, `.` or `..` segments,
/// which no path can name.
fn usable_name(name: &OsStr) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.as_bytes().contains(&b'/'))
}

/// `name` with its extension replaced by `ext` (kept when it already means that format).
fn renamed(name: &OsStr, ext: &str) -> OsString {
    let path = Path::new(name);
    let current = path.extension().and_then(|e| e.to_str());
    if let Some(cur) = current {
        if OutputFormat::from_extension(cur) == OutputFormat::from_extension(ext) {
            return name.to_os_string();
        }
    }
    let stem = match current {
        Some(_) => path.file_stem().unwrap_or(name),
        None => name,
    };
    let mut out = stem.as_bytes().to_vec();
    out.push(b'.');
    out.extend_from_slice(ext.as_bytes());
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn extensions_follow_the_output_format() {
        assert_eq!(renamed(OsStr::new("a.jpg"), "png"), "a.png");
        assert_eq!(renamed(OsStr::new("a.JPEG"), "jpg"), "a.JPEG");
        assert_eq!(renamed(OsStr::new("noext"), "png"), "noext.png");
        assert_eq!(renamed(OsStr::new("x.tiff"), "tif"), "x.tiff");
    }

    #[test]
    fn collisions_keep_the_full_name_and_non_images_are_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let jpg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0];
        fs::write(dir.path().join("photo.jpg"), jpg).unwrap();
        fs::write(dir.path().join("photo.gif"), b"GIF89a....").unwrap();
        fs::write(dir.path().join("other.jpeg"), jpg).unwrap();
        fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let names = Names::default();
        let store = crate::store::LocalStore::new(dir.path()).unwrap();
        let l = names
            .list(&store, Path::new(""), Some(OutputFormat::Png))
            .unwrap();
        let shown: Vec<_> = l.entries.iter().map(|e| e.name.clone()).collect();
        assert_eq!(
            shown,
            ["other.png", "photo.gif.png", "photo.jpg.png", "sub"]
        );
        assert_eq!(
            l.find(OsStr::new("photo.jpg.png")).unwrap().rel,
            Path::new("photo.jpg")
        );
        let l = names.list(&store, Path::new(""), None).unwrap();
        let shown: Vec<_> = l.entries.iter().map(|e| e.name.clone()).collect();
        // GIF has its own saver: a GIF stays a GIF (animations keep moving).
        assert_eq!(shown, ["other.jpeg", "photo.gif", "photo.jpg", "sub"]);
    }
}
