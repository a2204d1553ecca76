//! The FUSE side: `thumbfs mount SRC MNT`, its options, start-up checks, daemonising and
//! clean unmounting. The filesystem itself is in [`filesystem`].

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub mod cache;
pub mod filesystem;
pub mod inode;
pub mod names;
pub mod render;
pub mod scheduler;
pub mod stats;

use crate::pipeline::RenderOptions;
use filesystem::{StatMode, ThumbFs};

/// Presets listed in the mount root when no others are given.
pub const DEFAULT_PRESETS: &[(&str, &str)] = &[
    ("thumb", "256x256"),
    ("small", "w640_q80"),
    ("medium", "w1280_q85"),
    ("png", "png"),
];

/// Options of `thumbfs mount`.
#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// Directory of images to serve (never written).
    pub src: PathBuf,
    /// Empty directory to mount on.
    pub mnt: PathBuf,
    /// Stay in the foreground (default: detach once mounted).
    #[arg(short = 'f', long)]
    pub foreground: bool,
    /// A named spec listed in the mount root, NAME=SPEC (repeatable; replaces the defaults).
    #[arg(long = "preset", value_name = "NAME=SPEC")]
    pub presets: Vec<String>,
    /// A file of NAME=SPEC lines (# comments allowed), added to --preset.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Memory for finished outputs, e.g. 256M, 1G.
    #[arg(long, default_value = "256M", value_parser = parse_size, value_name = "SIZE")]
    pub cache_mem: u64,
    /// Keep finished outputs and their sizes here across mounts.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Disk space for --cache-dir.
    #[arg(long, default_value = "1G", value_parser = parse_size, value_name = "SIZE")]
    pub cache_disk: u64,
    /// `exact`: a stat renders the file to report its true size (safe for every tool);
    /// `estimate`: report the source size until first open (fast `ls -l` on huge trees).
    #[arg(long, value_enum, default_value = "exact")]
    pub stat: StatMode,
    /// Renders run at once (default: number of cores); more wait in a queue.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = 200_000_000, value_name = "N")]
    pub max_pixels: u64,
    /// Fail a render (EIO) after this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub render_timeout: u64,
    /// FUSE mount options, comma-separated (`allow_other`, `allow_root`, `default_permissions`,
    /// `noatime`, `fsname=NAME`, ...), as for sshfs.
    #[arg(short = 'o', value_name = "OPTS")]
    pub options: Vec<String>,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Parses `512M`, `1G`, `4096`, `64k` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("{s}: unknown unit {c} (use K, M, G or T)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s}: not a size (e.g. 512M)"))?;
    n.checked_mul(mult).ok_or_else(|| format!("{s}: too large"))
}

/// glibc gives each busy thread its own malloc arena and rarely hands their memory back:
/// with FUSE threads, render workers and decode threads that is tens of MiB over the cache
/// budget (tests/stress.rs: peak RSS 178 MiB with the default, 126 MiB with two arenas).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before our threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Runs `thumbfs mount`; returns the process exit code.
pub fn run(args: MountArgs) -> i32 {
    init_logging(args.verbose);
    limit_malloc_arenas();
    let (root, presets) = match check(&args) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("thumbfs mount: {msg}");
            return 2;
        }
    };
    // Detach before any thread exists; the parent waits to hear whether the mount worked.
    let report = if args.foreground {
        None
    } else {
        match daemonise() {
            Ok(Some(code)) => return code,
            Ok(None) => None,
            Err(fd) => Some(fd),
        }
    };
    serve(&args, root, presets, report)
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("thumbfs={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Start-up checks, each with a message saying what to do. Returns the canonical source root
/// and the presets.
fn check(args: &MountArgs) -> Result<(PathBuf, Vec<(String, String)>), String> {
    let src = &args.src;
    let meta = fs::metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a directory", src.display()));
    }
    let root = fs::canonicalize(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mnt = &args.mnt;
    let mmeta = fs::metadata(mnt).map_err(|e| format!("mount point {}: {e}", mnt.display()))?;
    if !mmeta.is_dir() {
        return Err(format!("mount point {}: not a directory", mnt.display()));
    }
    if is_mountpoint(mnt) {
        return Err(format!(
            "{} is already a mount point (unmount it with fusermount3 -u)",
            mnt.display()
        ));
    }
    if fs::read_dir(mnt)
        .map_err(|e| format!("{}: {e}", mnt.display()))?
        .next()
        .is_some()
    {
        return Err(format!("mount point {} is not empty", mnt.display()));
    }
    let mnt_canon = fs::canonicalize(mnt).map_err(|e| format!("{}: {e}", mnt.display()))?;
    if mnt_canon.starts_with(&root) {
        return Err(format!(
            "mount point {} is inside the source directory",
            mnt.display()
        ));
    }
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| {
            format!("/dev/fuse: {e} (load the fuse module, or install fuse3 and check permissions)")
        })?;
    let mut presets: Vec<(String, String)> = Vec::new();
    let mut add = |line: &str, origin: &str| -> Result<(), String> {
        let (name, spec) = line
            .split_once('=')
            .ok_or_else(|| format!("{origin}: {line:?}: expected NAME=SPEC"))?;
        let (name, spec) = (name.trim(), spec.trim());
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("{origin}: {name:?} is not a usable directory name"));
        }
        spec.parse::<crate::Spec>()
            .map_err(|e| format!("{origin}: preset {name}: {e}"))?;
        presets.retain(|(n, _)| n != name);
        presets.push((name.to_string(), spec.to_string()));
        Ok(())
    };
    for p in &args.presets {
        add(p, "--preset")?;
    }
    if let Some(path) = &args.config {
        let text =
            fs::read_to_string(path).map_err(|e| format!("--config {}: {e}", path.display()))?;
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                add(line, &path.display().to_string())?;
            }
        }
    }
    if presets.is_empty() {
        presets = DEFAULT_PRESETS
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
    }
    Ok((root, presets))
}

