//! Hostile input, through the CLI and through a real mount: decompression bombs, dimensions
//! that overflow, zero sizes, truncations and bit flips of real files, and every corpus file
//! under four specs. Each bad file must fail fast with its name and cause (exit 1 from the
//! CLI, EIO through the mount, a line in `.thumbfs/errors`), and the daemon must keep serving.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::mount::{cli, engine, tree_manifest, Mount};
use common::*;

/// CRC-32 (IEEE), for PNG chunks.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    v.extend_from_slice(&body);
    v.extend_from_slice(&crc32(&body).to_be_bytes());
    v
}

/// A PNG whose IHDR (valid CRC) claims `w`x`h` RGB, with a few bytes of zlib data.
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend(png_chunk(b"IHDR", &ihdr));
    // zlib stream of 100 zero bytes (stored block).
    let mut z = vec![0x78, 0x01, 0x01, 100, 0, !100, 0xFF];
    z.extend_from_slice(&[0u8; 100]);
    z.extend_from_slice(&[0x00, 0x64, 0x00, 0x01]);
    v.extend(png_chunk(b"IDAT", &z));
    v.extend(png_chunk(b"IEND", b""));
    v
}

fn jpeg_segment(marker: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0xFF, marker];
    v.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// A baseline grey JPEG whose SOF0 claims `w`x`h`, with tables and a scan of zeros.
fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8];
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[1u8; 64]);
    v.extend(jpeg_segment(0xDB, &dqt));
    let mut sof = vec![8];
    sof.extend_from_slice(&h.to_be_bytes());
    sof.extend_from_slice(&w.to_be_bytes());
    sof.extend_from_slice(&[1, 1, 0x11, 0]);
    v.extend(jpeg_segment(0xC0, &sof));
    for class in [0x00u8, 0x10] {
        let mut dht = vec![class, 0, 1];
        dht.extend_from_slice(&[0u8; 14]);
        dht.push(0);
        v.extend(jpeg_segment(0xC4, &dht));
    }
    v.extend(jpeg_segment(0xDA, &[1, 1, 0x00, 0, 63, 0]));
    v.extend_from_slice(&[0u8; 100]);
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

/// A GIF whose screen and first frame are `w`x`h`.
fn gif(w: u16, h: u16) -> Vec<u8> {
    let mut v = b"GIF89a".to_vec();
    v.extend_from_slice(&w.to_le_bytes());
    v.extend_from_slice(&h.to_le_bytes());
    v.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]); // 2-entry global palette
    v.push(b',');
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&w.to_le_bytes());
    v.extend_from_slice(&h.to_le_bytes());
    v.push(0);
    v.extend_from_slice(&[2, 2, 0x4C, 0x01, 0, b';']);
    v
}

fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (kind, data) in chunks {
        body.extend_from_slice(*kind);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend(body);
    v
}

/// An extended WebP whose VP8X canvas is `w`x`h` (up to 2^24 each), with a tiny VP8L frame.
fn webp(w: u32, h: u32) -> Vec<u8> {
    let mut vp8x = vec![0u8; 4];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let mut vp8l = vec![0x2F, 0, 0, 0, 0];
    vp8l.extend_from_slice(&[0u8; 8]);
    riff(&[(b"VP8X", vp8x), (b"VP8L", vp8l)])
}

/// A little-endian TIFF, one uncompressed 8-bit grey strip, claiming `w`x`h`.
fn tiff(w: u32, h: u32) -> Vec<u8> {
    // (tag, type, value): type 3 = SHORT, 4 = LONG; every count is 1.
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, w),
        (257, 4, h),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8),
        (277, 3, 1),
        (278, 4, h),
        (279, 4, 100),
    ];
    let mut v = b"II*\0".to_vec();
    v.extend_from_slice(&108u32.to_le_bytes());
    v.extend_from_slice(&[0u8; 100]);
    v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, val) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            v.extend_from_slice(&(val as u16).to_le_bytes());
            v.extend_from_slice(&[0, 0]);
        } else {
            v.extend_from_slice(&val.to_le_bytes());
        }
    }
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

fn with_zeros(head: &str) -> Vec<u8> {
    let mut v = head.as_bytes().to_vec();
    v.extend_from_slice(&[0u8; 100]);
    v
}

fn hdr(dims: &str) -> Vec<u8> {
    with_zeros(&format!("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n{dims}\n"))
}

