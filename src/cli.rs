//! The command line's logic, kept in the library so tests can reach it: endpoints,
//! libvips-style `name[options]` arguments, `convert` and `info`.

use std::path::{Path, PathBuf};

use crate::codec::{self, InputFormat, Registry};
use crate::error::Error;
use crate::io::target::{DescriptorTarget, FileTarget};
use crate::io::{Source, Target};
use crate::pipeline::{self, RenderOptions};
use crate::spec::{Spec, SpecError};
use crate::store::{self, OpenError, OpenOptions};

/// Where the image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file by name: a path, `file:///PATH` or `s3://BUCKET/KEY` (seekable), opened by
    /// [`store::open_file`].
    Named(String),
    /// Standard input (a pipe: unseekable).
    Stdin,
}

/// The input an argument names: `-`/`stdin`, else a file by path or URL.
fn input_of(arg: &str) -> Input {
    match arg {
        "-" | "stdin" => Input::Stdin,
        name => Input::Named(name.to_string()),
    }
}

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A new file.
    Path(PathBuf),
    /// Standard output.
    Stdout,
}

/// A failed command: usage errors exit 2, processing errors exit 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments are wrong.
    #[error("{0}")]
    Usage(String),
    /// The input could not be opened (the message names it).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Processing `file` failed.
    #[error("{file}: {error}")]
    Render {
        /// The input's name.
        file: String,
        /// What went wrong.
        error: Error,
    },
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Open(_) | CliError::Render { .. } => 1,
        }
    }
}

impl From<SpecError> for CliError {
    fn from(e: SpecError) -> Self {
        CliError::Usage(format!("spec {e}"))
    }
}

/// `key` or `key=value` options from `name[...]`.
pub type Options<'a> = Vec<(&'a str, Option<&'a str>)>;

/// Splits `name[k=v,k2]` into the name and its options.
pub fn split_options(arg: &str) -> Result<(&str, Options<'_>), String> {
    let Some(open) = arg.find('[') else {
        return Ok((arg, Vec::new()));
    };
    let inner = arg[open + 1..]
        .strip_suffix(']')
        .ok_or_else(|| format!("{arg}: options must end with ']'"))?;
    let opts: Options = inner
        .split(',')
        .filter(|o| !o.is_empty())
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (o, None),
        })
        .collect();
    // `[=v]` would otherwise reach the option tables as an option named "".
    if opts.iter().any(|(k, _)| k.is_empty()) {
        return Err(format!("{arg}: an option has no name before '='"));
    }
    Ok((&arg[..open], opts))
}

fn truthy(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v.map(|s| s.to_ascii_lowercase()) {
        None => Ok(true),
        Some(s) if matches!(s.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(s) if matches!(s.as_str(), "false" | "0" | "no") => Ok(false),
        Some(s) => Err(format!("{key}={s}: expected true or false")),
    }
}

fn parse_input(arg: &str, spec: &mut Spec) -> Result<Input, String> {
    let (name, opts) = split_options(arg)?;
    for (k, v) in opts {
        let val = || v.ok_or_else(|| format!("{k}: needs a value ({k}=N)"));
        let token = match k {
            "shrink" => format!("shrink{}", val()?),
            "page" => format!("page{}", val()?),
            "autorotate" if !truthy(k, v)? => "noautorotate".into(),
            "autorotate" => continue,
            _ => return Err(format!("{arg}: unknown load option {k}")),
        };
        spec.add_token(&token).map_err(|e| format!("{arg}: {e}"))?;
    }
    Ok(input_of(name))
}

fn parse_output(arg: &str, spec: &mut Spec) -> Result<Output, String> {
    let (name, opts) = split_options(arg)?;
    for (k, v) in opts {
        let val = || v.ok_or_else(|| format!("{k}: needs a value ({k}=N)"));
        let token = match k {
            "Q" | "q" => format!("q{}", val()?),
            "compression" => match val()? {
                "lzw" | "deflate" => val()?.to_string(),
                n => format!("c{n}"),
            },
            "strip" if truthy(k, v)? => "strip".into(),
            "lossless" if truthy(k, v)? => "lossless".into(),
            "strip" | "lossless" => continue,
            _ => return Err(format!("{arg}: unknown save option {k}")),
        };
        spec.add_token(&token).map_err(|e| format!("{arg}: {e}"))?;
    }
    resolve_output(name, spec, Registry::builtin())
}

/// Turns an output argument into an endpoint, taking the format from its extension when the
/// spec names none (`.jpg` alone means stdout as JPEG).
fn resolve_output(name: &str, spec: &mut Spec, registry: &Registry) -> Result<Output, String> {
    if name == "-" {
        return Ok(Output::Stdout);
    }
    let (stdout, ext) = match name.strip_prefix('.') {
        Some(ext) if !ext.contains('/') && !ext.contains('.') => (true, Some(ext)),
        _ => (false, Path::new(name).extension().and_then(|e| e.to_str())),
    };
    if let Some(ext) = ext {
        let f = registry
            .output(ext)
            .ok_or_else(|| format!("{name}: no saver for the extension .{ext}"))?;
        match spec.format {
            None => spec.format = Some(f),
            Some(g) if g == f => {}
            Some(g) => {
                return Err(format!(
                    "{name}: the extension says {} but the spec says {}",
                    f.token(),
                    g.token()
                ))
            }
        }
    }
    Ok(if stdout {
        Output::Stdout
    } else {
        Output::Path(PathBuf::from(name))
    })
}

/// Parses a libvips-style command (`invert stdin[shrink=2] .jpg[Q=90]`) into a spec and ends.
pub fn vips_style(
    op_tokens: &[String],
    input: &str,
    output: &str,
) -> Result<(Spec, Input, Output), String> {
    let mut spec = Spec::default();
    for t in op_tokens {
        spec.add_token(t).map_err(|e| e.to_string())?;
    }
    let input = parse_input(input, &mut spec)?;
    let output = parse_output(output, &mut spec)?;
    spec.validate().map_err(|e| e.to_string())?;
    Ok((spec, input, output))
}

/// `thumbfs convert SPEC INPUT OUTPUT`.
pub fn convert(
    mut spec: Spec,
    input: &str,
    output: &str,
    opts: &RenderOptions,
) -> Result<(), CliError> {
    let input = input_of(input);
    let output = resolve_output(output, &mut spec, &opts.registry).map_err(CliError::Usage)?;
    spec.validate_with(&opts.registry)?;
    run_with(spec, input, output, opts)
}

/// With `THUMBFS_PEAK_RSS` set, writes the process's peak resident set (`VmHWM` of
/// `/proc/self/status`) to stderr as `thumbfs: peak RSS N kB`: the tests and the bench read it
/// (a child's `ru_maxrss` can carry its parent's peak over a vfork).
pub fn report_peak_rss() {
    if std::env::var_os("THUMBFS_PEAK_RSS").is_none() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kb) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    {
        eprintln!("thumbfs: peak RSS {kb} kB");
    }
}

