//! The inode table: every node the kernel holds gets a number, counted by lookups and
//! released on FORGET, so memory follows what the kernel caches, not what was ever walked.
//!
//! A file's node includes its source's identity: when the source changes, the same path
//! becomes a new inode, so the kernel's page cache of the old output can never be mixed
//! with the new one, and readers of the old inode keep reading (or fail with EIO).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::cache::SourceId;
use crate::spec::Spec;

/// Inode of the mount root.
pub const ROOT: u64 = 1;
/// Inode of the hidden `.thumbfs` directory.
pub const META_DIR: u64 = 2;
/// Inode of `.thumbfs/README`.
pub const META_README: u64 = 3;
/// Inode of `.thumbfs/stats`.
pub const META_STATS: u64 = 4;
/// Inode of `.thumbfs/errors`.
pub const META_ERRORS: u64 = 5;
const FIRST_FREE: u64 = 16;

/// A spec directory: the name used in the path and the parsed spec.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SpecDir {
    /// The name as it appears under the mount root (a preset name or a spec).
    pub name: String,
    /// The parsed spec.
    pub spec: Spec,
    /// Canonical spelling: aliases share renders through it.
    pub canonical: String,
}

/// What an inode stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// The mount root.
    Root,
    /// `.thumbfs` and its files.
    Meta(u64),
    /// A directory under a spec directory (`rel` empty for the spec directory itself).
    Dir {
        /// The spec directory.
        spec: Arc<SpecDir>,
        /// Path relative to the source root.
        rel: PathBuf,
    },
    /// A transformed image.
    File {
        /// The spec directory.
        spec: Arc<SpecDir>,
        /// The source image, relative to the source root.
        rel: PathBuf,
        /// The source's identity when looked up: the version this inode serves.
        source: SourceId,
    },
}

/// Two-way map between inode numbers and nodes, with the kernel's lookup counts.
pub struct Inodes {
    inner: Mutex<Table>,
}

struct Table {
    /// Node and the number of lookups the kernel has not yet forgotten.
    by_ino: HashMap<u64, (Node, u64)>,
    by_node: HashMap<Node, u64>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        let mut by_ino = HashMap::new();
        by_ino.insert(ROOT, (Node::Root, 1));
        for m in [META_DIR, META_README, META_STATS, META_ERRORS] {
            by_ino.insert(m, (Node::Meta(m), 1));
        }
        let by_node = by_ino.iter().map(|(k, (v, _))| (v.clone(), *k)).collect();
        Inodes {
            inner: Mutex::new(Table {
                by_ino,
                by_node,
                next: FIRST_FREE,
            }),
        }
    }
}

impl Inodes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node of an inode number.
    pub fn get(&self, ino: u64) -> Option<Node> {
        self.lock().by_ino.get(&ino).map(|(n, _)| n.clone())
    }

    /// The inode number of a node for a lookup reply: allocated on first sight, and counted
    /// until the kernel forgets it.
    pub fn lookup(&self, node: Node) -> u64 {
        let mut t = self.lock();
        if let Some(&i) = t.by_node.get(&node) {
            if let Some((_, n)) = t.by_ino.get_mut(&i) {
                *n += 1;
            }
            return i;
        }
        let i = t.next;
        t.next += 1;
        t.by_ino.insert(i, (node.clone(), 1));
        t.by_node.insert(node, i);
        i
    }

    /// The number a directory listing shows for a node: its inode if the kernel holds one,
    /// else a stable number from its hash (high bit set, never an allocated inode). Listings
    /// allocate nothing: only lookups create inodes the kernel will forget.
    pub fn listed(&self, node: &Node) -> u64 {
        if let Some(&i) = self.lock().by_node.get(node) {
            return i;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        node.hash(&mut h);
        h.finish() | (1 << 63)
    }

    /// The kernel dropped `n` lookups of `ino`; at zero the node is released.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino < FIRST_FREE {
            return;
        }
        let mut t = self.lock();
        let gone = match t.by_ino.get_mut(&ino) {
            Some((_, count)) => {
                *count = count.saturating_sub(n);
                *count == 0
            }
            None => false,
        };
        if gone {
            if let Some((node, _)) = t.by_ino.remove(&ino) {
                t.by_node.remove(&node);
            }
        }
    }

    /// The directories held whose listing `rel` changing may make stale
    /// ([`crate::store::affected_by`]).
    pub fn dirs_affected_by(&self, rel: &std::path::Path) -> Vec<u64> {
        self.lock()
            .by_ino
            .iter()
            .filter(|(_, (n, _))| {
                matches!(n, Node::Dir { rel: d, .. } if crate::store::affected_by(d, rel))
            })
            .map(|(i, _)| *i)
            .collect()
    }

    /// Inodes held (for `.thumbfs/stats`).
    pub fn len(&self) -> usize {
        self.lock().by_ino.len()
    }

    /// Never true: the root always exists.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(rel: &str) -> Node {
        Node::Dir {
            spec: Arc::new(SpecDir {
                name: "w64".into(),
                spec: "w64".parse().unwrap(),
                canonical: "w64".into(),
            }),
            rel: rel.into(),
        }
    }

    #[test]
    fn inodes_live_until_every_lookup_is_forgotten() {
        let t = Inodes::default();
        let base = t.len();
        let a = t.lookup(dir("a"));
        assert_eq!(t.lookup(dir("a")), a, "same node, same inode");
        assert_ne!(t.listed(&dir("b")), a);
        assert_eq!(t.len(), base + 1, "listing allocates nothing");
        t.forget(a, 1);
        assert_eq!(t.get(a), Some(dir("a")));
        t.forget(a, 1);
        assert_eq!(t.get(a), None);
        assert_eq!(t.len(), base);
        t.forget(ROOT, 5);
        assert_eq!(t.get(ROOT), Some(Node::Root), "fixed inodes stay");
    }
}
