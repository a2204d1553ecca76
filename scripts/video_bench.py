#!/usr/bin/env python3
"""W12 (issue 25): the poster frame of a 4K phone-like video, thumbfs against FFmpeg + libvips.

A 10 s 3840x2160 30 fps H.264 clip (libx264 veryfast, a key frame every second, as phones
record; turned by a 90-degree display matrix, as a phone held upright writes it) made from
ffmpeg's testsrc2. thumbfs `convert w256 clip.mp4 -` (its poster is at 10 % of 10 s: 1 s)
against `ffmpeg -ss 1 -i clip.mp4 -frames:v 1 -f
image2pipe -vcodec ppm - | vips thumbnail_source [descriptor=0] .jpg 256 --height 100000` (both write a
256-wide JPEG at Q75 to a pipe). Time to the first output byte and the whole time, runs
alternating; medians. Writes its section of bench/REPORT.md (replaced in place, or put before
the W8 section).

Usage: scripts/video_bench.py RUNS THUMBFS_BINARY
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "bench", "REPORT.md")
TITLE = "## W12: poster frame of a 4K phone video against ffmpeg + vips"


def timed(cmd, out_path):
    """Runs a shell pipeline writing to its stdout; (seconds to first byte, total seconds)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE)
    first = p.stdout.read(1)
    t_first = time.perf_counter() - start
    rest = p.stdout.read()
    p.wait()
    total = time.perf_counter() - start
    if p.returncode != 0 or not first:
        sys.exit(f"failed: {cmd}")
    with open(out_path, "wb") as f:
        f.write(first + rest)
    return t_first, total


def psnr(a, b):
    r = subprocess.run(
        ["compare", "-metric", "PSNR", a, b, "null:"], capture_output=True, text=True
    )
    return r.stderr.strip()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    binary = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "target/release/thumbfs")
    d = tempfile.mkdtemp(prefix="thumbfs-video-bench.")
    try:
        flat = os.path.join(d, "flat.mp4")
        clip = os.path.join(d, "clip.mp4")
        t0 = time.perf_counter()
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
             "testsrc2=s=3840x2160:r=30:d=10", "-c:v", "libx264", "-preset", "veryfast",
             "-g", "30", "-pix_fmt", "yuv420p", flat],
            check=True,
        )
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", flat, "-c", "copy",
             "-metadata:s:v", "rotate=90", clip],
            check=True,
        )
        made = time.perf_counter() - t0
        ours_cmd = f"{binary} convert w256 {clip} -"
        theirs_cmd = (
            f"ffmpeg -v error -ss 1 -i {clip} -frames:v 1 -f image2pipe -vcodec ppm - "
            f"| vips thumbnail_source [descriptor=0] .jpg[Q=75] 256 --height 100000"
        )
        ours_out, theirs_out = os.path.join(d, "ours.jpg"), os.path.join(d, "theirs.jpg")
        timed(ours_cmd, ours_out)
        timed(theirs_cmd, theirs_out)
        rows = {"ours": [], "theirs": []}
        for i in range(runs):
            order = [("ours", ours_cmd, ours_out), ("theirs", theirs_cmd, theirs_out)]
            if i % 2:
                order.reverse()
            for name, cmd, out in order:
                rows[name].append(timed(cmd, out))
        med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
               for k, v in rows.items()}
        ratio_first = statistics.median(
            a[0] / b[0] for a, b in zip(rows["ours"], rows["theirs"]))
        ratio_total = statistics.median(
            a[1] / b[1] for a, b in zip(rows["ours"], rows["theirs"]))
        sizes = (os.path.getsize(ours_out), os.path.getsize(theirs_out))
        dims = subprocess.run(["identify", "-format", "%wx%h", ours_out],
                              capture_output=True, text=True).stdout
        db = psnr(ours_out, theirs_out)
        load = os.getloadavg()[0]
        busy = ("" if load <= (os.cpu_count() or 1) / 2 else
                " The machine was busy (other jobs ran), so the times are inflated; the"
                " alternating pairs' ratio is the estimate.")
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        section = f"""{TITLE}

Written by `scripts/video_bench.py` (`scripts/bench.sh video`) on {when}: {os.cpu_count()} cores, load average {load:.2f} (1 min) at the end; binary `{os.path.relpath(binary, ROOT)}`. The clip: 10 s of `testsrc2` at 3840x2160, 30 fps, H.264 (libx264 veryfast, a key frame every 30 frames, as phones record), turned by a 90-degree display matrix as an upright phone writes it ({os.path.getsize(clip) / 1e6:.1f} MB, made in {made:.0f} s). Both sides take the frame at 1 s (10 % of the clip; thumbfs seeks exactly, as `ffmpeg -ss` does: from the key frame at 1 s, here the frame itself), turn it upright and write a 256-wide Q75 JPEG to a pipe: thumbfs `convert w256 clip.mp4 -` against `ffmpeg -v error -ss 1 -i clip.mp4 -frames:v 1 -f image2pipe -vcodec ppm - | vips thumbnail_source [descriptor=0] .jpg[Q=75] 256 --height 100000` (the height only so that vips makes it 256 wide, not 256 high; Debian's FFmpeg 5.1 and libvips 8.14 CLI). {runs} runs after one warm-up each, alternating; medians, ratio = median of the per-run ratios.

| measurement | thumbfs | ffmpeg + vips | ratio |
|---|---|---|---|
| time to first byte | {med['ours'][0]:.3f} s | {med['theirs'][0]:.3f} s | {ratio_first:.2f}x |
| whole time | {med['ours'][1]:.3f} s | {med['theirs'][1]:.3f} s | {ratio_total:.2f}x |

Outputs: {dims}, thumbfs {sizes[0]} bytes, ffmpeg + vips {sizes[1]} bytes, PSNR between them {db} dB.{busy}
"""
        text = open(REPORT).read() if os.path.exists(REPORT) else ""
        if TITLE in text:
            start = text.index(TITLE)
            nxt = text.find("\n## ", start + len(TITLE))
            text = text[:start] + section + (text[nxt + 1:] if nxt >= 0 else "")
        elif "\n## W8" in text:
            at = text.index("\n## W8") + 1
            text = text[:at] + section + "\n" + text[at:]
        else:
            text = text.rstrip("\n") + "\n\n" + section
        with open(REPORT, "w") as f:
            f.write(text)
        print(section)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
