//! What names one output in every tier: the source's identity and the canonical spec, hashed
//! with our version so that no build serves another build's bytes.

use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

pub use thumbfs_core::SourceId;

/// What identifies one output: the source's identity and the canonical spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenderKey {
    /// Source identity.
    pub source: SourceId,
    /// Canonical spelling of the spec (aliases share it).
    pub spec: String,
}

impl RenderKey {
    /// A stable 64-bit hash (file names in the disk cache): also covers our version and
    /// [`OUTPUT_REVISION`](crate::pipeline::OUTPUT_REVISION), so a build that encodes
    /// differently never serves an older build's output.
    pub fn hash(&self) -> u64 {
        xxh3_64(self.text().as_bytes())
    }

    /// The same as [`RenderKey::hash`] on 128 bits: names objects in the shared tier, where
    /// many hosts' outputs meet and 64 bits would make a collision plausible.
    pub fn hash128(&self) -> u128 {
        xxh3_128(self.text().as_bytes())
    }

    fn text(&self) -> String {
        let s = &self.source;
        format!(
            "{}|{}|{}|{}|{}|{}.{}",
            s.dev,
            s.ino,
            s.size,
            s.mtime_ns,
            self.spec,
            env!("CARGO_PKG_VERSION"),
            crate::pipeline::OUTPUT_REVISION
        )
    }
}
