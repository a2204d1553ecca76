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
# mozjpeg-sys builds libjpeg-turbo's x86 SIMD with nasm (without it: a slower C-only build).
have nasm        || need+=(nasm)
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
# tests/it/setup.rs: the unit file check and the man page check.
have systemd-analyze || need+=(systemd)
have man         || need+=(man-db)
# The aarch64 type-check below builds libwebp's C with the cross compiler.
have aarch64-linux-gnu-gcc || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
# tests/newformats.rs: reference HEIF/AVIF/JPEG XL encoders and decoders; libheif-dev to link.
have heif-enc    || need+=(libheif-examples)
have avifenc     || need+=(libavif-bin)
have cjxl        || need+=(libjxl-tools)
pkg-config --exists libheif 2>/dev/null || need+=(libheif-dev pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -e /dev/fuse ] || { echo "test.sh: /dev/fuse is missing: the mount tests need it" >&2; exit 1; }

start=$(date +%s)
status=0
# The whole suite: one integration-test binary (tests/it) plus unit tests, built with the
# test-release profile (release optimisation without LTO: linking was most of the old time).
cargo test --profile test-release --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-2}" || status=1

# The generic (non-SIMD) code paths. The default x86_64 target is baseline x86-64 (no AVX2),
# so the generic loops in this binary are what a machine without AVX2 runs; THUMBFS_SIMD=off
# makes this machine take them too (ours, zune-jpeg's and fast_image_resize's), no rebuild.
echo "test.sh: codec tests again on the generic paths (THUMBFS_SIMD=off)"
THUMBFS_SIMD=off cargo test --profile test-release --locked --no-fail-fast --test it -- \
  --test-threads="${TEST_THREADS:-2}" codecs:: jpeg:: ops:: engine:: orientation:: formats:: cmyk:: || status=1

# The ARM build (Raspberry Pi, Graviton): type-check every target for aarch64.
echo "test.sh: cargo check --target aarch64-unknown-linux-gnu"
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu
# PKG_CONFIG_ALLOW_CROSS: libheif-sys' build script finds libheif with pkg-config; a type-check
# links nothing, so the host's libheif.pc does (an ARM build uses the ARM libheif-dev).
PKG_CONFIG_ALLOW_CROSS=1 CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
  cargo check --locked --all-targets --target aarch64-unknown-linux-gnu --quiet || status=1

echo "test.sh: test wall time $(( $(date +%s) - start )) s (status $status)"
exit $status
