#!/usr/bin/env bash
# Unbounded GetData answers (issue 14, item 2), at full size, against one binary.
#
#   bench/attacks/getdata_huge.sh BIN LABEL
#
# For each of three published queries, with qp1=1000000000:
#   huge        SELECT zeroblob(?1)
#   huge_rand   SELECT randomblob(?1)
#   huge_printf SELECT printf('%.*c',?1,'x')
# a fresh demo database, `tollgate serve` (default flags) on a free port of
# 127.0.0.1, a sampler of its RSS (procwatch.py), a view token for `demo`, the huge
# GET (curl --max-time 120, body counted and thrown away, first 300 bytes kept),
# and, while it runs, a GET /api/v1/products/NUT-M6 with the same token at once
# and then every 0.25 s (at most 480). Prints one JSON line per query. Loopback only; bounded;
# the server is stopped by pid after each query.
set -euo pipefail
BIN=$(realpath "$1"); LABEL=$2
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(mktemp -d "/tmp/tollgate-getdata.$LABEL.XXXX")}
mkdir -p "$OUT"
echo "files in $OUT" >&2

run_one() {
    local name=$1 sql=$2 d="$OUT/$1"
    mkdir -p "$d"
    local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    local url="http://127.0.0.1:$port"
    "$BIN" init "$d/t.db" --demo > "$d/init.log" 2>&1
    "$BIN" query add "$name" --sql "$sql" --db "$d/t.db" > "$d/query-add.log" 2>&1
    "$BIN" serve --db "$d/t.db" --listen "127.0.0.1:$port" > "$d/server.log" 2>&1 &
    local spid=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null --max-time 1 "$url/healthz" && break; sleep 0.2; done
    python3 "$HERE/procwatch.py" "$spid" "$d/proc.csv" --interval 0.1 --duration 180 &
    local wpid=$!
    local tok
    tok=$(curl -s --max-time 20 -u demo:demo-secret -d grant_type=client_credentials -d scope=view \
        "$url/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    local auth="Authorization: Bearer $tok"
    # Baseline product GET (twice; the second is the figure).
    curl -s -o /dev/null -H "$auth" "$url/api/v1/products/NUT-M6"
    local base; base=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "$auth" "$url/api/v1/products/NUT-M6")
    sleep 1
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    local t0; t0=$(date +%s.%N)
    # Body to stdout (first 300 bytes kept, the rest counted by curl and dropped);
    # the -w figures to stderr (%{stderr}), into huge.w.
    ( curl -s --max-time 120 -D "$d/huge.headers" -o - \
        -w '%{stderr}%{http_code} %{size_download} %{time_total} %{time_starttransfer}\n' \
        -H "$auth" "$url/api/v1/custom/$name?qp1=1000000000" 2> "$d/huge.w" \
        | { head -c 300 > "$d/huge.head"; cat > /dev/null; } ) &
    local hpid=$!
    : > "$d/product.txt"
    for _ in $(seq 1 480); do
        kill -0 "$hpid" 2>/dev/null || break
        curl -s -o /dev/null --max-time 30 -w "%{http_code} %{time_total}\n" -H "$auth" \
            "$url/api/v1/products/NUT-M6" >> "$d/product.txt" || true
        sleep 0.25
    done
    wait "$hpid" || true
    local t1; t1=$(date +%s.%N)
    sleep 1
    kill -TERM "$spid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    python3 - "$d" "$name" "$LABEL" "$t0" "$t1" "$base" "$load" <<'EOF'
import json, re, statistics, sys
d, name, label, t0, t1, base, load = sys.argv[1:8]
hdr = open(f"{d}/huge.headers", errors="replace").read()
ctype = re.findall(r"^content-type: *(.*?)\r?$", hdr, re.M | re.I)
head = open(f"{d}/huge.head", "rb").read()
w = (open(f"{d}/huge.w").read().split() + ["?"] * 4)[:4]
rows = [l.strip().split(",") for l in list(open(f"{d}/proc.csv"))[1:]]
peak = max(int(r[1]) for r in rows) / 1024
hwm = max(int(r[2]) for r in rows) / 1024
before = [int(r[1]) for r in rows if float(r[0]) < float(t0)]
prod = [l.split() for l in open(f"{d}/product.txt") if l.strip()]
lat = [float(p[1]) for p in prod]
print(json.dumps({
    "label": label, "query": name, "loadavg1": load,
    "status": w[0], "body_bytes": w[1], "curl_total_s": w[2], "first_byte_s": w[3],
    "content_type": ctype[-1] if ctype else None,
    "wall_s": round(float(t1) - float(t0), 2),
    "body_head": head.decode("latin-1") if len(head) < 300 else head[:24].hex() + "...",
    "rss_before_mb": round(before[-1] / 1024, 1) if before else None,
    "rss_peak_mb": round(peak, 1), "vmhwm_mb": round(hwm, 1),
    "product_get_baseline": base,
    "product_gets_during": len(lat),
    "product_codes": sorted(set(p[0] for p in prod)),
    "product_median_s": round(statistics.median(lat), 4) if lat else None,
    "product_max_s": round(max(lat), 4) if lat else None,
}))
EOF
}

run_one huge "SELECT zeroblob(?1)"
run_one huge_rand "SELECT randomblob(?1)"
run_one huge_printf "SELECT printf('%.*c',?1,'x')"
