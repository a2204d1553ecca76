//! Videos: clips made here by `ffmpeg`, their poster frame through the CLI and a real mount,
//! compared with `ffmpeg -ss T -i clip -frames:v 1` resized by libvips; hostile clips give
//! EIO with the daemon still up.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mount::{engine, Mount};
use common::*;

/// Runs `ffmpeg -v error -y` with `args`.
fn ffmpeg(args: &[&str]) {
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args));
}

/// testsrc2 (moving pictures: neighbouring frames differ by 15-20 dB) as a lavfi input of
/// `secs` seconds at 25 fps, with `extra` filters.
fn testsrc(secs: u32, extra: &str) -> String {
    format!("testsrc2=s=640x360:r=25:d={secs}{extra}")
}

/// The clips: (file name, poster time in seconds, turned a quarter).
fn clips(d: &Path) -> Vec<(PathBuf, f64, bool)> {
    let x264 = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ];
    let x265 = [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "log-level=none",
    ];
    let h264 = d.join("h264.mp4");
    ffmpeg(
        &[
            &["-f", "lavfi", "-i", &testsrc(4, "")][..],
            &x264,
            &[p(&h264)],
        ]
        .concat(),
    );
    // A phone's sideways clip: HEVC in QuickTime with a 90° display matrix (FFmpeg 5.1 writes
    // the matrix from the `rotate` tag on a stream copy).
    let flat = d.join("flat.mov");
    ffmpeg(
        &[
            &["-f", "lavfi", "-i", &testsrc(4, "")][..],
            &x265,
            &["-tag:v", "hvc1", p(&flat)],
        ]
        .concat(),
    );
    let turned = d.join("phone.mov");
    ffmpeg(&[
        "-i",
        p(&flat),
        "-c",
        "copy",
        "-metadata:s:v",
        "rotate=90",
        p(&turned),
    ]);
    // 12 s: the poster is at 10 % of it.
    let vp9 = d.join("vp9.webm");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &testsrc(12, ""),
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-g",
        "50",
        p(&vp9),
    ]);
    let deep = d.join("deep.mkv");
    ffmpeg(
        &[
            &["-f", "lavfi", "-i", &testsrc(4, "")][..],
            &x265[..4],
            &[
                "-x265-params",
                "log-level=none",
                "-pix_fmt",
                "yuv420p10le",
                p(&deep),
            ],
        ]
        .concat(),
    );
    // Black for the first 1.2 s: the poster is the first frame after it, not the one at 1 s.
    let dark = d.join("dark.mp4");
    let black = ",drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='lt(t,1.2)'";
    ffmpeg(
        &[
            &["-f", "lavfi", "-i", &testsrc(4, black)][..],
            &x264,
            &[p(&dark)],
        ]
        .concat(),
    );
    vec![
        (h264, 1.0, false),
        (turned, 1.0, true),
        (vp9, 1.2, false),
        (deep, 1.0, false),
        (dark, 1.2, false),
    ]
}

/// PSNR of our PNG against `ffmpeg -ss t`'s frame of `clip`, resized by libvips to our size.
fn db_against_ffmpeg(ours: &Path, clip: &Path, t: f64, d: &Path) -> f64 {
    let reference = d.join("reference.png");
    ffmpeg(&[
        "-ss",
        &t.to_string(),
        "-i",
        p(clip),
        "-frames:v",
        "1",
        p(&reference),
    ]);
    let ours = magick_decode(ours, 8);
    let resized = d.join("reference.resized.png");
    run(Command::new("vips")
        .arg("thumbnail")
        .arg(&reference)
        .arg(&resized)
        .arg(ours.width.to_string())
        .args(["--height", &ours.height.to_string(), "--size", "force"]));
    let theirs = magick_decode(&resized, 8);
    assert_eq!((ours.width, ours.height), (theirs.width, theirs.height));
    psnr(&ours.data, &theirs.data, 255)
}

