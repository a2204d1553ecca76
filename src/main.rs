//! The `thumbfs` command line: `convert`, libvips-style operations, `info` and `mount`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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

#[derive(Subcommand)]
enum Command {
    /// Transform one image: `thumbfs convert q90_shrink2 in.jpg out.jpg`.
    ///
    /// INPUT is a path, `-` or `stdin`; OUTPUT is a path, `-` (stdout, format from the spec or
    /// the source), or just an extension like `.jpg` (stdout in that format).
    Convert {
        /// Transform spec, e.g. `q90_shrink2`, `w256_webp` (see README for the grammar).
        spec: String,
        /// Input image.
        input: String,
        /// Output image.
        output: String,
    },
    /// Print format, size, bands, depth, orientation and ICC presence, from headers only.
    Info {
        /// Images to inspect.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Mount SRC on MNT as a read-only filesystem of transformed images.
    Mount(thumbfs::fs::MountArgs),
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
        /// `none` (default) or `centre`: fill the box and crop the overflow.
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

fn main() -> ExitCode {
    let args = Cli::parse();
    let (spec_tokens, input, output): (Vec<String>, String, String) = match args.command {
        Command::Mount(m) => return ExitCode::from(thumbfs::fs::run(m).clamp(0, 255) as u8),
        Command::Info { files } => return exit(cli::info(&files)),
        Command::Convert {
            spec,
            input,
            output,
        } => {
            let spec: Spec = match spec.parse() {
                Ok(s) => s,
                Err(e) => return usage(&format!("spec {e}")),
            };
            return exit(cli::convert(spec, &input, &output));
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
                other => return usage(&format!("--crop {other}: expected none or centre")),
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
