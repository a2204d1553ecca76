//! The FUSE side: `thumbfs mount SRC MNT`. Options and start-up checks are in [`options`],
//! daemonising and signals in [`daemon`], the filesystem itself in [`filesystem`].

#![warn(missing_docs)]

// The lower crates' modules under the names the code has always used (`crate::error`, ...);
// the crate graph, not these names, keeps the layers apart.
use thumbfs_codec as codec;
use thumbfs_core::{bounded, flight, io};
use thumbfs_engine::{pipeline, spec};
use thumbfs_store as store;
use thumbfs_store::s3;
use thumbfs_worker as worker;

use std::sync::Arc;
use std::time::Duration;

pub mod cache;
pub mod control;
mod daemon;
pub mod filesystem;
pub mod inode;
pub mod metrics;
pub mod names;
pub mod options;
mod pins;
pub mod render;
pub mod scheduler;
pub mod stats;
mod work;

pub use control::{ctl, CtlArgs};
pub use options::{parse_size, MountArgs, DEFAULT_PRESETS};

use crate::pipeline::RenderOptions;
use daemon::{Reporter, Role};
use filesystem::ThumbFs;

/// glibc gives each busy thread its own malloc arena and rarely hands their memory back:
/// with FUSE threads, render workers and decode threads that is tens of MiB over the cache
/// budget (tests/it/mount/stress.rs: peak RSS 178 MiB with the default, 126 MiB with two arenas).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before our threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Runs `thumbfs mount`; returns the process exit code.
pub fn run(mut args: MountArgs) -> i32 {
    if let Err(msg) = options::take_thumbfs_options(&mut args) {
        eprintln!("thumbfs mount: {msg}");
        return 2;
    }
    init_logging(args.verbose);
    limit_malloc_arenas();
    let setup = match options::check(&args) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("thumbfs mount: {msg}");
            return 2;
        }
    };
    // Detach before any thread exists; the parent waits to hear whether the mount worked.
    let report = if args.foreground {
        Reporter::stderr()
    } else {
        match daemon::daemonise() {
            Ok(Role::Parent(code)) => return code,
            Ok(Role::Child(r)) => r,
            Err(e) => {
                eprintln!("thumbfs mount: cannot detach: {e} (-f stays in the foreground)");
                return 2;
            }
        }
    };
    serve(&args, setup, report)
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

/// The render scheduler with its caches, as the arguments ask.
fn scheduler(
    args: &MountArgs,
    remote: Option<cache::Remote>,
    renderer: scheduler::Renderer,
) -> Result<Arc<scheduler::Scheduler>, String> {
    let disk = args.cache_dir.clone().map(|d| (d, args.cache_disk));
    let mut cache =
        cache::Cache::new(args.cache_mem, disk).map_err(|e| format!("--cache-dir: {e}"))?;
    if let Some(r) = remote {
        cache = cache
            .with_remote(r)
            .map_err(|e| format!("--cache-url: {e}"))?;
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let opts = RenderOptions {
        max_pixels: args.max_pixels,
        max_output_pixels: args.max_output_pixels,
        max_frames: args.max_frames,
        ..RenderOptions::default()
    };
    Ok(scheduler::Scheduler::new(
        cache,
        threads,
        opts,
        Duration::from_secs(args.render_timeout.max(1)),
        renderer,
    ))
}

/// The spawner of sandboxed workers, started here before any thread (and before --run-as
/// drops root, which it outlives). Workers' stderr (a crashing library's last words) is kept
/// only in the foreground. None with `--isolation none` (unless --run-as needs it to unmount).
fn spawner(
    args: &MountArgs,
    setup: &options::Setup,
) -> Result<Option<Arc<crate::worker::Spawner>>, String> {
    let cfg = match (&setup.sandbox, &setup.run_as) {
        (Some(cfg), _) => cfg.clone(),
        (None, Some(_)) => crate::worker::SandboxConfig {
            ids: None,
            memory: args.worker_memory,
        },
        (None, None) => return Ok(None),
    };
    let stderr = if args.foreground {
        use std::os::fd::AsFd;
        std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from)
    } else {
        None
    };
    let spawner = crate::worker::Spawner::start(cfg, stderr)
        .map_err(|e| format!("starting the render worker spawner: {e}"))?;
    Ok(Some(Arc::new(spawner)))
}

