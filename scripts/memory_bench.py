#!/usr/bin/env python3
"""W11 (issue 21): peak RSS of `thumbfs convert` against `vips thumbnail`, written as a section
of bench/REPORT.md (replaced in place, or put before the W8 section so a `camera` run keeps it).

    scripts/memory_bench.py [runs] [thumbfs binary]   (default 3 runs, target/release/thumbfs)

Both sides run as a process per image under GNU time (`%M`: the child's peak resident set; time
forks, so the child starts from time's own small one). Peaks are medians over the runs. Inputs:
a 24 MP photo (the 15.9 MP seeding photo enlarged 1.23x by libvips, a baseline JPEG Q90; the
corpus has no 24 MP camera photo), the 12.2 MP sunset photo, and that photo as PNG.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.normpath(os.path.join(ROOT, "..", "shared", "corpus", "photos"))
REPORT = os.path.join(ROOT, "bench", "REPORT.md")
TITLE = "## W11: peak memory of one render against vips thumbnail"


def peak_mb(cmd):
    """Runs `cmd` under GNU time; returns its peak RSS in MB."""
    p = subprocess.run(["/usr/bin/time", "-f", "PEAK %M"] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {p.stderr}")
    return int(re.findall(r"PEAK (\d+)", p.stderr)[-1]) / 1024


def size(path):
    out = subprocess.run(["vipsheader", path], capture_output=True, text=True, check=True).stdout
    return re.search(r"(\d+)x(\d+)", out).groups()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    binary = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "target", "release", "thumbfs")
    tmp = tempfile.mkdtemp(prefix="thumbfs-mem-")
    big = os.path.join(tmp, "seeding-24mp.jpg")
    subprocess.run(["vips", "resize", os.path.join(CORPUS, "seeding_by_Clements_Engelhardt.jpg"),
                    big + "[Q=90]", "1.23"], check=True)
    sunset = os.path.join(CORPUS, "sunset_by_Aitzol_Berasategi.jpg")
    png = os.path.join(tmp, "sunset.png")
    subprocess.run(["vips", "copy", sunset, png], check=True)
    sw, _ = size(png)
    cases = [
        ("w5000 of a 24 MP JPEG", big, "w5000", "jpg", ["5000"]),
        ("w8000_up of a 12 MP JPEG", sunset, "w8000_up", "jpg", ["8000", "--size", "both"]),
        ("full-size PNG re-encode (12 MP PNG)", png, "png", "png", [sw]),
    ]
    rows = []
    for name, src, spec, ext, vargs in cases:
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(peak_mb([binary, "convert", spec, src, os.path.join(tmp, "o." + ext)]))
            theirs.append(peak_mb(["vips", "thumbnail", src, os.path.join(tmp, "v." + ext)]
                                  + vargs))
        a, b = statistics.median(ours), statistics.median(theirs)
        verdict = "met" if a <= b else f"missed by {(a / b - 1) * 100:.0f} %"
        w, h = size(src)
        rows.append(f"| {name} ({w}x{h}) | `convert {spec}` | {a:.0f} MB | "
                    f"`vips thumbnail ... {' '.join(vargs)}` | {b:.0f} MB | {a / b:.2f}x | "
                    f"<= 1.0x: {verdict} |")
        print(rows[-1], flush=True)
    vips = subprocess.run(["vips", "--version"], capture_output=True, text=True).stdout.strip()
    section = "\n".join([
        TITLE,
        "",
        f"Written by `scripts/memory_bench.py` ({runs} runs each, medians; {vips}). Peak RSS "
        "of a whole process per image (GNU time `%M`). The resize runs over bands of rows "
        "(`crates/engine/src/ops/resize.rs`), so thumbfs' peak is the decoder's and encoder's state plus a "
        "band; a progressive JPEG (the sunset photo) needs its whole coefficient buffer on "
        "both sides. The 24 MP input is the seeding photo enlarged 1.23x by libvips (no 24 MP "
        "camera photo in the corpus).",
        "",
        "| case | thumbfs | peak RSS | vips | peak RSS | ratio | target |",
        "|---|---|---|---|---|---|---|",
    ] + rows) + "\n"
    text = open(REPORT).read() if os.path.exists(REPORT) else ""
    if TITLE in text:
        start = text.index(TITLE)
        nxt = text.find("\n## ", start + len(TITLE))
        text = text[:start] + section + (text[nxt:] if nxt >= 0 else "")
    elif "\n## W8" in text:
        at = text.index("\n## W8") + 1
        text = text[:at] + section + "\n" + text[at:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(REPORT, "w") as f:
        f.write(text)
    subprocess.run(["rm", "-rf", tmp])
    print(f"wrote {TITLE[3:]} into {REPORT}")


if __name__ == "__main__":
    main()
