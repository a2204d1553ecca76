//! The `thumbfs` command line: `convert`, libvips-style operations, `info`, `mount`, `warm`,
//! and the mount helper form that `mount -t fuse.thumbfs` and `/etc/fstab` use.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{CommandFactory, Parser, Subcommand};

/// Reports failed allocations of render workers to the daemon (out of memory, not a crash).
#[global_allocator]
static ALLOC: thumbfs::worker::NoticingAlloc = thumbfs::worker::NoticingAlloc;
use thumbfs::cli;
use thumbfs::spec::Spec;

#[derive(Parser)]
#[command(
    name = "thumbfs",
    version,
    about = "Serve transformed images, streamed on read",
    after_help = thumbfs::codec::help_text()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the mount variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Transform one image: `thumbfs convert q90_shrink2 in.jpg out.jpg`.
    ///
    /// INPUT is a path, `file:///PATH`, `s3://BUCKET/KEY`, `-` or `stdin`; OUTPUT is a path,
    /// `-` (stdout, format from the spec or the source), just an extension like `.jpg` (stdout
    /// in that format), or `s3://BUCKET/KEY` (a streamed multipart upload). With two `s3://`
    /// prefixes (`s3://photos/ s3://thumbs/w256/`) it converts every object under the first
    /// into the second on all cores, skipping outputs already made from the same source ETag.
    Convert {
        /// Transform spec, e.g. `q90_shrink2`, `w256_webp` (see README for the grammar).
        spec: String,
        /// Input image.
        input: String,
        /// Output image.
        output: String,
        /// Refuse inputs with more pixels than this (from the header, before decoding).
        #[arg(long, default_value_t = 200_000_000, value_name = "N")]
        max_pixels: u64,
        /// Refuse renders whose output, or any size planned on the way (a resize, a fill
        /// canvas), has more pixels than this (checked before decoding).
        #[arg(long, default_value_t = 200_000_000, value_name = "N")]
        max_output_pixels: u64,
        /// Animations (GIF, WebP) of more frames than this are written as their first frame.
        #[arg(long, default_value_t = thumbfs::pipeline::MAX_FRAMES, value_name = "N")]
        max_frames: u32,
        /// Prefix to prefix: objects converted at once (default: number of cores).
        #[arg(short, long, value_name = "N")]
        jobs: Option<usize>,
        /// Prefix to prefix: only shard I of N (from 0), the keys whose path relative to the
        /// source prefix hashes to I modulo N (the hash of `warm --shard`).
        #[arg(long, value_name = "I/N")]
        shard: Option<thumbfs::warm::Shard>,
        /// `off`: a JPEG thumbnail is made from the main image, never from the camera's
        /// embedded preview (as the spec token `exact`).
        #[arg(long, value_enum, default_value = "on")]
        previews: thumbfs::mount::options::Previews,
    },
    /// Print format, size, bands, depth, orientation and ICC presence, from headers only.
    Info {
        /// Images to inspect (paths, file:///PATH or s3://BUCKET/KEY).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Mount SRC on MNT as a read-only filesystem of transformed images.
    Mount(thumbfs::mount::MountArgs),
    /// Control a running mount: forget cached listings and missing names (`forget [PATH]`),
    /// print its counters (`stats`). Only the user who mounted it, or root, may do so.
    Ctl(thumbfs::mount::CtlArgs),
    /// Render every file of some spec directories of a mount (`thumbfs warm /mnt/thumbs/w256`)
    /// on all cores, with progress, so sizes and caches are ready. Ctrl-C stops; running it
    /// again resumes (finished files are cache hits). Exit 1 if any file failed.
    Warm {
        /// Spec directories inside a thumbfs mount (or any subdirectory of one).
        #[arg(required = true, value_name = "MNT/SPEC")]
        dirs: Vec<PathBuf>,
        /// Files read at once (default: number of cores).
        #[arg(short, long, value_name = "N")]
        jobs: Option<usize>,
        /// No progress bar, only the summary.
        #[arg(short, long)]
        quiet: bool,
        /// Only shard I of N (from 0): the files whose path relative to the mount hashes to
        /// I modulo N. N hosts sharing a `--cache-url` run 0/N .. N-1/N to render each file once.
        #[arg(long, value_name = "I/N")]
        shard: Option<thumbfs::warm::Shard>,
    },
    /// Print a shell completion script: `thumbfs completions bash > /etc/bash_completion.d/thumbfs`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `thumbfs man > /usr/local/share/man/man1/thumbfs.1`.
    Man,
    /// libvips-style: `thumbfs copy in.png out.jpg[Q=80]`.
    Copy {
        /// Input, with optional `[options]`.
        input: String,
        /// Output, with optional `[options]`.
        output: String,
    },
    /// libvips-style: `cat k2.jpg | thumbfs invert stdin[shrink=2] .jpg[Q=90]`.
    Invert {
        /// Input, with optional `[options]`.
        input: String,
        /// Output, with optional `[options]`.
        output: String,
    },
    /// libvips-style: `thumbfs thumbnail in.jpg out.jpg 128` fits inside 128x128.
    Thumbnail {
        /// Input, with optional `[options]`.
        input: String,
        /// Output, with optional `[options]`.
        output: String,
        /// Box width (and height unless --height is given).
        width: u32,
        /// Box height.
        #[arg(long)]
        height: Option<u32>,
        /// `down` (default), `up` or `both`: whether enlarging is allowed.
        #[arg(long, default_value = "down")]
        size: String,
        /// `none` (default), or fill the box and crop the overflow keeping the `centre`, the
        /// most salient part (`attention`) or the part with the most detail (`entropy`).
        #[arg(long, default_value = "none")]
        crop: String,
    },
    /// libvips-style: `thumbfs shrink in.jpg out.jpg 2 2` (box average; equal factors only).
    Shrink {
        /// Input, with optional `[options]`.
        input: String,
        /// Output, with optional `[options]`.
        output: String,
        /// Horizontal factor.
        hshrink: u32,
        /// Vertical factor (must equal the horizontal one).
        vshrink: u32,
    },
    /// libvips-style: `thumbfs flip in.jpg out.jpg horizontal|vertical`.
    Flip {
        /// Input, with optional `[options]`.
        input: String,
        /// Output, with optional `[options]`.
        output: String,
        /// `horizontal` (left-right) or `vertical` (top-bottom).
        direction: String,
    },
    /// libvips-style: `thumbfs rot in.jpg out.jpg d90|d180|d270`.
    Rot {
        /// Input, with optional `[options]`.
        input: String,
        /// Output, with optional `[options]`.
        output: String,
        /// `d90`, `d180` or `d270` (clockwise).
        angle: String,
    },
}

