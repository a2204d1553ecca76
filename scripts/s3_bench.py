#!/usr/bin/env python3
"""W9: sources in an object store (SeaweedFS, real) against the same files on local disk.

Usage: s3_bench.py RUNS WEED_BIN   (scripts/bench.sh runs it; THUMBFS_BIN overrides the binary)

Three mounts with --stat estimate (so a read streams from its first byte): the local directory,
s3:// through a byte-counting TCP proxy with no added delay, and s3:// through one that delays
every chunk 10 ms each way (20 ms round trip). Each run reads a fresh spec (w256, w255, ...: a
new render, same work), alternating the mounts. Reports time to first byte, total time and the
bytes the daemon fetched from the store per output. Then the shared cache (--cache-url): mount A
reads every corpus image (uploaded to the bucket) under w256_jpg, rendering and uploading each
output, and re-reads them warm; mount B (another "host": fresh --cache-dir, same --cache-url)
reads them from the shared cache, then warm. Then cached reads during cold listings: four
prefixes of 5,000 objects each listed (and sniffed) at once through the 20 ms proxy, while one
reader re-reads a cached thumbnail; reports the reads' p50/p99/max. Then S3 to S3: a JPEG to a
full-size PNG with an s3:// output (parts leave while encoding) against render-then-upload,
through the 20 ms proxy: time to the first upload and total. Writes bench/S3.md.
"""

import glob
import json

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

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
        # `mark`: bytes whose first appearance upstream (client to server) is timed.
        self.mark, self.marked = None, None
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
            if not down and self.mark and self.marked is None and self.mark in data:
                self.marked = time.monotonic()
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


def list_keys(endpoint, bucket, prefix):
    """Keys under `prefix` (one page: the bench stores fewer than 1,000)."""
    out = subprocess.run(
        ["curl", "-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{KEY}:{SECRET}",
         f"{endpoint}/{bucket}?list-type=2&prefix={urllib.parse.quote(prefix, safe='')}"],
        check=True,
        capture_output=True).stdout.decode()
    return out.count("<Key>")


def read_tree(root):
    """Reads every file under `root`: (files read, bytes, seconds, failed paths)."""
    n, size, failed = 0, 0, []
    t0 = time.perf_counter()
    for d, _, names in os.walk(root):
        for name in names:
            path = os.path.join(d, name)
            try:
                with open(path, "rb") as f:
                    size += len(f.read())
                n += 1
            except OSError:
                failed.append(path)
    return n, size, time.perf_counter() - t0, failed


def stats(mnt):
    with open(os.path.join(mnt, ".thumbfs", "stats")) as f:
        return json.load(f)


def unmount(m, p):
    subprocess.run(["fusermount3", "-u", m], check=False)
    p.wait()
    try:
        os.rmdir(m)
    except OSError:
        pass


