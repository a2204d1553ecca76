#!/usr/bin/env python3
"""Issue 24 item 4: W6, warm re-reads of finished thumbnails through the mount in its default
mode, against the same bytes on tmpfs, side by side in one run; written as a section of
bench/REPORT.md.

    scripts/w6_bench.py [runs] [thumbfs binary] [profile name]
    (default 9 runs, target/release/thumbfs; run through `scripts/bench.sh RUNS w6`)

The 40 W5 photos are rendered once (w256) and their outputs copied to tmpfs, so both sides
read the same bytes. Each client then reads them through the mount and from tmpfs,
alternating (A B, B A, ...), `runs` times after one warm-up:

- Python's default `open(path, 'rb').read()` (its `open()` asks `isatty()`: one TCGETS ioctl);
- one `cat` process given all 40 files ten times (opens dominate, not process start-up);
- one `cat` per file (`xargs -n 1 cat`: process start-up dominates);
- nginx without `open_file_cache` (sendfile on, one worker), `ab -k -c 1` fetching each file
  in turn over one keep-alive connection per file.

Also the time of one `os.isatty()` and one `os.fstat()` on an open file of the mount and of
tmpfs. Two mounts side by side, fresh for every run: default options (the default open mode,
`auto`), and `--open-mode per-open` for comparison; each with a `--cache-dir` so that a fresh
mount loads the outputs instead of rendering them again.
"""

import hashlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no scripts/__pycache__ from importing bench.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the W5 inputs, Mount)
from isolation_bench import commit, machine  # noqa: E402

TITLE = "## W6: warm re-reads by client, default mount mode against tmpfs"
SPEC = "w256"
ROUNDS = 10
AB_REQUESTS = 50
MODES = (("default", ()), ("per-open", ("--open-mode", "per-open")))


def python_read(paths):
    """Microseconds per file of `open(p, 'rb').read()`, ROUNDS times over `paths`."""
    t0 = time.perf_counter()
    for _ in range(ROUNDS):
        for p in paths:
            with open(p, "rb") as f:
                f.read()
    return (time.perf_counter() - t0) / (ROUNDS * len(paths)) * 1e6


def cat_all(paths):
    """Microseconds per file of one `cat` reading every file ROUNDS times."""
    t0 = time.perf_counter()
    subprocess.run(["cat", *(paths * ROUNDS)], stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t0) / (ROUNDS * len(paths)) * 1e6


def cat_each(paths):
    """Microseconds per file of one `cat` process per file."""
    listing = "\n".join(paths * ROUNDS) + "\n"
    t0 = time.perf_counter()
    subprocess.run(["xargs", "-n", "1", "cat"], input=listing.encode(),
                   stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t0) / (ROUNDS * len(paths)) * 1e6


def ab(port, names):
    """Microseconds per request of nginx serving every file AB_REQUESTS times (ab's own
    clock: its start-up is not counted)."""
    total, n = 0.0, 0
    for name in names:
        out = subprocess.run(
            ["ab", "-k", "-c", "1", "-n", str(AB_REQUESTS), f"http://127.0.0.1:{port}/{name}"],
            capture_output=True, text=True, check=True).stdout
        failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
        if failed or "Non-2xx" in out:
            raise RuntimeError(f"nginx failed requests for {name}:\n{out}")
        total += float(re.search(r"Time taken for tests:\s+([\d.]+)", out).group(1))
        n += int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    return total / n * 1e6


