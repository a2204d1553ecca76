#!/usr/bin/env bash
# What building and running thumbfs need (README, Set up): installs the missing ones with apt-get
# (Debian), quietly; does nothing, and needs no root, when all are there. scripts/test.sh runs it
# before its build; it sets THUMBFS_APT_UPDATED=1 when it has already run `apt-get update`.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
need=()
# mozjpeg-sys builds libjpeg-turbo's x86 SIMD with nasm (without it: a slower C-only build).
have nasm        || need+=(nasm)
have cc          || need+=(gcc)
# The C++ frame that catches libheif's exceptions (crates/codec/src/heif/guard.cpp).
have g++         || need+=(g++)
# HEIC/AVIF at run time: thumbfs opens libheif.so.1 on first use (crates/codec/src/heif/ffi.rs);
# building needs no libheif (its declarations are in crates/codec/src/heif/sys.rs).
compgen -G '/usr/lib/*/libheif.so.1' >/dev/null || compgen -G '/usr/lib/libheif.so.1' >/dev/null \
  || need+=(libheif1)
# Videos at run time: thumbfs opens FFmpeg 5.x by soname on first use (crates/codec/src/video/ffi.rs);
# building needs no FFmpeg (its declarations are in that file). libavutil57 comes with them.
for lib in libavformat.so.59:libavformat59 libavcodec.so.59:libavcodec59 libswscale.so.6:libswscale6; do
  compgen -G "/usr/lib/*/${lib%%:*}" >/dev/null || compgen -G "/usr/lib/${lib%%:*}" >/dev/null \
    || need+=("${lib##*:}")
done
# Mounting without root and unmounting (`fusermount3 -u`).
have fusermount3 || need+=(fuse3)
[ ${#need[@]} -gt 0 ] || exit 0

have apt-get || { echo "deps.sh: missing, and no apt-get to install them: ${need[*]}" >&2; exit 1; }
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  have sudo || { echo "deps.sh: missing, and not root to install them: ${need[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
# Quiet: apt-get's output (debconf's notes go to stderr) is shown only when it fails.
quiet() {
  local out
  out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; echo "deps.sh: failed: $*" >&2; return 1; }
}
echo "deps.sh: installing ${need[*]}"
[ "${THUMBFS_APT_UPDATED:-}" = 1 ] || quiet "${sudo[@]}" apt-get update -qq
quiet "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${need[@]}"
