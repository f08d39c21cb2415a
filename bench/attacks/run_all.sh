#!/usr/bin/env bash
# The whole issue-14 hostile run, before and after, at full size (about 10 minutes).
#
#   bench/attacks/run_all.sh BEFORE_BIN AFTER_BIN RESULTS_DIR
#
# e.g. (two worktrees, each built with `cargo build --release`):
#   bench/attacks/run_all.sh /work/wt-before/target/release/tollgate \
#       /work/wt-after/target/release/tollgate bench/results/2026-12-02-hostile
#
# Runs getdata_huge.sh on each binary, then slowloris_run.sh five times:
#   before-spread  20,000 connections from 127.0.0.2-127.0.0.101, reconnect 1 s
#   before-single  20,000 connections from 127.0.0.2,             reconnect 1 s
#   after-spread   as before-spread
#   after-single   as before-single
#   after-oneshot  20,000 from 127.0.0.2-127.0.0.101, no reconnect (each slot tries once)
# and keeps the small raw files (summary.json, attacker.json, proc.csv, grants.txt,
# server.log tail) under RESULTS_DIR. Nothing else may be running a build meanwhile
# if the latencies are to mean anything; the load average is recorded with each run.
set -uo pipefail
BEFORE=$(realpath "$1"); AFTER=$(realpath "$2"); RES=$3
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$RES"
SPREAD=127.0.0.2-127.0.0.101

keep() { # DIR NAME
    local d=$1 n=$2
    mkdir -p "$RES/$n"
    for f in attacker.json proc.csv grants.txt meta.env; do
        [ -f "$d/$f" ] && cp "$d/$f" "$RES/$n/"
    done
    tail -c 4000 "$d/server.log" > "$RES/$n/server.log.tail" 2>/dev/null || true
}

# SKIP_GETDATA=1 runs only the slow-body part.
for side in before after; do
    [ -n "${SKIP_GETDATA:-}" ] && break
    bin=$BEFORE; [ "$side" = after ] && bin=$AFTER
    d=$(mktemp -d "/tmp/tollgate-getdata.$side.XXXX")
    OUT=$d bash "$HERE/getdata_huge.sh" "$bin" "$side" | tee "$RES/getdata-$side.jsonl"
    rm -f "$d"/*/t.db*
done

run() { # NAME BIN SOURCES [slowloris options]
    local n=$1 bin=$2 src=$3; shift 3
    local d; d=$(mktemp -d "/tmp/tollgate-hostile.$n.XXXX")
    OUT=$d bash "$HERE/slowloris_run.sh" "$bin" "$n" "$src" "$@" > "$d/summary.json"
    keep "$d" "$n"
    cp "$d/summary.json" "$RES/$n/summary.json"
    cat "$d/summary.json"
    rm -f "$d"/t.db*
    sleep 5
}

run before-spread "$BEFORE" "$SPREAD" --reconnect-delay 1
run before-single "$BEFORE" 127.0.0.2 --reconnect-delay 1
run after-spread "$AFTER" "$SPREAD" --reconnect-delay 1
run after-single "$AFTER" 127.0.0.2 --reconnect-delay 1
run after-oneshot "$AFTER" "$SPREAD"
