//! The command line: convert and info, warm, the mount helper, systemd and packaging files.

mod convert;
mod package;
mod setup;
