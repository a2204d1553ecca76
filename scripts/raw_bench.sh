#!/bin/sh
# bench/REPORT.md's RAW rows: w256 of a 12 MP DNG through its embedded 1620x1080 preview and
# through development (`exact`), as instruction counts (callgrind, a whole `thumbfs convert`
# process) and median wall times of 9 runs; LibRaw's dcraw_emu development + `vips thumbnail`
# and `vips thumbnail` of the extracted preview alone as outside references.
#   scripts/raw_bench.sh [thumbfs binary]   (default target/release/thumbfs)
# The DNG is made as tests/it/codec/raw.rs makes its DNGs (pidng in target/raw-venv, the
# preview IFD added by a small Python copy of the test's writer below).
set -eu
cd "$(dirname "$0")/.."
bin=${1:-target/release/thumbfs}
py=target/raw-venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
photo=../shared/corpus/photos/sunset_by_Aitzol_Berasategi.jpg
convert "$photo" -colorspace RGB -set colorspace sRGB -depth 16 "$tmp/lin.ppm"
"$py" tests/it/codec/raw_dng.py "$tmp/lin.ppm" "$tmp/raw.dng" 1
convert "$photo" -resize '1620x1080!' -quality 92 "$tmp/preview.jpg"
"$py" - "$tmp/raw.dng" "$tmp/preview.jpg" "$tmp/photo.dng" <<'PY'
import struct, sys
dng, jpg = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
ifd0 = struct.unpack_from("<I", dng, 4)[0]
n = struct.unpack_from("<H", dng, ifd0)[0]
end = ifd0 + 2 + 12 * n + 4
sizes = {1: 1, 2: 1, 3: 2, 5: 8, 7: 1, 10: 8}
entries = []
for i in range(n):
    tag, typ, count, val = struct.unpack_from("<HHII", dng, ifd0 + 2 + 12 * i)
    if sizes.get(typ, 4) * count > 4 or (tag in (0x111, 0x144) and count == 1):
        val += 12 if val >= end else 0
    entries.append((tag, typ, count, val))
tail = dng[end:] + (b"\0" if (end + 12 + len(dng) - end) % 2 else b"")
jpg_at = end + 12 + len(tail)
pad = jpg + (b"\0" if len(jpg) % 2 else b"")
prev_at = jpg_at + len(pad)
entries = sorted(entries + [(0x14A, 4, 1, prev_at)])
out = bytearray(dng[:ifd0]) + struct.pack("<H", len(entries))
for e in entries:
    out += struct.pack("<HHII", *e) if e[1] != 3 or e[2] != 1 else struct.pack("<HHIHH", e[0], 3, 1, e[3] & 0xFFFF, 0)
out += struct.pack("<I", 0) + tail + pad
p = [(0xFE, 4, 1, 1), (0x100, 4, 1, 1620), (0x101, 4, 1, 1080), (0x103, 3, 1, 7), (0x106, 3, 1, 6),
     (0x111, 4, 1, jpg_at), (0x115, 3, 1, 3), (0x116, 4, 1, 1080), (0x117, 4, 1, len(jpg))]
out += struct.pack("<H", len(p))
for e in p:
    out += struct.pack("<HHIHH", e[0], 3, 1, e[3], 0) if e[1] == 3 else struct.pack("<HHII", *e)
out += struct.pack("<I", 0)
open(sys.argv[3], "wb").write(out)
PY
"$bin" info "$tmp/photo.dng"
count() { valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$@" >/dev/null 2>"$tmp/cg.err"
          grep -o 'Collected : [0-9]*' "$tmp/cg.err" | awk '{print $3}'; }
median() { # median wall ms of 9 runs of "$@"
    for _ in 1 2 3 4 5 6 7 8 9; do
        s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 ))
    done | sort -n | sed -n 5p | awk '{printf "%.1f", $1 / 1000}'
}
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3"; }
row "what" "median wall ms" "instructions (M)"
row "thumbfs w256 through the preview" "$(median "$bin" convert w256_q75 "$tmp/photo.dng" "$tmp/a.jpg")" \
    "$(( $(count "$bin" convert w256_q75 "$tmp/photo.dng" "$tmp/a.jpg") / 1000000 ))"
row "thumbfs w256 developed (exact)" "$(median "$bin" convert w256_exact_q75 "$tmp/photo.dng" "$tmp/b.jpg")" \
    "$(( $(count "$bin" convert w256_exact_q75 "$tmp/photo.dng" "$tmp/b.jpg") / 1000000 ))"
row "vips thumbnail of the extracted preview" "$(median vips thumbnail "$tmp/preview.jpg" "$tmp/c.jpg[Q=75]" 256)" "-"
dev() { dcraw_emu -w -W -o 1 -g 2.4 12.92 -q 2 -T -Z "$tmp/d.tiff" "$tmp/photo.dng" && vips thumbnail "$tmp/d.tiff" "$tmp/d.jpg[Q=75]" 256; }
row "dcraw_emu (PPG) + vips thumbnail" "$(median dev)" "-"