fn svg(w: &str, h: &str) -> Vec<u8> {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\">\
         <rect width=\"10\" height=\"10\" fill=\"red\"/></svg>"
    )
    .into_bytes()
}

/// A bad file and a piece of its expected cause (in the CLI's message and the errors list).
struct Bad {
    name: &'static str,
    bytes: Vec<u8>,
    cause: &'static str,
}

fn bombs() -> Vec<Bad> {
    let b = |name, bytes| Bad {
        name,
        bytes,
        cause: "60000x60000",
    };
    vec![
        b("bomb.png", png(60000, 60000)),
        b("bomb.jpg", jpeg(60000, 60000)),
        b("bomb.gif", gif(60000, 60000)),
        b("bomb.webp", webp(60000, 60000)),
        b("bomb.tif", tiff(60000, 60000)),
        b("bomb.ppm", with_zeros("P6\n60000 60000\n255\n")),
        b("bomb.pgm", with_zeros("P5 60000 60000 65535\n")),
        b(
            "bomb.pam",
            with_zeros(
                "P7\nWIDTH 60000\nHEIGHT 60000\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n",
            ),
        ),
        b("bomb.pfm", with_zeros("PF\n60000 60000\n-1.0\n")),
        b("bomb.hdr", hdr("-Y 60000 +X 60000")),
        b("bomb.svg", svg("60000", "60000")),
    ]
}

fn overflows() -> Vec<Bad> {
    let b = |name, bytes, cause| Bad { name, bytes, cause };
    vec![
        // 2^31-1 square: the row buffer alone is over the png crate's memory limit.
        b("over.png", png(0x7FFF_FFFF, 0x7FFF_FFFF), "limits"),
        b(
            "over.tif",
            tiff(u32::MAX, u32::MAX),
            "4294967295x4294967295",
        ),
        b("wide.tif", tiff(u32::MAX, 2), "4294967295x2"),
        b("over.webp", webp(1 << 24, 1 << 24), "too large"),
        b(
            "over.ppm",
            with_zeros("P6\n4294967296 2\n255\n"),
            "4294967296",
        ),
        b(
            "over.pgm",
            with_zeros("P5\n4294967295 4294967295\n255\n"),
            "4294967295x4294967295",
        ),
        b("neg.ppm", with_zeros("P6\n-1 -1\n255\n"), "bad width"),
        b(
            "over.pfm",
            with_zeros("PF\n99999999999999999999 1\n-1.0\n"),
            "99999999999999999999",
        ),
        b("over.hdr", hdr("-Y 4294967297 +X 2"), "4294967297"),
        b("over.svg", svg("1e30", "1e30"), "size"),
        b("wide.jpg", jpeg(65535, 65535), "65535x65535"),
        b("wide.gif", gif(65535, 65535), "65535x65535"),
    ]
}

fn zeros() -> Vec<Bad> {
    let b = |name, bytes, cause| Bad { name, bytes, cause };
    vec![
        b("zero.png", png(0, 0), "dimensions"),
        b("zero.jpg", jpeg(0, 0), "zero"),
        b("zero.gif", gif(0, 0), "0x0"),
        b("zero.tif", tiff(0, 0), "0x0"),
        b("zero.ppm", with_zeros("P6\n0 0\n255\n"), "0x0"),
        b("zerow.pgm", with_zeros("P5\n0 10\n255\n"), "0x10"),
        b("zero.pfm", with_zeros("PF\n0 0\n-1.0\n"), "0x0"),
        b("zero.hdr", hdr("-Y 0 +X 0"), "0"),
        b("zero.svg", svg("0", "0"), "size"),
        b("empty.png", b"\x89PNG\r\n\x1a\n".to_vec(), "truncated"),
    ]
}

/// The CLI on `path`: `Ok(output)` or `Err(stderr)` after checking a failure is exit 1 with a
/// message naming the file and not a caught panic.
fn run_cli(path: &Path, spec: &str) -> (Result<Vec<u8>, String>, Duration) {
    let t = Instant::now();
    let (code, out, err) = cli(&[
        OsStr::new("convert"),
        OsStr::new(spec),
        path.as_os_str(),
        OsStr::new("-"),
    ]);
    let took = t.elapsed();
    match code {
        Some(0) => (Ok(out), took),
        Some(1) => {
            let line = err.trim();
            assert!(
                line.starts_with(&format!("thumbfs: {}: ", path.display())),
                "{}: the message names the file: {line}",
                path.display()
            );
            assert!(
                !line.contains("internal error"),
                "{}: a decoder panicked: {line}",
                path.display()
            );
            assert_eq!(line.lines().count(), 1, "one line: {line}");
            (Err(line.to_string()), took)
        }
        other => panic!("{}: exit {other:?}: {err}", path.display()),
    }
}

