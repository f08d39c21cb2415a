#!/usr/bin/env bash
# The web console (API.md §8) in a real Chromium: Debian's `chromium` driven by
# playwright-core from npm (never a downloaded browser), against the real tollgate
# binary on a free port and a throw-away demo database.
#
#     bash tests/browser/run.sh
#
# Installs what is missing: chromium (apt, when /usr/bin/chromium is absent; CI runs
# as root), node and npm (apt), playwright-core (npm ci in tests/browser). Builds the
# debug binary (a no-op when it is up to date). Screenshots of every main view go to
# target/browser/ (CI keeps them as artefacts). Exits with the test's status.
set -euo pipefail
cd "$(dirname "$0")/../.."

STARTUP_LIMIT_TENTHS=100 # 10 s
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export DEBIAN_FRONTEND=noninteractive

apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "tests/browser/run.sh: $* missing; install it (apt-get install -y $*) or run as root" >&2
        exit 1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [[ ! -x /usr/bin/chromium ]]; then
    echo "== installing chromium (apt)"
    apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "== installing node and npm (apt)"
    apt_install nodejs npm
fi
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    echo "== npm ci (tests/browser)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== cargo build"
BIN=$(bash tests/cargo-bin.sh)

# No TOLLGATE_* setting from the caller's environment leaks into the server.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TOLLGATE_' || true)
export TOLLGATE_PBKDF2_ITERATIONS=1000

# up URL: the server answers 200 there (node only: CI's image need not have curl).
up() {
    node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1" 2>/dev/null
}

TMP=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# serve NAME BASE_PATH [FLAG…]: a fresh demo database NAME.db served on a free port;
# sets BASE to the server's URL (with the base path).
serve() {
    local name=$1 base_path=$2
    shift 2
    if ! "$BIN" init "$TMP/$name.db" --demo >"$TMP/$name.init.log" 2>&1; then
        echo "tollgate init failed:" >&2
        cat "$TMP/$name.init.log" >&2
        exit 1
    fi
    local port pid i
    port=$(free_port)
    "$BIN" --db "$TMP/$name.db" serve --listen "127.0.0.1:$port" ${base_path:+--base-path "$base_path"} "$@" \
        >"$TMP/$name.log" 2>&1 &
    pid=$!
    SERVER_PIDS+=("$pid")
    BASE="http://127.0.0.1:$port$base_path"
    for ((i = 0; ; i++)); do
        if up "$BASE/healthz"; then break; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "tollgate exited before answering $BASE/healthz; its log:" >&2
            cat "$TMP/$name.log" >&2
            exit 1
        fi
        if ((i >= STARTUP_LIMIT_TENTHS)); then
            echo "tollgate did not answer $BASE/healthz within 10 s; its log:" >&2
            cat "$TMP/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "== tollgate on $BASE (pid $pid)"
}

serve main ""
MAIN_BASE=$BASE
# The second server: a base path (the page's relative URLs) and 8-second access
# tokens (the page asks for the secret again when its admin token expires).
serve short /Jim_Test --access-ttl 8
SHORT_BASE=$BASE

OUT=target/browser
rm -rf "$OUT"
status=0
node tests/browser/console.test.mjs "$MAIN_BASE" "$OUT" "$SHORT_BASE" || status=$?
if ((status != 0)); then
    for log in "$TMP"/main.log "$TMP"/short.log; do
        echo "== $log" >&2
        tail -n 30 "$log" >&2
    done
fi
exit "$status"
