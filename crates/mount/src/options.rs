//! Everything `thumbfs mount` accepts: the command-line arguments, the presets (from
//! `--preset` and `--config`), the FUSE `-o` options, and the start-up checks that turn them into
//! a [`Setup`]. Option parsing lives here only, so `-o` forms for fstab can be added in one place.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use super::filesystem::{OpenMode, SpecPolicy, StatMode};
use crate::store::Store;

/// Presets listed in the mount root when no others are given.
pub const DEFAULT_PRESETS: &[(&str, &str)] = &[
    ("thumb", "256x256"),
    ("small", "w640_q80"),
    ("medium", "w1280_q85"),
    ("png", "png"),
];

/// A named spec listed in the mount root (`--preset NAME=SPEC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// The directory name.
    pub name: String,
    /// The spec it stands for.
    pub spec: String,
}

/// Options of `thumbfs mount`.
#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// Directory of images to serve (never written): a path, `file:///PATH` or
    /// `s3://BUCKET[/PREFIX]`.
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
    /// A render cache shared by every host given the same URL, s3://BUCKET/PREFIX: outputs
    /// found there are served without rendering, new ones are stored there (behind the
    /// memory and --cache-dir tiers). Endpoint and credentials from the AWS_* variables.
    #[arg(long, value_name = "URL")]
    pub cache_url: Option<String>,
    /// Disk space for --cache-dir.
    #[arg(long, default_value = "1G", value_parser = parse_size, value_name = "SIZE")]
    pub cache_disk: u64,
    /// `exact`: a stat renders the file to report its true size (safe for every tool);
    /// `estimate`: report the source size until first open (fast `ls -l` on huge trees).
    #[arg(long, value_enum, default_value = "exact")]
    pub stat: StatMode,
    /// `per-open`: every open reaches the daemon (reads stream while a file renders);
    /// `no-open`: the kernel stops sending opens, so finished outputs re-read at page-cache
    /// speed (needs `--stat exact`); `auto`: no-open with `--stat exact`, per-open with
    /// `--stat estimate`. Also `-o open_mode=...`.
    #[arg(long, value_enum, default_value = "auto")]
    pub open_mode: OpenMode,
    /// `any`: every valid spec resolves as a directory under the root; `presets`: only the
    /// presets do, any other name is ENOENT. Also `-o specs=...`.
    #[arg(long, value_enum, default_value = "any")]
    pub specs: SpecPolicy,
    /// Renders run at once (default: number of cores); more wait in a queue.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = 200_000_000, value_name = "N")]
    pub max_pixels: u64,
    /// Refuse renders whose output, or any size planned on the way (a resize, a fill
    /// canvas), has more pixels than this; checked before decoding.
    #[arg(long, default_value_t = 200_000_000, value_name = "N")]
    pub max_output_pixels: u64,
    /// Animations (GIF, WebP) of more frames than this are served as their first frame.
    #[arg(long, default_value_t = thumbfs_engine::pipeline::MAX_FRAMES, value_name = "N")]
    pub max_frames: u32,
    /// Fail a render (EIO) after this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub render_timeout: u64,
    /// How long an `s3://` source's directory listing is reused before it is fetched again
    /// (a changed object shows its new version after at most this long).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub list_ttl: u64,
    /// How long the kernel remembers a name that was looked up and not found, so repeated
    /// misses cost nothing (0: not remembered). `thumbfs ctl MNT forget` drops them at once.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub negative_ttl: u64,
    /// `on`: a JPEG thumbnail may be made from the camera's own smaller JPEG (an MPF
    /// preview) when it is large enough; `off`: always from the main image (as the spec
    /// token `exact`). Also `-o previews=...`.
    #[arg(long, value_enum, default_value = "on")]
    pub previews: Previews,
    /// Memory for directory listings and sniffed image formats, e.g. 64M: the least recently
    /// used go first beyond it (held twice for `s3://` sources: the bucket's listings, and
    /// what the spec directories show of them).
    #[arg(long, default_value = "64M", value_parser = parse_size, value_name = "SIZE")]
    pub list_cache: u64,
    /// Threads reading FUSE requests. None waits on the store or a render (those answer
    /// from worker threads), so a few serve any load; each holds a ~16 MiB buffer.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub fuse_threads: usize,
    /// S3 endpoint URL for `s3://` sources (default: AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// `process`: every render runs in a sandboxed worker process (another uid, seccomp, a
    /// memory limit), so a crashing, hanging or exploited decoder costs one render, not the
    /// mount; `none`: renders run inside the daemon (slightly faster, no protection).
    #[arg(long, value_enum, default_value = "process")]
    pub isolation: Isolation,
    /// User (name or uid) the render workers run as when the daemon is root (default: the
    /// `thumbfs` user if it exists, else uid 61183). Never root or nobody.
    #[arg(long, value_name = "USER")]
    pub worker_user: Option<String>,
    /// Address-space limit of each render worker; a render that needs more fails with
    /// "out of memory".
    #[arg(long, default_value = "4G", value_parser = parse_size, value_name = "SIZE")]
    pub worker_memory: u64,
    /// Once mounted, drop root and serve as this user (name or uid): SRC is then read with
    /// that user's permissions, and the cache directory is handed to it. Render workers are
    /// still started with --worker-user by a spawner process kept from before the drop.
    #[arg(long, value_name = "USER")]
    pub run_as: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (off by default). A bare PORT or
    /// `:PORT` binds loopback (127.0.0.1); give a host (`0.0.0.0:9100`) to listen wider.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Mount options, comma-separated: FUSE's (`allow_other`, `allow_root`, `noatime`,
    /// `fsname=NAME`, ...) as for sshfs, and every option above in KEY=VALUE form
    /// (`cache_dir=/var/cache/thumbfs,preset=thumb=256x256,stat=estimate`) for fstab.
    #[arg(short = 'o', value_name = "OPTS")]
    pub options: Vec<String>,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Whether thumbnails may use embedded previews (`--previews`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Previews {
    /// From an MPF preview when one is large enough.
    On,
    /// Always from the main image.
    Off,
}

/// Where renders run (`--isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// In sandboxed worker processes.
    Process,
    /// Inside the daemon.
    None,
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

/// Moves thumbfs' own options out of `-o` into the arguments, so every mount option has an
/// `-o` form for `mount -t fuse.thumbfs` and `/etc/fstab` (`cache_dir=/var/cache/thumbfs`,
/// `preset=thumb=256x256`, ...). What is left in `args.options` is for FUSE; options that
/// mount(8) and systemd keep for themselves (`nofail`, `_netdev`, `x-systemd.*`) are dropped.
pub fn take_thumbfs_options(args: &mut MountArgs) -> Result<(), String> {
    let mut fuse = Vec::new();
    let given = std::mem::take(&mut args.options);
    for opt in given.iter().flat_map(|o| o.split(',')).map(str::trim) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k.replace('-', "_"), Some(v)),
            None => (opt.replace('-', "_"), None),
        };
        let need = |v: Option<&'_ str>| -> Result<String, String> {
            v.map(str::to_string)
                .ok_or_else(|| format!("-o {key}: needs a value ({key}=...)"))
        };
        let bad = |e: String| format!("-o {opt}: {e}");
        let num = |v: Option<&str>| -> Result<u64, String> {
            need(v)?
                .parse()
                .map_err(|_| format!("-o {opt}: not a number"))
        };
        match key.as_str() {
            "preset" => args.presets.push(need(value)?),
            "config" => args.config = Some(need(value)?.into()),
            "cache_mem" => args.cache_mem = parse_size(&need(value)?).map_err(bad)?,
            "cache_dir" => args.cache_dir = Some(need(value)?.into()),
            "cache_disk" => args.cache_disk = parse_size(&need(value)?).map_err(bad)?,
            "cache_url" => args.cache_url = Some(need(value)?),
            "open_mode" => {
                args.open_mode = <OpenMode as clap::ValueEnum>::from_str(&need(value)?, false)
                    .map_err(|_| format!("-o {opt}: expected auto, per-open or no-open"))?
            }
            "stat" => {
                args.stat = <StatMode as clap::ValueEnum>::from_str(&need(value)?, true)
                    .map_err(|_| format!("-o {opt}: expected stat=exact or stat=estimate"))?
            }
            "specs" => {
                args.specs = <SpecPolicy as clap::ValueEnum>::from_str(&need(value)?, false)
                    .map_err(|_| format!("-o {opt}: expected specs=any or specs=presets"))?
            }
            "threads" => args.threads = Some(num(value)? as usize),
            "max_pixels" => args.max_pixels = num(value)?,
            "max_output_pixels" => args.max_output_pixels = num(value)?,
            "max_frames" => {
                args.max_frames =
                    u32::try_from(num(value)?).map_err(|_| format!("-o {opt}: too large"))?
            }
            "render_timeout" => args.render_timeout = num(value)?,
            "list_ttl" => args.list_ttl = num(value)?,
            "negative_ttl" => args.negative_ttl = num(value)?,
            "previews" => {
                args.previews = <Previews as clap::ValueEnum>::from_str(&need(value)?, false)
                    .map_err(|_| format!("-o {opt}: expected previews=on or previews=off"))?
            }
            "isolation" => {
                args.isolation = <Isolation as clap::ValueEnum>::from_str(&need(value)?, true)
                    .map_err(|_| format!("-o {opt}: expected isolation=process or none"))?
            }
            "worker_user" => args.worker_user = Some(need(value)?),
            // Not `user`: mount(8) keeps that one for itself.
            "run_as" => args.run_as = Some(need(value)?),
            "worker_memory" => args.worker_memory = parse_size(&need(value)?).map_err(bad)?,
            "list_cache" => args.list_cache = parse_size(&need(value)?).map_err(bad)?,
            "fuse_threads" => args.fuse_threads = num(value)? as usize,
            "s3_endpoint" => args.s3_endpoint = Some(need(value)?),
            "metrics" => args.metrics = Some(need(value)?),
            "foreground" => args.foreground = true,
            "verbose" => args.verbose = args.verbose.max(num(value).unwrap_or(1) as u8),
            // mount(8) / systemd bookkeeping, meaningless to the filesystem.
            "defaults" | "auto" | "noauto" | "nofail" | "_netdev" | "user" | "users" | "nouser"
            | "owner" | "group" => {}
            // VFS flags mount(8) adds by default (`dev,suid`) or that are always on here:
            // a mount of thumbnails has no device nodes or set-uid files, so it stays
            // nodev,nosuid whatever the flags say.
            "dev" | "suid" | "exec" | "nodev" | "nosuid" | "async" | "relatime" | "atime"
            | "diratime" | "nodiratime" | "strictatime" | "lazytime" | "nolazytime" => {}
            k if k.starts_with("x_") || k == "comment" => {}
            _ => fuse.push(opt.to_string()),
        }
    }
    args.options = fuse;
    Ok(())
}