/// Each clip's poster frame is ffmpeg's frame at the expected time (>= 35 dB; the frames
/// 0.2 s either side score 20 dB or less, so the threshold tells the right frame apart; what
/// remains is swscale's chroma upsampling, which `ffmpeg`'s default flags do more coarsely,
/// and the two resize kernels), the sideways clip comes out upright, and the output is
/// reproducible.
#[test]
fn poster_frames_match_ffmpeg_at_the_chosen_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (clip, t, turned) in clips(d) {
        let name = clip.file_name().unwrap().to_str().unwrap().to_string();
        let ours = d.join(format!("{name}.png"));
        thumbfs(&["convert", "w256_png", p(&clip), p(&ours)]);
        let again = d.join(format!("{name}.again.png"));
        thumbfs(&["convert", "w256_png", p(&clip), p(&again)]);
        assert_eq!(
            fs::read(&ours).unwrap(),
            fs::read(&again).unwrap(),
            "{name}"
        );
        let px = magick_decode(&ours, 8);
        let want = if turned { (256, 455) } else { (256, 144) };
        assert_eq!((px.width, px.height), want, "{name}");
        let db = db_against_ffmpeg(&ours, &clip, t, d);
        let before = db_against_ffmpeg(&ours, &clip, t - 0.2, d);
        let after = db_against_ffmpeg(&ours, &clip, t + 0.2, d);
        eprintln!(
            "{name}: {db:.1} dB vs ffmpeg at {t} s ({before:.1} / {after:.1} dB 0.2 s either side)"
        );
        assert!(db >= 35.0, "{name}: {db:.1} dB against ffmpeg at {t} s");
        assert!(
            db > before.max(after) + 10.0,
            "{name}: not the frame at {t} s"
        );
    }
}

/// A pipe (unseekable) gives the same poster as the file.
#[test]
fn a_piped_video_gives_the_same_poster() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = d.join("clip.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &testsrc(2, ""),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        p(&clip),
    ]);
    let out = Command::new(thumbfs_bin())
        .args(["convert", "w128", "-", "-"])
        .stdin(fs::File::open(&clip).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, engine(&clip, "w128").unwrap());
}

/// Through a mount: `clip.mp4` is `clip.jpg` under a spec, its size exact and its bytes the
/// CLI's; truncated, damaged and oversized clips give EIO with a log line, and the daemon
/// lives on.
#[test]
fn mount_serves_videos_as_jpeg_and_refuses_hostile_ones() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let clip = src.join("clip.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &testsrc(3, ""),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        p(&clip),
    ]);
    let good = fs::read(&clip).unwrap();
    // The index (moov) is at the end: half a file has none.
    fs::write(src.join("trunc.mp4"), &good[..good.len() / 2]).unwrap();
    // Wrong codec parameters: the avcC box (SPS/PPS) scrambled.
    let mut bad = good.clone();
    let at = good.windows(4).position(|w| w == b"avcC").unwrap();
    for b in &mut bad[at + 8..at + 40] {
        *b ^= 0xFF;
    }
    fs::write(src.join("params.mp4"), &bad).unwrap();
    // Too many pixels for --max-pixels 4 M, refused from the container's header.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=4000x3000:r=1:d=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        p(&src.join("huge.mp4")),
    ]);
    // Not a video at all behind the magic bytes: an EBML header and noise.
    let mut noise = vec![0x1A, 0x45, 0xDF, 0xA3];
    let mut rng = Rng(7);
    noise.extend((0..20_000).map(|_| rng.next() as u8));
    fs::write(src.join("noise.webm"), &noise).unwrap();

    let mut m = Mount::new(&src, &["--max-pixels", "4000000"]);
    let mut names: Vec<String> = fs::read_dir(m.path("w256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "clip.jpg",
            "huge.jpg",
            "noise.jpg",
            "params.jpg",
            "trunc.jpg"
        ]
    );
    let served = m.path("w256/clip.jpg");
    let size = fs::metadata(&served).unwrap().len();
    let bytes = fs::read(&served).unwrap();
    assert_eq!(
        size,
        bytes.len() as u64,
        "stat size differs from the bytes read"
    );
    assert_eq!(
        bytes,
        engine(&clip, "w256").unwrap(),
        "mount and CLI bytes differ"
    );
    let out = dir.path().join("served.jpg");
    fs::write(&out, &bytes).unwrap();
    let px = djpeg(&out);
    assert_eq!((px.width, px.height), (256, 144));
    for name in ["trunc", "params", "huge", "noise"] {
        let e = fs::read(m.path(&format!("w256/{name}.jpg"))).expect_err(name);
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{name}: {e}");
        assert!(m.alive(), "the daemon died on {name}: {}", m.log_text());
    }
    let log = m.log_text();
    for name in ["trunc.mp4", "params.mp4", "huge.mp4", "noise.webm"] {
        assert!(log.contains(name), "no log line for {name}: {log}");
    }
}
