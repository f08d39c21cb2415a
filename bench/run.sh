#!/usr/bin/env bash
# tollgate benchmark (issue 7): builds the release binary, makes a throw-away database,
# serves it pinned to CPU 0, drives it with wrk from CPU 1, prints one table and writes
# bench/results/latest.json. Options go to bench/bench.py (e.g. --duration 5, --only 2,3,
# --md bench/results/$(date +%F).md); see `python3 bench/bench.py --help`.
# Environment: TOLLGATE_BIN=path skips the build and benchmarks that binary.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need wrk; then
    echo "bench: installing wrk (Debian package)" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi
need taskset || { echo "bench: taskset (util-linux) is missing" >&2; exit 1; }
need python3 || { echo "bench: python3 is missing" >&2; exit 1; }

if [ "$(nproc)" -lt 2 ]; then
    echo "bench: fewer than 2 CPUs: server and load generator will share one (numbers are not comparable)" >&2
    set -- --no-pin "$@"
fi

if [ -z "${TOLLGATE_BIN:-}" ]; then
    echo "bench: cargo build --release" >&2
    cargo build --release --quiet
    TOLLGATE_BIN="${CARGO_TARGET_DIR:-target}/release/tollgate"
fi

exec python3 bench/bench.py --bin "$TOLLGATE_BIN" --command "bash bench/run.sh${*:+ $*}" "$@"
