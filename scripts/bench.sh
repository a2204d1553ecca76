#!/bin/sh
# Benchmarks thumbfs against libvips and ImageMagick side by side and writes bench/REPORT.md.
# Usage: scripts/bench.sh [runs]   (default 5 measured runs per workload, after a warm-up)
set -eu
cd "$(dirname "$0")/.."

need=""
command -v vips >/dev/null 2>&1 || need="$need libvips-tools"
command -v convert >/dev/null 2>&1 || need="$need imagemagick"
command -v djpeg >/dev/null 2>&1 || need="$need libjpeg-turbo-progs"
[ -x /usr/bin/time ] || need="$need time"
command -v fusermount3 >/dev/null 2>&1 || need="$need fuse3"
if [ -n "$need" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

cargo build --release --locked --quiet
exec python3 scripts/bench.py "${1:-5}"
