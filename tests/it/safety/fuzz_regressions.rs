//! Inputs the fuzzers found (minimised), replayed through the code the fuzz targets run.
//!
//! Files live in `tests/fuzz_regressions/<target>/<name>.<ok|err|panic>`: the suffix says what
//! the input must give — for a loader target, both decodes (memory source at full size, pipe
//! with shrink-on-load) succeed (`ok`) or both fail with an ordinary error (`err`); for `spec`
//! and `options`, the text is accepted or refused. A panic is never acceptable there; a loader
//! panic comes back as `Error::Panic` (the harness catches it the way `render()` does) and
//! fails. `panic` marks a panic inside a codec crate that we cannot prevent from our side: a
//! real `render()` of it must come back as `Error::Panic` (caught at the render boundary)
//! rather than take the process down; once the crate is fixed, rename the file to `.err`.

#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

use thumbfs::codec::InputFormat;
use thumbfs::io::target::MemoryTarget;
use thumbfs::pipeline::{render, RenderOptions};
use thumbfs::{Error, Source, Spec};

/// The formats a loader target accepts, by target name.
fn formats(target: &str) -> Option<&'static [InputFormat]> {
    Some(match target {
        "jpeg" => &[InputFormat::Jpeg],
        "png" => &[InputFormat::Png],
        "webp" => &[InputFormat::Webp],
        "tiff" => &[InputFormat::Tiff],
        "gif" => &[InputFormat::Gif],
        "hdr" => &[InputFormat::Hdr],
        "svg" => &[InputFormat::Svg],
        "pnm" => &[InputFormat::Pnm, InputFormat::Pfm],
        "heic" => &[InputFormat::Heic],
        "avif" => &[InputFormat::Avif],
        "jxl" => &[InputFormat::Jxl],
        "video" => &[thumbfs::codec::Format(&thumbfs::codec::video::Video)],
        "raw" => &[InputFormat::Raw],
        _ => return None,
    })
}

/// Every saved input, sorted, with its target name.
fn cases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("tests/fuzz_regressions") {
        let dir = dir.unwrap().path();
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        for f in std::fs::read_dir(&dir).unwrap() {
            out.push((target.clone(), f.unwrap().path()));
        }
    }
    out.sort();
    out
}

/// What a saved input must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    Err,
    /// A codec crate panics; `render()` must turn it into `Error::Panic`.
    CodecPanic,
}

fn expectation(path: &Path) -> Expect {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ok") => Expect::Ok,
        Some("err") => Expect::Err,
        Some("panic") => Expect::CodecPanic,
        _ => panic!("{}: name must end in .ok, .err or .panic", path.display()),
    }
}

/// A whole render, as the mount and the CLI run it, with the fuzzers' limits.
fn render_bytes(data: &[u8]) -> thumbfs::Result<()> {
    let opts = RenderOptions {
        max_pixels: harness::MAX_PIXELS,
        max_output_pixels: harness::MAX_PIXELS,
        memory_limit: harness::MEMORY_LIMIT,
        ..RenderOptions::default()
    };
    let mut target = MemoryTarget::new();
    render(Source::memory(data), &Spec::identity(), &mut target, &opts).map(|_| ())
}

/// Replays one input; returns a description of what went wrong, if anything did.
fn replay(target: &str, path: &Path) -> Option<String> {
    let data = std::fs::read(path).unwrap();
    let expect = expectation(path);
    if expect == Expect::CodecPanic {
        return match render_bytes(&data) {
            Err(Error::Panic { .. }) => None,
            other => Some(format!("render gave {other:?}, not a caught panic")),
        };
    }
    let want_ok = expect == Expect::Ok;
    if let Some(formats) = formats(target) {
        let results = harness::decode(&data, formats);
        return results.iter().enumerate().find_map(|(pass, r)| match r {
            Err(Error::Panic { message, .. }) => Some(format!("pass {pass} panicked: {message}")),
            Ok(rows) if !want_ok => Some(format!("pass {pass} decoded {rows} rows, want Err")),
            Err(e) if want_ok => Some(format!("pass {pass} failed: {e}")),
            _ => None,
        });
    }
    let text = String::from_utf8(data).expect("text targets take UTF-8");
    let run = || match target {
        "spec" => harness::spec_round_trip(&text),
        "options" => harness::vips_arguments(&text),
        other => panic!("no fuzz target named {other}"),
    };
    match std::panic::catch_unwind(run) {
        Err(_) => Some("panicked".into()),
        Ok(accepted) if accepted != want_ok => Some(format!("accepted = {accepted}")),
        Ok(_) => None,
    }
}

#[test]
fn saved_fuzz_inputs_give_their_expected_results() {
    let cases = cases();
    assert!(!cases.is_empty(), "no saved inputs found");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(target, path)| {
            let name = path.file_name().unwrap().to_string_lossy();
            replay(target, path).map(|why| format!("{target}/{name}: {why}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} inputs:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