/// Renders one image from `input` to `output` with the default limits.
pub fn run(spec: Spec, input: Input, output: Output) -> Result<(), CliError> {
    run_with(spec, input, output, &RenderOptions::default())
}

/// Renders one image from `input` to `output` within the limits of `opts`.
pub fn run_with(
    spec: Spec,
    input: Input,
    output: Output,
    opts: &RenderOptions,
) -> Result<(), CliError> {
    let src = match &input {
        Input::Named(name) => store::open_file(name, &OpenOptions::default())?,
        Input::Stdin => Source::stdin(),
    };
    let name = src.name().to_string();
    let fail = |error: Error| CliError::Render {
        file: name.clone(),
        error,
    };
    let mut target: Box<dyn Target> = match &output {
        Output::Path(p) => Box::new(FileTarget::create(p).map_err(|e| CliError::Render {
            file: p.display().to_string(),
            error: Error::Write(e),
        })?),
        Output::Stdout => Box::new(DescriptorTarget::stdout()),
    };
    pipeline::render(src, &spec, &mut target, opts).map_err(fail)?;
    Ok(())
}

/// One line of `thumbfs info` (a path, `file://` or `s3://BUCKET/KEY`).
pub fn describe(path: &Path) -> Result<String, CliError> {
    let mut src = store::open_file(path, &OpenOptions::default())?;
    let fail = |error: Error| CliError::Render {
        file: path.display().to_string(),
        error,
    };
    let format: InputFormat = codec::sniff(&mut src).map_err(fail)?;
    let h = codec::probe(&mut src, format).map_err(fail)?;
    Ok(format!(
        "{}: {} {}x{} bands={} depth={} orientation={} icc={}",
        path.display(),
        format.name(),
        h.width,
        h.height,
        h.bands,
        h.bit_depth,
        h.meta.orientation.max(1),
        if h.meta.icc.is_some() { "yes" } else { "no" }
    ))
}

/// `thumbfs info FILE...`: prints what it can, fails if any file failed.
pub fn info(files: &[PathBuf]) -> Result<(), CliError> {
    let mut first_err = None;
    for f in files {
        match describe(f) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("thumbfs: {e}");
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vips_pipe_form_maps_to_spec_tokens() {
        let (spec, i, o) = vips_style(&["invert".into()], "stdin[shrink=2]", ".jpg[Q=90]").unwrap();
        assert_eq!(spec.to_string(), "shrink2_invert_q90_jpg");
        assert_eq!(i, Input::Stdin);
        assert_eq!(o, Output::Stdout);
    }

    #[test]
    fn output_extension_sets_format() {
        let (spec, _, o) = vips_style(&[], "in.png", "out.jpg[Q=80,strip]").unwrap();
        assert_eq!(spec.to_string(), "strip_q80_jpg");
        assert_eq!(o, Output::Path("out.jpg".into()));
    }

    #[test]
    fn bad_options_are_usage_errors() {
        assert!(vips_style(&[], "in.png[bogus=1]", "o.png").is_err());
        assert!(vips_style(&[], "in.png", "o.png[Q=80]").is_err());
        assert!(vips_style(&[], "in.png", "o.xyz").is_err());
        assert!(split_options("a[Q=1").is_err());
        assert!(split_options("a[=1]").is_err());
        let mut s: Spec = "png".parse().unwrap();
        assert!(resolve_output("x.jpg", &mut s, Registry::builtin()).is_err());
    }
}