/// True when `path` is listed as a mount point in /proc/self/mountinfo.
fn is_mountpoint(path: &Path) -> bool {
    let Ok(canon) = fs::canonicalize(path) else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.as_os_str().as_bytes();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| unescape_mount(m).as_slice() == want)
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mount(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| c.is_ascii_digit()) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Forks. The parent waits for the child's report and returns `Ok(Some(exit code))`; the
/// child returns `Err(fd)` to report on. `Ok(None)` never happens but keeps the shape simple.
fn daemonise() -> Result<Option<i32>, RawFd> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: plain pipe/fork/setsid calls before any thread exists.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return Ok(None);
        }
        match libc::fork() {
            -1 => {
                libc::close(fds[0]);
                libc::close(fds[1]);
                Ok(None)
            }
            0 => {
                libc::close(fds[0]);
                libc::setsid();
                let null = CString::new("/dev/null").expect("no NUL");
                let fd = libc::open(null.as_ptr(), libc::O_RDWR);
                if fd >= 0 {
                    libc::dup2(fd, 0);
                    libc::dup2(fd, 1);
                    if fd > 2 {
                        libc::close(fd);
                    }
                }
                Err(fds[1])
            }
            _ => {
                libc::close(fds[1]);
                let mut pipe = fs::File::from_raw_fd(fds[0]);
                let mut msg = String::new();
                let _ = pipe.read_to_string(&mut msg);
                if msg == "ok" {
                    Ok(Some(0))
                } else {
                    let msg = if msg.is_empty() {
                        "the daemon exited before mounting".to_string()
                    } else {
                        msg
                    };
                    eprintln!("thumbfs mount: {msg}");
                    Ok(Some(2))
                }
            }
        }
    }
}

/// Reports a start-up failure once: to the waiting parent when daemonising, else on stderr.
fn fail(report: &mut Option<RawFd>, msg: &str) -> i32 {
    if report.is_some() {
        tell(report, msg);
    } else {
        eprintln!("thumbfs mount: {msg}");
    }
    2
}

fn tell(report: &mut Option<RawFd>, msg: &str) {
    if let Some(fd) = report.take() {
        // SAFETY: fd is the write end of our pipe, owned here and closed by the File.
        let mut f = unsafe { fs::File::from_raw_fd(fd) };
        let _ = f.write_all(msg.as_bytes());
        if msg == "ok" {
            // The parent has exited; later messages go nowhere.
            let null = CString::new("/dev/null").expect("no NUL");
            // SAFETY: redirecting stderr of the detached daemon.
            unsafe {
                let n = libc::open(null.as_ptr(), libc::O_RDWR);
                if n >= 0 {
                    libc::dup2(n, 2);
                    libc::close(n);
                }
            }
        }
    }
}