/// Mounts and serves until unmounted; start-up failures go to `report`.
fn serve(args: &MountArgs, mut setup: options::Setup, mut report: Reporter) -> i32 {
    let sigset = daemon::block_signals();
    let spawner = match spawner(args, &setup) {
        Ok(s) => s,
        Err(msg) => return report.fail(&msg),
    };
    let renderer = match (&spawner, &setup.sandbox) {
        (Some(s), Some(_)) => scheduler::Renderer::Workers(s.clone()),
        _ => scheduler::Renderer::InProcess,
    };
    let sched = match scheduler(args, setup.remote.take(), renderer) {
        Ok(s) => s,
        Err(msg) => return report.fail(&msg),
    };
    // Stopped (dropped) when the session ends.
    let metrics = match args.metrics.as_deref().map(|a| metrics::start(a, &sched)) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(msg)) => return report.fail(&msg),
    };
    let bounds = filesystem::Bounds {
        names: usize::try_from(args.list_cache).unwrap_or(usize::MAX),
        negative_ttl: Duration::from_secs(args.negative_ttl),
        previews: args.previews == options::Previews::On,
        ..filesystem::Bounds::default()
    };
    let fs = match ThumbFs::new(
        setup.store,
        setup.presets,
        sched,
        args.stat,
        setup.open_mode,
        bounds,
        args.specs,
    ) {
        Ok(f) => f,
        Err(e) => return report.fail(&format!("{}: {e}", args.src.display())),
    };
    let config = match options::fuse_config(args) {
        Ok(c) => c,
        Err(msg) => return report.fail(&msg),
    };
    // Before mounting: the path the control socket is named after, as `thumbfs ctl` finds it.
    let mnt = std::fs::canonicalize(&args.mnt).unwrap_or_else(|_| args.mnt.clone());
    let core = Arc::downgrade(&fs.core());
    let mut session = match fuser::Session::new(fs, &args.mnt, &config) {
        Ok(s) => s,
        Err(e) => return report.fail(&format!("mounting on {}: {e}", args.mnt.display())),
    };
    // Made while still root (a root daemon's sockets are in /run/thumbfs); owned by whoever
    // mounted, even after --run-as.
    let owner = nix::unistd::getuid().as_raw();
    match control::start(&mnt, owner, core, session.notifier()) {
        Ok(p) => tracing::info!("control socket {}", p.display()),
        Err(e) => tracing::warn!("no control socket (`thumbfs ctl` cannot reach this mount): {e}"),
    }
    if let Some(who) = &setup.run_as {
        // Mounted: root is no longer needed, except by the spawner.
        if let Some(dir) = &args.cache_dir {
            if let Err(e) = daemon::hand_over(dir, who.uid, who.gid) {
                return report.fail(&format!(
                    "--run-as: giving {} to {}: {e}",
                    dir.display(),
                    who.name
                ));
            }
        }
        if let Err(msg) = daemon::drop_root(who) {
            return report.fail(&msg);
        }
        tracing::info!("serving as {} (uid {})", who.name, who.uid);
    }
    let grace = Duration::from_secs(args.render_timeout.max(1) + 1);
    let unmounter = session.unmount_callable();
    if let Err(e) = daemon::spawn_signal_thread(sigset, unmounter, spawner, mnt, grace) {
        return report.fail(&format!("starting the signal thread: {e}"));
    }
    tracing::info!("serving {} on {}", args.src.display(), args.mnt.display());
    report.mounted();
    daemon::notify_systemd(sd_notify::NotifyState::Ready);
    let ended = session.run();
    control::remove_socket();
    let code = match ended {
        Ok(()) => 0,
        // After a stop signal the signal thread may abort the connection under readers that
        // outlived the grace period; the session then ends with ECONNABORTED before that thread
        // reaches its exit(0). That is the clean stop asked for, not a failure.
        Err(e) if daemon::stopping() => {
            tracing::info!("session ended after the stop signal: {e}");
            0
        }
        Err(e) => {
            tracing::error!("session ended: {e}");
            1
        }
    };
    drop(metrics);
    code
}
