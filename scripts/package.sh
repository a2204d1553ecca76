#!/usr/bin/env bash
# Builds a Debian package of thumbfs with dpkg-deb from a staged tree (no cargo-deb needed).
# Usage: scripts/package.sh [BINARY] [OUTDIR]
#   BINARY  the thumbfs executable to ship (default target/release/thumbfs; build it first
#           with `cargo build --release`)
#   OUTDIR  where the .deb goes (default target/debian); its path is printed on stdout.
# DEB_COMPRESSION: dpkg-deb's -Z (default xz; the test uses gzip, several times faster).
# Reproducible: every file gets the mtime SOURCE_DATE_EPOCH (default: the last commit's time),
# owner root, fixed modes; dpkg-deb sorts the archive and clamps its timestamps to the same.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/thumbfs}
out=${2:-$root/target/debian}
[ -x "$bin" ] || { echo "package.sh: $bin: no such executable (cargo build --release)" >&2; exit 1; }
for t in dpkg-deb strip gzip; do
  command -v "$t" >/dev/null || { echo "package.sh: $t is missing" >&2; exit 1; }
done
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture)
: "${SOURCE_DATE_EPOCH:=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH
umask 022

stage=$(mktemp -d "${TMPDIR:-/tmp}/thumbfs-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg=$stage/thumbfs
mkdir -p "$pkg"/{DEBIAN,usr/bin,usr/sbin,usr/lib/systemd/system,usr/share/man/man1} \
  "$pkg"/usr/share/doc/thumbfs/examples "$pkg"/usr/share/bash-completion/completions \
  "$pkg"/usr/share/zsh/vendor-completions "$pkg"/usr/share/fish/vendor_completions.d

install -m 0755 "$bin" "$pkg/usr/bin/thumbfs"
strip --strip-unneeded "$pkg/usr/bin/thumbfs"
# mount(8) runs /sbin/mount.fuse.thumbfs for `-t fuse.thumbfs` and fstab entries (merged /usr:
# /sbin is /usr/sbin); the binary recognises the name (src/main.rs, helper_argv).
ln -s ../bin/thumbfs "$pkg/usr/sbin/mount.fuse.thumbfs"
install -m 0644 "$root/contrib/thumbfs@.service" "$pkg/usr/lib/systemd/system/thumbfs@.service"
install -m 0644 "$root/contrib/photos.conf" "$pkg/usr/share/doc/thumbfs/examples/photos.conf"
# The man page and completions come from the binary's own argument definitions.
"$bin" man | gzip -9n > "$pkg/usr/share/man/man1/thumbfs.1.gz"
"$bin" completions bash > "$pkg/usr/share/bash-completion/completions/thumbfs"
"$bin" completions zsh > "$pkg/usr/share/zsh/vendor-completions/_thumbfs"
"$bin" completions fish > "$pkg/usr/share/fish/vendor_completions.d/thumbfs.fish"
cat > "$pkg/usr/share/doc/thumbfs/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: thumbfs

Files: *
License: MIT
COPYRIGHT

# Shared libraries the binary links (dpkg-shlibdeps when dpkg-dev is there), plus what it needs
# at run time: fusermount3 (fuse3) and libheif, which it opens on first use rather than links;
# FFmpeg 5.x (videos only, also opened on first use) is recommended.
libs="libc6, libgcc-s1, libstdc++6"
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$stage/debian"
  printf 'Source: thumbfs\n\nPackage: thumbfs\nArchitecture: any\n' > "$stage/debian/control"
  libs=$(cd "$stage" && dpkg-shlibdeps -O thumbfs/usr/bin/thumbfs 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
fi
size=$(du -sk --apparent-size --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: thumbfs
Version: $version
Architecture: $arch
Maintainer: thumbfs developers <thumbfs@localhost>
Installed-Size: $size
Depends: $libs, fuse3, libheif1
Recommends: libavformat59, libavcodec59, libswscale6
Section: utils
Priority: optional
Homepage: https://github.com/thumbfs/thumbfs
Description: read-only FUSE filesystem serving transformed images, streamed on read
 thumbfs mounts a directory (or an S3 bucket) of images so that paths like
 MNT/w256_webp/holiday/photo.webp ask for transformed versions of them, rendered
 on read. Includes the mount.fuse.thumbfs helper for mount(8) and /etc/fstab, and
 a systemd template unit, thumbfs@.service, configured by /etc/thumbfs/NAME.conf.
CONTROL

# Fixed modes and mtimes; dpkg-deb sorts the entries and owns them by root.
find "$pkg" -type d -exec chmod 0755 {} +
find "$pkg" -type f ! -path "$pkg/usr/bin/thumbfs" -exec chmod 0644 {} +
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/thumbfs_${version}_${arch}.deb
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$pkg" "$deb" >/dev/null
echo "$deb"