/// What the start-up checks produce: the source store, the presets and the modes.
pub(crate) struct Setup {
    pub store: Arc<dyn Store>,
    pub presets: Vec<Preset>,
    pub open_mode: OpenMode,
    /// The shared cache tier (`--cache-url`), its bucket checked.
    pub remote: Option<crate::cache::Remote>,
    /// How render workers are confined; None with `--isolation none`.
    pub sandbox: Option<crate::worker::SandboxConfig>,
    /// `--run-as`: the user to become once mounted.
    pub run_as: Option<RunAs>,
}

/// The user the daemon becomes once mounted (`--run-as`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User name (for its supplementary groups).
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
}

/// Resolves `--run-as NAME|UID`; only root can switch, and switching to root means nothing.
fn run_as(args: &MountArgs) -> Result<Option<RunAs>, String> {
    let Some(who) = args.run_as.as_deref() else {
        return Ok(None);
    };
    use nix::unistd::{Uid, User};
    let user = match User::from_name(who) {
        Ok(Some(u)) => u,
        _ => match who
            .parse::<u32>()
            .ok()
            .map(|id| User::from_uid(Uid::from_raw(id)))
        {
            Some(Ok(Some(u))) => u,
            _ => return Err(format!("--run-as {who}: no such user")),
        },
    };
    if !nix::unistd::geteuid().is_root() {
        return Err("--run-as needs the daemon to start as root".into());
    }
    if user.uid.is_root() {
        return Err(format!("--run-as {who}: that is root"));
    }
    Ok(Some(RunAs {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    }))
}

