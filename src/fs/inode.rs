//! The inode table: every path the kernel has looked up gets a number that stays the same for
//! the life of the mount.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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
    },
}

/// Two-way map between inode numbers and nodes.
pub struct Inodes {
    inner: Mutex<Table>,
}

struct Table {
    by_ino: HashMap<u64, Node>,
    by_node: HashMap<Node, u64>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        let mut by_ino = HashMap::new();
        by_ino.insert(ROOT, Node::Root);
        for m in [META_DIR, META_README, META_STATS, META_ERRORS] {
            by_ino.insert(m, Node::Meta(m));
        }
        let by_node = by_ino.iter().map(|(k, v)| (v.clone(), *k)).collect();
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
        self.lock().by_ino.get(&ino).cloned()
    }

    /// The inode number of a node, allocated on first sight.
    pub fn ino(&self, node: Node) -> u64 {
        let mut t = self.lock();
        if let Some(&i) = t.by_node.get(&node) {
            return i;
        }
        let i = t.next;
        t.next += 1;
        t.by_ino.insert(i, node.clone());
        t.by_node.insert(node, i);
        i
    }
}