/// Blocks the termination signals in this (and every later) thread, so one thread can wait
/// for them with sigwait and unmount cleanly.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Lazy unmount: the mount point is free at once, the filesystem goes when its files close.
fn detach(mnt: &Path) {
    if let Ok(c) = CString::new(mnt.as_os_str().as_bytes()) {
        // SAFETY: a valid C string path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

fn serve(
    args: &MountArgs,
    root: PathBuf,
    presets: Vec<(String, String)>,
    mut report: Option<RawFd>,
) -> i32 {
    let sigset = block_signals();
    let disk = args.cache_dir.clone().map(|d| (d, args.cache_disk));
    let cache = match cache::Cache::new(args.cache_mem, disk) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("--cache-dir: {e}");
            return fail(&mut report, &msg);
        }
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let opts = RenderOptions {
        max_pixels: args.max_pixels,
        ..RenderOptions::default()
    };
    let sched = scheduler::Scheduler::new(
        cache,
        threads,
        opts,
        Duration::from_secs(args.render_timeout.max(1)),
    );
    let fs = match ThumbFs::new(root, presets, Arc::clone(&sched), args.stat) {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("{}: {e}", args.src.display());
            return fail(&mut report, &msg);
        }
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::FSName("thumbfs".into()),
        fuser::MountOption::Subtype("thumbfs".into()),
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoSuid,
        fuser::MountOption::NoDev,
    ];
    // As root, let other users (a web server) read, with the kernel checking our permission
    // bits; `-o allow_other` asks for the same as a user (needs user_allow_other).
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        config.acl = fuser::SessionACL::All;
    }
    for opt in args
        .options
        .iter()
        .flat_map(|o| o.split(','))
        .map(str::trim)
    {
        use fuser::MountOption as M;
        match opt {
            "" | "ro" | "default_permissions" => {}
            "allow_other" => config.acl = fuser::SessionACL::All,
            "allow_root" => config.acl = fuser::SessionACL::RootAndOwner,
            "noatime" => config.mount_options.push(M::NoAtime),
            "noexec" => config.mount_options.push(M::NoExec),
            "auto_unmount" => config.mount_options.push(M::AutoUnmount),
            "rw" => {
                return fail(&mut report, "-o rw: thumbfs is read-only");
            }
            other => match other.split_once('=') {
                Some(("fsname", v)) => {
                    config.mount_options.retain(|o| !matches!(o, M::FSName(_)));
                    config.mount_options.push(M::FSName(v.into()));
                }
                _ => config.mount_options.push(M::CUSTOM(other.into())),
            },
        }
    }
    config.n_threads = Some(4);
    config.clone_fd = true;
    let mut session = match fuser::Session::new(fs, &args.mnt, &config) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("mounting on {}: {e}", args.mnt.display());
            return fail(&mut report, &msg);
        }
    };
    let mut unmounter = session.unmount_callable();
    let mnt = fs::canonicalize(&args.mnt).unwrap_or_else(|_| args.mnt.clone());
    let grace = Duration::from_secs(args.render_timeout.max(1) + 1);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut sig = 0;
            // SAFETY: waiting on the blocked set built above.
            unsafe { libc::sigwait(&sigset, &mut sig) };
            tracing::info!("signal {sig}: unmounting");
            // The FUSE connection's number, for aborting it if readers hang on.
            let conn = fs::metadata(&mnt).ok().map(|m| {
                use std::os::unix::fs::MetadataExt;
                libc::minor(m.dev())
            });
            if let Err(e) = unmounter.unmount() {
                tracing::info!("{}: {e}; detaching, open files finish first", mnt.display());
                detach(&mnt);
                std::thread::sleep(grace);
                if let Some(c) = conn {
                    let _ = fs::write(format!("/sys/fs/fuse/connections/{c}/abort"), "1");
                }
                // Without fusectl mounted the abort fails and an idle open file would keep the
                // session (and us) alive for ever: exit; the kernel fails its later reads.
                tracing::info!("exiting with files still open");
                std::process::exit(0);
            }
        })
        .expect("spawning the signal thread");
    tracing::info!("serving {} on {}", args.src.display(), args.mnt.display());
    tell(&mut report, "ok");
    match session.run() {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("session ended: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount("/a\\040b"), b"/a b");
    }
}
