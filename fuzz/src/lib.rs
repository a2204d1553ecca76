//! What the fuzz targets run, kept out of the targets so that `tests/it/safety/fuzz_regressions.rs` in
//! the main crate can include this very file (`#[path]`) and replay saved inputs through the
//! same code. Only thumbfs's public API and std are used here.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Mutex;

use thumbfs::codec::{self, InputFormat, Limits, LoadOptions};
use thumbfs::{Error, Source, Spec};

/// Pixel limit for the fuzzers: large enough for every corpus seed after mutation, small
/// enough that a forged header cannot make a single run allocate gigabytes.
pub const MAX_PIXELS: u64 = 4_000_000;

/// Read-into-memory limit (unseekable TIFF, SVG, PFM from pipes).
pub const MEMORY_LIMIT: u64 = 64 << 20;

/// Where a panic was raised, as far as the panic hook could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Inside a crate from the registry: `render()` turns it into `Error::Panic`.
    Dependency,
    /// Our code, std, or unknown: a bug the fuzzer must report.
    Ours,
}

/// A panic location inside a registry or git dependency (cargo's source checkouts).
fn origin(file: &str) -> Origin {
    // vendor/: the patched zune-jpeg, a codec crate like the others (render() catches it).
    if file.contains("/.cargo/registry/")
        || file.contains("/.cargo/git/")
        || file.contains("/vendor/")
    {
        Origin::Dependency
    } else {
        Origin::Ours
    }
}

thread_local! {
    /// Where the last dependency panic caught on this thread was raised (`file:line`).
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Dependency panic locations already reported and saved, so each is told once per run.
static SAVED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Installs the panic policy. With `THUMBFS_FUZZ_CODEC_PANICS=catch`, a panic raised inside a
/// codec crate is unwound into an error (what `render()` does in production) so a long run goes
/// on; the first input reaching each such location is saved under
/// `fuzz/artifacts/codec-panics/`. Every other panic goes to the previous hook, which under
/// libFuzzer aborts and saves the input. Without the variable every panic aborts.
pub fn init() {
    if std::env::var("THUMBFS_FUZZ_CODEC_PANICS").as_deref() != Ok("catch") {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| match info.location() {
        Some(l) if origin(l.file()) == Origin::Dependency => {
            CAUGHT.with(|c| *c.borrow_mut() = Some(format!("{}:{}", l.file(), l.line())));
        }
        _ => previous(info),
    }));
}

/// Saves `data` when the dependency panic just caught was raised somewhere new.
fn save_codec_panic(data: &[u8], format: InputFormat, message: &str) {
    let Some(location) = CAUGHT.with(|c| c.borrow_mut().take()) else {
        return;
    };
    if !SAVED.lock().unwrap().insert(location.clone()) {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts/codec-panics");
    let short = location.rsplit("/src/").next().unwrap_or(&location);
    let name = format!("{}-{}", format.name(), short.replace(['/', ':'], "-"));
    let saved = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(dir.join(&name), data));
    eprintln!(
        "thumbfs-fuzz: codec panic caught (as render() would) at {location}: {message}; \
         input saved as artifacts/codec-panics/{name} ({saved:?})"
    );
}

/// Runs `f`, turning an unwinding panic into `Error::Panic` as `render()` does. Under the
/// default libFuzzer hook nothing unwinds: the process aborts first. Outside libFuzzer (the
/// regression tests) every panic, ours included, comes back as `Error::Panic`.
fn guarded<T>(stage: &'static str, f: impl FnOnce() -> thumbfs::Result<T>) -> thumbfs::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let message = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::Panic { stage, message })
    })
}

/// A source over `data` that behaves like a pipe (no seeking), as stdin does for the CLI.
fn pipe(data: &[u8]) -> Source<'_> {
    let mut rest = data;
    Source::custom(
        move |buf: &mut [u8]| {
            // Short reads on purpose: loaders must cope with a pipe handing out little at a time.
            let n = buf.len().min(rest.len()).min(4093);
            buf[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            Ok(n)
        },
        None::<fn(u64) -> io::Result<()>>,
    )
}

