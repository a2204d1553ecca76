//! The one helper module of the integration tests: corpus paths, the thumbfs binary, running
//! commands (also as nobody), independent decoders, PSNR, a small RNG; mounts (`mount`), S3
//! servers and proxies (`s3`) and codec helpers (`codec`) in submodules.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A file or folder in `../shared/corpus`.
pub fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel)
}

/// Every file in a corpus folder with one of `exts` (lowercase, no dot), sorted.
pub fn corpus_files(dir: &str, exts: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus(dir))
        .unwrap_or_else(|e| panic!("corpus {dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    v.sort();
    v
}

/// The built `thumbfs` binary.
pub fn thumbfs_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_thumbfs"))
}

/// Pixels decoded by an independent tool, widened to 16 bits per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    /// Samples per pixel.
    pub bands: u32,
    /// Maximum sample value in the source (255 or 65535).
    pub maxval: u32,
    pub data: Vec<u16>,
}

/// Parses a binary PAM (P7) or PPM/PGM (P5/P6), as written by ImageMagick or vips.
pub fn parse_pnm(bytes: &[u8]) -> Pixels {
    let mut pos = 0;
    let mut token = || -> String {
        loop {
            while bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if bytes[pos] == b'#' {
                while bytes[pos] != b'\n' {
                    pos += 1;
                }
                continue;
            }
            break;
        }
        let start = pos;
        while !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        String::from_utf8_lossy(&bytes[start..pos]).into_owned()
    };
    let magic = token();
    let (mut w, mut h, mut bands, mut maxval) = (0, 0, 0, 0);
    if magic == "P7" {
        loop {
            match token().as_str() {
                "WIDTH" => w = token().parse().unwrap(),
                "HEIGHT" => h = token().parse().unwrap(),
                "DEPTH" => bands = token().parse().unwrap(),
                "MAXVAL" => maxval = token().parse().unwrap(),
                "TUPLTYPE" => {
                    token();
                }
                "ENDHDR" => break,
                t => panic!("unexpected PAM header token {t}"),
            }
        }
    } else {
        bands = match magic.as_str() {
            "P5" => 1,
            "P6" => 3,
            m => panic!("unsupported reference format {m}"),
        };
        w = token().parse().unwrap();
        h = token().parse().unwrap();
        maxval = token().parse().unwrap();
    }
    pos += 1; // the single whitespace after the header
    let n = (w * h * bands) as usize;
    let data: Vec<u16> = if maxval > 255 {
        bytes[pos..pos + 2 * n]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    } else {
        bytes[pos..pos + n].iter().map(|&b| b as u16).collect()
    };
    Pixels {
        width: w,
        height: h,
        bands,
        maxval,
        data,
    }
}

/// Runs a command that must succeed; its stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The stdout of a finished command that must have succeeded.
pub fn succeeded(out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "thumbfs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A path as the `&str` a command-line argument list wants.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs the thumbfs binary with `args`, which must succeed; its stdout.
pub fn thumbfs(args: &[&str]) -> Vec<u8> {
    run(Command::new(thumbfs_bin()).args(args))
}

/// Runs the thumbfs binary with `args`, whatever its exit status.
pub fn thumbfs_output(args: &[&str]) -> Output {
    Command::new(thumbfs_bin()).args(args).output().unwrap()
}

/// `setpriv` arguments that make the command run as nobody with no groups.
pub const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// `cat` as nobody: (success, stderr).
pub fn cat_as_nobody(p: &Path) -> (bool, String) {
    let out = Command::new("setpriv")
        .args(NOBODY)
        .arg("cat")
        .arg(p)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// xorshift64*: cheap reproducible randomness.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The EXIF orientation exiftool reads from `path` (empty when there is none).
pub fn exif_orientation(path: &Path) -> String {
    let out = exiftool(&["-s3", "-n", "-Orientation"], path);
    String::from_utf8_lossy(&out).trim().to_string()
}

/// ImageMagick (and libtiff underneath) reads `path` with nothing on stderr.
pub fn magick_reads_cleanly(path: &Path) {
    let out = Command::new("identify").arg(path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "identify {path:?}: {err}"
    );
}

/// Decodes with ImageMagick to PAM, keeping bands and depth (`-depth 8` or `16`).
pub fn magick_decode(path: &Path, depth: u32) -> Pixels {
    parse_pnm(&run(Command::new("convert")
        .arg(path)
        .args(["-depth", &depth.to_string()])
        .arg("pam:-")))
}

/// Decodes with ImageMagick to 8-bit RGB (alpha dropped, grey expanded).
pub fn magick_rgb8(path: &Path) -> Pixels {
    parse_pnm(&run(Command::new("convert")
        .arg(path)
        .args([
            "-alpha",
            "off",
            "-colorspace",
            "sRGB",
            "-type",
            "TrueColor",
            "-depth",
            "8",
        ])
        .arg("ppm:-")))
}

/// Decodes a JPEG with libjpeg-turbo's djpeg to PPM/PGM.
pub fn djpeg(path: &Path) -> Pixels {
    parse_pnm(&run(Command::new("djpeg").arg(path)))
}

/// Decodes with libvips to PPM/PGM/PFM-free PNM (8-bit).
pub fn vips_decode(path: &Path) -> Pixels {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ppm");
    run(Command::new("vips").arg("copy").arg(path).arg(&out));
    parse_pnm(&std::fs::read(&out).unwrap())
}

/// Peak signal-to-noise ratio in dB over samples of the same scale (`maxval`).
pub fn psnr(a: &[u16], b: &[u16], maxval: u32) -> f64 {
    assert_eq!(a.len(), b.len(), "sample counts differ");
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum();
    if se == 0.0 {
        return f64::INFINITY;
    }
    let mse = se / a.len() as f64;
    10.0 * ((maxval as f64).powi(2) / mse).log10()
}

/// A real ICC profile ("Generic RGB Profile"), extracted by exiftool from a corpus JPEG and
/// written to `dir/profile.icc`: its path and bytes.
pub fn sample_icc(dir: &Path) -> (PathBuf, Vec<u8>) {
    let icc = exiftool(
        &["-b", "-ICC_Profile"],
        &corpus("exif-orientation/Landscape_4.jpg"),
    );
    assert!(icc.len() > 128, "no ICC profile extracted");
    let path = dir.join("profile.icc");
    std::fs::write(&path, &icc).unwrap();
    (path, icc)
}

pub mod codec;
mod exiftool;
pub use exiftool::exiftool;
pub mod mount;
pub mod s3;
