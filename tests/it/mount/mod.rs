//! The FUSE mount, for real: reads, names, formats, changes under readers, streaming, inodes,
//! lifecycle, load, control (`thumbfs ctl`), open modes.

mod changes;
mod control;
mod formats;
mod inodes;
mod lifecycle;
mod names;
mod nginx;
mod open_mode;
mod reads;
mod streaming;
mod stress;