/// Start-up checks, each with a message saying what to do.
pub(crate) fn check(args: &MountArgs) -> Result<Setup, String> {
    let (store, root) = open_store(args)?;
    check_mount_point(&args.mnt, root.as_deref())?;
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| {
            format!("/dev/fuse: {e} (load the fuse module, or install fuse3 and check permissions)")
        })?;
    let presets = presets(args)?;
    let open_mode = args.open_mode.effective(args.stat);
    if open_mode == OpenMode::NoOpen && args.stat == StatMode::Estimate {
        // Without opens the size a stat reported is never corrected, and page-cache reads
        // stop at it.
        return Err("--open-mode no-open needs --stat exact".into());
    }
    let remote = args
        .cache_url
        .as_deref()
        .map(|u| check_cache_url(u, args.s3_endpoint.as_deref()))
        .transpose()?;
    Ok(Setup {
        store,
        presets,
        open_mode,
        remote,
        sandbox: sandbox(args)?,
        run_as: run_as(args)?,
    })
}

/// The workers' confinement. Only root can give them another uid; otherwise they run as the
/// daemon's user, still under seccomp and the memory limit.
fn sandbox(args: &MountArgs) -> Result<Option<crate::worker::SandboxConfig>, String> {
    if args.isolation == Isolation::None {
        return Ok(None);
    }
    // Below this a worker cannot map the libraries and thread stacks it starts with.
    const MIN_MEMORY: u64 = 512 << 20;
    if args.worker_memory < MIN_MEMORY {
        return Err(format!(
            "--worker-memory {} MiB: at least 512M",
            args.worker_memory >> 20
        ));
    }
    let root = nix::unistd::geteuid().is_root();
    let ids = if root {
        Some(crate::worker::sandbox::worker_ids(
            args.worker_user.as_deref(),
        )?)
    } else {
        if args.worker_user.is_some() {
            return Err("--worker-user needs the daemon to run as root".into());
        }
        None
    };
    Ok(Some(crate::worker::SandboxConfig {
        ids,
        memory: args.worker_memory,
    }))
}

