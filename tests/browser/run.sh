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

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

if ! "$BIN" init "$TMP/tollgate.db" --demo >"$TMP/init.log" 2>&1; then
    echo "tollgate init failed:" >&2
    cat "$TMP/init.log" >&2
    exit 1
fi

PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
BASE="http://127.0.0.1:$PORT"

"$BIN" --db "$TMP/tollgate.db" serve --listen "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

for ((i = 0; ; i++)); do
    if curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "tollgate exited before answering /healthz; its log:" >&2
        cat "$TMP/server.log" >&2
        exit 1
    fi
    if ((i >= STARTUP_LIMIT_TENTHS)); then
        echo "tollgate did not answer $BASE/healthz within 10 s; its log:" >&2
        cat "$TMP/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "== tollgate on $BASE (pid $SERVER_PID)"

OUT=target/browser
rm -rf "$OUT"
status=0
node tests/browser/console.test.mjs "$BASE" "$OUT" || status=$?
if ((status != 0)); then
    echo "== server log" >&2
    tail -n 50 "$TMP/server.log" >&2
fi
exit "$status"
