//! The FUSE mount, for real: reads, names, changes under readers, lifecycle, load.

mod changes;
mod reads;
mod stress;
