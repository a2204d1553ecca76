//! The FUSE side: inode table, renders, cache (placeholder until the mount lands).

/// Options of `thumbfs mount`.
#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// Directory of images to serve (never written).
    pub src: std::path::PathBuf,
    /// Empty directory to mount on.
    pub mnt: std::path::PathBuf,
}

/// Runs `thumbfs mount`; returns the process exit code.
pub fn run(args: MountArgs) -> i32 {
    eprintln!(
        "thumbfs mount {} {}: not built yet",
        args.src.display(),
        args.mnt.display()
    );
    2
}