/// Sniff, probe, check limits, load and pull every strip, checking the stream's contract
/// (strips in order, full width, exactly the header's rows). With `fit` (a resize follows) a
/// loader may shrink by any factor up to `shrink`: JPEG then scales in the DCT domain.
/// Returns the rows decoded.
fn decode_one(
    mut src: Source,
    formats: &[InputFormat],
    shrink: u32,
    fit: Option<(u32, u32)>,
) -> thumbfs::Result<u32> {
    let format = codec::sniff(&mut src)?;
    if !formats.contains(&format) {
        return Err(Error::UnknownFormat);
    }
    let limits = Limits {
        max_pixels: MAX_PIXELS,
        memory_limit: MEMORY_LIMIT,
    };
    let header = codec::probe_with(&mut src, format, &limits)?;
    codec::check_limits(&header, MAX_PIXELS)?;
    // Animations (GIF, WebP) announce up to this many frames, each decoded below.
    let opts = LoadOptions {
        shrink,
        page: 0,
        limits,
        fit,
        max_frames: MAX_FRAMES,
        exact: false,
    };
    let mut loaded = codec::load(src, format, &opts)?;
    let frames = loaded.frames.take();
    let fits = if fit.is_some() {
        loaded.shrink <= shrink
    } else {
        shrink.is_multiple_of(loaded.shrink)
    };
    assert!(
        loaded.shrink >= 1 && fits,
        "loader applied shrink {} for a request of {shrink}",
        loaded.shrink
    );
    let mut stream = loaded.stream;
    let out = stream.header().clone();
    assert!(
        out.pixels() <= header.pixels(),
        "the loaded image ({}x{}) is larger than the probed one ({}x{})",
        out.width,
        out.height,
        header.width,
        header.height
    );
    let row_len = out.width as usize * out.bands as usize;
    let mut rows = 0u32;
    while let Some(strip) = stream.next_strip()? {
        assert_eq!(strip.y, rows, "strips out of order");
        assert!(strip.height > 0, "empty strip");
        assert_eq!(strip.samples.format(), out.format, "strip sample type");
        assert_eq!(
            strip.samples.len(),
            strip.height as usize * row_len,
            "strip length for {} rows of {}x{} bands",
            strip.height,
            out.width,
            out.bands
        );
        rows += strip.height;
        assert!(rows <= out.height, "more rows than the header says");
    }
    assert_eq!(rows, out.height, "stream ended early without an error");
    if let Some(mut anim) = frames {
        assert!(
            (2..=MAX_FRAMES + 1).contains(&anim.count()),
            "an animation of {} frames announced for at most {MAX_FRAMES}",
            anim.count()
        );
        let mut n = 1;
        while let Some(frame) = anim.rest.next_frame()? {
            assert_eq!(
                frame.header, out,
                "frame {n} differs from the first in layout"
            );
            assert_eq!(
                frame.samples.len(),
                row_len * out.height as usize,
                "frame {n} length"
            );
            n += 1;
            rows += out.height;
        }
        assert!(n <= anim.count(), "more frames than announced");
    }
    Ok(rows)
}

/// Frames of an animation the loader targets decode (a few: the frames after the first go
/// through the same composing code).
pub const MAX_FRAMES: u32 = 8;