def shared_cache(endpoint, env, runs):
    """Mount A renders the corpus and uploads to the shared cache; mount B reads it back.
    Returns medians per phase: (files, MB, seconds, renders) and the corpus size."""
    corpus_keys = 0
    for d, _, names in os.walk(CORPUS):
        for name in names:
            path = os.path.join(d, name)
            put(endpoint, "bench", "corpus/" + os.path.relpath(path, CORPUS), path)
            corpus_keys += 1
    make_bucket(endpoint, "bench-cache")
    phases = {k: [] for k in ("a_cold", "a_warm", "b_cold", "b_warm")}
    renders_b = []
    for r in range(runs):
        url = f"s3://bench-cache/run{r}/"
        caches = [tempfile.mkdtemp(prefix="thumbfs-s3bench-cache") for _ in range(2)]
        mounts = []
        try:
            a = mount("s3://bench/corpus", env, ["--s3-endpoint", endpoint, "--cache-url", url,
                                                  "--cache-dir", caches[0]], stat="exact")
            mounts.append(a)
            spec = os.path.join(a[0], "w256_jpg")
            n, size, t, failed = read_tree(spec)
            phases["a_cold"].append((n, size, t, stats(a[0])["renders"]))
            # Uploads run on a background thread: wait until every output is there.
            t0 = time.monotonic()
            while list_keys(endpoint, "bench-cache", f"run{r}/") < n:
                if time.monotonic() - t0 > 120:
                    raise RuntimeError("outputs not uploaded within 120 s")
                time.sleep(0.2)
            n2, size2, t2, _ = read_tree(spec)
            phases["a_warm"].append((n2, size2, t2, stats(a[0])["renders"]))
            b = mount("s3://bench/corpus", env, ["--s3-endpoint", endpoint, "--cache-url", url,
                                                  "--cache-dir", caches[1]], stat="exact")
            mounts.append(b)
            spec = os.path.join(b[0], "w256_jpg")
            n3, size3, t3, failed3 = read_tree(spec)
            rb = stats(b[0])["renders"]
            # Broken images are not shared (each host finds them broken); every good file
            # must come from the shared cache.
            if rb != len(failed3) or size3 != size or n3 != n:
                raise RuntimeError(f"mount B: {rb} renders for {len(failed3)} broken files, "
                                   f"{n3} files / {size3} bytes against {n} / {size}")
            phases["b_cold"].append((n3, size3, t3, rb))
            n4, size4, t4, _ = read_tree(spec)
            phases["b_warm"].append((n4, size4, t4, stats(b[0])["renders"]))
            renders_b.append(rb)
        finally:
            for m, p in mounts:
                unmount(m, p)
            for c in caches:
                subprocess.run(["rm", "-rf", c], check=False)
    med = {k: (v[0][0], v[0][1], median([x[2] for x in v]), median([x[3] for x in v]))
           for k, v in phases.items()}
    return med, corpus_keys, len(failed)


# Reads argv[1] (argv[3] bytes) in a loop until argv[2] exists; prints each read's seconds.
READER = """
import json, os, sys, time
path, stop, size, lat = sys.argv[1], sys.argv[2], int(sys.argv[3]), []
while not os.path.exists(stop):
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        n = len(f.read())
    lat.append(time.perf_counter() - t0)
    if n != size:
        sys.exit(f"read {n} of {size} bytes")
print(json.dumps(lat))
"""


def cold_listings(endpoint, filer, env, objects=5000):
    """Latencies (seconds) of open+read of a cached thumbnail while four cold listings of
    `objects`-object prefixes run through a 20 ms round-trip proxy; and how long they took."""
    from concurrent.futures import ThreadPoolExecutor
    import urllib.request
    photo = open(os.path.join(CORPUS, "jpeg", "video-001.jpeg"), "rb").read()

    def upload(key):
        # The filer's HTTP API: no signing, so 20,000 small uploads take seconds, not minutes.
        req = urllib.request.Request(f"{filer}/buckets/bench/many/{key}", data=photo, method="PUT")
        urllib.request.urlopen(req, timeout=30).read()

    keys = ["hot/a.jpg"] + [f"cold-{d}/{i:05}.jpg" for d in range(1, 5) for i in range(objects)]
    with ThreadPoolExecutor(32) as ex:
        list(ex.map(upload, keys))
    port = int(endpoint.rsplit(":", 1)[1])
    far = Proxy(port, 0.010)
    m, p = mount("s3://bench/many", env,
                 ["--s3-endpoint", f"http://127.0.0.1:{far.port}", "--list-ttl", "3600"],
                 stat="exact")
    try:
        hot = os.path.join(m, "w64", "hot", "a.jpg")
        want = open(hot, "rb").read()
        done = []

        def lister(d):
            n = len(os.listdir(os.path.join(m, "w64", f"cold-{d}")))
            done.append(n)

        threads = [threading.Thread(target=lister, args=(d,)) for d in range(1, 5)]
        # The reader is its own process: this one runs the proxy's threads, whose share of
        # the interpreter lock would count as read latency.
        stop = os.path.join(m + ".stop")
        reader = subprocess.Popen([sys.executable, "-c", READER, hot, stop, str(len(want))],
                                  stdout=subprocess.PIPE)
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - t0
        open(stop, "w").close()
        lat = json.loads(reader.communicate()[0])
        os.remove(stop)
        if done != [objects] * 4:
            raise RuntimeError(f"listings showed {done}")
        return sorted(lat), took
    finally:
        unmount(m, p)


