#!/bin/sh
# The long form of tests/it/mount/stress.rs: 32 readers over 200 sources and 4 specs with a
# small memory cache, every byte checked, memory and single flight measured; then the latency
# of a cached read under slow renders; then the million-entry walk of tests/it/mount/inodes.rs
# (100,000 images x 10 specs, daemon RSS against the README's bound).
# Usage: scripts/stress.sh [SECS] (default 600)
set -eu
cd "$(dirname "$0")/.."
[ -e /dev/fuse ] || { echo "stress.sh: /dev/fuse is missing" >&2; exit 1; }
STRESS_SECS="${1:-600}" cargo test --release --locked --test it -- --nocapture --test-threads=1 mount::stress::
THUMBFS_WALK_FILES=100000 exec cargo test --release --locked --test it -- --nocapture mount::inodes::big_walk
