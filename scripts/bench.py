#!/usr/bin/env python3
"""thumbfs against libvips and ImageMagick, side by side, alternating runs; writes bench/REPORT.md.

Run through scripts/bench.sh (installs the anchors, builds thumbfs in release mode and creates
the venv with pinned pyvips + pyvips-binary whose Python runs this script).
`bench.py RUNS camera` runs only the in-process comparisons: camera photos (W8) and the phone
and modern formats (W10).
Every workload runs once to warm up, then `runs` times alternating thumbfs and its anchor
(A B A B ...). Times are medians; ratios are computed pair by pair (thumbfs / anchor) and their
median reported. Peak RSS comes from wait4() for commands and from the daemon's VmHWM growth
for mount workloads.
"""

import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "thumbfs")
CORPUS = os.path.normpath(os.path.join(ROOT, "..", "shared", "corpus"))
WORK = os.path.join(ROOT, "bench", "work")
REPORT = os.path.join(ROOT, "bench", "REPORT.md")
CHART = os.path.join(ROOT, "bench", "chart.svg")
PROFILE = os.path.join(ROOT, "bench", "PROFILE.md")
PHOTO = os.path.join(CORPUS, "photos", "sunset_by_Aitzol_Berasategi.jpg")
CORES = os.cpu_count() or 1


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def run_cpu(cmd):
    """Runs a command to completion; returns (wall seconds, CPU seconds user+system)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"{cmd} failed: {p.stderr.read().decode(errors='replace')}")
    return elapsed, usage.ru_utime + usage.ru_stime


def run_timed(cmd, shell=False):
    """Runs a command to completion; returns (seconds, peak RSS in MB of the largest process)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"{cmd} failed: {p.stderr.read().decode(errors='replace')}")
    return elapsed, usage.ru_maxrss / 1024