def streamed_upload(port, env, bucket, key, runs):
    """S3 to S3, a JPEG to a full-size PNG, through a 20 ms round-trip proxy: `thumbfs convert`
    with an s3:// output (parts leave while encoding) against rendering to a file and then
    uploading it (one PUT with curl). Medians of (seconds to the first upload request leaving
    the client, total seconds, output bytes) for each."""
    far = Proxy(port, 0.010)
    proxy = f"http://127.0.0.1:{far.port}"
    penv = dict(env, AWS_ENDPOINT_URL=proxy)
    streamed, after = [], []
    for r in range(runs + 1):
        out_key = f"streamed/run{r}.png"
        far.mark, far.marked = b"partNumber=1&", None
        t0 = time.monotonic()
        subprocess.run([BIN, "convert", "png", f"s3://{bucket}/{key}", f"s3://{bucket}/{out_key}"],
                       env=penv, check=True)
        t1 = time.monotonic()
        first_streamed = far.marked - t0
        with tempfile.TemporaryDirectory(prefix="thumbfs-s3bench-out") as d:
            path = os.path.join(d, "x.png")
            far.mark, far.marked = b"PUT /", None
            t2 = time.monotonic()
            subprocess.run([BIN, "convert", "png", f"s3://{bucket}/{key}", path], env=penv,
                           check=True)
            subprocess.run(
                ["curl", "-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                 f"{env['AWS_ACCESS_KEY_ID']}:{env['AWS_SECRET_ACCESS_KEY']}", "-T", path,
                 f"{proxy}/{bucket}/after/run{r}.png"], check=True)
            t3 = time.monotonic()
            size = os.path.getsize(path)
            first_after = far.marked - t2
        if r == 0:
            continue  # warm-up
        streamed.append((first_streamed, t1 - t0))
        after.append((first_after, t3 - t2))
    return ({"streamed": tuple(median([x[i] for x in streamed]) for i in range(2)),
             "after": tuple(median([x[i] for x in after]) for i in range(2))}, size)


def streamed_lines(up, size):
    """The S3-to-S3 section of bench/S3.md."""
    ms = lambda x: f"{x * 1000:.0f} ms"
    return [
        "",
        "## S3 to S3, streamed",
        "",
        f"`thumbfs convert png s3://bench/lib/{PHOTOS[1]} s3://bench/streamed/x.png` (a 16 MP JPEG",
        f"to a full-size PNG of {size / 1e6:.1f} MB), both ends through the 20 ms round-trip proxy,",
        "against rendering to a local file from the same s3:// source and then uploading it with",
        "one PUT (curl). First upload: when the first request carrying output bytes (part 1, or",
        "the PUT) reaches the proxy, from the command's start.",
        "",
        "| | first upload | total |",
        "|---|---|---|",
        f"| streamed (multipart, 5 MiB parts) | {ms(up['streamed'][0])} | {ms(up['streamed'][1])} |",
        f"| render, then upload | {ms(up['after'][0])} | {ms(up['after'][1])} |",
    ]


