#!/usr/bin/env bash
# Times `thumbfs warm` of N camera photos (default 1000: copies of the two corpus photos,
# 12.2 MP and 15.9 MP JPEGs) under one spec (default thumb = 256x256), through a real mount.
# Usage: scripts/warm_bench.sh [N] [SPEC]     (README's warm figure comes from here)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
spec=${2:-thumb}
cargo build --release --locked --quiet
work=$(mktemp -d)
trap 'fusermount3 -u "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/mnt"
photos=(../shared/corpus/photos/*.jpg)
for i in $(seq 1 "$n"); do
  # Distinct files (not links): each is its own source, as in a real library.
  cp "${photos[$(( i % ${#photos[@]} ))]}" "$work/src/$(printf 'IMG_%04d.jpg' "$i")"
done
./target/release/thumbfs mount "$work/src" "$work/mnt" --cache-mem 512M
start=$(date +%s.%N)
./target/release/thumbfs warm --quiet "$work/mnt/$spec"
end=$(date +%s.%N)
renders=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['renders'])" "$work/mnt/.thumbfs/stats")
start2=$(date +%s.%N)
./target/release/thumbfs warm --quiet "$work/mnt/$spec"
end2=$(date +%s.%N)
python3 - "$n" "$spec" "$start" "$end" "$start2" "$end2" "$renders" <<'PY'
import os, sys
n, spec, renders = int(sys.argv[1]), sys.argv[2], sys.argv[7]
t1 = float(sys.argv[4]) - float(sys.argv[3])
t2 = float(sys.argv[6]) - float(sys.argv[5])
print(f"warm of {n} photos under {spec}: {t1:.1f} s ({n / t1:.1f} photos/s, {renders} renders)"
      f" on {os.cpu_count()} cores; run again (all cache hits): {t2:.2f} s")
PY
