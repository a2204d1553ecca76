#!/usr/bin/env python3
"""W9: sources in an object store (SeaweedFS, real) against the same files on local disk.

Usage: s3_bench.py RUNS WEED_BIN   (scripts/bench.sh runs it; THUMBFS_BIN overrides the binary)

Three mounts with --stat estimate (so a read streams from its first byte): the local directory,
s3:// through a byte-counting TCP proxy with no added delay, and s3:// through one that delays
every chunk 10 ms each way (20 ms round trip). Each run reads a fresh spec (w256, w255, ...: a
new render, same work), alternating the mounts. Reports time to first byte, total time and the
bytes the daemon fetched from the store per output, and writes bench/S3.md.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("THUMBFS_BIN", os.path.join(ROOT, "target", "release", "thumbfs"))
CORPUS = os.path.normpath(os.path.join(ROOT, "..", "shared", "corpus"))
WORK = os.path.join(ROOT, "bench", "work")
OUT = os.path.join(ROOT, "bench", "S3.md")
PHOTOS = ["sunset_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg"]
KEY, SECRET = "bench", "bench-secret"


def free_ports(n):
    ss = [socket.socket() for _ in range(n)]
    for s in ss:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in ss]
    for s in ss:
        s.close()
    return ports


class Proxy:
    """A TCP proxy to `port` adding `delay` seconds to every chunk in each direction (order
    kept), counting the bytes sent from the server to the client."""

    def __init__(self, port, delay):
        self.target, self.delay, self.down = port, delay, 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            s = socket.create_connection(("127.0.0.1", self.target))
            for a, b, down in ((c, s, False), (s, c, True)):
                threading.Thread(target=self.pipe, args=(a, b, down), daemon=True).start()

    def pipe(self, src, dst, down):
        # A reader thread stamps chunks; a writer thread sends each `delay` after it arrived,
        # so a stream is delayed, not throttled.
        import queue

        q = queue.Queue()

        def writer():
            while True:
                t, data = q.get()
                wait = t + self.delay - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                try:
                    dst.sendall(data)
                except OSError:
                    return

        threading.Thread(target=writer, daemon=True).start()
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            if down and data:
                with self.lock:
                    self.down += len(data)
            q.put((time.monotonic(), data))
            if not data:
                return

    def take(self):
        with self.lock:
            n, self.down = self.down, 0
        return n


def put(endpoint, bucket, key, path):
    """Uploads with curl's own SigV4 signing (independent of our client)."""
    subprocess.run(
        ["curl", "-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{KEY}:{SECRET}",
         "-T", path, f"{endpoint}/{bucket}/{key}"], check=True)


def make_bucket(endpoint, bucket):
    subprocess.run(
        ["curl", "-sf", "-X", "PUT", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
         f"{KEY}:{SECRET}", f"{endpoint}/{bucket}"], check=True)


def first_byte(path):
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        if not f.read(1):
            raise RuntimeError(f"{path}: empty")
        ttfb = time.perf_counter() - t0
        while f.read(1 << 20):
            pass
    return ttfb, time.perf_counter() - t0


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def wait_s3(endpoint):
    for _ in range(600):
        try:
            import urllib.request
            import urllib.error
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                return
            except urllib.error.HTTPError:
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("SeaweedFS did not start")


def mount(src, env, extra=()):
    mnt = tempfile.mkdtemp(prefix="thumbfs-s3bench")
    p = subprocess.Popen([BIN, "mount", "-f", "--stat", "estimate", *extra, src, mnt], env=env,
                         stderr=subprocess.DEVNULL)
    for _ in range(300):
        if os.path.exists(os.path.join(mnt, ".thumbfs", "stats")):
            return mnt, p
        time.sleep(0.05)
    raise RuntimeError(f"mount of {src} did not come up")