def mount(src, env, extra=(), stat="estimate"):
    mnt = tempfile.mkdtemp(prefix="thumbfs-s3bench")
    p = subprocess.Popen([BIN, "mount", "-f", "--stat", stat, *extra, src, mnt], env=env,
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
        for m, p in mounts:
            unmount(m, p)
        mounts = []
        shared, corpus_keys, broken = shared_cache(endpoint, env, runs)
        lat, took = cold_listings(endpoint, f"http://127.0.0.1:{ports[6]}", env)
        up, up_size = streamed_upload(ports[0], env, "bench", f"lib/{PHOTOS[1]}", runs)
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
        load = open("/proc/loadavg").read().split()[:3]
        lines = [
            "# W9: sources in an object store (SeaweedFS 4.48) vs local disk",
            "",
            f"`scripts/bench.sh {runs} s3`; medians of {runs} runs after a warm-up, each run a",
            "fresh w256-sized render (w256, w255, ...), mounts read alternately with `--stat",
            "estimate` so reads stream. `near`: s3:// through a byte-counting proxy, no added",
            "delay; `far`: the same proxy adding 10 ms per chunk each way (20 ms round trip).",
            f"Fetched: bytes the daemon got from the store per output. Load average {' '.join(load)}.",
            f"Binary: `{os.path.relpath(BIN, ROOT)}`.",
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
        lines += [
            "",
            "## Shared render cache (`--cache-url`): a second host",
            "",
            f"The whole test corpus ({corpus_keys} objects: {shared['a_cold'][0] + broken} images, "
            f"of which {broken} are broken and fail",
            "with EIO, are not shared and render again on B) under `w256_jpg`, read file by file (os.walk, one",
            "reader). Mount A has an empty `--cache-dir` and the shared cache; mount B, a second",
            "\"host\", a fresh `--cache-dir` and the same `--cache-url`. Both `--stat exact` (a",
            f"lookup renders or fetches). SeaweedFS on loopback, no proxy. Medians of {runs} runs,",
            "each with a fresh cache prefix and fresh mounts.",
            "",
            "| pass | files | output | time | MB/s | files/s | renders (stats) |",
            "|---|---|---|---|---|---|---|",
        ]
        names = {"a_cold": "A first read (renders, uploads)", "a_warm": "A warm re-read",
                 "b_cold": "B first read (from the shared cache)", "b_warm": "B warm re-read"}
        for k, (n, size, t, renders) in shared.items():
            lines.append(f"| {names[k]} | {n} | {size / 1e6:.2f} MB | {t * 1000:.0f} ms | "
                         f"{size / 1e6 / t:.1f} | {n / t:.0f} | {renders:.0f} |")
        a_warm, b_cold = shared["a_warm"], shared["b_cold"]
        lines += [
            "",
            f"B's first read from the shared cache runs at {a_warm[2] / b_cold[2]:.2f}x the "
            f"throughput of A's warm re-read and {shared['a_cold'][2] / b_cold[2]:.1f}x that of "
            "A's first read (which rendered).",
            "",
            "## Cached reads during cold listings",
            "",
            "Four readdirs at once of `w64/cold-N` (4 prefixes x 5,000 small JPEGs: ListObjectsV2 pages",
            "and a format sniff per object), through the 20 ms round-trip proxy, default 4 FUSE",
            "threads; meanwhile one reader opens and reads a cached `w64/hot/a.jpg` in a loop.",
            "",
            "| listings took | reads | p50 | p99 | max |",
            "|---|---|---|---|---|",
            f"| {took:.1f} s | {len(lat)} | {pct(0.5):.2f} ms | {pct(0.99):.2f} ms | "
            f"{lat[-1] * 1000:.2f} ms |",
        ] + streamed_lines(up, up_size)
        text = "\n".join(lines) + "\n"
        with open(OUT, "w") as fh:
            fh.write(text)
        print(text)
    finally:
        for m, p in mounts:
            unmount(m, p)
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
        subprocess.run(["rm", "-rf", tmp], check=False)
        # weed leaves a gRPC socket per service in the temp dir, named by port.
        for port in ports[1::2]:
            for sock in glob.glob(os.path.join(tempfile.gettempdir(), f"seaweedfs-*-grpc-{port}.sock")):
                os.remove(sock)


if __name__ == "__main__":
    main()