/// The loader fuzz targets: `data` decoded from memory at full size, then from a pipe with a
/// shrink-on-load request, then from memory with a shrink of 2, 4 or 8 (picked by the input's
/// length) before a resize (JPEG: DCT-domain scaling), if its magic bytes name one of
/// `formats`. Results of the three runs.
pub fn decode(data: &[u8], formats: &[InputFormat]) -> [thumbfs::Result<u32>; 3] {
    let scaled = [2, 4, 8][data.len() % 3];
    let results = [
        guarded("decode", || {
            decode_one(Source::memory(data), formats, 1, None)
        }),
        guarded("decode", || decode_one(pipe(data), formats, 4, None)),
        guarded("decode", || {
            decode_one(Source::memory(data), formats, scaled, Some((1, 1)))
        }),
    ];
    for r in &results {
        if let Err(Error::Panic { message, .. }) = r {
            save_codec_panic(data, formats[0], message);
        }
    }
    results
}

/// The MPF index and the preview loader (jpeg target): hostile offsets and counts give no
/// preview or a bounded one, never a panic. Returns whether a preview was used.
pub fn previews(data: &[u8]) -> bool {
    let _ = thumbfs::codec::jpeg::mpf::entries(data);
    let limits = Limits {
        max_pixels: MAX_PIXELS,
        memory_limit: MEMORY_LIMIT,
    };
    let mut src = Source::memory(data);
    let Ok(header) = thumbfs::codec::jpeg::probe(&mut src) else {
        return false;
    };
    thumbfs::codec::jpeg::preview::load(&mut src, &header, (16, 16), &limits).is_some()
}

/// The `spec` target: whatever parses has a canonical spelling that parses to the same spec
/// and prints the same again. Returns whether `text` parsed.
pub fn spec_round_trip(text: &str) -> bool {
    let Ok(spec) = text.parse::<Spec>() else {
        return false;
    };
    let canonical = spec.to_string();
    let again: Spec = canonical
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} parsed, its canonical {canonical:?} does not: {e}"));
    assert_eq!(
        again, spec,
        "{text:?} -> {canonical:?} parses to another spec"
    );
    assert_eq!(
        again.to_string(),
        canonical,
        "canonical spelling not stable"
    );
    true
}

/// The `options` target: lines are the operation tokens (space-separated), the input argument
/// and the output argument of `thumbfs OP... IN OUT`. Both arguments are split as options;
/// a command that is accepted yields a spec whose canonical spelling round-trips. Returns
/// whether the command was accepted.
pub fn vips_arguments(text: &str) -> bool {
    let mut lines = text.splitn(3, '\n');
    let ops: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let input = lines.next().unwrap_or("");
    let output = lines.next().unwrap_or("");
    for arg in [input, output] {
        if let Ok((name, opts)) = thumbfs::cli::split_options(arg) {
            assert!(
                arg.starts_with(name),
                "{arg:?}: name {name:?} is not its prefix"
            );
            assert!(!name.contains('['), "{arg:?}: name {name:?} keeps a '['");
            for (k, v) in opts {
                assert!(!k.is_empty() && !k.contains(','), "{arg:?}: key {k:?}");
                assert!(v.is_none_or(|v| !v.contains(',')), "{arg:?}: value {v:?}");
            }
        }
    }
    let Ok((spec, _, _)) = thumbfs::cli::vips_style(&ops, input, output) else {
        return false;
    };
    let canonical = spec.to_string();
    if canonical.is_empty() {
        assert_eq!(spec, Spec::identity(), "only the identity prints empty");
    } else {
        let again: Spec = canonical.parse().unwrap_or_else(|e| {
            panic!("{text:?} accepted, its spec {canonical:?} does not parse: {e}")
        });
        assert_eq!(
            again, spec,
            "{text:?} -> {canonical:?} parses to another spec"
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_panics_are_told_apart_by_path() {
        let registry =
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/png-0.18.0/src/lib.rs";
        assert_eq!(origin(registry), Origin::Dependency);
        assert_eq!(origin("/work/main/crates/codec/src/png.rs"), Origin::Ours);
        assert_eq!(origin("crates/codec/src/pnm.rs"), Origin::Ours);
        assert_eq!(
            origin("/rustc/abc/library/core/src/slice/index.rs"),
            Origin::Ours
        );
    }
}
