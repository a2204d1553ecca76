#!/bin/sh
# Instruction counts (callgrind) of the W8 rows, thumbfs against libvips 8.18 in-process, as in
# bench/PROFILE.md. Exact and repeatable on a busy machine, where wall times are not.
#   scripts/profile.sh [thumbfs binary]   (default target/release/thumbfs, built if missing)
#   scripts/profile.sh BINARY fill   thumbfs alone: fill gravities and placeholders against a
#                                    centre fill and w256, on a 24 MP JPEG (no libvips rows)
# thumbfs: a whole `thumbfs convert` process. libvips: the operation done twice minus once in
# one Python process (pyvips from target/bench-venv, made by scripts/bench.sh), so the
# interpreter and library start-up are left out.
set -eu
cd "$(dirname "$0")/.."
bin=${1:-target/release/thumbfs}
[ $# -gt 0 ] || cargo build --release --locked --quiet
py=target/bench-venv/bin/python
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$@" >/dev/null 2>"$tmp/cg.err"
          grep -o 'Collected : [0-9]*' "$tmp/cg.err" | awk '{print $3}'; }
cat >"$tmp/op.py" <<'PY'
import sys, pyvips
pyvips.cache_set_max(0)
op, src, dst, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
for _ in range(n):
    if op.startswith("w"):
        pyvips.Image.thumbnail(src, int(op[1:]), height=1 << 24).write_to_file(dst, Q=75)
    elif op == "shrink2inv":
        pyvips.Image.new_from_file(src, shrink=2, access="sequential").invert() \
            .write_to_file(dst, Q=90)
    else:
        pyvips.Image.new_from_file(src, access="sequential").write_to_file(dst, Q=75)
PY
corpus=../shared/corpus/photos
files=""
for n in seeding_by_Clements_Engelhardt sunset_by_Aitzol_Berasategi; do
    jpegtran -optimize -outfile "$tmp/$n.baseline.jpg" "$corpus/$n.jpg"
    files="$files $tmp/$n.baseline.jpg $corpus/$n.jpg"
done
vips black "$tmp/tiny.jpg" 16 16
echo "thumbfs start-up: $(( $(count "$bin" convert w8_q75 "$tmp/tiny.jpg" "$tmp/o.jpg") / 1000000 )) M (a 16x16 image)"
if [ "${2:-}" = fill ]; then
    # The 15.9 MP seeding photo enlarged 1.23x by libvips (as scripts/memory_bench.py): 24 MP,
    # baseline 4:2:0 Q90. One process per spec; the output is what a mount would serve.
    big="$tmp/seeding24.jpg"
    vips resize "$corpus/seeding_by_Clements_Engelhardt.jpg" "$big[Q=90]" 1.23
    line="$(vipsheader "$big" | cut -d, -f1):"
    for spec in 256x256_fill 256x256_fill_attention 256x256_fill_entropy 256x256_fill_se \
        w256 thumbhash blurhash; do
        line="$line $spec $(( $(count "$bin" convert "$spec" "$big" "$tmp/o") / 100000 ))"
    done
    echo "$line (x 0.1 M instructions)"
    exit 0
fi
for f in $files; do
    line="$(basename "$f"):"
    for row in "w256 w256_q75" "w1024 w1024_q75" "shrink2inv shrink2_invert_q90" "q75 q75"; do
        set -- $row
        ours=$(count "$bin" convert "$2" "$f" "$tmp/o.jpg")
        one=$(count "$py" "$tmp/op.py" "$1" "$f" "$tmp/v.jpg" 1)
        two=$(count "$py" "$tmp/op.py" "$1" "$f" "$tmp/v.jpg" 2)
        line="$line $1 $((ours / 1000000)) / $(((two - one) / 1000000)) M;"
    done
    echo "$line"
done
# Gain maps: an Ultra HDR JPEG made by libultrahdr (libvips 8.18's uhdrsave) from the sunset
# photo, highlights boosted up to 4x, quarter-size map; w256 keeps the map, w256_sdr drops it.
# libvips' thumbnail keeps it too (8.18).
"$py" -c 'import sys, pyvips
im = pyvips.Image.new_from_file(sys.argv[1])
lin = im.colourspace("scrgb")
(lin * (1 + 3 * lin.colourspace("b-w"))).copy(interpretation="scrgb").uhdrsave(sys.argv[2], Q=92, gainmap_scale_factor=4)' \
    "$corpus/sunset_by_Aitzol_Berasategi.jpg" "$tmp/uhdr.jpg"
one=$(count "$py" "$tmp/op.py" w256 "$tmp/uhdr.jpg" "$tmp/v.jpg" 1)
two=$(count "$py" "$tmp/op.py" w256 "$tmp/uhdr.jpg" "$tmp/v.jpg" 2)
line="ultra hdr sunset (map 1068x712):"
for spec in w256_q75 w256_sdr_q75; do
    line="$line $spec $(( $(count "$bin" convert "$spec" "$tmp/uhdr.jpg" "$tmp/o.jpg") / 1000000 )) M;"
done
echo "$line libvips w256 (map kept) $(((two - one) / 1000000)) M"
