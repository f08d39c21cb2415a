#!/usr/bin/env bash
# One full-size slow-body run (issue 14, item 1) against one tollgate binary.
#
#   bench/attacks/slowloris_run.sh BIN LABEL SOURCES [slowloris.py options...]
#   e.g. bench/attacks/slowloris_run.sh target/release/tollgate after-spread 127.0.0.2-127.0.0.101
#        bench/attacks/slowloris_run.sh target/release/tollgate after-single 127.0.0.2
#
# Fresh demo database in a temporary directory, `tollgate serve` on a free port of
# 127.0.0.1 with its default flags, a sampler of its RSS and descriptors
# (procwatch.py, every 0.5 s), one legitimate view grant a second from 127.0.0.1
# (curl, --max-time 20), 5 s of baseline, the flood (slowloris.py, 20,000
# connections, HOLD seconds, default 35), then POST seconds (default 35) of
# quiet; then the server is stopped and summarize.py prints the figures. Every
# loop is bounded; everything it starts is stopped by pid. Loopback only.
# Environment: HOLD, POST, CONNECTIONS, OUT (directory kept for the raw files).
set -euo pipefail
BIN=$(realpath "$1"); LABEL=$2; SOURCES=$3; shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
HOLD=${HOLD:-35}; POST=${POST:-35}; CONNECTIONS=${CONNECTIONS:-20000}
OUT=${OUT:-$(mktemp -d "/tmp/tollgate-hostile.$LABEL.XXXX")}
mkdir -p "$OUT"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$BIN" --version > "$OUT/version.txt" 2>&1 || true
"$BIN" init "$OUT/t.db" --demo > "$OUT/init.log" 2>&1
"$BIN" serve --db "$OUT/t.db" --listen "127.0.0.1:$PORT" > "$OUT/server.log" 2>&1 &
SPID=$!; pids+=("$SPID")
for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "$URL/healthz" && break
    sleep 0.2
done
echo "server pid $SPID on $URL, files in $OUT; open-files limit: $(awk '/Max open files/{print $4}' /proc/$SPID/limits)" >&2
python3 "$HERE/procwatch.py" "$SPID" "$OUT/proc.csv" --interval 0.5 --duration $((HOLD + POST + 60)) &
pids+=("$!")

# One legitimate grant a second, each in the background so a slow one does not
# delay the next; bounded in count and each by --max-time.
grants() {
    local n=$1
    for _ in $(seq 1 "$n"); do
        (
            t=$(date +%s.%N)
            r=$(curl -s -o /dev/null --max-time 20 -w '%{http_code} %{time_total}' \
                -u viewer:viewer-secret -d grant_type=client_credentials -d scope=view \
                "$URL/token") && rc=0 || rc=$?
            echo "$t $r $rc" >> "$OUT/grants.txt"
        ) &
        sleep 1
    done
    wait
}
: > "$OUT/grants.txt"
grants $((5 + HOLD + 10 + POST)) &
pids+=("$!")
GPID=$!

sleep 5
echo "flood_start=$(date +%s.%N)" > "$OUT/meta.env"
echo "loadavg_start='$(cut -d' ' -f1-3 /proc/loadavg)'" >> "$OUT/meta.env"
python3 "$HERE/slowloris.py" --target "127.0.0.1:$PORT" --connections "$CONNECTIONS" \
    --sources "$SOURCES" --hold "$HOLD" --timeline "$@" > "$OUT/attacker.json" 2> "$OUT/attacker.err" || true
echo "flood_end=$(date +%s.%N)" >> "$OUT/meta.env"
echo "label=$LABEL" >> "$OUT/meta.env"
echo "loadavg_end='$(cut -d' ' -f1-3 /proc/loadavg)'" >> "$OUT/meta.env"
echo "sources=$SOURCES" >> "$OUT/meta.env"
echo "attacker_args='$*'" >> "$OUT/meta.env"
sleep "$POST"
wait "$GPID" || true
sleep 2
kill -TERM "$SPID" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.2; done
kill -KILL "$SPID" 2>/dev/null || true
wait 2>/dev/null || true
python3 "$HERE/summarize.py" "$OUT"
