#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have fusermount3 || need+=(fuse3)
have identify    || need+=(imagemagick)
have vips        || need+=(libvips-tools)
have djpeg       || need+=(libjpeg-turbo-progs)
have dwebp       || need+=(webp)
have exiftool    || need+=(libimage-exiftool-perl)
have rsync       || need+=(rsync)
have nginx       || need+=(nginx-light)
[ -x /usr/bin/time ] || need+=(time)
# tests/faults.rs reads as nobody (setpriv) with the system Python, not a per-user one.
[ -x /usr/bin/python3 ] || need+=(python3)
have setpriv     || need+=(util-linux)
# tests/cmyk.rs: a real CMYK profile (Ghostscript's SWOP) to build test files with.
[ -f /usr/share/color/icc/ghostscript/default_cmyk.icc ] || need+=(libgs-common)
# tests/newformats.rs: reference HEIF/AVIF/JPEG XL encoders and decoders; libheif-dev to link.
have heif-enc    || need+=(libheif-examples)
have avifenc     || need+=(libavif-bin)
have cjxl        || need+=(libjxl-tools)
[ -f /usr/include/libheif/heif.h ] || need+=(libheif-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -e /dev/fuse ] || { echo "test.sh: /dev/fuse is missing: the mount tests need it" >&2; exit 1; }

cargo build --release --locked
cargo test --release --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"
