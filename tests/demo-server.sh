# Sourced (not run) by the scripts that test the real binary over HTTP: the
# interop clients, schemathesis, the browser test and newman. Expects BIN (from
# tests/cargo-bin.sh) and python3 (which cargo-bin.sh needs too). Gives:
#   TMP                      a temporary folder, removed at exit with every server
#   demo_db NAME             a fresh demo database $TMP/NAME.db
#   serve_demo NAME BASE_PATH [FLAG…]
#                            serves $TMP/NAME.db (made first if missing) on a free
#                            port and waits for /healthz; sets BASE (the URL with the
#                            base path), SERVER_PID and SERVER_LOG
#   up URL                   whether the server answers 200 there
# No TOLLGATE_* setting from the caller's environment leaks into a server.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TOLLGATE_' || true)
export TOLLGATE_PBKDF2_ITERATIONS=1000

STARTUP_LIMIT_TENTHS=100 # 10 s
TMP=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

up() {
    python3 -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
except Exception:
    sys.exit(1)' "$1"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

demo_db() {
    if ! "$BIN" init "$TMP/$1.db" --demo >"$TMP/$1.init.log" 2>&1; then
        echo "tollgate init failed:" >&2
        cat "$TMP/$1.init.log" >&2
        exit 1
    fi
}

serve_demo() {
    local name=$1 base_path=$2 port i
    shift 2
    [[ -f $TMP/$name.db ]] || demo_db "$name"
    port=$(free_port)
    SERVER_LOG=$TMP/$name.log
    "$BIN" --db "$TMP/$name.db" serve --listen "127.0.0.1:$port" ${base_path:+--base-path "$base_path"} "$@" \
        >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    BASE="http://127.0.0.1:$port$base_path"
    for ((i = 0; ; i++)); do
        if up "$BASE/healthz"; then break; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "tollgate exited before answering $BASE/healthz; its log:" >&2
            cat "$SERVER_LOG" >&2
            exit 1
        fi
        if ((i >= STARTUP_LIMIT_TENTHS)); then
            echo "tollgate did not answer $BASE/healthz within 10 s; its log:" >&2
            cat "$SERVER_LOG" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "== tollgate on $BASE (pid $SERVER_PID)"
}