def first_byte(cmd):
    """Runs a shell pipeline; returns (time to first stdout byte, total time)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    fd = p.stdout.fileno()
    first = os.read(fd, 1)
    ttfb = time.perf_counter() - t0
    if not first:
        raise RuntimeError(f"{cmd}: no output")
    while os.read(fd, 1 << 20):
        pass
    p.wait()
    return ttfb, time.perf_counter() - t0


def read_file(path):
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return n
            n += len(b)


class Mount:
    """A thumbfs daemon in the foreground of a child process, unmounted on exit."""

    def __init__(self, src, *opts):
        self.dir = tempfile.mkdtemp(prefix="thumbfs-bench-")
        self.proc = subprocess.Popen(
            [BIN, "mount", "-f", *opts, src, self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while not os.path.ismount(self.dir):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("thumbfs mount did not come up")
            time.sleep(0.01)

    def status(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def close(self):
        subprocess.run(["fusermount3", "-u", self.dir], stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            subprocess.run(["umount", "-l", self.dir], stderr=subprocess.DEVNULL)
            self.proc.wait()
        os.rmdir(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def prepare():
    """Inputs: a 6000x4000 4:2:0 Q90 JPEG, 40 photo-sized JPEGs, 1000 small JPEGs."""
    os.makedirs(WORK, exist_ok=True)
    big = os.path.join(WORK, "big.jpg")
    if not os.path.exists(big):
        tmp = os.path.join(WORK, "big.v")
        sh("vips", "resize", PHOTO, tmp, "1.4045")
        sh("vips", "crop", tmp, os.path.join(WORK, "crop.v"), "0", "0", "6000", "4000")
        sh("vips", "copy", os.path.join(WORK, "crop.v"), big + "[Q=90]")
        os.remove(tmp)
        os.remove(os.path.join(WORK, "crop.v"))
    photos = os.path.join(WORK, "photos40")
    if not os.path.isdir(photos):
        os.makedirs(photos + ".tmp", exist_ok=True)
        for i in range(40):
            # Distinct 3000x2000 windows of the big image: real photo content, 6 MP each.
            x, y = (i % 8) * 375, (i // 8) * 500
            sh("vips", "crop", big, os.path.join(photos + ".tmp", f"p{i:02}.jpg[Q=90]"),
               str(x), str(y), "3000", "2000")
        os.rename(photos + ".tmp", photos)
    small = os.path.join(WORK, "small1000")
    if not os.path.isdir(small):
        os.makedirs(small + ".tmp", exist_ok=True)
        seed = os.path.join(WORK, "seed.jpg")
        sh("vips", "thumbnail", PHOTO, seed, "160")
        for i in range(1000):
            shutil.copyfile(seed, os.path.join(small + ".tmp", f"s{i:04}.jpg"))
        os.rename(small + ".tmp", small)
    return big, photos, small


def psnr(a, b):
    """PSNR of two image files, decoded by ImageMagick."""
    out = subprocess.run(["compare", "-metric", "PSNR", a, b, "null:"],
                         capture_output=True, text=True)
    return out.stderr.strip().split()[0]


def median(xs):
    return statistics.median(xs)


class Report:
    def __init__(self):
        self.rows = []
        self.notes = []
        self.camera_rows = []
        self.camera_files = []
        self.camera_libvips = "?"
        self.camera_w5 = []
        self.modern_rows = []

    def add(self, workload, ours, anchor_name, anchor, target, unit="s", rss=("", ""),
            higher_better=False):
        ratios = [a / b for a, b in zip(ours, anchor)]
        ratio = median(ratios)
        fmt = (lambda v: f"{v:.3f} {unit}") if unit == "s" else (lambda v: f"{v:.1f} {unit}")
        self.rows.append((workload, fmt(median(ours)), anchor_name, fmt(median(anchor)),
                          f"{ratio:.2f}x", verdict(ratio, target, higher_better), rss[0], rss[1]))
        print(f"{workload}: {fmt(median(ours))} vs {anchor_name} {fmt(median(anchor))}: {ratio:.2f}x",
              flush=True)


def verdict(ratio, target, higher_better=False):
    """"<= 0.8x: met" or ">= 1.5x: missed by 12 %", as every table states a target."""
    met = ratio >= target if higher_better else ratio <= target
    goal = (">= " if higher_better else "<= ") + f"{target}x"
    return f"{goal}: met" if met else f"{goal}: missed by {abs(ratio - target) / target * 100:.0f} %"


def alternate(runs, a, b):
    """Warm-up once each, then A B A B ... `runs` times; returns the two lists of results."""
    a()
    b()
    ra, rb = [], []
    for _ in range(runs):
        ra.append(a())
        rb.append(b())
    return ra, rb


def w6_open_modes(rep, photos, runs):
    """W6 by open mode (issue 12): cat of 40 finished w256 thumbnails x10 against the same bytes
    on tmpfs in the same run, one process reading all and one `cat` per file, with the default
    mode (`auto`: no-open under the default `--stat exact`) and with per-open side by side
    (scripts/w6_bench.py measures more clients)."""
    names = sorted(os.listdir(photos))
    shm = tempfile.mkdtemp(dir="/dev/shm")
    tmp = [os.path.join(shm, n) for n in names]

    def one_reader(paths):
        t0 = time.perf_counter()
        total = sum(read_file(p) for _ in range(10) for p in paths)
        return total / (time.perf_counter() - t0) / 1e6

    def cat_each(paths):
        listing = "\n".join(paths * 10) + "\n"
        total = sum(os.path.getsize(p) for p in paths) * 10
        t0 = time.perf_counter()
        subprocess.run(["xargs", "-n", "1", "cat"], input=listing.encode(),
                       stdout=subprocess.DEVNULL, check=True)
        return total / (time.perf_counter() - t0) / 1e6

    try:
        for mode in ("auto", "per-open"):
            with Mount(photos, "--open-mode", mode) as m:
                mnt = [m.path("w256", n) for n in names]
                for p, t in zip(mnt, tmp):
                    shutil.copyfile(p, t)  # renders, and puts the same bytes on tmpfs
                for what, f in (("one reader", one_reader), ("one cat per file", cat_each)):
                    a, b = alternate(runs, lambda: f(mnt), lambda: f(tmp))
                    rep.add(f"W6 {mode}: {what}, 40 thumbnails x10", a, "tmpfs", b, 0.85,
                            unit="MB/s", higher_better=True)
    finally:
        shutil.rmtree(shm)


CAMERA = ["seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg"]
SUBSAMPLING = {"1x1": "4:4:4", "2x1": "4:2:2", "2x2": "4:2:0", "1x2": "4:4:0", "4x1": "4:1:1"}
# Targets from issue 10: thumbfs / libvips in-process, (baseline, progressive); None: no target.
CAMERA_ROWS = [
    # name, thumbfs spec, output extension, target (baseline, progressive)
    ("w256 Q75", "w256_q75", "jpg", (0.6, 0.9)),
    ("w1024 Q75", "w1024_q75", "jpg", (0.8, 1.0)),
    ("shrink2+invert Q90", "shrink2_invert_q90", "jpg", (0.8, 1.0)),
    ("full re-encode Q75", "q75", "jpg", (0.9, 1.0)),
    ("JPEG -> PNG", "png", "png", None),
]
# Issue 24 item 1: w256 of a camera file with MPF previews, target 0.2x libvips' time.
MPF_ROW = ("w256 Q75 (MPF preview)", "w256_q75", "jpg", (0.2, 0.2))


def pyvips_op(pyvips, row, src, dst):
    """The libvips equivalent of a CAMERA_ROWS entry, as a thumbnail server would call it."""
    if row.startswith("w"):
        width = int(row[1:].split()[0])
        # A huge height makes the width the only constraint, as thumbfs' w<N>.
        return lambda: pyvips.Image.thumbnail(src, width, height=1 << 24).write_to_file(dst, Q=75)
    if row.startswith("shrink2"):
        return lambda: pyvips.Image.new_from_file(src, shrink=2, access="sequential") \
            .invert().write_to_file(dst, Q=90)
    if row.startswith("full"):
        return lambda: pyvips.Image.new_from_file(src, access="sequential").write_to_file(dst, Q=75)
    return lambda: pyvips.Image.new_from_file(src, access="sequential") \
        .write_to_file(dst, compression=1)


def cli_anchors(row, src, dst):
    """The same work with the Debian vips command line and with ImageMagick."""
    if row.startswith("w"):
        width = row[1:].split()[0]
        return (["vips", "thumbnail", src, dst + "[Q=75]", width, "--height", "16777216"],
                ["convert", "-define", f"jpeg:size={2 * int(width)}x{2 * int(width)}", src,
                 "-thumbnail", f"{width}x", "-quality", "75", dst])
    if row.startswith("shrink2"):
        return (["vips", "invert", src + "[shrink=2]", dst + "[Q=90]"],
                ["convert", src, "-scale", "50%", "-negate", "-quality", "90", dst])
    if row.startswith("full"):
        return (["vips", "copy", src, dst + "[Q=75]"], ["convert", src, "-quality", "75", dst])
    return (["vips", "copy", src, dst + "[compression=1]"],
            ["convert", src, "-define", "png:compression-level=1", dst])


def describe_jpeg(path):
    """Size, subsampling, progressive or baseline, estimated quality (ImageMagick)."""
    out = subprocess.run(["identify", "-format", "%w %h %[jpeg:sampling-factor] %[interlace] %Q",
                          path], capture_output=True, text=True, check=True).stdout.split()
    w, h, sf, interlace, q = out[:5]
    sub = SUBSAMPLING.get(sf.split(",")[0], sf)
    progressive = interlace.upper() not in ("NONE", "")
    mp = int(w) * int(h) / 1e6
    kind = "progressive" if progressive else "baseline"
    return f"{w}x{h} ({mp:.1f} MP), {sub}, {kind}, Q{q}", progressive


def camera(runs, out, rep):
    """W8: thumbfs (CLI process per image) against libvips 8.18 in this warm Python process."""
    import pyvips  # from the venv scripts/bench.sh creates

    pyvips.cache_set_max(0)
    libvips = f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
    inputs = []
    for name in CAMERA:
        src = os.path.join(CORPUS, "photos", name)
        twin = os.path.join(out, name.replace(".jpg", ".baseline.jpg"))
        # Same coefficients and subsampling, Huffman tables optimised, no re-quantisation.
        sh("jpegtran", "-optimize", "-outfile", twin, src)
        inputs += [src, twin]
    rep.camera_libvips = libvips
    for src in inputs:
        desc, progressive = describe_jpeg(src)
        rep.camera_files.append((os.path.basename(src), desc))
        for row in CAMERA_ROWS:
            camera_row(rep, runs, out, pyvips, src, row, progressive)
    # Issue 24 item 1: a camera file with MPF previews (the corpus has none: built here from
    # each baseline twin, as a Nikon writes them: a VGA and a full-HD preview appended).
    for src in inputs[1::2]:
        mpf = os.path.join(out, os.path.basename(src).replace(".jpg", ".mpf.jpg"))
        sizes = with_mpf_previews(src, mpf, out)
        desc, progressive = describe_jpeg(mpf)
        rep.camera_files.append((os.path.basename(mpf), desc + ", MPF previews "
                                 + " and ".join(sizes) + " appended by bench.py"))
        camera_row(rep, runs, out, pyvips, mpf, MPF_ROW, progressive)
        # The same through a mount: a warm daemon (no process start-up, as for libvips).
        camera_mount_row(rep, runs, out, pyvips, mpf, MPF_ROW, progressive)
    # Single-file latency without a process start-up (about 3 ms of every `thumbfs convert`
    # row): w256 and shrink2 of the baseline twins through a warm mount.
    for src in inputs[1::2]:
        desc, progressive = describe_jpeg(src)
        for row in (CAMERA_ROWS[0], CAMERA_ROWS[2]):
            camera_mount_row(rep, runs, out, pyvips, src, row, progressive)
    camera_w5(rep, runs, out, pyvips, inputs)


def camera_mount_row(rep, runs, out, pyvips, src, row, progressive):
    """A W8 row read through a mount: a warm daemon, each read a fresh copy of `src` so that
    nothing comes from the render cache."""
    copies = os.path.join(out, "mount-copies")
    shutil.rmtree(copies, ignore_errors=True)
    os.makedirs(copies)
    for i in range(runs + 1):
        shutil.copyfile(src, os.path.join(copies, f"m{i:03}.jpg"))
    label, spec, ext, target = row
    with Mount(copies) as m:
        fresh = iter(range(runs + 1))
        ours_out = os.path.join(out, f"w8-ours.{ext}")

        def through_mount():
            path = m.path(spec, f"m{next(fresh):03}.jpg")
            t0 = time.perf_counter()
            shutil.copyfile(path, ours_out)
            return time.perf_counter() - t0, float("nan")

        camera_row(rep, runs, out, pyvips, src, (label + ", through a mount", spec, ext, target),
                   progressive, ours=through_mount)


# Issue 24's W5 target: photos per second through the mount against libvips with as many threads.
W5_CAMERA_FILES = 40
W5_CAMERA_TARGET = 1.5


def camera_w5(rep, runs, out, pyvips, inputs):
    """W5 on camera files: w256 of 40 copies of the camera photos and their baseline twins
    (the same files under other names, so every read is a render), `xargs -P CORES cat`
    through a fresh mount, against libvips `thumbnail` on CORES threads of this warm process
    (a thumbnail server's shape), alternating."""
    from concurrent.futures import ThreadPoolExecutor

    src_dir = os.path.join(out, "w5-camera")
    shutil.rmtree(src_dir, ignore_errors=True)
    os.makedirs(src_dir)
    for i in range(W5_CAMERA_FILES):
        shutil.copyfile(inputs[i % len(inputs)], os.path.join(src_dir, f"c{i:02}.jpg"))
    names = sorted(os.listdir(src_dir))
    dst = os.path.join(out, "w5-camera-vips")
    os.makedirs(dst, exist_ok=True)

    def ours():
        with Mount(src_dir) as m:
            paths = " ".join(m.path("w256_q75", n) for n in names)
            t, _ = run_timed(f"printf '%s\\n' {paths} | xargs -P {CORES} -n 1 cat >/dev/null",
                             shell=True)
            return len(names) / t

    def one(n):
        pyvips.Image.thumbnail(os.path.join(src_dir, n), 256, height=1 << 24) \
            .write_to_file(os.path.join(dst, n), Q=75)

    def theirs():
        t0 = time.perf_counter()
        with ThreadPoolExecutor(CORES) as pool:
            list(pool.map(one, names))
        return len(names) / (time.perf_counter() - t0)

    a, b = alternate(runs, ours, theirs)
    ratio = median([x / y for x, y in zip(a, b)])
    said = verdict(ratio, W5_CAMERA_TARGET, higher_better=True)
    files = ", ".join(os.path.basename(p) for p in inputs)
    rep.camera_w5 = [
        "",
        f"## W5 on camera files: w256 of {len(names)} photos, all cores, against libvips "
        f"{rep.camera_libvips} in-process",
        "",
        f"{len(names)} files in the mount's source: copies of {files} under other names "
        "(every read is a render of its own). thumbfs: a fresh mount each run (cold: nothing "
        f"in its cache), `xargs -P {CORES} -n 1 cat` of the `w256_q75` paths. libvips: "
        f"`thumbnail(src, 256)` written at Q75 on a pool of {CORES} threads in this warm Python "
        "process, as a thumbnail server would run it. Alternating runs; medians; ratio = median of "
        "per-pair ratios of photos/s (higher is better).",
        "",
    ] + md_table(["workload", "thumbfs", "libvips", "ratio", "target"], [(
        f"w256 of {len(names)} camera photos, cold, {CORES} cores",
        f"{median(a):.1f} photos/s", f"{median(b):.1f} photos/s", f"{ratio:.2f}x", said)])
    print(f"W5 camera: {median(a):.1f} vs {median(b):.1f} photos/s: {ratio:.2f}x ({said})",
          flush=True)


def camera_row(rep, runs, out, pyvips, src, row, progressive, ours=None):
    """One W8 row: `thumbfs convert` (or `ours`, which writes w8-ours) and libvips in-process
    on `src`, alternating."""
    row, spec, ext, target = row
    name = os.path.basename(src)
    ours_out = os.path.join(out, f"w8-ours.{ext}")
    vips_out = os.path.join(out, f"w8-vips.{ext}")
    ours = ours or (lambda: run_cpu([BIN, "convert", spec, src, ours_out]))
    vop = pyvips_op(pyvips, row, src, vips_out)

    def theirs():
        t0, c0 = time.perf_counter(), time.process_time()
        vop()
        return time.perf_counter() - t0, time.process_time() - c0

    a, b = alternate(runs, ours, theirs)
    ratio = median([x[0] / y[0] for x, y in zip(a, b)])
    goal = None if target is None else target[1 if progressive else 0]
    said = "no target" if goal is None else verdict(ratio, goal)
    cli, magick = cli_anchors(row, src, os.path.join(out, f"w8-cli.{ext}"))
    cli_t = median([run_cpu(cli)[0] for _ in range(max(1, min(runs, 3)))])
    im_t = run_cpu(magick[:-1] + [os.path.join(out, f"w8-im.{ext}")])[0]
    size = os.path.getsize(ours_out) / os.path.getsize(vips_out)
    rep.camera_rows.append((
        name, row,
        wall_cpu(a), wall_cpu(b), f"{ratio:.2f}x", said, f"{cli_t:.3f}", f"{im_t:.3f}",
        f"{size:.2f}x", f"{float(psnr(ours_out, vips_out)):.1f}"))
    print(f"W8 {name} {row}: {ratio:.2f}x ({said})", flush=True)


def wall_cpu(times):
    """"wall / CPU" medians of (wall, CPU) pairs; CPU "-" where it was not measured (NaN)."""
    cpu = median([x[1] for x in times])
    return f"{median([x[0] for x in times]):.3f} / " + ("-" if cpu != cpu else f"{cpu:.3f}")


# MP type codes of camera previews (CIPA DC-007): large thumbnails, VGA and full-HD class.
MPF_VGA, MPF_FULL_HD = 0x010001, 0x010002


def with_mpf_previews(src, dst, tmp):
    """Writes `src` with an MPF index after SOI and two previews appended (VGA and full-HD
    widths, the photo's aspect, 4:2:0 Q90 by libvips, as cameras write them); returns their
    sizes as "WxH" strings."""
    w, h = (int(v) for v in subprocess.run(
        ["identify", "-format", "%w %h", src], capture_output=True, text=True,
        check=True).stdout.split())
    previews, sizes = [], []
    for code, width in ((MPF_VGA, 640), (MPF_FULL_HD, 1920 if w * 9 >= h * 16 else 1620)):
        p = os.path.join(tmp, f"preview{width}.jpg")
        sh("vips", "thumbnail", src, p + "[Q=90,subsample_mode=on,strip]", str(width),
           "--height", "10000000")
        with open(p, "rb") as f:
            previews.append((code, f.read()))
        sizes.append(f"{width}x{round(width * h / w)}")
    with open(src, "rb") as f:
        main = f.read()
    n = 1 + len(previews)
    entries_at = 8 + 2 + 3 * 12 + 4
    t = b"II*\0" + struct.pack("<IH", 8, 3)
    t += struct.pack("<HHI4s", 0xB000, 7, 4, b"0100")
    t += struct.pack("<HHII", 0xB001, 4, 1, n) + struct.pack("<HHII", 0xB002, 7, 16 * n, entries_at)
    t += struct.pack("<I", 0)
    segment_len = 2 + 4 + len(t) + 16 * n
    main_len = len(main) + 2 + segment_len
    tiff_at = 2 + 4 + 4  # SOI, marker and length, "MPF\0"
    t += struct.pack("<IIII", 0x20030000, main_len, 0, 0)
    at = main_len
    for code, data in previews:
        t += struct.pack("<IIII", code, len(data), at - tiff_at, 0)
        at += len(data)
    out = b"\xff\xd8\xff\xe2" + struct.pack(">H", segment_len) + b"MPF\0" + t + main[2:]
    assert len(out) == main_len
    with open(dst, "wb") as f:
        f.write(out + b"".join(d for _, d in previews))
    return sizes


# W10 (issue 13): the camera photo as a phone or an exporter would write it, made by the
# reference encoders from the same pixels: format, extension, encoder command ({src}: PNG).
MODERN = [
    ("HEIC (HEVC)", "heic", ["heif-enc", "-q", "50", "-o", "{dst}", "{src}"]),
    ("AVIF", "avif", ["avifenc", "-s", "8", "-j", "2", "--min", "24", "--max", "32", "{src}", "{dst}"]),
    ("JPEG XL", "jxl", ["cjxl", "{src}", "{dst}", "-d", "1.0", "--quiet"]),
]

# A libvips worker for formats the pyvips-binary build lacks (its libheif has no HEVC decoder,
# it has no libjxl): Debian's libvips through pyvips in ABI mode, in its own warm process,
# timing each thumbnail inside itself exactly as this process does for libvips 8.18.
SYSTEM_WORKER = r"""
import sys, time, pyvips
pyvips.cache_set_max(0)
print(f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}", flush=True)
for line in sys.stdin:
    src, dst, width = line.rstrip("\n").split("\t")
    t0, c0 = time.perf_counter(), time.process_time()
    # 10,000,000: the largest height libvips 8.14 takes (a width-only fit, as thumbfs' w<N>).
    pyvips.Image.thumbnail(src, int(width), height=10000000).write_to_file(dst, Q=75)
    print(time.perf_counter() - t0, time.process_time() - c0, flush=True)
"""


def modern(runs, out, rep):
    """W10: w256 of a 12 MP HEIC, AVIF and JPEG XL, thumbfs (CLI process per image) against
    `thumbnail` in a warm libvips process: 8.18 here where its build reads the format, else
    Debian's libvips in a worker process."""
    import pyvips

    png = os.path.join(out, "w10.png")
    sh("vips", "copy", PHOTO, png + "[compression=1]")
    sysvips = os.path.join(ROOT, "target", "bench-venv-sys", "bin", "python")
    # os.environ, not the inherited C environment: the wheel's libvips sets VIPSHOME for
    # itself, which would send Debian's libvips looking for its modules in the wrong place.
    worker = subprocess.Popen([sysvips, "-c", SYSTEM_WORKER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    system_version = worker.stdout.readline().strip()
    try:
        for fmt, ext, cmd in MODERN:
            src = os.path.join(out, f"w10.{ext}")
            t0 = time.perf_counter()
            sh(*[c.format(src=png, dst=src) for c in cmd], stdout=subprocess.DEVNULL)
            made = time.perf_counter() - t0
            ours_out = os.path.join(out, "w10-ours.jpg")
            vips_out = os.path.join(out, "w10-vips.jpg")
            ours = lambda: run_cpu([BIN, "convert", "w256_q75", src, ours_out])

            def here():
                t0, c0 = time.perf_counter(), time.process_time()
                pyvips.Image.thumbnail(src, 256, height=1 << 24).write_to_file(vips_out, Q=75)
                return time.perf_counter() - t0, time.process_time() - c0

            def there():
                worker.stdin.write(f"{src}\t{vips_out}\t256\n")
                worker.stdin.flush()
                wall, cpu = worker.stdout.readline().split()
                return float(wall), float(cpu)

            try:
                here()
                theirs, anchor = here, f"{pyvips.version(0)}.{pyvips.version(1)}"
            except pyvips.Error:
                theirs, anchor = there, system_version + " (Debian)"
            a, b = alternate(runs, ours, theirs)
            ratio = median([x[0] / y[0] for x, y in zip(a, b)])
            rep.modern_rows.append((
                fmt, f"{os.path.getsize(src) / 1e6:.2f} MB (encoded in {made:.1f} s)",
                f"{median([x[0] for x in a]):.3f} / {median([x[1] for x in a]):.3f}",
                f"{median([y[0] for y in b]):.3f} / {median([y[1] for y in b]):.3f}",
                anchor, f"{ratio:.2f}x",
                f"{os.path.getsize(ours_out) / os.path.getsize(vips_out):.2f}x",
                f"{float(psnr(ours_out, vips_out)):.1f}"))
            print(f"W10 {fmt}: {ratio:.2f}x against libvips {anchor}", flush=True)
    finally:
        worker.stdin.close()
        worker.wait()


def chart():
    """Redraws bench/chart.svg from bench/REPORT.md (matplotlib, from the bench venv)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_chart

    n = bench_chart.draw(REPORT, CHART)
    print(f"wrote {CHART} ({n} bars)")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "chart":
        chart()
        return
    runs = max(1, int(sys.argv[1]) if len(sys.argv) > 1 else 5)
    only_camera = len(sys.argv) > 2 and sys.argv[2] == "camera"
    out = tempfile.mkdtemp(prefix="thumbfs-bench-out-")
    rep = Report()
    camera(runs, out, rep)
    modern(runs, out, rep)
    if only_camera:
        write_report(rep, runs, only_camera=True)
        shutil.rmtree(out)
        return
    big, photos, small = prepare()
    big_dir = os.path.dirname(big)

    # W1: q90_shrink2_invert, cold first read through the mount.
    def w1_ours():
        with Mount(big_dir) as m:
            base = m.status("VmRSS")
            t0 = time.perf_counter()
            read_file(m.path("q90_shrink2_invert", "big.jpg"))
            t = time.perf_counter() - t0
            shutil.copyfile(m.path("q90_shrink2_invert", "big.jpg"), os.path.join(out, "w1.jpg"))
            return t, m.status("VmHWM") - base

    def w1_vips():
        return run_timed(["vips", "invert", big + "[shrink=2]", os.path.join(out, "w1v.jpg[Q=90]")])

    a, b = alternate(runs, w1_ours, w1_vips)
    rep.add("W1 q90_shrink2_invert, mount, cold", [x[0] for x in a], "vips invert", [x[0] for x in b], 0.7,
            rss=(f"{median([x[1] for x in a]):.0f} MB growth", f"{median([x[1] for x in b]):.0f} MB"))
    im = [run_timed(["convert", big, "-scale", "50%", "-negate", "-quality", "90",
                     os.path.join(out, "w1m.jpg")]) for _ in range(3)]
    rep.notes.append(f"W1 ImageMagick `convert -scale 50% -negate -quality 90`: "
                     f"{median([x[0] for x in im]):.3f} s, {median([x[1] for x in im]):.0f} MB")
    rep.notes.append(f"W1 output: thumbfs {os.path.getsize(os.path.join(out, 'w1.jpg'))} bytes, "
                     f"vips {os.path.getsize(os.path.join(out, 'w1v.jpg'))} bytes, "
                     f"PSNR between them {psnr(os.path.join(out, 'w1.jpg'), os.path.join(out, 'w1v.jpg'))} dB")

    # W2: the CLI pipe form, time to first byte.
    a, b = alternate(
        runs,
        lambda: first_byte(f"cat {big} | {BIN} invert 'stdin[shrink=2]' '.jpg[Q=90]'"),
        lambda: first_byte(f"cat {big} | vips invert 'stdin[shrink=2]' '.jpg[Q=90]'"),
    )
    rep.add("W2 pipe form, time to first byte", [x[0] for x in a], "vips (pipes)", [x[0] for x in b], 1.0)
    rep.add("W2 pipe form, total", [x[1] for x in a], "vips (pipes)", [x[1] for x in b], 1.0)

    # W3: w256 thumbnail through the mount, cold.
    def w3_ours():
        with Mount(big_dir) as m:
            base = m.status("VmRSS")
            t0 = time.perf_counter()
            read_file(m.path("w256", "big.jpg"))
            t = time.perf_counter() - t0
            shutil.copyfile(m.path("w256", "big.jpg"), os.path.join(out, "w3.jpg"))
            return t, m.status("VmHWM") - base

    a, b = alternate(runs, w3_ours, lambda: run_timed(
        ["vipsthumbnail", big, "-s", "256", "-o", os.path.join(out, "w3v.jpg")]))
    rep.add("W3 w256, mount, cold", [x[0] for x in a], "vipsthumbnail", [x[0] for x in b], 0.8,
            rss=(f"{median([x[1] for x in a]):.0f} MB growth", f"{median([x[1] for x in b]):.0f} MB"))
    im = [run_timed(["convert", "-define", "jpeg:size=512x512", big, "-thumbnail", "256x256",
                     os.path.join(out, "w3m.jpg")]) for _ in range(3)]
    rep.notes.append(f"W3 ImageMagick `convert -define jpeg:size=512x512 -thumbnail 256x256`: "
                     f"{median([x[0] for x in im]):.3f} s, {median([x[1] for x in im]):.0f} MB")
    rep.notes.append(f"W3 output: thumbfs {os.path.getsize(os.path.join(out, 'w3.jpg'))} bytes, "
                     f"vipsthumbnail {os.path.getsize(os.path.join(out, 'w3v.jpg'))} bytes, "
                     f"PSNR between them {psnr(os.path.join(out, 'w3.jpg'), os.path.join(out, 'w3v.jpg'))} dB")

    # W4: full-size JPEG to PNG.
    a, b = alternate(
        runs,
        lambda: run_timed([BIN, "convert", "png", big, os.path.join(out, "w4.png")]),
        lambda: run_timed(["vips", "copy", big, os.path.join(out, "w4v.png")]),
    )
    rep.add("W4 JPEG -> PNG, full size", [x[0] for x in a], "vips copy", [x[0] for x in b], 0.25,
            rss=(f"{median([x[1] for x in a]):.0f} MB", f"{median([x[1] for x in b]):.0f} MB"))
    im = [run_timed(["convert", big, os.path.join(out, "w4m.png")]) for _ in range(2)]
    rep.notes.append(f"W4 ImageMagick `convert in.jpg out.png`: "
                     f"{median([x[0] for x in im]):.3f} s, {median([x[1] for x in im]):.0f} MB")
    s_ours, s_vips = os.path.getsize(os.path.join(out, "w4.png")), os.path.getsize(os.path.join(out, "w4v.png"))
    rep.notes.append(f"W4 output: thumbfs {s_ours} bytes, vips {s_vips} bytes "
                     f"(size ratio {s_ours / s_vips:.2f}x), PSNR between them "
                     f"{psnr(os.path.join(out, 'w4.png'), os.path.join(out, 'w4v.png'))} dB")

    # W5 and W6: 40 photos, w256, all cores; then warm re-reads.
    names = sorted(os.listdir(photos))
    w6 = {}

    def w5_ours():
        with Mount(photos) as m:
            paths = " ".join(m.path("w256", n) for n in names)
            t, _ = run_timed(f"printf '%s\\n' {paths} | xargs -P {CORES} -n 1 cat", shell=True)
            # W6 on the warm cache of this mount: cat everything 10 times.
            t0 = time.perf_counter()
            total = 0
            for _ in range(10):
                for n in names:
                    total += read_file(m.path("w256", n))
            w6["ours"] = w6.get("ours", []) + [total / (time.perf_counter() - t0) / 1e6]
            w6["bytes"] = total // 10
            return len(names) / t

    def w5_vips():
        dst = tempfile.mkdtemp(dir=out)
        t, _ = run_timed(f"ls {photos}/*.jpg | xargs -P {CORES} -n 1 vipsthumbnail -s 256 -o {dst}/%s.jpg",
                         shell=True)
        return len(names) / t

    a, b = alternate(runs, w5_ours, w5_vips)
    rep.add("W5 w256 of 40 photos, mount, cold, all cores", a, "vipsthumbnail (xargs -P)", b, 1.5,
            unit="photos/s", higher_better=True)

    shm = tempfile.mkdtemp(dir="/dev/shm")
    for n in names:
        with open(os.path.join(shm, n), "wb") as f:
            f.write(b"\0" * (w6["bytes"] // len(names)))

    def tmpfs_read():
        t0 = time.perf_counter()
        total = 0
        for _ in range(10):
            for n in names:
                total += read_file(os.path.join(shm, n))
        return total / (time.perf_counter() - t0) / 1e6

    base = [tmpfs_read() for _ in range(len(w6["ours"]))]
    rep.add("W6 warm re-reads (cat all W5 outputs x10)", w6["ours"][1:], "tmpfs file reads", base[1:], 0.5,
            unit="MB/s", higher_better=True)
    shutil.rmtree(shm)
    w6_open_modes(rep, photos, runs)

    # W7: ls -l of 1000 files whose sizes are known.
    with Mount(small) as m:
        t0 = time.perf_counter()
        subprocess.run(["ls", "-l", m.path("w64")], stdout=subprocess.DEVNULL, check=True)
        first = time.perf_counter() - t0
        a, b = alternate(
            runs,
            lambda: run_timed(["ls", "-l", m.path("w64")])[0],
            lambda: run_timed(["ls", "-l", small])[0],
        )
    rep.add("W7 ls -l of 1000 files, sizes known", a, "ls -l of the source", b, 3.0)
    rep.notes.append(f"W7 first `ls -l` (renders all 1000 files to learn their sizes): {first:.2f} s")

    write_report(rep, runs)
    shutil.rmtree(out)


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "?"


def md_table(head, rows):
    """A Markdown table: header, rule, one line per row."""
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(r) + " |" for r in rows])


def split_sections(text):
    """(heading line, text) for the part before the first `## ` heading ("" heading) and each
    `## ` section, in order."""
    out, head, cur = [], "", []
    for line in text.split("\n"):
        if line.startswith("## "):
            out.append((head, "\n".join(cur)))
            head, cur = line, [line]
        else:
            cur.append(line)
    out.append((head, "\n".join(cur)))
    return out


def section_key(head):
    """Which measured section a heading is: "W8", "W5cam", "W10", "profile", or the heading."""
    if head.startswith("## W8"):
        return "W8"
    if head.startswith("## W5 on camera files"):
        return "W5cam"
    if head.startswith("## W10"):
        return "W10"
    if head.startswith("## Where the time goes"):
        return "profile"
    return head


def fresh_keys(fresh):
    return {section_key(h) for h, _ in fresh if h}


def notes_after_table(body):
    """What follows a section's first table: hand-written notes kept across runs."""
    lines = body.split("\n")
    i = next((k for k, l in enumerate(lines) if l.startswith("|")), None)
    if i is None:
        return ""
    while i < len(lines) and lines[i].startswith("|"):
        i += 1
    return "\n".join(lines[i:])


def write_report(rep, runs, only_camera=False):
    """Writes bench/REPORT.md; with `only_camera`, replaces just its W8/W10 sections."""
    lines = [
        "# thumbfs benchmark report",
        "",
        "![thumbfs / libvips per workload, libvips = 1.0](chart.svg)",
        "",
        "The chart (`bench/chart.svg`, drawn by `scripts/bench.py chart` from this file's tables) "
        "shows every row measured against libvips as thumbfs' time, or peak memory, over "
        "libvips'; shorter is better.",
        "",
        f"Written by `scripts/bench.sh` on {time.strftime('%Y-%m-%d')}: {CORES} cores, "
        f"{version(['uname', '-m'])}; anchors {version(['vips', '--version'])}, "
        f"{version(['convert', '-version']).replace('Version: ', '')}.",
        f"Each workload: one warm-up, then {runs} runs alternating thumbfs and the anchor; "
        "medians, ratio = median of per-pair thumbfs/anchor ratios (lower is better for time).",
        "",
        "| workload | thumbfs | anchor | anchor time | ratio | target | thumbfs RSS | anchor RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rep.rows:
        lines.append("| " + " | ".join(r) + " |")
    if rep.camera_rows:
        lines += [
            "",
            f"## W8: real camera photos against libvips {rep.camera_libvips} in-process",
            "",
            "thumbfs runs as one `thumbfs convert SPEC in out` process per image (start-up "
            "included); libvips runs inside one warm Python process (pyvips + pyvips-binary, "
            "`cache_set_max(0)`, `access=\"sequential\"`), alternating with thumbfs in the same "
            "loop. Times are medians of wall / CPU seconds (CPU = user + system of all threads; "
            "CPU above wall shows the 2-core overlap); ratio = median of per-pair wall ratios, "
            "thumbfs / libvips. Targets from issue 10 (baseline / progressive). The CLI anchor "
            "columns are wall times of Debian's `vips` command and of ImageMagick `convert` "
            "(process start-up included). Size = thumbfs output bytes / libvips'; PSNR between "
            "the two outputs (ImageMagick `compare`). PNG: libvips at compression=1.",
            "",
        ]
        lines += [f"- `{n}`: {d}" for n, d in rep.camera_files]
        lines += [""] + md_table(
            ["file", "workload", "thumbfs wall / CPU s", "libvips wall / CPU s", "ratio",
             "target", "vips CLI s", "ImageMagick s", "size", "PSNR dB"], rep.camera_rows)
        lines += rep.camera_w5
    if rep.modern_rows:
        lines += [
            "",
            "## W10: phone and modern formats, w256 Q75 against libvips in-process",
            "",
            f"`{os.path.basename(PHOTO)}` (12.2 MP) encoded by the reference encoders "
            "(`heif-enc -q 50`, `avifenc -s 8 --min 24 --max 32`, `cjxl -d 1.0`) from the same pixels; "
            "thumbfs `convert w256_q75` (a process per image) against `thumbnail(src, 256)` "
            "written at Q75 in a warm libvips process, alternating as in W8. libvips 8.18 "
            "(pyvips-binary) has no HEVC decoder and no libjxl, so HEIC and JPEG XL run against "
            "Debian's libvips in a warm worker process (pyvips in ABI mode), timed inside it.",
            "",
        ] + md_table(["format", "file", "thumbfs wall / CPU s", "libvips wall / CPU s",
                      "libvips", "ratio", "size", "PSNR dB"], rep.modern_rows)
    if only_camera and os.path.exists(REPORT):
        # Replace only the sections this run measured (W8, the camera W5, W10) and the
        # profile copy; every other section (other scripts' and hand-written ones) stays.
        old = open(REPORT).read()
        fresh = split_sections("\n".join(lines))
        parts = split_sections(old)
        done = set()
        out = []
        for head, body in parts:
            key = section_key(head)
            if key == "profile":
                # The instruction counts, refreshed in place from bench/PROFILE.md.
                out.append(open(PROFILE).read() if os.path.exists(PROFILE) else body)
                continue
            if key in fresh_keys(fresh):
                if key not in done:
                    out += [b for h, b in fresh if section_key(h) == key]
                    done.add(key)
                # The hand-written notes under a measured section's table are kept.
                out.append(notes_after_table(body))
                continue
            out.append(body)
        # New sections (none in the old report) go before the notes.
        missing = [b for h, b in fresh if section_key(h) not in done and h]
        at = next((i for i, (h, _) in enumerate(parts) if h.startswith("## Notes")), len(out))
        at = min(at, len(out))
        out[at:at] = missing
        lines = ["\n".join(x.strip("\n") for x in out if x.strip()).rstrip("\n"), ""]
        lines = [lines[0].replace("\n## ", "\n\n## ").replace("\n\n\n## ", "\n\n## "), ""]
    else:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in rep.notes] + [""]
        if os.path.exists(PROFILE):
            lines += [open(PROFILE).read()]
    with open(REPORT, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {REPORT}")
    chart()


if __name__ == "__main__":
    main()