def main():
    runs = max(1, int(sys.argv[1]) if len(sys.argv) > 1 else 5)
    weed = sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="thumbfs-s3bench-weed")
    ports = free_ports(10)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_REGION="us-east-1")
    env.pop("AWS_ENDPOINT_URL", None)
    os.makedirs(f"{tmp}/log")
    os.makedirs(f"{tmp}/data")
    flags = [f"-s3.port={ports[0]}", f"-s3.port.grpc={ports[1]}", f"-master.port={ports[2]}",
             f"-master.port.grpc={ports[3]}", f"-volume.port={ports[4]}",
             f"-volume.port.grpc={ports[5]}", f"-filer.port={ports[6]}",
             f"-filer.port.grpc={ports[7]}", f"-admin.port={ports[8]}",
             f"-admin.port.grpc={ports[9]}"]
    server = subprocess.Popen(
        [weed, f"-logdir={tmp}/log", "mini", f"-dir={tmp}/data", "-ip=127.0.0.1",
         "-ip.bind=127.0.0.1", "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
         "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.localSocket={tmp}/s3.sock",
         f"-filer.localSocket={tmp}/filer.sock", *flags],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mounts = []
    try:
        endpoint = f"http://127.0.0.1:{ports[0]}"
        wait_s3(endpoint)
        make_bucket(endpoint, "bench")
        local = os.path.join(WORK, "s3src")
        os.makedirs(local, exist_ok=True)
        files = []
        for name in PHOTOS:
            src = os.path.join(CORPUS, "photos", name)
            dst = os.path.join(local, name)
            if not os.path.exists(dst):
                subprocess.run(["cp", src, dst], check=True)
            files.append(name)
        # A tiled pyramid TIFF: a w256 needs only its smallest levels.
        pyr = os.path.join(local, "pyramid.tif")
        if not os.path.exists(pyr):
            big = os.path.join(WORK, "big.jpg")
            srcimg = big if os.path.exists(big) else os.path.join(CORPUS, "photos", PHOTOS[0])
            subprocess.run(["vips", "tiffsave", srcimg, pyr, "--tile", "--pyramid",
                            "--compression", "jpeg", "--Q", "90", "--tile-width", "256",
                            "--tile-height", "256"], check=True)
        files.append("pyramid.tif")
        sizes = {}
        for f in files:
            put(endpoint, "bench", f"lib/{f}", os.path.join(local, f))
            sizes[f] = os.path.getsize(os.path.join(local, f))
        near = Proxy(ports[0], 0.0)
        far = Proxy(ports[0], 0.010)
        m_local = mount(local, env)
        m_near = mount("s3://bench/lib", env, ["--s3-endpoint", f"http://127.0.0.1:{near.port}"])
        m_far = mount("s3://bench/lib", env, ["--s3-endpoint", f"http://127.0.0.1:{far.port}"])
        mounts = [m_local, m_near, m_far]
        # Listings and format sniffs are fetched once per --list-ttl: warm them.
        for m, _ in mounts:
            os.listdir(os.path.join(m, "w256"))
        near.take()
        far.take()
        rows = []
        for f in files:
            res = {"local": [], "near": [], "far": []}
            fetched = {"near": [], "far": []}
            for r in range(runs + 1):
                spec = f"w{256 - r}"
                for label, (m, _) in zip(["local", "near", "far"], mounts):
                    t = first_byte(os.path.join(m, spec, f))
                    if label != "local":
                        got = (near if label == "near" else far).take()
                    if r == 0:
                        continue  # warm-up
                    res[label].append(t)
                    if label != "local":
                        fetched[label].append(got)
            rows.append((f, sizes[f], {k: (median([a for a, _ in v]), median([b for _, b in v]))
                                      for k, v in res.items()},
                         {k: median(v) for k, v in fetched.items()}))
        load = open("/proc/loadavg").read().split()[:3]
        lines = [
            "# W9: sources in an object store (SeaweedFS 4.48) vs local disk",
            "",
            f"`scripts/bench.sh {runs} s3`; medians of {runs} runs after a warm-up, each run a",
            "fresh w256-sized render (w256, w255, ...), mounts read alternately with `--stat",
            "estimate` so reads stream. `near`: s3:// through a byte-counting proxy, no added",
            "delay; `far`: the same proxy adding 10 ms per chunk each way (20 ms round trip).",
            f"Fetched: bytes the daemon got from the store per output. Load average {' '.join(load)}.",
            "",
            "| file | object | local first byte / total | near first byte / total | far first byte / total | far - local first byte | fetched per output |",
            "|---|---|---|---|---|---|---|",
        ]
        for f, size, t, fe in rows:
            ms = lambda x: f"{x * 1000:.0f} ms"
            extra = t["far"][0] - t["local"][0]
            lines.append(
                f"| {f} | {size / 1e6:.2f} MB | {ms(t['local'][0])} / {ms(t['local'][1])} | "
                f"{ms(t['near'][0])} / {ms(t['near'][1])} | {ms(t['far'][0])} / {ms(t['far'][1])} | "
                f"{ms(extra)} ({extra / 0.020:.1f} round trips) | "
                f"{fe['near'] / 1e6:.2f} MB ({100 * fe['near'] / size:.0f} %) |")
        text = "\n".join(lines) + "\n"
        with open(OUT, "w") as fh:
            fh.write(text)
        print(text)
    finally:
        for m, p in mounts:
            subprocess.run(["fusermount3", "-u", m], check=False)
            p.wait()
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    main()
