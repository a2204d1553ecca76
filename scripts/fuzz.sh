#!/usr/bin/env bash
# Runs the cargo-fuzz targets one after another and prints what each did.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 600 s each, every target)
#
# Works on stable Rust: cargo-fuzz passes -Z flags, which RUSTC_BOOTSTRAP=1 allows. Builds
# without a sanitizer by default (FUZZ_SANITIZER=address for ASan, slower); debug assertions
# and overflow checks are on (cargo-fuzz's default profile). Seeds come from
# ../shared/corpus (by format, files up to 300 KiB) and fuzz/seeds/<target>; they are copied
# into fuzz/corpus/<target>/, which is git-ignored, as are fuzz/artifacts/ and fuzz/logs/.
#
# A panic inside a codec crate (which render() turns into an error) is caught and its input
# saved once per location under fuzz/artifacts/codec-panics/, so a run goes on; FUZZ_STRICT=1
# makes every panic a crash. Panics in our code, timeouts (> FUZZ_TIMEOUT s, default 25) and
# out-of-memory (> 2048 MB RSS or one malloc over it) always stop the target, with the input in
# fuzz/artifacts/<target>/. Exit status: 1 if any target stopped on a crash.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-600}
shift || true
all=(jpeg png webp tiff gif hdr svg pnm heic avif jxl raw video spec options)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
corpus=${THUMBFS_CORPUS:-$root/../shared/corpus}
sanitizer=${FUZZ_SANITIZER:-none}
timeout=${FUZZ_TIMEOUT:-25}

# cargo-fuzz needs nightly -Z flags; on a stable toolchain this unlocks them.
export RUSTC_BOOTSTRAP=1
if [ "${FUZZ_STRICT:-0}" != 1 ]; then
    export THUMBFS_FUZZ_CODEC_PANICS=catch
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Seed files for a target: corpus files of its format, then our own seeds.
seeds() {
    local pattern
    case $1 in
        jpeg) pattern='.*\.(jpe?g)$' ;;
        png) pattern='.*\.png$' ;;
        webp) pattern='.*\.webp$' ;;
        tiff) pattern='.*\.tiff?$' ;;
        pnm) pattern='.*\.(pbm|pgm|ppm|pam|pfm)$' ;;
        *) pattern='' ;;
    esac
    if [ -n "$pattern" ] && [ -d "$corpus" ]; then
        find "$corpus" -type f -size -300k -regextype posix-extended -iregex "$pattern"
    fi
    if [ -d "fuzz/seeds/$1" ]; then
        find "fuzz/seeds/$1" -type f
    fi
}

# Dictionary for a target, when it has one.
dict() {
    case $1 in
        spec | options) echo "-dict=$root/fuzz/dicts/spec.dict" ;;
        svg) echo "-dict=$root/fuzz/dicts/svg.dict" ;;
    esac
}

cd fuzz
echo "building ${targets[*]} (sanitizer: $sanitizer)"
nice -n 10 cargo fuzz build -s "$sanitizer"
cd "$root"

mkdir -p fuzz/logs
failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    # File names by content: re-seeding never duplicates, and seeds never clash by name.
    while IFS= read -r f; do
        cp -n "$f" "fuzz/corpus/$t/seed-$(sha1sum "$f" | cut -c1-16)"
    done < <(seeds "$t")
    log=fuzz/logs/$t.log
    echo "== $t: ${secs}s from $(ls "fuzz/corpus/$t" | wc -l) inputs, log in $log"
    before=$(ls "fuzz/artifacts/$t" | wc -l)
    start=$(date +%s)
    set +e
    (cd fuzz && nice -n 10 cargo fuzz run -s "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout="$timeout" \
        -print_final_stats=1 $(dict "$t")) >"$log" 2>&1
    rc=$?
    set -e
    took=$(($(date +%s) - start))
    ran=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | grep -o '[0-9]* second' | grep -o '[0-9]*' || true)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    corp=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    codec=$(grep -c 'codec panic caught' "$log" || true)
    new=$(($(ls "fuzz/artifacts/$t" | wc -l) - before))
    status=ok
    if [ $rc -ne 0 ]; then
        status="STOPPED rc=$rc: $(grep -m1 -E 'panicked at|ERROR: libFuzzer|deadly signal' "$log" || echo see log)"
        failed=1
    fi
    line="$t: fuzzed ${ran:-?}s (${took}s with build) execs=${execs:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} new_artifacts=$new codec_panics=$codec $status"
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $failed