/// The processes a mount starts from this executable: `__spawner` (started by the daemon)
/// and `__worker` (started by the spawner). Not commands for people: no help, not in clap.
fn internal() -> Option<ExitCode> {
    // args_os: file names given to the real commands need not be UTF-8.
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = match argv.first().map(String::as_str) {
        Some("__worker") => thumbfs::worker::child::main(),
        Some("__spawner") => thumbfs::worker::spawner::main(&argv[1..]),
        _ => return None,
    };
    Some(ExitCode::from(code.clamp(0, 255) as u8))
}

fn main() -> ExitCode {
    if let Some(code) = internal() {
        return code;
    }
    let args = Cli::parse_from(helper_argv(std::env::args_os().collect()));
    let (spec_tokens, input, output): (Vec<String>, String, String) = match args.command {
        Command::Mount(m) => return ExitCode::from(thumbfs::mount::run(m).clamp(0, 255) as u8),
        Command::Ctl(c) => return ExitCode::from(thumbfs::mount::ctl(&c).clamp(0, 255) as u8),
        Command::Warm {
            dirs,
            jobs,
            quiet,
            shard,
        } => return warm(&dirs, jobs, quiet, shard),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "thumbfs",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => usage(&format!("man: {e}")),
            }
        }
        Command::Info { files } => return exit(cli::info(&files)),
        Command::Convert {
            spec,
            input,
            output,
            max_pixels,
            max_output_pixels,
            max_frames,
            jobs,
            shard,
            previews,
        } => {
            let mut spec: Spec = match spec.parse() {
                Ok(s) => s,
                Err(e) => return usage(&format!("spec {e}")),
            };
            spec.exact |=
                previews == thumbfs::mount::options::Previews::Off && spec.has_thumbnail();
            let opts = thumbfs::RenderOptions {
                max_pixels,
                max_output_pixels,
                max_frames,
                ..Default::default()
            };
            if thumbfs::s3convert::is_batch(&input, &output) {
                return convert_prefix(spec, &input, &output, jobs, shard, &opts);
            }
            if jobs.is_some() || shard.is_some() {
                return usage("--jobs and --shard need two s3:// prefixes (s3://A/ s3://B/)");
            }
            let result = cli::convert(spec, &input, &output, &opts);
            cli::report_peak_rss();
            return exit(result);
        }
        Command::Copy { input, output } => (vec![], input, output),
        Command::Invert { input, output } => (vec!["invert".into()], input, output),
        Command::Thumbnail {
            input,
            output,
            width,
            height,
            size,
            crop,
        } => {
            let mut t = vec![format!("{width}x{}", height.unwrap_or(width))];
            match size.as_str() {
                "down" => {}
                "up" | "both" => t.push("up".into()),
                other => return usage(&format!("--size {other}: expected down, up or both")),
            }
            match crop.as_str() {
                "none" => {}
                "centre" | "center" => t.push("fill".into()),
                g @ ("attention" | "entropy") => t.extend(["fill".into(), g.into()]),
                other => {
                    return usage(&format!(
                        "--crop {other}: expected none, centre, attention or entropy"
                    ))
                }
            }
            (t, input, output)
        }
        Command::Shrink {
            input,
            output,
            hshrink,
            vshrink,
        } => {
            if hshrink != vshrink {
                return usage("shrink: thumbfs shrinks by equal factors only");
            }
            (vec![format!("shrink{hshrink}")], input, output)
        }
        Command::Flip {
            input,
            output,
            direction,
        } => {
            let t = match direction.as_str() {
                "horizontal" => "flop",
                "vertical" => "flip",
                other => return usage(&format!("flip {other}: expected horizontal or vertical")),
            };
            (vec![t.into()], input, output)
        }
        Command::Rot {
            input,
            output,
            angle,
        } => {
            let t = match angle.as_str() {
                "d90" => "rot90",
                "d180" => "rot180",
                "d270" => "rot270",
                other => return usage(&format!("rot {other}: expected d90, d180 or d270")),
            };
            (vec![t.into()], input, output)
        }
    };
    let (spec, input, output) = match cli::vips_style(&spec_tokens, &input, &output) {
        Ok(v) => v,
        Err(e) => return usage(&e),
    };
    exit(cli::run(spec, input, output))
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("thumbfs: {msg}");
    ExitCode::from(2)
}