/// `--cache-url`: a valid s3:// URL whose bucket answers to our credentials, checked before
/// mounting so a typo or a wrong key is one clear line, not a mount that never shares.
fn check_cache_url(url: &str, endpoint: Option<&str>) -> Result<crate::cache::Remote, String> {
    use crate::s3::{Client, S3Config, S3Url};
    let fail = |e: crate::s3::S3Error| format!("--cache-url {url}: {e}");
    let u: S3Url = url.parse().map_err(fail)?;
    // The tier is optional: a slow server should cost a render little before it is
    // rendered locally, so fewer attempts and shorter timeouts than for sources.
    let cfg = S3Config::from_env(endpoint)
        .map_err(fail)?
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(5))
        .with_attempts(2);
    let client = Client::new(&cfg, &u.bucket).map_err(fail)?;
    client.check_bucket().map_err(fail)?;
    Ok(crate::cache::Remote::new(client, &u.prefix))
}

/// The source store `SRC` names (a directory, `file://` or `s3://`), with the directory a
/// local one serves, for the mount point check.
fn open_store(args: &MountArgs) -> Result<(Arc<dyn Store>, Option<PathBuf>), String> {
    let opts = crate::store::OpenOptions {
        s3_endpoint: args.s3_endpoint.clone(),
        list_ttl: Duration::from_secs(args.list_ttl),
        list_cache: usize::try_from(args.list_cache).unwrap_or(usize::MAX),
    };
    let store = crate::store::open(&args.src, &opts).map_err(|e| e.to_string())?;
    let root = store.local_root().map(Path::to_path_buf);
    Ok((store, root))
}