/// `cat` of a virtual file: `Ok(bytes)` or `Err(stderr)` after checking the failure was EIO.
fn run_cat(virt: &Path) -> (Result<Vec<u8>, String>, Duration) {
    let t = Instant::now();
    let out = Command::new("cat").arg(virt).output().unwrap();
    let took = t.elapsed();
    if out.status.success() {
        return (Ok(out.stdout), took);
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(
        err.contains("Input/output error"),
        "{}: cat failed with something other than EIO: {err}",
        virt.display()
    );
    (Err(err), took)
}

/// Shown names under a spec for the files of `src` (flat), by source file name.
fn shown(src: &Path, spec: &str) -> HashMap<String, String> {
    let format = spec.parse::<thumbfs::Spec>().unwrap().format;
    thumbfs::mount::names::Names::default()
        .list(
            &thumbfs::store::LocalStore::new(src).unwrap(),
            Path::new(""),
            format,
        )
        .unwrap()
        .entries
        .iter()
        .map(|e| {
            (
                e.rel.to_string_lossy().into_owned(),
                e.name.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// A source directory holding a known-good image, `good.jpg`.
fn source_dir() -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    fs::copy(corpus("jpeg/video-001.jpeg"), src.path().join("good.jpg")).unwrap();
    src
}

/// The good image still reads correctly and the daemon is alive.
fn still_serving(m: &mut Mount, src: &Path, spec: &str, good_name: &str) {
    assert!(m.alive(), "daemon died: {}", m.log_text());
    let got = fs::read(m.path(&format!("{spec}/{good_name}"))).unwrap();
    assert!(
        got == engine(&src.join("good.jpg"), spec).unwrap(),
        "good file after bad ones"
    );
}

/// Bombs, overflowing and zero dimensions: refused from the header in well under a second by
/// the CLI (exit 1, file and cause named) and the mount (EIO, logged, listed newest first),
/// which keeps serving. A real photo over a low `--max-pixels` is refused by the mount too.
#[test]
fn bombs_overflows_and_zero_sizes_fail_fast_and_named() {
    let src = source_dir();
    fs::copy(
        corpus("photos/sunset_by_Aitzol_Berasategi.jpg"),
        src.path().join("photo.jpg"),
    )
    .unwrap();
    let cases: Vec<Bad> = bombs()
        .into_iter()
        .chain(overflows())
        .chain(zeros())
        .collect();
    for c in &cases {
        fs::write(src.path().join(c.name), &c.bytes).unwrap();
    }
    let spec = "w256_png";
    let limit = "100000000";
    let mut m = Mount::new(src.path(), &["--max-pixels", limit]);
    let names = shown(src.path(), spec);
    let mut slowest = (Duration::ZERO, "");
    let mut failed_order = Vec::new();
    for c in &cases {
        let path = src.path().join(c.name);
        let (r, took) = run_cli(&path, spec);
        let msg = r.expect_err(c.name);
        assert!(msg.contains(c.cause), "{}: cause: {msg}", c.name);
        assert!(
            took < Duration::from_secs(1),
            "{}: CLI took {took:?}",
            c.name
        );
        // Through the mount.
        let virt = m.path(&format!("{spec}/{}", names[c.name]));
        let (r, took) = run_cat(&virt);
        assert!(r.is_err(), "{}: the mount served it", c.name);
        assert!(
            took < Duration::from_secs(1),
            "{}: cat took {took:?}",
            c.name
        );
        if took > slowest.0 {
            slowest = (took, c.name);
        }
        failed_order.push(c.name);
        let newest = m.errors().into_iter().next().unwrap_or_default();
        assert!(
            newest.contains(c.name) && newest.contains(c.cause),
            "{}: newest error: {newest}",
            c.name
        );
        if c.cause == "60000x60000" {
            assert!(newest.contains(limit), "the --max-pixels limit: {newest}");
        }
        assert!(m.alive(), "{}: daemon died", c.name);
    }
    still_serving(&mut m, src.path(), spec, &names["good.jpg"]);
    // Newest first, each once.
    let listed: Vec<String> = m
        .errors()
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect();
    failed_order.reverse();
    assert_eq!(listed, failed_order, "errors, newest first");
    let log = m.log_text();
    for c in bombs() {
        assert!(
            log.lines()
                .any(|l| l.contains(c.name) && l.contains("60000x60000")),
            "log names {} and its size: {log}",
            c.name
        );
    }
    // A real 12-megapixel photo over a 10-megapixel limit: refused, named with its size.
    drop(m);
    let mut m = Mount::new(src.path(), &["--max-pixels", "10000000"]);
    let (r, _) = run_cat(&m.path(&format!("{spec}/{}", names["photo.jpg"])));
    assert!(r.is_err());
    let newest = m.errors().into_iter().next().unwrap();
    assert!(
        newest.contains("photo.jpg") && newest.contains("4272x2848"),
        "{newest}"
    );
    still_serving(&mut m, src.path(), spec, &names["good.jpg"]);
    eprintln!(
        "{} bad headers refused; slowest through the mount: {} in {:?}",
        cases.len(),
        slowest.1,
        slowest.0
    );
}

/// Renders `corpus` files the corpus lacks (GIF, HDR) with ImageMagick into `dir`.
fn make_with_magick(dir: &Path) -> Vec<PathBuf> {
    let from = corpus("pnm/flower_small.rgb.depth8.ppm");
    ["gif", "hdr"]
        .iter()
        .map(|ext| {
            let to = dir.join(format!("flower.{ext}"));
            let st = Command::new("convert")
                .arg(&from)
                .args(["-resize", "50%"])
                .arg(&to)
                .status()
                .unwrap();
            assert!(st.success(), "convert to {ext}");
            to
        })
        .collect()
}

/// One file of each format and layout we load, from the corpus or made by ImageMagick.
fn samples(scratch: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "jpeg/video-001.jpeg",
        "jpeg/video-001.progressive.jpeg",
        "jpeg/video-001.cmyk.jpeg",
        "jpeg/flower.png.im_q85_420.jpg",
        "pngsuite/primary/basn2c08.png",
        "pngsuite/primary/basi6a08.png",
        "pngsuite/16bit/basn6a16.png",
        "webp/yellow_rose.lossy.webp",
        "webp/yellow_rose.lossless.webp",
        "webp/yellow_rose.lossy-with-alpha.webp",
        "tiff/video-001.tiff",
        "tiff/video-001-tile-64x64.tiff",
        "tiff/blue-purple-pink.lzwcompressed.tiff",
        "tiff/bw-gopher_ccittGroup4.tiff",
        "tiff/video-001-16bit.tiff",
        "pnm/flower_small.rgb.depth8.ppm",
        "pnm/flower_small.g.depth1.pgm",
        "pnm/flower_small.rgba.depth16.pam",
        "pnm/splines.pfm",
    ]
    .iter()
    .map(|r| corpus(r))
    .collect();
    v.extend(make_with_magick(scratch));
    let svg = scratch.join("shapes.svg");
    let mut text =
        String::from("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\" height=\"200\">\n");
    for i in 0..40 {
        text.push_str(&format!(
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"#{:06x}\"/>\n",
            (i * 37) % 300,
            (i * 53) % 200,
            5 + i % 20,
            (i * 0x3A5F17) % 0xFFFFFF
        ));
    }
    text.push_str("</svg>\n");
    fs::write(&svg, text).unwrap();
    v.push(svg);
    v
}

/// Runs every file of `src` through the CLI and the mount under `specs`; they must agree: the
/// same bytes, or exit 1 (file named) and EIO. Returns (failed, succeeded) counts per file.
fn cli_and_mount_agree(
    src: &Path,
    specs: &[&str],
    mut check_ok: impl FnMut(&str, &str, &[u8]),
) -> BTreeMap<String, (u32, u32)> {
    let mut m = Mount::new(src, &["--render-timeout", "10"]);
    let mut outcome: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut slowest = (Duration::ZERO, String::new());
    for spec in specs {
        let names = shown(src, spec);
        let mut files: Vec<String> = fs::read_dir(src)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        for (i, f) in files.iter().enumerate() {
            let (cli_result, cli_took) = run_cli(&src.join(f), spec);
            let Some(name) = names.get(f) else {
                // Not recognised as an image: hidden from the mount.
                let msg = cli_result.expect_err(f);
                assert!(msg.contains("unknown image format"), "{f}: {msg}");
                outcome.entry(f.clone()).or_default().0 += 1;
                continue;
            };
            let (mount_result, took) = run_cat(&m.path(&format!("{spec}/{name}")));
            if took.max(cli_took) > slowest.0 {
                slowest = (took.max(cli_took), format!("{spec}/{f}"));
            }
            assert!(
                took < Duration::from_secs(10),
                "{spec}/{f}: {took:?} through the mount"
            );
            match (cli_result, mount_result) {
                (Ok(a), Ok(b)) => {
                    assert!(
                        a == b,
                        "{spec}/{f}: the mount's bytes differ from the CLI's"
                    );
                    check_ok(spec, f, &a);
                    outcome.entry(f.clone()).or_default().1 += 1;
                }
                (Err(_), Err(_)) => outcome.entry(f.clone()).or_default().0 += 1,
                (Ok(_), Err(e)) => panic!("{spec}/{f}: the CLI renders it, the mount: {e}"),
                (Err(e), Ok(_)) => panic!("{spec}/{f}: the mount serves it, the CLI: {e}"),
            }
            if i % 16 == 0 {
                still_serving(&mut m, src, spec, &names["good.jpg"]);
            }
        }
        still_serving(&mut m, src, spec, &names["good.jpg"]);
    }
    let st = m.stats();
    assert_eq!(st["in_flight"], 0, "{st:?}");
    eprintln!(
        "slowest file: {} in {:?}; {} renders, {} errors",
        slowest.1, slowest.0, st["renders"], st["errors"]
    );
    outcome
}

/// Every format cut at 10%, 50% and 99%: the CLI and the mount agree, and a cut file either
/// fails (exit 1 naming it, EIO) or, when only trailing bytes were lost, gives exactly the
/// whole file's output.
#[test]
fn truncations_of_every_format_fail_or_match_the_whole_file() {
    let scratch = tempfile::tempdir().unwrap();
    let src = source_dir();
    let mut whole: HashMap<String, PathBuf> = HashMap::new();
    let originals = samples(scratch.path());
    for p in &originals {
        let bytes = fs::read(p).unwrap();
        let base = p.file_name().unwrap().to_string_lossy().into_owned();
        for pct in [10, 50, 99] {
            let name = format!("t{pct:02}.{base}");
            fs::write(src.path().join(&name), &bytes[..bytes.len() * pct / 100]).unwrap();
            whole.insert(name, p.clone());
        }
    }
    let outcome = cli_and_mount_agree(src.path(), &["png", "w64_jpg"], |spec, f, out| {
        if let Some(orig) = whole.get(f) {
            assert!(
                engine(orig, spec).unwrap() == out,
                "{spec}/{f}: a truncated file rendered, but not as the whole file does"
            );
        }
    });
    let failed = outcome.values().filter(|(e, _)| *e > 0).count();
    let rendered: Vec<&String> = outcome
        .iter()
        .filter(|(f, (_, ok))| *ok > 0 && f.as_str() != "good.jpg")
        .map(|(f, _)| f)
        .collect();
    assert!(
        failed >= originals.len() * 3 - 6,
        "most cuts must fail: {outcome:?}"
    );
    eprintln!(
        "{} truncated files; {failed} fail, rendered identical to the whole file: {rendered:?}",
        originals.len() * 3
    );
}

/// Single-bit and byte flips in headers and data of every format: the CLI and the mount agree
/// (same bytes, or exit 1 and EIO), nothing panics, hangs or kills the daemon.
#[test]
fn bit_flips_fail_cleanly_or_render_the_same_both_ways() {
    let scratch = tempfile::tempdir().unwrap();
    let src = source_dir();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let originals = samples(scratch.path());
    let mut n = 0;
    for p in &originals {
        let bytes = fs::read(p).unwrap();
        let base = p.file_name().unwrap().to_string_lossy().into_owned();
        for k in 0..10 {
            let mut b = bytes.clone();
            // Half the flips in the first 256 bytes (headers, tables), half anywhere.
            let span = if k % 2 == 0 {
                b.len().min(256)
            } else {
                b.len()
            };
            let flips = 1 + (rng.next() % 3) as usize;
            for _ in 0..flips {
                let at = (rng.next() % span as u64) as usize;
                if k % 5 == 4 {
                    b[at] = (rng.next() & 0xFF) as u8; // a whole byte
                } else {
                    b[at] ^= 1 << (rng.next() % 8);
                }
            }
            fs::write(src.path().join(format!("f{k}.{base}")), b).unwrap();
            n += 1;
        }
    }
    let outcome = cli_and_mount_agree(src.path(), &["w64_png", "q90_shrink2"], |_, _, _| {});
    let failed = outcome.values().filter(|(e, _)| *e > 0).count();
    eprintln!("{n} flipped files: {failed} fail cleanly, the rest render identically both ways");
}

/// Path of each image under a spec directory, by its path relative to the source root,
/// walking the source tree with the library's own naming.
fn virtual_names(root: &Path, spec: &str) -> BTreeMap<PathBuf, PathBuf> {
    let format = spec.parse::<thumbfs::Spec>().unwrap().format;
    let names = thumbfs::mount::names::Names::default();
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let store = thumbfs::store::LocalStore::new(root).unwrap();
        for e in &names.list(&store, &rel, format).unwrap().entries {
            if e.is_dir() {
                stack.push(e.rel.clone());
            } else {
                out.insert(e.rel.clone(), rel.join(&e.name));
            }
        }
    }
    out
}

/// Every file under the corpus (recursively: broken PNGs, the truncated progressive JPEG, the
/// licence texts) through the mount under four specs not covered by mount/reads.rs: each
/// image reads as the engine's bytes or EIO within the render timeout, non-images are hidden,
/// the daemon survives, and the corpus is unchanged (names, sizes, mtimes, contents).
#[test]
fn whole_corpus_under_four_more_specs_and_the_tree_is_untouched() {
    let root = fs::canonicalize(corpus("")).unwrap();
    let before = tree_manifest(&root);
    let timeout = 20;
    let mut m = Mount::new(&root, &["--render-timeout", &timeout.to_string()]);
    let mut all_files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(r);
            } else {
                all_files.push(r);
            }
        }
    }
    all_files.sort();
    assert!(all_files.len() >= 200, "{} corpus files", all_files.len());
    for must in [
        "jpeg/video-001.progressive.truncated.jpeg",
        "pngsuite/corrupt/xs1n0g01.png",
    ] {
        assert!(all_files.contains(&PathBuf::from(must)), "{must}");
    }
    let (mut ok, mut eio, mut slowest) = (0, 0, (Duration::ZERO, String::new()));
    for spec in ["w256_webp", "png", "fill_64x64_grey_jpg", "rot90_flop_ppm"] {
        let virt = virtual_names(&root, spec);
        for rel in &all_files {
            let Some(shown) = virt.get(rel) else {
                let mut src = thumbfs::Source::file(root.join(rel)).unwrap();
                assert!(
                    thumbfs::codec::sniff(&mut src).is_err(),
                    "{}: an image missing from {spec}/",
                    rel.display()
                );
                continue;
            };
            let p = m.dir.path().join(spec).join(shown);
            let t = Instant::now();
            let got = fs::read(&p);
            let took = t.elapsed();
            assert!(
                took < Duration::from_secs(timeout),
                "{spec}/{}: {took:?}",
                rel.display()
            );
            if took > slowest.0 {
                slowest = (took, format!("{spec}/{}", rel.display()));
            }
            match (got, engine(&root.join(rel), spec)) {
                (Ok(bytes), Ok(want)) => {
                    assert!(bytes == want, "{}: bytes differ from convert", p.display());
                    ok += 1;
                }
                (Err(e), Err(_)) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{}", p.display());
                    eio += 1;
                }
                (got, want) => panic!(
                    "{}: mount {:?} but convert {:?}",
                    p.display(),
                    got.map(|b| b.len()),
                    want.map(|b| b.len())
                ),
            }
        }
        assert!(m.alive(), "daemon died during {spec}");
    }
    // The corrupt PNGs fail under every spec; everything else renders.
    assert!(ok >= 700 && eio >= 20, "{ok} read, {eio} EIO");
    let st = m.stats();
    assert_eq!(st["in_flight"], 0);
    let errors = m.errors();
    assert!(
        errors.iter().any(|l| l.contains("pngsuite/corrupt/")),
        "broken PNGs are listed"
    );
    m.stop(None);
    assert_eq!(tree_manifest(&root), before, "the corpus changed");
    eprintln!(
        "{ok} outputs equal convert, {eio} EIO; slowest {} in {:?}",
        slowest.1, slowest.0
    );
}