def syscall_us(path, call, n=20000):
    """Microseconds per call of `call(fd)` on an open file of `path` (median of 5 batches)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                call(fd)
            times.append((time.perf_counter() - t0) / n * 1e6)
        return statistics.median(times)
    finally:
        os.close(fd)


class Nginx:
    """nginx in the foreground, one worker, sendfile, no open_file_cache: one server per root."""

    def __init__(self, roots):
        self.dir = tempfile.mkdtemp(prefix="thumbfs-w6-nginx-")
        self.ports = []
        servers = []
        for root in roots:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.ports.append(s.getsockname()[1])
            s.close()
            servers.append(f"server {{ listen 127.0.0.1:{self.ports[-1]}; root {root}; }}")
        d = self.dir
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(
                f"daemon off; user root; worker_processes 1; pid {d}/nginx.pid;\n"
                f"error_log {d}/error.log;\n"
                "events { worker_connections 64; }\n"
                f"http {{ access_log off; sendfile on; keepalive_requests 100000;\n"
                f"client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};\n"
                f"uwsgi_temp_path {d}; scgi_temp_path {d};\n" + "\n".join(servers) + " }\n")
        self.proc = subprocess.Popen(["nginx", "-c", os.path.join(d, "nginx.conf")],
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        for port in self.ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    if time.time() > deadline or self.proc.poll() is not None:
                        raise RuntimeError(f"nginx did not start: see {d}/error.log")
                    time.sleep(0.02)

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir)


def ratio_row(name, ours, tmpfs, target=None, note=""):
    """A table row: times per item, ratio = median of per-run tmpfs/mount time ratios, and
    the ratio of the best runs (least disturbed by other jobs)."""
    med = statistics.median
    ratios = [t / o for o, t in zip(ours, tmpfs)]
    r = med(ratios)
    if target is None:
        verdict = "no target"
    elif r >= target:
        verdict = f">= {target:.2f}x: met"
    else:
        verdict = f">= {target:.2f}x: missed by {(1 - r / target) * 100:.0f} %"
    line = (f"| {name} | {med(ours):.1f} us | {med(tmpfs):.1f} us | {r:.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f}) | {min(tmpfs) / min(ours):.2f}x | "
            f"{verdict}{note} |")
    print(line, flush=True)
    return line, r


def rotate(items, i):
    """`items` starting at position i (mod len): who goes first changes every run."""
    i %= len(items)
    return items[i:] + items[:i]


def main():
    runs = max(1, int(sys.argv[1]) if len(sys.argv) > 1 else 9)
    if len(sys.argv) > 2:
        bench.BIN = os.path.abspath(sys.argv[2])
    profile = sys.argv[3] if len(sys.argv) > 3 else "release"
    _, photos, _ = bench.prepare()
    names = sorted(os.listdir(photos))
    load = os.getloadavg()[0]
    t_start = time.perf_counter()
    shm = tempfile.mkdtemp(dir="/dev/shm")
    os.makedirs(os.path.join(shm, SPEC))
    clients = (("python", python_read), ("cat_all", cat_all), ("cat_each", cat_each))
    sides = [mode for mode, _ in MODES] + ["tmpfs"]
    # res[client][side]: one time per run.
    res = {k: {s: [] for s in sides} for k in
           ("python", "cat_all", "cat_each", "nginx", "isatty", "fstat", "getattr")}
    caches = {mode: tempfile.mkdtemp(prefix=f"thumbfs-w6-{mode}-") for mode, _ in MODES}
    mounts = []
    nginx = None

    def start(order):
        """Fresh mounts (in `order`, from their --cache-dir: loaded, not rendered) and nginx;
        returns the paths, ports and `.thumbfs/README` paths by side, and the digests."""
        nonlocal mounts, nginx
        by_mode = {}
        for mode in order:
            opts = dict(MODES)[mode]
            by_mode[mode] = bench.Mount(photos, *opts, "--cache-dir", caches[mode])
            mounts.append(by_mode[mode])
        digests = {}
        for mode, m in by_mode.items():
            got = {}
            for n in names:
                with open(m.path(SPEC, n), "rb") as f:
                    data = f.read()
                got[n] = hashlib.sha256(data).hexdigest()
                t = os.path.join(shm, SPEC, n)
                if not os.path.exists(t):
                    with open(t, "wb") as f:
                        f.write(data)
            digests[mode] = got
        roots = [by_mode[mode].dir for mode, _ in MODES] + [shm]
        paths = {s: [os.path.join(root, SPEC, n) for n in names] for s, root in zip(sides, roots)}
        nginx = Nginx(roots)
        readme = {s: os.path.join(root, ".thumbfs", "README") for s, root in zip(sides, roots)}
        return paths, dict(zip(sides, nginx.ports)), readme, digests

    def stop():
        nonlocal mounts, nginx
        if nginx:
            nginx.close()
            nginx = None
        for m in mounts:
            m.close()
        mounts = []

    urls = [f"{SPEC}/{n}" for n in names]
    try:
        # Warm-up: fills the caches, checks the modes give the same bytes.
        paths, port, readme, digests = start(sides[:-1])
        if any(d != digests["default"] for d in digests.values()):
            raise RuntimeError("outputs differ between open modes")
        for s in sides:
            for _, f in clients:
                f(paths[s])
            ab(port[s], urls)
        stop()
        for i in range(runs):
            # Fresh daemons every run: where their threads land (which core, next to whom)
            # decides much of a round trip's cost on a busy machine.
            paths, port, readme, _ = start(rotate(sides[:-1], i))
            for _, f in clients:  # each side's first pass: page cache, dentries
                for s in sides:
                    f(paths[s])
            for key, f in clients:
                for s in rotate(sides, i):
                    res[key][s].append(f(paths[s]))
            for s in rotate(sides, i):
                res["nginx"][s].append(ab(port[s], urls))
            for s in rotate(sides, i):
                res["isatty"][s].append(syscall_us(paths[s][0], os.isatty))
                res["fstat"][s].append(syscall_us(paths[s][0], os.fstat))
                if s != "tmpfs":
                    # `.thumbfs/README` has no attribute lifetime: a stat is a GETATTR round trip.
                    res["getattr"][s].append(
                        syscall_us(paths[s][0], lambda _, p=readme[s]: os.stat(p)))
            stop()
            print(f"run {i + 1}/{runs}: " + ", ".join(
                f"{k} " + "/".join(f"{v[s][-1]:.1f}" for s in sides)
                for k, v in res.items() if k != "getattr") + " us (" + " / ".join(sides) + ")",
                flush=True)
    finally:
        stop()
        shutil.rmtree(shm)
        for d in caches.values():
            shutil.rmtree(d)

    med = statistics.median
    end_load = os.getloadavg()[0]
    mi = {k: {s: med(v) for s, v in sv.items() if v} for k, sv in res.items()}
    # The floor for Python: tmpfs's time plus what one ioctl round trip costs over tmpfs's.
    extra = mi["isatty"]["default"] - mi["isatty"]["tmpfs"]
    floor = mi["python"]["tmpfs"] / (mi["python"]["tmpfs"] + extra)
    py_target = min(0.5, floor)
    rows = []
    for mode, tag in (("default", "default mode"), ("per-open", "`--open-mode per-open`")):
        t = "default" == mode
        rows += [
            ratio_row(f"Python `open(p, 'rb').read()`, {tag}", res["python"][mode],
                      res["python"]["tmpfs"], py_target if t else None,
                      f" (0.5x, or the one-ioctl floor {floor:.2f}x if lower)" if t else ""),
            ratio_row(f"one `cat` of 40 files x{ROUNDS}, {tag}", res["cat_all"][mode],
                      res["cat_all"]["tmpfs"], 0.85 if t else None),
            ratio_row(f"one `cat` per file, {tag}", res["cat_each"][mode],
                      res["cat_each"]["tmpfs"], 0.85 if t else None),
            ratio_row(f"nginx, no `open_file_cache`, `ab -k -c 1`, {tag}", res["nginx"][mode],
                      res["nginx"]["tmpfs"], 0.85 if t else None),
        ]
    d = {"isatty": ([mi["isatty"]["default"]], [mi["isatty"]["tmpfs"]]),
         "fstat": ([mi["fstat"]["default"]], [mi["fstat"]["tmpfs"]]),
         "getattr": ([mi["getattr"]["default"]], [0.0])}
    p = {"isatty": ([mi["isatty"]["per-open"]], [mi["isatty"]["tmpfs"]])}
    iso = (f"one `os.isatty()` on an open file: mount {med(d['isatty'][0]):.1f} us, tmpfs "
           f"{med(d['isatty'][1]):.2f} us; one `os.fstat()`: mount {med(d['fstat'][0]):.2f} us, "
           f"tmpfs {med(d['fstat'][1]):.2f} us; one `os.stat()` that reaches the daemon "
           f"(a GETATTR round trip, `.thumbfs/README`) {med(d['getattr'][0]):.1f} us (default "
           f"mode; per-open: isatty {med(p['isatty'][0]):.1f} us)")
    print(iso, flush=True)
    busy = []
    if max(load, end_load) > bench.CORES / 2:
        busy = [
            "The machine was shared with other jobs (load above half its cores: other "
            "sessions' builds), so single runs scatter (the ranges in brackets): every "
            "request to the daemon waits for one of its threads to be scheduled. The "
            "medians over interleaved runs are the estimate; the best runs show what the "
            "same path costs when nothing else wants the cores.",
            "",
        ]
    section = "\n".join([
        TITLE,
        "",
        f"Written by `scripts/w6_bench.py` (`scripts/bench.sh {runs} w6`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {machine()}, Python "
        f"{sys.version.split()[0]}, load average {load:.2f} at the start and {end_load:.2f} at "
        f"the end ({(time.perf_counter() - t_start) / 60:.0f} min"
        + (f", run at nice {os.nice(0)}" if os.nice(0) else "")
        + f"). Binary: `target/{profile}/thumbfs`, commit {commit()}. The {len(names)} W5 "
        f"photos' `{SPEC}` outputs (finished, warm) read through the mount and, as the same "
        f"bytes, from tmpfs; {runs} runs after one warm-up, each on two fresh mounts (their "
        "outputs loaded from a `--cache-dir` each, then read once: warm), measuring every "
        "client on the two mounts and tmpfs in turn, who goes first rotating from run to "
        "run; times per "
        "file (per request for nginx), medians; ratio = median of the per-run tmpfs/mount "
        "time ratios (1.0x: as fast as tmpfs; lowest-highest in brackets); best runs = "
        "tmpfs's best time over the mount's best. The two mounts (same source, mounted side "
        "by side) run with default options except the open mode: the default (`auto`, which "
        "with the default `--stat exact` is `no-open`), and `per-open` for comparison. Both "
        "modes' outputs were checked byte-identical.",
        "",
    ] + busy + [
        "| client | mount | tmpfs | ratio (range) | best runs | target |",
        "|---|---|---|---|---|---|",
    ] + [r[0] for r in rows] + [
        "",
        f"The cost of an ioctl: {iso}. Python's `open()` makes one (`isatty()`, TCGETS) per "
        "file, which the kernel forwards to the daemon every time and caches no answer of: "
        f"that round trip, {extra:.1f} us over tmpfs's, bounds Python at "
        f"{floor:.2f}x of tmpfs for these files however fast the rest is.",
    ]) + "\n"
    text = open(bench.REPORT).read() if os.path.exists(bench.REPORT) else ""
    if TITLE in text:
        start = text.index(TITLE)
        nxt = text.find("\n## ", start + len(TITLE))
        text = text[:start] + section + (text[nxt:] if nxt >= 0 else "")
    elif "\n## " in text:
        at = text.index("\n## ") + 1
        text = text[:at] + section + "\n" + text[at:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(bench.REPORT, "w") as f:
        f.write(text)
    print(f"wrote {TITLE[3:]} into {bench.REPORT}")


if __name__ == "__main__":
    main()