/// The mount point must be an empty directory, not mounted, not inside a source directory.
fn check_mount_point(mnt: &Path, root: Option<&Path>) -> Result<(), String> {
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
    if root.is_some_and(|r| mnt_canon.starts_with(r)) {
        return Err(format!(
            "mount point {} is inside the source directory",
            mnt.display()
        ));
    }
    Ok(())
}

/// The presets from `--preset` then `--config` (a later name replaces an earlier one), or the
/// defaults when none are given.
fn presets(args: &MountArgs) -> Result<Vec<Preset>, String> {
    let mut presets: Vec<Preset> = Vec::new();
    let mut add = |line: &str, origin: &str| -> Result<(), String> {
        let (name, spec) = line
            .split_once('=')
            .ok_or_else(|| format!("{origin}: {line:?}: expected NAME=SPEC"))?;
        let (name, spec) = (name.trim(), spec.trim());
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("{origin}: {name:?} is not a usable directory name"));
        }
        spec.parse::<crate::spec::Spec>()
            .map_err(|e| format!("{origin}: preset {name}: {e}"))?;
        presets.retain(|p| p.name != name);
        presets.push(Preset {
            name: name.to_string(),
            spec: spec.to_string(),
        });
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
            .map(|(name, spec)| Preset {
                name: name.to_string(),
                spec: spec.to_string(),
            })
            .collect();
    }
    Ok(presets)
}

