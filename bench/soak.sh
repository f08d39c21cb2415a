#!/usr/bin/env bash
# tollgate soak test (issue 5; not run in CI): builds the release binary, serves a
# throw-away demo database with a short refresh TTL (30 s) and sweep interval (5 s),
# runs a sustained mix of grants, refreshes, revocations, reads and writes for
# DURATION seconds (default 180) with wrk (bench/soak.lua), or with Python threads
# if wrk is missing, samples RSS and DB+WAL size every 10 s, and judges them.
# Options go to bench/soak.py (`python3 bench/soak.py --help`); results also go to
# bench/results/soak-latest.json.
# Environment: DURATION=seconds; TOLLGATE_BIN=path skips the build and soaks that binary;
# SOAK_CONNECTIONS, SOAK_REFRESH_TTL, SOAK_SWEEP_INTERVAL, SOAK_SEATS, SOAK_LOAD=wrk|python.
# Exit status: 0 ok; 1 a check failed; 2 could not run; 3 ok, but the sweep horizon
# lies beyond the run, so the database bound was not shown.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

need python3 || { echo "soak: python3 is missing" >&2; exit 2; }
need wrk || echo "soak: wrk is not installed: the Python load generator is used (far lower rate)" >&2

if [ -z "${TOLLGATE_BIN:-}" ]; then
    echo "soak: cargo build --release" >&2
    cargo build --release --quiet
    TOLLGATE_BIN=target/release/tollgate
fi

exec python3 bench/soak.py --bin "$TOLLGATE_BIN" "$@"