fn exit(r: Result<(), cli::CliError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thumbfs: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Turns the mount helper's calling conventions into `thumbfs mount ...`:
/// `mount.fuse.thumbfs SRC MNT [-sfnv] [-o OPTS]` (a link named so, run by mount(8)) and
/// `thumbfs SRC MNT -o OPTS` (what fuse3's `mount.fuse3` runs for type `fuse.thumbfs`).
fn helper_argv(mut argv: Vec<OsString>) -> Vec<OsString> {
    let prog = argv
        .first()
        .and_then(|p| std::path::Path::new(p).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let named_helper = prog.starts_with("mount.");
    let first = argv.get(1).map(|a| a.to_string_lossy().into_owned());
    let is_subcommand = first.as_deref().is_some_and(|f| {
        f.starts_with('-') || Cli::command().get_subcommands().any(|c| c.get_name() == f)
    });
    // Unnamed, only when the first word is a directory (SRC): a mistyped subcommand still
    // gets clap's message.
    let src_dir = first
        .as_deref()
        .is_some_and(|f| std::path::Path::new(f).is_dir());
    if !(named_helper || (argv.len() >= 3 && !is_subcommand && src_dir)) {
        return argv;
    }
    let mut out = vec![OsString::from("thumbfs"), OsString::from("mount")];
    let mut rest = argv.drain(1..).peekable();
    while let Some(a) = rest.next() {
        match a.to_str() {
            // mount(8)'s helper flags: sloppy, no mtab (nothing to do), verbose.
            Some("-s") | Some("-n") => {}
            Some("-v") => out.push("-v".into()),
            // Fake mount: do everything but mount; there is nothing else to do.
            Some("-f") if named_helper => std::process::exit(0),
            Some("-o") => {
                out.push(a);
                if let Some(v) = rest.next() {
                    // mount(8) always adds `rw` unless `ro` is given; the filesystem is
                    // read-only whatever it says (`thumbfs mount -o rw` is still refused).
                    let v = v.to_string_lossy();
                    let kept: Vec<&str> = v.split(',').filter(|o| *o != "rw").collect();
                    out.push(kept.join(",").into());
                }
            }
            _ => out.push(a),
        }
    }
    out
}

/// `thumbfs convert SPEC s3://A/ s3://B/`: exit 0 when every image converted (or was up to
/// date), 1 otherwise, 2 for bad arguments.
fn convert_prefix(
    spec: Spec,
    input: &str,
    output: &str,
    jobs: Option<usize>,
    shard: Option<thumbfs::warm::Shard>,
    opts: &thumbfs::RenderOptions,
) -> ExitCode {
    use thumbfs::s3::S3Url;
    let (src, dst) = match (input.parse::<S3Url>(), output.parse::<S3Url>()) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => return usage(&e.to_string()),
    };
    if let Err(e) = spec.validate() {
        return usage(&format!("spec {e}"));
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    // SAFETY: installing a handler that only stores to an atomic and resets the disposition.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    match thumbfs::s3convert::convert_prefix(&spec, &src, &dst, jobs, shard, opts, &STOP) {
        Ok(r) => {
            eprintln!("thumbfs convert: {}", r.summary());
            if r.failed.is_empty() && !r.interrupted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("thumbfs convert: {e}");
            ExitCode::from(1)
        }
    }
}

/// Set by SIGINT during `thumbfs warm` and a prefix-to-prefix `thumbfs convert`.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
    // A second Ctrl-C kills at once.
    // SAFETY: signal() is async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
}

fn warm(
    dirs: &[PathBuf],
    jobs: Option<usize>,
    quiet: bool,
    shard: Option<thumbfs::warm::Shard>,
) -> ExitCode {
    let files = match thumbfs::warm::collect(dirs, shard) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("thumbfs warm: {e}");
            return ExitCode::from(1);
        }
    };
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    // SAFETY: installing a handler that only stores to an atomic and resets the disposition.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(files.len() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} files  {per_sec}  {msg}  elapsed {elapsed}  ETA {eta}",
        )
        .expect("valid template"),
    );
    let report = thumbfs::warm::warm(&files, jobs, &STOP, &|n, bytes| {
        bar.set_position(n as u64);
        bar.set_message(format!("{:.1} MB", bytes as f64 / 1e6));
    });
    bar.finish_and_clear();
    eprintln!("thumbfs warm: {}", report.summary());
    if report.failed.is_empty() && !report.interrupted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