/// The fuser configuration: fixed mount options, then the user's `-o` options.
pub(crate) fn fuse_config(args: &MountArgs) -> Result<fuser::Config, String> {
    use fuser::MountOption as M;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        M::RO,
        M::FSName("thumbfs".into()),
        M::Subtype("thumbfs".into()),
        M::DefaultPermissions,
        M::NoSuid,
        M::NoDev,
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
        match opt {
            "" | "ro" | "default_permissions" => {}
            "allow_other" => config.acl = fuser::SessionACL::All,
            "allow_root" => config.acl = fuser::SessionACL::RootAndOwner,
            "noatime" => config.mount_options.push(M::NoAtime),
            "noexec" => config.mount_options.push(M::NoExec),
            "auto_unmount" => config.mount_options.push(M::AutoUnmount),
            "rw" => return Err("-o rw: thumbfs is read-only".into()),
            other => match other.split_once('=') {
                Some(("fsname", v)) => {
                    config.mount_options.retain(|o| !matches!(o, M::FSName(_)));
                    config.mount_options.push(M::FSName(v.into()));
                }
                _ => config.mount_options.push(M::CUSTOM(other.into())),
            },
        }
    }
    if args.fuse_threads == 0 {
        return Err("--fuse-threads: needs at least 1".into());
    }
    config.n_threads = Some(args.fuse_threads);
    // Each FUSE thread opens /dev/fuse for its own fd when the session starts; after
    // --run-as has dropped root that open may be refused (/dev/fuse is 0600 on some hosts),
    // so the threads share the mount's fd instead.
    config.clone_fd = args.run_as.is_none();
    Ok(config)
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
    fn every_option_has_an_o_form() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            m: MountArgs,
        }
        let mut a = P::parse_from([
            "x",
            "/src",
            "/mnt",
            "-o",
            "preset=thumb=256x256,cache-dir=/var/cache/t,cache_mem=64M,cache_disk=2G",
            "-o",
            "stat=estimate,threads=3,max_pixels=1000,max-output-pixels=500,max_frames=4,render_timeout=9,foreground,allow_other,open_mode=no-open",
            "-o",
            "fuse_threads=2,list_cache=8M,negative_ttl=30,metrics=:9100,previews=off",
            "-o",
            "nofail,_netdev,x-systemd.automount,noatime,dev,suid,config=/etc/t.conf,verbose=2",
        ])
        .m;
        take_thumbfs_options(&mut a).unwrap();
        assert_eq!(a.presets, ["thumb=256x256"]);
        assert_eq!(a.cache_dir.as_deref(), Some(Path::new("/var/cache/t")));
        assert_eq!((a.cache_mem, a.cache_disk), (64 << 20, 2 << 30));
        assert_eq!(a.stat, StatMode::Estimate);
        assert_eq!(a.open_mode, OpenMode::NoOpen);
        assert_eq!(
            (
                a.threads,
                a.max_pixels,
                a.max_output_pixels,
                a.max_frames,
                a.render_timeout
            ),
            (Some(3), 1000, 500, 4, 9)
        );
        assert!(a.foreground);
        assert_eq!((a.fuse_threads, a.list_cache), (2, 8 << 20));
        assert_eq!(a.negative_ttl, 30);
        assert_eq!(a.metrics.as_deref(), Some(":9100"));
        assert_eq!(a.previews, Previews::Off);
        assert_eq!(a.verbose, 2);
        assert_eq!(a.config.as_deref(), Some(Path::new("/etc/t.conf")));
        assert_eq!(a.options, ["allow_other", "noatime"]);
        a.options = vec!["cache_mem=lots".into()];
        assert!(take_thumbfs_options(&mut a)
            .unwrap_err()
            .contains("cache_mem=lots"));
        a.options = vec!["cache_dir".into()];
        assert!(take_thumbfs_options(&mut a)
            .unwrap_err()
            .contains("needs a value"));
    }

    #[test]
    fn specs_has_an_o_form() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            m: MountArgs,
        }
        let mut a = P::parse_from(["x", "/src", "/mnt"]).m;
        assert_eq!(a.specs, SpecPolicy::Any);
        a.options = vec!["specs=presets".into()];
        take_thumbfs_options(&mut a).unwrap();
        assert_eq!(a.specs, SpecPolicy::Presets);
        a.options = vec!["specs=all".into()];
        assert!(take_thumbfs_options(&mut a)
            .unwrap_err()
            .contains("specs=presets"));
    }

    #[test]
    fn open_mode_defaults_to_auto_which_follows_stat() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            m: MountArgs,
        }
        let mut a = P::parse_from(["x", "/src", "/mnt"]).m;
        assert_eq!(a.open_mode, OpenMode::Auto);
        assert_eq!(a.open_mode.effective(StatMode::Exact), OpenMode::NoOpen);
        assert_eq!(a.open_mode.effective(StatMode::Estimate), OpenMode::PerOpen);
        for (text, mode) in [
            ("no-open", OpenMode::NoOpen),
            ("per-open", OpenMode::PerOpen),
            ("auto", OpenMode::Auto),
        ] {
            a.options = vec![format!("open_mode={text}")];
            take_thumbfs_options(&mut a).unwrap();
            assert_eq!(a.open_mode, mode);
        }
        assert_eq!(
            OpenMode::PerOpen.effective(StatMode::Exact),
            OpenMode::PerOpen,
            "an explicit mode stays"
        );
        a.options = vec!["open_mode=never".into()];
        assert!(take_thumbfs_options(&mut a)
            .unwrap_err()
            .contains("auto, per-open or no-open"));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount("/a\\040b"), b"/a b");
    }
}
